"""`cellsynth fit` recovers the physics renderer's widefield effect strengths (cellsynth.fit_effects).

Images rendered with KNOWN strengths (one effect at a time, the others off) are measured the
way `cellsynth fit` measures real ones (classical detection, photon transfer, effect_stats);
the median over three images must come back within the stated tolerance, in 2D and 3D.
"""
from __future__ import annotations

import numpy as np
import pytest

from cellsynth import fit
from cellsynth import fit_effects as fe
from cellsynth.config import Config, PhysicsConfig, validate
from cellsynth.io import write_tiff
from cellsynth.render.physics import PhysicsRenderer, photon_image
from cellsynth.scene import Scene
from cellsynth.simulate import simulate_scene
from shapes import ball_labels

# camera and optics of the synthetic images: a background well above the offset (60 photons)
CAMERA = dict(photons=(300.0, 300.0), background_photons=60.0, gain=2.0, offset=100.0, read_noise_e=2.0,
              autofluorescence=0.0, na=0.75, texture=0.0, background_scale_um=3.0)
GEOMETRY = {2: dict(shape=(128, 128), n=30, r=7), 3: dict(shape=(24, 64, 64), n=16, r=7)}
# effect -> (strength rendered, tolerance on the recovered median of 3 images)
EFFECTS = {"texture": (0.3, 0.06), "brightness_sd": (0.3, 0.1), "illumination": (0.3, 0.06),
           "background_texture": (0.3, 0.1)}


def _balls(shape, n, r, rng, spacing):
    lab = ball_labels(shape, r, n, rng)
    n = int(lab.max())
    return Scene(lab, np.ones(shape, bool), spacing, {i: "nucleus" for i in range(1, n + 1)})


def _measure(tmp_path, ndim, strengths, n_images=3):
    g = GEOMETRY[ndim]
    spacing = (0.5,) * ndim
    cfg = PhysicsConfig(**{**CAMERA, **strengths})
    paths = []
    for seed in range(n_images):
        rng = np.random.default_rng(seed)
        img = PhysicsRenderer(cfg).render(_balls(g["shape"], g["n"], g["r"], rng, spacing), rng)
        paths.append(write_tiff(tmp_path / f"{ndim}d_{seed}.tif", img))
    return fit.measure(paths, physics=cfg, spacing=spacing, progress=False)


@pytest.mark.parametrize("ndim", [2, 3])
def test_effects_off_measure_near_zero(tmp_path, ndim):
    s = _measure(tmp_path, ndim, {})
    for k in EFFECTS:
        assert s[f"{k}_n"] >= 2, k  # a background 60 photons over the offset allows every estimate
        assert s[f"{k}_p50"] <= 0.05, (k, s[f"{k}_p50"])


@pytest.mark.parametrize("ndim", [2, 3])
@pytest.mark.parametrize("effect", list(EFFECTS))
def test_effect_strength_recovered(tmp_path, ndim, effect):
    value, tol = EFFECTS[effect]
    s = _measure(tmp_path, ndim, {effect: value})
    assert s[f"{effect}_n"] >= 2
    assert s[f"{effect}_p50"] == pytest.approx(value, abs=tol), s[f"{effect}_p50"]


@pytest.mark.parametrize("ndim", [2, 3])
def test_fit_effects_key_puts_the_measurements_into_the_records(tmp_path, ndim):
    """`render.physics.fit_effects` decides whether the records carry the strengths; the summary always has them."""
    g = GEOMETRY[ndim]
    spacing = [0.5] * ndim
    cfg = PhysicsConfig(**{**CAMERA, "texture": 0.3, "brightness_sd": 0.3})
    d = tmp_path / "images"
    for seed in range(2):
        rng = np.random.default_rng(seed)
        write_tiff(d / f"im{seed}.tif", PhysicsRenderer(cfg).render(
            _balls(g["shape"], g["n"], g["r"], rng, tuple(spacing)), rng))
    # brightness_sd 0: the renderer without the effect, so no record key of its own (RECORD_KEYS)
    base = {"scene": {"shape": list(g["shape"]), "spacing": spacing},
            "render": {"physics": {**CAMERA, "photons": [300.0, 300.0], "brightness_sd": 0.0}}}
    cfg_path = tmp_path / "base.yaml"
    on_path = tmp_path / "on.yaml"
    import yaml
    cfg_path.write_text(yaml.safe_dump(base))
    on_path.write_text(yaml.safe_dump({**base, "render": {"physics": {**base["render"]["physics"],
                                                                       "fit_effects": True}}}))
    preset = "nuclei2d-dsb" if ndim == 2 else "nuclei3d-celegans"
    off, s_off, _ = fit.fit_config(d, preset, cfg_path, progress=False)
    on, s_on, cfg_on = fit.fit_config(d, preset, on_path, progress=False)
    assert s_off["texture_p50"] == pytest.approx(s_on["texture_p50"])  # measured either way
    assert not any(k in rec for rec in off["scene"]["conditions"] for k in fit.EFFECT_KEYS)
    recs = on["scene"]["conditions"]
    assert all(rec["texture"] == pytest.approx(0.3, abs=0.08) for rec in recs)
    assert all(rec["brightness_sd"] > 0.1 for rec in recs)  # per image, from 6–30 objects: imprecise
    # the spread is the log-normal heterogeneity now, not also U(5–95 %)
    assert all(rec["photons"][0] == rec["photons"][1] for rec in recs)
    assert cfg_on.render.physics.texture == pytest.approx(s_on["texture_p50"], abs=1e-4)
    validate(Config, on)


