"""The two error kinds every user-facing failure is reported as.

Both carry a one-line message naming the input (file, folder, config key) and
what is wrong; the command line prints it and exits with status 2.
"""
from __future__ import annotations


class InputError(ValueError):
    """A bad input file, folder or array, with a one-line message naming it."""


class ConfigError(ValueError):
    """A bad configuration value, with a one-line message naming the key."""
