"""Segmentation metrics for 2D and 3D label images.

Instance metrics follow StarDist's ``stardist.matching`` exactly (Schmidt et
al. 2018; Weigert et al. 2020): :func:`matching` (tp/fp/fn, precision, recall,
f1, accuracy = the DSB 2018 "AP", mean_true_score, mean_matched_score,
panoptic_quality), :func:`matching_dataset` (counts pooled over images) and
:func:`average_precision` (accuracy averaged over IoU thresholds 0.5:0.95).
:func:`seg_score` is the Cell Tracking Challenge SEG measure. Pixel metrics:
:func:`dice`, :func:`class_scores` (per-class Dice/precision/recall, Rosa et al.),
:func:`boundary_f1` (Eschweiler et al. 2019, 2-px tolerance), :func:`centroid_accuracy`
(Eschweiler et al. 2019 local-maximum detection accuracy; Eschweiler et al. 2021 5-voxel tolerance) and
:func:`tolerant_iou` (Eschweiler et al. 2021 class IoU with an allowed misplacement).

Label images: non-negative integers (bool accepted), 0 = background; label
ids need not be consecutive. Bad input raises :class:`~cellsynth.io.InputError`
with one line naming the argument.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
from scipy import ndimage
from scipy.optimize import linear_sum_assignment

from ..errors import InputError

__all__ = [
    "label_overlap", "matching", "matching_dataset", "pool_matching", "average_precision", "seg_score",
    "seg_per_object", "dice", "class_scores", "tolerant_iou", "boundary_f1", "centroid_accuracy",
    "DEFAULT_THRESHOLDS",
]

DEFAULT_THRESHOLDS = tuple(float(t) for t in np.round(np.arange(0.5, 1.0, 0.05), 2))
"""IoU thresholds 0.50, 0.55, ..., 0.95 (COCO / DSB 2018)."""

CRITERIA = ("iou", "iot", "iop")


# --------------------------------------------------------------------------- validation
def _labels(x, name: str) -> np.ndarray:
    a = np.asarray(x)
    if a.dtype == bool:
        return a.astype(np.int64)
    if not np.issubdtype(a.dtype, np.integer):
        raise InputError(f"{name} has dtype {a.dtype}; expected integer labels (0 = background)")
    if a.size == 0:
        raise InputError(f"{name} is empty")
    if a.min() < 0:
        raise InputError(f"{name} has negative labels")
    return a


def _pair(gt, pred, names=("gt", "pred")) -> tuple[np.ndarray, np.ndarray]:
    g, p = _labels(gt, names[0]), _labels(pred, names[1])
    if g.shape != p.shape:
        raise InputError(f"{names[0]} {g.shape} and {names[1]} {p.shape} must have the same shape")
    return g, p


def _sequential(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Labels renumbered 1..K (0 kept) and the original id of each new label (index 0 = background)."""
    top = int(a.max())
    if top <= max(1 << 20, 4 * a.size):  # lookup table: linear time, no sort
        present = np.bincount(a.ravel(), minlength=top + 1) > 0
        present[0] = True
        ids = np.flatnonzero(present)
        lut = np.zeros(top + 1, dtype=np.int64)
        lut[ids] = np.arange(len(ids))
        return lut[a], ids
    ids, inv = np.unique(a, return_inverse=True)
    inv = inv.reshape(a.shape).astype(np.int64)
    if ids[0] != 0:  # no background pixel: shift so that new label 0 stays unused
        inv += 1
        ids = np.concatenate([[0], ids])
    return inv, ids


