"""cellsynth simulate: write annotation scenes (masks + specimen foreground), no images."""
from __future__ import annotations

import argparse

from ..errors import ConfigError
from ._common import add_config_args, config_from_args, print_presets


def add_parser(sub) -> None:
    p = sub.add_parser("simulate", help="simulate annotation scenes (instance masks) from a preset",
                       description="Simulate scenes: specimen foreground, object positions and instance "
                                   "labels (2D or 3D). Writes OUT/masks/*.tif, OUT/foreground/*.tif and "
                                   "OUT/manifest.json.")
    add_config_args(p)
    p.add_argument("--list-presets", action="store_true", help="list the presets and exit")
    p.add_argument("--n", type=int, default=1, help="number of scenes (default 1)")
    p.add_argument("--seed", type=int, default=0, help="dataset seed; scene i depends on (seed, i) only")
    p.add_argument("--out", help="output folder")
    p.add_argument("--workers", type=int, default=1, help="parallel processes")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.list_presets:
        print_presets()
        return 0
    if not args.preset and not args.config:
        raise ConfigError("give --preset P (or --config FILE); see --list-presets")
    if not args.out:
        raise ConfigError("--out DIR is required")
    from ..dataset import generate_dataset
    cfg = config_from_args(args)
    out = generate_dataset(cfg, None, args.n, args.seed, args.out, workers=args.workers,
                           progress=not args.no_progress)
    print(f"wrote {args.n} scene(s) of preset '{cfg.name}' to {out}/masks (labels), {out}/foreground, "
          f"{out}/manifest.json")
    return 0
