"""Sketch renderer (Eschweiler et al. 2024) on tiny hand-made scenes, 2D and 3D."""
from __future__ import annotations

import numpy as np
import pytest

from cellsynth.config import SketchConfig
from cellsynth.errors import ConfigError, InputError
from cellsynth.render import make_renderer
from cellsynth.render.sketch import SketchRenderer, sketch
from cellsynth.scene import Scene


def balls(shape, centres, radius, spacing=None, classes=None):
    """Scene of non-overlapping balls (discs in 2D) labelled 1..N."""
    grids = np.ogrid[tuple(slice(0, s) for s in shape)]
    labels = np.zeros(shape, np.uint16)
    for i, c in enumerate(centres, 1):
        d2 = sum((g - ci) ** 2 for g, ci in zip(grids, c))
        labels[(d2 <= radius ** 2) & (labels == 0)] = i
    spacing = spacing or (1.0,) * len(shape)
    classes = classes or {i: "nucleus" for i in range(1, len(centres) + 1)}
    return Scene(labels, np.ones(shape, bool), spacing, classes)


def scene2d():
    return balls((48, 48), [(12, 12), (12, 36), (36, 12), (36, 36)], 8)


def scene3d():
    return balls((24, 32, 32), [(8, 8, 8), (8, 24, 24), (16, 8, 24), (16, 24, 8)], 6)


@pytest.mark.parametrize("make", [scene2d, scene3d])
def test_range_and_per_object_intensity(make):
    sc = make()
    cfg = SketchConfig(intensity=(0.4, 0.7), background=0.05, sigma=0.0)
    img = sketch(sc, cfg, np.random.default_rng(1))
    assert img.dtype == np.float32 and img.shape == sc.shape
    assert img.min() >= 0 and img.max() <= 1
    assert np.all(img[sc.labels == 0] == np.float32(0.05))
    for lab in range(1, sc.n_objects + 1):
        vals = np.unique(img[sc.labels == lab])
        assert len(vals) == 1 and 0.4 <= vals[0] <= 0.7  # homogeneous, inside the range
    # blurred version stays in [0, 1] and is smoother
    blurred = sketch(sc, cfg.model_copy(update={"sigma": 1.0}), np.random.default_rng(1))
    assert 0 <= blurred.min() and blurred.max() <= 1
    assert np.abs(np.diff(blurred, axis=-1)).max() < np.abs(np.diff(img, axis=-1)).max()


def test_z_decay_monotone_3d_and_along_y_2d():
    # one big object filling the image: the decay profile is visible directly
    for shape in [(16, 24, 24), (32, 32)]:
        labels = np.ones(shape, np.uint16)
        sc = Scene(labels, np.ones(shape, bool), (1.0,) * len(shape), {1: "nucleus"})
        cfg = SketchConfig(intensity=(0.8, 0.8), decay="z", decay_strength=0.5, sigma=0)
        img = sketch(sc, cfg, np.random.default_rng(0))
        prof = img.mean(axis=tuple(range(1, len(shape))))
        assert np.all(np.diff(prof) < 0)
        assert prof[0] == pytest.approx(0.8) and prof[-1] == pytest.approx(0.4)


