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
    p.add_argument("--renderer", choices=["physics", "sketch", "diffusion", "cgan", "cyclegan", "stylegan"],
                   help="renderer (default: the preset's); stylegan draws image and mask together "
                        "from --model (no preset, no --labels)")
    p.add_argument("--model", metavar="MODEL", help="model folder of a learned renderer (diffusion, cgan, cyclegan; "
                                          "default: the shipped model where one exists) or of stylegan")
    p.add_argument("--truncation", type=float, default=None, metavar="PSI",
                   help="stylegan: truncation psi (1 = none; smaller = more typical, less varied)")
    p.add_argument("--n", type=int, default=None, help="number of samples (default 10; with --labels: all)")
    p.add_argument("--seed", type=int, default=0, help="dataset seed; sample i depends on (seed, i) only")
    p.add_argument("--out", required=True, metavar="DATASET", help="output folder")
    p.add_argument("--workers", type=int, default=1, help="parallel processes (output identical to serial)")
    p.add_argument("--scheduler", metavar="ADDR",
                   help="run samples as tasks on a Dask cluster: local:N (N worker processes here) or "
                        "tcp://HOST:PORT (a running scheduler; needs cellsynth[dask]); output identical to serial")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    from ..export import FORMATS
    from .export import add_export_args
    g = p.add_argument_group("export after generating")
    g.add_argument("--export", action="append", default=[], choices=FORMATS, metavar="F",
                   help=f"also export the dataset as F ({', '.join(FORMATS)}) into OUT_F beside OUT "
                        f"(repeatable; see `cellsynth export --help` for the options below)")
    add_export_args(g)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.renderer == "stylegan":
        return _run_stylegan(args)
    if args.truncation is not None:
        raise ConfigError("--truncation applies to --renderer stylegan only")
    if not args.preset and not args.config and not args.labels:
        raise ConfigError("give --preset P, --config FILE or --labels DIR")
    cfg = config_from_args(args, default_preset="nuclei2d-dsb" if args.labels else None)
    renderer = args.renderer or cfg.renderer
    if args.model:
        if renderer not in ("diffusion", "cgan", "cyclegan"):
            raise ConfigError(f"--model applies to the diffusion, cgan and cyclegan renderers, not '{renderer}'")
        args.overrides = list(args.overrides) + [f"render.{renderer}.model={args.model}"]
        cfg = config_from_args(args, default_preset="nuclei2d-dsb" if args.labels else None)
    n = args.n if (args.n is not None or args.labels) else 10
    exports = _export_plan(args)  # options checked before anything is generated
    from ..dataset import generate_dataset, load_manifest
    out = generate_dataset(cfg, renderer, n, args.seed, args.out, workers=args.workers,
                           labels_dir=args.labels, progress=not args.no_progress,
                           scheduler=args.scheduler)
    m = load_manifest(out)
    print(f"wrote {m['n']} sample(s) ({renderer} renderer, preset '{cfg.name}') to {out}/images and "
          f"{out}/masks; manifest {out}/manifest.json")
    if args.export:
        from ..export import export_dataset
        from .export import summary_line
        for fmt, opts in exports.items():
            s = export_dataset(out, fmt, out.parent / f"{out.name}_{fmt}", test_fraction=args.test_fraction,
                               split_seed=args.split_seed, progress_bar=not args.no_progress, options=opts)
            print(summary_line(s))
    return 0


def _export_plan(args: argparse.Namespace) -> dict[str, dict]:
    """Per --export format, the given options that apply to it; an option no chosen format takes is refused."""
    from ..export import format_module, resolve_options
    from .export import export_options
    given = export_options(args)
    if not args.export:
        if given or args.test_fraction:
            raise ConfigError("export options were given without --export F")
        return {}
    plan = {fmt: {k: v for k, v in given.items() if k in format_module(fmt).OPTIONS} for fmt in args.export}
    unused = set(given) - {k for o in plan.values() for k in o}
    if unused:
        raise ConfigError(f"option '{sorted(unused)[0]}' applies to none of --export {' '.join(args.export)}")
    for fmt, opts in plan.items():
        resolve_options(fmt, opts)
        if args.test_fraction and not getattr(format_module(fmt), "SPLIT", True):
            raise ConfigError(f"--export {fmt} has no train/test split; leave --test-fraction at 0")
    return plan


def _run_stylegan(args: argparse.Namespace) -> int:
    """Image + mask pairs from a trained StyleGAN: no scene, so no preset, labels or config."""
    if not args.model:
        raise ConfigError("--renderer stylegan needs --model MODEL (a `cellsynth train stylegan` folder)")
    used = [o for o, v in (("--preset", args.preset), ("--config", args.config), ("--labels", args.labels),
                           ("--set", args.overrides), ("--export", args.export)) if v]
    if used:
        raise ConfigError(f"{used[0]} does not apply to --renderer stylegan (it draws its own masks)")
    if args.workers != 1 or args.scheduler:
        raise ConfigError("--renderer stylegan runs in one process; leave out --workers and --scheduler")
    from ..dataset import generate_stylegan_dataset, load_manifest
    psi = 1.0 if args.truncation is None else args.truncation
    out = generate_stylegan_dataset(args.model, 10 if args.n is None else args.n, args.seed, args.out,
                                    truncation=psi, progress=not args.no_progress)
    m = load_manifest(out)
    print(f"wrote {m['n']} image/mask pair(s) (stylegan '{args.model}', truncation {psi}) to {out}/images "
          f"and {out}/masks; manifest {out}/manifest.json")
    return 0
