"""Every setting does something: walk every field of every preset's config, change it within its
range, and check that the output (scene, sketch/physics/diffusion image) changes.

A key that changes nothing is a bug, unless it is on one of the explicit lists below:
metadata-only keys, performance-only keys (asserted NOT to change the output), or keys pending
another change. Keys that act only in one mode get that mode from ``CONTEXT`` first (e.g.
``scene.placement.k`` acts for ``placement.method = lloyd``), so the walk covers every mode.
Scenes are shrunk (``TINY``) so the walk takes seconds.
"""
from __future__ import annotations

import json
import typing
from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest
from pydantic import BaseModel

from cellsynth.config import Config, config_to_dict, deep_merge, list_presets, preset_dict, validate
from cellsynth.errors import ConfigError, InputError
from cellsynth.io import write_tiff
from cellsynth.render import make_renderer
from cellsynth.simulate import simulate_scene

# Keys that describe a preset and change no output (written to manifests as given).
METADATA_ONLY = {
    "name",  # preset name, recorded in the manifest
    "description",  # one-line description for `simulate --list-presets`
    "reference",  # the papers the preset follows
}
# Keys that select hardware or parallelism: they must NOT change the numbers (checked below).
LEARNED = ("diffusion", "cgan", "cyclegan")  # renderers with a model folder
PERFORMANCE_ONLY = {
    *(f"render.{r}.device" for r in LEARNED),  # auto/cpu/cuda; on this CPU-only test machine auto == cpu
    *(f"render.{r}.threads" for r in LEARNED),  # torch CPU threads
    "render.diffusion.batch_size",  # tiles per forward pass
}
# `renderer` picks the renderer of `cellsynth generate` when --renderer is not given; it changes
# no renderer's output, so it is tested on its own (test_renderer_key_selects_the_renderer).
SELECTS_RENDERER = {"renderer"}
# Keys that act on `cellsynth fit`'s output, not on a render (tested in tests/test_fit_effects.py).
FIT_ONLY = {"render.physics.fit_effects"}
# Keys that act on the segmenters the benchmark and adapt train, not on a render
# (tested in tests/test_segment_backends.py::test_preset_segmenter_section_reaches_the_unet).
SEGMENTER_ONLY = {"segmenter"}
# Pending: keys that act only after another change lands (none today).
PENDING: set[str] = set()
# Keys that act only in 3D: walked on the 3D presets only.
ONLY_3D = {
    "render.physics.attenuation_um",  # attenuation along z
    "render.physics.refractive_index",  # enters the axial PSF width only (and bounds na)
    "scene.nuclei.sh_decay",  # 2D harmonics are a Fourier series: one index, nothing to choose
}
# Keys that act only in 2D: walked on the 2D presets only.
ONLY_2D = {
    "render.physics.thickness",  # projected thickness of a dome nucleus; a 3D scene has the real one
}

DIFFUSION_PRESET = "nuclei2d-dsb"  # the preset of the shipped diffusion model

TINY_2D = {"shape": [48, 48], "spacing": [0.5, 0.5]}
TINY_3D = {"shape": [12, 32, 32], "spacing": [1.0, 0.5, 0.5]}
TINY = {  # small objects and counts so every preset's scene fits the tiny shape
    "placement": {"n_points": [3, 5], "min_distance": 6.0, "layer_thickness": 4.0, "n_iter": 2, "k": 3},
    "nuclei": {"radius": [4.0, 6.0], "radius_reference_count": None},
    "foreground": {"disc_radius": [10.0, 16.0], "n_discs": [2, 3], "extent": [0.8, 0.9], "margin": 1.0},
    "organelles": {"n_pairs": [2, 3], "golgi_radius": [1.5, 2.5], "golgi_offset": [-2.0, 2.0],
                   "nucleus_axes": [[5.0, 7.0], [3.0, 4.0], [3.0, 4.0]]},
}


