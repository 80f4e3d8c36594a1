"""Do new images look like a model's training images? A per-image statistic and a decision.

A generative model trained on one set of images (e.g. the shipped diffusion model, trained on
the DSB 2018 nuclei) renders *that* look. Before using it for a new lab's images we ask whether
their look is covered by the training images. Each image is summarised by a few numbers that
separate microscopy image types (size and intensity statistics, on the same per-image percentile
scale the models are trained on, so a raw gain or bit depth alone is not a difference):

- ``log10_pixels``: log10 of the number of pixels/voxels (image size);
- ``median``: the median of the normalised image (background level);
- ``mean``: its mean;
- ``bright_fraction``: fraction of pixels above 0.5 (foreground coverage);
- ``noise``: median absolute deviation of the image minus its Gaussian blur (σ = 1 px), ×1.4826.

The model folder keeps the training images' feature vectors and per-feature scales
(:func:`domain_record`, stored as ``domain`` in ``config.json``). A new set is compared by the
**nearest-neighbour distance ratio**: each new image's distance (features divided by the scales)
to its nearest training image, divided by the 95th percentile of the training images'
leave-one-out nearest-neighbour distances (at least 1 scale unit); the median over the new
images is the statistic, and the images *differ* when it exceeds 1 (:func:`domain_shift`).
A median, so a few unusual images do not decide; nearest neighbours, so a training set of
several image types covers each of them without covering the space between them.

Torch-free; numpy in, plain dicts out.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from ..errors import InputError
from ..intensity import DEFAULT_PERCENTILES, normalize_percentile

__all__ = ["FEATURES", "image_features", "domain_record", "domain_shift", "STATISTIC"]

FEATURES = ("log10_pixels", "median", "mean", "bright_fraction", "noise")
STATISTIC = "median nearest-neighbour distance ratio"
# the smallest scale per feature, so a feature constant over the training set (one image size)
# does not turn a tiny difference into a large distance
_MIN_SCALE = np.array([0.05, 0.02, 0.02, 0.01, 0.005])
_RECORD_VERSION = 1


def image_features(image: np.ndarray, percentiles: Sequence[float] = DEFAULT_PERCENTILES) -> np.ndarray:
    """The :data:`FEATURES` of one image (2D or 3D), float64.

    Examples
    --------
    >>> img = np.zeros((32, 32)); img[8:16, 8:16] = 100
    >>> f = image_features(img)
    >>> round(float(f[FEATURES.index("bright_fraction")]), 3), round(float(f[0]), 3)
    (0.062, 3.01)
    """
    from scipy.ndimage import gaussian_filter

    a = np.asarray(image)
    if a.ndim not in (2, 3) or a.size == 0:
        raise InputError(f"image of shape {a.shape}: need a 2D or 3D image")
    x = normalize_percentile(a, *percentiles, out=(0, 1), clip=True).astype(np.float64)
    hp = x - gaussian_filter(x, 1.0, mode="reflect")
    noise = 1.4826 * float(np.median(np.abs(hp - np.median(hp))))
    return np.array([np.log10(a.size), float(np.median(x)), float(x.mean()), float((x > 0.5).mean()), noise])


def _features(images: Iterable[np.ndarray], percentiles: Sequence[float]) -> np.ndarray:
    f = np.array([image_features(a, percentiles) for a in images], dtype=np.float64)
    if f.size == 0:
        raise InputError("no images to summarise")
    return f


def _nn(a: np.ndarray, b: np.ndarray, exclude_self: bool = False) -> np.ndarray:
    d = np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(-1))
    if exclude_self:
        np.fill_diagonal(d, np.inf)
    return d.min(axis=1)


def domain_record(images: Iterable[np.ndarray], percentiles: Sequence[float] = DEFAULT_PERCENTILES) -> dict:
    """The training images' feature vectors, scales and neighbour threshold (JSON-safe).

    Stored as ``domain`` in a diffusion model's ``config.json``; compare new images with
    :func:`domain_shift`.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> rec = domain_record([rng.normal(10, 1, (32, 32)) for _ in range(4)])
    >>> rec["features"] == list(FEATURES), len(rec["values"]), rec["threshold"] >= 1.0
    (True, 4, True)
    """
    f = _features(images, percentiles)
    scale = np.maximum(f.std(axis=0), _MIN_SCALE)
    z = f / scale
    # leave-one-out neighbour distances of the training set itself: how far apart its images are
    loo = _nn(z, z, exclude_self=True) if len(z) > 1 else np.zeros(1)
    threshold = max(float(np.percentile(loo, 95)), 1.0)
    return {"version": _RECORD_VERSION, "features": list(FEATURES), "percentiles": [float(p) for p in percentiles],
            "values": np.round(f, 5).tolist(), "scale": np.round(scale, 6).tolist(),
            "threshold": round(threshold, 5), "statistic": STATISTIC}


def domain_shift(record: dict, images: Iterable[np.ndarray], what: str = "model") -> dict:
    """Whether ``images`` differ from the training images summarised in ``record``.

    Returns ``{"differs", "statistic", "value", "threshold", "fraction_outside",
    "n_images", "features_new_median", "features_training_median"}``: ``value`` is the median
    over the new images of (distance to the nearest training image) / (the record's threshold);
    ``differs`` is ``value > 1``; ``fraction_outside`` the share of new images with a ratio > 1.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> rec = domain_record([rng.normal(10, 1, (32, 32)) for _ in range(6)])
    >>> same = domain_shift(rec, [rng.normal(10, 1, (32, 32)) for _ in range(3)])
    >>> big = np.zeros((96, 96)); big[:48] = 50
    >>> other = domain_shift(rec, [big, big])
    >>> same["differs"], other["differs"], other["value"] > 1
    (False, True, True)
    """
    try:
        if record.get("version") != _RECORD_VERSION or list(record["features"]) != list(FEATURES):
            raise KeyError("version/features")
        train = np.asarray(record["values"], dtype=np.float64)
        scale = np.asarray(record["scale"], dtype=np.float64)
        threshold = float(record["threshold"])
        percentiles = tuple(record["percentiles"])
        if train.ndim != 2 or train.shape[1] != len(FEATURES) or scale.shape != (len(FEATURES),):
            raise ValueError("shapes")
    except (AttributeError, KeyError, TypeError, ValueError) as e:
        raise InputError(f"{what}: its domain record (config.json 'domain') is invalid ({e})") from None
    f = _features(images, percentiles)
    ratio = _nn(f / scale, train / scale) / threshold
    value = float(np.median(ratio))
    return {"differs": bool(value > 1.0), "statistic": STATISTIC, "value": round(value, 4),
            "threshold": 1.0, "fraction_outside": round(float((ratio > 1).mean()), 4), "n_images": len(f),
            "features": list(FEATURES),
            "features_new_median": np.round(np.median(f, axis=0), 4).tolist(),
            "features_training_median": np.round(np.median(train, axis=0), 4).tolist()}
