"""Label-free size regressor (segment/scale_features.py): features, fit, prediction, errors, 2D and 3D."""
from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import ndimage as ndi

from cellsynth.errors import ConfigError, InputError
from cellsynth.segment.rescale import labels_diameter
from cellsynth.segment.scale_features import SIGMAS, fit_size_model, predict_diameter, scale_features
from shapes import ball_labels

SHAPE = {2: (96, 96), 3: (40, 48, 48)}
N_OBJECTS = {2: 6, 3: 4}


def _pair(ndim: int, radius: float, seed: int):
    """(image, labels): non-touching discs / balls of one radius, blurred, on a noisy dim background."""
    rng = np.random.default_rng(seed)
    lab = ball_labels(SHAPE[ndim], radius, N_OBJECTS[ndim], rng)
    img = 0.1 + ndi.gaussian_filter((lab > 0).astype(np.float32), 1.0) + rng.normal(0, 0.05, lab.shape)
    return img.astype(np.float32), lab


def _fit(ndim: int, radii, seeds=(0, 1)):
    pairs = [_pair(ndim, r, s) for r in radii for s in seeds]
    return fit_size_model([p[0] for p in pairs], [p[1] for p in pairs])


@pytest.mark.parametrize("ndim", [2, 3])
def test_features_fixed_length_finite_and_contrast_invariant(ndim):
    img, _ = _pair(ndim, 5, 0)
    f = scale_features(img)
    assert f.shape == (3 * len(SIGMAS) + 1,) and np.isfinite(f).all()
    np.testing.assert_allclose(scale_features(3.0 * img + 7.0), f, rtol=1e-4, atol=1e-6)
    # the three spectra are normalised distributions over σ
    for k in range(3):
        assert scale_features(img)[k * len(SIGMAS):(k + 1) * len(SIGMAS)].sum() == pytest.approx(1.0)


@pytest.mark.parametrize("ndim", [2, 3])
def test_spectrum_moves_to_larger_sigma_with_object_size(ndim):
    # the bright-blob peak spectrum's log-σ centroid grows with the radius (no labels, no classical)
    n = len(SIGMAS)
    centroids = [scale_features(_pair(ndim, r, 0)[0])[n:2 * n] @ np.log(SIGMAS) for r in (3, 5, 8)]
    assert centroids[0] < centroids[1] < centroids[2]


@pytest.mark.parametrize("ndim,radii,unseen", [(2, (3, 4, 6, 9, 12), 7.5), (3, (3, 4, 6, 8), 5)])
def test_regressor_predicts_an_unseen_size(ndim, radii, unseen):
    model = _fit(ndim, radii)
    assert model["ndim"] == ndim and model["n"] == 2 * len(radii) and model["ridge"]["alpha"] > 0
    img, lab = _pair(ndim, unseen, 7)
    assert predict_diameter(model, img) == pytest.approx(labels_diameter(lab), rel=0.2)


def test_model_round_trips_through_json():
    model = _fit(2, (3, 5, 8))
    back = json.loads(json.dumps(model))
    img, _ = _pair(2, 6, 3)
    assert back == model
    assert predict_diameter(back, img) == predict_diameter(model, img)


def test_pairs_without_objects_are_skipped():
    img, lab = _pair(2, 4, 0)
    model = _fit(2, (3, 5, 8))
    with_empty = fit_size_model([_pair(2, r, s)[0] for r in (3, 5, 8) for s in (0, 1)] + [img],
                                [_pair(2, r, s)[1] for r in (3, 5, 8) for s in (0, 1)] + [np.zeros_like(lab)])
    assert with_empty["n"] == model["n"] == 6
    assert with_empty["ridge"]["weights"] == pytest.approx(model["ridge"]["weights"])


def test_bad_input_errors():
    img, lab = _pair(2, 4, 0)
    empty = np.zeros_like(lab)
    with pytest.raises(ConfigError, match="at least 4 pairs"):
        fit_size_model([img, img, img, img], [lab, lab, lab, empty])
    with pytest.raises(ConfigError, match="2 images but 1 masks"):
        fit_size_model([img, img], [lab])
    bad = img.copy()
    bad[0, 0] = np.nan
    with pytest.raises(InputError, match="image 1 contains NaN"):
        fit_size_model([img, bad, img], [lab, lab, lab])
    with pytest.raises(InputError, match="mask 0 has shape"):
        fit_size_model([img], [lab[:10]])
    with pytest.raises(InputError, match="mask 0 must be integer"):
        fit_size_model([img], [lab.astype(np.float32)])
    with pytest.raises(InputError, match="mixed dimensionality"):
        img3, lab3 = _pair(3, 3, 0)
        fit_size_model([img, img3, img], [lab, lab3, lab])
    with pytest.raises(InputError, match="2D .* or 3D"):
        scale_features(np.zeros((2, 4, 8, 8)))
    with pytest.raises(InputError, match="constant"):
        scale_features(np.full((32, 32), 5.0))

    model = _fit(2, (3, 5, 8))
    with pytest.raises(InputError, match="image is 3D but the size model was fitted on 2D"):
        predict_diameter(model, _pair(3, 3, 0)[0])
    with pytest.raises(InputError, match="NaN"):
        predict_diameter(model, bad)
    assert predict_diameter(model, np.full((32, 32), 5.0)) is None
    with pytest.raises(ConfigError, match="not a cellsynth.size_model"):
        predict_diameter({"weights": []}, img)
    with pytest.raises(ConfigError, match="version"):
        predict_diameter({**model, "version": 99}, img)
    with pytest.raises(ConfigError, match="made for 2 features"):
        predict_diameter({**model, "ridge": {**model["ridge"], "weights": [0.0, 1.0], "mean": [0.0, 0.0],
                                             "scale": [1.0, 1.0]}}, img)
    with pytest.raises(ConfigError, match="no 'ridge'"):
        predict_diameter({k: v for k, v in model.items() if k != "ridge"}, img)


def test_gate_picks_the_classical_estimate_where_they_agree():
    from cellsynth.segment.rescale import image_diameter
    model = _fit(2, (3, 5, 8))
    img, _ = _pair(2, 6, 3)
    alone = predict_diameter({**model, "gate_log2": 0.0}, img)
    assert alone != image_diameter(img)
    assert predict_diameter({**model, "gate_log2": 10.0}, img) == pytest.approx(image_diameter(img))
    assert _fit(2, (3, 5, 8)) == model  # deterministic
    pairs = [_pair(2, r, s) for r in (3, 5, 8) for s in (0, 1)]
    only = fit_size_model([p[0] for p in pairs], [p[1] for p in pairs], gates=[0.25])
    assert only["gate_log2"] == 0.25
    with pytest.raises(ConfigError, match="gates"):
        fit_size_model([p[0] for p in pairs], [p[1] for p in pairs], gates=[])
    with pytest.raises(ConfigError, match="gate_log2"):
        predict_diameter({**model, "gate_log2": -1}, img)
