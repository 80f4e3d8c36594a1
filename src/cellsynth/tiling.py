"""Random training patches, and overlapped tiled inference with smooth blending (2D and 3D).

Training: :func:`random_patch` crops a random (possibly anisotropic) patch,
reflect-padding images smaller than the patch.

Inference: :func:`pad_for_tiles` reflect-pads an image so that every tile is a
full tile whose size is a multiple of the network divisor; :func:`tiled_predict`
runs a predictor over overlapping tiles and blends the outputs with a Gaussian
weight (MONAI ``sliding_window_inference``, ``mode="gaussian"``). The diffusion
sampler calls it at *every* denoising step with a closure over the timestep, on
one global noise field, so tiles never drift apart and no seams appear.
"""
from __future__ import annotations

import math
from typing import Callable, Optional, Sequence

import numpy as np
import torch

# Whole images up to this many pixels/voxels are processed as one tile by default; larger ones
# in balanced tiles of about DEFAULT_TILE (on CPU, ~256² tiles run faster per pixel than one
# huge tile: benchmarks/RESULTS.md).
MAX_SINGLE_TILE = 512 * 512
DEFAULT_TILE = {2: [256, 256], 3: [64, 128, 128]}


def random_patch(image: np.ndarray, patch_size: Sequence[int], rng: np.random.Generator) -> np.ndarray:
    """A random crop of ``patch_size`` ((Z)YX) from ``image``; axes shorter than the patch are reflect-padded."""
    image = pad_to_at_least(image, patch_size)
    starts = [int(rng.integers(0, s - p + 1)) for s, p in zip(image.shape, patch_size)]
    return image[tuple(slice(a, a + p) for a, p in zip(starts, patch_size))]


def pad_to_at_least(image: np.ndarray, size: Sequence[int]) -> np.ndarray:
    """Reflect-pad (symmetric, repeated as needed) every axis shorter than ``size``."""
    pads = [(0, max(0, int(p) - s)) for s, p in zip(image.shape, size)]
    if any(b for _, b in pads):
        image = np.pad(image, pads, mode="symmetric")
    return image


def random_flip_rot(patch: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Random flips of Y and X and a random rot90 in the YX plane (square YX patches only)."""
    if rng.random() < 0.5:
        patch = patch[..., ::-1, :]
    if rng.random() < 0.5:
        patch = patch[..., ::-1]
    if patch.shape[-1] == patch.shape[-2]:
        patch = np.rot90(patch, k=int(rng.integers(0, 4)), axes=(-2, -1))
    return np.ascontiguousarray(patch)


def _round_up(v: float, d: int) -> int:
    return int(math.ceil(v / d) * d)


def auto_tile(shape: Sequence[int], divisor: Sequence[int], tile: Optional[Sequence[int]] = None,
              overlap: float = 0.125) -> list[int]:
    """The tile size actually used for an image of ``shape``.

    ``tile`` given: rounded up to a multiple of the network ``divisor`` per axis and capped at
    the (divisor-rounded) image size, so images smaller than a tile run as one padded tile.
    ``tile=None``: the whole image when it has at most :data:`MAX_SINGLE_TILE` pixels; otherwise,
    per axis, the fewest tiles of at most :data:`DEFAULT_TILE` that cover it with the given
    ``overlap``, made equal in size (n·tile − (n−1)·overlap ≈ size) so little work is wasted.
    """
    nd = len(shape)
    if tile is not None and len(tile) != nd:
        raise ValueError(f"tile {list(tile)} needs one entry per image axis of shape {tuple(shape)}")
    if tile is None and math.prod(shape) <= MAX_SINGLE_TILE:
        tile = list(shape)
    if tile is not None:
        return [min(_round_up(int(t), d), _round_up(s, d)) for s, t, d in zip(shape, tile, divisor)]
    out = []
    for s, t, d in zip(shape, DEFAULT_TILE[nd], divisor):
        if s <= t:
            out.append(_round_up(s, d))
            continue
        o = overlap * t
        n = math.ceil((s - o) / (t - o))
        out.append(min(_round_up((s + (n - 1) * o) / n, d), _round_up(t, d)))
    return out


def pad_for_tiles(image: np.ndarray, tile: Sequence[int]) -> tuple[np.ndarray, tuple[slice, ...]]:
    """Reflect-pad ``image`` so every axis is at least ``tile``; return it and the crop back to the original."""
    padded = pad_to_at_least(image, tile)
    crop = tuple(slice(0, s) for s in image.shape)
    return padded, crop


def tiled_predict(x: torch.Tensor, predictor: Callable[[torch.Tensor], torch.Tensor], tile: Sequence[int],
                  overlap: float = 0.125, batch_size: int = 4) -> torch.Tensor:
    """Apply ``predictor`` to overlapping tiles of ``x`` (B, C, *spatial) and blend them.

    When ``x`` is one tile the predictor runs once on the whole input (no blending, so
    tiled and untiled results agree exactly). Otherwise MONAI's sliding window with a
    Gaussian importance map (σ = 1/8 of the tile) weights each tile's prediction and
    normalises by the summed weights: a spatially constant prediction stays constant.
    ``x`` must be at least ``tile`` on every axis (see :func:`pad_for_tiles`).
    """
    spatial = list(x.shape[2:])
    if any(s < t for s, t in zip(spatial, tile)):
        raise ValueError(f"input {tuple(spatial)} smaller than tile {tuple(tile)}: pad it first (pad_for_tiles)")
    if spatial == list(tile):
        return predictor(x)
    from monai.inferers import sliding_window_inference
    return sliding_window_inference(x, roi_size=list(tile), sw_batch_size=batch_size, predictor=predictor,
                                    overlap=overlap, mode="gaussian", sigma_scale=0.125,
                                    padding_mode="reflect", progress=False)
