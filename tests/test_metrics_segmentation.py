"""Segmentation metrics: hand-computed cases, StarDist semantics, CTC SEG, 2D and 3D."""
from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from cellsynth.errors import InputError
from cellsynth.metrics import segmentation as sg


def case_a():
    """2 gt objects, 3 predictions: IoU exactly 0.5, 1.0 and one false positive."""
    gt = np.zeros((10, 10), np.uint16)
    gt[0:4, 0:4] = 1  # 16 px
    gt[5:10, 5:10] = 2  # 25 px
    pred = np.zeros_like(gt)
    pred[0:4, 0:2] = 1  # 8 px inside gt 1: IoU 8/16 = 0.5, covers exactly half of R
    pred[5:10, 5:10] = 2  # identical to gt 2
    pred[0:2, 7:10] = 3  # background: false positive
    return gt, pred


def test_matching_hand_computed_at_threshold_boundary():
    gt, pred = case_a()
    m = sg.matching(gt, pred, thresh=0.5)  # IoU 0.5 >= 0.5 counts
    assert (m["tp"], m["fp"], m["fn"], m["n_true"], m["n_pred"]) == (2, 1, 0, 2, 3)
    assert m["precision"] == pytest.approx(2 / 3)
    assert m["recall"] == 1.0
    assert m["accuracy"] == pytest.approx(2 / 3)
    assert m["f1"] == pytest.approx(4 / 5)
    assert m["mean_matched_score"] == pytest.approx(0.75)
    assert m["mean_true_score"] == pytest.approx(0.75)
    assert m["panoptic_quality"] == pytest.approx(1.5 / 2.5)
    m = sg.matching(gt, pred, thresh=0.51)
    assert (m["tp"], m["fp"], m["fn"]) == (1, 2, 1)
    assert m["precision"] == pytest.approx(1 / 3) and m["recall"] == pytest.approx(0.5)
    assert m["accuracy"] == pytest.approx(1 / 4) and m["f1"] == pytest.approx(2 / 5)
    assert m["mean_matched_score"] == pytest.approx(1.0)
    assert m["mean_true_score"] == pytest.approx(0.5)
    assert m["panoptic_quality"] == pytest.approx(1 / 2.5)


def test_matching_report_matches_original_ids():
    gt, pred = case_a()
    gt[gt == 2] = 40
    pred[pred == 2] = 7
    m = sg.matching(gt, pred, thresh=0.6, report_matches=True)
    assert (40, 7) in m["matched_pairs"]
    k = m["matched_pairs"].index((40, 7))
    assert m["matched_scores"][k] == 1.0 and k in m["matched_tps"]


def test_matching_criteria_iot_iop():
    gt, pred = case_a()
    # pred 1 lies fully inside gt 1: intersection over pred = 1, over true = 0.5
    assert sg.matching(gt, pred, thresh=0.9, criterion="iop")["tp"] == 2
    assert sg.matching(gt, pred, thresh=0.9, criterion="iot")["tp"] == 1
    with pytest.raises(InputError, match="criterion"):
        sg.matching(gt, pred, criterion="dice")


def test_empty_edge_cases_follow_stardist():
    z = np.zeros((8, 8), np.uint16)
    one = z.copy()
    one[2:5, 2:5] = 1
    m = sg.matching(z, z)
    assert (m["tp"], m["fp"], m["fn"], m["n_true"], m["n_pred"]) == (0, 0, 0, 0, 0)
    assert all(m[k] == 0 for k in ("precision", "recall", "accuracy", "f1", "mean_true_score",
                                   "mean_matched_score", "panoptic_quality"))
    m = sg.matching(z, one)
    assert (m["fp"], m["fn"], m["precision"], m["panoptic_quality"]) == (1, 0, 0, 0)
    m = sg.matching(one, z)
    assert (m["fp"], m["fn"], m["recall"]) == (0, 1, 0)
    # object everywhere (no background pixel)
    full = np.ones((4, 4), np.int32)
    assert sg.matching(full, full)["tp"] == 1


@pytest.mark.parametrize("ndim", [2, 3])
def test_identical_inputs_are_perfect(ndim, rng):
    lab = random_labels(rng, (24,) * ndim if ndim == 2 else (10, 16, 16), 6)
    m = sg.matching(lab, lab)
    assert m["f1"] == m["accuracy"] == m["panoptic_quality"] == m["mean_true_score"] == 1.0
    assert sg.average_precision(lab, lab)["ap"] == 1.0
    assert sg.seg_score(lab, lab) == 1.0
    assert sg.dice(lab, lab) == 1.0
    assert sg.boundary_f1(lab, lab)["f1"] == 1.0
    assert sg.centroid_accuracy(lab, lab)["accuracy"] == 1.0