@lru_cache(maxsize=1)
def _data(root: str) -> dict[str, str]:
    """Files for the data-driven modes: two foreground images, two example-mask folders."""
    rng = np.random.default_rng(7)
    out = {}
    for ndim in (2, 3):
        shape = (48, 48) if ndim == 2 else (12, 32, 32)
        g = np.indices(shape).astype(float)
        c = np.array(shape, float)[(slice(None),) + (None,) * ndim] / 2
        for k, r in enumerate((0.7, 0.5)):  # a bright specimen fading outwards: thresholds pick its size
            img = 200 * np.clip(1 - np.sqrt((((g - c) / c) ** 2).sum(0)) / (2 * r), 0, 1) + rng.normal(10, 2, shape)
            p = Path(root) / f"fg{ndim}d_{k}.tif"
            write_tiff(p, img.astype(np.float32))
            out[f"fg{ndim}_{k}"] = str(p)
        for k, (lo, hi) in enumerate(((3, 5), (4, 8))):
            d = Path(root) / f"ex{ndim}d_{k}"
            for i in range(3):
                lab = np.zeros(shape, np.uint16)
                for j in range(1, 4):
                    ctr = rng.integers(8, np.array(shape) - 8) if ndim == 2 else \
                        np.r_[6, rng.integers(8, 24, 2)]
                    rad = rng.uniform(lo, hi, ndim)
                    if ndim == 3:
                        rad[0] = min(rad[0], 4)
                    m = ((((g - ctr[(slice(None),) + (None,) * ndim]) / rad[(slice(None),) + (None,) * ndim])
                          ** 2).sum(0) <= 1)
                    lab[m & (lab == 0)] = j
                write_tiff(d / f"m{i}.tif", lab)
            out[f"ex{ndim}_{k}"] = str(d)
            d = Path(root) / f"fgex{ndim}d_{k}"  # one whole specimen per file
            for i in range(5):
                rad = c[(slice(None),) + (0,) * ndim] * rng.uniform(0.5 + 0.2 * k, 0.7 + 0.2 * k, ndim)
                m = ((((g - c) / rad[(slice(None),) + (None,) * ndim]) ** 2).sum(0) <= 1)
                write_tiff(d / f"m{i}.tif", m.astype(np.uint8))
            out[f"fgex{ndim}_{k}"] = str(d)
    return out


