"""The same wall-clock training budget for each segmenter backend, on data a Syn2Real run already made.

Reuses the work folder of a ``cellsynth benchmark syn2real`` run (its ``real_train/`` link dataset and
``syn_<renderer>/`` synthetic dataset, so every segmenter trains on the very same data), trains the
Real2Real and Syn2Real-<renderer> arms with ``--segmenter`` for ``--minutes`` of training loop each
(:mod:`cellsynth.segment.backends`), scores them on the real test set with the benchmark's own
``score_arm`` and prints markdown rows.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_segmenters.py --work REPORT/work \\
        --test ../shared/data/nuclei2d-dsb2018/val --segmenter unet --minutes 5 --threads 1
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from cellsynth.benchmark.syn2real import score_arm, summarize_arm
from cellsynth.dataset import read_pairs
from cellsynth.segment.backends import TrainSettings, get_backend


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", required=True, type=Path, help="work folder of a benchmark syn2real run")
    ap.add_argument("--test", required=True, type=Path, help="real test set (images/, masks/)")
    ap.add_argument("--segmenter", default="unet", choices=["unet", "stardist", "cellpose"])
    ap.add_argument("--minutes", type=float, default=5.0, help="training loop budget per arm")
    ap.add_argument("--renderer", default="diffusion")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=None, help="folder for the models (default WORK/../bench_SEG)")
    ap.add_argument("--json", type=Path, default=None)
    a = ap.parse_args()
    import torch
    torch.set_num_threads(a.threads)
    backend = get_backend(a.segmenter)
    st = TrainSettings(budget_s=60.0 * a.minutes, seed=a.seed, threads=a.threads, progress=False, device="cpu")
    backend.check(2, st)
    pairs = read_pairs(a.test)
    out = a.out or a.work.parent / f"bench_{a.segmenter}"
    rows = {}
    for arm, ds in (("Real2Real", a.work / "real_train"), (f"Syn2Real-{a.renderer}", a.work / f"syn_{a.renderer}")):
        t0 = time.time()
        predict, rec = backend.train([ds], out / arm, st, predict_images=[p for _, p, _ in pairs])
        per, _ = score_arm(predict, pairs, progress=False)
        rows[arm] = {"summary": summarize_arm(per), "segmenter": rec, "wall_s": round(time.time() - t0, 1)}
        s = rows[arm]["summary"]
        print(f"| {a.segmenter} | {arm} | {s['ap50']:.3f} | {s['ap50_95']:.3f} | {s['dice']:.3f} | {s['seg']:.3f} | "
              f"{rec['steps']} | {rec['train_loop_s']:g} |", flush=True)
    if a.json:
        a.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
