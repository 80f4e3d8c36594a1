"""How well `cellsynth fit` recovers the physics renderer's effect strengths, and what they do to labels.

``recovery``: images rendered with KNOWN strengths (one effect at a time, the others off; 2D 256²
with 60 nuclei, 3D 32×96×96 with 30), measured as `cellsynth fit` measures real images
(classical detection, photon transfer, :func:`cellsynth.fit.effect_stats`); per strength the
median and range of the per-image estimates.

``real``: on real images (default DSB 2018 train), each effect measured per image with the
classical detection (as `cellsynth fit` does) and with the real masks (the same estimator on
the annotators' objects): medians, median absolute difference, correlation.

``labels``: scenes simulated and rendered from fitted overlays (e.g. `cellsynth fit` with
``render.physics.fit_effects`` off and on); per overlay the objects the classical detector finds
outside every labelled object (visible but unlabelled) and the labelled objects it finds
(visible), per image.

    OMP_NUM_THREADS=1 nice .venv/bin/python benchmarks/bench_fit_effects.py recovery
    cellsynth fit --images …/train/images --preset nuclei2d-dsb --out /tmp/off.yaml
    cellsynth fit --images …/train/images --preset nuclei2d-dsb --config ON.yaml --out /tmp/on.yaml
    OMP_NUM_THREADS=1 nice .venv/bin/python benchmarks/bench_fit_effects.py labels \\
        --config off=/tmp/off.yaml --config on=/tmp/on.yaml --n 40
"""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

from benchutil import commit, emit

EFFECTS = ("texture", "brightness_sd", "illumination", "background_texture")
CAMERA = dict(photons=(300.0, 300.0), background_photons=60.0, gain=2.0, offset=100.0, read_noise_e=2.0,
              autofluorescence=0.0, na=0.75, texture=0.0, background_scale_um=3.0)
GEOMETRY = {2: ((256, 256), 60, 8), 3: ((32, 96, 96), 30, 7)}
DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "nuclei2d-dsb2018" / "train"


def scene_config(ndim: int):
    """Round nuclei of one radius, well apart, in a field of 2D 256² / 3D 32×96×96 voxels of 0.5 µm."""
    from cellsynth.config import SceneConfig

    shape, n, r = GEOMETRY[ndim]
    return SceneConfig(shape=list(shape), spacing=[0.5] * ndim,
                       placement={"method": "poisson", "n_points": [n, n], "min_distance": 2 * r + 3},
                       nuclei={"shape": "ellipsoid", "radius": [r, r], "axis_scale": [[1.0, 1.0]] * ndim,
                               "rotate": False, "elastic": 0.0})


def recovery(values, n_images: int) -> dict:
    from cellsynth import fit
    from cellsynth.config import PhysicsConfig
    from cellsynth.io import write_tiff
    from cellsynth.render.physics import PhysicsRenderer
    from cellsynth.simulate import simulate_scene

    out: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        for ndim in (2, 3):
            scfg = scene_config(ndim)
            spacing = (0.5,) * ndim
            for effect in EFFECTS:
                for v in (0.0, *values):
                    cfg = PhysicsConfig(**{**CAMERA, effect: v})
                    paths = []
                    for seed in range(n_images):
                        rng = np.random.default_rng(seed)
                        img = PhysicsRenderer(cfg).render(simulate_scene(scfg, rng), rng)
                        paths.append(write_tiff(Path(tmp) / f"{ndim}_{effect}_{v}_{seed}.tif", img))
                    per = []
                    for p in paths:
                        s = fit.measure([p], physics=cfg, spacing=spacing, progress=False)
                        per.append(s.get(f"{effect}_p50"))
                    got = [x for x in per if x is not None]
                    row = {"true": v, "n_estimated": len(got), "of": n_images,
                           "median": float(np.median(got)) if got else None,
                           "min": float(np.min(got)) if got else None, "max": float(np.max(got)) if got else None}
                    out.setdefault(f"{ndim}D", {}).setdefault(effect, []).append(row)
                    print(f"{ndim}D {effect:<18} true {v:.2f}: median {row['median']}, range "
                          f"[{row['min']}, {row['max']}], {len(got)}/{n_images} images", flush=True)
    return out


