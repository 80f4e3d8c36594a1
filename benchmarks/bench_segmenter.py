"""Benchmark: the U-Net segmenter trained on real DSB 2018 masks (Real2Real) vs the classical baseline.

Trains ``cellsynth.segment.unet`` on ``nuclei2d-dsb2018/train`` (real images + masks) with the
default :class:`SegmenterConfig` (or ``--config``), predicts ``nuclei2d-dsb2018/val`` and scores
each image with :func:`cellsynth.metrics.compare.score_segmentation`, the scores of
``cellsynth evaluate`` and of the Syn2Real benchmark: AP@0.5 = tp/(tp+fp+fn) at IoU 0.5 and
AP@0.5:0.95, means over images (pooled AP@0.5 too). The classical baseline is scored on the
same images. ``--curve 150 300 600`` trains one model per step budget (a learning curve; each
budget its own cosine schedule). ``--per-image FILE`` writes each scored image's scores with its
masks' median object diameter and the label-free estimate (JSON lines). ``--holdout K`` trains on
the train images minus every K-th one and scores on those instead of val (for choosing settings
without touching val). ``--train DIR ...`` trains on other dataset folders (``images/``, ``masks/``),
e.g. a Syn2Real benchmark's synthetic data (``REPORT/work/syn_physics``), and scores on val (with
``--holdout K``: on every K-th train image, so that a Syn2Real lever is chosen without touching val;
``--holdout 1`` scores a synthetic-trained model on every train image, ten times the images of
``--holdout 10``: a tenth of the per-image variance when two synthetic data sets are compared).
``--estimates classical style true`` also scores a model trained with ``rescale`` with each image's diameter
from the classical estimate, the size model, or the masks (the oracle).
Prints a Markdown section; ``--append`` adds it to benchmarks/RESULTS.md.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_segmenter.py --curve 600 --threads 1 --append
"""
from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from benchutil import commit

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "nuclei2d-dsb2018"


def score(gts, preds, per_image: list | None = None) -> dict:
    from cellsynth.metrics.compare import score_segmentation
    from cellsynth.metrics.segmentation import matching_dataset
    per = [score_segmentation(g, p) for g, p in zip(gts, preds)]
    if per_image is not None:
        per_image.extend(per)
    return {"ap50": float(np.mean([s["ap50"] for s in per])), "ap50_95": float(np.mean([s["ap50_95"] for s in per])),
            "ap50_pooled": matching_dataset(gts, preds, thresh=0.5)["accuracy"],
            "n_pred": int(sum(s["n_pred"] for s in per)), "n_true": int(sum(s["n_true"] for s in per))}


def _cpu(a, b) -> float:
    return (b.ru_utime - a.ru_utime) + (b.ru_stime - a.ru_stime)


