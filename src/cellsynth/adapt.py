"""A new lab's images in one call: fit → diffusion model → synthetic data → segmenter → predictions.

:func:`run_adapt` (``cellsynth adapt --images DIR --out PROJECT [--budget MINUTES] [--masks DIR]``)
takes a folder of *unannotated* images and, within a time budget:

1. **fit** the preset's simulation to the images (:func:`cellsynth.fit.fit_config`) →
   ``PROJECT/config.yaml``;
2. **diffusion**: fine-tune the base model (the shipped ``nuclei2d-dsb`` unless ``base_model``) on
   the images (``mode="finetune"``, the default whenever the base fits: same number of dimensions,
   one channel; fine-tuning starts from the base's EMA weights, loaded from safetensors), or train
   a model of the base's size from scratch (``"scratch"``; the default when the base does not fit,
   e.g. 3D images), or use the base as it is (``"none"``) → ``PROJECT/models/diffusion``.
   The report records whether the images differ from the base's training images
   (:func:`cellsynth.metrics.domain.domain_shift`: which statistic, its value);
3. **renderer choice**: the first :data:`PROBE_SAMPLES` samples of each candidate renderer
   (``renderers``, default diffusion and physics) are compared with the images without labels
   (:func:`cellsynth.benchmark.choose.choose_renderer`, KID) and the closest renderer is used;
4. **generate** synthetic image/mask pairs with it (diffusion: SDEdit from simulated sketches,
   Eschweiler et al. 2024) → ``PROJECT/datasets/<renderer>``, continuing from its probe samples;
5. **segmenter**: train the 3-class U-Net on them → ``PROJECT/models/segmenter``;
6. **predict** every image of the folder → ``PROJECT/predictions/<name>.tif``;
7. **report** ``PROJECT/report.json`` + ``PROJECT/report.md``; with ``masks``, scored by
   :func:`cellsynth.metrics.compare.score_segmentations` (the numbers of ``cellsynth evaluate
   segmentation``).

Budget (``budget_min``; fit, prediction and the report are not budgeted — they take seconds to a
minute). Of the budget, :data:`BUDGET_SHARES`: diffusion training 50 % (stops by wall clock and
saves; a rerun continues with what is left of its share), generation 25 % (the probes of the renderer
choice included; the number of samples is planned from the time of the next two samples, at most
``n``), segmenter training 25 % (the number of
steps is planned from a short timed run, at most ``segmenter_steps``). Plans are stored, so a rerun
makes the same dataset and the same segmenter.

Resumable: each stage writes its outputs atomically (or resumably) and then a marker
``PROJECT/stages/<stage>.json``; rerunning the same call skips finished stages, the diffusion
training resumes from its checkpoint and the generation keeps finished samples. A project made
with other settings or other images is refused. Every input is checked before anything is written.
"""
from __future__ import annotations

import logging
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from .config import Strict, preset_dict, validate
from .errors import ConfigError, InputError
from .io import atomic_path, check_writable, list_images, read_image, read_json, read_labels, write_json, write_text

log = logging.getLogger(__name__)

SETTINGS_FILE = "adapt.json"
STAGES = ("fit", "diffusion", "renderer", "generate", "segmenter", "predict", "report")
BUDGET_SHARES = {"diffusion": 0.50, "generate": 0.25, "segmenter": 0.25}
FINETUNE_LR = 2e-4  # fine-tuning starts from trained weights: a smaller step than the base's 5e-4
PROBE_SAMPLES = 4  # samples per candidate renderer for the label-free renderer choice
Mode = Literal["auto", "finetune", "scratch", "none"]


class AdaptConfig(Strict):
    """Overrides of the stages' own settings (``cellsynth adapt --config F``, YAML).

    ``diffusion``: :class:`~cellsynth.generative.diffusion.DiffusionTrainConfig` keys (on top of the
    base model's training settings); ``segmenter``: :class:`~cellsynth.segment.unet.SegmenterConfig`
    keys; ``render``: :class:`~cellsynth.config.DiffusionRenderConfig` keys (SDEdit t_start, steps, ...).
    """

    diffusion: dict = {}
    segmenter: dict = {}
    render: dict = {}


