"""Weighted Voronoi membranes (Eschweiler et al. 2021 eq. 3): exactness against brute force, labels, walls."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import ndimage

from cellsynth.config import MembraneConfig
from cellsynth.errors import InputError
from cellsynth.scene import relabel_consecutive
from cellsynth.simulate import membranes
from cellsynth.simulate.encode import boundaries
from cellsynth.simulate.membranes import tessellate


@pytest.fixture
def exact(monkeypatch):
    """float64 block arithmetic, so labels equal a float64 brute force voxel for voxel."""
    monkeypatch.setattr(membranes, "_DTYPE", np.float64)


def brute_force(fg, pts, gamma):
    """argmin_j ||x - x_j|| / γ_j over every voxel, relabelled consecutively."""
    grid = np.indices(fg.shape).reshape(fg.ndim, -1).T.astype(float)
    d = ((grid[:, None, :] - pts[None]) ** 2).sum(-1) / gamma ** 2
    lab = (d.argmin(1) + 1).reshape(fg.shape)
    lab[~fg] = 0
    return relabel_consecutive(lab)[0]


def ball_fg(shape, frac=0.8):
    g = np.ogrid[tuple(slice(0, s) for s in shape)]
    return sum(((x - (s - 1) / 2) / (frac * s / 2)) ** 2 for x, s in zip(g, shape)) <= 1


@pytest.mark.parametrize("shape", [(48, 40), (24, 32, 28)])
def test_covers_foreground_consecutive(shape, rng):
    fg = ball_fg(shape)
    pts = rng.uniform(0, np.array(shape) - 1, (25, len(shape)))
    lab = tessellate(fg, pts, MembraneConfig(), rng)
    assert lab.dtype == np.uint16 and lab.shape == fg.shape
    np.testing.assert_array_equal(lab > 0, fg)
    ids = np.unique(lab[lab > 0])
    np.testing.assert_array_equal(ids, np.arange(1, lab.max() + 1))


@pytest.mark.parametrize("shape", [(30, 34), (14, 18, 16)])
def test_gamma_one_is_plain_voronoi(shape, rng, exact):
    fg = np.ones(shape, bool)
    fg[:2] = False
    pts = rng.uniform(0, np.array(shape) - 1, (20, len(shape)))
    lab = tessellate(fg, pts, MembraneConfig(gamma=(1.0, 1.0)), rng, connected=False, block=8)
    np.testing.assert_array_equal(lab, brute_force(fg, pts, np.ones(len(pts))))


@pytest.mark.parametrize("shape", [(30, 34), (14, 18, 16)])
def test_weighted_equals_brute_force_and_bends(shape, rng, exact):
    fg = ball_fg(shape, 0.95)
    pts = rng.uniform(0, np.array(shape) - 1, (20, len(shape)))
    gamma = rng.uniform(0.6, 1.6, len(pts))
    lab = tessellate(fg, pts, MembraneConfig(), rng, gamma=gamma, connected=False, block=8)
    np.testing.assert_array_equal(lab, brute_force(fg, pts, gamma))
    plain = tessellate(fg, pts, MembraneConfig(), rng, gamma=np.ones(len(pts)), connected=False)
    assert (lab != plain).mean() > 0.02  # the weights move the walls


def test_gamma_drawn_from_config_range(rng):
    fg = np.ones((40, 40), bool)
    pts = rng.uniform(0, 39, (15, 2))
    a = tessellate(fg, pts, MembraneConfig(gamma=(0.5, 2.0)), np.random.default_rng(3))
    b = tessellate(fg, pts, MembraneConfig(gamma=(0.5, 2.0)), np.random.default_rng(3))
    np.testing.assert_array_equal(a, b)  # seeded -> reproducible


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(1, 30), ndim=st.sampled_from([2, 3]),
       spread=st.floats(1.0, 3.0), block=st.sampled_from([4, 7, 16]))
def test_property_exact(seed, n, ndim, spread, block):
    membranes._DTYPE = np.float64   # (hypothesis + function fixtures do not mix)
    r = np.random.default_rng(seed)
    shape = tuple(r.integers(5, 20, ndim))
    fg = r.random(shape) < 0.7
    pts = r.uniform(-3, np.array(shape) + 2, (n, ndim))  # some points outside the image
    gamma = r.uniform(1.0, spread, n)
    try:
        lab = tessellate(fg, pts, MembraneConfig(), r, gamma=gamma, connected=False, block=block)
    finally:
        membranes._DTYPE = np.float32
    np.testing.assert_array_equal(lab, brute_force(fg, pts, gamma))


def test_float32_default_matches_up_to_ties(rng):
    shape = (24, 40, 40)
    fg = np.ones(shape, bool)
    pts = rng.uniform(0, np.array(shape) - 1, (80, 3))
    gamma = rng.uniform(0.8, 1.2, len(pts))
    lab = tessellate(fg, pts, MembraneConfig(), rng, gamma=gamma, connected=False)
    ref = brute_force(fg, pts, gamma)
    assert (lab != ref).mean() < 1e-4


def test_connected_cells(rng):
    shape = (20, 40, 40)
    fg = ball_fg(shape, 0.95)
    pts = rng.uniform(0, np.array(shape) - 1, (60, 3))
    cfg = MembraneConfig(gamma=(0.4, 2.5))  # wide γ: fragments appear without the merge
    raw = tessellate(fg, pts, cfg, np.random.default_rng(1), connected=False)
    lab = tessellate(fg, pts, cfg, np.random.default_rng(1))
    struct = ndimage.generate_binary_structure(3, 1)

    def n_split(x):
        return sum(ndimage.label(x[s] == i + 1, struct)[1] > 1
                   for i, s in enumerate(ndimage.find_objects(x)) if s is not None)

    assert n_split(raw) > 0
    assert n_split(lab) == 0
    np.testing.assert_array_equal(lab > 0, fg)
    np.testing.assert_array_equal(np.unique(lab[lab > 0]), np.arange(1, lab.max() + 1))


def test_empty_foreground_and_errors(rng):
    cfg = MembraneConfig()
    assert tessellate(np.zeros((8, 8), bool), np.zeros((0, 2)), cfg, rng).max() == 0
    with pytest.raises(InputError, match="no cell positions"):
        tessellate(np.ones((8, 8), bool), np.zeros((0, 2)), cfg, rng)
    with pytest.raises(InputError, match="bool"):
        tessellate(np.ones((8, 8)), np.zeros((1, 2)), cfg, rng)
    with pytest.raises(InputError, match=r"\(N, 2\)"):
        tessellate(np.ones((8, 8), bool), np.zeros((3, 3)), cfg, rng)
    with pytest.raises(InputError, match="NaN"):
        tessellate(np.ones((8, 8), bool), np.full((1, 2), np.nan), cfg, rng)


@pytest.mark.parametrize("ndim", [2, 3])
@pytest.mark.parametrize("t", [1, 2, 3, 4])
def test_wall_thickness_counts_voxels_per_side(ndim, t):
    """The one width convention: t voxels on each side of an interface, 2t per wall between cells."""
    shape = (32,) * ndim
    lab = np.ones(shape, np.uint16)
    lab[..., 16:] = 2  # one flat wall between x = 15 and x = 16
    wall = boundaries(lab, t)
    cols = np.flatnonzero(wall.reshape(-1, 32).any(0))
    assert cols.tolist() == list(range(16 - t, 16 + t))
    assert wall.reshape(-1, 32)[:, cols].all()  # the whole plane is covered
    assert not boundaries(np.ones(shape, np.uint16), t).any()


@pytest.mark.parametrize("ndim", [2, 3])
def test_wall_thickness_acts_in_the_rendered_membranes(ndim):
    """scene.membranes.wall_thickness is the one membrane width: scene and renderers agree."""
    from cellsynth.config import load_config
    from cellsynth.render import make_renderer
    from cellsynth.simulate import simulate_scene

    preset = "membrane2d-arabidopsis" if ndim == 2 else "membrane3d-meristem"
    shape = [64, 64] if ndim == 2 else [16, 48, 48]
    sketch = []
    for t in (1, 2):
        cfg = load_config(preset, overrides=[f"scene.shape={shape}", "scene.placement.n_points=[8,10]",
                                             "scene.placement.min_distance=6", "scene.foreground.method=full",
                                             "scene.placement.method=uniform",
                                             f"scene.membranes.wall_thickness={t}",
                                             "render.sketch.sigma=0", "render.sketch.decay_strength=0"])
        scene = simulate_scene(cfg.scene, np.random.default_rng(0))
        assert scene.wall_thickness == t
        img = make_renderer("sketch", cfg.render).render(scene, np.random.default_rng(1))
        lit = img > img.min()
        # the lit voxels are exactly the cells' walls of that width
        np.testing.assert_array_equal(lit, boundaries(scene.labels, t))
        sketch.append(lit.sum())
    assert sketch[1] > sketch[0]