def test_3d_hand_computed():
    gt = np.zeros((6, 8, 8), np.uint16)
    gt[0:4, 0:4, 0:4] = 1  # 64 voxels
    gt[4:6, 4:8, 4:8] = 2  # 32 voxels
    pred = np.zeros_like(gt)
    pred[0:4, 0:4, 0:3] = 5  # 48 voxels in gt 1: IoU 0.75, 48 > 32 -> SEG J = 0.75
    pred[4:6, 4:8, 4:6] = 9  # 16 voxels in gt 2: IoU 0.5, exactly half -> SEG J = 0
    m = sg.matching(gt, pred, thresh=0.5)
    assert (m["tp"], m["fp"], m["fn"]) == (2, 0, 0)
    assert m["mean_matched_score"] == pytest.approx((0.75 + 0.5) / 2)
    assert sg.matching(gt, pred, thresh=0.7)["tp"] == 1
    assert sg.seg_score(gt, pred) == pytest.approx(0.75 / 2)
    assert np.allclose(sg.seg_per_object(gt, pred), [0.75, 0.0])


def test_seg_more_than_half_rule():
    gt, pred = case_a()
    # gt 1 (16 px): pred 1 covers exactly 8 = half -> 0; gt 2 perfect -> 1
    assert sg.seg_score(gt, pred) == pytest.approx(0.5)
    pred[0:4, 0:2] = 0
    pred[0:3, 0:3] = 1  # 9 px > 8: J = 9/16
    assert sg.seg_score(gt, pred) == pytest.approx((9 / 16 + 1) / 2)
    # a prediction spilling outside R: J = |R∩S| / |R∪S|
    pred[0:3, 0:3] = 0
    pred[0:4, 0:5] = 1  # 20 px, 16 inside R
    assert sg.seg_score(gt, pred) == pytest.approx((16 / 20 + 1) / 2)
    assert np.isnan(sg.seg_score(np.zeros_like(gt), pred))  # no reference objects
    assert sg.seg_score(gt, np.zeros_like(gt)) == 0.0


def test_average_precision_over_thresholds():
    gt, pred = case_a()
    r = sg.average_precision(gt, pred)
    assert r["thresholds"][0] == 0.5 and r["thresholds"][-1] == 0.95 and len(r["thresholds"]) == 10
    expect = [2 / 3] + [1 / 4] * 9  # the IoU-1.0 pair survives every threshold
    assert np.allclose(r["accuracy"], expect)
    assert r["ap"] == pytest.approx(np.mean(expect))
    # lists = pooled counts
    r2 = sg.average_precision([gt, gt], [pred, pred], thresholds=[0.5])
    assert r2["accuracy"] == pytest.approx([2 / 3])


def test_matching_dataset_pools_counts():
    gt, pred = case_a()
    z = np.zeros_like(gt)
    one = z.copy()
    one[1:3, 1:3] = 1
    d = sg.matching_dataset([gt, z], [pred, one], thresh=0.5)
    assert (d["tp"], d["fp"], d["fn"], d["n_true"], d["n_pred"]) == (2, 2, 0, 2, 4)
    assert d["precision"] == pytest.approx(0.5) and d["accuracy"] == pytest.approx(0.5)
    assert d["mean_true_score"] == pytest.approx(0.75)
    assert d["panoptic_quality"] == pytest.approx(1.5 / 3)
    b = sg.matching_dataset([gt, z], [pred, one], thresh=0.5, by_image=True)
    assert b["precision"] == pytest.approx((2 / 3 + 0) / 2)
    multi = sg.matching_dataset([gt], [pred], thresh=[0.5, 0.51])
    assert [r["tp"] for r in multi] == [2, 1]
    with pytest.raises(InputError, match="preds has 1"):
        sg.matching_dataset([gt, gt], [pred])


