"""Self-supervised CycleGAN segmenter (Rosa et al.) vs a supervised U-Net vs classical, on 3D nuclei.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_selfsupervised.py --steps 300 --json F

Data: ``nuclei3d-gonuclear/all``. Training side: volumes ``arabidopsis_1135`` and
``arabidopsis_plantseg`` (the shipped cGAN's training volumes; 1137/1139/1170 are left out, their
images do not correlate with their masks). Scored: the held-back ``arabidopsis_1136`` (100³).

- self-supervised: ``segment train --method cyclegan`` on the training IMAGES only and scenes of
  the ``nuclei3d-celegans`` preset with the overrides below (64³ isotropic scenes, nuclei of
  radius 9-12 px as seen in the images — a prior on the nucleus size, not an annotation);
- supervised: ``segment train --method unet`` on the same volumes' annotations (or ``--unet-model``: one
  trained so already, e.g. the Real2Real arm of ``bench_syn2real_3d.py``);
- classical: Otsu + distance watershed (scale-adaptive), no training.

Scores on 1136: pixel-wise Dice, precision and recall of the nucleus class (Rosa et al.'s
metrics, ``metrics.segmentation.class_scores``) and instance AP@0.5 / precision / recall at IoU 0.5
(``metrics.compare.score_segmentation``). Sized for a shared 2-core CPU: 32³ patches, a few
hundred steps per model (``--steps``), one thread.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from benchutil import emit
from cellsynth.io import read_image, read_labels
from cellsynth.metrics.compare import score_segmentation
from cellsynth.metrics.segmentation import class_scores
from cellsynth.segment.predict import segmenter_function
from cellsynth.segment.selfsupervised import train_cyclegan_segmenter
from cellsynth.segment.unet import SegmenterConfig, train_segmenter

DATA = Path("/work/shared/data/nuclei3d-gonuclear/all")
TRAIN = ("arabidopsis_1135.tif", "arabidopsis_plantseg.tif")
TEST = "arabidopsis_1136.tif"
PRESET = "nuclei3d-celegans"
SCENE = ["scene.shape=[64,64,64]", "scene.spacing=[1.0,1.0,1.0]", "scene.foreground.method=full",
         "scene.nuclei.radius=[9.0,12.0]", "scene.nuclei.axis_scale=[[0.8,1.0],[0.9,1.1],[0.9,1.1]]",
         "scene.nuclei.mitotic_fraction=0.0", "scene.placement.n_points=[8,16]",
         "scene.placement.min_distance=18.0"]


def _link_training(root: Path) -> Path:
    for sub in ("images", "masks"):
        (root / sub).mkdir(parents=True)
        for name in TRAIN:
            (root / sub / name).symlink_to(DATA / sub / name)
    return root


def _scores(gt: np.ndarray, pred: np.ndarray) -> dict:
    px = class_scores((gt > 0).astype(np.uint8), (pred > 0).astype(np.uint8), classes=[1])[1]
    inst = score_segmentation(gt, pred)
    return {"dice": round(px["dice"], 4), "precision": round(px["precision"], 4), "recall": round(px["recall"], 4),
            "ap50": round(inst["ap50"], 4), "precision50": round(inst["precision50"], 4),
            "recall50": round(inst["recall50"], 4), "n_pred": inst["n_pred"], "n_true": inst["n_true"]}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=300, help="training steps of each model")
    p.add_argument("--patch", type=int, default=32, help="cubic training patch edge (px)")
    p.add_argument("--json", type=Path)
    p.add_argument("--work", type=Path, help="folder for the models (default: a temporary one)")
    p.add_argument("--unet-model", type=Path, help="a supervised segmenter already trained on the same volumes' "
                   "annotations (e.g. the Real2Real arm of bench_syn2real_3d.py) instead of training one here")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    work = args.work or Path(tempfile.mkdtemp())
    data = _link_training(work / "train")
    patch = [args.patch] * 3
    res = {"steps": args.steps, "patch": patch, "scene_overrides": SCENE, "models": {}}

    t = time.perf_counter()
    ss = train_cyclegan_segmenter(
        data / "images", PRESET, work / "cyclegan",
        config={"channels": 8, "n_blocks": 3, "d_channels": 8, "patch_size": patch, "batch_size": 2,
                "n_scenes": 8, "scene_overrides": SCENE, "checkpoint_every": 10_000, "threads": 1},
        steps=args.steps, device="cpu", progress=False)
    res["models"]["self-supervised CycleGAN"] = {"train_wall_s": round(time.perf_counter() - t, 1)}

    unet = args.unet_model
    if unet is None:
        t = time.perf_counter()
        cfg = SegmenterConfig(channels=[8, 16, 32], patch=patch, batch_size=2, steps=args.steps)
        unet = work / "unet"
        train_segmenter([data], unet, cfg, device="cpu", progress=False)
        res["models"]["supervised U-Net"] = {"train_wall_s": round(time.perf_counter() - t, 1)}
    res["models"].setdefault("supervised U-Net", {})["model"] = str(unet)

    image, gt = read_image(DATA / "images" / TEST), read_labels(DATA / "masks" / TEST)
    for name, model in (("self-supervised CycleGAN", ss), ("supervised U-Net", unet),
                        ("classical", "classical")):
        seg, _ = segmenter_function(model, device="cpu")
        out = seg(image)
        labels = out[0] if isinstance(out, tuple) else out
        res["models"].setdefault(name, {}).update(_scores(gt, np.asarray(labels)))
    return emit(res, args.json)


if __name__ == "__main__":
    sys.exit(main())
