"""Random patches and overlapped tiled inference with blending (2D and 3D)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from cellsynth import tiling
from cellsynth.generative import diffusion as D


@pytest.mark.parametrize("shape, patch", [((40, 50), (16, 16)), ((10, 30, 30), (4, 16, 8)), ((5, 7), (16, 16))])
def test_random_patch_shape_and_content(shape, patch, rng):
    img = np.arange(np.prod(shape)).reshape(shape)
    p = tiling.random_patch(img, patch, rng)
    assert p.shape == tuple(patch)
    assert np.isin(p, img).all()  # reflect padding reuses image values only


def test_random_flip_rot_keeps_values(rng):
    p = np.arange(2 * 8 * 8).reshape(2, 8, 8)
    out = tiling.random_flip_rot(p, rng)
    assert out.shape == p.shape and np.array_equal(np.sort(out.ravel()), np.sort(p.ravel()))
    # z slices stay z slices: flips/rot90 act in YX only
    assert set(np.unique(out[0])) == set(np.unique(p[0]))
    seen = {tiling.random_flip_rot(p[0], np.random.default_rng(s)).tobytes() for s in range(40)}
    assert len(seen) == 8  # the dihedral group of the square


def test_auto_tile():
    assert tiling.auto_tile((20, 28), [4, 4]) == [20, 28]
    assert tiling.auto_tile((21, 30), [4, 4]) == [24, 32]
    assert tiling.auto_tile((512, 512), [4, 4]) == [512, 512]
    # balanced tiles: 992 = 5 tiles of 224 overlapping by 32 (≤ 256 each)
    assert tiling.auto_tile((992, 992), [4, 4], overlap=0.125) == [224, 224]
    assert tiling.auto_tile((64, 256, 256), [2, 4, 4], overlap=0.125) == [64, 96, 96]
    assert tiling.auto_tile((3, 9, 47), [2, 4, 4], tile=[4, 15, 16]) == [4, 12, 16]
    with pytest.raises(ValueError):
        tiling.auto_tile((10, 10), [2, 2], tile=[8, 8, 8])


def _pointwise(x):
    # a prediction that depends only on the local value: identical with or without tiles
    return 0.3 * x + 0.1


@pytest.mark.parametrize("shape, tile", [((1, 1, 70, 53), [32, 32]), ((1, 1, 12, 40, 37), [8, 16, 16])])
def test_tiled_pointwise_prediction_has_no_seams(shape, tile):
    x = torch.randn(shape, generator=torch.Generator().manual_seed(0))
    out = tiling.tiled_predict(x, _pointwise, tile, overlap=0.25, batch_size=3)
    torch.testing.assert_close(out, _pointwise(x), rtol=1e-5, atol=1e-5)


def test_tiled_single_tile_is_exact():
    x = torch.randn((1, 1, 32, 32), generator=torch.Generator().manual_seed(0))
    f = lambda t: torch.roll(t, 1, dims=-1) * 2  # non-local: only exact when run untiled
    assert torch.equal(tiling.tiled_predict(x, f, [32, 32]), f(x))
    with pytest.raises(ValueError, match="pad it first"):
        tiling.tiled_predict(x, f, [64, 32])


@pytest.mark.parametrize("ndim", [2, 3])
def test_constant_epsilon_model_gives_seam_free_sdedit(ndim):
    """A fake model with constant ε: the tiled reverse process equals the untiled one everywhere."""
    sch = D.Schedule()
    eps = lambda x, k: torch.full_like(x, 0.25)
    shape = (1, 1, 64, 72) if ndim == 2 else (1, 1, 8, 40, 36)
    tile = [24, 24] if ndim == 2 else [4, 16, 16]
    x_t = torch.randn(shape, generator=torch.Generator().manual_seed(1))
    tiled = D.reverse_process(eps, x_t, 100, 10, torch.Generator().manual_seed(2), schedule=sch,
                              tile=tile, overlap=0.25)
    whole = D.reverse_process(eps, x_t, 100, 10, torch.Generator().manual_seed(2), schedule=sch)
    torch.testing.assert_close(tiled, whole, rtol=1e-5, atol=1e-5)
    # no seam: the difference across every tile border is no larger than elsewhere
    d = (tiled - whole).abs().max()
    assert float(d) < 1e-5


def test_tiled_blending_of_real_network_is_close_to_untiled():
    """With a conv net the tiled ε differs only near tile borders, and smoothly (Gaussian blend)."""
    from cellsynth.nn.unet import UNet
    torch.manual_seed(0)
    net = UNet(2, 1, 1, [8, 16], time_embedding=True).eval()
    x = torch.randn((1, 1, 64, 64), generator=torch.Generator().manual_seed(0))
    k = torch.tensor([100.0])
    with torch.no_grad():
        full = net(x, k)
        tiled = tiling.tiled_predict(x, lambda p: net(p, k.expand(p.shape[0])), [32, 32], overlap=0.5)
    err = (tiled - full).abs()
    assert float(err.mean()) < 0.25 * float(full.abs().mean())
