"""Syn2Real benchmark: does a segmenter trained on synthetic data segment real images?

Arms, all scored on the same annotated real test set (Eschweiler et al. 2021 §4.3, 2024):

- **Real2Real**: the segmenter trained on real annotated training data (only when
  training masks are given);
- **Syn2Real** per renderer (physics, sketch, diffusion): trained only on N
  synthetic samples simulated from a config fitted to the unannotated training
  images (:mod:`cellsynth.evaluate.fit`), no real annotation anywhere;
- **Syn2Real-pooled**: trained on the union of the renderers' synthetic datasets, with the same
  segmenter and the same number of steps as every other arm (so it differs from the per-renderer arms
  only in its data); with three or more renderers, the least-agreeing renderer is left out, one at a time,
  while its segmenter agrees significantly less with the others than the best-agreeing one's and three or
  more remain (:func:`cellsynth.benchmark.choose.agreeing_renderers`);
- **Mix2Real**: real + synthetic from the renderer whose Syn2Real arm scores the best AP@0.5 on a
  validation split of the annotated *training* images (``val_images`` of them), never on the test set;
- **classical**: scale-adaptive Otsu + distance watershed (smoothing, seed spacing and minimum
  size follow each image's median object size), no training.

Per test image: AP@0.5 (TP/(TP+FP+FN) at IoU 0.5, the DSB/StarDist "accuracy"),
AP@0.5:0.95 (its mean over IoU thresholds 0.5, 0.55, ..., 0.95), foreground Dice
and the CTC SEG score. Arms are compared by a two-sided Wilcoxon rank-sum test
on the per-image AP@0.5 (Eschweiler et al. 2024). Each renderer's images are compared with the
real test images by intensity-histogram Bhattacharyya distance and KL divergence
(Eschweiler et al. 2024 eq. 4/5, on percentile-normalised images) and radially averaged power
spectra. The renderer a user without any annotation would pick is chosen label-free by
:func:`cellsynth.benchmark.choose.choose_renderer` (default "auto": with three or more renderers the
Syn2Real segmenters' agreement on unannotated training images, else KID of each renderer's images to
those images; every criterion is reported; with the agreement the choice is the pool of the renderers
it keeps, the Syn2Real-pooled arm: it cannot rank the last two), and the report gives how far that
choice and the pooled arm fall from the best Syn2Real arm by the test labels. The result is
``REPORT/report.json`` and a self-contained ``REPORT/report.html`` (:mod:`cellsynth.evaluate.report`).
"""
from __future__ import annotations

import os
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..config import Config, config_to_dict, deep_merge, load_config, load_yaml, preset_dict, validate
from ..errors import ConfigError, InputError
from ..io import check_writable, list_images, read_image, read_labels, write_json

ARMS_ORDER = ("Real2Real", "Syn2Real-physics", "Syn2Real-sketch", "Syn2Real-diffusion", "Syn2Real-pooled", "Mix2Real",
              "classical")
POOLED = "Syn2Real-pooled"
METRICS = ("ap50", "ap50_95", "dice", "seg")
METRIC_NAMES = {"ap50": "AP@0.5", "ap50_95": "AP@0.5:0.95", "dice": "Dice", "seg": "SEG"}
SHIPPED_MODEL = Path(__file__).resolve().parents[1] / "models" / "nuclei2d-dsb"


@dataclass
class BenchmarkSettings:
    """Everything the benchmark does; :func:`quick_settings` gives the small version.

    Parameters
    ----------
    train_images : folder of real training images (unannotated use: fit + diffusion training).
    test : folder with ``images/`` and ``masks/`` (the real annotated test set).
    out : report folder (``report.html``, ``report.json``, ``config.yaml``, ``work/``).
    preset : preset the simulation starts from.
    train_masks : real training masks (same names) → Real2Real and Mix2Real arms.
    config : YAML overlay; None = fit one from ``train_images``.
    diffusion_model : trained diffusion model folder; None = the shipped model, else
        train one on ``train_images`` within ``diffusion_budget_s`` seconds.
    n : synthetic samples per renderer (N); the (slow) diffusion renderer makes min(N, ``n_diffusion``)
        (None = N).
    steps : segmenter training steps per arm (without ``segmenter_minutes``).
    segmenter, segmenter_python, segmenter_minutes : which segmenter every arm trains
        (:data:`cellsynth.segment.backends.SEGMENTERS`), the python of its environment (StarDist,
        Cellpose; None = the default search) and the same wall-clock training budget per arm.
    renderers : which Syn2Real arms to run.
    max_test, max_train : use at most this many test / real training images (None = all).
    val_images : annotated real training images (evenly spread) on which the Syn2Real arms are
        scored to choose the Mix2Real renderer; the test labels play no part in that choice.
    diffusion_steps : respaced SDEdit steps (None = the config's).
    pooled : add the Syn2Real-pooled arm (the renderers' data together, same steps) when there are ≥ 2 renderers.
    pool_agreeing : with ≥ 3 renderers, pool only those :func:`cellsynth.benchmark.choose.agreeing_renderers`
        keeps (the least-agreeing dropped one at a time while significantly below the best; no labels);
        False = pool every renderer.
    choice_criterion : the label-free renderer choice's criterion (:data:`cellsynth.benchmark.choose.CRITERIA`);
        "auto" = the Syn2Real segmenters' agreement with three or more renderers, else KID.
    diffusion_budget_s, diffusion_train_steps, diffusion_train : time budget, step cap and
        :class:`~cellsynth.generative.diffusion.DiffusionTrainConfig` fields of a model trained
        here (training stops at the first checkpoint after which the budget would be exceeded).
    """

    train_images: Path
    test: Path
    out: Path
    preset: str = "nuclei2d-dsb"
    train_masks: Path | None = None
    config: Path | None = None
    diffusion_model: Path | None = None
    n: int = 100
    n_diffusion: int | None = 60
    steps: int = 600
    renderers: tuple[str, ...] = ("physics", "sketch", "diffusion")
    max_test: int | None = None
    max_train: int | None = None
    val_images: int = 20
    fit_images: int = 100
    diffusion_budget_s: float = 900.0
    diffusion_train_steps: int = 3000
    diffusion_steps: int | None = None
    # DiffusionTrainConfig fields for a model trained here (e.g. {"channels": [16, 32, 64]})
    diffusion_train: dict | None = None
    pooled: bool = True
    pool_agreeing: bool = True
    choice_criterion: str = "auto"
    segmenter_patch: list[int] | None = None
    segmenter_batch: int | None = None
    # segmenter backend (cellsynth.segment.backends): unet, stardist or cellpose; the consumer env's python;
    # wall-clock minutes of training loop per arm (None = `steps` gradient steps); CPU threads of the backend
    segmenter: str = "unet"
    segmenter_python: Path | None = None
    segmenter_minutes: float | None = None
    threads: int | None = None
    seed: int = 0
    workers: int = 1
    device: str = "auto"
    quick: bool = False
    progress: bool = True
    verbose: bool = True
    shipped_model: Path = SHIPPED_MODEL

    def __post_init__(self):
        for k in ("train_images", "test", "out", "train_masks", "config", "diffusion_model", "shipped_model",
                  "segmenter_python"):
            v = getattr(self, k)
            if v is not None:
                setattr(self, k, Path(v))
        self.renderers = tuple(self.renderers)


