"""Denoising diffusion (DDPM) trained on unannotated real images, and SDEdit from sketches (Eschweiler et al. 2024).

Model (Eschweiler et al. 2024 after Ho et al. 2020 and Nichol & Dhariwal 2021): T = 1000 steps,
cosine schedule ᾱ(t) = f(t)/f(0), f(t) = cos²(((t/T) + s)/(1 + s) · π/2), s = 0.008,
β_t = 1 − ᾱ_t/ᾱ_{t−1} clipped at 0.999; the U-Net (:class:`cellsynth.nn.unet.UNet`
with ``time_embedding=True``: pixel-shuffle upsampling, sinusoidal time embedding in
every block) predicts the noise ε; loss ‖ε − ε_θ(x_t, t)‖² (MSE).

Timestep convention
-------------------
Arrays are indexed 0..T−1 as in the improved-DDPM code: index ``k`` holds the
paper's step t = k + 1, i.e. ``alphas_cumprod[k] = ᾱ_{k+1} = f((k+1)/T)/f(0)``, and
the network sees the index ``k``. ``t_start`` is given in the paper's terms: the
number of forward-noising steps, 1..T. SDEdit noises the sketch to x_{t_start}
(``alphas_cumprod[t_start − 1]``) and the full reverse chain visits the t_start
indices t_start−1, ..., 0. A respaced chain keeps K of them (``steps = K``);
K = t_start is the full chain.

Generation (SDEdit, Eschweiler et al. 2024 Fig. 1b): sketch → intensities mapped to the model's
normalised background/foreground levels → Gaussian blur σ → forward noise to
t_start → (respaced) reverse process → image. Any size: tiled inference with
Gaussian blending at every step (:mod:`cellsynth.tiling`).

A model is a directory: ``config.json`` (UNet constructor arguments, schedule,
normalisation, intensity statistics, patch size, training record, versions,
format version, ``domain``: the training images' look, :mod:`cellsynth.metrics.domain`)
+ ``weights.safetensors`` (EMA weights). Training also keeps ``checkpoint/`` (raw + EMA
weights, optimizer state, RNG states) for ``--resume``. Training can start from another
model's weights (``init``: fine-tuning, e.g. the shipped model on a new lab's images) and
stop by wall clock (``max_seconds``), saving where it stopped.
"""
from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field

from .. import ddp, tiling
from ..config import Strict, validate
from ..errors import ConfigError, InputError
from ..intensity import DEFAULT_PERCENTILES, normalize_percentile, percentile_range
from ..io import check_writable, list_images, read_image, read_json, write_json
from ..modelfolder import (
    CHECKPOINT_DIR,
    CONFIG_FILE,
    WEIGHTS_FILE,
    config_error,
    describe_training_data,
    load_tensors,
    load_weights,
    read_model_config,
    resolve_device,
    save_model_folder,
    save_tensors,
)
from ..nn.unet import UNet
from .training import EMA as _EMA
from .training import autocast as _autocast
from .training import build_seeded
from .training import optimizer_from_tensors as _optimizer_from_tensors
from .training import optimizer_to_tensors as _optimizer_to_tensors

log = logging.getLogger(__name__)

FORMAT = "cellsynth-diffusion"
FORMAT_VERSION = 1


# --------------------------------------------------------------------------- configuration
class DiffusionTrainConfig(Strict):
    """Training settings (``cellsynth train diffusion --config F``; YAML or JSON)."""

    # U-Net (cellsynth.nn.unet.UNet constructor arguments)
    channels: list[Annotated[int, Field(ge=1)]] = [32, 64, 128]
    blocks_per_level: Annotated[int, Field(ge=1)] = 1
    strides: list[list[Annotated[int, Field(ge=1)]]] | None = None
    dropout: Annotated[float, Field(ge=0, lt=1)] = 0.0
    # random patches, (Z)YX; None = 64² (2D) / 16×64×64 (3D)
    patch_size: list[Annotated[int, Field(ge=4)]] | None = None
    batch_size: Annotated[int, Field(ge=1)] = 16
    lr: Annotated[float, Field(gt=0)] = 2e-4
    ema: Annotated[float, Field(ge=0, lt=1)] = 0.999
    steps: Annotated[int, Field(ge=1)] = 3000
    checkpoint_every: Annotated[int, Field(ge=1)] = 250
    grad_clip: Annotated[float, Field(gt=0)] = 1.0
    # per-image percentile normalisation → [-1, 1]
    percentiles: tuple[float, float] = DEFAULT_PERCENTILES
    # schedule
    T: Annotated[int, Field(ge=2)] = 1000
    cosine_s: Annotated[float, Field(gt=0)] = 0.008
    max_beta: Annotated[float, Field(gt=0, lt=1)] = 0.999
    seed: int = 0
    threads: Annotated[int, Field(ge=1)] | None = None
    amp: bool = True  # mixed precision on CUDA (bf16 where supported, else fp16)


