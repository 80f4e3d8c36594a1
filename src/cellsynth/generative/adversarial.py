"""The one adversarial training loop; every GAN in cellsynth (CycleGAN, cGAN, StyleGAN2) runs through it.

After pytorch-CycleGAN-and-pix2pix's ``BaseModel`` (Zhu et al. 2017): the loop only
calls ``model.set_input(batch)`` and ``model.optimize_step() -> {loss name: float}``.
A model (:class:`AdversarialModel`) owns its networks, its optimisers and the D/G
alternation; the loop owns seeding, batches, the learning-rate schedule (constant, then
linear decay to 0), the EMA of the generators, checkpoints with bit-identical
``resume``, ADA's p update, and the progress bar with the loss terms.

Checkpoints (``MODEL/checkpoint/state.safetensors``) hold the raw weights, the EMA
weights, every optimiser's state, the image pools, the RNG states, ADA's state and
the step, in ONE atomically written file (its JSON part in the safetensors
metadata), so an interrupted write never leaves weights and step out of step. The
model folder (``config.json`` + ``weights.safetensors``) holds the EMA generator
weights and is rewritten at every checkpoint.
"""
from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Annotated, Literal

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field

from ..config import Fraction, Strict
from ..errors import ConfigError, InputError
from ..modelfolder import (
    CHECKPOINT_DIR,
    CONFIG_FILE,
    ModelBase,
    load_tensors,
    resolve_device,
    save_model_folder,
    save_tensors,
)
from .augment import ADA, augment
from .training import EMA, autocast, optimizer_from_tensors, optimizer_to_tensors

log = logging.getLogger(__name__)

GAN_MODES = ("lsgan", "nonsaturating")
STATE_FILE = "state.safetensors"


# --------------------------------------------------------------------------- losses
def gan_loss(pred: torch.Tensor, is_real: bool, mode: str = "lsgan") -> torch.Tensor:
    """The adversarial loss of discriminator scores ``pred`` against the label real/fake.

    ``"lsgan"`` (Mao et al. 2017): mean (pred − 1)² for real, pred² for fake.
    ``"nonsaturating"`` (Goodfellow et al. 2014): binary cross-entropy on logits, i.e.
    softplus(−pred) for real and softplus(pred) for fake; the generator minimises the
    "real" loss of its fakes (the non-saturating form).

    >>> float(gan_loss(torch.ones(2, 1, 4, 4), True, "lsgan"))
    0.0
    """
    pred = pred.float()
    if mode == "lsgan":
        return F.mse_loss(pred, torch.full_like(pred, 1.0 if is_real else 0.0))
    if mode == "nonsaturating":
        return F.softplus(-pred).mean() if is_real else F.softplus(pred).mean()
    raise ConfigError(f"gan_mode '{mode}': choose one of {', '.join(GAN_MODES)}")


def decision_centre(mode: str) -> float:
    """The discriminator output that separates "real" from "fake" (0.5 for LSGAN targets 0/1, 0 for logits)."""
    return 0.5 if mode == "lsgan" else 0.0


def weighted_l1(pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None,
                class_weights: Iterable[float] | None = None) -> torch.Tensor:
    """mean(w · c_k · |pred − target|): per-voxel weights ``weight`` (broadcast over channels, e.g. the
    distance weighting of Eschweiler et al. 2019 eq. 1) and per-channel ``class_weights`` (Rosa et al.'s
    Golgi weight). Without weights it is the plain L1 loss.

    >>> float(weighted_l1(torch.ones(1, 2, 4), torch.zeros(1, 2, 4), class_weights=[1.0, 3.0]))
    2.0
    """
    d = (pred.float() - target.float()).abs()
    if weight is not None:
        d = d * weight.float()
    if class_weights is not None:
        cw = torch.as_tensor(list(class_weights), dtype=d.dtype, device=d.device)
        if cw.numel() != d.shape[1]:
            raise ValueError(f"{cw.numel()} class weights for {d.shape[1]} channels")
        d = d * cw.reshape(1, -1, *([1] * (d.dim() - 2)))
    return d.mean()


