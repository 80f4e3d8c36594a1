"""Adaptation to an image type the model did not see: fine-tune vs train-from-scratch vs shipped model.

The DSB 2018 training images fall into types separable by size and intensity statistics; the
360×360 px type (68 train / 6 val images: dim fluorescence, densely packed nuclei, a bright
fraction ~0.19 against ~0.03 for the rest) is held out. Each arm runs ``cellsynth adapt`` on the
68 held-out *train* images (their masks only score the predictions) with the same budget and
caps, one arm after the other (one process, 1 torch thread):

- ``shipped`` (or ``base``): the base model as it is (``--no-train``); the base model is the shipped
  one unless ``--base-model`` names another (the shipped model was trained on all 395 train images,
  the held-out type included; a base trained on the other 327 never saw the type);
- ``finetune``: the base model fine-tuned on the held-out images (the default of ``adapt``);
- ``scratch``: a model of the same size trained from scratch on them (``--from-scratch``).

It also reports the domain statistic of the held-out images against the base model's
training images and against the DSB train images without the held-out type.

With ``--train-only`` each training arm only trains its diffusion model, with adapt's own function
(``adapt.train_adapted_diffusion``, the diffusion share of ``--budget``), into ``OUT/ARM/models/diffusion``
— what ``--models-from OUT`` reads.

With ``--models-from DIR`` (a previous run's output) the arms reuse that run's diffusion models as they
are (``--no-train --base-model``) with fixed sample and step counts (``--n``, ``--segmenter-steps``,
``--budget`` large enough that the caps bind), so the arms differ only in the diffusion model.

    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python benchmarks/bench_adapt.py --out /tmp/bench_adapt --budget 14
    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python benchmarks/bench_adapt.py --out /tmp/bench_adapt2 \
        --models-from /tmp/bench_adapt --budget 120 --n 20 --segmenter-steps 200 --sdedit-steps 10
    # a base that never saw the type: train it on the other 327 train images, then
    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python benchmarks/bench_adapt.py --out /tmp/unseen \
        --base-model BASE --arms finetune --budget 14 --train-only
    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python benchmarks/bench_adapt.py --out /tmp/unseen2 \
        --base-model BASE --arms base finetune --models-from /tmp/unseen --budget 120 --n 20 \
        --segmenter-steps 200 --sdedit-steps 10 --foreground-threshold 0.5
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "nuclei2d-dsb2018"
HELD_OUT_SHAPE = (360, 360)


def held_out(out: Path) -> tuple[Path, list]:
    """Symlink the held-out type's train images and masks into out/heldout; the other images' arrays."""
    from cellsynth.io import list_images, read_image
    d = out / "heldout"
    rest = []
    for sub in ("images", "masks"):
        (d / sub).mkdir(parents=True, exist_ok=True)
    for f in list_images(DATA / "train" / "images"):
        a = read_image(f)
        if a.shape == HELD_OUT_SHAPE:
            for sub in ("images", "masks"):
                link = d / sub / f.name
                if not link.exists():
                    os.symlink(DATA / "train" / sub / f.name, link)
        else:
            rest.append(a)
    return d, rest


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--budget", type=float, default=14.0, help="adapt --budget (minutes) per arm")
    ap.add_argument("--arms", nargs="+", default=["shipped", "finetune", "scratch"],
                    choices=["shipped", "base", "finetune", "scratch"], help="base = shipped: the base model as it is")
    ap.add_argument("--base-model", type=Path, help="diffusion model to start from (default: the shipped one)")
    ap.add_argument("--train-only", action="store_true",
                    help="only train the arms' diffusion models (adapt's function and budget share)")
    ap.add_argument("--foreground-threshold", type=float,
                    help="segmenter postprocess.foreground_threshold (default the config's; 0.5 before e28cea6)")
    ap.add_argument("--segmenter-steps", type=int, default=400)
    ap.add_argument("--n", type=int, default=60, help="adapt --n")
    ap.add_argument("--sdedit-steps", type=int, help="SDEdit reverse steps (render.steps; default the config's 50)")
    ap.add_argument("--models-from", type=Path, help="reuse this earlier run's diffusion models, no training")
    ap.add_argument("--seed", type=int, default=0, help="adapt --seed (synthetic data, segmenter)")
    args = ap.parse_args()
    from cellsynth.adapt import AdaptSettings, domain_decision, train_adapted_diffusion
    from cellsynth.io import list_images, read_image
    from cellsynth.metrics.domain import domain_record, domain_shift
    from cellsynth.render.diffusion import default_model_path

    args.out.mkdir(parents=True, exist_ok=True)
    d, rest = held_out(args.out)
    imgs = [read_image(f) for f in list_images(d / "images")]
    base = args.base_model or default_model_path()
    result = {"held_out": {"shape": HELD_OUT_SHAPE, "n_images": len(imgs)}, "base_model": str(base),
              "domain_vs_base": domain_decision(base, imgs),
              "domain_vs_dsb_without_type": domain_shift(domain_record(rest), imgs), "arms": {}}
    if args.train_only:
        settings = AdaptSettings(images=d / "images", out=args.out, budget_min=args.budget)
        for arm in args.arms:
            if arm in ("shipped", "base"):
                continue
            model = args.out / arm / "models" / "diffusion"
            model.parent.mkdir(parents=True, exist_ok=True)
            t0 = time.time()
            info = train_adapted_diffusion(d / "images", model, "finetune" if arm == "finetune" else "scratch", base,
                                           settings.budget_s("diffusion"), settings.diffusion_steps, threads=1,
                                           device="cpu")
            result["arms"][arm] = {"wall_s": round(time.time() - t0, 1), "diffusion": info, "load": os.getloadavg()}
            (args.out / "summary.json").write_text(json.dumps(result, indent=1))
            print(arm, json.dumps(result["arms"][arm]), flush=True)
        return
    seg = "{batch_size: 4" + (f", postprocess: {{foreground_threshold: {args.foreground_threshold}}}"
                              if args.foreground_threshold is not None else "") + "}"
    cfg = args.out / "adapt.yaml"
    cfg.write_text(f"segmenter: {seg}\n" + (f"render: {{steps: {args.sdedit_steps}}}\n"
                                            if args.sdedit_steps else ""))
    own_base = ["--base-model", str(base)] if args.base_model else []
    for arm in args.arms:
        flag = {"shipped": ["--no-train"], "base": ["--no-train"], "finetune": [],
                "scratch": ["--from-scratch"]}[arm] + (own_base if arm != "scratch" else [])
        if args.models_from is not None:
            flag = ["--no-train", "--renderers", "diffusion"] + (
                ["--base-model", str(args.models_from / arm / "models" / "diffusion")]
                if arm not in ("shipped", "base") else own_base)
        cmd = [sys.executable, "-m", "cellsynth", "adapt", "--images", str(d / "images"), "--masks", str(d / "masks"),
               "--out", str(args.out / arm), "--budget", str(args.budget), "--segmenter-steps",
               str(args.segmenter_steps), "--n", str(args.n), "--seed", str(args.seed), "--config", str(cfg),
               "--threads", "1", "--device", "cpu", *flag]
        t0 = time.time()
        subprocess.run(cmd, check=True, env={**os.environ, "PYTHONPATH": str(REPO / "src")})
        rep = json.loads((args.out / arm / "report.json").read_text())
        st = rep["stages"]
        result["arms"][arm] = {"wall_s": round(time.time() - t0, 1), "scores": {k: v for k, v in rep["scores"].items()
                                                                               if k != "per_image"},
                               "diffusion": {k: st["diffusion"][k] for k in ("mode", "steps", "seconds")},
                               "n_samples": st["generate"]["n"], "segmenter_steps": st["segmenter"]["steps"],
                               "load": os.getloadavg()}
        (args.out / "summary.json").write_text(json.dumps(result, indent=1))
        print(arm, json.dumps(result["arms"][arm]), flush=True)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