def _context(key: str, ndim: int, data: dict) -> dict:
    """Overrides under which ``key`` acts (its mode), as a nested dict."""
    fg = {"method": "threshold", "image": data[f"fg{ndim}_0"]}
    fg_model = {"method": "shape_model", "examples": data[f"fgex{ndim}_0"], "n_modes": 2, "n_rays": 16}
    nuc_model = {"shape": "shape_model", "examples": data[f"ex{ndim}_0"], "n_modes": 2, "n_rays": 16}
    table = {
        "scene.foreground.extent": {"scene": {"foreground": {"method": "ellipsoid"}}},
        "scene.foreground.margin": {"scene": {"foreground": {"method": "ellipsoid", "extent": [0.95, 1.0]}}},
        "scene.foreground.image": {"scene": {"foreground": fg}},
        "scene.foreground.threshold": {"scene": {"foreground": fg}},
        "scene.foreground.n_discs": {"scene": {"foreground": {"method": "discs"}}},
        "scene.foreground.disc_radius": {"scene": {"foreground": {"method": "discs"}}},
        "scene.foreground.sh_order": {"scene": {"foreground": {"method": "harmonics"}}},
        "scene.foreground.sh_gamma": {"scene": {"foreground": {"method": "harmonics"}}},
        "scene.foreground.examples": {"scene": {"foreground": fg_model}},
        "scene.foreground.n_modes": {"scene": {"foreground": fg_model}},
        "scene.foreground.n_rays": {"scene": {"foreground": fg_model}},
        "scene.placement.n_iter": {"scene": {"placement": {"method": "lloyd"}}},
        "scene.placement.k": {"scene": {"placement": {"method": "lloyd"}}},
        "scene.placement.min_distance": {"scene": {"placement": {"method": "poisson", "n_points": [20, 30]}}},
        "scene.placement.layer_thickness": {"scene": {"placement": {"method": "layers"}}},
        "scene.placement.max_layers": {"scene": {"placement": {"method": "layers", "layer_thickness": 2.0,
                                                               "min_distance": 5.0, "n_points": [300, 300]}}},
        "scene.nuclei.sh_order": {"scene": {"nuclei": {"shape": "harmonics"}}},
        "scene.nuclei.sh_gamma": {"scene": {"nuclei": {"shape": "harmonics"}}},
        "scene.nuclei.sh_decay": {"scene": {"nuclei": {"shape": "harmonics", "sh_gamma": 0.5}}},
        "scene.nuclei.examples": {"scene": {"nuclei": nuc_model}},
        "scene.nuclei.n_modes": {"scene": {"nuclei": nuc_model}},
        "scene.nuclei.n_rays": {"scene": {"nuclei": nuc_model}},
        "scene.nuclei.mitotic_squash": {"scene": {"nuclei": {"mitotic_fraction": 1.0}}},
        "scene.nuclei.elastic_grid": {"scene": {"nuclei": {"elastic": 2.0}}},
        "render.sketch.decay_strength": {"render": {"sketch": {"decay": "center"}}},
        "render.sketch.nucleoli": {"scene": {"kind": "nuclei"}, "render": {"sketch": {"membrane_classes": []}}},
        "render.sketch.nucleolus_radius": {"scene": {"kind": "nuclei"},
                                           "render": {"sketch": {"nucleoli": [1, 2], "membrane_classes": []}}},
        "render.sketch.nucleolus_intensity": {"scene": {"kind": "nuclei"},
                                              "render": {"sketch": {"nucleoli": [1, 2], "membrane_classes": []}}},
        "render.physics.texture_scale_um": {"render": {"physics": {"texture": 0.3}}},
        "render.diffusion.overlap": {"render": {"diffusion": {"tile": [24, 24]}}},
        "render.sketch.sigma_by_spacing": {"scene": {"spacing": [1.0, 0.5] if ndim == 2 else [1.0, 0.5, 0.5]}},
        "scene.membranes.connected": {"scene": {"membranes": {"gamma": [0.2, 5.0]}, "foreground": {"method": "full"},
                                                "placement": {"method": "uniform", "n_points": [80, 100]}}},
        # the membrane width acts where the renderers draw cells as walls
        "scene.membranes.wall_thickness": {"render": {"sketch": {"membrane_classes": ["cell"]},
                                                      "physics": {"membrane_classes": ["cell"]}}},
        "render.diffusion.background": {"render": {"diffusion": {"match_intensities": True}}},
        "render.cgan.overlap": {"render": {"cgan": {"tile": [16, 16]}}},
        "render.cgan.crop": {"render": {"cgan": {"tile": [16, 16]}}},
        "render.cyclegan.overlap": {"render": {"cyclegan": {"tile": [16, 16]}}},
        "render.cyclegan.crop": {"render": {"cyclegan": {"tile": [16, 16]}}},
        "render.diffusion.foreground": {"render": {"diffusion": {"match_intensities": True}}},
        "scene.conditions": {"scene": {"kind": "nuclei"}},
        "scene.placement.touching": {"scene": {"placement": {"method": "poisson", "n_points": [6, 8]}}},
        "scene.placement.contact_distance": {"scene": {"placement": {"method": "poisson", "n_points": [6, 8],
                                                                     "touching": 1.0}}},
        "scene.nuclei.max_occlusion": {"scene": {"nuclei": {"allow_overlap": False},
                                                 "placement": {"method": "poisson", "n_points": [12, 14],
                                                               "min_distance": 0.0}}},
        "render.physics.haze_defocus_um": {"render": {"physics": {"haze": 3.0}}},
        "render.physics.cytoplasm_um": {"render": {"physics": {"cytoplasm": 0.2}}},
        "render.physics.scatter_um": {"render": {"physics": {"scatter": 0.3}}},
        "render.physics.debris_radius_um": {"render": {"physics": {"debris": 20.0}}},
        "render.physics.debris_brightness": {"render": {"physics": {"debris": 20.0}}},
        "render.physics.background_scale_um": {"render": {"physics": {"background_texture": 0.5,
                                                                      "background_photons": 20.0,
                                                                      "background_scale_um": 1.0}}},
    }
    ctx = dict(table.get(key, {}))
    section = key.split(".")[1] if key.startswith("scene.") else None
    kinds = {"nuclei": "nuclei", "membranes": "membranes", "organelles": "organelles"}
    if section in kinds:
        ctx = deep_merge({"scene": {"kind": kinds[section]}}, ctx)
    if key.startswith("scene.placement"):  # small nuclei: every placed point becomes an object
        ctx = deep_merge({"scene": {"kind": "nuclei", "nuclei": {"radius": [1.5, 2.0]}}}, ctx)
    if key.startswith(("render.sketch.membrane", "render.physics.membrane")):
        ctx = deep_merge({"scene": {"kind": "membranes"}}, ctx)
    if key in ("render.sketch.overlap_darkening",):
        ctx = deep_merge({"scene": {"kind": "nuclei", "nuclei": {"allow_overlap": True},
                                    "placement": {"n_points": [6, 8], "min_distance": 0.0}}}, ctx)
    if key in ("render.sketch.class_intensity", "render.physics.class_brightness"):
        ctx = deep_merge({"scene": {"kind": "organelles"}}, ctx)
    return ctx


