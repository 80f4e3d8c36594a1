"""Export throughput of a 3D dataset, per format (samples/s and MB written/s).

    .venv/bin/python benchmarks/bench_export.py [--n 8] [--shape 32,128,128]
"""
from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from cellsynth.config import load_config
from cellsynth.dataset import generate_dataset
from cellsynth.export import FORMATS, export_dataset


def _size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=8)
    ap.add_argument("--shape", default="32,128,128")
    ap.add_argument("--preset", default="nuclei3d-celegans")
    a = ap.parse_args()
    cfg = load_config(a.preset, overrides=[f"scene.shape=[{a.shape}]"])
    tmp = Path(tempfile.mkdtemp())
    try:
        ds = generate_dataset(cfg, "physics", a.n, 0, tmp / "ds", progress=False)
        print(f"source: {a.n} samples of {a.shape} ({a.preset}, physics), {_size(ds / 'images') / 1e6:.1f} MB images")
        print("| format | s | samples/s | MB written | MB/s |\n|---|---|---|---|---|")
        runs = [(f, {}) for f in FORMATS] + [("omezarr", {"ngff_version": "0.5"}),
                                              ("cellpose", {"slices": True})]
        for fmt, opts in runs:
            out = tmp / f"{fmt}{len(opts)}"
            t = time.perf_counter()
            export_dataset(ds, fmt, out, progress_bar=False, options=opts)
            dt = time.perf_counter() - t
            mb = _size(out) / 1e6
            name = fmt + "".join(f" {k}={v}" for k, v in opts.items())
            print(f"| {name} | {dt:.2f} | {a.n / dt:.2f} | {mb:.1f} | {mb / dt:.1f} |")
    finally:
        shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
