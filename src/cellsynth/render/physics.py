"""Physics renderer: fluorophore photons -> Gaussian PSF -> attenuation -> camera noise -> uint16.

Image formation, per voxel x (all parameters in :class:`~cellsynth.config.PhysicsConfig`):

1. Emission (photons/voxel in focus). Object j emits b_j ~ U(photons) × class_brightness,
   from the whole object or, for ``membrane_classes``, from its walls only;
   inside objects a smooth multiplicative texture max(0, 1 + texture·f(x)) with f a
   Gaussian random field of unit variance and correlation length texture_scale_um
   (µm, Gaussian σ) mimics chromatin; autofluorescence·mean(b) is added inside the
   specimen (foreground).
   2D scenes: a nucleus is a dome seen through the focal slab, so its emission follows its
   projected thickness: × (1 − thickness + thickness·√(2u − u²)), u = distance to the
   object's edge over its largest such distance (the chord of a sphere at depth u).
   Unlabelled cell bodies: each object's nearest-object share of the field out to d ~
   U(cytoplasm_um) µm beyond its edge (the reach × (1 + ½ tanh f), f a smooth field of
   correlation mean(cytoplasm_um)) emits cytoplasm × b_j — dim, unannotated signal next to
   the nuclei, as in stained or autofluorescent cytoplasm.
   Per-object brightness heterogeneity: × exp(N(0, brightness_sd²)). Autofluorescent
   debris: Poisson(debris · field area / 1000 µm²) (3D: per 10⁴ µm³) particles anywhere
   in the field, radius U(debris_radius_um) µm, photons U(debris_brightness) × mean(b).
2. Depth attenuation (3D only): × exp(−z_µm / attenuation_um), z along axis 0 from
   the first slice (the side facing the objective).
3. PSF: convolution with an anisotropic Gaussian, σ from the paraxial Gaussian
   approximations of Zhang, Zerubia & Olivo-Marin (Appl. Opt. 46(10), 2007), with
   emission wavelength λ, numerical aperture NA and immersion refractive index n::

       widefield:  σ_xy = 0.21 λ / NA          σ_z = 0.66 λ n / NA²
       confocal:   σ_xy = 0.21 λ / (√2 NA)     σ_z = 0.66 λ n / (√2 NA²)

   (confocal with a small pinhole and λ_ex ≈ λ_em: the PSF is the square of the
   widefield one, so σ shrinks by √2, i.e. ≈ 0.15 λ/NA laterally as in Zhang's
   table), both × psf_scale, converted to voxels with ``scene.spacing`` (µm).
   A 2D scene is one focal plane: only σ_xy is used, on both axes.
   Scatter (the PSF's wings): a fraction ``scatter`` of that light is spread by a wide Gaussian of
   σ = scatter_um instead (specimen scatter, aberrations and the out-of-focus parts of thick
   nuclei give real PSFs heavier tails than a Gaussian core).
   Out-of-focus haze: Poisson(haze · N) nuclei outside the focal plane (equivalent radii
   drawn from the scene's own nuclei, photons from ``photons``, uniform positions), each
   blurred by the defocused PSF: σ² = σ_xy² + (½ |Δz| tan θ)² with sin θ = NA / n (the
   geometric blur disc of radius |Δz| tan θ as a Gaussian of half its radius),
   |Δz| ~ U(haze_defocus_um).
4. background_photons are added everywhere (out-of-focus / ambient light), modulated by
   max(0, 1 + background_texture · f), f a unit-variance smooth field of correlation length
   background_scale_um, so the background is not one flat level.
   Illumination (vignetting): all the light × (1 − illumination · ρ²), ρ the lateral distance
   from a random optical centre (within ±¼ of the field around its middle) over half the
   field diagonal.
   With per-image records (``scene.conditions``) the record's photons, background_photons and
   measured effect strengths replace these keys (:mod:`cellsynth.fit_effects`).
5. Camera: electrons ~ Poisson(QE · photons) + N(0, read_noise_e²);
   ADU = gain · electrons + offset, rounded and clipped to [0, 65535] -> uint16.
   So E[ADU] = offset + gain·QE·photons and Var[ADU] = gain²·(QE·photons + read_noise_e²).

Everything runs in float32 with separable ``scipy.ndimage.gaussian_filter``.
"""
from __future__ import annotations

