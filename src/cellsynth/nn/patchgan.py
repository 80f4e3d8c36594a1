"""PatchGAN discriminator (Isola et al. 2017), 2D and 3D: one real/fake score per receptive field."""
from __future__ import annotations

import torch
from torch import nn

from .layers import conv_class, norm_layer


class PatchDiscriminator(nn.Module):
    """``n_layers`` strided 4-wide convolutions (LeakyReLU 0.2), then a 1-channel score map.

    Parameters
    ----------
    spatial_dims : 2 or 3
    in_channels : image channels plus any conditioning channels (e.g. the positional map)
    channels : features of the first layer, doubled per layer up to 8×
    n_layers : strided layers (3 → 70-px receptive field in 2D)
    norm : "instance" (default; the discriminator never runs tiled), "batch", "group" or "none"

    Outputs raw scores (logits); the loss decides how to read them (:func:`cellsynth.generative.adversarial.gan_loss`).

    >>> d = PatchDiscriminator(spatial_dims=2, channels=4, n_layers=2)
    >>> d(torch.zeros(2, 1, 32, 32)).shape[:2]
    torch.Size([2, 1])
    """

    def __init__(self, spatial_dims: int = 2, in_channels: int = 1, channels: int = 32, n_layers: int = 3,
                 norm: str = "instance"):
        super().__init__()
        c = conv_class(spatial_dims)
        layers = [c(in_channels, channels, 4, stride=2, padding=1), nn.LeakyReLU(0.2, True)]
        ch = channels
        for i in range(1, n_layers + 1):
            nxt = channels * min(2 ** i, 8)
            stride = 2 if i < n_layers else 1
            layers += [c(ch, nxt, 4, stride=stride, padding=1), norm_layer(norm, spatial_dims, nxt),
                       nn.LeakyReLU(0.2, True)]
            ch = nxt
        layers.append(c(ch, 1, 4, stride=1, padding=1))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)
