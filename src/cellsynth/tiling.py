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
from collections.abc import Callable, Sequence

import numpy as np
import torch

# Whole images up to this many pixels/voxels are processed as one tile by default; larger ones
# in balanced tiles of about DEFAULT_TILE (on CPU, ~256² tiles run faster per pixel than one
# huge tile: benchmarks/RESULTS.md).
MAX_SINGLE_TILE = 512 * 512
DEFAULT_TILE = {2: [256, 256], 3: [64, 128, 128]}


def random_patch(image: np.ndarray, patch_size: Sequence[int], rng: np.random.Generator) -> np.ndarray:
    """A random crop of ``patch_size`` ((Z)YX) from ``image``; axes shorter than the patch are reflect-padded."""
    return random_patches([image], patch_size, rng)[0]


def random_patches(arrays: Sequence[np.ndarray], patch_size: Sequence[int],
                   rng: np.random.Generator) -> list[np.ndarray]:
    """The same random window of ``patch_size`` (anisotropic allowed) from arrays of one shape.

    For an image with its mask or conditioning maps; axes shorter than the patch are
    reflect-padded first (labels are padded by mirroring too, never interpolated).

    >>> a = np.arange(16).reshape(4, 4)
    >>> x, y = random_patches([a, a * 10], (2, 3), np.random.default_rng(0))
    >>> bool((y == x * 10).all()), x.shape
    (True, (2, 3))
    """
    shape = arrays[0].shape
    if len(patch_size) != len(shape):
        raise ValueError(f"patch size {list(patch_size)} needs one entry per axis of shape {tuple(shape)}")
    if any(a.shape != shape for a in arrays):
        raise ValueError(f"arrays of different shapes {[a.shape for a in arrays]}")
    arrays = [pad_to_at_least(a, patch_size) for a in arrays]
    starts = [int(rng.integers(0, s - p + 1)) for s, p in zip(arrays[0].shape, patch_size)]
    window = tuple(slice(a, a + p) for a, p in zip(starts, patch_size))
    return [a[window] for a in arrays]


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


def auto_tile(shape: Sequence[int], divisor: Sequence[int], tile: Sequence[int] | None = None,
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


def _ramp(n: int, overlap: int) -> np.ndarray:
    """1-D blending weight of a tile core of ``n`` px: rises linearly over ``overlap`` px at each end."""
    i = np.arange(n, dtype=np.float64)
    d = np.minimum(i + 0.5, n - i - 0.5)  # distance to the core's nearer edge
    return np.clip(d / max(overlap, 1), 1e-3, 1.0)


def _starts(size: int, core: int, step: int) -> list[int]:
    if size <= core:
        return [0]
    starts = list(range(0, size - core, step))
    return starts + [size - core]


def tiled_generate(x: np.ndarray, predictor: Callable[[torch.Tensor], torch.Tensor], tile: Sequence[int],
                   overlap: Sequence[int], crop: Sequence[int], divisor: Sequence[int],
                   device: torch.device | str = "cpu", progress: bool = False) -> np.ndarray:
    """Full-size generation by tiles with crop margins and distance-weighted blending (Eschweiler et al. 2021).

    Each tile of ``tile`` voxels ((Z)YX) is predicted, its outer ``crop`` margin discarded
    (border artefacts), and the remaining cores, overlapping by ``overlap`` voxels, are
    averaged with weights that fall linearly towards each core's edge (a concentric weight
    map, product over axes). The image is reflect-padded by ``crop`` so every output voxel
    comes from a core. An image that fits in one tile is predicted in one pass, padded only
    to the network ``divisor``: then tiled and untiled generation are the same computation.

    Parameters
    ----------
    x : (C, *spatial) float array (the network input: mask encoding, positional map, ...).
    predictor : maps a (1, C, *tile) tensor to (1, C_out, *tile).
    tile, overlap, crop, divisor : per spatial axis; ``tile`` must be a multiple of ``divisor``
        and larger than 2·crop + overlap.

    Returns
    -------
    (C_out, *spatial) float32 array.

    >>> import torch
    >>> y = tiled_generate(np.ones((1, 40, 40), np.float32), lambda t: t * 2, (16, 16), (4, 4), (2, 2), (4, 4))
    >>> y.shape, float(y.min()), float(y.max())
    ((1, 40, 40), 2.0, 2.0)
    """
    spatial = list(x.shape[1:])
    nd = len(spatial)
    tile, overlap, crop, divisor = (list(map(int, v)) for v in (tile, overlap, crop, divisor))
    if not len(tile) == len(overlap) == len(crop) == len(divisor) == nd:
        raise ValueError(f"tile {tile}, overlap {overlap}, crop {crop} and divisor {divisor} need {nd} entries")
    if any(t % d for t, d in zip(tile, divisor)):
        raise ValueError(f"tile {tile} must be a multiple of the network divisor {divisor}")
    if any(t - 2 * c <= o for t, c, o in zip(tile, crop, overlap)):
        raise ValueError(f"tile {tile} must exceed 2·crop {crop} + overlap {overlap} on every axis")
    dev = torch.device(device)

    def run(a: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return predictor(torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))[None].to(dev))[0] \
                .float().cpu().numpy()

    if all(s <= t for s, t in zip(spatial, tile)):
        target = [_round_up(s, d) for s, d in zip(spatial, divisor)]
        padded = np.pad(x, [(0, 0)] + [(0, t - s) for s, t in zip(spatial, target)], mode="symmetric")
        return run(padded)[(slice(None), *[slice(0, s) for s in spatial])].astype(np.float32)
    core = [t - 2 * c for t, c in zip(tile, crop)]
    # pad by the crop margin on both sides, and at the end up to at least one core
    pads = [(c, c + max(0, k - s)) for s, c, k in zip(spatial, crop, core)]
    xp = np.pad(x, [(0, 0)] + pads, mode="symmetric")
    inner = [max(s, k) for s, k in zip(spatial, core)]
    starts = [_starts(n, k, k - o) for n, k, o in zip(inner, core, overlap)]
    weight = np.ones(core, np.float64)
    for ax, (k, o) in enumerate(zip(core, overlap)):
        view = [1] * nd
        view[ax] = k
        weight = weight * _ramp(k, o).reshape(view)
    acc, wsum = None, np.zeros(inner, np.float64)
    import itertools

    from tqdm.auto import tqdm
    grid = list(itertools.product(*starts))
    for st in tqdm(grid, desc="tiles", disable=not progress, leave=False):
        src = tuple(slice(a, a + t) for a, t in zip(st, tile))
        y = run(xp[(slice(None), *src)])
        y = y[(slice(None), *[slice(c, c + k) for c, k in zip(crop, core)])]
        if acc is None:
            acc = np.zeros((y.shape[0], *inner), np.float64)
        dst = tuple(slice(a, a + k) for a, k in zip(st, core))
        acc[(slice(None), *dst)] += y * weight
        wsum[dst] += weight
    out = acc / wsum
    return out[(slice(None), *[slice(0, s) for s in spatial])].astype(np.float32)