import math

import numpy as np
from scipy import ndimage as ndi

from ..config import PhysicsConfig, config_to_dict
from ..errors import ConfigError
from ..scene import Scene
from ._common import as_config, axis_ramp, check_inputs, class_factors, conditioned, emitting_labels


def psf_sigma_um(cfg: PhysicsConfig) -> tuple[float, float]:
    """Gaussian PSF (σ_lateral, σ_axial) in µm (Zhang et al. 2007, paraxial; see module doc)."""
    lam = cfg.wavelength_nm * 1e-3
    s_xy = 0.21 * lam / cfg.na
    s_z = 0.66 * lam * cfg.refractive_index / cfg.na ** 2
    if cfg.microscope == "confocal":
        s_xy, s_z = s_xy / math.sqrt(2), s_z / math.sqrt(2)
    return s_xy * cfg.psf_scale, s_z * cfg.psf_scale


def psf_sigma_px(cfg: PhysicsConfig, spacing: tuple[float, ...]) -> tuple[float, ...]:
    """PSF σ per axis in voxels for a (Z)YX ``spacing`` in µm (2D: lateral σ on both axes)."""
    s_xy, s_z = psf_sigma_um(cfg)
    if len(spacing) == 3:
        return (s_z / spacing[0], s_xy / spacing[1], s_xy / spacing[2])
    return tuple(s_xy / s for s in spacing)


def smooth_field(shape: tuple[int, ...], sigma_px, rng: np.random.Generator) -> np.ndarray:
    """Gaussian random field with zero mean and unit variance, correlation σ in voxels per axis."""
    f = rng.standard_normal(shape, dtype=np.float32)
    if any(s > 0 for s in sigma_px):
        f = ndi.gaussian_filter(f, sigma=tuple(sigma_px), output=np.float32, mode="wrap")
        # unit variance: normalise by the filter's L2 norm (exact, no extra pass over the data)
        norm = 1.0
        for s in sigma_px:
            if s > 0:
                k = gauss_kernel(s)
                norm *= float(np.sum(k ** 2))
        f *= np.float32(1.0 / math.sqrt(norm))
    return f


def gauss_kernel(sigma: float, truncate: float = 4.0) -> np.ndarray:
    """The normalised 1D Gaussian kernel of ``scipy.ndimage.gaussian_filter`` (σ, truncate 4)."""
    r = int(truncate * sigma + 0.5)
    x = np.arange(-r, r + 1, dtype=np.float64)
    k = np.exp(-0.5 * (x / sigma) ** 2)
    return k / k.sum()


def edge_depth(labels: np.ndarray) -> np.ndarray:
    """Per voxel of each object: its distance to the object's edge over the object's largest
    such distance, in (0, 1] (1 at the deepest voxel; 0 outside the objects), float64.

    Examples
    --------
    >>> import numpy as np
    >>> lab = np.zeros((7, 7), np.uint16); lab[1:6, 1:6] = 1
    >>> u = edge_depth(lab)
    >>> float(u[3, 3]), float(u[1, 3]), float(u[0, 0])
    (1.0, 0.3333333333333333, 0.0)
    """
    from ..simulate.encode import boundaries

    labels = np.asarray(labels)
    inner = (labels > 0) & ~boundaries(labels)
    d = ndi.distance_transform_edt(inner) + (labels > 0)  # 1 on the rim, growing inward
    dmax = np.asarray(ndi.maximum(d, labels, index=np.arange(int(labels.max()) + 1)), float)
    dmax[0] = 1.0
    return np.clip(d / np.maximum(dmax[labels], 1e-6), 0, 1) * (labels > 0)


