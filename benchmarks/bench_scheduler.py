"""generate throughput: serial vs process pool (--workers K) vs Dask (--scheduler local:K), bytes compared.

Dask time includes starting the LocalCluster (as `generate --scheduler local:K` does).

    .venv/bin/python benchmarks/bench_scheduler.py [--n 16] [--k 2] [--preset nuclei-golgi3d]
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
    ap.add_argument("--k", type=int, default=2)
    ap.add_argument("--preset", default="nuclei-golgi3d")
    ap.add_argument("--set", dest="overrides", action="append",
                    default=["scene.shape=[48,256,256]", "scene.organelles.n_pairs=[20,30]"])
    a = ap.parse_args()
    cfg = load_config(a.preset, overrides=a.overrides)
    tmp = Path(tempfile.mkdtemp())
    arms = {"serial": {}, f"process pool, {a.k} workers": {"workers": a.k},
            f"dask local:{a.k}": {"scheduler": f"local:{a.k}"}}
    try:
        times = {}
        for i, (arm, kw) in enumerate(arms.items()):
            t = time.perf_counter()
            generate_dataset(cfg, "physics", a.n, 0, tmp / str(i), progress=False, **kw)
            times[arm] = time.perf_counter() - t
        ref = {p.relative_to(tmp / "0"): p.read_bytes() for p in (tmp / "0").rglob("*.tif")}
        print(f"{a.n} samples, {a.preset} {a.overrides}, physics")
        print("| arm | s | samples/s | × serial | byte-identical |\n|---|---|---|---|---|")
        for i, arm in enumerate(arms):
            same = all((tmp / str(i) / r).read_bytes() == b for r, b in ref.items())
            print(f"| {arm} | {times[arm]:.1f} | {a.n / times[arm]:.2f} | {times['serial'] / times[arm]:.2f} | {same} |")
    finally:
        shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
