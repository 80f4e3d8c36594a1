"""Label-free renderer choice (benchmark/choose.py): picks the renderer that made the 'real' images, 2D and 3D."""
from __future__ import annotations

import numpy as np
import pytest

from cellsynth.benchmark import choose
from cellsynth.errors import ConfigError, InputError
from cellsynth.render import make_renderer
from cellsynth.scene import Scene


def _scene(shape, rng, radius):
    """Random non-overlapping balls (discs in 2D)."""
    grids = np.ogrid[tuple(slice(0, s) for s in shape)]
    labels = np.zeros(shape, np.uint16)
    for i in range(1, 6):
        c = rng.uniform(radius, np.array(shape) - radius)
        d2 = sum((g - ci) ** 2 for g, ci in zip(grids, c))
        labels[(d2 <= radius ** 2) & (labels == 0)] = i
    return Scene(labels, np.ones(shape, bool), (1.0,) * len(shape), {i: "nucleus" for i in range(1, 6)})


def _render(renderer: str, shape, seed: int, n: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    r = make_renderer(renderer)
    radius = 6 if len(shape) == 2 else 4
    return [np.asarray(r.render(_scene(shape, rng, radius), rng), np.float32) for _ in range(n)]


@pytest.mark.parametrize("shape", [(48, 48), (12, 32, 32)])
@pytest.mark.parametrize("criterion", ["kid", "fid", "histogram", "spectrum"])
@pytest.mark.parametrize("truth", ["physics", "sketch"])
def test_choice_finds_the_renderer_that_made_the_real_images(shape, criterion, truth):
    real = _render(truth, shape, seed=0, n=6)  # 'real' images: one renderer, other scenes and seeds
    syn = {r: _render(r, shape, seed=1, n=6) for r in ("physics", "sketch")}
    name, scores = choose.choose_renderer(real, syn, criterion)
    assert name == truth, scores
    assert set(scores) == {"physics", "sketch"}
    assert set(scores["physics"]) == {"kid", "fid", "histogram", "spectrum"}
    assert choose.ranking(scores, criterion)[0] == truth


def test_default_criterion_and_agreement():
    assert choose.DEFAULT_CRITERION in choose.CRITERIA
    real = _render("physics", (32, 32), seed=0, n=2)
    syn = {r: _render(r, (32, 32), seed=1, n=2) for r in ("physics", "sketch")}
    syn["other"] = _render("sketch", (32, 32), seed=2, n=2)
    a = np.zeros((32, 32), np.uint16)
    a[2:10, 2:10], a[20:28, 20:28] = 1, 2
    b = np.zeros_like(a)
    b[12:18, 12:18] = 1
    # two segmenters agree, the third finds something else: the odd one out scores lowest
    preds = {"physics": [a, a], "sketch": [a, a], "other": [b, b]}
    name, scores = choose.choose_renderer(real, syn, "agreement", predictions=preds)
    assert name in ("physics", "sketch")
    # "auto" (the default) is the agreement when three renderers' segmentations are given, KID otherwise
    assert choose.DEFAULT_CRITERION == "auto"
    preds_odd = {"physics": [b, b], "sketch": [a, a], "other": [a, a]}  # physics is the odd one out
    auto, sc = choose.choose_renderer(real, syn, predictions=preds_odd)
    assert auto != "physics" and auto == max(sc, key=lambda r: sc[r]["agreement"])
    assert choose.choose_renderer(real, syn)[0] == choose.choose_renderer(real, syn, "kid")[0]
    assert [choose.resolve_criterion("auto", k) for k in (0, 2, 3)] == ["kid", "kid", "agreement"]
    assert scores["physics"]["agreement"] == pytest.approx(0.5) and scores["other"]["agreement"] == 0.0
    # predictions given to an image criterion are still reported
    _, scores = choose.choose_renderer(real, syn, "histogram", predictions=preds)
    assert scores["other"]["agreement"] == 0.0


def test_bad_inputs():
    real = _render("physics", (32, 32), seed=0, n=2)
    syn = {"physics": _render("physics", (32, 32), seed=1, n=2)}
    with pytest.raises(ConfigError, match="criterion 'oracle'"):
        choose.choose_renderer(real, syn, "oracle")
    with pytest.raises(ConfigError, match="predictions"):
        choose.choose_renderer(real, syn, "agreement")
    with pytest.raises(InputError, match="no renderers"):
        choose.choose_renderer(real, {})
    with pytest.raises(InputError, match="real images: no images"):
        choose.choose_renderer([], syn)
    with pytest.raises(InputError, match="2D or all 3D"):
        choose.choose_renderer(real, {"x": [np.zeros((4, 32, 32))] * 2})
    with pytest.raises(InputError, match="at least 2"):  # KID needs two images per set
        choose.choose_renderer(real[:1], syn, "kid")
    a = np.zeros((8, 8), np.uint16)
    with pytest.raises(ConfigError, match="at least 3 renderers"):
        choose.segmenter_agreement({"x": [a], "y": [a]})
    with pytest.raises(InputError, match="same real images"):
        choose.segmenter_agreement({"x": [a], "y": [a], "z": [a, a]})
    with pytest.raises(InputError, match="no segmentations for renderer 'z'"):
        choose.choose_renderer(real, {**syn, "y": syn["physics"], "z": syn["physics"]}, "agreement",
                               predictions={"physics": [a], "y": [a], "q": [a]})


def test_cached_features_give_the_same_scores():
    """The benchmark shares one feature cache between sets: the numbers are those without a cache."""
    from cellsynth.metrics.image import CachedExtractor, default_extractor

    real = _render("physics", (32, 32), seed=0, n=3)
    syn = {r: _render(r, (32, 32), seed=1, n=3) for r in ("physics", "sketch")}
    ex = CachedExtractor(default_extractor())
    cached = choose.renderer_distances(real, syn, extractor=ex)
    assert ex.hits == 3  # the real images' features were computed once for two renderers
    assert cached == choose.renderer_distances(real, syn, extractor=default_extractor())


def test_agreeing_renderers_leave_out_only_the_significant_odd_one():
    """The pool keeps every renderer unless its segmenter agrees significantly less than the best one's."""
    a = np.zeros((32, 32), np.uint16)
    a[2:10, 2:10], a[20:28, 20:28] = 1, 2
    b = np.zeros_like(a)
    b[12:18, 12:18] = 1
    preds = {"physics": [a] * 8, "sketch": [b] * 8, "diffusion": [a] * 8}
    per = choose.agreement_per_image(preds)
    assert {r: float(v.mean()) for r, v in per.items()} == choose.segmenter_agreement(preds)
    kept, p = choose.agreeing_renderers(preds)
    assert kept == ["physics", "diffusion"] and p["physics"] is None and p["diffusion"] is None
    assert p["sketch"] < choose.POOL_ALPHA
    # four images cannot make a difference significant at 0.05 (one-sided exact p >= 1/16): all kept
    few = {r: v[:4] for r, v in preds.items()}
    kept, p = choose.agreeing_renderers(few)
    assert kept == ["physics", "sketch", "diffusion"] and set(p.values()) == {None}
    # one odd image among eight: not a consistent disagreement
    mixed = {"physics": [a] * 8, "sketch": [b] + [a] * 7, "diffusion": [a] * 8}
    assert choose.agreeing_renderers(mixed)[0] == ["physics", "sketch", "diffusion"]
    with pytest.raises(ConfigError, match="alpha 1.5"):
        choose.agreeing_renderers(preds, alpha=1.5)
    with pytest.raises(ConfigError, match="at least 3 renderers"):
        choose.agreeing_renderers({"x": [a], "y": [a]})


def test_agreeing_renderers_drop_one_at_a_time_and_keep_two():
    """Only the least-agreeing renderer goes in a round, and the agreement is recomputed without its vote.

    Squares at 16 places; each renderer's segmenter finds a subset on every image. Diffusion agrees most,
    physics less (it disagrees with sketch), sketch least: the least-agreeing, sketch, goes; physics, though
    below diffusion on every image, stays (the last two cannot be ranked by agreeing with each other)."""
    def field(places):
        lab = np.zeros((48, 48), np.uint16)
        for j, k in enumerate(places, 1):
            y, x = 2 + 12 * (k // 4), 2 + 12 * (k % 4)
            lab[y:y + 8, x:x + 8] = j
        return lab
    sets = {"physics": range(10), "sketch": [0, 1, 2, 3, 10, 11, 12, 13], "diffusion": [*range(8), 10, 11]}
    preds = {r: [field(v)] * 8 for r, v in sets.items()}
    mean = choose.segmenter_agreement(preds)
    assert mean["sketch"] < mean["physics"] < mean["diffusion"]
    kept, p = choose.agreeing_renderers(preds)
    assert kept == ["physics", "diffusion"] and p["sketch"] < choose.POOL_ALPHA and p["physics"] is None
    # a fourth that agrees with no one goes first; the three vote again without it
    kept, p = choose.agreeing_renderers({**preds, "other": [field([14, 15])] * 8})
    assert kept == ["physics", "diffusion"] and p["other"] < choose.POOL_ALPHA and p["sketch"] < choose.POOL_ALPHA
