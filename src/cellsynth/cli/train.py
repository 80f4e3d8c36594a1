"""``cellsynth train diffusion ...``: train a generative model on unannotated real images."""
from __future__ import annotations

import argparse
from pathlib import Path

from ._common import add_training_args, training_config

DIFFUSION_HELP = """\
Train a denoising diffusion model (DDPM, Eschweiler et al. 2024) on real images only (no masks).
The images (a folder of single-channel TIFFs, all 2D or all 3D) are cut into random
patches, percentile-normalised to [-1, 1] and augmented by flips/rot90 in YX. The model
directory gets config.json + weights.safetensors (EMA weights), updated at every
checkpoint, and checkpoint/ for --resume. Use the model with
`cellsynth generate --renderer diffusion --model MODEL`.
"""

CONFIG_HELP = """YAML/JSON file with training settings: channels (e.g. [32, 64, 128]), blocks_per_level,
strides (per level, e.g. [[1,2,2],[2,2,2]] for anisotropic 3D), patch_size ((Z)YX), batch_size, lr, ema,
steps, checkpoint_every, grad_clip, percentiles, T, seed, threads, amp"""


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("train", help="train a generative model on real images",
                              description="Train a generative model on real images.")
    kinds = p.add_subparsers(dest="kind", metavar="KIND")
    d = kinds.add_parser("diffusion", help="DDPM on unannotated images (for SDEdit from sketches)",
                         description=DIFFUSION_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    d.add_argument("--images", required=True, type=Path, help="folder of training images (TIFF, 2D or 3D)")
    d.add_argument("--out", required=True, type=Path, help="model directory to write")
    d.add_argument("--config", type=Path, help=CONFIG_HELP)
    add_training_args(d, resume_help="continue from the last checkpoint in --out (its saved settings are used; "
                                     "--steps sets the new total)")
    d.set_defaults(func=run)
    _add_gan_parsers(kinds)
    from . import train_stylegan
    train_stylegan.add_parser(kinds)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def run(args) -> int:
    from ..generative.diffusion import DiffusionTrainConfig, train_diffusion

    cfg = training_config(DiffusionTrainConfig, args)
    out = train_diffusion(args.images, args.out, cfg, steps=args.steps, device=args.device,
                          resume=args.resume, progress=args.progress)
    print(f"model written to {out}")
    return 0


GAN_HELP = {
    "cyclegan": """Train a mask<->image CycleGAN (Eschweiler et al. 2019): ResNet generators, PatchGAN, LSGAN,
cycle L1 (lambda = 10) with the mask cycle weighted by the boundaries' distance map, identity L1.
Unpaired: --images are real images (no annotation), the mask domain is --masks (instance masks)
or scenes simulated from --preset. Render with `cellsynth generate --renderer cyclegan --model MODEL`.""",
    "cgan": """Train the conditional GAN with positional conditioning (Eschweiler et al. 2021): U-Net generator
(pixel-shuffle upsampling), PatchGAN, adversarial + identity L1, RAdam, ADA; random patches
(64x128x128 ZYX by default in 3D). Render with `cellsynth generate --renderer cgan --model MODEL
[--set render.cgan.alpha=A]`.""",
}


def _add_gan_parsers(kinds) -> None:
    for kind in ("cyclegan", "cgan"):
        g = kinds.add_parser(kind, help=GAN_HELP[kind].split(":")[0].removeprefix("Train "),
                             description=GAN_HELP[kind], formatter_class=argparse.RawDescriptionHelpFormatter)
        g.add_argument("--images", required=True, type=Path, help="folder of real images (TIFF, 2D or 3D)")
        src = g.add_mutually_exclusive_group(required=True)
        src.add_argument("--masks", type=Path, help="folder of instance masks (the mask domain)")
        src.add_argument("--preset", help="simulate the mask domain from this preset")
        g.add_argument("--out", required=True, type=Path, help="model folder to write")
        g.add_argument("--config", type=Path, help="YAML/JSON training settings (see the module docs: "
                       f"cellsynth.generative.{kind})")
        add_training_args(g)
        g.set_defaults(func=run_gan, kind=kind)


def run_gan(args) -> int:
    if args.kind == "cgan":
        from ..generative.cgan import CGANTrainConfig as Cfg
        from ..generative.cgan import train_cgan as train
    else:
        from ..generative.cyclegan import CycleGANTrainConfig as Cfg
        from ..generative.cyclegan import train_cyclegan as train
    cfg = training_config(Cfg, args)
    out = train(args.images, args.out, cfg, masks=args.masks, preset=args.preset, steps=args.steps,
                device=args.device, resume=args.resume, progress=args.progress)
    print(f"model written to {out}")
    return 0
