"""Benchmark: 3-class U-Net segmenter trained on real DSB 2018 masks vs the classical baseline.

Trains ``cellsynth.segment.unet`` on ``nuclei2d-dsb2018/train`` (real images + masks),
predicts ``nuclei2d-dsb2018/val`` and scores with StarDist-style matching
(``cellsynth.metrics.segmentation``): accuracy tp/(tp+fp+fn) at IoU 0.5 ("AP@0.5",
pooled over all objects and averaged per image) and the DSB score (mean over IoU
0.5..0.95). The classical baseline (Gaussian + Otsu + distance watershed) is scored on the
same images. Prints a Markdown section; ``--append`` adds it to benchmarks/RESULTS.md.

    .venv/bin/python benchmarks/bench_segmenter.py --steps 300 --threads 2 --append
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "nuclei2d-dsb2018"


def score(gts, preds) -> dict:
    from cellsynth.metrics.segmentation import average_precision, matching_dataset
    pooled = matching_dataset(gts, preds, thresh=0.5)
    per_image = matching_dataset(gts, preds, thresh=0.5, by_image=True)
    dsb = average_precision(list(gts), list(preds), thresholds=np.arange(0.5, 1.0, 0.05))
    return {"ap50_pooled": pooled["accuracy"], "ap50_per_image": per_image["accuracy"],
            "f1_50": pooled["f1"], "dsb_ap": dsb["ap"], "n_true": pooled["n_true"], "n_pred": pooled["n_pred"]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--patch", type=int, default=128)
    ap.add_argument("--channels", type=int, nargs="+", default=[16, 32, 64])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--max-val", type=int, default=None, help="score only the first N val images")
    ap.add_argument("--model", type=Path, default=Path("/tmp/cellsynth-bench-segmenter"),
                    help="where the trained model goes")
    ap.add_argument("--reuse", action="store_true", help="skip training, load --model")
    ap.add_argument("--append", action="store_true", help="append the section to benchmarks/RESULTS.md")
    args = ap.parse_args()
    if not DATA.is_dir():
        print(f"skipped: {DATA} not present", file=sys.stderr)
        return 0
    torch.set_num_threads(args.threads)
    # the code measured is the code at the start (others commit while this runs)
    rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True,
                         text=True).stdout.strip()
    from cellsynth.dataset import read_pairs
    from cellsynth.io import read_image, read_labels
    from cellsynth.segment.classical import classical_segment
    from cellsynth.segment.unet import SegmenterConfig, load_segmenter, train_segmenter

    cfg = SegmenterConfig(channels=args.channels, batch_size=args.batch_size, steps=args.steps,
                          patch=[args.patch, args.patch])
    t0 = time.time()
    if args.reuse:
        seg = load_segmenter(args.model)
    else:
        seg = train_segmenter([DATA / "train"], args.model, cfg, device="cpu", progress=True)
    t_train = time.time() - t0
    n_train = seg.config["training"]["n_images"]

    val = read_pairs(DATA / "val")[: args.max_val]
    images = [read_image(i) for _, i, _ in val]
    gts = [read_labels(m) for _, _, m in val]
    npx = sum(im.size for im in images)

    t0 = time.time()
    preds = [seg.predict(im) for im in images]
    t_pred = time.time() - t0
    t0 = time.time()
    cl = [classical_segment(im) for im in images]
    t_cl = time.time() - t0
    s_unet, s_cl = score(gts, preds), score(gts, cl)

    load = open("/proc/loadavg").read().split()[0] if Path("/proc/loadavg").exists() else "?"
    cmd = "benchmarks/bench_segmenter.py " + " ".join(sys.argv[1:])
    tr = seg.config["training"]
    lines = [
        "",
        f"## Segmenter (3-class U-Net + seeded watershed) vs classical on nuclei2d-dsb2018 val ({rev})",
        "",
        f"Command: `.venv/bin/python {cmd}` — machine 2-core CPU, 24 GB, {args.threads} torch threads, "
        f"load average at the end {load} (shared machine: times are upper bounds).",
        f"Training: {n_train} real train images/masks, U-Net channels {tr['config']['channels']}, patch "
        f"{tr['patch']}, batch {tr['batch_size']}, {tr['steps']} steps, final loss {tr['final_loss']}"
        + ("" if args.reuse else f", {t_train:.0f} s") + ".",
        f"Scored on {len(val)} val images ({npx / 1e6:.1f} Mpx, {s_unet['n_true']} GT nuclei); "
        "AP@0.5 = tp/(tp+fp+fn) at IoU 0.5 (StarDist matching), DSB = mean over IoU 0.50..0.95.",
        "",
        "| method | AP@0.5 pooled | AP@0.5 per image | F1@0.5 | DSB AP | objects found | predict time |",
        "|---|---|---|---|---|---|---|",
        f"| U-Net 3-class | {s_unet['ap50_pooled']:.3f} | {s_unet['ap50_per_image']:.3f} | {s_unet['f1_50']:.3f} "
        f"| {s_unet['dsb_ap']:.3f} | {s_unet['n_pred']} | {t_pred:.0f} s ({t_pred / len(val):.2f} s/img) |",
        f"| classical (Otsu + distance watershed) | {s_cl['ap50_pooled']:.3f} | {s_cl['ap50_per_image']:.3f} "
        f"| {s_cl['f1_50']:.3f} | {s_cl['dsb_ap']:.3f} | {s_cl['n_pred']} | {t_cl:.0f} s |",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    if args.append:
        res = REPO / "benchmarks" / "RESULTS.md"
        # append in place (others append too); never rewrite the file
        with open(res, "a") as f:
            f.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
