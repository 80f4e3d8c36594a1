"""Benchmark: weighted Voronoi membranes on a membrane3d-meristem-sized volume.

128×512×512 voxels, ~3000 cells, Eschweiler et al. 2021 eq. 3. The inputs (foreground + cell positions)
are made first — by default from the ``membrane3d-meristem`` preset with A's
``make_foreground``/``place_points``, or ``--scene ellipsoid`` (ellipsoid + uniform points,
no other module needed) — and saved; then a fresh worker process loads them and runs
``tessellate`` + the membrane mask (``encode.boundaries``) alone, so its peak RSS is that of the tessellation
(plus the interpreter, numpy and scipy). CellSynthesis' voxel loop: 80 s, 11.7 GB.
Target: <= 10 s, <= 1.5 GB on 2 cores.

    .venv/bin/python benchmarks/bench_membranes.py [--scene preset|ellipsoid] [--n 3000] [--seed 0]
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def ellipsoid(shape, frac=0.9):
    g = np.ogrid[tuple(slice(0, s) for s in shape)]
    c = [(s - 1) / 2 for s in shape]
    return sum(((x - ci) / (frac * s / 2)) ** 2 for x, ci, s in zip(g, c, shape)) <= 1


def uniform_points(fg, n, rng):
    idx = np.flatnonzero(fg)
    pick = rng.choice(idx, size=n, replace=False)
    return np.stack(np.unravel_index(pick, fg.shape), 1) + rng.uniform(-0.5, 0.5, (n, fg.ndim))


def make_inputs(a, rng):
    shape = tuple(a.shape)
    if a.scene == "preset":
        from cellsynth.config import load_config
        from cellsynth.simulate.foreground import make_foreground
        from cellsynth.simulate.placement import place_points
        cfg = load_config(preset="membrane3d-meristem").scene
        fg = make_foreground(cfg.foreground, shape, rng)
        pts = place_points(cfg.placement, fg, rng, n=a.n)
        return fg, pts, cfg.membranes.model_dump(mode="json"), "membrane3d-meristem preset (harmonics + layers)"
    fg = ellipsoid(shape)
    return fg, uniform_points(fg, a.n, rng), {"gamma": [0.8, 1.2]}, "ellipsoid 0.9 + uniform points"


def vm_hwm_mb() -> float:
    """Peak RSS of this process image (VmHWM). Unlike getrusage's ru_maxrss, which Linux
    carries over from the parent across fork + exec, VmHWM starts fresh in the worker."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def worker(path: str, seed: int) -> int:
    from cellsynth.config import MembraneConfig
    from cellsynth.simulate.encode import boundaries
    from cellsynth.simulate.membranes import tessellate
    d = np.load(path)
    fg, pts = d["fg"], d["pts"]
    cfg = MembraneConfig(**json.loads(str(d["cfg"])))
    rss0 = vm_hwm_mb()
    t0, c0 = time.perf_counter(), time.process_time()
    labels = tessellate(fg, pts, cfg, np.random.default_rng(seed))
    t1, c1 = time.perf_counter(), time.process_time()
    wall = boundaries(labels, cfg.wall_thickness)
    t2 = time.perf_counter()
    print(json.dumps({"cells": int(labels.max()), "tessellate_s": round(t1 - t0, 2),
                      "tessellate_cpu_s": round(c1 - c0, 2), "load_avg_1min": os.getloadavg()[0],
                      "boundaries_s": round(t2 - t1, 2), "rss_before_mb": round(rss0, 1),
                      "peak_rss_mb": round(vm_hwm_mb(), 1),
                      "membrane_fraction": round(float(wall.mean()), 4)}))
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shape", type=int, nargs="+", default=[128, 512, 512])
    ap.add_argument("--n", type=int, default=3000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--scene", choices=["preset", "ellipsoid"], default="preset")
    ap.add_argument("--inputs", type=Path, help="save the inputs here, or reuse them if the file exists")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.worker:
        return worker(a.worker, a.seed)
    with tempfile.TemporaryDirectory() as tmp:
        f = a.inputs or Path(tmp) / "inputs.npz"
        setup = 0.0
        if not f.is_file():
            t0 = time.perf_counter()
            fg, pts, cfg, how = make_inputs(a, np.random.default_rng(a.seed))
            setup = time.perf_counter() - t0
            np.savez(f, fg=fg, pts=pts, cfg=json.dumps(cfg), how=how)
        d = np.load(f)
        fg, pts, how = d["fg"], d["pts"], str(d["how"])
        r = subprocess.run([sys.executable, __file__, "--worker", str(f), "--seed", str(a.seed)],
                           capture_output=True, text=True)
    if r.returncode:
        sys.stderr.write(r.stderr)
        return r.returncode
    res = {"shape": list(fg.shape), "scene": how, "n_points": int(len(pts)),
           "foreground_fraction": round(float(fg.mean()), 3), "setup_s": round(setup, 1),
           **json.loads(r.stdout.strip().splitlines()[-1])}
    print(json.dumps(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
