"""Statistical shape model (Eschweiler et al. 2021 §3.2): ray sampling, PCA, bounded sampling, voxelisation."""
from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cellsynth.errors import InputError
from cellsynth.simulate.shape_model import ShapeModel, directions, instances, ray_radii


def ellipse(shape, axes, centre=None):
    centre = [(s - 1) / 2 for s in shape] if centre is None else centre
    g = np.ogrid[tuple(slice(0, s) for s in shape)]
    return sum(((x - c) / a) ** 2 for x, c, a in zip(g, centre, axes)) <= 1


def examples(ndim, k, rng, size=40):
    return [ellipse((size,) * ndim, rng.uniform(6, 15, ndim)) for _ in range(k)]


@pytest.mark.parametrize("ndim", [2, 3])
def test_directions_unit(ndim):
    d = directions(ndim, 50)
    np.testing.assert_allclose(np.linalg.norm(d, axis=1), 1)
    assert np.abs(d.mean(0)).max() < 0.05  # spread evenly


def test_ray_radii_disc():
    m = ellipse((41, 41), (10, 10))
    r = ray_radii(m, directions(2, 32))
    # half-way between the last voxel in and the first out: 10.5 on the axes, a bit less between
    assert np.all((r > 9.5) & (r <= 10.5 + 1e-6)) and np.isclose(r[0], 10.5)


@pytest.mark.parametrize("ndim,n_rays", [(2, 48), (3, 200)])
def test_fit_round_trip(ndim, n_rays, rng):
    ex = examples(ndim, 8, rng)
    m = ShapeModel.fit(ex, n_rays=n_rays, n_modes=3)
    assert m.modes.shape == (3, n_rays) and m.mean.shape == (n_rays,)
    assert np.all(np.diff(m.eigenvalues) <= 0) and np.all(m.eigenvalues > 0)
    np.testing.assert_allclose(m.modes @ m.modes.T, np.eye(3), atol=1e-9)
    for e in ex[:2]:
        v = m.voxelize(ray_radii(e, m.directions), shape=e.shape)
        iou = (v & e).sum() / (v | e).sum()
        assert iou > (0.999 if ndim == 2 else 0.94)
    # the projection onto all k-1 modes reproduces every example's radii
    full = ShapeModel.fit(ex, n_rays=n_rays, n_modes=7)
    x = np.stack([ray_radii(e, full.directions) for e in ex])
    b = (x - full.mean) @ full.modes.T
    np.testing.assert_allclose(full.mean + b @ full.modes, x, atol=1e-8)


@pytest.mark.parametrize("distribution", ["normal", "uniform"])
def test_samples_within_bounds(distribution, rng):
    m = ShapeModel.fit(examples(2, 6, rng), n_rays=32, n_modes=2)
    b = np.stack([m.draw_coefficients(rng, distribution) for _ in range(400)])
    sd = np.sqrt(m.eigenvalues)
    assert np.all(np.abs(b) <= 3 * sd + 1e-12)
    assert np.all(b.std(0) > 0.5 * sd)   # it actually varies
    s = m.sample(rng, distribution=distribution)
    assert s.dtype == bool and s.ndim == 2 and s.any()
    # the shape's extent stays within the radii that the bounds allow
    rmax = (m.mean + 3 * np.abs(sd[:, None] * m.modes).sum(0)).max()
    idx = np.argwhere(s) - (np.array(s.shape) - 1) / 2
    assert np.linalg.norm(idx, axis=1).max() <= rmax + 1


def test_sample_scale_shape_center(rng):
    m = ShapeModel.fit(examples(3, 5, rng, 32), n_rays=64, n_modes=2)
    a = m.sample(np.random.default_rng(1))
    b = m.sample(np.random.default_rng(1), scale=2.0)
    assert 6 < b.sum() / a.sum() < 10            # ~2³
    c = m.sample(np.random.default_rng(1), shape=(20, 60, 60), center=(10, 5, 30))
    assert c.shape == (20, 60, 60) and c[10, 5, 30] and not c[:, :, 50:].any()
    with pytest.raises(InputError):
        m.sample(rng, scale=0)
    with pytest.raises(InputError):
        m.sample(rng, distribution="cauchy")