def thickness_profile(labels: np.ndarray, weight: float) -> np.ndarray:
    """Per-pixel factor 1 − w + w·√(2u − u²), u = :func:`edge_depth` (float32; 1 outside objects).

    Examples
    --------
    >>> import numpy as np
    >>> lab = np.zeros((9, 9), np.uint16); lab[1:8, 1:8] = 1
    >>> f = thickness_profile(lab, 1.0)
    >>> bool(f[4, 4] == 1.0 and f[1, 4] < 0.8 and f[0, 0] == 1.0)
    True
    """
    u = edge_depth(labels)
    f = (1.0 - weight) + weight * np.sqrt(np.clip(2 * u - u * u, 0, 1))
    f[np.asarray(labels) == 0] = 1.0
    return f.astype(np.float32)


def add_balls(img: np.ndarray, centres: np.ndarray, radii: np.ndarray, values: np.ndarray) -> None:
    """Add ``values[k]`` inside the axis-aligned ellipsoid of semi-axes ``radii[k]`` (px, per axis)
    around ``centres[k]`` (px), in place; each ball is drawn in its own bounding box."""
    shape = np.asarray(img.shape)
    for c, r, v in zip(centres, radii, values):
        lo = np.maximum(np.floor(c - r).astype(int), 0)
        hi = np.minimum(np.ceil(c + r).astype(int) + 1, shape)
        if np.any(hi <= lo):
            continue
        grids = np.ogrid[tuple(slice(a, b) for a, b in zip(lo, hi))]
        inside = sum(((g - ci) / max(ri, 0.5)) ** 2 for g, ci, ri in zip(grids, c, r)) <= 1.0
        img[tuple(slice(a, b) for a, b in zip(lo, hi))] += np.float32(v) * inside


def defocus_sigma_um(cfg: PhysicsConfig, dz_um) -> np.ndarray:
    """Lateral Gaussian σ (µm) of the PSF at defocus |Δz| (µm): σ_xy ⊕ ½ |Δz| tan θ, sin θ = NA/n."""
    s_xy, _ = psf_sigma_um(cfg)
    sin = min(cfg.na / cfg.refractive_index, 0.99)
    tan = sin / math.sqrt(1.0 - sin ** 2)
    return np.sqrt(s_xy ** 2 + (0.5 * np.abs(np.asarray(dz_um, float)) * tan) ** 2)


def _equivalent_radii(scene: Scene) -> np.ndarray:
    vol = np.bincount(scene.labels.ravel())[1:].astype(float)
    vol = vol[vol > 0]
    return (vol / np.pi) ** 0.5 if scene.ndim == 2 else (3.0 * vol / (4.0 * np.pi)) ** (1.0 / 3.0)


def _haze(scene: Scene, cfg: PhysicsConfig, rng: np.random.Generator) -> np.ndarray | None:
    """Photons of out-of-focus nuclei, each blurred by the PSF at its defocus (module doc)."""
    radii = _equivalent_radii(scene)
    k = int(rng.poisson(cfg.haze * len(radii))) if len(radii) else 0
    if k == 0:
        return None
    r = rng.choice(radii, size=k)
    centres = rng.uniform(0, 1, size=(k, scene.ndim)) * (np.asarray(scene.shape) - 1)
    b = rng.uniform(*cfg.photons, size=k) * np.exp(rng.normal(0, cfg.brightness_sd, size=k))
    dz = rng.uniform(*cfg.haze_defocus_um, size=k)
    sig = defocus_sigma_um(cfg, dz)
    out = np.zeros(scene.shape, np.float32)
    # a few defocus groups, one blur each (cost independent of the number of hazy nuclei)
    edges = np.quantile(sig, np.linspace(0, 1, 4))
    group = np.clip(np.searchsorted(edges, sig, side="right") - 1, 0, 2)
    _, s_z = psf_sigma_um(cfg)
    for g in np.unique(group):
        sel = group == g
        layer = np.zeros(scene.shape, np.float32)
        add_balls(layer, centres[sel], np.repeat(r[sel, None], scene.ndim, axis=1), b[sel])
        s = float(sig[sel].mean())
        sp = scene.spacing
        sigma_px = (s / sp[0], s / sp[1]) if scene.ndim == 2 else (s_z / sp[0], s / sp[1], s / sp[2])
        out += ndi.gaussian_filter(layer, sigma=sigma_px, output=np.float32, mode="nearest")
    return out


