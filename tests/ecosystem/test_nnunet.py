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


def test_plan_and_preprocess_3d(datasets, tmp_path):
    """nnU-Net's own fingerprint, planner and preprocessor run on the 3D export (the README's path)."""
    import subprocess
    import sys
    from pathlib import Path
    env = {**os.environ, **{k: str(tmp_path / k) for k in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results")},
           "OMP_NUM_THREADS": "1"}
    cellsynth("export", "--in", datasets[3], "--format", "nnunet", "--out", env["nnUNet_raw"],
              "--dataset-id", 503, "--no-progress")
    r = subprocess.run([str(Path(sys.executable).parent / "nnUNetv2_plan_and_preprocess"), "-d", "503",
                        "--verify_dataset_integrity", "-c", "3d_fullres", "-np", "1"],
                       env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    pp = Path(env["nnUNet_preprocessed"]) / "Dataset503_Ds3"
    plans = json.loads((pp / "nnUNetPlans.json").read_text())
    assert plans["configurations"]["3d_fullres"]["spacing"] == [0.5, 0.25, 0.25]
    assert len(list((pp / "nnUNetPlans_3d_fullres").glob("*.b2nd")) or
               list((pp / "nnUNetPlans_3d_fullres").glob("*.npz"))) >= 2
