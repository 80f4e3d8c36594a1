"""Faithfulness / realism of SDEdit images from sketches of REAL masks (Eschweiler et al. 2024 Fig. 2, Table 1).

For a subset of ``nuclei2d-dsb2018/val`` (centre crops, sizes below): the real mask
→ Scene → sketch (default SketchConfig of the nuclei2d-dsb preset) → image, scored
against the real image it should resemble. All images are percentile-normalised
(1st/99.8th → [0, 1]) before scoring. Metrics (cellsynth.metrics.image): PSNR
(data_range 1), ZNCC and the Bhattacharyya distance of the 256-bin intensity
histograms (mean of per-image distances, and "pooled": all pixels of the set vs all real pixels).
Rows: the sketch itself, the physics renderer (when
present), the diffusion model (t_start 400, σ 1, K 50), and the diffusion model
fed with an "oracle" sketch whose per-nucleus intensities are the real image's
means (the paper's HeLa+t / cervical protocol).

Then the t_start/σ trade-off curve on a smaller subset, with the forward-process
histogram distance (noisy sketch vs noisy real at t_start, Eschweiler et al. 2024 Table 1).

    .venv/bin/python benchmarks/bench_diffusion_quality.py [--model DIR] [--n 20] [--crop 256]
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from cellsynth.config import load_config
from cellsynth.generative.diffusion import load_model, sdedit
from cellsynth.intensity import normalize_percentile
from cellsynth.io import read_image, read_labels
from cellsynth.metrics.image import histogram_distance, psnr, zncc
from cellsynth.render.diffusion import default_model_path
from cellsynth.render.sketch import sketch
from cellsynth.scene import Scene

VAL = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "nuclei2d-dsb2018" / "val"


def centre_crop(a: np.ndarray, size: int) -> np.ndarray:
    sl = tuple(slice(max(0, (s - size) // 2), max(0, (s - size) // 2) + min(s, size)) for s in a.shape)
    return a[sl]


def load_pairs(n: int, crop: int):
    imgs = sorted((VAL / "images").glob("*.tif"))[:n]
    out = []
    for p in imgs:
        img = centre_crop(read_image(p), crop)
        lab = centre_crop(read_labels(VAL / "masks" / p.name), crop)
        out.append((p.stem, img, lab))
    return out


def scene_of(labels: np.ndarray) -> Scene:
    from skimage.segmentation import relabel_sequential
    lab = relabel_sequential(labels.astype(np.int64))[0].astype(np.uint16)
    n = int(lab.max())
    return Scene(labels=lab, foreground=np.ones(lab.shape, bool), spacing=(0.5, 0.5),
                 classes={i: "nucleus" for i in range(1, n + 1)})


def oracle_sketch(real01: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Per-nucleus mean of the normalised real image; background = real background median."""
    lab = labels.astype(np.int64)
    n = int(lab.max())
    sums = np.bincount(lab.ravel(), weights=real01.ravel(), minlength=n + 1)
    cnt = np.maximum(np.bincount(lab.ravel(), minlength=n + 1), 1)
    lut = (sums / cnt).astype(np.float32)
    lut[0] = float(np.median(real01[lab == 0])) if (lab == 0).any() else 0.0
    return lut[lab]


POOL: dict[str, list] = {}


def score(real01: np.ndarray, img: np.ndarray, pool: str | None = None) -> dict:
    x = normalize_percentile(img, 1.0, 99.8, clip=True)
    if pool is not None:
        POOL.setdefault(pool, []).append(x)
    return {"psnr": psnr(real01, x, data_range=1.0), "zncc": zncc(real01, x),
            "bhattacharyya": histogram_distance(real01, x, bins=256, range=(0.0, 1.0))}


def mean_scores(rows: list[dict]) -> dict:
    return {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}


