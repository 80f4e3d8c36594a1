"""Benchmark: speed of the segmentation metrics and sensitivity of the image metrics.

Part 1 (speed): ``matching`` at the 10 IoU thresholds 0.50:0.95 plus ``seg_score``
on a 2D 1024² label image (~3000 discs) and a 3D 64×256×256 one (~1500 balls),
prediction = the truth with every object shifted by one pixel and 5 % of objects
dropped. Best of ``--repeats`` runs, one thread.

Part 2 (sensitivity): ``cellsynth evaluate images`` metrics of real DSB 2018 ``val``
images against sets that should score progressively worse: other real images
(``train``), the same train images blurred (Gaussian σ = 2), blurred + strong
Poisson noise, and binary "sketches" (thresholded images blurred with σ = 1).
The default statistics extractor is not Inception: only the ordering matters.
Skipped when ../shared/data is absent.

    .venv/bin/python benchmarks/bench_metrics.py [--repeats 3] [--n-train 40]
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from scipy import ndimage


def balls(shape, n, radius, rng):
    lab = np.zeros(shape, np.int32)
    centres = np.stack([rng.integers(0, s, n) for s in shape], 1)
    for i, c in enumerate(centres, 1):
        lo = np.maximum(c - radius, 0)
        hi = np.minimum(c + radius + 1, shape)
        box = tuple(slice(a, b) for a, b in zip(lo, hi))
        d2 = sum((gg - cc) ** 2 for gg, cc in zip(np.ogrid[box], c))
        sub = lab[box]
        sub[(d2 <= radius ** 2) & (sub == 0)] = i
    return lab


def perturb(lab, rng):
    pred = np.roll(lab, 1, axis=-1)
    ids = np.unique(pred)[1:]
    drop = rng.choice(ids, int(0.05 * len(ids)), replace=False)
    pred[np.isin(pred, drop)] = 0
    return pred


def time_best(fn, repeats):
    best = np.inf
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def speed(repeats):
    from cellsynth.metrics import segmentation as sg

    rng = np.random.default_rng(0)
    res = {}
    for name, shape, n, r in (("2d_1024", (1024, 1024), 3000, 8), ("3d_64x256x256", (64, 256, 256), 1500, 5)):
        gt = balls(shape, n, r, rng)
        pred = perturb(gt, rng)
        t_m, rows = time_best(lambda: sg.matching(gt, pred, thresh=sg.DEFAULT_THRESHOLDS), repeats)
        t_s, seg = time_best(lambda: sg.seg_score(gt, pred), repeats)
        t_b, bf = time_best(lambda: sg.boundary_f1(gt, pred), repeats)
        res[name] = {"n_true": rows[0]["n_true"], "n_pred": rows[0]["n_pred"], "matching_10_thr_s": round(t_m, 3),
                     "seg_s": round(t_s, 3), "boundary_f1_s": round(t_b, 3), "ap50": round(rows[0]["accuracy"], 4),
                     "seg": round(seg, 4), "boundary_f1": round(bf["f1"], 4)}
    return res


def sensitivity(n_train):
    from cellsynth.intensity import normalize_percentile
    from cellsynth.io import list_images, read_image
    from cellsynth.metrics import image as im

    data = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "nuclei2d-dsb2018"
    if not data.is_dir():
        return {"skipped": "../shared/data absent"}
    def norm(a):
        return normalize_percentile(a, 0.5, 99.5, clip=True)
    real = [norm(read_image(p)) for p in list_images(data / "val" / "images")]
    train = [norm(read_image(p)) for p in list_images(data / "train" / "images")[:n_train]]
    rng = np.random.default_rng(0)
    sets = {
        "real train": train,
        "blur σ=2": [ndimage.gaussian_filter(x, 2) for x in train],
        "blur σ=2 + Poisson(20)": [norm(rng.poisson(20 * ndimage.gaussian_filter(x, 2) + 1))
                                   for x in train],
        "binary sketch σ=1": [ndimage.gaussian_filter((x > 0.3).astype(np.float32), 1) for x in train],
    }
    ex = im.default_extractor()
    fr = ex(real)
    out = {"n_real": len(real), "n_each": len(train), "extractor": ex.name}
    for name, imgs in sets.items():
        fs = ex(imgs)
        out[name] = {"bhattacharyya": round(im.histogram_distance(real, imgs, bins=256, range=(0, 1)), 4),
                     "kl": round(im.histogram_kl(real, imgs, bins=256, range=(0, 1)), 4),
                     "fid": round(im.fid(fr, fs), 4),
                     "kid": round(im.kid(fr, fs, n_subsets=50)[0], 5)}
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--n-train", type=int, default=40)
    args = ap.parse_args()
    print(json.dumps({"speed": speed(args.repeats), "sensitivity": sensitivity(args.n_train)}, indent=1,
                     ensure_ascii=False))


if __name__ == "__main__":
    main()