def _explicit(key: str, value, ndim: int, data: dict) -> list | None:
    """Candidate values for keys whose type alone does not say how to change them."""
    if key == "scene.shape":
        return [[s + 8 for s in value]]
    table = {
        "scene.foreground.image": [data[f"fg{ndim}_1"]],
        "scene.foreground.threshold": [50.0, 150.0],
        "scene.foreground.examples": [data[f"fgex{ndim}_1"]],
        "scene.nuclei.examples": [data[f"ex{ndim}_1"]],
        "scene.nuclei.class_name": ["cell", "nucleus"],
        "scene.nuclei.radius_reference_count": [2, 20],
        "scene.placement.max_layers": [1],
        "render.sketch.class_intensity": [{"golgi": 2.0}, {"nucleus": 0.3}],
        "render.physics.class_brightness": [{"golgi": 3.0}, {"nucleus": 0.3}],
        "render.sketch.membrane_classes": [["cell"], ["nucleus"], []],
        "render.physics.membrane_classes": [["cell"], ["nucleus"], []],
        "render.diffusion.model": [data.get("diffusion_1")],
        "render.cgan.model": [data.get("cgan_1")],
        "render.cyclegan.model": [data.get("cyclegan_1")],
        "render.cgan.alpha": [10.0, 1000.0],
        "render.cgan.beta": [10.0, 1000.0],
        "render.diffusion.tile": [[32, 32], [16, 16]],
        "render.diffusion.background": [-0.5, 0.5],
        "render.diffusion.foreground": [[0.0, 0.5], [0.5, 0.9]],
        "scene.conditions": [[{"density": 4e-3 if ndim == 2 else 5e-4, "radius": [2.0, 3.0]}]],
        "render.physics.debris": [20.0],
        "render.physics.haze": [3.0],
    }
    if key.split(".")[-1] in ("tile", "overlap", "crop") and key.split(".")[1] in ("cgan", "cyclegan"):
        return {"tile": [[16, 16], [24, 24]], "overlap": [[4, 4], [8, 8]], "crop": [[2, 2], [4, 4]]}[key.split(".")[-1]]
    if key.startswith("render.") and key.endswith(".threads"):
        return [2]
    if key.startswith("render.") and key.endswith(".device"):
        return ["cpu"]
    return table.get(key)


