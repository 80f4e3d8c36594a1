"""simulate_scene: invariants for every kind in 2D and 3D, determinism, params, errors."""
from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cellsynth.config import SceneConfig, load_config, validate
from cellsynth.errors import ConfigError
from cellsynth.scene import Scene
from cellsynth.simulate import simulate_scene


def scene_cfg(ndim: int, kind: str = "nuclei", **kw) -> SceneConfig:
    shape = [48, 48] if ndim == 2 else [20, 40, 40]
    d = dict(kind=kind, shape=shape, spacing=[1.0] * ndim,
             foreground=dict(method="ellipsoid", extent=(0.7, 0.9)),
             placement=dict(method="poisson", n_points=(6, 10), min_distance=8),
             nuclei=dict(radius=(3, 5), elastic=0.5),
             organelles=dict(n_pairs=(3, 5), golgi_radius=(2, 3), nucleus_axes=[(5, 7), (3, 4), (3, 4)],
                             golgi_offset=(-1, 1)))
    for k, v in kw.items():
        d[k] = {**d[k], **v} if isinstance(v, dict) and isinstance(d.get(k), dict) else v
    return validate(SceneConfig, d)


def check_invariants(scene: Scene, cfg: SceneConfig) -> None:
    lab = scene.labels
    assert lab.shape == tuple(cfg.shape) and lab.dtype == np.uint16
    ids = np.unique(lab)[1:]
    assert np.array_equal(ids, np.arange(1, len(ids) + 1))
    assert not lab[~scene.foreground].any()
    assert set(scene.classes) == set(ids.tolist())
    assert scene.params["achieved"]["objects"] == len(ids)
    json.dumps(scene.params)  # serialisable
    assert scene.params["scene"]["shape"] == list(cfg.shape)


@pytest.mark.parametrize("ndim", [2, 3])
@pytest.mark.parametrize("kind", ["nuclei", "membranes", "organelles"])
def test_every_kind_2d_3d(ndim, kind):
    cfg = scene_cfg(ndim, kind)
    scene = simulate_scene(cfg, np.random.default_rng(0))
    check_invariants(scene, cfg)
    ach = scene.params["achieved"]
    assert scene.n_objects > 0
    if kind == "nuclei":
        assert set(scene.classes.values()) == {"nucleus"}
        assert 6 <= ach["requested"] <= 10 and scene.n_objects <= ach["points"] <= ach["requested"]
    elif kind == "membranes":
        assert set(scene.classes.values()) == {"cell"}
        assert scene.n_objects <= ach["points"]
    else:
        assert set(scene.classes.values()) == {"nucleus", "golgi"}
        assert 3 <= ach["requested"] <= 5 and ach["pairs"] <= ach["requested"]


@pytest.mark.parametrize("ndim", [2, 3])
def test_same_seed_same_scene(ndim):
    cfg = scene_cfg(ndim, foreground=dict(method="harmonics"), nuclei=dict(shape="harmonics", allow_overlap=True))
    a = simulate_scene(cfg, np.random.default_rng(7))
    b = simulate_scene(cfg, np.random.default_rng(7))
    c = simulate_scene(cfg, np.random.default_rng(8))
    assert np.array_equal(a.labels, b.labels) and np.array_equal(a.foreground, b.foreground)
    assert np.array_equal(a.layers, b.layers) and np.array_equal(a.coverage(), b.coverage())
    assert a.params == b.params and a.classes == b.classes
    assert not np.array_equal(a.labels, c.labels)


def test_overlap_layers_only_when_allowed():
    cfg = scene_cfg(2, placement=dict(min_distance=2, n_points=(20, 20)), nuclei=dict(allow_overlap=True))
    s = simulate_scene(cfg, np.random.default_rng(1))
    ov = s.coverage()
    assert ov.dtype == np.uint8 and ov.max() >= 2  # crowded: some voxels covered twice
    assert np.array_equal(ov > 0, s.labels > 0)
    plain = simulate_scene(scene_cfg(2), np.random.default_rng(1))
    assert plain.layers is None and plain.coverage() is None


