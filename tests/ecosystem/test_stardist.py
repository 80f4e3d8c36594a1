"""StarDist's own training and prediction (Schmidt et al. 2018; Weigert et al. 2020) on cellsynth exports."""
from __future__ import annotations

import json

import numpy as np
import tifffile

from conftest import cellsynth


def _read(folder):
    names = sorted(p.name for p in (folder / "images").glob("*.tif"))
    assert names == sorted(p.name for p in (folder / "masks").glob("*.tif"))
    X = [tifffile.imread(folder / "images" / n).astype(np.float32) for n in names]
    Y = [tifffile.imread(folder / "masks" / n) for n in names]
    return [(x - x.min()) / (x.max() - x.min() + 1e-6) for x in X], Y


def test_train_two_steps_and_predict_2d(datasets, tmp_path):
    from stardist import fill_label_holes
    from stardist.models import Config2D, StarDist2D
    out = tmp_path / "sd"
    cellsynth("export", "--in", datasets[2], "--format", "stardist", "--out", out, "--n-rays", "8", "--no-progress")
    X, Y = _read(out / "train")
    for y in Y:
        np.testing.assert_array_equal(fill_label_holes(y), y)  # holes already filled
    conf = Config2D(n_rays=8, grid=(2, 2), n_channel_in=1, train_patch_size=(32, 32), unet_n_depth=2,
                    unet_n_filter_base=8, train_tensorboard=False, train_batch_size=2)
    model = StarDist2D(conf, name="tiny", basedir=str(tmp_path / "models"))
    model.train(X, Y, validation_data=(X[:1], Y[:1]), epochs=1, steps_per_epoch=2)
    labels, details = model.predict_instances(X[0])
    assert labels.shape == X[0].shape
    assert json.loads((out / "star_convexity.json").read_text())["n_rays"] == 8


def test_train_two_steps_and_predict_3d(datasets, tmp_path):
    from stardist import Rays_GoldenSpiral, calculate_extents
    from stardist.models import Config3D, StarDist3D
    out = tmp_path / "sd3"
    cellsynth("export", "--in", datasets[3], "--format", "stardist", "--out", out, "--no-progress")
    X, Y = _read(out / "train")
    extents = calculate_extents(Y)
    anisotropy = tuple(np.max(extents) / extents)
    conf = Config3D(rays=Rays_GoldenSpiral(16, anisotropy=anisotropy), grid=(1, 2, 2), anisotropy=anisotropy,
                    n_channel_in=1, train_patch_size=(16, 32, 32), unet_n_depth=1, unet_n_filter_base=8,
                    train_tensorboard=False, train_batch_size=1)
    model = StarDist3D(conf, name="tiny3d", basedir=str(tmp_path / "models"))
    model.train(X, Y, validation_data=(X[:1], Y[:1]), epochs=1, steps_per_epoch=2)
    labels, _ = model.predict_instances(X[0])
    assert labels.shape == X[0].shape


def test_star_convexity_report_agrees_with_stardist(datasets, tmp_path):
    """Where our report finds every object star-convex, StarDist's own polygons reproduce them."""
    from stardist import relabel_image_stardist
    out = tmp_path / "sd"
    cellsynth("export", "--in", datasets[2], "--format", "stardist", "--out", out, "--n-rays", "32",
              "--no-progress")
    rep = json.loads((out / "star_convexity.json").read_text())["samples"]
    checked = 0
    for name, rec in rep.items():
        if rec["not_star_convex"]:
            continue
        y = tifffile.imread(out / "train" / "masks" / f"{name}.tif")
        rec_img = relabel_image_stardist(y, n_rays=32)
        for i in np.unique(y)[1:]:
            a, b = y == i, rec_img == i
            assert (a & b).sum() / (a | b).sum() > 0.7
            checked += 1
    assert checked > 0


def test_benchmark_syn2real_with_stardist(datasets, tmp_path):
    """`benchmark syn2real --segmenter stardist`: every arm trains StarDist from scratch in this env, 3 steps."""
    from conftest import benchmark_with
    rep = benchmark_with("stardist", tmp_path, datasets[2], steps=3, segmenter_patch=[32, 32], segmenter_batch=2)
    assert rep["segmenter"]["name"] == "stardist" and rep["segmenter"]["version"] == "0.9.2"
    assert set(rep["arms"]) == {"Real2Real", "Syn2Real-physics", "Mix2Real", "classical"}
    for arm in ("Real2Real", "Syn2Real-physics", "Mix2Real"):
        rec = rep["arms"][arm]["segmenter"]
        assert rec["steps"] == 3 and rec["patch"] == [32, 32] and rec["batch"] == 2 and rec["n_rays"] == 32
        assert rep["arms"][arm]["summary"]["n_images"] == 3
        preds = sorted((tmp_path / "report" / "work" / f"seg_{arm}" / "predictions").glob("*.tif"))
        assert len(preds) >= 3  # the 3 test images (+ the validation images for the Syn2Real arm)
        for p in preds:
            assert tifffile.imread(p).shape == (64, 64)
    # the model StarDist saved: its config and the thresholds it optimised
    model = tmp_path / "report" / "work" / "seg_Real2Real" / "model"
    assert json.loads((model / "config.json").read_text())["n_rays"] == 32
    assert (model / "thresholds.json").is_file()