# --------------------------------------------------------------------------- image pool
class ImagePool:
    """History of generated images (Shrivastava et al. 2017; 50 in CycleGAN): D sees older fakes too.

    Until full, every new image is stored and returned; then each new image is, with
    probability 1/2, swapped with a random stored one (the stored one is returned).
    Random choices come from the CPU ``generator`` (seeded, checkpointed).
    """

    def __init__(self, size: int, generator: torch.Generator):
        self.size, self.generator = int(size), generator
        self.images: list[torch.Tensor] = []

    def query(self, images: torch.Tensor) -> torch.Tensor:
        if self.size == 0:
            return images
        out = []
        for img in images.detach():
            img = img[None]
            if len(self.images) < self.size:
                self.images.append(img.clone())
                out.append(img)
            elif float(torch.rand(1, generator=self.generator)) < 0.5:
                i = int(torch.randint(0, self.size, (1,), generator=self.generator))
                out.append(self.images[i].clone())
                self.images[i] = img.clone()
            else:
                out.append(img)
        return torch.cat(out, 0)


# --------------------------------------------------------------------------- configuration
class AdversarialTrainConfig(Strict):
    """Settings of the loop shared by every GAN (each method's config adds its own keys)."""

    steps: Annotated[int, Field(ge=1)] = 2000
    batch_size: Annotated[int, Field(ge=1)] = 1
    optimizer: Literal["adam", "radam"] = "adam"
    lr: Annotated[float, Field(gt=0)] = 2e-4
    betas: tuple[Annotated[float, Field(ge=0, lt=1)], Annotated[float, Field(ge=0, lt=1)]] = (0.5, 0.999)
    # constant learning rate for this fraction of the steps, then linear decay to 0 (CycleGAN: half)
    decay_start: Fraction = 0.5
    ema: Annotated[float, Field(ge=0, lt=1)] = 0.999  # 0 = no averaging (the raw generator is saved)
    grad_clip: Annotated[float, Field(gt=0)] | None = 10.0  # max global gradient norm per network group
    pool_size: Annotated[int, Field(ge=0)] = 50
    # adaptive discriminator augmentation (Eschweiler et al. 2021): target r, step δ, update every `ada_interval` steps
    ada: bool = False
    ada_target: Annotated[float, Field(gt=-1, lt=1)] = 0.6
    ada_delta: Annotated[float, Field(gt=0, le=1)] = 0.05
    ada_interval: Annotated[int, Field(ge=1)] = 4
    checkpoint_every: Annotated[int, Field(ge=1)] = 250
    seed: int = 0
    threads: Annotated[int, Field(ge=1)] | None = None
    amp: bool = True  # mixed precision on CUDA (bf16 where supported, else fp16 with loss scaling)


