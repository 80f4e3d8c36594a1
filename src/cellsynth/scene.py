"""The Scene: a simulated (or loaded) annotation, the unit every stage passes on.

A Scene is plain numpy data. Derived representations (boundaries, distance maps,
positional maps, ...) are pure functions in :mod:`cellsynth.simulate.encode`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class Scene:
    """An instance annotation with its specimen mask and physical voxel size.

    Parameters
    ----------
    labels : ndarray of int, (Z)YX
        0 = background, 1..N = instances, consecutive.
    foreground : ndarray of bool, same shape
        The specimen (organism / tissue / field) mask; every instance lies inside it.
    spacing : tuple of float
        Physical voxel size in µm per axis, (Z)YX order.
    classes : dict[int, str]
        Label id -> class name ("nucleus", "golgi", "cell", ...).
    params : dict
        Every parameter and the seed that produced the scene (JSON-serialisable).
    extras : dict[str, ndarray]
        Optional per-voxel arrays a renderer may use, e.g. ``"overlap"`` (uint8 count
        of objects covering each voxel, where overlap is allowed; the labels keep
        one owner per voxel).
    """

    labels: np.ndarray
    foreground: np.ndarray
    spacing: tuple[float, ...]
    classes: dict[int, str] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    extras: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.labels = np.asarray(self.labels)
        self.foreground = np.asarray(self.foreground, dtype=bool)
        if self.labels.ndim not in (2, 3):
            raise ValueError(f"Scene labels must be 2D (YX) or 3D (ZYX), got shape {self.labels.shape}")
        if not np.issubdtype(self.labels.dtype, np.integer):
            raise ValueError(f"Scene labels must be integers, got dtype {self.labels.dtype}")
        if self.foreground.shape != self.labels.shape:
            raise ValueError(
                f"Scene foreground shape {self.foreground.shape} != labels shape {self.labels.shape}")
        self.spacing = tuple(float(s) for s in self.spacing)
        if len(self.spacing) != self.labels.ndim:
            raise ValueError(f"Scene spacing {self.spacing} needs one value per axis of {self.labels.shape}")

    @property
    def ndim(self) -> int:
        return self.labels.ndim

    @property
    def shape(self) -> tuple[int, ...]:
        return self.labels.shape

    @property
    def n_objects(self) -> int:
        return int(self.labels.max()) if self.labels.size else 0

    def class_of(self, label: int) -> str:
        return self.classes.get(int(label), "object")


def relabel_consecutive(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Renumber labels to 1..N in order of first appearance of the sorted ids.

    Returns the new labels (smallest unsigned dtype that fits, at least uint16) and
    ``old_ids`` such that ``old_ids[new - 1] == old``.
    """
    ids = np.unique(labels)
    ids = ids[ids != 0]
    lut_dtype = np.uint16 if len(ids) < 65535 else np.uint32
    out = np.zeros(labels.shape, dtype=lut_dtype)
    if len(ids):
        # searchsorted keeps memory at one array of the input's size
        idx = np.searchsorted(ids, labels)
        idx = np.clip(idx, 0, len(ids) - 1)
        hit = (labels != 0) & (ids[idx] == labels)
        out[hit] = (idx[hit] + 1).astype(lut_dtype)
    return out, ids