# --------------------------------------------------------------------------- schedule
def cosine_alpha_bar(t: np.ndarray | float, T: int, s: float = 0.008) -> np.ndarray:
    """f(t)/f(0) with f(t) = cos²(((t/T) + s)/(1 + s) · π/2) (Nichol & Dhariwal eq. 17)."""
    f = lambda u: np.cos(((np.asarray(u, dtype=np.float64) / T) + s) / (1 + s) * np.pi / 2) ** 2
    return f(t) / f(0)


def cosine_betas(T: int = 1000, s: float = 0.008, max_beta: float = 0.999) -> np.ndarray:
    """β_k = 1 − ᾱ(k+1)/ᾱ(k), k = 0..T−1, clipped at ``max_beta`` (avoids the singularity at t = T)."""
    k = np.arange(T, dtype=np.float64)
    return np.minimum(1.0 - cosine_alpha_bar(k + 1, T, s) / cosine_alpha_bar(k, T, s), max_beta)


class Schedule:
    """Noise schedule: betas and ᾱ (``alphas_cumprod``), float64 numpy, indices 0..T−1."""

    def __init__(self, T: int = 1000, s: float = 0.008, max_beta: float = 0.999):
        self.T, self.s, self.max_beta = int(T), float(s), float(max_beta)
        self.betas = cosine_betas(self.T, self.s, self.max_beta)
        self.alphas_cumprod = np.cumprod(1.0 - self.betas)

    def to_dict(self) -> dict:
        return {"name": "cosine", "T": self.T, "s": self.s, "max_beta": self.max_beta, "prediction": "epsilon"}

    def q_sample(self, x0: torch.Tensor, k: torch.Tensor | int, noise: torch.Tensor) -> torch.Tensor:
        """Forward process q(x_t | x_0) = N(√ᾱ x_0, (1 − ᾱ) I) at index k (per batch item or scalar)."""
        ab = torch.as_tensor(self.alphas_cumprod, dtype=torch.float32, device=x0.device)[
            torch.as_tensor(k, device=x0.device).long()]
        ab = ab.reshape(-1, *([1] * (x0.dim() - 1))) if ab.dim() else ab
        return ab.sqrt() * x0 + (1 - ab).sqrt() * noise


def check_sampling(t_start: int, steps: int, T: int | None = None, prefix: str = "", model: str = "") -> None:
    """SDEdit settings against the model's schedule: 1 <= t_start <= T and 1 <= steps (K) <= t_start.

    Raises :class:`ConfigError` naming the keys (``prefix`` + name, e.g. ``render.diffusion.``)
    and the model, so a renderer can refuse its settings before anything is written.

    >>> check_sampling(400, 50, T=1000)
    >>> check_sampling(1200, 50, T=1000)
    Traceback (most recent call last):
    ...
    cellsynth.errors.ConfigError: t_start = 1200: must be in 1..1000 (T of the model)
    """
    of = f" (T of the model{' ' + repr(model) if model else ''})"
    if T is not None and not 1 <= int(t_start) <= int(T):
        raise ConfigError(f"{prefix}t_start = {t_start}: must be in 1..{T}{of}")
    if not 1 <= int(t_start):
        raise ConfigError(f"{prefix}t_start = {t_start}: must be >= 1")
    if not 1 <= int(steps) <= int(t_start):
        raise ConfigError(f"{prefix}steps = {steps}: must be between 1 and {prefix}t_start = {t_start}")


def respaced_timesteps(t_start: int, steps: int) -> np.ndarray:
    """The K = ``steps`` indices kept from t_start−1..0 (evenly spaced, both ends kept), descending."""
    check_sampling(t_start, steps)
    if steps == 1:
        return np.array([t_start - 1])
    k = np.floor(np.linspace(0, t_start - 1, steps) + 0.5).astype(np.int64)  # monotone, distinct
    return k[::-1].copy()


