"""Benchmark: Lesmes-Leon et al. 2025's grayscale overlap mask on datasets — objects kept, labels used, round trip.

Lesmes-Leon et al. 2025 (§3.1) report, for LIVECell, the labels needed (11 -> 7 after dropping
cells covered > 70 %) and the cells kept (97 % with a cap of 4). This runs the same count on

- the DSB 2018 ``train`` masks (no overlaps, many touching nuclei: touching objects need
  different labels or they would merge when decoded),
- scenes of the ``cells2d-overlapping`` preset (overlapping cells kept whole in layers),

for label caps 3 and 4, and checks the round trip: the decoded instances against the encoded
objects' visible parts (fraction matched at IoU ≥ 0.5, the project's ``matching``).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_grayscale_overlap.py [--data ../shared/data] [--scenes 50]
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from cellsynth.config import load_config
from cellsynth.io import list_images, read_labels
from cellsynth.metrics.segmentation import matching
from cellsynth.scene import Scene
from cellsynth.simulate import encode, simulate_scene


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="../shared/data")
    ap.add_argument("--scenes", type=int, default=50)
    args = ap.parse_args()
    masks = list_images(Path(args.data) / "nuclei2d-dsb2018" / "train" / "masks", what="DSB train masks")
    dsb = []
    for f in masks:
        lab = read_labels(f)
        dsb.append(Scene(lab, np.ones(lab.shape, bool), (1.0, 1.0)))
    cfg = load_config("cells2d-overlapping")
    sim = [simulate_scene(cfg.scene, np.random.default_rng(s)) for s in range(args.scenes)]
    out = {}
    for name, scenes in (("dsb2018_train", dsb), ("cells2d_overlapping", sim)):
        for cap in (3, 4):
            t = time.perf_counter()
            rep = encode.grayscale_report(scenes, max_labels=cap)
            rep["seconds"] = round(time.perf_counter() - t, 2)
            rep["round_trip_recall"] = recall(scenes, cap)
            out[f"{name}_cap{cap}"] = rep
            print(name, cap, json.dumps({k: rep[k] for k in ("images", "objects", "kept", "kept_fraction",
                  "dropped_covered", "dropped_cap", "labels_needed_max", "labels_used", "round_trip_recall",
                  "seconds")}), flush=True)
    print(json.dumps(out, indent=1))


def recall(scenes, cap: int) -> float:
    """Kept objects whose visible painted part comes back as one decoded instance (IoU >= 0.5),
    as a fraction of the kept objects, pooled over the scenes."""
    tp = n = 0
    for i, sc in enumerate(scenes):
        gray, kept = encode.grayscale_overlap(sc, max_labels=cap, rng=np.random.default_rng(i))
        if not len(kept):
            continue
        dec = encode.decode_grayscale(gray, cap)
        # what each kept object looks like in the mask: its voxels whose gray value is its own
        truth = np.zeros(sc.shape, np.int32)
        for j, k in enumerate(sorted(kept, key=lambda k: -int(sc.object_mask(k + 1).sum())), 1):
            truth[sc.object_mask(k + 1) & (gray > 0)] = j
        m = matching(truth, dec, thresh=0.5)
        tp += m["tp"]
        n += len(kept)
    return tp / max(n, 1)


if __name__ == "__main__":
    main()
