"""Conditional GAN mask→image with positional conditioning (Eschweiler et al. 2021), 3D first, 2D too.

Generator: the project's U-Net (:class:`cellsynth.nn.unet.UNet`, pixel-shuffle upsampling,
BatchNorm so tiles do not seam) + tanh; discriminator: PatchGAN; RAdam. Generator loss:
adversarial + λ_idt·‖i_real − G(i_real)‖₁ (identity on real images). Both networks get the
positional map f_pos (tanh(dist/α) inside the specimen, tanh(−dist/β) outside; α = β = 100 in
training) as an extra channel; at generation α is the quality-level knob of the paper
(Fig. 14–16). Training on random patches (128×128×64 voxels by default in 3D, i.e. ZYX
64×128×128), unpaired: mask and image patches are drawn independently. ADA (p adapted to
r = E[sign(D(real))], target 0.6) augments real and fake discriminator inputs alike.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Literal

import torch
from pydantic import Field

from ..errors import ConfigError
from ..modelfolder import describe_training_data
from ..nn.patchgan import PatchDiscriminator
from ..nn.unet import UNet
from .adversarial import (
    AdversarialModel,
    AdversarialTrainConfig,
    check_out,
    check_patch_fits,
    gan_loss,
    train_adversarial,
    weighted_l1,
)
from .domains import prepare_domains
from .training import build_seeded

FORMAT = "cellsynth-cgan"


class CGANTrainConfig(AdversarialTrainConfig):
    """``cellsynth train cgan --config F`` (YAML/JSON); loop keys as :class:`AdversarialTrainConfig`."""

    optimizer: Literal["adam", "radam"] = "radam"
    ada: bool = True
    channels: list[Annotated[int, Field(ge=1)]] = [16, 32, 64]
    blocks_per_level: Annotated[int, Field(ge=1)] = 1
    strides: list[list[Annotated[int, Field(ge=1)]]] | None = None
    norm: Literal["batch", "none"] = "batch"
    # fixed [1, 2, 1] / 4 blur after each pixel shuffle of the generator: no checkerboard (cellsynth.nn.unet.Up)
    upsample_blur: bool = True
    d_channels: Annotated[int, Field(ge=1)] = 32
    d_layers: Annotated[int, Field(ge=1)] = 3
    d_norm: Literal["batch", "instance", "group", "none"] = "instance"
    gan_mode: Literal["lsgan", "nonsaturating"] = "lsgan"
    lambda_identity: Annotated[float, Field(ge=0)] = 5.0
    alpha: Annotated[float, Field(gt=0)] = 100.0
    beta: Annotated[float, Field(gt=0)] = 100.0
    positional: bool = True
    mask_encoding: Literal["boundaries", "foreground"] = "foreground"
    boundary_thickness: Annotated[int, Field(ge=1)] = 1
    specimen_radius: Annotated[float, Field(gt=0)] = 8.0  # closing radius (px) that turns objects into a specimen
    patch_size: list[Annotated[int, Field(ge=4)]] | None = None  # None: 128² (2D), 64×128×128 (3D, ZYX)
    percentiles: tuple[float, float] = (1.0, 99.8)
    n_scenes: Annotated[int, Field(ge=1)] = 8
    scene_overrides: list[str] = []


class ConditionalGAN(AdversarialModel):
    """U-Net generator and PatchGAN discriminator, each with an optional positional-map channel."""

    format = FORMAT
    generator_names = ("G",)
    loss_names = ("G_adv", "idt", "D")

    def __init__(self, spatial_dims: int = 3, channels: Sequence[int] = (16, 32, 64), blocks_per_level: int = 1,
                 strides: Sequence[Sequence[int]] | None = None, norm: str = "batch", positional: bool = True,
                 d_channels: int = 32, d_layers: int = 3, d_norm: str = "instance", gan_mode: str = "lsgan",
                 lambda_identity: float = 5.0, upsample_blur: bool = False):
        super().__init__()
        extra = 1 if positional else 0
        self.positional = positional
        self.G = UNet(spatial_dims, 1 + extra, 1, channels, blocks_per_level, strides=strides, norm=norm,
                      upsample_blur=upsample_blur)
        self.D = PatchDiscriminator(spatial_dims, 1 + extra, d_channels, d_layers, d_norm)
        self.gan_mode, self.lambda_identity = gan_mode, lambda_identity

    @property
    def divisor(self) -> list[int]:
        return self.G.divisor

    @property
    def spatial_dims(self) -> int:
        return self.G.spatial_dims

    def generate(self, x: torch.Tensor) -> torch.Tensor:
        """Image in [-1, 1] from (mask encoding [, positional map]) channels."""
        return torch.tanh(self.G(x))

    def _with_pos(self, x: torch.Tensor, pos: torch.Tensor | None) -> torch.Tensor:
        return torch.cat([x, pos], 1) if self.positional else x

    def optimizer_groups(self):
        return {"G": list(self.G.parameters()), "D": list(self.D.parameters())}

    def set_input(self, batch):
        self.mask, self.image = batch["mask"], batch["image"]
        self.mask_pos, self.image_pos = batch.get("mask_pos"), batch.get("image_pos")

    def optimize_step(self) -> dict[str, float]:
        self.set_requires_grad([self.D], False)
        with self.autocast():
            fake = self.generate(self._with_pos(self.mask, self.mask_pos))
            adv = gan_loss(self.D(self.d_augment(self._with_pos(fake, self.mask_pos))), True, self.gan_mode)
            idt = self.lambda_identity * weighted_l1(self.generate(self._with_pos(self.image, self.image_pos)),
                                                     self.image)
        self.step("G", adv + idt)
        self.set_requires_grad([self.D], True)
        with self.autocast():
            d_real = self.D(self.d_augment(self._with_pos(self.image, self.image_pos)))
            self.observe_real(d_real)
            fake_in = self.pool("fake").query(self._with_pos(fake.detach(), self.mask_pos))
            d = 0.5 * (gan_loss(d_real, True, self.gan_mode)
                       + gan_loss(self.D(self.d_augment(fake_in)), False, self.gan_mode))
        self.step("D", d)
        return {"G_adv": float(adv.detach()), "idt": float(idt.detach()), "D": float(d.detach())}


def default_patch(nd: int) -> list[int]:
    return [128, 128] if nd == 2 else [64, 128, 128]


def train_cgan(images: str | Path, out: str | Path, cfg: CGANTrainConfig | None = None,
               masks: str | Path | None = None, preset: str | None = None, steps: int | None = None,
               device: str = "auto", resume: bool = False, progress: bool = True) -> Path:
    """Train the conditional GAN on real ``images`` and instance ``masks`` (or scenes of ``preset``).

    Parameters as :func:`cellsynth.generative.cyclegan.train_cyclegan`; settings in :class:`CGANTrainConfig`.
    """
    cfg = cfg or CGANTrainConfig()
    saved = check_out(out, resume, FORMAT)
    if saved is not None:
        cfg = CGANTrainConfig(**{**saved["train_config"], "threads": cfg.threads})
    if steps is not None:
        cfg = cfg.model_copy(update={"steps": int(steps)})
    dom = prepare_domains(images, masks, preset, cfg.n_scenes, cfg.seed, cfg.scene_overrides, cfg.mask_encoding,
                          percentiles=cfg.percentiles, thickness=cfg.boundary_thickness,
                          positional=(cfg.alpha, cfg.beta) if cfg.positional else None,
                          specimen_radius=cfg.specimen_radius)
    nd = dom.ndim
    patch = list(cfg.patch_size) if cfg.patch_size else default_patch(nd)
    if len(patch) != nd:
        raise ConfigError(f"patch_size {patch} has {len(patch)} axes but the training images are {nd}D")
    args = dict(spatial_dims=nd, channels=list(cfg.channels), blocks_per_level=cfg.blocks_per_level,
                strides=cfg.strides, norm=cfg.norm, positional=cfg.positional, d_channels=cfg.d_channels,
                d_layers=cfg.d_layers, d_norm=cfg.d_norm, gan_mode=cfg.gan_mode,
                lambda_identity=cfg.lambda_identity, upsample_blur=cfg.upsample_blur)
    model = build_seeded(ConditionalGAN, cfg.seed, "cGAN", patch, **args)
    check_patch_fits(model.D, 2 if cfg.positional else 1, patch, f"discriminator ({cfg.d_layers} layers)")
    meta = {"patch_size": patch, "percentiles": list(cfg.percentiles), "mask_encoding": cfg.mask_encoding,
            "boundary_thickness": cfg.boundary_thickness, "alpha": cfg.alpha, "beta": cfg.beta,
            "specimen_radius": cfg.specimen_radius,
            "training_data": {"images": describe_training_data(dom.image_files, images), "masks": dom.mask_source}}
    return train_adversarial(model, dom.sampler(patch, cfg.batch_size), out, cfg, meta, resume=resume,
                             device=device, progress=progress, desc="train cgan")
