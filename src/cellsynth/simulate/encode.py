"""Derived representations of an annotation: pure functions of labels / foreground.

- :func:`boundaries` — object boundary mask (membrane positions), any thickness;
- :func:`three_class` — background / membrane / centroid map of seeds 000 and 001;
- :func:`distance_map` — per-instance Euclidean distance to the object's border;
- :func:`positional_map` — the positional conditioning f_pos of seed 001 eq. 1;
- :func:`centroids` — instance centroids (N, ndim);
- :func:`grayscale_overlap` — seed 002's single-channel encoding of overlapping instances.

All work for 2D (YX) and 3D (ZYX) alike; inputs are validated and bad ones raise
:class:`cellsynth.io.InputError`.
"""
from __future__ import annotations

from collections import deque
from typing import Optional, Sequence

import numpy as np
from scipy import ndimage
from skimage.segmentation import find_boundaries

from cellsynth.errors import InputError

_SLAB = 2 ** 21  # voxels per slab where whole-volume temporaries would be float64


def _labels(labels: np.ndarray, what: str) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.ndim not in (2, 3):
        raise InputError(f"{what}: labels must be 2D (YX) or 3D (ZYX), got shape {labels.shape}")
    if not np.issubdtype(labels.dtype, np.integer):
        raise InputError(f"{what}: labels must be integers, got dtype {labels.dtype}")
    if labels.size and labels.min() < 0:
        raise InputError(f"{what}: labels must be >= 0")
    return labels


def _ball(r: float, ndim: int) -> np.ndarray:
    ri = int(np.floor(r))
    g = np.ogrid[tuple(slice(-ri, ri + 1) for _ in range(ndim))]
    return sum(x * x for x in g) <= r * r


def boundaries(labels: np.ndarray, thickness: int = 1) -> np.ndarray:
    """Boundary pixels of every object, inside the objects (``find_boundaries`` "inner" mode).

    Parameters
    ----------
    labels : int ndarray, YX or ZYX (0 = background)
    thickness : int >= 1
        Boundary width in pixels: the 1-pixel inner boundary is dilated by a ball of
        radius ``thickness - 1`` and kept inside the objects. Where two objects touch,
        each marks its own side, so a shared wall is ``2 · thickness`` wide.

    Returns
    -------
    bool ndarray, True on boundaries.
    """
    labels = _labels(labels, "boundaries")
    thickness = int(thickness)
    if thickness < 1:
        raise InputError(f"boundaries: thickness must be >= 1, got {thickness}")
    b = find_boundaries(labels, mode="inner", connectivity=1)
    if thickness > 1:
        b = ndimage.binary_dilation(b, structure=_ball(thickness - 1, labels.ndim))
    return b & (labels > 0)


