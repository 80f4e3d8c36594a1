"""Object positions inside the foreground (k-means/Lloyd: Eschweiler et al. 2019; Poisson-disc; layers:
Eschweiler et al. 2021).

``place_points`` returns float voxel coordinates (N, ndim), (Z)YX, every point on a
foreground voxel. Methods (``PlacementConfig.method``):

- ``uniform``: ``n_points`` independent uniform positions in the foreground.
- ``lloyd``: Eschweiler et al. 2019's tuple (n_points, n_iter, k). ``n_points`` uniform random points are
  relaxed by ``n_iter`` Lloyd (k-means) iterations over the foreground: every foreground
  sample is assigned to its nearest point and each point moves to the centroid of its
  samples, which evens out the distances between centres. The paper never defines ``k``.
  **Our reading**: ``k`` is the number of foreground samples per point used to estimate
  the centroids — each iteration draws ``k · n_points`` fresh uniform foreground samples
  (a Monte-Carlo Lloyd step), so ``k`` trades accuracy of the relaxation against cost.
  Centroids that fall outside a non-convex foreground are snapped to the nearest
  foreground voxel.
- ``poisson``: minimum-distance (Poisson-disc) dart throwing: uniform candidates are kept
  when no accepted point lies within ``min_distance`` px (KD-tree queries, batched), with
  at most 30 candidates per requested point, stopping early once 3 batches in a row hold
  no free candidate. A full region yields fewer points; the achieved count is ``len(points)``.
  With ``touching`` > 0, a Binomial(n, touching) share of the points is instead placed in
  contact with a random earlier point: at ``contact_distance`` × U(0.85, 1.05) px in a
  uniform random direction, kept only on the foreground and at least 0.85 ×
  ``contact_distance`` from every other point (chains and clumps of touching nuclei, as in
  dense real fields; the nuclei keep separate labels, see ``nuclei.max_occlusion``).
- ``layers``: Eschweiler et al. 2021's layer-wise assembly: layers of thickness ``layer_thickness`` px
  along the distance transform of the foreground (the image border counts as boundary),
  filled from the outer boundary inward; inside each layer points are Poisson-disc spaced
  by ``min_distance`` (also from points of earlier layers). Each layer is filled until
  its dart budget (30 candidates per point it can hold, at most one ball of diameter
  ``min_distance`` per point) is spent, it is full, or ``n_points`` is reached; then the
  next layer inward starts, up to ``max_layers`` layers (1 = nuclei on the surface only,
  as Eschweiler et al. 2024's Tribolium embryo).
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree

from cellsynth.config import PlacementConfig
from cellsynth.errors import ConfigError
from cellsynth.simulate import shapes

_ATTEMPTS = 30  # dart-throwing candidates per requested point
_PATIENCE = 3  # batches in a row without a free candidate: the region is full


def draw_count(cfg: PlacementConfig, rng: np.random.Generator) -> int:
    """Number of objects requested, uniform in ``cfg.n_points`` (inclusive)."""
    return int(rng.integers(cfg.n_points[0], cfg.n_points[1] + 1))


def place_points(cfg: PlacementConfig, foreground: np.ndarray, rng: np.random.Generator,
                 n: int | None = None) -> np.ndarray:
    """Positions (N, ndim) float inside ``foreground``; ``n`` defaults to :func:`draw_count`."""
    fg = np.asarray(foreground)
    if fg.dtype != bool:
        raise ConfigError(f"foreground must be a boolean mask, got dtype {fg.dtype}")
    if fg.ndim not in (2, 3):
        raise ConfigError(f"foreground must be 2D or 3D, got shape {fg.shape}")
    if n is None:
        n = draw_count(cfg, rng)
    idx = np.flatnonzero(fg)
    if n <= 0 or len(idx) == 0:
        return np.zeros((0, fg.ndim))
    sampler = _sampler(idx, fg.shape, rng)
    m = cfg.method
    if m == "uniform":
        return sampler(n)
    if m == "lloyd":
        return _lloyd(fg, sampler, n, cfg.n_iter, cfg.k)
    if m == "poisson":
        n_touch = int(rng.binomial(n, cfg.touching)) if cfg.touching > 0 else 0
        pts = _dart(sampler, n - n_touch, cfg.min_distance, np.zeros((0, fg.ndim)), _ATTEMPTS * n)
        if n_touch:
            pts = _contacts(pts, n_touch, cfg.contact_distance, fg, sampler, rng)
        return pts
    if m == "layers":
        return _layers(fg, n, cfg.min_distance, cfg.layer_thickness, rng, cfg.max_layers)
    raise ConfigError(f"config key 'placement.method' = {m!r}: unknown method")  # pragma: no cover


def _sampler(idx: np.ndarray, shape, rng) -> Callable[[int], np.ndarray]:
    """Uniform positions on the voxels ``idx`` (flat), jittered within the voxel (|δ| < 0.5)."""

    def draw(k: int) -> np.ndarray:
        pick = idx[rng.integers(0, len(idx), size=k)]
        p = np.stack(np.unravel_index(pick, shape), axis=1).astype(float)
        return p + rng.uniform(-0.499, 0.499, size=p.shape)

    return draw


def _dart(sampler, n: int, d: float, existing: np.ndarray, budget: int) -> np.ndarray:
    """Accept up to ``n`` candidates at least ``d`` apart (and from ``existing``)."""
    ndim = existing.shape[1]
    if d <= 0:
        return np.concatenate([existing, sampler(n)]) if n > 0 else existing
    acc = [existing]
    n_acc, used = 0, 0
    tree = cKDTree(existing) if len(existing) else None
    idle = 0
    while n_acc < n and used < budget and idle < _PATIENCE:
        b = int(min(budget - used, max(64, 4 * (n - n_acc))))
        c = sampler(b)
        used += b
        if tree is not None:
            dist, _ = tree.query(c, k=1, distance_upper_bound=d)
            c = c[dist >= d]
        if len(c) == 0:
            idle += 1
            continue
        idle = 0
        neigh = cKDTree(c).query_ball_point(c, d - 1e-9)
        blocked = np.zeros(len(c), dtype=bool)
        keep = []
        for i in range(len(c)):  # greedy in random (draw) order among this batch
            if blocked[i]:
                continue
            keep.append(i)
            blocked[neigh[i]] = True
            if n_acc + len(keep) >= n:
                break
        acc.append(c[keep])
        n_acc += len(keep)
        tree = cKDTree(np.concatenate(acc))
    out = np.concatenate(acc) if len(acc) > 1 else existing
    return out.reshape(-1, ndim)


def _contacts(pts: np.ndarray, n: int, d: float, fg: np.ndarray, sampler, rng) -> np.ndarray:
    """Add up to ``n`` points each in contact (distance d·U(0.85, 1.05)) with an earlier one."""
    ndim = fg.ndim
    if len(pts) == 0:
        pts = sampler(1)
        n -= 1
    out = [p for p in pts]
    shape = np.asarray(fg.shape)
    for _ in range(n):
        for _try in range(_ATTEMPTS):
            parent = out[int(rng.integers(len(out)))]
            v = rng.standard_normal(ndim)
            v /= max(float(np.linalg.norm(v)), 1e-12)
            c = parent + v * d * rng.uniform(0.85, 1.05)
            vox = np.rint(c).astype(int)
            if np.any(vox < 0) or np.any(vox >= shape) or not fg[tuple(vox)]:
                continue
            if np.min(np.linalg.norm(np.asarray(out) - c, axis=1)) < 0.85 * d - 1e-9:
                continue
            out.append(c)
            break
    return np.asarray(out, float).reshape(-1, ndim)


def _snap(points: np.ndarray, fg: np.ndarray) -> np.ndarray:
    """Move points whose voxel is background to the nearest foreground voxel."""
    vox = np.clip(np.rint(points).astype(int), 0, np.asarray(fg.shape) - 1)
    bad = ~fg[tuple(vox.T)]
    if bad.any():
        _, ind = ndimage.distance_transform_edt(~fg, return_indices=True)
        points = points.copy()
        points[bad] = np.stack([ind[i][tuple(vox[bad].T)] for i in range(fg.ndim)], axis=1)
    return points


def _lloyd(fg, sampler, n: int, n_iter: int, k: int) -> np.ndarray:
    pts = sampler(n)
    for _ in range(n_iter):
        s = sampler(k * n)
        _, owner = cKDTree(pts).query(s, k=1)
        cnt = np.bincount(owner, minlength=n)
        has = cnt > 0
        for ax in range(fg.ndim):
            sums = np.bincount(owner, weights=s[:, ax], minlength=n)
            pts[has, ax] = sums[has] / cnt[has]
    return _snap(pts, fg)


def _layers(fg, n: int, d: float, thickness: float, rng, max_layers=None) -> np.ndarray:
    dist = boundary_distance(fg, thickness)
    idx = np.flatnonzero(fg)
    layer = (dist.ravel()[idx] // thickness).astype(np.int64)
    del dist
    order = np.argsort(layer, kind="stable")
    idx, layer = idx[order], layer[order]
    bounds = np.searchsorted(layer, np.arange(int(layer.max()) + 2))
    # a point claims at least a ball of diameter d: bounds how many a layer can hold
    claim = _ball_volume(d / 2, fg.ndim) if d > 0 else 0.0
    pts = np.zeros((0, fg.ndim))
    n_layers = len(bounds) - 1 if max_layers is None else min(len(bounds) - 1, max_layers)
    for i in range(n_layers):
        if len(pts) >= n:
            break
        vox = idx[bounds[i]:bounds[i + 1]]
        if len(vox) == 0:
            continue
        remaining = n - len(pts)
        cap = remaining if claim == 0 else min(remaining, int(len(vox) / claim) + 1)
        pts = _dart(_sampler(vox, fg.shape, rng), remaining, d, pts, _ATTEMPTS * cap)
    return pts


_EXACT_EDT_MAX = 2 ** 21


def boundary_distance(fg: np.ndarray, thickness: float = 1.0) -> np.ndarray:
    """Euclidean distance (px) of each voxel to the specimen surface, 0 on the outermost
    voxels; the image border counts as surface. Above 2²¹ voxels the transform runs on the
    mask subsampled by f = ⌊thickness / 4⌋ and is linearly upsampled (error ≲ f px, well
    under a layer): scipy's exact EDT of a 128×512×512 specimen takes ~25 s."""
    f = 1 if fg.size <= _EXACT_EDT_MAX else max(1, int(thickness // 4))
    sub = fg[(slice(None, None, f),) * fg.ndim] if f > 1 else fg
    d = ndimage.distance_transform_edt(np.pad(sub, 1))[(slice(1, -1),) * fg.ndim].astype(np.float32)
    if f > 1:
        d = shapes.upsample_linear(d * f, fg.shape, step=f)
    d -= 1.0
    return d


def _ball_volume(r: float, ndim: int) -> float:
    return float(np.pi * r ** 2 if ndim == 2 else 4 / 3 * np.pi * r ** 3)
