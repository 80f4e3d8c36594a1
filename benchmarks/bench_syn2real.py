"""Syn2Real benchmark on real data, and the fit-vs-masks check.

--fit-only: fit the simulation to the *unannotated* training images (classical detection)
and compare the fitted statistics with the same statistics measured on the real masks;
prints a markdown table (and the overlay).

Otherwise: runs ``cellsynth benchmark syn2real`` (quick or default settings) and prints
the arms table, the targets and the image metrics as markdown.

    .venv/bin/python benchmarks/bench_syn2real.py --fit-only
    .venv/bin/python benchmarks/bench_syn2real.py --quick --out /tmp/syn2real_quick
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "nuclei2d-dsb2018"

ROWS = [("radius_p5", "equivalent radius p5 (px)"), ("radius_p50", "equivalent radius p50 (px)"),
        ("radius_p95", "equivalent radius p95 (px)"), ("axis_ratio_p5", "minor/major axis ratio p5"),
        ("axis_ratio_p50", "minor/major axis ratio p50"), ("objects_per_image_p50", "objects per image p50"),
        ("density_p5", "density p5 (objects / 10⁴ px)"), ("density_p50", "density p50 (objects / 10⁴ px)"),
        ("density_p95", "density p95 (objects / 10⁴ px)"), ("nn_distance_p5", "nearest-neighbour distance p5 (px)"),
        ("nn_distance_p50", "nearest-neighbour distance p50 (px)"), ("coverage_p50", "foreground fraction p50"),
        ("touching_p50", "touching fraction p50 (objects sharing a face)"),
        ("intensity_p5", "object intensity p5 (normalised)"), ("intensity_p50", "object intensity p50 (normalised)"),
        ("intensity_p95", "object intensity p95 (normalised)"), ("background_p50", "background p50 (normalised)"),
        ("gain", "camera gain (ADU/e⁻, photon transfer)"), ("offset", "offset (ADU)"),
        ("photons_p50", "object photons p50")]


def fit_only(args) -> None:
    from cellsynth.fit import fit_config, measure, subsample
    from cellsynth.io import list_images

    split = Path(args.data) / "train"
    images = list_images(split / "images")
    t0 = time.time()
    overlay, fitted, _ = fit_config(images, args.preset, max_images=args.max_images or None, progress=False)
    t_fit = time.time() - t0
    used = subsample(images, args.max_images or None)
    ref = measure(used, [split / "masks" / p.name for p in used], progress=False)
    print(f"fit on {fitted['n_images']} images ({fitted['n_objects_total']} detected objects; masks: "
          f"{ref['n_objects_total']} objects) in {t_fit:.1f} s\n")
    print("| statistic | fitted (detections, no labels) | real masks | rel. error |")
    print("|---|---|---|---|")
    for key, name in ROWS:
        f, r = fitted.get(key), ref.get(key)
        if f is None or r is None:
            continue
        scale = 1e4 if key.startswith("density") else 1.0
        rel = abs(f - r) / abs(r) if r else float("nan")
        print(f"| {name} | {f * scale:.3g} | {r * scale:.3g} | {rel:.0%} |")
    conditions = overlay["scene"].pop("conditions", [])
    print(f"\noverlay ({len(conditions)} per-image records in scene.conditions, not shown):\n" + json.dumps(overlay))


def benchmark(args) -> None:
    cmd = [sys.executable, "-m", "cellsynth.cli", "benchmark", "syn2real",
           "--train-images", str(Path(args.data) / "train" / "images"),
           "--train-masks", str(Path(args.data) / "train" / "masks"),
           "--test", str(Path(args.data) / "val"), "--preset", args.preset, "--out", args.out,
           "--no-progress"] + (["--quick"] if args.quick else []) + args.extra
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    print("$ " + " ".join(cmd), flush=True)
    t0 = time.time()
    subprocess.run(cmd, check=True)
    wall = time.time() - t0
    print(f"\nwall {wall / 60:.1f} min\n")
    print_report(json.loads((Path(args.out) / "report.json").read_text()))


def print_report(rep: dict) -> None:
    """The report's tables as markdown: arms, targets, renderer choice, image metrics, tests, timings."""
    print("| arm | AP@0.5 | AP@0.5:0.95 | Dice | SEG | trained on |")
    print("|---|---|---|---|---|---|")
    for a, d in rep["arms"].items():
        s = d["summary"]
        print(f"| {a} | {s['ap50']:.3f} | {s['ap50_95']:.3f} | {s['dice']:.3f} | {s['seg']:.3f} | {d['training']} |")
    print("\ntargets:", json.dumps(rep.get("targets")))
    ch = rep.get("renderer_choice")
    if ch:
        crit = list(ch["by_criterion"])
        print(f"\nlabel-free renderer choice vs {ch['real_images']} unannotated training images "
              f"(default {ch['criterion']}; agreement on {ch.get('agreement_images', 0)} images):\n")
        print("| renderer | " + " | ".join(crit) + " | AP@0.5 (test) |")
        print("|---" * (len(crit) + 2) + "|")
        for r, sc in ch["scores"].items():
            vals = " | ".join("–" if sc.get(c) is None else f"{sc[c]:.4g}" for c in crit)
            ap = ch["ap50_by_renderer"].get(r)
            print(f"| {r} | {vals} | {'–' if ap is None else f'{ap:.3f}'} |")
        print(f"\nbest by the test labels: {ch['best_by_labels']} ({ch['best_ap50']:.3f})")
        from cellsynth.benchmark.choose import choice_text
        gap = "n/a" if ch.get("gap_ap50") is None else f"{ch['gap_ap50']:+.3f}"
        print(f"label-free choice ({ch['criterion']}): {choice_text(ch)}, gap {gap}")
        for c, b in ch["by_criterion"].items():
            print(f"  {c}: chooses {b['chosen']} (AP@0.5 {b['ap50']:.3f}, gap {b['gap_ap50']:+.3f})")
        if "pooled_ap50" in ch:
            print(f"  Syn2Real-pooled: AP@0.5 {ch['pooled_ap50']:.3f}, gap {ch['pooled_gap_ap50']:+.3f}")
    print("\n| renderer | histogram Bhattacharyya | KL | spectrum abs. diff. of log10 P |")
    print("|---|---|---|---|")
    for r, m in rep["image_metrics"].items():
        h = m["histogram"]
        print(f"| {r} | {h['bhattacharyya']:.3f} | {h['kl_real_synthetic']:.3f} | {m['spectrum']['log10_mae']:.3f} |")
    print("\nrank-sum (AP@0.5):")
    for t in rep["tests"]:
        print(f"  {t['a']} vs {t['b']}: p = {t['p_value']:.3g}")
    print("\ntimings:", json.dumps(rep["timings_s"]))
    if rep.get("diffusion_model"):
        print("diffusion model:", json.dumps(rep["diffusion_model"]))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=str(DATA), help="dataset with train/ and val/")
    p.add_argument("--preset", default="nuclei2d-dsb")
    p.add_argument("--fit-only", action="store_true")
    p.add_argument("--max-images", type=int, default=0, help="fit-only: images used (0 = all)")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default="/tmp/cellsynth_syn2real")
    p.add_argument("--report-only", action="store_true", help="print the tables of an existing --out report")
    p.add_argument("extra", nargs="*", help="further `cellsynth benchmark syn2real` options after --")
    args = p.parse_args()
    if not Path(args.data).is_dir():
        sys.exit(f"data '{args.data}' not found")
    if args.report_only:
        print_report(json.loads((Path(args.out) / "report.json").read_text()))
    else:
        fit_only(args) if args.fit_only else benchmark(args)


if __name__ == "__main__":
    main()
