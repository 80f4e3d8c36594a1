"""The specimen (organism / tissue / field of view) mask, Eschweiler et al. 2019, 2021, 2024.

Methods (``ForegroundConfig.method``):

- ``full``: the whole field (Eschweiler et al. 2024 GOWT1: "the whole image region is the ROI").
- ``ellipsoid``: an axis-aligned ellipse/ellipsoid at the image centre whose semi-axes are
  ``extent`` (a fraction drawn per axis) × half the image size (Eschweiler et al. 2024 C. elegans,
  Eschweiler et al. 2019 "naive" circle).
- ``threshold``: Eschweiler et al. 2019 "global": a real image (``image``) resized to the scene shape
  (linear, order 1), thresholded (``threshold``, Otsu when None), holes filled.
- ``discs``: union of ``n_discs`` random overlapping discs/balls of radius ``disc_radius``
  (Eschweiler et al. 2024 HeLa: "randomly placed and overlapping circular regions"); every disc after the
  first is centred on a point of the union so far, so they always overlap.
- ``harmonics``: a smooth random blob: an ellipsoid as above whose radius is modulated by
  random spherical harmonics of order ``sh_order`` and smoothness ``sh_gamma`` (Eschweiler et al. 2021
  eq. 5–7; in 2D the Fourier series of the radius, see :func:`shapes.sh_coefficients`).
- ``shape_model``: a sample of the statistical shape model (Eschweiler et al. 2021 §3.2,
  :class:`cellsynth.simulate.shape_model.ShapeModel`) fitted to the foregrounds (mask > 0)
  of the TIFF masks in ``examples``, centred, and shrunk to fit if larger than the image.

All shaped methods (not ``full``/``threshold``) keep ``margin`` px free at the image border.
"""
from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
from scipy import ndimage

from cellsynth.config import ForegroundConfig
from cellsynth.errors import ConfigError
from cellsynth.simulate import shapes


def make_foreground(cfg: ForegroundConfig, shape, rng: np.random.Generator) -> np.ndarray:
    """Boolean specimen mask of ``shape`` ((Z)YX) drawn with ``rng``."""
    shape = tuple(int(s) for s in shape)
    if len(shape) not in (2, 3):
        raise ConfigError(f"scene shape {shape} must have 2 (YX) or 3 (ZYX) entries")
    m = cfg.method
    if m == "full":
        fg = np.ones(shape, dtype=bool)
    elif m == "ellipsoid":
        fg = _ellipsoid(cfg, shape, rng)
    elif m == "threshold":
        fg = _threshold(cfg, shape)
    elif m == "discs":
        fg = _discs(cfg, shape, rng)
    elif m == "harmonics":
        fg = _harmonics(cfg, shape, rng)
    elif m == "shape_model":
        fg = _shape_model(cfg, shape, rng)
    else:  # pragma: no cover - pydantic guards the literal
        raise ConfigError(f"config key 'foreground.method' = {m!r}: unknown method")
    if m not in ("full", "threshold") and cfg.margin > 0:
        fg &= _inner(shape, cfg.margin)
    if not fg.any():
        raise ConfigError(f"foreground method '{m}' produced an empty foreground for shape {shape}; "
                          "enlarge extent/disc_radius or reduce margin")
    return fg


def _inner(shape, margin: float) -> np.ndarray:
    m = int(np.ceil(margin))
    out = np.zeros(shape, dtype=bool)
    out[tuple(slice(m, max(s - m, m)) for s in shape)] = True
    return out


def _centre(shape) -> np.ndarray:
    return (np.asarray(shape, dtype=float) - 1) / 2


def _paste(fg: np.ndarray, res) -> None:
    if res is not None:
        sl, mask = res
        fg[sl] |= mask


def _ellipsoid(cfg, shape, rng):
    semi = np.array([rng.uniform(*cfg.extent) for _ in shape]) * np.asarray(shape) / 2
    return _blob(shape, semi)


def _harmonics(cfg, shape, rng):
    semi = np.array([rng.uniform(*cfg.extent) for _ in shape]) * np.asarray(shape) / 2
    coeffs = shapes.sh_coefficients(len(shape), cfg.sh_order, cfg.sh_gamma, rng)
    return _blob(shape, semi, coeffs)


_EXACT_MAX = 2 ** 19  # voxels evaluated exactly; larger specimens use a coarse level set


