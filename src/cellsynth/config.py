"""Typed, validated configuration for every stage, and the YAML presets.

Every model forbids unknown keys. A bad key, type or value raises
:class:`ConfigError` with one line naming the key, the value and what is allowed.
Sizes in the scene section are in pixels/voxels unless the name says µm;
``spacing`` gives the physical voxel size (µm) per axis, (Z)YX.
"""
from __future__ import annotations

import copy
import re
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .errors import ConfigError


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


PosFloat = Annotated[float, Field(gt=0)]
PosInt = Annotated[int, Field(ge=1)]
NonNegFloat = Annotated[float, Field(ge=0)]
Fraction = Annotated[float, Field(ge=0, le=1)]


def ordered_range(v):
    """Pydantic validator: a (low, high) pair must have low <= high (None and scalars pass).

    >>> ordered_range((1, 2))
    (1, 2)
    """
    if v is not None and len(v) == 2 and v[0] > v[1]:
        raise ValueError(f"range must be (low, high) with low <= high, got {tuple(v)}")
    return v


def _positive_range(v, what: str):
    """An ordered (low, high) range with low > 0."""
    ordered_range(v)
    if v[0] <= 0:
        raise ValueError(f"{what} must be > 0, got {tuple(v)}")
    return v


def _axis_ranges(v, what: str):
    """One positive (low, high) range per axis, (Z)YX."""
    if not 2 <= len(v) <= 3:
        raise ValueError(f"one (low, high) range per axis, (Z)YX, 2 or 3 of them; got {len(v)}")
    for r in v:
        _positive_range(r, what)
    return v


Range = tuple[float, float]
"""A (low, high) range from which a value is drawn uniformly."""


# --------------------------------------------------------------------------- scene
class ForegroundConfig(Strict):
    """The specimen (organism) region, Eschweiler et al. 2019, 2021, 2024."""

    method: Literal["full", "ellipsoid", "threshold", "discs", "harmonics", "shape_model"] = "full"
    # ellipsoid / harmonics: semi-axes as a fraction of the half image extent per axis
    extent: Range = (0.7, 0.9)
    # threshold (Eschweiler et al. 2019 "global"): a real image; threshold None = Otsu
    image: Path | None = None
    threshold: float | None = None
    # discs (Eschweiler et al. 2024 HeLa): union of n_discs random overlapping discs of radius disc_radius px
    n_discs: tuple[int, int] = (3, 6)
    disc_radius: Range = (40.0, 90.0)
    # harmonics: spherical-harmonics blob (Eschweiler et al. 2021 eq. 5-7), order l and smoothness γ
    sh_order: Annotated[int, Field(ge=0, le=20)] = 5
    sh_gamma: PosFloat = 2.0
    # shape_model (Eschweiler et al. 2021 §3.2): example masks (directory of TIFFs) for the PCA model
    examples: Path | None = None
    n_modes: Annotated[int, Field(ge=1)] = 3
    n_rays: Annotated[int, Field(ge=8)] = 64
    margin: NonNegFloat = 2.0

    _r1 = field_validator("extent", "disc_radius", "n_discs")(ordered_range)


class PlacementConfig(Strict):
    """Where objects sit inside the foreground (Lloyd: Eschweiler et al. 2019; Poisson-disc; layers:
    Eschweiler et al. 2021)."""

    method: Literal["lloyd", "poisson", "layers", "uniform"] = "poisson"
    # number of objects: drawn uniformly in [low, high]
    n_points: tuple[int, int] = (20, 40)
    # lloyd / k-means relaxation (Eschweiler et al. 2019's (n_points, n_iter, k))
    n_iter: Annotated[int, Field(ge=0)] = 20
    k: Annotated[int, Field(ge=1)] = 20
    # poisson: minimum centre distance in px; layers: layer thickness in px
    min_distance: NonNegFloat = 10.0
    layer_thickness: PosFloat = 10.0
    # layers: fill at most this many layers from the surface (1 = surface only, Eschweiler et al. 2024 Tribolium)
    max_layers: Annotated[int, Field(ge=1)] | None = None
    # poisson: this fraction of the points is placed in contact with an earlier point, at
    # contact_distance × U(0.85, 1.05) px from it (clumps of touching nuclei); 0 = none
    touching: Fraction = 0.0
    contact_distance: PosFloat = 20.0

    @field_validator("n_points")
    @classmethod
    def _n(cls, v):
        ordered_range(v)
        if v[0] < 0:
            raise ValueError(f"counts must be >= 0, got {tuple(v)}")
        return v