def quick_settings(**kw) -> BenchmarkSettings:
    """Tiny N, few steps, few test images: minutes on 2 CPU cores."""
    base = dict(n=8, n_diffusion=4, steps=40, max_test=5, max_train=24, fit_images=24, val_images=4,
                diffusion_budget_s=60.0, diffusion_train_steps=200, diffusion_steps=8,
                segmenter_patch=None, segmenter_batch=4, quick=True)
    base.update({k: v for k, v in kw.items() if v is not None})
    return BenchmarkSettings(**base)


# --------------------------------------------------------------------------- helpers
class _Stages:
    """Numbered stage messages with elapsed time, on stderr."""

    def __init__(self, total: int, enabled: bool = True):
        self.total, self.i, self.t0, self.enabled = total, 0, time.time(), enabled
        self.times: dict[str, float] = {}
        self._cur: tuple[str, float] | None = None

    def __call__(self, msg: str) -> None:
        self._close()
        self.i += 1
        self._cur = (msg, time.time())
        if self.enabled:
            print(f"[benchmark {self.i}/{self.total} +{time.time() - self.t0:6.0f}s] {msg}", file=sys.stderr,
                  flush=True)

    def note(self, msg: str) -> None:
        if self.enabled:
            print(f"    {msg}", file=sys.stderr, flush=True)

    def _close(self) -> None:
        if self._cur:
            self.times[self._cur[0]] = round(time.time() - self._cur[1], 1)
            self._cur = None

    def done(self) -> dict[str, float]:
        self._close()
        self.times["total"] = round(time.time() - self.t0, 1)
        return self.times


def _evenly(items: list, k: int | None) -> list:
    if not k or len(items) <= k:
        return list(items)
    idx = np.unique(np.linspace(0, len(items) - 1, k).round().astype(int))
    return [items[i] for i in idx]


def _link_dataset(pairs: Sequence[tuple[str, Path, Path | None]], dst: Path) -> Path:
    """A dataset folder of symlinks (images/, masks/) to a subset of real files."""
    for sub in ("images", "masks"):
        d = dst / sub
        if d.exists():
            shutil.rmtree(d)
        d.mkdir(parents=True)
    for _name, img, mask in pairs:
        os.symlink(Path(img).resolve(), dst / "images" / Path(img).name)
        if mask is not None:
            os.symlink(Path(mask).resolve(), dst / "masks" / Path(img).name)
    return dst


def _model_ok(path: Path) -> bool:
    return (path / "config.json").is_file() and (path / "weights.safetensors").is_file()


# --------------------------------------------------------------------------- validation
@dataclass
class _Inputs:
    test_pairs: list
    train_images: list
    train_pairs: list | None
    base: dict
    ndim: int


