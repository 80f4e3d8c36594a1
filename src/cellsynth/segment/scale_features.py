"""A label-free object-size estimate: scale-space features of an image and a ridge regressor, 2D and 3D.

The classical estimate (:func:`cellsynth.segment.classical.image_object_scale`, the median
connected component of a σ = 1 Otsu foreground) fails where Otsu fragments large textured nuclei
or merges clumps. Here an image is described by where its blob-like structure sits in scale space,
and a small regressor learnt from (image, mask) pairs — real or synthetic, the masks are always
known at training — maps that to the log of the masks' median object diameter
(:func:`cellsynth.segment.rescale.labels_diameter`).

**Features** (:func:`scale_features`, fixed length ``3·len(SIGMAS) + 1``) of the percentile-normalised
image, for σ on a log grid of 1–40 px: the scale-normalised Laplacian of Gaussian
L_σ = σ²·ΔG_σ ∗ x (Lindeberg 1998), whose response to a bright disc of radius r is most negative
at σ = r/√2 (2D; r/√3 in 3D):

- the bright-blob spectrum mean(b_σ) with b_σ = max(−L_σ, 0), normalised to sum 1 over σ,
- the bright-blob peak spectrum Σb_σ² / Σb_σ (the response-weighted mean response: dominated by
  the blob centres, so less by how much of the image the objects cover), normalised to sum 1,
- the whole spectrum mean(|L_σ|), normalised to sum 1 (dark gaps and edges included),
- log of the classical diameter estimate (2r of ``image_object_scale``; the bright-blob
  peak spectrum's diameter 2√D·σ_peak, D = 2 or 3, where Otsu finds no object), clipped to the
  diameters 2√D·σ of the σ grid.

These three spectra were chosen among six candidates (also the 99th percentile of b_σ, mean L_σ², and
a per-pixel characteristic-scale histogram) by leave-one-out error on DSB 2018 ``train`` pairs
(``benchmarks/RESULTS.md``, section "Label-free size regressor").

Every feature is invariant to the image's contrast and offset; the normalised spectra make the
log-scale centroid a linear function of the features, which a linear model can use. Large σ work on
a block-mean pyramid (each σ at a level where it is 1.5–3 px): ≈ 70 ms for a 520×696 image, a third of
it the classical estimate (``benchmarks/RESULTS.md``).

**Regressor** (:func:`fit_size_model`, :func:`predict_diameter`): ridge regression on standardised
features to log(diameter) (:func:`cellsynth.segment.size_model.fit_ridge`, the ridge of the
segmenter's own size model: α by leave-one-out error in closed form on the training pairs). The
regressor is robust but, where the classical estimate works (Otsu components = objects), less
precise than it; so the prediction is the classical diameter
when the two agree within a gate g (|log2 ratio| <= g), else the regressor's. g is chosen on the
cross-validated predictions by the same squared error (g = 0 is the regressor alone). The model is a
plain JSON-serialisable dict.

Torch-free (numpy / scipy / skimage). The segmenter's ``rescale`` does not use this estimate: on DSB
2018 val it was no better than the classical one (0.803 vs 0.802 AP@0.5 at 300 steps), nor when fitted on
synthetic pairs (``benchmarks/RESULTS.md``, "Label-free size regressor"); it is here for images where Otsu
fragments or merges the objects (within √2 of the true diameter on 100 % of held-out DSB train images
vs 92.5 % for the classical estimate).
"""
from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
from scipy import ndimage as ndi

from ..errors import ConfigError, InputError
from ..intensity import DEFAULT_PERCENTILES, normalize_percentile
from .classical import image_object_scale
from .rescale import labels_diameter
from .size_model import ALPHAS, fit_ridge, predict_ridge

log = logging.getLogger(__name__)

__all__ = ["SIGMAS", "MODEL_KIND", "scale_features", "fit_size_model", "predict_diameter"]

# LoG scales (px / voxels): 12 values from 1 to 40, a factor ≈ 1.4 apart; a bright disc's response
# peaks at σ = r/√2, so diameters of ≈ 3–110 px are covered
SIGMAS: tuple[float, ...] = tuple(float(s) for s in np.round(np.geomspace(1.0, 40.0, 12), 3))
# the pyramid level a σ is computed on: the largest power of 2 at which σ stays >= this many px
MIN_LEVEL_SIGMA = 1.5
MODEL_KIND = "cellsynth.size_model"
MODEL_VERSION = 1
# agreement gates (|log2 regressor / classical|) searched by cross-validation; 0 = the regressor alone
GATES: tuple[float, ...] = tuple(float(g) for g in np.arange(0.0, 1.01, 0.125))
CV_FOLDS = 10


