"""nnU-Net v2's own dataset-integrity check (Isensee et al. 2021) on cellsynth exports, 2D and 3D."""
from __future__ import annotations

import json
import os

import pytest

from conftest import cellsynth


@pytest.mark.parametrize("ndim", [2, 3])
def test_verify_dataset_integrity(datasets, tmp_path, ndim):
    for k in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results"):
        os.environ.setdefault(k, str(tmp_path / k))
    from nnunetv2.experiment_planning.verify_dataset_integrity import verify_dataset_integrity
    out = cellsynth("export", "--in", datasets[ndim], "--format", "nnunet", "--out", tmp_path / "raw",
                    "--dataset-id", 500 + ndim, "--no-progress")
    folder = tmp_path / "raw" / f"Dataset{500 + ndim:03d}_Ds{ndim}"
    assert str(folder) in out
    verify_dataset_integrity(str(folder), num_processes=1)  # raises on any problem
    ds = json.loads((folder / "dataset.json").read_text())
    assert ds.get("overwrite_image_reader_writer") == ("Tiff3DIO" if ndim == 3 else None)


def test_reader_gets_spacing_3d(datasets, tmp_path):
    from nnunetv2.imageio.tif_reader_writer import Tiff3DIO
    cellsynth("export", "--in", datasets[3], "--format", "nnunet", "--out", tmp_path / "raw", "--no-progress")
    folder = tmp_path / "raw" / "Dataset001_Ds3"
    case = sorted((folder / "labelsTr").glob("*.tif"))[0].stem
    img, props = Tiff3DIO().read_images([str(folder / "imagesTr" / f"{case}_0000.tif")])
    seg, sprops = Tiff3DIO().read_seg(str(folder / "labelsTr" / f"{case}.tif"))
    assert img.shape[1:] == seg.shape[1:] and img.shape[1] == 16
    assert list(props["spacing"]) == list(sprops["spacing"]) == [0.5, 0.25, 0.25]
    assert set(int(v) for v in __import__("numpy").unique(seg)) <= {0, 1, 2}
