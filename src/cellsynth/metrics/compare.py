"""The two metric pipelines: realism of a synthetic image set, accuracy of a set of segmentations.

``cellsynth evaluate images|segmentation`` and the Syn2Real benchmark both call these, so they
report the same numbers for the same images.

- :func:`compare_images`: real vs synthetic images, each percentile-normalised (0.5 / 99.5 %
  → 0 / 1, clipped) onto one scale; pooled intensity histograms (Bhattacharyya, Hellinger,
  KL; Eschweiler et al. 2024 eq. 4/5), FID/KID on features of an extractor, mean log10
  radially averaged power spectra, and paired metrics (SSIM, PSNR, ...; Eschweiler et al. 2021
  Fig 7 intensity profiles) for images with the same name and shape.
- :func:`score_segmentations`: instance masks vs ground truth, counts pooled over images
  (StarDist ``matching_dataset`` semantics), plus per-image means.
- :func:`score_segmentation`: the per-image scores of one mask (what the benchmark compares arms on).
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence

import numpy as np

from ..errors import InputError
from ..intensity import normalize_percentile
from . import image as im
from . import segmentation as sg
from .stats import summary

ImageSet = Mapping[str, np.ndarray] | Sequence[np.ndarray]
NORMALIZE_PERCENTILES = (0.5, 99.5)
PAIRED_METRICS = ("ssim", "psnr", "nrmse", "zncc", "ncc", "bhattacharyya", "profile_zncc")
SPECTRUM_BINS = 32

__all__ = ["compare_images", "score_segmentations", "score_segmentation", "check_pairs", "mean_log_spectrum",
           "NORMALIZE_PERCENTILES"]


def _named(images: ImageSet) -> dict[str, np.ndarray]:
    if isinstance(images, Mapping):
        return {str(k): v for k, v in images.items()}
    return {f"#{i}": a for i, a in enumerate(images)}  # '#' keeps unnamed sets from pairing with files


def _ndim(sets: Mapping[str, Mapping[str, np.ndarray]]) -> int:
    first = None
    for what, s in sets.items():
        if not s:
            raise InputError(f"the {what} image set is empty")
        for name, a in s.items():
            nd = np.ndim(a)
            if nd not in (2, 3):
                raise InputError(f"{what} image '{name}' has {nd} dimensions; need 2D (YX) or 3D (ZYX)")
            if first is None:
                first = (what, name, nd)
            elif nd != first[2]:
                raise InputError(f"all images must be 2D or all 3D; {what} image '{name}' is {nd}D "
                                 f"but {first[0]} image '{first[1]}' is {first[2]}D")
    return first[2]


def _normalizer(normalize: str) -> Callable[[np.ndarray], np.ndarray]:
    if normalize == "percentile":
        return lambda a: normalize_percentile(a, *NORMALIZE_PERCENTILES, clip=True)
    if normalize == "none":
        return lambda a: np.asarray(a, dtype=np.float64)
    raise InputError(f"normalize must be 'percentile' or 'none', got '{normalize}'")


def mean_log_spectrum(images: Sequence[np.ndarray], n_bins: int = SPECTRUM_BINS) -> tuple[np.ndarray, np.ndarray]:
    """Mean log10 radially averaged power spectrum of ``images`` on a common grid (cycles/px).

    Examples
    --------
    >>> f, p = mean_log_spectrum([np.random.default_rng(0).random((32, 32))])
    >>> f.shape == p.shape == (32,) and float(f[-1])
    0.5
    """
    grid = np.linspace(0.5 / n_bins, 0.5, n_bins)  # common to all image sizes
    logs = []
    for a in images:
        f, p = im.radial_power_spectrum(a)
        logs.append(np.interp(grid, f, np.log10(np.maximum(p, 1e-12))))
    return grid, np.mean(logs, axis=0)


def compare_images(real: ImageSet, synthetic: ImageSet, *, bins: int = 256, normalize: str = "percentile",
                   features: bool = True, extractor: im.FeatureExtractor | None = None,
                   kid_subsets: int = 100, seed: int = 0, progress: bool = False) -> dict:
    """Realism of ``synthetic`` images against ``real`` ones (2D or 3D, any sizes).

    Parameters
    ----------
    real, synthetic : images, as a mapping name → array (names pair images for the paired
        metrics) or a sequence (unpaired).
    bins : histogram bins over [0, 1] (over the data range when ``normalize='none'``).
    normalize : ``'percentile'`` (each image's 0.5 / 99.5 percentiles → 0 / 1, clipped; SSIM and
        PSNR then use data range 1) or ``'none'``.
    features : compute FID/KID (needs ≥ 2 images per set; else they are None with a reason).
    extractor : feature extractor for FID/KID (default :func:`~cellsynth.metrics.image.default_extractor`).
    kid_subsets, seed : KID random subsets and their seed.

    Returns
    -------
    dict with ``n_real``, ``n_synthetic``, ``ndim``, ``normalize``, ``bins``, ``histogram``
    (``bhattacharyya``, ``hellinger``, ``kl_real_synthetic``), ``features`` (``fid``, ``kid``, ...),
    ``spectrum`` (grid, both mean log10 spectra, ``log10_mae``) and ``paired``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> real = [rng.normal(100, 10, (32, 32)) for _ in range(3)]
    >>> out = compare_images(real, [x + 50 for x in real], features=False)
    >>> out["histogram"]["bhattacharyya"] < 1e-9  # offsets vanish under percentile normalisation
    True
    """
    if bins < 2:
        raise InputError(f"bins must be >= 2, got {bins}")
    norm = _normalizer(normalize)
    r0, s0 = _named(real), _named(synthetic)
    ndim = _ndim({"real": r0, "synthetic": s0})
    r = {k: norm(v) for k, v in r0.items()}
    s = {k: norm(v) for k, v in s0.items()}
    rng: tuple[float, float] | None = (0.0, 1.0) if normalize == "percentile" else None
    data_range: float | None = 1.0 if normalize == "percentile" else None
    rl, sl = list(r.values()), list(s.values())

    out: dict = {"n_real": len(rl), "n_synthetic": len(sl), "ndim": ndim, "normalize": normalize, "bins": bins}
    out["histogram"] = {
        "bhattacharyya": im.histogram_distance(rl, sl, bins=bins, range=rng),
        "hellinger": im.histogram_distance(rl, sl, bins=bins, range=rng, form="hellinger"),
        "kl_real_synthetic": im.histogram_kl(rl, sl, bins=bins, range=rng),
    }

    if features:
        ex = extractor if extractor is not None else im.default_extractor()
        feat: dict = {"extractor": ex.name, "note": ex.note}
        if len(rl) >= 2 and len(sl) >= 2:
            fr, fs = ex(rl, progress=progress), ex(sl, progress=progress)
            kid_mean, kid_std = im.kid(fr, fs, n_subsets=kid_subsets, subset_size=1000, seed=seed)
            feat.update(n_features=int(fr.shape[1]), fid=im.fid(fr, fs), kid=kid_mean, kid_std=kid_std,
                        kid_subset_size=min(1000, len(rl), len(sl)))
        else:
            feat.update(fid=None, kid=None, kid_std=None, reason="FID/KID need at least 2 images per set")
        out["features"] = feat

    grid, pr = mean_log_spectrum(rl)
    _, ps = mean_log_spectrum(sl)
    out["spectrum"] = {"freq_cycles_per_px": grid.tolist(), "real_log10_power": pr.tolist(),
                       "synthetic_log10_power": ps.tolist(), "log10_mae": float(np.mean(np.abs(pr - ps)))}

    per, skipped = {}, []
    for name in sorted(set(r) & set(s)):
        a, b = r[name], s[name]
        if a.shape != b.shape:
            skipped.append({"name": name, "reason": f"shapes differ: real {a.shape}, synthetic {b.shape}"})
            continue
        center = -2 if ndim == 3 else None  # 3D: centre xz-slice summed over z (Eschweiler et al. 2021)
        per[name] = {"ssim": im.ssim(a, b, data_range=data_range), "psnr": im.psnr(a, b, data_range=data_range),
                     "nrmse": im.nrmse(a, b), "zncc": im.zncc(a, b), "ncc": im.ncc(a, b),
                     "bhattacharyya": im.histogram_distance(a, b, bins=bins, range=rng),
                     "profile_zncc": im.zncc(*(im.intensity_profile(x, axis=-1, center_axis=center)
                                              for x in (a, b)))}
    paired: dict = {"n_pairs": len(per), "skipped": skipped}
    if per:
        for m in PAIRED_METRICS:
            paired[m] = summary([v[m] for v in per.values() if np.isfinite(v[m])])
        paired["per_image"] = per
    out["paired"] = paired
    return out


def score_segmentation(gt: np.ndarray, pred: np.ndarray, *, thresholds: Sequence[float] = sg.DEFAULT_THRESHOLDS,
                       tolerance: float | None = None, centroid_tolerance: float | None = None) -> dict:
    """Scores of one predicted instance mask against its ground truth.

    AP@0.5 and AP@0.5:0.95 are the DSB 2018 / StarDist "accuracy" tp / (tp + fp + fn) at IoU
    0.5 and its mean over IoU 0.50, 0.55, ..., 0.95; also precision/recall/F1/PQ at 0.5,
    foreground Dice, CTC SEG (NaN without reference objects); boundary F1 and centroid accuracy
    when their tolerances (px) are given. ``matching`` holds one row per threshold.

    Examples
    --------
    >>> gt = np.zeros((16, 16), np.uint16); gt[2:8, 2:8] = 1; gt[10:14, 10:14] = 2
    >>> s = score_segmentation(gt, gt)
    >>> s["ap50"], s["ap50_95"], s["dice"], s["seg"]
    (1.0, 1.0, 1.0, 1.0)
    """
    std = [float(t) for t in sg.DEFAULT_THRESHOLDS]
    thrs = sorted(set(float(t) for t in thresholds) | set(std))
    rows = sg.matching(gt, pred, thresh=thrs)  # one overlap computation for all thresholds
    by = dict(zip(thrs, rows))
    j = sg.seg_per_object(gt, pred)
    out = {"n_true": int(rows[0]["n_true"]), "n_pred": int(rows[0]["n_pred"]),
           "ap50": float(by[0.5]["accuracy"]), "ap50_95": float(np.mean([by[t]["accuracy"] for t in std])),
           "precision50": float(by[0.5]["precision"]), "recall50": float(by[0.5]["recall"]),
           "f1_50": float(by[0.5]["f1"]), "pq_50": float(by[0.5]["panoptic_quality"]),
           "dice": float(sg.dice(gt, pred)), "seg": float(j.mean()) if j.size else float("nan"),
           "matching": by, "seg_per_object": j}
    if tolerance is not None:
        out["boundary_f1"] = float(sg.boundary_f1(gt, pred, tolerance=tolerance)["f1"])
    if centroid_tolerance is not None:
        out["centroid_accuracy"] = float(sg.centroid_accuracy(gt, pred, tolerance=centroid_tolerance)["accuracy"])
    return out


def check_pairs(gt_names: Iterable[str], pred_names: Iterable[str], where: str = "") -> None:
    """Raise a one-line :class:`InputError` unless every name is in both sets (``where`` names the folders).

    >>> check_pairs(["a", "b"], ["b", "a"])
    """
    g, p = set(gt_names), set(pred_names)
    missing, extra = sorted(g - p), sorted(p - g)
    if missing:
        raise InputError(f"{len(missing)} ground-truth mask(s) have no prediction of the same name{where} "
                         f"(e.g. {', '.join(missing[:3])})")
    if extra:
        raise InputError(f"{len(extra)} prediction(s) have no ground-truth mask of the same name{where} "
                         f"(e.g. {', '.join(extra[:3])})")


def score_segmentations(gt: Mapping[str, np.ndarray], pred: Mapping[str, np.ndarray], *,
                        thresholds: Sequence[float] | None = None, tolerance: float = 2.0,
                        centroid_tolerance: float = 5.0, progress: bool = False) -> dict:
    """Score predicted instance masks against ground truth, paired by name (2D or 3D).

    Counts are pooled over all images per IoU threshold (StarDist ``matching_dataset``,
    ``by_image=False``): ``ap50``, ``ap50_95``, ``pq50``, ``per_threshold`` (rows for
    ``thresholds``, default 0.5, 0.55, ..., 0.95); ``seg`` is the mean Jaccard over all
    reference objects of all images (CTC SEG); ``dice``, ``boundary_f1`` (``tolerance`` px;
    Eschweiler et al. 2019) and ``centroid_accuracy`` (``centroid_tolerance`` px; Eschweiler et
    al. 2021) are means over images; ``per_image`` holds each image's scores.

    Every name must be in both mappings and each pair must have one shape (checked first).

    Examples
    --------
    >>> gt = np.zeros((16, 16), np.uint16); gt[2:8, 2:8] = 1
    >>> res = score_segmentations({"a": gt}, {"a": gt})
    >>> res["ap50"], res["n_images"]
    (1.0, 1)
    """
    from tqdm.auto import tqdm

    table_thr = [float(t) for t in (thresholds or sg.DEFAULT_THRESHOLDS)]
    for t in table_thr:
        if not 0.0 < t <= 1.0:
            raise InputError(f"IoU thresholds must lie in (0, 1], got {t}")
    check_pairs(gt, pred)
    if not gt:
        raise InputError("no masks to score")
    for name in sorted(gt):
        if np.shape(gt[name]) != np.shape(pred[name]):
            raise InputError(f"prediction '{name}' has shape {np.shape(pred[name])} but its ground truth has "
                             f"{np.shape(gt[name])}")

    std = [float(t) for t in sg.DEFAULT_THRESHOLDS]
    thrs = sorted(set(table_thr) | set(std))
    per_image, seg_j, rows = {}, [], {t: [] for t in thrs}
    for name in tqdm(sorted(gt), desc="score", disable=not progress, leave=False):
        sc = score_segmentation(gt[name], pred[name], thresholds=thrs, tolerance=tolerance,
                                centroid_tolerance=centroid_tolerance)
        for t in thrs:
            rows[t].append(sc["matching"][t])
        seg_j.append(sc["seg_per_object"])
        per_image[name] = {k: v for k, v in sc.items() if k not in ("matching", "seg_per_object")}

    pooled = {t: sg.pool_matching(rows[t]) for t in thrs}
    all_j = np.concatenate(seg_j)
    return {
        "n_images": len(per_image),
        "ap50": pooled[0.5]["accuracy"],
        "ap50_95": float(np.mean([pooled[t]["accuracy"] for t in std])),
        "pq50": pooled[0.5]["panoptic_quality"],
        "seg": float(all_j.mean()) if all_j.size else float("nan"),
        "dice": summary([v["dice"] for v in per_image.values()])["mean"],
        "boundary_f1": summary([v["boundary_f1"] for v in per_image.values()])["mean"],
        "boundary_tolerance_px": tolerance,
        "centroid_accuracy": summary([v["centroid_accuracy"] for v in per_image.values()])["mean"],
        "centroid_tolerance_px": centroid_tolerance,
        "per_threshold": [pooled[t] for t in table_thr],
        "per_image_summary": {m: summary([v[m] for v in per_image.values()])
                              for m in ("ap50", "ap50_95", "dice", "seg", "boundary_f1")},
        "per_image": per_image,
    }
