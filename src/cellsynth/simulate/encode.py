"""Derived representations of an annotation: pure functions of labels / foreground.

- :func:`boundaries` — object boundary mask (membrane positions); its width convention
  (voxels per side of each interface) is the package's one;
- :func:`three_class` — background / membrane / centroid map of Eschweiler et al. 2019, 2021;
- :func:`distance_map` — per-instance Euclidean distance to the object's border;
- :func:`positional_map` — the positional conditioning f_pos of Eschweiler et al. 2021 eq. 1;
- :func:`centroids` — instance centroids (N, ndim);
- :func:`grayscale_overlap` / :func:`decode_grayscale` — Lesmes-Leon et al. 2025's single-channel encoding
  of overlapping instances and its inverse (with :func:`overlap_graph`,
  :func:`overlap_colouring`, :func:`area_range`, :func:`grayscale_report`).

All work for 2D (YX) and 3D (ZYX) alike; inputs are validated and bad ones raise
:class:`cellsynth.io.InputError`.
"""
from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence

import numpy as np
from scipy import ndimage

from cellsynth.errors import InputError
from cellsynth.scene import Scene, pack_layers, relabel_consecutive

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


def boundaries(labels: np.ndarray, thickness: int = 1, *, touching_only: bool = False) -> np.ndarray:
    """Object boundaries (membrane positions): the one boundary mask of the package.

    Width convention (used by every boundary and membrane in cellsynth: renderers' walls,
    ``scene.membranes.wall_thickness``, segmenter targets, metrics, exports): ``thickness``
    t counts voxels on *each side* of a label interface, inside the objects ("inner"
    boundaries). An object voxel is on the 1-voxel boundary when a face neighbour
    (connectivity 1) holds another label — another object, or background unless
    ``touching_only``; t > 1 widens it by a ball of radius t − 1 (voxel units), kept inside
    the objects. A wall between two touching objects is therefore 2·t voxels wide, an
    object's surface against the background t voxels. The image border is no interface.

    Parameters
    ----------
    labels : int ndarray, YX or ZYX (0 = background)
    thickness : int >= 1
        Voxels per side of each interface.
    touching_only : bool
        Only interfaces between two objects (the walls that separate touching objects).

    Returns
    -------
    bool ndarray, True on boundaries.

    Examples
    --------
    >>> lab = np.zeros((1, 8), np.uint8); lab[0, 1:4] = 1; lab[0, 4:7] = 2
    >>> boundaries(lab).astype(int)
    array([[0, 1, 0, 1, 1, 0, 1, 0]])
    >>> boundaries(lab, touching_only=True).astype(int)
    array([[0, 0, 0, 1, 1, 0, 0, 0]])
    >>> boundaries(lab, 2).astype(int)
    array([[0, 1, 1, 1, 1, 1, 1, 0]])
    """
    labels = _labels(labels, "boundaries")
    thickness = int(thickness)
    if thickness < 1:
        raise InputError(f"boundaries: thickness must be >= 1, got {thickness}")
    inside = labels > 0
    b = np.zeros(labels.shape, dtype=bool)
    for ax in range(labels.ndim):
        lo = [slice(None)] * labels.ndim
        hi = [slice(None)] * labels.ndim
        lo[ax], hi[ax] = slice(None, -1), slice(1, None)
        lo, hi = tuple(lo), tuple(hi)
        d = labels[lo] != labels[hi]
        if touching_only:
            d &= inside[lo] & inside[hi]
        b[lo] |= d
        b[hi] |= d
    b &= inside
    if thickness > 1:
        b = ndimage.binary_dilation(b, structure=_ball(thickness - 1, labels.ndim))
        b &= inside
    return b


