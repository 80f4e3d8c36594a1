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
