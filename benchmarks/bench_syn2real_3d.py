"""3D Syn2Real on ``nuclei3d-gonuclear``: classical, Real2Real, Syn2Real-physics, Syn2Real-cgan, pooled, Mix2Real.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_syn2real_3d.py --out R [--steps 300] [--n 16]
        [--cgan-model DIR]

Runs :func:`cellsynth.benchmark.syn2real.run_benchmark` (what ``cellsynth benchmark syn2real`` runs)
with the segmenter sized for a shared CPU (32³ patches × 2 per step, ``--steps`` per arm).
Training side: volumes ``arabidopsis_1135`` and ``arabidopsis_plantseg`` (images for the
label-free renderer choice; their masks for Real2Real and Mix2Real); test: the held-back
``arabidopsis_1136``. The simulation is not fitted here: the classical detector over-splits these
volumes (median radius 2.4 px vs 12.7 px in the masks), so the scene uses a prior on the nucleus
size seen in the images (radius 9–12 px, 8–16 nuclei per 64³ volume); the camera (gain, offset,
photons) is the classical fit's (photon transfer on the unannotated training images).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import yaml

DATA = Path("/work/shared/data/nuclei3d-gonuclear/all")
TRAIN = ("arabidopsis_1135.tif", "arabidopsis_plantseg.tif")
TEST = "arabidopsis_1136.tif"
OVERLAY = {
    "scene": {"shape": [64, 64, 64], "spacing": [0.25, 0.25, 0.25], "foreground": {"method": "full"},
              "nuclei": {"radius": [9.0, 12.0], "axis_scale": [[0.8, 1.0], [0.9, 1.1], [0.9, 1.1]],
                         "mitotic_fraction": 0.0},
              "placement": {"n_points": [8, 16], "min_distance": 18.0}},
    # `cellsynth fit --images <training images> --preset nuclei3d-celegans`: camera by photon transfer
    "render": {"physics": {"gain": 128.67, "offset": 314.22, "background_photons": 0.0, "photons": [3.7, 9.2]}},
}


def main(argv=None) -> int:
    from cellsynth.benchmark.syn2real import BenchmarkSettings, run_benchmark
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--n", type=int, default=16)
    p.add_argument("--cgan-model", type=Path, help="cGAN model folder (default: the shipped one)")
    p.add_argument("--choice", default="kid")
    args = p.parse_args(argv)
    import torch
    torch.set_num_threads(1)
    root = args.out / "data"
    for split, names in (("train", TRAIN), ("test", (TEST,))):
        for sub in ("images", "masks"):
            (root / split / sub).mkdir(parents=True, exist_ok=True)
            for n in names:
                link = root / split / sub / n
                if not link.exists():
                    link.symlink_to(DATA / sub / n)
    overlay = json.loads(json.dumps(OVERLAY))
    if args.cgan_model:
        overlay["render"]["cgan"] = {"model": str(args.cgan_model.resolve())}
    cfg = args.out / "overlay.yaml"
    cfg.write_text(yaml.safe_dump(overlay))
    s = BenchmarkSettings(train_images=root / "train/images", train_masks=root / "train/masks", test=root / "test",
                          out=args.out / "report", preset="nuclei3d-celegans", config=cfg,
                          renderers=("physics", "cgan"), n=args.n, steps=args.steps, val_images=1,
                          fit_images=2, choice_criterion=args.choice, segmenter_patch=[32, 32, 32],
                          segmenter_batch=2, device="cpu", progress=False)
    report = run_benchmark(s)
    keys = ("ap50", "ap50_95", "dice", "seg", "precision50", "recall50")
    rows = {arm: {k: v for k, v in a["summary"].items() if k in keys} for arm, a in report["arms"].items()}
    print(json.dumps({"arms": rows, "choice": report.get("renderer_choice"), "targets": report.get("targets")},
                     indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
