"""Object-size regression without labels at prediction: ridge regression from image features to log diameter.

Cellpose's size model (Stringer et al. 2021): the segmenter's own "style" — its contracting path's
features averaged over the image — tells the scale of the objects in it; a linear map from style to
log(median object diameter), fitted on the training pairs (whose masks give the diameter: real or
synthetic alike), estimates the diameter of an unannotated image. :class:`cellsynth.segment.unet.Segmenter`
uses it to choose the resize factor of ``rescale``. The model is a plain JSON-serialisable dict
(no unpickling); torch-free.

The ridge penalty α is chosen by leave-one-out error in closed form (the linear-smoother identity,
from one SVD of the standardised features; the means and scales are those of all n samples, so it is
exact for the ridge weights and approximate for the centring).
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..errors import ConfigError, InputError

ALPHAS = (0.01, 0.1, 1.0, 10.0, 100.0, 1000.0, 10000.0)


def fit_ridge(features: np.ndarray, target: np.ndarray, alphas: Sequence[float] = ALPHAS) -> dict:
    """Ridge regression of ``target`` (n,) on ``features`` (n, p), α chosen by leave-one-out error.

    Features are standardised (zero mean, unit variance over the n samples; constant ones get weight 0).

    Returns
    -------
    dict with ``mean``, ``scale``, ``weights`` (lists of p floats), ``bias``, ``alpha``, ``n`` and
    ``loo_rmse`` (the leave-one-out root-mean-square error at the chosen α, in units of ``target``).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(50, 3))
    >>> m = fit_ridge(x, 2 * x[:, 0] - x[:, 2] + 1)
    >>> float(np.round(predict_ridge(m, [[1.0, 5.0, 0.0]])[0], 1))
    3.0
    """
    x = np.asarray(features, np.float64)
    y = np.asarray(target, np.float64)
    if x.ndim != 2 or y.shape != (x.shape[0],):
        raise InputError(f"size model: features {x.shape} and targets {y.shape} do not pair up (need (n, p) and (n,))")
    if x.shape[0] < 3:
        raise InputError(f"size model: needs at least 3 training images with objects, got {x.shape[0]}")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise InputError("size model: features or targets contain NaN or infinite values")
    mean, scale = x.mean(0), x.std(0)
    scale = np.where(scale > 1e-12, scale, np.inf)  # constant feature: standardised to 0, weight 0
    z = (x - mean) / scale
    bias = float(y.mean())
    yc = y - bias
    u, s, vt = np.linalg.svd(z, full_matrices=False)
    uty = u.T @ yc
    best = None
    for a in alphas:
        shrink = s ** 2 / (s ** 2 + a)
        fitted = u @ (shrink * uty)
        leverage = (u ** 2 * shrink).sum(1)
        # leave-one-out residual of a linear smoother (the centring's leverage 1/n added)
        loo = (yc - fitted) / np.maximum(1.0 - leverage - 1.0 / len(y), 1e-9)
        err = float(np.sqrt(np.mean(loo ** 2)))
        if best is None or err < best[0]:
            best = (err, a)
    err, a = best
    w = vt.T @ (s / (s ** 2 + a) * uty)
    return {"mean": mean.tolist(), "scale": np.where(np.isfinite(scale), scale, 0.0).tolist(), "weights": w.tolist(),
            "bias": bias, "alpha": float(a), "n": int(len(y)), "loo_rmse": err}


def predict_ridge(model: dict, features: np.ndarray) -> np.ndarray:
    """Predictions (n,) of a :func:`fit_ridge` model for ``features`` (n, p)."""
    x = np.atleast_2d(np.asarray(features, np.float64))
    try:
        mean, scale, w = (np.asarray(model[k], np.float64) for k in ("mean", "scale", "weights"))
        bias = float(model["bias"])
    except (KeyError, TypeError, ValueError) as e:
        raise ConfigError(f"size model: not a ridge model ({e})") from None
    if x.shape[1] != w.shape[0] or mean.shape != w.shape or scale.shape != w.shape:
        raise ConfigError(f"size model: made for {w.shape[0]} features, got {x.shape[1]}")
    z = np.divide(x - mean, scale, out=np.zeros_like(x), where=scale > 0)
    return z @ w + bias
