"""Differentiable augmentation (DiffAugment; Zhao et al. 2020), 2D and 3D.

The discriminator sees real and generated samples through the same kind of random,
differentiable transformations, so its gradients reach the generator through them. On
single-channel microscopy images in [-1, 1] with extra channels (a grayscale mask):

- ``"color"``: brightness (+U(-0.5, 0.5)) and contrast (×U(0.5, 1.5) about the sample
  mean) of the image channels only — a mask's gray levels carry labels and stay as they are;
- ``"translation"``: every channel shifted by up to 1/8 of the size per axis, the
  uncovered border filled with -1 (dark background);
- ``"cutout"``: every channel set to -1 in one random box of half the size per axis.

Random numbers come from a CPU ``torch.Generator`` (seeded and checkpointed by the loop).
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

POLICIES = ("color", "translation", "cutout")


def diff_augment(x: torch.Tensor, policy: Sequence[str], generator: torch.Generator,
                 image_channels: int = 1) -> torch.Tensor:
    """Apply each transformation of ``policy`` (in the order of :data:`POLICIES`) to ``x``.

    Parameters
    ----------
    x : (B, C, *spatial) batch, the first ``image_channels`` channels the image
    policy : any of "color", "translation", "cutout"
    generator : CPU generator for the random parameters
    image_channels : channels that "color" changes

    >>> g = torch.Generator().manual_seed(0)
    >>> diff_augment(torch.zeros(2, 2, 8, 8), ["color", "translation", "cutout"], g).shape
    torch.Size([2, 2, 8, 8])
    """
    bad = [p for p in policy if p not in POLICIES]
    if bad:
        raise ValueError(f"DiffAugment policy '{bad[0]}': choose from {', '.join(POLICIES)}")
    b, nd = x.shape[0], x.dim() - 2
    spatial = x.shape[2:]
    view = (b, 1, *([1] * nd))
    if "color" in policy:
        shift = (torch.rand(b, generator=generator) - 0.5).to(x).reshape(view)
        factor = (torch.rand(b, generator=generator) + 0.5).to(x).reshape(view)
        img = x[:, :image_channels] + shift
        mean = img.mean(dim=tuple(range(1, x.dim())), keepdim=True)
        img = (img - mean) * factor + mean
        x = torch.cat([img, x[:, image_channels:]], 1)
    if "translation" in policy:
        limits = [max(1, s // 8) for s in spatial]
        shifts = [torch.randint(-m, m + 1, (b,), generator=generator) for m in limits]
        pad = []
        for m in reversed(limits):
            pad += [m, m]
        xp = F.pad(x, pad, value=-1.0)
        out = []
        for i in range(b):
            sl = tuple(slice(m - int(s[i]), m - int(s[i]) + n) for m, s, n in zip(limits, shifts, spatial))
            out.append(xp[(i, slice(None), *sl)])
        x = torch.stack(out)
    if "cutout" in policy:
        sizes = [max(1, s // 2) for s in spatial]
        keep = torch.ones((b, 1, *spatial), dtype=x.dtype)
        for i in range(b):
            lo = [int(torch.randint(0, s - c + 1, (1,), generator=generator)) for s, c in zip(spatial, sizes)]
            keep[(i, 0, *(slice(a, a + c) for a, c in zip(lo, sizes)))] = 0
        keep = keep.to(x.device)
        x = x * keep - (1 - keep)
    return x
