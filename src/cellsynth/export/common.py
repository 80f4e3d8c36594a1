"""What every exporter shares: reading and validating a cellsynth dataset, the output
folder policy (refuse a foreign folder, resume our own), the train/test split.

An export is resumable: the first thing written is a marker ``.cellsynth-export.json``
holding the format, its options and a description of the source; a rerun with the same
marker skips every output file already present (each was written atomically, so a file
that exists is complete) and writes the rest. Any other non-empty folder is refused.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .. import __version__
from ..errors import ConfigError, InputError
from ..io import read_image, read_json, read_labels, read_spacing, remove_partials, write_json

log = logging.getLogger(__name__)

MARKER = ".cellsynth-export.json"
MARKER_FORMAT = 1


@dataclass
class Sample:
    """One validated (image, mask) pair of the source dataset; arrays are re-read on demand."""

    name: str
    image_path: Path
    mask_path: Path
    shape: tuple[int, ...]
    spacing: tuple[float, ...]
    image_dtype: str
    image_range: tuple[float, float]
    label_ids: np.ndarray = field(repr=False)  # sorted non-zero instance ids

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def n_objects(self) -> int:
        return len(self.label_ids)

    def image(self) -> np.ndarray:
        return read_image(self.image_path)

    def labels(self) -> np.ndarray:
        return read_labels(self.mask_path)


def read_dataset(folder: str | Path) -> list[Sample]:
    """Read and validate every pair of a dataset folder (``images/``, ``masks/``, optional manifest).

    Raises :class:`InputError` (one line naming the file) for a missing folder, an
    unpaired or unreadable file, float or negative masks, NaNs, a shape mismatch, or a
    dataset mixing 2D and 3D samples. Spacing (µm, (Z)YX) comes from the manifest,
    else the TIFF's voxel size, else 1.

    Examples
    --------
    >>> import tempfile, numpy as np
    >>> from cellsynth.io import write_tiff
    >>> d = tempfile.mkdtemp()
    >>> _ = write_tiff(f"{d}/images/a.tif", np.zeros((8, 8), np.uint8), (0.5, 0.5))
    >>> _ = write_tiff(f"{d}/masks/a.tif", np.ones((8, 8), np.uint16))
    >>> [(s.name, s.shape, s.spacing, s.n_objects) for s in read_dataset(d)]
    [('a', (8, 8), (0.5, 0.5), 1)]
    """
    from ..dataset import MANIFEST, read_pairs
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"dataset '{folder}' does not exist or is not a folder")
    manifest_spacing: dict[str, tuple[float, ...]] = {}
    if (folder / MANIFEST).is_file():
        m = read_json(folder / MANIFEST, "manifest")
        for rec in m.get("samples", []) if isinstance(m, dict) else []:
            if isinstance(rec, dict) and "name" in rec and rec.get("spacing"):
                manifest_spacing[rec["name"]] = tuple(float(s) for s in rec["spacing"])
    samples = []
    for name, ip, mp in read_pairs(folder):
        img = read_image(ip)
        lab = read_labels(mp)
        if img.shape != lab.shape:
            raise InputError(f"image '{ip}' has shape {img.shape} but its mask '{mp}' has {lab.shape}")
        sp = manifest_spacing.get(name) or read_spacing(ip, img.ndim) or (1.0,) * img.ndim
        if len(sp) != img.ndim or any(not np.isfinite(s) or s <= 0 for s in sp):
            raise InputError(f"image '{ip}' has an invalid voxel size {tuple(sp)}")
        ids = np.unique(lab)
        samples.append(Sample(name=name, image_path=ip, mask_path=mp, shape=tuple(img.shape),
                              spacing=tuple(float(s) for s in sp), image_dtype=str(img.dtype),
                              image_range=(float(img.min()), float(img.max())), label_ids=ids[ids > 0]))
    dims = {s.ndim for s in samples}
    if len(dims) > 1:
        raise InputError(f"dataset '{folder}' mixes 2D and 3D samples; export them separately")
    return samples


def split_names(names: list[str], test_fraction: float, seed: int) -> dict[str, str]:
    """Assign each name to "train" or "test": a seeded permutation, ``round(n * f)`` test names.

    At least one sample stays in train. ``test_fraction`` = 0 puts everything in train.

    >>> split_names(["a", "b", "c", "d"], 0.5, seed=0)
    {'a': 'test', 'b': 'train', 'c': 'test', 'd': 'train'}
    """
    if not 0.0 <= test_fraction < 1.0:
        raise ConfigError(f"--test-fraction must be in [0, 1), got {test_fraction}")
    n_test = min(int(round(len(names) * test_fraction)), len(names) - 1)
    order = np.random.default_rng(seed).permutation(len(names))
    test = {names[i] for i in order[:n_test]}
    return {n: ("test" if n in test else "train") for n in names}


def source_description(folder: Path, samples: list[Sample]) -> dict[str, Any]:
    """Portable description of the source: folder name, sample count, hash of names and bytes."""
    from ..modelfolder import describe_training_data
    files = [s.image_path for s in samples] + [s.mask_path for s in samples]
    d = describe_training_data(files, folder)
    d["count"] = len(samples)
    return d


def open_output(out: Path, settings: dict[str, Any]) -> bool:
    """Create ``out`` for an export, or resume one made with the same settings.

    Returns True when resuming. Raises :class:`InputError` for a non-empty folder that
    is not an export with these settings, or a path that cannot be written.
    """
    marker = out / MARKER
    if marker.is_file():
        old = read_json(marker, "export marker")
        if not isinstance(old, dict) or old.get("settings") != settings:
            raise InputError(f"output folder '{out}' holds an export made with other settings "
                             f"(format, options or source differ); choose another --out")
        resumed = True
    elif out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise InputError(f"output '{out}' exists and is not an empty folder; choose another --out")
    else:
        resumed = False
    write_json(marker, {"format": MARKER_FORMAT, "cellsynth": __version__, "settings": settings,
                        "complete": False})
    return resumed


def close_output(out: Path, settings: dict[str, Any], summary: dict[str, Any]) -> None:
    write_json(out / MARKER, {"format": MARKER_FORMAT, "cellsynth": __version__, "settings": settings,
                              "complete": True, "summary": summary})


def clean_partials(out: Path) -> None:
    """Remove temporary files an interrupted export left anywhere under ``out``."""
    if out.is_dir():
        for d in [out, *(p for p in out.rglob("*") if p.is_dir() and not p.name.startswith("."))]:
            remove_partials(d)


def write_missing(path: Path, write: Callable[[Path], Any]) -> bool:
    """Call ``write(path)`` unless ``path`` exists (outputs are atomic: existing = complete)."""
    if path.exists():
        return False
    write(path)
    return True


def to_uint16(image: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Integer images that fit pass unchanged; others map ``[lo, hi]`` linearly onto 0..65535."""
    if np.issubdtype(image.dtype, np.integer) and lo >= 0 and hi <= 65535:
        return image.astype(np.uint16)
    scale = 65535.0 / (hi - lo) if hi > lo else 0.0
    return np.clip(np.rint((image.astype(np.float64) - lo) * scale), 0, 65535).astype(np.uint16)


def progress(iterable, total: int, desc: str, enabled: bool):
    from tqdm.auto import tqdm
    return tqdm(iterable, total=total, desc=desc, disable=not enabled, unit="sample")


def check_option(name: str, value: Any, ok: bool, expected: str) -> None:
    if not ok:
        raise ConfigError(f"--{name.replace('_', '-')} must be {expected}, got {value}")