# --------------------------------------------------------------------------- model base
class AdversarialModel(ModelBase):
    """Base of every GAN. Subclasses define, in their constructor, the networks, and:

    - ``loss_names``: the keys :meth:`optimize_step` returns (shown in the progress bar);
    - ``generator_names``: attribute names of the networks averaged by EMA and used to generate;
    - :meth:`optimizer_groups` → ``{name: parameters}``, one optimiser each (e.g. ``G``, ``D``);
    - :meth:`set_input` (a dict of tensors on the model's device) and :meth:`optimize_step`, which
      spells out the alternation with :meth:`step` (one optimiser's backward/clip/step),
      :meth:`set_requires_grad`, :meth:`pool` and :meth:`d_augment`.

    Training state (optimisers, pools, ADA, generator) is attached by :meth:`setup_training`
    and is not part of the saved config.
    """

    loss_names: tuple[str, ...] = ()
    generator_names: tuple[str, ...] = ()
    gan_mode: str = "lsgan"

    def optimizer_groups(self) -> dict[str, list[torch.nn.Parameter]]:
        raise NotImplementedError

    def set_input(self, batch: dict[str, torch.Tensor]) -> None:
        raise NotImplementedError

    def optimize_step(self) -> dict[str, float]:
        raise NotImplementedError

    # -- machinery for subclasses
    def setup_training(self, cfg: AdversarialTrainConfig, generator: torch.Generator, device: torch.device) -> None:
        self.train_cfg, self.generator, self.device = cfg, generator, device
        opt_cls = torch.optim.RAdam if cfg.optimizer == "radam" else torch.optim.Adam
        self.optimizers = {k: opt_cls(list(v), lr=cfg.lr, betas=tuple(cfg.betas))
                           for k, v in self.optimizer_groups().items()}
        self.use_amp = device.type == "cuda" and cfg.amp
        fp16 = self.use_amp and not torch.cuda.is_bf16_supported()
        self.scalers = {k: torch.amp.GradScaler("cuda", enabled=fp16) for k in self.optimizers} \
            if device.type == "cuda" else {}
        self.pools: dict[str, ImagePool] = {}
        self.ada = ADA(cfg.ada_target, cfg.ada_delta, cfg.ada_interval) if cfg.ada else None

    def autocast(self):
        return autocast(self.device, self.use_amp)

    @staticmethod
    def set_requires_grad(nets: Iterable[torch.nn.Module], flag: bool) -> None:
        for net in nets:
            for p in net.parameters():
                p.requires_grad_(flag)

    def pool(self, name: str) -> ImagePool:
        if name not in self.pools:
            self.pools[name] = ImagePool(self.train_cfg.pool_size, self.generator)
        return self.pools[name]

    def d_augment(self, x: torch.Tensor, channels: Iterable[int] = (0,)) -> torch.Tensor:
        """ADA on a discriminator input (identity without ADA); real and fake go through the same call."""
        if self.ada is None:
            return x
        return augment(x, self.ada.p, self.generator, channels=tuple(channels))

    def observe_real(self, d_real: torch.Tensor) -> None:
        """Feed D's outputs on real images to ADA's overfitting heuristic."""
        if self.ada is not None:
            self.ada.accumulate(d_real, decision_centre(self.gan_mode))

    def step(self, name: str, loss: torch.Tensor) -> None:
        """zero_grad → backward (scaled under fp16) → clip the group's gradient norm → optimiser step."""
        opt = self.optimizers[name]
        params = [p for g in opt.param_groups for p in g["params"]]
        opt.zero_grad(set_to_none=True)
        scaler = self.scalers.get(name)
        if scaler is not None and scaler.is_enabled():
            scaler.scale(loss).backward()
            scaler.unscale_(opt)
            if self.train_cfg.grad_clip:
                torch.nn.utils.clip_grad_norm_(params, self.train_cfg.grad_clip)
            scaler.step(opt)
            scaler.update()
        else:
            loss.backward()
            if self.train_cfg.grad_clip:
                torch.nn.utils.clip_grad_norm_(params, self.train_cfg.grad_clip)
            opt.step()


def check_patch_fits(net: torch.nn.Module, in_channels: int, patch: list[int], what: str) -> None:
    """Refuse (one line) a patch too small for ``net`` (e.g. a PatchGAN's strided 4-wide convolutions)."""
    mode = net.training
    try:
        with torch.no_grad():
            net.eval()(torch.zeros(1, in_channels, *patch))  # eval: BatchNorm statistics stay untouched
    except RuntimeError:
        raise ConfigError(f"patch_size {patch} is too small for the {what}; use larger patches "
                          f"or fewer d_layers") from None
    finally:
        net.train(mode)


