"""Statistical shape model (Eschweiler et al. 2021 §3.2): PCA of boundary radii sampled along rays.

Fitting. Each example shape (a 2D or 3D bool mask) is sampled along ``n_rays`` fixed
directions u_i from its centroid — equally spaced angles in 2D, a Fibonacci sphere in
3D — giving boundary radii r_i, i.e. boundary points p = (r_1 u_1, ..., r_n u_n). From the
k examples, the mean shape p̄, the covariance Σ_p = 1/(k-1) Σ (p_j - p̄)(p_j - p̄)ᵀ and its
eigenvectors φ and eigenvalues λ_1 >= λ_2 >= ... are computed (by an SVD of the centred
data). Because the directions are fixed unit vectors, r -> p is a linear isometry: PCA on
the coordinates and PCA on the radii give the same eigenvalues and equivalent modes, and
every generated boundary point stays on its ray. We therefore store radii.

Sampling. New shapes p_new = p̄ + Σ_{j<=n} b_j φ_j (eq. 4). The paper prints the limit
b_j ∈ [-3λ_j, 3λ_j]; λ_j is a *variance* (units px²), so the limit meant — three standard
deviations of mode j, the classic ASM bound of Cootes et al. — is b_j ∈ [-3√λ_j, 3√λ_j],
which we use (3λ_j would be far too narrow for λ < 1 px² and far too wide for large λ).
By default b_j ~ N(0, λ_j) truncated to that range, so generated shapes follow the
examples' spread; ``distribution="uniform"`` draws b_j uniformly in the range instead.

Voxelisation. Instead of the paper's Delaunay triangulation of the boundary points we
fill the star-shaped polytope they span around the centroid: the directions' convex hull
(a polygon in 2D, a triangulated sphere in 3D) gives, for every voxel direction, the hull
facet whose cone contains it; with the facet's corners scaled by their radii (matrix
M_f = [r_a u_a, r_b u_b, (r_c u_c)]), a voxel offset v lies inside iff Σ (M_f⁻¹ v) <= 1,
i.e. it is not beyond the triangle (segment) joining the facet's boundary points. This is
exactly the triangulated surface through the boundary points for a star-convex shape,
needs no mesh rasteriser, and is vectorised over voxels.

Radii convention: the boundary on a ray is where the linearly interpolated mask crosses
0.5, i.e. half-way between the last voxel centre inside and the first outside; filling
voxel centres within that boundary gives mask -> model -> mask back exactly in 2D (in 3D
the flat triangles between rays cut a little off curved surfaces: ~3 % of the volume with
200 rays, ~1 % with 500).

Fitting also accepts ``skip_invalid=True`` to leave out examples whose centroid lies
outside the shape (not star-convex around it) instead of refusing them.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
from scipy import ndimage
from scipy.spatial import ConvexHull

from cellsynth.errors import InputError

FORMAT = "cellsynth.shape_model"
_STEP = 0.25  # ray sampling step (voxels)


def directions(ndim: int, n_rays: int) -> np.ndarray:
    """Unit ray directions, (n_rays, ndim), (Z)YX order.

    2D: angles 2πi/n; 3D: Fibonacci sphere (golden-angle spiral, near-uniform).
    """
    i = np.arange(n_rays) + 0.5
    if ndim == 2:
        a = 2 * np.pi * np.arange(n_rays) / n_rays
        return np.stack([np.sin(a), np.cos(a)], 1)
    if ndim == 3:
        z = 1 - 2 * i / n_rays
        r = np.sqrt(np.clip(1 - z * z, 0, None))
        phi = np.arange(n_rays) * np.pi * (3 - np.sqrt(5))
        return np.stack([z, r * np.sin(phi), r * np.cos(phi)], 1)
    raise InputError(f"shape model: only 2D and 3D shapes are supported, got ndim={ndim}")


def ray_radii(mask: np.ndarray, dirs: np.ndarray, what: str = "mask") -> np.ndarray:
    """Boundary radius of ``mask`` along each direction from its centroid."""
    sl = ndimage.find_objects(mask.astype(np.uint8))[0]
    crop = np.pad(mask[sl], 2).astype(np.float32)
    c = np.array(ndimage.center_of_mass(crop))
    if crop[tuple(np.rint(c).astype(int))] < 0.5:
        raise InputError(f"{what}: its centroid lies outside the shape; shape models need shapes "
                         "that are star-convex around their centroid")
    t = np.arange(0, np.linalg.norm(crop.shape) + _STEP, _STEP)
    coords = c[:, None, None] + dirs.T[:, :, None] * t[None, None, :]          # (ndim, rays, t)
    v = ndimage.map_coordinates(crop, coords.reshape(mask.ndim, -1), order=1, cval=0.0)
    v = v.reshape(len(dirs), len(t))
    out = v < 0.5
    first = out.argmax(1)                      # first sample outside (exists: the pad is 0)
    first = np.maximum(first, 1)
    v0 = v[np.arange(len(dirs)), first - 1]
    v1 = v[np.arange(len(dirs)), first]
    frac = np.clip((v0 - 0.5) / np.maximum(v0 - v1, 1e-9), 0, 1)
    r = t[first - 1] + frac * _STEP
    return np.maximum(r, 0.0)


class ShapeModel:
    """PCA shape model of star-convex 2D/3D shapes (Eschweiler et al. 2021 §3.2).

    Attributes
    ----------
    ndim, n_rays : dimensionality and number of rays
    mean : (n_rays,) mean radii p̄
    modes : (n_modes, n_rays) eigenvectors φ_j (unit rows)
    eigenvalues : (n_modes,) λ_j, descending (variances, px²)
    n_examples : number of shapes fitted
    """

    def __init__(self, ndim: int, n_rays: int, mean, modes, eigenvalues, n_examples: int):
        self.ndim = int(ndim)
        self.n_rays = int(n_rays)
        self.mean = np.asarray(mean, dtype=np.float64)
        self.modes = np.asarray(modes, dtype=np.float64).reshape(-1, self.n_rays)
        self.eigenvalues = np.asarray(eigenvalues, dtype=np.float64)
        self.n_examples = int(n_examples)
        self.directions = directions(self.ndim, self.n_rays)
        self._hull = None

    @property
    def n_modes(self) -> int:
        return len(self.eigenvalues)

    # ------------------------------------------------------------------ fitting
    @classmethod
    def fit(cls, masks: Sequence[np.ndarray], n_rays: int = 64, n_modes: int = 3,
            skip_invalid: bool = False) -> ShapeModel:
        """Fit to k >= 2 example masks (bool, all 2D or all 3D; sizes may differ).

        ``n_modes`` (n in eq. 4) must be <= k - 1: k examples span at most k - 1 modes.
        ``skip_invalid`` leaves out empty examples and those whose centroid lies outside
        the shape, instead of raising :class:`InputError`.
        """
        masks = list(masks)
        if skip_invalid:
            masks = [m for m in masks if np.asarray(m).dtype == bool and np.asarray(m).any()
                     and _centroid_inside(np.asarray(m))]
        if len(masks) < 2:
            raise InputError(f"shape model: need at least 2 example shapes, got {len(masks)}")
        n_rays, n_modes = int(n_rays), int(n_modes)
        if n_modes < 1 or n_modes > len(masks) - 1:
            raise InputError(f"shape model: n_modes={n_modes} must be in 1..{len(masks) - 1} "
                             f"({len(masks)} examples span at most {len(masks) - 1} modes)")
        ndim = np.asarray(masks[0]).ndim
        min_rays = 8 if ndim == 2 else 12
        if n_rays < min_rays:
            raise InputError(f"shape model: n_rays must be >= {min_rays} in {ndim}D, got {n_rays}")
        if n_modes > n_rays:
            raise InputError(f"shape model: n_modes={n_modes} exceeds n_rays={n_rays}")
        dirs = directions(ndim, n_rays)
        radii = []
        for i, m in enumerate(masks):
            m = np.asarray(m)
            if m.dtype != bool:
                raise InputError(f"shape model: example {i} must be a bool mask, got dtype {m.dtype}")
            if m.ndim != ndim:
                raise InputError(f"shape model: example {i} is {m.ndim}D but example 0 is {ndim}D")
            if not m.any():
                raise InputError(f"shape model: example {i} is empty")
            radii.append(ray_radii(m, dirs, what=f"shape model example {i}"))
        x = np.stack(radii)
        mean = x.mean(0)
        _, s, vt = np.linalg.svd(x - mean, full_matrices=False)
        lam = s ** 2 / (len(x) - 1)
        return cls(ndim, n_rays, mean, vt[:n_modes], lam[:n_modes], len(x))

    @classmethod
    def fit_labels(cls, label_images: Sequence[np.ndarray], n_rays: int = 64,
                   n_modes: int = 3, skip_invalid: bool = False) -> ShapeModel:
        """Fit to every instance of one or more label images (each instance = one example)."""
        return cls.fit([m for lab in label_images for m in instances(lab)], n_rays, n_modes,
                       skip_invalid)

    @classmethod
    def fit_directory(cls, folder: str | Path, n_rays: int = 64, n_modes: int = 3,
                      skip_invalid: bool = False) -> ShapeModel:
        """Fit to all instances of the TIFF masks in ``folder`` (binary or instance labels)."""
        from cellsynth.io import list_images, read_labels
        return cls.fit_labels([read_labels(p) for p in list_images(folder, "shape examples")],
                              n_rays, n_modes, skip_invalid)

    # ------------------------------------------------------------------ sampling
    def draw_coefficients(self, rng: np.random.Generator,
                          distribution: Literal["normal", "uniform"] = "normal") -> np.ndarray:
        """b_j within [-3√λ_j, 3√λ_j]: truncated N(0, λ_j) (default) or uniform."""
        sd = np.sqrt(np.clip(self.eigenvalues, 0, None))
        if distribution == "uniform":
            return rng.uniform(-3, 3, self.n_modes) * sd
        if distribution != "normal":
            raise InputError(f"shape model: distribution must be 'normal' or 'uniform', got {distribution!r}")
        z = rng.standard_normal(self.n_modes)
        while np.any(np.abs(z) > 3):          # truncate by redrawing the outliers
            bad = np.abs(z) > 3
            z[bad] = rng.standard_normal(bad.sum())
        return z * sd

    def radii(self, b: np.ndarray | None = None) -> np.ndarray:
        """Radii of p_new = p̄ + Σ b_j φ_j (eq. 4); b = None gives the mean shape."""
        if b is None:
            return self.mean.copy()
        b = np.asarray(b, dtype=np.float64)
        if b.shape != (self.n_modes,):
            raise InputError(f"shape model: b must have {self.n_modes} entries, got shape {b.shape}")
        return self.mean + b @ self.modes

    def sample(self, rng: np.random.Generator, scale: float | Sequence[float] = 1.0,
               shape: Sequence[int] | None = None, center: Sequence[float] | None = None,
               distribution: Literal["normal", "uniform"] = "normal") -> np.ndarray:
        """A new random shape as a bool mask (see :meth:`voxelize` for scale/shape/center)."""
        return self.voxelize(self.radii(self.draw_coefficients(rng, distribution)), scale, shape, center)

    def voxelize(self, radii: np.ndarray, scale: float | Sequence[float] = 1.0,
                 shape: Sequence[int] | None = None,
                 center: Sequence[float] | None = None) -> np.ndarray:
        """Fill the star-shaped polytope with boundary points c + scale · r_i u_i.

        Parameters
        ----------
        radii : (n_rays,) boundary radii
        scale : float or per-axis floats, multiplies the shape (e.g. to fit an image)
        shape : output array shape; default a tight box of odd size with the centroid
            at its central voxel
        center : centroid position in the output (voxels); default the array centre

        Exact for 2D and for 3D boxes up to ``EXACT_LIMIT`` voxels; bigger 3D boxes (whole
        organisms) interpolate the polytope's exact radius function from a fine
        (cos θ, φ) table (TABLE cells), which is sub-voxel accurate for radii below ~500 px.
        """
        r = np.maximum(np.asarray(radii, dtype=np.float64), 1e-3)
        if r.shape != (self.n_rays,):
            raise InputError(f"shape model: radii must have {self.n_rays} entries, got {r.shape}")
        sc = np.broadcast_to(np.asarray(scale, dtype=np.float64), (self.ndim,)).copy()
        if np.any(sc <= 0) or not np.all(np.isfinite(sc)):
            raise InputError(f"shape model: scale must be > 0, got {scale}")
        ext = r.max() * sc
        if shape is None:
            shape = tuple(2 * int(np.ceil(e)) + 3 for e in ext)
        shape = tuple(int(s) for s in shape)
        if len(shape) != self.ndim:
            raise InputError(f"shape model: output shape {shape} must have {self.ndim} axes")
        c = np.array([(s - 1) / 2 for s in shape] if center is None else center, dtype=np.float64)
        out = np.zeros(shape, bool)
        lo = np.maximum(np.floor(c - ext) - 1, 0).astype(int)
        hi = np.minimum(np.ceil(c + ext) + 2, shape).astype(int)
        if np.any(hi <= lo):
            return out
        box = hi - lo
        minv = self._facet_inverse(r)
        table = None if self.ndim == 2 or np.prod(box) <= self.EXACT_LIMIT else self._radius_table(minv)
        # slabs along axis 0 keep the temporary coordinate arrays small
        per_slab = max(1, 2 ** 20 // int(np.prod(box[1:])))
        rest = np.stack(np.meshgrid(*[np.arange(a, b) - ci for a, b, ci in zip(lo[1:], hi[1:], c[1:])],
                                    indexing="ij"), -1).reshape(-1, self.ndim - 1) / sc[1:]
        for z0 in range(lo[0], hi[0], per_slab):
            z = (np.arange(z0, min(z0 + per_slab, hi[0])) - c[0]) / sc[0]
            v = np.concatenate([np.repeat(z, len(rest))[:, None], np.tile(rest, (len(z), 1))], 1)
            inside = self._inside(v, minv) if table is None else self._inside_table(v, table)
            out[(slice(z0, z0 + len(z)),) + tuple(slice(a, b) for a, b in zip(lo[1:], hi[1:]))] = \
                inside.reshape((len(z),) + tuple(box[1:]))
        return out

    EXACT_LIMIT = 2 ** 21
    TABLE = (512, 1024)

    def _facets(self) -> np.ndarray:
        """(F, ndim) direction indices of the facets of the directions' convex hull."""
        if self._hull is None:
            if self.ndim == 2:   # consecutive angles
                k = np.arange(self.n_rays)
                self._hull = np.stack([k, (k + 1) % self.n_rays], 1)
            else:
                h = ConvexHull(self.directions)
                self._hull = (h.simplices, h.equations[:, :-1] / -h.equations[:, -1:])
        return self._hull

    def _facet_inverse(self, r: np.ndarray) -> np.ndarray:
        """M_f⁻¹ for M_f = [r_a u_a, r_b u_b, ...] (columns), one per facet."""
        simp = self._facets() if self.ndim == 2 else self._facets()[0]
        m = self.directions[simp].transpose(0, 2, 1) * r[simp][:, None, :]
        return np.linalg.inv(m)

    def _facet_of(self, v: np.ndarray) -> np.ndarray:
        """Index of the hull facet whose cone contains each offset v (exact)."""
        if self.ndim == 2:
            a = np.arctan2(v[:, 0], v[:, 1]) % (2 * np.pi)
            return np.minimum((a * self.n_rays / (2 * np.pi)).astype(np.intp), self.n_rays - 1)
        scaled_normals = self._facets()[1]
        # the ray leaves the (convex) hull through the facet plane it meets first
        out = np.empty(len(v), np.intp)
        chunk = max(1, 2 ** 22 // len(scaled_normals))
        for s in range(0, len(v), chunk):
            out[s:s + chunk] = np.argmax(v[s:s + chunk] @ scaled_normals.T, axis=1)
        return out

    def _inside(self, v: np.ndarray, minv: np.ndarray) -> np.ndarray:
        """Σ M_f⁻¹ v <= 1: v is not beyond the facet's boundary simplex."""
        f = self._facet_of(v)
        return np.einsum("nij,nj->n", minv[f], v) <= 1.0 + 1e-9

    def _radius_table(self, minv: np.ndarray) -> np.ndarray:
        """Exact polytope radius on a (cos θ, φ) grid of cell centres, φ padded periodically."""
        nz, nphi = self.TABLE
        z = -1 + (np.arange(nz) + 0.5) * 2 / nz
        phi = (np.arange(nphi) + 0.5) * 2 * np.pi / nphi
        zz, pp = np.meshgrid(z, phi, indexing="ij")
        rho = np.sqrt(1 - zz ** 2)
        u = np.stack([zz, rho * np.sin(pp), rho * np.cos(pp)], -1).reshape(-1, 3)
        t = 1.0 / np.einsum("nij,nj->n", minv[self._facet_of(u)], u)
        t = t.reshape(nz, nphi)
        return np.concatenate([t[:, -1:], t, t[:, :1]], 1)

    def _inside_table(self, v: np.ndarray, table: np.ndarray) -> np.ndarray:
        nz, nphi = self.TABLE
        d = np.sqrt((v ** 2).sum(1))
        inside = d <= table.min()                 # surely inside: no angle needed
        shell = np.flatnonzero(~inside & (d <= table.max() + 1e-9))
        vs, ds = v[shell], d[shell]
        iz = (vs[:, 0] / ds + 1) * nz / 2 - 0.5
        ip = (np.arctan2(vs[:, 1], vs[:, 2]) % (2 * np.pi)) * nphi / (2 * np.pi) - 0.5 + 1
        rad = ndimage.map_coordinates(table, np.stack([iz, ip]), order=1, mode="nearest")
        inside[shell] = ds <= rad + 1e-9
        return inside

    # ------------------------------------------------------------------ serialisation
    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict (lists of floats)."""
        return {"format": FORMAT, "version": 1, "ndim": self.ndim, "n_rays": self.n_rays,
                "n_examples": self.n_examples, "mean": self.mean.tolist(),
                "modes": self.modes.tolist(), "eigenvalues": self.eigenvalues.tolist()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ShapeModel:
        if not isinstance(d, dict) or d.get("format") != FORMAT:
            raise InputError(f"shape model: not a '{FORMAT}' dict")
        try:
            ndim, n_rays = int(d["ndim"]), int(d["n_rays"])
            m = cls(ndim, n_rays, d["mean"], d["modes"], d["eigenvalues"], d.get("n_examples", 0))
        except (KeyError, ValueError, TypeError) as e:
            raise InputError(f"shape model dict is malformed ({type(e).__name__}: {e})") from None
        if m.mean.shape != (n_rays,) or len(m.modes) != len(m.eigenvalues):
            raise InputError(f"shape model dict: mean needs {n_rays} values and one mode per eigenvalue")
        return m

    def save(self, path: str | Path) -> Path:
        from cellsynth.io import write_json
        return write_json(path, self.to_dict())

    @classmethod
    def load(cls, path: str | Path) -> ShapeModel:
        from cellsynth.io import read_json
        return cls.from_dict(read_json(path, "shape model"))


def _centroid_inside(mask: np.ndarray) -> bool:
    c = np.rint(ndimage.center_of_mass(mask)).astype(int)
    return bool(mask[tuple(c)])


def instances(labels: np.ndarray, pad: int = 1) -> list[np.ndarray]:
    """One cropped bool mask per instance of a label image (bool input = one instance)."""
    labels = np.asarray(labels)
    if labels.dtype == bool:
        labels = labels.astype(np.uint8)
    if not np.issubdtype(labels.dtype, np.integer):
        raise InputError(f"shape model: label image must be integer or bool, got {labels.dtype}")
    out = []
    for i, sl in enumerate(ndimage.find_objects(labels)):
        if sl is not None:
            out.append(np.pad(labels[sl] == i + 1, pad))
    return out
