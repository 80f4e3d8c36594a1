"""The grayscale overlap mask of Lesmes-Leon et al. 2025 (Algorithm 1): graph, colouring,
coverage drop, label cap, encode/decode round trip, area filter, report; 2D and 3D."""
from __future__ import annotations

import numpy as np
import pytest

from cellsynth.errors import InputError
from cellsynth.scene import Scene
from cellsynth.simulate import encode


def ball(shape, centre, r):
    g = np.ogrid[tuple(slice(0, s) for s in shape)]
    return sum((x - c) ** 2 for x, c in zip(g, centre)) <= r * r


def graph_masks(n, edges, block=12):
    """Objects realising a graph exactly: each node a private 1×block bar on its own row,
    each edge one pixel both nodes hold (isolated, so no other contacts)."""
    width = block + 2 * len(edges) + 2
    masks = [np.zeros((2 * n + 1, width), bool) for _ in range(n)]
    for i in range(n):
        masks[i][2 * i, :block] = True
    for k, (u, v) in enumerate(edges):
        col = block + 1 + 2 * k
        masks[u][2 * n, col] = masks[v][2 * n, col] = True
    return masks


def cycle(k):
    return [(i, (i + 1) % k) for i in range(k)]


def complete(k):
    return [(i, j) for i in range(k) for j in range(i + 1, k)]


GRAPHS = {  # name: (nodes, edges, labels a greedy breadth-first colouring uses)
    "single": (1, [], 1),
    "isolated": (3, [], 1),
    "path4": (4, [(0, 1), (1, 2), (2, 3)], 2),
    "star": (5, [(0, i) for i in range(1, 5)], 2),
    "cycle4": (4, cycle(4), 2),
    "cycle6": (6, cycle(6), 2),
    "cycle5": (5, cycle(5), 3),
    "triangle": (3, complete(3), 3),
    "k4": (4, complete(4), 4),
    "wheel5": (6, [(0, i) for i in range(1, 6)] + [(a + 1, b + 1) for a, b in cycle(5)], 4),
    "two_clusters": (5, [(0, 1), (2, 3), (3, 4), (2, 4)], 3),
}


@pytest.mark.parametrize("name", sorted(GRAPHS))
def test_label_count_equals_greedy_colouring(name):
    n, edges, expected = GRAPHS[name]
    masks = graph_masks(n, edges)
    area, shared, got_edges = encode.overlap_graph(masks, touching=False)
    assert got_edges == {tuple(sorted(e)) for e in edges} and (area == 12 + np.bincount(
        np.ravel(edges).astype(int), minlength=n)[:n]).all()
    colour, reason = encode.overlap_colouring(masks, max_labels=8, touching=False)
    assert (reason == 0).all() and colour.max() + 1 == expected
    for u, v in edges:
        assert colour[u] != colour[v]
    gray, kept = encode.grayscale_overlap(masks, max_labels=8, touching=False)
    assert len(kept) == n and len(np.unique(gray)) - 1 == expected


def test_label_cap_drops_what_needs_more():
    masks = graph_masks(5, complete(5))
    colour, reason = encode.overlap_colouring(masks, max_labels=4, touching=False)
    assert sorted(colour.tolist()) == [-1, 0, 1, 2, 3] and reason.tolist().count(3) == 1
    colour, reason = encode.overlap_colouring(masks, max_labels=5, touching=False)
    assert (reason == 0).all()


@pytest.mark.parametrize("ndim", [2, 3])
def test_objects_covered_above_threshold_dropped(ndim):
    shape = (40, 40) if ndim == 2 else (20, 40, 40)
    base = np.zeros(shape, bool)
    big = base.copy()
    big[..., 5:35, 5:20] = True
    under = base.copy()
    under[..., 10:20, 10:25] = True    # 10 of 15 columns under `big`: 2/3
    hidden = base.copy()
    hidden[..., 22:30, 8:18] = True   # wholly inside big: 100 %
    c1 = base.copy()
    c1[..., 36:40, 0:10] = True
    c2 = base.copy()
    c2[..., 36:40, 10:20] = True
    mid = base.copy()
    mid[..., 36:40, 6:14] = True         # 50 % under c1, 50 % under c2: kept
    masks = [big, under, hidden, c1, c2, mid]
    colour, reason = encode.overlap_colouring(masks, drop_covered=0.7)
    assert reason.tolist() == [0, 0, 2, 0, 0, 0]
    _, reason = encode.overlap_colouring(masks, drop_covered=0.6)
    assert reason.tolist() == [0, 2, 2, 0, 0, 0]
    _, reason = encode.overlap_colouring(masks, drop_covered=0.4)
    assert reason.tolist() == [0, 2, 2, 0, 0, 2]