def test_input_validation():
    gt, pred = case_a()
    with pytest.raises(InputError, match="same shape"):
        sg.matching(gt, pred[:, :9])
    with pytest.raises(InputError, match="pred has dtype float"):
        sg.matching(gt, pred.astype(np.float32))
    with pytest.raises(InputError, match="gt has negative"):
        sg.matching(gt.astype(np.int32) - 1, pred)
    with pytest.raises(InputError, match="gt_classes"):
        sg.class_scores(gt[:5], pred)
    with pytest.raises(InputError, match="pred contains NaN"):
        sg.dice(gt, np.full(gt.shape, np.nan))


# ----------------------------------------------------------------- reference implementation
def random_labels(rng, shape, n):
    lab = np.zeros(shape, np.int32)
    for i in range(1, n + 1):
        lo = [rng.integers(0, s - 2) for s in shape]
        hi = [l + rng.integers(2, max(3, s // 2)) for l, s in zip(lo, shape)]
        lab[tuple(slice(l, h) for l, h in zip(lo, hi))] = i
    from skimage.segmentation import relabel_sequential
    return relabel_sequential(lab)[0]


def brute_force(gt, pred, thr):
    """Per-object loops + exhaustive search for the largest set of disjoint pairs with IoU >= thr."""
    gids = [i for i in np.unique(gt) if i]
    pids = [j for j in np.unique(pred) if j]
    iou = np.zeros((len(gids), len(pids)))
    for a, i in enumerate(gids):
        for b, j in enumerate(pids):
            inter = np.sum((gt == i) & (pred == j))
            union = np.sum((gt == i) | (pred == j))
            iou[a, b] = inter / union
    # StarDist's objective: most pairs with IoU >= thr, ties broken by the total IoU of *all*
    # assigned pairs (its cost -(iou >= thr) - iou / (2 n_matched) also counts sub-threshold pairs)
    best = (0, 0.0, 0.0)
    if len(gids) <= len(pids):
        pairs_of = (list(enumerate(perm)) for perm in itertools.permutations(range(len(pids)), len(gids)))
    else:
        pairs_of = ([(a, b) for b, a in enumerate(perm)]
                    for perm in itertools.permutations(range(len(gids)), len(pids)))
    for pairs in pairs_of:
        s = [iou[a, b] for a, b in pairs if iou[a, b] >= thr]
        best = max(best, (len(s), sum(iou[a, b] for a, b in pairs), sum(s)))
    return len(gids), len(pids), (best[0], best[2])


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), thr=st.sampled_from([0.1, 0.3, 0.5, 0.7]), ndim=st.sampled_from([2, 3]))
def test_matching_equals_brute_force(seed, thr, ndim):
    rng = np.random.default_rng(seed)
    shape = (12, 12) if ndim == 2 else (6, 8, 8)
    gt, pred = random_labels(rng, shape, 4), random_labels(rng, shape, 4)
    n_true, n_pred, (tp, score) = brute_force(gt, pred, thr)
    m = sg.matching(gt, pred, thresh=thr)
    assert (m["n_true"], m["n_pred"], m["tp"]) == (n_true, n_pred, tp)
    assert m["mean_true_score"] * n_true == pytest.approx(score)


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 10_000))
@example(seed=208)  # scores differed in the last bit: another summation order
def test_label_permutation_invariance(seed):
    rng = np.random.default_rng(seed)
    gt, pred = random_labels(rng, (16, 16), 5), random_labels(rng, (16, 16), 5)
    perm = np.concatenate([[0], rng.permutation(np.arange(1, 6)) * 1000 + 3])  # arbitrary, non-consecutive ids
    gt2 = perm[gt].astype(np.uint32)
    a, b = sg.matching(gt, pred, thresh=0.3), sg.matching(gt2, pred, thresh=0.3)
    # counts equal, scores equal up to the order of a float sum (ids permuted -> other summation order)
    assert a.keys() == b.keys()
    assert {k: v for k, v in a.items() if not isinstance(v, float)} == \
        {k: v for k, v in b.items() if not isinstance(v, float)}
    assert {k: v for k, v in a.items() if isinstance(v, float)} == \
        pytest.approx({k: v for k, v in b.items() if isinstance(v, float)}, rel=1e-12, abs=1e-12)
    assert sg.seg_score(gt, pred) == pytest.approx(sg.seg_score(gt2, pred))
    # swapping roles swaps precision and recall
    s = sg.matching(pred, gt, thresh=0.3)
    assert s["precision"] == pytest.approx(a["recall"]) and s["tp"] == a["tp"]


