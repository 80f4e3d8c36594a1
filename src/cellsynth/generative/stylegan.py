"""StyleGAN2 that draws an image and its instance mask together (Lesmes-Leon et al. 2025).

Training pairs: random crops of real images (percentile-normalised to [-1, 1]) and their
instance masks, each crop's mask encoded as Lesmes-Leon et al. 2025's grayscale overlap mask
(:func:`cellsynth.simulate.encode.grayscale_overlap`: few gray labels, shuffled per crop)
and scaled to [-1, 1]. The generator (:class:`cellsynth.nn.stylegan2.Generator`) outputs
image and mask channels; the discriminator sees them concatenated. Losses (Karras et al.
2020): non-saturating logistic loss, lazy R1 on reals every ``r1_interval`` steps
(γ/2·E‖∇D(x)‖², scaled by the interval), optional lazy path-length regularisation; w_avg
tracked for truncation ψ. Augmentations against a small training set, any combination
(Lesmes-Leon et al. 2025 used all three): DiffAugment (Zhao et al. 2020), ADA (Karras et al. 2020, the
loop's; intensity augmentations on the image channel only) and APA (Jiang et al. 2021: with
probability p a generated sample is shown to D as real; p adapted like ADA's, in [0, 1)).

Runs on the shared adversarial loop (:func:`cellsynth.generative.adversarial.train_adversarial`):
checkpoints, bit-identical resume, EMA generator, progress. At sampling the mask channel is
decoded back to instances with the real crops' object-area range
(:func:`cellsynth.simulate.encode.decode_grayscale`).
"""
from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Annotated, Literal

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field

from ..errors import ConfigError, InputError
from ..io import check_writable, list_images, read_image, read_labels
from ..modelfolder import describe_training_data
from ..nn.stylegan2 import Discriminator, Generator
from ..scene import Scene
from ..simulate import encode
from .adversarial import AdversarialModel, AdversarialTrainConfig, check_out, gan_loss, train_adversarial
from .augment import ADA
from .diffaugment import POLICIES, diff_augment
from .training import build_seeded

FORMAT = "cellsynth-stylegan"


class StyleGANTrainConfig(AdversarialTrainConfig):
    """``cellsynth train stylegan --config F`` (YAML/JSON); loop keys as :class:`AdversarialTrainConfig`.

    Defaults are a CPU configuration at 64² that trains for real in well under an hour;
    raise ``channel_base``/``channel_max``/``resolution`` on a GPU (Lesmes-Leon et al. 2025: 256²–512², batch 16).
    """

    steps: Annotated[int, Field(ge=1)] = 3000
    batch_size: Annotated[int, Field(ge=1)] = 8
    lr: Annotated[float, Field(gt=0)] = 2e-3
    betas: tuple[Annotated[float, Field(ge=0, lt=1)], Annotated[float, Field(ge=0, lt=1)]] = (0.0, 0.99)
    decay_start: Annotated[float, Field(ge=0, le=1)] = 1.0   # StyleGAN2: constant learning rate
    ema: Annotated[float, Field(ge=0, lt=1)] = 0.995
    grad_clip: Annotated[float, Field(gt=0)] | None = None
    pool_size: Annotated[int, Field(ge=0)] = 0
    checkpoint_every: Annotated[int, Field(ge=1)] = 500
    # networks
    resolution: Annotated[int, Field(ge=8, le=1024)] = 64
    z_dim: Annotated[int, Field(ge=1)] = 64
    w_dim: Annotated[int, Field(ge=1)] = 64
    mapping_layers: Annotated[int, Field(ge=1)] = 2      # Lesmes-Leon et al. 2025: 2 (LIVECell), 4 (TissueNet)
    channel_base: Annotated[int, Field(ge=1)] = 1024
    channel_max: Annotated[int, Field(ge=1)] = 32
    mask_fraction: Annotated[float, Field(gt=0, le=1)] = 0.5
    mbstd_group: Annotated[int, Field(ge=1)] = 4
    with_mask: bool = True                                 # False: plain StyleGAN2 (image only)
    # losses
    r1_gamma: Annotated[float, Field(ge=0)] = 0.2
    r1_interval: Annotated[int, Field(ge=1)] = 16
    pl_weight: Annotated[float, Field(ge=0)] = 0.0
    pl_interval: Annotated[int, Field(ge=1)] = 4
    pl_decay: Annotated[float, Field(gt=0, le=1)] = 0.01
    w_avg_beta: Annotated[float, Field(ge=0, lt=1)] = 0.995
    # augmentation: DiffAugment policy, the loop's ADA (ada/ada_target/...), APA (same target/δ/interval)
    diffaugment: list[Literal["color", "translation", "cutout"]] = []
    apa: bool = False
    # data
    max_labels: Annotated[int, Field(ge=1, le=255)] = 4   # label cap (Lesmes-Leon et al. 2025: 4 LIVECell, 3 TissueNet)
    drop_covered: Annotated[float, Field(ge=0, le=1)] = 0.7
    percentiles: tuple[float, float] = (1.0, 99.8)
    area_quantiles: tuple[Annotated[float, Field(ge=0, le=100)], Annotated[float, Field(ge=0, le=100)]] = (1.0, 99.0)
    mirror: bool = True                                    # random flips / 90° rotations of the crops


