"""Benchmark: the label-free size regressor (scale features + ridge) against the classical estimate.

Both estimate an image's median object diameter without labels; the truth is the masks' median
equivalent diameter (:func:`cellsynth.segment.rescale.labels_diameter`). Estimates:

- ``classical``: :func:`cellsynth.segment.rescale.image_diameter` (median Otsu component),
- ``regressor``: :func:`cellsynth.segment.scale_features.predict_diameter` of a model from
  :func:`fit_size_model` (the classical estimate where the two agree within the model's gate), and
  ``regressor_alone`` (gate 0: the ridge regressor's own estimate), the model fitted on

  1. ``holdout``: nuclei2d-dsb2018 ``train`` without every 10th image, scored on every 10th (the
     split of ``bench_segmenter.py --holdout 10``),
  2. ``val``: all of ``train``, scored on ``val`` (reported only; nothing is chosen on it),
  3. ``synthetic``: pairs the project's CLI generates (``cellsynth generate --preset nuclei2d-dsb
     --renderer physics``), scored on all of ``train`` and on ``val`` — once at the preset's defaults
     (``default``), once with the preset's nucleus radius swept over bands of 3–48 px (``sweep``,
     ``--set scene.nuclei.radius=[lo,hi]``, the same number of images in each band), and once the
     default pairs each resized by a log-uniform random factor in [0.4, 2.5] (``zoomed``).

Per estimate: median |log2(estimate / truth)|, the share of images within √2 and within 2×, the
worst 5 images, and ms per image.

    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python benchmarks/bench_size_estimate.py --json /tmp/size.json
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench_segmenter import _split
from benchutil import commit, emit

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "nuclei2d-dsb2018"
# nucleus radius bands (px) of the synthetic size sweep
BANDS = ([3.0, 6.0], [5.0, 10.0], [8.0, 16.0], [14.0, 28.0], [24.0, 48.0])
ZOOM = (0.4, 2.5)


def _load(pairs):
    from cellsynth.io import read_image, read_labels
    return [(name, read_image(img), read_labels(mask)) for name, img, mask in pairs]


def _generate(out: Path, n: int, seed: int, radius: list[float] | None = None) -> Path:
    """``n`` pairs from the nuclei2d-dsb preset with the physics renderer, via the CLI (resumes)."""
    cmd = [sys.executable, "-m", "cellsynth", "generate", "--preset", "nuclei2d-dsb", "--renderer", "physics",
           "--n", str(n), "--seed", str(seed), "--out", str(out), "--no-progress", "-q"]
    if radius is not None:
        cmd += ["--set", f"scene.nuclei.radius={radius}"]
    subprocess.run(cmd, check=True)
    return out


def _zoomed(pairs, seed: int):
    """Every pair resized by one log-uniform random factor in ``ZOOM`` (images linear, masks nearest)."""
    from cellsynth.segment.rescale import resize, scaled_shape
    rng = np.random.default_rng(seed)
    out = []
    for name, img, mask in pairs:
        shape = scaled_shape(img.shape, float(np.exp(rng.uniform(*np.log(ZOOM)))))
        out.append((name, resize(img, shape), resize(mask, shape, labels=True)))
    return out


def _score(names, truth, est) -> dict:
    """Accuracy of diameter estimates against the masks' (images without objects left out)."""
    truth, est = np.asarray(truth, float), np.asarray(est, float)
    ok = np.isfinite(truth)
    r = np.abs(np.log2(est[ok] / truth[ok]))
    r = np.where(np.isfinite(r), r, np.inf)  # no estimate counts as a miss
    worst = np.argsort(-r)[:5]
    kept = [n for n, o in zip(names, ok) if o]
    return {
        "images": int(ok.sum()),
        "median_abs_log2": round(float(np.median(r)), 3),
        "within_sqrt2": round(float(np.mean(r <= 0.5)), 3),
        "within_2x": round(float(np.mean(r <= 1.0)), 3),
        "no_estimate": int((~np.isfinite(est[ok])).sum()),
        "worst5": [{"image": kept[i], "true": round(float(truth[ok][i]), 1),
                    "estimate": round(float(est[ok][i]), 1) if np.isfinite(est[ok][i]) else None}
                   for i in worst],
    }