def test_spacing_and_params():
    cfg = scene_cfg(3, spacing=[2.0, 0.5, 0.5])
    s = simulate_scene(cfg, np.random.default_rng(0))
    assert s.spacing == (2.0, 0.5, 0.5)
    assert s.params["scene"]["nuclei"]["radius"] == [3.0, 5.0]


def test_errors_are_one_line():
    with pytest.raises(ConfigError, match="SceneConfig"):
        simulate_scene({"kind": "nuclei"}, np.random.default_rng(0))
    with pytest.raises(ConfigError, match="Generator"):
        simulate_scene(scene_cfg(2), 0)
    for bad in [dict(shape=[16]), dict(shape=[16, 16], spacing=[1.0]), dict(kind="bacteria"),
                dict(shape=[16, 16, 16], spacing=[1, 1, 1], nuclei=dict(axis_scale=[(1, 1), (1, 1)]))]:
        with pytest.raises(ConfigError) as e:
            validate(SceneConfig, bad)
        assert "\n" not in str(e.value)
    with pytest.raises(ConfigError, match="empty foreground"):
        simulate_scene(scene_cfg(2, foreground=dict(extent=(0.05, 0.05), margin=25)), np.random.default_rng(0))


def test_presets_simulate_when_shrunk():
    """Every shipped preset's scene section runs (shrunk to a tiny shape for speed)."""
    from cellsynth.config import list_presets

    names = list_presets()
    assert names, "no presets shipped"
    for name in names:
        cfg = load_config(preset=name).scene
        if cfg.foreground.method in ("threshold", "shape_model") or cfg.nuclei.shape == "shape_model":
            continue  # need data files
        small = cfg.model_copy(update={"shape": [min(s, 48) for s in cfg.shape]})
        small = validate(SceneConfig, {**small.model_dump(), "placement": {
            **cfg.placement.model_dump(), "n_points": (2, 4), "n_iter": min(cfg.placement.n_iter, 3)},
            "organelles": {**cfg.organelles.model_dump(), "n_pairs": (1, 2)}})
        try:
            s = simulate_scene(small, np.random.default_rng(0))
        except ConfigError as e:  # tiny shapes may leave no foreground for big margins
            assert "empty foreground" in str(e), name
            continue
        check_invariants(s, small)


@settings(max_examples=12, deadline=None)
@given(ndim=st.sampled_from([2, 3]), kind=st.sampled_from(["nuclei", "organelles"]),
       fg=st.sampled_from(["full", "ellipsoid", "discs", "harmonics"]),
       placement=st.sampled_from(["uniform", "lloyd", "poisson", "layers"]),
       nshape=st.sampled_from(["ellipsoid", "harmonics"]), overlap=st.booleans(),
       mitotic=st.floats(0, 1), seed=st.integers(0, 2**16))
def test_property_scene_invariants(ndim, kind, fg, placement, nshape, overlap, mitotic, seed):
    cfg = scene_cfg(ndim, kind,
                    foreground=dict(method=fg, disc_radius=(8, 14), n_discs=(2, 3)),
                    placement=dict(method=placement, n_iter=2, k=4, layer_thickness=4),
                    nuclei=dict(shape=nshape, allow_overlap=overlap, mitotic_fraction=mitotic, sh_gamma=2.0))
    s = simulate_scene(cfg, np.random.default_rng(seed))
    check_invariants(s, cfg)
    sizes = np.bincount(s.labels.ravel())[1:]
    if kind == "nuclei" and len(sizes):
        r_max = 5 * 1.2 + 3 * 0.5 + 1  # radius × scale + elastic margin
        assert sizes.max() <= (np.pi * r_max ** 2 if ndim == 2 else 4 / 3 * np.pi * r_max ** 3) * 1.5
