"""Per-image percentile normalisation: the one implementation used everywhere.

An image's ``low``/``high`` percentiles are mapped to the ends of an output range
(``out``, default [0, 1]); values outside stay outside unless ``clip`` asks
otherwise. Real uint8/uint16 data and float synthetic data land on one scale this
way (the usual robust normalisation of microscopy networks, e.g. Weigert et al.
2018). Callers state their percentiles and clipping explicitly; stored models keep
theirs in ``config.json`` and pass them back here.

Degenerate images: when the two percentiles coincide (a constant image, or one
that is almost all background) the scale is 1, so a constant image maps to
``out[0]`` and nothing is divided by zero.

Torch-free; numpy in, float32 out.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .errors import InputError

__all__ = ["DEFAULT_PERCENTILES", "percentile_range", "normalize_percentile"]

# the toolkit's default robust range (1st–99.8th percentile), used by fitting,
# the benchmark, the segmenter and the diffusion model unless configured otherwise
DEFAULT_PERCENTILES: tuple[float, float] = (1.0, 99.8)


def percentile_range(image, low: float, high: float, name: str = "image") -> tuple[float, float]:
    """The ``low`` and ``high`` percentiles of ``image`` as floats.

    Parameters
    ----------
    image : array_like
        Any shape (2D, 3D, ...), any real dtype.
    low, high : float
        Percentiles, 0 <= low < high <= 100.
    name : str
        How errors name the input.

    Returns
    -------
    (float, float)

    Raises
    ------
    InputError
        Empty image, non-numeric or non-finite values, or percentiles out of order.

    Examples
    --------
    >>> percentile_range(np.arange(101), 1, 99)
    (1.0, 99.0)
    """
    if not 0.0 <= float(low) < float(high) <= 100.0:
        raise InputError(f"percentiles must satisfy 0 <= low < high <= 100, got ({low}, {high})")
    a = np.asarray(image)
    if a.dtype.kind not in "biuf":
        raise InputError(f"{name} must be a real numeric array, got dtype {a.dtype}")
    if a.size == 0:
        raise InputError(f"{name} is empty")
    if a.dtype.kind == "f" and not np.isfinite(a).all():
        raise InputError(f"{name} contains NaN or infinite values")
    lo, hi = np.percentile(a, [float(low), float(high)])
    return float(lo), float(hi)


def normalize_percentile(image, low: float | None = None, high: float | None = None, *,
                         clip: bool | Sequence[float] = False, out: Sequence[float] = (0.0, 1.0),
                         lo_hi: Sequence[float] | None = None, name: str = "image") -> np.ndarray:
    """Map the ``low``/``high`` percentiles of ``image`` to ``out[0]``/``out[1]`` (float32).

    y = (x − p_low) / (p_high − p_low) · (out[1] − out[0]) + out[0], with scale 1
    where p_high <= p_low.

    Parameters
    ----------
    image : array_like
        Any shape and real dtype (2D and 3D alike).
    low, high : float
        Percentiles (0..100) mapped to the ends of ``out``; required unless ``lo_hi`` is given.
    clip : bool or (float, float)
        False: unclipped; True: clip to ``out``; a pair: clip to that range (in output units).
    out : (float, float)
        Output range, e.g. (0, 1) or (-1, 1) for a diffusion model.
    lo_hi : (float, float), optional
        Precomputed (p_low, p_high), e.g. from :func:`percentile_range` on the whole
        image when normalising patches of it; ``low``/``high`` are then not used.
    name : str
        How errors name the input.

    Returns
    -------
    np.ndarray
        float32, same shape as ``image``.

    Examples
    --------
    >>> x = np.arange(101, dtype=np.uint8)
    >>> normalize_percentile(x, 1, 99)[[1, 50, 99]]
    array([0. , 0.5, 1. ], dtype=float32)
    >>> float(normalize_percentile(x, 1, 99, clip=True).max())
    1.0
    >>> normalize_percentile(x, 0, 100, out=(-1, 1))[[0, 100]]
    array([-1.,  1.], dtype=float32)
    >>> float(np.abs(normalize_percentile(np.full((4, 4, 4), 7.0), 1, 99.8)).max())
    0.0
    >>> normalize_percentile(np.array([10, 20, 30]), lo_hi=(10, 30))
    array([0. , 0.5, 1. ], dtype=float32)
    """
    if lo_hi is not None:
        lo, hi = float(lo_hi[0]), float(lo_hi[1])
    elif low is None or high is None:
        raise InputError("normalize_percentile needs the low and high percentiles (or lo_hi)")
    else:
        lo, hi = percentile_range(image, low, high, name)
    scale = hi - lo if hi > lo else 1.0
    y = (np.asarray(image).astype(np.float32) - np.float32(lo)) / np.float32(scale)
    a, b = float(out[0]), float(out[1])
    if (a, b) != (0.0, 1.0):
        y = y * np.float32(b - a) + np.float32(a)
    if clip is True:
        np.clip(y, a, b, out=y)
    elif clip is not False and clip is not None:
        np.clip(y, float(clip[0]), float(clip[1]), out=y)
    return y
