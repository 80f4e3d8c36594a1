"""Physics renderer: fluorophore photons -> Gaussian PSF -> attenuation -> camera noise -> uint16.

Image formation, per voxel x (all parameters in :class:`~cellsynth.config.PhysicsConfig`):

1. Emission (photons/voxel in focus). Object j emits b_j ~ U(photons) × class_brightness,
   from the whole object or, for ``membrane_classes``, from its walls only;
   inside objects a smooth multiplicative texture max(0, 1 + texture·f(x)) with f a
   Gaussian random field of unit variance and correlation length texture_scale_um
   (µm, Gaussian σ) mimics chromatin; autofluorescence·mean(b) is added inside the
   specimen (foreground).
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
4. background_photons are added everywhere (out-of-focus / ambient light).
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
from ..scene import Scene
from ._common import as_config, axis_ramp, check_inputs, class_factors, emitting_labels


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
                k = _gauss_kernel(s)
                norm *= float(np.sum(k ** 2))
        f *= np.float32(1.0 / math.sqrt(norm))
    return f


def _gauss_kernel(sigma: float, truncate: float = 4.0) -> np.ndarray:
    r = int(truncate * sigma + 0.5)
    x = np.arange(-r, r + 1, dtype=np.float64)
    k = np.exp(-0.5 * (x / sigma) ** 2)
    return k / k.sum()


def photon_image(scene: Scene, cfg: PhysicsConfig, rng: np.random.Generator) -> np.ndarray:
    """Expected photons per voxel reaching the camera (steps 1–4), float32."""
    n = scene.n_objects
    emit = emitting_labels(scene, cfg.membrane_classes)
    bright = np.zeros(n + 1, dtype=np.float32)
    bright[1:] = rng.uniform(*cfg.photons, size=n)
    bright[1:] *= class_factors(scene, cfg.class_brightness, n)[1:]
    img = bright[emit]

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
    if scene.ndim == 3 and cfg.attenuation_um > 0:
        z_um = axis_ramp(scene.shape, 0) * np.float32((scene.shape[0] - 1) * scene.spacing[0])
        img *= np.exp(-z_um / np.float32(cfg.attenuation_um))
    sig = psf_sigma_px(cfg, scene.spacing)
    if cfg.psf_scale > 0:
        img = ndi.gaussian_filter(img, sigma=sig, output=np.float32, mode="nearest")
    img += np.float32(cfg.background_photons)
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
        return camera(photon_image(scene, self.cfg, rng), self.cfg, rng)

    def describe(self) -> dict:
        s_xy, s_z = psf_sigma_um(self.cfg)
        return {"renderer": self.name, "dtype": "uint16", **config_to_dict(self.cfg),
                "psf_sigma_lateral_um": s_xy, "psf_sigma_axial_um": s_z}