def _candidates(value, annotation) -> list:
    """Changed values of the same type, in order of preference (validated by the caller)."""
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        return [a for a in typing.get_args(annotation) if a != value]
    if isinstance(value, bool):
        return [not value]
    if isinstance(value, int):
        return [value + 1, value * 2, value - 1]
    if isinstance(value, float):
        return [value * 1.5, value * 0.5, value + 0.25, value - 0.25] if value else [0.5, 0.1, 2.0]
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, (int, float)) for v in value):
        ints = all(isinstance(v, int) for v in value)
        out = []
        for f in (1.5, 0.5, 2.0):
            out.append([round(v * f) if ints else v * f for v in value])
        out.append([v + 1 for v in value])
        if len(value) == 2:  # widen: a range scaled as a whole can act like the same range
            out.append([round(value[0] * 0.5) if ints else value[0] * 0.5,
                        round(value[1] * 1.5) if ints else value[1] * 1.5])
        return [c for c in out if list(c) != list(value)]
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, (list, tuple)) for v in value):
        return [[[x * f for x in r] for r in value] for f in (1.3, 0.7)]
    return []


def _leaves(model: type[BaseModel], prefix: str = ""):
    for name, f in model.model_fields.items():
        ann = f.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            yield from _leaves(ann, f"{prefix}{name}.")
        else:
            yield f"{prefix}{name}", ann


def _get(d: dict, key: str):
    for p in key.split("."):
        d = d[p]
    return d


def _nested(key: str, value) -> dict:
    out: dict = value
    for p in reversed(key.split(".")):
        out = {p: out}
    return out


def _tiny_preset(name: str, models: dict[str, Path]) -> dict:
    data = config_to_dict(validate(Config, preset_dict(name)))
    ndim = len(data["scene"]["shape"])
    scene = deep_merge(data["scene"], TINY_2D if ndim == 2 else TINY_3D)
    scene = deep_merge(scene, TINY)
    scene["nuclei"]["axis_scale"] = scene["nuclei"]["axis_scale"][-ndim:] if ndim == 2 else \
        (scene["nuclei"]["axis_scale"] + [[0.8, 1.2]] * 3)[:3]
    data["scene"] = scene
    data["render"]["diffusion"].update(steps=3, t_start=20, threads=1, device="auto", model=str(models["diffusion"]))
    for k in LEARNED[1:]:
        data["render"][k].update(threads=1, device="auto", model=str(models[k]))
    return data


def _outputs(cfg: Config, renderers: tuple[str, ...]) -> list:
    """Everything a user gets from ``cfg``: the scene and each renderer's image (seed 0)."""
    scene = simulate_scene(cfg.scene, np.random.default_rng(0))
    out = [scene.labels, scene.foreground, sorted(scene.classes.items()),
           None if scene.layers is None else scene.layers]
    for r in renderers:
        out.append(make_renderer(r, cfg.render).render(scene, np.random.default_rng(1)))
    return out


def _same(a: list, b: list, tol: float = 0.0) -> bool:
    for x, y in zip(a, b):
        if isinstance(x, np.ndarray) or isinstance(y, np.ndarray):
            if x is None or y is None or x.shape != y.shape:
                return False
            if not (np.array_equal(x, y) if tol == 0 else np.allclose(x, y, rtol=tol, atol=tol)):
                return False
        elif x != y:
            return False
    return True