def respaced_coefficients(alphas_cumprod: np.ndarray, timesteps: np.ndarray) -> dict[str, np.ndarray]:
    """Posterior q(x_{prev} | x_t, x_0) coefficients for a chain visiting ``timesteps`` (descending).

    Respacing as in improved DDPM: ᾱ is kept at the visited indices and the betas
    are recomputed, β'_i = 1 − ᾱ_{k_i} / ᾱ_{k_{i+1}} (ᾱ = 1 after the last step), so a
    skipped stretch is one exact Gaussian step. Posterior mean
    μ = c0·x̂_0 + ct·x_t, variance β̃ = β'(1 − ᾱ_prev)/(1 − ᾱ) (Ho et al. eq. 7).
    """
    ab = alphas_cumprod[timesteps]
    ab_prev = np.append(ab[1:], 1.0)
    beta = 1.0 - ab / ab_prev
    c0 = beta * np.sqrt(ab_prev) / (1.0 - ab)
    ct = (1.0 - ab_prev) * np.sqrt(1.0 - beta) / (1.0 - ab)
    var = beta * (1.0 - ab_prev) / (1.0 - ab)
    return {"alpha_bar": ab, "alpha_bar_prev": ab_prev, "beta": beta, "c0": c0, "ct": ct, "var": var}


# --------------------------------------------------------------------------- model directory
@dataclass
class DiffusionModel:
    """A loaded model: the ε-network, its schedule and the stored normalisation/intensity statistics."""

    net: UNet
    schedule: Schedule
    config: dict
    path: Path | None = None

    @property
    def ndim(self) -> int:
        return int(self.config["architecture"]["args"]["spatial_dims"])

    @property
    def intensity(self) -> dict:
        return self.config["intensity"]

    def normalise(self, image: np.ndarray) -> np.ndarray:
        """Per-image percentile normalisation to [-1, 1] (the training normalisation)."""
        n = self.config["normalisation"]
        return normalize_percentile(image, n["low"], n["high"], out=(-1, 1), clip=True)

    def to_raw(self, x: np.ndarray) -> np.ndarray:
        """Map model space [-1, 1] to the training images' typical raw intensity range."""
        n = self.config["normalisation"]
        return (n["raw_low"] + (x + 1) / 2 * (n["raw_high"] - n["raw_low"])).astype(np.float32)


def save_model(net: UNet, config: dict, out: str | Path, state_dict: dict | None = None) -> Path:
    """Write the model folder ``out`` (:func:`cellsynth.modelfolder.save_model_folder`).

    ``state_dict`` (e.g. the EMA weights) replaces the net's own weights.
    """
    body = {k: v for k, v in config.items() if k not in ("format", "format_version", "versions")}
    return save_model_folder(out, FORMAT, FORMAT_VERSION, body,
                             {"": state_dict if state_dict is not None else net})


def load_model(path: str | Path, device: str | torch.device = "cpu") -> DiffusionModel:
    """Load and validate a model folder; a bad one raises a one-line :class:`InputError` naming it."""
    path = Path(path)
    what = f"diffusion model '{path}'"
    config = read_model_config(path, FORMAT, FORMAT_VERSION, what)
    try:
        arch = config["architecture"]
        if arch.get("class") != "UNet":
            raise KeyError("architecture.class")
        net = UNet(**arch["args"])
        sch = config["schedule"]
        schedule = Schedule(sch["T"], sch["s"], sch["max_beta"])
        for key in ("low", "high", "raw_low", "raw_high"):
            float(config["normalisation"][key])
        for key in ("background", "foreground_low", "foreground_high"):
            float(config["intensity"][key])
    except (KeyError, TypeError, ValueError) as e:
        raise config_error(what, e) from None
    load_weights(path, {"": net}, what)
    net.eval().to(resolve_device(device))
    return DiffusionModel(net=net, schedule=schedule, config=config, path=path)




def add_domain_record(model: str | Path, images: str | Path) -> dict:
    """Store the training images' look (:func:`cellsynth.metrics.domain.domain_record`) in a model folder.

    For a model trained before ``config.json`` kept a ``domain`` entry (e.g. the shipped
    ``nuclei2d-dsb``): ``images`` must be the very training images, checked against the
    folder's recorded ``training.data`` (count and content hash), so the record describes what
    the model saw. Only ``config.json`` is rewritten (atomically); the weights and the format
    version stay as they are. Returns the record.
    """
    from ..metrics.domain import domain_record
    model = Path(model)
    what = f"diffusion model '{model}'"
    config = read_model_config(model, FORMAT, FORMAT_VERSION, what)
    files = list_images(images, what="training images")
    data = describe_training_data(files, images)
    recorded = config.get("training", {}).get("data") or {}
    if (recorded.get("count"), recorded.get("sha256")) != (data["count"], data["sha256"]):
        raise InputError(f"images '{images}' ({data['count']} files, hash {data['sha256']}) are not the training "
                         f"data recorded in {what} ({recorded.get('count')} files, hash {recorded.get('sha256')})")
    n = config["normalisation"]
    config["domain"] = domain_record((read_image(f) for f in files), (n["low"], n["high"]))
    write_json(model / CONFIG_FILE, config)
    return config["domain"]


