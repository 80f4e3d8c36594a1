"""A U-Net for 2D and 3D from one implementation (``spatial_dims``).

Residual blocks with GroupNorm + SiLU, strided-conv downsampling, pixel-shuffle
upsampling (Eschweiler et al. 2021, 2024), and an optional sinusoidal time embedding added in
every block (Eschweiler et al. 2024, for diffusion). Without ``time_embedding`` it is a plain
segmentation/translation U-Net. The constructor arguments are the saved config.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .layers import norm_layer, stride_product


def conv(spatial_dims: int, cin: int, cout: int, k: int = 3, stride: int = 1) -> nn.Module:
    cls = nn.Conv2d if spatial_dims == 2 else nn.Conv3d
    return cls(cin, cout, k, stride=stride, padding=k // 2)


def channels_last(nd: int) -> torch.memory_format:
    """The channels-last memory format of ``nd``-D feature maps (2: NHWC, 3: NDHWC)."""
    return torch.channels_last if nd == 2 else torch.channels_last_3d


def inference_path(x: torch.Tensor) -> bool:
    """Whether the U-Net's layers take their CPU inference path on ``x``.

    The path computes the same function as the plain one (float rounding aside; tested) with the
    activations channels-last and each convolution sent to oneDNN directly:

    - oneDNN convolutions of few channels run 1.4–2× faster on channels-last activations than on
      NC(D)HW ones, which they reorder to a blocked layout and back at every layer;
    - PyTorch's own dispatch sends small inputs (N·C·D·H ≤ 20480) and, single-threaded, 1×1
      convolutions to its reference kernel, up to 9× slower here; 1×1 convolutions become one
      matrix product over the channel axis;
    - the fixed blur after each pixel shuffle is one depthwise convolution (:func:`binomial_blur`),
      its replicated border written by the shuffle's copy;
    - a BatchNorm with fixed statistics right after a convolution is folded into its weights
      (:func:`folded_batchnorm`), and fresh activations are updated in place (less memory to map).

    Taken only without autograd (generation, diffusion sampling, segmentation: never training),
    not while tracing (an exported graph keeps the plain layers), for float32 on CPU.
    """
    return (x.device.type == "cpu" and x.dim() in (4, 5) and x.dtype == torch.float32
            and not torch.is_grad_enabled() and not torch.jit.is_tracing())


def apply_conv(conv: nn.Module, x: torch.Tensor, weight: torch.Tensor | None = None,
               bias: torch.Tensor | None = None) -> torch.Tensor:
    """``conv(x)``; on the inference path (:func:`inference_path`) channels-last through oneDNN directly,
    with ``weight`` and ``bias`` in place of the layer's when given (a folded norm).

    >>> c = nn.Conv2d(3, 2, 1)
    >>> x = torch.randn(1, 3, 4, 5)
    >>> with torch.inference_mode():
    ...     bool(torch.allclose(apply_conv(c, x), c(x), atol=1e-6))
    True
    """
    if not inference_path(x):
        if weight is not None or bias is not None:
            raise ValueError("apply_conv: replacement weights only on the inference path")
        return conv(x)
    weight = conv.weight if weight is None else weight
    bias = conv.bias if bias is None else bias
    if (all(k == 1 for k in conv.kernel_size) and all(s == 1 for s in conv.stride) and conv.groups == 1
            and not isinstance(conv.padding, str) and not any(conv.padding)):
        return F.linear(x.movedim(1, -1), weight.flatten(1), bias).movedim(-1, 1)
    x = x.contiguous(memory_format=channels_last(x.dim() - 2))
    if torch.backends.mkldnn.is_available() and conv.padding_mode == "zeros" and not isinstance(conv.padding, str):
        return torch.mkldnn_convolution(x, weight, bias, conv.padding, conv.stride, conv.dilation, conv.groups)
    return conv._conv_forward(x, weight, bias)


def folded_batchnorm(conv: nn.Module, norm: nn.Module) -> tuple[torch.Tensor, torch.Tensor] | None:
    """Weight and bias of ``norm(conv(x))`` as one convolution, for a BatchNorm at inference (fixed running
    statistics: a per-channel affine map); None for any other norm (GroupNorm's statistics depend on the input).

    >>> c, n = nn.Conv2d(2, 3, 3, padding=1), nn.BatchNorm2d(3).eval()
    >>> w, b = folded_batchnorm(c, n)
    >>> x = torch.randn(1, 2, 8, 8)
    >>> bool(torch.allclose(n(c(x)), c._conv_forward(x, w, b), atol=1e-5))
    True
    """
    if not isinstance(norm, nn.modules.batchnorm._BatchNorm) or norm.training or norm.running_mean is None:
        return None
    scale = torch.rsqrt(norm.running_var + norm.eps)
    if norm.weight is not None:
        scale = scale * norm.weight
    shift = -norm.running_mean * scale
    if norm.bias is not None:
        shift = shift + norm.bias
    bias = shift if conv.bias is None else conv.bias * scale + shift
    return conv.weight * scale.reshape(-1, *[1] * (conv.weight.dim() - 1)), bias


def _norm_silu(norm: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """SiLU(norm(x)), in place on the norm's output on the inference path (never on ``x`` itself)."""
    n = norm(x)
    return F.silu(n, inplace=n is not x and inference_path(x))


def pixel_shuffle(x: torch.Tensor, factor: int | Sequence[int], border: Sequence[int] | None = None) -> torch.Tensor:
    """N-d pixel shuffle: (B, C·∏f, *S) -> (B, C, *S·f). Works for 2D and 3D, NC(D)HW or channels-last
    (the output keeps the input's layout; one copy either way).

    ``border`` (channels-last input only): a margin of that many pixels per axis, edge-replicated,
    around the output, written in the same copy (the padding of a filter that follows).
    """
    nd = x.dim() - 2
    f = [factor] * nd if isinstance(factor, int) else list(factor)
    b, c, *s = x.shape
    prod = math.prod(f)
    c_out = c // prod
    size = [si * fi for si, fi in zip(s, f)]
    if x.is_contiguous(memory_format=channels_last(nd)) and (c_out > 1 or border is not None):
        # memory (b, *s, c_out, *f) -> (b, s1, f1, ..., sn, fn, c_out): channel c·∏f + j is sub-position j
        y = x.movedim(1, -1).reshape(b, *s, c_out, *f)
        perm = [0] + [a for i in range(nd) for a in (1 + i, 2 + nd + i)] + [1 + nd]
        border = [0] * nd if border is None else [int(m) for m in border]
        out = torch.empty(b, *[n + 2 * m for n, m in zip(size, border)], c_out, dtype=x.dtype, device=x.device)
        inner = out[(slice(None), *[slice(m, m + n) for n, m in zip(size, border)])]
        inner.view(b, *[v for si, fi in zip(s, f) for v in (si, fi)], c_out).copy_(y.permute(*perm))
        for i, m in enumerate(border):  # replicate the faces, axis by axis (the corners follow)
            n = out.shape[1 + i]
            for j in range(m):
                out.narrow(1 + i, m - 1 - j, 1).copy_(out.narrow(1 + i, m, 1))
                out.narrow(1 + i, n - m + j, 1).copy_(out.narrow(1 + i, n - m - 1, 1))
        return out.movedim(-1, 1)
    if border is not None:
        raise ValueError("pixel_shuffle: a border needs a channels-last input")
    x = x.reshape(b, c_out, *f, *s)
    # interleave: (b, c, f1..fn, s1..sn) -> (b, c, s1, f1, s2, f2, ...)
    perm = [0, 1]
    for i in range(nd):
        perm += [2 + nd + i, 2 + i]
    x = x.permute(*perm)
    return x.reshape(b, c_out, *size)


def sinusoidal_embedding(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """Transformer-style sinusoidal embedding of (possibly fractional) timesteps t: (B,) -> (B, dim)."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    args = t.float()[:, None] * freqs[None]
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=1)
    if dim % 2:
        emb = F.pad(emb, (0, 1))
    return emb


class ResBlock(nn.Module):
    def __init__(self, spatial_dims: int, cin: int, cout: int, temb_dim: int | None, dropout: float = 0.0,
                 norm: str = "group"):
        super().__init__()
        self.norm1 = norm_layer(norm, spatial_dims, cin)
        self.conv1 = conv(spatial_dims, cin, cout)
        self.temb = nn.Linear(temb_dim, cout) if temb_dim else None
        self.norm2 = norm_layer(norm, spatial_dims, cout)
        self.drop = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.conv2 = conv(spatial_dims, cout, cout)
        self.skip = conv(spatial_dims, cin, cout, k=1) if cin != cout else nn.Identity()

    def forward(self, x: torch.Tensor, temb: torch.Tensor | None = None) -> torch.Tensor:
        use_temb = self.temb is not None and temb is not None
        # inference: a BatchNorm after conv1 is part of conv1; fresh tensors are updated in place
        folded = None if use_temb or not inference_path(x) else folded_batchnorm(self.conv1, self.norm2)
        if folded is not None:
            h = F.silu(apply_conv(self.conv1, _norm_silu(self.norm1, x), *folded), inplace=True)
        else:
            h = apply_conv(self.conv1, _norm_silu(self.norm1, x))
            if use_temb:
                h = h + self.temb(F.silu(temb)).reshape(*temb.shape[:1], -1, *([1] * (x.dim() - 2)))
            h = _norm_silu(self.norm2, h)
        h = apply_conv(self.conv2, self.drop(h))
        skip = x if isinstance(self.skip, nn.Identity) else apply_conv(self.skip, x)
        return h.add_(skip) if inference_path(x) else h + skip


def icnr_(conv_layer: nn.Module, factor: Sequence[int]) -> None:
    """ICNR initialisation (Aitken et al. 2017) of a convolution that feeds :func:`pixel_shuffle`.

    Draws the default initialisation for ``C_out / ∏f`` kernels and repeats each for its ∏f
    sub-positions, so that at initialisation conv + shuffle equals a convolution followed by
    nearest-neighbour upsampling: no checkerboard at the start of training. Only initial weights
    change; a trained model's weights are loaded over them.

    >>> up = Up(2, 4, 3, [2, 2])
    >>> y = up(torch.randn(1, 4, 5, 5))
    >>> bool(torch.equal(y[..., ::2, ::2], y[..., 1::2, 1::2]))
    True
    """
    prod = math.prod(factor)
    w = conv_layer.weight
    small = type(conv_layer)(w.shape[1], w.shape[0] // prod, tuple(w.shape[2:]), bias=conv_layer.bias is not None)
    with torch.no_grad():
        # channel c·∏f + j of the conv becomes sub-position j of output channel c (see pixel_shuffle)
        w.copy_(small.weight.repeat_interleave(prod, dim=0))
        if conv_layer.bias is not None:
            conv_layer.bias.copy_(small.bias.repeat_interleave(prod, dim=0))


def binomial_blur(x: torch.Tensor, axes: Sequence[int]) -> torch.Tensor:
    """[1, 2, 1] / 4 along each spatial axis in ``axes`` (0 = first spatial axis), edges replicated.

    Its response is zero at the Nyquist frequency: a pattern alternating every pixel (the
    checkerboard of pixel-shuffle or transposed-conv upsampling) is removed exactly.

    On the inference path (:func:`inference_path`) the filter is one dense depthwise convolution of
    the edge-replicated input: 4× faster there than three in-place passes per axis (and than three
    separable depthwise 1-D convolutions, which oneDNN runs slowly).

    >>> binomial_blur(torch.tensor([[[1., -1., 1., -1., 1., -1.]]]), [0])
    tensor([[[ 0.5000,  0.0000,  0.0000,  0.0000,  0.0000, -0.5000]]])
    """
    axes = [int(a) for a in axes]
    if inference_path(x) and torch.backends.mkldnn.is_available():
        nd = x.dim() - 2
        pad = [p for i in reversed(range(nd)) for p in ((1, 1) if i in axes else (0, 0))]  # last axis first
        return _blur_bordered(F.pad(x.contiguous(memory_format=channels_last(nd)), pad, mode="replicate"), axes)
    for ax in axes:
        d = ax + 2
        n = x.shape[d]
        if n < 2:
            continue
        # one new tensor per axis, neighbours added in place (no shifted copies of the volume)
        y = x * 0.5
        y.narrow(d, 1, n - 1).add_(x.narrow(d, 0, n - 1), alpha=0.25)
        y.narrow(d, 0, n - 1).add_(x.narrow(d, 1, n - 1), alpha=0.25)
        y.narrow(d, 0, 1).add_(x.narrow(d, 0, 1), alpha=0.25)
        y.narrow(d, n - 1, 1).add_(x.narrow(d, n - 1, 1), alpha=0.25)
        x = y
    return x


def _blur_bordered(xp: torch.Tensor, axes: Sequence[int]) -> torch.Tensor:
    """:func:`binomial_blur` of a channels-last input that carries a 1-pixel replicated border on ``axes``
    (inference path): one depthwise oneDNN convolution without padding."""
    nd, c = xp.dim() - 2, xp.shape[1]
    k = torch.ones([1] * nd, dtype=xp.dtype)
    for ax in axes:
        k = k * torch.tensor([0.25, 0.5, 0.25], dtype=xp.dtype).reshape([3 if i == ax else 1 for i in range(nd)])
    return torch.mkldnn_convolution(xp, k.expand(c, 1, *k.shape).contiguous(), None, [0] * nd, [1] * nd, [1] * nd, c)


class Up(nn.Module):
    """Pixel-shuffle upsampling: conv to C·∏f channels (ICNR-initialised), then shuffle.

    ``blur``: a fixed [1, 2, 1] / 4 filter along each upsampled axis after the shuffle (Sugawara et al.
    2019's fix of the checkerboard that ICNR alone does not keep away during GAN training); no weights.
    """

    def __init__(self, spatial_dims: int, cin: int, cout: int, factor: Sequence[int], blur: bool = False):
        super().__init__()
        self.factor = list(factor)
        self.blur = blur
        self.conv = conv(spatial_dims, cin, cout * math.prod(self.factor))
        icnr_(self.conv, self.factor)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        axes = [i for i, f in enumerate(self.factor) if f > 1]
        y = apply_conv(self.conv, x)
        if self.blur and inference_path(y) and torch.backends.mkldnn.is_available():
            # the shuffle writes the blur's replicated border in its one copy
            y = y.contiguous(memory_format=channels_last(y.dim() - 2))
            return _blur_bordered(pixel_shuffle(y, self.factor, [int(i in axes) for i in range(len(self.factor))]),
                                  axes)
        y = pixel_shuffle(y, self.factor)
        return binomial_blur(y, axes) if self.blur else y


class UNet(nn.Module):
    """U-Net for ``spatial_dims`` 2 or 3.

    Parameters
    ----------
    spatial_dims : 2 or 3
    in_channels, out_channels : int
    channels : sequence of int
        Feature channels per resolution level, e.g. (32, 64, 128).
    blocks_per_level : int
        Residual blocks per level in the encoder and decoder.
    time_embedding : bool
        Add a sinusoidal time embedding (through an MLP) in every block (diffusion).
    strides : optional per-level downsampling factors per axis, e.g. for anisotropic
        3D data ``[(1, 2, 2), (2, 2, 2)]``; default 2 on every axis.
    norm : "group" (default; per-input statistics), "batch" or "none" — the last two keep
        tiled generation free of seams (:mod:`cellsynth.nn.layers`), used by the GAN generators.
    upsample_blur : a fixed [1, 2, 1] / 4 blur after each pixel shuffle (:class:`Up`): no
        checkerboard; adds no weights (models saved without it load and run as before).
    """

    def __init__(self, spatial_dims: int = 2, in_channels: int = 1, out_channels: int = 1,
                 channels: Sequence[int] = (32, 64, 128), blocks_per_level: int = 1,
                 time_embedding: bool = False, dropout: float = 0.0,
                 strides: Sequence[Sequence[int]] | None = None, norm: str = "group",
                 upsample_blur: bool = False):
        super().__init__()
        if spatial_dims not in (2, 3):
            raise ValueError(f"spatial_dims must be 2 or 3, got {spatial_dims}")
        self.spatial_dims = spatial_dims
        channels = list(channels)
        n_down = len(channels) - 1
        if strides is None:
            strides = [[2] * spatial_dims for _ in range(n_down)]
        strides = [list(s) for s in strides]
        if len(strides) != n_down:
            raise ValueError(f"need {n_down} strides for {len(channels)} levels, got {len(strides)}")
        self.strides = strides
        temb_dim = channels[0] * 4 if time_embedding else None
        self.temb_ch = channels[0]
        self.time_mlp = (nn.Sequential(nn.Linear(channels[0], temb_dim), nn.SiLU(), nn.Linear(temb_dim, temb_dim))
                         if time_embedding else None)
        self.inc = conv(spatial_dims, in_channels, channels[0])
        self.down_blocks = nn.ModuleList()
        self.downs = nn.ModuleList()
        for i, ch in enumerate(channels):
            cin = channels[i - 1] if i > 0 else channels[0]
            blocks = nn.ModuleList([ResBlock(spatial_dims, cin if j == 0 else ch, ch, temb_dim, dropout, norm)
                                    for j in range(blocks_per_level)])
            self.down_blocks.append(blocks)
            if i < n_down:
                cls = nn.Conv2d if spatial_dims == 2 else nn.Conv3d
                s = strides[i]
                self.downs.append(cls(ch, ch, kernel_size=[max(3, si + 1) if si > 1 else 3 for si in s],
                                      stride=s, padding=[1] * spatial_dims))
        self.mid = ResBlock(spatial_dims, channels[-1], channels[-1], temb_dim, dropout, norm)
        self.ups = nn.ModuleList()
        self.up_blocks = nn.ModuleList()
        for i in reversed(range(n_down)):
            self.ups.append(Up(spatial_dims, channels[i + 1], channels[i], strides[i], blur=upsample_blur))
            blocks = nn.ModuleList([ResBlock(spatial_dims, 2 * channels[i] if j == 0 else channels[i],
                                             channels[i], temb_dim, dropout, norm)
                                    for j in range(blocks_per_level)])
            self.up_blocks.append(blocks)
        self.out_norm = norm_layer(norm, spatial_dims, channels[0])
        self.out = conv(spatial_dims, channels[0], out_channels)

    @property
    def divisor(self) -> list[int]:
        """Input sizes must be multiples of this per axis."""
        return stride_product(self.strides, self.spatial_dims)

    def _temb(self, x: torch.Tensor, t: torch.Tensor | None) -> torch.Tensor | None:
        if self.time_mlp is None:
            return None
        if t is None:
            raise ValueError("this UNet has a time embedding: pass t")
        if t.dim() == 0:
            t = t.expand(x.shape[0])
        return self.time_mlp(sinusoidal_embedding(t, self.temb_ch))

    def encode(self, x: torch.Tensor, t: torch.Tensor | None = None) -> list[torch.Tensor]:
        """The contracting path: the output of every level (finest first), then of the bottleneck block.

        :meth:`forward` decodes from these; pooled, they are the image's "style" (Stringer et al. 2021),
        from which :mod:`cellsynth.segment.size_model` regresses the object size.

        >>> net = UNet(2, 1, 3, channels=(8, 16))
        >>> [tuple(h.shape) for h in net.encode(torch.zeros(1, 1, 16, 16))]
        [(1, 8, 16, 16), (1, 16, 8, 8), (1, 16, 8, 8)]
        """
        return self._encode(x, self._temb(x, t))

    def _encode(self, x: torch.Tensor, temb: torch.Tensor | None) -> list[torch.Tensor]:
        h = apply_conv(self.inc, x)
        levels = []
        for i, blocks in enumerate(self.down_blocks):
            for b in blocks:
                h = b(h, temb)
            levels.append(h)
            if i < len(self.downs):
                h = apply_conv(self.downs[i], h)
        return levels + [self.mid(h, temb)]

    def forward(self, x: torch.Tensor, t: torch.Tensor | None = None) -> torch.Tensor:
        temb = self._temb(x, t)
        *levels, h = self._encode(x, temb)
        skips = levels[:-1]
        for up, blocks in zip(self.ups, self.up_blocks):
            h = up(h)
            h = torch.cat([h, skips.pop()], dim=1)
            for b in blocks:
                h = b(h, temb)
        return apply_conv(self.out, _norm_silu(self.out_norm, h)).contiguous()
