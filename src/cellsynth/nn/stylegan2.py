"""StyleGAN2 (Karras et al. 2020) that draws an image and its grayscale instance mask together
(Lesmes-Leon et al. 2025, Fig. 1), 2D and 3D from one implementation (``spatial_dims``).

- :class:`MappingNetwork`: z (and an optional class embedding) -> w by equalised-lr MLP.
- :class:`ModulatedConv`: the one modulated / demodulated convolution. Style s = A(w)
  scales the input channels of the weight, w'_{oik} = s_i·w_{oik}; demodulation divides
  each output filter by sqrt(Σ_{ik} w'^2 + ε). Computed as input scaling, one shared-weight
  convolution and output scaling (equal to the per-sample weights, and fast on CPUs).
- :class:`StyledConv`: modulated conv + per-pixel noise (learned strength) + bias + lReLU.
- :class:`Generator`: learned constant -> synthesis blocks (upsample ×2, two styled convs)
  with skip outputs for the image (summed, upsampled: StyleGAN2's "skip" generator) and,
  after Lesmes-Leon et al. 2025, a mask branch: a modulated conv takes a fraction of each
  block's features, concatenated with the upsampled mask features of the block before
  and merged by a convolution; a last 1×1 conv gives the grayscale mask channel.
- :class:`Discriminator`: residual, minibatch standard deviation, on image and mask
  concatenated; optional class conditioning by projection (Miyato & Koyama 2018).

Equalised learning rate everywhere: weights are N(0, 1) and scaled at run time by
1/sqrt(fan_in). The outputs are linear (values in the data's [-1, 1] scale).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

_SQRT2 = math.sqrt(2.0)


def _check_dims(spatial_dims: int) -> int:
    if spatial_dims not in (2, 3):
        raise ValueError(f"spatial_dims must be 2 or 3, got {spatial_dims}")
    return spatial_dims


def _conv_fn(spatial_dims: int):
    return (F.conv2d, F.conv3d)[spatial_dims - 2]


def _upsample(x: torch.Tensor) -> torch.Tensor:
    mode = "bilinear" if x.dim() == 4 else "trilinear"
    return F.interpolate(x, scale_factor=2, mode=mode, align_corners=False)


def _downsample(x: torch.Tensor) -> torch.Tensor:
    return (F.avg_pool2d if x.dim() == 4 else F.avg_pool3d)(x, 2)


def channels_at(resolution: int, channel_base: int, channel_max: int) -> int:
    """Feature maps at a resolution: ``min(channel_base // resolution, channel_max)``, at least 1."""
    return max(1, min(channel_base // resolution, channel_max))


class EqualLinear(nn.Module):
    """Linear layer with equalised learning rate (weight N(0, 1/lr_mul²)·lr_mul/sqrt(fan_in))."""

    def __init__(self, cin: int, cout: int, bias_init: float = 0.0, lr_mul: float = 1.0, activate: bool = False):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(cout, cin) / lr_mul)
        self.bias = nn.Parameter(torch.full((cout,), float(bias_init) / lr_mul))
        self.scale, self.lr_mul, self.activate = lr_mul / math.sqrt(cin), lr_mul, activate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.linear(x, self.weight * self.scale, self.bias * self.lr_mul)
        return F.leaky_relu(x, 0.2) * _SQRT2 if self.activate else x


class EqualConv(nn.Module):
    """Plain (unmodulated) convolution with equalised learning rate, 2D or 3D."""

    def __init__(self, cin: int, cout: int, kernel: int, spatial_dims: int = 2, bias: bool = True,
                 activate: bool = False):
        super().__init__()
        self.sd = _check_dims(spatial_dims)
        self.weight = nn.Parameter(torch.randn(cout, cin, *([kernel] * self.sd)))
        self.bias = nn.Parameter(torch.zeros(cout)) if bias else None
        self.scale, self.pad, self.activate = 1 / math.sqrt(cin * kernel ** self.sd), kernel // 2, activate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = _conv_fn(self.sd)(x, self.weight * self.scale, self.bias, padding=self.pad)
        return F.leaky_relu(x, 0.2) * _SQRT2 if self.activate else x


class ModulatedConv(nn.Module):
    """Modulated (and by default demodulated) convolution, StyleGAN2 eq. 1–3.

    Parameters
    ----------
    cin, cout, kernel : channels in/out and kernel size
    w_dim : size of the latent w that the affine layer A maps to one style per input channel
    demodulate : normalise every output filter to unit norm (off for the skip outputs)
    up : upsample the input ×2 (bilinear/trilinear) before the convolution
    spatial_dims : 2 or 3
    """

    def __init__(self, cin: int, cout: int, kernel: int, w_dim: int, demodulate: bool = True,
                 up: bool = False, spatial_dims: int = 2):
        super().__init__()
        self.sd = _check_dims(spatial_dims)
        self.weight = nn.Parameter(torch.randn(cout, cin, *([kernel] * self.sd)))
        self.affine = EqualLinear(w_dim, cin, bias_init=1.0)  # styles start at 1
        self.scale = 1 / math.sqrt(cin * kernel ** self.sd)
        self.demodulate, self.up, self.pad = demodulate, up, kernel // 2

    def modulated_weight(self, w: torch.Tensor) -> torch.Tensor:
        """Per-sample weights (B, cout, cin, *k) for latents w (B, w_dim)."""
        s = self.affine(w)                                              # (B, cin)
        wt = self.scale * self.weight[None] * s.reshape(len(s), 1, -1, *([1] * self.sd))
        if self.demodulate:
            d = torch.rsqrt(wt.pow(2).sum(dim=tuple(range(2, wt.dim())), keepdim=True) + 1e-8)
            wt = wt * d
        return wt

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        if self.up:
            x = _upsample(x)
        # same result as a grouped conv with modulated_weight, but one shared-weight conv:
        # scale the input channels by s, convolve, scale the outputs by the demodulation
        s = self.affine(w)
        ones = [1] * self.sd
        out = _conv_fn(self.sd)(x * s.reshape(*s.shape, *ones), self.weight * self.scale, padding=self.pad)
        if self.demodulate:
            wsq = (self.weight * self.scale).pow(2).sum(dim=tuple(range(2, self.weight.dim())))  # (cout, cin)
            d = torch.rsqrt(s.pow(2) @ wsq.T + 1e-8)                                            # (B, cout)
            out = out * d.reshape(*d.shape, *ones)
        return out


class StyledConv(nn.Module):
    """Modulated conv -> + noise·strength (one noise image per sample) -> + bias -> lReLU·√2."""

    def __init__(self, cin: int, cout: int, w_dim: int, up: bool = False, spatial_dims: int = 2):
        super().__init__()
        self.conv = ModulatedConv(cin, cout, 3, w_dim, up=up, spatial_dims=spatial_dims)
        self.noise_strength = nn.Parameter(torch.zeros(()))
        self.bias = nn.Parameter(torch.zeros(cout))

    def forward(self, x: torch.Tensor, w: torch.Tensor, noise: torch.Generator | str | None = None
                ) -> torch.Tensor:
        x = self.conv(x, w)
        if noise != "none":
            n = torch.randn((x.shape[0], 1, *x.shape[2:]), generator=noise if isinstance(noise, torch.Generator)
                            else None, device=noise.device if isinstance(noise, torch.Generator) else "cpu")
            x = x + self.noise_strength * n.to(x.device, x.dtype)
        x = x + self.bias.reshape(1, -1, *([1] * (x.dim() - 2)))
        return F.leaky_relu(x, 0.2) * _SQRT2


class ToOutput(nn.Module):
    """Skip output: 1×1 modulated conv without demodulation (StyleGAN2's tRGB, any channel count)."""

    def __init__(self, cin: int, cout: int, w_dim: int, spatial_dims: int = 2):
        super().__init__()
        self.conv = ModulatedConv(cin, cout, 1, w_dim, demodulate=False, spatial_dims=spatial_dims)
        self.bias = nn.Parameter(torch.zeros(cout))

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return self.conv(x, w) + self.bias.reshape(1, -1, *([1] * (x.dim() - 2)))


class MappingNetwork(nn.Module):
    """z -> w: pixel-normalised z (concatenated with a normalised class embedding) through an
    ``n_layers`` equalised-lr MLP with lr multiplier ``lr_mul`` (0.01 in StyleGAN)."""

    def __init__(self, z_dim: int, w_dim: int, n_layers: int, n_classes: int = 0, lr_mul: float = 0.01):
        super().__init__()
        self.embed = EqualLinear(n_classes, z_dim) if n_classes else None
        dims = [z_dim * (2 if n_classes else 1)] + [w_dim] * n_layers
        self.layers = nn.Sequential(*[EqualLinear(a, b, lr_mul=lr_mul, activate=True)
                                      for a, b in zip(dims[:-1], dims[1:])])

    @staticmethod
    def _norm(x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.pow(2).mean(1, keepdim=True) + 1e-8)

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        x = self._norm(z)
        if self.embed is not None:
            if c is None:
                raise ValueError("this mapping network is class-conditional: pass one-hot classes c")
            x = torch.cat([x, self._norm(self.embed(c))], 1)
        return self.layers(x)


class Generator(nn.Module):
    """StyleGAN2 generator of ``image_channels`` image channels plus ``mask_channels`` mask channel(s).

    Parameters
    ----------
    resolution : output size per axis, a power of two >= 8
    image_channels : image channels (1 for grayscale microscopy)
    mask_channels : grayscale-mask channels from the mask branch (1; 0 = plain StyleGAN2)
    z_dim, w_dim : latent sizes
    mapping_layers : depth of the mapping network (2 for LIVECell, 4 for TissueNet in Lesmes-Leon et al. 2025)
    channel_base, channel_max : feature maps ``min(channel_base // res, channel_max)`` per resolution
    mask_fraction : mask-branch features per block as a fraction of the block's features
    n_classes : > 0 for class conditioning (one-hot c into the mapping network)
    spatial_dims : 2 or 3

    Examples
    --------
    >>> g = Generator(resolution=16, channel_base=64, channel_max=8, z_dim=8, w_dim=8)
    >>> g(torch.randn(2, 8)).shape
    torch.Size([2, 2, 16, 16])
    """

    def __init__(self, resolution: int = 64, image_channels: int = 1, mask_channels: int = 1, z_dim: int = 128,
                 w_dim: int = 128, mapping_layers: int = 2, channel_base: int = 4096, channel_max: int = 128,
                 mask_fraction: float = 0.5, n_classes: int = 0, spatial_dims: int = 2):
        super().__init__()
        sd = _check_dims(spatial_dims)
        if resolution < 8 or resolution & (resolution - 1):
            raise ValueError(f"resolution must be a power of two >= 8, got {resolution}")
        self.z_dim, self.n_classes, self.sd = z_dim, n_classes, sd
        self.image_channels, self.mask_channels = image_channels, mask_channels
        self.mapping = MappingNetwork(z_dim, w_dim, mapping_layers, n_classes)
        self.register_buffer("w_avg", torch.zeros(w_dim))
        res = [2 ** i for i in range(2, int(math.log2(resolution)) + 1)]
        ch = [channels_at(r, channel_base, channel_max) for r in res]
        self.const = nn.Parameter(torch.randn(ch[0], *([4] * sd)))
        self.convs = nn.ModuleList()
        self.to_image = nn.ModuleList()
        self.to_mask_feat = nn.ModuleList()
        self.mask_merge = nn.ModuleList()
        mch_prev = 0
        for i, c in enumerate(ch):
            if i == 0:
                self.convs.append(nn.ModuleList([StyledConv(c, c, w_dim, spatial_dims=sd)]))
            else:
                self.convs.append(nn.ModuleList([StyledConv(ch[i - 1], c, w_dim, up=True, spatial_dims=sd),
                                                 StyledConv(c, c, w_dim, spatial_dims=sd)]))
            self.to_image.append(ToOutput(c, image_channels, w_dim, spatial_dims=sd))
            if mask_channels:
                mch = max(1, int(round(c * mask_fraction)))
                self.to_mask_feat.append(ModulatedConv(c, mch, 3, w_dim, spatial_dims=sd))
                self.mask_merge.append(EqualConv(mch + mch_prev, mch, 3, sd, activate=True))
                mch_prev = mch
        self.to_mask = ToOutput(mch_prev, mask_channels, w_dim, spatial_dims=sd) if mask_channels else None

    def map(self, z: torch.Tensor, c: torch.Tensor | None = None, truncation: float = 1.0) -> torch.Tensor:
        """Latent z -> w, pulled toward the tracked mean w by ψ = ``truncation`` (1 = none)."""
        w = self.mapping(z, c)
        if truncation != 1.0:
            w = self.w_avg + truncation * (w - self.w_avg)
        return w

    def synthesis(self, w: torch.Tensor, noise: torch.Generator | str | None = None) -> torch.Tensor:
        """w (B, w_dim) -> (B, image_channels + mask_channels, *spatial): image, then mask."""
        x = self.const[None].expand(len(w), *self.const.shape)
        img = feat = None
        for i, block in enumerate(self.convs):
            for layer in block:
                x = layer(x, w, noise)
            y = self.to_image[i](x, w)
            img = y if img is None else _upsample(img) + y
            if self.mask_channels:
                m = self.to_mask_feat[i](x, w)
                if feat is not None:
                    m = torch.cat([_upsample(feat), m], 1)
                feat = self.mask_merge[i](m)
        if self.mask_channels:
            img = torch.cat([img, self.to_mask(feat, w)], 1)
        return img

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None, truncation: float = 1.0,
                noise: torch.Generator | str | None = None) -> torch.Tensor:
        return self.synthesis(self.map(z, c, truncation), noise)


class Discriminator(nn.Module):
    """Residual StyleGAN2 discriminator on ``in_channels`` (image + mask concatenated).

    From-input 1×1 conv, residual blocks (two 3×3 convs and a 1×1 skip, averaged down ×2,
    summed / √2) to 4×4, minibatch standard deviation (groups of ``mbstd_group``), a conv,
    a fully connected layer and the score; with ``n_classes`` the score adds the projection
    <embed(c), h> of the last features (Miyato & Koyama 2018).

    >>> d = Discriminator(resolution=16, in_channels=2, channel_base=64, channel_max=8)
    >>> d(torch.randn(3, 2, 16, 16)).shape
    torch.Size([3, 1])
    """

    def __init__(self, resolution: int = 64, in_channels: int = 2, channel_base: int = 4096, channel_max: int = 128,
                 mbstd_group: int = 4, n_classes: int = 0, spatial_dims: int = 2):
        super().__init__()
        sd = _check_dims(spatial_dims)
        if resolution < 8 or resolution & (resolution - 1):
            raise ValueError(f"resolution must be a power of two >= 8, got {resolution}")
        res = [2 ** i for i in range(int(math.log2(resolution)), 1, -1)]   # resolution .. 4
        ch = [channels_at(r, channel_base, channel_max) for r in res]
        self.from_input = EqualConv(in_channels, ch[0], 1, sd, activate=True)
        self.blocks = nn.ModuleList()
        for a, b in zip(ch[:-1], ch[1:]):
            self.blocks.append(nn.ModuleDict({"conv1": EqualConv(a, a, 3, sd, activate=True),
                                              "conv2": EqualConv(a, b, 3, sd, activate=True),
                                              "skip": EqualConv(a, b, 1, sd, bias=False)}))
        self.mbstd_group = mbstd_group
        self.final_conv = EqualConv(ch[-1] + 1, ch[-1], 3, sd, activate=True)
        self.fc = EqualLinear(ch[-1] * 4 ** sd, ch[-1], activate=True)
        self.out = EqualLinear(ch[-1], 1)
        self.embed = EqualLinear(n_classes, ch[-1]) if n_classes else None

    def _mbstd(self, x: torch.Tensor) -> torch.Tensor:
        b = x.shape[0]
        g = min(self.mbstd_group, b)
        while b % g:
            g -= 1
        y = x.reshape(g, -1, *x.shape[1:]).float()
        y = (y.var(0, unbiased=False) + 1e-8).sqrt().mean(dim=tuple(range(1, y.dim() - 1)))   # (B/g,)
        y = y.reshape(-1, 1, *([1] * (x.dim() - 2))).repeat(g, 1, *x.shape[2:]).to(x.dtype)
        return torch.cat([x, y], 1)

    def forward(self, x: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        x = self.from_input(x)
        for blk in self.blocks:
            skip = blk["skip"](_downsample(x))
            x = _downsample(blk["conv2"](blk["conv1"](x)))
            x = (x + skip) / _SQRT2
        x = self.final_conv(self._mbstd(x))
        h = self.fc(x.flatten(1))
        out = self.out(h)
        if self.embed is not None:
            if c is None:
                raise ValueError("this discriminator is class-conditional: pass one-hot classes c")
            out = out + (self.embed(c) * h).sum(1, keepdim=True) / math.sqrt(h.shape[1])
        return out
