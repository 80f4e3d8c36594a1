"""Three-class U-Net segmenter (background / boundary / interior) with seeded watershed, 2D and 3D.

The multi-class reformulation of instance segmentation used by Eschweiler et al. 2019, 2021: a U-Net
(:class:`cellsynth.nn.unet.UNet`) predicts per pixel the probabilities of background,
object boundary (:func:`cellsynth.simulate.encode.boundaries`, 1 px per side) and object
interior (object minus boundary), i.e. ``encode.three_class(labels, centroid_radius=None)``.
Instances come from a seeded watershed: seeds are connected components
of (interior probability > ``seed_threshold``), flooded over the negative interior
probability (or the negative distance to the background) inside the foreground
(1 − background probability > ``foreground_threshold``).

Optionally (``distance_weight`` > 0) a fourth output, the distance head, regresses each object's
distance to its border normalised per object (:func:`cellsynth.simulate.encode.distance_map`);
the watershed can then take its seeds from the inner part of every object, whatever its size
(``postprocess.seeds = "distance_head"``) and flood its landscape: markers from a regressed
distance map instead of a class probability, which keeps touching objects of any size apart.

Training uses random patches (small images padded, padding ignored by the loss),
augmentation from :mod:`.augment` (Eschweiler et al. 2019: flips, rotation, noise, intensity scaling),
cross-entropy weighted per class (∝ 1/√frequency) and, ×``touching_weight``, on boundaries
between touching objects, + soft Dice (+ the distance head's L1), Adam with optional linear warm-up,
cosine decay and a fixed step budget. Images are normalised per image to their (1, 99.8) percentiles;
the percentiles are saved with the model. Prediction of any size is tiled with MONAI's
``sliding_window_inference`` (overlap, Gaussian blending), optionally averaged over ``tta`` flips /
transpositions of the image. With ``rescale`` (:mod:`.rescale`, after Stringer et al. 2021) every image is
resized so that its median object diameter becomes one target, at training (from its masks) and at
prediction (a label-free estimate), and the maps are resized back to the image before the watershed.
A model directory holds ``config.json`` and ``weights.safetensors``.
"""
from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field, field_validator, model_validator
from scipy import ndimage as ndi
from skimage.segmentation import watershed

from .. import ddp
from ..allocator import retained_heap
from ..config import Fraction, PosFloat, PosInt, Strict, ordered_range, validate
from ..dataset import read_pairs
from ..errors import ConfigError, InputError
from ..intensity import DEFAULT_PERCENTILES, normalize_percentile, percentile_range
from ..io import check_writable, read_image, read_labels
from ..modelfolder import (
    config_error,
    describe_training_data,
    load_weights,
    read_model_config,
    resolve_device,
    save_model_folder,
)
from ..nn.unet import UNet
from ..simulate import encode
from .augment import AugmentConfig, augment_pair
from .classical import finish_labels
from .rescale import RescaleConfig, image_diameter, labels_diameter, rescale_pair, resize, scale_factor, scaled_shape
from .size_model import fit_ridge, predict_ridge

log = logging.getLogger(__name__)

FORMAT = "cellsynth-segmenter"
FORMAT_VERSION = 1
CLASSES = ("background", "boundary", "interior")
IGNORE = 255  # target value of padded pixels (no loss there)
TOUCHING = 3  # training-target value: boundary pixel next to another object (class 1, extra weight)
# fewer training images with objects than this fit no size model (a regression on a handful of images
# knows less of a new image's scale than the classical estimate does)
MIN_SIZE_IMAGES = 10



# --------------------------------------------------------------------------- configuration
class PostprocessConfig(Strict):
    """Seeded watershed from the three probability maps."""

    # seeds: connected components of P(interior) > seed_threshold with >= min_seed_size pixels.
    # A high threshold keeps touching objects apart (chosen on DSB 2018 train images:
    # AP@0.5 0.69 at 0.5 -> 0.75 at 0.9); foreground without a seed still becomes an object.
    seed_threshold: Fraction = 0.9
    min_seed_size: Annotated[int, Field(ge=0)] = 10
    # foreground: 1 - P(background) > foreground_threshold. The class-weighted cross-entropy (boundary
    # and interior weighted up) shifts the probabilities towards foreground, so halo pixels pass 0.5:
    # chosen on 40 held-out DSB 2018 train images (0.8 scored higher for two 300-step models), then
    # checked once with the full default benchmark, where no arm lost (benchmarks/RESULTS.md)
    foreground_threshold: Fraction = 0.8
    # objects smaller than min_size pixels/voxels are removed
    min_size: Annotated[int, Field(ge=0)] = 10
    # landscape flooded from the seeds: -P(interior), -distance to the background, or -the distance
    # head's output (models trained with distance_weight > 0)
    flood: Literal["interior", "distance", "distance_head"] = "interior"
    # seeds from P(interior) > seed_threshold, or from the distance head > distance_threshold
    # (the inner part of each object, whatever its size: normalised distance)
    seeds: Literal["interior", "distance_head"] = "interior"
    distance_threshold: Fraction = 0.5