def _estimates(model, pairs):
    """(names, true diameters, classical, regressor (gated), regressor alone (gate 0), classical s,
    regressor s)."""
    from cellsynth.segment.rescale import image_diameter, labels_diameter
    from cellsynth.segment.scale_features import predict_diameter
    names, truth, cls, reg, alone, t_cls, t_reg = [], [], [], [], [], 0.0, 0.0
    for name, img, mask in pairs:
        names.append(name)
        truth.append(labels_diameter(mask) or np.nan)
        t0 = time.perf_counter()
        cls.append(image_diameter(img) or np.nan)
        t1 = time.perf_counter()
        reg.append(np.nan if model is None else predict_diameter(model, img) or np.nan)
        t_reg += time.perf_counter() - t1
        t_cls += t1 - t0
        alone.append(np.nan if model is None else predict_diameter({**model, "gate_log2": 0.0}, img) or np.nan)
    return names, truth, cls, reg, alone, t_cls, t_reg


def _fit(pairs) -> tuple[dict, float]:
    from cellsynth.segment.scale_features import fit_size_model
    t0 = time.perf_counter()
    model = fit_size_model([p[1] for p in pairs], [p[2] for p in pairs])
    return model, time.perf_counter() - t0


def _summary(model: dict, fit_s: float) -> dict:
    return {"pairs": model["n"], "alpha": model["ridge"]["alpha"], "gate_log2": model["gate_log2"],
            "ridge_loo_rmse_log2": round(model["ridge"]["loo_rmse"] / np.log(2), 3),
            "cv_median_abs_log2": round(model["cv_median_abs_log2"], 3),
            "cv_within_sqrt2": round(model["cv_within_sqrt2"], 3),
            "diameter_range": [round(d, 1) for d in model["diameter_range"]], "fit_s": round(fit_s, 1)}


def _evaluate(model, pairs, with_classical: bool = True) -> dict:
    names, truth, cls, reg, alone, t_cls, t_reg = _estimates(model, pairs)
    out = {"regressor": _score(names, truth, reg), "regressor_alone": _score(names, truth, alone),
           "regressor_ms_per_image": round(1000 * t_reg / len(pairs), 1)}
    if with_classical:
        out["classical"] = _score(names, truth, cls)
        out["classical_ms_per_image"] = round(1000 * t_cls / len(pairs), 1)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DATA, help="dataset folder with train/ and val/")
    ap.add_argument("--n-synthetic", type=int, default=200, help="synthetic pairs per synthetic training set")
    ap.add_argument("--synthetic-dir", type=Path, help="keep the generated pairs here (default: a temporary folder)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path, help="also write the result here")
    args = ap.parse_args()
    if not (args.data / "train").is_dir():
        print(f"skipped: {args.data / 'train'} not present", file=sys.stderr)
        return 0
    rev = commit()
    from cellsynth.dataset import read_pairs

    result = {"commit": rev, "data": args.data.name}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        train_dirs, held = _split(10, tmp)
        held = _load(held)
        fit_pairs = _load(read_pairs(train_dirs[0]))
        train_all = _load(read_pairs(args.data / "train"))
        val = _load(read_pairs(args.data / "val"))
        model, fit_s = _fit(fit_pairs)
        result["holdout"] = {"fit": _summary(model, fit_s), **_evaluate(model, held)}
        model, fit_s = _fit(train_all)
        result["val"] = {"fit": _summary(model, fit_s), **_evaluate(model, val)}
        result["classical_on_train"] = _evaluate(None, train_all)["classical"]

        syn_root = args.synthetic_dir or tmp / "synthetic"
        t0 = time.perf_counter()
        default = _load(read_pairs(_generate(syn_root / "default", args.n_synthetic, args.seed)))
        per_band = -(-args.n_synthetic // len(BANDS))
        sweep = [p for k, band in enumerate(BANDS)
                 for p in _load(read_pairs(_generate(syn_root / f"sweep{k}", per_band, args.seed + 1 + k, band)))]
        gen_s = time.perf_counter() - t0
        result["synthetic_generate_s"] = round(gen_s, 1)
        for name, pairs in (("default", default), ("sweep", sweep), ("zoomed", _zoomed(default, args.seed))):
            model, fit_s = _fit(pairs)
            result[f"synthetic_{name}"] = {"fit": _summary(model, fit_s),
                                           "on_train": _evaluate(model, train_all, False),
                                           "on_val": _evaluate(model, val, False)}
    return emit(result, args.json)


if __name__ == "__main__":
    sys.exit(main())
