"""Placement: points inside the foreground, spacing, layers, Lloyd relaxation, counts."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import ndimage
from scipy.spatial import cKDTree

from cellsynth.config import PlacementConfig, validate
from cellsynth.errors import ConfigError
from cellsynth.simulate.placement import draw_count, place_points


def pl(**kw) -> PlacementConfig:
    return validate(PlacementConfig, kw)


def disc(shape, r) -> np.ndarray:
    g = np.indices(shape) - ((np.asarray(shape) - 1) / 2).reshape(-1, *([1] * len(shape)))
    return (g ** 2).sum(0) <= r * r


def on_foreground(points, fg) -> bool:
    vox = np.rint(points).astype(int)
    return bool(np.all(vox >= 0) and np.all(vox < fg.shape) and fg[tuple(vox.T)].all())


@pytest.mark.parametrize("shape", [(48, 48), (20, 32, 32)])
@pytest.mark.parametrize("method", ["uniform", "lloyd", "poisson", "layers"])
def test_points_inside_foreground(shape, method, rng):
    fg = disc(shape, 14)
    cfg = pl(method=method, n_points=(10, 15), n_iter=5, k=8, min_distance=4, layer_thickness=4)
    pts = place_points(cfg, fg, rng)
    assert pts.ndim == 2 and pts.shape[1] == len(shape)
    assert 1 <= len(pts) <= 15
    assert on_foreground(pts, fg)


def test_count_drawn_in_range(rng):
    cfg = pl(n_points=(3, 5))
    counts = {draw_count(cfg, rng) for _ in range(200)}
    assert counts == {3, 4, 5}


@pytest.mark.parametrize("shape", [(64, 64), (24, 40, 40)])
def test_poisson_respects_min_distance(shape, rng):
    fg = np.ones(shape, bool)
    pts = place_points(pl(method="poisson", min_distance=7), fg, rng, n=40)
    d, _ = cKDTree(pts).query(pts, k=2)
    assert len(pts) == 40
    assert d[:, 1].min() >= 7 - 1e-9


def test_poisson_full_region_returns_fewer(rng):
    fg = np.ones((20, 20), bool)
    pts = place_points(pl(method="poisson", min_distance=8), fg, rng, n=100)
    # at most ~ (20/8 + 1)^2 points fit; dart throwing stops after its bounded budget
    assert 3 <= len(pts) < 20
    d, _ = cKDTree(pts).query(pts, k=2)
    assert d[:, 1].min() >= 8 - 1e-9


def test_lloyd_evens_out_spacing():
    fg = np.ones((96, 96), bool)
    cv = {}
    for it in (0, 15):
        vals = []
        for s in range(3):
            pts = place_points(pl(method="lloyd", n_iter=it, k=20), fg, np.random.default_rng(s), n=40)
            d, _ = cKDTree(pts).query(pts, k=2)
            vals.append(d[:, 1].std() / d[:, 1].mean())
        cv[it] = np.mean(vals)
    assert cv[15] < 0.6 * cv[0]  # relaxed centres are far more regularly spaced


def test_lloyd_points_snap_into_nonconvex_foreground(rng):
    fg = np.zeros((40, 40), bool)  # a thin ring: centroids fall into the hole
    ring = disc((40, 40), 18) & ~disc((40, 40), 14)
    fg |= ring
    pts = place_points(pl(method="lloyd", n_iter=5, k=10), fg, rng, n=3)
    assert on_foreground(pts, fg)


@pytest.mark.parametrize("shape", [(64, 64), (32, 40, 40)])
def test_layers_fill_from_the_boundary_inward(shape, rng):
    fg = disc(shape, 15)
    t = 4.0
    dist = ndimage.distance_transform_edt(np.pad(fg, 1))[(slice(1, -1),) * len(shape)] - 1
    few = place_points(pl(method="layers", min_distance=5, layer_thickness=t), fg, rng, n=5)
    layer = np.floor(dist[tuple(np.rint(few).astype(int).T)] / t)
    assert np.all(layer == 0)  # few points: all in the outermost layer
    many = place_points(pl(method="layers", min_distance=5, layer_thickness=t), fg, rng, n=400)
    layer = np.floor(dist[tuple(np.rint(many).astype(int).T)] / t).astype(int)
    assert layer.max() >= 1 and np.all(np.diff(layer) >= 0)  # emitted layer by layer, outside first
    d, _ = cKDTree(many).query(many, k=2)
    assert d[:, 1].min() >= 5 - 1e-9


def test_empty_or_zero(rng):
    assert place_points(pl(), np.zeros((16, 16), bool), rng).shape == (0, 2)
    assert place_points(pl(), np.ones((16, 16), bool), rng, n=0).shape == (0, 2)


def test_bad_inputs(rng):
    with pytest.raises(ConfigError, match="boolean"):
        place_points(pl(), np.ones((16, 16), np.uint8), rng)
    with pytest.raises(ConfigError, match="2D or 3D"):
        place_points(pl(), np.ones((16,), bool), rng)
    for bad in [dict(n_points=(5, 2)), dict(n_points=(-1, 2)), dict(method="grid"), dict(k=0)]:
        with pytest.raises(ConfigError) as e:
            pl(**bad)
        assert "\n" not in str(e.value)


@settings(max_examples=15, deadline=None)
@given(ndim=st.sampled_from([2, 3]), n=st.integers(0, 30), d=st.floats(0, 8),
       method=st.sampled_from(["uniform", "lloyd", "poisson", "layers"]), seed=st.integers(0, 2**16))
def test_property_inside_count_spacing(ndim, n, d, method, seed):
    shape = (32, 32) if ndim == 2 else (16, 24, 24)
    fg = disc(shape, 10)
    cfg = pl(method=method, min_distance=d, n_iter=3, k=5, layer_thickness=3)
    pts = place_points(cfg, fg, np.random.default_rng(seed), n=n)
    assert len(pts) <= n
    assert len(pts) == 0 or on_foreground(pts, fg)
    if method == "uniform" or d == 0:
        assert len(pts) == n
    if method in ("poisson", "layers") and len(pts) > 1:
        dd, _ = cKDTree(pts).query(pts, k=2)
        assert dd[:, 1].min() >= d - 1e-9
    again = place_points(cfg, fg, np.random.default_rng(seed), n=n)
    assert np.array_equal(pts, again)


def test_max_layers_keeps_points_on_the_surface(rng):
    fg = disc((64, 64), 25)
    dist = ndimage.distance_transform_edt(np.pad(fg, 1))[1:-1, 1:-1] - 1
    pts = place_points(pl(method="layers", min_distance=5, layer_thickness=3, max_layers=1), fg, rng, n=500)
    assert 10 < len(pts) < 500  # the surface layer fills up, nothing goes inward
    assert np.all(dist[tuple(np.rint(pts).astype(int).T)] < 3)
