"""Spatial zoom augmentation of the segmenter's patches (augment.p_zoom / augment.zoom), 2D and 3D."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from cellsynth.config import validate
from cellsynth.errors import ConfigError
from cellsynth.segment.unet import IGNORE, SegmenterConfig, _PatchSampler, train_segmenter, training_target
from test_segmenter import TINY, _write_dataset


def _balls(shape, r, rng):
    lab = np.zeros(shape, np.uint16)
    grids = np.ogrid[tuple(slice(0, s) for s in shape)]
    for k in range(1, 7):
        c = [rng.uniform(r, s - r) for s in shape]
        lab[sum((g - ci) ** 2 for g, ci in zip(grids, c)) <= r ** 2] = k
    return lab


@pytest.mark.parametrize("ndim", [2, 3])
def test_zoomed_patches_keep_the_patch_shape_and_a_one_pixel_boundary(rng, ndim):
    shape, patch = ((60, 64), [32, 32]) if ndim == 2 else ((20, 40, 40), [8, 16, 16])
    lab = _balls(shape, 6 if ndim == 2 else 4, rng)
    img = (lab > 0) * 100.0 + rng.normal(10, 2, shape)
    s = _PatchSampler([img], [(0.0, 110.0)], [training_target(lab)], patch, 1.0, rng,
                      masks=[lab], p_zoom=1.0, zoom=(1.6, 1.6))
    x, t = s.sample()
    assert x.shape == t.shape == tuple(patch) and x.dtype == np.float32
    assert set(np.unique(t)) <= {0, 1, 2, 3, IGNORE}
    # the target is recomputed from the zoomed labels, so boundaries stay one pixel wide: zoomed in 1.6×,
    # boundary pixels are a smaller share of the objects than at native scale (a resized target would keep it)
    share = lambda t: np.isin(t, [1, 3]).sum() / max(1, np.isin(t, [1, 2, 3]).sum())  # noqa: E731
    native = _PatchSampler([img], [(0.0, 110.0)], [training_target(lab)], patch, 1.0, rng)
    zoomed = np.mean([share(s.sample()[1]) for _ in range(20)])
    plain = np.mean([share(native.sample()[1]) for _ in range(20)])
    assert zoomed < 0.85 * plain, (zoomed, plain)


def test_zoom_outside_the_image_is_ignored(rng):
    lab = np.zeros((20, 20), np.uint16)
    lab[5:15, 5:15] = 1
    img = (lab > 0) * 100.0
    # zoomed out 0.5×: a 64² crop of a 20² image, resized to 32²: the padding is ignored, not background
    s = _PatchSampler([img], [(0.0, 100.0)], [training_target(lab)], [32, 32], 0.0, rng,
                      masks=[lab], p_zoom=1.0, zoom=(0.5, 0.5))
    x, t = s.sample()
    assert (t == IGNORE).sum() > 0.5 * t.size and (t == 2).any()


@pytest.mark.parametrize("ndim", [2, 3])
def test_zoom_key_acts_in_training(tmp_path, rng, ndim):
    shape, patch = ((40, 48), [32, 32]) if ndim == 2 else ((14, 24, 28), [8, 16, 16])
    data = _write_dataset(tmp_path / "data", rng, shape=shape)
    w = {}
    for p in (0.0, 1.0):
        cfg = validate(SegmenterConfig, {**TINY, "augment": {"p_zoom": p, "zoom": [0.7, 1.4]}})
        seg = train_segmenter([data], None, cfg, patch=patch, device="cpu", progress=False)
        w[p] = torch.cat([q.detach().flatten() for q in seg.net.parameters()])
        assert torch.isfinite(w[p]).all()
    assert not torch.equal(w[0.0], w[1.0])


def test_bad_zoom_refused():
    with pytest.raises(ConfigError, match="zoom"):
        validate(SegmenterConfig, {"augment": {"zoom": [0.0, 1.4]}})
    with pytest.raises(ConfigError, match="zoom"):
        validate(SegmenterConfig, {"augment": {"zoom": [1.4, 0.7]}})
