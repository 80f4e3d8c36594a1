"""Pixel-shuffle upsampling with ICNR initialisation (Aitken et al. 2017): no checkerboard at initialisation."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from cellsynth.modelfolder import load_tensors
from cellsynth.nn.unet import Up, icnr_


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