# --------------------------------------------------------------------------- regularisers
def r1_penalty(d_real: torch.Tensor, reals: torch.Tensor) -> torch.Tensor:
    """R1 (Mescheder et al. 2018): E_x ‖∇_x D(x)‖² over the batch (``reals`` must require grad).

    >>> x = torch.ones(2, 1, 2, 2, requires_grad=True)
    >>> float(r1_penalty((3 * x).sum(dim=(1, 2, 3)), x))   # ∇ = 3 everywhere, 4 pixels
    36.0
    """
    (grad,) = torch.autograd.grad(d_real.sum(), reals, create_graph=True)
    return grad.pow(2).flatten(1).sum(1).mean()


def path_lengths(images: torch.Tensor, w: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """‖J_wᵀ y‖ per sample, y ~ N(0, I)/sqrt(pixels) (Karras et al. 2020 path-length regulariser)."""
    y = torch.randn(images.shape, generator=generator).to(images) / math.sqrt(math.prod(images.shape[2:]))
    (grad,) = torch.autograd.grad((images * y).sum(), w, create_graph=True)
    return grad.pow(2).sum(1).sqrt()


# --------------------------------------------------------------------------- model
class StyleGAN(AdversarialModel):
    """Generator ``G`` (image + grayscale mask) and discriminator ``D`` on both, with the losses above."""

    format = FORMAT
    generator_names = ("G",)
    loss_names = ("G", "D", "R1", "PL")
    gan_mode = "nonsaturating"

    def __init__(self, resolution: int = 64, image_channels: int = 1, mask_channels: int = 1, z_dim: int = 64,
                 w_dim: int = 64, mapping_layers: int = 2, channel_base: int = 1024, channel_max: int = 32,
                 mask_fraction: float = 0.5, mbstd_group: int = 4, n_classes: int = 0, r1_gamma: float = 0.2,
                 r1_interval: int = 16, pl_weight: float = 0.0, pl_interval: int = 4, pl_decay: float = 0.01,
                 w_avg_beta: float = 0.995, diffaugment: Sequence[str] = (), apa: bool = False,
                 apa_target: float = 0.6, apa_delta: float = 0.05, apa_interval: int = 4):
        super().__init__()
        self.G = Generator(resolution, image_channels, mask_channels, z_dim, w_dim, mapping_layers,
                           channel_base, channel_max, mask_fraction, n_classes)
        self.D = Discriminator(resolution, image_channels + mask_channels, channel_base, channel_max,
                               mbstd_group, n_classes)
        self.image_channels, self.z_dim, self.n_classes = image_channels, z_dim, n_classes
        self.r1_gamma, self.r1_interval = r1_gamma, r1_interval
        self.pl_weight, self.pl_interval, self.pl_decay, self.w_avg_beta = pl_weight, pl_interval, pl_decay, w_avg_beta
        bad = [p for p in diffaugment if p not in POLICIES]
        if bad:
            raise ValueError(f"DiffAugment policy '{bad[0]}': choose from {', '.join(POLICIES)}")
        self.policy = list(diffaugment)
        self.apa_ctl = ADA(apa_target, apa_delta, apa_interval) if apa else None
        # training state that must survive a resume lives in buffers (checkpointed with the weights)
        self.register_buffer("n_steps", torch.zeros((), dtype=torch.long))
        self.register_buffer("pl_mean", torch.zeros(()))
        self.register_buffer("apa_state", torch.zeros(3, dtype=torch.float64))  # p, sign sum, count

    def optimizer_groups(self):
        return {"G": list(self.G.parameters()), "D": list(self.D.parameters())}

    def set_input(self, batch):
        self.reals = batch["image"] if "mask" not in batch else torch.cat([batch["image"], batch["mask"]], 1)
        self.classes = batch.get("class")

    def latents(self, n: int) -> torch.Tensor:
        return torch.randn((n, self.z_dim), generator=self.generator).to(self.reals.device)

    def d_input(self, x: torch.Tensor) -> torch.Tensor:
        """DiffAugment, then the loop's ADA (image channels only), on any D input."""
        if self.policy:
            x = diff_augment(x, self.policy, self.generator, self.image_channels)
        return self.d_augment(x, channels=range(self.image_channels))

    def optimize_step(self) -> dict[str, float]:
        step = int(self.n_steps) + 1
        self.n_steps.fill_(step)
        b = len(self.reals)
        c = self.classes
        if self.apa_ctl is not None:
            self.apa_ctl.load_state_dict({"p": float(self.apa_state[0]), "sign_sum": float(self.apa_state[1]),
                                          "count": int(self.apa_state[2])})
        # --- generator: non-saturating loss (+ lazy path length)
        self.set_requires_grad([self.D], False)
        with self.autocast():
            w = self.G.map(self.latents(b), c)
            fake = self.G.synthesis(w, self.generator)
            g_loss = gan_loss(self.D(self.d_input(fake), c), True, self.gan_mode)
        pl = torch.zeros((), device=fake.device)
        if self.pl_weight > 0 and step % self.pl_interval == 0:
            wp = self.G.map(self.latents(max(1, b // 2)), c[: max(1, b // 2)] if c is not None else None)
            wp = wp.detach().requires_grad_(True)
            lengths = path_lengths(self.G.synthesis(wp, self.generator), wp, self.generator)
            with torch.no_grad():
                self.pl_mean.lerp_(lengths.mean().float(), self.pl_decay)
            pl = (lengths - self.pl_mean).pow(2).mean()
            g_loss = g_loss + pl * self.pl_weight * self.pl_interval
        self.step("G", g_loss)
        with torch.no_grad():
            self.G.w_avg.lerp_(w.detach().mean(0).float(), 1 - self.w_avg_beta)
        # --- discriminator: logistic loss (+ lazy R1 on the reals)
        self.set_requires_grad([self.D], True)
        reals = self.reals
        if self.apa_ctl is not None:   # APA: some "reals" are generated samples
            swap = (torch.rand(b, generator=self.generator) < self.apa_ctl.p).to(reals.device)
            reals = torch.where(swap.reshape(-1, *([1] * (reals.dim() - 1))), fake.detach(), reals)
        do_r1 = self.r1_gamma > 0 and step % self.r1_interval == 0
        reals = reals.detach().requires_grad_(do_r1)
        with self.autocast():
            d_real = self.D(self.d_input(reals), c)
            d_fake = self.D(self.d_input(fake.detach()), c)
            d_loss = gan_loss(d_real, True, self.gan_mode) + gan_loss(d_fake, False, self.gan_mode)
        r1 = torch.zeros((), device=reals.device)
        if do_r1:
            r1 = r1_penalty(d_real.float(), reals)
            d_loss = d_loss + r1 * (self.r1_gamma / 2) * self.r1_interval
        self.observe_real(d_real)
        if self.apa_ctl is not None:
            self.apa_ctl.accumulate(d_real, 0.0)
            self.apa_ctl.update(step)
            st = self.apa_ctl.state_dict()
            self.apa_state.copy_(torch.tensor([st["p"], st["sign_sum"], st["count"]], dtype=torch.float64))
        self.step("D", d_loss)
        return {"G": float(g_loss.detach()), "D": float(d_loss.detach()), "R1": float(r1.detach()),
                "PL": float(pl.detach())}

    @property
    def apa_p(self) -> float:
        return float(self.apa_state[0])

    @torch.no_grad()
    def generate(self, n: int, seed: int = 0, truncation: float = 1.0, classes: Sequence[int] | None = None,
                 batch_size: int = 16) -> np.ndarray:
        """``n`` samples (n, C, *spatial) float32 in the model's [-1, 1] space: image channel(s), then mask.

        Latents and noise come from ``seed`` alone; ``classes`` (one index per sample) for a
        class-conditional model (default: classes in turn).
        """
        dev = next(self.parameters()).device
        g = torch.Generator().manual_seed(int(seed))
        out = []
        for start in range(0, n, batch_size):
            k = min(batch_size, n - start)
            z = torch.randn((k, self.z_dim), generator=g).to(dev)
            c = None
            if self.n_classes:
                idx = [(classes[i] if classes is not None else i) % self.n_classes for i in range(start, start + k)]
                c = F.one_hot(torch.tensor(idx), self.n_classes).float().to(dev)
            out.append(self.G(z, c, truncation=truncation, noise=g).float().cpu().numpy())
        return np.concatenate(out, 0)


# --------------------------------------------------------------------------- data
def read_classes(path: str | Path, names: Sequence[str]) -> tuple[list[str], list[int]]:
    """Per-image class from a JSON object ``{image name: class}`` or CSV lines ``image name,class``.

    Image names may be given with or without the file suffix. Returns (sorted class names,
    class index per image in ``names``); an image without a class is an :class:`InputError`.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"classes file '{path}' does not exist")
    text = path.read_text()
    try:
        table = json.loads(text) if path.suffix.lower() == ".json" else \
            {row[0].strip(): row[1].strip() for row in csv.reader(text.splitlines()) if len(row) >= 2}
    except json.JSONDecodeError as e:
        raise InputError(f"classes file '{path}' is not valid JSON ({e.msg})") from None
    if not isinstance(table, dict) or not table:
        raise InputError(f"classes file '{path}': needs image name -> class entries")
    table = {Path(str(k)).stem: str(v) for k, v in table.items()}
    missing = [n for n in names if n not in table]
    if missing:
        raise InputError(f"classes file '{path}' gives no class for image '{missing[0]}'")
    classes = sorted({table[n] for n in names})
    return classes, [classes.index(table[n]) for n in names]


class PairData:
    """Real image/mask pairs, normalised once; draws seeded batches of random crops."""

    def __init__(self, images: str | Path, masks: str | Path, cfg: StyleGANTrainConfig,
                 classes_file: str | Path | None = None):
        from ..intensity import normalize_percentile
        self.image_files = list_images(images, what="training images")
        mask_dir = Path(masks)
        self.mask_files = []
        self.images, self.labels, self.layers = [], [], []
        layers_dir = mask_dir.parent / "layers"  # a cellsynth dataset of overlapping objects keeps them whole
        for f in self.image_files:
            m = next((mask_dir / (f.stem + s) for s in (".tif", ".tiff") if (mask_dir / (f.stem + s)).is_file()), None)
            if m is None:
                raise InputError(f"training image '{f.name}' has no mask of the same name in '{mask_dir}'")
            img, lab = read_image(f), read_labels(m)
            if img.ndim != 2:
                raise InputError(f"training image '{f.name}' is {img.ndim}D; StyleGAN trains on 2D images")
            if lab.shape != img.shape:
                raise InputError(f"mask '{m.name}' has shape {lab.shape} but its image has {img.shape}")
            self.images.append(normalize_percentile(img, *cfg.percentiles, clip=True, out=(-1.0, 1.0), name=f.name))
            self.labels.append(lab)
            self.mask_files.append(m)
            lay = layers_dir / m.name
            if lay.is_file():
                layers = read_labels(lay)
                layers = layers[None] if layers.ndim == 2 else layers   # one layer: the reader squeezed it
                if layers.shape[1:] != lab.shape:
                    raise InputError(f"layers '{lay}' have shape {layers.shape}; its mask has {lab.shape}")
                self.layers.append(layers)
            else:
                self.layers.append(None)
        self.cfg = cfg
        self.class_names: list[str] = []
        self.class_index: list[int] | None = None
        if classes_file is not None:
            self.class_names, self.class_index = read_classes(classes_file, [f.stem for f in self.image_files])

    def crop(self, i: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """A random ``resolution``² crop of pair i (padded with background where the image is smaller):
        (image, objects) with objects the instance labels, or the (L, r, r) layers where given."""
        r = self.cfg.resolution
        img = self.images[i]
        lab = self.labels[i][None] if self.layers[i] is None else self.layers[i]
        pad = [(0, max(0, r - s)) for s in img.shape]
        if any(p[1] for p in pad):
            img, lab = np.pad(img, pad, constant_values=-1.0), np.pad(lab, [(0, 0)] + pad)
        y, x = (int(rng.integers(0, s - r + 1)) for s in img.shape)
        img, lab = img[y:y + r, x:x + r], lab[:, y:y + r, x:x + r]
        if self.cfg.mirror:
            k, flip = int(rng.integers(4)), bool(rng.integers(2))
            img, lab = np.rot90(img, k), np.rot90(lab, k, axes=(1, 2))
            if flip:
                img, lab = img[:, ::-1], lab[:, :, ::-1]
        lab = np.ascontiguousarray(lab)
        return np.ascontiguousarray(img), (lab[0] if self.layers[i] is None else lab)

    def encode(self, objects: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """A crop's grayscale overlap mask scaled to [-1, 1] (levels shuffled by ``rng``); ``objects``
        are instance labels (Y, X) or label layers (L, Y, X)."""
        if not objects.any():
            return -np.ones(objects.shape[-2:], np.float32)
        visible = objects if objects.ndim == 2 else objects.max(0)
        scene = Scene(visible, np.ones(visible.shape, bool), (1.0, 1.0),
                      layers=objects if objects.ndim == 3 else None)
        gray, _ = encode.grayscale_overlap(scene, self.cfg.max_labels, self.cfg.drop_covered, rng=rng)
        return gray.astype(np.float32) / 127.5 - 1

    def sampler(self):
        def sample_batch(rng: np.random.Generator) -> dict[str, np.ndarray]:
            idx = rng.integers(0, len(self.images), size=self.cfg.batch_size)
            imgs, masks = [], []
            for i in idx:
                img, lab = self.crop(int(i), rng)
                imgs.append(img[None])
                masks.append(self.encode(lab, rng)[None])
            batch = {"image": np.stack(imgs)}
            if self.cfg.with_mask:
                batch["mask"] = np.stack(masks)
            if self.class_index is not None:
                batch["class"] = np.eye(len(self.class_names), dtype=np.float32)[[self.class_index[i] for i in idx]]
            return batch
        return sample_batch

    def area_range(self, n_crops: int = 256, seed: int = 0) -> tuple[float, float]:
        """The object-area range (``area_quantiles``) of real crops: what decoded objects may measure."""
        rng = np.random.default_rng(seed)
        crops = [self.crop(int(rng.integers(len(self.images))), rng)[1] for _ in range(n_crops)]
        crops = [encode.decode_grayscale(self.encode(c, rng) * 127.5 + 127.5, self.cfg.max_labels) for c in crops]
        try:
            return encode.area_range(crops, self.cfg.area_quantiles)
        except InputError:
            raise InputError("training masks hold no objects in their crops") from None


# --------------------------------------------------------------------------- training / loading
def model_args(cfg: StyleGANTrainConfig, n_classes: int = 0) -> dict:
    return dict(resolution=cfg.resolution, image_channels=1, mask_channels=1 if cfg.with_mask else 0,
                z_dim=cfg.z_dim, w_dim=cfg.w_dim, mapping_layers=cfg.mapping_layers, channel_base=cfg.channel_base,
                channel_max=cfg.channel_max, mask_fraction=cfg.mask_fraction, mbstd_group=cfg.mbstd_group,
                n_classes=n_classes, r1_gamma=cfg.r1_gamma, r1_interval=cfg.r1_interval, pl_weight=cfg.pl_weight,
                pl_interval=cfg.pl_interval, pl_decay=cfg.pl_decay, w_avg_beta=cfg.w_avg_beta,
                diffaugment=list(cfg.diffaugment), apa=cfg.apa, apa_target=cfg.ada_target,
                apa_delta=cfg.ada_delta, apa_interval=cfg.ada_interval)


def train_stylegan(images: str | Path, masks: str | Path, out: str | Path, cfg: StyleGANTrainConfig | None = None,
                   classes: str | Path | None = None, steps: int | None = None, device: str = "auto",
                   resume: bool = False, progress: bool = True) -> Path:
    """Train the image + mask StyleGAN2 on real ``images`` and their instance ``masks`` (2D TIFFs).

    Parameters
    ----------
    images, masks : folders of TIFFs paired by file name
    out : model folder (refused if it already holds a model, unless ``resume``)
    cfg : :class:`StyleGANTrainConfig`; with ``resume`` the saved one is used (``steps`` sets the new total)
    classes : optional JSON/CSV file image name -> class, for class-conditional training
    """
    cfg = cfg or StyleGANTrainConfig()
    saved = check_out(out, resume, FORMAT)
    check_writable(out, "model folder")
    if saved is not None:
        cfg = StyleGANTrainConfig(**{**saved["train_config"], "threads": cfg.threads})
    if steps is not None:
        if steps < 1:
            raise ConfigError(f"--steps {steps}: must be >= 1")
        cfg = cfg.model_copy(update={"steps": int(steps)})
    if cfg.resolution & (cfg.resolution - 1):
        raise ConfigError(f"config key 'resolution' = {cfg.resolution}: must be a power of two")
    data = PairData(images, masks, cfg, classes)
    lo, hi = data.area_range(seed=cfg.seed)
    model = build_seeded(StyleGAN, cfg.seed, "StyleGAN", **model_args(cfg, len(data.class_names)))
    meta = {"resolution": cfg.resolution, "percentiles": list(cfg.percentiles), "max_labels": cfg.max_labels,
            "drop_covered": cfg.drop_covered, "area_range": [lo, hi], "class_names": data.class_names,
            "training_data": {"images": describe_training_data(data.image_files, images),
                              "masks": describe_training_data(data.mask_files, masks)}}
    return train_adversarial(model, data.sampler(), out, cfg, meta, resume=resume, device=device,
                             progress=progress, desc="train stylegan")


def load_stylegan(folder: str | Path, device: str = "cpu") -> StyleGAN:
    """The trained model (EMA generator) of a ``cellsynth train stylegan`` folder; bad folders are one line."""
    return StyleGAN.from_folder(folder, device=device, what=f"stylegan model '{folder}'")


def sample_pairs(model: StyleGAN, n: int, seed: int = 0, truncation: float = 1.0,
                 classes: Sequence[int] | None = None) -> Iterable[tuple[np.ndarray, np.ndarray]]:
    """``n`` generated (image float32 in [0, 1], instance labels) pairs; masks decoded with the
    training crops' area range (Lesmes-Leon et al. 2025's filter of implausible objects)."""
    if not np.isfinite(truncation):
        raise ConfigError(f"--truncation {truncation}: must be a finite number (1 = none, 0.5–0.8 typical)")
    meta = getattr(model, "meta", {}) or {}
    if not model.G.mask_channels:
        raise InputError("this stylegan model draws images only (trained with with_mask: false)")
    max_labels = int(meta.get("max_labels", 4))
    area = meta.get("area_range")
    x = model.generate(n, seed, truncation, classes)
    for s in x:
        image = np.clip((s[0] + 1) / 2, 0, 1).astype(np.float32)
        gray = np.clip((s[-1] + 1) * 127.5, 0, 255)
        yield image, encode.decode_grayscale(gray, max_labels, area)