def validate_inputs(s: BenchmarkSettings) -> _Inputs:
    """Check every input (folders, pairing, shapes, dtypes, config, model) before any output."""
    from ..dataset import read_pairs
    from ..render import RENDERERS

    if s.n < 1:
        raise ConfigError(f"--n {s.n}: need at least 1 synthetic sample per renderer")
    if s.steps < 1:
        raise ConfigError(f"--steps {s.steps}: need at least 1 training step")
    for k in ("n_diffusion", "max_test", "max_train", "fit_images", "val_images"):
        v = getattr(s, k)
        if v is not None and v < 1:
            raise ConfigError(f"--{k.replace('_', '-')} {v}: must be >= 1")
    from .choose import CRITERIA

    if s.choice_criterion not in CRITERIA:
        raise ConfigError(f"--choice {s.choice_criterion}: choose from {', '.join(CRITERIA)}")
    if s.choice_criterion == "agreement" and len(s.renderers) < 3:
        raise ConfigError("--choice agreement needs at least 3 renderers (with two, both agree equally)")
    for r in s.renderers:
        if r not in RENDERERS:
            raise ConfigError(f"unknown renderer '{r}'; choose from {', '.join(RENDERERS)}")
    check_writable(s.out, "report folder")
    # test set: images/ + masks/ paired by name, readable, shapes agree, labels are integers
    if not s.test.is_dir():
        raise InputError(f"test folder '{s.test}' does not exist")
    if not (s.test / "masks").is_dir():
        raise InputError(f"test folder '{s.test}' has no masks/ folder (need images/ and masks/)")
    test_pairs = read_pairs(s.test)
    mask_names = {p.stem for p in list_images(s.test / "masks", "test masks")}
    extra = sorted(mask_names - {n for n, _, _ in test_pairs})
    if extra:
        raise InputError(f"test mask '{extra[0]}' has no image of the same name in '{s.test / 'images'}'")
    test_pairs = _evenly(test_pairs, s.max_test)
    ndim = None
    for _name, img_p, mask_p in test_pairs:
        img, lab = read_image(img_p), read_labels(mask_p)
        if img.shape != lab.shape:
            raise InputError(f"test mask '{mask_p}' has shape {lab.shape} but its image has {img.shape}")
        if ndim is None:
            ndim = img.ndim
        elif img.ndim != ndim:
            raise InputError(f"test image '{img_p}' is {img.ndim}D but others are {ndim}D")
    # training images (unannotated), optionally with masks
    train_images = list_images(s.train_images, "training images")
    train_pairs = None
    if s.train_masks is not None:
        list_images(s.train_masks, "training masks")
        train_pairs = []
        for p in train_images:
            m = s.train_masks / p.name
            if not m.is_file():
                raise InputError(f"training image '{p}' has no mask of the same name in '{s.train_masks}'")
            train_pairs.append((p.stem, p, m))
        train_pairs = _evenly(train_pairs, s.max_train)
        train_images = [p for _, p, _ in train_pairs]
    else:
        train_images = _evenly(train_images, s.max_train)
    if s.choice_criterion in ("auto", "kid", "fid", "agreement"):  # KID is computed first in each of these
        few = [f"--n {s.n}" if s.n < 2 else "", f"--n-diffusion {s.n_diffusion}"
               if "diffusion" in s.renderers and s.n_diffusion is not None and s.n_diffusion < 2 else "",
               f"{len(train_images)} training image(s)" if len(train_images) < 2 else ""]
        few = [f for f in few if f]
        if few:
            raise ConfigError(f"--choice {s.choice_criterion} needs at least 2 synthetic images per renderer and 2 "
                              f"training images ({', '.join(few)}); use --choice histogram or spectrum")
    for p in train_images:
        img = read_image(p)
        if img.ndim != ndim:
            raise InputError(f"training image '{p}' is {img.ndim}D but the test images are {ndim}D")
    if train_pairs:
        for _, p, m in train_pairs:
            lab = read_labels(m)
            shape = read_image(p).shape
            if lab.shape != shape:
                raise InputError(f"training mask '{m}' has shape {lab.shape} but its image has {shape}")
    # configuration: preset (+ overlay) must validate; an overlay's ndim must match the data
    base = preset_dict(s.preset)
    if s.config is not None:
        base = deep_merge(base, load_yaml(s.config))
        cfg = validate(Config, base)
        if cfg.scene.ndim != ndim:
            raise ConfigError(f"config '{s.config}' simulates {cfg.scene.ndim}D scenes but the images are {ndim}D")
    else:
        validate(Config, base)
    segmenter_backend(s).check(ndim, train_settings(s))  # consumer env usable, 2D for StarDist/Cellpose
    if s.diffusion_model is not None and not _model_ok(s.diffusion_model):
        raise InputError(f"diffusion model '{s.diffusion_model}' is not a model folder "
                         "(needs config.json and weights.safetensors)")
    return _Inputs(test_pairs, train_images, train_pairs, base, ndim)


# --------------------------------------------------------------------------- scoring
PER_IMAGE_KEYS = ("ap50", "ap50_95", "dice", "seg", "precision50", "recall50", "n_true", "n_pred")


def score_arm(predict: Callable[[np.ndarray], np.ndarray], test_pairs: list, progress: bool = True,
              keep: Sequence[str] = ()) -> tuple[dict[str, dict], dict[str, np.ndarray]]:
    """Per-image scores of one arm, and the predictions of the images named in ``keep``."""
    from tqdm.auto import tqdm

    from ..metrics.compare import score_segmentation

    per, kept = {}, {}
    for name, img_p, mask_p in tqdm(test_pairs, desc="score", disable=not progress, leave=False):
        img, gt = read_image(img_p), read_labels(mask_p)
        pred = np.asarray(predict(img))
        sc = score_segmentation(gt, pred)  # the same per-image scores as `cellsynth evaluate segmentation`
        per[name] = {k: sc[k] for k in PER_IMAGE_KEYS}
        if name in keep:
            kept[name] = pred
    return per, kept


