"""Cellpose 3.1's own loader and one training epoch from scratch (Stringer et al. 2021) on cellsynth exports."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import tifffile

from conftest import cellsynth


def test_load_and_train_one_epoch(datasets, tmp_path):
    from cellpose import io, models, train
    out = tmp_path / "cp"
    cellsynth("export", "--in", datasets[2], "--format", "cellpose", "--out", out, "--test-fraction", "0.34",
              "--no-progress")
    images, labels, names, test_images, test_labels, test_names = io.load_train_test_data(
        str(out / "train"), str(out / "test"), mask_filter="_masks")
    assert len(images) == 2 and len(test_images) == 1
    for img, lab, name in zip(images, labels, names):
        stem = Path(name).stem
        np.testing.assert_array_equal(lab, tifffile.imread(datasets[2] / "masks" / f"{stem}.tif"))
        assert img.shape == lab.shape
    model = models.CellposeModel(gpu=False, pretrained_model=False, model_type=None)  # from scratch
    (tmp_path / "model").mkdir()  # train_seg creates save_path/models but not save_path
    res = train.train_seg(model.net, train_data=images, train_labels=labels, test_data=test_images,
                          test_labels=test_labels, channels=[0, 0], n_epochs=1, min_train_masks=1,
                          save_path=str(tmp_path / "model"), model_name="cellsynth_tiny")
    path = Path(res[0] if isinstance(res, tuple) else res)
    assert path.is_file() and path.stat().st_size > 0


def test_load_3d_stacks_and_slices(datasets, tmp_path):
    from cellpose import io
    out = tmp_path / "cp3"
    cellsynth("export", "--in", datasets[3], "--format", "cellpose", "--out", out, "--slices", "--min-masks", "1",
              "--no-progress")
    images, labels, _, _, _, _ = io.load_train_test_data(str(out / "train"), None, mask_filter="_masks")
    assert len(images) == 2 and all(im.ndim == 3 and im.shape == lb.shape for im, lb in zip(images, labels))
    images, labels, names, _, _, _ = io.load_train_test_data(str(out / "train_slices"), None, mask_filter="_masks")
    assert len(images) > 0 and all(lb.ndim == 2 and lb.max() >= 1 for lb in labels)
    assert {Path(n).stem.split("_")[-1][:2] for n in names} == {"xy", "xz", "yz"}


def test_benchmark_syn2real_with_cellpose_and_a_time_budget(datasets, tmp_path):
    """`benchmark syn2real --segmenter cellpose --segmenter-minutes`: every arm trains Cellpose 3 from scratch
    in this env for the same budget (a timing probe, then as many steps as the budget holds)."""
    from conftest import benchmark_with
    rep = benchmark_with("cellpose", tmp_path, datasets[2], segmenter_minutes=0.1, segmenter_patch=[32, 32],
                         segmenter_batch=2)
    assert rep["segmenter"]["name"] == "cellpose" and rep["segmenter"]["version"].startswith("3.1")
    assert rep["segmenter"]["budget_s"] == 6.0
    for arm in ("Real2Real", "Syn2Real-physics", "Mix2Real"):
        rec = rep["arms"][arm]["segmenter"]
        assert rec["budget_s"] == 6.0 and rec["steps"] >= 1 and rec["probe_s"] > 0 and rec["bsize"] == 32
        # the step count follows the probe's speed (3 steps; probe_s is rounded to 0.1 s)
        lo, hi = (max(1, int(6.0 / ((rec["probe_s"] + d) / 3))) for d in (0.05, -0.05))
        assert lo <= rec["steps"] <= hi
        assert rep["arms"][arm]["summary"]["n_images"] == 3 and rec["diameter"] > 0
        preds = sorted((tmp_path / "report" / "work" / f"seg_{arm}" / "predictions").glob("*.tif"))
        assert len(preds) >= 3 and all(tifffile.imread(p).shape == (64, 64) for p in preds)
    # trained from scratch: the only weights are the ones this run wrote
    weights = sorted(p.name for p in (tmp_path / "report" / "work" / "seg_Real2Real" / "models").iterdir())
    assert weights == ["model"]
