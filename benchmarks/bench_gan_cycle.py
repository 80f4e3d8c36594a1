"""Distance-weighted vs plain cycle loss (Eschweiler et al. 2019 eq. 1) in a 2D membrane CycleGAN.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_gan_cycle.py [--steps 300] [--json F]

Data: z-slices of ``membrane3d-plant/all/plant_patch`` (64×200×200): the images of slices 0–47 (every
2nd) are the image domain, the masks of the same slices the mask domain (drawn unpaired); the masks of
slices 52–63 (every 2nd) are rendered for scoring. Two CycleGANs with identical settings and seed differ
only in ``cycle_weighting``. Agreement of the generated image with the input membranes: ZNCC between the
image and the boundary map blurred by σ = 1, and boundary F1 (2 px tolerance, ``metrics.segmentation``)
between the mask's boundaries and the image's brightest pixels (as many as there are boundary pixels).
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from scipy import ndimage as ndi

from benchutil import emit
from cellsynth.generative.cyclegan import CycleGANTrainConfig, train_cyclegan
from cellsynth.generative.translate import load_translator, render_labels
from cellsynth.io import read_image, read_labels, write_tiff
from cellsynth.metrics.image import zncc
from cellsynth.metrics.segmentation import boundary_f1
from cellsynth.simulate.encode import boundaries

DATA = Path("/work/shared/data/membrane3d-plant/all")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    img = read_image(DATA / "images" / "plant_patch.tif")
    lab = read_labels(DATA / "masks" / "plant_patch.tif")
    tmp = Path(tempfile.mkdtemp())
    for z in range(0, 48, 2):
        write_tiff(tmp / "images" / f"z{z:02d}.tif", img[z])
        write_tiff(tmp / "masks" / f"z{z:02d}.tif", lab[z])
    test = [lab[z] for z in range(52, 64, 2)]
    res = {}
    for weighting in ("distance", "plain"):
        cfg = CycleGANTrainConfig(channels=8, n_blocks=3, d_channels=16, patch_size=[64, 64], batch_size=2,
                                  steps=args.steps, checkpoint_every=10_000, threads=1, seed=0,
                                  cycle_weighting=weighting)
        t = time.perf_counter()
        out = train_cyclegan(tmp / "images", tmp / f"m_{weighting}", cfg, masks=tmp / "masks", progress=False,
                             device="cpu")
        model = load_translator(out)
        z, f1 = [], []
        for m in test:
            b = boundaries(m)
            g = render_labels(model, m)
            z.append(zncc(ndi.gaussian_filter(b.astype(np.float32), 1.0), g))
            ridge = g >= np.quantile(g, 1 - b.mean())
            f1.append(boundary_f1(b, ridge, tolerance=2.0, boundaries=True)["f1"])
        res[weighting] = {"zncc_vs_boundaries": round(float(np.mean(z)), 4),
                          "boundary_f1_2px": round(float(np.mean(f1)), 4),
                          "train_s": round(time.perf_counter() - t, 1), "steps": args.steps}
    return emit(res, args.json)


if __name__ == "__main__":
    sys.exit(main())