@pytest.mark.parametrize("ndim", [2, 3])
def test_round_trip_hand_made_overlaps(ndim):
    shape = (48, 48) if ndim == 2 else (24, 40, 40)
    mid = [s // 2 for s in shape]
    masks = [ball(shape, mid, 7), ball(shape, [m + 4 for m in mid], 5),       # overlapping pair
             ball(shape, [m - 9 for m in mid], 3)]                             # touches the first
    extra = np.zeros(shape, bool)
    extra[(slice(0, 4),) * ndim] = True
    touching = np.zeros(shape, bool)
    touching[(slice(0, 4),) * (ndim - 1) + (slice(4, 8),)] = True              # touches `extra`
    masks += [extra, touching]
    for seed in range(3):
        gray, kept = encode.grayscale_overlap(masks, max_labels=3, rng=np.random.default_rng(seed))
        assert kept.tolist() == [0, 1, 2, 3, 4]
        lab = encode.decode_grayscale(gray, max_labels=3)
        assert lab.max() == 5
        # the smaller object of the overlapping pair is on top and comes back whole;
        # the larger comes back as its visible part; the touching ones stay apart
        for k, m in enumerate(masks):
            visible = m & ~np.any([masks[j] for j in range(len(masks)) if j != k and
                                   masks[j].sum() < m.sum()], 0)
            ids = np.unique(lab[visible])
            assert len(ids) == 1 and ids[0] > 0 and np.array_equal(lab == ids[0], visible)


def test_scene_input_uses_layers():
    shape = (32, 32)
    masks = [ball(shape, (14, 14), 3), ball(shape, (14, 14), 6), ball(shape, (18, 18), 6)]
    sc = Scene.from_masks(masks)
    gray, kept = encode.grayscale_overlap(sc)
    assert kept.tolist() == [1, 2]   # the first lies wholly inside the second: dropped
    lab = encode.decode_grayscale(gray)
    assert lab.max() == 2
    flat = Scene(sc.labels, sc.foreground, sc.spacing)   # no layers: only visible parts, no overlap
    _, kept = encode.grayscale_overlap(flat)
    assert kept.tolist() == [0, 1, 2]


def test_levels_shuffled_per_image_and_spread():
    masks = graph_masks(4, complete(4))
    seen = set()
    for seed in range(12):
        gray, _ = encode.grayscale_overlap(masks, max_labels=4, touching=False, rng=np.random.default_rng(seed))
        assert set(np.unique(gray)) == {0, 64, 128, 191, 255}
        seen.add(tuple(gray[0::2, 0][:4]))
    assert len(seen) > 3


def test_decode_generated_mask_with_area_filter():
    rng = np.random.default_rng(0)
    masks = [ball((64, 64), (20, 20), 8), ball((64, 64), (24, 30), 8), ball((64, 64), (45, 45), 6)]
    gray, _ = encode.grayscale_overlap(masks, max_labels=4, rng=rng)
    noisy = gray.astype(np.float32) + rng.normal(0, 8, gray.shape).astype(np.float32)
    noisy[2, 60] = 200.0                       # a one-pixel speck, as generators make
    raw = encode.decode_grayscale(noisy, max_labels=4)
    lo, hi = encode.area_range([encode.decode_grayscale(gray, 4)], q=(0, 100))
    filtered = encode.decode_grayscale(noisy, max_labels=4, area_range=(lo * 0.5, hi * 1.5))
    assert raw.max() > filtered.max() == 3
    with pytest.raises(InputError, match="NaN"):
        encode.decode_grayscale(np.full((8, 8), np.nan))
    with pytest.raises(InputError, match="2D"):
        encode.decode_grayscale(np.zeros(8))
    with pytest.raises(InputError, match="area_range"):
        encode.decode_grayscale(gray, area_range=(5, 1))


def test_report_counts():
    shape = (32, 32)
    img1 = [ball(shape, (10, 10), 5), ball(shape, (10, 10), 2), ball(shape, (25, 25), 4)]
    img2 = graph_masks(5, complete(5))
    rep = encode.grayscale_report([img1, img2, Scene.from_masks(img1)], max_labels=4)
    assert rep["images"] == 3 and rep["objects"] == 11
    assert rep["dropped_covered"] == 2 and rep["dropped_cap"] == 1 and rep["kept"] == 8
    assert rep["labels_needed_max"] == 5 and rep["labels_used_max"] == 4
    assert rep["labels_used"] == {"1": 2, "4": 1}


def test_bad_inputs_one_line():
    with pytest.raises(InputError, match="no instance masks"):
        encode.grayscale_overlap([])
    with pytest.raises(InputError, match="mask 1 must be bool"):
        encode.grayscale_overlap([np.zeros((4, 4), bool), np.zeros((4, 5), bool)])
    with pytest.raises(InputError, match="mask 0 must be bool"):
        encode.grayscale_overlap([np.zeros((4, 4), np.float32)])
    with pytest.raises(InputError, match="max_labels"):
        encode.grayscale_overlap([np.ones((4, 4), bool)], max_labels=0)
    with pytest.raises(InputError, match="drop_covered"):
        encode.grayscale_overlap([np.ones((4, 4), bool)], drop_covered=1.5)
