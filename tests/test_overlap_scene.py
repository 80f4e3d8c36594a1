"""Overlapping objects kept whole: layers, Scene.from_masks, the cells2d-overlapping preset,
sketch darkening of overlaps, COCO polygons; 2D and 3D."""
from __future__ import annotations

import json

import numpy as np
import pytest

from cellsynth.coco import rasterise_segmentation, read_coco
from cellsynth.config import SketchConfig, load_config
from cellsynth.errors import InputError
from cellsynth.render.sketch import sketch
from cellsynth.scene import Scene, pack_layers
from cellsynth.simulate import simulate_scene


def ball(shape, centre, r):
    g = np.ogrid[tuple(slice(0, s) for s in shape)]
    return sum((x - c) ** 2 for x, c in zip(g, centre)) <= r * r


@pytest.mark.parametrize("shape", [(32, 32), (16, 24, 24)])
def test_from_masks_keeps_every_object_whole(shape):
    c = [s // 2 for s in shape]
    masks = [ball(shape, c, 5), ball(shape, [x + 3 for x in c], 5), ball(shape, [x - 3 for x in c], 5),
             ball(shape, [2] * len(shape), 1)]
    sc = Scene.from_masks(masks, classes=["a", "b", "c", "d"])
    assert sc.n_objects == 4 and sc.classes == {1: "a", 2: "b", 3: "c", 4: "d"}
    for k, m in enumerate(masks, 1):
        assert np.array_equal(sc.object_mask(k), m)
    # no layer holds two objects on one voxel, and labels show the earliest object on top
    assert sc.layers.shape[0] >= 2 and np.array_equal(sc.coverage(), np.sum(masks, 0))
    assert (sc.labels[masks[0]] == 1).all()
    assert np.array_equal(sc.labels > 0, np.any(masks, 0))


def test_pack_layers_first_fit_and_boxes():
    a = np.zeros((6, 6), bool)
    a[:3, :3] = True
    b = np.zeros((6, 6), bool)
    b[2:5, 2:5] = True
    c = np.zeros((6, 6), bool)
    c[4:, :2] = True   # fits in layer 0 next to a
    full = pack_layers([a, b, c])
    boxed = pack_layers([((slice(0, 3), slice(0, 3)), a[:3, :3]), ((slice(2, 5), slice(2, 5)), b[2:5, 2:5]),
                         ((slice(4, 6), slice(0, 2)), c[4:, :2])], (6, 6))
    assert np.array_equal(full, boxed) and full.shape == (2, 6, 6)
    assert set(np.unique(full[0])) == {0, 1, 3} and set(np.unique(full[1])) == {0, 2}


def test_scene_without_layers_is_unchanged():
    lab = np.zeros((8, 8), np.uint16)
    lab[2:4, 2:4] = 1
    sc = Scene(lab, np.ones((8, 8), bool), (1.0, 1.0))
    assert sc.layers is None and sc.coverage() is None
    assert np.array_equal(sc.object_mask(1), lab == 1)
    with pytest.raises(ValueError, match="layers"):
        Scene(lab, np.ones((8, 8), bool), (1.0, 1.0), layers=np.zeros((2, 4, 4), np.uint16))


def test_overlapping_preset_keeps_cells_whole():
    cfg = load_config("cells2d-overlapping")
    cfg.scene.shape = [96, 96]
    sc = simulate_scene(cfg.scene, np.random.default_rng(3))
    assert set(sc.classes.values()) == {"cell"} and sc.layers is not None
    assert sc.coverage().max() >= 2                     # cells do overlap
    ids = np.unique(sc.layers)[1:]
    assert np.array_equal(ids, np.arange(1, sc.n_objects + 1))
    assert np.array_equal((sc.layers > 0).any(0), sc.labels > 0)
    for k in ids:   # the visible part is a subset of the whole object
        assert (sc.object_mask(k) >= (sc.labels == k)).all()


@pytest.mark.parametrize("shape", [(32, 32), (16, 24, 24)])
def test_sketch_darkens_overlaps_from_layers(shape):
    c = [s // 2 for s in shape]
    masks = [ball(shape, c, 6), ball(shape, [x + 4 for x in c], 6), ball(shape, [x + 2 for x in c], 3)]
    sc = Scene.from_masks(masks)
    cfg = SketchConfig(intensity=(0.5, 0.5), background=0.0, overlap_darkening=0.1, sigma=0,
                       membrane_classes=[])
    img = sketch(sc, cfg, np.random.default_rng(0))
    cov = sc.coverage()
    for n in (1, 2, 3):
        assert cov.__eq__(n).any()
        assert np.allclose(img[cov == n], 0.5 * 0.9 ** (n - 1))


def coco_file(tmp_path, anns, images=None):
    data = {"images": images or [{"id": 1, "file_name": "a.tif", "height": 20, "width": 30}],
            "categories": [{"id": 1, "name": "cell"}], "annotations": anns}
    p = tmp_path / "ann.json"
    p.write_text(json.dumps(data))
    return p


def test_read_coco_polygons_overlap_and_rle(tmp_path):
    sq = lambda x0, y0, x1, y1: [[x0, y0, x1, y0, x1, y1, x0, y1]]  # noqa: E731
    rle = rasterise_segmentation(sq(20, 2, 25, 6), (20, 30))
    counts, cur, run = [], False, 0
    for v in rle.T.ravel():   # column-major runs, starting with background
        if v != cur:
            counts.append(run)
            cur, run = v, 0
        run += 1
    counts.append(run)
    p = coco_file(tmp_path, [
        {"id": 1, "image_id": 1, "category_id": 1, "segmentation": sq(2, 2, 10, 10)},
        {"id": 2, "image_id": 1, "category_id": 1, "segmentation": sq(6, 6, 14, 14)},
        {"id": 3, "image_id": 1, "category_id": 1, "segmentation": {"counts": counts, "size": [20, 30]}},
        {"id": 4, "image_id": 1, "category_id": 1, "iscrowd": 1, "segmentation": sq(0, 0, 3, 3)}])
    sc = read_coco(p)["a.tif"]
    assert sc.n_objects == 3 and set(sc.classes.values()) == {"cell"}
    assert sc.object_mask(1).sum() == 81 and sc.object_mask(2).sum() == 81   # 9×9 pixel centres each
    assert sc.coverage().max() == 2 and (sc.coverage() == 2).sum() == 25
    assert np.array_equal(sc.object_mask(3), rle)


def test_read_coco_bad_input_one_line(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        read_coco(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(InputError, match="bad.json"):
        read_coco(bad)
    p = coco_file(tmp_path, [{"id": 1, "image_id": 9, "segmentation": [[0, 0, 1, 1, 2, 0]]}])
    with pytest.raises(InputError, match="refers to no listed image"):
        read_coco(p)
    p = coco_file(tmp_path, [{"id": 1, "image_id": 1, "segmentation": [[0, 0, 1, 1]]}])
    with pytest.raises(InputError, match="annotation id 1 .*polygon"):
        read_coco(p)
    p = coco_file(tmp_path, [{"id": 1, "image_id": 1, "segmentation": {"counts": "abc", "size": [20, 30]}}])
    with pytest.raises(InputError, match="compressed RLE"):
        read_coco(p)
