"""The U-Net's CPU inference path (channels-last, oneDNN directly, folded BatchNorm, depthwise blur) computes
the same function as the plain layers that training uses."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from cellsynth.nn import unet as U


def _plain_and_fast(net, *args):
    """The network's output with autograd on (plain layers) and under inference mode (the fast path)."""
    plain = net(*args).detach()
    with torch.inference_mode():
        fast = net(*args)
    return plain, fast


def _close(a, b, rel=1e-5):
    assert a.shape == b.shape
    assert float((a - b).abs().max()) <= rel * max(1.0, float(a.abs().max()))


@pytest.mark.parametrize("nd, norm, blur, strides", [
    (2, "batch", True, None), (3, "batch", True, None), (3, "batch", False, [[1, 2, 2], [2, 2, 2]]),
    (2, "group", False, None), (3, "none", True, [[1, 2, 2], [1, 2, 2]])])
def test_inference_path_equals_plain_layers(nd, norm, blur, strides):
    torch.manual_seed(0)
    net = U.UNet(nd, 2, 1, [8, 16, 32], norm=norm, upsample_blur=blur, strides=strides)
    if norm == "batch":  # trained-like running statistics, so that folding the BatchNorm is exercised
        for m in net.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.data.uniform_(0.5, 1.5)
                m.bias.data.uniform_(-0.2, 0.2)
    net.eval()
    x = torch.randn(1, 2, *([16, 24, 32][-nd:]))
    plain, fast = _plain_and_fast(net, x)
    _close(plain, fast)
    assert fast.is_contiguous()
    assert not U.inference_path(x) and torch.is_grad_enabled()  # outside inference mode: the plain layers
    with torch.inference_mode():
        assert U.inference_path(x)


@pytest.mark.parametrize("nd", [2, 3])
def test_inference_path_with_time_embedding(nd):
    torch.manual_seed(1)
    net = U.UNet(nd, 1, 1, [8, 16], time_embedding=True).eval()
    x, t = torch.randn(2, 1, *([16] * nd)), torch.tensor([3.0, 70.0])
    _close(*_plain_and_fast(net, x, t))


def test_training_mode_and_gradients_use_the_plain_layers():
    torch.manual_seed(2)
    net = U.UNet(3, 1, 1, [8, 16], norm="batch", upsample_blur=True).train()
    x = torch.randn(2, 1, 8, 16, 16)
    net(x).square().mean().backward()  # autograd through the plain layers works
    assert all(p.grad is not None for p in net.parameters())
    with torch.no_grad():  # a BatchNorm in training mode is never folded (batch statistics)
        before = net.down_blocks[0][0].norm2.running_mean.clone()
        net(x)
    assert not torch.equal(before, net.down_blocks[0][0].norm2.running_mean)


@pytest.mark.parametrize("axes, shape", [([0, 1], (7, 9)), ([0, 1, 2], (5, 6, 7)), ([1, 2], (4, 6, 8)), ([0], (1, 5))])
def test_depthwise_blur_equals_the_in_place_passes(axes, shape):
    x = torch.randn(1, 4, *shape)
    plain = U.binomial_blur(x, axes)
    with torch.inference_mode():
        fast = U.binomial_blur(x, axes)
    _close(plain, fast, 1e-6)


@pytest.mark.parametrize("factor", [[2, 2], [2, 2, 2], [1, 2, 2]])
def test_channels_last_shuffle_and_its_border(factor):
    nd = len(factor)
    prod = int(np.prod(factor))
    x = torch.randn(1, 3 * prod, *([5] * nd))
    ref = U.pixel_shuffle(x, factor)
    xc = x.contiguous(memory_format=U.channels_last(nd))
    y = U.pixel_shuffle(xc, factor)
    assert torch.equal(y, ref) and y.is_contiguous(memory_format=U.channels_last(nd))
    border = [int(f > 1) for f in factor]
    pad = [p for b in reversed(border) for p in (b, b)]
    assert torch.equal(U.pixel_shuffle(xc, factor, border), F.pad(ref, pad, mode="replicate"))
    with pytest.raises(ValueError, match="channels-last"):
        U.pixel_shuffle(x, factor, border)


def test_folded_batchnorm_only_for_fixed_statistics():
    conv, bn = torch.nn.Conv3d(2, 4, 3, padding=1), torch.nn.BatchNorm3d(4)
    assert U.folded_batchnorm(conv, bn) is None  # training mode: batch statistics
    assert U.folded_batchnorm(conv, torch.nn.GroupNorm(2, 4).eval()) is None
    bn.eval()
    bn.running_mean.uniform_(-1, 1)
    bn.running_var.uniform_(0.5, 2)
    w, b = U.folded_batchnorm(conv, bn)
    x = torch.randn(1, 2, 6, 6, 6)
    with torch.inference_mode():
        _close(bn(conv(x)), U.apply_conv(conv, x, w, b))
    with pytest.raises(ValueError, match="inference path"):
        U.apply_conv(conv, x, w, b)


def test_shipped_cgan_renders_the_same_on_both_paths(monkeypatch):
    from cellsynth.generative.translate import load_translator, render_labels
    from cellsynth.render.gan import default_model_path
    model = load_translator(default_model_path("cgan"))
    rng = np.random.default_rng(0)
    lab = np.zeros((16, 48, 40), np.uint16)
    for i in range(6):
        z, y, x = rng.integers(3, 13), rng.integers(6, 42), rng.integers(6, 34)
        lab[z - 3:z + 3, y - 5:y + 5, x - 5:x + 5] = i + 1
    fast = render_labels(model, lab)
    monkeypatch.setattr(U, "inference_path", lambda x: False)
    plain = render_labels(model, lab)
    assert fast.shape == lab.shape and fast.std() > 0.01
    assert float(np.abs(fast - plain).max()) < 1e-5
