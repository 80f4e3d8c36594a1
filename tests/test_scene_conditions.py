"""Per-image joint scene records (scene.conditions), touching placement, pressed nuclei (issue 11)."""
from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from scipy import ndimage as ndi

from cellsynth import fit
from cellsynth.config import Config, SceneConfig, validate
from cellsynth.errors import ConfigError
from cellsynth.render.physics import PhysicsRenderer
from cellsynth.render.sketch import sketch as render_sketch
from cellsynth.simulate import simulate_scene
from cellsynth.simulate.placement import place_points


def _scene_cfg(ndim, **kw):
    shape = [64, 64] if ndim == 2 else [24, 48, 48]
    d = {"shape": shape, "spacing": [1.0] * ndim, "placement": {"method": "poisson"},
         "nuclei": {"radius": [4.0, 5.0], "axis_scale": [[1.0, 1.0]] * 3, "elastic": 0.0}}
    for k, v in kw.items():
        d.setdefault(k, {})
        if isinstance(v, dict):
            d[k].update(v)
        else:
            d[k] = v
    return validate(SceneConfig, d)


@pytest.mark.parametrize("ndim", [2, 3])
def test_touching_places_contacts(ndim):
    fg = np.ones((64, 64) if ndim == 2 else (24, 48, 48), bool)
    cfg = _scene_cfg(ndim).placement
    far = place_points(cfg.model_copy(update={"min_distance": 12.0, "n_points": (12, 12)}), fg,
                       np.random.default_rng(0))
    near = place_points(cfg.model_copy(update={"min_distance": 12.0, "n_points": (12, 12), "touching": 1.0,
                                               "contact_distance": 8.0}), fg, np.random.default_rng(0))
    nn = lambda p: np.sort(np.linalg.norm(p[:, None] - p[None], axis=-1), axis=1)[:, 1]  # noqa: E731
    assert nn(far).min() >= 12.0 - 1e-6
    assert len(near) >= 8
    d = nn(near)
    assert d.min() >= 0.85 * 8.0 - 1e-6 and np.median(d) <= 1.05 * 8.0 + 1e-6  # in contact, not merged


@pytest.mark.parametrize("ndim", [2, 3])
def test_max_occlusion_keeps_pressed_nuclei_apart(ndim):
    base = _scene_cfg(ndim, placement={"n_points": [14, 14], "touching": 1.0, "contact_distance": 8.0,
                                       "min_distance": 12.0})
    skip = simulate_scene(base, np.random.default_rng(1))
    press = simulate_scene(base.model_copy(update={"nuclei": base.nuclei.model_copy(
        update={"max_occlusion": 0.3})}), np.random.default_rng(1))
    # pressed nuclei are kept (more objects) and touch: fewer connected components than objects
    assert press.n_objects > skip.n_objects
    assert ndi.label(press.labels > 0)[1] < press.n_objects
    assert fit.touching_fraction(press.labels) > max(0.3, fit.touching_fraction(skip.labels))


@pytest.mark.parametrize("ndim", [2, 3])
def test_conditions_draw_joint_records(ndim):
    dense = {"density": 40.0 / (64 * 64 if ndim == 2 else 24 * 48 * 48), "radius": [2.5, 3.0],
             "nn_distance": 5.0, "touching": 0.0, "intensity": [0.9, 0.95], "background": 0.2}
    sparse = {"density": 3.0 / (64 * 64 if ndim == 2 else 24 * 48 * 48), "radius": [8.0, 9.0],
              "nn_distance": 20.0, "touching": 0.0, "intensity": [0.3, 0.35], "background": 0.0}
    cfg = _scene_cfg(ndim, conditions=[dense, sparse])
    seen = {}
    for seed in range(12):
        sc = simulate_scene(cfg, np.random.default_rng(seed))
        rec = sc.params["condition"]
        vol = np.bincount(sc.labels.ravel())[1:]
        r_eq = np.median((vol / np.pi) ** 0.5 if ndim == 2 else (3 * vol / (4 * np.pi)) ** (1 / 3))
        kind = "dense" if rec["radius"][0] < 5 else "sparse"
        seen.setdefault(kind, []).append((sc.n_objects, r_eq))
        # the renderers follow the scene's record: its intensity range and background
        img = render_sketch(sc, {"sigma": 0.0}, np.random.default_rng(seed))
        assert img[sc.labels > 0].min() >= rec["intensity"][0] - 1e-6
        assert img[sc.labels > 0].max() <= rec["intensity"][1] + 1e-6
        assert np.allclose(img[sc.labels == 0], rec["background"])
    assert set(seen) == {"dense", "sparse"}  # both kinds of field occur
    # count and size come together: many small nuclei or few large ones, never mixed
    assert min(n for n, _ in seen["dense"]) > 3 * max(n for n, _ in seen["sparse"])
    assert max(r for _, r in seen["dense"]) < min(r for _, r in seen["sparse"])


