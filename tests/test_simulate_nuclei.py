"""Nuclei: shapes, sizes, rotation/deformation, mitosis, overlap rules, 2D and 3D."""
from __future__ import annotations

import numpy as np
import pytest
import tifffile
from hypothesis import given, settings
from hypothesis import strategies as st

from cellsynth.config import NucleiConfig, validate
from cellsynth.errors import ConfigError
from cellsynth.simulate import shapes
from cellsynth.simulate.nuclei import make_nuclei


def nc(**kw) -> NucleiConfig:
    return validate(NucleiConfig, kw)


def ball_volume(r, ndim):
    return np.pi * r ** 2 if ndim == 2 else 4 / 3 * np.pi * r ** 3


def grid_points(shape, step):
    ax = [np.arange(step / 2, s, step) for s in shape]
    return np.stack(np.meshgrid(*ax, indexing="ij"), -1).reshape(-1, len(shape))


@pytest.mark.parametrize("shape", [(64, 64), (32, 48, 48)])
def test_ellipsoid_sizes_within_range(shape, rng):
    fg = np.ones(shape, bool)
    pts = grid_points(shape, 16)
    cfg = nc(radius=(4, 6), axis_scale=[(0.8, 1.2)] * 3, elastic=0)
    labels, overlap = make_nuclei(fg, pts, cfg, rng)
    assert overlap is None and labels.dtype == np.uint16
    ids = np.unique(labels)[1:]
    assert np.array_equal(ids, np.arange(1, len(pts) + 1))  # well separated: all placed
    sizes = np.bincount(labels.ravel())[1:]
    nd = len(shape)
    assert sizes.max() <= ball_volume(6 * 1.2, nd) * 1.1
    assert sizes.min() >= ball_volume(4 * 0.8, nd) * 0.7
    # each nucleus sits on its centre
    for i, p in enumerate(pts, 1):
        assert labels[tuple(np.rint(p).astype(int))] == i


def test_anisotropic_axes_without_rotation(rng):
    fg = np.ones((40, 40), bool)
    cfg = nc(radius=(5, 5), axis_scale=[(2.0, 2.0), (1.0, 1.0)], rotate=False, elastic=0)
    labels, _ = make_nuclei(fg, np.array([[20.0, 20.0]]), cfg, rng)
    idx = np.argwhere(labels == 1)
    ext = idx.max(0) - idx.min(0) + 1
    assert ext[0] == 21 and ext[1] == 11  # semi-axes 10 (Y) and 5 (X)


def test_rotation_changes_orientation():
    fg = np.ones((40, 40), bool)
    cfg = nc(radius=(5, 5), axis_scale=[(2.0, 2.0), (1.0, 1.0)], rotate=True, elastic=0)
    exts = set()
    for s in range(6):
        labels, _ = make_nuclei(fg, np.array([[20.0, 20.0]]), cfg, np.random.default_rng(s))
        idx = np.argwhere(labels == 1)
        exts.add(tuple(idx.max(0) - idx.min(0)))
    assert len(exts) > 2


@pytest.mark.parametrize("shape", [(48, 48), (24, 32, 32)])
def test_elastic_deformation_roughens_but_keeps_size(shape):
    fg = np.ones(shape, bool)
    c = np.array([[s / 2 for s in shape]])
    base = dict(radius=(8, 8), axis_scale=[(1, 1)] * 3, rotate=False)
    smooth, _ = make_nuclei(fg, c, nc(elastic=0, **base), np.random.default_rng(0))
    bent, _ = make_nuclei(fg, c, nc(elastic=2.0, elastic_grid=4, **base), np.random.default_rng(0))
    assert not np.array_equal(smooth, bent)
    assert abs(int(bent.sum()) - int(smooth.sum())) < 0.35 * smooth.sum()


@pytest.mark.parametrize("shape", [(48, 48), (24, 32, 32)])
def test_harmonics_shapes_follow_gamma(shape):
    fg = np.ones(shape, bool)
    c = np.array([[s / 2 for s in shape]])
    base = dict(shape="harmonics", radius=(8, 8), axis_scale=[(1, 1)] * 3, rotate=False, elastic=0, sh_order=5)
    ref, _ = make_nuclei(fg, c, nc(elastic=0, radius=(8, 8), axis_scale=[(1, 1)] * 3, rotate=False),
                         np.random.default_rng(0))
    diffs = {}
    for g in (8.0, 0.5):
        d = []
        for s in range(4):
            lab, _ = make_nuclei(fg, c, nc(sh_gamma=g, **base), np.random.default_rng(s))
            d.append(np.logical_xor(lab > 0, ref > 0).sum() / ref.sum())
        diffs[g] = np.mean(d)
    assert diffs[8.0] < 0.1  # γ = 8: nearly the sphere of radius r
    assert diffs[0.5] > 2 * diffs[8.0]  # γ = 0.5: clearly irregular


