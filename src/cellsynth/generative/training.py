"""Pieces every trainer shares: EMA of weights, optimiser state as tensors, mixed-precision context.

Optimiser state is stored as safetensors (no pickles) so checkpoints load without
running code, and a resumed run continues bit-identically.
"""
from __future__ import annotations

import torch

from ..errors import ConfigError


class EMA:
    """Exponential moving average of a network's weights: θ_ema ← d·θ_ema + (1 − d)·θ (with warm-up).

    >>> net = torch.nn.Linear(1, 1)
    >>> ema = EMA(net, 0.9)
    >>> ema.update(net, step=1)
    >>> sorted(ema.shadow)
    ['bias', 'weight']
    """

    def __init__(self, net: torch.nn.Module, decay: float):
        self.decay = decay
        self.shadow = {k: v.detach().clone().float() for k, v in net.state_dict().items()}

    @torch.no_grad()
    def update(self, net: torch.nn.Module, step: int) -> None:
        # warm-up d_t = min(d, (1 + t)/(10 + t)): early averages are not dominated by the random init
        d = min(self.decay, (1 + step) / (10 + step))
        for k, v in net.state_dict().items():
            if v.dtype.is_floating_point:
                self.shadow[k].mul_(d).add_(v.detach().float(), alpha=1 - d)
            else:
                self.shadow[k].copy_(v)


def optimizer_to_tensors(opt: torch.optim.Optimizer, prefix: str = "opt.") -> tuple[dict[str, torch.Tensor], list]:
    """Optimiser state as ``{prefix<param index>.<key>: tensor}`` plus its (JSON-safe) param groups."""
    sd = opt.state_dict()
    tensors = {}
    for idx, st in sd["state"].items():
        for key, val in st.items():
            tensors[f"{prefix}{idx}.{key}"] = torch.as_tensor(val)
    return tensors, sd["param_groups"]


def optimizer_from_tensors(opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], groups: list,
                           prefix: str = "opt.") -> None:
    """Inverse of :func:`optimizer_to_tensors` (moments move to the parameters' device)."""
    state: dict = {}
    for name, val in tensors.items():
        if name.startswith(prefix):
            idx, key = name[len(prefix):].split(".", 1)
            state.setdefault(int(idx), {})[key] = val
    opt.load_state_dict({"state": state, "param_groups": groups})


def autocast(device: torch.device, enabled: bool):
    """Mixed precision on CUDA (bf16 where supported, else fp16); a no-op context on CPU."""
    if device.type == "cuda" and enabled:
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.autocast("cuda", dtype=dtype)
    return torch.autocast("cpu", enabled=False)


def build_seeded(cls, seed: int, what: str, patch=None, **args):
    """``cls(**args)`` with initial weights drawn from ``seed`` (the global RNG untouched).

    A constructor's ``ValueError`` becomes one :class:`ConfigError` line naming ``what``; with ``patch``,
    a patch size that is not a multiple of the network's ``divisor`` on every axis is refused too.
    """
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            net = cls(**args)
    except ValueError as e:
        raise ConfigError(f"{what} settings: {e}") from None
    if patch is not None and any(int(p) % d for p, d in zip(patch, net.divisor)):
        raise ConfigError(f"patch_size {list(patch)} must be a multiple of the {what} divisor {net.divisor} "
                          "on every axis")
    return net
