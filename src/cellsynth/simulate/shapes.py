"""Shape primitives shared by every simulator: rotations, spherical-harmonics radii,
elastic B-spline deformation, and rasterisation of one object in its bounding box.

Every object is described in its own frame ("object frame", origin at its centre) by
an ``inside(u) -> bool`` test over coordinates ``u`` of shape ``(ndim, N)`` and an
``extent`` (a radius that bounds it). :func:`rasterise` maps the voxels of a local
bounding box into that frame ("pull-back": voxel ``p`` is inside when the undeformed
shape contains ``Rᵀ (p + d(p))``, with ``d`` the elastic displacement), so the cost is
proportional to the object's box, never to the whole volume. One code path serves 2D
(YX) and 3D (ZYX).
"""
from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np
from scipy import ndimage

try:  # scipy >= 1.15
    from scipy.special import sph_harm_y as _sph_harm_y
except ImportError:  # pragma: no cover - older scipy: sph_harm(m, n, azimuth, polar)
    from scipy.special import sph_harm as _sph_harm

    def _sph_harm_y(n, m, theta, phi):
        return _sph_harm(m, n, phi, theta)

Inside = Callable[[np.ndarray], np.ndarray]


# --------------------------------------------------------------------------- rotations
def random_rotation(ndim: int, rng: np.random.Generator,
                    angle_deg: tuple[float, float] | None = None) -> np.ndarray:
    """A random rotation matrix (ndim × ndim) acting on (Z)YX coordinate columns.

    ``angle_deg=None``: uniformly distributed over all rotations (3D: Haar-uniform,
    2D: angle uniform in [0, 2π)). With a range: the angle is drawn uniformly in
    ``angle_deg`` (degrees) about a uniformly random axis (3D) or in the plane (2D),
    as in Rosa et al. ("rotation 0–180°").
    """
    if ndim == 2:
        if angle_deg is None:
            a = rng.uniform(0.0, 2 * np.pi)
        else:
            a = np.deg2rad(rng.uniform(*angle_deg))
        c, s = np.cos(a), np.sin(a)
        return np.array([[c, -s], [s, c]])
    from scipy.spatial.transform import Rotation

    if angle_deg is None:
        return Rotation.random(rng=rng).as_matrix()
    axis = rng.normal(size=3)
    axis /= np.linalg.norm(axis) + 1e-12
    a = np.deg2rad(rng.uniform(*angle_deg))
    return Rotation.from_rotvec(axis * a).as_matrix()


# --------------------------------------------------------------------------- harmonics
def sh_coefficients(ndim: int, order: int, gamma: float, rng: np.random.Generator,
                    decay: str = "l") -> np.ndarray:
    """Random relative shape coefficients after Eschweiler et al. 2021 eq. 7, ``c_lm = r·w_lm·e^(−γ·k)``.

    Returned relative to the radius ``r`` (so ``c_00 = 1``); ``w_lm ~ N(0, 1)``.

    3D: real spherical harmonics, array ``(order+1, 2·order+1)`` indexed ``[l, m+order]``.
    2D analogue (there are no spherical harmonics on a circle): a Fourier series of the
    radius, ``ρ(φ) = 1 + Σ_k e^(−γk) (a_k cos kφ + b_k sin kφ)``, array ``(order+1, 2)``.

    ``decay`` picks the index ``k`` in the damping factor. Eq. 7 as printed damps by the
    degree ``m`` ("m"); that leaves the zonal terms (m = 0) of every order at full
    amplitude ``r·w`` so the result is no longer a perturbed sphere (radii go negative).
    The default "l" damps by the order ``l`` — the frequency — which gives the smooth
    (γ = 8) to irregular (γ = 0.5) progression of the paper's Fig. 4. This is our reading.
    """
    if decay not in ("l", "m"):
        raise ValueError(f"decay must be 'l' or 'm', got {decay!r}")
    if ndim == 2:
        c = np.zeros((order + 1, 2))
        c[0, 0] = 1.0
        k = np.arange(1, order + 1)
        # 2D has a single index: the frequency k plays the role of both l and m
        c[1:] = rng.normal(size=(order, 2)) * np.exp(-gamma * k)[:, None]
        return c
    c = np.zeros((order + 1, 2 * order + 1))
    c[0, order] = 1.0
    for l in range(1, order + 1):
        m = np.arange(-l, l + 1)
        damp = np.exp(-gamma * (l if decay == "l" else np.abs(m)))
        c[l, m + order] = rng.normal(size=m.size) * damp
    return c


