"""cellsynth demo: a small dataset for several presets and an overview PNG."""
from __future__ import annotations

import argparse
import time

# (preset, renderer, n, overrides) — sizes cut down so the whole demo runs in about a minute on 2 cores.
DEMO = [
    ("nuclei2d-dsb", "diffusion", 2, ["render.diffusion.steps=25"]),
    ("nuclei3d-celegans", "physics", 2, ["scene.shape=[32,96,128]", "scene.placement.n_points=[10,25]"]),
    # the same scenes rendered by the shipped 3D cGAN (Eschweiler et al. 2021, models/nuclei3d-cgan)
    ("nuclei3d-celegans", "cgan", 2, ["scene.shape=[32,96,128]", "scene.placement.n_points=[10,25]"]),
    ("membrane3d-meristem", "physics", 2, ["scene.shape=[40,128,128]", "scene.placement.n_points=[120,160]",
                                           "scene.placement.layer_thickness=10", "scene.placement.min_distance=9"]),
    ("nuclei-golgi3d", "physics", 2, ["scene.shape=[40,160,160]", "scene.organelles.n_pairs=[8,12]"]),
    ("membrane2d-arabidopsis", "sketch", 2, ["scene.shape=[256,256]", "scene.placement.n_points=[250,250]",
                                             "scene.placement.n_iter=20"]),
]


def add_parser(sub) -> None:
    p = sub.add_parser("demo", help="generate a small demo dataset for several presets + an overview PNG",
                       description="Generates 2 samples each of 2D nuclei (diffusion model shipped with the "
                                   "package), 3D nuclei (physics, and the shipped 3D cGAN), 3D membranes, "
                                   "nucleus–Golgi and 2D membranes, and writes OUT/overview.png. Rerunning resumes.")
    p.add_argument("--out", default="demo_output", help="output folder (default demo_output)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..config import load_config
    from ..dataset import generate_dataset, iter_dataset
    from ..io import check_writable
    from ..overview import save_overview

    out = check_writable(args.out, "--out")
    t0 = time.perf_counter()
    rows = []
    for preset, renderer, n, overrides in DEMO:
        cfg = load_config(preset, overrides=overrides)
        ds = out / (preset if renderer != "cgan" else f"{preset}-{renderer}")
        t = time.perf_counter()
        generate_dataset(cfg, renderer, n, args.seed, ds, workers=args.workers, progress=not args.no_progress)
        samples = [(img, lab) for _, img, lab in iter_dataset(ds)]
        shape = "×".join(map(str, samples[0][0].shape))
        nobj = ", ".join(str(int(lab.max())) for _, lab in samples)
        print(f"{preset:<24} {renderer:<9} {n} × {shape:<12} objects {nobj:<10} "
              f"{time.perf_counter() - t:5.1f} s  -> {ds}")
        rows.append((f"{preset} ({renderer})", samples))
    png = save_overview(rows, out / "overview.png")
    print(f"overview: {png}   total {time.perf_counter() - t0:.1f} s")
    return 0
