"""The Scene: a simulated (or loaded) annotation, the unit every stage passes on.

A Scene is plain numpy data. Derived representations (boundaries, distance maps,
positional maps, ...) are pure functions in :mod:`cellsynth.simulate.encode`.
"""
from __future__ import annotations

from collections.abc import Sequence
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
        Optional per-voxel arrays a renderer may use, e.g. ``"overlap"`` (count of
        objects covering each voxel; superseded by ``layers`` where those are given).
    layers : ndarray of int, (L, (Z)YX), optional
        Overlapping objects kept whole: a stack of L label layers, each free of
        overlaps, holding object ``k`` (the same id as in ``labels``) entirely in one
        layer. ``labels`` then holds the visible owner of each voxel. None when the
        objects do not overlap (``labels`` alone is the whole story).
    wall_thickness : int
        Membrane width of the specimen in voxels per side of each interface (the
        convention of :func:`cellsynth.simulate.encode.boundaries`): renderers draw the
        walls of membrane classes this thick (``scene.membranes.wall_thickness``).
    """

    labels: np.ndarray
    foreground: np.ndarray
    spacing: tuple[float, ...]
    classes: dict[int, str] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    extras: dict[str, np.ndarray] = field(default_factory=dict)
    layers: np.ndarray | None = None
    wall_thickness: int = 1

    def __post_init__(self) -> None:
        if int(self.wall_thickness) != self.wall_thickness or self.wall_thickness < 1:
            raise ValueError(f"Scene wall_thickness must be an integer >= 1, got {self.wall_thickness}")
        self.wall_thickness = int(self.wall_thickness)
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
        if self.layers is not None:
            self.layers = np.asarray(self.layers)
            if self.layers.shape[1:] != self.labels.shape or not np.issubdtype(self.layers.dtype, np.integer):
                raise ValueError(f"Scene layers must be an integer stack (L, *{self.labels.shape}), "
                                 f"got {self.layers.dtype} {self.layers.shape}")

    @classmethod
    def from_masks(cls, masks: Sequence[np.ndarray], spacing: Sequence[float] | None = None,
                   classes: Sequence[str] | None = None, foreground: np.ndarray | None = None,
                   params: dict | None = None) -> Scene:
        """A Scene of possibly overlapping objects, each given whole as a bool mask.

        Empty masks are left out; the others get ids 1..N in the order given. ``labels``
        shows the visible owner of each voxel (an earlier object lies on top, as in
        :func:`cellsynth.simulate.nuclei.make_nuclei`); ``layers`` keeps every object
        whole (:func:`pack_layers`). ``classes`` names each mask's class (default
        "object"); ``foreground`` defaults to the whole image.

        Examples
        --------
        >>> a = np.zeros((6, 6), bool); a[1:4, 1:4] = True
        >>> b = np.zeros((6, 6), bool); b[2:5, 2:5] = True
        >>> sc = Scene.from_masks([a, b])
        >>> sc.n_objects, sc.layers.shape, int(sc.coverage().max())
        (2, (2, 6, 6), 2)
        >>> int((sc.object_mask(2)).sum()), int((sc.labels == 2).sum())
        (9, 5)
        """
        masks = [np.asarray(m) for m in masks]
        if not masks:
            raise ValueError("Scene.from_masks needs at least one mask")
        shape = masks[0].shape
        for i, m in enumerate(masks):
            if m.dtype != bool or m.shape != shape:
                raise ValueError(f"Scene.from_masks: mask {i} must be bool with shape {shape}, got {m.dtype} {m.shape}")
        nonempty = [i for i, m in enumerate(masks) if m.any()]
        kept = [masks[i] for i in nonempty]
        layers = pack_layers(kept, shape)
        dtype = layers.dtype
        labels = np.zeros(shape, dtype)
        for k in range(len(kept), 0, -1):  # paint the last first so earlier objects end on top
            labels[kept[k - 1]] = k
        names = {k + 1: (classes[i] if classes is not None else "object") for k, i in enumerate(nonempty)}
        fg = np.ones(shape, bool) if foreground is None else foreground
        spacing = (1.0,) * len(shape) if spacing is None else spacing
        return cls(labels=labels, foreground=fg, spacing=spacing, classes=names, params=dict(params or {}),
                   layers=layers if layers.shape[0] > 1 else None)

    def coverage(self) -> np.ndarray | None:
        """Number of objects covering each voxel (uint8, saturating), or None when nothing overlaps.

        From ``layers`` when given, else from ``extras["overlap"]`` (older scenes).
        """
        if self.layers is not None:
            return np.minimum((self.layers > 0).sum(0), 255).astype(np.uint8)
        ov = self.extras.get("overlap")
        return None if ov is None else np.asarray(ov)

    def object_mask(self, label: int) -> np.ndarray:
        """The whole mask of object ``label`` (including the parts other objects cover)."""
        if self.layers is None:
            return self.labels == label
        return (self.layers == label).any(0)

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


def pack_layers(masks: Sequence, shape: Sequence[int] | None = None) -> np.ndarray:
    """Stack of non-overlapping label layers holding every mask whole (first fit).

    Mask ``i`` gets id ``i + 1`` and goes to the first layer where it overlaps no earlier
    mask; a new layer is opened when none fits. A mask is a bool array of the image's
    shape, or a ``(box, mask)`` pair (a tuple of slices and the bool mask inside it,
    which needs ``shape``) so that large images with many small objects stay cheap.
    Returns ``(L, *shape)`` uint16 (uint32 past 65535 masks), ``L >= 1``.

    Examples
    --------
    >>> a = np.zeros((4, 4), bool); a[:2, :2] = True
    >>> b = np.zeros((4, 4), bool); b[1:3, 1:3] = True
    >>> c = np.zeros((4, 4), bool); c[3, 3] = True
    >>> pack_layers([a, b, c])[:, 3, 3].tolist(), pack_layers([a, b, c]).shape
    ([3, 0], (2, 4, 4))
    """
    if shape is None:
        if not len(masks) or isinstance(masks[0], tuple):
            raise ValueError("pack_layers: the image shape is needed for boxed or no masks")
        shape = np.shape(masks[0])
    shape = tuple(int(s) for s in shape)
    dtype = np.uint16 if len(masks) < 65535 else np.uint32
    layers: list[np.ndarray] = []
    for i, m in enumerate(masks):
        box, m = m if isinstance(m, tuple) else ((slice(None),) * len(shape), m)
        for lay in layers:
            sub = lay[box]
            if not sub[m].any():
                sub[m] = i + 1
                break
        else:
            lay = np.zeros(shape, dtype)
            lay[box][m] = i + 1
            layers.append(lay)
    if not layers:
        layers.append(np.zeros(shape, dtype))
    return np.stack(layers)
