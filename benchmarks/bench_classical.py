"""Classical baseline on DSB 2018: fixed-parameter vs scale-adaptive Otsu + distance watershed.

Scores both variants of :func:`cellsynth.segment.classical.classical_segment` with the
benchmark's own per-image scoring (AP@0.5 = tp/(tp+fp+fn) at IoU 0.5, mean over images)
on a split (``val`` for the reported figure; the adaptive factors were chosen on ``train``).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_classical.py --split val
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_classical.py --split train --n 80
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from benchutil import commit

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "nuclei2d-dsb2018"


def main() -> None:
    from cellsynth.io import read_image, read_labels
    from cellsynth.metrics.compare import score_segmentation as score_image
    from cellsynth.segment.classical import classical_segment

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--split", default="val")
    ap.add_argument("--n", type=int, default=0, help="evenly spaced subset of images (0 = all)")
    args = ap.parse_args()
    images = sorted((args.data / args.split / "images").glob("*.tif"))
    if args.n:
        images = images[::max(1, len(images) // args.n)][:args.n]
    variants = {"fixed (σ 1, seed spacing 4 px, min 15 px)": dict(adaptive=False),
                "scale-adaptive (σ max(1, 0.1 r), spacing 0.8 r, min 0.1 A)": dict(adaptive=True)}
    head = commit()
    print(f"{len(images)} {args.split} images; commit {head}\n")
    print("| classical variant | AP@0.5 (mean/image) | AP@0.5:0.95 | precision@0.5 | recall@0.5 "
          "| objects found / true | s |")
    print("|---|---|---|---|---|---|---|")
    for name, kw in variants.items():
        t0 = time.time()
        rows = [score_image(read_labels(args.data / args.split / "masks" / p.name),
                            classical_segment(read_image(p), **kw)) for p in images]
        m = {k: float(np.mean([r[k] for r in rows])) for k in ("ap50", "ap50_95", "precision50", "recall50")}
        found, true = sum(r["n_pred"] for r in rows), sum(r["n_true"] for r in rows)
        print(f"| {name} | {m['ap50']:.3f} | {m['ap50_95']:.3f} | {m['precision50']:.3f} | "
              f"{m['recall50']:.3f} | {found} / {true} | {time.time() - t0:.1f} |")


if __name__ == "__main__":
    main()