# --------------------------------------------------------------------------- training
def load_training_images(images: str | Path, percentiles: Sequence[float]) -> tuple[list[np.ndarray], np.ndarray]:
    """Read every TIFF in ``images`` (all 2D or all 3D) and each image's (p_low, p_high)."""
    files = list_images(images, what="training images")
    arrays, lohi = [], []
    for f in files:
        a = read_image(f)
        if arrays and a.ndim != arrays[0].ndim:
            raise InputError(f"training images must all have the same number of dimensions: "
                             f"'{files[0].name}' is {arrays[0].ndim}D but '{f.name}' is {a.ndim}D")
        arrays.append(a)
        lohi.append(percentile_range(a, *percentiles, name=f"training image '{f.name}'"))
    return arrays, np.asarray(lohi, dtype=np.float64)


def intensity_statistics(patches: np.ndarray) -> dict:
    """Background/foreground levels of normalised training patches (Otsu split of all their values).

    Used to map sketch intensities onto the model's normalisation: background → the
    background median, objects → the foreground 10th..90th percentile range.
    """
    from skimage.filters import threshold_otsu
    v = patches.ravel()
    thr = float(threshold_otsu(v))
    bg, fg = v[v <= thr], v[v > thr]
    if fg.size == 0:
        fg = v
    return {"method": "otsu", "threshold": thr, "background": float(np.median(bg)),
            "foreground": float(np.median(fg)), "foreground_low": float(np.percentile(fg, 10)),
            "foreground_high": float(np.percentile(fg, 90)), "foreground_fraction": float(fg.size / v.size)}


def _model_config(net_args: dict, schedule: Schedule, cfg: DiffusionTrainConfig, lohi: np.ndarray,
                  intensity: dict, patch: list[int], record: dict, domain: dict) -> dict:
    return {
        "architecture": {"class": "UNet", "module": "cellsynth.nn.unet", "args": net_args},
        "schedule": schedule.to_dict(),
        "normalisation": {"method": "percentile", "low": cfg.percentiles[0], "high": cfg.percentiles[1],
                          "clip": True, "range": [-1.0, 1.0],
                          # typical raw intensities of the training images (median over images)
                          "raw_low": float(np.median(lohi[:, 0])), "raw_high": float(np.median(lohi[:, 1]))},
        "intensity": intensity,
        "patch_size": patch,
        "training": record,
        "train_config": cfg.model_dump(mode="json"),
        "domain": domain,
    }


def init_network(init: str | Path, ndim: int) -> tuple[dict, dict]:
    """U-Net arguments and schedule of the model folder ``init`` (fine-tuning starts from its EMA weights).

    Raises a one-line :class:`InputError` when ``init`` is not a diffusion model folder or is not
    ``ndim``-D single-channel.
    """
    what = f"diffusion model to fine-tune '{init}'"
    config = read_model_config(init, FORMAT, FORMAT_VERSION, what)
    try:
        args = dict(config["architecture"]["args"])
        sch = config["schedule"]
        schedule = {"T": int(sch["T"]), "cosine_s": float(sch["s"]), "max_beta": float(sch["max_beta"])}
        dims, chans = int(args["spatial_dims"]), int(args["in_channels"])
    except (KeyError, TypeError, ValueError) as e:
        raise config_error(what, e) from None
    if dims != ndim or chans != 1:
        raise InputError(f"{what} is a {dims}D model with {chans} channel(s) but the training images are "
                         f"{ndim}D single-channel")
    return args, schedule