class NucleiConfig(Strict):
    """Nuclei (Eschweiler et al. 2021, 2024): ellipsoids or spherical harmonics, deformed."""

    shape: Literal["ellipsoid", "harmonics", "shape_model"] = "ellipsoid"
    radius: Range = (8.0, 12.0)
    # per-axis scaling (sx, sy, sz) of the radius, each drawn in its range; (Z)YX order
    axis_scale: list[Range] = [(0.8, 1.2), (0.8, 1.2), (0.8, 1.2)]
    rotate: bool = True
    # elastic B-spline deformation: displacement magnitude (px) on a coarse control grid
    elastic: NonNegFloat = 1.0
    elastic_grid: Annotated[int, Field(ge=2)] = 4
    # spherical harmonics (Eschweiler et al. 2021 eq. 7): c_lm = r w e^{-γ l} (order l, smoothness γ)
    sh_order: Annotated[int, Field(ge=0, le=20)] = 5
    sh_gamma: PosFloat = 5.0
    # damping index of eq. 7: "l" damps by order l (default, see simulate.shapes), "m" as printed
    sh_decay: Literal["l", "m"] = "l"
    # shape_model: example masks (TIFF directory) for the PCA model (Eschweiler et al. 2021 §3.2)
    examples: Path | None = None
    n_modes: Annotated[int, Field(ge=1)] = 3
    n_rays: Annotated[int, Field(ge=8)] = 64
    # Eschweiler et al. 2024 C. elegans: a fraction of mitotic cells squashed by mitotic_squash along
    # two axes (3D, "more cylindrical") or one (2D)
    mitotic_fraction: Fraction = 0.0
    mitotic_squash: Annotated[float, Field(gt=0, le=1)] = 0.5
    allow_overlap: bool = False
    # class of the objects (e.g. "cell" for the cytoplasm-like cells of cells2d-overlapping)
    class_name: Annotated[str, Field(min_length=1)] = "nucleus"
    # overlap forbidden: a nucleus of which at most this fraction of voxels is already taken
    # is kept, clipped to the free voxels (it touches its neighbour, both labels intact);
    # 0 = any overlapping nucleus is skipped
    max_occlusion: Annotated[float, Field(ge=0, lt=1)] = 0.0
    # Eschweiler et al. 2024 C. elegans: radii shrink as nuclei multiply. When set, radius is scaled by
    # (radius_reference_count / n)^(1/ndim) for n requested nuclei (constant total volume)
    radius_reference_count: Annotated[int, Field(ge=1)] | None = None

    @field_validator("radius")
    @classmethod
    def _radius(cls, v):
        return _positive_range(v, "radius (px)")

    @field_validator("axis_scale")
    @classmethod
    def _axes(cls, v):
        return _axis_ranges(v, "axis scales")


class MembraneConfig(Strict):
    """Weighted Voronoi membranes (Eschweiler et al. 2021 eq. 3): dist / γ_j bends the walls.

    gamma: range of the per-cell weights γ_j (drawn uniformly); (1, 1) = plain Voronoi
    (Eschweiler et al. 2019). wall_thickness: membrane width in voxels per side of each interface
    (:func:`cellsynth.simulate.encode.boundaries`: a wall between two cells is 2 × wall_thickness,
    the specimen surface wall_thickness); the renderers draw the walls of their
    ``membrane_classes`` this thick, so image and derived membrane masks agree. connected: merge the
    rare stray fragments of a multiplicatively weighted cell into its main neighbour (one region per label).
    """

    gamma: Range = (0.8, 1.2)
    wall_thickness: Annotated[int, Field(ge=1)] = 1
    connected: bool = True

    @field_validator("gamma")
    @classmethod
    def _g(cls, v):
        return _positive_range(v, "γ")


