"""``cellsynth adapt``: a new lab's images in one command (fit → diffusion → generate → segment → predict)."""
from __future__ import annotations

import argparse
from pathlib import Path

HELP = """Adapt cellsynth to a folder of unannotated images within a time budget: fit the simulation,
fine-tune the shipped diffusion model on the images (or train one from scratch), choose the renderer whose
samples look most like the images (no labels), generate synthetic image/mask pairs, train a segmenter on them
and segment the images. Writes PROJECT/config.yaml, PROJECT/models/{diffusion,segmenter}, PROJECT/dataset,
PROJECT/predictions and PROJECT/report.{json,md}
(scored against --masks when given). Budget: 50% diffusion training, 25% generation, 25% segmenter.
Rerun the same command to resume where it stopped."""


def add_parser(sub) -> None:
    p = sub.add_parser("adapt", help="a new lab's images in one command: fit, train, generate, segment",
                       description=HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--images", required=True, type=Path, metavar="DIR", help="folder of unannotated images (TIFF)")
    p.add_argument("--out", required=True, type=Path, metavar="PROJECT", help="project folder")
    p.add_argument("--budget", type=float, default=30.0, metavar="MINUTES",
                   help="wall-clock budget of the training and generation stages (default 30)")
    p.add_argument("--masks", type=Path, metavar="DIR", help="instance masks of the images (same names): "
                   "only used to score the predictions")
    p.add_argument("--preset", default="nuclei2d-dsb", help="preset to fit (default nuclei2d-dsb)")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--from-scratch", action="store_true",
                      help="train the diffusion model from scratch (default: fine-tune the base model when it fits)")
    mode.add_argument("--no-train", action="store_true", help="use the base diffusion model as it is")
    p.add_argument("--base-model", type=Path, metavar="MODEL", help="diffusion model to fine-tune (default: shipped)")
    p.add_argument("--n", type=int, default=60, help="most synthetic samples (default 60; the budget may allow fewer)")
    p.add_argument("--diffusion-steps", type=int, default=20000, help="most diffusion training steps")
    p.add_argument("--segmenter-steps", type=int, default=600, help="most segmenter training steps")
    p.add_argument("--renderers", nargs="+", default=["diffusion", "physics"], metavar="R",
                   help="candidate renderers (default: diffusion physics); several: the one whose first samples "
                        "look most like the images (KID, no labels) is used")
    p.add_argument("--config", type=Path, metavar="F", help="YAML with sections diffusion (training keys), "
                   "segmenter (SegmenterConfig keys), render (SDEdit keys: t_start, steps, ...)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    p.add_argument("--threads", type=int, help="CPU threads for torch")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bars")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..adapt import AdaptSettings, run_adapt
    from ..config import load_yaml
    mode = "scratch" if args.from_scratch else "none" if args.no_train else "auto"
    s = AdaptSettings(images=args.images, out=args.out, budget_min=args.budget, masks=args.masks,
                      preset=args.preset, mode=mode, base_model=args.base_model, n=args.n,
                      diffusion_steps=args.diffusion_steps, segmenter_steps=args.segmenter_steps,
                      renderers=tuple(args.renderers), seed=args.seed, device=args.device, threads=args.threads,
                      config=load_yaml(args.config) if args.config else {}, progress=args.progress)
    report = run_adapt(s)
    st = report["stages"]
    print(f"diffusion: {st['diffusion']['mode']} {st['diffusion']['steps']} steps; {st['generate']['n']} "
          f"{st['renderer']['renderer']} samples; segmenter {st['segmenter']['steps']} steps; "
          f"{st['predict']['n_images']} predictions in {args.out / 'predictions'}")
    dom = report.get("domain") or {}
    if dom.get("differs") is not None:
        print(f"images {'differ from' if dom['differs'] else 'are like'} the base model's training images "
              f"({dom['statistic']} {dom['value']:.3g})")
    if report.get("scores"):
        sc = report["scores"]
        print(f"AP@0.5 {sc['ap50']:.3f} pooled, {sc['ap50_mean']:.3f} mean over images  "
              f"AP@0.5:0.95 {sc['ap50_95']:.3f}  SEG {sc['seg']:.3f}  Dice {sc['dice']:.3f}")
    print(f"report: {args.out / 'report.md'}")
    return 0
