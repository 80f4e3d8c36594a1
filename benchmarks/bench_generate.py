"""Throughput of `generate`: serial vs --workers K (target: workers 2 >= 1.7x serial on 2 cores).

    .venv/bin/python benchmarks/bench_generate.py [--n 16] [--workers 2] [--preset nuclei-golgi3d]
"""
from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from cellsynth.config import load_config
from cellsynth.dataset import generate_dataset


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=16)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--preset", default="nuclei-golgi3d")
    ap.add_argument("--renderer", default="physics")
    ap.add_argument("--set", dest="overrides", action="append",
                    default=["scene.shape=[48,256,256]", "scene.organelles.n_pairs=[20,30]"])
    a = ap.parse_args()
    cfg = load_config(a.preset, overrides=a.overrides)
    tmp = Path(tempfile.mkdtemp())
    try:
        times = {}
        for w in (1, a.workers):
            t = time.perf_counter()
            generate_dataset(cfg, a.renderer, a.n, 0, tmp / f"w{w}", workers=w, progress=False)
            times[w] = time.perf_counter() - t
            print(f"workers={w}: {times[w]:.2f} s for {a.n} samples ({a.n / times[w]:.2f} samples/s)")
        same = all((tmp / "w1" / p.relative_to(tmp / f"w{a.workers}")).read_bytes() == p.read_bytes()
                   for p in (tmp / f"w{a.workers}").rglob("*.tif"))
        print(f"speed-up x{times[1] / times[a.workers]:.2f} with {a.workers} workers; byte-identical: {same}")
    finally:
        shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