@dataclass
class AdaptSettings:
    """Everything :func:`run_adapt` does.

    Parameters
    ----------
    images : folder of the new lab's images (single-channel TIFFs, all 2D or all 3D), unannotated.
    out : project folder.
    budget_min : wall-clock budget in minutes for the training and generation stages (see
        :data:`BUDGET_SHARES`).
    masks : optional instance masks of ``images`` (same names): only for scoring the predictions.
    preset : preset the simulation starts from.
    mode : "auto" (fine-tune the base when it fits, else from scratch), "finetune", "scratch", "none".
    base_model : diffusion model folder to fine-tune / size a scratch model by; None = shipped model.
    n : most synthetic samples; steps caps: ``diffusion_steps`` (total diffusion steps),
        ``segmenter_steps``.
    renderers : candidate renderers; more than one → the label-free choice picks one.
    config : :class:`AdaptConfig` overrides of the stages' settings.
    """

    images: Path
    out: Path
    budget_min: float = 30.0
    masks: Path | None = None
    preset: str = "nuclei2d-dsb"
    mode: Mode = "auto"
    base_model: Path | None = None
    n: int = 60
    diffusion_steps: int = 20000
    segmenter_steps: int = 600
    renderers: tuple[str, ...] = ("diffusion", "physics")
    fit_images: int = 100
    seed: int = 0
    device: str = "auto"
    threads: int | None = None
    config: AdaptConfig = field(default_factory=AdaptConfig)
    progress: bool = True

    def __post_init__(self):
        for k in ("images", "out", "masks", "base_model"):
            v = getattr(self, k)
            if v is not None:
                setattr(self, k, Path(v))
        self.renderers = tuple(self.renderers)
        if isinstance(self.config, dict):
            self.config = validate(AdaptConfig, self.config, prefix="config.")

    def budget_s(self, stage: str) -> float:
        return float(self.budget_min) * 60.0 * BUDGET_SHARES[stage]


# --------------------------------------------------------------------------- validation
@dataclass
class _Plan:
    files: list[Path]
    ndim: int
    data: dict
    mode: str
    base: Path
    pairs: dict[str, Path] | None


def _base_model(s: AdaptSettings) -> Path:
    if s.base_model is not None:
        return s.base_model
    from .render.diffusion import default_model_path
    return default_model_path()


def validate_settings(s: AdaptSettings) -> _Plan:
    """Check every input and setting; one-line errors, nothing written."""
    from .generative.diffusion import FORMAT, FORMAT_VERSION, DiffusionTrainConfig, init_network
    from .modelfolder import describe_training_data, read_model_config
    from .render import RENDERERS
    from .segment.unet import SegmenterConfig

    if not s.budget_min > 0:
        raise ConfigError(f"--budget {s.budget_min}: must be > 0 minutes")
    for k in ("n", "diffusion_steps", "segmenter_steps", "fit_images"):
        if getattr(s, k) < 1:
            raise ConfigError(f"--{k.replace('_', '-')} {getattr(s, k)}: must be >= 1")
    if s.mode not in ("auto", "finetune", "scratch", "none"):
        raise ConfigError(f"mode '{s.mode}': choose auto, finetune, scratch or none")
    if not s.renderers:
        raise ConfigError("need at least one candidate renderer")
    for r in s.renderers:
        if r not in RENDERERS or r in ("cgan", "cyclegan", "stylegan"):
            raise ConfigError(f"renderer '{r}': adapt renders with diffusion, physics or sketch")
    preset_dict(s.preset)
    validate(DiffusionTrainConfig, dict(s.config.diffusion), prefix="config.diffusion.")
    validate(SegmenterConfig, {**(preset_dict(s.preset).get("segmenter") or {}), **s.config.segmenter},
             prefix="config.segmenter.")
    from .config import DiffusionRenderConfig
    if "model" in s.config.render:
        raise ConfigError("config.render.model: the diffusion model is the one this run trains (or --mode none "
                          "with --base-model)")
    validate(DiffusionRenderConfig, dict(s.config.render), prefix="config.render.")

    files = list_images(s.images, what="images")
    ndim = None
    for f in files:
        a = read_image(f)
        if not np.all(np.isfinite(a)):
            raise InputError(f"image '{f}' contains NaN or infinite values")
        if ndim is None:
            ndim = a.ndim
        elif a.ndim != ndim:
            raise InputError(f"image '{f}' is {a.ndim}D but '{files[0].name}' is {ndim}D")
    pairs = None
    if s.masks is not None:
        list_images(s.masks, what="masks")
        pairs = {}
        for f in files:
            m = s.masks / f.name
            if not m.is_file():
                raise InputError(f"image '{f.name}' has no mask of the same name in '{s.masks}'")
            lab = read_labels(m)
            if lab.shape != read_image(f).shape:
                raise InputError(f"mask '{m}' has shape {lab.shape} but its image has {read_image(f).shape}")
            pairs[f.stem] = m

    base = _base_model(s)
    read_model_config(base, FORMAT, FORMAT_VERSION, f"base diffusion model '{base}'")
    mode = s.mode
    if mode == "auto":
        try:
            init_network(base, ndim)
            mode = "finetune"
        except InputError:
            mode = "scratch"
    elif mode in ("finetune", "none"):
        init_network(base, ndim)  # the base must fit the images: one-line error otherwise
    check_writable(s.out, "project folder")
    data = describe_training_data(files, s.images)
    return _Plan(files, ndim, data, mode, base, pairs)


