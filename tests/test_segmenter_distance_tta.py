"""Segmenter: distance head, learning-rate warm-up, test-time augmentation; every new key acts (2D and 3D)."""
from __future__ import annotations

import json

import numpy as np
import pytest
import tifffile
import torch

from cellsynth.errors import ConfigError
from cellsynth.segment.unet import (
    SegmenterConfig,
    distance_target,
    instances_from_probabilities,
    load_segmenter,
    lr_factor,
    train_segmenter,
)
from cellsynth.simulate import encode
from test_segmenter import TINY, _onehot, _touching_2d, _write_dataset

torch.set_num_threads(1)
PATCH = {2: [32, 32], 3: [8, 16, 16]}
SHAPE = {2: (40, 48), 3: (14, 24, 28)}


def _train(tmp_path, rng, ndim, name="m", **kw):
    data = tmp_path / f"data{ndim}"
    if not data.exists():
        _write_dataset(data, np.random.default_rng(1), shape=SHAPE[ndim])
    cfg = SegmenterConfig(**{**TINY, "patch": PATCH[ndim], "tile": PATCH[ndim], **kw})
    return train_segmenter([data], tmp_path / name, cfg, device="cpu", progress=False), data


def test_distance_target_is_normalised_per_object():
    lab = _touching_2d()
    d = distance_target(lab)
    assert d.dtype == np.uint8 and (d[lab == 0] == 0).all()
    for k in range(1, 5):  # each object peaks at 255, small or large
        assert d[lab == k].max() == 255 and d[lab == k].min() > 0


def test_watershed_seeds_from_the_distance_map_split_touching_objects():
    lab = _touching_2d()
    probs = _onehot(encode.three_class(lab, centroid_radius=None))
    probs[2] = (lab > 0).astype(np.float32)  # an interior map that merges the touching pair
    probs[1] = 0
    merged = instances_from_probabilities(probs, seed_threshold=0.5)
    dist = distance_target(lab) / 255.0
    split = instances_from_probabilities(probs, seeds="distance_head", flood="distance_head", distance=dist,
                                         distance_threshold=0.5)
    assert len(np.unique(merged)) - 1 == 3 and len(np.unique(split)) - 1 == 4
    # the threshold acts: above every object's peak there are no seeds, each component is one object
    none = instances_from_probabilities(probs, seeds="distance_head", distance=dist, distance_threshold=1.0)
    assert len(np.unique(none)) - 1 == 3
    with pytest.raises(ValueError, match="distance"):
        instances_from_probabilities(probs, seeds="distance_head")


@pytest.mark.slow
@pytest.mark.parametrize("ndim", [2, 3])
def test_distance_head_trained_saved_and_used(tmp_path, rng, ndim):
    post = {"seeds": "distance_head", "flood": "distance_head", "min_size": 0, "min_seed_size": 0}
    seg, data = _train(tmp_path, rng, ndim, distance_weight=1.0, postprocess=post)
    cfg = json.loads((tmp_path / "m" / "config.json").read_text())
    assert cfg["unet"]["out_channels"] == 4 and cfg["training"]["distance_weight"] == 1.0
    loaded = load_segmenter(tmp_path / "m")
    img = np.asarray(tifffile.imread(data / "images" / "s0.tif"))
    maps = loaded.maps(img)
    assert maps.shape == (4, *img.shape) and 0 <= maps[3].min() and maps[3].max() <= 1
    np.testing.assert_allclose(maps[:3].sum(0), 1.0, atol=1e-4)
    assert loaded.probabilities(img).shape == (3, *img.shape)
    np.testing.assert_array_equal(loaded.predict(img), loaded.labels_from_maps(maps))
    # the distance weight acts on the trained weights
    other, _ = _train(tmp_path, rng, ndim, name="m2", distance_weight=3.0, postprocess=post)
    assert not np.allclose(other.maps(img), maps)
    # the saved postprocess reads the head: same maps, other seeds -> labels from labels_from_maps differ
    lab = _touching_2d() if ndim == 2 else np.stack([_touching_2d()] * 24)  # columns: 2D-like distances
    hand = np.concatenate([_onehot(encode.three_class(lab, centroid_radius=None)), distance_target(lab)[None] / 255])
    hand[2], hand[1] = (lab > 0), 0
    assert len(np.unique(loaded.labels_from_maps(hand))) - 1 == 4  # distance seeds split the touching pair


