"""Command line: ``cellsynth <command> ...``. Thin: parse, call the library, print.

Each command lives in its own module ``cellsynth.cli.<name>`` exposing
``add_parser(subparsers)`` (which registers the sub-parser and sets
``func=run``) and ``run(args) -> int``. Library errors that name a bad input
(:class:`~cellsynth.config.ConfigError`, :class:`~cellsynth.io.InputError`)
print one line and exit 2.
"""
from __future__ import annotations

import argparse
import importlib
import sys

from ..errors import ConfigError, InputError

COMMANDS = ["simulate", "generate", "train", "segment", "evaluate", "fit", "benchmark", "export", "demo"]


def build_parser() -> argparse.ArgumentParser:
    from .. import __version__
    p = argparse.ArgumentParser(prog="cellsynth",
                                description="Fully-annotated synthetic microscopy data for segmentation.")
    p.add_argument("--version", action="version", version=f"cellsynth {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:  # every listed command exists: a missing module is an error, not a skip
        importlib.import_module(f"{__name__}.{name}").add_parser(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except (ConfigError, InputError) as e:
        print(f"cellsynth {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"cellsynth {args.command}: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