def _settings_record(s: AdaptSettings, plan: _Plan) -> dict:
    d = {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(s).items()
         if k not in ("out", "progress", "device", "threads", "config")}
    d["config"] = s.config.model_dump(mode="json")
    d["renderers"] = list(s.renderers)
    d["images_data"] = plan.data
    d["mode_used"] = plan.mode
    d["base_model"] = str(plan.base)
    return d


def _open_project(s: AdaptSettings, plan: _Plan) -> dict:
    """Create the project or check that it was made with these settings and images."""
    rec = _settings_record(s, plan)
    path = s.out / SETTINGS_FILE
    if path.is_file():
        old = read_json(path, what="adapt settings")
        diff = sorted(k for k in set(old) | set(rec) if old.get(k) != rec.get(k))
        if diff:
            raise InputError(f"project '{s.out}' was made with other settings or images ({', '.join(diff)} "
                             f"differ); rerun with the same ones to resume, or choose another --out")
    elif s.out.exists() and any(s.out.iterdir()):
        raise InputError(f"project folder '{s.out}' exists, is not empty and holds no {SETTINGS_FILE}")
    else:
        write_json(path, rec)
    return rec


# --------------------------------------------------------------------------- stage bookkeeping
def _marker(out: Path, stage: str) -> Path:
    return out / "stages" / f"{stage}.json"


def _done(out: Path, stage: str) -> dict | None:
    m = _marker(out, stage)
    return read_json(m, what=f"stage marker of '{stage}'") if m.is_file() else None


def _finish(out: Path, stage: str, info: dict) -> dict:
    write_json(_marker(out, stage), info)
    return info


def _plan(out: Path, name: str, make) -> dict:
    """A stored plan (sample count, step count): made once, reused on a rerun so results repeat."""
    p = out / "stages" / f"{name}.plan.json"
    if not p.is_file():
        write_json(p, make())
    return read_json(p, what=f"plan '{name}'")


# --------------------------------------------------------------------------- stages
def _stage_fit(s: AdaptSettings, plan: _Plan) -> dict:
    from .fit import fit_config, write_overlay
    t0 = time.time()
    overlay, summary, _cfg = fit_config(plan.files, s.preset, max_images=s.fit_images, progress=s.progress)
    write_overlay(s.out / "config.yaml", overlay, summary, source=s.images.name)
    return {"seconds": round(time.time() - t0, 1), "n_images": summary["n_images"],
            "n_objects": summary["n_objects_total"], "radius": overlay["scene"]["nuclei"]["radius"]}


def domain_decision(model: str | Path, images: list[np.ndarray] | list[Path]) -> dict:
    """Do ``images`` differ from ``model``'s training images? (:func:`cellsynth.metrics.domain.domain_shift`)

    The model folder's ``domain`` record decides; a model without one gives ``{"differs": None, ...}``
    with the reason, never a guess.
    """
    from .generative.diffusion import FORMAT, FORMAT_VERSION
    from .metrics.domain import domain_shift
    from .modelfolder import read_model_config
    cfg = read_model_config(model, FORMAT, FORMAT_VERSION, f"diffusion model '{model}'")
    if "domain" not in cfg:
        return {"differs": None, "statistic": None, "value": None,
                "note": f"diffusion model '{Path(model).name}' records no training-image statistics"}
    arrays = [read_image(p) if isinstance(p, (str, Path)) else p for p in images]
    return domain_shift(cfg["domain"], arrays, what=f"diffusion model '{model}'")