def test_table_path_matches_exact(rng, monkeypatch):
    m = ShapeModel.fit(examples(3, 5, rng, 32), n_rays=64, n_modes=2)
    r = m.radii(m.draw_coefficients(rng))
    exact = m.voxelize(r, scale=2)
    monkeypatch.setattr(ShapeModel, "EXACT_LIMIT", 0)
    monkeypatch.setattr(ShapeModel, "TABLE", (256, 512))   # coarser than the default, still close
    table = m.voxelize(r, scale=2)
    assert (exact != table).sum() <= 1e-3 * exact.sum()


def test_to_dict_round_trip(rng, tmp_path):
    m = ShapeModel.fit(examples(3, 4, rng, 24), n_rays=40, n_modes=3)
    d = json.loads(json.dumps(m.to_dict()))
    m2 = ShapeModel.from_dict(d)
    for a in ("mean", "modes", "eigenvalues"):
        np.testing.assert_array_equal(getattr(m, a), getattr(m2, a))
    np.testing.assert_array_equal(m.sample(np.random.default_rng(5)), m2.sample(np.random.default_rng(5)))
    m.save(tmp_path / "sm.json")
    np.testing.assert_array_equal(ShapeModel.load(tmp_path / "sm.json").mean, m.mean)
    with pytest.raises(InputError):
        ShapeModel.from_dict({"format": "other"})
    bad = dict(d, mean=d["mean"][:-1])
    with pytest.raises(InputError):
        ShapeModel.from_dict(bad)


def test_fit_errors(rng):
    ex = examples(2, 3, rng)
    with pytest.raises(InputError, match="at least 2"):
        ShapeModel.fit(ex[:1])
    with pytest.raises(InputError, match="n_modes"):
        ShapeModel.fit(ex, n_rays=16, n_modes=3)
    with pytest.raises(InputError, match="bool"):
        ShapeModel.fit([e.astype(np.uint8) for e in ex], n_rays=16, n_modes=1)
    with pytest.raises(InputError, match="empty"):
        ShapeModel.fit(ex + [np.zeros((10, 10), bool)], n_rays=16, n_modes=1)
    with pytest.raises(InputError, match="3D"):
        ShapeModel.fit(ex + [np.ones((4, 4, 4), bool)], n_rays=16, n_modes=1)
    ring = ellipse((40, 40), (15, 15)) & ~ellipse((40, 40), (8, 8))
    with pytest.raises(InputError, match="centroid"):
        ShapeModel.fit(ex + [ring], n_rays=16, n_modes=1)
    m = ShapeModel.fit(ex + [ring], n_rays=16, n_modes=1, skip_invalid=True)
    assert m.n_examples == 3


def test_fit_labels_and_directory(tmp_path, rng):
    import tifffile
    lab = np.zeros((64, 64), np.uint16)
    for i, (cy, cx) in enumerate([(15, 15), (15, 45), (45, 15), (45, 45)]):
        lab[ellipse((64, 64), rng.uniform(5, 10, 2), (cy, cx))] = i + 1
    assert len(instances(lab)) == 4
    tifffile.imwrite(tmp_path / "a.tif", lab)
    m = ShapeModel.fit_directory(tmp_path, n_rays=24, n_modes=2)
    assert m.n_examples == 4 and m.ndim == 2


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 10_000), k=st.integers(2, 6), ndim=st.sampled_from([2, 3]))
def test_property_sample_star_shaped(seed, k, ndim):
    r = np.random.default_rng(seed)
    m = ShapeModel.fit(examples(ndim, k, r, 30), n_rays=24 if ndim == 2 else 60, n_modes=k - 1)
    s = m.sample(r)
    c = tuple((np.array(s.shape) - 1) // 2)
    assert s[c]                                  # the centroid is inside
    # star-convex: every voxel's segment to the centre stays inside (checked at 8 points)
    idx = np.argwhere(s)
    for f in np.linspace(0, 1, 8):
        p = np.rint(np.array(c) + f * (idx - np.array(c))).astype(int)
        assert s[tuple(p.T)].mean() > 0.99
