"""ResNet generator for image-to-image translation (CycleGAN, Eschweiler et al. 2019; Rosa et al.), 2D and 3D.

Johnson et al. 2016 / Zhu et al. 2017 layout: a 7-wide input convolution, ``n_down``
strided downsampling convolutions, ``n_blocks`` residual blocks, ``n_down``
pixel-shuffle upsamplings (no checkerboard of transposed convolutions), a 7-wide
output convolution and tanh. Reflection padding is replaced by zero padding so
the same layers serve 2D and 3D; the normalisation is chosen by ``norm``
(default ``"batch"``: fixed statistics at inference, so tiles do not seam).
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from .layers import conv_class, norm_layer, stride_product
from .unet import Up


class _Residual(nn.Module):
    def __init__(self, spatial_dims: int, ch: int, norm: str):
        super().__init__()
        c = conv_class(spatial_dims)
        self.body = nn.Sequential(c(ch, ch, 3, padding=1), norm_layer(norm, spatial_dims, ch), nn.ReLU(True),
                                  c(ch, ch, 3, padding=1), norm_layer(norm, spatial_dims, ch))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ResnetGenerator(nn.Module):
    """Encoder – residual blocks – decoder, for ``spatial_dims`` 2 or 3.

    Parameters
    ----------
    spatial_dims : 2 or 3
    in_channels, out_channels : int
    channels : feature channels of the first layer (doubled at every downsampling)
    n_down : number of downsamplings (each by ``strides[i]``, default 2 per axis)
    n_blocks : residual blocks at the lowest resolution (Eschweiler et al. 2019: 9 at 256², 6 at 128²)
    norm : "batch", "none", "instance" or "group" (:mod:`cellsynth.nn.layers`)
    strides : optional per-downsampling factors per axis, e.g. ``[[1, 2, 2], [2, 2, 2]]``
    final : "tanh" (images in [-1, 1]) or "none"

    >>> g = ResnetGenerator(spatial_dims=3, channels=4, n_blocks=1)
    >>> tuple(g(torch.zeros(1, 1, 8, 8, 8)).shape)
    (1, 1, 8, 8, 8)
    """

    def __init__(self, spatial_dims: int = 2, in_channels: int = 1, out_channels: int = 1, channels: int = 32,
                 n_down: int = 2, n_blocks: int = 6, norm: str = "batch",
                 strides: Sequence[Sequence[int]] | None = None, final: str = "tanh"):
        super().__init__()
        c = conv_class(spatial_dims)
        strides = [list(s) for s in strides] if strides is not None else [[2] * spatial_dims] * n_down
        if len(strides) != n_down or any(len(s) != spatial_dims for s in strides):
            raise ValueError(f"strides {strides} must give {n_down} downsamplings of {spatial_dims} axes each")
        if final not in ("tanh", "none"):
            raise ValueError(f"final '{final}': choose tanh or none")
        self.spatial_dims, self.strides = spatial_dims, strides
        layers = [c(in_channels, channels, 7, padding=3), norm_layer(norm, spatial_dims, channels), nn.ReLU(True)]
        ch = channels
        for s in strides:
            layers += [c(ch, 2 * ch, [max(3, si + 1) if si > 1 else 3 for si in s], stride=s, padding=1),
                       norm_layer(norm, spatial_dims, 2 * ch), nn.ReLU(True)]
            ch *= 2
        layers += [_Residual(spatial_dims, ch, norm) for _ in range(n_blocks)]
        for s in reversed(strides):
            layers += [Up(spatial_dims, ch, ch // 2, s), norm_layer(norm, spatial_dims, ch // 2), nn.ReLU(True)]
            ch //= 2
        layers += [c(ch, out_channels, 7, padding=3)]
        if final == "tanh":
            layers.append(nn.Tanh())
        self.net = nn.Sequential(*layers)

    @property
    def divisor(self) -> list[int]:
        """Input sizes must be multiples of this per axis."""
        return stride_product(self.strides, self.spatial_dims)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)