def test_sh_radius_matches_direct_evaluation():
    from scipy.special import sph_harm_y

    rng = np.random.default_rng(1)
    co = shapes.sh_coefficients(3, 4, 0.7, rng)
    v = rng.normal(size=(3, 200))
    n = np.sqrt((v ** 2).sum(0))
    th, ph = np.arccos(v[0] / n), np.mod(np.arctan2(v[1], v[2]), 2 * np.pi)
    ref = np.zeros(200)
    for l in range(5):
        for m in range(-l, l + 1):
            y = sph_harm_y(l, abs(m), th, ph) * np.sqrt(4 * np.pi)
            b = y.real if m == 0 else np.sqrt(2) * (y.real if m > 0 else y.imag)
            ref += co[l, m + 4] * b
    assert np.abs(shapes.sh_radius(co, v) - ref).max() < 0.02 * np.abs(ref).max()
    # the l = 0 term alone is the unit sphere
    assert np.allclose(shapes.sh_radius(_only_c00(4), v), 1.0)


def _only_c00(order):
    c = np.zeros((order + 1, 2 * order + 1))
    c[0, order] = 1
    return c


def test_elastic_field_matches_zoom():
    from scipy import ndimage

    f = shapes.elastic_field((9, 13), 1.0, 4, np.random.default_rng(2))
    coarse = np.random.default_rng(2).normal(0, 1, size=(2, 4, 4))
    ref = ndimage.zoom(coarse[0], (9 / 4, 13 / 4), order=3, mode="nearest", grid_mode=False)
    assert f.shape == (2, 9, 13) and np.allclose(f[0], ref)


@pytest.mark.parametrize("ndim", [2, 3])
def test_mitotic_nuclei_are_squashed(ndim):
    shape = (48, 48) if ndim == 2 else (32, 40, 40)
    fg = np.ones(shape, bool)
    pts = grid_points(shape, 16)
    base = dict(radius=(5, 5), axis_scale=[(1, 1)] * 3, elastic=0)
    normal, _ = make_nuclei(fg, pts, nc(**base), np.random.default_rng(0))
    mit, _ = make_nuclei(fg, pts, nc(mitotic_fraction=1.0, mitotic_squash=0.5, **base), np.random.default_rng(0))
    ratio = mit.astype(bool).sum() / normal.astype(bool).sum()
    assert 0.15 < ratio < 0.6  # 3D: two axes × 0.5 -> 1/4; 2D: one axis -> 1/2


@pytest.mark.parametrize("shape", [(40, 40), (20, 28, 28)])
def test_overlap_forbidden_skips_and_allowed_counts(shape, rng):
    fg = np.ones(shape, bool)
    pts = np.array([[s / 2 for s in shape], [s / 2 + 3 for s in shape], [4.0] * len(shape)])
    cfg = dict(radius=(5, 5), axis_scale=[(1, 1)] * 3, elastic=0, rotate=False)
    lab, ov = make_nuclei(fg, pts, nc(**cfg), np.random.default_rng(0))
    assert ov is None and lab.max() == 2  # the second nucleus would overlap the first: skipped
    lab, layers = make_nuclei(fg, pts, nc(allow_overlap=True, **cfg), np.random.default_rng(0))
    ov = (layers > 0).sum(0)
    assert lab.max() == 3 and layers.dtype == lab.dtype and len(layers) == 2
    assert ov.max() == 2 and np.array_equal(ov > 0, lab > 0)
    # one owner per voxel: the first nucleus keeps the shared voxels; the second is whole in layers
    shared = ov == 2
    assert np.all(lab[shared] == 1)
    assert (layers == 2).any(0)[shared].all() and (layers == 2).sum() > (lab == 2).sum()


def test_objects_clipped_to_foreground(rng):
    fg = np.zeros((40, 40), bool)
    fg[:, :20] = True
    lab, _ = make_nuclei(fg, np.array([[20.0, 18.0]]), nc(radius=(6, 6), elastic=1), rng)
    assert lab.max() == 1 and not lab[:, 20:].any()


def test_points_near_the_border_are_clipped(rng):
    fg = np.ones((30, 30), bool)
    lab, _ = make_nuclei(fg, np.array([[0.0, 0.0], [29.0, 15.0]]), nc(radius=(5, 5)), rng)
    assert lab.max() == 2


@pytest.mark.parametrize("ndim", [2, 3])
def test_shape_model_nuclei(tmp_path, ndim):
    rng = np.random.default_rng(4)
    shape = (48, 48) if ndim == 2 else (24, 32, 32)
    lab = np.zeros(shape, np.uint16)
    for i, p in enumerate(grid_points(shape, 12), 1):
        inside, ext = shapes.ellipsoid_inside(rng.uniform(3, 5, ndim))
        sl, m = shapes.rasterise(shape, p, inside, ext)
        lab[sl][m] = i
    tifffile.imwrite(tmp_path / "a.tif", lab)
    cfg = nc(shape="shape_model", examples=str(tmp_path), n_modes=2, n_rays=16 if ndim == 2 else 32, elastic=0.5)
    out, _ = make_nuclei(np.ones(shape, bool), grid_points(shape, 16), cfg, rng)
    sizes = np.bincount(out.ravel())[1:]
    assert len(sizes) >= 2 and sizes.min() > 0.3 * ball_volume(3, ndim) and sizes.max() < 2 * ball_volume(5, ndim)


