"""Segmenter backends of the Syn2Real benchmark: the U-Net through the interface (2D and 3D), the
external backends' checks, export and prediction plumbing (a fake driver), and the CLI options.

The real StarDist / Cellpose runs are in tests/ecosystem/test_segmenters.py (their own environments).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import tifffile

from cellsynth.benchmark import syn2real as bm
from cellsynth.cli import build_parser, main
from cellsynth.errors import ConfigError, InputError
from cellsynth.io import write_tiff
from cellsynth.segment import backends as sb


def _blobs(shape, radius, n, rng):
    labels = np.zeros(shape, np.uint16)
    grid = np.indices(shape)
    centres = []
    while len(centres) < n:
        c = rng.uniform(radius + 1, np.array(shape) - radius - 1)
        if all(np.linalg.norm(c - o) > 2 * radius + 3 for o in centres):
            centres.append(c)
    for i, c in enumerate(centres, 1):
        labels[sum((g - ci) ** 2 for g, ci in zip(grid, c)) <= radius ** 2] = i
    return rng.poisson(np.where(labels > 0, 120.0, 10.0)).astype(np.uint16), labels


def _dataset(folder: Path, shape, n=3, seed=0) -> Path:
    rng = np.random.default_rng(seed)
    for i in range(n):
        img, lab = _blobs(shape, 4.0, 3, rng)
        write_tiff(folder / "images" / f"im{i}.tif", img)
        write_tiff(folder / "masks" / f"im{i}.tif", lab)
    return folder


@pytest.mark.parametrize("shape, patch", [((48, 48), [32, 32]), ((16, 32, 32), [16, 32, 32])])
def test_unet_backend_steps_and_budget(tmp_path, shape, patch):
    """The U-Net through the interface: a fixed step count, or as many steps as a time budget holds."""
    ds = _dataset(tmp_path / "ds", shape)
    backend = sb.get_backend("unet")
    st = sb.TrainSettings(steps=2, patch=patch, batch=2, progress=False, device="cpu")
    backend.check(len(shape), st)
    predict, rec = backend.train([ds], tmp_path / "m", st)
    assert rec["steps"] == 2 and rec["budget_s"] is None and rec["train_loop_s"] > 0
    assert (tmp_path / "m" / "config.json").is_file()
    img = tifffile.imread(ds / "images" / "im0.tif")
    labels = predict(img)
    assert labels.shape == img.shape and np.issubdtype(labels.dtype, np.integer)
    # a budget: a probe times a step, the real run gets budget / step time steps (>= 1), probe reported apart
    st = sb.TrainSettings(steps=2, budget_s=1.0, patch=patch, batch=2, progress=False, device="cpu")
    _, rec = backend.train([ds], tmp_path / "m", st)
    per_step = rec["probe_s"] / sb.PROBE_STEPS
    assert rec["budget_s"] == 1.0 and rec["steps"] == max(1, int(1.0 / per_step))


def test_external_backend_checks(tmp_path, monkeypatch):
    """Missing / unusable environments and 3D data are refused with one line, before anything is written."""
    st = sb.TrainSettings(python=tmp_path / "nope" / "python")
    for name in ("stardist", "cellpose"):
        b = sb.get_backend(name)
        with pytest.raises(InputError, match=f"{name} environment: python .*nope.* does not exist"):
            b.check(2, st)
        with pytest.raises(ConfigError, match=f"{name} segmenter: 2D only"):
            b.check(3, st)
        # a python without the package (this environment has neither StarDist nor Cellpose)
        with pytest.raises(InputError, match=f"cannot import {name}"):
            b.check(2, sb.TrainSettings(python=Path(sys.executable)))
        # the environment variable is the next place looked at
        monkeypatch.setenv(b.env_var, str(tmp_path / "env-var-python"))
        assert b.python(sb.TrainSettings()) == tmp_path / "env-var-python"
        with pytest.raises(InputError, match="env-var-python"):
            b.check(2, sb.TrainSettings())
    with pytest.raises(ConfigError, match="square"):
        sb.get_backend("cellpose").check(2, sb.TrainSettings(patch=[32, 64], python=Path(sys.executable)))
    with pytest.raises(ConfigError, match="segmenter-minutes"):
        sb.get_backend("unet").check(2, sb.TrainSettings(budget_s=0.0))
    assert list(tmp_path.iterdir()) == []


class _FakeDriver(sb.StarDistBackend):
    """StarDist's plumbing (export, job, predictions by content) with a thresholding 'driver'."""

    calls: list

    def check(self, ndim, settings):  # no consumer environment needed
        pass

    def run_driver(self, job, folder, settings):
        self.calls.append(job)
        done = []
        for src, dst in job["predict"]:
            img = tifffile.imread(src)
            write_tiff(dst, (img > 60).astype(np.uint16))
            done.append(dst)
        (folder / "result.json").write_text(json.dumps({"steps": job.get("steps"), "predicted": done}))
        return {"steps": job.get("steps"), "train_loop_s": 0.0, "predicted": done}


