"""Command line: ``cellsynth <command> ...``. Thin: parse, call the library, print.

Each command lives in its own module ``cellsynth.cli.<name>`` exposing
``add_parser(subparsers)`` (which registers the sub-parser and sets
``func=run``) and ``run(args) -> int``. Library errors that name a bad input
(:class:`~cellsynth.config.ConfigError`, :class:`~cellsynth.io.InputError`)
print one line and exit 2.

Exit codes: 0 done; 1 an unexpected failure (a bug: Python traceback); 2 a bad
input, configuration or command line (one line on stderr, nothing written);
130 interrupted (rerun the same command to resume).

Global options (before or after the command): ``--quiet`` (errors only: no
progress bars, no summary lines), ``-v``/``--verbose`` (info; twice: debug) and
``--log-level LEVEL``; library modules log through :mod:`logging` to stderr.
"""
from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import os
import sys

from ..errors import ConfigError, InputError

COMMANDS = ["simulate", "generate", "train", "segment", "evaluate", "fit", "adapt", "benchmark", "export", "demo"]


def build_parser() -> argparse.ArgumentParser:
    from .. import __version__
    p = argparse.ArgumentParser(prog="cellsynth",
                                description="Fully-annotated synthetic microscopy data for segmentation.")
    p.add_argument("--version", action="version", version=f"cellsynth {__version__}")
    _add_global_options(p, default=None)
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:  # every listed command exists: a missing module is an error, not a skip
        importlib.import_module(f"{__name__}.{name}").add_parser(sub)
        # also accepted after the command; SUPPRESS keeps a sub-parser from resetting a value given before it
        _add_global_options(sub.choices[name], default=argparse.SUPPRESS)
    return p


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


def _add_global_options(p: argparse.ArgumentParser, default) -> None:
    g = p.add_argument_group("output")
    options = [(("-q", "--quiet"), dict(action="store_true", help="errors only: no progress bars, summary lines "
                                                                  "or log messages")),
               (("-v", "--verbose"), dict(action="count", help="log progress details (-v: info, -vv: debug)")),
               (("--log-level",), dict(choices=LOG_LEVELS, type=str.upper,
                                       help="log level (default WARNING; overrides -v/-q for logging)"))]
    for flags, kw in options:
        # a command's own option of the same spelling wins there (the global one still works before it)
        flags = tuple(f for f in flags if f not in p._option_string_actions)
        if any(f.startswith("--") for f in flags):
            g.add_argument(*flags, default=default, **kw)


def log_level(args: argparse.Namespace) -> int:
    """The logging level the global options ask for."""
    if args.log_level:
        return getattr(logging, args.log_level)
    if args.quiet:
        return logging.ERROR
    return {0: logging.WARNING, 1: logging.INFO}.get(args.verbose or 0, logging.DEBUG)


def _configure_output(args: argparse.Namespace) -> None:
    root = logging.getLogger()
    for h in list(root.handlers):
        if getattr(h, "_cellsynth", False):
            root.removeHandler(h)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    handler._cellsynth = True  # so repeated main() calls (tests) do not stack handlers
    root.addHandler(handler)
    logging.getLogger("cellsynth").setLevel(log_level(args))
    if args.quiet:
        os.environ["TQDM_DISABLE"] = "1"  # bars built without an explicit `disable` (and in workers)
        if hasattr(args, "no_progress"):
            args.no_progress = True


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    _configure_output(args)
    try:
        with contextlib.ExitStack() as stack:
            if args.quiet:
                stack.enter_context(contextlib.redirect_stdout(stack.enter_context(open(os.devnull, "w"))))
            return int(args.func(args) or 0)
    except (ConfigError, InputError) as e:
        print(f"cellsynth {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"cellsynth {args.command}: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
