"""``cellsynth segment train|predict|export``: the 3-class U-Net segmenter and the classical baseline."""
from __future__ import annotations

import argparse
from pathlib import Path

TRAIN_HELP = """Train a 3-class (background / boundary / interior) U-Net segmenter on one or more
dataset folders, each with images/*.tif and masks/*.tif (instance labels) paired by file
name (e.g. the output of `cellsynth generate`, or real annotated data). 2D and 3D.
Writes MODEL/config.json + MODEL/weights.safetensors."""

PREDICT_HELP = """Segment every TIFF in --images into instance labels (uint16 TIFFs with the
same file names in --out). --model is a folder written by `cellsynth segment train`, or
the word `classical` for the training-free baseline (Gaussian + Otsu + distance watershed)."""


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("segment", help="train / apply an instance segmenter (U-Net or classical)",
                              description="Train and apply instance segmenters.")
    sub = p.add_subparsers(dest="segment_command", metavar="{train,predict,export}")
    sub.required = True

    t = sub.add_parser("train", help="train a 3-class U-Net segmenter", description=TRAIN_HELP,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    t.add_argument("--method", choices=["unet", "cyclegan"], default="unet",
                   help="unet: supervised 3-class U-Net on --data; cyclegan: self-supervised CycleGAN "
                        "(Rosa et al.) between real --images and scenes of --preset, no annotation")
    t.add_argument("--data", action="append", type=Path, metavar="DATASET",
                   help="unet: dataset folder with images/ and masks/ (repeat to combine several)")
    t.add_argument("--images", type=Path, metavar="DIR", help="cyclegan: folder of real images")
    t.add_argument("--preset", metavar="P", help="unet: start from the preset's segmenter settings (its "
                   "`segmenter` section, e.g. nuclei2d-dsb's rescale to 17 px), --config keys over them; "
                   "cyclegan: preset whose simulated masks form the mask domain (e.g. nuclei-golgi3d)")
    t.add_argument("--resume", action="store_true", help="cyclegan: continue from the checkpoint in --out")
    t.add_argument("--out", required=True, type=Path, metavar="MODEL", help="model folder to write")
    t.add_argument("--config", type=Path, metavar="F",
                   help="YAML/JSON with SegmenterConfig keys (channels, patch, batch_size, steps, lr, "
                        "augment.*, postprocess.*, ...)")
    t.add_argument("--steps", type=int, help="training steps (overrides the config; default 500)")
    t.add_argument("--patch", type=int, nargs="+", metavar="N",
                   help="training patch size per axis, (Z)YX (default 128 128 in 2D, 32 64 64 in 3D)")
    t.add_argument("--batch-size", type=int, help="patches per step (default 8)")
    t.add_argument("--seed", type=int, help="random seed (default 0)")
    t.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto",
                   help="auto = CUDA when available, else CPU")
    t.add_argument("--threads", type=int, help="CPU threads for torch (default: torch's choice)")
    t.add_argument("--no-progress", action="store_true", help="no progress bar")
    t.set_defaults(func=run)

    q = sub.add_parser("predict", help="segment a folder of images", description=PREDICT_HELP,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    q.add_argument("--model", required=True, metavar="MODEL", help="segmenter folder, or 'classical'")
    q.add_argument("--images", required=True, type=Path, metavar="DIR", help="folder of .tif images")
    q.add_argument("--out", required=True, type=Path, metavar="DIR", help="folder for the label TIFFs")
    q.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    q.add_argument("--threads", type=int, help="CPU threads for torch")
    q.add_argument("--tile", type=int, nargs="+", metavar="N", help="U-Net inference tile (Z)YX "
                   "(default: the model's)")
    q.add_argument("--overlap", type=float, help="tile overlap fraction (default: the model's)")
    q.add_argument("--tta", type=int, choices=[1, 2, 4, 8], help="U-Net: average over this many YX flips / "
                   "transpositions of each image (default: the model's)")
    q.add_argument("--diameter", type=float, help="U-Net trained with rescale: the median object diameter in px "
                   "of the images (default: estimated for each image without labels)")
    q.add_argument("--sigma", type=float, help="classical: Gaussian σ in px (default: from each image's "
                   "median object radius r, max(1, 0.1 r); with --fixed-scale 1)")
    q.add_argument("--min-size", type=int, help="remove objects smaller than this many pixels "
                   "(classical default 0.1 × the median object area, with --fixed-scale 15; "
                   "U-Net default: the model's)")
    q.add_argument("--min-distance", type=float,
                   help="classical: minimum seed distance in px (default 0.8 r; with --fixed-scale 4)")
    q.add_argument("--fixed-scale", action="store_true",
                   help="classical: fixed σ / seed distance / minimum size instead of following each "
                   "image's own object size")
    q.add_argument("--no-progress", action="store_true", help="no progress bar")
    q.set_defaults(func=run)

    e = sub.add_parser("export", help="export a trained U-Net segmenter for another platform",
                       description="Write a trained U-Net segmenter (segment train output) as a BioImage Model "
                                   "Zoo package (model spec 0.5: TorchScript class probabilities, scale_range "
                                   "preprocessing, test tensors; the seeded watershed documented in its README).")
    e.add_argument("--model", required=True, metavar="SEG", help="segmenter folder")
    e.add_argument("--format", required=True, choices=["bioimageio"])
    e.add_argument("--out", required=True, metavar="ZIP", help="package to write (.zip)")
    e.add_argument("--test-image", metavar="TIF", help="image for the test tensors (default: a simulated scene)")
    e.set_defaults(func=run)


def run(args) -> int:
    if getattr(args, "threads", None):
        import torch
        torch.set_num_threads(args.threads)
    if args.segment_command == "train":
        return _train(args)
    if args.segment_command == "export":
        return _export(args)
    return _predict(args)


def _export(args) -> int:
    from ..segment.bioimageio import export_bioimageio
    out = export_bioimageio(args.model, args.out, test_image=args.test_image)
    print(f"BioImage Model Zoo package -> {out}")
    return 0


def _train(args) -> int:
    from ..errors import ConfigError
    if args.method == "cyclegan":
        return _train_cyclegan(args)
    if not args.data:
        raise ConfigError("segment train --method unet needs --data DATASET")
    from ..config import preset_dict, validate
    from ..segment.unet import SegmenterConfig, load_segmenter_config, train_segmenter

    base = (preset_dict(args.preset).get("segmenter") or {}) if args.preset else None
    cfg = load_segmenter_config(args.config, base)
    updates = {k: v for k, v in (("batch_size", args.batch_size), ("seed", args.seed)) if v is not None}
    if updates:
        cfg = validate(SegmenterConfig, {**cfg.model_dump(), **updates})
    seg = train_segmenter(args.data, args.out, cfg, steps=args.steps, patch=args.patch, device=args.device,
                          progress=not args.no_progress)
    tr = seg.config["training"]
    print(f"segmenter: {tr['n_images']} images, {tr['steps']} steps in {tr['seconds']} s "
          f"(final loss {tr['final_loss']}) -> {args.out}")
    return 0


def _train_cyclegan(args) -> int:
    from ..config import load_yaml
    from ..errors import ConfigError
    from ..segment.selfsupervised import train_cyclegan_segmenter
    if not args.images or not args.preset or args.data:
        raise ConfigError("segment train --method cyclegan needs --images DIR and --preset P (and no --data)")
    cfg = load_yaml(args.config) if args.config else {}
    for key, val in (("batch_size", args.batch_size), ("seed", args.seed), ("patch_size", args.patch),
                     ("threads", args.threads)):
        if val is not None:
            cfg[key] = val
    out = train_cyclegan_segmenter(args.images, args.preset, args.out, cfg, steps=args.steps, device=args.device,
                                   resume=args.resume, progress=not args.no_progress)
    print(f"self-supervised CycleGAN segmenter -> {out}")
    return 0


def _predict(args) -> int:
    from ..segment.predict import segment_folder

    written = segment_folder(args.model, args.images, args.out, progress=not args.no_progress,
                             device=args.device, tile=args.tile, overlap=args.overlap, min_size=args.min_size,
                             tta=args.tta, diameter=args.diameter, sigma=args.sigma,
                             min_distance=args.min_distance, adaptive=not args.fixed_scale)
    print(f"segmented {len(written)} images -> {args.out}")
    return 0
