"""``cellsynth evaluate images|segmentation``: realism of synthetic images, accuracy of segmentations."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..io import list_images, read_image, read_labels, write_json

IMAGES_HELP = """Compare a folder of synthetic images with a folder of real images (2D or 3D TIFFs).

Unpaired (any file names, any sizes): Bhattacharyya distance -ln sum sqrt(p q) and Hellinger
distance of the pooled intensity histograms, KL(real || synthetic), FID and KID on features of
the default extractor, and the mean log10 radially averaged power spectrum of each set.
Paired (files with the same name and shape in both folders): SSIM, PSNR, NRMSE, ZNCC, NCC, and
the ZNCC of the intensity profiles along x (Eschweiler et al. 2021 Fig 7: 3D = centre xz-slice summed over z).

Images are percentile-normalised per image (0.5 / 99.5 % -> 0 / 1, clipped) unless
--normalize none, so uint8/uint16 real data and float synthetic data share one scale;
SSIM/PSNR then use data_range 1. FID/KID use a deterministic statistics extractor (multi-scale
filter statistics), NOT Inception-v3: their values are comparable only between runs of this
tool, never with published FIDs (--inception-weights F uses local Inception-v3 weights instead;
needs torchvision, nothing is downloaded). A DIR holding images/ (a dataset folder) is read from there."""

SEGMENTATION_HELP = """Score predicted instance masks against ground-truth masks (2D or 3D label TIFFs),
paired by file name; every file must have a partner (checked before anything is written).