class SegmenterConfig(Strict):
    """Model, training and inference parameters of the segmenter (the ``--config`` file)."""

    # U-Net (cellsynth.nn.unet.UNet): feature channels per level, blocks per level,
    # optional per-level strides for anisotropic 3D, e.g. [[1,2,2],[2,2,2]]
    channels: list[PosInt] = [16, 32, 64, 128]
    blocks_per_level: PosInt = 1
    strides: list[list[PosInt]] | None = None
    # training patch (Z)YX; None = 128² in 2D, 32×64×64 in 3D
    patch: list[PosInt] | None = None
    batch_size: PosInt = 8
    steps: PosInt = 500
    lr: PosFloat = 1e-3
    # learning rate decays by cosine to lr·lr_final_fraction over the steps
    lr_final_fraction: Fraction = 0.05
    # cross-entropy weights (background, boundary, interior); None = from the class
    # frequencies of the training targets (∝ 1/√frequency)
    class_weights: tuple[PosFloat, PosFloat, PosFloat] | None = None
    dice_weight: Annotated[float, Field(ge=0)] = 0.5
    # weight of the distance head's L1 loss (0 = no distance head): a 4th output regresses each object's
    # distance to its border normalised per object to (0, 1] (encode.distance_map), background 0;
    # the watershed can take its seeds / landscape from it (postprocess.seeds, postprocess.flood)
    distance_weight: Annotated[float, Field(ge=0)] = 0.0
    # linear learning-rate warm-up from 0 over the first warmup_steps, then the cosine decay
    warmup_steps: Annotated[int, Field(ge=0)] = 0
    # extra cross-entropy weight factor on boundary pixels that touch another object
    # (the U-Net paper's border weighting: separating touching objects is what matters)
    touching_weight: Annotated[float, Field(ge=1)] = 3.0
    # per-image percentile normalisation (low, high) -> [0, 1]
    percentiles: tuple[float, float] = DEFAULT_PERCENTILES
    # fraction of patches centred on a random object pixel (sparse images)
    p_foreground: Fraction = 0.5
    augment: AugmentConfig = AugmentConfig()
    postprocess: PostprocessConfig = PostprocessConfig()
    # inference tile (None = the patch with Y and X doubled), tile overlap fraction, tiles per pass
    tile: list[PosInt] | None = None
    overlap: Annotated[float, Field(ge=0, lt=1)] = 0.25
    sw_batch_size: PosInt = 4
    # test-time augmentation: average the predicted maps over this many YX flips / transpositions
    # (1 = none, 2 = + X flip, 4 = all flips, 8 = all flips of the image and of its transpose)
    tta: Literal[1, 2, 4, 8] = 1
    # scale normalisation (Stringer et al. 2021, :mod:`.rescale`): train and predict with every image resized
    # so that its median object diameter (masks at training, a label-free estimate at prediction) becomes
    # rescale.target_diameter; the maps are resized back before the watershed. None = native scale. The right
    # diameter depends on the objects, so presets set it (nuclei2d-dsb: 17 px; DSB val, 600 steps: Real2Real
    # 0.765 -> 0.806 AP@0.5; benchmarks/RESULTS.md "Scale normalisation")
    rescale: RescaleConfig | None = None
    seed: int = 0

    _r = field_validator("percentiles")(ordered_range)

    @field_validator("percentiles")
    @classmethod
    def _pct(cls, v):
        if not (0 <= v[0] < v[1] <= 100):
            raise ValueError(f"percentiles must satisfy 0 <= low < high <= 100, got {tuple(v)}")
        return v

    @field_validator("channels")
    @classmethod
    def _ch(cls, v):
        if len(v) < 2:
            raise ValueError("need at least two levels, e.g. [16, 32, 64]")
        return v

    @model_validator(mode="after")
    def _needs_head(self):
        pp = self.postprocess
        if self.distance_weight == 0 and "distance_head" in (pp.seeds, pp.flood):
            raise ValueError("postprocess.seeds/flood = 'distance_head' needs a distance head: distance_weight > 0")
        if self.warmup_steps >= self.steps:
            raise ValueError(f"warmup_steps ({self.warmup_steps}) must be below steps ({self.steps})")
        return self


def default_patch(ndim: int) -> list[int]:
    return [128, 128] if ndim == 2 else [32, 64, 64]


def default_tile(patch: Sequence[int]) -> list[int]:
    """Inference tile: the training patch with Y and X doubled (more context, fewer seams)."""
    return list(patch[:-2]) + [2 * p for p in patch[-2:]]