@pytest.mark.parametrize("shape", [(96, 96), (24, 64, 64)])
def test_record_effects_drive_the_renderer(shape):
    """A scene's record sets the effect strengths of the physics render (as it sets its photons)."""
    ndim = len(shape)
    rec = {"density": (8e-4 if ndim == 2 else 4e-5), "radius": [6.0, 7.0], "photons": [300.0, 300.0],
           "background_photons": 60.0}
    scfg = {"shape": list(shape), "spacing": [0.5] * ndim, "placement": {"method": "poisson", "min_distance": 10.0},
            "nuclei": {"radius": [6.0, 7.0], "axis_scale": [[1.0, 1.0]] * ndim}}
    phys = PhysicsConfig(**CAMERA)

    def render(**eff):
        cfg = validate(Config, {"scene": {**scfg, "conditions": [{**rec, **eff}]}})
        sc = simulate_scene(cfg.scene, np.random.default_rng(0))
        return sc, photon_image(sc, _conditioned(phys, sc), np.random.default_rng(1))

    sc, plain = render()
    inside, outside = sc.labels > 0, sc.labels == 0
    for key, value in (("texture", 0.4), ("brightness_sd", 0.5), ("illumination", 0.5), ("background_texture", 0.5)):
        _, img = render(**{key: value})
        assert not np.array_equal(img, plain), key
    _, tex = render(texture=0.4)
    assert tex[inside].std() > plain[inside].std() + 10
    _, bgt = render(background_texture=0.5)
    assert bgt[outside].std() > plain[outside].std() + 5
    _, ill = render(illumination=0.5)
    assert ill[outside].min() < 0.8 * plain[outside].min()  # the background is vignetted too


def _conditioned(cfg, scene):
    from cellsynth.render._common import conditioned
    return conditioned(cfg, scene, ("photons", "background_photons", *fit.EFFECT_KEYS))


@pytest.mark.parametrize("shape", [(128, 128), (24, 64, 64)])
def test_fitted_effects_make_no_visible_unlabelled_objects(shape):
    """Brightness heterogeneity, texture, vignetting and background texture change labelled objects and the
    background only: nothing the detector finds lies outside the masks (haze, unlabelled, would)."""
    ndim = len(shape)
    g = GEOMETRY[ndim]
    strong = dict(brightness_sd=0.6, texture=0.4, illumination=0.5, background_texture=0.5)
    found = {}
    for name, eff in (("fitted", strong), ("haze", dict(haze=2.0, haze_defocus_um=(1.0, 2.0)))):
        cfg = PhysicsConfig(**{**CAMERA, **eff})
        n = 0
        for seed in range(2):
            rng = np.random.default_rng(seed)
            sc = _balls(shape, g["n"], g["r"], rng, (0.5,) * ndim)
            n += fe.unlabelled_detections(PhysicsRenderer(cfg).render(sc, rng), sc.labels)
        found[name] = n
    assert found["fitted"] == 0
    assert found["haze"] > 0  # the check sees unlabelled objects where there are some


@pytest.mark.parametrize("ndim", [2, 3])
def test_cytoplasm_measured_and_put_into_the_records_when_the_renderer_has_it(tmp_path, ndim):
    """Unlabelled light next to the objects: ~0 without it, near the rendered strength with it (the ring
    the fit reads is not wholly inside every cell body, so a little under); records carry it when
    ``render.physics.cytoplasm`` > 0."""
    cyto = {"cytoplasm": 0.15, "cytoplasm_um": (1.0, 3.0)}
    assert _measure(tmp_path / "off", ndim, {})["cytoplasm_p50"] <= 0.01
    s = _measure(tmp_path / "on", ndim, cyto)
    assert s["cytoplasm_n"] == 3 and 0.08 <= s["cytoplasm_p50"] <= 0.15, s["cytoplasm_p50"]
    g = GEOMETRY[ndim]
    spacing = [0.5] * ndim
    rng = np.random.default_rng(0)
    d = tmp_path / "images"
    for seed in range(2):
        write_tiff(d / f"im{seed}.tif", PhysicsRenderer(PhysicsConfig(**CAMERA, **cyto)).render(
            _balls(g["shape"], g["n"], g["r"], rng, tuple(spacing)), rng))
    import yaml
    preset = "nuclei2d-dsb" if ndim == 2 else "nuclei3d-celegans"
    recs = {}
    for on in (False, True):
        phys = {**CAMERA, "photons": [300.0, 300.0], "psf_scale": 1.0, "wavelength_nm": 520.0,
                "cytoplasm": 0.1 if on else 0.0, "cytoplasm_um": [1.0, 3.0]}  # the optics rendered with
        path = tmp_path / f"base{on}.yaml"
        path.write_text(yaml.safe_dump({"scene": {"shape": list(g["shape"]), "spacing": spacing},
                                        "render": {"physics": phys}}))
        recs[on] = fit.fit_config(d, preset, path, progress=False)[0]["scene"]["conditions"]
    assert not any("cytoplasm" in r for r in recs[False])
    assert all(0.06 <= r["cytoplasm"] <= 0.15 for r in recs[True]), [r["cytoplasm"] for r in recs[True]]