def _renderers_for(key: str, diffusion: bool) -> tuple[str, ...]:
    if key.startswith("render.sketch."):
        return ("sketch",) + (("diffusion",) if diffusion else ())  # the diffusion renderer draws a sketch
    if key.startswith("render.physics."):
        return ("physics",)
    for r in LEARNED:
        if key.startswith(f"render.{r}."):
            return (r,)
    return ("sketch", "physics")  # scene keys: the scene itself, and the renderers that read it


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory) -> dict[str, tuple[Path, Path]]:
    """Two tiny 2D model folders per learned renderer (a few training steps, different seeds, CPU)."""
    from cellsynth.generative import diffusion as D
    from cellsynth.generative.cgan import CGANTrainConfig, train_cgan
    from cellsynth.generative.cyclegan import CycleGANTrainConfig, train_cyclegan

    tmp = tmp_path_factory.mktemp("models")
    rng = np.random.default_rng(1)
    for i in range(3):
        lab = np.zeros((32, 32), np.uint16)
        lab[4 + i:14, 4:14], lab[18:28, 16 + i:28] = 1, 2
        write_tiff(tmp / "masks" / f"im{i}.tif", lab)
        write_tiff(tmp / "imgs" / f"im{i}.tif", ((lab > 0) * 150 + rng.random((32, 32)) * 50).astype(np.uint8))
    gan = dict(d_channels=4, d_layers=2, patch_size=[16, 16], steps=2, checkpoint_every=2, batch_size=2)
    out: dict = {}
    for seed in (0, 1):
        cfg = D.DiffusionTrainConfig(channels=[8, 16], batch_size=2, checkpoint_every=2, seed=seed, threads=1,
                                     patch_size=[16, 16], T=100)
        out.setdefault("diffusion", []).append(
            D.train_diffusion(tmp / "imgs", tmp / f"diffusion{seed}", cfg, steps=2, progress=False))
        out.setdefault("cgan", []).append(train_cgan(
            tmp / "imgs", tmp / f"cgan{seed}", CGANTrainConfig(channels=[4, 8], seed=seed, **gan),
            masks=tmp / "masks", progress=False, device="cpu"))
        out.setdefault("cyclegan", []).append(train_cyclegan(
            tmp / "imgs", tmp / f"cyclegan{seed}", CycleGANTrainConfig(channels=4, n_blocks=1, pool_size=2,
                                                                       seed=seed, **gan),
            masks=tmp / "masks", progress=False, device="cpu"))
    return {k: tuple(v) for k, v in out.items()}


def _walk(preset: str, root: Path, models: dict[str, tuple[Path, Path]]) -> tuple[list[str], list[str]]:
    data = _data(str(root))
    data.update({f"{k}_1": str(v[1]) for k, v in models.items()})
    base = _tiny_preset(preset, {k: v[0] for k, v in models.items()})
    ndim = len(base["scene"]["shape"])
    # the test models are 2D; presets that do not set a learned renderer's section share its defaults,
    # walked once
    diffusion = ndim == 2 and (preset == DIFFUSION_PRESET or
                               any(r in preset_dict(preset).get("render", {}) for r in LEARNED))
    dead, changed_perf, acting_pending = [], [], []
    baselines: dict = {}
    for key, ann in _leaves(Config):
        if key in METADATA_ONLY | SELECTS_RENDERER | FIT_ONLY | SEGMENTER_ONLY:
            continue
        if (key in ONLY_3D and ndim == 2) or (key in ONLY_2D and ndim == 3):
            continue
        if key.startswith(tuple(f"render.{r}." for r in LEARNED)) and not diffusion:
            continue
        renderers = _renderers_for(key, diffusion)
        ctx_data = deep_merge(base, _context(key, ndim, data))
        try:
            ctx_cfg = validate(Config, ctx_data)
            memo = (json.dumps(ctx_data, sort_keys=True), renderers)
            if memo not in baselines:
                baselines[memo] = _outputs(ctx_cfg, renderers)
            before = baselines[memo]
        except ConfigError as e:  # a context must work: else the walk would not test the key
            raise AssertionError(f"{preset}: context of '{key}' fails: {e}") from None
        value = _get(config_to_dict(ctx_cfg), key)
        cands = _explicit(key, value, ndim, data) or _candidates(value, ann)
        assert cands, f"{preset}: no way to change '{key}' = {value!r}; add it to _explicit"
        acted, tried = False, 0
        for c in cands:
            try:
                cfg = validate(Config, deep_merge(ctx_data, _nested(key, c)))
            except ConfigError:
                continue  # out of range: try the next candidate
            tried += 1
            try:
                after = _outputs(cfg, renderers)
            except (ConfigError, InputError):
                continue  # e.g. empty foreground at the tiny shape, more modes than examples
            # performance-only keys may change float rounding (e.g. torch thread count), not results
            if not _same(before, after, tol=1e-4 if key in PERFORMANCE_ONLY else 0.0):
                acted = True
                break
        assert tried, f"{preset}: no valid change of '{key}' = {value!r} among {cands}"
        if key in PERFORMANCE_ONLY:
            if acted:
                changed_perf.append(key)
        elif key in PENDING:
            if acted:
                acting_pending.append(key)
        elif not acted:
            dead.append(key)
    return dead, changed_perf, acting_pending


