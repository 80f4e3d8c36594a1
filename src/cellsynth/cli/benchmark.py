"""cellsynth benchmark syn2real: Real2Real / Syn2Real / Mix2Real / classical on one real test set."""
from __future__ import annotations

import argparse

from ..errors import ConfigError


def add_parser(sub) -> None:
    p = sub.add_parser(
        "benchmark", help="Syn2Real benchmark: segmenters trained on synthetic vs real data, scored on real",
        description="Benchmarks that score synthetic training data on real annotated images.")
    bsub = p.add_subparsers(dest="benchmark", metavar="BENCHMARK")
    s = bsub.add_parser(
        "syn2real", help="train segmenters on real / synthetic / mixed data and score them on a real test set",
        description="Fit the simulation to the unannotated training images (unless --config), generate N synthetic "
                    "samples per renderer, train one segmenter per arm (Real2Real with --train-masks, Syn2Real per "
                    "renderer, Syn2Real-pooled = the data of the renderers that agree, Mix2Real = real + the renderer"
                    " best on a validation split) plus the classical baseline, and score all on --test: AP@0.5, "
                    "AP@0.5:0.95, Dice, SEG per image, Wilcoxon rank-sum tests between arms, image metrics of each "
                    "renderer vs the real images, and the renderer a label-free criterion (--choice) picks from the "
                    "unannotated training images, with its gap to the best arm by test labels. Writes "
                    "REPORT/report.html (self-contained) and REPORT/report.json.")
    s.add_argument("--train-images", required=True, metavar="DIR",
                   help="real training images (used unannotated: fitting, diffusion training)")
    s.add_argument("--train-masks", metavar="DIR",
                   help="real training masks (same names): adds the Real2Real and Mix2Real arms")
    s.add_argument("--test", required=True, metavar="DIR", help="real test set with images/ and masks/")
    s.add_argument("--preset", default="nuclei2d-dsb", metavar="P", help="preset to start from (default nuclei2d-dsb)")
    s.add_argument("--config", metavar="FILE",
                   help="YAML overlay for the simulation (default: fitted now from --train-images)")
    s.add_argument("--diffusion-model", metavar="MODEL",
                   help="diffusion model folder (default: the shipped model, else one trained on "
                        "--train-images within --diffusion-budget seconds)")
    s.add_argument("--renderers", default="physics,sketch,diffusion",
                   help="comma-separated Syn2Real renderers (default physics,sketch,diffusion)")
    s.add_argument("--n", type=int, default=None, help="synthetic samples per renderer (default 100; quick 8)")
    s.add_argument("--n-diffusion", type=int, default=None,
                   help="samples for the slow diffusion renderer (default: min(N, 60); quick 4)")
    s.add_argument("--steps", type=int, default=None,
                   help="segmenter training steps per arm without --segmenter-minutes (default 600; quick 40)")
    s.add_argument("--segmenter", default="unet", choices=["unet", "stardist", "cellpose"],
                   help="segmenter every arm trains: cellsynth's U-Net (default), or StarDist 2D / Cellpose 3 "
                        "trained from scratch in their own environments (2D only)")
    s.add_argument("--segmenter-python", metavar="PATH",
                   help="python of the StarDist / Cellpose environment (default: $CELLSYNTH_STARDIST_PYTHON / "
                        "$CELLSYNTH_CELLPOSE_PYTHON, else .venv-stardist / .venv-cellpose beside the repository)")
    s.add_argument("--segmenter-minutes", type=float, default=None, metavar="M",
                   help="the same wall-clock training budget per arm for every segmenter, in minutes of "
                        "training loop (default: --steps gradient steps)")
    s.add_argument("--max-test", type=int, default=None,
                   help="score at most this many test images (default all; quick 5)")
    s.add_argument("--max-train", type=int, default=None,
                   help="use at most this many real training images (default all; quick 24)")
    s.add_argument("--val-images", type=int, default=None,
                   help="annotated training images on which the Mix2Real renderer is chosen (default 20; "
                        "quick 4); the test labels are never used for that choice")
    s.add_argument("--diffusion-budget", type=float, default=None,
                   help="seconds for training a diffusion model when none is given/shipped (default 900; quick 60)")
    s.add_argument("--choice", default=None, metavar="CRITERION",
                   help="label-free renderer choice: auto (default: agreement with >= 3 renderers, else kid), "
                        "kid, fid, histogram, spectrum (distances of each renderer's images to the unannotated "
                        "training images) or agreement (the Syn2Real segmenters' agreement on those images; "
                        ">= 3 renderers; the choice is then the pool of the renderers it keeps)")
    s.add_argument("--no-pooled", action="store_true",
                   help="skip the Syn2Real-pooled arm (the renderers' data together, same steps)")
    s.add_argument("--pool-all", action="store_true",
                   help="pool every renderer's data (default: with >= 3 renderers, leave out the least-agreeing "
                        "one at a time while its segmenter agrees significantly less with the others than the "
                        "best-agreeing one's and three or more remain)")
    s.add_argument("--seed", type=int, default=0, help="seed of the synthetic datasets and the training")
    s.add_argument("--workers", type=int, default=1, help="processes for dataset generation")
    s.add_argument("--threads", type=int, default=None,
                   help="CPU threads for torch (default: torch's choice; 1 on a shared machine)")
    s.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"], help="torch device")
    s.add_argument("--quick", action="store_true", help="tiny N, few steps, few test images (minutes on a CPU)")
    s.add_argument("--out", required=True, metavar="REPORT", help="report folder")
    s.add_argument("--no-progress", action="store_true", help="hide progress bars (stage lines still print)")
    s.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..benchmark.syn2real import BenchmarkSettings, quick_settings, run_benchmark

    renderers = tuple(r.strip() for r in args.renderers.split(",") if r.strip())
    if not renderers:
        raise ConfigError("--renderers: give at least one of physics, sketch, diffusion")
    if args.threads is not None and args.threads < 1:
        raise ConfigError(f"--threads {args.threads}: must be >= 1")
    kw = dict(train_images=args.train_images, train_masks=args.train_masks, test=args.test, out=args.out,
              preset=args.preset, config=args.config, diffusion_model=args.diffusion_model,
              renderers=renderers, seed=args.seed, workers=args.workers, device=args.device,
              progress=not args.no_progress, n=args.n, n_diffusion=args.n_diffusion, steps=args.steps,
              max_test=args.max_test, max_train=args.max_train, val_images=args.val_images,
              diffusion_budget_s=args.diffusion_budget, choice_criterion=args.choice,
              pooled=False if args.no_pooled else None, pool_agreeing=False if args.pool_all else None,
              segmenter=args.segmenter,
              segmenter_python=args.segmenter_python, segmenter_minutes=args.segmenter_minutes,
              threads=args.threads)
    kw = {k: v for k, v in kw.items() if v is not None}  # unset options keep the library's defaults
    settings = quick_settings(**kw) if args.quick else BenchmarkSettings(**kw)
    if args.threads:
        import torch
        torch.set_num_threads(args.threads)
    report = run_benchmark(settings)
    print(f"{'arm':<20}{'AP@0.5':>8}{'AP@.5:.95':>10}{'Dice':>7}{'SEG':>7}")
    for a, d in report["arms"].items():
        sm = d["summary"]
        print(f"{a:<20}{sm['ap50']:>8.3f}{sm['ap50_95']:>10.3f}{sm['dice']:>7.3f}{sm['seg']:>7.3f}")
    ch = report.get("renderer_choice")
    if ch:
        from ..benchmark.choose import choice_text
        gap = f"{ch['gap_ap50']:+.3f}" if ch.get("gap_ap50") is not None else "n/a"
        print(f"label-free choice ({ch['criterion']}): {choice_text(ch)}; best by test labels: {ch['best_by_labels']}; "
              f"gap {gap}" + (f"; pooled gap {ch['pooled_gap_ap50']:+.3f}" if "pooled_gap_ap50" in ch else ""))
    seg = report.get("segmenter") or {}
    print(f"segmenter: {seg.get('name')}" + (f" {seg['version']}" if seg.get("version") else "")
          + (f", {seg['budget_s'] / 60:g} min per arm" if seg.get("budget_s") is not None
             else f", {settings.steps} steps per arm"))
    print(f"wrote {settings.out}/report.html and {settings.out}/report.json")
    return 0
