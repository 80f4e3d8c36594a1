"""Foreground (specimen) masks: every method in 2D and 3D, inputs and errors."""
from __future__ import annotations

import numpy as np
import pytest
import tifffile

from cellsynth.config import ForegroundConfig, validate
from cellsynth.errors import ConfigError, InputError
from cellsynth.simulate.foreground import fit_into, make_foreground

SHAPES = [(48, 64), (24, 32, 40)]


def fg_cfg(**kw) -> ForegroundConfig:
    return validate(ForegroundConfig, kw)


@pytest.mark.parametrize("shape", SHAPES)
def test_full_is_everything(shape, rng):
    fg = make_foreground(fg_cfg(method="full"), shape, rng)
    assert fg.dtype == bool and fg.shape == shape and fg.all()


@pytest.mark.parametrize("shape", SHAPES)
def test_ellipsoid_within_extent_and_margin(shape, rng):
    cfg = fg_cfg(method="ellipsoid", extent=(0.5, 0.6), margin=0)
    fg = make_foreground(cfg, shape, rng)
    idx = np.argwhere(fg)
    c = (np.asarray(shape) - 1) / 2
    # semi-axes 0.5–0.6 of the half extent: bounding box within 0.6·s/2 (+1 voxel) of the centre
    assert np.all(np.abs(idx - c).max(0) <= 0.6 * np.asarray(shape) / 2 + 1)
    assert np.all(np.abs(idx - c).max(0) >= 0.5 * np.asarray(shape) / 2 - 1.5)
    # convex and centred: the centre voxel is inside, volume close to the analytic one
    assert fg[tuple(np.round(c).astype(int))]


@pytest.mark.parametrize("shape", SHAPES)
def test_margin_keeps_border_free(shape, rng):
    fg = make_foreground(fg_cfg(method="ellipsoid", extent=(1.0, 1.0), margin=3), shape, rng)
    for ax in range(len(shape)):
        assert not np.take(fg, range(3), axis=ax).any()
        assert not np.take(fg, range(shape[ax] - 3, shape[ax]), axis=ax).any()


@pytest.mark.parametrize("shape", SHAPES)
def test_discs_union_is_connected(shape, rng):
    from scipy import ndimage

    cfg = fg_cfg(method="discs", n_discs=(3, 4), disc_radius=(6, 9), margin=0)
    fg = make_foreground(cfg, shape, rng)
    _, n = ndimage.label(fg)
    assert n == 1  # every disc after the first is centred on the union -> they overlap
    assert 0 < fg.sum() <= 4 * (4 / 3 * np.pi * 9 ** 3 if len(shape) == 3 else np.pi * 81)