def summarize_arm(per: dict[str, dict]) -> dict[str, float]:
    out = {}
    for m in METRICS:
        v = np.asarray([s[m] for s in per.values()], float)
        v = v[np.isfinite(v)]  # SEG is undefined (NaN) on images without objects
        out[m] = float(v.mean()) if v.size else float("nan")
        out[m + "_median"] = float(np.median(v)) if v.size else float("nan")
    for m in ("precision50", "recall50"):
        v = np.asarray([s[m] for s in per.values() if m in s], float)
        out[m] = float(v.mean()) if v.size else float("nan")
    out["n_true"] = int(sum(s.get("n_true", 0) for s in per.values()))
    out["n_pred"] = int(sum(s.get("n_pred", 0) for s in per.values()))
    out["n_images"] = len(per)
    return out


def ranksum_tests(arms: dict[str, dict], metric: str = "ap50") -> list[dict]:
    """Two-sided Wilcoxon rank-sum test between every pair of arms on per-image ``metric``."""
    from ..metrics.stats import rank_sum

    names = [a for a in ARMS_ORDER if a in arms] + [a for a in arms if a not in ARMS_ORDER]
    out = []
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            x = [v[metric] for v in arms[a]["per_image"].values()]
            y = [v[metric] for v in arms[b]["per_image"].values()]
            if len(x) < 2 or len(y) < 2:
                continue
            t = rank_sum(x, y)  # scipy.stats.ranksums, two-sided
            out.append({"a": a, "b": b, "metric": metric, "statistic": t["statistic"], "p_value": t["pvalue"],
                        "median_a": t["median_a"], "median_b": t["median_b"]})
    return out


# --------------------------------------------------------------------------- image metrics
def image_metrics(real: Sequence[np.ndarray], synthetic: Sequence[np.ndarray], extractor=None) -> dict:
    """Realism of a synthetic set vs real images: :func:`cellsynth.metrics.compare.compare_images`
    with its defaults, i.e. the numbers ``cellsynth evaluate images`` reports for the same images
    (``extractor``: e.g. a :class:`~cellsynth.metrics.image.CachedExtractor` of the default one)."""
    from ..metrics.compare import compare_images

    return compare_images(real, synthetic, extractor=extractor)