def sh_radius(coeffs: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Relative radius ρ(direction of v) of :func:`sh_coefficients` shapes; ``v`` (ndim, N).

    Basis normalised so the l = 0 term equals 1 (real SH × √(4π)); 3D uses
    ``scipy.special.sph_harm_y`` (polar θ from the first (Z) axis, azimuth φ in YX),
    tabulated once per order on a (θ, φ) grid of ≥ 8 samples per half-wavelength; ρ is summed on the grid and
    interpolated linearly at the voxel directions (error < 2 % of a term's amplitude).
    """
    ndim = v.shape[0]
    if ndim == 2:
        phi = np.arctan2(v[0], v[1])
        rho = np.full(v.shape[1], coeffs[0, 0])
        for k in range(1, coeffs.shape[0]):
            rho += coeffs[k, 0] * np.cos(k * phi) + coeffs[k, 1] * np.sin(k * phi)
        return rho
    return sample_sh_grid(sh_grid(coeffs), v)


def sh_grid(coeffs: np.ndarray) -> np.ndarray:
    """3D: ρ tabulated on the (θ, φ) grid of :func:`_sh_table` (sum over the nonzero terms)."""
    order = coeffs.shape[0] - 1
    flat_idx, tab = _sh_table(order)
    n = _table_n(order)
    return (coeffs.ravel()[flat_idx] @ tab).reshape(n + 1, 2 * n + 1)


def sample_sh_grid(grid: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Linear interpolation of a tabulated ρ(θ, φ) at the directions of ``v`` (3, N)."""
    norm = np.sqrt((v ** 2).sum(0))
    cos_t = np.divide(v[0], norm, out=np.ones_like(norm), where=norm > 0)
    theta = np.arccos(np.clip(cos_t, -1.0, 1.0))
    phi = np.mod(np.arctan2(v[1], v[2]), 2 * np.pi)
    step = np.pi / (grid.shape[0] - 1)
    return ndimage.map_coordinates(grid, np.stack([theta / step, phi / step]), order=1, mode="nearest")


def _table_n(order: int) -> int:
    """θ intervals over [0, π] of the table: ≥ 8 per half-wavelength of the highest order."""
    return max(32, 8 * order)  # φ gets twice as many over [0, 2π]


@functools.lru_cache(maxsize=4)
def _sh_table(order: int) -> np.ndarray:
    """Real SH basis × √(4π) on the (θ, φ) grid: (flat (l, m) indices, table ((order+1)², nθ·nφ))."""
    n = _table_n(order)
    theta = np.linspace(0, np.pi, n + 1)
    phi = np.linspace(0, 2 * np.pi, 2 * n + 1)
    t, p = np.meshgrid(theta, phi, indexing="ij")
    tab = np.zeros((order + 1, 2 * order + 1) + t.shape)
    s4pi = np.sqrt(4 * np.pi)
    for l in range(order + 1):
        for m in range(0, l + 1):
            y = _sph_harm_y(l, m, t, p) * s4pi
            if m == 0:
                tab[l, order] = y.real
            else:  # real SH: √2 Re / √2 Im of the complex one (sign convention irrelevant, w ~ N(0,1))
                tab[l, order + m] = np.sqrt(2) * y.real
                tab[l, order - m] = np.sqrt(2) * y.imag
    flat_idx = np.array([l * (2 * order + 1) + order + m for l in range(order + 1) for m in range(-l, l + 1)])
    tab = np.ascontiguousarray(tab.reshape((order + 1) * (2 * order + 1), -1)[flat_idx])
    tab.setflags(write=False)
    return flat_idx, tab


def sphere_directions(ndim: int, n: int = 0) -> np.ndarray:
    """Roughly uniform unit directions, (ndim, n): a circle (2D) or Fibonacci sphere (3D)."""
    if ndim == 2:
        n = n or 720
        a = np.linspace(0, 2 * np.pi, n, endpoint=False)
        return np.stack([np.sin(a), np.cos(a)])
    n = n or 2000
    i = np.arange(n) + 0.5
    z = 1 - 2 * i / n
    r = np.sqrt(1 - z ** 2)
    phi = np.pi * (1 + 5 ** 0.5) * i
    return np.stack([z, r * np.sin(phi), r * np.cos(phi)])


def harmonic_inside(coeffs: np.ndarray, radius: float, scales: np.ndarray) -> tuple[Inside, float]:
    """inside-test and bounding extent of a harmonics shape of radius ``r`` scaled per axis."""
    scales = np.asarray(scales, dtype=float)
    ndim = len(scales)
    if ndim == 3:
        grid = sh_grid(coeffs)
        rho = grid
    else:
        rho = sh_radius(coeffs, sphere_directions(2))
    rho_max = max(float(rho.max()) * 1.01, 0.0)
    rho_min = max(float(rho.min()) * 0.99, 0.0)

    def inside(u: np.ndarray) -> np.ndarray:
        v = u / (radius * scales[:, None])
        r2 = (v ** 2).sum(0)
        out = r2 <= rho_min ** 2
        # only the shell between the smallest and largest radius needs the angular lookup
        shell = np.flatnonzero(~out & (r2 <= rho_max ** 2))
        if len(shell):
            vs = v[:, shell]
            rr = sample_sh_grid(grid, vs) if ndim == 3 else sh_radius(coeffs, vs)
            out[shell] = r2[shell] <= np.clip(rr, 0, None) ** 2
        return out

    return inside, radius * float(scales.max()) * rho_max * 1.05 + 1.0


def ellipsoid_inside(semi_axes: np.ndarray) -> tuple[Inside, float]:
    """inside-test and extent of an axis-aligned ellipsoid with the given semi-axes (object frame)."""
    a = np.asarray(semi_axes, dtype=float)[:, None]

    def inside(u: np.ndarray) -> np.ndarray:
        return ((u / a) ** 2).sum(0) <= 1.0

    return inside, float(a.max()) + 1.0


def rotated_half_widths(semi_axes: np.ndarray, rotation: np.ndarray | None) -> np.ndarray:
    """Per image-axis half-widths of the bounding box of an ellipsoid with ``semi_axes``
    after ``rotation``: sqrt(Σ_j (R_ij a_j)²) (+1 voxel)."""
    a = np.asarray(semi_axes, dtype=float)
    if rotation is None:
        return a + 1.0
    return np.sqrt(((rotation * a[None, :]) ** 2).sum(1)) + 1.0


def mask_inside(mask: np.ndarray, scales: np.ndarray | None = None) -> tuple[Inside, float]:
    """inside-test of a sampled binary shape (e.g. a shape-model sample), centred on its centroid."""
    mask = np.asarray(mask, dtype=bool)
    idx = np.argwhere(mask)
    c = idx.mean(0)
    s = np.ones(mask.ndim) if scales is None else np.asarray(scales, dtype=float)
    ext = float(np.sqrt(((idx - c) ** 2).sum(1)).max() + 1.0) * float(s.max()) + 1.0

    def inside(u: np.ndarray) -> np.ndarray:
        q = u / s[:, None] + c[:, None]
        return ndimage.map_coordinates(mask.astype(np.uint8), q, order=0, cval=0, mode="constant") > 0

    return inside, ext


# --------------------------------------------------------------------------- elastic
def elastic_field(shape: tuple[int, ...], magnitude: float, grid: int,
                  rng: np.random.Generator) -> np.ndarray:
    """Smooth displacement field (ndim, *shape) in px: a coarse ``grid``^ndim control grid of
    N(0, magnitude²) displacements per axis, upsampled with cubic B-splines (order 3).

    The tensor-product spline is applied one axis at a time with cached (size × grid)
    interpolation matrices (identical to ``ndimage.zoom(order=3)``, much cheaper)."""
    ndim = len(shape)
    out = rng.normal(0.0, magnitude, size=(ndim,) + (grid,) * ndim)
    for ax, s in enumerate(shape):
        out = np.moveaxis(np.tensordot(_spline_matrix(int(s), grid), out, axes=([1], [ax + 1])), 0, ax + 1)
    return out


@functools.lru_cache(maxsize=512)
def _spline_matrix(size: int, grid: int) -> np.ndarray:
    """(size, grid) matrix: cubic-spline upsampling of ``grid`` samples to ``size`` (zoom order 3)."""
    eye = np.eye(grid)
    m = np.stack([ndimage.zoom(eye[i], size / grid, order=3, mode="nearest", grid_mode=False)[:size]
                  for i in range(grid)], axis=1)
    m.setflags(write=False)
    return m


def upsample_linear(g: np.ndarray, shape, step: float | None = None) -> np.ndarray:
    """Separable linear interpolation of ``g`` to ``shape``.

    ``step=None``: corners aligned, as ``ndimage.zoom(order=1, grid_mode=False)`` but ~10×
    faster on large volumes. ``step=f``: coarse sample j sits at full coordinate j·f (a
    grid subsampled with ``[::f]``); beyond the last sample the value is held.
    """
    for ax in reversed(range(g.ndim)):  # last axis first: the big final pass copies whole rows
        s, cs = shape[ax], g.shape[ax]
        if cs == s and step is None:
            continue
        pos = np.linspace(0, cs - 1, s) if step is None else np.minimum(np.arange(s) / step, cs - 1)
        i0 = np.clip(np.floor(pos).astype(int), 0, max(cs - 2, 0))
        w = np.clip(pos - i0, 0, 1).astype(g.dtype).reshape((-1,) + (1,) * (g.ndim - ax - 1))
        a = np.take(g, i0, axis=ax)
        b = np.take(g, np.minimum(i0 + 1, cs - 1), axis=ax)
        a *= 1 - w
        b *= w
        a += b
        g = a
    return g


# --------------------------------------------------------------------------- rasterise
def rasterise(image_shape: tuple[int, ...], centre: np.ndarray, inside: Inside, extent: float,
              rotation: np.ndarray | None = None, elastic: float = 0.0, elastic_grid: int = 4,
              rng: np.random.Generator | None = None
              ) -> tuple[tuple[slice, ...], np.ndarray] | None:
    """Rasterise one object into its (image-clipped) bounding box.

    Parameters
    ----------
    image_shape : the full (Z)YX shape.
    centre : object centre in voxel coordinates (float).
    inside, extent : object-frame test and bounding radius (see module doc); ``extent`` may
        also be per-axis half-widths in image axes (see :func:`rotated_half_widths`).
    rotation : (ndim, ndim) matrix taking object-frame to image coordinates; None = identity.
    elastic : std (px) of the B-spline control-point displacements; 0 disables.
    elastic_grid : control points per axis of the local box.

    Returns ``(slices, mask)`` or None when the box misses the image.
    """
    centre = np.asarray(centre, dtype=float)
    ndim = len(image_shape)
    half = np.asarray(extent, dtype=float) + 3.0 * elastic + 1.0
    lo = np.maximum(np.floor(centre - half).astype(int), 0)
    hi = np.minimum(np.ceil(centre + half).astype(int) + 1, image_shape)
    if np.any(hi <= lo):
        return None
    box = tuple(int(h - l) for l, h in zip(lo, hi))
    p = np.indices(box, dtype=float).reshape(ndim, -1)
    p += (lo - centre)[:, None]
    if elastic > 0:
        if rng is None:
            raise ValueError("elastic deformation needs an rng")
        p += elastic_field(box, elastic, elastic_grid, rng).reshape(ndim, -1)
    if rotation is not None:
        p = rotation.T @ p
    mask = inside(p).reshape(box)
    return tuple(slice(int(l), int(h)) for l, h in zip(lo, hi)), mask
