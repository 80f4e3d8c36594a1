"""Benchmark: two prediction-side levers for Syn2Real segmenters, scored on DSB 2018 *train* images.

Models trained on synthetic data never saw a real train image, so every train image can score them
without touching val (issue 11: levers are chosen off val).

- ``--ensemble SEG ...``: each segmenter alone, then every combination of them with the maps
  (:meth:`~cellsynth.segment.unet.Segmenter.maps`) averaged before the first one's watershed —
  e.g. a Syn2Real benchmark's ``REPORT/work/seg_Syn2Real-{physics,diffusion,sketch}``. Scored on
  every ``--every``-th train image (default 10: the 40 images of ``bench_segmenter.py --holdout 10``).
- ``--refine SEG``: Cellpose's second size pass (Stringer et al. 2021): predict at the classical
  diameter estimate, re-measure the median diameter of the predicted masks and predict again at it
  while the two differ by more than ``--tol`` (at most ``--passes`` times). Scored on every train image
  by default; reports how many images were re-predicted and how many got better or worse.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_syn2real_levers.py --ensemble R/work/seg_Syn2Real-physics \
        R/work/seg_Syn2Real-diffusion R/work/seg_Syn2Real-sketch
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_syn2real_levers.py --refine R/work/seg_Syn2Real-physics
"""
from __future__ import annotations

import argparse
import itertools
import sys
import time
from pathlib import Path

import numpy as np
import torch

from benchutil import commit, emit

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "nuclei2d-dsb2018"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = ap.add_mutually_exclusive_group(required=True)
    mode.add_argument("--ensemble", type=Path, nargs="+", metavar="SEG", help="segmenter folders to average")
    mode.add_argument("--refine", type=Path, metavar="SEG", help="segmenter folder for the second size pass")
    ap.add_argument("--every", type=int, default=None,
                    help="score every K-th train image (default: 10 with --ensemble, 1 with --refine)")
    ap.add_argument("--tol", type=float, default=1.25, help="re-predict when the diameters differ by more (ratio)")
    ap.add_argument("--passes", type=int, default=2, help="at most this many extra predictions per image")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", type=Path, help="also write the result here")
    args = ap.parse_args()
    every = args.every or (10 if args.ensemble else 1)
    if every < 1 or args.tol <= 1 or args.passes < 1:
        ap.error("--every >= 1, --tol > 1 and --passes >= 1")
    if not DATA.is_dir():
        print(f"skipped: {DATA} not present", file=sys.stderr)
        return 0
    torch.set_num_threads(args.threads)
    rev = commit()
    from cellsynth.dataset import read_pairs
    from cellsynth.errors import InputError
    from cellsynth.io import read_image, read_labels
    from cellsynth.metrics.compare import score_segmentation
    from cellsynth.segment.rescale import image_diameter, labels_diameter
    from cellsynth.segment.unet import load_segmenter
    try:  # a bad folder fails in one line before any work
        segs = [load_segmenter(p) for p in (args.ensemble or [args.refine])]
    except InputError as e:
        ap.error(str(e))
    pairs = read_pairs(DATA / "train")[::every]
    t0 = time.time()
    out: dict = {"commit": rev, "images": len(pairs), "every": every}
    if args.ensemble:
        names = [p.name for p in args.ensemble]
        maps = {n: [] for n in names}
        gts = []
        for _, i, m in pairs:
            img = read_image(i)
            gts.append(read_labels(m))
            for n, s in zip(names, segs):
                maps[n].append(s.maps(img))
        out["ap50"] = {}
        for k in range(1, len(names) + 1):
            for combo in itertools.combinations(names, k):
                ap50 = [score_segmentation(g, segs[0].labels_from_maps(np.mean([maps[n][j] for n in combo], 0)))["ap50"]
                        for j, g in enumerate(gts)]
                out["ap50"][" + ".join(combo)] = round(float(np.mean(ap50)), 4)
    else:
        seg, one, refined, k_changed = segs[0], [], [], 0
        for _, i, m in pairs:
            img, gt = read_image(i), read_labels(m)
            d = image_diameter(img)
            pred = seg.predict(img, diameter=d)
            one.append(score_segmentation(gt, pred)["ap50"])
            for extra in range(args.passes):
                d1 = labels_diameter(pred)
                if d is None or d1 is None or abs(np.log(d1 / d)) <= np.log(args.tol):
                    break
                d, pred = d1, seg.predict(img, diameter=d1)
                k_changed += extra == 0
            refined.append(score_segmentation(gt, pred)["ap50"])
        a, b = np.array(one), np.array(refined)
        out.update({"ap50_one_pass": round(float(a.mean()), 4), "ap50_refined": round(float(b.mean()), 4),
                    "re_predicted": int(k_changed), "better": int((b > a + 1e-9).sum()),
                    "worse": int((b < a - 1e-9).sum()), "tol": args.tol, "passes": args.passes})
    out["seconds"] = round(time.time() - t0, 1)
    return emit(out, args.json)


if __name__ == "__main__":
    sys.exit(main())
