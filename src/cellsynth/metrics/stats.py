"""Summaries of per-image scores and the Wilcoxon rank-sum test (Eschweiler et al. 2024).

Eschweiler et al. 2024 compares per-cell IoU distributions of two segmentation models with a
Wilcoxon rank-sum test; :func:`rank_sum` wraps ``scipy.stats.ranksums`` with
the summaries that belong beside a p-value.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import stats

from ..errors import InputError

__all__ = ["summary", "rank_sum"]


def _values(x, name: str, drop_nan: bool = True) -> np.ndarray:
    try:
        a = np.asarray(x, dtype=np.float64).ravel()
    except (TypeError, ValueError):
        raise InputError(f"{name} must be a sequence of numbers") from None
    if np.any(np.isinf(a)):
        raise InputError(f"{name} contains infinite values")
    if drop_nan:
        a = a[~np.isnan(a)]
    elif np.any(np.isnan(a)):
        raise InputError(f"{name} contains NaN values")
    return a


def summary(values: Sequence[float]) -> dict:
    """n, mean, std (ddof=1), median, 25/75 % quantiles, min, max of ``values``, NaNs dropped.

    Statistics of an empty input are NaN (n = 0), so a summary can always be written.
    """
    a = _values(values, "values")
    if a.size == 0:
        nan = float("nan")
        return dict(n=0, mean=nan, std=nan, median=nan, q25=nan, q75=nan, min=nan, max=nan)
    q25, med, q75 = np.percentile(a, [25, 50, 75])
    return dict(n=int(a.size), mean=float(a.mean()), std=float(a.std(ddof=1)) if a.size > 1 else 0.0,
                median=float(med), q25=float(q25), q75=float(q75), min=float(a.min()), max=float(a.max()))


def rank_sum(a: Sequence[float], b: Sequence[float], alternative: str = "two-sided") -> dict:
    """Wilcoxon rank-sum test of two independent samples (``scipy.stats.ranksums``), NaNs dropped.

    Returns {statistic, pvalue, alternative, n_a, n_b, median_a, median_b}.
    ``alternative``: "two-sided", "less" (a tends to be smaller) or "greater".
    Needs at least one value in each sample.
    """
    x, y = _values(a, "a"), _values(b, "b")
    if x.size == 0 or y.size == 0:
        raise InputError(f"rank-sum test needs values in both samples (got {x.size} and {y.size})")
    if alternative not in ("two-sided", "less", "greater"):
        raise InputError(f"alternative must be 'two-sided', 'less' or 'greater', got {alternative!r}")
    res = stats.ranksums(x, y, alternative=alternative)
    return dict(statistic=float(res.statistic), pvalue=float(res.pvalue), alternative=alternative,
                n_a=int(x.size), n_b=int(y.size), median_a=float(np.median(x)), median_b=float(np.median(y)))