# --------------------------------------------------------------------------- stages
def _resolve_diffusion(s: BenchmarkSettings, inp: _Inputs, work: Path, stage: _Stages) -> tuple[Path, str, dict | None]:
    """The diffusion model: given; the shipped one when the training images look like its training
    images; the shipped one fine-tuned on them within the time budget when they differ
    (:func:`cellsynth.adapt.domain_decision` decides, the path of ``cellsynth adapt``); or one
    trained now within the budget (3D). Returns (model, how, domain decision or None)."""
    if s.diffusion_model is not None:
        return s.diffusion_model, "given", None
    if _model_ok(s.shipped_model) and inp.ndim == 2:
        from ..adapt import domain_decision, train_adapted_diffusion
        dom = domain_decision(s.shipped_model, inp.train_images)
        stage.note(f"training images vs the shipped model's: {dom['statistic']} = {dom['value']}"
                   f" -> {'differ' if dom['differs'] else 'alike'}" if dom["differs"] is not None else dom["note"])
        if not dom["differs"]:
            return s.shipped_model, "shipped", dom
        out = work / "diffusion_model"
        if out.exists():
            shutil.rmtree(out)
        images = _link_dataset([(p.stem, p, None) for p in inp.train_images], work / "diffusion_images")
        rec = train_adapted_diffusion(images / "images", out, "finetune", s.shipped_model, s.diffusion_budget_s,
                                      s.diffusion_train_steps, s.diffusion_train, s.device, progress=s.progress)
        return out, f"shipped model fine-tuned {rec['steps']} steps ({rec['seconds']:.0f}s)", dom
    from ..generative.diffusion import DiffusionTrainConfig, train_diffusion

    out = work / "diffusion_model"
    if out.exists():
        shutil.rmtree(out)
    images = _link_dataset([(p.stem, p, None) for p in inp.train_images], work / "diffusion_images")
    chunk = max(10, min(250, s.diffusion_train_steps // 10))
    extra = {"channels": [16, 32, 64], "batch_size": 8} if s.quick else {}
    extra.update(s.diffusion_train or {})
    cfg = validate(DiffusionTrainConfig, {"steps": chunk, "checkpoint_every": chunk, **extra},
                   prefix="diffusion_train.")
    t0, total, resume = time.time(), 0, False
    while total < s.diffusion_train_steps:
        total = min(total + chunk, s.diffusion_train_steps)
        t_chunk = time.time()
        train_diffusion(images / "images", out, cfg, steps=total, device=s.device, resume=resume,
                        progress=s.progress)
        resume = True
        per_chunk = time.time() - t_chunk
        if time.time() - t0 + per_chunk > s.diffusion_budget_s:
            break
    stage.note(f"trained a diffusion model for {total} steps in {time.time() - t0:.0f}s -> {out}")
    return out, f"trained {total} steps ({time.time() - t0:.0f}s)", None


def segmenter_backend(s: BenchmarkSettings):
    from ..segment.backends import get_backend

    return get_backend(s.segmenter)


def train_settings(s: BenchmarkSettings):
    """The benchmark's segmenter settings, the same for every arm (the U-Net's from the preset's and the
    overlay's ``segmenter`` section)."""
    from ..segment.backends import TrainSettings

    base = preset_dict(s.preset)
    if s.config is not None:
        base = deep_merge(base, load_yaml(s.config))
    return TrainSettings(steps=s.steps, budget_s=None if s.segmenter_minutes is None else 60.0 * s.segmenter_minutes,
                         patch=s.segmenter_patch, batch=s.segmenter_batch, seed=s.seed, device=s.device,
                         threads=s.threads, progress=s.progress, python=s.segmenter_python,
                         unet=dict(base.get("segmenter") or {}))


def _train(datasets: list[Path], out: Path, s: BenchmarkSettings, predict_images=()):
    """Train the benchmark's segmenter on ``datasets`` -> (predictor: image -> labels, training record)."""
    return segmenter_backend(s).train(datasets, out, train_settings(s), predict_images=predict_images)


def run_benchmark(s: BenchmarkSettings) -> dict:
    """Run every arm and write ``report.json`` + ``report.html`` into ``s.out``; return the report."""
    from ..dataset import generate_dataset
    from ..fit import fit_config, write_overlay
    from ..metrics.image import CachedExtractor, default_extractor
    from ..segment.classical import classical_segment

    inp = validate_inputs(s)  # everything checked before the first byte is written
    renderers = list(s.renderers)
    # fit, generate + train per renderer, (diffusion model), metrics, classical, (real, mix), report
    pooled = s.pooled and len(renderers) >= 2
    n_stages = 4 + 2 * len(renderers) + ("diffusion" in renderers) + (2 if inp.train_pairs else 0) + pooled
    stage = _Stages(n_stages, s.verbose)
    s.out.mkdir(parents=True, exist_ok=True)
    work = s.out / "work"
    work.mkdir(exist_ok=True)
    report: dict[str, Any] = {"settings": {k: (str(v) if isinstance(v, Path) else v)
                                           for k, v in asdict(s).items()},
                              "arms": {}, "image_metrics": {}, "notes": []}

    # 1. the simulation config: given, or fitted to the unannotated training images
    if s.config is None:
        stage(f"fit: measuring objects in {min(len(inp.train_images), s.fit_images)} unannotated training images")
        overlay, summary, cfg = fit_config(inp.train_images, s.preset, max_images=s.fit_images,
                                           progress=s.progress)
        write_overlay(s.out / "config.yaml", overlay, summary, source=str(s.train_images))
        report["fit"] = {"overlay": overlay, "summary": summary}
        stage.note(f"radius {overlay['scene']['nuclei']['radius']} px, "
                   f"n_points {overlay['scene']['placement']['n_points']}")
    else:
        stage(f"config: {s.config} on preset {s.preset}")
        cfg = load_config(s.preset, s.config)
        shutil.copyfile(s.config, s.out / "config.yaml")
        report["fit"] = None
    report["config"] = config_to_dict(cfg)

    # 2. synthetic data per renderer
    syn: dict[str, Path] = {}
    for r in renderers:
        rcfg = cfg
        n = s.n
        if r == "diffusion":
            stage("diffusion model: resolving (given / shipped / training within the budget)")
            model, how, dom = _resolve_diffusion(s, inp, work, stage)
            report["diffusion_model"] = {"path": str(model), "how": how, "domain": dom}
            upd = {"model": str(model)}
            if s.diffusion_steps:
                upd["steps"] = s.diffusion_steps
            rcfg = validate(Config, deep_merge(config_to_dict(cfg), {"render": {"diffusion": upd}}))
            n = min(s.n, s.n_diffusion) if s.n_diffusion else s.n
        stage(f"generate: {n} synthetic samples with the {r} renderer")
        d = work / f"syn_{r}"
        if d.exists():
            shutil.rmtree(d)
        generate_dataset(rcfg, r, n, s.seed, d, workers=s.workers, progress=s.progress)
        syn[r] = d

    # 3. image realism of each renderer vs the real test images, and the label-free renderer choice
    #    (against the unannotated training images: the test set plays no part in it)
    stage("image metrics: synthetic vs real test images (histograms, spectra); label-free renderer choice")
    real_imgs = [read_image(p) for _, p, _ in inp.test_pairs]
    examples: dict[str, list] = {}
    syn_imgs: dict[str, list] = {}
    ex = CachedExtractor(default_extractor())  # each image's features once (test, synthetic, training)
    for r, d in syn.items():
        syn_imgs[r] = [read_image(p) for p in sorted((d / "images").glob("*.tif"))]
        report["image_metrics"][r] = image_metrics(real_imgs, syn_imgs[r], extractor=ex)
        masks = sorted((d / "masks").glob("*.tif"))[:3]
        examples[r] = [(read_image(d / "images" / m.name), read_labels(m)) for m in masks]
    choice_real = _evenly(inp.train_images, s.fit_images)
    choice = None
    if syn:
        choice = _choose(choice_real, syn_imgs, s.choice_criterion, s.seed, extractor=ex)
        stage.note(f"label-free choice ({choice['criterion']} to {len(choice_real)} unannotated training images): "
                   f"{choice['chosen']}" + (" (until the segmenters' agreement is known)"
                                            if s.choice_criterion in ("auto", "agreement") and len(syn) >= 3 else ""))
    del syn_imgs

    keep = [n for n, _, _ in inp.test_pairs[:3]]
    preds: dict[str, dict] = {}

    def add_arm(name: str, predict, train_desc: str, model_dir: Path | None = None, record: dict | None = None):
        per, kept = score_arm(predict, inp.test_pairs, progress=s.progress, keep=keep)
        report["arms"][name] = {"training": train_desc, "model": str(model_dir) if model_dir else None,
                                "summary": summarize_arm(per), "per_image": per}
        if record is not None:  # what the segmenter trained: steps, seconds in the loop, preparation
            report["arms"][name]["segmenter"] = record
        preds[name] = kept
        sm = report["arms"][name]["summary"]
        stage.note(f"{name}: AP@0.5 {sm['ap50']:.3f}  AP@0.5:0.95 {sm['ap50_95']:.3f}  "
                   f"Dice {sm['dice']:.3f}  SEG {sm['seg']:.3f}")

    from ..segment.backends import describe
    report["segmenter"] = describe(segmenter_backend(s), train_settings(s))
    test_images = [p for _, p, _ in inp.test_pairs]
    how = (f"{s.segmenter}, {s.segmenter_minutes:g} min" if s.segmenter_minutes is not None
           else f"{s.segmenter}, {s.steps} steps")

    # 4. classical baseline
    stage(f"classical baseline on {len(inp.test_pairs)} test images")
    add_arm("classical", classical_segment, "none (scale-adaptive Otsu + distance watershed)")

    # 5. Real2Real
    real_ds = None
    if inp.train_pairs:
        stage(f"Real2Real: training on {len(inp.train_pairs)} real annotated images, {how}")
        real_ds = _link_dataset(inp.train_pairs, work / "real_train")
        seg, rec = _train([real_ds], work / "seg_Real2Real", s, test_images)
        add_arm("Real2Real", seg, f"{len(inp.train_pairs)} real annotated images", work / "seg_Real2Real", rec)

    # 6. Syn2Real per renderer; each also scored on the validation split of the annotated training images
    #    and segments the same unannotated training images (for the agreement criterion)
    val_pairs = _evenly(inp.train_pairs, s.val_images) if inp.train_pairs else []
    agree_paths = _evenly(inp.train_images, s.val_images) if len(syn) >= 3 else []
    agree_imgs = [read_image(p) for p in agree_paths]
    agree_preds: dict[str, list] = {}
    for r, d in syn.items():
        stage(f"Syn2Real-{r}: training on synthetic {r} data only, {how}")
        name = f"Syn2Real-{r}"
        seg, rec = _train([d], work / f"seg_{name}", s, test_images + [p for _, p, _ in val_pairs] + agree_paths)
        n_syn = len(list((d / "images").glob("*.tif")))
        add_arm(name, seg, f"{n_syn} synthetic {r} samples, no real annotation", work / f"seg_{name}", rec)
        if val_pairs:
            per_val, _ = score_arm(seg, val_pairs, progress=s.progress)
            report["arms"][name]["validation"] = summarize_arm(per_val)
        if agree_imgs:
            agree_preds[r] = [np.asarray(seg(a)) for a in agree_imgs]

    # 6b. Syn2Real-pooled: the renderers' data together, trained like each single-renderer arm; every renderer
    #     but those dropped one at a time for agreeing significantly less than the best-agreeing one (label-free)
    pool = list(syn)
    if choice is not None and agree_preds:
        from .choose import POOL_ALPHA, agreeing_renderers, segmenter_agreement
        for r, v in segmenter_agreement(agree_preds).items():
            choice["scores"][r]["agreement"] = v
        choice["agreement_images"] = len(agree_imgs)
        kept, p_values = agreeing_renderers(agree_preds)
        if s.pool_agreeing:
            pool = kept
        choice["pool"] = {"renderers": pool, "agreement_p": p_values, "alpha": POOL_ALPHA,
                          "rule": "agreeing renderers" if s.pool_agreeing else "every renderer"}
    if pooled:  # agreeing_renderers keeps at least two
        stage(f"{POOLED}: training on the synthetic data of {', '.join(pool)}, {how}")
        seg, rec = _train([syn[r] for r in pool], work / f"seg_{POOLED}", s, test_images)
        n_syn = sum(len(list((syn[r] / "images").glob("*.tif"))) for r in pool)
        add_arm(POOLED, seg, f"{n_syn} synthetic samples of {', '.join(pool)}, no real annotation",
                work / f"seg_{POOLED}", rec)

    # 7. Mix2Real with the renderer chosen on the validation split (never on the test labels)
    report["best_renderer"] = best_renderer(report["arms"], "summary") if syn else None
    if choice is not None:
        from .choose import resolve_criterion
        choice["requested"] = s.choice_criterion
        choice["criterion"] = resolve_criterion(s.choice_criterion, len(agree_preds))
        report["renderer_choice"] = renderer_choice_summary(choice, report["arms"], report["best_renderer"])
    mix = best_renderer(report["arms"], "validation") if syn and val_pairs else None
    report["mix_renderer"] = {"renderer": mix, "chosen_on": f"a validation split of {len(val_pairs)} annotated "
                                                            "real training images (not the test set)"} if mix else None
    if real_ds is not None and mix is not None:
        stage(f"Mix2Real: real + synthetic {mix} data, {how}")
        seg, rec = _train([real_ds, syn[mix]], work / "seg_Mix2Real", s, test_images)
        add_arm("Mix2Real", seg, f"{len(inp.train_pairs)} real + synthetic {mix}", work / "seg_Mix2Real", rec)

    # 8. statistics and report
    stage("report: Wilcoxon rank-sum tests, plots, report.html + report.json")
    # known arms in their order; other renderers' Syn2Real arms (cgan, cyclegan, ...) before Mix2Real
    extra = [a for a in report["arms"] if a not in ARMS_ORDER]
    order = [x for a in ARMS_ORDER for x in ((extra + [a]) if a == "Mix2Real" else [a])]
    report["arms"] = {k: report["arms"][k] for k in order if k in report["arms"]}
    report["tests"] = ranksum_tests(report["arms"], "ap50")
    report["notes"] += _notes(report)
    report["targets"] = targets(report)
    from .report import write_html
    report["timings_s"] = dict(stage.times)
    write_html(s.out / "report.html", report, real_examples=_real_examples(inp.test_pairs[:3]),
               syn_examples=examples, predictions=preds, real_images=real_imgs,
               syn_images={r: [read_image(p) for p in sorted((d / "images").glob("*.tif"))[:16]]
                           for r, d in syn.items()})
    report["timings_s"] = stage.done()
    write_json(s.out / "report.json", report)
    return report


def _real_examples(pairs) -> list[tuple[str, np.ndarray, np.ndarray]]:
    return [(n, read_image(i), read_labels(m)) for n, i, m in pairs]


def best_renderer(arms: dict[str, dict], scores: str = "validation") -> str | None:
    """The renderer whose (single-renderer) Syn2Real arm has the highest mean AP@0.5 in ``arms[...][scores]``
    (``"validation"``: the training side's validation split; ``"summary"``: the test set)."""
    cands = {a.split("-", 1)[1]: v[scores]["ap50"] for a, v in arms.items()
             if a.startswith("Syn2Real-") and a != POOLED and scores in v and np.isfinite(v[scores]["ap50"])}
    return max(cands, key=cands.get) if cands else None


def _choose(real_paths: list[Path], syn_imgs: dict[str, list], criterion: str, seed: int, extractor=None) -> dict:
    """The label-free choice on the image criteria (KID for "auto" and "agreement" until the segmenters exist)."""
    from .choose import choose_renderer, resolve_criterion

    real = [read_image(p) for p in real_paths]
    image_criterion = "kid" if criterion == "agreement" else resolve_criterion(criterion)
    chosen, scores = choose_renderer(real, syn_imgs, image_criterion, seed=seed, extractor=extractor)
    return {"criterion": image_criterion, "chosen": chosen, "scores": scores, "real_images": len(real)}


def renderer_choice_summary(choice: dict, arms: dict[str, dict], best_by_labels: str | None) -> dict:
    """The label-free renderer choice next to the best Syn2Real arm by the test labels, and the gaps.

    ``choice``: ``criterion`` (the default one), ``scores`` (renderer → criterion → value, as
    :func:`cellsynth.benchmark.choose.choose_renderer` returns them, plus ``agreement`` if computed) and,
    with the agreement, ``pool`` (the renderers :func:`cellsynth.benchmark.choose.agreeing_renderers` keeps).
    When the agreement keeps more than one renderer and the pooled arm pools them (the default), the choice
    is that arm (``chosen = "pooled"``, ``chosen_renderers`` the renderers): the agreement does not rank
    them, and pooling hedges the tie (``benchmarks/RESULTS.md``, "A tie in the agreement goes to the pool").
    Gaps are AP@0.5 on the test set: best-by-labels minus the chosen arm (and minus the pooled arm).

    Examples
    --------
    >>> arms = {"Syn2Real-a": {"summary": {"ap50": 0.7}}, "Syn2Real-b": {"summary": {"ap50": 0.6}},
    ...         "Syn2Real-pooled": {"summary": {"ap50": 0.68}}}
    >>> out = renderer_choice_summary({"criterion": "kid", "scores": {"a": {"kid": 0.2}, "b": {"kid": 0.1}}},
    ...                               arms, "a")
    >>> out["chosen"], round(out["gap_ap50"], 3), round(out["pooled_gap_ap50"], 3)
    ('b', 0.1, 0.02)
    >>> tie = {"criterion": "agreement", "scores": {"a": {"agreement": 0.8}, "b": {"agreement": 0.81}},
    ...        "pool": {"renderers": ["a", "b"], "rule": "agreeing renderers"}}
    >>> out = renderer_choice_summary(tie, arms, "a")
    >>> out["by_criterion"]["agreement"]["chosen"], out["chosen"], out["chosen_renderers"], round(out["gap_ap50"], 3)
    ('b', 'pooled', ['a', 'b'], 0.02)
    """
    from .choose import CRITERIA, ranking

    scores = choice["scores"]
    ap = {r: arms[f"Syn2Real-{r}"]["summary"]["ap50"] for r in scores if f"Syn2Real-{r}" in arms}
    best_ap = ap.get(best_by_labels) if best_by_labels else None
    by: dict[str, dict] = {}
    for c in CRITERIA:
        if not any(s.get(c) is not None for s in scores.values()):
            continue
        pick = ranking(scores, c)[0]
        by[c] = {"chosen": pick, "ranking": ranking(scores, c), "ap50": ap.get(pick),
                 "gap_ap50": (best_ap - ap[pick]) if best_ap is not None and pick in ap else None}
    crit = choice["criterion"]
    out = {**choice, "chosen": by[crit]["chosen"], "chosen_renderers": [by[crit]["chosen"]], "by_criterion": by,
           "best_by_labels": best_by_labels, "best_ap50": best_ap, "ap50_by_renderer": ap}
    out["gap_ap50"] = by[crit]["gap_ap50"]
    if POOLED in arms and best_ap is not None:
        out["pooled_ap50"] = arms[POOLED]["summary"]["ap50"]
        out["pooled_gap_ap50"] = best_ap - out["pooled_ap50"]
    pool = choice.get("pool") or {}
    if crit == "agreement" and pool.get("rule") == "agreeing renderers" and len(pool["renderers"]) > 1 \
            and POOLED in arms:
        # the agreement cannot rank the renderers it keeps (the last two agree with each other equally;
        # among three, the third alone decides): the choice is their pool
        out["chosen"], out["chosen_renderers"] = "pooled", list(pool["renderers"])
        out["gap_ap50"] = out.get("pooled_gap_ap50")
    return out


def targets(report: dict) -> dict:
    """The acceptance targets: best Syn2Real AP@0.5 ≥ 0.9 × Real2Real (and ≥ Real2Real, ≥ 0.80),
    Syn2Real-physics ≥ 0.65, > classical, and the label-free choice and the pooled arm within 0.02
    AP@0.5 of the best Syn2Real arm by the test labels (issue 11).

    Examples
    --------
    >>> arms = {a: {"summary": {"ap50": v}} for a, v in
    ...         (("Real2Real", 0.8), ("Syn2Real-sketch", 0.75), ("classical", 0.6))}
    >>> t = targets({"arms": arms, "best_renderer": "sketch"})
    >>> t["syn2real_ge_0.9_real2real"], t["syn2real_beats_classical"], round(t["ratio_to_real2real"], 4)
    (True, True, 0.9375)
    """
    arms = report["arms"]
    best = report.get("best_renderer")
    if not best:
        return {}
    b = arms[f"Syn2Real-{best}"]["summary"]["ap50"]
    out: dict = {"best_syn2real_ap50": b, "best_syn2real_ge_0.80": bool(b >= 0.80)}
    if "Syn2Real-physics" in arms:
        out["syn2real_physics_ge_0.65"] = bool(arms["Syn2Real-physics"]["summary"]["ap50"] >= 0.65)
    if "Real2Real" in arms:
        r = arms["Real2Real"]["summary"]["ap50"]
        out["real2real_ap50"] = r
        out["ratio_to_real2real"] = b / r if r > 0 else float("nan")
        out["syn2real_ge_0.9_real2real"] = bool(b >= 0.9 * r)
        out["syn2real_ge_real2real"] = bool(b >= r)
    choice = report.get("renderer_choice") or {}
    if choice.get("gap_ap50") is not None:
        out["label_free_gap_le_0.02"] = bool(choice["gap_ap50"] <= 0.02)
    if choice.get("pooled_gap_ap50") is not None:
        out["pooled_gap_le_0.02"] = bool(choice["pooled_gap_ap50"] <= 0.02)
    if "classical" in arms:
        c = arms["classical"]["summary"]["ap50"]
        out["classical_ap50"] = c
        out["syn2real_beats_classical"] = bool(b > c)
    return out


def _notes(report: dict) -> list[str]:
    notes = []
    mix = report.get("mix_renderer")
    if mix:
        notes.append(f"Mix2Real uses the renderer with the best Syn2Real AP@0.5 on {mix['chosen_on']} "
                     f"({mix['renderer']}); the test labels play no part in that choice.")
    if report.get("best_renderer"):
        notes.append(f"The best Syn2Real arm on the test set ({report['best_renderer']}) is reported for the "
                     "targets only; no arm is trained on that choice.")
    ch = report.get("renderer_choice")
    if ch:
        from .choose import choice_text
        gap = f"{ch['gap_ap50']:+.3f}" if ch.get("gap_ap50") is not None else "n/a"
        notes.append(f"Label-free renderer choice ({ch['criterion']} to {ch['real_images']} unannotated training "
                     f"images, no labels): {choice_text(ch)}; best by the test labels: {ch['best_by_labels']}; "
                     f"AP@0.5 gap {gap}.")
        if ch.get("pooled_gap_ap50") is not None:
            pool = ch.get("pool")
            what = ("all renderers' data" if not pool else
                    f"the data of {', '.join(pool['renderers'])}: {pool['rule']}" + "".join(
                        f"; {r} left out, agreement p = {pv:.2g} < {pool['alpha']:g}"
                        for r, pv in pool["agreement_p"].items() if r not in pool["renderers"]))
            notes.append(f"Syn2Real-pooled ({what}; same steps) AP@0.5 {ch['pooled_ap50']:.3f}, "
                         f"gap to the best by labels {ch['pooled_gap_ap50']:+.3f}.")
    dom = (report.get("diffusion_model") or {}).get("domain")
    if dom and dom.get("differs") is not None:
        notes.append(f"Diffusion model: {report['diffusion_model']['how']}; the training images "
                     f"{'differ from' if dom['differs'] else 'look like'} the shipped model's training images "
                     f"({dom['statistic']} = {dom['value']:.3g}, threshold {dom['threshold']}).")
    for r, m in report["image_metrics"].items():
        h = m["histogram"]
        notes.append(f"{r}: histogram Bhattacharyya {h['bhattacharyya']:.3f}, KL {h['kl_real_synthetic']:.3f}, "
                     f"spectrum |Δlog10 P| {m['spectrum']['log10_mae']:.3f} vs the real test images")
    return notes
