"""cellsynth fit: fit a preset's simulation and renderers to your own unannotated images."""
from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import ConfigError


def add_parser(sub) -> None:
    p = sub.add_parser(
        "fit", help="fit object size/shape/density/intensity to your unannotated images -> config YAML",
        description="Detect objects classically (scale-adaptive Otsu + distance watershed) in unannotated "
                    "images and measure equivalent radius (5th-95th percentile), axis ratios, density, "
                    "neighbour distances, touching, intensities and camera noise (photon transfer), pooled "
                    "and as one joint record per image (scene.conditions: each synthetic scene draws one), "
                    "and the widefield effect strengths of the physics renderer (illumination, background "
                    "texture, brightness heterogeneity, chromatin texture; into the records when the "
                    "preset sets render.physics.fit_effects). "
                    "Writes a YAML overlay (keys of the preset's config) for "
                    "`simulate/generate/benchmark --preset P --config OUT`.")
    p.add_argument("--images", required=True, metavar="DIR", help="folder of single-channel 2D/3D TIFFs")
    p.add_argument("--preset", required=True, metavar="P", help="preset to fit onto, e.g. nuclei2d-dsb")
    p.add_argument("--config", metavar="FILE", help="YAML merged onto the preset before fitting")
    p.add_argument("--out", required=True, metavar="CONFIG.yaml", help="overlay YAML to write")
    p.add_argument("--masks", metavar="DIR",
                   help="optional real masks (same names): also print the same statistics measured on "
                        "them, to judge the fit (never used for the fit itself)")
    p.add_argument("--max-images", type=int, default=100,
                   help="use at most this many images, evenly spread (default 100; 0 = all)")
    p.add_argument("--pooled-only", action="store_true",
                   help="write only the pooled ranges, not the per-image records (scene.conditions)")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..config import load_config, preset_dict
    from ..fit import EFFECT_KEYS, RECORD_KEYS, compare_with_masks, fit_config, masks_for, subsample, write_overlay
    from ..io import check_writable, list_images

    out = Path(args.out)
    if out.suffix.lower() not in (".yaml", ".yml"):
        raise ConfigError(f"--out '{out}' must end in .yaml or .yml")
    check_writable(out, "--out", folder=False)
    if args.max_images < 0:
        raise ConfigError(f"--max-images {args.max_images} must be >= 0")
    preset_dict(args.preset)  # unknown preset -> one-line error before any work
    images = list_images(args.images)
    max_images = args.max_images or None
    if args.masks:
        masks_for(subsample(images, max_images), args.masks)  # every mask present, before any work
    overlay, summary, cfg = fit_config(images, args.preset, args.config, max_images=max_images,
                                        progress=not args.no_progress, per_image=not args.pooled_only)
    write_overlay(out, overlay, summary, source=str(args.images))
    load_config(args.preset, out)  # the file as written must load
    print(f"fitted {summary['n_images']} image(s), {summary['n_objects_total']} object(s): "
          f"radius {overlay['scene']['nuclei']['radius']}, n_points {overlay['scene']['placement']['n_points']}, "
          f"{len(overlay['scene'].get('conditions', []))} per-image records")
    eff = [f"{k} {summary[k + '_p50']:.3g} ({summary[k + '_n']} images)" for k in EFFECT_KEYS
           if summary.get(k + "_p50") is not None and k not in RECORD_KEYS]  # those: next lines
    if eff:
        print("effect strengths, median over the images that allow them: " + ", ".join(eff)
              + ("" if cfg.render.physics.fit_effects else " (not in the records: render.physics.fit_effects "
                 "is off)"))
    what = {"cytoplasm": "light next to the objects / their brightness", "thickness": "the nuclei's dome weight",
            "brightness_sd": "s.d. of the objects' log brightness"}
    for k in RECORD_KEYS:
        if summary.get(f"{k}_p50") is not None:
            print(f"{k} ({what[k]}) {summary[k + '_p50']:.3g}, median of {summary[k + '_n']} images"
                  + (" (in the records)" if getattr(cfg.render.physics, k) > 0 else
                     f" (not in the records: render.physics.{k} is 0)"))
    if args.masks:
        print(f"{'statistic':<24}{'fitted':>12}{'from masks':>12}{'rel.err':>9}")
        for r in compare_with_masks(images, args.masks, summary, max_images, progress=not args.no_progress):
            print(f"{r['statistic']:<24}{r['fitted']:>12.4g}{r['reference']:>12.4g}{r['rel_error']:>9.2f}")
    print(f"wrote {out}")
    return 0
