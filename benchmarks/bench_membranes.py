"""Benchmark: weighted Voronoi membranes on a membrane3d-meristem-sized volume.

128×512×512 voxels, ~3000 cells (seed 001 eq. 3 with γ ~ U(0.8, 1.2)), tessellation +
1-voxel membrane mask. Reports wall time per stage and the process peak RSS.
CellSynthesis' voxel loop: 80 s, 11.7 GB for this size. Target: <= 10 s, <= 1.5 GB.

    .venv/bin/python benchmarks/bench_membranes.py [--shape 128 512 512] [--n 3000] [--seed 0]
"""
from __future__ import annotations

import argparse
import json
import resource
import sys
import time

import numpy as np

from cellsynth.config import MembraneConfig
from cellsynth.simulate.membranes import membrane_mask, tessellate


def ellipsoid(shape, frac=0.9):
    g = np.ogrid[tuple(slice(0, s) for s in shape)]
    c = [(s - 1) / 2 for s in shape]
    return sum(((x - ci) / (frac * s / 2)) ** 2 for x, ci, s in zip(g, c, shape)) <= 1


def uniform_points(fg, n, rng):
    idx = np.flatnonzero(fg)
    pick = rng.choice(idx, size=n, replace=False)
    return np.stack(np.unravel_index(pick, fg.shape), 1) + rng.uniform(-0.5, 0.5, (n, fg.ndim))


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shape", type=int, nargs="+", default=[128, 512, 512])
    ap.add_argument("--n", type=int, default=3000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--placement", choices=["auto", "uniform"], default="auto",
                    help="auto: cellsynth.simulate.placement (poisson) if available, else uniform")
    a = ap.parse_args(argv)
    rng = np.random.default_rng(a.seed)
    shape = tuple(a.shape)
    t0 = time.perf_counter()
    fg = ellipsoid(shape)
    how = "uniform"
    pts = None
    if a.placement == "auto":
        try:
            from cellsynth.config import PlacementConfig
            from cellsynth.simulate.placement import place_points
            pts = place_points(PlacementConfig(method="uniform", n_points=(a.n, a.n)), fg, rng)
            how = "placement.uniform"
        except Exception as e:  # placement not there yet / failed: fall back, say so
            print(f"placement unavailable ({type(e).__name__}: {e}); using uniform points", file=sys.stderr)
    if pts is None:
        pts = uniform_points(fg, a.n, rng)
    t1 = time.perf_counter()
    labels = tessellate(fg, pts, MembraneConfig(), rng)
    t2 = time.perf_counter()
    wall = membrane_mask(labels, thickness=1)
    t3 = time.perf_counter()
    res = {"shape": list(shape), "n_points": int(len(pts)), "points": how, "cells": int(labels.max()),
           "foreground_fraction": round(float(fg.mean()), 3),
           "tessellate_s": round(t2 - t1, 2), "membrane_mask_s": round(t3 - t2, 2),
           "setup_s": round(t1 - t0, 2), "peak_rss_mb": round(peak_rss_mb(), 1),
           "membrane_fraction": round(float(wall.mean()), 4)}
    print(json.dumps(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
