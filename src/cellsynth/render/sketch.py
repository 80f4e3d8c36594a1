"""Sketch renderer (Eschweiler et al. 2024): a coarse float image in [0, 1] drawn straight from a Scene.

Eschweiler et al. 2024 turns annotations into sketches before the diffusion forward process:
each cell gets a random homogeneous intensity; the signal declines linearly
toward the organism centre (A. thaliana meristem) or along z (D. rerio);
regions covered by several overlapping cells are darker ("darkened by 10 % per
additional cell"); GOWT1 nuclei get 0–2 barely illuminated nucleoli (small dark
discs); the result is smoothed by a Gaussian with σ = 1 before noising to
t_start.

Every step works on any ndim with per-label lookup tables (``lut[labels]``);
only the nucleoli touch objects one at a time, inside their bounding boxes.
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from ..config import SketchConfig, config_to_dict
from ..scene import Scene
from ._common import as_config, axis_ramp, check_inputs, class_factors, conditioned, emitting_labels


def _centre_decay(scene: Scene, strength: float) -> np.ndarray:
    """Factor 1 - strength·(1 - d/d_max): 1 at the farthest specimen voxel, 1 - strength at its centroid.

    d is the physical distance (µm, from ``scene.spacing``) to the foreground centroid;
    d_max its maximum over the foreground (the whole image when the foreground is empty).
    """
    shape, sp = scene.shape, scene.spacing
    fg = scene.foreground if scene.foreground.any() else np.ones(shape, bool)
    centre = ndi.center_of_mass(fg)
    grids = np.ogrid[tuple(slice(0, s) for s in shape)]
    d2 = np.zeros(shape, dtype=np.float32)
    for g, c, s in zip(grids, centre, sp):
        d2 = d2 + ((g.astype(np.float32) - np.float32(c)) * np.float32(s)) ** 2
    d = np.sqrt(d2)
    dmax = float(d[fg].max()) or 1.0
    return 1.0 - strength * (1.0 - np.minimum(d / np.float32(dmax), 1.0))


def _overlap_factor(overlap: np.ndarray, darkening: float) -> np.ndarray:
    """(1 - darkening)^(count - 1) where count > 1 objects cover a voxel, else 1."""
    counts = np.arange(int(overlap.max()) + 1)
    lut = ((1.0 - darkening) ** np.maximum(counts - 1, 0)).astype(np.float32)
    return lut[overlap.astype(np.intp, copy=False)]


def _add_nucleoli(factor: np.ndarray, labels: np.ndarray, filled: np.ndarray, cfg: SketchConfig,
                  spacing: tuple[float, ...], rng: np.random.Generator) -> None:
    """Multiply ``factor`` by nucleolus_intensity inside random small ellipsoids within objects.

    Counts per object ~ U{nucleoli}; radius r ~ U(nucleolus_radius) px along the finest
    axis (ellipsoidal in voxels when spacing is anisotropic, round in µm). The centre is
    drawn among object voxels at distance ≥ r from the object's border (the deepest
    voxels when the object is thinner than r), and the disc is clipped to the object.
    """
    n = len(filled) - 1
    lo, hi = cfg.nucleoli
    counts = rng.integers(lo, hi + 1, size=n)
    counts[~filled[1:]] = 0
    if not counts.any():
        return
    sampling = np.asarray(spacing, float) / min(spacing)
    boxes = ndi.find_objects(labels, max_label=n)
    for i in np.flatnonzero(counts):
        box = boxes[i]
        if box is None:
            continue
        obj = labels[box] == i + 1
        # distance to the object's border, treating the crop edge as outside
        dt = ndi.distance_transform_edt(np.pad(obj, 1), sampling=sampling)
        dt = dt[tuple(slice(1, -1) for _ in range(obj.ndim))]
        grids = np.ogrid[tuple(slice(0, s) for s in obj.shape)]
        sub = factor[box]
        for _ in range(counts[i]):
            r = rng.uniform(*cfg.nucleolus_radius)
            cand = np.flatnonzero(dt >= min(r, dt.max()))
            c = np.unravel_index(cand[rng.integers(len(cand))], obj.shape)
            d2 = sum(((g - ci) * s / r) ** 2 for g, ci, s in zip(grids, c, sampling))
            sub[(d2 <= 1.0) & obj] *= np.float32(cfg.nucleolus_intensity)


def sketch(scene: Scene, cfg: SketchConfig | dict | None, rng: np.random.Generator) -> np.ndarray:
    """Render the seed-003 sketch of ``scene``: float32 in [0, 1], same shape as the labels.

    Parameters
    ----------
    scene : Scene
        Instances (labels), specimen mask (foreground), spacing (µm), classes and,
        where objects overlap, ``layers`` (or ``extras["overlap"]``): :meth:`Scene.coverage`.
    cfg : SketchConfig
        ``intensity`` (per-object, uniform), ``background``, ``decay`` ("none", "center":
        linear decline toward the foreground centroid, "z": linear decline along axis 0 —
        z in 3D, y (top -> bottom) in 2D) with ``decay_strength`` (the darkest point keeps
        1 - decay_strength), ``overlap_darkening`` (× (1 - d)^(count-1)), ``nucleoli``
        (count range), ``nucleolus_radius`` (px), ``nucleolus_intensity`` (factor),
        ``class_intensity`` (factor per class), ``membrane_classes`` (drawn as walls
        ``scene.wall_thickness`` px per side), ``sigma`` (Gaussian blur, px; per-axis
        σ·min(spacing)/spacing when ``sigma_by_spacing``).
    rng : numpy.random.Generator
        Draws intensities then nucleoli, so a seed fixes the sketch.
    """
    cfg = as_config(cfg, SketchConfig)
    check_inputs(scene, rng, "sketch")
    cfg = conditioned(cfg, scene, ("intensity", "background"))  # the scene's real-image record
    n = scene.n_objects
    emit = emitting_labels(scene, cfg.membrane_classes)

    lut = np.empty(n + 1, dtype=np.float32)
    lut[0] = cfg.background
    lut[1:] = rng.uniform(*cfg.intensity, size=n)
    lut[1:] *= class_factors(scene, cfg.class_intensity, n)[1:]
    img = lut[emit]

    # multiplicative modulations of the object signal (background stays flat)
    factor = None
    if cfg.decay != "none" and cfg.decay_strength > 0:
        if cfg.decay == "z":
            factor = np.broadcast_to(1.0 - cfg.decay_strength * axis_ramp(scene.shape, 0), scene.shape)
        else:
            factor = _centre_decay(scene, cfg.decay_strength)
        factor = np.array(factor, dtype=np.float32)
    overlap = scene.coverage()
    if overlap is not None and cfg.overlap_darkening > 0 and overlap.size and overlap.max() > 1:
        of = _overlap_factor(np.asarray(overlap), cfg.overlap_darkening)
        factor = of if factor is None else factor * of
    if cfg.nucleoli[1] > 0 and n:
        if factor is None:
            factor = np.ones(scene.shape, dtype=np.float32)
        filled = np.ones(n + 1, dtype=bool)
        walls = {int(k) for k, c in scene.classes.items() if c in set(cfg.membrane_classes)}
        filled[[k for k in walls if 0 < k <= n]] = False
        _add_nucleoli(factor, scene.labels, filled, cfg, scene.spacing, rng)
    if factor is not None:
        obj = emit > 0
        img[obj] *= factor[obj]

    np.clip(img, 0.0, 1.0, out=img)
    if cfg.sigma > 0:
        sp = np.asarray(scene.spacing)
        sig = cfg.sigma * sp.min() / sp if cfg.sigma_by_spacing else [cfg.sigma] * scene.ndim
        img = ndi.gaussian_filter(img, sigma=tuple(float(s) for s in sig), output=np.float32, mode="nearest")
        np.clip(img, 0.0, 1.0, out=img)
    return img.astype(np.float32, copy=False)


class SketchRenderer:
    """Renderer interface around :func:`sketch`: ``render(scene, rng) -> float32 [0, 1]``."""

    name = "sketch"

    def __init__(self, cfg: SketchConfig | dict | None = None):
        self.cfg = as_config(cfg, SketchConfig)

    def render(self, scene: Scene, rng: np.random.Generator) -> np.ndarray:
        return sketch(scene, self.cfg, rng)

    def describe(self) -> dict:
        return {"renderer": self.name, "dtype": "float32", "range": [0.0, 1.0],
                **config_to_dict(self.cfg)}
