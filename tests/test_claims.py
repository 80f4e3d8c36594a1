"""Claims, not ranges: what the renderers and the segmenter are for, measured on tiny seeded data.

- SDEdit (Meng et al. 2022; Eschweiler et al. 2024): the more forward-noising steps ``t_start``,
  the further the output moves from the sketch.
- A U-Net segmenter trained a few hundred steps on an easy synthetic set beats an untrained one and
  the classical baseline on held-back synthetic samples.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from cellsynth.config import load_config
from cellsynth.dataset import generate_dataset
from cellsynth.io import read_image, read_labels
from cellsynth.metrics.compare import score_segmentation
from cellsynth.metrics.image import zncc


def _sketch_2d() -> np.ndarray:
    sk = np.zeros((64, 64), np.float32)
    sk[10:26, 12:30], sk[36:54, 34:52], sk[40:50, 8:20] = 0.7, 0.5, 0.9
    return sk


def _sketch_3d() -> np.ndarray:
    sk = np.zeros((8, 32, 32), np.float32)
    sk[2:6, 4:14, 6:16], sk[3:7, 18:28, 16:26] = 0.8, 0.5
    return sk


def test_larger_t_start_moves_sdedit_output_further_from_the_sketch():
    """The shipped model (T = 1000): ZNCC(output, sketch) falls as t_start grows (3 seeds each)."""
    from cellsynth.generative.diffusion import load_model, sdedit
    from cellsynth.render.diffusion import default_model_path

    torch.set_num_threads(1)
    model = load_model(default_model_path())
    sk = _sketch_2d()
    t_starts = (1, 100, 300, 600, 900)
    similarity = [np.mean([zncc(sdedit(model, sk, t_start=t, steps=min(4, t), seed=s), sk) for s in range(3)])
                  for t in t_starts]
    assert all(a > b for a, b in zip(similarity, similarity[1:])), dict(zip(t_starts, similarity))
    assert similarity[0] > 0.9  # one step keeps the sketch's layout


def test_larger_t_start_moves_sdedit_output_further_from_the_sketch_3d(tmp_path):
    """Same claim in 3D with a tiny model (2 training steps): the noise level alone sets the distance."""
    from cellsynth.generative import diffusion as D
    from cellsynth.io import write_tiff

    rng = np.random.default_rng(0)
    for i in range(2):
        write_tiff(tmp_path / "imgs" / f"v{i}.tif", (rng.random((8, 24, 24)) * 200).astype(np.uint8))
    cfg = D.DiffusionTrainConfig(channels=[8, 16], batch_size=2, checkpoint_every=2, seed=0, threads=1,
                                 patch_size=[8, 16, 16], strides=[[1, 2, 2]])
    model = D.load_model(D.train_diffusion(tmp_path / "imgs", tmp_path / "m", cfg, steps=2, progress=False))
    sk = _sketch_3d()
    t_starts = (1, 200, 600, 950)
    similarity = [np.mean([zncc(D.sdedit(model, sk, t_start=t, steps=min(3, t), seed=s), sk) for s in range(3)])
                  for t in t_starts]
    assert all(a > b for a, b in zip(similarity, similarity[1:])), dict(zip(t_starts, similarity))


# an easy synthetic set the classical baseline finds hard: dim nuclei (intensity 0.12-1, darker
# towards the centre) of varied elongation, some touching
EASY = ["scene.shape=[64,64]", "scene.placement.n_points=[6,9]", "scene.placement.min_distance=9",
        "scene.nuclei.radius=[5,7]", "scene.nuclei.axis_scale=[[0.6,1.4],[0.6,1.4]]",
        "render.sketch.intensity=[0.12,1.0]", "render.sketch.background=0.05", "render.sketch.decay=center",
        "render.sketch.decay_strength=0.6", "render.sketch.sigma=1.0"]


@pytest.mark.slow
def test_trained_segmenter_beats_untrained_and_classical(tmp_path):
    """200 steps (about 20 s on one CPU thread) on 12 synthetic samples; scored on 6 held-back ones."""
    from cellsynth.segment.classical import classical_segment
    from cellsynth.segment.unet import SegmenterConfig, train_segmenter

    torch.set_num_threads(1)
    cfg = load_config("nuclei2d-dsb", overrides=EASY)
    train = generate_dataset(cfg, "sketch", 12, 0, tmp_path / "train", progress=False)
    test = generate_dataset(cfg, "sketch", 6, 1, tmp_path / "test", progress=False)  # other seed: held back
    net = dict(channels=[8, 16, 32], patch=[48, 48], batch_size=4, seed=0)
    trained = train_segmenter([train], tmp_path / "m", SegmenterConfig(steps=200, **net), device="cpu",
                              progress=False)
    # "untrained": one step at a vanishing learning rate, i.e. the initial weights
    untrained = train_segmenter([train], tmp_path / "m0", SegmenterConfig(steps=1, lr=1e-12, **net),
                                device="cpu", progress=False)

    def ap50(predict) -> float:
        return float(np.mean([score_segmentation(read_labels(m), predict(read_image(test / "images" / m.name)))
                              ["ap50"] for m in sorted((test / "masks").glob("*.tif"))]))

    a_trained, a_untrained, a_classical = ap50(trained.predict), ap50(untrained.predict), ap50(classical_segment)
    assert a_trained > a_classical + 0.1 and a_trained > a_untrained + 0.5, (a_trained, a_classical, a_untrained)


@pytest.mark.parametrize("shape, patch", [((40, 40), [32, 32]), ((12, 24, 24), [8, 16, 16])])
def test_segmenter_training_is_reproducible(tmp_path, shape, patch):
    """Same data and seed: the same weights (the initial weights come from the seed too)."""
    from cellsynth.segment.unet import SegmenterConfig, train_segmenter

    torch.set_num_threads(1)
    cfg = load_config("nuclei2d-dsb" if len(shape) == 2 else "nuclei3d-celegans",
                      overrides=[f"scene.shape={list(shape)}", "scene.placement.n_points=[2,4]",
                                 "scene.nuclei.radius=[3,5]", "scene.placement.min_distance=8"])
    data = generate_dataset(cfg, "sketch", 2, 0, tmp_path / "d", progress=False)
    nets = []
    for k, seed in enumerate((0, 0, 1)):
        seg = train_segmenter([data], tmp_path / f"m{k}", SegmenterConfig(channels=[4, 8], patch=patch, batch_size=2,
                                                                            steps=2, seed=seed),
                              device="cpu", progress=False)
        nets.append(seg.net.state_dict())
    assert all(torch.equal(nets[0][n], nets[1][n]) for n in nets[0])
    assert not all(torch.equal(nets[0][n], nets[2][n]) for n in nets[0])