def _check_image(image, name: str = "image") -> np.ndarray:
    x = np.asarray(image)
    if x.ndim not in (2, 3):
        raise InputError(f"{name} must be 2D (YX) or 3D (ZYX), got shape {x.shape}")
    if x.dtype.kind not in "biuf":
        raise InputError(f"{name} must be a real numeric array, got dtype {x.dtype}")
    if min(x.shape) < 2:
        raise InputError(f"{name} is too small for scale features: shape {x.shape}")
    if x.dtype.kind == "f" and not np.isfinite(x).all():
        raise InputError(f"{name} contains NaN or infinite values")
    return x


def _block_mean(x: np.ndarray) -> np.ndarray:
    """``x`` halved along every axis of length >= 8 by 2×…×2 block means (odd edges dropped)."""
    sl = tuple(slice(0, n - n % 2) if n >= 8 else slice(None) for n in x.shape)
    x = x[sl]
    for ax, n in enumerate(x.shape):
        if n >= 8:
            x = x.reshape(x.shape[:ax] + (n // 2, 2) + x.shape[ax + 1:]).mean(axis=ax + 1)
    return x


def scale_features(image: np.ndarray) -> np.ndarray:
    """Scale-space features of a 2D (YX) or 3D (ZYX) image, float64 of length ``3·len(SIGMAS) + 1``.

    See the module docstring: three normalised LoG spectra (bright-blob mean, bright-blob peak,
    absolute) and log of the classical diameter estimate.
    Bright objects on a darker background, as :func:`classical.image_object_scale` assumes.

    Parameters
    ----------
    image : 2D or 3D array of any real dtype

    Returns
    -------
    np.ndarray
        The feature vector, all finite.

    Raises
    ------
    InputError
        Wrong dimensionality, NaN / infinite values, an image too small, or a constant image.

    Examples
    --------
    >>> import numpy as np
    >>> from skimage.draw import disk
    >>> img = np.zeros((96, 96), np.float32)
    >>> for c in [(20, 20), (20, 70), (70, 45)]:
    ...     img[disk(c, 10, shape=img.shape)] = 1.0
    >>> f = scale_features(img)
    >>> f.shape, round(float(np.exp(f[-1])))             # last feature: log classical diameter
    ((37,), 20)
    >>> k = int(np.argmax(f[len(SIGMAS):2 * len(SIGMAS)]))   # peak spectrum: near r/√2 ≈ 7
    >>> 3 < SIGMAS[k] < 10
    True
    """
    return _features(_check_image(image))[0]


def _features(x: np.ndarray) -> tuple[np.ndarray, float | None]:
    """(:func:`scale_features` of a checked image, the classical diameter or None)."""
    lo, hi = np.percentile(x, DEFAULT_PERCENTILES)
    if not hi > lo and np.ptp(x) == 0:
        raise InputError("image is constant: no scale to measure")
    if not hi > lo:  # almost all background: use the full range rather than none
        lo, hi = float(x.min()), float(x.max())
    xn = normalize_percentile(x, lo_hi=(lo, hi))
    ndim = xn.ndim
    bright, peak, absolute = [], [], []
    level, factor = xn, 1
    for s in SIGMAS:
        while s / (2 * factor) >= MIN_LEVEL_SIGMA and min(level.shape) >= 16:
            level, factor = _block_mean(level), 2 * factor
        sl = s / factor
        # Laplacian by finite differences of the smoothed image: half the work of gaussian_laplace
        resp = sl * sl * ndi.laplace(ndi.gaussian_filter(level, sl, mode="reflect", truncate=3.0))
        b = np.maximum(-resp, 0.0)
        total = float(b.sum())
        bright.append(total / b.size)
        peak.append(float(np.vdot(b, b)) / total if total > 0 else 0.0)
        absolute.append(float(np.abs(resp).mean()))
    bright, peak, absolute = np.array(bright), np.array(peak), np.array(absolute)
    if absolute.sum() <= 0:
        raise InputError("image is constant: no scale to measure")
    if bright.sum() <= 0:  # no bright structure at any scale (e.g. one dark spot): a flat spectrum
        bright = peak = np.ones(len(SIGMAS))
    classical = image_object_scale(x)
    d_classical = None if classical is None else 2.0 * classical[0]
    # no Otsu object: the diameter of a disc/ball whose LoG peaks at the peak spectrum's σ; the
    # feature is clipped to the diameters the σ grid sees (a merged-clump estimate of 480 px would
    # otherwise pull the linear fit: leave-one-out rmse 0.186 -> 0.172 log2 on DSB train)
    d_grid = 2.0 * np.sqrt(ndim) * np.array(SIGMAS)
    d0 = d_classical if d_classical is not None else d_grid[int(np.argmax(peak))]
    d0 = float(np.clip(d0, d_grid[0], d_grid[-1]))
    feats = np.concatenate([bright / bright.sum(), peak / peak.sum(), absolute / absolute.sum(), [np.log(d0)]])
    return feats, d_classical


def _gated(log_regressor, log_classical, gate: float):
    """The classical log-diameter where it lies within ``gate`` (log2 units) of the regressor's, else the
    regressor's (also where there is no classical estimate: NaN)."""
    agree = np.abs(np.asarray(log_regressor) - log_classical) <= gate * np.log(2)  # NaN compares False
    return np.where(agree, log_classical, log_regressor)


def fit_size_model(images: Sequence[np.ndarray], masks: Sequence[np.ndarray],
                   alphas: Sequence[float] = ALPHAS, gates: Sequence[float] = GATES) -> dict:
    """Fit the ridge regressor from scale features to log(median object diameter) on (image, mask) pairs.

    Pairs whose mask has no object are skipped. The regression is
    :func:`cellsynth.segment.size_model.fit_ridge` (standardised features, α among ``alphas`` by closed-form
    leave-one-out error of log(diameter)); the agreement gate with the classical estimate is the value
    of ``gates`` (log2 units) with the smallest mean squared error of the gated predictions of a
    ``CV_FOLDS``-fold cross-validation (folds: every k-th pair; leave-one-out below ``CV_FOLDS`` pairs).

    Parameters
    ----------
    images, masks : sequences of 2D or 3D arrays
        Images and their instance label images (same shape, same dimensionality for all pairs).
    alphas : ridge strengths to choose from
    gates : agreement gates to choose from (0: never the classical estimate)

    Returns
    -------
    dict
        Plain JSON-serialisable model: ``kind``, ``version``, ``ndim``, ``sigmas``, ``ridge`` (the
        :func:`fit_ridge` dict: ``mean``, ``scale``, ``weights``, ``bias``, ``alpha``, ``n``,
        ``loo_rmse`` in natural-log units), ``gate_log2``, ``n`` (pairs used), and for information
        ``cv_median_abs_log2`` and ``cv_within_sqrt2`` (the cross-validated gated predictions' error)
        and ``diameter_range`` (of the training masks).

    Raises
    ------
    ConfigError
        Fewer than 4 pairs with objects, different lengths, or empty / negative ``alphas`` or ``gates``.
    InputError
        A bad image or mask (dims, NaN, constant image, shape mismatch, float mask).

    Examples
    --------
    >>> import numpy as np
    >>> from skimage.draw import disk
    >>> def pair(r):
    ...     lab = np.zeros((128, 128), np.uint16)
    ...     for i, c in enumerate([(32, 32), (32, 96), (96, 32), (96, 96)], 1):
    ...         lab[disk(c, r, shape=lab.shape)] = i
    ...     return (lab > 0).astype(np.float32), lab
    >>> pairs = [pair(r) for r in (4, 6, 9, 14, 20)]
    >>> model = fit_size_model([p[0] for p in pairs], [p[1] for p in pairs])
    >>> model["n"], round(predict_diameter(model, pair(11)[0]) / 22, 1)
    (5, 1.0)
    """
    if len(images) != len(masks):
        raise ConfigError(f"fit_size_model: {len(images)} images but {len(masks)} masks")
    alphas, gates = [float(a) for a in alphas], [float(g) for g in gates]
    if not alphas or min(alphas) < 0:
        raise ConfigError(f"fit_size_model: alphas must be non-empty and >= 0, got {alphas}")
    if not gates or min(gates) < 0:
        raise ConfigError(f"fit_size_model: gates must be non-empty and >= 0, got {gates}")
    feats, logd, classical, ndims = [], [], [], set()
    for i, (img, mask) in enumerate(zip(images, masks)):
        img = _check_image(img, f"image {i}")
        mask = np.asarray(mask)
        if mask.shape != img.shape:
            raise InputError(f"mask {i} has shape {mask.shape}, its image {img.shape}")
        if mask.dtype.kind not in "biu":
            raise InputError(f"mask {i} must be integer instance labels, got dtype {mask.dtype}")
        d = labels_diameter(mask)
        if d is None:
            continue
        ndims.add(img.ndim)
        f, d_classical = _features(img)
        feats.append(f)
        classical.append(np.nan if d_classical is None else np.log(d_classical))
        logd.append(np.log(d))
    if len(ndims) > 1:
        raise InputError(f"fit_size_model: images of mixed dimensionality {sorted(ndims)}")
    if len(feats) < 4:  # every cross-validation fold's ridge needs 3
        raise ConfigError(f"fit_size_model needs at least 4 pairs whose mask has objects, got {len(feats)}")
    X, y, classical = np.array(feats), np.array(logd), np.array(classical)
    ridge = fit_ridge(X, y, alphas)
    # the gate on cross-validated predictions (each fold's ridge with its own leave-one-out α), scored by
    # the squared error as α was (ties: the smaller gate)
    folds = np.arange(len(y)) % min(CV_FOLDS, len(y))
    cv = np.empty_like(y)
    for k in np.unique(folds):
        cv[folds == k] = predict_ridge(fit_ridge(X[folds != k], y[folds != k], alphas), X[folds == k])
    gate_errs = [float(np.mean((_gated(cv, classical, g) - y) ** 2)) for g in gates]
    gate = float(gates[int(np.argmin(gate_errs))])
    final = np.abs(_gated(cv, classical, gate) - y) / np.log(2)
    log.info("size model: %d pairs, alpha %g, gate %g log2, cross-validated within sqrt2 %.3f", len(y),
             ridge["alpha"], gate, np.mean(final <= 0.5))
    return {
        "kind": MODEL_KIND, "version": MODEL_VERSION, "ndim": int(ndims.pop()), "sigmas": list(SIGMAS),
        "ridge": ridge, "gate_log2": gate, "n": int(len(y)),
        "cv_median_abs_log2": float(np.median(final)), "cv_within_sqrt2": float(np.mean(final <= 0.5)),
        "diameter_range": [float(np.exp(y.min())), float(np.exp(y.max()))],
    }


def _check_model(model: dict) -> None:
    """The parts of a size model that :func:`predict_ridge` does not check itself."""
    if not isinstance(model, dict) or model.get("kind") != MODEL_KIND:
        raise ConfigError(f"size model: not a {MODEL_KIND} dict")
    if model.get("version") != MODEL_VERSION:
        raise ConfigError(f"size model: version {model.get('version')}, this code reads {MODEL_VERSION}")
    if [float(s) for s in model.get("sigmas", [])] != list(SIGMAS):
        raise ConfigError("size model: computed on another σ grid than this code's SIGMAS")
    gate = model.get("gate_log2")
    if not isinstance(gate, (int, float)) or gate < 0:
        raise ConfigError(f"size model: 'gate_log2' must be a number >= 0, got {gate!r}")
    if not isinstance(model.get("ridge"), dict):
        raise ConfigError("size model: no 'ridge' dict")


def predict_diameter(model: dict, image: np.ndarray) -> float | None:
    """Label-free median object diameter (px / voxels) of ``image`` from a :func:`fit_size_model` model.

    The regressor's estimate, or the classical one (:func:`classical.image_object_scale`) where the
    two agree within the model's ``gate_log2``.

    Returns None for a constant image (no structure to measure), as
    :func:`cellsynth.segment.rescale.image_diameter` does when it finds no object.

    Raises
    ------
    ConfigError
        Not a size-model dict, another version or σ grid.
    InputError
        The image's dimensionality differs from the model's, or NaN / infinite values.

    Examples
    --------
    See :func:`fit_size_model`.
    """
    _check_model(model)
    x = _check_image(image)
    if x.ndim != model["ndim"]:
        raise InputError(f"image is {x.ndim}D but the size model was fitted on {model['ndim']}D images")
    if np.ptp(x) == 0:
        return None
    f, d_classical = _features(x)
    log_d = predict_ridge(model["ridge"], f[None])[0]
    if d_classical is not None:
        log_d = _gated(log_d, np.log(d_classical), float(model["gate_log2"]))
    return float(np.exp(log_d))
