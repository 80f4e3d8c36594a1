"""Benchmark: the label-free object-diameter estimate against the masks, and what rescaling costs.

For every image of a dataset folder (default: nuclei2d-dsb2018/train) compares the median object
diameter of its masks (:func:`cellsynth.segment.rescale.labels_diameter`) with the label-free
estimate from the image alone (:func:`cellsynth.segment.rescale.image_diameter`, the scale estimate
of the scale-adaptive classical baseline), i.e. how far the segmenter's ``rescale`` at prediction
is from the scale it trained at. Also prints the distribution of the diameters and the pixel count
after rescaling every image to a few target diameters (the prediction work relative to native scale).

    .venv/bin/python benchmarks/bench_object_scale.py --json /tmp/scale.json
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from benchutil import commit, emit

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "nuclei2d-dsb2018" / "train"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DATA, help="dataset folder with images/ and masks/")
    ap.add_argument("--targets", type=float, nargs="+", default=[12, 17, 25, 30], help="target diameters (px)")
    ap.add_argument("--json", type=Path, help="also write the result here")
    args = ap.parse_args()
    if not args.data.is_dir():
        print(f"skipped: {args.data} not present", file=sys.stderr)
        return 0
    rev = commit()
    from cellsynth.dataset import read_pairs
    from cellsynth.io import read_image, read_labels
    from cellsynth.segment.rescale import RescaleConfig, image_diameter, labels_diameter, scale_factor

    true, est, pixels, t_est = [], [], [], 0.0
    for _, img_path, mask_path in read_pairs(args.data):
        img, mask = read_image(img_path), read_labels(mask_path)
        t0 = time.perf_counter()
        e = image_diameter(img)
        t_est += time.perf_counter() - t0
        true.append(labels_diameter(mask) or np.nan)
        est.append(e or np.nan)
        pixels.append(img.size)
    true, est, pixels = np.array(true), np.array(est), np.array(pixels, float)
    ratio = np.log2(est / true)
    ok = np.isfinite(ratio)
    cost = {}
    for t in args.targets:
        f = np.array([scale_factor(d, RescaleConfig(target_diameter=t)) for d in est])
        cost[str(t)] = round(float((pixels * f ** 2).sum() / pixels.sum()), 3)
    return emit({
        "commit": rev, "data": args.data.name if args.data.name not in ("train", "val") else
        f"{args.data.parent.name}/{args.data.name}", "images": int(len(true)),
        "diameter_percentiles_0_5_25_50_75_95_100": np.round(np.nanpercentile(true, [0, 5, 25, 50, 75, 95, 100]),
                                                             1).tolist(),
        "estimate_over_masks_median": round(float(2 ** np.median(ratio[ok])), 3),
        "log2_ratio_percentiles_5_25_75_95": np.round(np.percentile(ratio[ok], [5, 25, 75, 95]), 3).tolist(),
        "within_sqrt2": round(float(np.mean(np.abs(ratio[ok]) <= 0.5)), 3),
        "within_2x": round(float(np.mean(np.abs(ratio[ok]) <= 1.0)), 3),
        "no_estimate": int((~np.isfinite(est)).sum()),
        "estimate_ms_per_image": round(1000 * t_est / len(true), 1),
        "pixels_after_rescale_vs_native": cost,
    }, args.json)


if __name__ == "__main__":
    sys.exit(main())