class OrganelleConfig(Strict):
    """Nucleus–Golgi pairs (Rosa et al.)."""

    n_pairs: tuple[int, int] = (45, 70)
    golgi_radius: Range = (5.0, 9.0)
    nucleus_axes: list[Range] = [(17.0, 30.0), (8.0, 13.0), (8.0, 13.0)]
    golgi_offset: Range = (-6.0, 6.0)
    rotation_deg: Range = (0.0, 180.0)
    elastic: NonNegFloat = 0.75

    _r = field_validator("n_pairs", "golgi_radius", "golgi_offset", "rotation_deg")(ordered_range)

    @field_validator("n_pairs", "golgi_radius")
    @classmethod
    def _pos(cls, v):
        if v[0] < 0:
            raise ValueError(f"must be >= 0, got {tuple(v)}")
        return v

    @field_validator("nucleus_axes")
    @classmethod
    def _axes(cls, v):
        return _axis_ranges(v, "semi-axes")


class SceneCondition(Strict):
    """One real image's joint scene statistics (``cellsynth fit``); a scene draws one whole record.

    Drawing the record as a whole keeps the real joint distribution (dense fields of small
    nuclei, sparse fields of large ones, in the real proportions) that independent ranges lose.
    Each field overrides, for that scene: ``density`` (objects per pixel/voxel of foreground)
    -> the object count; ``radius`` (10–90 % equivalent radius, px) -> ``nuclei.radius``;
    ``nn_distance`` (10th percentile of nearest-neighbour centre distances, px) ->
    ``placement.min_distance``; ``touching`` (fraction of objects in contact with another) ->
    ``placement.touching``, with ``contact_distance`` = 1.8 × the geometric-mean radius;
    ``intensity`` / ``background`` (robust 0–1 scale) -> the sketch renderer's;
    ``photons`` / ``background_photons`` -> the physics renderer's; the measured effect
    strengths ``illumination``, ``background_texture``, ``brightness_sd``, ``texture`` (written
    when ``render.physics.fit_effects``; :mod:`cellsynth.fit_effects`) -> the physics renderer's;
    ``cytoplasm`` (the light next to the objects), ``thickness`` (2D: the nuclei's dome) and
    ``brightness_sd`` (the objects' log-brightness s.d.), each also written when the renderer's key
    is > 0 (:data:`cellsynth.fit.RECORD_KEYS`), -> the physics renderer's.
    """

    density: PosFloat
    radius: Range
    nn_distance: NonNegFloat = 0.0
    touching: Fraction = 0.0
    intensity: tuple[Fraction, Fraction] | None = None
    background: Fraction | None = None
    photons: tuple[NonNegFloat, NonNegFloat] | None = None
    background_photons: NonNegFloat | None = None
    illumination: Fraction | None = None
    background_texture: NonNegFloat | None = None
    brightness_sd: NonNegFloat | None = None
    texture: NonNegFloat | None = None
    cytoplasm: Fraction | None = None
    thickness: Fraction | None = None

    @field_validator("radius")
    @classmethod
    def _radius(cls, v):
        return _positive_range(v, "radius (px)")

    @field_validator("intensity", "photons")
    @classmethod
    def _ranges(cls, v):
        return ordered_range(v)


class SceneConfig(Strict):
    kind: Literal["nuclei", "membranes", "organelles"] = "nuclei"
    shape: list[Annotated[int, Field(ge=8, le=8192)]] = [256, 256]
    spacing: list[PosFloat] = [0.5, 0.5]
    foreground: ForegroundConfig = ForegroundConfig()
    placement: PlacementConfig = PlacementConfig()
    nuclei: NucleiConfig = NucleiConfig()
    membranes: MembraneConfig = MembraneConfig()
    organelles: OrganelleConfig = OrganelleConfig()
    # per-image joint records from `cellsynth fit` (kind "nuclei"): each scene draws one
    # uniformly and is conditioned on it (see SceneCondition); empty = the ranges above alone
    conditions: list[SceneCondition] = []

    @model_validator(mode="after")
    def _dims(self):
        if len(self.shape) not in (2, 3):
            raise ValueError(f"shape must have 2 (YX) or 3 (ZYX) entries, got {self.shape}")
        if len(self.spacing) != len(self.shape):
            raise ValueError(f"spacing {self.spacing} needs one value per axis of shape {self.shape}")
        if self.conditions and self.kind != "nuclei":
            raise ValueError(f"conditions apply to kind 'nuclei' only, not {self.kind!r}")
        for key, v in (("nuclei.axis_scale", self.nuclei.axis_scale),
                       ("organelles.nucleus_axes", self.organelles.nucleus_axes)):
            if len(v) < len(self.shape):
                raise ValueError(f"{key} has {len(v)} ranges; a {len(self.shape)}D scene needs "
                                 f"{len(self.shape)} ((Z)YX)")
        return self

    @property
    def ndim(self) -> int:
        return len(self.shape)