@pytest.mark.parametrize("preset", sorted(list_presets()))
def test_every_key_changes_the_output(preset, tmp_path_factory, tiny_models):
    root = tmp_path_factory.mktemp("walkdata")
    dead, changed_perf, acting_pending = _walk(preset, root, tiny_models)
    assert not dead, f"{preset}: these keys change nothing: {dead}"
    assert not changed_perf, f"{preset}: performance-only keys changed the output: {changed_perf}"
    assert not acting_pending, f"{preset}: pending keys act now, remove them from PENDING: {acting_pending}"


def test_lists_name_real_keys():
    keys = {k for k, _ in _leaves(Config)}
    for group in (METADATA_ONLY, PERFORMANCE_ONLY, SELECTS_RENDERER, FIT_ONLY, SEGMENTER_ONLY, PENDING, ONLY_3D,
                  ONLY_2D):
        assert group <= keys, group - keys


@pytest.mark.parametrize("renderer", ["sketch", "physics"])
def test_renderer_key_selects_the_renderer(tmp_path, renderer):
    """`renderer` in the config is the renderer `cellsynth generate` uses without --renderer."""
    from cellsynth.cli import main
    from cellsynth.dataset import load_manifest

    out = tmp_path / renderer
    assert main(["generate", "--preset", "nuclei2d-dsb", "--n", "1", "--out", str(out), "--no-progress",
                 "--set", "scene.shape=[32,32]", "--set", f"renderer={renderer}"]) == 0
    m = load_manifest(out)
    assert m["settings"]["renderer"] == renderer and m["samples"][0]["render_params"]["renderer"] == renderer


@pytest.mark.parametrize("shape", [[40, 40], [10, 24, 24]])
def test_manifest_records_the_parameters_actually_used(tmp_path, shape):
    """Rebuilding the config from a manifest alone reproduces the dataset byte for byte, and each
    sample's record holds the scene and render parameters it was made with."""
    from cellsynth.cli import main
    from cellsynth.dataset import generate_dataset, load_manifest

    preset = "nuclei2d-dsb" if len(shape) == 2 else "nuclei3d-celegans"
    out = tmp_path / "a"
    assert main(["generate", "--preset", preset, "--renderer", "sketch", "--n", "2", "--seed", "5",
                 "--out", str(out), "--no-progress", "--set", f"scene.shape={shape}",
                 "--set", "scene.placement.n_points=[2,4]", "--set", "scene.nuclei.radius=[3,5]",
                 "--set", "render.sketch.sigma=1.7", "--set", "render.sketch.nucleoli=[1,2]"]) == 0
    m = load_manifest(out)
    cfg = validate(Config, m["settings"]["config"])
    assert cfg.render.sketch.sigma == 1.7 and list(cfg.scene.shape) == shape
    for rec in m["samples"]:
        assert rec["scene_params"]["scene"] == config_to_dict(cfg.scene)
        assert rec["render_params"]["sigma"] == 1.7 and rec["render_params"]["nucleoli"] == [1, 2]
        assert rec["shape"] == shape
    again = generate_dataset(cfg, m["settings"]["renderer"], len(m["samples"]), m["settings"]["seed"],
                             tmp_path / "b", progress=False)
    for sub in ("images", "masks"):
        for f in sorted((out / sub).glob("*.tif")):
            assert f.read_bytes() == (again / sub / f.name).read_bytes()
