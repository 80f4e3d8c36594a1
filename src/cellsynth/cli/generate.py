"""cellsynth generate: render a dataset (images + masks + manifest)."""
from __future__ import annotations

import argparse

from ..errors import ConfigError
from ._common import add_config_args, config_from_args


def add_parser(sub) -> None:
    p = sub.add_parser("generate", help="generate an image/mask dataset (simulated or from your masks)",
                       description="Simulate scenes from a preset (or take instance masks from --labels) "
                                   "and render them. Writes OUT/images/*.tif, OUT/masks/*.tif and "
                                   "OUT/manifest.json. Rerunning the same command resumes.")
    add_config_args(p)
    p.add_argument("--labels", metavar="DIR",
                   help="render these instance masks instead of simulated scenes (names kept, masks copied)")
    p.add_argument("--renderer", choices=["physics", "sketch", "diffusion"],
                   help="renderer (default: the preset's)")
    p.add_argument("--model", metavar="MODEL", help="diffusion model folder (default: the shipped model)")
    p.add_argument("--n", type=int, default=None, help="number of samples (default 10; with --labels: all)")
    p.add_argument("--seed", type=int, default=0, help="dataset seed; sample i depends on (seed, i) only")
    p.add_argument("--out", required=True, metavar="DATASET", help="output folder")
    p.add_argument("--workers", type=int, default=1, help="parallel processes (output identical to serial)")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if not args.preset and not args.config and not args.labels:
        raise ConfigError("give --preset P, --config FILE or --labels DIR")
    if args.model:
        args.overrides = list(args.overrides) + [f"render.diffusion.model={args.model}"]
    cfg = config_from_args(args, default_preset="nuclei2d-dsb" if args.labels else None)
    renderer = args.renderer or cfg.renderer
    n = args.n if (args.n is not None or args.labels) else 10
    from ..dataset import generate_dataset, load_manifest
    out = generate_dataset(cfg, renderer, n, args.seed, args.out, workers=args.workers,
                           labels_dir=args.labels, progress=not args.no_progress)
    m = load_manifest(out)
    print(f"wrote {m['n']} sample(s) ({renderer} renderer, preset '{cfg.name}') to {out}/images and "
          f"{out}/masks; manifest {out}/manifest.json")
    return 0