# --------------------------------------------------------------------------- encoding
def instances_from_probabilities(probs: np.ndarray, seed_threshold: float = 0.5,
                                 foreground_threshold: float = 0.5, min_seed_size: int = 0,
                                 min_size: int = 0, flood: str = "interior", distance: np.ndarray | None = None,
                                 seeds: str = "interior", distance_threshold: float = 0.5) -> np.ndarray:
    """Seeded watershed on (3, *S) probabilities (background, boundary, interior) -> labels.

    Seeds are the components of P(interior) > ``seed_threshold`` (``seeds="interior"``) or of
    ``distance`` > ``distance_threshold`` (``seeds="distance_head"``; ``distance`` is the distance
    head's (*S) map), within the foreground. Foreground components that contain no seed (objects
    too thin to have an interior) are kept as objects of their own. Objects below ``min_size``
    are removed; labels are consecutive uint16 (uint32 beyond 65535 objects).
    """
    probs = np.asarray(probs, dtype=np.float32)
    if probs.ndim not in (3, 4) or probs.shape[0] != 3:
        raise ValueError(f"probabilities must have shape (3, *S) for 2D/3D, got {probs.shape}")
    if "distance_head" in (seeds, flood) and (distance is None or np.shape(distance) != probs.shape[1:]):
        raise ValueError(f"seeds/flood 'distance_head' need the distance map of shape {probs.shape[1:]}")
    fg = (1.0 - probs[0]) > foreground_threshold
    if seeds == "interior":
        seed_mask = probs[2] > seed_threshold
    elif seeds == "distance_head":
        seed_mask = np.asarray(distance) > distance_threshold
    else:
        raise ValueError(f"seeds must be 'interior' or 'distance_head', got {seeds!r}")
    markers, n = ndi.label(seed_mask & fg)
    if min_seed_size > 1 and n:
        sizes = np.bincount(markers.ravel())
        keep = sizes >= min_seed_size
        keep[0] = False
        markers = np.where(keep[markers], markers, 0)
    if flood == "interior":
        landscape = -probs[2]
    elif flood == "distance":
        landscape = -ndi.distance_transform_edt(fg).astype(np.float32)
    elif flood == "distance_head":
        landscape = -np.asarray(distance, np.float32)
    else:
        raise ValueError(f"flood must be 'interior', 'distance' or 'distance_head', got {flood!r}")
    labels = watershed(landscape, markers, mask=fg).astype(np.int64)
    # foreground left unflooded (no seed in its component): one object per component
    rest, n_rest = ndi.label(fg & (labels == 0))
    if n_rest:
        labels[rest > 0] = rest[rest > 0] + labels.max()
    return finish_labels(labels, min_size)


def distance_target(labels: np.ndarray) -> np.ndarray:
    """uint8 target of the distance head: :func:`cellsynth.simulate.encode.distance_map` normalised per
    object to (0, 1], stored as round(255 · d) (background 0)."""
    return np.round(255 * encode.distance_map(labels, normalise=True)).astype(np.uint8)


def training_target(labels: np.ndarray) -> np.ndarray:
    """uint8 target: 0 background, 1 boundary, 2 interior (:func:`cellsynth.simulate.encode.three_class`
    with the whole interior), boundary voxels that touch another object set to ``TOUCHING``."""
    target = encode.three_class(labels, centroid_radius=None)
    target[encode.boundaries(labels, touching_only=True)] = TOUCHING
    return target


# --------------------------------------------------------------------------- data
def read_training_pairs(datasets: Sequence[str | Path]) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """Read and validate every (image, mask) pair of the dataset folders.

    All images must share one dimensionality (2D or 3D) and each mask the shape of its
    image; the first violation raises a one-line :class:`InputError` naming the file.
    """
    if not datasets:
        raise InputError("no training dataset given (--data DATASET)")
    out = []
    ndim = first = None
    for d in datasets:
        for name, img_path, mask_path in read_pairs(d):
            img = read_image(img_path)
            mask = read_labels(mask_path)
            if img.shape != mask.shape:
                raise InputError(f"mask '{mask_path}' has shape {mask.shape} but its image has {img.shape}")
            if ndim is None:
                ndim, first = img.ndim, img_path
            elif img.ndim != ndim:
                raise InputError(f"image '{img_path}' is {img.ndim}D but '{first}' is {ndim}D; "
                                 "all training images must share one dimensionality")
            out.append((name, img, mask))
    return out


