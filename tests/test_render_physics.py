"""Physics renderer: camera statistics, PSF width, attenuation, determinism (2D and 3D)."""
from __future__ import annotations

import numpy as np
import pytest

from cellsynth.config import PhysicsConfig, validate
from cellsynth.errors import ConfigError, InputError
from cellsynth.render import make_renderer
from cellsynth.render.physics import PhysicsRenderer, photon_image, psf_sigma_px, psf_sigma_um, smooth_field
from cellsynth.scene import Scene

# no texture, no autofluorescence, no background: the photon image is exactly the emission ⊛ PSF
CLEAN = dict(texture=0.0, autofluorescence=0.0, background_photons=0.0)


def empty(shape, spacing=None):
    return Scene(np.zeros(shape, np.uint16), np.zeros(shape, bool), spacing or (1.0,) * len(shape))


def filled(shape, spacing=None):
    return Scene(np.ones(shape, np.uint16), np.ones(shape, bool), spacing or (1.0,) * len(shape),
                 {1: "nucleus"})


def balls(shape, centres, radius, spacing):
    grids = np.ogrid[tuple(slice(0, s) for s in shape)]
    labels = np.zeros(shape, np.uint16)
    for i, c in enumerate(centres, 1):
        labels[sum((g - ci) ** 2 for g, ci in zip(grids, c)) <= radius ** 2] = i
    return Scene(labels, np.ones(shape, bool), spacing, {i: "nucleus" for i in range(1, len(centres) + 1)})


@pytest.mark.parametrize("shape", [(48, 48), (12, 32, 32)])
def test_dtype_and_background_level(shape):
    cfg = PhysicsConfig(background_photons=50, quantum_efficiency=0.8, gain=2.0, offset=100,
                        read_noise_e=3.0)
    img = PhysicsRenderer(cfg).render(empty(shape), np.random.default_rng(0))
    assert img.dtype == np.uint16 and img.shape == shape
    expected = 100 + 2.0 * 0.8 * 50
    sd_of_mean = np.sqrt(4 * (0.8 * 50 + 9)) / np.sqrt(img.size)
    assert abs(img.mean() - expected) < 5 * sd_of_mean


@pytest.mark.parametrize("photons", [5.0, 100.0, 2000.0])
def test_noise_variance_follows_poisson_plus_read(photons):
    # flat field: one object covering the image, no texture/background
    cfg = PhysicsConfig(photons=(photons, photons), quantum_efficiency=0.7, gain=1.5, offset=200,
                        read_noise_e=4.0, **CLEAN)
    img = PhysicsRenderer(cfg).render(filled((96, 96)), np.random.default_rng(1)).astype(float)
    e = 0.7 * photons
    assert img.mean() == pytest.approx(200 + 1.5 * e, rel=0.01, abs=0.5)
    var = 1.5 ** 2 * (e + 4.0 ** 2) + 1 / 12  # + ADU rounding
    assert img.var() == pytest.approx(var, rel=0.1)


def test_clipped_to_uint16_range():
    cfg = PhysicsConfig(photons=(1e6, 1e6), gain=10.0, **CLEAN)
    img = PhysicsRenderer(cfg).render(filled((16, 16)), np.random.default_rng(0))
    assert img.max() == 65535


def _second_moments(img):
    img = img / img.sum()
    out = []
    for ax in range(img.ndim):
        prof = img.sum(axis=tuple(a for a in range(img.ndim) if a != ax))
        x = np.arange(len(prof))
        mu = (x * prof).sum()
        out.append(((x - mu) ** 2 * prof).sum())
    return np.sqrt(out)