def train_diffusion(images: str | Path, out: str | Path, cfg: DiffusionTrainConfig | None = None,
                    steps: int | None = None, device: str = "auto", resume: bool = False,
                    progress: bool = True, init: str | Path | None = None,
                    max_seconds: float | None = None) -> Path:
    """Train a DDPM on the (unannotated) images in ``images``; write the model directory ``out``.

    Parameters
    ----------
    images : folder of single-channel TIFFs, all 2D (YX) or all 3D (ZYX).
    out : model directory (``config.json``, ``weights.safetensors`` = EMA weights,
        ``checkpoint/`` for resuming). Refused if it already holds a model unless ``resume``.
    cfg : :class:`DiffusionTrainConfig` (U-Net channels, patch size, batch, lr, EMA, ...).
    steps : total optimisation steps (overrides ``cfg.steps``); with ``resume`` training
        continues from the checkpoint's step up to this total.
    device : "auto" (CUDA when available, with mixed precision), "cpu" or "cuda".
    init : a diffusion model folder to fine-tune: its U-Net arguments and schedule replace the
        config's, its (EMA) weights are loaded (safetensors, no unpickling) before the first step.
        Recorded as ``training.init``. Ignored on ``resume`` (the checkpoint holds the weights).
    max_seconds : stop after the step at which this many seconds of this call have passed,
        saving a checkpoint and the model there (``resume`` continues; None = no limit).
    """
    cfg = cfg or DiffusionTrainConfig()
    if steps is not None:
        cfg = cfg.model_copy(update={"steps": int(steps)})
    out = Path(out)
    ckpt_dir = out / CHECKPOINT_DIR
    if resume:
        if not (ckpt_dir / "state.safetensors").is_file() or not (ckpt_dir / "state.json").is_file():
            raise InputError(f"model directory '{out}' has no checkpoint to resume from")
        saved = read_json(ckpt_dir / "state.json", what="training checkpoint")
        cfg = validate(DiffusionTrainConfig, {**saved["train_config"], "steps": cfg.steps,
                                               "threads": cfg.threads}, prefix="train_config.")
        init_record = saved.get("init")
    elif (out / CONFIG_FILE).exists() or (ckpt_dir / "state.json").exists():
        raise InputError(f"model directory '{out}' already holds a model; pass --resume to continue "
                         f"training it or choose another --out")
    check_writable(out, "model folder")
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    dev = resolve_device(device)

    arrays, lohi = load_training_images(images, cfg.percentiles)
    data = describe_training_data(list_images(images, what="training images"), images)
    nd = arrays[0].ndim
    patch = list(cfg.patch_size) if cfg.patch_size else ([64, 64] if nd == 2 else [16, 64, 64])
    if len(patch) != nd:
        raise ConfigError(f"patch_size {patch} has {len(patch)} axes but the training images are {nd}D")
    if not resume:
        init_record = None
    if init is not None and not resume:
        init_args, init_schedule = init_network(init, nd)
        # the fine-tuned model keeps the base's network and schedule; the config says so
        cfg = cfg.model_copy(update={"channels": list(init_args["channels"]),
                                     "blocks_per_level": init_args["blocks_per_level"],
                                     "strides": init_args.get("strides"), "dropout": init_args.get("dropout", 0.0),
                                     **init_schedule})
        init_cfg = read_model_config(init, FORMAT, FORMAT_VERSION)
        init_record = {"folder": Path(init).name, "data": init_cfg.get("training", {}).get("data"),
                       "steps": init_cfg.get("training", {}).get("steps")}
    net_args = {"spatial_dims": nd, "in_channels": 1, "out_channels": 1, "channels": list(cfg.channels),
                "blocks_per_level": cfg.blocks_per_level, "time_embedding": True, "dropout": cfg.dropout,
                "strides": cfg.strides}
    net = build_seeded(UNet, cfg.seed, "U-Net", patch, **net_args)
    if init is not None and not resume:
        load_weights(init, {"": net}, f"diffusion model to fine-tune '{init}'")
    net.to(dev)
    schedule = Schedule(cfg.T, cfg.cosine_s, cfg.max_beta)
    ab = torch.as_tensor(schedule.alphas_cumprod, dtype=torch.float32, device=dev)
    distributed = ddp.setup(dev)  # under torchrun: gradients averaged over processes, rank 0 writes
    model = ddp.wrap(net, dev)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    use_amp = dev.type == "cuda" and cfg.amp
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp and not torch.cuda.is_bf16_supported()) \
        if dev.type == "cuda" else None

    # each process its own patches and noise; rank 0 (and a single process) the streams of `seed` alone
    rank = ddp.rank()
    rng = np.random.default_rng(cfg.seed if rank == 0 else [cfg.seed, rank])
    gen = torch.Generator().manual_seed(cfg.seed if rank == 0 else cfg.seed + 7919 * rank)

    def sample_batch() -> np.ndarray:
        batch = np.empty((cfg.batch_size, 1, *patch), np.float32)
        for b in range(cfg.batch_size):
            i = int(rng.integers(len(arrays)))
            p = tiling.random_patch(arrays[i], patch, rng)
            p = normalize_percentile(p, lo_hi=lohi[i], out=(-1, 1), clip=True)
            batch[b, 0] = tiling.random_flip_rot(p, rng)
        return batch

    # intensity statistics from a fixed set of normalised patches (own generator: resume-safe)
    stat_rng = np.random.default_rng(cfg.seed + 1)
    stat_patches = np.stack([normalize_percentile(tiling.random_patch(arrays[i], patch, stat_rng), lo_hi=lohi[i],
                                                  out=(-1, 1), clip=True)
                             for i in stat_rng.integers(0, len(arrays), size=min(256, 8 * len(arrays)))])
    intensity = intensity_statistics(stat_patches)
    from ..metrics.domain import domain_record
    domain = domain_record(arrays, cfg.percentiles)

    ema = _EMA(net, cfg.ema)
    start, elapsed = 0, 0.0
    if resume:
        st = load_tensors(ckpt_dir / "state.safetensors", f"checkpoint of '{out}'")
        net.load_state_dict({k[4:]: v for k, v in st.items() if k.startswith("net.")})
        ema.shadow = {k[4:]: v.to(dev) for k, v in st.items() if k.startswith("ema.")}
        # load_state_dict moves moments to the parameters' device and keeps Adam's step where it belongs
        _optimizer_from_tensors(opt, {k: v for k, v in st.items() if k.startswith("opt.")}, saved["param_groups"])
        gen.set_state(st["rng.torch"])
        rng.bit_generator.state = saved["numpy_rng"]
        start, elapsed = int(saved["step"]), float(saved.get("elapsed_s", 0.0))
        if rank:  # the checkpoint holds rank 0's streams; the others continue on their own
            rng = np.random.default_rng([cfg.seed, rank, start])
            gen = torch.Generator().manual_seed(cfg.seed + 7919 * rank + start)

    def record(step: int) -> dict:
        return {"data": data, "n_images": len(arrays), "steps": step, "batch_size": cfg.batch_size,
                "lr": cfg.lr, "ema": cfg.ema, "time_s": round(elapsed, 1), "device": dev.type,
                "n_parameters": sum(p.numel() for p in net.parameters()), "processes": ddp.world_size(),
                "init": init_record}

    def save(step: int) -> None:
        if not ddp.is_main():  # every process holds the same weights: written once
            ddp.barrier()
            return
        opt_t, groups = _optimizer_to_tensors(opt)
        tensors = {**{f"net.{k}": v for k, v in net.state_dict().items()},
                   **{f"ema.{k}": v for k, v in ema.shadow.items()}, **opt_t, "rng.torch": gen.get_state()}
        save_tensors(ckpt_dir / "state.safetensors", tensors)
        write_json(ckpt_dir / "state.json", {"step": step, "elapsed_s": elapsed, "param_groups": groups,
                                             "numpy_rng": rng.bit_generator.state, "init": init_record,
                                             "train_config": cfg.model_dump(mode="json")})
        save_model(net, _model_config(net_args, schedule, cfg, lohi, intensity, patch, record(step), domain),
                   out, state_dict=ema.shadow)
        if distributed:
            ddp.barrier()

    from tqdm.auto import tqdm
    bar = tqdm(total=cfg.steps, initial=start, desc="train diffusion", disable=not progress or not ddp.is_main(),
               dynamic_ncols=True)
    net.train()
    t0 = t_prev = t_call = time.perf_counter()
    run_s = 0.0
    for step in range(start + 1, cfg.steps + 1):
        x0 = torch.from_numpy(sample_batch()).to(dev)
        k = torch.randint(0, schedule.T, (cfg.batch_size,), generator=gen).to(dev)
        noise = torch.randn(x0.shape, generator=gen).to(dev)
        a = ab[k].reshape(-1, *([1] * (x0.dim() - 1)))
        xt = a.sqrt() * x0 + (1 - a).sqrt() * noise
        with _autocast(dev, use_amp):
            pred = model(xt, k.float())
        loss = F.mse_loss(pred.float(), noise)
        opt.zero_grad(set_to_none=True)
        if scaler is not None and scaler.is_enabled():
            scaler.scale(loss).backward()
            scaler.unscale_(opt)
            torch.nn.utils.clip_grad_norm_(net.parameters(), cfg.grad_clip)
            scaler.step(opt)
            scaler.update()
        else:
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), cfg.grad_clip)
            opt.step()
        ema.update(net, step)
        now = time.perf_counter()
        elapsed += now - t0
        t0 = now
        bar.update(1)
        run_s += now - t_prev
        t_prev = now
        bar.set_postfix(loss=f"{loss.item():.4f}", steps_s=f"{(step - start) / max(run_s, 1e-9):.2f}")
        over_time = max_seconds is not None and now - t_call >= max_seconds
        if step % cfg.checkpoint_every == 0 or step == cfg.steps or over_time:
            save(step)
        if over_time:
            log.info("diffusion training stopped by its time limit (%.0f s) at step %d of %d", max_seconds,
                     step, cfg.steps)
            break
    bar.close()
    if start >= cfg.steps and not (out / WEIGHTS_FILE).is_file():
        save(start)
    return out