class _PatchSampler:
    """Random normalised (image, target) patches, padded where the image is smaller.

    Images are kept in their own dtype with per-image percentiles (p_low, p_high) from
    :func:`cellsynth.intensity.percentile_range`; only the sampled patch is converted to float32.
    With ``distances`` (the distance head's targets) a patch's target is (classes, distances).
    """

    def __init__(self, images: list[np.ndarray], norms: list[tuple[float, float]], targets: list[np.ndarray],
                 patch: Sequence[int], p_foreground: float, rng: np.random.Generator, n_anchor: int = 2000,
                 distances: list[np.ndarray] | None = None, masks: list[np.ndarray] | None = None,
                 p_zoom: float = 0.0, zoom: tuple[float, float] = (1.0, 1.0)):
        self.images, self.norms, self.targets, self.patch = images, norms, targets, list(patch)
        self.distances, self.masks = distances, masks
        if p_zoom > 0 and masks is None:
            raise ValueError("zoom needs the label masks")
        self.p_zoom, self.zoom = p_zoom, zoom
        self.p_fg, self.rng = p_foreground, rng
        # a few object pixels per image to centre patches on (sparse images)
        self.anchors = []
        for t in targets:
            idx = np.flatnonzero(t == 2)
            if len(idx) > n_anchor:
                idx = rng.choice(idx, n_anchor, replace=False)
            self.anchors.append(np.stack(np.unravel_index(idx, t.shape), 1) if len(idx) else None)

    def sample(self) -> tuple[np.ndarray, np.ndarray | tuple[np.ndarray, np.ndarray]]:
        i = int(self.rng.integers(len(self.images)))
        if self.p_zoom > 0 and self.rng.random() < self.p_zoom:
            return self._zoomed(i)
        img, tgt = self.images[i], self.targets[i]
        dist = self.distances[i] if self.distances is not None else None
        sl, pad = self._crop(i, self.patch)
        if any(a or b for a, b in pad):
            img = np.pad(img, pad, mode="symmetric")
            tgt = np.pad(tgt, pad, mode="constant", constant_values=IGNORE)
            if dist is not None:
                dist = np.pad(dist, pad, mode="constant")
        x = normalize_percentile(img[sl], lo_hi=self.norms[i])
        return (x, tgt[sl]) if dist is None else (x, (tgt[sl], dist[sl]))

    def _crop(self, i: int, size: Sequence[int]) -> tuple[tuple[slice, ...], list[tuple[int, int]]]:
        """A window of ``size`` in image i padded to at least ``size``: (slices, padding), centred near an
        object pixel with probability p_foreground."""
        shape = self.images[i].shape
        pad = [(max(0, p - s) // 2, max(0, p - s) - max(0, p - s) // 2) for p, s in zip(size, shape)]
        padded = [s + a + b for s, (a, b) in zip(shape, pad)]
        anchors = self.anchors[i]
        if anchors is not None and self.rng.random() < self.p_fg:
            c = anchors[int(self.rng.integers(len(anchors)))] + np.array([a for a, _ in pad])
            start = [int(np.clip(ci - p // 2 + self.rng.integers(-(p // 4), p // 4 + 1), 0, s - p))
                     for ci, p, s in zip(c, size, padded)]
        else:
            start = [int(self.rng.integers(0, s - p + 1)) for p, s in zip(size, padded)]
        return tuple(slice(s0, s0 + p) for s0, p in zip(start, size)), pad

    def _zoomed(self, i: int):
        """A crop of patch/z pixels resized to the patch (z log-uniform in ``zoom``); the target is
        recomputed from the resized labels, padded pixels ignored."""
        z = float(np.exp(self.rng.uniform(np.log(self.zoom[0]), np.log(self.zoom[1]))))
        size = [max(4, int(round(p / z))) for p in self.patch]
        sl, pad = self._crop(i, size)
        img = np.pad(self.images[i], pad, mode="symmetric")[sl]
        lab = np.pad(self.masks[i], pad, mode="constant")[sl]
        valid = np.pad(np.ones(self.masks[i].shape, bool), pad, mode="constant")[sl]
        x = resize(normalize_percentile(img, lo_hi=self.norms[i]), self.patch)
        lab = resize(lab, self.patch, labels=True)
        tgt = training_target(lab)
        tgt[~resize(valid, self.patch, labels=True)] = IGNORE
        if self.distances is None:
            return x, tgt
        return x, (tgt, distance_target(lab))


def class_weights_from(targets: list[np.ndarray]) -> list[float]:
    """Cross-entropy weights ∝ 1/√(class frequency), normalised to mean 1 over the pixels."""
    counts = np.zeros(3, np.float64)
    for t in targets:
        c = np.bincount(t.ravel(), minlength=IGNORE + 1)
        counts += [c[0], c[1] + c[TOUCHING], c[2]]
    freq = np.maximum(counts / max(counts.sum(), 1.0), 1e-4)
    w = 1.0 / np.sqrt(freq)
    w = w / float((w * freq).sum() / freq.sum())
    return [float(v) for v in w]


def segmentation_loss(logits: torch.Tensor, target: torch.Tensor, weight: torch.Tensor,
                      dice_weight: float, pixel_weight: torch.Tensor | None = None) -> torch.Tensor:
    """Weighted cross-entropy + ``dice_weight`` · (1 − mean soft Dice over the 3 classes).

    ``target`` holds class indices with -100 where padded (ignored by both terms);
    ``pixel_weight`` (same shape) multiplies the per-pixel cross-entropy (class weight ×
    pixel weight, normalised by their sum as in ``F.cross_entropy``).
    """
    if pixel_weight is None:
        ce = F.cross_entropy(logits, target, weight=weight, ignore_index=-100)
    else:
        valid = target >= 0
        w = weight[target.clamp(min=0)] * pixel_weight * valid
        ce = (F.cross_entropy(logits, target, ignore_index=-100, reduction="none") * w).sum() / w.sum().clamp(min=1e-8)
    if dice_weight <= 0:
        return ce
    valid = (target >= 0).unsqueeze(1)
    prob = torch.softmax(logits, 1) * valid
    onehot = F.one_hot(target.clamp(min=0), 3).movedim(-1, 1) * valid
    dims = tuple(d for d in range(prob.dim()) if d != 1)
    inter = (prob * onehot).sum(dims)
    denom = prob.sum(dims) + onehot.sum(dims)
    dice = (2 * inter + 1.0) / (denom + 1.0)
    return ce + dice_weight * (1.0 - dice.mean())


def distance_loss(output: torch.Tensor, target: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Mean absolute error of sigmoid(``output``) against the normalised distance ``target`` over ``valid``."""
    err = (torch.sigmoid(output) - target).abs() * valid
    return err.sum() / valid.sum().clamp(min=1)


# --------------------------------------------------------------------------- model
class Segmenter:
    """A trained 3-class U-Net with its saved configuration; ``predict(image) -> labels``."""

    def __init__(self, net: UNet, config: dict, device: str | torch.device = "cpu"):
        self.device = resolve_device(device)
        self.net = net.to(self.device).eval()
        self.config = config
        self.spatial_dims = int(config["unet"]["spatial_dims"])
        self.percentiles = tuple(config["normalisation"]["percentiles"])
        self.postprocess = validate(PostprocessConfig, config["postprocess"], prefix="postprocess.")
        inf = config["inference"]
        self.tile, self.overlap = list(inf["tile"]), float(inf["overlap"])
        self.sw_batch_size = int(inf["sw_batch_size"])
        self.tta = int(inf.get("tta", 1))  # folders written before test-time augmentation existed: none
        self.has_distance = int(config["unet"]["out_channels"]) == 4
        # folders written before scale normalisation existed: native scale
        rs = inf.get("rescale")
        self.rescale = validate(RescaleConfig, rs, prefix="inference.rescale.") if rs is not None else None
        # folders written before the size model existed estimate the diameter the classical way
        self.size_model = config.get("size_model")

    def _check(self, image: np.ndarray) -> np.ndarray:
        image = np.asarray(image)
        if image.ndim != self.spatial_dims:
            raise InputError(f"image of shape {image.shape} is {image.ndim}D but this segmenter is "
                             f"{self.spatial_dims}D")
        if not np.all(np.isfinite(image)):
            raise InputError("image contains NaN or infinite values")
        return image

    def check_tile(self, tile: Sequence[int] | None = None, overlap: float | None = None) -> list[int]:
        """The inference tile to use (default: the saved one); ConfigError if unusable."""
        tile = [int(t) for t in tile] if tile is not None else self.tile
        div = self.net.divisor
        if len(tile) != self.spatial_dims or any(t < 1 or t % d for t, d in zip(tile, div)):
            raise ConfigError(f"tile {tile}: needs {self.spatial_dims} sizes, each a multiple of {div}")
        if overlap is not None and not 0 <= overlap < 1:
            raise ConfigError(f"overlap {overlap}: must be in [0, 1)")
        return tile

    def scale_factor(self, image: np.ndarray, diameter: float | None = None) -> float:
        """The factor :meth:`maps` resizes ``image`` by: 1 for a model trained at native scale, else
        ``target_diameter`` / (``diameter``, or the image's label-free median object diameter
        :func:`cellsynth.segment.rescale.image_diameter`), clipped to the model's limits
        (1 when no object is found: nothing to scale by)."""
        if self.rescale is None:
            return 1.0
        if diameter is None:
            diameter = self.estimate_diameter(image)
        elif not (np.isfinite(diameter) and diameter > 0):
            raise ConfigError(f"diameter {diameter}: must be a positive number of pixels")
        return scale_factor(diameter, self.rescale)

    def estimate_diameter(self, image: np.ndarray) -> float | None:
        """Label-free median object diameter (px) of ``image``: the size model's (exp of its ridge
        prediction from :meth:`style`) when the folder has one, else the classical estimate
        (:func:`cellsynth.segment.rescale.image_diameter`; None when it finds no object)."""
        image = self._check(image)
        if self.size_model is None:
            return image_diameter(image)
        return float(np.exp(predict_ridge(self.size_model, self.style(image)[None])[0]))

    @torch.inference_mode()
    def style(self, image: np.ndarray) -> np.ndarray:
        """The image's "style" (Stringer et al. 2021) at its native scale: mean and standard deviation of
        every channel of every level of the contracting path (:meth:`cellsynth.nn.unet.UNet.encode`) over
        a centre crop of at most one inference tile (the input is normalised like :meth:`maps`'s)."""
        x = normalize_percentile(self._check(image), *self.percentiles)
        x = x[tuple(slice((n - min(n, t)) // 2, (n - min(n, t)) // 2 + min(n, t)) for n, t in zip(x.shape, self.tile))]
        x = np.pad(x, [(0, -n % d) for n, d in zip(x.shape, self.net.divisor)], mode="symmetric")
        levels = self.net.encode(torch.from_numpy(np.ascontiguousarray(x, np.float32))[None, None].to(self.device))
        return np.concatenate([torch.cat([h[0].flatten(1).mean(1), h[0].flatten(1).std(1)]).float().cpu().numpy()
                               for h in levels])

    def fit_size_model(self, pairs: Sequence[tuple[np.ndarray, np.ndarray]], max_images: int | None = None,
                       rng: np.random.Generator | None = None) -> dict:
        """Fit the size model (:func:`cellsynth.segment.size_model.fit_ridge`: :meth:`style` →
        log median diameter of the masks) on native-scale (image, mask) pairs with objects; at most
        ``max_images`` of them, drawn with ``rng``."""
        idx = np.arange(len(pairs))
        if max_images is not None and len(idx) > max_images:
            idx = np.sort((rng or np.random.default_rng(0)).choice(idx, max_images, replace=False))
        feats, logd = [], []
        for i in idx:
            d = labels_diameter(pairs[i][1])
            if d is not None:
                feats.append(self.style(pairs[i][0]))
                logd.append(np.log(d))
        return fit_ridge(np.array(feats), np.array(logd))

    @torch.inference_mode()
    def maps(self, image: np.ndarray, tile: Sequence[int] | None = None, overlap: float | None = None,
             tta: int | None = None, diameter: float | None = None) -> np.ndarray:
        """(C, *shape) float32 maps of one image: the probabilities of background, boundary, interior,
        and (C = 4, models with a distance head) the normalised distance to the object border.

        Any size: tiles of ``tile`` (default: the saved inference tile) with ``overlap``,
        blended with Gaussian weights (MONAI ``sliding_window_inference``); images smaller
        than a tile are padded. ``tta`` (default: the saved one) averages the maps over that many
        YX flips / transpositions of the image (:data:`TTA_TRANSFORMS`). A model trained with
        ``rescale`` sees the image resized by :meth:`scale_factor` (``diameter``: the median object
        diameter in pixels if known, None = estimated); its maps are resized back to the image's shape.
        """
        from monai.inferers import sliding_window_inference

        image = self._check(image)
        tile = self.check_tile(tile, overlap)
        tta = self.tta if tta is None else int(tta)
        if tta not in (1, 2, 4, 8):
            raise ConfigError(f"tta {tta}: choose 1, 2, 4 or 8")
        div = self.net.divisor
        shape = scaled_shape(image.shape, self.scale_factor(image, diameter))
        scaled = resize(image, shape)
        x = torch.from_numpy(normalize_percentile(scaled, *self.percentiles))[None, None].to(self.device)
        net = self.net

        def predictor(batch: torch.Tensor) -> torch.Tensor:
            out = net(batch)
            p = torch.softmax(out[:, :3], 1)
            return torch.cat([p, torch.sigmoid(out[:, 3:])], 1) if out.shape[1] > 3 else p

        acc = None
        for transpose, flips in TTA_TRANSFORMS[:tta]:
            xt = _yx_transform(x, transpose, flips)
            # never tile beyond the (divisor-rounded) image: saves padding work on small images
            t = [min(a, int(math.ceil(s / d)) * d) for a, s, d in zip(tile, xt.shape[2:], div)]
            p = sliding_window_inference(xt, roi_size=t, sw_batch_size=self.sw_batch_size, predictor=predictor,
                                         overlap=self.overlap if overlap is None else overlap, mode="gaussian",
                                         padding_mode="constant", cval=0.0)
            p = _yx_transform(p, transpose, flips, inverse=True)
            acc = p if acc is None else acc + p
        return resize((acc[0] / tta).float().cpu().numpy(), image.shape)

    def probabilities(self, image: np.ndarray, tile: Sequence[int] | None = None,
                      overlap: float | None = None, tta: int | None = None,
                      diameter: float | None = None) -> np.ndarray:
        """(3, *shape) float32 probabilities of background, boundary, interior for one image (:meth:`maps`)."""
        return self.maps(image, tile, overlap, tta, diameter)[:3]

    def predict(self, image: np.ndarray, return_probabilities: bool = False, **kw):
        """Instance labels (uint16; uint32 beyond 65535 objects) of one 2D/3D image.

        ``kw``: ``tile``, ``overlap``, ``tta``, ``diameter`` of :meth:`maps`. With ``return_probabilities``
        also the maps.
        """
        maps = self.maps(image, **kw)
        labels = self.labels_from_maps(maps)
        return (labels, maps) if return_probabilities else labels

    def labels_from_maps(self, maps: np.ndarray) -> np.ndarray:
        """The saved seeded watershed (:class:`PostprocessConfig`) on :meth:`maps` output."""
        pp = self.postprocess
        return instances_from_probabilities(maps[:3], pp.seed_threshold, pp.foreground_threshold,
                                            pp.min_seed_size, pp.min_size, pp.flood,
                                            distance=maps[3] if len(maps) > 3 else None, seeds=pp.seeds,
                                            distance_threshold=pp.distance_threshold)

    def save(self, folder: str | Path) -> Path:
        """Write the model folder (:func:`cellsynth.modelfolder.save_model_folder`)."""
        body = {k: v for k, v in self.config.items() if k not in ("format", "format_version", "versions")}
        return save_model_folder(folder, FORMAT, FORMAT_VERSION, body, {"": self.net})


# (transpose YX, flipped axes from the end) of test-time augmentation, in the order they are added
TTA_TRANSFORMS = ((False, ()), (False, (-1,)), (False, (-2,)), (False, (-2, -1)),
                  (True, ()), (True, (-1,)), (True, (-2,)), (True, (-2, -1)))


def _yx_transform(x: torch.Tensor, transpose: bool, flips: tuple[int, ...], inverse: bool = False) -> torch.Tensor:
    """Flip ``flips`` then transpose the YX plane (``inverse``: undo it) of a (B, C, *S) tensor."""
    if inverse and transpose:
        x = x.transpose(-2, -1)
    if flips:
        x = torch.flip(x, flips)
    if not inverse and transpose:
        x = x.transpose(-2, -1)
    return x.contiguous()


def build_unet(unet_args: dict) -> UNet:
    return UNet(spatial_dims=unet_args["spatial_dims"], in_channels=unet_args["in_channels"],
                out_channels=unet_args["out_channels"], channels=unet_args["channels"],
                blocks_per_level=unet_args["blocks_per_level"], time_embedding=False,
                strides=unet_args.get("strides"))


def load_segmenter(folder: str | Path, device: str = "cpu") -> Segmenter:
    """Load a model folder; a missing/corrupt/foreign one raises a one-line :class:`InputError`."""
    folder = Path(folder)
    what = f"segmenter '{folder}'"
    cfg = read_model_config(folder, FORMAT, FORMAT_VERSION, what)
    try:
        unet = cfg["unet"]
        net = build_unet(unet)
        if unet["out_channels"] not in (3, 4) or unet["in_channels"] != 1:
            raise ValueError("expected 1 input and 3 (classes) or 4 (classes + distance) output channels")
        for key in ("normalisation", "postprocess", "inference"):
            if not isinstance(cfg[key], dict):
                raise ValueError(f"'{key}' must be a mapping")
        pp = validate(PostprocessConfig, cfg["postprocess"], prefix="postprocess.")
        if unet["out_channels"] == 3 and "distance_head" in (pp.seeds, pp.flood):
            raise ValueError("postprocess uses 'distance_head' but the network has no distance output")
        [int(t) for t in cfg["inference"]["tile"]]
        if cfg["inference"].get("rescale") is not None:
            validate(RescaleConfig, cfg["inference"]["rescale"], prefix="inference.rescale.")
        if cfg.get("size_model") is not None:  # one style feature pair (mean, s.d.) per channel of every level
            n = 2 * (sum(unet["channels"]) + unet["channels"][-1])
            got = len(cfg["size_model"]["weights"])
            if got != n:
                raise ValueError(f"size_model has {got} weights, the network {n} features")
        lo, hi = cfg["normalisation"]["percentiles"]
    except (KeyError, TypeError, ValueError, ConfigError) as e:
        raise config_error(what, e) from None
    load_weights(folder, {"": net}, what)
    return Segmenter(net, cfg, device=resolve_device(device))


# --------------------------------------------------------------------------- training
def lr_factor(step: int, cfg: SegmenterConfig) -> float:
    """Learning rate / ``cfg.lr`` at ``step``: linear warm-up over ``warmup_steps``, then cosine decay to
    ``lr_final_fraction`` at ``steps``.

    >>> cfg = SegmenterConfig(steps=100, warmup_steps=10, lr_final_fraction=0.0)
    >>> [round(lr_factor(s, cfg), 2) for s in (0, 5, 10, 55, 100)]
    [0.09, 0.55, 1.0, 0.5, 0.0]
    """
    if step < cfg.warmup_steps:
        return (step + 1) / (cfg.warmup_steps + 1)
    t = (step - cfg.warmup_steps) / max(cfg.steps - cfg.warmup_steps, 1)
    return cfg.lr_final_fraction + (1 - cfg.lr_final_fraction) * 0.5 * (1 + math.cos(math.pi * t))


def train_segmenter(datasets: Sequence[str | Path], out: str | Path | None = None,
                    cfg: SegmenterConfig | None = None, steps: int | None = None,
                    patch: Sequence[int] | None = None, device: str = "auto",
                    progress: bool = True) -> Segmenter:
    """Train the 3-class U-Net on dataset folders (``images/``, ``masks/``) and save it to ``out``.

    Parameters
    ----------
    datasets : folders with ``images/*.tif`` and ``masks/*.tif`` (instance labels) paired by name
    out : model directory to write (``config.json`` + ``weights.safetensors``); None = do not save
    cfg : :class:`SegmenterConfig` (defaults when None); ``steps``/``patch`` override its fields
    device : "auto" (CUDA if available), "cpu" or "cuda"
    progress : tqdm bar with the running loss on stderr

    All inputs are read and validated before anything is written.
    """
    from tqdm import tqdm

    cfg = cfg or SegmenterConfig()
    updates = {}
    if steps is not None:
        updates["steps"] = steps
    if patch is not None:
        updates["patch"] = list(patch)
    if updates:
        cfg = validate(SegmenterConfig, {**cfg.model_dump(), **updates})
    dev = resolve_device(device)
    if out is not None:
        check_writable(out, "model folder")

    pairs = read_training_pairs(datasets)
    factors, native = None, None
    if cfg.rescale is not None and cfg.rescale.estimate == "style":  # native-scale pairs for the size model
        native = [(img, mask) for _, img, mask in pairs]
    if cfg.rescale is not None:  # each pair by its masks' median diameter (synthetic and real alike)
        pairs = [(name, *rescale_pair(img, mask, cfg.rescale)) for name, img, mask in pairs]
        factors = [f for *_, f in pairs]
        pairs = [(name, img, mask) for name, img, mask, _ in pairs]
        log.info("rescaled %d training images to median object diameter %g (factors %.2f-%.2f)", len(pairs),
                 cfg.rescale.target_diameter, min(factors), max(factors))
    data = [describe_training_data([p for _, i, m in read_pairs(d) for p in (i, m)], d) for d in datasets]
    ndim = pairs[0][1].ndim
    patch = list(cfg.patch) if cfg.patch is not None else default_patch(ndim)
    tile = list(cfg.tile) if cfg.tile is not None else default_tile(patch)
    has_distance = cfg.distance_weight > 0
    unet_args = {"spatial_dims": ndim, "in_channels": 1, "out_channels": 4 if has_distance else 3,
                 "channels": list(cfg.channels),
                 "blocks_per_level": cfg.blocks_per_level, "time_embedding": False,
                 "strides": [list(s) for s in cfg.strides] if cfg.strides is not None else None}
    torch.manual_seed(cfg.seed)  # before the network exists: its initial weights come from this seed
    try:
        net = build_unet(unet_args)
    except ValueError as e:
        raise ConfigError(f"segmenter config: {e}") from None
    for name, val in (("patch", patch), ("tile", tile)):
        if len(val) != ndim or any(v % d for v, d in zip(val, net.divisor)):
            raise ConfigError(f"config key '{name}' = {val}: needs {ndim} sizes (the data are {ndim}D), "
                              f"each a multiple of {net.divisor}")

    distributed = ddp.setup(dev)  # under torchrun: one process per device, gradients averaged by DDP
    # each process draws its own patches; rank 0 (and a single process) the stream of `seed` alone
    rng = np.random.default_rng(cfg.seed if ddp.rank() == 0 else [cfg.seed, ddp.rank()])
    images = [img for _, img, _ in pairs]
    norms = [percentile_range(img, *cfg.percentiles) for img in images]
    targets = [training_target(m) for _, _, m in pairs]
    weights = list(cfg.class_weights) if cfg.class_weights is not None else class_weights_from(targets)
    distances = [distance_target(m) for _, _, m in pairs] if has_distance else None
    zoom = cfg.augment.p_zoom > 0
    sampler = _PatchSampler(images, norms, targets, patch, cfg.p_foreground, rng, distances=distances,
                            masks=[m for _, _, m in pairs] if zoom else None, p_zoom=cfg.augment.p_zoom,
                            zoom=tuple(cfg.augment.zoom))
    del pairs

    net = net.to(dev).train()
    model = ddp.wrap(net, dev)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(s, cfg))
    w = torch.tensor(weights, dtype=torch.float32, device=dev)
    curve, ema, t0 = [], None, time.time()
    bar = tqdm(range(cfg.steps), desc="segmenter", disable=not progress or not ddp.is_main(), dynamic_ncols=True,
               leave=True)
    # 3D activations exceed glibc's mmap threshold: keep freed memory for the next step (see allocator.py)
    with retained_heap(dev.type == "cpu"):
        for step in bar:
            xs, ys, ds = [], [], []
            for _ in range(cfg.batch_size):
                x, y = augment_pair(*sampler.sample(), cfg.augment, rng)
                if has_distance:
                    y, d = y
                    ds.append(d)
                xs.append(x)
                ys.append(y)
            xb = torch.from_numpy(np.stack(xs)[:, None]).to(dev)
            yb = torch.from_numpy(np.stack(ys).astype(np.int64))
            pw = 1.0 + (cfg.touching_weight - 1.0) * (yb == TOUCHING).float()
            yb[yb == TOUCHING] = 1
            yb[yb == IGNORE] = -100
            yb, pw = yb.to(dev), pw.to(dev)
            pred = model(xb)
            loss = segmentation_loss(pred[:, :3], yb, w, cfg.dice_weight, pw if cfg.touching_weight > 1 else None)
            if has_distance:
                db = torch.from_numpy(np.stack(ds)).to(dev).float() / 255.0
                loss = loss + cfg.distance_weight * distance_loss(pred[:, 3], db, (yb >= 0).float())
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            lv = float(loss.detach())
            if not math.isfinite(lv):
                raise RuntimeError(f"segmenter training diverged at step {step} (loss {lv}); lower lr")
            ema = lv if ema is None else 0.95 * ema + 0.05 * lv
            if step % 10 == 0 or step == cfg.steps - 1:
                curve.append([step, round(ema, 5)])
                bar.set_postfix(loss=f"{ema:.4f}")
    bar.close()
    net.eval()
    config: dict[str, Any] = {
        "unet": unet_args, "classes": list(CLASSES),
        "normalisation": {"method": "percentile", "percentiles": list(cfg.percentiles)},
        "postprocess": cfg.postprocess.model_dump(),
        "inference": {"tile": tile, "overlap": cfg.overlap, "sw_batch_size": cfg.sw_batch_size, "mode": "gaussian",
                      "tta": cfg.tta, "rescale": cfg.rescale.model_dump() if cfg.rescale is not None else None},
        "training": {"datasets": data, "n_images": len(images), "patch": patch, "processes": ddp.world_size(),
                     "steps": cfg.steps, "batch_size": cfg.batch_size, "lr": cfg.lr, "class_weights": weights,
                     "dice_weight": cfg.dice_weight, "touching_weight": cfg.touching_weight,
                     "distance_weight": cfg.distance_weight, "warmup_steps": cfg.warmup_steps, "seed": cfg.seed,
                     "rescale_factors": None if factors is None else
                     [round(float(np.min(factors)), 3), round(float(np.median(factors)), 3),
                      round(float(np.max(factors)), 3)],
                     "device": str(dev),
                     "seconds": round(time.time() - t0, 1), "final_loss": curve[-1][1] if curve else None,
                     "loss_curve": curve, "config": cfg.model_dump(mode="json")},
    }
    seg = Segmenter(net, config, device=dev)
    n_with_objects = 0 if native is None else sum(bool(m.any()) for _, m in native)
    if native is not None and n_with_objects < MIN_SIZE_IMAGES:
        log.warning("rescale: %d training images with objects are too few for a size model (%d needed): the "
                    "diameter at prediction is the classical estimate", n_with_objects, MIN_SIZE_IMAGES)
    elif native is not None:
        config["size_model"] = seg.fit_size_model(native, cfg.rescale.size_images, np.random.default_rng(cfg.seed))
        log.info("size model on %d images: leave-one-out error of log diameter %.3f (alpha %g)",
                 config["size_model"]["n"], config["size_model"]["loo_rmse"], config["size_model"]["alpha"])
        seg = Segmenter(net, config, device=dev)
    if out is not None and ddp.is_main():  # the weights are the same in every process: written once
        seg.save(out)
    if distributed:
        ddp.barrier()  # no process returns before the model folder exists
    return seg


def load_segmenter_config(path: str | Path | None, base: dict | None = None) -> SegmenterConfig:
    """A :class:`SegmenterConfig` from a YAML/JSON file (None = defaults) over the keys of ``base``
    (e.g. a preset's ``segmenter`` section); one-line errors."""
    from ..config import deep_merge, load_yaml

    return validate(SegmenterConfig, deep_merge(base or {}, load_yaml(path) if path is not None else {}))