def forward_distance(model, s_mapped: np.ndarray, real_m: np.ndarray, t_start: int, seed: int) -> float:
    """Bhattacharyya distance of x_{t_start} from the (mapped, blurred) sketch vs from the real image."""
    g = torch.Generator().manual_seed(seed)
    ab = model.schedule.alphas_cumprod[t_start - 1]
    a = np.sqrt(ab) * s_mapped + np.sqrt(1 - ab) * torch.randn(s_mapped.shape, generator=g).numpy()
    b = np.sqrt(ab) * real_m + np.sqrt(1 - ab) * torch.randn(real_m.shape, generator=g).numpy()
    return histogram_distance(a, b, bins=256, range=(-4.0, 4.0))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=None, help="model directory (default: shipped model)")
    ap.add_argument("--n", type=int, default=20, help="val images in the main table")
    ap.add_argument("--crop", type=int, default=256, help="centre crop size (px)")
    ap.add_argument("--curve-n", type=int, default=8, help="val images for the t_start/σ curve")
    ap.add_argument("--curve-crop", type=int, default=128)
    ap.add_argument("--t-starts", type=int, nargs="+", default=[100, 250, 400, 600])
    ap.add_argument("--sigmas", type=float, nargs="+", default=[0.0, 1.0, 2.0])
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--skip-curve", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    model = load_model(args.model or default_model_path())
    cfg = load_config(preset="nuclei2d-dsb")
    sk_cfg = cfg.render.sketch.model_copy(update={"sigma": 0.0})
    levels = (sk_cfg.background, *sk_cfg.intensity)
    try:
        from cellsynth.render.physics import PhysicsRenderer
        physics = PhysicsRenderer(cfg.render.physics)
    except ImportError:
        physics = None
    from scipy.ndimage import gaussian_filter

    result = {"model": str(model.path), "model_training": model.config["training"], "n": args.n,
              "crop": args.crop, "steps": args.steps, "sketch": sk_cfg.model_dump(mode="json")}
    pairs = load_pairs(args.n, args.crop)
    main_row = f"diffusion t400 σ1 K{args.steps}"
    rows = {"sketch (σ=1)": [], "physics": [], main_row: [], "diffusion, oracle sketch": []}
    t0 = time.perf_counter()
    gen_s = 0.0
    for i, (name, img, lab) in enumerate(pairs):
        real01 = normalize_percentile(img, 1.0, 99.8, clip=True)
        POOL.setdefault("real", []).append(real01)
        scene = scene_of(lab)
        rng = np.random.default_rng(1000 + i)
        s = sketch(scene, sk_cfg, rng)
        rows["sketch (σ=1)"].append(score(real01, gaussian_filter(s, 1.0), "sketch (σ=1)"))
        if physics is not None:
            rows["physics"].append(score(real01, physics.render(scene, np.random.default_rng(2000 + i)), "physics"))
        t = time.perf_counter()
        out = sdedit(model, s, t_start=400, steps=args.steps, sigma=1.0, seed=i, sketch_levels=levels)
        gen_s += time.perf_counter() - t
        rows[main_row].append(score(real01, out, main_row))
        out_o = sdedit(model, oracle_sketch(real01, lab), t_start=400, steps=args.steps, sigma=1.0, seed=i,
                       match_intensities=False)
        rows["diffusion, oracle sketch"].append(score(real01, out_o, "diffusion, oracle sketch"))
        print(f"[{i + 1}/{len(pairs)}] {name} {img.shape} diffusion {rows[main_row][-1]}",
              flush=True)
    result["table"] = {k: mean_scores(v) for k, v in rows.items() if v}
    for k in result["table"]:  # one histogram of all pixels of the set vs all real pixels
        result["table"][k]["bhattacharyya_pooled"] = histogram_distance(POOL["real"], POOL[k], bins=256,
                                                                        range=(0.0, 1.0))
    result["diffusion_s_per_image"] = gen_s / len(pairs)
    result["table_time_s"] = time.perf_counter() - t0
    print(json.dumps(result["table"], indent=1), flush=True)

    if not args.skip_curve:
        curve = []
        cpairs = load_pairs(args.curve_n, args.curve_crop)
        for t_start in args.t_starts:
            for sigma in args.sigmas:
                r, fwd = [], []
                for i, (_name, img, lab) in enumerate(cpairs):
                    real01 = normalize_percentile(img, 1.0, 99.8, clip=True)
                    s = sketch(scene_of(lab), sk_cfg, np.random.default_rng(1000 + i))
                    out = sdedit(model, s, t_start=t_start, steps=min(args.steps, t_start), sigma=sigma, seed=i,
                                 sketch_levels=levels)
                    r.append(score(real01, out))
                    from cellsynth.generative.diffusion import map_sketch_intensities
                    sm = map_sketch_intensities(s, model.intensity, levels)
                    if sigma > 0:
                        sm = gaussian_filter(sm, sigma)
                    model_img = normalize_percentile(img, 1.0, 99.8, out=(-1, 1), clip=True)
                    fwd.append(forward_distance(model, sm, model_img, t_start, i))
                row = {"t_start": t_start, "sigma": sigma, **mean_scores(r),
                       "forward_bhattacharyya": float(np.mean(fwd))}
                curve.append(row)
                print(json.dumps(row), flush=True)
        result["curve"] = curve
        result["curve_n"], result["curve_crop"] = args.curve_n, args.curve_crop
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