# ----------------------------------------------------------------- pixel metrics
def test_dice_and_class_scores():
    g = np.array([[0, 1, 1, 2], [0, 1, 2, 2]])
    p = np.array([[1, 1, 0, 2], [0, 1, 2, 0]])
    assert sg.dice(g, p) == pytest.approx(2 * 4 / (6 + 5))
    assert sg.dice(np.zeros(4), np.zeros(4)) == 1.0
    cs = sg.class_scores(g, p)
    # class 1: gt 3 px, pred 3 px, tp 2; class 2: gt 3, pred 2, tp 2
    assert cs[1]["dice"] == pytest.approx(2 / 3) and cs[1]["precision"] == pytest.approx(2 / 3)
    assert cs[2]["precision"] == 1.0 and cs[2]["recall"] == pytest.approx(2 / 3)
    assert cs[2]["dice"] == pytest.approx(4 / 5)
    cs = sg.class_scores(g, p, classes=[3])
    assert cs[3]["dice"] == 1.0 and np.isnan(cs[3]["precision"])


def test_boundary_f1_tolerance():
    gt = np.zeros((20, 20), np.uint8)
    gt[5:15, 5:12] = 1
    pred = np.roll(gt, 2, axis=1)  # shifted by 2 px
    assert sg.boundary_f1(gt, pred, tolerance=2)["f1"] == 1.0
    r = sg.boundary_f1(gt, pred, tolerance=1)
    assert 0 < r["f1"] < 1
    assert sg.boundary_f1(gt, pred, tolerance=1, spacing=(1.0, 0.5))["f1"] == 1.0  # 2 px = 1 µm
    assert sg.boundary_f1(gt, np.zeros_like(gt))["f1"] == 0.0
    z = np.zeros_like(gt)
    assert sg.boundary_f1(z, z)["f1"] == 1.0
    # membrane masks given directly
    mem = np.zeros((20, 20), bool)
    mem[:, 10] = True
    assert sg.boundary_f1(mem, np.roll(mem, 2, axis=1), boundaries=True)["f1"] == 1.0
    assert sg.boundary_f1(mem, np.roll(mem, 3, axis=1), boundaries=True)["f1"] == 0.0


def test_boundary_f1_3d():
    gt = np.zeros((10, 12, 12), np.uint16)
    gt[2:8, 2:8, 2:8] = 1
    assert sg.boundary_f1(gt, np.roll(gt, 1, axis=0), tolerance=1)["f1"] == 1.0
    assert sg.boundary_f1(gt, np.roll(gt, 3, axis=0), tolerance=1)["f1"] < 1.0


def test_centroid_accuracy_points_labels_map():
    gt = np.zeros((30, 30), np.uint16)
    gt[2:7, 2:7] = 1  # centroid (4, 4)
    gt[20:25, 20:25] = 2  # centroid (22, 22)
    r = sg.centroid_accuracy(gt, np.array([[5.0, 5.0], [12.0, 12.0]]), tolerance=2)
    assert (r["tp"], r["n_true"], r["n_pred"]) == (1, 2, 2) and r["accuracy"] == 0.5
    # one detection between two cells cannot count twice
    r = sg.centroid_accuracy(np.array([[0.0, 0.0], [0.0, 4.0]]), np.array([[0.0, 2.0]]), tolerance=2)
    assert r["tp"] == 1 and r["accuracy"] == 0.5
    # probability map: local maxima above threshold
    yy, xx = np.mgrid[:30, :30]
    prob = np.exp(-((yy - 4) ** 2 + (xx - 5) ** 2) / 4.0) + 0.9 * np.exp(-((yy - 22) ** 2 + (xx - 22) ** 2) / 4.0)
    assert sg.centroid_accuracy(gt, prob, tolerance=2)["accuracy"] == 1.0
    assert sg.centroid_accuracy(gt, prob, tolerance=2, threshold=0.95)["accuracy"] == 0.5
    # 3D labels with anisotropic spacing
    g3 = np.zeros((8, 10, 10), np.uint16)
    g3[1:4, 1:4, 1:4] = 1  # centroid (2, 2, 2)
    pts = np.array([[4.0, 2.0, 2.0]])  # 2 slices away
    assert sg.centroid_accuracy(g3, pts, tolerance=1.5)["tp"] == 0
    assert sg.centroid_accuracy(g3, pts, tolerance=1.5, spacing=(0.5, 1, 1))["tp"] == 1
    assert np.isnan(sg.centroid_accuracy(np.zeros_like(gt), prob)["accuracy"])
    with pytest.raises(InputError, match=r"\(N, 2\)"):
        sg.centroid_accuracy(gt, np.zeros((5, 3)))