def _blob(shape, semi, coeffs=None) -> np.ndarray:
    """Centred ellipsoid (``coeffs=None``) or harmonics blob with semi-axes ``semi``.

    Level set g(v) = |v| − ρ(v̂), v = (x − centre) / semi, inside where g ≤ 0. Above
    2¹⁹ voxels g is evaluated on a coarse grid (≤ 2¹⁹ samples, corners aligned) and
    linearly upsampled (:func:`shapes.upsample_linear`): only surface voxels can flip (about
    1 % of the volume at 4× coarsening, tested), and a 128×512×512 specimen takes ~2 s
    instead of ~24 s.
    """
    ndim = len(shape)
    n = float(np.prod(shape))
    f = 1.0 if n <= _EXACT_MAX else (n / _EXACT_MAX) ** (1 / ndim)
    cshape = tuple(shape) if f == 1.0 else tuple(max(8, int(np.ceil(s / f))) for s in shape)
    c = _centre(shape)
    axes = [(np.linspace(0, s - 1, cs) - ci) / si for s, cs, ci, si in zip(shape, cshape, c, semi)]
    v = np.stack(np.meshgrid(*axes, indexing="ij")).reshape(ndim, -1)
    r = np.sqrt((v ** 2).sum(0))
    rho = 1.0 if coeffs is None else np.clip(shapes.sh_radius(coeffs, v), 0, None)
    g = (r - rho).reshape(cshape).astype(np.float32)
    if cshape != tuple(shape):
        g = shapes.upsample_linear(g, shape)
    return g <= 0


def _discs(cfg, shape, rng):
    n = int(rng.integers(cfg.n_discs[0], cfg.n_discs[1] + 1))
    fg = np.zeros(shape, dtype=bool)
    for i in range(max(n, 1)):
        r = rng.uniform(*cfg.disc_radius)
        if i == 0:
            # first disc: anywhere its centre keeps half a radius from the border, when possible
            lo = np.minimum(r / 2, (np.asarray(shape) - 1) / 2)
            c = np.array([rng.uniform(l, s - 1 - l) for l, s in zip(lo, shape)])
        else:
            idx = np.flatnonzero(fg)
            c = np.array(np.unravel_index(idx[rng.integers(len(idx))], shape), dtype=float)
        inside, ext = shapes.ellipsoid_inside(np.full(len(shape), r))
        _paste(fg, shapes.rasterise(shape, c, inside, ext))
    return fg


def _threshold(cfg, shape):
    from skimage.filters import threshold_otsu
    from skimage.transform import resize

    from cellsynth.io import read_image

    if cfg.image is None:
        raise ConfigError("config key 'foreground.image' is required for foreground method 'threshold'")
    img = read_image(cfg.image).astype(np.float64)
    if img.ndim != len(shape):
        raise ConfigError(f"config key 'foreground.image' = '{cfg.image}': a {img.ndim}D image cannot "
                          f"make a foreground for a {len(shape)}D scene of shape {shape}")
    if img.shape != shape:
        img = resize(img, shape, order=1, preserve_range=True, anti_aliasing=False)
    if cfg.threshold is not None:
        t = cfg.threshold
    else:
        if img.min() == img.max():
            raise ConfigError(f"config key 'foreground.image' = '{cfg.image}': constant image, "
                              "Otsu threshold undefined")
        t = threshold_otsu(img)
    return ndimage.binary_fill_holes(img > t)


@functools.lru_cache(maxsize=8)
def _fitted_model(examples: str, mtime: float, n_rays: int, n_modes: int, ndim: int):
    from cellsynth.io import list_images, read_labels
    from cellsynth.simulate.shape_model import ShapeModel

    masks = []
    for f in list_images(examples, what="foreground examples"):
        lab = read_labels(f)
        if lab.ndim == ndim and lab.any():
            masks.append(ndimage.binary_fill_holes(lab > 0))
    if len(masks) < 2:
        raise ConfigError(f"config key 'foreground.examples' = '{examples}': needs at least 2 non-empty "
                          f"{ndim}D masks to fit a shape model, found {len(masks)}")
    return ShapeModel.fit(masks, n_rays=n_rays, n_modes=n_modes, skip_invalid=True)


def _shape_model(cfg, shape, rng):
    if cfg.examples is None:
        raise ConfigError("config key 'foreground.examples' is required for foreground method 'shape_model'")
    p = Path(cfg.examples)
    model = _fitted_model(str(p), p.stat().st_mtime if p.exists() else 0.0, cfg.n_rays,
                          cfg.n_modes, len(shape))
    sample = np.asarray(model.sample(rng), dtype=bool)
    return fit_into(sample, shape, cfg.margin)


def fit_into(sample: np.ndarray, shape, margin: float = 0.0) -> np.ndarray:
    """Centre a binary shape in an image of ``shape``; shrink it (nearest) if it does not fit."""
    idx = np.argwhere(sample)
    if len(idx) == 0:
        raise ConfigError("the shape model produced an empty shape")
    lo, hi = idx.min(0), idx.max(0) + 1
    crop = sample[tuple(slice(a, b) for a, b in zip(lo, hi))]
    room = np.asarray(shape) - 2 * np.ceil(margin)
    f = float(np.min(room / np.asarray(crop.shape)))
    if f < 1:
        crop = ndimage.zoom(crop.astype(np.uint8), f, order=0) > 0
    out = np.zeros(shape, dtype=bool)
    off = (np.asarray(shape) - np.asarray(crop.shape)) // 2
    out[tuple(slice(o, o + s) for o, s in zip(off, crop.shape))] = crop
    return out
