"""Benchmark: cost of a 3D segmenter training step (32×64×64 patches, batch 8) and where the CPU time goes.

Trains ``cellsynth.segment.unet`` on ``nuclei3d-gonuclear/all`` minus one held-back volume
for ``--steps`` steps and reports wall s/step, CPU s/step split into user (computation) and
system (kernel: page faults, mapping memory) time, minor page faults and context switches per
step, peak RSS, and AP@0.5 on the held-back volume. ``--glibc-defaults`` trains without
:func:`cellsynth.allocator.retained_heap` (the state before the fix) for the comparison.
Prints a Markdown row; wall times on a shared machine are upper bounds, CPU times are not.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_segmenter_3d.py --steps 20 --threads 1
"""
from __future__ import annotations

import argparse
import contextlib
import resource
import sys
import time
from pathlib import Path

import torch

from benchutil import commit

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "nuclei3d-gonuclear" / "all"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--patch", type=int, nargs=3, default=[32, 64, 64])
    ap.add_argument("--config", type=Path, help="SegmenterConfig YAML (default: the defaults)")
    ap.add_argument("--hold-out", default="arabidopsis_1170", help="volume scored, not trained on")
    ap.add_argument("--glibc-defaults", action="store_true", help="train without retained_heap (before the fix)")
    ap.add_argument("--no-score", action="store_true")
    args = ap.parse_args()
    if not DATA.is_dir():
        print(f"skipped: {DATA} not present", file=sys.stderr)
        return 0
    torch.set_num_threads(args.threads)
    rev = commit()
    import tempfile

    import cellsynth.segment.unet as unet
    from cellsynth.dataset import read_pairs
    from cellsynth.io import read_image, read_labels
    from cellsynth.metrics.segmentation import matching

    if args.glibc_defaults:
        unet.retained_heap = lambda enabled=True: contextlib.nullcontext(False)
    cfg = unet.load_segmenter_config(args.config)
    cfg = cfg.model_copy(update={"steps": args.steps, "batch_size": args.batch_size, "patch": list(args.patch)})
    pairs = read_pairs(DATA)
    held = [p for p in pairs if p[0] == args.hold_out]
    with tempfile.TemporaryDirectory() as tmp:
        train = Path(tmp) / "train"
        for sub in ("images", "masks"):
            (train / sub).mkdir(parents=True)
        for name, img, mask in pairs:
            if name != args.hold_out:
                (train / "images" / img.name).symlink_to(img)
                (train / "masks" / mask.name).symlink_to(mask)
        r0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.time()
        seg = unet.train_segmenter([train], None, cfg, device="cpu", progress=False)
        wall, r1 = time.time() - t0, resource.getrusage(resource.RUSAGE_SELF)
    n = args.steps
    user, sys_ = (r1.ru_utime - r0.ru_utime) / n, (r1.ru_stime - r0.ru_stime) / n
    ap50 = "–"
    if held and not args.no_score:
        _, img, mask = held[0]
        ap50 = f"{matching(read_labels(mask), seg.predict(read_image(img)), thresh=0.5)['accuracy']:.3f}"
    load = open("/proc/loadavg").read().split()[0]
    mode = "glibc defaults" if args.glibc_defaults else "retained heap"
    print(f"commit {rev}; command: benchmarks/bench_segmenter_3d.py {' '.join(sys.argv[1:])}; load {load}")
    print("| heap | threads | steps | wall s/step | CPU user s/step | CPU sys s/step | sys % | minor faults/step "
          "| inv. ctx switches/step | peak RSS GB | AP@0.5 held-out |")
    print(f"| {mode} | {args.threads} | {n} | {wall / n:.2f} | {user:.2f} | {sys_:.2f} | "
          f"{100 * sys_ / max(user + sys_, 1e-9):.0f} | {(r1.ru_minflt - r0.ru_minflt) / n:.0f} | "
          f"{(r1.ru_nivcsw - r0.ru_nivcsw) / n:.0f} | {r1.ru_maxrss / 1e6:.2f} | {ap50} |")
    print(f"training loop {seg.config['training']['seconds']} s of {wall:.1f} s; loss curve tail "
          f"{seg.config['training']['loss_curve'][-3:]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
