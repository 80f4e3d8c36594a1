"""Fit the simulation and renderers to a user's own *unannotated* images.

The images are segmented by the scale-adaptive classical segmenter (smoothing, Otsu
threshold, hole filling, distance-transform watershed with seeds spaced by each image's
own median object radius, so touching nuclei are split), and from the detected objects
we measure what the simulation needs:

- object size and shape: equivalent radius r = (A/π)^(1/2) in 2D, (3V/4π)^(1/3) in 3D
  (objects touching the border excluded, they are truncated); minor/major axis
  ratios from the inertia tensor → ``scene.nuclei.radius`` and ``axis_scale``;
- density: objects per pixel/voxel → ``scene.placement.n_points`` for the scene
  shape; nearest-neighbour centre distances → ``placement.min_distance``;
- intensities on a per-image robust scale (1st–99.8th percentile → [0, 1]):
  per-object means and the background median → ``render.sketch.intensity`` and
  ``background``;
- a photon-transfer estimate (noise variance vs mean over objects and background,
  Theil–Sen slope = camera gain in ADU/e⁻) → ``render.physics`` gain, offset,
  photons and background_photons (with the preset's quantum efficiency and read
  noise), so that the physics render reproduces the real signal-to-noise ratio;
- image shape, number of dimensions and voxel size (TIFF tags when present).

The result is a YAML *overlay*: keys of :class:`cellsynth.config.Config` to merge
onto the preset (``cellsynth simulate/generate/benchmark --preset P --config F``).
The same statistics computed from real masks (``measure(..., masks=...)``) give
the reference to judge the fit by.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import yaml
from scipy import ndimage as ndi
from scipy import stats as sstats

from .config import Config, deep_merge, preset_dict, validate
from .errors import InputError
from .intensity import DEFAULT_PERCENTILES, normalize_percentile
from .io import list_images, read_image, read_labels, read_spacing


# --------------------------------------------------------------------------- detection
def detect_objects(image: np.ndarray, spacing: Sequence[float] | None = None) -> np.ndarray:
    """Instance detection of bright blobs (nuclei) in a 2D or 3D image for the fit.

    The scale-adaptive classical segmenter
    (:func:`cellsynth.segment.classical.classical_segment`): smoothing, seed spacing and
    minimum size follow the image's own median object size, so clumps of small touching
    nuclei are split (seeds at local maxima of the distance transform at least 0.8 r
    apart) while large nuclei are not over-split. Returns uint16/uint32 labels 1..N.
    """
    from .segment.classical import classical_segment

    return classical_segment(image, spacing=spacing)


# --------------------------------------------------------------------------- measurement
def _noise_factor(ndim: int, sigma: float = 1.0) -> float:
    """Variance of white noise after ``x - G_σ * x`` relative to before (Σ (δ - k)²)."""
    d = np.zeros((9,) * ndim)
    d[(4,) * ndim] = 1.0
    r = d - ndi.gaussian_filter(d, sigma)
    return float((r ** 2).sum())


def object_stats(labels: np.ndarray, image: np.ndarray | None = None) -> dict:
    """Per-object and per-image statistics of an instance mask (and its image).

    Returns a dict with per-object arrays ``radius`` (equivalent radius, interior
    objects only), ``axis_ratio`` (minor/major, interior objects), ``axis_sd``
    (per-axis coordinate s.d., (Z)YX, interior objects), ``nn_distance``
    (nearest-neighbour centre distance) and per-image scalars ``n_objects``,
    ``density`` (objects per pixel/voxel), ``coverage`` (foreground fraction).
    With ``image``: ``intensity`` (per-object mean on the robust 0–1 scale),
    ``background`` (median background on that scale), ``mean_adu``/``var_adu``
    (raw mean and high-pass noise variance of object interiors and background, for
    the photon-transfer fit) and ``bg_adu``/``bg_var``.
    """
    from scipy.spatial import cKDTree
    from skimage.measure import regionprops

    labels = np.asarray(labels)
    ndim = labels.ndim
    out: dict = {"ndim": ndim, "shape": tuple(labels.shape)}
    props = regionprops(labels)
    n = len(props)
    out["n_objects"] = n
    out["density"] = n / labels.size
    out["coverage"] = float((labels > 0).mean())
    radius, ratio, axis_sd, centres = [], [], [], []
    for p in props:
        centres.append(p.centroid)
        bb = p.bbox
        touches = any(bb[i] == 0 or bb[i + ndim] == labels.shape[i] for i in range(ndim))
        if touches or p.area < 3:
            continue
        vol = float(p.area)
        r = (vol / np.pi) ** 0.5 if ndim == 2 else (3.0 * vol / (4.0 * np.pi)) ** (1.0 / 3.0)
        radius.append(r)
        ev = np.clip(np.asarray(p.inertia_tensor_eigvals, float), 0, None)
        ratio.append(float(np.sqrt(ev.min() / ev.max())) if ev.max() > 0 else 1.0)
        coords = p.coords.astype(float)
        axis_sd.append(coords.std(axis=0))
    out["radius"] = np.asarray(radius, float)
    out["axis_ratio"] = np.asarray(ratio, float)
    out["axis_sd"] = np.asarray(axis_sd, float).reshape(-1, ndim)
    out["touching"] = touching_fraction(labels)
    if n >= 2:
        c = np.asarray(centres)
        d, _ = cKDTree(c).query(c, k=2)
        out["nn_distance"] = d[:, 1]
    else:
        out["nn_distance"] = np.zeros(0)
    if image is not None:
        out.update(_intensity_stats(labels, np.asarray(image), props))
    return out


def touching_fraction(labels: np.ndarray) -> float:
    """Fraction of objects sharing a face with another object (clumped / touching nuclei).

    Examples
    --------
    >>> import numpy as np
    >>> lab = np.zeros((6, 9), int); lab[1:4, 1:3] = 1; lab[1:4, 3:5] = 2; lab[1:4, 7:9] = 3
    >>> round(touching_fraction(lab), 3)
    0.667
    """
    from .simulate.encode import boundaries

    labels = np.asarray(labels)
    present = np.unique(labels)
    present = present[present > 0]
    if present.size == 0:
        return 0.0
    # the one boundary mask, interfaces between two objects only
    touching = np.unique(labels[boundaries(labels, touching_only=True)])
    return float(np.isin(present, touching).sum() / present.size)


def _intensity_stats(labels: np.ndarray, image: np.ndarray, props) -> dict:
    if image.shape != labels.shape:
        raise InputError(f"image shape {image.shape} != mask shape {labels.shape}")
    raw = image.astype(np.float64)
    norm = normalize_percentile(raw, *DEFAULT_PERCENTILES)
    # high-pass residual: removes the smooth signal, keeps (mostly) the shot/read noise
    hp2 = (raw - ndi.gaussian_filter(raw, 1.0)) ** 2 / _noise_factor(raw.ndim)
    fg = labels > 0
    bg = ~ndi.binary_dilation(fg, iterations=2)
    res: dict = {}
    res["intensity"] = np.asarray([norm[tuple(p.coords.T)].mean() for p in props], float)
    res["background"] = float(np.median(norm[bg])) if bg.any() else float(norm.min())
    interior = ndi.binary_erosion(fg, iterations=2) & (ndi.grey_erosion(labels, size=(3,) * labels.ndim) == labels)
    lab_in = np.where(interior, labels, 0)
    idx = np.unique(lab_in)
    idx = idx[idx > 0]
    counts = ndi.sum_labels(np.ones_like(raw), lab_in, idx) if idx.size else np.zeros(0)
    keep = idx[counts >= 16]
    mean_adu = list(ndi.mean(raw, lab_in, keep)) if keep.size else []
    var_adu = list(ndi.mean(hp2, lab_in, keep)) if keep.size else []
    # where each of those objects sits (the illumination field is divided out of its brightness)
    res["centroid"] = (np.asarray(ndi.center_of_mass(np.ones_like(raw), lab_in, keep), float).reshape(-1, raw.ndim)
                       if keep.size else np.zeros((0, raw.ndim)))
    if bg.sum() >= 16:
        res["bg_adu"] = float(raw[bg].mean())
        res["bg_var"] = float(np.median(hp2[bg]) / 0.4549)  # median of σ²χ²₁ is 0.4549 σ²
        mean_adu.append(res["bg_adu"])
        var_adu.append(res["bg_var"])
    res["mean_adu"] = np.asarray(mean_adu, float)
    res["var_adu"] = np.asarray(var_adu, float)
    return res


def effect_stats(p: dict, labels: np.ndarray, image: np.ndarray, physics, spacing: Sequence[float],
                 qe: float = 0.8, read_noise_e: float = 2.0) -> dict:
    """One image's widefield effect strengths in the physics renderer's units (:mod:`cellsynth.fit_effects`).

    ``p``: the image's :func:`object_stats`; ``physics``: the
    :class:`~cellsynth.config.PhysicsConfig` whose PSF and correlation lengths the measurement
    assumes; ``spacing``: the voxel size (µm, (Z)YX). The chromatin texture and the camera offset
    (for the background's relative amplitudes) come from a photon transfer fitted jointly with
    the texture (:func:`~cellsynth.fit_effects.texture_transfer`). Keys (None where the image
    does not allow the estimate): ``illumination``, ``illumination_se``, ``background_texture``,
    ``brightness_sd``, ``brightness_cv``, ``photons_median`` (the objects' median photons,
    illumination divided out, with the camera of :func:`image_condition` that the record's
    photons are rendered with), ``texture``, ``cytoplasm``
    (:func:`~cellsynth.fit_effects.cytoplasm_contrast`, past ``physics.cytoplasm_um``'s reach) and,
    in 2D, ``thickness`` (:func:`~cellsynth.fit_effects.dome_thickness`).
    """
    from skimage.measure import regionprops

    from . import fit_effects as fe
    from .render.physics import psf_sigma_px, psf_sigma_um

    out: dict = {k: None for k in ("illumination", "illumination_se", "background_texture", "brightness_sd",
                                   "brightness_cv", "photons_median", "texture")}
    out["cytoplasm"] = fe.cytoplasm_contrast(image, labels, spacing, psf_sigma_um(physics), physics.cytoplasm_um[1])
    psf = psf_sigma_px(physics, tuple(spacing)) if physics.psf_scale > 0 else (0.0,) * image.ndim
    out["thickness"] = fe.dome_thickness(image, labels, psf)
    if "bg_adu" not in p:
        return out
    obj = fe.object_bands(image, labels, regionprops(labels), [physics.texture_scale_um / s for s in spacing], psf)
    tt = fe.texture_transfer(obj, p["bg_adu"], p["bg_var"])
    cam = _camera_one(p, qe, read_noise_e)  # the camera the record's photons are rendered with
    offset = None
    if tt is not None:
        out["texture"] = tt["texture"]
        # the camera from the photon transfer that separates texture from noise (a plain high-pass
        # variance counts texture and blurred edges as noise, inflating gain and offset):
        # var_bg = g²(e_b + σ_r²), mean_bg = offset + g·e_b
        g = tt["gain"]
        if g > 0:
            e_b = p["bg_var"] / g ** 2 - read_noise_e ** 2
            if e_b >= fe.MIN_BACKGROUND_ELECTRONS and p["bg_adu"] - g * e_b >= 0:
                offset, light = p["bg_adu"] - g * e_b, g * e_b
    field = None
    # relative amplitudes of the background only where it is light (shot noise of ≥ 16 e⁻ over a
    # non-negative offset); a processed 8-bit black level has no such noise and no known offset
    if offset is not None:
        bg = fe.background_mask(labels, psf)
        ill = fe.illumination_fit(image, bg, offset)
        if ill is not None:
            out["illumination_se"] = ill["se"]
            # the fitted level must hold the light the photon transfer found (else the background mean
            # came from objects the detection missed); the amplitude must be determined
            if ill["level"] >= 0.5 * light:
                if ill["se"] <= fe.MAX_ILLUMINATION_SE:
                    out["illumination"] = ill["illumination"]
                    field = ill["field"]
                out["background_texture"] = fe.background_texture(
                    image, bg, offset, ill["level"], field if field is not None else np.ones_like(ill["field"]),
                    p["bg_var"], [physics.background_scale_um / s for s in spacing])
    signal = np.asarray(p["mean_adu"][:-1], float) - p["bg_adu"]  # the objects' interiors over the background
    if field is not None and signal.size:
        yx = np.clip(np.rint(p["centroid"][:, -2:]).astype(int), 0, np.asarray(field.shape) - 1)
        signal = signal / np.maximum(field[yx[:, 0], yx[:, 1]], 1e-3)
    het = fe.brightness_heterogeneity(signal)
    if het is not None:
        out.update(brightness_sd=het["brightness_sd"], brightness_cv=het["brightness_cv"],
                   photons_median=het["median"] / (cam["gain"] * qe) if cam else None)
    return out


def photon_transfer(mean_adu: np.ndarray, var_adu: np.ndarray) -> tuple[float, float] | None:
    """Gain (ADU/e⁻) and intercept of var = gain·mean + b (Theil–Sen); None if undetermined."""
    m, v = np.asarray(mean_adu, float), np.asarray(var_adu, float)
    ok = np.isfinite(m) & np.isfinite(v)
    m, v = m[ok], v[ok]
    if m.size < 4 or np.ptp(m) <= 1e-6 * max(abs(m).max(), 1.0):
        return None
    slope, intercept, _, _ = sstats.theilslopes(v, m)
    if not np.isfinite(slope) or slope <= 0:
        return None
    return float(slope), float(intercept)


def _pct(a, q) -> float:
    a = np.asarray(a, float)
    return float(np.percentile(a, q)) if a.size else float("nan")


def measure(images: Sequence[Path], masks: Sequence[Path] | None = None,
            qe: float = 0.8, read_noise_e: float = 2.0, progress: bool = True,
            physics=None, spacing: Sequence[float] | None = None, effects: bool = False,
            record: Sequence[str] = ()) -> dict:
    """Summary statistics of a set of images: from real ``masks`` if given, else detected.

    Parameters
    ----------
    images : paths of single-channel 2D/3D TIFFs (one ndim throughout).
    masks : optional paths of instance masks, same order and shapes.
    qe, read_noise_e : camera quantum efficiency and read noise (e⁻) assumed for the
        photon-transfer conversion (not identifiable from images alone).
    physics : optional :class:`~cellsynth.config.PhysicsConfig`: also measure each image's
        widefield effect strengths (:func:`effect_stats`) with its PSF and correlation lengths.
    spacing : voxel size (µm) for images without a calibration in their TIFF tags.
    effects : put the measured effect strengths into the per-image records (``conditions``).
    record : of :data:`RECORD_KEYS`, the measured effects to put into each image's record (those
        the renderer has on, whatever ``effects``).
    """
    from tqdm.auto import tqdm

    if masks is not None and len(masks) != len(images):
        raise InputError(f"{len(images)} images but {len(masks)} masks")
    per: list[dict] = []
    shapes: Counter = Counter()
    found_spacing = None
    ndims = set()
    for i, path in enumerate(tqdm(images, desc="measure", disable=not progress, file=None)):
        img = read_image(path)
        ndims.add(img.ndim)
        if len(ndims) > 1:
            raise InputError(f"image '{path}' is {img.ndim}D but earlier images are {min(ndims)}D; "
                             "fit one kind of image at a time")
        if masks is not None:
            lab = read_labels(masks[i])
            if lab.shape != img.shape:
                raise InputError(f"mask '{masks[i]}' shape {lab.shape} != image '{path}' shape {img.shape}")
        else:
            lab = detect_objects(img, read_spacing(path, img.ndim) if img.ndim == 3 else None)
        st = object_stats(lab, img)
        # per-image photon transfer: gain differs between microscopes in a mixed set
        st["ptc"] = photon_transfer(st["mean_adu"], st["var_adu"])
        sp = read_spacing(path, img.ndim)
        # 1 px/unit is what writers put when nothing is known: not a calibration
        sp = sp if sp and any(abs(v - 1.0) > 1e-6 for v in sp) else None
        if physics is not None:
            own = sp or (tuple(spacing) if spacing is not None and len(spacing) == img.ndim else (1.0,) * img.ndim)
            st["effects"] = effect_stats(st, lab, img, physics, own, qe, read_noise_e)
        per.append(st)
        shapes[img.shape] += 1
        if found_spacing is None:
            found_spacing = sp
    return summarize(per, shapes, found_spacing, qe=qe, read_noise_e=read_noise_e, effects=effects,
                     record=record)


def summarize(per: list[dict], shapes: Counter, spacing=None, qe: float = 0.8,
              read_noise_e: float = 2.0, effects: bool = False, record: Sequence[str] = ()) -> dict:
    """Pool per-image :func:`object_stats` into the summary the overlay is built from.

    With per-image ``effects`` (:func:`effect_stats`): their medians over the images that allow
    each estimate (``<effect>_p50``, ``<effect>_n`` images); ``effects`` = True also puts them
    into the per-image records (:func:`image_condition`); ``record`` names the
    :data:`RECORD_KEYS` that go there too.
    """
    cat = lambda k: np.concatenate([p[k] for p in per]) if per else np.zeros(0)  # noqa: E731
    radius, ratio, nn = cat("radius"), cat("axis_ratio"), cat("nn_distance")
    sd = np.concatenate([p["axis_sd"] for p in per]) if per else np.zeros((0, 2))
    density = np.asarray([p["density"] for p in per], float)
    n_obj = np.asarray([p["n_objects"] for p in per], float)
    if radius.size == 0:
        raise InputError("no objects found in the images; are they fluorescence images with bright objects?")
    ndim = per[0]["ndim"]
    s: dict = {
        "n_images": len(per), "ndim": ndim,
        "shape": list(shapes.most_common(1)[0][0]),
        "spacing": list(spacing) if spacing else None,
        "n_objects_total": int(n_obj.sum()),
        "radius_p5": _pct(radius, 5), "radius_p50": _pct(radius, 50), "radius_p95": _pct(radius, 95),
        "axis_ratio_p5": _pct(ratio, 5), "axis_ratio_p50": _pct(ratio, 50),
        "density_p5": _pct(density, 5), "density_p50": _pct(density, 50), "density_p95": _pct(density, 95),
        "objects_per_image_p50": _pct(n_obj, 50),
        "nn_distance_p5": _pct(nn, 5), "nn_distance_p50": _pct(nn, 50),
        "coverage_p50": _pct([p["coverage"] for p in per], 50),
    }
    if ndim == 3 and sd.size:
        g = np.exp(np.log(np.clip(sd, 1e-6, None)).mean(axis=1))
        s["z_scale_p50"] = float(np.median(sd[:, 0] / g))
    s["touching_p50"] = _pct([p["touching"] for p in per], 50)
    recs = (image_condition(p, qe, read_noise_e, effects, record) for p in per)
    s["conditions"] = [c for c in recs if c is not None]
    if any("effects" in p for p in per):
        for k in dict.fromkeys(EFFECT_KEYS + ("brightness_cv",) + RECORD_KEYS):
            v = [p["effects"][k] for p in per if p.get("effects", {}).get(k) is not None]
            s[f"{k}_p50"], s[f"{k}_n"] = (_pct(v, 50) if v else None), len(v)
    if "intensity" in per[0]:
        inten = cat("intensity")
        s["intensity_p5"], s["intensity_p50"], s["intensity_p95"] = (_pct(inten, q) for q in (5, 50, 95))
        s["background_p50"] = _pct([p["background"] for p in per], 50)
        s.update(_camera(per, qe, read_noise_e))
    return s


def _camera_one(p: dict, qe: float, read_noise_e: float) -> dict | None:
    """One image's camera from its photon transfer: gain, offset, background and object photons."""
    if p.get("ptc") is None or "bg_adu" not in p:
        return None
    g = p["ptc"][0]
    # background: var = g²(e_b + σ_r²), mean = offset + g e_b
    e_b = max(p["bg_var"] / g ** 2 - read_noise_e ** 2, 0.0)
    offset = p["bg_adu"] - g * e_b
    if offset < 0:
        offset, e_b = 0.0, p["bg_adu"] / g
    signal = p["mean_adu"][:-1] - p["bg_adu"]  # the last entry is the background
    return {"gain": g, "offset": offset, "background_photons": e_b / qe,
            "photons": np.clip(signal, 0, None) / (g * qe)}


def _camera(per: list[dict], qe: float, read_noise_e: float) -> dict:
    """Per image: gain g from photon transfer, offset, photons; pooled over images."""
    cams = [c for c in (_camera_one(p, qe, read_noise_e) for p in per) if c is not None]
    if not cams:
        return {"gain": None}
    photons = np.concatenate([c["photons"] for c in cams])
    return {"gain": float(np.median([c["gain"] for c in cams])),
            "offset": float(np.median([c["offset"] for c in cams])),
            "background_photons": float(np.median([c["background_photons"] for c in cams])),
            "photons_p5": _pct(photons, 5), "photons_p50": _pct(photons, 50), "photons_p95": _pct(photons, 95),
            "n_ptc_images": len(cams)}


# the effect strengths a per-image record can carry (keys of PhysicsConfig and SceneCondition)
EFFECT_KEYS = ("illumination", "background_texture", "brightness_sd", "texture")
# measured in every image and written into its record when the renderer has the effect on
# (`fit_config`: the key > 0 in render.physics), whatever `fit_effects`
RECORD_KEYS = ("cytoplasm", "thickness", "brightness_sd")


def image_condition(p: dict, qe: float = 0.8, read_noise_e: float = 2.0, effects: bool = False,
                    record: Sequence[str] = ()) -> dict | None:
    """One image's joint record for ``scene.conditions`` (see :class:`cellsynth.config.SceneCondition`).

    From its :func:`object_stats`: density, equivalent radius 10–90 %, nearest-neighbour
    distance 10 %, touching fraction; with intensities: object intensity 5–95 % and
    background (robust 0–1 scale), and photons 5–95 % / background photons from the
    image's own photon transfer. None when the image has fewer than two interior objects: one
    object gives no spacing, no intensity spread and no photon transfer, and a scene drawn from
    it is a near-empty field whose percentile normalisation in the segmenter amplifies camera
    noise (300 DSB physics samples: such scenes, 2 % of them, cost 0.03 AP@0.5; benchmarks/RESULTS.md,
    "Syn2Real levers scored on every DSB train image").
    With ``effects`` and the image's :func:`effect_stats`: the effect strengths it allows
    (:data:`EFFECT_KEYS`). ``record``: the :data:`RECORD_KEYS` to write where measured (renderer
    units: ``cytoplasm``, the light next to its objects over their brightness; ``thickness``, the dome
    weight; ``brightness_sd``, the s.d. of the objects' log brightness). With ``brightness_sd`` in the
    record (either way) the object photons become the image's median (illumination divided out), the
    spread being the log-normal heterogeneity instead of U(5–95 %), which would count it twice.
    """
    if p["n_objects"] < 2 or p["radius"].size < 2:
        return None
    r_lo, r_hi = (float(v) for v in np.percentile(p["radius"], [10, 90]))
    rec: dict = {"density": float(p["density"]),
                 "radius": [round(max(r_lo, 1.0), 2), round(max(r_hi, r_lo, 1.0) + 0.25, 2)],
                 "nn_distance": round(float(np.percentile(p["nn_distance"], 10)), 2) if p["nn_distance"].size
                 else 0.0,
                 "touching": round(float(p["touching"]), 3)}
    if "intensity" in p and p["intensity"].size:
        lo, hi = (float(np.clip(v, 0.02, 1.0)) for v in np.percentile(p["intensity"], [5, 95]))
        rec["intensity"] = [round(lo, 3), round(max(hi, lo), 3)]
        rec["background"] = round(float(np.clip(p["background"], 0.0, 1.0)), 4)
        cam = _camera_one(p, qe, read_noise_e)
        if cam is not None and cam["photons"].size:
            ph_lo, ph_hi = (float(v) for v in np.percentile(cam["photons"], [5, 95]))
            rec["photons"] = [round(max(ph_lo, 1.0), 1), round(max(ph_hi, ph_lo, 1.0), 1)]
            rec["background_photons"] = round(float(cam["background_photons"]), 2)
    eff = p.get("effects") or {}
    if effects and eff:
        for k in EFFECT_KEYS:
            if eff.get(k) is not None:
                rec[k] = round(float(min(eff[k], 1.0) if k == "illumination" else eff[k]), 4)
    for k in record:
        if eff.get(k) is not None:
            rec[k] = round(float(eff[k]), 4)
    if "brightness_sd" in rec and eff.get("photons_median") is not None and "photons" in rec:
        m = round(max(float(eff["photons_median"]), 1.0), 1)
        rec["photons"] = [m, m]
    return rec


# --------------------------------------------------------------------------- overlay
def _axis_width(ratio_p50: float, ndim: int, seed: int = 0) -> float:
    """Half-width w of per-axis scales U(1-w, 1+w) whose median min/max ratio is ``ratio_p50``."""
    rng = np.random.default_rng(seed)
    u = rng.uniform(-1, 1, size=(4000, ndim))
    best, err = 0.0, np.inf
    for w in np.linspace(0.0, 0.8, 81):
        s = 1 + w * u
        med = float(np.median(s.min(axis=1) / s.max(axis=1)))
        if abs(med - ratio_p50) < err:
            best, err = float(w), abs(med - ratio_p50)
    return best


def overlay_from_stats(s: dict, base: Config, per_image: bool = True) -> dict:
    """Turn summary statistics into a config overlay for the preset ``base``.

    With ``per_image`` (and a nuclei scene) the per-image joint records ``s["conditions"]``
    become ``scene.conditions`` (each synthetic scene draws one real image's count, sizes,
    spacing, touching and intensities), with ``nuclei.max_occlusion`` 0.3 so that the placed
    contacts survive as touching nuclei; the pooled ranges remain for anything unset.
    """
    ndim = s["ndim"]
    shape = [int(v) for v in s["shape"]]
    if s.get("spacing"):
        spacing = [float(v) for v in s["spacing"]]
    elif len(base.scene.spacing) == ndim:
        spacing = list(base.scene.spacing)
    else:
        spacing = [1.0] * ndim
    # per-axis scales: width from the axis-ratio distribution; in 3D a z centre for anisotropy
    w = _axis_width(s["axis_ratio_p50"], ndim)
    centres = [1.0] * ndim
    if ndim == 3 and s.get("z_scale_p50"):
        cz = float(s["z_scale_p50"])
        centres = [cz, cz ** -0.5, cz ** -0.5]
    axis_scale = [[round(c * (1 - w), 3), round(c * (1 + w), 3)] for c in centres]
    # equivalent radius r_eq = r · (∏ s)^(1/ndim); E[∏ s] ≈ ∏ centres = 1, so r ≈ r_eq
    r_lo, r_hi = max(s["radius_p5"], 1.0), max(s["radius_p95"], s["radius_p5"] + 0.5, 1.5)
    area = float(np.prod(shape))
    fg_frac = 1.0
    if base.scene.foreground.method == "ellipsoid":
        e = np.mean(base.scene.foreground.extent)
        fg_frac = (np.pi / 4 if ndim == 2 else np.pi / 6) * e ** ndim
    n_lo = max(1, int(round(s["density_p5"] * area)))
    n_hi = max(n_lo, int(round(s["density_p95"] * area)))
    # Poisson-disc distance: below most real neighbour distances, so n_points still fits
    min_d = float(np.clip(s["nn_distance_p5"], 1.0, 2.0 * r_lo)) if np.isfinite(s["nn_distance_p5"]) else r_lo
    scene = {
        "shape": shape, "spacing": spacing,
        "nuclei": {"radius": [round(r_lo, 2), round(r_hi, 2)], "axis_scale": axis_scale},
        "placement": {"n_points": [n_lo, n_hi], "min_distance": round(min_d, 2)},
    }
    if fg_frac < 1.0:
        scene["placement"]["n_points"] = [max(1, int(round(n_lo * fg_frac))), max(1, int(round(n_hi * fg_frac)))]
    if per_image and s.get("conditions") and base.scene.kind == "nuclei":
        scene["conditions"] = s["conditions"]
        scene["nuclei"]["max_occlusion"] = 0.3
    ov: dict = {"scene": scene}
    if "intensity_p5" in s:
        lo = float(np.clip(s["intensity_p5"], 0.05, 1.0))
        hi = float(np.clip(s["intensity_p95"], lo, 1.0))
        render: dict = {"sketch": {"intensity": [round(lo, 3), round(hi, 3)],
                                   "background": round(float(np.clip(s["background_p50"], 0.0, 1.0)), 4)}}
        if s.get("gain"):
            ph_lo = max(s["photons_p5"], 1.0)
            render["physics"] = {
                "gain": round(float(np.clip(s["gain"], 1e-3, 1e3)), 4),
                "offset": round(max(s["offset"], 0.0), 2),
                "background_photons": round(max(s["background_photons"], 0.0), 2),
                "photons": [round(ph_lo, 1), round(max(s["photons_p95"], ph_lo), 1)],
            }
            if base.render.physics.fit_effects and s.get("texture_p50") is not None:
                # every nucleus has chromatin: the measured median replaces the preset's guess where an
                # image's nuclei are too small to measure. Illumination and background texture stay per
                # record (a background at the offset neither shows nor needs them), brightness_sd too
                # (the pooled photon range already spans the objects' brightness)
                render["physics"]["texture"] = round(float(s["texture_p50"]), 4)
        ov["render"] = render
    return ov


def fit_config(images: str | Path | Sequence[Path], preset: str | None = None,
               config_file: str | Path | None = None, max_images: int | None = 100,
               progress: bool = True, per_image: bool = True) -> tuple[dict, dict, Config]:
    """Fit the simulation to unannotated images.

    Parameters
    ----------
    images : a folder of TIFFs, or a list of paths.
    preset : preset to fit onto (its camera QE and read noise are assumed).
    config_file : optional YAML merged onto the preset before fitting.
    max_images : use at most this many images, evenly spread over the sorted list.
    per_image : keep each image's joint record as ``scene.conditions`` (see
        :func:`overlay_from_stats`); False = pooled ranges only.

    Returns ``(overlay, summary, config)``: the overlay dict (Config keys), the
    measured summary statistics, and the validated merged :class:`Config`.
    """
    paths = list_images(images) if isinstance(images, (str, Path)) else [Path(p) for p in images]
    if not paths:
        raise InputError("no images to fit")
    base_dict = preset_dict(preset) if preset else {}
    if config_file:
        from .config import load_yaml
        base_dict = deep_merge(base_dict, load_yaml(config_file))
    base = validate(Config, base_dict)
    paths = subsample(paths, max_images)
    phys = base.render.physics
    summary = measure(paths, qe=phys.quantum_efficiency, read_noise_e=phys.read_noise_e, progress=progress,
                      physics=phys, spacing=base.scene.spacing, effects=phys.fit_effects,
                      record=tuple(k for k in RECORD_KEYS if getattr(phys, k) > 0))
    overlay = overlay_from_stats(summary, base, per_image=per_image)
    cfg = validate(Config, deep_merge(base_dict, overlay))
    return overlay, summary, cfg


def subsample(paths: Sequence[Path], max_images: int | None) -> list[Path]:
    paths = list(paths)
    if max_images and len(paths) > max_images:
        idx = np.linspace(0, len(paths) - 1, max_images).round().astype(int)
        paths = [paths[i] for i in np.unique(idx)]
    return paths


def write_overlay(path: str | Path, overlay: dict, summary: dict | None = None,
                  source: str = "") -> Path:
    """Write the overlay YAML with a comment header of the measured statistics."""
    from .io import write_text
    path = Path(path)
    lines = [f"# cellsynth fit overlay{(' from ' + source) if source else ''}",
             "# use: cellsynth generate --preset P --config THIS_FILE ..."]
    for k, v in (summary or {}).items():
        if k == "conditions":  # one record per image: in the overlay body itself
            lines.append(f"#   conditions: {len(v)} per-image records")
            continue
        if isinstance(v, float):
            v = float(f"{v:.4g}")
        lines.append(f"#   {k}: {v}")
    text = "\n".join(lines) + "\n" + yaml.safe_dump(overlay, sort_keys=False, default_flow_style=None)
    return write_text(path, text)


def masks_for(images: Sequence[Path], masks_dir: str | Path) -> list[Path]:
    """The mask of each image (same file name in ``masks_dir``); one-line error if any is missing."""
    from .io import list_images

    mdir = Path(masks_dir)
    list_images(mdir, "masks")
    missing = [p.name for p in images if not (mdir / p.name).is_file()]
    if missing:
        raise InputError(f"masks folder '{mdir}' lacks {len(missing)} mask(s) named like the images, "
                         f"e.g. '{missing[0]}'")
    return [mdir / p.name for p in images]


def compare_with_masks(images: Sequence[Path], masks_dir: str | Path, fitted: dict,
                       max_images: int | None = None, progress: bool = True) -> list[dict]:
    """:func:`compare` rows of a fit (``fitted``, a :func:`measure` summary of ``images``) against the
    same statistics measured on the real masks of the same (sub-sampled) images."""
    used = subsample(list(images), max_images)
    return compare(fitted, measure(used, masks_for(used, masks_dir), progress=progress))


def compare(fitted: dict, reference: dict, keys: Iterable[str] | None = None) -> list[dict]:
    """Rows (key, fitted, reference, relative error) comparing two :func:`measure` summaries."""
    keys = keys or [k for k, v in reference.items() if isinstance(v, (int, float)) and k in fitted
                    and isinstance(fitted[k], (int, float)) and not isinstance(v, bool)]
    rows = []
    for k in keys:
        f, r = fitted.get(k), reference.get(k)
        if f is None or r is None:
            continue
        rel = abs(f - r) / abs(r) if r else float("nan")
        rows.append({"statistic": k, "fitted": float(f), "reference": float(r), "rel_error": float(rel)})
    return rows