def centroids(labels: np.ndarray) -> np.ndarray:
    """Centroid (mean voxel position, (Z)YX) of each label 1..max; (N, ndim) float.

    Labels absent from the image give NaN rows, so row i always belongs to label i + 1.

    Examples
    --------
    >>> lab = np.zeros((5, 9), np.uint8); lab[1:4, 1:4] = 1; lab[1:4, 5:8] = 2
    >>> centroids(lab)
    array([[2., 2.],
           [2., 6.]])
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


def three_class(labels: np.ndarray, centroid_radius: float | None = 2.0, thickness: int = 1) -> np.ndarray:
    """The 3-class representation of Eschweiler et al. 2019, 2021: 0 background, 1 membrane, 2 centroid.

    Class 1 is the object boundary (:func:`boundaries` with ``thickness``); class 2 a
    ball of radius ``centroid_radius`` around each object's centroid, kept inside the
    object and off its boundary (membranes take precedence so walls stay closed). As in
    the papers, everything else — cell interiors included — is class 0. An object whose
    centroid falls outside it (non-convex) gets the ball around its interior voxel
    nearest to the centroid. ``centroid_radius=None`` makes class 2 the whole object
    interior (background / boundary / interior, the segmenter's target).

    Examples
    --------
    >>> lab = np.zeros((7, 7), np.uint8); lab[1:6, 1:6] = 1
    >>> three_class(lab, centroid_radius=0)[3]
    array([0, 1, 0, 2, 0, 1, 0], dtype=uint8)
    >>> three_class(lab, centroid_radius=None)[3]
    array([0, 1, 2, 2, 2, 1, 0], dtype=uint8)

    Returns
    -------
    uint8 ndarray with values in {0, 1, 2}.
    """
    labels = _labels(labels, "three_class")
    out = boundaries(labels, thickness).astype(np.uint8)
    if centroid_radius is None:
        out[(labels > 0) & (out == 0)] = 2
        return out
    if centroid_radius < 0:
        raise InputError(f"three_class: centroid_radius must be >= 0, got {centroid_radius}")
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
                 spacing: Sequence[float] | None = None) -> np.ndarray:
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

    Examples
    --------
    >>> lab = np.zeros((7, 7), np.uint8); lab[1:6, 1:6] = 1
    >>> distance_map(lab)[3]
    array([0., 1., 2., 3., 2., 1., 0.], dtype=float32)
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
                   spacing: Sequence[float] | None = None, factor: int = 1) -> np.ndarray:
    """Positional conditioning of Eschweiler et al. 2021 eq. 1.

        f_pos(x) = tanh( dist(x) / α)   inside the specimen (foreground)
                   tanh(-dist(x) / β)   outside,

    dist(x) = Euclidean distance to the specimen boundary: for a foreground voxel the
    distance to the nearest background voxel, for a background voxel the distance to the
    nearest foreground voxel (so voxels next to the border get ±tanh(1/α or 1/β)).
    α and β set how fast the map saturates (Eschweiler et al. 2021 trains with α = β = 100 and
    varies α ∈ {10, 50, 100, 500, 1000} for quality levels). A specimen filling the
    whole image has no boundary: the map is 1 everywhere (and -1 for an empty one).

    ``factor`` > 1 computes the map on the specimen subsampled by ``factor`` per axis (``[::f]``)
    and upsamples it linearly (:func:`cellsynth.simulate.shapes.upsample_linear`), f^ndim times
    fewer voxels for the distance transforms: the specimen surface moves by ≲ f px, so the map
    changes by ≲ 2 f / min(α, β) near it and much less inside (measured on balls: ≤ 0.03 at
    f = 2, α = β = 100; mean 0.004).

    Returns
    -------
    float32 ndarray in (-1, 1): > 0 inside, < 0 outside.

    Examples
    --------
    >>> fg = np.zeros((1, 7), bool); fg[0, 2:5] = True
    >>> positional_map(fg, alpha=1.0, beta=1.0).round(2)
    array([[-0.96, -0.76,  0.76,  0.96,  0.76, -0.76, -0.96]], dtype=float32)
    """
    fg = np.asarray(foreground)
    if fg.ndim not in (2, 3):
        raise InputError(f"positional_map: foreground must be 2D or 3D, got shape {fg.shape}")
    if fg.dtype != bool:
        raise InputError(f"positional_map: foreground must be a bool mask, got dtype {fg.dtype}")
    if not (alpha > 0 and beta > 0 and np.isfinite(alpha) and np.isfinite(beta)):
        raise InputError(f"positional_map: α and β must be finite and > 0, got α={alpha}, β={beta}")
    if int(factor) != factor or factor < 1:
        raise InputError(f"positional_map: factor must be a positive integer, got {factor}")
    if fg.all():
        return np.ones(fg.shape, np.float32)
    if not fg.any():
        return -np.ones(fg.shape, np.float32)
    if factor > 1:
        sub = fg[(slice(None, None, int(factor)),) * fg.ndim]
        if sub.any() and not sub.all():  # else the subsampled grid lost the boundary: exact map
            sp = [float(factor) * s for s in (spacing if spacing is not None else [1.0] * fg.ndim)]
            from .shapes import upsample_linear
            return upsample_linear(positional_map(sub, alpha, beta, sp), fg.shape, step=int(factor))
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


def _object_layers(objects, what: str) -> np.ndarray:
    """(L, *shape) label layers with object ids 1..n from a Scene or a sequence of bool masks."""
    if isinstance(objects, Scene):
        return objects.layers if objects.layers is not None else objects.labels[None]
    masks = [np.asarray(m) for m in objects]
    if not masks:
        raise InputError(f"{what}: no instance masks given")
    shape = masks[0].shape
    if len(shape) not in (2, 3):
        raise InputError(f"{what}: masks must be 2D (YX) or 3D (ZYX), got shape {shape}")
    for i, m in enumerate(masks):
        if m.dtype != bool or m.shape != shape:
            raise InputError(f"{what}: mask {i} must be bool with shape {shape}, got {m.dtype} {m.shape}")
    return pack_layers(masks, shape)


def overlap_graph(objects, touching: bool = True) -> tuple[np.ndarray, dict[tuple[int, int], int], set]:
    """The overlap graph of Lesmes-Leon et al. 2025 (Algorithm 1).

    Parameters
    ----------
    objects : Scene (its ``layers`` where objects overlap, else ``labels``) or a sequence
        of bool masks, one per object (overlaps allowed); object ``i`` has id ``i + 1``.
    touching : also join objects that only touch (face neighbours), not just those that
        share pixels — otherwise touching objects given the same gray level would merge
        when the mask is decoded.

    Returns
    -------
    area : (n,) int, pixels per object;
    shared : {(u, v): pixels u and v share} for u < v (0-based indices);
    edges : set of (u, v), u < v, the graph's edges (sharing, or touching when asked).
    The directed weight u→v of the paper is ``shared[u, v] / area[u]``.

    Examples
    --------
    >>> a = np.zeros((5, 8), bool); a[1:4, 0:4] = True
    >>> b = np.zeros((5, 8), bool); b[1:4, 2:5] = True
    >>> c = np.zeros((5, 8), bool); c[1:4, 5:8] = True
    >>> area, shared, edges = overlap_graph([a, b, c])
    >>> area.tolist(), shared, sorted(edges)
    ([12, 9, 9], {(0, 1): 6}, [(0, 1), (1, 2)])
    """
    return _graph(_object_layers(objects, "overlap_graph"), touching)


def _graph(layers: np.ndarray, touching: bool):
    n = int(layers.max()) if layers.size else 0
    area = np.zeros(n + 1, np.int64)
    for lay in layers:
        area += np.bincount(lay.ravel(), minlength=n + 1)[: n + 1]
    base = np.int64(n + 1)

    def pairs(x, y):
        hit = (x > 0) & (y > 0) & (x != y)
        u, v = x[hit].astype(np.int64), y[hit].astype(np.int64)
        codes = np.minimum(u, v) * base + np.maximum(u, v)
        return np.unique(codes, return_counts=True)

    shared: dict[tuple[int, int], int] = {}
    for a in range(len(layers)):
        for b in range(a + 1, len(layers)):
            for code, cnt in zip(*pairs(layers[a], layers[b])):
                key = (int(code // base) - 1, int(code % base) - 1)
                shared[key] = shared.get(key, 0) + int(cnt)
    edges = set(shared)
    if touching:
        nd = layers.ndim - 1
        for a in range(len(layers)):
            for b in range(len(layers)):
                for ax in range(nd):
                    lo = [slice(None)] * nd
                    hi = [slice(None)] * nd
                    lo[ax], hi[ax] = slice(None, -1), slice(1, None)
                    for code in pairs(layers[a][tuple(lo)], layers[b][tuple(hi)])[0]:
                        edges.add((int(code // base) - 1, int(code % base) - 1))
    return area[1:], shared, edges


def overlap_colouring(objects, max_labels: int = 4, drop_covered: float = 0.7,
                      touching: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Colour the overlap graph with few gray labels (Lesmes-Leon et al. 2025 Algorithm 1).

    Objects with an out-edge weight above ``drop_covered`` (a fraction of their area covered
    by one other object) are dropped first — all at once, as in the paper. Each connected
    cluster is then flood-filled breadth first from its lowest-index object, every object
    taking the smallest label none of its coloured neighbours has; an object that would
    need label ``max_labels`` or more is dropped (the label cap).

    Returns
    -------
    colour : (n,) int, the label 0..max_labels-1 of each object, -1 where dropped;
    reason : (n,) int, 0 kept, 1 empty, 2 covered above ``drop_covered``, 3 over the label cap.

    Examples
    --------
    A path of three touching squares needs two labels; the third square fully inside
    the first is dropped:

    >>> m = [np.zeros((4, 9), bool) for _ in range(4)]
    >>> m[0][:, 0:3] = m[1][:, 3:6] = m[2][:, 6:9] = True; m[3][1:3, 1:2] = True
    >>> colour, reason = overlap_colouring(m)
    >>> colour.tolist(), reason.tolist()
    ([0, 1, 0, -1], [0, 0, 0, 2])
    """
    return _colouring(_object_layers(objects, "overlap_colouring"), max_labels, drop_covered, touching)


def _colouring(layers: np.ndarray, max_labels: int, drop_covered: float, touching: bool):
    if not (isinstance(max_labels, (int, np.integer)) and 1 <= max_labels <= 255):
        raise InputError(f"grayscale overlap: max_labels must be an integer in 1..255, got {max_labels}")
    if not 0 <= drop_covered <= 1:
        raise InputError(f"grayscale overlap: drop_covered must be in [0, 1], got {drop_covered}")
    area, shared, edges = _graph(layers, touching)
    n = len(area)
    reason = np.where(area > 0, 0, 1)
    worst = np.zeros(n)
    for (u, v), s in shared.items():
        worst[u] = max(worst[u], s / max(area[u], 1))
        worst[v] = max(worst[v], s / max(area[v], 1))
    reason[(reason == 0) & (worst > drop_covered)] = 2
    nbrs: list[list[int]] = [[] for _ in range(n)]
    for u, v in sorted(edges):
        if reason[u] == 0 and reason[v] == 0:
            nbrs[u].append(v)
            nbrs[v].append(u)
    colour = -np.ones(n, int)
    for start in np.flatnonzero(reason == 0):
        if colour[start] >= 0 or reason[start]:
            continue
        queue = deque([int(start)])
        seen = {int(start)}
        while queue:
            u = queue.popleft()
            used = {colour[v] for v in nbrs[u]}
            c = next((c for c in range(max_labels) if c not in used), -1)
            if c < 0:
                reason[u] = 3
                continue
            colour[u] = c
            for v in nbrs[u]:
                if v not in seen and reason[v] == 0:
                    seen.add(v)
                    queue.append(v)
    return colour, reason


def gray_levels(max_labels: int) -> np.ndarray:
    """The gray value of each label: ``max_labels`` levels spread evenly over 1..255.

    >>> gray_levels(4).tolist()
    [64, 128, 191, 255]
    """
    return np.linspace(255 / max_labels, 255, max_labels).round().astype(np.uint8)


def grayscale_overlap(objects, max_labels: int = 4, drop_covered: float = 0.7, touching: bool = True,
                      rng: np.random.Generator | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The single-channel encoding of overlapping instances of Lesmes-Leon et al. 2025.

    :func:`overlap_colouring` gives each kept object one of ``max_labels`` labels (4 for
    LIVECell, 3 for TissueNet in the paper); the labels' gray values (:func:`gray_levels`)
    are shuffled per image by ``rng`` so every level is used equally often. Where kept
    objects overlap, the smaller one is painted on top, so small objects stay whole.

    Parameters
    ----------
    objects : Scene or sequence of bool masks (overlaps allowed), see :func:`overlap_graph`
    max_labels : label cap (gray levels), 1..255
    drop_covered : drop an object covered by another above this fraction of its area
    touching : objects that touch need different labels too (so decoding separates them)
    rng : shuffles the label -> gray value assignment (identity order when None)

    Returns
    -------
    (gray uint8 image, 0 = background; kept: indices of the encoded objects, 0-based)

    Examples
    --------
    >>> a = np.zeros((6, 6), bool); a[:4, :4] = True
    >>> b = np.zeros((6, 6), bool); b[2:, 2:] = True
    >>> gray, kept = grayscale_overlap([a, b], max_labels=2)
    >>> kept.tolist(), np.unique(gray).tolist()
    ([0, 1], [0, 128, 255])
    """
    layers = _object_layers(objects, "grayscale_overlap")
    colour, _ = _colouring(layers, max_labels, drop_covered, touching)
    levels = gray_levels(max_labels)
    if rng is not None:
        levels = rng.permutation(levels)
    n = len(colour)
    lut = np.zeros(n + 1, np.uint8)
    lut[1:][colour >= 0] = levels[colour[colour >= 0]]
    area = np.zeros(n + 1, np.int64)
    for lay in layers:
        area += np.bincount(lay.ravel(), minlength=n + 1)[: n + 1]
    # paint in decreasing area: where kept objects overlap the smaller ends on top
    rank = np.empty(n + 1, np.int64)
    rank[np.argsort(-area, kind="stable")] = np.arange(n + 1)
    rank[0] = -1
    kept_id = np.zeros(n + 1, bool)
    kept_id[1:] = colour >= 0
    gray = np.zeros(layers.shape[1:], np.uint8)
    best = np.full(layers.shape[1:], -1, np.int64)
    for lay in layers:
        r = np.where(kept_id[lay], rank[lay], -1)
        win = r > best
        best[win] = r[win]
        gray[win] = lut[lay[win]]
    return gray, np.flatnonzero(colour >= 0)


def decode_grayscale(gray: np.ndarray, max_labels: int = 4,
                     area_range: Sequence[float] | None = None) -> np.ndarray:
    """Instances back from a gray overlap mask (:func:`grayscale_overlap`), real or generated.

    Each pixel takes the nearest of the ``max_labels`` gray levels (background below half
    the lowest level); each face-connected region of one level is an instance. For
    generated masks, Lesmes-Leon et al. 2025 keeps only objects inside the real data's area distribution:
    ``area_range = (low, high)`` pixels (:func:`area_range`) drops the others — the small
    fragments of blurred borders and implausibly large blobs.

    Parameters
    ----------
    gray : 2D/3D array of gray values on the 0–255 scale (uint8 or float)
    max_labels : the label cap the mask was encoded with
    area_range : optional (low, high) object area in pixels, inclusive

    Returns
    -------
    labels : uint16 (uint32 past 65535 objects) instances 1..N, visible parts only.

    Examples
    --------
    >>> a = np.zeros((6, 6), bool); a[:4, :4] = True
    >>> b = np.zeros((6, 6), bool); b[2:, 2:] = True
    >>> lab = decode_grayscale(grayscale_overlap([a, b], max_labels=2)[0], max_labels=2)
    >>> int(lab.max()), sorted(np.bincount(lab.ravel())[1:].tolist())
    (2, [12, 16])
    """
    g = np.asarray(gray)
    if g.ndim not in (2, 3):
        raise InputError(f"decode_grayscale: gray mask must be 2D (YX) or 3D (ZYX), got shape {g.shape}")
    if not (np.issubdtype(g.dtype, np.integer) or np.issubdtype(g.dtype, np.floating)):
        raise InputError(f"decode_grayscale: gray mask must be numeric, got dtype {g.dtype}")
    g = g.astype(np.float32)
    if not np.isfinite(g).all():
        raise InputError("decode_grayscale: gray mask contains NaN or infinite values")
    if not (isinstance(max_labels, (int, np.integer)) and 1 <= max_labels <= 255):
        raise InputError(f"decode_grayscale: max_labels must be an integer in 1..255, got {max_labels}")
    if area_range is not None and not (len(area_range) == 2 and 0 <= area_range[0] <= area_range[1]):
        raise InputError(f"decode_grayscale: area_range must be (low, high) with 0 <= low <= high, got {area_range}")
    levels = gray_levels(max_labels).astype(np.float32)
    nearest = np.abs(g[..., None] - levels).argmin(-1)
    fg = g >= levels[0] / 2
    structure = ndimage.generate_binary_structure(g.ndim, 1)
    labels = np.zeros(g.shape, np.int64)
    total = 0
    for k in range(max_labels):
        comp, n = ndimage.label(fg & (nearest == k), structure=structure)
        labels[comp > 0] = comp[comp > 0] + total
        total += n
    if area_range is not None and total:
        areas = np.bincount(labels.ravel(), minlength=total + 1)
        bad = (areas < area_range[0]) | (areas > area_range[1])
        bad[0] = False
        labels[bad[labels]] = 0
    return relabel_consecutive(labels)[0]


def area_range(label_images: Iterable[np.ndarray], q: Sequence[float] = (1.0, 99.0)) -> tuple[float, float]:
    """The (low, high) percentiles ``q`` of the object areas (pixels) in real label images.

    The area distribution Lesmes-Leon et al. 2025 filters generated objects with (:func:`decode_grayscale`).

    >>> lab = np.zeros((8, 8), int); lab[:2, :2] = 1; lab[4:, 4:] = 2
    >>> area_range([lab], q=(0, 100))
    (4.0, 16.0)
    """
    areas = []
    for lab in label_images:
        lab = _labels(lab, "area_range")
        a = np.bincount(lab.ravel())[1:]
        areas.append(a[a > 0])
    areas = np.concatenate(areas) if areas else np.zeros(0)
    if not len(areas):
        raise InputError("area_range: the label images hold no objects")
    lo, hi = np.percentile(areas, q)
    return float(lo), float(hi)


def grayscale_report(objects_iter: Iterable, max_labels: int = 4, drop_covered: float = 0.7,
                     touching: bool = True) -> dict:
    """Objects kept and labels used when encoding a dataset (Lesmes-Leon et al. 2025 §3.1 reports these).

    ``objects_iter`` yields Scenes or mask sequences. The result counts images, objects,
    objects dropped as covered and over the cap, and the labels each image needs without
    a cap (after dropping covered objects) and uses with it: max and histogram.

    >>> a = np.zeros((4, 9), bool); a[:, :5] = True
    >>> b = np.zeros((4, 9), bool); b[:, 4:] = True
    >>> r = grayscale_report([[a, b]], max_labels=1)
    >>> r["objects"], r["kept"], r["dropped_cap"], r["labels_needed_max"], r["labels_used_max"]
    (2, 1, 1, 2, 1)
    """
    rep = {"images": 0, "objects": 0, "kept": 0, "dropped_empty": 0, "dropped_covered": 0, "dropped_cap": 0,
           "labels_needed": {}, "labels_used": {}, "max_labels": max_labels, "drop_covered": drop_covered,
           "touching": touching}
    for objects in objects_iter:
        layers = _object_layers(objects, "grayscale_report")
        free, _ = _colouring(layers, 255, drop_covered, touching)
        colour, reason = _colouring(layers, max_labels, drop_covered, touching)
        rep["images"] += 1
        rep["objects"] += len(reason)
        rep["kept"] += int((reason == 0).sum())
        for code, key in ((1, "dropped_empty"), (2, "dropped_covered"), (3, "dropped_cap")):
            rep[key] += int((reason == code).sum())
        for key, c in (("labels_needed", free), ("labels_used", colour)):
            k = int(c.max()) + 1 if len(c) else 0
            rep[key][k] = rep[key].get(k, 0) + 1
    for key in ("labels_needed", "labels_used"):
        rep[key + "_max"] = max(rep[key], default=0)
        rep[key] = {str(k): v for k, v in sorted(rep[key].items())}
    rep["kept_fraction"] = rep["kept"] / max(rep["objects"], 1)
    return rep
