"""Derived representations: boundaries, 3-class, distance map, positional map (Eschweiler et al. 2021 eq. 1)."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cellsynth.errors import InputError
from cellsynth.simulate import encode


def disc(shape, centre, r):
    g = np.ogrid[tuple(slice(0, s) for s in shape)]
    return sum((x - c) ** 2 for x, c in zip(g, centre)) <= r * r


def two_blocks(ndim):
    lab = np.zeros((32,) * ndim, np.uint16)
    sl = (slice(8, 24),) * (ndim - 1)
    lab[sl + (slice(4, 16),)] = 1
    lab[sl + (slice(16, 28),)] = 2
    return lab


@pytest.mark.parametrize("ndim", [2, 3])
def test_boundaries_inner_and_thickness(ndim):
    lab = two_blocks(ndim)
    b1 = encode.boundaries(lab, 1)
    assert not (b1 & (lab == 0)).any()          # inner mode: boundaries belong to objects
    line = (16,) * (ndim - 1)
    row1 = b1[line]
    assert row1[4] and row1[15] and row1[16] and row1[27] and not row1[5:15].any()
    row2 = encode.boundaries(lab, 2)[line]
    assert row2[4:6].all() and row2[14:18].all() and not row2[6:14].any()
    with pytest.raises(InputError):
        encode.boundaries(lab.astype(float))
    with pytest.raises(InputError):
        encode.boundaries(lab, 0)


@pytest.mark.parametrize("ndim", [2, 3])
def test_centroids_and_three_class(ndim):
    lab = two_blocks(ndim)
    c = encode.centroids(lab)
    assert c.shape == (2, ndim)
    np.testing.assert_allclose(c[:, :-1], 15.5)
    np.testing.assert_allclose(c[:, -1], [9.5, 21.5])
    tc = encode.three_class(lab, centroid_radius=2)
    assert tc.dtype == np.uint8 and set(np.unique(tc)) == {0, 1, 2}
    assert ((tc == 1) == encode.boundaries(lab)).all()
    # one ball of radius 2 per object, fully inside (26 voxels in 3D... 13 px in 2D)
    from scipy import ndimage
    comps, n = ndimage.label(tc == 2)
    assert n == 2
    size = {2: 13, 3: 33}[ndim]
    assert np.bincount(comps.ravel())[1:].tolist() == [size, size]
    assert (lab[tc == 2] > 0).all()
    assert (encode.three_class(lab, 0) == 2).sum() == 2   # radius 0 -> the centroid voxel


def test_three_class_nonconvex_centroid():
    lab = np.zeros((40, 40), np.uint16)
    lab[5:35, 5:10] = 1
    lab[5:10, 5:35] = 1   # an L: the centroid lies outside
    tc = encode.three_class(lab, 1)
    assert (tc == 2).sum() > 0 and (lab[tc == 2] == 1).all()


def test_centroids_missing_label():
    lab = np.zeros((10, 10), np.uint16)
    lab[2, 3] = 2
    c = encode.centroids(lab)
    assert np.isnan(c[0]).all() and c[1].tolist() == [2, 3]


@pytest.mark.parametrize("ndim", [2, 3])
def test_distance_map(ndim):
    lab = two_blocks(ndim)
    d = encode.distance_map(lab)
    assert d.dtype == np.float32 and (d[lab == 0] == 0).all()
    b = encode.boundaries(lab)
    assert (d[b] == 1).all() and (d[(lab > 0) & ~b] > 1).all()
    assert d.max() == 6          # half width of a 12-wide block
    dn = encode.distance_map(lab, normalise=True)
    assert dn.max() == 1 and np.isclose(dn[lab == 1].max(), 1) and (dn >= 0).all()


def test_positional_map_closed_form_disc():
    shape, c, r = (64, 64), (31.5, 31.5), 20
    fg = disc(shape, c, r)
    alpha, beta = 10.0, 5.0
    f = encode.positional_map(fg, alpha, beta)
    assert f.dtype == np.float32 and (f[fg] > 0).all() and (f[~fg] < 0).all()
    assert np.abs(f).max() < 1
    yy, xx = np.indices(shape)
    rho = np.hypot(yy - c[0], xx - c[1])
    # closed form: inside tanh((r - ρ)/α), outside tanh(-(ρ - r)/β); EDT is within 1 px
    lo_in, hi_in = np.tanh((r - rho - 1) / alpha), np.tanh((r - rho + 1) / alpha)
    assert ((f[fg] >= lo_in[fg] - 1e-6) & (f[fg] <= hi_in[fg] + 1e-6)).all()
    lo_out, hi_out = np.tanh(-(rho - r + 1) / beta), np.tanh(-(rho - r - 1) / beta)
    assert ((f[~fg] >= lo_out[~fg] - 1e-6) & (f[~fg] <= hi_out[~fg] + 1e-6)).all()
    # larger α saturates more slowly
    assert encode.positional_map(fg, 100, beta)[fg].max() < f[fg].max()


def test_positional_map_3d_edges_and_errors():
    fg = np.zeros((16, 16, 16), bool)
    fg[4:12, 4:12, 4:12] = True
    f = encode.positional_map(fg, 1, 1)
    assert np.isclose(f[4, 8, 8], np.tanh(1)) and np.isclose(f[3, 8, 8], np.tanh(-1))
    assert (encode.positional_map(np.ones((8, 8), bool)) == 1).all()
    assert (encode.positional_map(np.zeros((8, 8), bool)) == -1).all()
    with pytest.raises(InputError):
        encode.positional_map(fg.astype(np.uint8))
    with pytest.raises(InputError):
        encode.positional_map(fg, alpha=0)


@pytest.mark.parametrize("ndim", [2, 3])
def test_positional_map_on_a_coarser_grid_stays_close_to_the_exact_one(ndim):
    shape = (40,) * ndim
    grid = np.indices(shape)
    fg = np.sqrt(((grid - 19.3) ** 2).sum(0)) < 13  # a ball, boundary off the coarse grid
    exact = encode.positional_map(fg, 20.0, 10.0)
    for f in (2, 4):
        approx = encode.positional_map(fg, 20.0, 10.0, factor=f)
        assert approx.shape == shape and approx.dtype == np.float32
        # the surface moves by ≲ f px: error ≲ 2 f / min(α, β), near the surface only
        assert np.abs(approx - exact).max() <= 2 * f / 10.0
        assert np.abs(approx - exact).mean() < 0.02 * f
    # the subsampled grid missing the specimen falls back to the exact map
    tiny = np.zeros(shape, bool)
    tiny[(slice(3, 4),) * ndim] = True
    np.testing.assert_array_equal(encode.positional_map(tiny, 5, 5, factor=4), encode.positional_map(tiny, 5, 5))
    with pytest.raises(InputError, match="factor"):
        encode.positional_map(fg, factor=0)


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), ndim=st.sampled_from([2, 3]))
def test_property_representations(seed, ndim):
    r = np.random.default_rng(seed)
    lab = r.integers(0, 5, (12,) * ndim).astype(np.uint16)
    tc = encode.three_class(lab, 1)
    assert ((tc > 0) <= (lab > 0)).all()      # nothing outside objects
    d = encode.distance_map(lab)
    assert ((d > 0) == (lab > 0)).all()
    f = encode.positional_map(lab > 0, 3, 3)
    assert ((f > 0) == (lab > 0)).all() or (lab > 0).all() or not (lab > 0).any()


def test_grayscale_overlap():
    shape = (40, 40)
    masks = [disc(shape, (10, 10), 6), disc(shape, (10, 18), 6), disc(shape, (18, 14), 6),
             disc(shape, (30, 30), 5), disc(shape, (30, 30), 4)]  # last fully covered by the 4th
    gray, kept = encode.grayscale_overlap(masks, max_labels=4, rng=np.random.default_rng(0))
    assert kept.tolist() == [0, 1, 2, 3]
    vals = [set(np.unique(gray[masks[k] & ~np.any([masks[j] for j in kept if j != k], 0)])) for k in kept]
    assert all(len(v) == 1 for v in vals)
    # the three mutually overlapping discs get three different gray levels
    assert len({next(iter(vals[k])) for k in range(3)}) == 3
    assert gray[~np.any(masks, 0)].max() == 0
    with pytest.raises(InputError):
        encode.grayscale_overlap([])


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), ndim=st.sampled_from([2, 3]), p=st.floats(0.05, 0.95))
def test_property_positional_matches_full_edt(seed, ndim, p):
    from scipy import ndimage
    r = np.random.default_rng(seed)
    fg = ndimage.binary_opening(r.random((14,) * ndim) < p) if p < 0.5 else r.random((14,) * ndim) < p
    fg[(slice(2, 6),) * ndim] = True     # never empty; often touching nothing, sometimes the border
    if fg.all():
        return
    ref = np.where(fg, np.tanh(ndimage.distance_transform_edt(fg) / 4.0),
                   np.tanh(-ndimage.distance_transform_edt(~fg) / 3.0))
    np.testing.assert_allclose(encode.positional_map(fg, 4.0, 3.0), ref, atol=1e-6)


@pytest.mark.parametrize("slab", [2 ** 21, 100])
def test_centroids_match_scipy(rng, monkeypatch, slab):
    from scipy import ndimage
    monkeypatch.setattr(encode, "_SLAB", slab)   # 100: one z-plane per slab
    lab = rng.integers(0, 6, (40, 30, 20)).astype(np.uint16)
    ref = np.array(ndimage.center_of_mass(lab > 0, lab, range(1, 6)))
    np.testing.assert_allclose(encode.centroids(lab), ref)
