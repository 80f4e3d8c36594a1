"""Throughput of `generate`: serial vs process pool (--workers K) vs Dask (--scheduler local:K).

Target: workers 2 >= 1.7x serial on 2 cores. The Dask time includes starting its
LocalCluster, as `generate --scheduler local:K` does. Outputs are compared byte for byte.

    .venv/bin/python benchmarks/bench_generate.py [--n 16] [--workers 2] [--preset nuclei-golgi3d] [--no-dask]
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
    ap.add_argument("--no-dask", action="store_true", help="skip the Dask arm")
    ap.add_argument("--set", dest="overrides", action="append",
                    default=["scene.shape=[48,256,256]", "scene.organelles.n_pairs=[20,30]"])
    a = ap.parse_args()
    cfg = load_config(a.preset, overrides=a.overrides)
    arms = {"serial": {}, f"process pool, --workers {a.workers}": {"workers": a.workers}}
    if not a.no_dask:
        arms[f"Dask, --scheduler local:{a.workers}"] = {"scheduler": f"local:{a.workers}"}
    tmp = Path(tempfile.mkdtemp())
    try:
        times = {}
        for i, (arm, kw) in enumerate(arms.items()):
            t = time.perf_counter()
            generate_dataset(cfg, a.renderer, a.n, 0, tmp / str(i), progress=False, **kw)
            times[arm] = time.perf_counter() - t
        ref = {p.relative_to(tmp / "0"): p.read_bytes() for p in (tmp / "0").rglob("*.tif")}
        print(f"{a.n} samples, {a.preset} {a.overrides}, {a.renderer}")
        print("| arm | s | samples/s | × serial | byte-identical |\n|---|---|---|---|---|")
        for i, arm in enumerate(arms):
            same = all((tmp / str(i) / r).read_bytes() == b for r, b in ref.items())
            print(f"| {arm} | {times[arm]:.1f} | {a.n / times[arm]:.2f} | {times['serial'] / times[arm]:.2f} "
                  f"| {same} |")
    finally:
        shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