# --------------------------------------------------------------------------- render
class SketchConfig(Strict):
    """Sketch renderer (Eschweiler et al. 2024): per-cell intensity, decay, darker overlaps, nucleoli, blur.

    Intensities are in [0, 1] (the sketch's range). Defaults are calibrated on
    ``nuclei2d-dsb2018/train`` scaled to its 99.8th percentile: median background
    ≈ 0.035, per-nucleus means mostly 0.35–0.75.
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)

    # per-object intensity, drawn uniformly in [low, high]
    intensity: tuple[Fraction, Fraction] = (0.35, 0.85)
    # intensity outside objects
    background: Fraction = 0.03
    # linear decay of object intensity toward the organism centre ("center": distance from the
    # foreground centroid, normalised) or along z ("z": axis 0, i.e. along y in 2D);
    # the darkest point keeps 1 - decay_strength of the intensity
    decay: Literal["none", "center", "z"] = "none"
    decay_strength: Fraction = 0.3
    # each additional object covering a voxel (Scene.coverage()) multiplies by (1 - this)
    overlap_darkening: Fraction = 0.1
    # dark nucleoli per object (count drawn in [low, high]), radius in px (along the finest axis),
    # intensity as a factor of the object's intensity
    nucleoli: tuple[Annotated[int, Field(ge=0)], Annotated[int, Field(ge=0)]] = (0, 0)
    nucleolus_radius: tuple[PosFloat, PosFloat] = (1.5, 3.0)
    nucleolus_intensity: Fraction = 0.5
    # intensity factor per class name, e.g. {"golgi": 1.5}; results are clipped to [0, 1]
    class_intensity: dict[str, NonNegFloat] = {}
    # objects of these classes are drawn as walls (membranes), scene.membranes.wall_thickness px per side
    membrane_classes: list[str] = ["cell"]
    # Gaussian blur σ in px (Eschweiler et al. 2024: σ = 1); anisotropic: σ_axis = σ·min(spacing)/spacing_axis
    sigma: NonNegFloat = 1.0
    sigma_by_spacing: bool = False

    _r = field_validator("intensity", "nucleoli", "nucleolus_radius")(ordered_range)


class PhysicsConfig(Strict):
    """Physics renderer: optics and camera in physical units.

    PSF: Gaussian approximation of a widefield or confocal PSF from the numerical
    aperture NA, emission wavelength λ_em (nm) and immersion refractive index n
    (formulas in :mod:`cellsynth.render.physics`). Camera: photons -> Poisson shot
    noise at quantum efficiency QE, + Gaussian read noise (e⁻), × gain (ADU/e⁻) +
    offset (ADU), clipped to uint16.
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)

    microscope: Literal["widefield", "confocal"] = "widefield"
    na: Annotated[float, Field(gt=0, le=1.7)] = 1.2
    wavelength_nm: Annotated[float, Field(gt=200, lt=2000)] = 520.0
    refractive_index: Annotated[float, Field(ge=1.0, le=2.0)] = 1.33
    # multiplies both PSF σ (aberrations, defocus); 0 disables the PSF
    psf_scale: NonNegFloat = 1.0
    # photons per voxel in focus, drawn uniformly per object from this range
    photons: tuple[NonNegFloat, NonNegFloat] = (100.0, 400.0)
    # brightness factor per class name, e.g. {"golgi": 2.0}
    class_brightness: dict[str, NonNegFloat] = {}
    # objects of these classes emit from their walls only (membrane stain),
    # scene.membranes.wall_thickness px per side
    membrane_classes: list[str] = ["cell"]
    # uniform background photons per voxel (everywhere)
    background_photons: NonNegFloat = 10.0
    # autofluorescence inside the specimen (foreground), as a fraction of the mean object photons
    autofluorescence: Fraction = 0.05
    # exponential depth attenuation along z (3D): exp(-z_µm / attenuation_um); 0 disables
    attenuation_um: NonNegFloat = 0.0
    quantum_efficiency: Annotated[float, Field(gt=0, le=1)] = 0.8
    read_noise_e: NonNegFloat = 2.0
    gain: PosFloat = 1.0
    offset: Annotated[float, Field(ge=0, le=65535)] = 100.0
    # texture: relative std of a smooth multiplicative random field inside objects (chromatin-like),
    # correlation length texture_scale_um (µm, Gaussian σ); 0 disables
    texture: NonNegFloat = 0.2
    texture_scale_um: PosFloat = 0.5
    # 2D scenes: weight of the projected thickness of a dome-shaped (ellipsoidal) nucleus through
    # the focal slab, emission × (1 - w + w·√(2u - u²)), u = distance to the object's edge /
    # its largest such distance (soft, darker rims as in widefield images); 0 = flat emission;
    # `cellsynth fit` measures it per 2D image (fit_effects.dome_thickness) into the records when > 0
    thickness: Fraction = 0.0
    # per-object brightness heterogeneity on top of U(photons): × exp(N(0, brightness_sd²)), log units
    brightness_sd: NonNegFloat = 0.0
    # unlabelled cell bodies around the objects (cytoplasmic stain, autofluorescent cytoplasm):
    # each object's share of the field (nearest object) out to d ~ U(cytoplasm_um) µm beyond its
    # edge, the reach irregular (× 1 + ½ tanh f, f a smooth field of correlation mean(cytoplasm_um)),
    # emitting cytoplasm × the object's photons before the PSF; 0 disables
    cytoplasm: Fraction = 0.0
    cytoplasm_um: tuple[PosFloat, PosFloat] = (1.0, 4.0)
    # the PSF's wings: a fraction `scatter` of the emitted light is blurred by a wide Gaussian of
    # σ = scatter_um (µm) instead of the PSF (specimen scatter, aberrations, thick nuclei); 0 disables
    scatter: Fraction = 0.0
    scatter_um: PosFloat = 1.5
    # out-of-focus haze: `haze` nuclei above/below the focal plane per in-focus nucleus (sizes
    # drawn from the scene's own nuclei, photons from `photons`), |defocus| ~ U(haze_defocus_um),
    # blurred by the defocused PSF (geometric blur disc of radius |Δz|·tan θ, sin θ = NA/n)
    haze: NonNegFloat = 0.0
    haze_defocus_um: tuple[NonNegFloat, NonNegFloat] = (2.0, 8.0)
    # smooth illumination field (vignetting): × (1 - illumination·ρ²), ρ = distance from a
    # random optical centre near the field centre / half the field diagonal
    illumination: Fraction = 0.0
    # autofluorescent debris: particles per 1000 µm² of field (per 10⁴ µm³ in 3D), radius in µm,
    # photons as a fraction of the mean object photons
    debris: NonNegFloat = 0.0
    debris_radius_um: tuple[PosFloat, PosFloat] = (0.3, 1.5)
    debris_brightness: tuple[NonNegFloat, NonNegFloat] = (0.1, 0.6)
    # background not flat: × max(0, 1 + background_texture·f), f a unit-variance smooth random
    # field of correlation length background_scale_um (µm)
    background_texture: NonNegFloat = 0.0
    background_scale_um: PosFloat = 10.0
    # `cellsynth fit` measures illumination, background_texture, brightness_sd and texture per image
    # (cellsynth.fit_effects, with this PSF and these correlation lengths) and, when true, writes
    # them into the per-image records (scene.conditions) that then drive this renderer
    # (brightness_sd, cytoplasm and thickness go there whenever their key is > 0: fit.RECORD_KEYS)
    fit_effects: bool = False

    _r = field_validator("photons", "haze_defocus_um", "debris_radius_um", "debris_brightness",
                         "cytoplasm_um")(ordered_range)

    @model_validator(mode="after")
    def _na(self):
        if self.na >= self.refractive_index:
            raise ValueError(f"na {self.na} must be below refractive_index {self.refractive_index}"
                             " (sin θ < 1)")
        return self