Reports, with counts pooled over all images (StarDist matching_dataset semantics): precision,
recall, F1, accuracy tp/(tp+fp+fn) and panoptic quality per IoU threshold; AP@0.5 and
AP@0.5:0.95 (mean accuracy over IoU 0.50, 0.55, ..., 0.95, the DSB 2018 score); CTC SEG (mean
Jaccard over all reference objects, match = overlap > half of the reference object); and, as
means over images, foreground Dice, boundary F1 (--tolerance px) and centroid detection accuracy
(--centroid-tolerance px). A DIR holding masks/ (a dataset folder) is read from there."""


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("evaluate", help="image realism metrics / segmentation scores",
                              description="Evaluate synthetic images or segmentations.")
    sub = p.add_subparsers(dest="evaluate_command", metavar="{images,segmentation}")
    sub.required = True

    i = sub.add_parser("images", help="realism of synthetic images vs real images",
                       description=IMAGES_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    i.add_argument("--real", required=True, type=Path, metavar="DIR", help="folder of real .tif images")
    i.add_argument("--synthetic", required=True, type=Path, metavar="DIR",
                   help="folder of synthetic .tif images")
    i.add_argument("--json", type=Path, metavar="F", help="write all results (and per-image values) here")
    i.add_argument("--bins", type=int, default=256, help="histogram bins (default 256)")
    i.add_argument("--normalize", choices=["percentile", "none"], default="percentile",
                   help="per-image intensity normalisation before every metric (default percentile)")
    i.add_argument("--kid-subsets", type=int, default=100, help="KID random subsets (default 100)")
    i.add_argument("--seed", type=int, default=0, help="seed of the KID subsets (default 0)")
    i.add_argument("--inception-weights", type=Path, metavar="F",
                   help="local Inception-v3 state dict (.safetensors/.pt) for FID/KID features "
                        "(needs torchvision; default: the statistics extractor)")
    i.add_argument("--no-progress", action="store_true", help="no progress bars")
    i.set_defaults(func=run)

    s = sub.add_parser("segmentation", help="score predicted instance masks against ground truth",
                       description=SEGMENTATION_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    s.add_argument("--gt", required=True, type=Path, metavar="DIR", help="folder of ground-truth label TIFFs")
    s.add_argument("--pred", required=True, type=Path, metavar="DIR", help="folder of predicted label TIFFs")
    s.add_argument("--json", type=Path, metavar="F", help="write all results (and per-image values) here")
    s.add_argument("--thresholds", type=float, nargs="+", metavar="T",
                   help="IoU thresholds of the table (default 0.5 0.55 ... 0.95)")
    s.add_argument("--tolerance", type=float, default=2.0,
                   help="boundary F1 tolerance in px (default 2, Eschweiler et al. 2019)")
    s.add_argument("--centroid-tolerance", type=float, default=5.0,
                   help="centroid detection tolerance in px (default 5, Eschweiler et al. 2021)")
    s.add_argument("--no-progress", action="store_true", help="no progress bars")
    s.set_defaults(func=run)


def run(args) -> int:
    if args.evaluate_command == "images":
        return _images(args)
    return _segmentation(args)


# --------------------------------------------------------------------------- helpers
def _folder(d: Path, sub: str) -> Path:
    """``d``, or ``d/sub`` when ``d`` is a dataset folder without TIFFs of its own."""
    d = Path(d)
    if d.is_dir() and (d / sub).is_dir() and not any(p.suffix.lower() in (".tif", ".tiff") for p in d.iterdir()):
        return d / sub
    return d


def _fmt(v) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, (int, np.integer)):
        return str(v)
    return f"{v:.4f}" if np.isfinite(v) else str(v)


def _read(folder: Path, what: str, reader, progress: bool) -> dict[str, np.ndarray]:
    from tqdm import tqdm

    files = list_images(folder, what=what)
    return {f.stem: reader(f) for f in tqdm(files, desc=f"read {what}", disable=not progress, leave=False,
                                            file=sys.stderr)}


def _write(path: Path | None, out: dict) -> None:
    if path:
        write_json(path, out)
        print(f"wrote {path}")


# --------------------------------------------------------------------------- images
def _images(args) -> int:
    from ..metrics import image as im
    from ..metrics.compare import compare_images

    progress = not args.no_progress
    if args.bins < 2:
        raise InputError(f"--bins must be >= 2, got {args.bins}")
    ex = im.InceptionExtractor(args.inception_weights) if args.inception_weights else im.default_extractor()
    real = _read(_folder(args.real, "images"), "real", read_image, progress)
    syn = _read(_folder(args.synthetic, "images"), "synthetic", read_image, progress)
    out = compare_images(real, syn, bins=args.bins, normalize=args.normalize, extractor=ex,
                         kid_subsets=args.kid_subsets, seed=args.seed, progress=progress)
    _print_images(out)
    _write(args.json, out)
    return 0


def _print_images(out: dict) -> None:
    h, f, sp, pa = out["histogram"], out["features"], out["spectrum"], out["paired"]
    print(f"real: {out['n_real']} images, synthetic: {out['n_synthetic']} images ({out['ndim']}D, "
          f"normalize={out['normalize']})")
    rows = [("histogram Bhattacharyya (-ln BC)", h["bhattacharyya"]), ("histogram Hellinger", h["hellinger"]),
            ("KL(real || synthetic)", h["kl_real_synthetic"]), ("FID*", f.get("fid")), ("KID*", f.get("kid")),
            ("log10 power spectrum MAE", sp["log10_mae"])]
    w = max(len(r[0]) for r in rows)
    for name, v in rows:
        print(f"  {name:<{w}}  {_fmt(v)}")
    print(f"  * {f['note']}")
    if pa["n_pairs"]:
        print(f"paired ({pa['n_pairs']} files with matching names):")
        for m in ("ssim", "psnr", "nrmse", "zncc", "ncc", "bhattacharyya", "profile_zncc"):
            print(f"  {m:<14} mean {_fmt(pa[m]['mean'])}  median {_fmt(pa[m]['median'])}")
    else:
        print("paired: none (no file names in common)")
    for sk in pa["skipped"]:
        print(f"  skipped '{sk['name']}': {sk['reason']}", file=sys.stderr)


# --------------------------------------------------------------------------- segmentation
def _segmentation(args) -> int:
    from ..metrics.compare import check_pairs, score_segmentations

    progress = not args.no_progress
    gt_dir, pred_dir = _folder(args.gt, "masks"), _folder(args.pred, "masks")
    # pairing by name is checked before any mask is read
    check_pairs((p.stem for p in list_images(gt_dir, what="ground-truth")),
                (p.stem for p in list_images(pred_dir, what="prediction")), f" in '{pred_dir}' / '{gt_dir}'")
    res = score_segmentations(_read(gt_dir, "ground-truth", read_labels, progress),
                              _read(pred_dir, "prediction", read_labels, progress),
                              thresholds=args.thresholds, tolerance=args.tolerance,
                              centroid_tolerance=args.centroid_tolerance, progress=progress)
    _print_segmentation(res)
    _write(args.json, res)
    return 0


def _print_segmentation(res: dict) -> None:
    print(f"{res['n_images']} image pairs, counts pooled over images")
    print(f"{'IoU':>5} {'tp':>6} {'fp':>6} {'fn':>6} {'precision':>9} {'recall':>7} {'f1':>7} "
          f"{'accuracy':>8} {'PQ':>7}")
    for r in res["per_threshold"]:
        print(f"{r['thresh']:>5.2f} {r['tp']:>6} {r['fp']:>6} {r['fn']:>6} {r['precision']:>9.4f} "
              f"{r['recall']:>7.4f} {r['f1']:>7.4f} {r['accuracy']:>8.4f} {r['panoptic_quality']:>7.4f}")
    print(f"AP@0.5 {_fmt(res['ap50'])}  AP@0.5:0.95 {_fmt(res['ap50_95'])}  PQ@0.5 {_fmt(res['pq50'])}  "
          f"SEG {_fmt(res['seg'])}")
    print(f"Dice {_fmt(res['dice'])}  boundary F1 (±{res['boundary_tolerance_px']:g} px) "
          f"{_fmt(res['boundary_f1'])}  centroid accuracy (±{res['centroid_tolerance_px']:g} px) "
          f"{_fmt(res['centroid_accuracy'])}  (means over images)")