def test_shape_model_needs_examples(rng):
    with pytest.raises(ConfigError, match="nuclei.examples"):
        make_nuclei(np.ones((16, 16), bool), np.array([[8.0, 8.0]]), nc(shape="shape_model"), rng)


def test_config_errors_one_line():
    for bad in [dict(radius=(0, 3)), dict(radius=(5, 2)), dict(axis_scale=[(1, 1)]),
                dict(axis_scale=[(0, 1), (1, 1)]), dict(shape="cube"), dict(mitotic_fraction=2)]:
        with pytest.raises(ConfigError) as e:
            nc(**bad)
        assert "\n" not in str(e.value)


@settings(max_examples=15, deadline=None)
@given(ndim=st.sampled_from([2, 3]), r=st.floats(2, 6), elastic=st.floats(0, 2),
       shape_kind=st.sampled_from(["ellipsoid", "harmonics"]), overlap=st.booleans(),
       seed=st.integers(0, 2**16))
def test_property_nuclei_invariants(ndim, r, elastic, shape_kind, overlap, seed):
    shape = (32, 32) if ndim == 2 else (16, 24, 24)
    fg = np.zeros(shape, bool)
    fg[(slice(2, -2),) * ndim] = True
    rng = np.random.default_rng(seed)
    pts = rng.uniform(2, np.asarray(shape) - 3, size=(8, ndim))
    cfg = nc(shape=shape_kind, radius=(r, r + 1), elastic=elastic, allow_overlap=overlap, sh_gamma=2.0)
    lab, ov = make_nuclei(fg, pts, cfg, np.random.default_rng(seed))
    ids = np.unique(lab)[1:]
    assert np.array_equal(ids, np.arange(1, len(ids) + 1))  # consecutive
    assert len(ids) <= len(pts)
    assert not lab[~fg].any()
    if overlap:
        assert np.array_equal((ov > 0).any(0), lab > 0)
        assert np.array_equal(np.unique(ov)[1:], ids)  # every labelled nucleus is whole in a layer
    lab2, _ = make_nuclei(fg, pts, cfg, np.random.default_rng(seed))
    assert np.array_equal(lab, lab2)


def test_radius_shrinks_with_count():
    fg = np.ones((64, 64), bool)
    cfg = nc(radius=(6, 6), axis_scale=[(1, 1)] * 2, elastic=0, radius_reference_count=4)
    few, _ = make_nuclei(fg, grid_points((64, 64), 32), cfg, np.random.default_rng(0))  # 4 nuclei
    many, _ = make_nuclei(fg, grid_points((64, 64), 16), cfg, np.random.default_rng(0))  # 16 nuclei
    s_few = np.bincount(few.ravel())[1:].mean()
    s_many = np.bincount(many.ravel())[1:].mean()
    assert s_few == pytest.approx(np.pi * 36, rel=0.1)
    assert s_many == pytest.approx(s_few / 4, rel=0.15)  # 4× the nuclei, same total volume


def test_sh_decay_by_degree_as_printed_is_rougher():
    """Eq. 7 as printed (damping by m) leaves the zonal terms undamped: far from a sphere."""
    rng = np.random.default_rng(0)
    dirs = shapes.sphere_directions(3, 500)
    spread = {}
    for decay in ("l", "m"):
        spread[decay] = np.mean([shapes.sh_radius(shapes.sh_coefficients(3, 5, 5.0, rng, decay), dirs).std()
                                 for _ in range(5)])
    assert spread["l"] < 0.05 < spread["m"]
    with pytest.raises(ValueError):
        shapes.sh_coefficients(3, 5, 5.0, rng, "k")


def test_bad_points_are_refused(rng):
    from cellsynth.errors import InputError

    fg = np.ones((16, 16), bool)
    with pytest.raises(InputError, match=r"shape \(N, 2\)"):
        make_nuclei(fg, np.zeros((3, 3)), nc(), rng)
    with pytest.raises(InputError, match="NaN"):
        make_nuclei(fg, np.array([[np.nan, 2.0]]), nc(), rng)
    with pytest.raises(ConfigError, match="boolean"):
        make_nuclei(fg.astype(np.uint8), np.zeros((1, 2)), nc(), rng)
    lab, _ = make_nuclei(fg, np.zeros((0, 2)), nc(), rng)
    assert lab.shape == (16, 16) and lab.max() == 0
