"""Nuclei at given positions (Eschweiler et al. 2021, 2024): ellipsoids, spherical harmonics or shape-model
samples, rotated, elastically deformed, optionally squashed (mitosis), with or without overlap.

Per nucleus (Eschweiler et al. 2024 eq. 3): radius ``r ~ U(radius)``, axis scalings ``(sx, sy, sz)`` each
``~ U(axis_scale[i])`` ((Z)YX order; a 2D scene uses the last two ranges), semi-axes
``r·s``; a random rotation (3D: uniform over SO(3), i.e. about arbitrary axes; 2D: angle in
[0, 2π)); an elastic B-spline deformation (``elastic`` px std on an ``elastic_grid``^ndim
control grid over the nucleus' bounding box, cubic-spline upsampled). Shapes:

- ``ellipsoid``: the ellipsoid with those semi-axes.
- ``harmonics``: Eschweiler et al. 2021 eq. 5–7, radius ``r·ρ(θ, φ)`` with ``c_lm = r·w_lm·e^(−γ·l)``
  (order ``sh_order``, smoothness γ = ``sh_gamma``, damping index ``sh_decay``; see
  :func:`shapes.sh_coefficients`), then scaled per axis; 2D: Fourier series of the radius.
- ``shape_model``: a sample of the statistical shape model fitted to the single objects of
  the TIFF label masks in ``examples`` (``r`` is not used; scales, rotation, deformation are).

Density (Eschweiler et al. 2024 C. elegans, "radii decrease inversely proportional to the amount of
nuclei"): with ``radius_reference_count`` n₀ set, every radius is scaled by (n₀/n)^(1/ndim)
for n = len(points), i.e. the nuclei share a constant total volume (our reading).

Mitosis (Eschweiler et al. 2024 C. elegans): a fraction ``mitotic_fraction`` of nuclei is shrunk by
``mitotic_squash`` along two random axes in 3D ("a more cylindrical shape"), one in 2D.

Overlap: forbidden (default) -> a nucleus that would touch voxels of an earlier one is
skipped (the requested count is ``len(points)``, the placed count ``labels.max()``), unless
at most ``max_occlusion`` of its voxels are taken: then it is clipped to the free voxels and
touches its neighbour with both labels intact (pressed, touching nuclei);
allowed -> every nucleus is drawn whole into ``layers`` (a stack of non-overlapping label
layers, :func:`cellsynth.scene.pack_layers`), each voxel of ``labels`` keeps its first
owner (earlier nuclei lie on top); a nucleus entirely hidden under earlier ones is left out.

Every nucleus is clipped to the foreground. All work happens in each nucleus' bounding box.
"""
from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
from scipy import ndimage

from cellsynth.config import NucleiConfig
from cellsynth.errors import ConfigError, InputError
from cellsynth.scene import pack_layers
from cellsynth.simulate import shapes


def axis_ranges(ranges, ndim: int, what: str) -> list:
    """The last ``ndim`` (Z)YX ranges of a per-axis list (2D scenes drop the Z entry)."""
    ranges = list(ranges)
    if len(ranges) < ndim:
        raise ConfigError(f"config key '{what}' has {len(ranges)} ranges; a {ndim}D scene needs {ndim}")
    return ranges[-ndim:]


