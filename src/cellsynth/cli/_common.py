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
