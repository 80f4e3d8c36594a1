"""Image realism metrics for 2D and 3D images (Eschweiler et al. 2019, 2021, 2024).

Paired metrics compare a synthetic image with the real image it should look
like (same scene, same shape): :func:`ssim`, :func:`psnr`, :func:`nrmse`
(Eschweiler et al. 2021 Table 1), :func:`zncc` (zero-normalised cross-correlation,
Eschweiler et al. 2021, 2024) and :func:`ncc` (normalised cross-correlation without mean
removal). Unpaired metrics compare two intensity distributions or image sets:
:func:`histogram_distance` (Bhattacharyya distance of intensity histograms,
Eschweiler et al. 2024 eq. 4), :func:`histogram_kl` / :func:`kl_divergence` (Eschweiler et al. 2024 eq. 5),
:func:`radial_power_spectrum` and :func:`intensity_profile` (Eschweiler et al. 2021 Fig 7/11),
:func:`checkerboard_index` (period-2 artefacts of strided/pixel-shuffle upsampling),
and :func:`fid` / :func:`kid` on features from a pluggable
:class:`FeatureExtractor` (Lesmes-Leon et al. 2025).

``data_range`` convention (SSIM, PSNR): when not given, it is the joint range
of both images, ``max(a.max(), b.max()) - min(a.min(), b.min())``, never the
dtype range (a 12-bit camera in a uint16 file would otherwise score as nearly
black). For scores comparable across images, normalise both images to [0, 1]
first (:func:`cellsynth.intensity.normalize_percentile`) and pass ``data_range=1``.

Every function accepts numpy arrays of any dimension and raises
:class:`~cellsynth.io.InputError` (a ``ValueError``) with one line naming the
argument for NaNs/infs, empty arrays or mismatched shapes.
"""
from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np
from scipy import linalg, ndimage

from ..errors import InputError
from ..intensity import normalize_percentile

ArrayOrList = np.ndarray | Sequence[np.ndarray]

__all__ = [
    "ssim", "psnr", "nrmse", "zncc", "ncc",
    "histograms", "bhattacharyya", "histogram_distance", "kl_divergence", "histogram_kl",
    "radial_power_spectrum", "checkerboard_index", "intensity_profile", "fid", "kid",
    "FeatureExtractor", "StatisticsExtractor", "InceptionExtractor", "CachedExtractor", "default_extractor",
]


# --------------------------------------------------------------------------- validation
def _finite(x, name: str) -> np.ndarray:
    """``x`` as a float64 array; InputError naming ``name`` when empty or not finite."""
    try:
        a = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be a numeric array") from None
    if a.size == 0:
        raise InputError(f"{name} is empty")
    if not np.all(np.isfinite(a)):
        raise InputError(f"{name} contains NaN or infinite values")
    return a


def _pair(a, b, names=("image_true", "image_test")) -> tuple[np.ndarray, np.ndarray]:
    a = _finite(a, names[0])
    b = _finite(b, names[1])
    if a.shape != b.shape:
        raise InputError(f"{names[0]} {a.shape} and {names[1]} {b.shape} must have the same shape")
    return a, b


def _pool(x: ArrayOrList, name: str) -> np.ndarray:
    """All values of an array, or of a list of arrays of any shapes, as one flat float array."""
    if isinstance(x, np.ndarray):
        return _finite(x, name).ravel()
    parts = list(x)
    if not parts:
        raise InputError(f"{name} is an empty list of images")
    return np.concatenate([_finite(p, f"{name}[{i}]").ravel() for i, p in enumerate(parts)])


def _data_range(a: np.ndarray, b: np.ndarray, data_range: float | None) -> float:
    if data_range is None:
        data_range = float(max(a.max(), b.max()) - min(a.min(), b.min()))
        return data_range if data_range > 0 else 1.0  # two equal constant images
    if not np.isfinite(data_range) or data_range <= 0:
        raise InputError(f"data_range must be a positive number, got {data_range}")
    return float(data_range)


