"""Classical baseline: Gaussian + Otsu + distance-transform watershed, 2D and 3D."""
from __future__ import annotations

import numpy as np
import pytest
from skimage.draw import disk
from skimage.morphology import ball

from cellsynth.errors import InputError
from cellsynth.segment.classical import classical_segment, finish_labels, object_scale


def _blobs_2d(rng):
    lab = np.zeros((64, 64), np.uint16)
    for k, c in enumerate([(14, 14), (14, 48), (48, 20), (46, 50)], 1):
        rr, cc = disk(c, 7, shape=lab.shape)
        lab[rr, cc] = k
    img = 20 + 100 * (lab > 0) + rng.normal(0, 8, lab.shape)
    return lab, img.astype(np.float32)


def _one_to_one(gt, pred):
    """Every GT object is covered (>50 %) by exactly one distinct predicted object."""
    hits = []
    for k in range(1, gt.max() + 1):
        vals, counts = np.unique(pred[gt == k], return_counts=True)
        best = vals[np.argmax(counts)]
        if best == 0 or counts.max() < 0.5 * (gt == k).sum():
            return False
        hits.append(best)
    return len(set(hits)) == len(hits)


def test_separated_blobs_2d(rng):
    gt, img = _blobs_2d(rng)
    pred = classical_segment(img, sigma=1.0, min_size=10)
    assert pred.dtype == np.uint16 and pred.shape == img.shape
    assert pred.max() == 4
    assert _one_to_one(gt, pred)
    assert set(np.unique(pred)) == set(range(5))  # consecutive labels


def test_touching_pair_is_split_2d(rng):
    lab = np.zeros((48, 64), np.uint16)
    for k, c in enumerate([(24, 20), (24, 40)], 1):  # radius 11 discs overlap slightly
        rr, cc = disk(c, 11, shape=lab.shape)
        lab[rr, cc] = k
    img = 100.0 * (lab > 0) + rng.normal(0, 5, lab.shape)
    pred = classical_segment(img, sigma=1.0, min_distance=6)
    assert pred.max() == 2
    assert _one_to_one(lab, pred)


def test_separated_blobs_3d(rng):
    lab = np.zeros((24, 40, 40), np.uint16)
    b = ball(5)
    lab[6:17, 4:15, 4:15][b > 0] = 1
    lab[6:17, 24:35, 22:33][b > 0] = 2
    img = 10 + 80 * (lab > 0) + rng.normal(0, 5, lab.shape)
    pred = classical_segment(img, sigma=1.0, min_size=20)
    assert pred.shape == lab.shape and pred.max() == 2
    assert _one_to_one(lab, pred)


def test_empty_and_bad_inputs():
    assert classical_segment(np.zeros((16, 16))).max() == 0
    with pytest.raises(InputError):
        classical_segment(np.zeros(16))
    bad = np.zeros((16, 16), np.float32)
    bad[3, 3] = np.nan
    with pytest.raises(InputError):
        classical_segment(bad)


def test_finish_labels_removes_small_and_relabels():
    lab = np.zeros((10, 10), np.int64)
    lab[0:4, 0:4] = 7   # 16 px
    lab[6, 6] = 3       # 1 px -> removed
    lab[6:9, 0:3] = 9   # 9 px
    out = finish_labels(lab, min_size=5)
    assert out.dtype == np.uint16
    assert sorted(np.unique(out)) == [0, 1, 2]
    assert out[6, 6] == 0 and (out[0:4, 0:4] > 0).all()


def _disc_field(shape, centres, radius, rng):
    lab = np.zeros(shape, np.uint16)
    for k, c in enumerate(centres, 1):
        rr, cc = disk(c, radius, shape=shape)
        lab[rr, cc] = k
    img = 10 + 100 * (lab > 0) + rng.normal(0, 4, shape)
    return lab, img.astype(np.float32)


def test_adaptive_follows_object_size_2d(rng):
    """One default call splits touching small discs AND keeps big bumpy discs whole."""
    # small: radius 4 discs in touching pairs (centres 7 px apart), split by seeds 0.8 r apart
    centres = [(y, x) for y in range(8, 60, 12) for x in (8, 15, 34, 41)]
    small, img_s = _disc_field((64, 64), centres, 4, rng)
    pred = classical_segment(img_s)
    assert _one_to_one(small, pred) and pred.max() == small.max()
    # large: two radius-20 discs with a dent; a fixed 4 px seed spacing over-splits them
    big = np.zeros((64, 112), np.uint16)
    for k, c in enumerate([(32, 28), (32, 84)], 1):
        rr, cc = disk(c, 20, shape=big.shape)
        big[rr, cc] = k
    big[30:34, 8:20] = 0  # notch: an extra distance maximum for small spacings
    img_b = (10 + 100 * (big > 0) + rng.normal(0, 4, big.shape)).astype(np.float32)
    assert classical_segment(img_b).max() == 2
    assert classical_segment(img_b, adaptive=False).max() > 2


def test_explicit_parameters_override_adaptive(rng):
    lab, img = _disc_field((48, 64), [(24, 20), (24, 40)], 11, rng)
    # an explicit huge seed spacing merges the touching pair; the adaptive one splits it
    assert classical_segment(img, min_distance=30).max() == 1
    assert classical_segment(img).max() == 2
    # an explicit min_size above the disc area removes everything
    assert classical_segment(img, min_size=1000).max() == 0


def test_adaptive_3d_anisotropic(rng):
    lab = np.zeros((16, 48, 48), np.uint16)
    zz, yy, xx = np.mgrid[:16, :48, :48]
    for k, (cy, cx) in enumerate([(14, 14), (14, 27), (36, 30)], 1):
        # balls of radius 6 µm with z spacing 2 µm (3 slices of radius), y/x spacing 1 µm
        inside = ((zz - 8) * 2.0) ** 2 + (yy - cy) ** 2 + (xx - cx) ** 2 <= 36
        lab[inside & (lab == 0)] = k
    img = (10 + 100 * (lab > 0) + rng.normal(0, 4, lab.shape)).astype(np.float32)
    pred = classical_segment(img, spacing=(2.0, 1.0, 1.0))
    assert pred.max() == 3 and _one_to_one(lab, pred)
    with pytest.raises(InputError):
        classical_segment(img, spacing=(1.0, 1.0))


def test_object_scale():
    fg = np.zeros((60, 60), bool)
    fg[5:15, 5:15] = fg[20:30, 20:30] = fg[40:60, 40:60] = True  # areas 100, 100, 400
    r, a = object_scale(fg)
    assert a == 100 and np.isclose(r, np.sqrt(100 / np.pi))
    assert object_scale(np.zeros((8, 8), bool)) is None
