"""StyleGAN2 networks (nn/stylegan2.py): modulated convolution against a direct computation,
generator/discriminator shapes in 2D and 3D, truncation, class conditioning, noise."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from cellsynth.nn.stylegan2 import Discriminator, Generator, MappingNetwork, ModulatedConv


@pytest.mark.parametrize("sd", [2, 3])
@pytest.mark.parametrize("demodulate", [True, False])
def test_modulated_conv_matches_direct_computation(sd, demodulate):
    torch.manual_seed(0)
    cin, cout, k = 3, 4, 3
    m = ModulatedConv(cin, cout, k, w_dim=5, demodulate=demodulate, spatial_dims=sd)
    with torch.no_grad():
        m.affine.weight.normal_()
    x = torch.randn(2, cin, *([6] * sd))
    w = torch.randn(2, 5)
    out = m(x, w)
    conv = F.conv2d if sd == 2 else F.conv3d
    for b in range(2):
        # the paper's equations, one sample at a time: s = A(w); w' = s_i w_oik; w'' = w' / sqrt(Σ w'^2 + ε)
        s = w[b] @ (m.affine.weight.T / math.sqrt(5)) + m.affine.bias
        wp = m.weight / math.sqrt(cin * k ** sd) * s.reshape(1, cin, *([1] * sd))
        if demodulate:
            wp = wp / torch.sqrt((wp ** 2).sum(dim=tuple(range(1, wp.dim())), keepdim=True) + 1e-8)
        ref = conv(x[b:b + 1], wp, padding=1)
        assert torch.allclose(out[b:b + 1], ref, atol=1e-5)
    if demodulate:   # unit-norm filters keep unit-variance inputs at about unit variance
        big = m(torch.randn(8, cin, *([16] * sd)), torch.randn(8, 5)).detach()
        assert 0.6 < float(big.std()) < 1.4


def test_modulated_conv_upsamples():
    m = ModulatedConv(2, 3, 3, w_dim=4, up=True)
    assert m(torch.randn(1, 2, 8, 8), torch.randn(1, 4)).shape == (1, 3, 16, 16)


def tiny(sd=2, **kw):
    res = 16 if sd == 2 else 8
    g = Generator(resolution=res, channel_base=64, channel_max=8, z_dim=8, w_dim=8, spatial_dims=sd, **kw)
    d = Discriminator(resolution=res, in_channels=g.image_channels + g.mask_channels, channel_base=64,
                      channel_max=8, spatial_dims=sd, n_classes=kw.get("n_classes", 0))
    return g, d, res


@pytest.mark.parametrize("sd", [2, 3])
def test_generator_image_and_mask_and_discriminator(sd):
    torch.manual_seed(0)
    g, d, res = tiny(sd)
    x = g(torch.randn(4, 8))
    assert x.shape == (4, 2, *([res] * sd)) and torch.isfinite(x).all()
    assert x[:, 0].std() > 0 and x[:, 1].std() > 0       # image and mask both vary
    s = d(x)
    assert s.shape == (4, 1) and torch.isfinite(s).all()
    # both outputs depend on the latent; gradients reach every generator parameter
    (x[:, 1].sum() + x[:, 0].sum()).backward()
    assert all(p.grad is not None for n, p in g.named_parameters() if not n.startswith("mapping.embed"))


def test_plain_stylegan2_without_mask():
    g = Generator(resolution=16, channel_base=64, channel_max=8, z_dim=8, w_dim=8, mask_channels=0)
    assert g(torch.randn(2, 8)).shape == (2, 1, 16, 16) and g.to_mask is None


def test_noise_inputs_seeded_and_switchable():
    torch.manual_seed(0)
    g, _, _ = tiny()
    with torch.no_grad():
        for blk in g.convs:
            for layer in blk:
                layer.noise_strength.fill_(0.5)
    z = torch.randn(2, 8)
    a = g(z, noise=torch.Generator().manual_seed(1))
    b = g(z, noise=torch.Generator().manual_seed(1))
    c = g(z, noise=torch.Generator().manual_seed(2))
    assert torch.equal(a, b) and not torch.allclose(a, c)
    assert torch.equal(g(z, noise="none"), g(z, noise="none"))


def test_truncation_pulls_to_mean_w():
    torch.manual_seed(0)
    g, _, _ = tiny()
    g.w_avg.normal_()
    z = torch.randn(3, 8)
    w0 = g.map(z, truncation=0.0)
    assert torch.allclose(w0, g.w_avg.expand_as(w0))
    w1, wh = g.map(z), g.map(z, truncation=0.5)
    assert torch.allclose(wh, g.w_avg + 0.5 * (w1 - g.w_avg), atol=1e-6)


def test_class_conditioning():
    torch.manual_seed(0)
    g, d, _ = tiny(n_classes=3)
    z = torch.randn(2, 8)
    c0, c1 = F.one_hot(torch.tensor([0, 0]), 3).float(), F.one_hot(torch.tensor([1, 1]), 3).float()
    assert not torch.allclose(g(z, c0, noise="none"), g(z, c1, noise="none"))
    x = g(z, c0, noise="none")
    assert not torch.allclose(d(x, c0), d(x, c1))
    with pytest.raises(ValueError, match="class-conditional"):
        g(z)
    with pytest.raises(ValueError, match="power of two"):
        Generator(resolution=24)
    with pytest.raises(ValueError, match="spatial_dims"):
        MappingNetwork(4, 4, 1) and Generator(resolution=16, spatial_dims=1)