# ----------------------------------------------------------------- stats
def test_rank_sum_and_summary(rng):
    from scipy.stats import ranksums

    from cellsynth.metrics import stats

    a, b = rng.normal(0.8, 0.05, 30), rng.normal(0.6, 0.05, 25)
    r = stats.rank_sum(a, b)
    ref = ranksums(a, b)
    assert r["statistic"] == pytest.approx(ref.statistic) and r["pvalue"] == pytest.approx(ref.pvalue)
    assert r["pvalue"] < 1e-6 and (r["n_a"], r["n_b"]) == (30, 25)
    assert stats.rank_sum(a, b, alternative="greater")["pvalue"] < stats.rank_sum(a, b, alternative="less")["pvalue"]
    assert stats.rank_sum(list(a) + [np.nan], b)["n_a"] == 30  # NaNs (e.g. SEG of empty images) dropped
    with pytest.raises(InputError, match="both samples"):
        stats.rank_sum([], b)
    s = stats.summary([1.0, 2.0, 3.0, np.nan])
    assert (s["n"], s["mean"], s["median"], s["min"], s["max"]) == (3, 2.0, 2.0, 1.0, 3.0)
    assert s["std"] == pytest.approx(1.0)
    assert stats.summary([])["n"] == 0 and np.isnan(stats.summary([])["mean"])


def test_tolerant_iou():
    g = np.zeros((20, 20), bool)
    g[:, 10] = True  # a membrane line
    p = np.roll(g, 1, axis=1)
    assert sg.tolerant_iou(g, p, 0) == pytest.approx(0.0)
    assert sg.tolerant_iou(g, p, 1) == 1.0  # within the seed-001 one-voxel allowance
    q = p.copy()
    q[:, 15] = True  # extra far-away line: 20 fp pixels
    assert sg.tolerant_iou(g, q, 1) == pytest.approx(20 / 40)
    a = np.zeros((10, 10), bool)
    a[2:6, 2:6] = True
    b = np.zeros_like(a)
    b[2:6, 4:8] = True
    assert sg.tolerant_iou(a, b, 0) == pytest.approx(8 / 24)  # ordinary IoU
    g3 = np.zeros((6, 8, 8), bool)
    g3[3, 4, 4] = True  # a centroid voxel
    p3 = np.zeros_like(g3)
    p3[3, 4, 7] = True
    assert sg.tolerant_iou(g3, p3, 5) == 1.0 and sg.tolerant_iou(g3, p3, 2) == 0.0
    assert sg.tolerant_iou(np.zeros_like(a), np.zeros_like(a), 1) == 1.0


def dense_reference(gt, pred, thr):
    """StarDist's algorithm on the full IoU matrix (bincount overlap + one linear_sum_assignment)."""
    from scipy.optimize import linear_sum_assignment

    kt, kp = gt.max() + 1, pred.max() + 1
    ov = np.bincount((gt.astype(np.int64) * kp + pred).ravel(), minlength=kt * kp).reshape(kt, kp)
    iou = ov / (ov.sum(0, keepdims=True) + ov.sum(1, keepdims=True) - ov)
    iou = iou[1:, 1:]
    n = min(iou.shape)
    if n == 0 or not np.any(iou >= thr):
        return 0, 0.0
    ti, pi = linear_sum_assignment(-(iou >= thr).astype(float) - iou / (2 * n))
    ok = iou[ti, pi] >= thr
    return int(ok.sum()), float(iou[ti, pi][ok].sum())


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_component_matching_equals_dense_stardist(seed):
    rng = np.random.default_rng(seed)
    gt, pred = random_labels(rng, (48, 48), 30), random_labels(rng, (48, 48), 30)
    thrs = [0.05, 0.2, 0.35, 0.5, 0.8]
    for thr, m in zip(thrs, sg.matching(gt, pred, thresh=thrs)):
        tp, score = dense_reference(gt, pred, thr)
        assert m["tp"] == tp
        assert m["mean_true_score"] * m["n_true"] == pytest.approx(score)
    rep = sg.matching(gt, pred, thresh=0.3, report_matches=True)
    assert len(rep["matched_tps"]) == rep["tp"]
    assert len(set(p for _, p in rep["matched_pairs"])) == len(rep["matched_pairs"])  # one-to-one
