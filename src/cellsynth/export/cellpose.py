"""Cellpose layout: ``train/NAME.tif`` + ``train/NAME_masks.tif`` (and ``test/``).

Cellpose's ``io.load_train_test_data(train, test, mask_filter="_masks")`` reads these
folders as they are (Stringer et al. 2021). A 3D dataset is written as stacks; with
``slices`` it is also cut into XY, XZ and YZ planes of a volume resampled to isotropic
voxels (in-plane pixel size), in ``train_slices/`` and ``test_slices/``, dropping planes
with fewer than ``min_masks`` objects — the way Cellpose trains its 2D network for 3D. In
a plane, each connected piece of an object is its own mask (labels renumbered 1..N).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy import ndimage
from skimage import measure

from ..errors import ConfigError
from ..io import write_tiff
from .common import Sample, check_option, write_missing

OPTIONS = {"slices": False, "min_masks": 1}
AXES = ("xy", "xz", "yz")


def root(out: Path, opts: dict, source: Path) -> Path:
    return out


def check(samples: list[Sample], split: dict, opts: dict) -> None:
    check_option("min_masks", opts["min_masks"], isinstance(opts["min_masks"], int) and opts["min_masks"] >= 0,
                 "an integer >= 0")
    if opts["slices"] and samples and samples[0].ndim != 3:
        raise ConfigError("--slices applies to 3D datasets only; this dataset is 2D")


def isotropic(image: np.ndarray, labels: np.ndarray, spacing) -> tuple[np.ndarray, np.ndarray]:
    """Resample a volume to cubic voxels of the in-plane pixel size (linear image, nearest labels)."""
    target = min(spacing[1:])
    zoom = [s / target for s in spacing]
    if np.allclose(zoom, 1.0):
        return image, labels
    img = ndimage.zoom(image.astype(np.float32), zoom, order=1)
    lab = ndimage.zoom(labels, zoom, order=0)
    return img.astype(image.dtype) if np.issubdtype(image.dtype, np.integer) else img, lab


def planes(volume: np.ndarray, axis: str):
    """Yield (index, plane) along XY (constant z), XZ (constant y) or YZ (constant x)."""
    ax = {"xy": 0, "xz": 1, "yz": 2}[axis]
    for i in range(volume.shape[ax]):
        yield i, np.take(volume, i, axis=ax)


def write(samples: list[Sample], root: Path, split: dict, opts: dict, bar) -> dict:
    n_slices = 0
    for s in samples:
        folder = root / split[s.name]
        img = lab = None

        def load():
            nonlocal img, lab
            if img is None:
                img, lab = s.image(), s.labels()
            return img, lab
        write_missing(folder / f"{s.name}_masks.tif", lambda p: write_tiff(p, load()[1], s.spacing))
        write_missing(folder / f"{s.name}.tif", lambda p: write_tiff(p, load()[0], s.spacing))
        if opts["slices"]:
            n_slices += _write_slices(s, root / f"{split[s.name]}_slices", load, opts["min_masks"])
        bar.update(1)
    out = {"layout": "train/NAME.tif + NAME_masks.tif" + (", test/" if "test" in split.values() else "")}
    if opts["slices"]:
        out["slices"] = n_slices
    return out


def _write_slices(s: Sample, folder: Path, load, min_masks: int) -> int:
    done = folder / f".{s.name}.slices-done"  # the sample's planes are all written
    if done.exists():
        return sum(1 for p in folder.glob(f"{s.name}_*_masks.tif"))
    img, lab = isotropic(*load(), s.spacing)
    pix = min(s.spacing[1:])
    n = 0
    for axis in AXES:
        for (i, im2), (_, lb2) in zip(planes(img, axis), planes(lab, axis)):
            # a plane can cut a curved object in two: each piece is its own mask in 2D
            lb2 = measure.label(lb2, background=0, connectivity=1).astype(np.uint16)
            if lb2.max() < min_masks:
                continue
            stem = f"{s.name}_{axis}{i:04d}"
            write_missing(folder / f"{stem}_masks.tif", lambda p: write_tiff(p, lb2, (pix, pix)))
            write_missing(folder / f"{stem}.tif", lambda p: write_tiff(p, im2, (pix, pix)))
            n += 1
    folder.mkdir(parents=True, exist_ok=True)
    done.touch()
    return n