def train_adapted_diffusion(images: Path, out: Path, mode: str, base: Path, budget_s: float, max_steps: int,
                            overrides: dict | None = None, device: str = "auto", threads: int | None = None,
                            progress: bool = True) -> dict:
    """Fine-tune ``base`` on ``images`` (``mode="finetune"``) or train a model of its size from scratch,
    stopping by wall clock after ``budget_s`` seconds in all (earlier runs into ``out`` count), or at
    ``max_steps``. Resumes from ``out``'s checkpoint. Returns a record (steps, seconds, mode)."""
    from .generative.diffusion import FORMAT, FORMAT_VERSION, DiffusionTrainConfig, train_diffusion
    from .modelfolder import CHECKPOINT_DIR, read_model_config
    base_cfg = read_model_config(base, FORMAT, FORMAT_VERSION)
    tc = {k: v for k, v in (base_cfg.get("train_config") or {}).items() if k in DiffusionTrainConfig.model_fields}
    tc.update({"checkpoint_every": 100, "steps": max_steps})
    if mode == "finetune":
        tc["lr"] = FINETUNE_LR
    if threads:
        tc["threads"] = threads
    tc.update(overrides or {})
    cfg = validate(DiffusionTrainConfig, tc, prefix="config.diffusion.")
    state = out / CHECKPOINT_DIR / "state.json"
    resume = state.is_file()
    spent = float(read_json(state).get("elapsed_s", 0.0)) if resume else 0.0
    left = budget_s - spent
    if left > 0 and not (resume and int(read_json(state)["step"]) >= max_steps):
        train_diffusion(images, out, cfg, steps=max_steps, device=device, resume=resume, progress=progress,
                        init=base if mode == "finetune" else None, max_seconds=left)
    st = read_json(state)
    return {"mode": mode, "base": base.name, "steps": int(st["step"]), "seconds": round(float(st["elapsed_s"]), 1),
            "budget_s": round(budget_s, 1), "lr": cfg.lr}


def _render_config(s: AdaptSettings, renderer: str, model: Path):
    from .config import Config, config_to_dict, deep_merge, load_config
    cfg = load_config(s.preset, s.out / "config.yaml")
    if renderer == "diffusion":
        upd = {"render": {"diffusion": {**s.config.render, "model": str(model)}}}
        if s.threads:
            upd["render"]["diffusion"].setdefault("threads", s.threads)
        cfg = validate(Config, deep_merge(config_to_dict(cfg), upd))
    return cfg


def _dataset(s: AdaptSettings, renderer: str) -> Path:
    return s.out / "datasets" / renderer


def _stage_renderer(s: AdaptSettings, plan: _Plan, model: Path) -> dict:
    t0 = time.time()
    if len(s.renderers) == 1:
        return {"renderer": s.renderers[0], "chosen_by": "the only candidate", "seconds": 0.0}
    from .benchmark.choose import DEFAULT_CRITERION, choose_renderer, resolve_criterion
    from .dataset import generate_dataset
    probes = {}
    for r in s.renderers:  # the first samples of each renderer's dataset: the chosen one continues from them
        d = generate_dataset(_render_config(s, r, model), r, min(PROBE_SAMPLES, s.n), s.seed, _dataset(s, r),
                             progress=s.progress)
        probes[r] = [read_image(p) for p in sorted((d / "images").glob("*.tif"))]
    real = [read_image(f) for f in plan.files[:32]]
    name, scores = choose_renderer(real, probes, seed=s.seed)
    # no segmenter is trained yet, so "auto" is KID here
    return {"renderer": name, "chosen_by": f"{resolve_criterion(DEFAULT_CRITERION)} to the images, "
            f"{min(PROBE_SAMPLES, s.n)} samples per renderer, no labels", "scores": scores,
            "seconds": round(time.time() - t0, 1)}


