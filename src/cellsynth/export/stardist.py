"""StarDist layout: ``train|test/images/NAME.tif`` and ``train|test/masks/NAME.tif``, holes filled.

StarDist has no file loader of its own; its examples read these folders with identical
names and apply ``fill_label_holes`` (Schmidt et al. 2018; Weigert et al. 2020 in 3D).
It describes each object by ``n_rays`` distances from one centre, so the export reports
how much of each object such a star-convex shape cannot reach.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy import ndimage

from ..io import write_json, write_tiff
from ..simulate.encode import centroids
from .common import Sample, check_option, write_missing

OPTIONS = {"n_rays": None, "star_tolerance": 0.05}  # n_rays None: StarDist's defaults, 32 in 2D, 96 in 3D


def root(out: Path, opts: dict, source: Path) -> Path:
    return out


def check(samples: list[Sample], split: dict, opts: dict) -> None:
    n = opts["n_rays"]
    check_option("n_rays", n, n is None or (isinstance(n, int) and n >= 3), "an integer >= 3")
    check_option("star_tolerance", opts["star_tolerance"], 0 <= float(opts["star_tolerance"]) < 1, "in [0, 1)")


def fill_label_holes(labels: np.ndarray) -> np.ndarray:
    """Fill each object's holes (background enclosed by that object alone); other objects stay.

    >>> lab = np.zeros((5, 5), np.uint16); lab[1:4, 1:4] = 3; lab[2, 2] = 0
    >>> int(fill_label_holes(lab)[2, 2])
    3
    """
    out = labels.copy()
    for i, sl in enumerate(ndimage.find_objects(labels)):
        if sl is None:
            continue
        region = labels[sl]
        filled = ndimage.binary_fill_holes(region == i + 1)
        out[sl][filled & (region == 0)] = i + 1
    return out


def ray_directions(n_rays: int, ndim: int) -> np.ndarray:
    """Unit vectors ((Z)YX): equal angles in 2D, a Fibonacci lattice on the sphere in 3D."""
    k = np.arange(n_rays)
    if ndim == 2:
        phi = 2 * np.pi * k / n_rays
        return np.stack([np.sin(phi), np.cos(phi)], 1)
    z = 1 - (2 * k + 1) / n_rays
    r = np.sqrt(1 - z * z)
    phi = np.pi * (3 - np.sqrt(5)) * k
    return np.stack([z, r * np.sin(phi), r * np.cos(phi)], 1)


def star_convexity(labels: np.ndarray, n_rays: int = 32, spacing=None) -> np.ndarray:
    """Per object (ids 1..max; NaN if absent): the fraction of its area/volume lost by a star-convex shape.

    The shape is StarDist's: from the object's centre (its centroid, or the object voxel
    nearest to it when the centroid lies outside), ``n_rays`` rays run to the first
    background voxel. A voxel counts as covered when it is no farther from the centre than
    the shape's radius in its direction — the lengths of the ``ndim`` rays nearest in
    direction, weighted by inverse angle — with half a voxel diagonal of slack. A star-convex
    object loses ~0; a crescent or a dumbbell seen off-centre loses a large share.
    ``spacing`` makes rays equiangular in physical space (anisotropic 3D).

    >>> yy, xx = np.mgrid[:41, :41]
    >>> disk = ((yy - 20) ** 2 + (xx - 20) ** 2 <= 15 ** 2).astype(np.uint16)
    >>> crescent = disk * ~(((yy - 20) ** 2 + (xx - 28) ** 2) <= 13 ** 2)
    >>> [round(float(star_convexity(m, 32)[0]), 2) for m in (disk, crescent)]
    [0.0, 0.25]
    """
    ndim = labels.ndim
    sp = np.asarray(spacing if spacing is not None else (1.0,) * ndim, float)
    dirs = ray_directions(n_rays, ndim) / sp  # voxel steps along physical directions
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    cents = centroids(labels)
    lost = np.full(len(cents), np.nan)
    for i, sl in enumerate(ndimage.find_objects(labels)):
        if sl is None:
            continue
        obj = labels[sl] == i + 1
        vox = np.argwhere(obj).astype(float)
        c = cents[i] - [s.start for s in sl]
        if not obj[tuple(np.clip(np.rint(c).astype(int), 0, np.array(obj.shape) - 1))]:
            c = vox[np.argmin(((vox - c) ** 2).sum(1))]
        # march each ray in half-voxel steps until it leaves the object
        steps = np.arange(0, np.linalg.norm(obj.shape) + 1, 0.5)
        pts = np.rint(c + steps[None, :, None] * dirs[:, None, :]).astype(int)
        inside = np.all((pts >= 0) & (pts < obj.shape), axis=2)
        pts = np.where(inside[..., None], pts, 0)
        inside &= obj[tuple(pts[..., d] for d in range(ndim))]
        first_out = np.argmin(np.concatenate([inside, np.zeros((n_rays, 1), bool)], 1), axis=1)
        ray_len = steps[np.maximum(first_out - 1, 0)]
        d = vox - c
        dist = np.linalg.norm(d, axis=1)
        # the shape's radius in a voxel's direction: the lengths of the `ndim` nearest rays
        # (the two bracketing it in 2D, a triangle of rays in 3D), weighted by inverse angle
        cos = np.clip((d / np.maximum(dist, 1e-9)[:, None]) @ dirs.T, -1, 1)
        near = np.argsort(-cos, axis=1)[:, :ndim]
        w = 1.0 / (np.arccos(np.take_along_axis(cos, near, 1)) + 1e-3)
        radius = (w * ray_len[near]).sum(1) / w.sum(1)
        covered = dist <= radius + 0.5 * np.sqrt(ndim)
        lost[i] = 1.0 - covered.mean()
    return lost


def write(samples: list[Sample], root: Path, split: dict, opts: dict, bar) -> dict:
    n_rays = opts["n_rays"] or (96 if samples and samples[0].ndim == 3 else 32)
    n_obj = n_bad = 0
    per_sample = {}
    report = root / "star_convexity.json"
    old = {}
    if report.is_file():  # resume: keep what was measured before
        from ..io import read_json
        old = read_json(report).get("samples", {})
    for s in samples:
        folder = root / split[s.name]
        m_path, i_path = folder / "masks" / f"{s.name}.tif", folder / "images" / f"{s.name}.tif"
        if s.name in old and m_path.exists() and i_path.exists():
            rec = old[s.name]
        else:
            lab = fill_label_holes(s.labels())
            lost = star_convexity(lab, n_rays, s.spacing)
            lost = lost[~np.isnan(lost)]
            rec = {"objects": int(len(lost)), "not_star_convex": int((lost > opts["star_tolerance"]).sum()),
                   "mean_area_lost": float(lost.mean()) if len(lost) else 0.0}
            write_missing(m_path, lambda p: write_tiff(p, lab, s.spacing))
            write_missing(i_path, lambda p: write_tiff(p, s.image(), s.spacing))
        per_sample[s.name] = rec
        n_obj += rec["objects"]
        n_bad += rec["not_star_convex"]
        bar.update(1)
    summary = {"n_rays": n_rays, "star_tolerance": opts["star_tolerance"], "objects": n_obj,
               "not_star_convex": n_bad, "fraction_not_star_convex": n_bad / n_obj if n_obj else 0.0}
    write_json(report, {**summary, "samples": per_sample})
    return summary
