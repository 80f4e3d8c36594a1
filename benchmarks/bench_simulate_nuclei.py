"""Benchmark: 2D 1024×1024 scene with 100 elastically deformed nuclei (target ≤ 1 s).

GOWT1-like parameters (Eschweiler et al. 2024): full field, r ∈ (30, 45)... too large for 100 nuclei
without overlap in 1024², so radius (20, 35) px, Poisson-disc placement (min_distance
60 px), rotation, B-spline deformation (elastic 3 px on a 4×4 grid), overlap forbidden.
Also: the GOWT1 radii r ∈ (30, 45) with 100 nuclei, uniform positions and overlap allowed
(bigger boxes, overlap counting), and a 3D 64×256×256 scene with 100 spherical-harmonics
nuclei for reference.

    .venv/bin/python benchmarks/bench_simulate_nuclei.py [--repeats 5]
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from cellsynth.config import SceneConfig, validate
from cellsynth.simulate import simulate_scene
from cellsynth.simulate.nuclei import make_nuclei
from cellsynth.simulate.placement import place_points

CASES = {
    "2d_1024_100_deformed": dict(
        kind="nuclei", shape=[1024, 1024], spacing=[1.0, 1.0],
        foreground=dict(method="full"),
        placement=dict(method="poisson", n_points=[100, 100], min_distance=60),
        nuclei=dict(shape="ellipsoid", radius=[20, 35], axis_scale=[[0.8, 1.2], [0.8, 1.2]],
                    elastic=3.0, elastic_grid=4)),
    "2d_1024_100_gowt1_r30-45_overlap": dict(
        kind="nuclei", shape=[1024, 1024], spacing=[1.0, 1.0],
        foreground=dict(method="full"),
        placement=dict(method="uniform", n_points=[100, 100]),
        nuclei=dict(shape="ellipsoid", radius=[30, 45], axis_scale=[[0.8, 1.2], [0.8, 1.2]],
                    elastic=5.0, elastic_grid=5, allow_overlap=True)),
    "3d_64x256x256_100_harmonics": dict(
        kind="nuclei", shape=[64, 256, 256], spacing=[1.0, 1.0, 1.0],
        foreground=dict(method="full"),
        placement=dict(method="poisson", n_points=[100, 100], min_distance=18),
        nuclei=dict(shape="harmonics", radius=[6, 9], sh_gamma=2.0, elastic=1.0)),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    for name, d in CASES.items():
        cfg = validate(SceneConfig, d)
        simulate_scene(cfg, np.random.default_rng(0))  # warm-up (imports, caches)
        full, nuc, counts = [], [], []
        for r in range(args.repeats):
            t0 = time.perf_counter()
            scene = simulate_scene(cfg, np.random.default_rng(r))
            full.append(time.perf_counter() - t0)
            counts.append(scene.n_objects)
            rng = np.random.default_rng(r)
            fg = scene.foreground
            pts = place_points(cfg.placement, fg, rng)
            t0 = time.perf_counter()
            make_nuclei(fg, pts, cfg.nuclei, rng)
            nuc.append(time.perf_counter() - t0)
        print(f"{name}: simulate_scene median {np.median(full):.3f} s (min {min(full):.3f}), "
              f"make_nuclei median {np.median(nuc):.3f} s, objects placed {min(counts)}-{max(counts)} of 100")


if __name__ == "__main__":
    main()