# --------------------------------------------------------------------------- checkpoints
def read_checkpoint(out: str | Path) -> tuple[dict, dict[str, torch.Tensor]]:
    """The checkpoint of a model folder: (state as JSON, tensors); a missing or corrupt one is one line."""
    path = Path(out) / CHECKPOINT_DIR / STATE_FILE
    if not path.is_file():
        raise InputError(f"model folder '{out}' has no checkpoint to resume from")
    tensors = load_tensors(path, f"checkpoint of '{out}'")
    from safetensors import safe_open
    with safe_open(str(path), "pt") as f:
        meta = f.metadata() or {}
    try:
        return json.loads(meta["state"]), tensors
    except (KeyError, json.JSONDecodeError):
        raise InputError(f"checkpoint of '{out}': {STATE_FILE} lacks its state record") from None


def check_out(out: str | Path, resume: bool, format: str) -> dict | None:
    """Before training: refuse a folder that already holds a model (unless ``resume``); with ``resume``
    return the checkpoint's state (its ``train_config`` and ``model_args``), checking its format."""
    out = Path(out)
    if resume:
        state, _ = read_checkpoint(out)
        if state.get("format") != format:
            raise InputError(f"model folder '{out}' holds a {state.get('format')!r} checkpoint, not {format!r}")
        return state
    if (out / CONFIG_FILE).exists() or (out / CHECKPOINT_DIR).exists():
        raise InputError(f"model folder '{out}' already holds a model; pass --resume to continue training "
                         f"it or choose another --out")
    if out.exists() and not out.is_dir():
        raise InputError(f"--out '{out}' exists and is not a folder")
    return None


def _lr_factor(step: int, total: int, decay_start: float) -> float:
    """1 until ``decay_start``·total steps, then linear to 0 at ``total`` (CycleGAN's schedule)."""
    s0 = int(decay_start * total)
    if step <= s0:
        return 1.0
    return max(0.0, 1.0 - (step - s0) / float(total - s0 + 1))