def test_external_backend_exports_and_predicts_by_content(tmp_path):
    ds = _dataset(tmp_path / "ds", (48, 48), n=4)
    backend = _FakeDriver()
    backend.calls = []
    given = [ds / "images" / "im0.tif", ds / "images" / "im1.tif"]
    predict, rec = backend.train([ds], tmp_path / "m", sb.TrainSettings(steps=7), predict_images=given)
    job = backend.calls[0]
    assert job["mode"] == "train" and job["steps"] == 7 and rec["steps"] == 7
    # the arm's data went through cellsynth's StarDist exporter (validation split = its test split)
    export = Path(job["exports"][0])
    n_train = len(list((export / "train" / "images").glob("*.tif")))
    assert n_train + len(list((export / "test" / "images").glob("*.tif"))) == 4 and n_train >= 3
    for p in given:  # predicted during training: no further driver run
        img = tifffile.imread(p)
        np.testing.assert_array_equal(predict(img), (img > 60).astype(np.uint16))
    assert len(backend.calls) == 1
    img = tifffile.imread(ds / "images" / "im3.tif")  # not given at training: predict mode on the model
    np.testing.assert_array_equal(predict(img), (img > 60).astype(np.uint16))
    assert len(backend.calls) == 2 and backend.calls[1]["mode"] == "predict"
    assert backend.calls[1]["model"] == str(tmp_path / "m" / "model")


def test_cli_segmenter_options(tmp_path, capsys):
    args = build_parser().parse_args(
        ["benchmark", "syn2real", "--train-images", "a", "--test", "b", "--out", "c", "--segmenter", "stardist",
         "--segmenter-python", "/x/python", "--segmenter-minutes", "6"])
    assert (args.segmenter, args.segmenter_python, args.segmenter_minutes) == ("stardist", "/x/python", 6.0)
    assert build_parser().parse_args(["benchmark", "syn2real", "--train-images", "a", "--test", "b",
                                      "--out", "c"]).segmenter == "unet"
    with pytest.raises(SystemExit):
        build_parser().parse_args(["benchmark", "syn2real", "--train-images", "a", "--test", "b", "--out", "c",
                                   "--segmenter", "maskrcnn"])
    capsys.readouterr()
    # a missing StarDist environment: one line, nothing written
    ds = _dataset(tmp_path / "train", (48, 48))
    _dataset(tmp_path / "test", (48, 48), seed=1)
    out = tmp_path / "report"
    for seg in ("stardist", "cellpose"):
        rc = main(["benchmark", "syn2real", "--train-images", str(ds / "images"), "--test", str(tmp_path / "test"),
                   "--out", str(out), "--segmenter", seg, "--segmenter-python", str(tmp_path / "no-env" / "python"),
                   "--quick", "--no-progress"])
        err = capsys.readouterr().err.strip()
        assert rc == 2 and len(err.splitlines()) == 1 and f"{seg} environment" in err and "no-env" in err
        assert not out.exists()


def test_benchmark_with_a_time_budget_names_the_segmenter(tmp_path):
    """Every arm trains for the same budget; the report names the segmenter and records each arm's run."""
    tr = _dataset(tmp_path / "train", (64, 64), n=3)
    _dataset(tmp_path / "test", (64, 64), n=2, seed=1)
    s = bm.BenchmarkSettings(train_images=tr / "images", train_masks=tr / "masks", test=tmp_path / "test",
                             out=tmp_path / "report", renderers=("physics",), n=2, segmenter_patch=[32, 32],
                             segmenter_batch=2, segmenter_minutes=0.01, progress=False, verbose=False,
                             device="cpu")
    report = bm.run_benchmark(s)
    assert report["segmenter"] == {"name": "unet", "budget_s": 0.6, "steps": None}
    for arm in ("Real2Real", "Syn2Real-physics", "Mix2Real"):
        rec = report["arms"][arm]["segmenter"]
        assert rec["segmenter"] == "unet" and rec["budget_s"] == 0.6 and rec["steps"] >= 1
    assert "segmenter" not in report["arms"]["classical"]
    html = (tmp_path / "report" / "report.html").read_text()
    assert "unet, 0.01 min of training per arm" in html
    rec = report["arms"]["Real2Real"]["segmenter"]
    assert f"unet: {rec['steps']} steps, {rec['train_loop_s']:g} s of training loop" in html
    saved = json.loads((tmp_path / "report" / "report.json").read_text())
    assert saved["settings"]["segmenter"] == "unet" and saved["settings"]["segmenter_minutes"] == 0.01


def test_preset_segmenter_section_reaches_the_unet(tmp_path):
    """A preset's (or overlay's) ``segmenter`` keys are the U-Net's settings in every arm; bad ones are refused."""
    ds = _dataset(tmp_path / "ds", (48, 48))
    overlay = tmp_path / "o.yaml"
    overlay.write_text("segmenter: {rescale: {target_diameter: 6}, tta: 2}\n")
    s = bm.BenchmarkSettings(train_images=ds / "images", test=ds, out=tmp_path / "r", config=overlay,
                             segmenter_patch=[32, 32], segmenter_batch=2, steps=2, progress=False, device="cpu")
    st = bm.train_settings(s)
    assert st.unet == {"rescale": {"target_diameter": 6}, "tta": 2}
    backend = sb.get_backend("unet")
    backend.check(2, st)
    backend.train([ds], tmp_path / "m", st)
    cfg = json.loads((tmp_path / "m" / "config.json").read_text())
    assert cfg["inference"]["rescale"]["target_diameter"] == 6 and cfg["inference"]["tta"] == 2
    assert cfg["training"]["steps"] == 2  # the benchmark's own steps win over the section's
    overlay.write_text("segmenter: {rescale: {target_diameter: -1}}\n")
    with pytest.raises(ConfigError, match="segmenter.rescale"):
        backend.check(2, bm.train_settings(s))