def labels(configs: list[str], preset: str, n: int) -> dict:
    from cellsynth.config import load_config
    from cellsynth.fit_effects import unlabelled_detections
    from cellsynth.render import make_renderer
    from cellsynth.simulate import simulate_scene

    out = {}
    for item in configs:
        name, path = item.split("=", 1)
        cfg = load_config(preset, path)
        renderer = make_renderer("physics", cfg.render)
        unl, objs = [], []
        for i in range(n):
            sc = simulate_scene(cfg.scene, np.random.default_rng(i))
            img = renderer.render(sc, np.random.default_rng(10_000 + i))
            unl.append(unlabelled_detections(img, sc.labels))
            objs.append(sc.n_objects)
        out[name] = {"images": n, "unlabelled_detections_total": int(np.sum(unl)),
                     "images_with_any": int(np.sum(np.asarray(unl) > 0)),
                     "unlabelled_per_100_objects": float(100 * np.sum(unl) / max(np.sum(objs), 1)),
                     "objects": int(np.sum(objs))}
        print(name, out[name], flush=True)
    return out


def real_masks(images: Path, masks: Path, preset: str, n: int) -> dict:
    """Per image: each effect measured with the classical detection (what `cellsynth fit` does) and
    with the real masks (same estimator, the annotators' objects)."""
    from cellsynth import fit
    from cellsynth.config import load_config
    from cellsynth.io import list_images

    cfg = load_config(preset)
    paths = fit.subsample(list_images(images), n)
    mpaths = fit.masks_for(paths, masks)
    kw = dict(physics=cfg.render.physics, spacing=cfg.scene.spacing, progress=False)
    det = [fit.measure([p], **kw) for p in paths]
    ref = [fit.measure([p], [m], **kw) for p, m in zip(paths, mpaths)]
    out = {}
    for k in EFFECTS:
        pairs = [(d[f"{k}_p50"], r[f"{k}_p50"]) for d, r in zip(det, ref)]
        both = np.asarray([(a, b) for a, b in pairs if a is not None and b is not None], float).reshape(-1, 2)
        out[k] = {"images": len(paths), "detected_n": sum(a is not None for a, _ in pairs),
                  "masks_n": sum(b is not None for _, b in pairs),
                  "detected_median": float(np.median(both[:, 0])) if len(both) else None,
                  "masks_median": float(np.median(both[:, 1])) if len(both) else None,
                  "median_abs_diff": float(np.median(np.abs(both[:, 0] - both[:, 1]))) if len(both) else None,
                  "pearson_r": float(np.corrcoef(both.T)[0, 1]) if len(both) > 2 else None}
        print(k, out[k], flush=True)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="what", required=True)
    r = sub.add_parser("recovery")
    r.add_argument("--values", type=float, nargs="+", default=[0.15, 0.3])
    r.add_argument("--images", type=int, default=4, help="images per strength")
    lab = sub.add_parser("labels")
    lab.add_argument("--config", action="append", required=True, metavar="NAME=FILE")
    lab.add_argument("--preset", default="nuclei2d-dsb")
    lab.add_argument("--n", type=int, default=40, help="scenes per overlay")
    rm = sub.add_parser("real", help="effects measured with detected objects vs with the real masks")
    rm.add_argument("--images", type=Path, default=DATA / "images")
    rm.add_argument("--masks", type=Path, default=DATA / "masks")
    rm.add_argument("--preset", default="nuclei2d-dsb")
    rm.add_argument("--n", type=int, default=60, help="images, evenly spread")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    head = commit()
    if args.what == "recovery":
        res = recovery(args.values, args.images)
    elif args.what == "labels":
        res = labels(args.config, args.preset, args.n)
    else:
        res = real_masks(args.images, args.masks, args.preset, args.n)
    return emit({"commit": head, "what": args.what, "result": res}, args.json)


if __name__ == "__main__":
    raise SystemExit(main())