# --------------------------------------------------------------------------- paired
def ssim(image_true, image_test, data_range: float | None = None, win_size: int | None = None,
         **kwargs) -> float:
    """Structural similarity (Wang et al. 2004) via ``skimage.metrics.structural_similarity``.

    Works for 2D and 3D (the window is an n-D hypercube). ``win_size`` defaults to
    7, shrunk to the largest odd size that fits the smallest axis (thin z-stacks).
    ``data_range``: see the module docstring. Extra ``kwargs`` go to skimage
    (e.g. ``gaussian_weights=True, sigma=1.5``).
    """
    from skimage.metrics import structural_similarity

    a, b = _pair(image_true, image_test)
    if win_size is None:
        smallest = min(a.shape)
        win_size = min(7, smallest if smallest % 2 else smallest - 1)
        if win_size < 3:
            raise InputError(f"image_true shape {a.shape}: every axis needs >= 3 pixels for SSIM")
    return float(structural_similarity(a, b, data_range=_data_range(a, b, data_range),
                                       win_size=win_size, **kwargs))


def psnr(image_true, image_test, data_range: float | None = None) -> float:
    """Peak signal-to-noise ratio 10·log10(data_range² / MSE) in dB (inf for identical images)."""
    from skimage.metrics import peak_signal_noise_ratio

    a, b = _pair(image_true, image_test)
    if np.array_equal(a, b):
        return float("inf")
    return float(peak_signal_noise_ratio(a, b, data_range=_data_range(a, b, data_range)))


def nrmse(image_true, image_test, normalization: str = "euclidean") -> float:
    """Normalised root mean squared error via ``skimage.metrics.normalized_root_mse``.

    ``normalization``: "euclidean" (RMSE / RMS of ``image_true``, the skimage
    default), "min-max" (RMSE / range of ``image_true``) or "mean".
    """
    from skimage.metrics import normalized_root_mse

    a, b = _pair(image_true, image_test)
    if normalization not in ("euclidean", "min-max", "mean"):
        raise InputError(f"normalization must be 'euclidean', 'min-max' or 'mean', got {normalization!r}")
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(normalized_root_mse(a, b, normalization=normalization))


def zncc(image_true, image_test) -> float:
    """Zero-normalised cross-correlation mean((a-ā)(b-b̄)) / (σ_a σ_b), in [-1, 1].

    This is Pearson's r over pixels (Eschweiler et al. 2019's "normalized correlation
    coefficient", Eschweiler et al. 2021, 2024's ZNCC). 0.0 when either image is constant.
    """
    a, b = _pair(image_true, image_test)
    a = a - a.mean()
    b = b - b.mean()
    den = np.sqrt(np.sum(a * a) * np.sum(b * b))
    return float(np.sum(a * b) / den) if den > 0 else 0.0


def ncc(image_true, image_test) -> float:
    """Normalised cross-correlation without mean removal: Σab / sqrt(Σa² Σb²) (cosine similarity).

    Sensitive to offsets (background level), unlike :func:`zncc`. 0.0 when either image is all zero.
    """
    a, b = _pair(image_true, image_test)
    den = np.sqrt(np.sum(a * a) * np.sum(b * b))
    return float(np.sum(a * b) / den) if den > 0 else 0.0


