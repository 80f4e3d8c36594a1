"""``cellsynth evaluate images|segmentation``: realism of synthetic images, accuracy of segmentations."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Optional

import numpy as np

from ..io import list_images, read_image, read_labels, write_json

from ..errors import InputError

IMAGES_HELP = """Compare a folder of synthetic images with a folder of real images (2D or 3D TIFFs).

Unpaired (any file names, any sizes): Bhattacharyya distance -ln sum sqrt(p q) and Hellinger
distance of the pooled intensity histograms, KL(real || synthetic), FID and KID on features of
the default extractor, and the mean log10 radially averaged power spectrum of each set.
Paired (files with the same name and shape in both folders): SSIM, PSNR, NRMSE, ZNCC, NCC, and
the ZNCC of the intensity profiles along x (seed 001 Fig 7: 3D = centre xz-slice summed over z).

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
                   help="boundary F1 tolerance in px (default 2, seed 000)")
    s.add_argument("--centroid-tolerance", type=float, default=5.0,
                   help="centroid detection tolerance in px (default 5, seed 001)")
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


def _progress(it, disable: bool, desc: str, total: Optional[int] = None):
    from tqdm import tqdm
    return tqdm(it, desc=desc, total=total, disable=disable, leave=False, file=sys.stderr)


def _fmt(v) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, (int, np.integer)):
        return str(v)
    return f"{v:.4f}" if np.isfinite(v) else str(v)


def _read_set(folder: Path, what: str, progress: bool) -> dict[str, np.ndarray]:
    files = list_images(folder, what=what)
    return {f.stem: read_image(f) for f in _progress(files, not progress, f"read {what}")}


def _check_ndim(sets: dict[str, dict[str, np.ndarray]]) -> int:
    dims = {(w, n): a.ndim for w, s in sets.items() for n, a in s.items()}
    nds = set(dims.values())
    if len(nds) > 1:
        w2 = next(k for k, v in dims.items() if v != next(iter(dims.values())))
        raise InputError(f"all images must be 2D or all 3D; {w2[0]} image '{w2[1]}' is {dims[w2]}D "
                         f"but others are {next(iter(dims.values()))}D")
    return nds.pop()


# --------------------------------------------------------------------------- images
def _images(args) -> int:
    from ..metrics import image as im
    from ..metrics.stats import summary

    progress = not args.no_progress
    if args.bins < 2:
        raise InputError(f"--bins must be >= 2, got {args.bins}")
    ex = im.InceptionExtractor(args.inception_weights) if args.inception_weights else im.default_extractor()
    real = _read_set(_folder(args.real, "images"), "real", progress)
    syn = _read_set(_folder(args.synthetic, "images"), "synthetic", progress)
    ndim = _check_ndim({"real": real, "synthetic": syn})

    if args.normalize == "percentile":
        norm = im.normalize_percentile
        rng: Optional[tuple[float, float]] = (0.0, 1.0)
        data_range: Optional[float] = 1.0
    else:
        norm = lambda a: np.asarray(a, dtype=np.float64)  # noqa: E731
        rng, data_range = None, None
    r = {k: norm(v) for k, v in real.items()}
    s = {k: norm(v) for k, v in syn.items()}

    out: dict = {"n_real": len(r), "n_synthetic": len(s), "ndim": ndim, "normalize": args.normalize,
                 "bins": args.bins}
    rl, sl = list(r.values()), list(s.values())
    out["histogram"] = {
        "bhattacharyya": im.histogram_distance(rl, sl, bins=args.bins, range=rng),
        "hellinger": im.histogram_distance(rl, sl, bins=args.bins, range=rng, form="hellinger"),
        "kl_real_synthetic": im.histogram_kl(rl, sl, bins=args.bins, range=rng),
    }

    fr = ex(rl, progress=progress)
    fs = ex(sl, progress=progress)
    feat: dict = {"extractor": ex.name, "note": ex.note, "n_features": int(fr.shape[1])}
    if len(rl) >= 2 and len(sl) >= 2:
        feat["fid"] = im.fid(fr, fs)
        kid_mean, kid_std = im.kid(fr, fs, n_subsets=args.kid_subsets, subset_size=1000, seed=args.seed)
        feat.update(kid=kid_mean, kid_std=kid_std, kid_subset_size=min(1000, len(rl), len(sl)))
    else:
        feat.update(fid=None, kid=None, kid_std=None, reason="FID/KID need at least 2 images per set")
    out["features"] = feat

    grid = np.linspace(0.5 / 32, 0.5, 32)  # cycles/px, common to all image sizes
    spec = {}
    for name, imgs in (("real", rl), ("synthetic", sl)):
        logs = []
        for a in imgs:
            f, p = im.radial_power_spectrum(a)
            logs.append(np.interp(grid, f, np.log10(np.maximum(p, 1e-12))))
        spec[name] = np.mean(logs, axis=0)
    out["spectrum"] = {"freq_cycles_per_px": grid.tolist(), "real_log10_power": spec["real"].tolist(),
                       "synthetic_log10_power": spec["synthetic"].tolist(),
                       "log10_mae": float(np.mean(np.abs(spec["real"] - spec["synthetic"])))}

    # paired metrics where names (and shapes) match
    per, skipped = {}, []
    for name in sorted(set(r) & set(s)):
        a, b = r[name], s[name]
        if a.shape != b.shape:
            skipped.append({"name": name, "reason": f"shapes differ: real {a.shape}, synthetic {b.shape}"})
            continue
        per[name] = {"ssim": im.ssim(a, b, data_range=data_range), "psnr": im.psnr(a, b, data_range=data_range),
                     "nrmse": im.nrmse(a, b), "zncc": im.zncc(a, b), "ncc": im.ncc(a, b),
                     "bhattacharyya": im.histogram_distance(a, b, bins=args.bins, range=rng),
                     "profile_zncc": im.zncc(*(im.intensity_profile(x, axis=-1, center_axis=-2 if ndim == 3 else None)
                                              for x in (a, b)))}
    paired: dict = {"n_pairs": len(per), "skipped": skipped}
    if per:
        for m in ("ssim", "psnr", "nrmse", "zncc", "ncc", "bhattacharyya", "profile_zncc"):
            paired[m] = summary([v[m] for v in per.values() if np.isfinite(v[m])])
        paired["per_image"] = per
    out["paired"] = paired

    _print_images(out)
    if args.json:
        write_json(args.json, out)
        print(f"wrote {args.json}")
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
def _pairs(gt_dir: Path, pred_dir: Path) -> list[tuple[str, Path, Path]]:
    gts = {p.stem: p for p in list_images(gt_dir, what="ground-truth")}
    preds = {p.stem: p for p in list_images(pred_dir, what="prediction")}
    missing = sorted(set(gts) - set(preds))
    extra = sorted(set(preds) - set(gts))
    if missing:
        raise InputError(f"{len(missing)} ground-truth mask(s) have no prediction of the same name in "
                         f"'{pred_dir}' (e.g. {', '.join(missing[:3])})")
    if extra:
        raise InputError(f"{len(extra)} prediction(s) have no ground-truth mask of the same name in "
                         f"'{gt_dir}' (e.g. {', '.join(extra[:3])})")
    return [(n, gts[n], preds[n]) for n in sorted(gts)]


