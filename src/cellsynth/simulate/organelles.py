"""Nucleus–Golgi pairs (Rosa et al.), 2D and 3D.

Rosa et al. draws per pair: Golgi sphere radius ``golgi_radius`` (5–9 px), nucleus ellipsoid
axes ``nucleus_axes`` ([17–30, 8–13, 8–13] px), "the distance between the nucleus and
Golgi (relative to the center of the Golgi)" ``golgi_offset`` (−6..6 px), a rotation of the
pair ``rotation_deg`` (0–180°), 45–70 pairs per volume (``n_pairs``) and an elastic
deformation of 0.75 per pair (``elastic``).

Our reading (the paper gives no more detail):

- ``nucleus_axes`` are semi-axes in px, (Z)YX order in the pair's own frame; a 2D scene
  uses the last two ranges.
- The Golgi centre lies along a uniformly random direction û from the nucleus centre, at
  ``ρ(û) + offset`` where ρ(û) is the distance from the centre to the ellipsoid surface in
  that direction: the offset is measured from the nucleus surface to the Golgi centre, so
  negative offsets press the Golgi into the nucleus. Where both overlap the Golgi owns the
  voxels (the nucleus gets an indentation). The offset is clipped at 1 − r_golgi so the
  Golgi always reaches the nucleus surface (with −6 px and r = 5 px it would otherwise
  sit sealed inside the nucleus as a cavity, which real masks do not show).
- The pair is rotated as a whole by an angle in ``rotation_deg`` about a uniformly random
  axis (3D) or in the plane (2D), then deformed with one elastic B-spline field (std
  ``elastic`` px on a 4^ndim control grid over the pair's box).
- Pair centres are uniform in the foreground; a pair touching an earlier one is redrawn
  elsewhere (at most 20 tries per requested pair), so crowded scenes place fewer pairs.
  Each structure is clipped to the foreground.
"""
from __future__ import annotations

import numpy as np

from cellsynth.config import OrganelleConfig
from cellsynth.errors import ConfigError
from cellsynth.simulate import shapes
from cellsynth.simulate.nuclei import axis_ranges

_TRIES = 20


def draw_pairs(cfg: OrganelleConfig, rng: np.random.Generator) -> int:
    return int(rng.integers(cfg.n_pairs[0], cfg.n_pairs[1] + 1))


def nucleus_golgi(foreground: np.ndarray, cfg: OrganelleConfig, rng: np.random.Generator,
                  n_pairs: int | None = None) -> tuple[np.ndarray, dict[int, str]]:
    """Labels (nucleus 2i−1, Golgi 2i for the i-th placed pair; uint16/uint32) and classes."""
    fg = np.asarray(foreground)
    if fg.dtype != bool or fg.ndim not in (2, 3):
        raise ConfigError(f"foreground must be a 2D/3D boolean mask, got {fg.dtype} {fg.shape}")
    ndim = fg.ndim
    axes = axis_ranges(cfg.nucleus_axes, ndim, "organelles.nucleus_axes")
    n = draw_pairs(cfg, rng) if n_pairs is None else int(n_pairs)
    idx = np.flatnonzero(fg)
    dtype = np.uint16 if 2 * n < 65535 else np.uint32
    labels = np.zeros(fg.shape, dtype=dtype)
    classes: dict[int, str] = {}
    placed, tries = 0, 0
    # every nucleus covers a ball of (shortest semi-axis − elastic displacement) around its centre
    clear = max(min(r[0] for r in axes) - cfg.elastic - 1.0, 0.0)
    while placed < n and tries < _TRIES * n and len(idx):
        tries += 1
        centre = np.array(np.unravel_index(idx[rng.integers(len(idx))], fg.shape), dtype=float)
        if _occupied_near(labels, centre, clear):
            continue  # the nucleus would surely overlap: skip the costly rasterisation
        res = _pair(fg.shape, centre, axes, cfg, rng)
        if res is None:
            continue
        sl, nuc, golgi = res
        nuc &= fg[sl]
        golgi &= fg[sl]
        nuc &= ~golgi
        if not nuc.any() or not golgi.any():
            continue
        box = labels[sl]
        if (box[nuc | golgi] != 0).any():
            continue
        box[nuc] = 2 * placed + 1
        box[golgi] = 2 * placed + 2
        classes[2 * placed + 1] = "nucleus"
        classes[2 * placed + 2] = "golgi"
        placed += 1
    return labels, classes


def _occupied_near(labels: np.ndarray, centre: np.ndarray, radius: float) -> bool:
    """Whether any labelled voxel lies within ``radius`` of ``centre``."""
    if radius <= 0:
        return bool(labels[tuple(np.round(centre).astype(int))])
    r = int(np.floor(radius))
    c = np.round(centre).astype(int)
    lo = np.maximum(c - r, 0)
    hi = np.minimum(c + r + 1, labels.shape)
    box = labels[tuple(slice(a, b) for a, b in zip(lo, hi))]
    if not box.any():
        return False
    grids = np.ogrid[tuple(slice(a - ci, b - ci) for a, b, ci in zip(lo, hi, c))]
    return bool(box[sum(g * g for g in grids) <= radius * radius].any())


def _pair(shape, centre, axes, cfg: OrganelleConfig, rng):
    ndim = len(shape)
    a = np.array([rng.uniform(*r) for r in axes])
    g = rng.uniform(*cfg.golgi_radius)
    # a Golgi pressed into the nucleus still reaches its surface (no Golgi sealed inside a nucleus)
    off = max(rng.uniform(*cfg.golgi_offset), 1.0 - g)
    u = rng.normal(size=ndim)
    u /= np.linalg.norm(u) + 1e-12
    surface = 1.0 / np.sqrt(((u / a) ** 2).sum())  # centre -> ellipsoid surface along u
    gc = u * max(surface + off, 0.0)  # Golgi centre in the pair frame
    rot = shapes.random_rotation(ndim, rng, tuple(cfg.rotation_deg))
    a_col = a[:, None]

    def inside_both(p):
        return np.stack([((p / a_col) ** 2).sum(0) <= 1.0,
                         ((p - gc[:, None]) ** 2).sum(0) <= g * g])

    # one rasterisation (one elastic field) for the pair; the two masks ride along as channels.
    # Tight box: the rotated ellipsoid's half-widths, grown to hold the rotated Golgi sphere.
    gi = np.abs(rot @ gc) + g + 1.0
    extent = np.maximum(shapes.rotated_half_widths(a, rot), gi)
    res = shapes.rasterise(shape, centre, lambda p: _pack(inside_both(p)), extent, rot,
                           cfg.elastic, 4, rng)
    if res is None:
        return None
    sl, packed = res
    return sl, (packed & 1) > 0, (packed & 2) > 0


def _pack(two: np.ndarray) -> np.ndarray:
    return two[0].astype(np.uint8) | (two[1].astype(np.uint8) << 1)