@pytest.mark.parametrize("microscope", ["widefield", "confocal"])
def test_psf_width_matches_formula_and_grows_as_na_drops(microscope):
    shape, spacing = (33, 33, 33), (0.2, 0.05, 0.05)
    labels = np.zeros(shape, np.uint16)
    labels[16, 16, 16] = 1  # a point source
    sc = Scene(labels, labels > 0, spacing, {1: "nucleus"})
    widths = {}
    for na in (1.2, 0.6):
        cfg = PhysicsConfig(microscope=microscope, na=na, refractive_index=1.33, wavelength_nm=520, **CLEAN)
        img = photon_image(sc, cfg, np.random.default_rng(0))
        widths[na] = _second_moments(img)
        np.testing.assert_allclose(widths[na], psf_sigma_px(cfg, spacing), rtol=0.05)
    assert np.all(widths[0.6] > widths[1.2])
    wf = psf_sigma_um(PhysicsConfig(na=1.2))
    assert wf[0] == pytest.approx(0.21 * 0.52 / 1.2) and wf[1] == pytest.approx(0.66 * 0.52 * 1.33 / 1.44)


def test_2d_psf_is_lateral_only():
    cfg = PhysicsConfig(na=0.8, refractive_index=1.0)
    s = psf_sigma_px(cfg, (0.1, 0.2))
    assert s[0] == pytest.approx(0.21 * 0.52 / 0.8 / 0.1) and s[1] == pytest.approx(s[0] / 2)


def test_attenuation_decreases_with_z():
    shape, spacing = (10, 24, 24), (2.0, 0.5, 0.5)
    cfg = PhysicsConfig(photons=(1000, 1000), attenuation_um=10.0, psf_scale=0.0, **CLEAN)
    photons = photon_image(filled(shape, spacing), cfg, np.random.default_rng(0))
    prof = photons.mean(axis=(1, 2))
    np.testing.assert_allclose(prof, 1000 * np.exp(-np.arange(10) * 2.0 / 10.0), rtol=1e-4)
    img = PhysicsRenderer(cfg.model_copy(update={"psf_scale": 1.0})).render(
        filled(shape, spacing), np.random.default_rng(0))
    assert np.all(np.diff(img.mean(axis=(1, 2))) < 0)


def test_texture_and_autofluorescence():
    sc = balls((64, 64), [(20, 20), (44, 44)], 12, (0.25, 0.25))
    base = dict(photons=(500, 500), background_photons=0.0, psf_scale=0.0)
    flat = photon_image(sc, PhysicsConfig(texture=0.0, autofluorescence=0.0, **base), np.random.default_rng(0))
    assert np.unique(flat[sc.labels > 0]).tolist() == [500.0]
    tex = photon_image(sc, PhysicsConfig(texture=0.2, autofluorescence=0.0, **base), np.random.default_rng(0))
    rel = tex[sc.labels > 0].std() / tex[sc.labels > 0].mean()
    assert 0.1 < rel < 0.3
    af = photon_image(sc, PhysicsConfig(texture=0.0, autofluorescence=0.1, **base), np.random.default_rng(0))
    assert np.allclose(af[sc.labels == 0], 50.0)  # 0.1 × mean object brightness, inside the specimen


@pytest.mark.parametrize("sigma", [(1.0, 2.0), (0.5, 1.5, 3.0)])
def test_smooth_field_unit_variance(sigma):
    shape = (64, 64) if len(sigma) == 2 else (32, 48, 48)
    f = smooth_field(shape, sigma, np.random.default_rng(0))
    assert f.dtype == np.float32
    assert abs(f.mean()) < 0.1 and f.std() == pytest.approx(1.0, rel=0.15)


def test_membrane_class_emits_from_walls():
    labels = np.zeros((32, 32), np.uint16)
    labels[4:28, 4:16] = 1
    labels[4:28, 16:28] = 2
    sc = Scene(labels, labels > 0, (1.0, 1.0), {1: "cell", 2: "cell"})
    ph = photon_image(sc, PhysicsConfig(psf_scale=0.0, **CLEAN), np.random.default_rng(0))
    assert ph[16, 10] == 0 and ph[16, 15] > 0 and ph[16, 16] > 0


