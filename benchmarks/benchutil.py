"""What every benchmark script shares: the commit measured, the JSON result it prints and saves, and
the annotated image sets (``--set NAME=DIR``) the real-vs-synthetic comparisons read."""
from __future__ import annotations

import argparse
import json
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def commit() -> str:
    """Short hash of the checked-out commit, read at the start (others may commit while a run goes on)."""
    return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True,
                          text=True).stdout.strip()


def emit(result: dict, json_path: Path | None = None) -> int:
    """Print ``result`` as JSON and also write it to ``json_path`` when given; returns the exit code 0."""
    text = json.dumps(result, indent=1)
    print(text)
    if json_path:
        Path(json_path).write_text(text)
    return 0


def parse_labelled_sets(doc: str) -> argparse.Namespace:
    """``--set NAME=DIR`` (repeatable; DIR holds images/ and masks/ with the same file names) and ``--n``;
    ``args.command`` repeats them for the printed section."""
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--set", action="append", required=True, metavar="NAME=DIR",
                    help="a folder with images/ and masks/ (same file names); repeatable")
    ap.add_argument("--n", type=int, default=100, help="images per set (the first N sorted)")
    args = ap.parse_args()
    args.command = " ".join(f"--set {s}" for s in args.set) + f" --n {args.n}"
    return args


def labelled_pairs(folder: str | Path, n: int):
    """(image, labels as int64) of the first ``n`` images of ``folder``/images and their ``folder``/masks."""
    import numpy as np

    from cellsynth.io import list_images, read_image, read_labels
    for path in list_images(Path(folder) / "images")[:n]:
        yield read_image(path), read_labels(Path(folder) / "masks" / path.name).astype(np.int64)
