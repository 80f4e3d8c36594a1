"""Pixel-shuffle upsampling with ICNR initialisation (Aitken et al. 2017): no checkerboard at initialisation."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from cellsynth.modelfolder import load_tensors
from cellsynth.nn.unet import Up, icnr_, pixel_shuffle


@pytest.mark.parametrize("factor", [[2, 2], [2, 2, 2], [1, 2, 2]])
def test_icnr_up_equals_conv_then_nearest_upsampling(factor):
    torch.manual_seed(0)
    nd = len(factor)
    up = Up(nd, 8, 4, factor)
    x = torch.randn(2, 8, *([6] * nd))
    y = up(x)
    assert y.shape == (2, 4, *[6 * f for f in factor])
    # the first output channel of each group of ∏f conv channels is the small conv's output
    prod = 1
    for f in factor:
        prod *= f
    small = up.conv(x)[:, ::prod]
    assert torch.allclose(y, F.interpolate(small, scale_factor=factor, mode="nearest"), atol=1e-6)


def test_icnr_keeps_the_default_weight_scale():
    torch.manual_seed(0)
    conv = torch.nn.Conv3d(16, 16 * 8, 3)
    default_std = float(conv.weight.detach().std())
    icnr_(conv, [2, 2, 2])
    assert 0.8 < float(conv.weight.detach().std()) / default_std < 1.25
    w = conv.weight.reshape(16, 8, -1)
    assert torch.equal(w, w[:, :1].expand_as(w))  # each output channel's 8 sub-positions share one kernel


def test_shipped_models_load_their_weights_over_icnr():
    from cellsynth.generative.diffusion import load_model
    from cellsynth.generative.translate import load_translator
    from cellsynth.models import __file__ as models_init
    root = Path(models_init).parent
    diff = load_model(root / "nuclei2d-dsb")
    saved = load_tensors(root / "nuclei2d-dsb" / "weights.safetensors", "diffusion")
    state = diff.net.state_dict()
    assert saved.keys() == state.keys()
    assert all(torch.equal(saved[k], state[k]) for k in saved)
    gan = load_translator(root / "nuclei3d-cgan")
    saved = load_tensors(root / "nuclei3d-cgan" / "weights.safetensors", "cgan")
    state = gan.state_dict()
    assert all(torch.equal(saved[k], state[k]) for k in saved if k in state)
    assert any(k.endswith("conv.weight") and ".ups." in k for k in saved)


@pytest.mark.parametrize("factor", [[2, 2], [2, 2, 2], [1, 2, 2]])
def test_blur_after_shuffle_removes_the_checkerboard(factor):
    from cellsynth.metrics.image import checkerboard_index
    from cellsynth.nn.unet import binomial_blur
    nd = len(factor)
    torch.manual_seed(0)
    up = Up(nd, 4, 2, factor, blur=True)
    with torch.no_grad():
        up.conv.weight.normal_()   # trained-like weights: sub-positions differ, shuffle makes a pattern
        # a flat input: the shuffled output is the sub-positions' pattern repeated (period 2)
        x = torch.ones(1, 4, *([16] * nd)) + 0.01 * torch.randn(1, 4, *([16] * nd))
        plain = pixel_shuffle(up.conv(x), factor)
        y = up(x)
    before, after = checkerboard_index(plain[0, 0].numpy()), checkerboard_index(y[0, 0].numpy())
    assert before > 5 and after < before / 5   # the Nyquist peak is gone (the rest is edges and noise)
    assert not list(up.state_dict()) == [] and all("blur" not in k for k in up.state_dict())  # no weights
    z = torch.zeros(1, 1, *([6] * nd)) + 3.0
    assert torch.allclose(binomial_blur(z, range(nd)), z)   # constants (and edges) kept


def test_cgan_upsample_blur_is_a_saved_key_that_acts(tmp_path):
    from cellsynth.generative.cgan import CGANTrainConfig, ConditionalGAN
    assert CGANTrainConfig().upsample_blur is True
    torch.manual_seed(0)
    a = ConditionalGAN(spatial_dims=2, channels=[4, 8], d_channels=4, d_layers=2, upsample_blur=True)
    b = ConditionalGAN(spatial_dims=2, channels=[4, 8], d_channels=4, d_layers=2, upsample_blur=False)
    b.load_state_dict(a.state_dict())   # same weights: the blur has none
    x = torch.randn(1, 2, 16, 16)
    a.eval(), b.eval()
    assert not torch.allclose(a.generate(x), b.generate(x))
    a.save_folder(tmp_path / "m")
    assert ConditionalGAN.from_folder(tmp_path / "m").G.ups[0].blur is True
