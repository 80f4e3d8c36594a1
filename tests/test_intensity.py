"""The one percentile normalisation (cellsynth.intensity), 2D and 3D."""
import numpy as np
import pytest

from cellsynth.errors import InputError
from cellsynth.intensity import DEFAULT_PERCENTILES, normalize_percentile, percentile_range


@pytest.mark.parametrize("shape", [(32, 32), (8, 16, 16)])
def test_percentiles_map_to_output_range(shape):
    rng = np.random.default_rng(0)
    a = rng.integers(20000, 24096, shape).astype(np.uint16)
    lo, hi = np.percentile(a, [1.0, 99.8])
    n = normalize_percentile(a, 1.0, 99.8)
    assert n.dtype == np.float32 and n.shape == a.shape
    # unclipped by default: the tails stay outside [0, 1]
    assert n.min() < 0 and n.max() > 1
    np.testing.assert_allclose(n, (a - lo) / (hi - lo), rtol=1e-5, atol=1e-6)
    c = normalize_percentile(a, 1.0, 99.8, clip=True)
    assert c.min() == 0 and c.max() == 1
    np.testing.assert_allclose(c, np.clip(n, 0, 1))
    m = normalize_percentile(a, 1.0, 99.8, out=(-1, 1), clip=True)
    assert m.min() == -1 and m.max() == 1
    np.testing.assert_allclose(m, np.clip(n * 2 - 1, -1, 1), atol=1e-6)
    a.flat[0], a.flat[1] = 0, 65535  # tails far outside the percentiles
    w = normalize_percentile(a, 1.0, 99.8, clip=(-0.2, 1.2))
    assert w.min() == pytest.approx(-0.2) and w.max() == pytest.approx(1.2)


@pytest.mark.parametrize("shape", [(24, 24), (6, 12, 12)])
def test_precomputed_range_gives_the_same_patch(shape):
    """Normalising a patch with the whole image's percentiles equals cutting the normalised image."""
    rng = np.random.default_rng(1)
    a = rng.gamma(2.0, 100.0, shape).astype(np.float32)
    full = normalize_percentile(a, *DEFAULT_PERCENTILES, out=(-1, 1), clip=True)
    sl = tuple(slice(2, s - 2) for s in shape)
    lohi = percentile_range(a, *DEFAULT_PERCENTILES)
    np.testing.assert_array_equal(normalize_percentile(a[sl], lo_hi=lohi, out=(-1, 1), clip=True), full[sl])


@pytest.mark.parametrize("shape", [(4, 4), (3, 4, 4)])
def test_flat_image_maps_to_low_end_without_division_by_zero(shape):
    assert np.all(normalize_percentile(np.full(shape, 7), 1, 99.8) == 0)
    assert np.all(normalize_percentile(np.full(shape, 7.0), 1, 99.8, out=(-1, 1)) == -1)
    # almost all background: percentiles coincide, scale 1 keeps values finite
    a = np.zeros(shape, np.uint8)
    a.flat[0] = 200
    n = normalize_percentile(a, 1, 50)
    assert np.all(np.isfinite(n)) and n.flat[0] == 200


@pytest.mark.parametrize("bad, msg", [
    (np.array([[1.0, np.nan], [0.0, 2.0]]), "NaN"),
    (np.zeros((0, 4)), "empty"),
    (np.array([["a", "b"]]), "numeric"),
])
def test_bad_input_is_one_line_input_error(bad, msg):
    with pytest.raises(InputError, match=msg):
        normalize_percentile(bad, 1, 99.8, name="image 'x.tif'")


def test_percentiles_must_be_ordered_and_given():
    a = np.arange(16.0).reshape(4, 4)
    with pytest.raises(InputError, match="0 <= low < high <= 100"):
        normalize_percentile(a, 99.8, 1)
    with pytest.raises(InputError, match="0 <= low < high <= 100"):
        percentile_range(a, 1, 101)
    with pytest.raises(InputError, match="low and high"):
        normalize_percentile(a)
