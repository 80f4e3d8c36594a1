"""Segmenter scale normalisation (``rescale``): diameters, resizing, training and prediction, 2D and 3D."""
from __future__ import annotations

import json

import numpy as np
import pytest
import tifffile
import torch
from skimage.draw import disk
from skimage.morphology import ball

from cellsynth.cli import main
from cellsynth.config import validate
from cellsynth.errors import ConfigError, InputError
from cellsynth.io import write_tiff
from cellsynth.segment.classical import image_object_scale, labels_scale
from cellsynth.segment.rescale import (
    RescaleConfig,
    image_diameter,
    labels_diameter,
    rescale_pair,
    resize,
    scale_factor,
)
from cellsynth.segment.size_model import fit_ridge, predict_ridge
from cellsynth.segment.unet import MIN_SIZE_IMAGES, SegmenterConfig, load_segmenter, train_segmenter
from test_segmenter import TINY

torch.set_num_threads(1)
PATCH = {2: [32, 32], 3: [8, 16, 16]}


def _blobs(ndim: int, radius: int, n: int = 4, seed: int = 0):
    """(image, labels): ``n`` separate discs / balls of ``radius`` on a grid, bright on noise."""
    rng = np.random.default_rng(seed)
    step = 2 * radius + 6
    shape = (2 * step,) * ndim if ndim == 2 else (step, 2 * step, 2 * step)
    lab = np.zeros(shape, np.uint16)
    centres = [(step // 2 + step * (i // 2), step // 2 + step * (i % 2)) for i in range(n)]
    for k, (cy, cx) in enumerate(centres, 1):
        if ndim == 2:
            lab[disk((cy, cx), radius, shape=shape)] = k
        else:
            c = step // 2
            sl = (slice(c - radius, c + radius + 1), slice(cy - radius, cy + radius + 1),
                  slice(cx - radius, cx + radius + 1))
            lab[sl][ball(radius) > 0] = k
    img = ((lab > 0) * 100 + rng.normal(20, 4, shape)).clip(0).astype(np.uint16)
    return img, lab


def _dataset(root, ndim, radius=5, radii=None):
    for i, r in enumerate(radii or [radius] * 2):
        img, lab = _blobs(ndim, r, seed=i)
        write_tiff(root / "images" / f"s{i}.tif", img)
        write_tiff(root / "masks" / f"s{i}.tif", lab)
    return root


def _train(tmp_path, ndim, name, rescale):
    data = tmp_path / f"data{ndim}"
    if not data.exists():
        _dataset(data, ndim)
    cfg = SegmenterConfig(**{**TINY, "patch": PATCH[ndim], "tile": PATCH[ndim], "rescale": rescale})
    return train_segmenter([data], tmp_path / name, cfg, device="cpu", progress=False), data


# --------------------------------------------------------------------------- diameters and resizing
@pytest.mark.parametrize("ndim", [2, 3])
def test_label_free_diameter_matches_the_masks(ndim):
    img, lab = _blobs(ndim, radius=6)
    d_true = labels_diameter(lab)
    assert d_true == pytest.approx(12, rel=0.1)
    assert image_diameter(img) == pytest.approx(d_true, rel=0.15)
    assert labels_scale(np.zeros_like(lab)) is None and image_diameter(np.zeros_like(img)) is None
    # the classical baseline's estimate, one implementation: the same numbers
    assert image_object_scale(img)[0] * 2 == image_diameter(img)


def test_scale_factor_is_clipped():
    cfg = RescaleConfig(target_diameter=20, limits=(0.5, 2.0))
    assert scale_factor(40, cfg) == 0.5 and scale_factor(10, cfg) == 2.0
    assert scale_factor(400, cfg) == 0.5 and scale_factor(1, cfg) == 2.0
    assert scale_factor(None, cfg) == 1.0


@pytest.mark.parametrize("ndim", [2, 3])
def test_rescale_pair_brings_the_median_diameter_to_the_target(ndim):
    img, lab = _blobs(ndim, radius=8)
    d = labels_diameter(lab)
    cfg = RescaleConfig(target_diameter=d / 2)
    im2, lab2, f = rescale_pair(img, lab, cfg)
    assert f == pytest.approx(0.5)
    # isotropic in 3D: every axis shrinks
    assert im2.shape == lab2.shape == tuple(round(s / 2) for s in img.shape)
    assert lab2.dtype == lab.dtype and set(np.unique(lab2)) == set(np.unique(lab))  # nearest: no new labels
    assert labels_diameter(lab2) == pytest.approx(d / 2, rel=0.15)
    # maps (C, *S) resize back to the exact shape, values stay in range
    maps = np.stack([im2 / im2.max(), 1 - im2 / im2.max()]).astype(np.float32)
    back = resize(maps, img.shape)
    assert back.shape == (2, *img.shape) and back.dtype == np.float32 and 0 <= back.min() and back.max() <= 1
    # no object: the pair is kept as it is
    same = rescale_pair(img, np.zeros_like(lab), cfg)
    assert same[0] is img and same[2] == 1.0


def test_bad_rescale_values_are_refused(tmp_path):
    for bad in ({"target_diameter": 0}, {"target_diameter": -3}, {"limits": [2.0, 4.0]}, {"limits": [0.2, 0.8]},
                {"limits": [0, 2]}, {"limits": [3, 1]}, {"target": 17}):
        with pytest.raises(ConfigError, match="rescale"):
            validate(SegmenterConfig, {"rescale": bad})


# --------------------------------------------------------------------------- training and prediction
@pytest.mark.slow
@pytest.mark.parametrize("ndim", [2, 3])
def test_rescale_of_one_equals_the_native_path(tmp_path, ndim):
    native, data = _train(tmp_path, ndim, "native", None)
    one, _ = _train(tmp_path, ndim, "one", {"target_diameter": 17, "limits": [1.0, 1.0]})
    for a, b in zip(native.net.parameters(), one.net.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    img, _ = _blobs(ndim, radius=5, seed=7)
    np.testing.assert_array_equal(one.maps(img), native.maps(img))
    # a model trained with rescale, given the target diameter itself, predicts as at native scale
    scaled, _ = _train(tmp_path, ndim, "scaled", {"target_diameter": 6})
    maps = scaled.maps(img, diameter=6)
    scaled.rescale = None
    np.testing.assert_array_equal(maps, scaled.maps(img))


@pytest.mark.slow
@pytest.mark.parametrize("ndim", [2, 3])
def test_rescale_key_acts_in_training_and_prediction(tmp_path, ndim):
    native, data = _train(tmp_path, ndim, "native", None)
    seg, _ = _train(tmp_path, ndim, "scaled", {"target_diameter": 20})
    cfg = json.loads((tmp_path / "scaled" / "config.json").read_text())
    assert cfg["inference"]["rescale"] == {"target_diameter": 20.0, "limits": [0.25, 4.0], "estimate": "classical",
                                           "size_images": 256}
    assert "size_model" not in cfg  # the classical estimate (the default) fits none
    f_lo, f_med, f_hi = cfg["training"]["rescale_factors"]
    assert f_med == pytest.approx(20 / labels_diameter(_blobs(ndim, 5)[1]), rel=0.01)
    # the training data changed, so did the weights
    assert any(not torch.equal(a, b) for a, b in zip(native.net.parameters(), seg.net.parameters()))
    loaded = load_segmenter(tmp_path / "scaled")
    assert loaded.rescale == RescaleConfig(target_diameter=20)
    img, _ = _blobs(ndim, radius=5, seed=7)
    assert loaded.scale_factor(img) == pytest.approx(20 / image_diameter(img))
    maps = loaded.maps(img)
    assert maps.shape == (3, *img.shape)  # back at the image's own shape, labels too
    np.testing.assert_allclose(maps.sum(0), 1.0, atol=1e-4)
    assert loaded.predict(img).shape == img.shape
    # the diameter given at prediction acts
    assert not np.allclose(loaded.maps(img, diameter=5), loaded.maps(img, diameter=15))
    with pytest.raises(ConfigError, match="diameter"):
        loaded.maps(img, diameter=-1)
    # a folder with a broken rescale entry is refused on load
    cfg["inference"]["rescale"] = {"target_diameter": -1}
    (tmp_path / "scaled" / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(InputError, match="rescale"):
        load_segmenter(tmp_path / "scaled")


@pytest.mark.slow
def test_cli_train_with_rescale_and_predict_with_a_diameter(tmp_path, capsys):
    data = _dataset(tmp_path / "data", 2)
    cfg = tmp_path / "seg.yaml"
    cfg.write_text("channels: [8, 16]\nbatch_size: 2\nrescale: {target_diameter: 8}\n")
    native = tmp_path / "native.yaml"
    native.write_text("channels: [8, 16]\nbatch_size: 2\n")
    for name, c in (("m", cfg), ("n", native)):
        assert main(["segment", "train", "--data", str(data), "--out", str(tmp_path / name), "--steps", "2",
                     "--patch", "32", "32", "--device", "cpu", "--no-progress", "--config", str(c)]) == 0
    assert json.loads((tmp_path / "m" / "config.json").read_text())["inference"]["rescale"]["target_diameter"] == 8
    # --preset: the preset's segmenter section (nuclei2d-dsb rescales to 17 px), --config keys over it
    for name, extra, want in (("p", [], 17), ("q", ["--config", str(cfg)], 8)):
        assert main(["segment", "train", "--data", str(data), "--out", str(tmp_path / name), "--steps", "2",
                     "--patch", "32", "32", "--device", "cpu", "--no-progress", "--batch-size", "2",
                     "--preset", "nuclei2d-dsb", *extra]) == 0
        saved = json.loads((tmp_path / name / "config.json").read_text())
        assert saved["inference"]["rescale"]["target_diameter"] == want
    pred = ["segment", "predict", "--images", str(data / "images"), "--device", "cpu", "--no-progress"]
    assert main(pred + ["--model", str(tmp_path / "m"), "--out", str(tmp_path / "p"), "--diameter", "11"]) == 0
    img = tifffile.imread(data / "images" / "s0.tif")
    assert tifffile.imread(tmp_path / "p" / "s0.tif").shape == img.shape
    capsys.readouterr()
    # --diameter is refused where it would change nothing, or is not a size, before anything is written
    for model, d in (("n", "11"), ("classical", "11"), ("m", "-2")):
        out = tmp_path / f"bad_{model}"
        assert main(pred + ["--model", str(tmp_path / model) if model != "classical" else model,
                            "--out", str(out), "--diameter", d]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "diameter" in err and not out.exists()


# --------------------------------------------------------------------------- the size model
def test_ridge_recovers_a_linear_map_and_shrinks_noise():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 5))
    exact = fit_ridge(x, x @ [1.0, -2.0, 0.0, 0.5, 0.0] + 3.0)
    assert exact["alpha"] == min(exact["alpha"], 0.1) and exact["loo_rmse"] < 0.05
    np.testing.assert_allclose(predict_ridge(exact, [[1, 1, 1, 1, 1]]), [2.5], atol=0.05)
    # a target unrelated to the features: leave-one-out picks a strong penalty, predictions stay near the mean
    y = rng.normal(size=40)
    noise = fit_ridge(x, y)
    assert noise["alpha"] >= 100 and np.std(predict_ridge(noise, x)) < 0.25 * np.std(y)
    assert json.loads(json.dumps(exact)) == exact  # plain JSON, no pickling
    # a constant feature gets no weight and does not divide by zero
    const = fit_ridge(np.c_[x, np.ones(40)], x[:, 0])
    assert const["weights"][-1] == 0 and np.isfinite(predict_ridge(const, np.c_[x, np.ones(40)])).all()


def test_ridge_refuses_bad_input():
    x = np.ones((5, 2))
    for feats, y, match in ((x, np.ones(4), "pair up"), (x[:2], np.ones(2), "at least 3"),
                            (np.full((5, 2), np.nan), np.ones(5), "NaN")):
        with pytest.raises(InputError, match=match):
            fit_ridge(feats, y)
    with pytest.raises(ConfigError, match="features"):
        predict_ridge(fit_ridge(np.eye(4), np.arange(4.0)), np.ones((1, 3)))
    with pytest.raises(ConfigError, match="not a ridge model"):
        predict_ridge({"weights": [1.0]}, np.ones((1, 1)))


@pytest.mark.slow
@pytest.mark.parametrize("ndim", [2, 3])
def test_size_model_is_fitted_on_the_training_pairs_and_estimates_the_scale(tmp_path, ndim):
    radii = [3, 4, 5, 6, 7, 8] * 2 if ndim == 2 else [2, 3, 4, 5, 6] * 2
    data = _dataset(tmp_path / "data", ndim, radii=radii)
    patch = PATCH[ndim]
    base = {**TINY, "steps": 20, "patch": patch, "tile": patch}
    style = {"target_diameter": 8, "estimate": "style"}
    train_segmenter([data], tmp_path / "m", SegmenterConfig(**base, rescale=style), device="cpu", progress=False)
    cfg = json.loads((tmp_path / "m" / "config.json").read_text())
    sm = cfg["size_model"]
    assert sm["n"] == len(radii) and len(sm["weights"]) == 2 * (8 + 16 + 16)
    loaded = load_segmenter(tmp_path / "m")
    imgs = [_blobs(ndim, r, seed=i)[0] for i, r in enumerate(radii)]
    true = np.array([labels_diameter(_blobs(ndim, r, seed=i)[1]) for i, r in enumerate(radii)])
    est = np.array([loaded.estimate_diameter(im) for im in imgs])
    # the estimate is the ridge map of the image's style, and it follows the true size on the training images
    assert est[0] == pytest.approx(float(np.exp(predict_ridge(sm, loaded.style(imgs[0])[None])[0])))
    assert np.corrcoef(np.log(est), np.log(true))[0, 1] > 0.9
    assert loaded.scale_factor(imgs[0]) == pytest.approx(8 / est[0])
    # size_images caps the pairs it is fitted on; estimate "classical" fits none and uses the classical estimate
    capped = train_segmenter([data], None, SegmenterConfig(**base, rescale={**style, "size_images": MIN_SIZE_IMAGES}),
                             device="cpu", progress=False)
    assert capped.size_model["n"] == MIN_SIZE_IMAGES
    classical = train_segmenter([data], tmp_path / "c", SegmenterConfig(**base, rescale={"target_diameter": 8}),
                                device="cpu", progress=False)
    assert classical.size_model is None and "size_model" not in json.loads((tmp_path / "c" / "config.json").read_text())
    assert classical.estimate_diameter(imgs[0]) == image_diameter(imgs[0])
    # a size model that does not fit the network is refused on load, in one line
    sm["weights"] = sm["weights"][:-1]
    (tmp_path / "m" / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(InputError, match="size_model"):
        load_segmenter(tmp_path / "m")
