"""Export a cellsynth dataset into the layouts other tools load with zero glue.

One module per format — :mod:`.cellpose`, :mod:`.stardist`, :mod:`.nnunet`, :mod:`.ctc`,
:mod:`.omezarr` — each with ``OPTIONS`` (its option defaults), ``root(out, opts)`` (the
folder the export owns), ``check(samples, split, opts)`` (refuses what the format cannot
hold, before anything is written) and ``write(samples, root, split, opts, bar)``.
:func:`export_dataset` runs them with the shared validation, split, resume and
atomic-write policy of :mod:`.common`.
"""
from __future__ import annotations

import importlib
import logging
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from .common import clean_partials, close_output, open_output, progress, read_dataset, source_description, split_names

log = logging.getLogger(__name__)

FORMATS = ("cellpose", "stardist", "nnunet", "ctc", "omezarr")


def format_module(fmt: str):
    if fmt not in FORMATS:
        raise ConfigError(f"--format must be one of {', '.join(FORMATS)}, got '{fmt}'")
    return importlib.import_module(f"{__name__}.{fmt}")


def resolve_options(fmt: str, options: dict[str, Any] | None = None) -> dict[str, Any]:
    """The format's option defaults updated with ``options``; a key the format lacks is a ConfigError."""
    opts = dict(format_module(fmt).OPTIONS)
    for k, v in (options or {}).items():
        if k not in opts:
            raise ConfigError(f"option '{k}' does not apply to --format {fmt} "
                              f"(its options: {', '.join(opts) or 'none'})")
        if v is not None:
            opts[k] = v
    return opts


def export_dataset(source: str | Path, fmt: str, out: str | Path, test_fraction: float = 0.0,
                   split_seed: int = 0, progress_bar: bool = True,
                   options: dict[str, Any] | None = None) -> dict[str, Any]:
    """Export the dataset folder ``source`` to ``out`` in format ``fmt``; resume an interrupted export.

    Parameters
    ----------
    source : dataset folder (``images/``, ``masks/``, optional ``manifest.json``).
    fmt : one of :data:`FORMATS`.
    out : output folder (for ``nnunet`` the nnU-Net raw folder that receives ``DatasetNNN_Name``).
    test_fraction : share of samples put in the test split (seeded by ``split_seed``).
    options : format options; keys not in the format's ``OPTIONS`` are refused.

    Returns
    -------
    dict : summary (where the export is, counts, format-specific reports), also stored in
    the export's ``.cellsynth-export.json``.

    Examples
    --------
    >>> import tempfile, numpy as np
    >>> from cellsynth.io import write_tiff
    >>> d = tempfile.mkdtemp()
    >>> lab = np.zeros((16, 16), np.uint16); lab[4:9, 4:9] = 1
    >>> _ = write_tiff(f"{d}/ds/images/a.tif", lab.astype(np.uint8) * 200)
    >>> _ = write_tiff(f"{d}/ds/masks/a.tif", lab)
    >>> s = export_dataset(f"{d}/ds", "cellpose", f"{d}/cp", progress_bar=False)
    >>> sorted(p.name for p in (Path(d) / "cp" / "train").iterdir())
    ['a.tif', 'a_masks.tif']
    """
    mod = format_module(fmt)
    opts = resolve_options(fmt, options)
    if test_fraction and not getattr(mod, "SPLIT", True):
        raise ConfigError(f"--format {fmt} has no train/test split; leave --test-fraction at 0")
    source, out = Path(source), Path(out)
    samples = read_dataset(source)  # every input validated before any output
    split = split_names([s.name for s in samples], test_fraction, split_seed)
    mod.check(samples, split, opts)
    root = mod.root(out, opts, source)
    settings = {"format": fmt, "options": opts, "test_fraction": test_fraction, "split_seed": split_seed,
                "source": source_description(source, samples)}
    resumed = open_output(root, settings)
    if resumed:
        log.info("resuming the export in %s", root)
        clean_partials(root)
    bar = progress(None, total=len(samples), desc=f"export {fmt}", enabled=progress_bar)
    try:
        summary = mod.write(samples, root, split, opts, bar)
    finally:
        bar.close()
    summary = {"format": fmt, "out": str(root), "n_train": sum(v == "train" for v in split.values()),
               "n_test": sum(v == "test" for v in split.values()), **summary}
    close_output(root, settings, summary)
    log.info("exported %d sample(s) to %s (%s)", len(samples), root, fmt)
    return summary