# --------------------------------------------------------------------------- histograms
def histograms(a: ArrayOrList, b: ArrayOrList, bins: int = 256,
               range: tuple[float, float] | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Normalised intensity histograms (p, q, edges) of two images or image lists on common bins.

    ``range`` None: the joint min/max of both. Each of ``a``/``b`` may be one
    array or a list of arrays of any shapes (their values are pooled).
    """
    x, y = _pool(a, "a"), _pool(b, "b")
    if int(bins) < 1:
        raise InputError(f"bins must be >= 1, got {bins}")
    if range is None:
        lo, hi = min(x.min(), y.min()), max(x.max(), y.max())
        if hi <= lo:
            hi = lo + 1.0
        range = (float(lo), float(hi))
    elif not (np.isfinite(range[0]) and np.isfinite(range[1]) and range[1] > range[0]):
        raise InputError(f"range must be (low, high) with low < high, got {tuple(range)}")
    p, edges = np.histogram(x, bins=int(bins), range=range)
    q, _ = np.histogram(y, bins=edges)
    if p.sum() == 0:
        raise InputError(f"a has no values inside range {tuple(range)}")
    if q.sum() == 0:
        raise InputError(f"b has no values inside range {tuple(range)}")
    return p / p.sum(), q / q.sum(), edges


def _prob(p, name: str) -> np.ndarray:
    p = _finite(p, name).ravel()
    if np.any(p < 0):
        raise InputError(f"{name} has negative entries; expected a histogram")
    s = p.sum()
    if s <= 0:
        raise InputError(f"{name} sums to zero; expected a histogram")
    return p / s


def bhattacharyya(p, q, form: str = "bhattacharyya") -> float:
    """Distance between two histograms (normalised here to sum 1), Eschweiler et al. 2024 eq. 4.

    form "bhattacharyya": D_B = −ln Σ √(p_i q_i) (0 for identical, inf for disjoint);
    form "hellinger": √(1 − Σ √(p_i q_i)) in [0, 1] (what OpenCV calls Bhattacharyya).
    """
    p, q = _prob(p, "p"), _prob(q, "q")
    if p.shape != q.shape:
        raise InputError(f"p {p.shape} and q {q.shape} must have the same number of bins")
    bc = float(np.sum(np.sqrt(p * q)))
    bc = min(bc, 1.0)  # rounding
    if form == "bhattacharyya":
        return float(-np.log(bc)) if bc > 0 else float("inf")
    if form == "hellinger":
        return float(np.sqrt(1.0 - bc))
    raise InputError(f"form must be 'bhattacharyya' or 'hellinger', got {form!r}")


def histogram_distance(a: ArrayOrList, b: ArrayOrList, bins: int = 256,
                       range: tuple[float, float] | None = None, form: str = "bhattacharyya") -> float:
    """Bhattacharyya distance −ln Σ √(p q) between the intensity histograms of ``a`` and ``b``.

    Unpaired: ``a`` and ``b`` may differ in shape, or be lists of images.
    ``form="hellinger"`` gives √(1 − Σ √(p q)) instead. See :func:`histograms` for ``range``.
    """
    p, q, _ = histograms(a, b, bins=bins, range=range)
    return bhattacharyya(p, q, form=form)


def kl_divergence(p, q, eps: float = 1e-10) -> float:
    """Kullback–Leibler divergence D_KL(p‖q) = Σ p ln(p/q) of two histograms (nats), Eschweiler et al. 2024 eq. 5.

    Both are normalised to sum 1 after adding ``eps`` to every bin, so empty
    bins of ``q`` give a large finite value instead of inf.
    """
    p, q = _prob(p, "p"), _prob(q, "q")
    if p.shape != q.shape:
        raise InputError(f"p {p.shape} and q {q.shape} must have the same number of bins")
    if eps < 0:
        raise InputError(f"eps must be >= 0, got {eps}")
    p = (p + eps) / (1.0 + eps * p.size)
    q = (q + eps) / (1.0 + eps * q.size)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * np.log(p / q), 0.0)
    return float(max(np.sum(terms), 0.0))


def histogram_kl(a: ArrayOrList, b: ArrayOrList, bins: int = 256,
                 range: tuple[float, float] | None = None, eps: float = 1e-10) -> float:
    """D_KL(hist(a) ‖ hist(b)) of the intensity histograms (``a`` = reference, e.g. real images)."""
    p, q, _ = histograms(a, b, bins=bins, range=range)
    return kl_divergence(p, q, eps=eps)


# --------------------------------------------------------------------------- spectra/profiles
def radial_power_spectrum(image, spacing: Sequence[float] | None = None,
                          subtract_mean: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Radially (2D) or spherically (3D) averaged power spectrum (Eschweiler et al. 2021 Fig 7/11, right).

    P(k) = |FFT(image)|² / N averaged over shells of |k|, so white noise of
    variance σ² gives P ≈ σ² at every frequency. Frequencies are in cycles per
    unit of ``spacing`` (cycles/pixel when None, Nyquist 0.5). Shell width is
    the coarsest frequency step of any axis; shells run up to the lowest Nyquist
    frequency (beyond it shells are not fully sampled). ``subtract_mean``
    removes the DC term so it does not dominate the first shell.

    Returns (freqs, power): shell centres and mean power, empty shells dropped.
    """
    a = _finite(image, "image")
    if spacing is None:
        spacing = (1.0,) * a.ndim
    spacing = tuple(float(s) for s in spacing)
    if len(spacing) != a.ndim or any(s <= 0 for s in spacing):
        raise InputError(f"spacing {spacing} must give one positive size per axis of image {a.shape}")
    if subtract_mean:
        a = a - a.mean()
    power = np.abs(np.fft.fftn(a)) ** 2 / a.size
    grids = np.meshgrid(*[np.fft.fftfreq(n, d=s) for n, s in zip(a.shape, spacing)], indexing="ij")
    k = np.sqrt(sum(g * g for g in grids))
    step = max(1.0 / (n * s) for n, s in zip(a.shape, spacing))
    k_max = min(0.5 / s for s in spacing)
    n_bins = max(int(np.floor(k_max / step + 0.5)), 1)
    idx = np.floor(k / step + 0.5).astype(np.int64)  # shell 0 holds DC, shell i is centred on i*step
    keep = idx <= n_bins
    sums = np.bincount(idx[keep], weights=power[keep], minlength=n_bins + 1)
    counts = np.bincount(idx[keep], minlength=n_bins + 1)
    freqs = np.arange(n_bins + 1) * step
    ok = counts > 0
    if subtract_mean:
        ok[0] = False  # DC shell is zero by construction
    return freqs[ok], sums[ok] / counts[ok]


def checkerboard_index(image) -> float:
    """Period-2 (checkerboard) artefact strength: the largest, over axes, of the power at that axis'
    Nyquist frequency relative to the mean power of its upper half band (frequencies ≥ ¼ cycle/px).

    Per axis the 1D power spectrum along it is averaged over all other axes. Smooth images and
    white noise give ≤ ~1; a pattern alternating every pixel (upsampling by 2 with badly
    initialised pixel shuffle or transposed convolutions, Aitken et al. 2017) gives ≫ 1, up to
    the number of upper-band frequencies (~n/4). Axes shorter than 4 are skipped.

    >>> rng = np.random.default_rng(0)
    >>> noise = rng.normal(size=(64, 64))
    >>> round(checkerboard_index(noise), 2), round(checkerboard_index(noise + 0.5 * (-1) ** np.arange(64)), 2)
    (1.29, 8.65)
    """
    a = _finite(image, "image")
    a = a - a.mean()
    out = 0.0
    for ax, n in enumerate(a.shape):
        if n < 4:
            continue
        p = np.abs(np.fft.rfft(a, axis=ax)) ** 2
        p = p.mean(axis=tuple(i for i in range(a.ndim) if i != ax))
        band = p[int(np.ceil(n / 4)):]
        out = max(out, float(p[n // 2] / max(band.mean(), 1e-30)))
    return out


def intensity_profile(image, axis: int = -1, center_axis: int | None = None,
                      reduce: str = "sum") -> np.ndarray:
    """Intensity profile along ``axis``, reducing (sum or mean) over all other axes.

    Eschweiler et al. 2021 Fig 7 (left): the centre xz-slice (``center_axis=1``, the y axis of a
    ZYX volume), integrated over z and plotted along x (``axis=-1``). With
    ``center_axis`` set, the central slice along that axis is taken first.
    """
    a = _finite(image, "image")
    axis = _axis(axis, a.ndim, "axis")
    if center_axis is not None:
        c = _axis(center_axis, a.ndim, "center_axis")
        if c == axis:
            raise InputError("center_axis must differ from axis")
        a = np.take(a, a.shape[c] // 2, axis=c)
        if c < axis:
            axis -= 1
    others = tuple(i for i in range(a.ndim) if i != axis)
    if reduce == "sum":
        return a.sum(axis=others)
    if reduce == "mean":
        return a.mean(axis=others)
    raise InputError(f"reduce must be 'sum' or 'mean', got {reduce!r}")


def _axis(axis: int, ndim: int, name: str) -> int:
    if not -ndim <= axis < ndim:
        raise InputError(f"{name}={axis} is out of range for a {ndim}D image")
    return axis % ndim


# --------------------------------------------------------------------------- FID / KID
def _features(x, name: str) -> np.ndarray:
    f = _finite(x, name)
    if f.ndim != 2:
        raise InputError(f"{name} must be a (n_samples, n_features) array, got shape {f.shape}")
    if f.shape[0] < 2:
        raise InputError(f"{name} needs at least 2 samples, got {f.shape[0]}")
    return f


def fid(feats_a, feats_b, eps: float = 1e-6) -> float:
    """Fréchet distance ‖μ_a − μ_b‖² + Tr(Σ_a + Σ_b − 2 (Σ_a Σ_b)^½) between feature Gaussians.

    With Inception-v3 pool features this is FID (Heusel et al. 2017, Lesmes-Leon et al. 2025);
    with any other extractor the value is only comparable with itself. The
    matrix square root (``scipy.linalg.sqrtm``) keeps its real part; when it is
    not finite (singular covariances), ``eps``·I is added to both covariances.
    """
    a, b = _features(feats_a, "feats_a"), _features(feats_b, "feats_b")
    if a.shape[1] != b.shape[1]:
        raise InputError(f"feats_a has {a.shape[1]} features but feats_b has {b.shape[1]}")
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a = np.atleast_2d(np.cov(a, rowvar=False))
    cov_b = np.atleast_2d(np.cov(b, rowvar=False))
    with warnings.catch_warnings():  # singular covariances (n_samples < n_features) are expected
        warnings.simplefilter("ignore", linalg.LinAlgWarning)
        covmean = linalg.sqrtm(cov_a @ cov_b)
        if not np.all(np.isfinite(covmean)):
            off = np.eye(cov_a.shape[0]) * eps
            covmean = linalg.sqrtm((cov_a + off) @ (cov_b + off))
    covmean = np.real(covmean)
    d = float(np.sum((mu_a - mu_b) ** 2) + np.trace(cov_a) + np.trace(cov_b) - 2.0 * np.trace(covmean))
    return max(d, 0.0)


def kid(feats_a, feats_b, n_subsets: int = 100, subset_size: int = 1000,
        seed: int = 0) -> tuple[float, float]:
    """Kernel distance: unbiased MMD² with the cubic kernel k(x, y) = (x·y/d + 1)³ (Bińkowski et al. 2018).

    Averaged over ``n_subsets`` random subsets of ``min(subset_size, n_a, n_b)``
    samples drawn without replacement from each set (seeded, reproducible).
    Returns (mean, std) over subsets; the mean can be slightly negative when
    the sets match (unbiased estimator).
    """
    a, b = _features(feats_a, "feats_a"), _features(feats_b, "feats_b")
    if a.shape[1] != b.shape[1]:
        raise InputError(f"feats_a has {a.shape[1]} features but feats_b has {b.shape[1]}")
    d = a.shape[1]
    m = min(int(subset_size), a.shape[0], b.shape[0])
    if m < 2:
        raise InputError(f"subset_size must be >= 2, got {subset_size}")
    rng = np.random.default_rng(seed)
    vals = np.empty(int(n_subsets))
    for i in range(int(n_subsets)):
        x = a[rng.choice(a.shape[0], m, replace=False)]
        y = b[rng.choice(b.shape[0], m, replace=False)]
        kxx = (x @ x.T / d + 1.0) ** 3
        kyy = (y @ y.T / d + 1.0) ** 3
        kxy = (x @ y.T / d + 1.0) ** 3
        # unbiased: drop the diagonal of the within-set kernels
        vals[i] = ((kxx.sum() - np.trace(kxx)) / (m * (m - 1))
                   + (kyy.sum() - np.trace(kyy)) / (m * (m - 1))
                   - 2.0 * kxy.mean())
    return float(vals.mean()), float(vals.std())


class FeatureExtractor(Protocol):
    """Maps a list of 2D/3D images to an (n_images, n_features) float array for :func:`fid`/:func:`kid`."""

    name: str
    note: str

    def __call__(self, images: Sequence[np.ndarray]) -> np.ndarray: ...


class StatisticsExtractor:
    """Default feature extractor: deterministic multi-scale filter-response statistics, no download.

    NOT Inception: FID/KID computed with it are not comparable with published
    FID/KID values, only between runs of this extractor. For each image
    (2D or 3D, any size) after per-image percentile normalisation to [0, 1]:
    intensity quantiles, mean and std; at each Gaussian scale σ in ``sigmas`` the
    mean, std and 10/50/90 % quantiles of the smoothed image, the gradient
    magnitude and the Laplacian of Gaussian (scale-normalised by σ and σ²); and
    the log power in ``n_bands`` logarithmic bands of the radial power spectrum.
    ``sigmas`` are in pixels and scaled by ``spacing`` when given, so anisotropic
    3D stacks are filtered isotropically in physical units.
    """

    name = "statistics-v1"
    note = ("default statistics extractor (multi-scale filter statistics), NOT Inception-v3: "
            "FID/KID values are not comparable with published FIDs")

    def __init__(self, sigmas: Sequence[float] = (1.0, 2.0, 4.0, 8.0), n_bands: int = 8,
                 spacing: Sequence[float] | None = None, normalize: bool = True):
        self.sigmas = tuple(float(s) for s in sigmas)
        self.n_bands = int(n_bands)
        self.spacing = None if spacing is None else tuple(float(s) for s in spacing)
        self.normalize = bool(normalize)

    @property
    def n_features(self) -> int:
        return 7 + 15 * len(self.sigmas) + self.n_bands

    def __call__(self, images: Sequence[np.ndarray], progress: bool = False) -> np.ndarray:
        images = list(images)  # a numpy array is taken as a stack along axis 0
        if not images:
            raise InputError("images is an empty list")
        it = images
        if progress:
            from tqdm import tqdm
            it = tqdm(images, desc="features", unit="img", leave=False)
        return np.stack([self.features(im, name=f"images[{i}]") for i, im in enumerate(it)])

    def features(self, image, name: str = "image") -> np.ndarray:
        a = _finite(image, name)
        if a.ndim not in (2, 3):
            raise InputError(f"{name} must be 2D or 3D, got shape {a.shape}")
        if self.normalize:
            a = normalize_percentile(a, 0.5, 99.5, clip=False).astype(np.float64)
        spacing = self.spacing[-a.ndim:] if self.spacing is not None else (1.0,) * a.ndim
        qs = (10, 50, 90)
        out = list(np.percentile(a, (1, 10, 50, 90, 99))) + [a.mean(), a.std()]
        for s in self.sigmas:
            sig = tuple(s / sp for sp in spacing)
            for resp in (ndimage.gaussian_filter(a, sig, mode="reflect"),
                         s * ndimage.gaussian_gradient_magnitude(a, sig, mode="reflect"),
                         s * s * ndimage.gaussian_laplace(a, sig, mode="reflect")):
                out += [resp.mean(), resp.std(), *np.percentile(resp, qs)]
        freqs, power = radial_power_spectrum(a, spacing=None)
        edges = np.geomspace(freqs[0], 0.5 + 1e-9, self.n_bands + 1)
        for lo, hi in zip(edges[:-1], edges[1:]):
            sel = (freqs >= lo) & (freqs < hi)
            out.append(np.log10(power[sel].mean() + 1e-12) if sel.any() else np.log10(1e-12))
        return np.asarray(out, dtype=np.float64)


class CachedExtractor:
    """Wraps a feature extractor and reuses the features of an image it has already seen.

    Images are recognised by a hash of their shape, dtype and bytes, so comparing several synthetic
    sets with one real set (one call of :func:`~cellsynth.metrics.compare.compare_images` per set)
    computes the real images' features once; the values are those of the wrapped extractor.

    Examples
    --------
    >>> ex = CachedExtractor(StatisticsExtractor(sigmas=(1.0,), n_bands=2))
    >>> a = np.random.default_rng(0).random((16, 16))
    >>> f1 = ex([a]); f2 = ex([a.copy()])
    >>> bool((f1 == f2).all()), ex.hits, ex.name == "statistics-v1"
    (True, 1, True)
    """

    def __init__(self, extractor: FeatureExtractor):
        self.extractor = extractor
        self.name, self.note = extractor.name, extractor.note
        self.hits = 0
        self._cache: dict[str, np.ndarray] = {}

    @staticmethod
    def _key(a: np.ndarray) -> str:
        import hashlib

        a = np.ascontiguousarray(a)
        return hashlib.blake2b(repr((a.shape, a.dtype.str)).encode() + a.tobytes(), digest_size=16).hexdigest()

    def __call__(self, images: Sequence[np.ndarray], progress: bool = False) -> np.ndarray:
        images = [np.asarray(a) for a in images]
        if not images:
            raise InputError("images is an empty list")
        keys = [self._key(a) for a in images]
        todo = [i for i, k in enumerate(keys) if k not in self._cache]
        self.hits += len(images) - len(todo)
        if todo:
            feats = self.extractor([images[i] for i in todo], progress=progress)
            for i, f in zip(todo, feats):
                self._cache[keys[i]] = f
        return np.stack([self._cache[k] for k in keys])


def default_extractor() -> StatisticsExtractor:
    """The no-download extractor used by the CLI (see :class:`StatisticsExtractor`)."""
    return StatisticsExtractor()


class InceptionExtractor:
    """Inception-v3 2048-d pool features from LOCAL weights (torch + torchvision), never downloaded.

    ``weights_path``: a ``.safetensors`` file or a torch state dict
    (``.pt``/``.pth``, loaded with ``weights_only=True``) for
    ``torchvision.models.inception_v3``. Images are percentile-normalised to
    [0, 1], repeated to 3 channels, resized to 299² and ImageNet-normalised; a
    3D volume gives the mean feature of its three central orthogonal slices.
    Values still differ from the TF-Inception FID of pytorch-fid/clean-fid
    unless the weights are those (``pt_inception-2015-12-05``).
    """

    name = "inception-v3"
    note = "Inception-v3 pool3 features from local weights"

    def __init__(self, weights_path: str | Path, device: str = "cpu", batch_size: int = 16):
        path = Path(weights_path)
        if not path.is_file():
            raise InputError(f"Inception weights '{path}' do not exist (nothing is downloaded; give a local file)")
        try:
            import torch
            import torchvision  # noqa: F401  (first: fails fast without importing torch)
        except ImportError:
            raise InputError("InceptionExtractor needs torch and torchvision (the Inception-v3 architecture); "
                             "torchvision is not installed: use the default StatisticsExtractor or install "
                             "torchvision") from None
        from torchvision.models import inception_v3

        if path.suffix == ".safetensors":
            from safetensors.torch import load_file
            state = load_file(str(path))
        else:
            state = torch.load(str(path), map_location="cpu", weights_only=True)
        net = inception_v3(weights=None, aux_logits=False, init_weights=False)
        state = {k: v for k, v in state.items() if not k.startswith("AuxLogits.")}
        missing, unexpected = net.load_state_dict(state, strict=False)
        missing = [k for k in missing if not k.startswith("fc.")]
        if missing:
            raise InputError(f"Inception weights '{path}' lack {len(missing)} tensors (e.g. {missing[0]})")
        net.fc = torch.nn.Identity()
        self.net = net.eval().to(device)
        self.device = device
        self.batch_size = int(batch_size)

    def _slices(self, image: np.ndarray) -> list[np.ndarray]:
        if image.ndim == 2:
            return [image]
        return [np.take(image, image.shape[ax] // 2, axis=ax) for ax in range(3)]

    def __call__(self, images: Sequence[np.ndarray], progress: bool = False) -> np.ndarray:
        import torch
        import torch.nn.functional as F

        mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
        std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
        feats = []
        for i, im in enumerate(images):
            a = _finite(im, f"images[{i}]")
            sl = [torch.from_numpy(normalize_percentile(s, 0.5, 99.5, clip=True)) for s in self._slices(a)]
            x = torch.stack([F.interpolate(s[None, None], size=(299, 299), mode="bilinear",
                                           align_corners=False)[0] for s in sl])
            x = (x.repeat(1, 3, 1, 1) - mean) / std
            with torch.no_grad():
                f = self.net(x.to(self.device)).cpu().double().mean(0)
            feats.append(f.numpy())
        return np.stack(feats)
