"""Training-time augmentation of (image, target) patches for the segmenter (Eschweiler et al. 2019 §4.2).

Eschweiler et al. 2019 trains its segmenter with rotation, flipping, additive Gaussian noise and random
intensity scaling in [0.5, 1]; we add a random gamma. Geometric transforms act on image
and target together (flips on every axis, rot90 in the YX plane, so the Z axis of
anisotropic 3D data is never mixed with Y/X); intensity transforms act on the image only.
numpy in, numpy out, one implementation for 2D and 3D.
"""
from __future__ import annotations

import numpy as np
from pydantic import field_validator

from ..config import Fraction, Strict, ordered_range

Range = tuple[float, float]


class AugmentConfig(Strict):
    """Augmentation parameters; each transform is applied with its own probability."""

    flip: bool = True
    rot90: bool = True
    # Eschweiler et al. 2019: random intensity scaling in [0.5, 1] (multiplies the normalised image)
    p_scale: Fraction = 0.5
    scale: Range = (0.5, 1.0)
    # gamma γ on the patch's own [min, max] range: x -> min + (max-min)·((x-min)/(max-min))^γ
    p_gamma: Fraction = 0.3
    gamma: Range = (0.7, 1.5)
    # additive Gaussian noise N(0, σ²) with σ drawn from noise_sigma (normalised units)
    p_noise: Fraction = 0.3
    noise_sigma: Range = (0.0, 0.1)
    # uniform offset added to the normalised image (background level changes)
    p_shift: Fraction = 0.2
    shift: Range = (-0.1, 0.1)

    # spatial zoom z drawn log-uniformly from `zoom`: a crop of patch/z pixels resized to the patch, its
    # target recomputed from the resized labels (boundaries stay one pixel wide); teaches object sizes
    # beyond the training images' own (nnU-Net's scale augmentation). 0 = off
    p_zoom: Fraction = 0.0
    zoom: Range = (0.7, 1.4)

    _r = field_validator("scale", "gamma", "noise_sigma", "shift", "zoom")(ordered_range)

    @field_validator("gamma", "zoom")
    @classmethod
    def _positive(cls, v, info):
        if v[0] <= 0:
            raise ValueError(f"{info.field_name} range must be positive, got {tuple(v)}")
        return v

    @field_validator("noise_sigma")
    @classmethod
    def _npos(cls, v):
        if v[0] < 0:
            raise ValueError(f"noise_sigma range must be >= 0, got {tuple(v)}")
        return v


def augment_geometry(image: np.ndarray, target: np.ndarray | tuple[np.ndarray, ...], cfg: AugmentConfig,
                     rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray | tuple[np.ndarray, ...]]:
    """Random flips (each axis) and a random multiple of 90° in the YX plane, the same for the image
    and its target (one array, or a tuple of arrays of the image's shape, e.g. classes and distances)."""
    arrays = [image, *(target if isinstance(target, tuple) else (target,))]
    if cfg.flip:
        for ax in range(image.ndim):
            if rng.random() < 0.5:
                arrays = [np.flip(a, ax) for a in arrays]
    if cfg.rot90:
        ya, xa = image.ndim - 2, image.ndim - 1
        # non-square YX: only 0/180° keep the patch shape
        k = int(rng.integers(4)) if image.shape[ya] == image.shape[xa] else 2 * int(rng.integers(2))
        if k:
            arrays = [np.rot90(a, k, (ya, xa)) for a in arrays]
    arrays = [np.ascontiguousarray(a) for a in arrays]
    return arrays[0], (tuple(arrays[1:]) if isinstance(target, tuple) else arrays[1])


def augment_intensity(image: np.ndarray, cfg: AugmentConfig, rng: np.random.Generator) -> np.ndarray:
    """Intensity scaling, gamma, offset and additive Gaussian noise on a normalised float image."""
    x = image.astype(np.float32, copy=True)
    if rng.random() < cfg.p_gamma:
        lo, hi = float(x.min()), float(x.max())
        if hi > lo:
            g = float(np.exp(rng.uniform(np.log(cfg.gamma[0]), np.log(cfg.gamma[1]))))
            x = lo + (hi - lo) * ((x - lo) / (hi - lo)) ** g
    if rng.random() < cfg.p_scale:
        x *= rng.uniform(*cfg.scale)
    if rng.random() < cfg.p_shift:
        x += rng.uniform(*cfg.shift)
    if rng.random() < cfg.p_noise:
        sigma = rng.uniform(*cfg.noise_sigma)
        if sigma > 0:
            x += rng.normal(0.0, sigma, size=x.shape).astype(np.float32)
    return x


def augment_pair(image: np.ndarray, target: np.ndarray | tuple[np.ndarray, ...], cfg: AugmentConfig,
                 rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray | tuple[np.ndarray, ...]]:
    """Geometric transforms on (image, target), then intensity transforms on the image.

    ``target`` is one array or a tuple of arrays (each transformed like the image).
    """
    image, target = augment_geometry(image, target, cfg, rng)
    return augment_intensity(image, cfg, rng), target