def _segmentation(args) -> int:
    from ..metrics import segmentation as sg
    from ..metrics.stats import summary

    progress = not args.no_progress
    table_thr = [float(t) for t in (args.thresholds or sg.DEFAULT_THRESHOLDS)]
    for t in table_thr:
        if not 0.0 < t <= 1.0:
            raise InputError(f"--thresholds must lie in (0, 1], got {t}")
    pairs = _pairs(_folder(args.gt, "masks"), _folder(args.pred, "masks"))
    data = []
    for name, gp, pp in _progress(pairs, not progress, "read masks"):
        g, p = read_labels(gp), read_labels(pp)
        if g.shape != p.shape:
            raise InputError(f"prediction '{pp}' has shape {p.shape} but ground truth '{gp}' has {g.shape}")
        data.append((name, g, p))

    std = list(sg.DEFAULT_THRESHOLDS)
    thrs = sorted(set(table_thr) | set(std))
    per_image, seg_j = {}, []
    per_thr_rows = [[] for _ in thrs]
    for name, g, p in _progress(data, not progress, "score"):
        rows = sg.matching(g, p, thresh=thrs)
        for k, r in enumerate(rows):
            per_thr_rows[k].append(r)
        acc = {t: r["accuracy"] for t, r in zip(thrs, rows)}
        j = sg.seg_per_object(g, p)
        seg_j.append(j)
        bf = sg.boundary_f1(g, p, tolerance=args.tolerance)
        ca = sg.centroid_accuracy(g, p, tolerance=args.centroid_tolerance)
        per_image[name] = {
            "n_true": rows[0]["n_true"], "n_pred": rows[0]["n_pred"],
            "ap50": acc[0.5], "ap50_95": float(np.mean([acc[t] for t in std])),
            "f1_50": rows[thrs.index(0.5)]["f1"], "pq_50": rows[thrs.index(0.5)]["panoptic_quality"],
            "dice": sg.dice(g, p), "seg": float(j.mean()) if j.size else float("nan"),
            "boundary_f1": bf["f1"], "centroid_accuracy": ca["accuracy"],
        }

    # pool counts over images per threshold (StarDist matching_dataset, by_image=False)
    pooled = {t: sg.pool_matching(rows) for t, rows in zip(thrs, per_thr_rows)}
    all_j = np.concatenate(seg_j) if seg_j else np.zeros(0)
    res: dict = {
        "n_images": len(data),
        "ap50": pooled[0.5]["accuracy"],
        "ap50_95": float(np.mean([pooled[t]["accuracy"] for t in std])),
        "pq50": pooled[0.5]["panoptic_quality"],
        "seg": float(all_j.mean()) if all_j.size else float("nan"),
        "dice": summary([v["dice"] for v in per_image.values()])["mean"],
        "boundary_f1": summary([v["boundary_f1"] for v in per_image.values()])["mean"],
        "boundary_tolerance_px": args.tolerance,
        "centroid_accuracy": summary([v["centroid_accuracy"] for v in per_image.values()])["mean"],
        "centroid_tolerance_px": args.centroid_tolerance,
        "per_threshold": [pooled[t] for t in table_thr],
        "per_image_summary": {m: summary([v[m] for v in per_image.values()])
                              for m in ("ap50", "ap50_95", "dice", "seg", "boundary_f1")},
        "per_image": per_image,
    }
    _print_segmentation(res)
    if args.json:
        write_json(args.json, res)
        print(f"wrote {args.json}")
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
