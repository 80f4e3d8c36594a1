"""Scale normalisation for the segmenter: every image brought to one typical object diameter, 2D and 3D.

The idea of Cellpose (Stringer et al. 2021): nuclei of 8–80 px across images cannot all suit one
network's receptive field and one training-patch size at their native scale, so every image is
resized by ``target_diameter / d`` (clipped to ``limits``), where d is the image's median object
diameter. At training d comes from the masks (:func:`cellsynth.segment.classical.labels_scale`);
at prediction it is estimated without labels — by default from the image alone
(:func:`cellsynth.segment.classical.image_object_scale`, the scale estimate of the scale-adaptive
classical baseline), or (``estimate: style``, 10 or more training images) with Cellpose's size model: a
ridge regression from the segmenter's own pooled features to log d, fitted on the training pairs
(:mod:`cellsynth.segment.size_model`, :meth:`cellsynth.segment.unet.Segmenter.estimate_diameter`) — and
the predicted maps are resized back to the image's own shape before the
watershed. In 3D the factor is isotropic (every axis, anisotropy kept) and d is the diameter of
the sphere of the median object volume, in voxels.
Images are resized with linear interpolation (anti-aliased when shrunk), masks with nearest
neighbours (:func:`skimage.transform.resize`).
"""
from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Literal

import numpy as np
from pydantic import field_validator

from ..config import PosFloat, PosInt, Strict
from .classical import image_object_scale, labels_scale

log = logging.getLogger(__name__)


class RescaleConfig(Strict):
    """Resize every image so that its median object diameter becomes ``target_diameter``."""

    # median equivalent object diameter (px / voxels) the network trains and predicts at
    target_diameter: PosFloat = 17.0
    # (smallest, largest) resize factor: bounds a wrong label-free estimate and the work on the image
    limits: tuple[PosFloat, PosFloat] = (0.25, 4.0)
    # the label-free diameter at prediction: "classical" = the classical baseline's estimate from the image
    # alone; "style" = a size model fitted at training on the segmenter's own features (Stringer et al. 2021;
    # :mod:`.size_model`): better when the training images are real ones of the same kind (DSB val, 600 steps:
    # 0.818 vs 0.806 AP@0.5), worse when they are synthetic (physics 0.767 vs 0.796: it learns the synthetic
    # images' look), so the default is classical
    estimate: Literal["style", "classical"] = "classical"
    # the size model is fitted on at most this many training images (one network pass each)
    size_images: PosInt = 256

    @field_validator("limits")
    @classmethod
    def _limits(cls, v):
        if not v[0] <= 1.0 <= v[1]:
            raise ValueError(f"limits must satisfy low <= 1 <= high, got {tuple(v)}")
        return v


def scale_factor(diameter: float | None, cfg: RescaleConfig) -> float:
    """Resize factor ``target_diameter / diameter`` clipped to ``cfg.limits``; 1 without a diameter.

    >>> scale_factor(34.0, RescaleConfig(target_diameter=17))
    0.5
    >>> scale_factor(1.0, RescaleConfig(target_diameter=17)), scale_factor(None, RescaleConfig())
    (4.0, 1.0)
    """
    if diameter is None or not np.isfinite(diameter) or diameter <= 0:
        return 1.0
    return float(np.clip(cfg.target_diameter / diameter, *cfg.limits))


def labels_diameter(labels: np.ndarray) -> float | None:
    """Median equivalent diameter of the objects of an instance label image (None without objects)."""
    s = labels_scale(labels)
    return None if s is None else 2.0 * s[0]


def image_diameter(image: np.ndarray) -> float | None:
    """Label-free median object diameter of an image (:func:`image_object_scale`; None if none found)."""
    s = image_object_scale(image)
    return None if s is None else 2.0 * s[0]


def scaled_shape(shape: Sequence[int], factor: float) -> tuple[int, ...]:
    """The shape of an array of ``shape`` resized by ``factor`` (every axis, at least 1).

    >>> scaled_shape((100, 41), 0.5)
    (50, 20)
    """
    return tuple(max(1, int(round(n * factor))) for n in shape)


def resize(array: np.ndarray, shape: Sequence[int], labels: bool = False) -> np.ndarray:
    """``array`` (*S) or maps (C, *S) resized to the spatial ``shape``.

    Images and maps: linear interpolation, Gaussian anti-aliasing where shrunk, float32.
    ``labels``: nearest neighbour, dtype kept. The same shape returns the array unchanged.

    >>> resize(np.arange(4.0).reshape(2, 2), (4, 4)).shape
    (4, 4)
    """
    from skimage.transform import resize as sk_resize

    array = np.asarray(array)
    shape = tuple(int(n) for n in shape)
    lead = array.shape[: array.ndim - len(shape)]
    if array.shape[len(lead):] == shape:
        return array
    if labels:
        return sk_resize(array, lead + shape, order=0, preserve_range=True, anti_aliasing=False).astype(array.dtype)
    shrink = any(n < m for n, m in zip(shape, array.shape[len(lead):]))
    return sk_resize(array.astype(np.float32, copy=False), lead + shape, order=1, preserve_range=True,
                     anti_aliasing=shrink).astype(np.float32, copy=False)


def rescale_pair(image: np.ndarray, mask: np.ndarray, cfg: RescaleConfig) -> tuple[np.ndarray, np.ndarray, float]:
    """(image, mask, factor): a training pair resized by its masks' median diameter
    (:func:`labels_diameter`); unchanged (factor 1) when the mask has no object."""
    f = scale_factor(labels_diameter(mask), cfg)
    shape = scaled_shape(image.shape, f)
    if shape == image.shape:
        return image, mask, 1.0
    return resize(image, shape), resize(mask, shape, labels=True), f