class DiffusionRenderConfig(Strict):
    """SDEdit generation from sketches (Eschweiler et al. 2024), see :mod:`cellsynth.generative.diffusion`.

    ``t_start`` counts forward-noising steps in the paper's terms (1..T; the model sees
    index t_start − 1); ``steps`` = K reverse steps of the respaced sampler (K ≥ t_start:
    the full chain of t_start steps). ``sigma``: Gaussian blur (px) of the sketch before noising (replaces the
    sketch's own blur). ``model`` None = the shipped model ``cellsynth/models/nuclei2d-dsb``.
    Sketch intensities are mapped to the model's stored background / foreground levels
    (``match_intensities``); ``background`` and ``foreground`` = (low, high) override them,
    in the model's normalised units [-1, 1]. ``output``: "unit" float32 in [0, 1], or "raw"
    float32 in the training images' typical intensity range.
    """

    model: Path | None = None
    # upper bounds (T of the model, t_start) are checked when the renderer loads its model
    t_start: Annotated[int, Field(ge=1)] = 400
    sigma: NonNegFloat = 1.0
    steps: Annotated[int, Field(ge=1)] = 50
    tile: list[Annotated[int, Field(ge=8)]] | None = None
    overlap: Annotated[float, Field(ge=0, lt=1)] = 0.125
    device: Literal["auto", "cpu", "cuda"] = "auto"
    match_intensities: bool = True
    background: Annotated[float, Field(ge=-1, le=1)] | None = None
    foreground: tuple[Annotated[float, Field(ge=-1, le=1)], Annotated[float, Field(ge=-1, le=1)]] | None = None
    output: Literal["unit", "raw"] = "unit"
    batch_size: Annotated[int, Field(ge=1)] = 4
    # torch CPU threads for this process (None = torch's default); 1 is much faster on a CPU shared
    # with other jobs (2 threads contending ran 6–10× slower in our benchmarks)
    threads: Annotated[int, Field(ge=1)] | None = None