def test_physics_follows_record_photons():
    rec = {"density": 10 / 4096, "radius": [5.0, 6.0], "photons": [2000.0, 2000.0], "background_photons": 0.0}
    cfg = _scene_cfg(2, conditions=[rec])
    sc = simulate_scene(cfg, np.random.default_rng(0))
    r = PhysicsRenderer({"photons": [10.0, 10.0], "background_photons": 0.0, "psf_scale": 0.0, "gain": 1.0,
                         "offset": 0.0, "read_noise_e": 0.0, "texture": 0.0, "autofluorescence": 0.0,
                         "quantum_efficiency": 1.0})
    img = r.render(sc, np.random.default_rng(0)).astype(float)
    assert img[sc.labels > 0].mean() == pytest.approx(2000, rel=0.05)  # the record's, not the config's 10


def test_conditions_validation():
    with pytest.raises(ConfigError):
        validate(Config, {"scene": {"conditions": [{"density": 0.0, "radius": [1, 2]}]}})
    with pytest.raises(ConfigError):
        validate(Config, {"scene": {"conditions": [{"density": 1e-3, "radius": [3, 2]}]}})
    with pytest.raises(ConfigError):
        validate(Config, {"scene": {"kind": "membranes", "conditions": [{"density": 1e-3, "radius": [1, 2]}]}})


def test_fit_keeps_per_image_records(rng):
    """Two kinds of real image (dense small / sparse large) give two kinds of record."""
    from skimage.draw import disk

    per = []
    for n, r, spacing in ((30, 3, 11), (4, 10, 30)):
        lab = np.zeros((96, 96), np.uint16)
        k = 0
        for y in range(r + 2, 96 - r - 2, spacing):
            for x in range(r + 2, 96 - r - 2, spacing):
                if k < n:
                    k += 1
                    lab[disk((y, x), r, shape=lab.shape)] = k
        img = rng.poisson(np.where(lab > 0, 200.0, 10.0)).astype(np.uint16)
        per.append(fit.object_stats(lab, img))
        per[-1]["ptc"] = fit.photon_transfer(per[-1]["mean_adu"], per[-1]["var_adu"])
    recs = [fit.image_condition(p) for p in per]
    assert recs[0]["density"] > 5 * recs[1]["density"]
    assert recs[0]["radius"][1] < recs[1]["radius"][0]
    s = fit.summarize(per, Counter({(96, 96): 2}))
    ov = fit.overlay_from_stats(s, validate(Config, {}))
    assert len(ov["scene"]["conditions"]) == 2 and ov["scene"]["nuclei"]["max_occlusion"] > 0
    validate(Config, ov)  # the overlay is a valid config
    assert "conditions" not in fit.overlay_from_stats(s, validate(Config, {}), per_image=False)["scene"]
    # an image with one object makes no record (no spacing, no intensity spread, no photon transfer)
    one = np.zeros((96, 96), np.uint16)
    one[disk((48, 48), 6, shape=one.shape)] = 1
    single = fit.object_stats(one, rng.poisson(np.where(one > 0, 200.0, 10.0)).astype(np.uint16))
    assert fit.image_condition(single) is None
    s = fit.summarize(per + [single], Counter({(96, 96): 3}))
    assert len(s["conditions"]) == 2 and s["n_objects_total"] == 30 + 4 + 1