def make_nuclei(foreground: np.ndarray, points: np.ndarray, cfg: NucleiConfig,
                rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray | None]:
    """Label image (consecutive 1..N in placement order, uint16/uint32) and the layer stack
    keeping overlapping nuclei whole ((L, *shape), same ids; only when ``cfg.allow_overlap``,
    else None)."""
    fg = np.asarray(foreground)
    if fg.dtype != bool or fg.ndim not in (2, 3):
        raise ConfigError(f"foreground must be a 2D/3D boolean mask, got {fg.dtype} {fg.shape}")
    points = np.asarray(points, dtype=float)
    if points.size == 0:
        points = np.zeros((0, fg.ndim))
    if points.ndim != 2 or points.shape[1] != fg.ndim:
        raise InputError(f"points must have shape (N, {fg.ndim}) for a {fg.ndim}D foreground, "
                         f"got {points.shape}")
    if not np.isfinite(points).all():
        raise InputError("points contain NaN or infinite coordinates")
    ndim = fg.ndim
    scale_ranges = axis_ranges(cfg.axis_scale, ndim, "nuclei.axis_scale")
    model = _shape_model(cfg, ndim) if cfg.shape == "shape_model" else None
    dtype = np.uint16 if len(points) < 65535 else np.uint32
    labels = np.zeros(fg.shape, dtype=dtype)
    boxed: list | None = [] if cfg.allow_overlap else None
    next_id = 1
    size = 1.0
    if cfg.radius_reference_count is not None and len(points):
        size = (cfg.radius_reference_count / len(points)) ** (1.0 / ndim)
    for c in points:
        inside, extent, semi = nucleus_shape(cfg, ndim, scale_ranges, model, rng, size)
        rot = shapes.random_rotation(ndim, rng) if cfg.rotate else None
        if semi is not None:  # ellipsoid: the tight box of the rotated ellipsoid
            extent = shapes.rotated_half_widths(semi, rot)
        res = shapes.rasterise(fg.shape, c, inside, extent, rot, cfg.elastic, cfg.elastic_grid, rng)
        if res is None:
            continue
        sl, mask = res
        mask &= fg[sl]
        if not mask.any():
            continue
        box = labels[sl]
        if boxed is None:
            taken = box[mask] != 0
            if taken.any():
                if taken.mean() > cfg.max_occlusion:
                    continue  # overlap forbidden: skip this nucleus
                mask &= box == 0  # pressed against earlier nuclei: keep its free part
            box[mask] = next_id
        else:
            free = mask & (box == 0)
            if not free.any():
                continue  # completely hidden under earlier nuclei: no label of its own
            box[free] = next_id
            boxed.append((sl, mask))
        next_id += 1
    layers = None if boxed is None else pack_layers(boxed, fg.shape).astype(dtype, copy=False)
    return labels, layers


def nucleus_shape(cfg: NucleiConfig, ndim: int, scale_ranges, model, rng, size: float = 1.0):
    """Draw one nucleus' object-frame ``(inside, extent, semi_axes | None)``; ``size`` scales r."""
    r = rng.uniform(*cfg.radius) * size
    s = np.array([rng.uniform(*rg) for rg in scale_ranges])
    if cfg.mitotic_fraction > 0 and rng.random() < cfg.mitotic_fraction:
        axes = rng.choice(ndim, size=ndim - 1, replace=False)
        s[axes] *= cfg.mitotic_squash
    if cfg.shape == "ellipsoid":
        return (*shapes.ellipsoid_inside(r * s), r * s)
    if cfg.shape == "harmonics":
        coeffs = shapes.sh_coefficients(ndim, cfg.sh_order, cfg.sh_gamma, rng, cfg.sh_decay)
        return (*shapes.harmonic_inside(coeffs, r, s), None)
    sample = np.asarray(model.sample(rng), dtype=bool)
    if sample.ndim != ndim or not sample.any():
        raise ConfigError(f"the nuclei shape model returned a {sample.ndim}D shape with "
                          f"{int(sample.sum())} voxels for a {ndim}D scene")
    return (*shapes.mask_inside(sample, s), None)


def _shape_model(cfg: NucleiConfig, ndim: int):
    if cfg.examples is None:
        raise ConfigError("config key 'nuclei.examples' is required for nuclei shape 'shape_model'")
    p = Path(cfg.examples)
    return _fitted_model(str(p), p.stat().st_mtime if p.exists() else 0.0, cfg.n_rays, cfg.n_modes, ndim)


@functools.lru_cache(maxsize=8)
def _fitted_model(examples: str, mtime: float, n_rays: int, n_modes: int, ndim: int):
    """ShapeModel fitted to every single object of the example label masks (cached)."""
    from cellsynth.io import list_images, read_labels
    from cellsynth.simulate.shape_model import ShapeModel

    masks = []
    for f in list_images(examples, what="nuclei examples"):
        lab = read_labels(f)
        if lab.ndim != ndim:
            continue
        for sl, lid in zip(ndimage.find_objects(lab), range(1, int(lab.max()) + 1)):
            if sl is None:
                continue
            obj = np.pad(lab[sl] == lid, 1)
            if obj.sum() >= 8:
                masks.append(obj)
    if len(masks) < 2:
        raise ConfigError(f"config key 'nuclei.examples' = '{examples}': needs at least 2 {ndim}D "
                          f"objects to fit a shape model, found {len(masks)}")
    # non-star-convex examples are left out rather than failing the fit
    return ShapeModel.fit(masks, n_rays=n_rays, n_modes=n_modes, skip_invalid=True)
