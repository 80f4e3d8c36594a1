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
- ``--pseudo SEG PARTNER --out DIR``: self-training data (pseudo-labels, Lee 2013). ``SEG`` segments the train
  images of one ``--parity`` (0: even positions, 1: odd); an image becomes a dataset pair (image linked, ``SEG``'s
  labels as its mask) where ``PARTNER``'s segmentation agrees at AP@0.5 ≥ ``--min-agreement``. Reports how many
  were kept and ``SEG``'s true AP@0.5 on the kept and the dropped ones. Train on it beside synthetic data with
  ``bench_segmenter.py --holdout 1 --train SYN DIR --per-image F`` and compare on the other parity:
- ``--parity-score F G``: mean AP@0.5 of two ``--per-image`` files (or ``score``-style JSON of name → AP@0.5)
  on the train images of ``--parity``, the paired difference and how many images got better / worse.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_syn2real_levers.py --ensemble R/work/seg_Syn2Real-physics \
        R/work/seg_Syn2Real-diffusion R/work/seg_Syn2Real-sketch
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_syn2real_levers.py --refine R/work/seg_Syn2Real-physics
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_syn2real_levers.py --pseudo R/work/seg_Syn2Real-physics \
        R/work/seg_Syn2Real-diffusion --parity 0 --out /tmp/pseudo_even
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
    mode.add_argument("--pseudo", type=Path, nargs=2, metavar=("SEG", "PARTNER"),
                      help="pseudo-label train images with SEG where PARTNER agrees (needs --out)")
    mode.add_argument("--parity-score", type=Path, nargs=2, metavar=("F", "G"),
                      help="compare two per-image score files on the train images of --parity")
    ap.add_argument("--parity", type=int, choices=[0, 1], default=0,
                    help="train images at even (0) / odd (1) positions")
    ap.add_argument("--min-agreement", type=float, default=0.9, help="--pseudo: PARTNER's AP@0.5 against SEG")
    ap.add_argument("--out", type=Path, help="--pseudo: the dataset folder to write (must not exist)")
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
    if args.pseudo and (args.out is None or args.out.exists() or not 0 <= args.min_agreement <= 1):
        ap.error("--pseudo needs --out DIR that does not exist yet and 0 <= --min-agreement <= 1")
    if args.parity_score:
        return emit(parity_score(*args.parity_score, args.parity), args.json)
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
        segs = [load_segmenter(p) for p in (args.ensemble or args.pseudo or [args.refine])]
    except InputError as e:
        ap.error(str(e))
    pairs = read_pairs(DATA / "train")[::every]
    t0 = time.time()
    out: dict = {"commit": rev, "images": len(pairs), "every": every}
    if args.pseudo:
        from cellsynth.io import write_tiff
        pairs = read_pairs(DATA / "train")[args.parity::2]
        kept, true_kept, true_dropped = 0, [], []
        for sub in ("images", "masks"):
            (args.out / sub).mkdir(parents=True)
        for _, i, m in pairs:
            img = read_image(i)
            lab = segs[0].predict(img)
            agree = score_segmentation(lab, segs[1].predict(img))["ap50"] if lab.max() else 0.0
            true = score_segmentation(read_labels(m), lab)["ap50"]  # reported only: the choice uses no labels
            if agree >= args.min_agreement:
                (args.out / "images" / i.name).symlink_to(i.resolve())
                write_tiff(args.out / "masks" / i.name, lab)
                kept += 1
                true_kept.append(true)
            else:
                true_dropped.append(true)
        out.update({"images": len(pairs), "parity": args.parity, "min_agreement": args.min_agreement, "kept": kept,
                    "seg_ap50_kept": round(float(np.mean(true_kept)), 4) if true_kept else None,
                    "seg_ap50_dropped": round(float(np.mean(true_dropped)), 4) if true_dropped else None,
                    "out": str(args.out)})
    elif args.ensemble:
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


def _scores(path: Path) -> dict[str, float]:
    """name → AP@0.5 from a bench_segmenter ``--per-image`` file (JSON lines) or a JSON mapping."""
    import json
    text = path.read_text()
    try:
        d = json.loads(text)
        return {k: float(v) for k, v in d.items()}
    except json.JSONDecodeError:
        return {r["name"]: float(r["ap50"]) for r in map(json.loads, filter(str.strip, text.splitlines()))}


def parity_score(f: Path, g: Path, parity: int) -> dict:
    from cellsynth.dataset import read_pairs
    names = [n for n, _, _ in read_pairs(DATA / "train")][parity::2]
    a, b = _scores(f), _scores(g)
    missing = [n for n in names if n not in a or n not in b]
    if missing:
        raise SystemExit(f"error: no score for train image '{missing[0]}' in {f if missing[0] not in a else g}")
    x, y = np.array([a[n] for n in names]), np.array([b[n] for n in names])
    d = y - x
    return {"parity": parity, "images": len(names), "ap50_f": round(float(x.mean()), 4),
            "ap50_g": round(float(y.mean()), 4), "g_minus_f": round(float(d.mean()), 4),
            "better_by_0.01": int((d > 0.01).sum()), "worse_by_0.01": int((d < -0.01).sum())}


if __name__ == "__main__":
    sys.exit(main())
