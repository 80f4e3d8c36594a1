"""Arguments shared by several commands."""
from __future__ import annotations

import argparse

from ..config import Config, list_presets, load_config


def add_config_args(p: argparse.ArgumentParser, preset_required: bool = False) -> None:
    p.add_argument("--preset", required=preset_required, metavar="P",
                   help="preset name (see `cellsynth simulate --list-presets`)")
    p.add_argument("--config", metavar="FILE", help="YAML file overriding the preset")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override one key, e.g. --set scene.nuclei.radius=[8,12] (repeatable)")


def config_from_args(args: argparse.Namespace, default_preset: str | None = None) -> Config:
    return load_config(args.preset or default_preset, args.config, args.overrides)


def print_presets() -> None:
    presets = list_presets()
    w = max(len(k) for k in presets)
    for name, desc in presets.items():
        print(f"{name:<{w}}  {desc}")


def add_training_args(p: argparse.ArgumentParser, resume_help: str = "continue from the last checkpoint in --out"
                      ) -> None:
    """--steps, --device, --threads, --resume, --no-progress: the options every `train` command shares."""
    p.add_argument("--steps", type=int, help="total training steps (overrides the config's steps: "
                   "diffusion and stylegan 3000, cgan and cyclegan 2000)")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto",
                   help="auto = CUDA (mixed precision) when available, else CPU")
    p.add_argument("--threads", type=int, help="CPU threads for torch (default: torch's choice)")
    p.add_argument("--resume", action="store_true", help=resume_help)
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")


def training_config(model: type, args: argparse.Namespace):
    """The training settings of a `train` command: --config YAML, --threads, validated; --steps checked."""
    from ..config import load_yaml, validate
    from ..errors import ConfigError
    data = load_yaml(args.config) if args.config else {}
    if args.threads is not None:
        data["threads"] = args.threads
    cfg = validate(model, data, prefix="")
    if args.steps is not None and args.steps < 1:
        raise ConfigError(f"--steps {args.steps}: must be >= 1")
    return cfg