def _stage_generate(s: AdaptSettings, renderer: str, model: Path, spent: float) -> dict:
    from .dataset import done_samples, generate_dataset, sample_name
    cfg = _render_config(s, renderer, model)
    out = _dataset(s, renderer)
    budget = s.budget_s("generate") - spent  # the renderer choice's probes came out of this share
    t0 = time.time()

    def make_plan() -> dict:
        have = len(done_samples(out, [sample_name(i) for i in range(s.n)], with_images=True))
        k = min(2, s.n - have)
        if k <= 0:
            return {"n": s.n, "seconds_per_sample": None, "budget_s": round(budget, 1)}
        generate_dataset(cfg, renderer, have + k, s.seed, out, progress=s.progress)
        per = (time.time() - t0) / k
        n = max(have + k, min(s.n, have + k + int(max(budget - (time.time() - t0), 0) // max(per, 1e-6))))
        return {"n": int(n), "seconds_per_sample": round(per, 2), "budget_s": round(budget, 1)}

    p = _plan(s.out, "generate", make_plan)
    generate_dataset(cfg, renderer, p["n"], s.seed, out, progress=s.progress)
    return {**p, "renderer": renderer, "seconds": round(time.time() - t0, 1)}


def _stage_segmenter(s: AdaptSettings, renderer: str) -> dict:
    from .segment.unet import SegmenterConfig, train_segmenter
    upd = {"seed": s.seed, **(preset_dict(s.preset).get("segmenter") or {}), **s.config.segmenter}
    base = validate(SegmenterConfig, upd, prefix="config.segmenter.")
    budget = s.budget_s("segmenter")
    data = [_dataset(s, renderer)]

    def make_plan() -> dict:
        # two short timed runs: their difference is the time per step without reading the data
        k1, k2 = min(2, s.segmenter_steps), min(6, s.segmenter_steps)
        t0 = time.time()
        train_segmenter(data, None, base, steps=k1, device=s.device, progress=False)
        t1 = time.time()
        per = (t1 - t0) / k1
        if k2 > k1:
            train_segmenter(data, None, base, steps=k2, device=s.device, progress=False)
            t2 = time.time()
            per = max((t2 - t1 - (t1 - t0)) / (k2 - k1), 0.25 * (t2 - t1) / k2)
        overhead = max(t1 - t0 - k1 * per, 0.0)  # reading the data, building the network: once more to come
        left = budget - (time.time() - t0) - overhead
        return {"steps": int(max(k2, min(s.segmenter_steps, left // per))),
                "seconds_per_step": round(per, 3), "budget_s": round(budget, 1)}

    if s.threads:
        import torch
        torch.set_num_threads(s.threads)
    p = _plan(s.out, "segmenter", make_plan)
    t0 = time.time()
    folder = s.out / "models" / "segmenter"
    if folder.exists():  # a complete folder from a run stopped before its marker: train again, same seed
        shutil.rmtree(folder)
    with atomic_path(folder, directory=True) as tmp:
        seg = train_segmenter(data, tmp, base, steps=p["steps"], device=s.device, progress=s.progress)
    return {**p, "seconds": round(time.time() - t0, 1), "final_loss": seg.config["training"]["final_loss"]}


def _stage_predict(s: AdaptSettings) -> dict:
    from .segment.predict import segment_folder
    t0 = time.time()
    written = segment_folder(s.out / "models" / "segmenter", s.images, s.out / "predictions",
                             progress=s.progress, device=s.device)
    return {"n_images": len(written), "seconds": round(time.time() - t0, 1)}


def _stage_report(s: AdaptSettings, plan: _Plan, stages: dict) -> dict:
    report: dict[str, Any] = {"settings": read_json(s.out / SETTINGS_FILE), "stages": stages,
                              "domain": stages["diffusion"].get("domain"), "scores": None}
    if plan.pairs is not None:
        from .metrics.compare import score_segmentations
        gt = {n: read_labels(m) for n, m in plan.pairs.items()}
        pred = {n: read_labels(s.out / "predictions" / f"{n}.tif") for n in plan.pairs}
        sc = score_segmentations(gt, pred, progress=s.progress)
        report["scores"] = {k: sc[k] for k in ("n_images", "ap50", "ap50_95", "pq50", "seg", "dice",
                                               "boundary_f1", "centroid_accuracy")}
        report["scores"]["per_image"] = {n: {k: v[k] for k in ("ap50", "ap50_95", "dice", "seg")}
                                         for n, v in sc["per_image"].items()}
        # AP@0.5 as the Syn2Real benchmark reports it (mean over images) beside the pooled counts of `evaluate`
        report["scores"]["ap50_mean"] = float(np.mean([v["ap50"] for v in sc["per_image"].values()]))
    write_json(s.out / "report.json", report)
    write_text(s.out / "report.md", report_markdown(report))
    return {"scored": plan.pairs is not None}


def report_markdown(report: dict) -> str:
    """A short human-readable summary of an adapt report (``report.md``)."""
    st, sc, dom = report["stages"], report.get("scores"), report.get("domain") or {}
    d = st["diffusion"]
    lines = ["# cellsynth adapt", "",
             f"- images: `{report['settings']['images_data']['folder']}` "
             f"({report['settings']['images_data']['count']} images), preset `{report['settings']['preset']}`",
             f"- fit: {st['fit']['n_objects']} objects in {st['fit']['n_images']} images, radius {st['fit']['radius']}"]
    if dom.get("differs") is not None:
        lines.append(f"- images vs the base model's training images: **{'differ' if dom['differs'] else 'alike'}** "
                     f"({dom['statistic']} = {dom['value']:.3g}, threshold {dom['threshold']}; "
                     f"{100 * dom['fraction_outside']:.0f} % of the images outside)")
    elif dom:
        lines.append(f"- images vs the base model's training images: not decided ({dom.get('note')})")
    lines.append(f"- diffusion model: {d['mode']} (base `{d['base']}`), {d['steps']} steps in {d['seconds']} s "
                 f"(budget {d['budget_s']} s)")
    lines.append(f"- renderer: {st['renderer']['renderer']} ({st['renderer']['chosen_by']})")
    g, sg = st["generate"], st["segmenter"]
    lines.append(f"- synthetic data: {g['n']} {g['renderer']} samples ({g['seconds_per_sample']} s each)")
    lines.append(f"- segmenter: {sg['steps']} steps ({sg['seconds']} s), final loss {sg['final_loss']}")
    lines.append(f"- predictions: {st['predict']['n_images']} images in `predictions/`")
    if sc:
        lines += ["", "| images | AP@0.5 (pooled) | AP@0.5 (mean over images) | AP@0.5:0.95 (pooled) | SEG | Dice "
                  "| boundary F1 |", "|---|---|---|---|---|---|---|",
                  f"| {sc['n_images']} | {sc['ap50']:.3f} | {sc['ap50_mean']:.3f} | {sc['ap50_95']:.3f} | "
                  f"{sc['seg']:.3f} | {sc['dice']:.3f} | {sc['boundary_f1']:.3f} |",
                  "", "Pooled: counts summed over the images (as `cellsynth evaluate`); mean over images: as the "
                  "Syn2Real benchmark."]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- driver
def run_adapt(s: AdaptSettings) -> dict:
    """Run (or resume) every stage; return the report (also ``PROJECT/report.json``).

    Examples
    --------
    ``run_adapt(AdaptSettings(images="lab/images", out="project", budget_min=30, masks="lab/masks"))``
    """
    from tqdm.auto import tqdm

    plan = validate_settings(s)  # everything checked before the first byte is written
    _open_project(s, plan)
    stages: dict[str, dict] = {}
    bar = tqdm(total=len(STAGES), desc="adapt", disable=not s.progress, position=0)
    model = s.out / "models" / "diffusion" if plan.mode != "none" else plan.base
    for stage in STAGES:
        done = _done(s.out, stage)
        if done is not None and stage != "report":
            stages[stage] = done
            log.info("adapt: stage %s already done", stage)
            bar.update(1)
            continue
        bar.set_postfix(stage=stage)
        log.info("adapt: stage %s", stage)
        if stage == "fit":
            info = _stage_fit(s, plan)
        elif stage == "diffusion":
            dom = domain_decision(plan.base, plan.files)
            if plan.mode == "none":
                info = {"mode": "none", "base": plan.base.name, "steps": 0, "seconds": 0.0, "budget_s": 0.0}
            else:
                info = train_adapted_diffusion(s.images, model, plan.mode, plan.base, s.budget_s("diffusion"),
                                               s.diffusion_steps, s.config.diffusion, s.device, s.threads,
                                               s.progress)
            info["domain"] = dom
        elif stage == "renderer":
            info = _stage_renderer(s, plan, model)
        elif stage == "generate":
            info = _stage_generate(s, stages["renderer"]["renderer"], model, stages["renderer"]["seconds"])
        elif stage == "segmenter":
            info = _stage_segmenter(s, stages["renderer"]["renderer"])
        elif stage == "predict":
            info = _stage_predict(s)
        else:
            info = _stage_report(s, plan, stages)
        stages[stage] = _finish(s.out, stage, info)
        bar.update(1)
    bar.close()
    return read_json(s.out / "report.json")
