"""Classical instance segmentation baseline (no training), 2D and 3D.

Gaussian smoothing -> Otsu threshold -> distance transform -> seeds at local maxima of
the distance (``peak_local_max`` with ``min_distance`` and a cubic footprint) -> marker
watershed on the negative distance inside the foreground -> small objects removed.
It is the yardstick a trained segmenter has to beat.
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
from scipy import ndimage as ndi
from skimage.feature import peak_local_max
from skimage.filters import gaussian, threshold_otsu
from skimage.segmentation import relabel_sequential, watershed

from ..errors import InputError


def _label_dtype(n: int):
    return np.uint16 if n <= np.iinfo(np.uint16).max else np.uint32


def classical_segment(image: np.ndarray, sigma: float = 1.0, min_size: int = 15,
                      min_distance: int = 4, threshold: Optional[float] = None,
                      spacing: Optional[Sequence[float]] = None, dark_objects: bool = False) -> np.ndarray:
    """Instance labels of bright objects in a 2D (YX) or 3D (ZYX) image.

    Parameters
    ----------
    image : 2D or 3D array (any real dtype)
    sigma : Gaussian smoothing σ in pixels before thresholding (0 = none)
    min_size : objects smaller than this many pixels/voxels are removed
    min_distance : minimum distance (px) between two seeds, i.e. between the centres of
        two touching objects; also the half-width of the ``peak_local_max`` footprint
    threshold : foreground threshold on the smoothed image; None = Otsu
    spacing : voxel size per axis for the distance transform (anisotropic 3D); None = 1
    dark_objects : objects darker than the background (invert first)

    Returns
    -------
    uint16 labels 0..N (uint32 beyond 65535 objects), same shape as ``image``.
    """
    img = np.asarray(image)
    if img.ndim not in (2, 3):
        raise InputError(f"classical_segment needs a 2D or 3D image, got shape {img.shape}")
    if not np.issubdtype(img.dtype, np.number) and img.dtype != bool:
        raise InputError(f"classical_segment needs a numeric image, got dtype {img.dtype}")
    x = img.astype(np.float32)
    if not np.all(np.isfinite(x)):
        raise InputError("classical_segment: image contains NaN or infinite values")
    if dark_objects:
        x = -x
    if sigma > 0:
        x = gaussian(x, sigma=sigma, preserve_range=True)
    if threshold is None:
        if float(x.max()) <= float(x.min()):  # constant image: nothing to find
            return np.zeros(img.shape, np.uint16)
        threshold = float(threshold_otsu(x))
    fg = x > threshold
    fg = ndi.binary_fill_holes(fg) if img.ndim == 2 else fg
    comps = finish_labels(ndi.label(fg)[0], min_size)  # drop specks before seeding
    fg = comps > 0
    if not fg.any():
        return np.zeros(img.shape, np.uint16)
    dist = ndi.distance_transform_edt(fg, sampling=spacing)
    md = max(1, int(min_distance))
    peaks = peak_local_max(dist, min_distance=md, footprint=np.ones((2 * md + 1,) * img.ndim, bool),
                           labels=comps, exclude_border=False)
    markers = np.zeros(img.shape, np.int32)
    markers[tuple(peaks.T)] = np.arange(1, len(peaks) + 1)
    # plateaus give several adjacent peaks: merge touching peak pixels into one seed
    markers, _ = ndi.label(markers > 0, structure=np.ones((3,) * img.ndim))
    labels = watershed(-dist, markers, mask=fg)
    return finish_labels(labels, min_size)


def finish_labels(labels: np.ndarray, min_size: int) -> np.ndarray:
    """Remove objects smaller than ``min_size`` and renumber 1..N as uint16 (uint32 if needed)."""
    labels = np.asarray(labels)
    if min_size > 0 and labels.max() > 0:
        sizes = np.bincount(labels.ravel())
        small = sizes < min_size
        small[0] = False
        if small.any():
            labels = np.where(small[labels], 0, labels)
    labels, _, _ = relabel_sequential(labels.astype(np.int64, copy=False))
    return labels.astype(_label_dtype(int(labels.max())))