# --------------------------------------------------------------------------- generation (SDEdit)
def map_sketch_intensities(sketch: np.ndarray, intensity: dict, sketch_levels: Sequence[float] = (0.0, 0.5, 1.0),
                           background: float | None = None,
                           foreground: Sequence[float] | None = None) -> np.ndarray:
    """Map a [0, 1] sketch onto the model's normalised intensities (piecewise linear).

    ``sketch_levels`` = (background, dimmest object, brightest object) in the sketch
    (SketchConfig.background and .intensity). They go to the model's background level
    and foreground 10th/90th percentiles (or ``background`` / ``foreground`` = (low, high),
    in the model's [-1, 1] units); values in between (blurred edges, darker overlaps,
    nucleoli) are interpolated, values beyond are clamped.
    """
    s_bg, s_lo, s_hi = (float(v) for v in sketch_levels)
    bg = float(intensity["background"]) if background is None else float(background)
    fg_lo, fg_hi = ((intensity["foreground_low"], intensity["foreground_high"]) if foreground is None
                    else foreground)
    xp, fp = [s_bg], [bg]
    if s_lo > s_bg:
        xp.append(s_lo)
        fp.append(float(fg_lo))
    if s_hi > xp[-1]:
        xp.append(s_hi)
        fp.append(float(fg_hi))
    if len(xp) == 1:
        return np.full(sketch.shape, bg, np.float32)
    return np.interp(sketch, xp, fp).astype(np.float32)


