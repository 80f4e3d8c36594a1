"""Measure the widefield effect strengths of :mod:`cellsynth.render.physics` from one image.

Given an image, its detected (or real) instance mask and the image's camera (offset, noise
variance), each effect is estimated in the renderer's
own units, so that a record drives the renderer with what the image shows:

- ``illumination`` (vignetting): the renderer's field 1 − s·ρ² (ρ = lateral distance from an
  optical centre within ±¼ of the field around its middle, over half the field diagonal) is
  fitted by least squares to trimmed means of the background in lateral tiles (objects and
  their PSF halo masked, every z pooled), the centre on a grid; s = the relative amplitude
  over the background above the camera offset. Reported only where the image allows: a
  background of ≥ 16 photo-electrons above a non-negative offset (by the texture-separated
  photon transfer below), a fitted level holding at least half that light (else the background
  mean came from objects the detection missed) and a standard error of s below 0.05. A smooth
  background texture of few correlation lengths across the field can pass for vignetting:
  the two are confounded in small fields.
- ``background_texture``: the relative background, (image − fitted field)/(field − offset),
  smoothed at the renderer's correlation length σ_b (mask-normalised convolution); its
  variance minus the smoothed shot/read noise (the image's own background noise variance
  through the same filter), over the smoothing's attenuation of a unit field, (σ_b²/(σ_b²+σ²))^(d/2).
  Only where the background is light, as for the illumination; σ_b is the renderer's
  ``background_scale_um``, assumed, not fitted.
- ``brightness_sd`` (per-object heterogeneity, log units): 1.4826 × MAD of the log photons of
  the objects' interiors (illumination divided out); ``brightness_cv`` their CV, for reading.
- ``texture`` (chromatin): each object's interior (past the PSF-blurred edge) is seen in two
  bands, x − G_1 x and G_1 x − G_4 x, smoothing normalised within the interior (the edge and
  dome shape removed); white noise and the renderer's texture field (correlation
  ``texture_scale_um``, then the PSF) add there with gains measured on seeded realisations of
  both on that interior. A least-squares fit over all objects of the image's photon transfer
  (noise = g·mean + c, the background included) and each object's texture variance T_j
  separates the two (a plain high-pass variance counts the texture as noise); τ = √ median
  T_j/(mean_j − background)². The correlation length is assumed, not fitted.

- ``cytoplasm`` (unlabelled cell bodies): :func:`cytoplasm_contrast`, the median light in a ring
  just past the objects' blurred edges over their brightness, both above the far background.
- ``thickness`` (2D: dome-shaped nuclei, darker towards the rim): :func:`dome_thickness`, a band
  near each object's rim over its core, solved against the renderer's own image of the mask.

Haze and debris are not estimated: without annotations, an out-of-focus nucleus or a bright
particle cannot be told from a dim or small in-focus nucleus, which annotators label.
One implementation for 2D and 3D (lateral axes last).
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy import ndimage as ndi
from scipy import stats as sstats
from scipy.optimize import lsq_linear

# least-squares grid for the optical centre, as a fraction of the field around its middle (renderer: ±¼)
_CENTRE_GRID = np.linspace(-0.25, 0.25, 9)
MAX_ILLUMINATION_SE = 0.05
# photo-electrons of background (by the photon transfer) below which neither the illumination nor
# the background texture is estimated: their relative amplitudes need the light above the offset
MIN_BACKGROUND_ELECTRONS = 16.0
# the two bands of the texture/noise measurement (px): identity − G_1 (mostly noise) and G_1 − G_4
# (mostly texture; G_4 removes the object's own shape)
_TEXTURE_SIGMA = (1.0, 4.0)


def background_mask(labels: np.ndarray, psf_sigma_px: Sequence[float]) -> np.ndarray:
    """Background voxels: away from every object by its PSF halo (3σ) plus 2 voxels."""
    fg = np.asarray(labels) > 0
    r = [int(math.ceil(3 * s)) + 2 for s in psf_sigma_px]
    st = np.ones([2 * k + 1 for k in r], bool)
    return ~ndi.binary_dilation(fg, structure=st) if fg.any() else np.ones(fg.shape, bool)


def _rho2(shape_yx, centre_frac) -> np.ndarray:
    yx = np.asarray(shape_yx, float)
    centre = (yx - 1) / 2 + np.asarray(centre_frac) * yx
    half_diag = 0.5 * float(np.hypot(*yx))
    gy, gx = np.ogrid[:shape_yx[0], :shape_yx[1]]
    return ((gy - centre[0]) ** 2 + (gx - centre[1]) ** 2) / half_diag ** 2


def illumination_fit(image: np.ndarray, bg: np.ndarray, offset: float, tiles: int = 8) -> dict | None:
    """Fit the renderer's vignetting a·(1 − s·ρ²) + offset to the background of ``image``.

    Returns ``{"illumination": s, "se": standard error of s, "level": a (ADU above offset),
    "field": the fitted relative field (1 − s·ρ², lateral shape)}``, or None when fewer than 8
    tiles hold background. ``s`` is clipped to [0, 1] (brighter edges are no vignetting).

    Examples
    --------
    >>> import numpy as np
    >>> from cellsynth.render.physics import illumination_field
    >>> img = 100 + 50 * illumination_field((64, 64), 0.3, np.random.default_rng(0))
    >>> round(illumination_fit(img, np.ones((64, 64), bool), offset=100.0)["illumination"], 2)
    0.3
    """
    img = np.asarray(image, np.float64)
    bg = np.asarray(bg, bool)
    ny, nx = img.shape[-2:]
    ty, tx = max(ny // tiles, 4), max(nx // tiles, 4)
    vals, wts, cy, cx = [], [], [], []
    for y0 in range(0, ny - ty + 1, ty):
        for x0 in range(0, nx - tx + 1, tx):
            sl = (..., slice(y0, y0 + ty), slice(x0, x0 + tx))
            v = img[sl][bg[sl]]
            if v.size >= 16:
                vals.append(sstats.trim_mean(v, 0.2))
                wts.append(v.size)
                cy.append(y0 + (ty - 1) / 2)
                cx.append(x0 + (tx - 1) / 2)
    if len(vals) < 8:
        return None
    vals, w = np.asarray(vals) - offset, np.sqrt(np.asarray(wts, float))
    cy, cx = np.asarray(cy), np.asarray(cx)
    half_diag2 = 0.25 * (ny ** 2 + nx ** 2)
    best = None
    for fy in _CENTRE_GRID:
        for fx in _CENTRE_GRID:
            c = ((ny - 1) / 2 + fy * ny, (nx - 1) / 2 + fx * nx)
            r2 = ((cy - c[0]) ** 2 + (cx - c[1]) ** 2) / half_diag2
            a_mat = np.stack([np.ones_like(r2), r2], 1)
            coef, *_ = np.linalg.lstsq(a_mat * w[:, None], vals * w, rcond=None)
            res = float((((a_mat @ coef) - vals) * w) @ (((a_mat @ coef) - vals) * w))
            if best is None or res < best[0]:
                best = (res, coef, (fy, fx), a_mat)
    res, (a, b), centre, a_mat = best
    if a <= 0:
        return None
    # standard error of s = −b/a from the weighted residual variance (delta method)
    dof = max(len(vals) - 2, 1)
    cov = res / dof * np.linalg.pinv((a_mat * w[:, None] ** 2).T @ a_mat)
    grad = np.array([b / a ** 2, -1.0 / a])
    se = float(np.sqrt(max(grad @ cov @ grad, 0.0)))
    s = float(np.clip(-b / a, 0.0, 1.0))
    field = np.maximum(1.0 - s * _rho2((ny, nx), centre), 0.0)
    return {"illumination": s, "se": se, "level": float(a), "field": field}


def _smoothed_noise_factor(sigma: Sequence[float]) -> float:
    """Σ k² of the separable Gaussian kernel σ (white-noise variance kept by the smoothing)."""
    from .render.physics import gauss_kernel

    return float(np.prod([np.sum(gauss_kernel(s) ** 2) if s > 0 else 1.0 for s in sigma]))


def background_texture(image: np.ndarray, bg: np.ndarray, offset: float, level: float,
                       field: np.ndarray, noise_var: float, scale_px: Sequence[float]) -> float | None:
    """Relative s.d. of the background's smooth structure beyond shot/read noise (module doc).

    ``level``/``field``: the background above ``offset`` and the relative illumination field
    (:func:`illumination_fit`); ``noise_var``: the per-voxel background noise variance (ADU²);
    ``scale_px``: the renderer's correlation length σ_b per axis (voxels).
    """
    img = np.asarray(image, np.float64)
    sig = [float(s) for s in scale_px]
    base = level * np.broadcast_to(field, img.shape)
    m = np.asarray(bg, bool) & (base > 0.05 * level)
    if m.sum() < 64:
        return None
    q = np.where(m, (img - offset - base) / np.maximum(base, 1e-9), 0.0)
    mf = m.astype(np.float64)
    den = ndi.gaussian_filter(mf, sig, mode="reflect")
    s = ndi.gaussian_filter(q, sig, mode="reflect") / np.maximum(den, 1e-9)
    use = m & (den > 0.5)
    if use.sum() < 64:
        return None
    # noise through the masked smoothing: Σ k² m / (Σ k m)², Σ k² m = Σk² · G_{σ/√2} m (Gaussian k)
    den2 = ndi.gaussian_filter(mf, [v / math.sqrt(2) for v in sig], mode="reflect")
    noise = noise_var / np.maximum(base, 1e-9) ** 2 * _smoothed_noise_factor(sig) * den2 / np.maximum(den, 1e-9) ** 2
    var = float(np.var(s[use]) - np.mean(noise[use]))
    k_field = float(np.prod([1.0 / math.sqrt(2.0)] * img.ndim))  # smoothing at σ = σ_b
    return float(math.sqrt(max(var, 0.0) / k_field))


def brightness_heterogeneity(photons: np.ndarray) -> dict | None:
    """``brightness_sd`` (robust s.d. of log photons: 1.4826 MAD), ``brightness_cv`` and ``median``
    of the objects' brightness (any unit proportional to photons; None with fewer than 5 objects).

    Examples
    --------
    >>> import numpy as np
    >>> b = np.exp(np.random.default_rng(0).normal(np.log(100), 0.3, 4000))
    >>> round(brightness_heterogeneity(b)["brightness_sd"], 2)
    0.3
    """
    p = np.asarray(photons, float)
    p = p[np.isfinite(p) & (p > 0)]
    if p.size < 5:
        return None
    lg = np.log(p)
    return {"brightness_sd": float(1.4826 * np.median(np.abs(lg - np.median(lg)))),
            "brightness_cv": float(p.std() / p.mean()), "median": float(np.median(p))}


def _bands(x: np.ndarray, inner: np.ndarray) -> tuple[float, float]:
    """Mean squares over ``inner`` of x − G_1 x and G_1 x − G_4 x, smoothing normalised within ``inner``."""
    a, b = _TEXTURE_SIGMA
    mf = inner.astype(np.float64)
    fine = ndi.gaussian_filter(x * mf, a) / np.maximum(ndi.gaussian_filter(mf, a), 1e-9)
    coarse = ndi.gaussian_filter(x * mf, b) / np.maximum(ndi.gaussian_filter(mf, b), 1e-9)
    return float(np.mean((x - fine)[inner] ** 2)), float(np.mean((fine - coarse)[inner] ** 2))


def object_bands(image: np.ndarray, labels: np.ndarray, props, field_px: Sequence[float],
                 psf_px: Sequence[float], min_voxels: int = 16, draws: int = 4, seed: int = 0,
                 max_objects: int = 40) -> dict:
    """Per object: the variances of its interior in two bands, and what unit noise/texture give there.

    The interior (the object eroded by 1 voxel + 1.5 PSF σ per axis, past the blurred edge) is
    seen through a fine band (x − G_1 x) and a middle band (G_1 x − G_4 x), each smoothing
    normalised within the interior (the edge and the dome shape do not leak in). White noise of
    variance n and a texture of variance T add there as v = K_noise·n + K_field·T; the gains K
    of each interior's own shape are measured on ``draws`` seeded realisations of unit white
    noise and of the renderer's texture field (correlation ``field_px``, then the PSF ``psf_px``).
    At most ``max_objects`` objects, evenly spread over the label order (a crowded 3D volume
    holds hundreds; a few dozen fix the image's texture and noise).
    Returns arrays (one row per object with ≥ ``min_voxels`` interior voxels): ``mean`` (ADU),
    ``v`` (N × 2), ``k_noise`` (N × 2), ``k_field`` (N × 2), ``n_voxels``.
    """
    from .render.physics import smooth_field

    b = _TEXTURE_SIGMA[1]
    img = np.asarray(image, np.float64)
    rng = np.random.default_rng(seed)
    pad = int(math.ceil(3 * b))
    # the interior: farther from the edge than an ellipsoid of semi-axes 1 voxel + 1.5 PSF σ
    inv_reach = [1.0 / (1.0 + 1.5 * float(s)) for s in psf_px]
    mean, v, kn, kf, nv = [], [], [], [], []
    props = [p for p in props if p.area >= min_voxels]  # the interior is smaller still
    if len(props) > max_objects:
        props = [props[i] for i in np.unique(np.linspace(0, len(props) - 1, max_objects).round().astype(int))]
    for p in props:
        lo = [max(q - pad, 0) for q in p.bbox[:img.ndim]]
        hi = [min(q + pad, s) for q, s in zip(p.bbox[img.ndim:], img.shape)]
        sl = tuple(slice(x, y) for x, y in zip(lo, hi))
        inner = ndi.distance_transform_edt(labels[sl] == p.label, sampling=inv_reach) > 1.0
        if inner.sum() < min_voxels:
            continue
        x = img[sl]
        shape = x.shape
        noise = np.mean([_bands(rng.standard_normal(shape), inner) for _ in range(draws)], axis=0)
        fields = []
        for _ in range(draws):
            f = smooth_field(shape, field_px, rng).astype(np.float64)
            if any(q > 0 for q in psf_px):
                f = ndi.gaussian_filter(f, [float(q) for q in psf_px])
            fields.append(_bands(f, inner))
        mean.append(float(x[inner].mean()))
        v.append(_bands(x, inner))
        kn.append(noise)
        kf.append(np.mean(fields, axis=0))
        nv.append(int(inner.sum()))
    two = lambda a: np.asarray(a, float).reshape(-1, 2)  # noqa: E731
    return {"mean": np.asarray(mean, float), "v": two(v), "k_noise": two(kn), "k_field": two(kf),
            "n_voxels": np.asarray(nv, float)}


def texture_transfer(obj: dict, bg_adu: float, bg_var: float) -> dict | None:
    """Joint fit of the photon transfer and the chromatin texture over an image's objects.

    Model, per object j of :func:`object_bands` and band k: v_jk = K_noise,jk·(g·m_j + c) +
    K_field,jk·T_j (T_j: the texture variance of object j, each its own: a few dozen voxels
    hold a noisy sample of the field), and for the background var = g·bg + c; linear in
    (g, c, T_1..T_J), solved by least squares with g, T_j ≥ 0 and each band's equations scaled
    by that band's median variance (a variance's error grows with it) and √(voxels). Returns
    ``gain`` g (ADU/e⁻; 0 where the noise does not grow with the signal, as in processed 8-bit
    images), ``intercept`` c and ``texture`` τ = √ median T_j / (m_j − bg)² (relative s.d. of
    the in-object field, the renderer's ``texture``), or None with fewer than 3 objects above
    the background.
    """
    m = obj["mean"]
    ok = np.flatnonzero(m > bg_adu)
    if ok.size < 3:
        return None
    n = ok.size
    a_mat = np.zeros((2 * n + 1, 2 + n))
    y = np.zeros(2 * n + 1)
    w = np.zeros(2 * n + 1)
    # one scale per band (its median variance): weighting each equation by its own observed value
    # would favour the ones that came out low
    scale = np.maximum(np.median(obj["v"][ok], axis=0), 1e-9)
    for i, j in enumerate(ok):
        for k in range(2):
            r = 2 * i + k
            a_mat[r, :2] = obj["k_noise"][j, k] * m[j], obj["k_noise"][j, k]
            a_mat[r, 2 + i] = obj["k_field"][j, k]
            y[r] = obj["v"][j, k]
            w[r] = np.sqrt(obj["n_voxels"][j]) / scale[k]
    a_mat[-1, :2] = bg_adu, 1.0
    y[-1] = bg_var
    w[-1] = np.sqrt(float(obj["n_voxels"][ok].sum())) / max(bg_var, 1e-9)  # the background: many voxels
    # a gain and texture variances can only be ≥ 0 (an unbounded fit trades a negative gain for them)
    lo = np.r_[0.0, -np.inf, np.zeros(n)]
    coef = lsq_linear(a_mat * w[:, None], y * w, bounds=(lo, np.inf)).x
    g, c, t_var = float(coef[0]), float(coef[1]), coef[2:]
    tau2 = float(np.median(t_var / (m[ok] - bg_adu) ** 2))
    return {"gain": g, "intercept": c, "texture": float(math.sqrt(max(tau2, 0.0)))}


def cytoplasm_contrast(image: np.ndarray, labels: np.ndarray, spacing: Sequence[float],
                       psf_sigma_um: Sequence[float], reach_um: float, ring_um: float = 1.5) -> float | None:
    """The renderer's ``cytoplasm``: dim unlabelled light next to the objects, as a fraction of
    their brightness above the background.

    (median of a ring r₁ < d ≤ r₁ + ``ring_um`` µm outside every object − background) /
    (median object interior − background), r₁ = 3σ_PSF + 0.5 µm (past the blurred edge), the
    background the median beyond r₁ + ``reach_um`` (past the longest cell body), clipped to
    [0, 1]. ``psf_sigma_um``: the PSF's (lateral, axial) σ; in 3D the distances are lateral, within
    each slice, and voxels within 3σ_axial + 0.5 µm above or below an object are left out. None when the ring,
    the far background or the interiors hold under 16 voxels, or the objects are not brighter
    than the background.

    Examples
    --------
    >>> import numpy as np
    >>> img = np.full((96, 96), 10.0); lab = np.zeros((96, 96), np.uint16)
    >>> yy, xx = np.ogrid[:96, :96]; r = np.hypot(yy - 48, xx - 48)
    >>> img[r <= 20] = 30.0; img[r <= 10] = 210.0; lab[r <= 10] = 1
    >>> round(cytoplasm_contrast(img, lab, (0.5, 0.5), (0.5, 1.5), 4.0), 3)
    0.1
    """
    labels = np.asarray(labels)
    fg = labels > 0
    if not fg.any():
        return None
    raw = np.asarray(image, np.float64)
    s_xy, s_z = psf_sigma_um
    r1 = 3.0 * s_xy + 0.5
    if fg.ndim == 3:  # lateral distances within each slice, away from the axial blur above and below objects
        d = ndi.distance_transform_edt(~fg, sampling=(1e9, *spacing[1:]))
        k = int(math.ceil((3.0 * s_z + 0.5) / spacing[0]))
        axial = ndi.binary_dilation(fg, structure=np.ones((3, 1, 1), bool), iterations=k) if k else fg
    else:
        d, axial = ndi.distance_transform_edt(~fg, sampling=tuple(spacing)), fg
    ring, far = (d > r1) & (d <= r1 + ring_um) & ~axial, (d > r1 + reach_um) & ~axial
    inner = ndi.binary_erosion(fg, iterations=2)
    if min(ring.sum(), far.sum(), inner.sum()) < 16:
        return None
    bg = float(np.median(raw[far]))
    signal = float(np.median(raw[inner])) - bg
    if signal <= 0:
        return None
    return float(np.clip((np.median(raw[ring]) - bg) / signal, 0.0, 1.0))


def dome_thickness(image: np.ndarray, labels: np.ndarray, psf_sigma_px: Sequence[float],
                   min_radius_px: float = 5.0) -> float | None:
    """The renderer's ``thickness`` (2D): how much darker a nucleus is towards its rim, as a
    dome-shaped nucleus seen through the focal slab.

    Per object of equivalent radius ≥ ``min_radius_px``: R = (mean of a band at edge depth
    u ∈ [0.15, 0.4] − background) / (mean of its core u ≥ 0.7 − background)
    (:func:`~cellsynth.render.physics.edge_depth`; background: the median beyond 3σ_PSF + 8 px of
    every object). The renderer's noiseless image of the same mask is linear in w, (1 − w)·P₀ + w·P₁
    (P₀, P₁: flat and full-dome emission through the PSF), so each object's R gives
    w = (R·C₀ − A₀) / (A₁ − A₀ − R·(C₁ − C₀)) with A, C the band and core means of P₀, P₁; the
    image's w is the median over its objects, clipped to [0, 1]; zero-mean texture and noise
    average out. None for 3D images (the renderer's 3D objects have their real thickness) or with
    fewer than 3 such objects.

    Examples
    --------
    >>> import numpy as np
    >>> from scipy import ndimage as ndi
    >>> from cellsynth.render.physics import thickness_profile
    >>> lab = np.zeros((96, 96), np.uint16)
    >>> for k, (y, x) in enumerate([(24, 24), (24, 72), (72, 24), (72, 72)], 1):
    ...     yy, xx = np.ogrid[:96, :96]; lab[np.hypot(yy - y, xx - x) <= 14] = k
    >>> img = 5 + 100 * ndi.gaussian_filter((lab > 0) * thickness_profile(lab, 0.5), 1.0)
    >>> round(dome_thickness(img, lab, (1.0, 1.0)), 2)
    0.5
    """
    from .render.physics import edge_depth, thickness_profile

    labels = np.asarray(labels)
    if labels.ndim != 2:
        return None
    fg = labels > 0
    if not fg.any():
        return None
    img = np.asarray(image, np.float64)
    far = ndi.distance_transform_edt(~fg) > 3 * max(psf_sigma_px) + 8
    if far.sum() < 16:
        return None
    bg = float(np.median(img[far]))
    sig = tuple(float(s) for s in psf_sigma_px)
    p0 = ndi.gaussian_filter(fg.astype(np.float64), sig, mode="nearest")
    p1 = ndi.gaussian_filter(fg * thickness_profile(labels, 1.0).astype(np.float64), sig, mode="nearest")
    u = edge_depth(labels)
    n = int(labels.max())
    band, core = fg & (u >= 0.15) & (u <= 0.4), fg & (u >= 0.7)

    def means(sel, x):  # per-label mean of x over sel (one pass, not a mask per object)
        ids = labels[sel].astype(np.intp)
        cnt = np.bincount(ids, minlength=n + 1)
        return np.bincount(ids, weights=x[sel], minlength=n + 1) / np.maximum(cnt, 1), cnt

    (ib, nb), (ic, nc) = means(band, img), means(core, img)
    a0, a1, c0, c1 = means(band, p0)[0], means(band, p1)[0], means(core, p0)[0], means(core, p1)[0]
    area = np.bincount(labels.ravel(), minlength=n + 1)
    ok = (area >= math.pi * min_radius_px ** 2) & (nb >= 8) & (nc >= 8) & (ic - bg > 0)
    ok[0] = False
    r = (ib[ok] - bg) / (ic[ok] - bg)  # means: linear in w, texture and noise average out
    den = (a1[ok] - a0[ok]) - r * (c1[ok] - c0[ok])
    keep = np.abs(den) > 1e-9
    w = (r * c0[ok] - a0[ok])[keep] / den[keep]
    return float(np.clip(np.median(w), 0.0, 1.0)) if len(w) >= 3 else None


def unlabelled_detections(image: np.ndarray, labels: np.ndarray) -> int:
    """Objects the classical detector of ``cellsynth fit`` finds in ``image`` that lie mostly (over
    half their voxels) outside every object of ``labels``: visible but unlabelled, what a synthetic
    training pair must not hold (annotators label every nucleus they see).

    Examples
    --------
    >>> import numpy as np
    >>> img = np.full((64, 64), 10.0); img[10:20, 10:20] = 200; img[40:50, 40:50] = 200
    >>> lab = np.zeros((64, 64), np.uint16); lab[10:20, 10:20] = 1
    >>> unlabelled_detections(img, lab)
    1
    """
    from .fit import detect_objects

    det = detect_objects(np.asarray(image))
    ids = np.arange(1, int(det.max()) + 1)
    if ids.size == 0:
        return 0
    inside = np.asarray(ndi.mean((np.asarray(labels) > 0).astype(np.float64), det, ids))
    return int((inside < 0.5).sum())