class CycleGANRenderConfig(Strict):
    """Mask→image with a trained CycleGAN (Eschweiler et al. 2019), see :mod:`cellsynth.generative.translate`.

    ``tile`` (default: the whole image up to 64·256·256 voxels, else 64×256×256 / 512² tiles),
    ``overlap`` and ``crop`` (default: Eschweiler et al. 2021's 30/30/15 voxels XYZ, capped at a fifth
    of the tile) are per axis, (Z)YX.
    """

    model: Path | None = None
    tile: list[Annotated[int, Field(ge=4)]] | None = None
    overlap: list[Annotated[int, Field(ge=0)]] | None = None
    crop: list[Annotated[int, Field(ge=0)]] | None = None
    device: Literal["auto", "cpu", "cuda"] = "auto"
    threads: Annotated[int, Field(ge=1)] | None = None


class CGANRenderConfig(CycleGANRenderConfig):
    """Mask→image with a trained conditional GAN (Eschweiler et al. 2021). ``model`` None = the shipped
    3D nuclei model. ``alpha``/``beta`` of the positional map (None = the training values, 100):
    α is the paper's quality-level knob (Fig. 14–16: 10 … 1000)."""

    alpha: PosFloat | None = None
    beta: PosFloat | None = None


class RenderConfig(Strict):
    sketch: SketchConfig = SketchConfig()
    physics: PhysicsConfig = PhysicsConfig()
    diffusion: DiffusionRenderConfig = DiffusionRenderConfig()
    cgan: CGANRenderConfig = CGANRenderConfig()
    cyclegan: CycleGANRenderConfig = CycleGANRenderConfig()


class Config(Strict):
    """A whole preset: scene simulation + rendering."""

    name: str = "custom"
    description: str = ""
    reference: str = ""
    renderer: Literal["physics", "sketch", "diffusion", "cgan", "cyclegan"] = "physics"
    scene: SceneConfig = SceneConfig()
    render: RenderConfig = RenderConfig()
    # settings of the U-Net segmenter that suit this kind of data (SegmenterConfig keys, e.g. ``rescale``:
    # the object diameter to train and predict at, as Cellpose's per-model diameter); the Syn2Real
    # benchmark and ``adapt`` train every U-Net with them; validated where a segmenter is trained
    segmenter: dict = {}


