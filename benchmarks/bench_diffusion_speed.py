"""Speed of the diffusion model: SDEdit time per megapixel / per 64×256×256 volume for K = 400, 100,
50, 25 respaced steps (with the quality drop of each), CPU training throughput, and the tiling
overhead (blended tiles vs one big tile).

    .venv/bin/python benchmarks/bench_diffusion_speed.py [--model DIR] [--threads 1] [--json F]

2D uses the shipped model (or --model); 3D uses a tiny untrained 3D U-Net (channels 8/16/32,
strides (1,2,2),(2,2,2)) — speed does not depend on the weights. The 3D volume is timed for
``--k3d`` steps and the other K scale linearly (the per-step cost is constant).
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from cellsynth import tiling
from cellsynth.generative import diffusion as D
from cellsynth.nn.unet import UNet
from cellsynth.render.diffusion import default_model_path


def blob_sketch(shape, rng, n=None):
    """Random bright discs/balls on a dark background, values in [0, 1] (a sketch-like input)."""
    n = n or max(4, int(np.prod(shape) / 3000))
    grids = np.ogrid[tuple(slice(0, s) for s in shape)]
    out = np.zeros(shape, np.float32)
    for _ in range(n):
        c = [rng.uniform(0, s) for s in shape]
        r = rng.uniform(6, 14)
        d2 = sum((g - ci) ** 2 for g, ci in zip(grids, c))
        out[d2 < r * r] = rng.uniform(0.3, 1.0)
    return out


def timed(fn, repeats=1):
    """Median wall seconds and median CPU seconds of this process (single-threaded: CPU ≈ uncontended wall)."""
    ts, cs = [], []
    for _ in range(repeats):
        t, c = time.perf_counter(), time.process_time()
        fn()
        ts.append(time.perf_counter() - t)
        cs.append(time.process_time() - c)
    return float(np.median(ts)), float(np.median(cs))


def tiny3d_model() -> D.DiffusionModel:
    torch.manual_seed(0)
    args = {"spatial_dims": 3, "in_channels": 1, "out_channels": 1, "channels": [8, 16, 32],
            "blocks_per_level": 1, "time_embedding": True, "dropout": 0.0, "strides": [[1, 2, 2], [2, 2, 2]]}
    net = UNet(**args).eval()
    cfg = {"architecture": {"class": "UNet", "args": args},
           "intensity": {"background": -0.9, "foreground_low": -0.3, "foreground_high": 0.6},
           "normalisation": {"low": 1, "high": 99.8, "raw_low": 0, "raw_high": 1}}
    return D.DiffusionModel(net=net, schedule=D.Schedule(), config=cfg)


def quality_vs_k(model, ks, n, crop):
    """PSNR/ZNCC/Bhattacharyya vs the real val images for each K (t_start 400, σ 1)."""
    import bench_diffusion_quality as Q
    from cellsynth.config import load_config
    from cellsynth.render.sketch import sketch
    sk_cfg = load_config(preset="nuclei2d-dsb").render.sketch.model_copy(update={"sigma": 0.0})
    levels = (sk_cfg.background, *sk_cfg.intensity)
    pairs = Q.load_pairs(n, crop)
    out = {}
    for k in ks:
        rows = []
        for i, (_name, img, lab) in enumerate(pairs):
            real01 = Q.normalize_percentile(img, 1.0, 99.8, clip=True)
            s = sketch(Q.scene_of(lab), sk_cfg, np.random.default_rng(1000 + i))
            rows.append(Q.score(real01, D.sdedit(model, s, t_start=400, steps=k, sigma=1.0, seed=i,
                                                 sketch_levels=levels)))
        out[k] = Q.mean_scores(rows)
        print("quality K", k, out[k], flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=None)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--ks", type=int, nargs="+", default=[400, 100, 50, 25])
    ap.add_argument("--size2d", type=int, default=256, help="2D image side for the timing")
    ap.add_argument("--k3d", type=int, default=5, help="steps actually run on the 3D volume")
    ap.add_argument("--quality-n", type=int, default=5)
    ap.add_argument("--quality-crop", type=int, default=128)
    ap.add_argument("--train-steps", type=int, default=10)
    ap.add_argument("--skip", nargs="*", default=[], choices=["2d", "3d", "quality", "train", "tiling"])
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    model = D.load_model(args.model or default_model_path())
    rng = np.random.default_rng(0)
    res: dict = {"threads": args.threads, "model": str(model.path),
                 "n_parameters_2d": sum(p.numel() for p in model.net.parameters())}

    if "2d" not in args.skip:
        s = blob_sketch((args.size2d, args.size2d), rng)
        mp = s.size / 1e6
        D.sdedit(model, s, t_start=400, steps=2, seed=0)  # warm-up
        res["2d"] = {}
        for k in args.ks:
            t, c = timed(lambda: D.sdedit(model, s, t_start=400, steps=k, seed=0))
            res["2d"][k] = {"s_per_image": t, "s_per_megapixel": t / mp, "cpu_s_per_image": c,
                            "cpu_s_per_megapixel": c / mp, "image": list(s.shape)}
            print("2D K", k, res["2d"][k], flush=True)

    if "quality" not in args.skip:
        res["quality_vs_k"] = quality_vs_k(model, args.ks, args.quality_n, args.quality_crop)

    if "3d" not in args.skip:
        m3 = tiny3d_model()
        vol = blob_sketch((64, 256, 256), rng, n=200)
        t, c = timed(lambda: D.sdedit(m3, vol, t_start=400, steps=args.k3d, seed=0))
        per_step = t / args.k3d
        res["3d"] = {"volume": [64, 256, 256], "measured_steps": args.k3d, "measured_s": t, "cpu_s": c,
                     "s_per_step": per_step, "cpu_s_per_step": c / args.k3d,
                     "tile": tiling.auto_tile(vol.shape, m3.net.divisor, None, 0.125),
                     "n_parameters": sum(p.numel() for p in m3.net.parameters()),
                     "estimated_s_per_volume": {k: per_step * k for k in args.ks},
                     "estimated_cpu_s_per_volume": {k: c / args.k3d * k for k in args.ks}}
        print("3D", res["3d"], flush=True)

    if "train" not in args.skip:
        import tempfile

        import tifffile
        with tempfile.TemporaryDirectory() as tmp:
            d = Path(tmp) / "imgs"
            d.mkdir()
            for i in range(4):
                tifffile.imwrite(d / f"{i}.tif", (blob_sketch((256, 256), rng) * 200).astype(np.uint8))
            tc = D.DiffusionTrainConfig(**{**model.config.get("train_config", {}), "threads": args.threads,
                                           "checkpoint_every": 10 ** 6})
            m = D.train_diffusion(d, Path(tmp) / "m", tc, steps=args.train_steps, progress=False)
            dt = D.load_model(m).config["training"]["time_s"]  # the training loop only, no setup
            res["train"] = {"batch_size": tc.batch_size, "patch_size": tc.patch_size, "channels": tc.channels,
                            "steps_timed": args.train_steps, "s_per_step": dt / args.train_steps,
                            "samples_per_s": tc.batch_size * args.train_steps / dt}
            print("train", res["train"], flush=True)

    if "tiling" not in args.skip:
        net = model.net
        k = torch.tensor([200.0])
        pred = lambda p: net(p, k.expand(p.shape[0]))
        res["tiling"] = []
        auto = tiling.auto_tile((992, 992), net.divisor, None, 0.125)
        for size, tile, overlap in [(992, [992, 992], 0.0), (992, [512, 512], 32 / 512),
                                    (992, auto, 0.125), (992, [256, 256], 0.25)]:
            x = torch.randn((1, 1, size, size), generator=torch.Generator().manual_seed(0))
            with torch.no_grad():
                t, c = timed(lambda: tiling.tiled_predict(x, pred, tile, overlap=overlap), repeats=3)
            res["tiling"].append({"image": size, "tile": tile, "overlap": overlap, "s_per_step": t,
                                  "cpu_s_per_step": c})
            print("tiling", res["tiling"][-1], flush=True)
        base, cbase = res["tiling"][0]["s_per_step"], res["tiling"][0]["cpu_s_per_step"]
        for r in res["tiling"]:
            r["overhead"] = r["s_per_step"] / base - 1
            r["cpu_overhead"] = r["cpu_s_per_step"] / cbase - 1
    if args.json:
        args.json.write_text(json.dumps(res, indent=1))
    print(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
