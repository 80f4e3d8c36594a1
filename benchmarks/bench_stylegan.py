"""Benchmark: image + mask StyleGAN2 (Lesmes-Leon et al. 2025) on DSB 2018 — image quality per
augmentation option, mask fidelity, and the augmentation experiment in miniature.

Trained models (one per option, e.g. none / DiffAugment / ADA / APA) come from
``cellsynth train stylegan --images DSB/train/images --masks DSB/train/masks --out M_opt``.
For each model this draws ``--n`` pairs (truncation ψ = 1) and measures

- FID and KID of the generated images against random 64² crops of the real training images
  (the project's statistics extractor, NOT Inception — compare only within this table; a
  real-vs-real row gives the floor; torchmetrics' FID with the same extractor as a
  cross-check when torchmetrics is installed);
- mask fidelity: the classical segmenter (Otsu + watershed, no training) applied to the
  generated images and scored against the generated, decoded masks (AP@0.5), next to the
  same on real crops against their real masks;
- with ``--segment``: Lesmes-Leon et al. 2025's experiment in miniature — the U-Net segmenter trained on real
  training images, on real + generated pairs and on generated pairs only (same steps, 64²
  patches), AP@0.5 on the ``val`` images, Wilcoxon rank-sum tests between the arms.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_stylegan.py --models M_none M_diffaugment ...
        [--data ../shared/data] [--n 200] [--segment MODEL --seg-steps 300] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from cellsynth.dataset import generate_stylegan_dataset
from cellsynth.generative.stylegan import PairData, StyleGANTrainConfig, load_stylegan, sample_pairs
from cellsynth.metrics.compare import score_segmentation
from cellsynth.metrics.image import default_extractor, fid, kid
from cellsynth.segment.classical import classical_segment


def real_crops(dsb: Path, model, n: int, seed: int):
    cfg = StyleGANTrainConfig(resolution=int(model.meta["resolution"]), percentiles=tuple(model.meta["percentiles"]),
                              mirror=False)
    data = PairData(dsb / "train" / "images", dsb / "train" / "masks", cfg)
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        img, lab = data.crop(int(rng.integers(len(data.images))), rng)
        out.append(((img + 1) / 2, lab))
    return out


def torchmetrics_fid(extractor, real, fake):
    """torchmetrics' FID with the project's extractor wrapped as the feature module (cross-check)."""
    try:
        import torch
        from torchmetrics.image.fid import FrechetInceptionDistance
    except ImportError:
        return None

    class Features(torch.nn.Module):
        def forward(self, x):
            return torch.from_numpy(extractor([im[0].numpy() for im in x])).float()

    m = FrechetInceptionDistance(feature=Features(), normalize=True)
    import torch
    m.update(torch.from_numpy(np.stack(real)[:, None]).float(), real=True)
    m.update(torch.from_numpy(np.stack(fake)[:, None]).float(), real=False)
    return float(m.compute())


def ap50(pairs) -> float:
    return float(np.mean([score_segmentation(lab, classical_segment(img))["ap50"] for img, lab in pairs]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", required=True, type=Path)
    ap.add_argument("--data", default="../shared/data", type=Path)
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--segment", type=Path, help="model whose pairs go into the segmentation experiment")
    ap.add_argument("--seg-steps", type=int, default=300)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    dsb = args.data / "nuclei2d-dsb2018"
    ext = default_extractor()
    report: dict = {"extractor": ext.name, "n": args.n, "models": {}}
    first = load_stylegan(args.models[0])
    real = real_crops(dsb, first, 2 * args.n, seed=1)
    real_a, real_b = real[: args.n], real[args.n:]
    fa, fb = ext([im for im, _ in real_a]), ext([im for im, _ in real_b])
    report["real_vs_real"] = {"fid": fid(fa, fb), "kid": kid(fa, fb, subset_size=100)[0],
                              "ap50_classical_real": ap50(real_a)}
    print("real vs real", json.dumps(report["real_vs_real"]), flush=True)
    for path in args.models:
        t = time.perf_counter()
        model = load_stylegan(path)
        gen = list(sample_pairs(model, args.n, seed=0, truncation=1.0))
        fg = ext([im for im, _ in gen])
        row = {"fid": fid(fa, fg), "kid": kid(fa, fg, subset_size=100)[0],
               "torchmetrics_fid": torchmetrics_fid(ext, [im for im, _ in real_a], [im for im, _ in gen]),
               "ap50_classical_on_generated": ap50(gen),
               "objects_per_sample": float(np.mean([len(np.unique(lab)) - 1 for _, lab in gen])),
               "real_objects_per_crop": float(np.mean([len(np.unique(lab)) - 1 for _, lab in real_a])),
               "train_steps": model.meta["training"]["steps"], "train_time_s": model.meta["training"]["time_s"],
               "ada_p": model.meta["training"].get("ada_p"), "apa_p": model.apa_p if model.apa_ctl else None,
               "eval_s": round(time.perf_counter() - t, 1)}
        report["models"][path.name] = row
        print(path.name, json.dumps(row), flush=True)
    if args.segment:
        report["segmentation"] = segmentation_experiment(args.segment, dsb, args.n, args.seg_steps)
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))


def segmentation_experiment(model: Path, dsb: Path, n: int, steps: int) -> dict:
    """Real / real + generated / generated → U-Net segmenter → AP@0.5 on val (Lesmes-Leon et al. 2025 Tables 2–3)."""
    from cellsynth.benchmark.syn2real import ranksum_tests, score_arm, summarize_arm
    from cellsynth.config import validate
    from cellsynth.dataset import read_pairs
    from cellsynth.segment.unet import SegmenterConfig, train_segmenter

    work = Path(tempfile.mkdtemp(prefix="bench_stylegan_"))
    try:
        gen = generate_stylegan_dataset(model, n, 0, work / "generated", progress=False)
        cfg = validate(SegmenterConfig, {"steps": steps, "patch": [64, 64], "batch_size": 8, "seed": 0})
        arms_data = {"real": [dsb / "train"], "real+generated": [dsb / "train", gen], "generated": [gen]}
        test = read_pairs(dsb / "val")
        arms = {}
        for arm, sets in arms_data.items():
            t = time.perf_counter()
            seg = train_segmenter([str(s) for s in sets], work / f"seg_{arm}", cfg=cfg, device="cpu", progress=False)
            per, _ = score_arm(seg.predict, test, progress=False)
            arms[arm] = {"per_image": per, "summary": summarize_arm(per), "seconds": round(time.perf_counter() - t)}
            print(arm, json.dumps(arms[arm]["summary"]), flush=True)
        tests = ranksum_tests(arms)
        for t in tests:
            print(json.dumps(t), flush=True)
        return {"arms": {a: {k: v for k, v in d.items() if k != "per_image"} for a, d in arms.items()},
                "wilcoxon": tests, "steps": steps, "n_generated": n}
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