def _cytoplasm(scene: Scene, cfg: PhysicsConfig, bright: np.ndarray, rng) -> np.ndarray:
    """Photons of unlabelled cell bodies: each object's nearest-object share of the field out to
    an irregular reach d ~ U(cytoplasm_um) µm beyond its edge, at cytoplasm × its photons."""
    labels = scene.labels
    dist, idx = ndi.distance_transform_edt(labels == 0, sampling=scene.spacing, return_indices=True)
    near = labels[tuple(idx)]
    del idx
    reach = np.zeros(len(bright), np.float32)
    reach[1:] = rng.uniform(*cfg.cytoplasm_um, size=len(bright) - 1)
    rough = smooth_field(scene.shape, [float(np.mean(cfg.cytoplasm_um)) / s for s in scene.spacing], rng)
    np.tanh(rough, out=rough)  # the reach varies within ±50 % around each object
    rough *= np.float32(0.5)
    rough += np.float32(1.0)
    body = (labels == 0) & (dist <= reach[near] * rough)
    return np.where(body, np.float32(cfg.cytoplasm) * bright[near], np.float32(0)).astype(np.float32)


def _debris(scene: Scene, cfg: PhysicsConfig, mean_bright: float, rng) -> np.ndarray | None:
    sp = np.asarray(scene.spacing, float)
    size_um = float(np.prod(np.asarray(scene.shape) * sp))
    k = int(rng.poisson(cfg.debris * size_um / (1e3 if scene.ndim == 2 else 1e4)))
    if k == 0:
        return None
    centres = rng.uniform(0, 1, size=(k, scene.ndim)) * (np.asarray(scene.shape) - 1)
    r_px = rng.uniform(*cfg.debris_radius_um, size=(k, 1)) / sp[None, :]
    out = np.zeros(scene.shape, np.float32)
    add_balls(out, centres, r_px, rng.uniform(*cfg.debris_brightness, size=k) * mean_bright)
    return out


def illumination_field(shape: tuple[int, ...], strength: float, rng: np.random.Generator) -> np.ndarray:
    """Vignetting 1 − strength·ρ² over the lateral (YX) axes, broadcast along z (float32)."""
    yx = np.asarray(shape[-2:], float)
    centre = (yx - 1) / 2 + rng.uniform(-0.25, 0.25, size=2) * yx
    half_diag = 0.5 * float(np.hypot(*yx))
    gy, gx = np.ogrid[:shape[-2], :shape[-1]]
    rho2 = ((gy - centre[0]) ** 2 + (gx - centre[1]) ** 2) / half_diag ** 2
    f = (1.0 - strength * rho2).astype(np.float32)
    np.maximum(f, 0, out=f)
    return np.broadcast_to(f, shape) if len(shape) == 3 else f