def _make_generator(generator: torch.Generator | None, seed: int | None) -> torch.Generator:
    if generator is not None:
        if generator.device.type != "cpu":
            raise ValueError("sdedit needs a CPU torch.Generator (noise is drawn on the CPU so results repeat)")
        return generator
    return torch.Generator().manual_seed(int(seed) if seed is not None else 0)


@torch.no_grad()
def reverse_process(model: DiffusionModel | Callable, x_t: torch.Tensor, t_start: int, steps: int,
                    generator: torch.Generator, schedule: Schedule | None = None,
                    tile: Sequence[int] | None = None, overlap: float = 0.125, batch_size: int = 4,
                    clip: float = 1.0, progress: bool = False, amp: bool = True) -> torch.Tensor:
    """Run the (respaced) reverse process from x_{t_start} down to x_0.

    At each kept index k the ε-prediction comes from overlapping tiles blended with a
    Gaussian weight (one global x_t and one global noise field, drawn from the CPU
    ``generator``), then x̂_0 = (x_t − √(1−ᾱ) ε)/√ᾱ (clipped to ±``clip``), and
    x_prev = μ(x̂_0, x_t) + √β̃ z (no noise at the last step).

    ``model`` may be a :class:`DiffusionModel` or any callable ``eps(x, k)`` (tests).
    """
    if isinstance(model, DiffusionModel):
        net, schedule = model.net, model.schedule
        dev = next(net.parameters()).device
        eps_fn = lambda x, k: net(x, k)
    else:
        if schedule is None:
            raise ValueError("pass schedule= with a plain callable model")
        eps_fn, dev = model, x_t.device
    ts = respaced_timesteps(t_start, steps)
    co = respaced_coefficients(schedule.alphas_cumprod, ts)
    tile = list(tile) if tile is not None else list(x_t.shape[2:])
    x = x_t.to(dev, torch.float32)
    from tqdm.auto import tqdm

    from ..allocator import retained_heap
    with retained_heap(torch.device(dev).type == "cpu"):  # step k reuses the memory step k-1 freed
        for i, k in enumerate(tqdm(ts, desc="sdedit", disable=not progress, leave=False)):
            kt = torch.full((1,), float(k), device=dev)

            def predictor(patch: torch.Tensor, kt=kt) -> torch.Tensor:
                with _autocast(dev, amp):
                    return eps_fn(patch, kt.expand(patch.shape[0])).float()

            eps = tiling.tiled_predict(x, predictor, tile, overlap=overlap, batch_size=batch_size)
            ab = float(co["alpha_bar"][i])
            x0 = (x - math.sqrt(1 - ab) * eps) / math.sqrt(ab)
            if clip:
                x0 = x0.clamp(-clip, clip)
            x = float(co["c0"][i]) * x0 + float(co["ct"][i]) * x
            if i < len(ts) - 1:
                z = torch.randn(x.shape, generator=generator).to(dev)
                x = x + math.sqrt(float(co["var"][i])) * z
    return x


