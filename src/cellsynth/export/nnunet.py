"""nnU-Net v2 raw dataset: ``DatasetNNN_Name/imagesTr/CASE_0000.tif``, ``labelsTr/CASE.tif``, ``dataset.json``.

nnU-Net (Isensee et al. 2021) learns semantic labels, consecutive 0..K, so instances
become 0 background, 1 boundary, 2 interior (the class order of cellsynth's own U-Net
segmenter; boundary = :func:`cellsynth.simulate.encode.boundaries`), and the instance
masks are kept beside in ``instancesTr/`` (``instancesTs/``) for scoring after a seeded
watershed. Test samples go to ``imagesTs/``. 3D cases are read by nnU-Net's ``Tiff3DIO``,
which takes the voxel size from a ``.json`` beside each image and label file.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from ..errors import ConfigError
from ..io import write_json, write_tiff
from ..simulate.encode import boundaries
from .common import Sample, check_option, write_missing

OPTIONS = {"dataset_id": 1, "dataset_name": None, "boundary_thickness": 1}
LABELS = {"background": 0, "boundary": 1, "interior": 2}


def dataset_folder_name(opts: dict, source: Path) -> str:
    name = opts["dataset_name"] or re.sub(r"[^A-Za-z0-9]+", "", source.resolve().name.title()) or "Cellsynth"
    return f"Dataset{int(opts['dataset_id']):03d}_{name}"


def root(out: Path, opts: dict, source: Path) -> Path:
    name = dataset_folder_name(opts, source)
    taken = [p.name for p in out.glob(f"Dataset{int(opts['dataset_id']):03d}_*") if p.name != name]
    if taken:  # nnU-Net finds datasets by number: two folders with one id are ambiguous
        raise ConfigError(f"'{out}' already holds {taken[0]} with --dataset-id {opts['dataset_id']}; choose another id")
    return out / name


def check(samples: list[Sample], split: dict, opts: dict) -> None:
    i = opts["dataset_id"]
    check_option("dataset_id", i, isinstance(i, int) and 1 <= i <= 999, "an integer in 1..999")
    t = opts["boundary_thickness"]
    check_option("boundary_thickness", t, isinstance(t, int) and t >= 1, "an integer >= 1")
    if opts["dataset_name"] is not None and not re.fullmatch(r"[A-Za-z0-9]+", opts["dataset_name"]):
        raise ConfigError(f"--dataset-name must be letters and digits only, got '{opts['dataset_name']}'")
    if samples and samples[0].ndim == 2 and any(s.shape[-1] in (3, 4) for s in samples):
        # nnU-Net's 2D reader takes a trailing axis of 3 or 4 as RGB(A)
        raise ConfigError("nnU-Net reads a 2D image whose last axis is 3 or 4 pixels wide as colour; "
                          "crop or pad those samples first")


def semantic_labels(labels: np.ndarray, thickness: int = 1) -> np.ndarray:
    """uint8 classes from instance labels: 0 background, 1 boundary, 2 interior.

    >>> lab = np.zeros((5, 5), np.uint16); lab[1:4, 1:4] = 1
    >>> semantic_labels(lab)[2]
    array([0, 1, 2, 1, 0], dtype=uint8)
    """
    out = np.where(labels > 0, LABELS["interior"], LABELS["background"]).astype(np.uint8)
    out[boundaries(labels, thickness)] = LABELS["boundary"]
    return out


def write(samples: list[Sample], root: Path, split: dict, opts: dict, bar) -> dict:
    three_d = bool(samples) and samples[0].ndim == 3
    for s in samples:
        tr = split[s.name] == "train"
        images, inst = root / ("imagesTr" if tr else "imagesTs"), root / ("instancesTr" if tr else "instancesTs")
        spacing = {"spacing": list(s.spacing)}
        if three_d:
            # Tiff3DIO looks for CASE.json beside CASE_0000.tif (no channel suffix)
            write_missing(images / f"{s.name}.json", lambda p: write_json(p, spacing))
        write_missing(inst / f"{s.name}.tif", lambda p: write_tiff(p, s.labels(), s.spacing))
        if tr:
            if three_d:
                write_missing(root / "labelsTr" / f"{s.name}.json", lambda p: write_json(p, spacing))
            write_missing(root / "labelsTr" / f"{s.name}.tif",
                          lambda p: write_tiff(p, semantic_labels(s.labels(), opts["boundary_thickness"]),
                                               s.spacing))
        write_missing(images / f"{s.name}_0000.tif", lambda p: write_tiff(p, s.image(), s.spacing))
        bar.update(1)
    n_train = sum(v == "train" for v in split.values())
    ds = {"channel_names": {"0": "microscopy"}, "labels": LABELS, "numTraining": n_train, "file_ending": ".tif",
          "name": root.name, "description": "exported by cellsynth; instance masks in instancesTr/ instancesTs/"}
    if three_d:
        ds["overwrite_image_reader_writer"] = "Tiff3DIO"
    write_json(root / "dataset.json", ds)
    return {"dataset": root.name, "labels": LABELS, "reader": ds.get("overwrite_image_reader_writer", "default")}