def photon_image(scene: Scene, cfg: PhysicsConfig, rng: np.random.Generator) -> np.ndarray:
    """Expected photons per voxel reaching the camera (steps 1–4), float32."""
    n = scene.n_objects
    emit = emitting_labels(scene, cfg.membrane_classes)
    bright = np.zeros(n + 1, dtype=np.float32)
    bright[1:] = rng.uniform(*cfg.photons, size=n)
    bright[1:] *= class_factors(scene, cfg.class_brightness, n)[1:]
    if cfg.brightness_sd > 0 and n:
        bright[1:] *= np.exp(rng.normal(0, cfg.brightness_sd, size=n)).astype(np.float32)
    img = bright[emit]
    if cfg.thickness > 0 and n:
        if scene.ndim != 2:
            raise ConfigError("config key 'render.physics.thickness' applies to 2D scenes only "
                              "(a 3D scene has its objects' real thickness); set it to 0")
        img *= thickness_profile(scene.labels, cfg.thickness)
    if cfg.cytoplasm > 0 and n:
        img += _cytoplasm(scene, cfg, bright, rng)

    if cfg.texture > 0 and n:
        sig = [cfg.texture_scale_um / s for s in scene.spacing]
        tex = smooth_field(scene.shape, sig, rng)
        tex *= np.float32(cfg.texture)
        tex += np.float32(1.0)
        np.maximum(tex, 0, out=tex)
        img *= tex
        del tex
    if cfg.autofluorescence > 0 and n:
        np.add(img, np.float32(cfg.autofluorescence * float(bright[1:].mean())), out=img,
               where=scene.foreground)
    if cfg.debris > 0:
        mean_b = float(bright[1:].mean()) if n else 0.5 * (cfg.photons[0] + cfg.photons[1])
        deb = _debris(scene, cfg, mean_b, rng)
        if deb is not None:
            img += deb
    if scene.ndim == 3 and cfg.attenuation_um > 0:
        z_um = axis_ramp(scene.shape, 0) * np.float32((scene.shape[0] - 1) * scene.spacing[0])
        img *= np.exp(-z_um / np.float32(cfg.attenuation_um))
    sig = psf_sigma_px(cfg, scene.spacing)
    wide = ndi.gaussian_filter(img, sigma=[cfg.scatter_um / s for s in scene.spacing], output=np.float32,
                               mode="nearest") if cfg.scatter > 0 else None
    if cfg.psf_scale > 0:
        img = ndi.gaussian_filter(img, sigma=sig, output=np.float32, mode="nearest")
    if wide is not None:
        img *= np.float32(1.0 - cfg.scatter)
        wide *= np.float32(cfg.scatter)
        img += wide
        del wide
    if cfg.haze > 0:
        hz = _haze(scene, cfg, rng)
        if hz is not None:
            img += hz
    if cfg.background_texture > 0 and cfg.background_photons > 0:
        bg = smooth_field(scene.shape, [cfg.background_scale_um / s for s in scene.spacing], rng)
        bg *= np.float32(cfg.background_texture)
        bg += np.float32(1.0)
        np.maximum(bg, 0, out=bg)
        bg *= np.float32(cfg.background_photons)
        img += bg
    else:
        img += np.float32(cfg.background_photons)
    if cfg.illumination > 0:  # the excitation/detection field scales all the light, background included
        img *= illumination_field(scene.shape, cfg.illumination, rng)
    return img


def camera(photons: np.ndarray, cfg: PhysicsConfig, rng: np.random.Generator) -> np.ndarray:
    """Photons -> uint16 ADU: Poisson(QE·photons) + N(0, read²) e⁻, × gain + offset, clipped."""
    lam = photons * np.float32(cfg.quantum_efficiency)
    np.maximum(lam, 0, out=lam)
    electrons = rng.poisson(lam).astype(np.float32)
    if cfg.read_noise_e > 0:
        noise = rng.standard_normal(photons.shape, dtype=np.float32)
        noise *= np.float32(cfg.read_noise_e)
        electrons += noise
        del noise
    electrons *= np.float32(cfg.gain)
    electrons += np.float32(cfg.offset)
    np.rint(electrons, out=electrons)
    np.clip(electrons, 0, 65535, out=electrons)
    return electrons.astype(np.uint16)


class PhysicsRenderer:
    """Renderer interface: ``render(scene, rng) -> uint16`` camera image (see module doc)."""

    name = "physics"

    def __init__(self, cfg: PhysicsConfig | dict | None = None):
        self.cfg = as_config(cfg, PhysicsConfig)

    def render(self, scene: Scene, rng: np.random.Generator) -> np.ndarray:
        check_inputs(scene, rng, "physics renderer")
        # the scene's real-image record: photons and the effect strengths measured on that image
        cfg = conditioned(self.cfg, scene, ("photons", "background_photons", "illumination",
                                            "background_texture", "brightness_sd", "texture",
                                            "cytoplasm", "thickness"))
        return camera(photon_image(scene, cfg, rng), cfg, rng)

    def describe(self) -> dict:
        s_xy, s_z = psf_sigma_um(self.cfg)
        return {"renderer": self.name, "dtype": "uint16", **config_to_dict(self.cfg),
                "psf_sigma_lateral_um": s_xy, "psf_sigma_axial_um": s_z}