@pytest.mark.parametrize("shape", SHAPES)
def test_harmonics_blob_varies_with_seed(shape):
    cfg = fg_cfg(method="harmonics", extent=(0.6, 0.8), sh_order=4, sh_gamma=1.0)
    a = make_foreground(cfg, shape, np.random.default_rng(1))
    b = make_foreground(cfg, shape, np.random.default_rng(2))
    a2 = make_foreground(cfg, shape, np.random.default_rng(1))
    assert a.any() and b.any()
    assert np.array_equal(a, a2) and not np.array_equal(a, b)
    c = tuple(s // 2 for s in shape)
    assert a[c]


def test_threshold_otsu_fills_holes(tmp_path, rng):
    img = np.zeros((40, 40), np.uint8)
    img[8:32, 8:32] = 200
    img[16:24, 16:24] = 0  # a hole
    f = tmp_path / "real.tif"
    tifffile.imwrite(f, img)
    fg = make_foreground(fg_cfg(method="threshold", image=str(f)), (80, 80), rng)
    assert fg.shape == (80, 80)
    assert fg[40, 40]  # hole filled
    assert not fg[5, 5] and fg[20, 20]
    # explicit threshold above the bright value -> empty -> error
    with pytest.raises(ConfigError, match="empty foreground"):
        make_foreground(fg_cfg(method="threshold", image=str(f), threshold=250), (80, 80), rng)


def test_threshold_errors(tmp_path, rng):
    with pytest.raises(ConfigError, match="foreground.image"):
        make_foreground(fg_cfg(method="threshold"), (32, 32), rng)
    with pytest.raises(InputError, match="does not exist"):
        make_foreground(fg_cfg(method="threshold", image=str(tmp_path / "nope.tif")), (32, 32), rng)
    f = tmp_path / "vol.tif"
    tifffile.imwrite(f, np.ones((4, 8, 8), np.uint8), photometric="minisblack")
    with pytest.raises(ConfigError, match="3D image"):
        make_foreground(fg_cfg(method="threshold", image=str(f)), (32, 32), rng)
    bad = tmp_path / "bad.tif"
    bad.write_bytes(b"not a tiff")
    with pytest.raises(InputError, match="not a readable TIFF"):
        make_foreground(fg_cfg(method="threshold", image=str(bad)), (32, 32), rng)


def test_empty_foreground_is_a_config_error(rng):
    with pytest.raises(ConfigError, match="empty foreground"):
        make_foreground(fg_cfg(method="ellipsoid", extent=(0.2, 0.2), margin=10), (20, 20), rng)


def test_bad_config_values_are_one_line():
    for bad in [dict(method="blob"), dict(extent=(0.9, 0.1)), dict(n_discs=(5, 2)), dict(colour=1)]:
        with pytest.raises(ConfigError) as e:
            fg_cfg(**bad)
        assert "\n" not in str(e.value)


@pytest.mark.parametrize("ndim", [2, 3])
def test_shape_model_foreground(tmp_path, ndim):
    from cellsynth.simulate import shapes

    rng = np.random.default_rng(3)
    shape = (40, 40) if ndim == 2 else (24, 32, 32)
    for i in range(5):  # example specimens: random ellipses/ellipsoids
        semi = rng.uniform(0.5, 0.8, ndim) * np.asarray(shape) / 2
        inside, ext = shapes.ellipsoid_inside(semi)
        sl, m = shapes.rasterise(shape, (np.asarray(shape) - 1) / 2, inside, ext)
        out = np.zeros(shape, np.uint8)
        out[sl][m] = 1
        tifffile.imwrite(tmp_path / f"m{i}.tif", out)
    cfg = fg_cfg(method="shape_model", examples=str(tmp_path), n_modes=2, n_rays=16 if ndim == 2 else 32)
    fg = make_foreground(cfg, shape, rng)
    assert fg.shape == shape and fg.sum() > 0.05 * np.prod(shape)
    assert not fg[(0,) * ndim]


def test_fit_into_shrinks_large_shapes():
    big = np.ones((50, 30), bool)
    out = fit_into(big, (20, 40), margin=0)
    assert out.shape == (20, 40) and out.any()
    idx = np.argwhere(out)
    assert idx[:, 0].max() - idx[:, 0].min() + 1 <= 20


def test_upsample_linear_matches_zoom():
    from scipy import ndimage

    from cellsynth.simulate.shapes import upsample_linear

    g = np.random.default_rng(0).normal(size=(5, 7, 9)).astype(np.float32)
    ref = ndimage.zoom(g, (13 / 5, 20 / 7, 31 / 9), order=1, grid_mode=False)
    assert np.allclose(upsample_linear(g, (13, 20, 31)), ref, atol=1e-5)
    sub = np.arange(10.0)[::3]  # samples at 0, 3, 6, 9 -> a ramp is reproduced exactly
    assert np.allclose(upsample_linear(sub, (10,), step=3), np.arange(10.0))


def test_large_specimens_use_a_coarse_level_set_that_agrees(monkeypatch):
    from scipy import ndimage

    import cellsynth.simulate.foreground as F
    from cellsynth.simulate import shapes

    co = shapes.sh_coefficients(3, 4, 2.0, np.random.default_rng(1))
    shape, semi = (32, 80, 80), np.array([13.0, 34.0, 34.0])
    exact = F._blob(shape, semi, co)
    monkeypatch.setattr(F, "_EXACT_MAX", 2 ** 13)
    coarse = F._blob(shape, semi, co)
    diff = exact ^ coarse
    assert diff.sum() < 0.02 * exact.sum()  # ~1 % at 4× coarsening
    surface = exact & ~ndimage.binary_erosion(exact) | coarse & ~ndimage.binary_erosion(coarse)
    assert not (diff & ~ndimage.binary_dilation(surface)).any()  # only surface voxels flip


def test_coarse_boundary_distance_agrees(monkeypatch):
    import cellsynth.simulate.placement as P

    fg = make_foreground(fg_cfg(method="ellipsoid", extent=(0.8, 0.8)), (32, 96, 96), np.random.default_rng(0))
    exact = P.boundary_distance(fg, 12)
    monkeypatch.setattr(P, "_EXACT_EDT_MAX", 2 ** 10)
    coarse = P.boundary_distance(fg, 12)
    err = np.abs(exact - coarse)[fg]
    assert err.max() <= 3 and err.mean() < 1.0  # f = 3: well under the 12-px layer
