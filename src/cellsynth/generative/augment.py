"""Adaptive discriminator augmentation (ADA; Karras et al. 2020, as used by Eschweiler et al. 2021), 2D and 3D.

The discriminator sees real and generated images through the same random
augmentations, applied with probability ``p`` each. ``p`` adapts to the
overfitting heuristic r = E[sign(D(real))]: every ``interval`` steps
p ← p + δ·sign(r − target), clamped to [0, 1) (Eschweiler et al. 2021: target 0.6, δ = 0.05,
every epoch). The augmentations are those of Eschweiler et al. 2021, on images in [-1, 1]
(computed on u = (x + 1)/2 ∈ [0, 1]):

- intensity scaling u·s, s ~ U(0.6, 1.2);
- additive Gaussian noise N(0, 0.1) on u;
- voxel shuffling inside a randomly placed 25³ (2D: 25²) region;
- inpainting: a randomly placed 15³ (15²) region set to the image mean;
- linear intensity decline along a random axis and direction, from 1 to U(0.5, 1).

Every random number is drawn for every sample whether or not the augmentation
fires, so the number of draws does not depend on ``p`` (a resumed run stays
bit-identical) and two calls with equal generator states transform two inputs
identically.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch

AUGMENTATIONS = ("scale", "noise", "shuffle", "inpaint", "decline")


def _region(shape: Sequence[int], size: int, g: torch.Generator) -> tuple[slice, ...]:
    out = []
    for s in shape:
        w = min(size, s)
        a = int(torch.randint(0, s - w + 1, (1,), generator=g))
        out.append(slice(a, a + w))
    return tuple(out)


def augment(x: torch.Tensor, p: float, generator: torch.Generator, channels: Sequence[int] = (0,),
            shuffle_size: int = 25, inpaint_size: int = 15, scale_range: tuple[float, float] = (0.6, 1.2),
            noise_std: float = 0.1, decline_range: tuple[float, float] = (0.5, 1.0)) -> torch.Tensor:
    """Augment the ``channels`` of ``x`` (B, C, *spatial), values in [-1, 1]; other channels pass unchanged.

    Parameters
    ----------
    x : real or generated batch (image channels plus e.g. a positional-map channel).
    p : probability of each augmentation, per sample.
    generator : CPU ``torch.Generator``; the same state gives the same transformation.
    channels : the image channels to augment (conditioning channels stay untouched).

    >>> g = torch.Generator().manual_seed(0)
    >>> augment(torch.zeros(2, 1, 8, 8, 8), 0.5, g).shape
    torch.Size([2, 1, 8, 8, 8])
    """
    if not 0 <= p <= 1:
        raise ValueError(f"augmentation probability p = {p} must be in [0, 1]")
    out = x.clone()
    nd = x.dim() - 2
    spatial = list(x.shape[2:])
    ch = list(channels)
    for b in range(x.shape[0]):
        fire = torch.rand(len(AUGMENTATIONS), generator=generator) < p
        scale = scale_range[0] + (scale_range[1] - scale_range[0]) * float(torch.rand(1, generator=generator))
        noise = torch.randn([len(ch), *spatial], generator=generator) * noise_std
        sh_reg = _region(spatial, shuffle_size, generator)
        n_sh = math.prod(r.stop - r.start for r in sh_reg)
        perm = torch.randperm(n_sh, generator=generator)
        in_reg = _region(spatial, inpaint_size, generator)
        axis = int(torch.randint(0, nd, (1,), generator=generator))
        flip = bool(torch.rand(1, generator=generator) < 0.5)
        end = decline_range[0] + (decline_range[1] - decline_range[0]) * float(torch.rand(1, generator=generator))
        if not bool(fire.any()):
            continue
        u = (out[b, ch] + 1) / 2  # (len(ch), *spatial)
        if fire[0]:
            u = u * scale
        if fire[1]:
            u = u + noise.to(u.device, u.dtype)
        if fire[2]:
            reg = u[(slice(None), *sh_reg)]
            flat = reg.reshape(len(ch), -1)[:, perm.to(u.device)]
            u = u.clone()
            u[(slice(None), *sh_reg)] = flat.reshape(reg.shape)
        if fire[3]:
            u = u.clone()
            u[(slice(None), *in_reg)] = u.mean()
        if fire[4]:
            n = spatial[axis]
            ramp = torch.linspace(1.0, end, n, device=u.device, dtype=u.dtype)
            if flip:
                ramp = ramp.flip(0)
            view = [1] * (nd + 1)
            view[axis + 1] = n
            u = u * ramp.reshape(view)
        out[b, ch] = u * 2 - 1
    return out




class ADA:
    """The adaptive augmentation probability p (Eschweiler et al. 2021: target 0.6, δ = 0.05, every epoch).

    Call :meth:`accumulate` with the discriminator's raw outputs on real images after
    every D step and :meth:`update` once per step; every ``interval`` steps p moves
    by ±``delta`` towards keeping r = E[sign(D(real) − centre)] at ``target`` and is
    clamped to [0, ``p_max``] with ``p_max`` < 1.

    >>> ada = ADA(target=0.6, delta=0.05, interval=1)
    >>> ada.accumulate(torch.ones(4), centre=0.0)
    >>> ada.update(step=1)
    0.05
    """

    def __init__(self, target: float = 0.6, delta: float = 0.05, interval: int = 1, p: float = 0.0,
                 p_max: float = 0.95):
        if not 0 <= p_max < 1:
            raise ValueError(f"p_max = {p_max} must be in [0, 1)")
        self.target, self.delta, self.interval, self.p_max = float(target), float(delta), int(interval), float(p_max)
        self.p = float(p)
        self.sign_sum, self.count = 0.0, 0
        self.last_r = float("nan")

    def accumulate(self, d_real: torch.Tensor, centre: float = 0.0) -> None:
        """Add the signs of the discriminator's outputs on real images (``centre`` = its decision value)."""
        s = torch.sign(d_real.detach().float() - centre)
        self.sign_sum += float(s.sum())
        self.count += s.numel()

    def update(self, step: int) -> float:
        """Every ``interval`` steps: p ← clamp(p + δ·sign(r − target), 0, p_max); returns p."""
        if step % self.interval == 0 and self.count:
            r = self.sign_sum / self.count
            self.last_r = r
            self.p = float(min(max(self.p + self.delta * float(math.copysign(1.0, r - self.target)
                                                                if r != self.target else 0.0), 0.0), self.p_max))
            self.sign_sum, self.count = 0.0, 0
        return self.p

    def state_dict(self) -> dict:
        return {"p": self.p, "sign_sum": self.sign_sum, "count": self.count}

    def load_state_dict(self, state: dict) -> None:
        self.p, self.sign_sum, self.count = float(state["p"]), float(state["sign_sum"]), int(state["count"])