def centroids(labels: np.ndarray) -> np.ndarray:
    """Centroid (mean voxel position, (Z)YX) of each label 1..max; (N, ndim) float.

    Labels absent from the image give NaN rows, so row i always belongs to label i + 1.
    """
    labels = _labels(labels, "centroids")
    n = int(labels.max()) if labels.size else 0
    if n == 0:
        return np.zeros((0, labels.ndim))
    counts = np.zeros(n + 1)
    out = np.zeros((n + 1, labels.ndim))
    # weighted bincounts per axis, in slabs along axis 0 (bincount makes float64 copies)
    step = max(1, _SLAB // labels[0].size)
    for z in range(0, len(labels), step):
        slab = labels[z:z + step]
        flat = slab.ravel()
        counts += np.bincount(flat, minlength=n + 1)
        for ax in range(labels.ndim):
            shape = [1] * labels.ndim
            shape[ax] = slab.shape[ax]
            coord = np.arange(slab.shape[ax], dtype=float) + (z if ax == 0 else 0)
            coord = np.broadcast_to(coord.reshape(shape), slab.shape)
            out[:, ax] += np.bincount(flat, weights=coord.ravel(), minlength=n + 1)
    counts, out = counts[1:], out[1:]
    with np.errstate(invalid="ignore", divide="ignore"):
        out /= counts[:, None]
    return out


def three_class(labels: np.ndarray, centroid_radius: float = 2.0, thickness: int = 1) -> np.ndarray:
    """The 3-class representation of seeds 000/001: 0 background, 1 membrane, 2 centroid.

    Class 1 is the object boundary (:func:`boundaries` with ``thickness``); class 2 a
    ball of radius ``centroid_radius`` around each object's centroid, kept inside the
    object and off its boundary (membranes take precedence so walls stay closed). As in
    the papers, everything else — cell interiors included — is class 0. An object whose
    centroid falls outside it (non-convex) gets the ball around its interior voxel
    nearest to the centroid.

    Returns
    -------
    uint8 ndarray with values in {0, 1, 2}.
    """
    labels = _labels(labels, "three_class")
    if centroid_radius < 0:
        raise InputError(f"three_class: centroid_radius must be >= 0, got {centroid_radius}")
    out = boundaries(labels, thickness).astype(np.uint8)
    cents = centroids(labels)
    r = float(centroid_radius)
    ri = int(np.floor(r))
    ball = _ball(r, labels.ndim)
    objs = ndimage.find_objects(labels)
    for i, sl in enumerate(objs):
        if sl is None:
            continue
        lab = i + 1
        c = np.rint(cents[i]).astype(int)
        if labels[tuple(c)] != lab:
            # non-convex object: use its voxel nearest to the centroid
            vox = np.argwhere(labels[sl] == lab) + [s.start for s in sl]
            c = vox[np.argmin(((vox - cents[i]) ** 2).sum(1))]
        lo = np.maximum(c - ri, 0)
        hi = np.minimum(c + ri + 1, labels.shape)
        win = tuple(slice(a, b) for a, b in zip(lo, hi))
        bsl = tuple(slice(a - (ci - ri), b - (ci - ri)) for a, b, ci in zip(lo, hi, c))
        region = ball[bsl] & (labels[win] == lab) & (out[win] != 1)
        out[win][region] = 2
    return out


def distance_map(labels: np.ndarray, normalise: bool = False,
                 spacing: Optional[Sequence[float]] = None) -> np.ndarray:
    """Per-instance Euclidean distance to the nearest voxel outside the instance.

    Parameters
    ----------
    labels : int ndarray (0 = background, which gets 0)
    normalise : bool
        Divide each instance by its own maximum, giving values in (0, 1].
    spacing : optional per-axis voxel size, for physical distances.

    Returns
    -------
    float32 ndarray; boundary voxels are 1 (one voxel from the outside), centres largest.
    """
    labels = _labels(labels, "distance_map")
    out = np.zeros(labels.shape, np.float32)
    for i, sl in enumerate(ndimage.find_objects(labels)):
        if sl is None:
            continue
        # pad by one so the image border counts as outside the instance
        psl = tuple(slice(max(s.start - 1, 0), min(s.stop + 1, d)) for s, d in zip(sl, labels.shape))
        m = labels[psl] == i + 1
        d = ndimage.distance_transform_edt(np.pad(m, 1), sampling=spacing)[(slice(1, -1),) * m.ndim]
        if normalise:
            d = d / d[m].max()
        out[psl][m] = d[m]
    return out


def positional_map(foreground: np.ndarray, alpha: float = 100.0, beta: float = 100.0,
                   spacing: Optional[Sequence[float]] = None) -> np.ndarray:
    """Positional conditioning of seed 001 eq. 1.

        f_pos(x) = tanh( dist(x) / α)   inside the specimen (foreground)
                   tanh(-dist(x) / β)   outside,

    dist(x) = Euclidean distance to the specimen boundary: for a foreground voxel the
    distance to the nearest background voxel, for a background voxel the distance to the
    nearest foreground voxel (so voxels next to the border get ±tanh(1/α or 1/β)).
    α and β set how fast the map saturates (seed 001 trains with α = β = 100 and
    varies α ∈ {10, 50, 100, 500, 1000} for quality levels). A specimen filling the
    whole image has no boundary: the map is 1 everywhere (and -1 for an empty one).

    Returns
    -------
    float32 ndarray in (-1, 1): > 0 inside, < 0 outside.
    """
    fg = np.asarray(foreground)
    if fg.ndim not in (2, 3):
        raise InputError(f"positional_map: foreground must be 2D or 3D, got shape {fg.shape}")
    if fg.dtype != bool:
        raise InputError(f"positional_map: foreground must be a bool mask, got dtype {fg.dtype}")
    if not (alpha > 0 and beta > 0 and np.isfinite(alpha) and np.isfinite(beta)):
        raise InputError(f"positional_map: α and β must be finite and > 0, got α={alpha}, β={beta}")
    if fg.all():
        return np.ones(fg.shape, np.float32)
    if not fg.any():
        return -np.ones(fg.shape, np.float32)
    out = np.empty(fg.shape, np.float32)
    d_out = ndimage.distance_transform_edt(~fg, sampling=spacing)
    np.tanh(-d_out / beta, out=out, casting="same_kind")
    del d_out
    # inside distances only need the foreground's box plus one background layer: any
    # background voxel beyond it is farther than its projection onto that layer (exact)
    sl = ndimage.find_objects(fg.astype(np.uint8))[0]
    box = tuple(slice(max(s.start - 1, 0), min(s.stop + 1, n)) for s, n in zip(sl, fg.shape))
    sub = fg[box]
    d_in = ndimage.distance_transform_edt(sub, sampling=spacing)
    region = out[box]
    region[sub] = np.tanh(d_in[sub] / alpha)
    return out


def grayscale_overlap(masks: Sequence[np.ndarray], max_labels: int = 4, drop_covered: float = 0.7,
                      rng: Optional[np.random.Generator] = None) -> tuple[np.ndarray, np.ndarray]:
    """Seed 002's single-channel encoding of overlapping instances.

    Build the overlap graph (edge u-v when the instances share pixels, weight = fraction
    of u covered by v), drop instances covered more than ``drop_covered`` by the
    others, colour the graph by breadth-first flood fill with the fewest gray levels
    (greedy, at most ``max_labels``: 4 LIVECell, 3 TissueNet; an instance needing more
    is dropped), and spread the levels over 1..255, shuffled per image.

    Parameters
    ----------
    masks : sequence of bool ndarrays, one per instance, same shape (overlaps allowed)
    max_labels : cap on gray levels
    drop_covered : drop an instance whose area is covered more than this by others
    rng : shuffles the level -> gray value assignment (identity order when None)

    Returns
    -------
    (gray uint8 image — 0 background; where instances overlap, the later kept one wins —,
     kept: indices of the instances that are encoded)
    """
    masks = [np.asarray(m) for m in masks]
    if not masks:
        raise InputError("grayscale_overlap: no instance masks given")
    shape = masks[0].shape
    for i, m in enumerate(masks):
        if m.dtype != bool or m.shape != shape:
            raise InputError(f"grayscale_overlap: mask {i} must be bool with shape {shape}, "
                             f"got {m.dtype} {m.shape}")
    if max_labels < 1 or max_labels > 255:
        raise InputError(f"grayscale_overlap: max_labels must be in 1..255, got {max_labels}")
    n = len(masks)
    flat = np.stack([m.ravel() for m in masks]).astype(np.float32)     # (n, P)
    area = flat.sum(1)
    inter = flat @ flat.T                                              # shared pixels
    # covered fraction of u by the union of the others
    cover = np.zeros(n)
    for u in range(n):
        others = np.delete(flat, u, 0).max(0) if n > 1 else np.zeros_like(flat[u])
        cover[u] = (flat[u] * others).sum() / max(area[u], 1.0)
    keep = (cover <= drop_covered) & (area > 0)
    adj = (inter > 0) & keep[None] & keep[:, None]
    np.fill_diagonal(adj, False)
    colour = -np.ones(n, int)
    for start in np.flatnonzero(keep):
        if colour[start] >= 0:
            continue
        queue = deque([start])
        while queue:
            u = queue.popleft()
            if colour[u] >= 0:
                continue
            used = {colour[v] for v in np.flatnonzero(adj[u]) if colour[v] >= 0}
            free = [c for c in range(max_labels) if c not in used]
            if not free:
                keep[u] = False
                adj[u, :] = adj[:, u] = False
                continue
            colour[u] = free[0]
            queue.extend(v for v in np.flatnonzero(adj[u]) if colour[v] < 0)
    levels = np.linspace(255 / max_labels, 255, max_labels).round().astype(np.uint8)
    if rng is not None:
        levels = rng.permutation(levels)
    gray = np.zeros(shape, np.uint8)
    kept = np.flatnonzero(keep)
    for u in kept:
        gray[masks[u]] = levels[colour[u]]
    return gray, kept
