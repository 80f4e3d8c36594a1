"""``cellsynth train stylegan``: the image + mask StyleGAN2 of Lesmes-Leon et al. 2025."""
from __future__ import annotations

import argparse
from pathlib import Path

from ._common import add_training_args, training_config

HELP = """\
Train a StyleGAN2 that draws an image and its instance mask together (Lesmes-Leon et al.
2025): random crops of --images and their --masks (paired by file name, 2D), each mask
encoded as a grayscale overlap mask (few gray labels, shuffled per crop). Non-saturating
loss, lazy R1, optional path length, EMA generator; augmentations in the config:
diffaugment: [color, translation, cutout], ada: true, apa: true. The model folder gets
config.json + weights.safetensors and checkpoint/ for --resume. Sample with
`cellsynth generate --renderer stylegan --model MODEL --n N [--truncation PSI]`."""

CONFIG_HELP = """YAML/JSON training settings: resolution (64), batch_size, steps, lr, channel_base, channel_max,
z_dim, w_dim, mapping_layers, r1_gamma, r1_interval, pl_weight, diffaugment, ada, apa, ada_target, max_labels,
drop_covered, percentiles, ema, seed, threads, checkpoint_every (see generative/stylegan.py)"""


def add_parser(kinds) -> None:
    g = kinds.add_parser("stylegan", help="StyleGAN2 drawing image + instance mask together (Lesmes-Leon et al. 2025)",
                         description=HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    g.add_argument("--images", required=True, type=Path, help="folder of real 2D images (TIFF)")
    g.add_argument("--masks", required=True, type=Path, help="folder of their instance masks (same file names)")
    g.add_argument("--classes", type=Path, help="JSON {image: class} or CSV 'image,class' for class conditioning")
    g.add_argument("--out", required=True, type=Path, help="model folder to write")
    g.add_argument("--config", type=Path, help=CONFIG_HELP)
    add_training_args(g)
    g.set_defaults(func=run)


def run(args) -> int:
    from ..generative.stylegan import StyleGANTrainConfig, train_stylegan

    cfg = training_config(StyleGANTrainConfig, args)
    out = train_stylegan(args.images, args.masks, args.out, cfg, classes=args.classes, steps=args.steps,
                         device=args.device, resume=args.resume, progress=args.progress)
    print(f"model written to {out}")
    return 0