def sdedit(model: DiffusionModel | str | Path, sketch: np.ndarray, t_start: int = 400, steps: int = 50,
           sigma: float = 1.0, generator: torch.Generator | None = None, seed: int | None = None,
           tile: Sequence[int] | None = None, overlap: float = 0.125, match_intensities: bool = True,
           sketch_levels: Sequence[float] | None = None, background: float | None = None,
           foreground: Sequence[float] | None = None, output: Literal["unit", "model", "raw"] = "unit",
           batch_size: int = 4, progress: bool = False) -> np.ndarray:
    """SDEdit (Meng et al.; Eschweiler et al. 2024): a realistic image from a sketch, any size, 2D or 3D.

    Parameters
    ----------
    model : a loaded :class:`DiffusionModel` or a model directory.
    sketch : float array in [0, 1], (Z)YX, the model's dimensionality.
    t_start : forward-noising steps 1..T (paper's t_start; default 400 of T = 1000);
        the sample starts from x_{t_start} = √ᾱ x_sketch + √(1 − ᾱ) ε.
    steps : K, number of reverse steps of the respaced sampler; K ≥ t_start runs the full chain.
    sigma : Gaussian blur σ (px) of the sketch before noising (paper: σ = 1).
    generator / seed : CPU ``torch.Generator`` (or a seed for one): same seed → same image.
    tile, overlap : tile size ((Z)YX; None = the whole image up to 512² px, else balanced tiles
        of at most 256² / 64×128² (:func:`cellsynth.tiling.auto_tile`)) and fractional overlap;
        ε of overlapping tiles is blended at every step.
    match_intensities : map sketch levels (``sketch_levels`` = background, dimmest, brightest
        object; None = those of the default :class:`~cellsynth.config.SketchConfig`) to the
        model's stored background/foreground statistics (overridable with
        ``background`` and ``foreground`` = (low, high) in model units [-1, 1]).
    output : "unit" → float32 in [0, 1]; "model" → [-1, 1]; "raw" → the training images'
        typical raw intensity range (float32).
    """
    if not isinstance(model, DiffusionModel):
        model = load_model(model)
    sketch = np.asarray(sketch)
    if sketch.ndim != model.ndim:
        raise InputError(f"sketch has shape {sketch.shape} ({sketch.ndim}D) but the model is {model.ndim}D")
    if not np.issubdtype(sketch.dtype, np.number) or not np.all(np.isfinite(sketch)):
        raise InputError("sketch must be a finite numeric array")
    check_sampling(t_start, steps, model.schedule.T)
    s = sketch.astype(np.float32)
    if sketch_levels is None:
        from ..config import SketchConfig
        d = SketchConfig()
        sketch_levels = (d.background, *d.intensity)
    x0 = map_sketch_intensities(s, model.intensity, sketch_levels, background, foreground) \
        if match_intensities else s * 2 - 1
    if sigma > 0:
        from scipy.ndimage import gaussian_filter
        x0 = gaussian_filter(x0, sigma=float(sigma), mode="reflect")
    tile_used = tiling.auto_tile(x0.shape, model.net.divisor, tile, overlap)
    padded, crop = tiling.pad_for_tiles(x0, tile_used)
    g = _make_generator(generator, seed)
    dev = next(model.net.parameters()).device
    xs = torch.from_numpy(np.ascontiguousarray(padded))[None, None]
    noise = torch.randn(xs.shape, generator=g)
    x_t = model.schedule.q_sample(xs, int(t_start) - 1, noise)
    x = reverse_process(model, x_t.to(dev), int(t_start), min(int(steps), int(t_start)), g, tile=tile_used,
                        overlap=overlap, batch_size=batch_size, progress=progress)
    img = x[0, 0].float().cpu().numpy()[crop]
    if output == "model":
        return img.astype(np.float32)
    if output == "raw":
        return model.to_raw(img)
    return np.clip((img + 1) / 2, 0, 1).astype(np.float32)