def train_adversarial(model: AdversarialModel, sample_batch: Callable[[np.random.Generator], dict[str, np.ndarray]],
                      out: str | Path, cfg: AdversarialTrainConfig, meta: dict | None = None,
                      resume: bool = False, device: str | torch.device = "auto", progress: bool = True,
                      desc: str = "train gan") -> Path:
    """Train ``model`` for ``cfg.steps`` steps; write the model folder ``out`` (+ ``checkpoint/``).

    Parameters
    ----------
    model : an :class:`AdversarialModel` (freshly built, seeded; weights are replaced from the
        checkpoint when resuming).
    sample_batch : ``rng -> {name: (B, C, *spatial) float32 array}``, drawing only from ``rng``
        (so the batch sequence is seeded and resumable).
    out : model folder; refused if it already holds a model unless ``resume``.
    cfg : the loop settings (subclasses of :class:`AdversarialTrainConfig` are saved whole).
    meta : extra entries for ``config.json`` (normalisation, encoding, patch size, training data).
    resume : continue from ``out/checkpoint`` up to ``cfg.steps`` total steps, bit-identically.
    device : "auto" (CUDA with mixed precision when available), "cpu" or "cuda".
    """
    out = Path(out)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    dev = resolve_device(device)
    model.to(dev).train()
    gen = torch.Generator().manual_seed(cfg.seed + 1)
    rng = np.random.default_rng(cfg.seed)
    model.setup_training(cfg, gen, dev)
    emas = {n: EMA(getattr(model, n), cfg.ema) for n in model.generator_names} if cfg.ema > 0 else {}
    start, elapsed = 0, 0.0
    if resume:
        state, tensors = read_checkpoint(out)
        model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")}, strict=True)
        for n, e in emas.items():
            e.shadow = {k[len(f"ema.{n}."):]: v.to(dev) for k, v in tensors.items() if k.startswith(f"ema.{n}.")}
        for n, opt in model.optimizers.items():
            optimizer_from_tensors(opt, tensors, state["param_groups"][n], prefix=f"opt.{n}.")
        for n, sc in model.scalers.items():
            if n in state.get("scalers", {}):
                sc.load_state_dict(state["scalers"][n])
        for n, size in state["pools"].items():
            pool = model.pool(n)
            pool.images = [tensors[f"pool.{n}.{i}"].to(dev) for i in range(size)]
        if model.ada is not None and state.get("ada"):
            model.ada.load_state_dict(state["ada"])
        gen.set_state(tensors["rng.torch"])
        rng.bit_generator.state = state["numpy_rng"]
        start, elapsed = int(state["step"]), float(state.get("elapsed_s", 0.0))

    def generator_state() -> dict[str, torch.Tensor]:
        sd = dict(model.state_dict())
        for n, e in emas.items():
            sd.update({f"{n}.{k}": v for k, v in e.shadow.items()})
        return sd

    def save(step: int) -> None:
        tensors = {f"model.{k}": v for k, v in model.state_dict().items()}
        groups = {}
        for n, opt in model.optimizers.items():
            t, groups[n] = optimizer_to_tensors(opt, prefix=f"opt.{n}.")
            tensors.update(t)
        for n, e in emas.items():
            tensors.update({f"ema.{n}.{k}": v for k, v in e.shadow.items()})
        for n, pool in model.pools.items():
            tensors.update({f"pool.{n}.{i}": img for i, img in enumerate(pool.images)})
        tensors["rng.torch"] = gen.get_state()
        state = {"format": model.format, "step": step, "elapsed_s": elapsed, "param_groups": groups,
                 "pools": {n: len(p.images) for n, p in model.pools.items()},
                 "scalers": {n: sc.state_dict() for n, sc in model.scalers.items() if sc.is_enabled()},
                 "ada": model.ada.state_dict() if model.ada is not None else None,
                 "numpy_rng": rng.bit_generator.state, "model_args": model.config,
                 "train_config": cfg.model_dump(mode="json")}
        save_tensors(out / CHECKPOINT_DIR / STATE_FILE, tensors,
                     {"state": json.dumps(state, default=int)})
        record = {"steps": step, "time_s": round(elapsed, 1), "device": dev.type,
                  "n_parameters": {n: sum(p.numel() for p in getattr(model, n).parameters())
                                   for n, _ in model.named_children()}}
        if model.ada is not None:
            record["ada_p"] = model.ada.p
        config = {"class": type(model).__name__, "args": model.config, **(meta or {}), "training": record,
                  "train_config": cfg.model_dump(mode="json")}
        save_model_folder(out, model.format, model.format_version, config, {"": generator_state()})

    from tqdm.auto import tqdm
    bar = tqdm(total=cfg.steps, initial=start, desc=desc, disable=not progress, dynamic_ncols=True)
    t0 = time.perf_counter()
    for step in range(start + 1, cfg.steps + 1):
        f = _lr_factor(step, cfg.steps, cfg.decay_start)
        for opt in model.optimizers.values():
            for g in opt.param_groups:
                g["lr"] = cfg.lr * f
        batch = {k: torch.from_numpy(np.ascontiguousarray(v)).to(dev) for k, v in sample_batch(rng).items()}
        model.set_input(batch)
        losses = model.optimize_step()
        bad = [k for k, v in losses.items() if not math.isfinite(v)]
        if bad:
            raise FloatingPointError(f"{desc}: loss {', '.join(bad)} is not finite at step {step}; "
                                     f"lower lr or enable grad_clip")
        if model.ada is not None:
            model.ada.update(step)
        for n, e in emas.items():
            e.update(getattr(model, n), step)
        now = time.perf_counter()
        elapsed += now - t0
        t0 = now
        bar.update(1)
        post = {k: f"{v:.3f}" for k, v in losses.items()}
        if model.ada is not None:
            post["p"] = f"{model.ada.p:.2f}"
        bar.set_postfix(post)
        if step % cfg.checkpoint_every == 0 or step == cfg.steps:
            save(step)
    bar.close()
    if start >= cfg.steps and not (out / CONFIG_FILE).is_file():
        save(start)
    log.info("%s: %d steps in %.1f s", desc, cfg.steps, elapsed)
    return out
