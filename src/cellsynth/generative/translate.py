"""Using a trained translator: masks → images (cGAN, CycleGAN) and images → masks (CycleGAN segmenter).

Any size, by tiles with crop margins and distance-weighted blending
(:func:`cellsynth.tiling.tiled_generate`; Eschweiler et al. 2021: d_overlap = d_crop =
(30, 30, 15) voxels in XYZ, i.e. (15, 30, 30) ZYX), each capped at a fifth of the tile so small
tiles keep a core. Inputs are encoded exactly as in training (the model folder's
``mask_encoding``, ``percentiles``, positional α/β).
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .. import tiling
from ..errors import InputError
from ..modelfolder import read_model_config
from .domains import encode_mask, normalise_image, specimen_from_labels

SEED001_MARGIN = {2: [30, 30], 3: [15, 30, 30]}
# images up to this many pixels/voxels are generated in one pass by default (BatchNorm at inference
# makes this the same computation as tiling, without the crop/overlap overhead); larger ones in tiles
SINGLE_PASS = 64 * 256 * 256
DEFAULT_TILE = {2: [512, 512], 3: [64, 256, 256]}
# above this many voxels the specimen closing and positional map run on a coarser grid
# (their Euclidean distance transforms cost ~3 CPU-s on 64×256×256, a third of the cGAN's pass)
EXACT_POSITIONAL = 2 ** 21


def load_translator(folder: str | Path, device: str = "cpu", kinds: Sequence[str] = ("cgan", "cyclegan")):
    """Load a cGAN or CycleGAN model folder (its kind read from ``config.json``); others are one-line errors."""
    from .cgan import ConditionalGAN
    from .cyclegan import CycleGAN
    classes = {"cgan": ConditionalGAN, "cyclegan": CycleGAN}
    formats = [classes[k].format for k in kinds]
    what = f"{' or '.join(kinds)} model '{folder}'"
    cfg = read_model_config(folder, formats, 1, what)
    cls = next(classes[k] for k in kinds if classes[k].format == cfg["format"])
    return cls.from_folder(folder, device=device, what=what)


def tiling_for(model, shape: Sequence[int], tile: Sequence[int] | None = None,
               overlap: Sequence[int] | None = None, crop: Sequence[int] | None = None):
    """Tile, overlap and crop per axis. Default tile: the whole image up to :data:`SINGLE_PASS` voxels, else
    :data:`DEFAULT_TILE`; default overlap and crop: Eschweiler et al. 2021's, capped at a fifth of the tile."""
    nd = len(shape)
    if tile is None:
        tile = list(shape) if np.prod(shape) <= SINGLE_PASS else DEFAULT_TILE[nd]
    tile = [int(t) for t in tile]
    if len(tile) != nd:
        raise InputError(f"tile {tile} needs {nd} entries for a {nd}D image")
    tile = [-(-t // d) * d for t, d in zip(tile, model.divisor)]  # round up to the divisor
    cap = [max(t // 5, 0) for t in tile]
    overlap = list(overlap) if overlap is not None else [min(m, c) for m, c in zip(SEED001_MARGIN[nd], cap)]
    crop = list(crop) if crop is not None else [min(m, c) for m, c in zip(SEED001_MARGIN[nd], cap)]
    return tile, overlap, crop


def positional_factor(size: int, alpha: float, beta: float, radius: float) -> int:
    """Grid coarsening for the specimen closing and positional map at inference: 1 (exact) up to
    :data:`EXACT_POSITIONAL` voxels, else 2 where min(α, β) ≥ 50 and the closing radius ≥ 4 px.

    At f = 2 and α = β = 100 the map moves by ≤ 0.09 (mean 0.006) and the shipped cGAN's image by
    ≤ 0.024 (NRMSE 1 %) on 150 random balls in 64×256×256 (``benchmarks/bench_gan.py``); f = 4
    was 3× worse for 0.3 CPU-s less, so it is not used.

    >>> positional_factor(64 * 256 * 256, 100.0, 100.0, 8.0), positional_factor(64 * 256 * 256, 10.0, 100.0, 8.0)
    (2, 1)
    """
    if size <= EXACT_POSITIONAL or min(alpha, beta) < 50 or radius < 4:
        return 1
    return 2


def _check_dims(model, array: np.ndarray, what: str) -> None:
    if array.ndim != model.spatial_dims:
        raise InputError(f"{what} is {array.ndim}D (shape {array.shape}) but the model is {model.spatial_dims}D")


def render_labels(model, labels: np.ndarray, foreground: np.ndarray | None = None,
                  classes: dict | None = None, alpha: float | None = None, beta: float | None = None,
                  tile: Sequence[int] | None = None, overlap: Sequence[int] | None = None,
                  crop: Sequence[int] | None = None, progress: bool = False,
                  factor: int | None = None) -> np.ndarray:
    """An image (float32 in [0, 1]) from instance ``labels`` with a loaded cGAN or CycleGAN.

    ``foreground``: the specimen (a Scene's foreground; default: the objects closed by the
    model's ``specimen_radius``) for the cGAN's positional map, with α (default: training α;
    the quality knob of Eschweiler et al. 2021) and β. ``factor``: grid coarsening of the closing
    and the map (default :func:`positional_factor`; 1 = exact, as in training).
    """
    labels = np.asarray(labels)
    _check_dims(model, labels, "mask")
    if not np.issubdtype(labels.dtype, np.integer):
        raise InputError(f"mask must hold integer labels, got {labels.dtype}")
    m = model.meta
    x = encode_mask(labels, m["mask_encoding"], classes, m.get("class_names"), m.get("boundary_thickness", 1))
    if getattr(model, "positional", False):
        from ..simulate.encode import positional_map
        a = alpha if alpha is not None else m["alpha"]
        b = beta if beta is not None else m["beta"]
        radius = m.get("specimen_radius", 8.0)
        f = positional_factor(labels.size, a, b, radius) if factor is None else factor
        fg = foreground if foreground is not None else specimen_from_labels(labels, radius, f)
        pos = positional_map(np.asarray(fg, bool), a, b, factor=f)
        x = np.concatenate([x, pos[None]], 0)
    net = model.generate if hasattr(model, "generate") else model.G_mask2img
    t, o, c = tiling_for(model, labels.shape, tile, overlap, crop)
    dev = next(model.parameters()).device
    from ..allocator import retained_heap
    with retained_heap(dev.type == "cpu"):  # a volume's activations: reuse freed memory, no page faults
        y = tiling.tiled_generate(x, net, t, o, c, model.divisor, device=dev, progress=progress)
    return np.clip((y[0] + 1) / 2, 0, 1).astype(np.float32)


def segment_image(model, image: np.ndarray, tile: Sequence[int] | None = None,
                  overlap: Sequence[int] | None = None, crop: Sequence[int] | None = None,
                  progress: bool = False) -> np.ndarray:
    """Per-class boolean masks (C, *spatial) of a real ``image`` with a CycleGAN's image→mask generator."""
    image = np.asarray(image)
    _check_dims(model, image, "image")
    if not np.all(np.isfinite(image)):
        raise InputError("image contains NaN or infinite values")
    x = normalise_image(image, model.meta["percentiles"])[None]
    t, o, c = tiling_for(model, image.shape, tile, overlap, crop)
    dev = next(model.parameters()).device
    y = tiling.tiled_generate(x, model.G_img2mask, t, o, c, model.divisor, device=dev, progress=progress)
    return y > 0
