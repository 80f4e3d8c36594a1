"""Per-image scene statistics of simulated masks vs real masks: two-sample KS distances.

For each config (a preset + `cellsynth fit` overlay), simulates N scenes and measures per
scene the object density (objects per 256² px, so that image sizes compare), the median
equivalent radius, the median nearest-neighbour centre distance, the foreground coverage
and the touching fraction; the same on every real mask of a split (default DSB 2018
``val``). Prints the KS statistic (max CDF gap, 0 = same distribution) per statistic.

    cellsynth fit --images …/train/images --preset nuclei2d-dsb --out /tmp/fit.yaml
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_scene_stats.py --config pooled=/tmp/pooled.yaml \\
        --config per-image=/tmp/fit.yaml --n 150
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from benchutil import commit

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "nuclei2d-dsb2018"
STATS = ("density", "radius", "nn_distance", "coverage", "touching")


def per_image(labels: np.ndarray) -> dict:
    from cellsynth.fit import object_stats

    st = object_stats(labels)
    vol = np.bincount(np.asarray(labels).ravel())[1:]
    vol = vol[vol > 0]
    r = (vol / np.pi) ** 0.5 if labels.ndim == 2 else (3 * vol / (4 * np.pi)) ** (1 / 3)
    return {"density": st["density"] * 256 ** 2, "radius": float(np.median(r)) if r.size else np.nan,
            "nn_distance": float(np.median(st["nn_distance"])) if st["nn_distance"].size else np.nan,
            "coverage": st["coverage"], "touching": st["touching"]}


def main() -> None:
    from scipy.stats import ks_2samp

    from cellsynth.config import load_config
    from cellsynth.io import read_labels
    from cellsynth.simulate import simulate_scene

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", action="append", required=True, metavar="NAME=FILE",
                    help="overlay YAML (from `cellsynth fit`) on --preset; repeat to compare")
    ap.add_argument("--preset", default="nuclei2d-dsb")
    ap.add_argument("--masks", type=Path, default=DATA / "val" / "masks")
    ap.add_argument("--n", type=int, default=150, help="simulated scenes per config")
    args = ap.parse_args()

    real = [per_image(read_labels(p)) for p in sorted(args.masks.glob("*.tif"))]
    rows = {}
    for item in args.config:
        name, path = item.split("=", 1)
        cfg = load_config(args.preset, path)
        sims = [per_image(simulate_scene(cfg.scene, np.random.default_rng(i)).labels) for i in range(args.n)]
        rows[name] = sims
    head = commit()
    print(f"{len(real)} real masks ({args.masks}); {args.n} scenes per config; commit {head}\n")
    print("| config | " + " | ".join(f"KS {s}" for s in STATS) + " | mean KS |")
    print("|---|" + "---|" * (len(STATS) + 1))
    for name, sims in rows.items():
        ks = []
        for s in STATS:
            a = np.asarray([r[s] for r in real], float)
            b = np.asarray([r[s] for r in sims], float)
            ks.append(ks_2samp(a[np.isfinite(a)], b[np.isfinite(b)]).statistic)
        print(f"| {name} | " + " | ".join(f"{k:.3f}" for k in ks) + f" | {np.mean(ks):.3f} |")
    print("\nmedians (real | " + " | ".join(rows) + ")")
    for s in STATS:
        med = [np.nanmedian([r[s] for r in real])] + [np.nanmedian([r[s] for r in v]) for v in rows.values()]
        print(f"  {s}: " + " | ".join(f"{m:.3g}" for m in med))


if __name__ == "__main__":
    main()