def _split(holdout: int | None, tmp: Path):
    """(training dataset folders, scored (name, image, mask) pairs)."""
    from cellsynth.dataset import read_pairs
    if not holdout:
        return [DATA / "train"], read_pairs(DATA / "val")
    pairs = read_pairs(DATA / "train")
    train = tmp / "train"
    for sub in ("images", "masks"):
        (train / sub).mkdir(parents=True)
    for i, (_, img, mask) in enumerate(pairs):
        if i % holdout:
            (train / "images" / img.name).symlink_to(img)
            (train / "masks" / mask.name).symlink_to(mask)
    return [train], pairs[::holdout]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--curve", type=int, nargs="+", default=[600], help="training step budgets, one model each")
    ap.add_argument("--config", type=Path, help="SegmenterConfig YAML/JSON (default: the defaults)")
    ap.add_argument("--set", default="{}", help="JSON of SegmenterConfig keys over the config")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--holdout", type=int, default=None,
                    help="score on every K-th train image, not on val (1 = every one; needs --train)")
    ap.add_argument("--train", type=Path, nargs="+",
                    help="train on these dataset folders instead (scored on val, or on --holdout's images)")
    ap.add_argument("--estimates", nargs="+", default=[], choices=["classical", "style", "true"],
                    help="a model trained with rescale: also score it with each image's diameter from the classical "
                         "estimate, its size model (needs rescale.estimate: style), or the masks (oracle)")
    ap.add_argument("--max-val", type=int, default=None, help="score only the first N images")
    ap.add_argument("--model", type=Path, default=Path("/tmp/cellsynth-bench-segmenter"),
                    help="where the trained models go (one subfolder per budget)")
    ap.add_argument("--no-classical", action="store_true")
    ap.add_argument("--per-image", type=Path, metavar="JSONL", help="write one line per model and scored image: "
                    "name, its masks' median object diameter, the label-free estimate, the scores")
    ap.add_argument("--append", action="store_true", help="append the section to benchmarks/RESULTS.md")
    args = ap.parse_args()
    if args.holdout is not None and (args.holdout < 1 or (args.holdout == 1 and not args.train)):
        ap.error(f"--holdout {args.holdout}: K >= 2, or 1 (every train image scored) with --train")
    if not DATA.is_dir():
        print(f"skipped: {DATA} not present", file=sys.stderr)
        return 0
    torch.set_num_threads(args.threads)
    # the code measured is the code at the start (others commit while this runs)
    rev = commit()
    from cellsynth.config import validate
    from cellsynth.io import read_image, read_labels
    from cellsynth.segment.classical import classical_segment
    from cellsynth.segment.rescale import image_diameter, labels_diameter
    from cellsynth.segment.unet import SegmenterConfig, load_segmenter_config, train_segmenter

    base = load_segmenter_config(args.config).model_dump()
    base.update(json.loads(args.set))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        train, scored = _split(args.holdout, Path(tmp))
        if args.train:  # with --holdout: synthetic-trained models scored on held-out real train images
            train = list(args.train)
        scored = scored[: args.max_val]
        images = [read_image(i) for _, i, _ in scored]
        gts = [read_labels(m) for _, _, m in scored]
        for steps in args.curve:
            cfg = validate(SegmenterConfig, {**base, "steps": steps})
            c0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.time()
            seg = train_segmenter(train, args.model / f"steps{steps}", cfg, device="cpu", progress=False)
            c1, t1 = resource.getrusage(resource.RUSAGE_SELF), time.time()
            preds = [seg.predict(im) for im in images]
            c2, t2 = resource.getrusage(resource.RUSAGE_SELF), time.time()
            per: list = []
            rows.append({"steps": steps, **score(gts, preds, per), "train_s": t1 - t0, "train_cpu": _cpu(c0, c1),
                         "predict_s": t2 - t1, "predict_cpu": _cpu(c1, c2),
                         "n_train": seg.config["training"]["n_images"], "loss": seg.config["training"]["final_loss"]})
            print(json.dumps(rows[-1]), flush=True)
            for name in args.estimates:  # the same network, another diameter per image
                if seg.rescale is None or (name == "style" and seg.size_model is None):
                    ap.error(f"--estimates {name}: the model has no rescale{' size model' if seg.rescale else ''}")
                saved, seg.size_model = seg.size_model, (seg.size_model if name == "style" else None)
                ds = [labels_diameter(g) if name == "true" else seg.estimate_diameter(im)
                      for im, g in zip(images, gts)]
                seg.size_model = saved
                r = score(gts, [seg.predict(im, diameter=d) for im, d in zip(images, ds)])
                print(json.dumps({"steps": steps, "estimate": name, **r}), flush=True)
            if args.per_image:
                with open(args.per_image, "a") as f:
                    for (name, _, _), im, g, s in zip(scored, images, gts, per):
                        f.write(json.dumps({"steps": steps, "name": name, "diameter": labels_diameter(g),
                                            "diameter_estimate": image_diameter(im),
                                            **{k: v for k, v in s.items() if isinstance(v, (int, float))}}) + "\n")
        t0 = time.time()
        cl = None if args.no_classical else score(gts, [classical_segment(im) for im in images])
        t_cl = time.time() - t0

    load = open("/proc/loadavg").read().split()[0]
    where = ("every train image (the model trained on --train only)" if args.holdout == 1 else
             f"every {args.holdout}th train image (held out of training)" if args.holdout else "val")
    cfg = validate(SegmenterConfig, {**base, "steps": args.curve[-1]})
    changed = {k: v for k, v in cfg.model_dump(mode="json").items()
               if k != "steps" and v != SegmenterConfig().model_dump(mode="json")[k]}
    lines = [
        "",
        f"## Segmenter (U-Net + seeded watershed) Real2Real on nuclei2d-dsb2018 {where} ({rev})",
        "",
        f"Command: `OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_segmenter.py {' '.join(sys.argv[1:])}` — "
        f"machine \"2-core CPU, 24 GB, shared\", {args.threads} torch thread(s), load average at the end {load} "
        "(wall times on the shared machine are upper bounds; CPU times are the process's own).",
        f"Training: {rows[0]['n_train']} "
        + (f"images of {', '.join(str(t) for t in args.train)}" if args.train else "real annotated images")
        + ", SegmenterConfig defaults"
        + (f" except {json.dumps(changed)}" if changed else "") + f"; scored on {len(scored)} images "
        f"({rows[0]['n_true']} objects), AP = tp/(tp+fp+fn), means over images.",
        "",
        "| steps | AP@0.5 | AP@0.5:0.95 | AP@0.5 pooled | objects found | train wall / CPU | predict wall / CPU |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(f"| {r['steps']} | {r['ap50']:.3f} | {r['ap50_95']:.3f} | {r['ap50_pooled']:.3f} | {r['n_pred']} "
                     f"| {r['train_s']:.0f} s / {r['train_cpu']:.0f} s | {r['predict_s']:.0f} s / "
                     f"{r['predict_cpu']:.0f} s |")
    if cl is not None:
        lines.append(f"| classical | {cl['ap50']:.3f} | {cl['ap50_95']:.3f} | {cl['ap50_pooled']:.3f} | {cl['n_pred']} "
                     f"| – | {t_cl:.0f} s |")
    text = "\n".join(lines + [""])
    print(text)
    if args.append:
        with open(REPO / "benchmarks" / "RESULTS.md", "a") as f:  # append in place (others append too)
            f.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
