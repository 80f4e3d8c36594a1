"""cellsynth export: write a dataset in the layout of Cellpose, StarDist, nnU-Net, the CTC or OME-Zarr."""
from __future__ import annotations

import argparse

# format options: flag -> (option key, argparse kwargs); each is refused by formats it does not apply to
FORMAT_OPTIONS = {
    "--slices": ("slices", {"action": "store_true", "default": None,
                            "help": "cellpose, 3D: also write XY/XZ/YZ planes of the volume resampled to isotropic "
                                    "pixels (train_slices/, test_slices/)"}),
    "--min-masks": ("min_masks", {"type": int,
                                  "help": "cellpose --slices: drop planes with fewer objects (default 1)"}),
    "--n-rays": ("n_rays", {"type": int, "help": "stardist: rays of the star-convexity report (default 32)"}),
    "--star-tolerance": ("star_tolerance", {"type": float,
                                            "help": "stardist: an object losing more than this fraction of its "
                                                    "area to a star-convex shape counts as not star-convex "
                                                    "(default 0.05)"}),
    "--dataset-id": ("dataset_id", {"type": int, "help": "nnunet: NNN of DatasetNNN_Name (default 1)"}),
    "--dataset-name": ("dataset_name", {"help": "nnunet: Name of DatasetNNN_Name (default: the input folder's)"}),
    "--boundary-thickness": ("boundary_thickness", {"type": int, "help": "nnunet: boundary class width in px "
                                                                          "(default 1)"}),
    "--ngff-version": ("ngff_version", {"choices": ["0.4", "0.5"], "help": "omezarr: 0.4 = Zarr v2 (default), "
                                                                           "0.5 = Zarr v3"}),
    "--levels": ("levels", {"type": int, "help": "omezarr: pyramid levels, YX halved per level (default 3)"}),
    "--chunk": ("chunk", {"type": int, "help": "omezarr: chunk size along Y and X (default 256)"}),
}


def add_export_args(p: argparse.ArgumentParser) -> None:
    """Split and format options, shared by ``export`` and ``generate --export``."""
    p.add_argument("--test-fraction", type=float, default=0.0,
                   help="share of samples in the test split (cellpose, stardist, nnunet imagesTs, ctc sequence 02)")
    p.add_argument("--split-seed", type=int, default=0, help="seed of the train/test split")
    for flag, (_, kw) in FORMAT_OPTIONS.items():
        p.add_argument(flag, **kw)


def export_options(args: argparse.Namespace) -> dict:
    return {key: getattr(args, key) for key, _ in FORMAT_OPTIONS.values() if getattr(args, key) is not None}


def add_parser(sub) -> None:
    from ..export import FORMATS
    p = sub.add_parser("export", help="export a dataset for Cellpose, StarDist, nnU-Net, the CTC or OME-Zarr",
                       description="Write a cellsynth dataset (images/, masks/, manifest.json) in another tool's "
                                   "layout. An existing non-empty --out is refused unless it holds this same "
                                   "export, which is then resumed.")
    p.add_argument("--in", dest="source", required=True, metavar="DATASET", help="dataset folder")
    p.add_argument("--format", required=True, choices=FORMATS)
    p.add_argument("--out", required=True, metavar="DIR",
                   help="output folder (nnunet: the nnUNet_raw folder receiving DatasetNNN_Name)")
    add_export_args(p)
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..export import export_dataset
    s = export_dataset(args.source, args.format, args.out, test_fraction=args.test_fraction,
                       split_seed=args.split_seed, progress_bar=not args.no_progress,
                       options=export_options(args))
    print(summary_line(s))
    return 0


def summary_line(s: dict) -> str:
    line = f"exported {s['n_train']} train + {s['n_test']} test sample(s) as {s['format']} to {s['out']}"
    if s["format"] == "stardist":
        line += (f"; {s['not_star_convex']} of {s['objects']} object(s) not star-convex with {s['n_rays']} rays "
                 f"(see star_convexity.json)")
    if "slices" in s:
        line += f"; {s['slices']} slice(s)"
    return line
