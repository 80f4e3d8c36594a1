"""Cell Tracking Challenge layout (Maška et al. 2023): a sequence ``01`` of frames, one per sample.

``01/tNNN.tif`` images, ``01_GT/SEG/man_segNNN.tif`` instance masks and
``01_GT/TRA/man_trackNNN.tif`` + ``man_track.txt`` (lines ``L B E P``), all uint16. The
CTC evaluators read TRA even to score SEG, so every object is a one-frame track and
labels are unique across the sequence (frame k's objects are numbered after frame
k-1's). Test samples form a second sequence ``02``. Float images are mapped linearly
from the dataset's range onto 0..65535; ``01_frames.json`` maps frames to sample names.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import InputError
from ..io import write_json, write_text, write_tiff
from .common import Sample, to_uint16, write_missing

OPTIONS: dict = {}
SEQUENCES = {"train": "01", "test": "02"}


def root(out: Path, opts: dict, source: Path) -> Path:
    return out


def check(samples: list[Sample], split: dict, opts: dict) -> None:
    for part in SEQUENCES:
        n = sum(s.n_objects for s in samples if split[s.name] == part)
        if n > 65535:
            raise InputError(f"the {part} samples hold {n} objects; CTC's uint16 labels, unique across a "
                             f"sequence, hold at most 65535 (export fewer samples)")


def relabel(labels: np.ndarray, ids: np.ndarray, offset: int) -> np.ndarray:
    """Map ``ids`` (sorted, non-zero) to ``offset + 1 .. offset + len(ids)``; background stays 0."""
    lut = np.zeros(int(labels.max()) + 1 if labels.size else 1, np.uint16)
    lut[ids] = np.arange(offset + 1, offset + len(ids) + 1)
    return lut[labels]


def write(samples: list[Sample], root: Path, split: dict, opts: dict, bar) -> dict:
    lo = min((s.image_range[0] for s in samples), default=0.0)
    hi = max((s.image_range[1] for s in samples), default=0.0)
    out = {}
    for part, seq in SEQUENCES.items():
        seq_samples = [s for s in samples if split[s.name] == part]
        if not seq_samples:
            continue
        digits = max(3, len(str(len(seq_samples) - 1)))
        gt = root / f"{seq}_GT"
        track_lines, frames, offset = [], {}, 0
        for k, s in enumerate(seq_samples):
            t = f"{k:0{digits}d}"
            frames[f"t{t}"] = s.name
            lab = None

            def labels():
                nonlocal lab
                if lab is None:
                    lab = relabel(s.labels(), s.label_ids, offset)
                return lab
            write_missing(gt / "SEG" / f"man_seg{t}.tif", lambda p: write_tiff(p, labels(), s.spacing))
            write_missing(gt / "TRA" / f"man_track{t}.tif", lambda p: write_tiff(p, labels(), s.spacing))
            write_missing(root / seq / f"t{t}.tif", lambda p: write_tiff(p, to_uint16(s.image(), lo, hi), s.spacing))
            track_lines += [f"{offset + j} {k} {k} 0" for j in range(1, s.n_objects + 1)]
            offset += s.n_objects
            bar.update(1)
        write_text(gt / "TRA" / "man_track.txt", "\n".join(track_lines) + ("\n" if track_lines else ""))
        write_json(root / f"{seq}_frames.json", frames)
        out[seq] = {"frames": len(seq_samples), "objects": offset}
    out["image_range"] = [lo, hi]
    return out