@pytest.mark.parametrize("shape", [(41, 41), (21, 41, 41)])
def test_centre_decay_darker_at_centre(shape):
    labels = np.ones(shape, np.uint16)
    grids = np.ogrid[tuple(slice(0, s) for s in shape)]
    fg = sum(((g - (s - 1) / 2) / (s / 2)) ** 2 for g, s in zip(grids, shape)) <= 1
    labels[~fg] = 0
    sc = Scene(labels, fg, (1.0,) * len(shape), {1: "nucleus"})
    cfg = SketchConfig(intensity=(1.0, 1.0), decay="center", decay_strength=0.6, sigma=0)
    img = sketch(sc, cfg, np.random.default_rng(0))
    c = tuple(s // 2 for s in shape)
    assert img[c] == pytest.approx(0.4, abs=0.02)
    # along a ray from the centre outward the intensity rises monotonically
    ray = img[c[:-1]][c[-1]:][: shape[-1] // 2]
    assert np.all(np.diff(ray) > 0)


@pytest.mark.parametrize("ndim", [2, 3])
def test_overlap_darker(ndim):
    sc = scene2d() if ndim == 2 else scene3d()
    overlap = (sc.labels > 0).astype(np.uint8)
    region = np.zeros(sc.shape, bool)
    region[sc.labels == 1] = True
    region &= np.indices(sc.shape)[-1] > np.median(np.nonzero(sc.labels == 1)[-1])
    overlap[region] = 3  # three objects cover half of object 1
    sc.extras["overlap"] = overlap
    cfg = SketchConfig(overlap_darkening=0.1, sigma=0)
    img = sketch(sc, cfg, np.random.default_rng(2))
    single = img[(sc.labels == 1) & ~region][0]
    np.testing.assert_allclose(img[region], single * 0.81, rtol=1e-5)


@pytest.mark.parametrize("make", [scene2d, scene3d])
def test_nucleoli_darken_inside_objects(make):
    sc = make()
    cfg = SketchConfig(nucleoli=(1, 2), nucleolus_radius=(1.5, 2.0), nucleolus_intensity=0.3,
                       intensity=(0.6, 0.9), sigma=0)
    plain = sketch(sc, cfg.model_copy(update={"nucleoli": (0, 0)}), np.random.default_rng(3))
    img = sketch(sc, cfg, np.random.default_rng(3))
    assert np.array_equal(img[sc.labels == 0], plain[sc.labels == 0])  # nothing outside objects
    for lab in range(1, sc.n_objects + 1):
        m = sc.labels == lab
        dark = m & (img < plain - 1e-6)
        assert dark.any()  # every object got at least one nucleolus
        np.testing.assert_allclose(img[dark], plain[dark] * 0.3, rtol=1e-5)
        assert dark.sum() < 0.5 * m.sum()


def test_membrane_classes_drawn_as_walls():
    labels = np.zeros((32, 32), np.uint16)
    labels[4:28, 4:16] = 1
    labels[4:28, 16:28] = 2
    sc = Scene(labels, labels > 0, (1.0, 1.0), {1: "cell", 2: "cell"})
    img = sketch(sc, SketchConfig(sigma=0, background=0.0), np.random.default_rng(0))
    assert img[16, 10] == 0 and img[16, 15] > 0 and img[16, 16] > 0 and img[4, 10] > 0


def test_class_intensity_factor():
    sc = balls((32, 32), [(8, 8), (24, 24)], 5, classes={1: "nucleus", 2: "golgi"})
    cfg = SketchConfig(intensity=(0.4, 0.4), class_intensity={"golgi": 2.0}, sigma=0)
    img = sketch(sc, cfg, np.random.default_rng(0))
    assert img[8, 8] == pytest.approx(0.4) and img[24, 24] == pytest.approx(0.8)


def test_determinism_and_seeds_differ():
    sc = scene3d()
    r = SketchRenderer(SketchConfig(nucleoli=(0, 2)))
    a = r.render(sc, np.random.default_rng(7))
    b = r.render(sc, np.random.default_rng(7))
    c = r.render(sc, np.random.default_rng(8))
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_renderer_interface_and_errors():
    r = make_renderer("sketch")
    assert r.name == "sketch" and isinstance(r, SketchRenderer)
    d = r.describe()
    assert d["renderer"] == "sketch" and d["sigma"] == 1.0
    with pytest.raises(ConfigError, match="sigma"):
        SketchRenderer({"sigma": float("nan")})
    with pytest.raises(ConfigError, match="bogus"):
        SketchRenderer({"bogus": 1})
    with pytest.raises(InputError, match="Scene"):
        r.render(np.zeros((8, 8)), np.random.default_rng(0))
    sc = scene2d()
    sc.extras["overlap"] = np.ones((4, 4), np.uint8)
    with pytest.raises(InputError, match="overlap"):
        r.render(sc, np.random.default_rng(0))


def test_empty_scene_is_background():
    sc = Scene(np.zeros((16, 16), np.uint16), np.zeros((16, 16), bool), (1.0, 1.0))
    img = sketch(sc, SketchConfig(background=0.1, decay="center", nucleoli=(1, 1)), np.random.default_rng(0))
    np.testing.assert_allclose(img, 0.1, rtol=1e-6)
