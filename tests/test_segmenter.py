"""3-class U-Net segmenter: targets, watershed, training, model dir, tiled prediction, CLI."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import tifffile
import torch
from skimage.draw import disk
from skimage.morphology import ball

from cellsynth.cli import main
from cellsynth.errors import ConfigError, InputError
from cellsynth.io import write_tiff
from cellsynth.segment.augment import AugmentConfig, augment_pair
from cellsynth.segment.unet import (
    TOUCHING,
    SegmenterConfig,
    instances_from_probabilities,
    load_segmenter,
    read_training_pairs,
    train_segmenter,
    training_target,
)
from cellsynth.simulate import encode

torch.set_num_threads(1)
TINY = dict(channels=[8, 16], batch_size=2, steps=3)


def _same_partition(a, b):
    """Equal up to renumbering."""
    if a.shape != b.shape or ((a > 0) != (b > 0)).any():
        return False
    pairs = set(zip(a[a > 0].tolist(), b[b > 0].tolist()))
    return len(pairs) == len(np.unique(a[a > 0])) == len(np.unique(b[b > 0]))


def _onehot(target):
    return np.stack([(target == c).astype(np.float32) for c in range(3)])


def _touching_2d():
    lab = np.zeros((40, 48), np.uint16)
    lab[5:20, 5:20] = 1
    lab[5:20, 20:34] = 2          # shares an edge with 1
    rr, cc = disk((30, 30), 7, shape=lab.shape)
    lab[rr, cc] = 3
    lab[22:26, 4:8] = 4           # small, separate
    return lab


def _write_dataset(root: Path, rng, n=3, shape=(40, 48), dtype=np.uint16):
    for i in range(n):
        lab = np.zeros(shape, np.uint16)
        for k in range(1, 5):
            c = [int(rng.integers(6, s - 6)) for s in shape]
            if len(shape) == 2:
                rr, cc = disk(c, 5, shape=shape)
                lab[rr, cc] = k
            else:
                sl = tuple(slice(ci - 3, ci + 4) for ci in c)
                lab[sl][ball(3) > 0] = k
        img = (lab > 0) * 100 + rng.normal(20, 5, shape)
        write_tiff(root / "images" / f"s{i}.tif", img.clip(0).astype(dtype))
        write_tiff(root / "masks" / f"s{i}.tif", lab)
    return root


# --------------------------------------------------------------------------- encoding
def test_segmenter_three_class_target_hand_made():
    lab = np.zeros((7, 9), np.uint16)
    lab[1:6, 1:5] = 1
    lab[1:6, 5:8] = 2
    t = encode.three_class(lab, centroid_radius=None)
    expected = np.array([
        [0, 0, 0, 0, 0, 0, 0, 0, 0],
        [0, 1, 1, 1, 1, 1, 1, 1, 0],
        [0, 1, 2, 2, 1, 1, 2, 1, 0],
        [0, 1, 2, 2, 1, 1, 2, 1, 0],
        [0, 1, 2, 2, 1, 1, 2, 1, 0],
        [0, 1, 1, 1, 1, 1, 1, 1, 0],
        [0, 0, 0, 0, 0, 0, 0, 0, 0]], np.uint8)
    np.testing.assert_array_equal(t, expected)


def test_training_target_marks_touching_boundaries():
    lab = np.zeros((7, 9), np.uint16)
    lab[1:6, 1:5] = 1
    lab[1:6, 5:8] = 2
    t = training_target(lab)
    three = encode.three_class(lab, centroid_radius=None)
    touching = t == TOUCHING
    assert touching[1:6, 4:6].all() and touching.sum() == 10  # the two columns at the contact
    np.testing.assert_array_equal(np.where(touching, 1, t), three)


def test_segmenter_three_class_target_3d():
    lab = np.zeros((5, 5, 5), np.uint16)
    lab[1:4, 1:4, 1:4] = 3
    t = encode.three_class(lab, centroid_radius=None)
    assert t[2, 2, 2] == 2 and (t == 2).sum() == 1
    assert (t == 1).sum() == 26 and (t[lab == 0] == 0).all()


# --------------------------------------------------------------------------- watershed
def test_watershed_from_perfect_probabilities_2d():
    lab = _touching_2d()
    out = instances_from_probabilities(_onehot(encode.three_class(lab, centroid_radius=None)))
    assert out.max() == 4
    assert _same_partition(out, lab)


def test_watershed_from_perfect_probabilities_3d():
    lab = np.zeros((16, 24, 24), np.uint16)
    lab[3:12, 3:12, 3:12] = 1
    lab[3:12, 12:20, 3:12] = 2     # touching face
    lab[4:10, 4:10, 15:21] = 3
    out = instances_from_probabilities(_onehot(encode.three_class(lab, centroid_radius=None)), flood="distance")
    assert _same_partition(out, lab)
    out = instances_from_probabilities(_onehot(encode.three_class(lab, centroid_radius=None)))
    assert _same_partition(out, lab)


def test_watershed_min_size_removes_specks():
    lab = _touching_2d()
    out = instances_from_probabilities(_onehot(encode.three_class(lab, centroid_radius=None)), min_size=20)
    assert out.max() == 3  # the 4×4 object is gone
    assert out[24, 6] == 0


# --------------------------------------------------------------------------- augmentation
def test_augment_keeps_pairs_aligned(rng):
    img = rng.random((8, 16, 16)).astype(np.float32)
    tgt = (img * 3).astype(np.uint8)  # target is a function of the image
    cfg = AugmentConfig(p_scale=0, p_gamma=0, p_noise=0, p_shift=0)
    for _ in range(5):
        a, b = augment_pair(img, tgt, cfg, rng)
        assert a.shape == img.shape
        np.testing.assert_array_equal((a * 3).astype(np.uint8), b)
    a, _ = augment_pair(img, tgt, AugmentConfig(p_scale=1, scale=(0.5, 0.5), p_gamma=0, p_noise=0, p_shift=0,
                                                 flip=False, rot90=False), rng)
    np.testing.assert_allclose(a, img * 0.5, rtol=1e-6)


# --------------------------------------------------------------------------- training / model dir
@pytest.mark.slow
@pytest.mark.parametrize("ndim", [2, 3])
def test_train_save_load_identical_and_tiled(tmp_path, rng, ndim):
    shape = (40, 48) if ndim == 2 else (14, 24, 28)
    data = _write_dataset(tmp_path / "data", rng, shape=shape)
    patch = [32, 32] if ndim == 2 else [8, 16, 16]
    seg = train_segmenter([data], tmp_path / "model", SegmenterConfig(**TINY), patch=patch, device="cpu",
                          progress=False)
    assert (tmp_path / "model" / "weights.safetensors").is_file()
    cfg = json.loads((tmp_path / "model" / "config.json").read_text())
    assert cfg["unet"]["spatial_dims"] == ndim and cfg["normalisation"]["percentiles"] == [1.0, 99.8]
    assert cfg["format"] == "cellsynth-segmenter" and {"cellsynth", "torch"} <= set(cfg["versions"])
    # training data recorded portably (folder name, image + mask count, hash), never by path
    (rec,) = cfg["training"]["datasets"]
    assert rec["folder"] == "data" and rec["count"] == 2 * cfg["training"]["n_images"]
    assert str(tmp_path) not in json.dumps(cfg)
    loaded = load_segmenter(tmp_path / "model")
    img = tifffile.imread(data / "images" / "s0.tif")
    a, pa = seg.predict(img, return_probabilities=True)
    b, pb = loaded.predict(img, return_probabilities=True)
    np.testing.assert_array_equal(pa, pb)
    np.testing.assert_array_equal(a, b)
    assert a.shape == img.shape and a.dtype == np.uint16
    np.testing.assert_allclose(pa.sum(0), 1.0, atol=1e-4)
    # an input larger than a tile (several tiles, blended) keeps its shape
    big = np.tile(img, (2,) * ndim)[tuple(slice(0, s * 2 - 3) for s in img.shape)]
    p = loaded.probabilities(big)
    assert p.shape == (3,) + big.shape and np.all(np.isfinite(p))


def test_mixed_dimensionality_rejected(tmp_path, rng):
    d2 = _write_dataset(tmp_path / "d2", rng, n=1)
    d3 = _write_dataset(tmp_path / "d3", rng, n=1, shape=(14, 20, 20))
    with pytest.raises(InputError, match="dimensionality"):
        read_training_pairs([d2, d3])


def test_bad_patch_rejected_before_writing(tmp_path, rng):
    data = _write_dataset(tmp_path / "data", rng, n=1)
    with pytest.raises(ConfigError, match="patch"):
        train_segmenter([data], tmp_path / "m", SegmenterConfig(**TINY), patch=[31, 32], device="cpu",
                        progress=False)
    assert not (tmp_path / "m").exists()


# --------------------------------------------------------------------------- CLI
@pytest.mark.slow
def test_cli_train_predict_2d(tmp_path, rng, capsys):
    data = _write_dataset(tmp_path / "data", rng, dtype=np.uint8)
    rc = main(["segment", "train", "--data", str(data), "--out", str(tmp_path / "m"), "--steps", "3",
               "--patch", "32", "32", "--batch-size", "2", "--device", "cpu", "--no-progress",
               "--config", str(_cfg_file(tmp_path))])
    assert rc == 0
    rc = main(["segment", "predict", "--model", str(tmp_path / "m"), "--images", str(data / "images"),
               "--out", str(tmp_path / "pred"), "--device", "cpu", "--no-progress"])
    assert rc == 0
    names = sorted(p.name for p in (tmp_path / "pred").iterdir())
    assert names == ["s0.tif", "s1.tif", "s2.tif"]
    out = tifffile.imread(tmp_path / "pred" / "s0.tif")
    assert out.dtype == np.uint16 and out.shape == (40, 48)
    rc = main(["segment", "predict", "--model", "classical", "--images", str(data / "images"),
               "--out", str(tmp_path / "cl"), "--no-progress"])
    assert rc == 0
    cl = tifffile.imread(tmp_path / "cl" / "s1.tif")
    gt = tifffile.imread(data / "masks" / "s1.tif")
    assert cl.dtype == np.uint16 and cl.max() >= 1
    assert ((cl > 0) == (gt > 0)).mean() > 0.9


def _cfg_file(tmp_path):
    f = tmp_path / "seg.yaml"
    f.write_text("channels: [8, 16]\npostprocess:\n  min_size: 5\n")
    return f


def _one_line_error(capsys):
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "error" in err
    return err


def test_cli_rejects_mismatched_shapes(tmp_path, rng, capsys):
    data = _write_dataset(tmp_path / "data", rng, n=2)
    write_tiff(data / "masks" / "s1.tif", np.zeros((10, 10), np.uint16))
    rc = main(["segment", "train", "--data", str(data), "--out", str(tmp_path / "m"), "--no-progress"])
    assert rc == 2
    assert "s1.tif" in _one_line_error(capsys)
    assert not (tmp_path / "m").exists()


def test_cli_rejects_missing_masks(tmp_path, rng, capsys):
    data = _write_dataset(tmp_path / "data", rng, n=1)
    for p in (data / "masks").iterdir():
        p.unlink()
    (data / "masks").rmdir()
    rc = main(["segment", "train", "--data", str(data), "--out", str(tmp_path / "m"), "--no-progress"])
    assert rc == 2
    assert "masks" in _one_line_error(capsys)
    assert not (tmp_path / "m").exists()


def test_cli_rejects_bad_config_key(tmp_path, rng, capsys):
    data = _write_dataset(tmp_path / "data", rng, n=1)
    f = tmp_path / "c.yaml"
    f.write_text("chanels: [8, 16]\n")
    rc = main(["segment", "train", "--data", str(data), "--out", str(tmp_path / "m"), "--config", str(f)])
    assert rc == 2
    assert "chanels" in _one_line_error(capsys)


@pytest.mark.parametrize("damage", ["missing_dir", "no_config", "bad_json", "foreign", "no_weights",
                                    "corrupt_weights", "wrong_arch"])
def test_corrupt_model_dir_rejected(tmp_path, rng, capsys, damage, trained_2d):
    import shutil
    model = tmp_path / "m"
    shutil.copytree(trained_2d, model)
    if damage == "missing_dir":
        shutil.rmtree(model)
    elif damage == "no_config":
        (model / "config.json").unlink()
    elif damage == "bad_json":
        (model / "config.json").write_text("{not json")
    elif damage == "foreign":
        (model / "config.json").write_text(json.dumps({"format": "something-else"}))
    elif damage == "no_weights":
        (model / "weights.safetensors").unlink()
    elif damage == "corrupt_weights":
        (model / "weights.safetensors").write_bytes(b"\x00garbage" * 10)
    elif damage == "wrong_arch":
        cfg = json.loads((model / "config.json").read_text())
        cfg["unet"]["channels"] = [8, 32]
        (model / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(InputError):
        load_segmenter(model)
    imgs = _write_dataset(tmp_path / "data", rng, n=1) / "images"
    rc = main(["segment", "predict", "--model", str(model), "--images", str(imgs), "--out",
               str(tmp_path / "pred"), "--no-progress"])
    assert rc == 2
    _one_line_error(capsys)
    assert not (tmp_path / "pred").exists()


def test_cli_predict_rejects_wrong_ndim(tmp_path, rng, capsys, trained_2d):
    imgs = _write_dataset(tmp_path / "d3", rng, n=1, shape=(14, 20, 20)) / "images"
    rc = main(["segment", "predict", "--model", str(trained_2d), "--images", str(imgs), "--out",
               str(tmp_path / "pred"), "--no-progress"])
    assert rc == 2
    assert "3D" in _one_line_error(capsys)
    assert not (tmp_path / "pred").exists()


@pytest.fixture(scope="module")
def trained_2d(tmp_path_factory):
    root = tmp_path_factory.mktemp("seg")
    data = _write_dataset(root / "data", np.random.default_rng(1), n=2)
    train_segmenter([data], root / "model", SegmenterConfig(**TINY), patch=[32, 32], device="cpu",
                    progress=False)
    return root / "model"
