"""Choosing the renderer without labels: which renderer's images look like the user's images?

Which renderer trains the best segmenter differs from one image set to another, and a user
without annotations cannot score the Syn2Real arms. :func:`choose_renderer` ranks the renderers
by a label-free criterion computed between each renderer's synthetic images and the user's
*unannotated* real images:

- ``"auto"`` (default): ``"agreement"`` when segmentations from at least three renderers' segmenters
  are given (the Syn2Real benchmark trains them anyway), else ``"kid"`` (``cellsynth adapt`` chooses
  before it trains anything); :func:`resolve_criterion` says which one acts;
- ``"kid"``: kernel inception distance (Bińkowski et al. 2018) on the features of
  :class:`~cellsynth.metrics.image.StatisticsExtractor` (deterministic multi-scale filter statistics,
  no download; not Inception, so values compare only between runs of this extractor); lower is better;
- ``"fid"``: Fréchet distance on the same features; lower is better;
- ``"histogram"``: Bhattacharyya distance of the pooled percentile-normalised intensity histograms
  (Eschweiler et al. 2024 eq. 4); lower is better;
- ``"spectrum"``: mean |Δ log10| of the radially averaged power spectra; lower is better;
- ``"agreement"``: needs segmentations of the real images by a segmenter trained on each renderer's
  data (``predictions``): the mean AP@0.5 of one renderer's segmentations against every other
  renderer's (a renderer whose segmenter agrees with the others is less likely to be the odd one
  out); higher is better; needs at least three renderers.

No criterion picks the best renderer on every image set measured so far (``benchmarks/RESULTS.md``,
"Choosing the renderer without labels"). KID needs no trained segmenter and works in 2D and 3D, but
it judges the images alone: a renderer whose images look closer to the real ones while their labels fit
them less well (e.g. unlabelled realistic structure such as haze or debris) ranks high and trains a worse
segmenter. The agreement judges what the segmenters learned from images *and* labels together; chosen on
annotated training images held out of every training (``benchmarks/RESULTS.md``, "Label-free choice
chosen on held-out training images"), it is what ``"auto"`` uses whenever the segmenters exist. The
benchmark's Syn2Real-pooled arm avoids the choice of one renderer: it pools the renderers left after
dropping, one at a time, the least-agreeing one while its segmenter agrees significantly less than the
best-agreeing one's (:func:`agreeing_renderers`; at least two stay). Between the renderers that stay, the
agreement cannot decide: with three, which of two agrees more is decided by the third alone (on DSB the
weakest, sketch). So the benchmark's label-free choice with the agreement is that pool, not the
best-agreeing renderer (:func:`choice_text`; ``benchmarks/RESULTS.md``, "A tie in the agreement goes to
the pool").

All image criteria come from :func:`cellsynth.metrics.compare.compare_images`, the pipeline of
``cellsynth evaluate images``, so the numbers match that command for the same images.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from ..errors import ConfigError, InputError

CRITERIA = ("auto", "kid", "fid", "histogram", "spectrum", "agreement")
DEFAULT_CRITERION = "auto"
HIGHER_IS_BETTER = {"agreement"}
# significance level below which agreeing_renderers leaves a renderer out of the pool
POOL_ALPHA = 0.05

__all__ = ["choose_renderer", "renderer_distances", "agreement_per_image", "segmenter_agreement", "agreeing_renderers",
           "ranking", "resolve_criterion", "choice_text", "CRITERIA", "DEFAULT_CRITERION", "POOL_ALPHA"]


def resolve_criterion(criterion: str, n_segmented: int = 0) -> str:
    """The criterion that acts: ``"auto"`` is ``"agreement"`` with segmentations from at least three
    renderers' segmenters (``n_segmented``), else ``"kid"``; any other criterion is itself.

    >>> resolve_criterion("auto", 3), resolve_criterion("auto", 2), resolve_criterion("histogram", 3)
    ('agreement', 'kid', 'histogram')
    """
    if criterion not in CRITERIA:
        raise ConfigError(f"unknown renderer-choice criterion '{criterion}'; choose from {', '.join(CRITERIA)}")
    if criterion == "auto":
        return "agreement" if n_segmented >= 3 else "kid"
    return criterion


def _images(x, what: str) -> list[np.ndarray]:
    if isinstance(x, Mapping):
        x = list(x.values())
    out = [np.asarray(a) for a in x]
    if not out:
        raise InputError(f"{what}: no images")
    return out


def renderer_distances(real_images: Sequence[np.ndarray], synthetic_by_renderer: Mapping[str, Sequence[np.ndarray]],
                       *, seed: int = 0, extractor=None, progress: bool = False) -> dict[str, dict[str, float | None]]:
    """Label-free distances of each renderer's images to the real images (lower = closer).

    ``extractor``: features for KID/FID (default: the statistics extractor, wrapped in a
    :class:`~cellsynth.metrics.image.CachedExtractor` so the real images' features are computed once).

    Returns ``{renderer: {"kid", "fid", "histogram", "spectrum"}}``; ``kid``/``fid`` are None when
    either set has fewer than 2 images.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> real = [rng.normal(0, 1, (32, 32)) for _ in range(3)]
    >>> d = renderer_distances(real, {"same": [rng.normal(0, 1, (32, 32)) for _ in range(3)],
    ...                               "flat": [np.ones((32, 32)) * i for i in range(3)]})
    >>> d["same"]["histogram"] < d["flat"]["histogram"]
    True
    """
    from ..metrics.compare import compare_images
    from ..metrics.image import CachedExtractor, default_extractor

    ex = extractor if extractor is not None else CachedExtractor(default_extractor())
    real = _images(real_images, "real images")
    # distinct names: the sets are unpaired (no SSIM etc. between unrelated images)
    real_named = {f"real/{i}": a for i, a in enumerate(real)}
    out: dict[str, dict[str, float | None]] = {}
    for r, imgs in synthetic_by_renderer.items():
        syn = {f"{r}/{i}": a for i, a in enumerate(_images(imgs, f"renderer '{r}'"))}
        m = compare_images(real_named, syn, seed=seed, progress=progress, extractor=ex)
        out[r] = {"kid": m["features"]["kid"], "fid": m["features"]["fid"],
                  "histogram": m["histogram"]["bhattacharyya"], "spectrum": m["spectrum"]["log10_mae"]}
    return out


def agreement_per_image(predictions: Mapping[str, Sequence[np.ndarray]]) -> dict[str, np.ndarray]:
    """Each renderer's agreement per real image: the mean AP@0.5 of its segmentation of image ``i`` against
    every other renderer's (no ground truth involved); :func:`segmenter_agreement` is its mean over images.

    ``predictions[r][i]`` is the instance mask that the segmenter trained on renderer ``r``'s data
    predicts for real image ``i``. AP@0.5 = tp / (tp + fp + fn) is symmetric, so
    agreement(a, b) = agreement(b, a).

    Examples
    --------
    >>> a = np.zeros((16, 16), np.uint16); a[2:8, 2:8] = 1
    >>> b = np.zeros((16, 16), np.uint16); b[9:14, 9:14] = 1
    >>> agreement_per_image({"x": [a, a], "y": [a, b], "z": [b, b]})["y"].tolist()
    [0.5, 0.5]
    """
    from ..metrics.compare import score_segmentation

    names = list(predictions)
    if len(names) < 3:
        raise ConfigError(f"segmenter agreement needs at least 3 renderers, got {len(names)} ({', '.join(names)}): "
                          "with two, both agree equally")
    counts = {len(predictions[r]) for r in names}
    if len(counts) != 1 or 0 in counts:
        raise InputError("segmenter agreement: every renderer needs segmentations of the same real images "
                         f"(got counts {', '.join(f'{r}={len(predictions[r])}' for r in names)})")
    pair: dict[tuple[str, str], np.ndarray] = {}
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            pair[a, b] = pair[b, a] = np.array([score_segmentation(np.asarray(x), np.asarray(y))["ap50"]
                                                for x, y in zip(predictions[a], predictions[b])])
    return {a: np.mean([pair[a, b] for b in names if b != a], axis=0) for a in names}


def segmenter_agreement(predictions: Mapping[str, Sequence[np.ndarray]]) -> dict[str, float]:
    """Mean AP@0.5 of each renderer's segmentations against every other renderer's, on the same images
    (the mean over images of :func:`agreement_per_image`).

    Examples
    --------
    >>> a = np.zeros((16, 16), np.uint16); a[2:8, 2:8] = 1
    >>> b = np.zeros((16, 16), np.uint16); b[9:14, 9:14] = 1
    >>> agree = segmenter_agreement({"x": [a], "y": [a], "z": [b]})
    >>> agree["x"], agree["z"]
    (0.5, 0.0)
    """
    return {a: float(v.mean()) for a, v in agreement_per_image(predictions).items()}


def agreeing_renderers(predictions: Mapping[str, Sequence[np.ndarray]],
                       alpha: float = POOL_ALPHA) -> tuple[list[str], dict[str, float | None]]:
    """The renderers left after dropping, one at a time, the one whose segmenter agrees least, while it agrees
    significantly less than the best-agreeing one's and three or more renderers remain.

    Each round recomputes :func:`agreement_per_image` among the renderers still in (a dropped one no longer
    votes) and tests the least-agreeing one with a one-sided Wilcoxon signed-rank test over the real images
    of the per-image agreement (best minus it); it is dropped when p < ``alpha``. The elimination stops at
    two: two segmenters agree with each other equally, and with three the ranking of two of them is decided
    by how close each comes to the third alone. Only the least-agreeing renderer goes in a round: on DSB,
    testing every renderer against the best-agreeing one at once left out both sketch and a better physics
    segmenter that disagreed with sketch and with diffusion (whose renderer starts from sketch images)
    (``benchmarks/RESULTS.md``, "A tie in the agreement goes to the pool"). The Syn2Real benchmark pools the
    kept renderers' data, and that pool is its label-free choice.

    Returns
    -------
    (kept, p_values) : kept renderers in the order given; ``p_values[r]`` the p with which ``r`` was
        dropped, None for the kept ones.

    Examples
    --------
    >>> a = np.zeros((16, 16), np.uint16); a[2:8, 2:8] = 1
    >>> b = np.zeros((16, 16), np.uint16); b[9:14, 9:14] = 1
    >>> kept, p = agreeing_renderers({"x": [a] * 6, "y": [a] * 6, "z": [b] * 6})
    >>> kept, round(p["z"], 4), p["x"]
    (['x', 'y'], 0.0156, None)
    """
    from scipy.stats import wilcoxon

    if not 0 < alpha < 1:
        raise ConfigError(f"alpha {alpha}: must be in (0, 1)")
    kept = list(predictions)
    p_values: dict[str, float | None] = {r: None for r in kept}
    while True:
        per = agreement_per_image({r: predictions[r] for r in kept})  # refuses fewer than 3 renderers
        mean = {r: float(per[r].mean()) for r in kept}
        top, worst = max(kept, key=mean.get), min(kept, key=mean.get)
        d = per[top] - per[worst]
        # all-equal agreement (e.g. identical segmentations): nothing to tell the renderers apart
        if worst == top or not np.any(d):
            break
        p = float(wilcoxon(d, alternative="greater").pvalue)
        if p >= alpha:
            break
        p_values[worst] = p
        kept.remove(worst)
        if len(kept) < 3:
            break
    return kept, p_values


def choose_renderer(real_images: Sequence[np.ndarray], synthetic_by_renderer: Mapping[str, Sequence[np.ndarray]],
                    criterion: str = DEFAULT_CRITERION, *,
                    predictions: Mapping[str, Sequence[np.ndarray]] | None = None,
                    seed: int = 0, extractor=None,
                    progress: bool = False) -> tuple[str, dict[str, dict[str, float | None]]]:
    """The renderer whose synthetic data should suit the user's unannotated ``real_images`` best.

    Parameters
    ----------
    real_images : the user's images (2D or 3D arrays, no labels), e.g. the images ``cellsynth fit`` saw.
    synthetic_by_renderer : renderer name → its synthetic images (same dimensionality).
    criterion : one of :data:`CRITERIA` (see the module docstring); default ``"auto"`` (agreement with
        ``predictions`` for at least three renderers, else KID; :func:`resolve_criterion`).
    predictions : renderer name → segmentations of ``real_images`` (or of a common subset) by a segmenter
        trained on that renderer's data; needed for ``"agreement"``, reported as ``scores[r]["agreement"]``
        whenever given for at least three renderers.
    seed : seed of the KID subsets.
    extractor : features for KID/FID (default: the statistics extractor, cached; see :func:`renderer_distances`).

    Returns
    -------
    (name, scores) : the chosen renderer and ``scores[renderer] = {"kid", "fid", "histogram", "spectrum"
        [, "agreement"]}`` for every renderer (all criteria, whichever one chose).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> def blobs(sigma):  # bright discs on a noisy background, blurred by sigma px
    ...     from scipy.ndimage import gaussian_filter
    ...     out = []
    ...     for _ in range(4):
    ...         im = rng.normal(10, 1, (48, 48)); im[8:20, 8:20] += 50; im[28:40, 26:38] += 50
    ...         out.append(gaussian_filter(im, sigma))
    ...     return out
    >>> name, scores = choose_renderer(blobs(2.0), {"sharp": blobs(0.0), "matched": blobs(2.0)})
    >>> name, sorted(scores["matched"])
    ('matched', ['fid', 'histogram', 'kid', 'spectrum'])
    """
    criterion = resolve_criterion(criterion, len(predictions or {}))
    if not synthetic_by_renderer:
        raise InputError("choose_renderer: no renderers to choose from")
    if criterion == "agreement" and predictions is None:
        raise ConfigError("criterion 'agreement' needs the segmentations of the real images per renderer "
                          "(predictions=...)")
    real = _images(real_images, "real images")
    nd = {a.ndim for a in real}
    for imgs in synthetic_by_renderer.values():
        nd |= {np.ndim(a) for a in imgs}
    if len(nd) != 1:
        raise InputError(f"real and synthetic images must all be 2D or all 3D (got {sorted(nd)}D)")
    scores = renderer_distances(real, synthetic_by_renderer, seed=seed, extractor=extractor, progress=progress)
    if predictions is not None and (criterion == "agreement" or len(predictions) >= 3):
        missing = sorted(set(synthetic_by_renderer) - set(predictions))
        if missing:
            raise InputError(f"no segmentations for renderer '{missing[0]}' (predictions)")
        for r, v in segmenter_agreement({r: predictions[r] for r in synthetic_by_renderer}).items():
            scores[r]["agreement"] = v
    vals = {r: s[criterion] for r, s in scores.items() if s.get(criterion) is not None
            and np.isfinite(s[criterion])}
    if not vals:
        raise InputError(f"criterion '{criterion}' could not be computed (KID/FID need at least 2 real and 2 "
                         "synthetic images per renderer)")
    pick = max if criterion in HIGHER_IS_BETTER else min
    return pick(vals, key=vals.get), scores


def ranking(scores: Mapping[str, Mapping[str, float | None]], criterion: str) -> list[str]:
    """Renderers from best to worst by ``criterion`` (renderers without that score last).

    >>> ranking({"a": {"kid": 0.2}, "b": {"kid": 0.1}, "c": {"kid": None}}, "kid")
    ['b', 'a', 'c']
    """
    sign = -1.0 if criterion in HIGHER_IS_BETTER else 1.0
    have = [r for r, s in scores.items() if s.get(criterion) is not None and np.isfinite(s[criterion])]
    return sorted(have, key=lambda r: sign * scores[r][criterion]) + [r for r in scores if r not in have]


def choice_text(choice: Mapping) -> str:
    """A label-free choice (``chosen``, ``chosen_renderers``) in words: a renderer, or the pool of the
    renderers whose segmenters' agreement does not single one out.

    >>> choice_text({"chosen": "physics", "chosen_renderers": ["physics"]})
    'physics'
    >>> choice_text({"chosen": "pooled", "chosen_renderers": ["physics", "diffusion"]})
    'the pool of physics + diffusion (their agreement does not single one out)'
    """
    if choice["chosen"] != "pooled":
        return choice["chosen"]
    return f"the pool of {' + '.join(choice['chosen_renderers'])} (their agreement does not single one out)"