@pytest.mark.parametrize("shape", [(32, 32), (8, 24, 24)])
def test_determinism_and_seeds_differ(shape):
    sc = balls(shape, [tuple(s // 2 for s in shape)], 5, (1.0,) * len(shape))
    r = PhysicsRenderer(PhysicsConfig(attenuation_um=20.0))
    a = r.render(sc, np.random.default_rng(3))
    b = r.render(sc, np.random.default_rng(3))
    c = r.render(sc, np.random.default_rng(4))
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    # objects are brighter than the background
    assert a[sc.labels > 0].mean() > a[sc.labels == 0].mean() + 50


def test_interface_and_errors():
    r = make_renderer("physics")
    assert r.name == "physics" and isinstance(r, PhysicsRenderer)
    d = r.describe()
    assert d["renderer"] == "physics" and d["psf_sigma_lateral_um"] > 0
    with pytest.raises(ConfigError, match="refractive_index"):
        validate(PhysicsConfig, {"na": 1.4, "refractive_index": 1.33})
    for bad in ({"gain": float("inf")}, {"photons": [10, float("nan")]}, {"photons": [400, 100]},
                {"read_noise_e": -1}):
        with pytest.raises(ConfigError):
            PhysicsRenderer(bad)
    with pytest.raises(InputError, match="rng"):
        r.render(empty((8, 8)), 0)


# ----------------------------------------------------------------- realism effects (issue 11)
@pytest.mark.parametrize("shape", [(64, 64), (16, 48, 48)])
def test_realism_effects_each_act(shape):
    sp = (1.0,) * len(shape)
    c = [s // 2 for s in shape]
    sc = balls(shape, [c, [c[0]] * (len(shape) - 2) + [12, 12]], 5, sp)
    base = dict(CLEAN, photons=(100.0, 100.0), psf_scale=0.0)
    ref = photon_image(sc, PhysicsConfig(**base), np.random.default_rng(0))
    out = sc.labels == 0
    assert np.all(ref[out] == 0)
    # haze: out-of-focus nuclei light the background smoothly (no sharp edge)
    hz = photon_image(sc, PhysicsConfig(**base, haze=3.0), np.random.default_rng(0))
    assert hz[out].sum() > 0 and np.allclose(hz[~out], ref[~out], atol=hz[out].max() + 1e-3)
    # debris: small bright particles somewhere in the field
    db = photon_image(sc, PhysicsConfig(**base, debris=50.0), np.random.default_rng(0))
    assert db[out].max() > 0
    # background texture: not one flat level
    flat = photon_image(sc, PhysicsConfig(**{**base, "background_photons": 20.0}), np.random.default_rng(0))
    tex = photon_image(sc, PhysicsConfig(**{**base, "background_photons": 20.0}, background_texture=0.5),
                       np.random.default_rng(0))
    assert np.ptp(flat[out]) == 0 and tex[out].std() > 2.0
    assert tex.min() >= 0
    # brightness heterogeneity: the two objects differ
    br = photon_image(sc, PhysicsConfig(**base, brightness_sd=0.5), np.random.default_rng(0))
    assert abs(br[sc.labels == 1].mean() - br[sc.labels == 2].mean()) > 1.0


def test_illumination_darkens_the_edges():
    sc = filled((64, 64))
    img = photon_image(sc, PhysicsConfig(**CLEAN, photons=(100.0, 100.0), psf_scale=0.0, illumination=0.5),
                       np.random.default_rng(0))
    assert img.max() <= 100.0 + 1e-3 and img.min() >= 0
    corners = [img[0, 0], img[0, -1], img[-1, 0], img[-1, -1]]
    assert min(corners) < 0.8 * img.max()
    sc3 = filled((6, 32, 32))
    img3 = photon_image(sc3, PhysicsConfig(**CLEAN, photons=(100.0, 100.0), psf_scale=0.0, illumination=0.5),
                        np.random.default_rng(0))
    assert np.allclose(img3[0], img3[-1])  # lateral vignetting, the same in every slice


def test_defocus_blur_grows_with_distance():
    from cellsynth.render.physics import defocus_sigma_um
    cfg = PhysicsConfig(na=0.75, refractive_index=1.33)
    s = defocus_sigma_um(cfg, [0.0, 2.0, 8.0])
    assert s[0] == pytest.approx(psf_sigma_um(cfg)[0]) and s[0] < s[1] < s[2]


@pytest.mark.parametrize("shape,spacing", [((64, 64), (0.5, 0.5)), ((16, 48, 48), (1.0, 0.5, 0.5))])
def test_cytoplasm_lights_a_dim_unlabelled_rim_near_each_object(shape, spacing):
    c = [s // 2 for s in shape]
    sc = balls(shape, [c], 5, spacing)
    base = dict(CLEAN, photons=(100.0, 100.0), psf_scale=0.0)
    ref = photon_image(sc, PhysicsConfig(**base), np.random.default_rng(0))
    cy = photon_image(sc, PhysicsConfig(**base, cytoplasm=0.2, cytoplasm_um=(1.0, 1.0)),
                      np.random.default_rng(0))
    from scipy import ndimage as ndi
    d = ndi.distance_transform_edt(sc.labels == 0, sampling=spacing)  # µm from the object's edge
    near, far = (d > 0) & (d <= 0.45), d > 1.55  # inside the shortest reach / beyond the longest
    assert np.allclose(cy[near], 20.0) and np.all(cy[far] == 0)  # cytoplasm × the object's photons
    assert np.array_equal(cy[sc.labels > 0], ref[sc.labels > 0])  # the object itself unchanged


def test_a_scenes_record_sets_its_cytoplasm():
    """`cellsynth fit` measures the cytoplasm per image; the scene drawn from that record renders with it."""
    sc = balls((64, 64), [[32, 32]], 5, (0.5, 0.5))
    cfg = dict(CLEAN, photons=(100.0, 100.0), psf_scale=0.0, cytoplasm_um=(1.0, 1.0), read_noise_e=0.0, offset=0.0)
    r = PhysicsRenderer(cfg)
    out = (sc.labels == 0) & (r.render(sc, np.random.default_rng(0)) > 0)
    assert not out.any()  # no cytoplasm in the config
    sc.params = {"condition": {"cytoplasm": 0.5}}
    assert (r.render(sc, np.random.default_rng(0))[sc.labels == 0] > 0).sum() > 20


def test_a_scenes_record_sets_its_thickness():
    """`cellsynth fit` measures each 2D image's dome; the scene drawn from that record renders with it:
    a flat disc in the config, a rim darker than the centre with the record's thickness."""
    sc = balls((64, 64), [[32, 32]], 10, (0.5, 0.5))
    cfg = dict(CLEAN, photons=(100.0, 100.0), psf_scale=0.0, read_noise_e=0.0, offset=0.0)
    r = PhysicsRenderer(cfg)
    rim = (sc.labels > 0) & (np.hypot(*np.ogrid[-32:32, -32:32]) >= 9)
    centre = np.hypot(*np.ogrid[-32:32, -32:32]) <= 3
    flat = r.render(sc, np.random.default_rng(0)).astype(float)
    sc.params = {"condition": {"thickness": 0.8}}
    dome = r.render(sc, np.random.default_rng(0)).astype(float)
    assert flat[rim].mean() > 0.9 * flat[centre].mean()
    assert dome[rim].mean() < 0.6 * dome[centre].mean()


@pytest.mark.parametrize("shape,spacing", [((64, 64), (0.5, 0.5)), ((24, 48, 48), (1.0, 0.5, 0.5))])
def test_scatter_moves_a_fraction_of_the_light_into_wide_wings(shape, spacing):
    """The PSF's wings: the light is conserved, a fraction of it lands far past the PSF core."""
    c = [s // 2 for s in shape]
    sc = balls(shape, [c], 4, spacing)
    base = dict(CLEAN, photons=(100.0, 100.0), na=1.0, wavelength_nm=500.0)
    core = photon_image(sc, PhysicsConfig(**base), np.random.default_rng(0))
    wings = photon_image(sc, PhysicsConfig(**base, scatter=0.3, scatter_um=2.0), np.random.default_rng(0))
    from scipy import ndimage as ndi
    d = ndi.distance_transform_edt(sc.labels == 0, sampling=spacing)
    far = (d > 2.0) & (d < 4.0)  # µm past the edge: beyond the PSF core (σ 0.1 µm), within the wings
    assert core.sum() == pytest.approx(wings.sum(), rel=2e-3)
    assert core[far].max() < 1e-3 and wings[far].mean() > 0.1
    assert wings[tuple(c)] < core[tuple(c)]
