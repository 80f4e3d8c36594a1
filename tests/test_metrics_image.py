"""Image realism metrics: checked against scikit-image and closed-form cases, 2D and 3D."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import ndimage
from skimage import metrics as skm

from cellsynth.errors import InputError
from cellsynth.metrics import image as im


@pytest.fixture(params=[(32, 40), (12, 20, 24)], ids=["2d", "3d"])
def pair(request, rng):
    a = rng.random(request.param)
    b = np.clip(a + 0.1 * rng.standard_normal(a.shape), 0, 1)
    return a, b


def test_paired_metrics_match_skimage(pair):
    a, b = pair
    assert im.ssim(a, b, data_range=1.0) == pytest.approx(skm.structural_similarity(a, b, data_range=1.0))
    assert im.psnr(a, b, data_range=1.0) == pytest.approx(skm.peak_signal_noise_ratio(a, b, data_range=1.0))
    assert im.nrmse(a, b) == pytest.approx(skm.normalized_root_mse(a, b))
    assert im.nrmse(a, b, "min-max") == pytest.approx(skm.normalized_root_mse(a, b, normalization="min-max"))
    # default data_range is the joint range of both images, not the dtype range
    dr = max(a.max(), b.max()) - min(a.min(), b.min())
    assert im.psnr(a, b) == pytest.approx(skm.peak_signal_noise_ratio(a, b, data_range=dr))


def test_identical_images_are_perfect(pair):
    a, _ = pair
    assert im.ssim(a, a) == pytest.approx(1.0)
    assert im.psnr(a, a) == float("inf")
    assert im.nrmse(a, a) == 0.0
    assert im.zncc(a, a) == pytest.approx(1.0)
    assert im.ncc(a, a) == pytest.approx(1.0)
    assert im.histogram_distance(a, a) == pytest.approx(0.0, abs=1e-12)
    assert im.histogram_kl(a, a) == pytest.approx(0.0, abs=1e-12)


def test_zncc_is_pearson_and_affine_invariant(pair):
    a, b = pair
    assert im.zncc(a, b) == pytest.approx(np.corrcoef(a.ravel(), b.ravel())[0, 1])
    assert im.zncc(a, 3 * b + 7) == pytest.approx(im.zncc(a, b))
    assert im.zncc(a, -b) == pytest.approx(-im.zncc(a, b))
    # ncc is not offset-invariant
    assert im.ncc(a, b + 5) != pytest.approx(im.ncc(a, b))
    assert im.zncc(a, np.ones_like(a)) == 0.0


def test_ssim_small_3d_axis_shrinks_window(rng):
    a = rng.random((5, 16, 16))
    assert im.ssim(a, a) == pytest.approx(1.0)
    with pytest.raises(InputError, match="3 pixels"):
        im.ssim(rng.random((2, 16, 16)), rng.random((2, 16, 16)))


@pytest.mark.parametrize("fn", [im.ssim, im.psnr, im.nrmse, im.zncc, im.ncc])
def test_paired_input_validation(fn, rng):
    a = rng.random((16, 16))
    with pytest.raises(InputError, match="same shape"):
        fn(a, rng.random((16, 17)))
    bad = a.copy()
    bad[3, 3] = np.nan
    with pytest.raises(InputError, match="image_test contains NaN"):
        fn(a, bad)
    with pytest.raises(InputError, match="image_true contains NaN"):
        fn(bad, a)


def test_bhattacharyya_closed_form():
    p = np.array([0.5, 0.5, 0.0])
    q = np.array([0.0, 0.5, 0.5])
    # BC = sqrt(.25) = 0.5
    assert im.bhattacharyya(p, q) == pytest.approx(np.log(2))
    assert im.bhattacharyya(p, q, form="hellinger") == pytest.approx(np.sqrt(0.5))
    assert im.bhattacharyya([1, 0], [0, 1]) == float("inf")
    assert im.bhattacharyya([1, 0], [0, 1], form="hellinger") == pytest.approx(1.0)
    # unnormalised counts are normalised
    assert im.bhattacharyya([2, 2, 0], [0, 7, 7]) == pytest.approx(np.log(2))


def test_kl_closed_form_and_asymmetry():
    p = np.array([0.5, 0.5])
    q = np.array([0.9, 0.1])
    expect = 0.5 * np.log(0.5 / 0.9) + 0.5 * np.log(0.5 / 0.1)
    assert im.kl_divergence(p, q, eps=0) == pytest.approx(expect)
    assert im.kl_divergence(q, p, eps=0) != pytest.approx(expect)
    # q empty where p is not: finite with smoothing
    v = im.kl_divergence([1, 1], [1, 0], eps=1e-10)
    assert np.isfinite(v) and v > 5


def test_histogram_distance_unpaired_and_lists(rng):
    a = rng.normal(0.3, 0.05, (40, 40))
    b = rng.normal(0.3, 0.05, (8, 30, 30))  # different shape and ndim: unpaired
    c = rng.normal(0.6, 0.05, (40, 40))
    near, far = im.histogram_distance(a, b, bins=64), im.histogram_distance(a, c, bins=64)
    assert near < 0.05 < far
    # lists are pooled
    assert im.histogram_distance([a, a], [b]) == pytest.approx(im.histogram_distance(a, b))
    with pytest.raises(InputError, match=r"b\[1\] contains NaN"):
        im.histogram_distance([a], [b, np.full((3, 3), np.nan)])
    with pytest.raises(InputError, match="no values inside range"):
        im.histogram_distance(a, c, range=(0.0, 0.3))


@settings(max_examples=25, deadline=None)
@given(st.lists(st.floats(0, 10), min_size=4, max_size=4), st.lists(st.floats(0, 10), min_size=4, max_size=4))
def test_histogram_distances_nonnegative_symmetric(p, q):
    if sum(p) == 0 or sum(q) == 0:
        return
    d = im.bhattacharyya(p, q)
    assert d >= 0 and d == pytest.approx(im.bhattacharyya(q, p))
    assert 0 <= im.bhattacharyya(p, q, form="hellinger") <= 1
    assert im.kl_divergence(p, q) >= 0


@pytest.mark.parametrize("shape", [(64, 64), (16, 32, 32)])
def test_power_spectrum_white_noise_is_flat(shape, rng):
    x = rng.normal(0, 2.0, shape)
    f, p = im.radial_power_spectrum(x)
    assert f[0] > 0 and f[-1] == pytest.approx(0.5)
    assert np.median(p) == pytest.approx(4.0, rel=0.15)  # variance σ² = 4


def test_power_spectrum_peak_at_sinusoid_and_spacing():
    n = 64
    y, x = np.mgrid[:n, :n]
    img = np.sin(2 * np.pi * 8 / n * x)  # 8 cycles over 64 px = 0.125 cycles/px
    f, p = im.radial_power_spectrum(img)
    assert f[np.argmax(p)] == pytest.approx(0.125)
    f2, p2 = im.radial_power_spectrum(img, spacing=(0.5, 0.5))  # in cycles/µm
    assert f2[np.argmax(p2)] == pytest.approx(0.25)
    with pytest.raises(InputError, match="spacing"):
        im.radial_power_spectrum(img, spacing=(1.0,))


def test_intensity_profile_center_xz_slice():
    vol = np.zeros((4, 5, 6))
    vol[:, 2, :] = np.arange(6)  # centre y slice holds a ramp along x
    vol[:, 0, :] = 100.0  # not the centre slice: must be ignored
    prof = im.intensity_profile(vol, axis=-1, center_axis=1)
    assert np.allclose(prof, 4 * np.arange(6))  # integrated over z (4 slices)
    assert np.allclose(im.intensity_profile(vol[:, 2, :], axis=1, reduce="mean"), np.arange(6))
    with pytest.raises(InputError, match="out of range"):
        im.intensity_profile(vol, axis=3)


def test_fid_closed_form_and_identity(rng):
    a = rng.normal(0, 1, (400, 3))
    assert im.fid(a, a) == pytest.approx(0.0, abs=1e-6)
    b = a + np.array([1.0, 2.0, 0.0])  # mean shift only: FID = |Δμ|² = 5
    assert im.fid(a, b) == pytest.approx(5.0, rel=1e-6)
    c = 2 * a  # μ doubled, covariance scaled by 4: |μ|² + Tr(Σ + 4Σ - 2·2Σ) = |μ|² + Tr(Σ)
    expect = np.sum(a.mean(0) ** 2) + np.trace(np.cov(a, rowvar=False))
    assert im.fid(a, c) == pytest.approx(expect, rel=1e-6)
    with pytest.raises(InputError, match="feats_b has 4"):
        im.fid(a, rng.normal(size=(10, 4)))
    with pytest.raises(InputError, match="at least 2 samples"):
        im.fid(a, a[:1])


def test_kid_unbiased_near_zero_for_same_distribution(rng):
    a = rng.normal(0, 1, (200, 8))
    b = rng.normal(0, 1, (200, 8))
    c = rng.normal(0.5, 1, (200, 8))
    same, _ = im.kid(a, b, n_subsets=20, subset_size=100)
    diff, _ = im.kid(a, c, n_subsets=20, subset_size=100)
    assert abs(same) < 0.05 < diff
    assert im.kid(a, c, n_subsets=5, seed=3) == im.kid(a, c, n_subsets=5, seed=3)


def test_kid_matches_direct_formula(rng):
    x, y = rng.normal(size=(5, 3)), rng.normal(size=(5, 3))
    k = lambda u, v: (u @ v / 3 + 1) ** 3  # noqa: E731
    m = 5
    kxx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    kyy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    kxy = sum(k(x[i], y[j]) for i in range(m) for j in range(m)) / m**2
    mean, std = im.kid(x, y, n_subsets=3, subset_size=5)  # subset = whole set
    assert mean == pytest.approx(kxx + kyy - 2 * kxy) and std == pytest.approx(0.0, abs=1e-9)


def test_statistics_extractor_deterministic_2d_3d(rng):
    ex = im.default_extractor()
    assert "NOT Inception" in ex.note
    imgs2 = [rng.random((32, 32)), rng.random((48, 40))]
    f = ex(imgs2)
    assert f.shape == (2, ex.n_features) and np.all(np.isfinite(f))
    assert np.array_equal(f, ex(imgs2))
    f3 = ex([rng.random((8, 24, 24))])
    assert f3.shape == (1, ex.n_features)
    # smooth vs noisy images are separated by FID on these features
    from scipy import ndimage
    noisy = [rng.random((32, 32)) for _ in range(12)]
    smooth = [ndimage.gaussian_filter(rng.random((32, 32)), 2) for _ in range(12)]
    noisy2 = [rng.random((32, 32)) for _ in range(12)]
    assert im.fid(ex(noisy), ex(noisy2)) < im.fid(ex(noisy), ex(smooth))


def test_inception_extractor_never_downloads(tmp_path):
    with pytest.raises(InputError, match="do not exist"):
        im.InceptionExtractor(tmp_path / "missing.safetensors")
    w = tmp_path / "w.safetensors"
    w.write_bytes(b"x")
    try:
        import torchvision  # noqa: F401
    except ImportError:
        with pytest.raises(InputError, match="torchvision"):
            im.InceptionExtractor(w)


@pytest.mark.parametrize("shape", [(32, 48), (16, 24, 32)])
def test_checkerboard_index_flags_period_two_patterns(shape):
    rng = np.random.default_rng(0)
    smooth = ndimage.gaussian_filter(rng.normal(size=shape), 2)
    noise = rng.normal(size=shape)
    assert im.checkerboard_index(smooth) < 1 and im.checkerboard_index(noise) < 2
    grid = np.indices(shape).sum(0)
    board = smooth + 0.3 * smooth.std() * (-1.0) ** grid   # a faint checkerboard on a smooth image
    # the index is at most the number of upper-band frequencies (~n/4): > 3 is a clear peak
    assert im.checkerboard_index(board) > 3
    with pytest.raises(InputError):
        im.checkerboard_index(np.full(shape, np.nan))
