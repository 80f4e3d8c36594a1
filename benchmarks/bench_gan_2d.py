"""2D realism of images rendered from REAL held-back masks: cGAN and CycleGAN (short CPU training) beside
the physics renderer and, on DSB, the shipped diffusion model — NRMSE, SSIM, ZNCC vs the real images
(Eschweiler et al. 2021 Table 1's metrics).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_gan_2d.py --set dsb --steps 300 [--json F]

Sets:
- ``dsb``: ``nuclei2d-dsb2018``; GANs trained on the first ``--n-train`` train images and their masks
  (drawn unpaired; centre crops of 256², crops without nuclei skipped); scored on the first ``--n-test``
  val images (centre crops of 256² holding nuclei), rendered from their masks. Physics / diffusion:
  the ``nuclei2d-dsb`` preset's settings.
- ``plant``: z-slices of ``membrane3d-plant/all/plant_patch`` (Eschweiler et al. 2019's setting):
  training slices 0–47 (every 2nd), scored slices 52–63 (every 2nd); physics: the
  ``membrane2d-arabidopsis`` preset's settings with walls of the mask's instances.

Every output and real image is percentile-normalised (1, 99.8 → [0, 1], clipped) before scoring;
values are means over the scored images. Mask encoding of both GANs: cell walls (``boundaries``) for
plant, filled objects (``foreground``) for DSB. GANs: cGAN U-Net 8/16/32 (BatchNorm, pixel shuffle),
CycleGAN ResNet 8 channels / 3 blocks, PatchGAN 8 channels, 128² patches × 2, one CPU thread.
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
from cellsynth.config import load_config
from cellsynth.generative.cgan import CGANTrainConfig, train_cgan
from cellsynth.generative.cyclegan import CycleGANTrainConfig, train_cyclegan
from cellsynth.generative.translate import load_translator, render_labels
from cellsynth.intensity import normalize_percentile
from cellsynth.io import read_image, read_labels, write_tiff
from cellsynth.metrics.image import checkerboard_index, nrmse, ssim, zncc
from cellsynth.render import make_renderer
from cellsynth.scene import Scene
from cellsynth.simulate.encode import boundaries

SHARED = Path("/work/shared/data")


def _crop(a: np.ndarray, size: int) -> np.ndarray:
    return a[tuple(slice(max(0, (s - size) // 2), max(0, (s - size) // 2) + min(s, size)) for s in a.shape)]


def _unit(a: np.ndarray) -> np.ndarray:
    return normalize_percentile(a, 1.0, 99.8, clip=True)


def prepare(which: str, root: Path, n_train: int, n_test: int, crop: int):
    """Write the training folders; return (test pairs [(name, image, labels)], preset, spacing)."""
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir(parents=True)
    if which == "dsb":
        d = SHARED / "nuclei2d-dsb2018"
        n = 0
        for f in sorted((d / "train" / "images").glob("*.tif")):
            lab = _crop(read_labels(d / "train" / "masks" / f.name), crop)
            if n == n_train or not lab.any():  # a crop without nuclei is not a training mask
                continue
            write_tiff(root / "images" / f.name, _crop(read_image(f), crop))
            write_tiff(root / "masks" / f.name, lab)
            n += 1
        test = [(f.stem, _crop(read_image(f), crop), _crop(read_labels(d / "val" / "masks" / f.name), crop))
                for f in sorted((d / "val" / "images").glob("*.tif"))]
        return [t for t in test if t[2].any()][:n_test], "nuclei2d-dsb", (0.5, 0.5)
    img = read_image(SHARED / "membrane3d-plant/all/images/plant_patch.tif")
    lab = read_labels(SHARED / "membrane3d-plant/all/masks/plant_patch.tif")
    for z in range(0, 48, 2):
        write_tiff(root / "images" / f"z{z:02d}.tif", img[z])
        write_tiff(root / "masks" / f"z{z:02d}.tif", lab[z])
    test = [(f"z{z:02d}", img[z], lab[z]) for z in range(52, 64, 2)]
    return test[:n_test], "membrane2d-arabidopsis", (0.25, 0.25)


def scene_of(labels: np.ndarray, spacing, kind: str) -> Scene:
    from skimage.segmentation import relabel_sequential
    lab = relabel_sequential(labels.astype(np.int64))[0].astype(np.uint16)
    return Scene(labels=lab, foreground=np.ones(lab.shape, bool), spacing=spacing,
                 classes={i: kind for i in range(1, int(lab.max()) + 1)})


def scores(real: np.ndarray, fake: np.ndarray) -> dict:
    r, f = _unit(real), _unit(fake)
    return {"nrmse": nrmse(r, f), "ssim": ssim(r, f, data_range=1.0), "zncc": zncc(r, f),
            "checkerboard": checkerboard_index(f)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--set", choices=["dsb", "plant"], default="dsb")
    p.add_argument("--steps", type=int, default=300, help="training steps of each GAN")
    p.add_argument("--n-train", type=int, default=40)
    p.add_argument("--n-test", type=int, default=10)
    p.add_argument("--crop", type=int, default=256)
    p.add_argument("--skip", nargs="*", default=[], choices=["cgan", "cyclegan", "physics", "diffusion"])
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    root = Path(tempfile.mkdtemp())
    test, preset, spacing = prepare(args.set, root / "train", args.n_train, args.n_test, args.crop)
    kind = "nucleus" if args.set == "dsb" else "cell"
    cfg = load_config(preset)
    res = {"set": args.set, "steps": args.steps, "n_test": len(test), "rows": {}, "train_wall_s": {},
           "train_cpu_s": {}}
    renderers = {}
    common = dict(patch_size=[128, 128], batch_size=2, steps=args.steps, checkpoint_every=10_000, threads=1,
                  seed=0, d_channels=8)
    # membranes: the generators see the cell walls (Eschweiler et al. 2019); nuclei: the filled objects
    enc = "boundaries" if args.set == "plant" else "foreground"
    if "cgan" not in args.skip:
        t, c = time.perf_counter(), time.process_time()
        out = train_cgan(root / "train/images", root / "cgan",
                         CGANTrainConfig(channels=[8, 16, 32], mask_encoding=enc, **common),
                         masks=root / "train/masks", progress=False, device="cpu")
        res["train_wall_s"]["cgan"] = round(time.perf_counter() - t, 1)
        res["train_cpu_s"]["cgan"] = round(time.process_time() - c, 1)
        m = load_translator(out)
        renderers["cGAN"] = lambda sc, rng, m=m: render_labels(m, sc.labels)
    if "cyclegan" not in args.skip:
        t, c = time.perf_counter(), time.process_time()
        out = train_cyclegan(root / "train/images", root / "cyclegan",
                             CycleGANTrainConfig(channels=8, n_blocks=3, mask_encoding=enc, **common),
                             masks=root / "train/masks", progress=False, device="cpu")
        res["train_wall_s"]["cyclegan"] = round(time.perf_counter() - t, 1)
        res["train_cpu_s"]["cyclegan"] = round(time.process_time() - c, 1)
        m2 = load_translator(out)
        renderers["CycleGAN"] = lambda sc, rng, m=m2: render_labels(m, sc.labels)
    if "physics" not in args.skip:
        renderers[f"physics ({preset} settings)"] = make_renderer("physics", cfg.render).render
    if args.set == "dsb" and "diffusion" not in args.skip:
        renderers["diffusion (shipped nuclei2d-dsb)"] = make_renderer("diffusion", cfg.render).render
    if args.set == "plant":
        renderers["the boundary mask itself"] = lambda sc, rng: boundaries(sc.labels).astype(np.float32)
    else:
        renderers["the binary mask itself"] = lambda sc, rng: (sc.labels > 0).astype(np.float32)
    for name, render in renderers.items():
        rows, t = [], time.perf_counter()
        for i, (_, img, lab) in enumerate(test):
            rows.append(scores(img, render(scene_of(lab, spacing, kind), np.random.default_rng(i))))
        res["rows"][name] = {k: round(float(np.mean([r[k] for r in rows])), 4) for k in rows[0]}
        res["rows"][name]["render_wall_s"] = round(time.perf_counter() - t, 1)
    res["rows"]["real images"] = {"checkerboard": round(float(np.mean([checkerboard_index(_unit(i))
                                                                         for _, i, _ in test])), 4)}
    return emit(res, args.json)


if __name__ == "__main__":
    sys.exit(main())