def test_distance_head_settings_need_the_head(tmp_path, rng):
    with pytest.raises(ValueError, match="distance_weight"):
        SegmenterConfig(postprocess={"seeds": "distance_head"})
    with pytest.raises(ValueError, match="warmup_steps"):
        SegmenterConfig(steps=10, warmup_steps=10)
    # a model folder whose postprocess asks for a head its network lacks is refused on loading
    _train(tmp_path, rng, 2)
    p = tmp_path / "m" / "config.json"
    cfg = json.loads(p.read_text())
    cfg["postprocess"]["flood"] = "distance_head"
    p.write_text(json.dumps(cfg))
    with pytest.raises(Exception, match="distance"):
        load_segmenter(tmp_path / "m")


def test_warmup_acts():
    cfg = SegmenterConfig(steps=100, warmup_steps=20)
    assert lr_factor(0, cfg) < 0.1 and lr_factor(20, cfg) == pytest.approx(1.0)
    assert lr_factor(0, SegmenterConfig(steps=100)) == pytest.approx(1.0)


@pytest.mark.slow
@pytest.mark.parametrize("ndim", [2, 3])
def test_warmup_changes_the_trained_model(tmp_path, rng, ndim):
    a, data = _train(tmp_path, rng, ndim, name="a")
    b, _ = _train(tmp_path, rng, ndim, name="b", warmup_steps=2)
    img = np.asarray(tifffile.imread(data / "images" / "s0.tif"))
    assert not np.allclose(a.maps(img), b.maps(img))


@pytest.mark.slow
@pytest.mark.parametrize("ndim", [2, 3])
def test_tta_is_saved_and_makes_predictions_flip_equivariant(tmp_path, rng, ndim):
    seg, _ = _train(tmp_path, rng, ndim, tta=4, distance_weight=1.0)
    loaded = load_segmenter(tmp_path / "m")
    assert loaded.tta == 4
    # one tile exactly (no padding): averaging over the flip group makes the maps flip-equivariant
    img = np.random.default_rng(3).normal(size=PATCH[ndim]).astype(np.float32)
    img[..., 4:12, 6:14] += 4
    m = loaded.maps(img)
    for ax in (-1, -2):
        np.testing.assert_allclose(loaded.maps(np.flip(img, ax).copy()), np.flip(m, ax), atol=1e-5)
    assert not np.allclose(loaded.maps(img, tta=1), m)  # the key acts
    # 8 adds the transposed image (square YX): equivariant under transposition too
    m8 = loaded.maps(img, tta=8)
    np.testing.assert_allclose(loaded.maps(np.swapaxes(img, -1, -2).copy(), tta=8), np.swapaxes(m8, -1, -2),
                               atol=1e-5)
    with pytest.raises(ConfigError, match="tta"):
        loaded.maps(img, tta=3)


def test_cli_predict_tta_reaches_the_model(tmp_path, rng):
    from cellsynth.cli import main

    seg, data = _train(tmp_path, rng, 2, distance_weight=1.0)
    rc = main(["segment", "predict", "--model", str(tmp_path / "m"), "--images", str(data / "images"),
               "--out", str(tmp_path / "pred"), "--device", "cpu", "--no-progress", "--tta", "4"])
    assert rc == 0
    img = tifffile.imread(data / "images" / "s0.tif")
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "pred" / "s0.tif"),
                                  seg.labels_from_maps(seg.maps(img, tta=4)))
    with pytest.raises(SystemExit):  # argparse refuses other counts
        main(["segment", "predict", "--model", str(tmp_path / "m"), "--images", str(data / "images"),
              "--out", str(tmp_path / "p3"), "--tta", "3"])
    assert not (tmp_path / "p3").exists()