# --------------------------------------------------------------------------- loading
def format_validation_error(err: ValidationError, data: Any = None, prefix: str = "") -> str:
    """One line: the key, the value given, and what is allowed."""
    e = err.errors()[0]
    key = ".".join(str(p) for p in e.get("loc", ()))
    key = f"{prefix}{key}" if key else (prefix.rstrip(".") or "config")
    msg = e.get("msg", "invalid")
    if e.get("type") == "extra_forbidden":
        return f"unknown config key '{key}'"
    val = e.get("input")
    vs = repr(val)
    if len(vs) > 60:
        vs = vs[:57] + "..."
    return f"config key '{key}' = {vs}: {msg}"


def _set_dotted(d: dict, dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    cur = d
    for p in parts[:-1]:
        if p not in cur or cur[p] is None:
            cur[p] = {}
        if not isinstance(cur[p], dict):
            raise ConfigError(f"config key '{dotted}': '{p}' is a value, not a section")
        cur = cur[p]
    cur[parts[-1]] = value


def deep_merge(base: dict, over: dict) -> dict:
    """``base`` updated recursively by ``over`` (sections merge, values replace); inputs are not changed.

    >>> deep_merge({"a": {"x": 1, "y": 2}}, {"a": {"y": 3}})
    {'a': {'x': 1, 'y': 3}}
    """
    out = copy.deepcopy(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = v
    return out


def parse_override(item: str) -> tuple[str, Any]:
    """``a.b=value`` -> ("a.b", value) with value parsed as YAML (numbers, lists, bools)."""
    if "=" not in item:
        raise ConfigError(f"--set '{item}': expected key=value, e.g. scene.nuclei.radius=[8,12]")
    key, raw = item.split("=", 1)
    key = key.strip()
    if not key:
        raise ConfigError(f"--set '{item}': empty key")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError:
        value = raw
    return key, value


def validate(model: type[BaseModel], data: dict, prefix: str = "") -> Any:
    """Validate a dict into ``model``; raise :class:`ConfigError` with one line on failure."""
    try:
        return model.model_validate(data)
    except ValidationError as err:
        raise ConfigError(format_validation_error(err, data, prefix)) from None


def load_yaml(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file '{path}' not found")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise ConfigError(f"config file '{path}' is not valid YAML: {str(e).splitlines()[0]}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file '{path}' must hold a mapping, got {type(data).__name__}")
    return data


def list_presets() -> dict[str, str]:
    """Preset name -> one-line description."""
    out = {}
    for f in sorted(resources.files("cellsynth.presets").iterdir(), key=lambda p: p.name):
        if f.name.endswith(".yaml"):
            data = yaml.safe_load(f.read_text())
            # the papers the preset follows, as cited in its reference ("Eschweiler et al. 2024")
            papers = list(dict.fromkeys(re.findall(r"[A-Z][\w-]+ et al\.(?: \d{4})?", data.get("reference", ""))))
            cite = ", ".join(papers) if papers else "measured on real data"
            out[f.name[:-5]] = f"{data.get('description', '')} [{cite}]"
    return out


def preset_dict(name: str) -> dict:
    f = resources.files("cellsynth.presets").joinpath(f"{name}.yaml")
    if not f.is_file():
        known = ", ".join(list_presets())
        raise ConfigError(f"unknown preset '{name}'; known presets: {known}")
    data = yaml.safe_load(f.read_text()) or {}
    data.setdefault("name", name)
    return data


def load_config(preset: str | None = None, config_file: str | Path | None = None,
                overrides: list[str] | None = None) -> Config:
    """Preset, then ``--config FILE``, then each ``--set a.b=value`` in order."""
    data: dict = preset_dict(preset) if preset else {}
    if config_file:
        data = deep_merge(data, load_yaml(config_file))
    for item in overrides or []:
        key, value = parse_override(item)
        _set_dotted(data, key, value)
    return validate(Config, data)


def config_to_dict(cfg: BaseModel) -> dict:
    """JSON-friendly dict (paths as strings, tuples as lists)."""
    return cfg.model_dump(mode="json")