@pytest.mark.parametrize("w", [0.0, 0.3, 0.6])
def test_dome_thickness_recovered_and_put_into_the_records_when_the_renderer_has_it(tmp_path, w):
    """2D nuclei darker towards the rim: `cellsynth fit` (detected objects) reads back the rendered
    dome weight; records carry it when ``render.physics.thickness`` > 0."""
    s = _measure(tmp_path / "m", 2, {"thickness": w} if w else {})
    assert s["thickness_n"] == 3 and abs(s["thickness_p50"] - w) <= 0.08, s["thickness_p50"]
    if w == 0.0:
        return
    import yaml
    g = GEOMETRY[2]
    rng = np.random.default_rng(0)
    d = tmp_path / "images"
    for seed in range(2):
        write_tiff(d / f"im{seed}.tif", PhysicsRenderer(PhysicsConfig(**CAMERA, thickness=w)).render(
            _balls(g["shape"], g["n"], g["r"], rng, (0.5, 0.5)), rng))
    recs = {}
    for on in (False, True):
        phys = {**CAMERA, "photons": [300.0, 300.0], "psf_scale": 1.0, "wavelength_nm": 520.0, "cytoplasm": 0.0,
                "thickness": 0.5 if on else 0.0}
        path = tmp_path / f"base{on}.yaml"
        path.write_text(yaml.safe_dump({"scene": {"shape": list(g["shape"]), "spacing": [0.5, 0.5]},
                                        "render": {"physics": phys}}))
        recs[on] = fit.fit_config(d, "nuclei2d-dsb", path, progress=False)[0]["scene"]["conditions"]
    assert not any("thickness" in r for r in recs[False])
    assert all(abs(r["thickness"] - w) <= 0.12 for r in recs[True]), [r["thickness"] for r in recs[True]]


def test_dome_thickness_is_2d_only(tmp_path):
    s = _measure(tmp_path, 3, {})
    assert s["thickness_n"] == 0 and s["thickness_p50"] is None


@pytest.mark.parametrize("ndim", [2, 3])
def test_brightness_sd_put_into_the_records_when_the_renderer_has_it(tmp_path, ndim):
    """Per-object brightness heterogeneity: each record carries its image's log-brightness s.d. and the
    objects' median photons (the spread is the log-normal, not also U(5–95 %)) when
    ``render.physics.brightness_sd`` > 0, whatever ``fit_effects``; with 0 the records keep U(5–95 %)."""
    import yaml
    g = GEOMETRY[ndim]
    spacing = [0.5] * ndim
    d = tmp_path / "images"
    for seed in range(2):
        rng = np.random.default_rng(seed)
        write_tiff(d / f"im{seed}.tif", PhysicsRenderer(PhysicsConfig(**CAMERA, brightness_sd=0.4)).render(
            _balls(g["shape"], g["n"], g["r"], rng, tuple(spacing)), rng))
    preset = "nuclei2d-dsb" if ndim == 2 else "nuclei3d-celegans"
    recs = {}
    for sd in (0.0, 0.2):
        phys = {**CAMERA, "photons": [300.0, 300.0], "psf_scale": 1.0, "wavelength_nm": 520.0, "cytoplasm": 0.0,
                "thickness": 0.0, "brightness_sd": sd}
        path = tmp_path / f"base{sd}.yaml"
        path.write_text(yaml.safe_dump({"scene": {"shape": list(g["shape"]), "spacing": spacing},
                                        "render": {"physics": phys}}))
        recs[sd] = fit.fit_config(d, preset, path, progress=False)[0]["scene"]["conditions"]
    assert len(recs[0.0]) == len(recs[0.2]) == 2
    assert not any("brightness_sd" in r for r in recs[0.0])
    assert all(r["photons"][0] < r["photons"][1] for r in recs[0.0])
    # one image's 6–30 objects: the rendered 0.4 comes back roughly (the recovery over images is
    # test_effect_strength_recovered's)
    assert all(0.15 <= r["brightness_sd"] <= 0.65 for r in recs[0.2]), [r["brightness_sd"] for r in recs[0.2]]
    for off, on in zip(recs[0.0], recs[0.2]):
        assert on["photons"][0] == on["photons"][1]
        assert off["photons"][0] <= on["photons"][0] <= off["photons"][1]
