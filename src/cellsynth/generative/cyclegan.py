"""CycleGAN between masks and images (Eschweiler et al. 2019; Rosa et al. as a segmenter), 2D and 3D.

Two ResNet generators (mask→image ``G_mask2img``, image→mask ``G_img2mask``) and two
PatchGAN discriminators, LSGAN, unpaired (Zhu et al. 2017). Losses of the generators:
adversarial + λ·(cycle) + λ·λ_idt·(identity), λ = 10, where the mask→image→mask cycle
L1 is weighted by the distance map of the mask's boundaries (Eschweiler et al. 2019
eq. 1; ``cycle_weighting="plain"`` switches it off) and every mask-domain L1 can weight
classes (``class_weights``, Rosa et al.: Golgi 3.5). The identity terms need as many
mask as image channels and are skipped otherwise. ADA, when on, augments the image
discriminator's inputs.

Generation: the EMA ``G_mask2img`` renders encoded masks of any size by tiles
(:func:`cellsynth.tiling.tiled_generate`); segmentation: the EMA ``G_img2mask`` maps an
image to per-class masks (> 0).
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field

from ..errors import ConfigError
from ..modelfolder import describe_training_data
from ..nn.patchgan import PatchDiscriminator
from ..nn.resnet import ResnetGenerator
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

FORMAT = "cellsynth-cyclegan"


class CycleGANTrainConfig(AdversarialTrainConfig):
    """``cellsynth train cyclegan --config F`` (YAML/JSON); loop keys as :class:`AdversarialTrainConfig`."""

    channels: Annotated[int, Field(ge=1)] = 32
    n_down: Annotated[int, Field(ge=0)] = 2
    n_blocks: Annotated[int, Field(ge=0)] = 6
    norm: Literal["batch", "none"] = "batch"  # tile-safe norms only (see cellsynth.nn.layers)
    strides: list[list[Annotated[int, Field(ge=1)]]] | None = None
    d_channels: Annotated[int, Field(ge=1)] = 32
    d_layers: Annotated[int, Field(ge=1)] = 3
    d_norm: Literal["batch", "instance", "group", "none"] = "instance"
    gan_mode: Literal["lsgan", "nonsaturating"] = "lsgan"
    lambda_cycle: Annotated[float, Field(ge=0)] = 10.0
    lambda_identity: Annotated[float, Field(ge=0)] = 0.5
    cycle_weighting: Literal["distance", "plain"] = "distance"
    distance_saturation: Annotated[float, Field(gt=0)] = 5.0  # px at which the weight reaches 1
    distance_minimum: Annotated[float, Field(ge=0, le=1)] = 0.1  # weight on the boundaries
    mask_encoding: Literal["boundaries", "foreground", "classes"] = "boundaries"
    boundary_thickness: Annotated[int, Field(ge=1)] = 1
    # per-class weights by class name for the "classes" encoding (Rosa et al.: golgi 3.5); others 1
    class_weights: dict[str, Annotated[float, Field(gt=0)]] = {}
    patch_size: list[Annotated[int, Field(ge=4)]] | None = None  # None: 256² (2D), 64³ (3D)
    percentiles: tuple[float, float] = (1.0, 99.8)
    n_scenes: Annotated[int, Field(ge=1)] = 8  # simulated scenes for --preset
    scene_overrides: list[str] = []  # --set style overrides of the preset's scene (e.g. a smaller shape)


class CycleGAN(AdversarialModel):
    """Generators mask↔image and their discriminators; constructor arguments are the saved config."""

    format = FORMAT
    generator_names = ("G_mask2img", "G_img2mask")

    def __init__(self, spatial_dims: int = 2, image_channels: int = 1, mask_channels: int = 1, channels: int = 32,
                 n_down: int = 2, n_blocks: int = 6, norm: str = "batch",
                 strides: Sequence[Sequence[int]] | None = None, d_channels: int = 32, d_layers: int = 3,
                 d_norm: str = "instance", gan_mode: str = "lsgan", lambda_cycle: float = 10.0,
                 lambda_identity: float = 0.5, class_weights: Sequence[float] | None = None):
        super().__init__()
        g = dict(spatial_dims=spatial_dims, channels=channels, n_down=n_down, n_blocks=n_blocks, norm=norm,
                 strides=strides)
        self.G_mask2img = ResnetGenerator(in_channels=mask_channels, out_channels=image_channels, **g)
        self.G_img2mask = ResnetGenerator(in_channels=image_channels, out_channels=mask_channels, **g)
        d = dict(spatial_dims=spatial_dims, channels=d_channels, n_layers=d_layers, norm=d_norm)
        self.D_img = PatchDiscriminator(in_channels=image_channels, **d)
        self.D_mask = PatchDiscriminator(in_channels=mask_channels, **d)
        if class_weights is not None and len(class_weights) != mask_channels:
            raise ValueError(f"{len(class_weights)} class weights for {mask_channels} mask channels")
        self.gan_mode, self.lambda_cycle, self.lambda_identity = gan_mode, lambda_cycle, lambda_identity
        self.class_weights = list(class_weights) if class_weights is not None else None
        self.identity = image_channels == mask_channels and lambda_identity > 0
        self.loss_names = ("G_img", "G_mask", "cyc_mask", "cyc_img") + (("idt",) if self.identity else ()) + \
            ("D_img", "D_mask")

    @property
    def divisor(self) -> list[int]:
        return self.G_mask2img.divisor

    @property
    def spatial_dims(self) -> int:
        return self.G_mask2img.spatial_dims

    def optimizer_groups(self):
        return {"G": list(self.G_mask2img.parameters()) + list(self.G_img2mask.parameters()),
                "D": list(self.D_img.parameters()) + list(self.D_mask.parameters())}

    def set_input(self, batch):
        self.real_mask, self.real_img = batch["mask"], batch["image"]
        self.mask_weight = batch.get("mask_weight")

    def optimize_step(self) -> dict[str, float]:
        m, i, w, cw, lam = self.real_mask, self.real_img, self.mask_weight, self.class_weights, self.lambda_cycle
        self.set_requires_grad([self.D_img, self.D_mask], False)
        with self.autocast():
            fake_img = self.G_mask2img(m)
            fake_mask = self.G_img2mask(i)
            losses = {"G_img": gan_loss(self.D_img(self.d_augment(fake_img)), True, self.gan_mode),
                      "G_mask": gan_loss(self.D_mask(fake_mask), True, self.gan_mode),
                      # Eschweiler et al. 2019 eq. 1: distance-weighted mask cycle, plain image cycle
                      "cyc_mask": lam * weighted_l1(self.G_img2mask(fake_img), m, w, cw),
                      "cyc_img": lam * weighted_l1(self.G_mask2img(fake_mask), i)}
            if self.identity:
                losses["idt"] = lam * self.lambda_identity * (weighted_l1(self.G_mask2img(i), i)
                                                              + weighted_l1(self.G_img2mask(m), m, None, cw))
        self.step("G", sum(losses.values()))
        self.set_requires_grad([self.D_img, self.D_mask], True)
        with self.autocast():
            d_real = self.D_img(self.d_augment(i))
            self.observe_real(d_real)
            fi = self.pool("image").query(fake_img.detach())
            fm = self.pool("mask").query(fake_mask.detach())
            d_img = 0.5 * (gan_loss(d_real, True, self.gan_mode)
                           + gan_loss(self.D_img(self.d_augment(fi)), False, self.gan_mode))
            d_mask = 0.5 * (gan_loss(self.D_mask(m), True, self.gan_mode)
                            + gan_loss(self.D_mask(fm), False, self.gan_mode))
        self.step("D", d_img + d_mask)
        losses.update(D_img=d_img, D_mask=d_mask)
        return {k: float(v.detach()) for k, v in losses.items()}


def default_patch(nd: int) -> list[int]:
    return [256, 256] if nd == 2 else [64, 64, 64]


def train_cyclegan(images: str | Path, out: str | Path, cfg: CycleGANTrainConfig | None = None,
                   masks: str | Path | None = None, preset: str | None = None, steps: int | None = None,
                   device: str = "auto", resume: bool = False, progress: bool = True) -> Path:
    """Train a mask↔image CycleGAN on real ``images`` and real ``masks`` or scenes of ``preset``.

    Parameters
    ----------
    images : folder of single-channel TIFFs (all 2D or all 3D), unannotated.
    out : model folder to write (refused if it holds a model, unless ``resume``).
    cfg : :class:`CycleGANTrainConfig`.
    masks / preset : the mask domain: a folder of instance masks, or a preset to simulate
        ``cfg.n_scenes`` scenes from (no annotation needed).
    steps : total steps (overrides ``cfg.steps``); with ``resume``, the new total.
    """
    cfg = cfg or CycleGANTrainConfig()
    saved = check_out(out, resume, FORMAT)
    if saved is not None:
        cfg = CycleGANTrainConfig(**{**saved["train_config"], "threads": cfg.threads})
    if steps is not None:
        cfg = cfg.model_copy(update={"steps": int(steps)})
    weight = {"saturation": cfg.distance_saturation, "minimum": cfg.distance_minimum} \
        if cfg.cycle_weighting == "distance" else None
    dom = prepare_domains(images, masks, preset, cfg.n_scenes, cfg.seed, cfg.scene_overrides, cfg.mask_encoding,
                          percentiles=cfg.percentiles, cycle_weight=weight, thickness=cfg.boundary_thickness)
    nd = dom.ndim
    patch = list(cfg.patch_size) if cfg.patch_size else default_patch(nd)
    if len(patch) != nd:
        raise ConfigError(f"patch_size {patch} has {len(patch)} axes but the training images are {nd}D")
    names = dom.mask_source["class_names"]
    unknown = sorted(set(cfg.class_weights) - set(names))
    if unknown:
        raise ConfigError(f"class_weights name {unknown} not among the mask classes {names or '(none)'}")
    cw = [float(cfg.class_weights.get(n, 1.0)) for n in names] if cfg.class_weights else None
    args = dict(spatial_dims=nd, image_channels=1, mask_channels=dom.masks[0].shape[0], channels=cfg.channels,
                n_down=cfg.n_down, n_blocks=cfg.n_blocks, norm=cfg.norm, strides=cfg.strides,
                d_channels=cfg.d_channels, d_layers=cfg.d_layers, d_norm=cfg.d_norm, gan_mode=cfg.gan_mode,
                lambda_cycle=cfg.lambda_cycle, lambda_identity=cfg.lambda_identity, class_weights=cw)
    model = build_seeded(CycleGAN, cfg.seed, "CycleGAN", patch, **args)
    check_patch_fits(model.D_img, 1, patch, f"discriminator ({cfg.d_layers} layers)")
    meta = {"patch_size": patch, "percentiles": list(cfg.percentiles), "mask_encoding": cfg.mask_encoding,
            "class_names": names, "boundary_thickness": cfg.boundary_thickness,
            "training_data": {"images": describe_training_data(dom.image_files, images), "masks": dom.mask_source}}
    return train_adversarial(model, dom.sampler(patch, cfg.batch_size), out, cfg, meta, resume=resume,
                             device=device, progress=progress, desc="train cyclegan")