# --------------------------------------------------------------------------- overlap/matching
class _Overlap:
    """Sparse joint histogram of two label images: the (gt, pred) pairs that share pixels.

    Built from one ``np.bincount`` over ``g·(K_pred+1) + p`` (``np.unique`` of the
    same codes when the dense table would exceed 4 M cells), with labels first
    renumbered 1..K. Row/column 0 is background.
    """

    def __init__(self, gt, pred):
        g, p = _pair(gt, pred)
        g, self.gid = _sequential(g)
        p, self.pid = _sequential(p)
        kt, kp = len(self.gid), len(self.pid)
        codes = (g * kp + p).ravel()
        if kt * kp <= 1 << 22:
            table = np.bincount(codes, minlength=kt * kp)
            nz = np.flatnonzero(table)
            cnt = table[nz]
        else:
            nz, cnt = np.unique(codes, return_counts=True)
        self.rows, self.cols = np.divmod(nz, kp)
        self.inter = cnt.astype(np.int64)
        self.area_t = np.bincount(g.ravel(), minlength=kt)
        self.area_p = np.bincount(p.ravel(), minlength=kp)
        self.n_true, self.n_pred = kt - 1, kp - 1

    def dense(self) -> np.ndarray:
        ov = np.zeros((self.n_true + 1, self.n_pred + 1), dtype=np.int64)
        ov[self.rows, self.cols] = self.inter
        return ov

    def object_scores(self, criterion: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(true index, pred index, score) of every overlapping object pair, indices from 0."""
        if criterion not in CRITERIA:
            raise InputError(f"criterion must be one of {CRITERIA}, got {criterion!r}")
        obj = (self.rows > 0) & (self.cols > 0)
        r, c, i = self.rows[obj], self.cols[obj], self.inter[obj].astype(np.float64)
        if criterion == "iou":
            den = self.area_t[r] + self.area_p[c] - i
        elif criterion == "iot":
            den = self.area_t[r].astype(np.float64)
        else:
            den = self.area_p[c].astype(np.float64)
        return r - 1, c - 1, i / den


def label_overlap(gt, pred) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Joint pixel-count histogram of two label images.

    Returns (overlap, gt_ids, pred_ids): ``overlap[i, j]`` = number of pixels with
    gt label ``gt_ids[i]`` and pred label ``pred_ids[j]`` (row/column 0 =
    background), from one ``np.bincount`` over ``g·(K_pred+1) + p``.
    """
    ov = _Overlap(gt, pred)
    return ov.dense(), ov.gid, ov.pid


def _ratio(num: float, den: float) -> float:
    return float(num / den) if den > 0 else 0.0


def _counts_to_stats(tp: int, fp: int, fn: int, n_true: int, n_pred: int, sum_score: float,
                     thresh: float, criterion: str) -> dict:
    # StarDist: precision/recall/accuracy/f1 are 0 whenever tp == 0
    return dict(
        criterion=criterion, thresh=float(thresh), fp=int(fp), tp=int(tp), fn=int(fn),
        precision=_ratio(tp, tp + fp) if tp > 0 else 0.0,
        recall=_ratio(tp, tp + fn) if tp > 0 else 0.0,
        accuracy=_ratio(tp, tp + fp + fn) if tp > 0 else 0.0,
        f1=_ratio(2 * tp, 2 * tp + fp + fn) if tp > 0 else 0.0,
        n_true=int(n_true), n_pred=int(n_pred),
        mean_true_score=_ratio(sum_score, n_true),
        mean_matched_score=_ratio(sum_score, tp),
        panoptic_quality=_ratio(sum_score, tp + fp / 2 + fn / 2),
    )


def _components(r: np.ndarray, c: np.ndarray, n_true: int, n_pred: int) -> np.ndarray:
    """Connected-component id of every overlapping pair in the bipartite overlap graph."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    n = n_true + n_pred
    graph = coo_matrix((np.ones(len(r)), (r, n_true + c)), shape=(n, n))
    _, lab = connected_components(graph, directed=False)
    return lab[r]


def _assign(r, c, s, n_true: int, n_pred: int, thr: float, comp: np.ndarray | None,
            all_pairs: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Optimal one-to-one assignment maximising the number of pairs with score >= thr.

    Ties between assignments with equally many such pairs go to the larger
    total score (each score enters divided by 2·min(n_true, n_pred), so the
    tie-breaker never outweighs one more matched pair), as in StarDist. Pairs
    without overlap cost nothing, so the problem splits into the connected
    components of the overlap graph, each solved with
    ``scipy.optimize.linear_sum_assignment``; a component whose pairs >= thr
    share no object needs no solver (all of them are matched).
    Returns (true index, pred index, score) of the assigned overlapping pairs
    (only those >= thr unless ``all_pairs``).
    """
    n_matched = min(n_true, n_pred)
    ok = s >= thr
    if n_matched == 0 or not ok.any():
        if not all_pairs:
            e = np.zeros(0, dtype=np.int64)
            return e, e, np.zeros(0)
    deg_t = np.bincount(r[ok], minlength=n_true)
    deg_p = np.bincount(c[ok], minlength=n_pred)
    conflict = ok & ((deg_t[r] > 1) | (deg_p[c] > 1))
    if all_pairs:
        hard = np.unique(comp)
    else:
        hard = np.unique(comp[conflict]) if conflict.any() else np.zeros(0, dtype=np.int64)
    is_hard = np.isin(comp, hard) if len(hard) else np.zeros(len(r), dtype=bool)
    keep = ok & ~is_hard  # conflict-free components: every pair >= thr is matched
    out_r, out_c, out_s = [r[keep]], [c[keep]], [s[keep]]
    if len(hard):
        order = np.argsort(comp, kind="stable")
        cs = comp[order]
        starts = np.searchsorted(cs, hard)
        ends = np.searchsorted(cs, hard, side="right")
        for a, b in zip(starts, ends):
            idx = order[a:b]
            ur, rr = np.unique(r[idx], return_inverse=True)
            uc, cc = np.unique(c[idx], return_inverse=True)
            sub = np.zeros((len(ur), len(uc)))
            sub[rr, cc] = s[idx]
            cost = -(sub >= thr).astype(np.float64) - sub / (2 * n_matched)
            ti, pi = linear_sum_assignment(cost)
            sel = (sub[ti, pi] > 0) if all_pairs else (sub[ti, pi] >= thr)
            out_r.append(ur[ti[sel]])
            out_c.append(uc[pi[sel]])
            out_s.append(sub[ti[sel], pi[sel]])
    return np.concatenate(out_r), np.concatenate(out_c), np.concatenate(out_s)


def _assign_dense(r, c, s, n_true: int, n_pred: int, thr: float):
    """StarDist's assignment on the full score matrix (needed for thr <= 0, where empty pairs count)."""
    n_matched = min(n_true, n_pred)
    if n_matched == 0:
        e = np.zeros(0, dtype=np.int64)
        return e, e, np.zeros(0)
    scores = np.zeros((n_true, n_pred))
    scores[r, c] = s
    cost = -(scores >= thr).astype(np.float64) - scores / (2 * n_matched)
    ti, pi = linear_sum_assignment(cost)
    return ti, pi, scores[ti, pi]


def matching(gt, pred, thresh: float | Sequence[float] = 0.5, criterion: str = "iou",
             report_matches: bool = False) -> dict | list[dict]:
    """Instance matching metrics with StarDist ``matching`` semantics.

    Ground-truth and predicted objects are paired one-to-one by optimal
    assignment (``scipy.optimize.linear_sum_assignment``) maximising the number
    of pairs whose score (IoU, or intersection over true/pred for
    ``criterion`` "iot"/"iop") is >= ``thresh``. Returned keys: criterion,
    thresh, tp, fp = n_pred − tp, fn = n_true − tp, precision = tp/(tp+fp),
    recall = tp/(tp+fn), accuracy = tp/(tp+fp+fn) (the DSB 2018 "average
    precision" at one threshold), f1 = 2tp/(2tp+fp+fn), n_true, n_pred,
    mean_true_score = Σ matched score / n_true, mean_matched_score = Σ matched
    score / tp, panoptic_quality = Σ matched score / (tp + fp/2 + fn/2).
    Every ratio is 0 when tp = 0 or its denominator is 0 (so empty gt and empty
    pred give 0, as in StarDist). ``report_matches`` adds matched_pairs
    (original label ids), matched_scores and matched_tps (indices of the pairs
    >= thresh); unlike StarDist, assigned pairs without any overlap are not listed.

    ``thresh`` may be a sequence: a list of dicts is returned, the overlap
    being computed once.
    """
    ov = _Overlap(gt, pred)
    r, c, s = ov.object_scores(criterion)
    n_true, n_pred = ov.n_true, ov.n_pred
    thrs = [thresh] if np.isscalar(thresh) else list(thresh)
    comp = None
    out = []
    for thr in thrs:
        thr = float(thr)
        if thr <= 0:
            ti, pi, sc = _assign_dense(r, c, s, n_true, n_pred, thr)
        else:
            if comp is None:
                comp = _components(r, c, n_true, n_pred)
            ti, pi, sc = _assign(r, c, s, n_true, n_pred, thr, comp, report_matches)
        ok = sc >= thr
        tp = int(ok.sum())
        st = _counts_to_stats(tp, n_pred - tp, n_true - tp, n_true, n_pred, float(sc[ok].sum()), thr, criterion)
        if report_matches:
            order = np.argsort(ti, kind="stable")
            ti, pi, sc, ok = ti[order], pi[order], sc[order], ok[order]
            st["matched_pairs"] = [(int(ov.gid[i + 1]), int(ov.pid[j + 1])) for i, j in zip(ti, pi)]
            st["matched_scores"] = [float(v) for v in sc]
            st["matched_tps"] = [int(k) for k in np.flatnonzero(ok)]
        out.append(st)
    return out[0] if np.isscalar(thresh) else out


def matching_dataset(gts: Iterable, preds: Iterable, thresh: float | Sequence[float] = 0.5,
                     criterion: str = "iou", by_image: bool = False,
                     progress: bool = False) -> dict | list[dict]:
    """:func:`matching` over a list of image pairs (StarDist ``matching_dataset``).

    ``by_image=False`` (default): tp/fp/fn, n_true, n_pred and the matched-score
    sums are added over all images, then the ratios computed once (an object
    in a crowded image counts as much as one in a sparse image).
    ``by_image=True``: counts are summed, ratios averaged over images.
    """
    gts, preds = list(gts), list(preds)
    if len(gts) != len(preds):
        raise InputError(f"gts has {len(gts)} images but preds has {len(preds)}")
    if not gts:
        raise InputError("gts is an empty list")
    single = np.isscalar(thresh)
    thrs = [float(thresh)] if single else [float(t) for t in thresh]
    pairs = zip(gts, preds)
    if progress:
        from tqdm import tqdm
        pairs = tqdm(pairs, total=len(gts), desc="matching", unit="img", leave=False)
    per_image = [matching(g, p, thresh=thrs, criterion=criterion) for g, p in pairs]
    out = [pool_matching([r[k] for r in per_image], by_image=by_image) for k in range(len(thrs))]
    return out[0] if single else out


def pool_matching(rows: Sequence[dict], by_image: bool = False) -> dict:
    """Combine :func:`matching` results of several images at one threshold (see :func:`matching_dataset`)."""
    rows = list(rows)
    if not rows:
        raise InputError("no matching results to pool")
    thr, criterion = rows[0]["thresh"], rows[0]["criterion"]
    if any(r["thresh"] != thr or r["criterion"] != criterion for r in rows):
        raise InputError("matching results to pool must share threshold and criterion")
    tot = {key: sum(r[key] for r in rows) for key in ("tp", "fp", "fn", "n_true", "n_pred")}
    sum_score = sum(r["mean_true_score"] * r["n_true"] for r in rows)  # mean_true_score·n_true = Σ matched
    s = _counts_to_stats(tot["tp"], tot["fp"], tot["fn"], tot["n_true"], tot["n_pred"],
                         sum_score, thr, criterion)
    if by_image:
        for key in ("precision", "recall", "accuracy", "f1", "mean_true_score",
                    "mean_matched_score", "panoptic_quality"):
            s[key] = float(np.mean([r[key] for r in rows]))
    s["by_image"] = bool(by_image)
    s["n_images"] = len(rows)
    return s


def _is_list_of_images(x) -> bool:
    return isinstance(x, (list, tuple)) and len(x) > 0 and np.ndim(x[0]) >= 2


def average_precision(gt, pred, thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
                      criterion: str = "iou") -> dict:
    """Mean of the matching accuracy tp/(tp+fp+fn) over IoU ``thresholds`` (DSB 2018 score).

    ``gt``/``pred`` are one pair of label images or two equally long lists
    (counts pooled over images, :func:`matching_dataset`). Returns
    {"ap": mean, "thresholds": [...], "accuracy": [...per threshold...]}.
    """
    thrs = [float(t) for t in np.atleast_1d(thresholds)]
    if not thrs:
        raise InputError("thresholds is empty")
    if _is_list_of_images(gt) or _is_list_of_images(pred):
        rows = matching_dataset(gt, pred, thresh=thrs, criterion=criterion)
    else:
        rows = matching(gt, pred, thresh=thrs, criterion=criterion)
    acc = [r["accuracy"] for r in rows]
    return {"ap": float(np.mean(acc)), "thresholds": thrs, "accuracy": acc}


# --------------------------------------------------------------------------- CTC SEG
def seg_per_object(gt, pred) -> np.ndarray:
    """Jaccard index of every reference object for the CTC SEG measure (Maška et al. 2014).

    For reference object R, the predicted object S with |R∩S| > 0.5·|R| (at most
    one can qualify) gives J = |R∩S| / |R∪S|; no such S gives J = 0.
    Returns one J per reference object (ascending label id).
    """
    ov = _Overlap(gt, pred)
    j = np.zeros(ov.n_true)
    r, c, inter = ov.rows, ov.cols, ov.inter
    # strictly more than half of R: at most one S per R can qualify
    hit = (r > 0) & (c > 0) & (2 * inter > ov.area_t[r])
    r, c, inter = r[hit], c[hit], inter[hit]
    j[r - 1] = inter / (ov.area_t[r] + ov.area_p[c] - inter)
    return j


def seg_score(gt, pred) -> float:
    """CTC SEG: mean Jaccard over reference objects (see :func:`seg_per_object`).

    NaN when ``gt`` has no objects (undefined; the CTC skips such frames). For a
    data set, pool :func:`seg_per_object` over images and take the mean.
    """
    j = seg_per_object(gt, pred)
    return float(j.mean()) if j.size else float("nan")


# --------------------------------------------------------------------------- pixel metrics
def _binary(x, name: str) -> np.ndarray:
    a = np.asarray(x)
    if a.size == 0:
        raise InputError(f"{name} is empty")
    if np.issubdtype(a.dtype, np.floating) and not np.all(np.isfinite(a)):
        raise InputError(f"{name} contains NaN or infinite values")
    return a > 0


def dice(gt, pred, empty_score: float = 1.0) -> float:
    """Dice coefficient 2|G∩P| / (|G| + |P|) of the foregrounds (non-zero pixels).

    Label images are binarised (> 0). Both empty: ``empty_score`` (1.0: perfect agreement).
    """
    g, p = _binary(gt, "gt"), _binary(pred, "pred")
    if g.shape != p.shape:
        raise InputError(f"gt {g.shape} and pred {p.shape} must have the same shape")
    den = g.sum() + p.sum()
    return float(2 * np.logical_and(g, p).sum() / den) if den else float(empty_score)


def class_scores(gt_classes, pred_classes, classes: Sequence[int] | None = None,
                 empty_score: float = 1.0) -> dict:
    """Pixel-wise Dice, precision and recall per semantic class (Rosa et al.: nuclei, Golgi).

    ``gt_classes``/``pred_classes``: integer class maps (0 = background).
    ``classes``: class values to score (default: every non-zero value in either
    map). Returns {class: {dice, precision, recall, tp, fp, fn}}. Dice of a class
    absent from both maps is ``empty_score``; precision (recall) with no
    predicted (true) pixels of that class is NaN (undefined; skip with nanmean).
    """
    g, p = _pair(gt_classes, pred_classes, ("gt_classes", "pred_classes"))
    if classes is None:
        classes = [int(c) for c in np.union1d(np.unique(g), np.unique(p)) if c != 0]
    out = {}
    for c in classes:
        gc, pc = g == c, p == c
        tp = int(np.logical_and(gc, pc).sum())
        fp = int(pc.sum()) - tp
        fn = int(gc.sum()) - tp
        out[int(c)] = dict(
            dice=2 * tp / (2 * tp + fp + fn) if tp + fp + fn else float(empty_score),
            precision=tp / (tp + fp) if tp + fp else float("nan"),
            recall=tp / (tp + fn) if tp + fn else float("nan"),
            tp=tp, fp=fp, fn=fn,
        )
    return out


def tolerant_iou(gt, pred, tolerance: float = 0.0, spacing: Sequence[float] | None = None) -> float:
    """IoU of two binary masks allowing predictions to lie within ``tolerance`` of the truth (Eschweiler et al. 2021).

    Eschweiler et al. 2021 scores thin classes with an allowed misplacement (1 voxel for
    background/membrane, 5 voxels for centroids). Here a ground-truth pixel
    is found (tp) when a predicted pixel lies within ``tolerance`` (Euclidean,
    ``spacing`` units), a predicted pixel is false (fp) when no ground-truth
    pixel does, and IoU = tp / (|G| + fp), i.e. tp / (tp + fn + fp). With
    ``tolerance=0`` this is the ordinary IoU. Both empty: 1.0.
    """
    g, p = _binary(gt, "gt"), _binary(pred, "pred")
    if g.shape != p.shape:
        raise InputError(f"gt {g.shape} and pred {p.shape} must have the same shape")
    if tolerance < 0:
        raise InputError(f"tolerance must be >= 0, got {tolerance}")
    if not g.any() and not p.any():
        return 1.0
    if not g.any() or not p.any():
        return 0.0
    near_p = ndimage.distance_transform_edt(~p, sampling=spacing) <= tolerance
    near_g = ndimage.distance_transform_edt(~g, sampling=spacing) <= tolerance
    tp = int(np.logical_and(g, near_p).sum())
    fp = int(np.logical_and(p, ~near_g).sum())
    return float(tp / (int(g.sum()) + fp))


def _boundary(x: np.ndarray, is_boundary: bool) -> np.ndarray:
    from ..simulate.encode import boundaries

    if is_boundary:
        return x > 0
    # inner boundaries: pixels of an object touching another label or background
    return boundaries(x)


def boundary_f1(gt, pred, tolerance: float = 2.0, spacing: Sequence[float] | None = None,
                boundaries: bool = False) -> dict:
    """Boundary F1 with a distance tolerance (Eschweiler et al. 2019: 2-pixel safety margin around membranes).

    Boundary pixels of ``gt`` and ``pred`` (inner object boundaries of label
    images, or the masks themselves when ``boundaries=True``, e.g. predicted
    membrane masks) count as matched when the other set has a boundary pixel
    within ``tolerance`` (Euclidean, in ``spacing`` units; pixels when None):
    precision = matched pred boundary / pred boundary, recall = matched gt
    boundary / gt boundary, f1 = 2PR/(P+R). Both empty: all 1.0; one empty: 0.0.
    """
    g, p = (_binary(gt, "gt"), _binary(pred, "pred")) if boundaries else _pair(gt, pred)
    if g.shape != p.shape:
        raise InputError(f"gt {g.shape} and pred {p.shape} must have the same shape")
    gb, pb = _boundary(np.asarray(g), boundaries), _boundary(np.asarray(p), boundaries)
    ng, npred = int(gb.sum()), int(pb.sum())
    if ng == 0 and npred == 0:
        return dict(precision=1.0, recall=1.0, f1=1.0, n_true=0, n_pred=0)
    if ng == 0 or npred == 0:
        return dict(precision=0.0, recall=0.0, f1=0.0, n_true=ng, n_pred=npred)
    d_to_g = ndimage.distance_transform_edt(~gb, sampling=spacing)
    d_to_p = ndimage.distance_transform_edt(~pb, sampling=spacing)
    prec = float((d_to_g[pb] <= tolerance).mean())
    rec = float((d_to_p[gb] <= tolerance).mean())
    f1 = 2 * prec * rec / (prec + rec) if prec + rec > 0 else 0.0
    return dict(precision=prec, recall=rec, f1=float(f1), n_true=ng, n_pred=npred)


def _kind(a: np.ndarray, shape: tuple | None) -> str:
    """Guess how a centroid input is given: "labels", "map" (float image) or "points"."""
    integer = np.issubdtype(a.dtype, np.integer) or a.dtype == bool
    if shape is not None:
        if a.shape == shape:
            return "labels" if integer else "map"
        return "points"
    if integer:
        return "labels"
    return "points" if a.ndim == 2 and a.shape[1] in (2, 3) else "map"


def _points(x, kind: str, shape: tuple | None, name: str, min_distance: int,
            threshold: float | None) -> np.ndarray:
    """(N, ndim) float coordinates from labels (centroids), a map (local maxima) or points."""
    a = np.asarray(x)
    if kind == "auto":
        kind = _kind(a, shape)
    if kind == "points":
        if a.size == 0:
            return np.zeros((0, len(shape) if shape else 2))
        pts = np.asarray(a, dtype=np.float64)
        nd = len(shape) if shape else pts.shape[-1]
        if pts.ndim != 2 or pts.shape[1] != nd:
            raise InputError(f"{name} points must be an (N, {nd}) array, got shape {pts.shape}")
        if not np.all(np.isfinite(pts)):
            raise InputError(f"{name} points contain NaN or infinite values")
        return pts
    if shape is not None and a.shape != shape:
        raise InputError(f"{name} {a.shape} must have the shape of gt {shape}")
    if kind == "labels":
        lab = _labels(a, name)
        ids = np.unique(lab)
        ids = ids[ids != 0]
        if not len(ids):
            return np.zeros((0, lab.ndim))
        com = ndimage.center_of_mass(np.ones(lab.shape), lab, ids)
        return np.asarray(com, dtype=np.float64).reshape(-1, lab.ndim)
    if kind == "map":
        from skimage.feature import peak_local_max

        m = np.asarray(a, dtype=np.float64)
        if not np.all(np.isfinite(m)):
            raise InputError(f"{name} contains NaN or infinite values")
        return peak_local_max(m, min_distance=min_distance, threshold_abs=threshold,
                              exclude_border=False).astype(np.float64)
    raise InputError(f"{name} kind must be 'auto', 'labels', 'points' or 'map', got {kind!r}")


def centroid_accuracy(gt, pred, tolerance: float = 5.0, spacing: Sequence[float] | None = None,
                      gt_kind: str = "auto", pred_kind: str = "auto", min_distance: int = 2,
                      threshold: float | None = 0.5) -> dict:
    """Centroid detection accuracy (local maxima: Eschweiler et al. 2019; 5-voxel tolerance: Eschweiler et al. 2021).

    Reference points: centroids of the ``gt`` label image, or ``gt`` itself as
    an (N, ndim) point array. Detections from ``pred``: centroids of a label
    image, an (N, ndim) point array, or the local maxima of a float centroid
    probability map (``skimage.feature.peak_local_max`` with ``min_distance``
    and ``threshold_abs=threshold``). Points are paired one-to-one by optimal
    assignment among pairs at most ``tolerance`` apart (Euclidean, in
    ``spacing`` units), so one detection cannot claim two cells.

    Returns {accuracy = tp / n_true (fraction of reference centroids detected;
    NaN without reference points), precision = tp / n_pred, recall (= accuracy,
    0 when undefined), f1 = 2tp / (n_true + n_pred), tp, n_true, n_pred}.
    ``*_kind="auto"``: integer arrays are labels, float arrays of the gt image
    shape are maps, (N, ndim) arrays are points.
    """
    g = np.asarray(gt)
    gp = _points(g, gt_kind, None, "gt", min_distance, threshold)
    gk = gt_kind if gt_kind != "auto" else _kind(g, None)
    shape = g.shape if gk in ("labels", "map") else None
    pp = _points(pred, pred_kind, shape, "pred", min_distance, threshold)
    if shape is None and len(gp) and len(pp) and gp.shape[1] != pp.shape[1]:
        raise InputError(f"gt points have {gp.shape[1]} coordinates but pred has {pp.shape[1]}")
    if tolerance < 0:
        raise InputError(f"tolerance must be >= 0, got {tolerance}")
    n_true, n_pred = len(gp), len(pp)
    tp = 0
    if n_true and n_pred:
        sp = np.ones(gp.shape[1]) if spacing is None else np.asarray(spacing, dtype=np.float64)
        d = np.sqrt((((gp[:, None, :] - pp[None, :, :]) * sp) ** 2).sum(-1))
        close = d <= tolerance
        if close.any():
            # maximise the number of pairs within tolerance; shorter distances break ties
            tie = np.where(close, d / ((tolerance + 1.0) * 2 * min(n_true, n_pred)), 0.0)
            ti, pi = linear_sum_assignment(-close.astype(np.float64) + tie)
            tp = int(close[ti, pi].sum())
    return dict(accuracy=tp / n_true if n_true else float("nan"),
                precision=tp / n_pred if n_pred else 0.0,
                recall=tp / n_true if n_true else 0.0,
                f1=2 * tp / (n_true + n_pred) if n_true + n_pred else 0.0,
                tp=tp, n_true=n_true, n_pred=n_pred)
