"""What both drivers share: the job file, reading exports, atomic label TIFFs, the stop rule.

Runs in a consumer's environment: imports only numpy and tifffile (cellsynth is not installed there).
"""
from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import tifffile


def read_job() -> tuple[dict, Path]:
    path = Path(sys.argv[1])
    return json.loads(path.read_text()), path.parent


def write_atomic(path: Path, write) -> None:
    """``write(tmp)`` to a temporary name in the same folder, then rename into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_result(folder: Path, result: dict) -> None:
    write_atomic(folder / "result.json", lambda p: Path(p).write_text(json.dumps(result, indent=1)))


def write_labels(path: Path, labels: np.ndarray) -> None:
    labels = np.asarray(labels)
    labels = labels.astype(np.uint16 if labels.max(initial=0) < 65536 else np.uint32)
    write_atomic(path, lambda p: tifffile.imwrite(p, labels, compression="zlib"))


def read_image(path) -> np.ndarray:
    img = np.squeeze(tifffile.imread(path))
    if img.ndim != 2:
        raise ValueError(f"image '{path}' is not 2D (shape {img.shape})")
    return img.astype(np.float32)


def predict_all(pairs, predict, log=print) -> list[str]:
    """Segment each (image file, label file) pair with ``predict(image) -> labels``; return the label files."""
    done = []
    t0 = time.time()
    for src, dst in pairs:
        write_labels(Path(dst), predict(read_image(src)))
        done.append(dst)
    log(f"predicted {len(done)} image(s) in {time.time() - t0:.1f}s")
    return done


class StopRule:
    """Stop after ``max_steps`` steps, or before the step that would pass ``budget_s`` seconds of loop."""

    def __init__(self, max_steps: int | None, budget_s: float | None):
        self.max_steps, self.budget_s = max_steps, budget_s
        self.steps, self.t0, self.elapsed = 0, None, 0.0

    def start(self) -> None:
        self.t0 = time.time()

    def step(self) -> bool:
        """Count one finished step; True when training must stop now."""
        self.steps += 1
        self.elapsed = time.time() - self.t0
        if self.max_steps is not None and self.steps >= self.max_steps:
            return True
        if self.budget_s is not None and self.elapsed * (self.steps + 1) / self.steps > self.budget_s:
            return True
        return False
