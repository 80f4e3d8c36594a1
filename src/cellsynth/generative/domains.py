"""The two domains a mask↔image translator learns between, prepared once and cut into patches.

Image domain: real single-channel images, percentile-normalised per image to [-1, 1].
Mask domain: instance masks (real, or simulated scenes of a preset) encoded as network
input channels in [-1, 1]:

- ``"boundaries"``: the binary membrane/boundary map (Eschweiler et al. 2019: the generators see
  only the membranes);
- ``"foreground"``: objects vs background (filled nuclei);
- ``"classes"``: one channel per class name (Rosa et al.: nucleus and Golgi), simulated scenes only.

Per volume it also prepares the cycle-loss weight (:func:`distance_weight`) and the
specimen's positional map (:func:`cellsynth.simulate.encode.positional_map`,
Eschweiler et al. 2021). Unpaired: image and mask patches are drawn independently.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

from .. import tiling
from ..errors import ConfigError, InputError
from ..intensity import DEFAULT_PERCENTILES, normalize_percentile
from ..io import list_images, read_image, read_labels
from ..simulate import encode

ENCODINGS = ("boundaries", "foreground", "classes")


def normalise_image(image: np.ndarray, percentiles: Sequence[float] = DEFAULT_PERCENTILES) -> np.ndarray:
    """Percentile normalisation to [-1, 1], clipped (the translators' image space), float32."""
    return normalize_percentile(image, percentiles[0], percentiles[1], out=(-1, 1), clip=True)


def close_specimen(mask: np.ndarray, radius: float, factor: int = 1) -> np.ndarray:
    """Closing by a ball of ``radius`` (via distance transforms) and hole filling: the specimen around objects.

    ``factor`` > 1 closes the mask max-pooled by ``factor`` per axis with ``radius / factor`` and
    repeats the result back (f^ndim times fewer voxels; it contains the mask, and its surface lies
    ≲ f px outside the exact one's), for the positional map of large volumes.
    """
    if not mask.any():
        return mask.astype(bool)
    if factor > 1:
        f = int(factor)
        pad = [(0, -s % f) for s in mask.shape]
        m = np.pad(mask, pad)
        pooled = m.reshape([x for s in m.shape for x in (s // f, f)]).any(axis=tuple(range(1, 2 * m.ndim, 2)))
        closed = close_specimen(pooled, radius / f)
        for ax in range(mask.ndim):
            closed = np.repeat(closed, f, axis=ax)
        return closed[tuple(slice(0, s) for s in mask.shape)]
    grown = ndi.distance_transform_edt(~mask) <= radius
    grown = ndi.binary_fill_holes(grown)
    closed = ndi.distance_transform_edt(np.pad(grown, 1, constant_values=True))[(slice(1, -1),) * mask.ndim] > radius
    return ndi.binary_fill_holes(closed | mask)


def specimen_from_labels(labels: np.ndarray, radius: float = 8.0, factor: int = 1) -> np.ndarray:
    """The specimen (tissue) region of an instance mask: its objects closed by ``radius`` px
    (``factor``: on a coarser grid, :func:`close_specimen`)."""
    return close_specimen(labels > 0, radius, factor)


def specimen_from_image(image: np.ndarray, radius: float = 8.0, sigma: float = 2.0) -> np.ndarray:
    """The specimen region of a real image: Otsu threshold of the smoothed image, closed by ``radius`` px."""
    from skimage.filters import threshold_otsu
    s = ndi.gaussian_filter(image.astype(np.float32), sigma)
    if float(s.max()) <= float(s.min()):
        return np.zeros(image.shape, bool)
    return close_specimen(s > threshold_otsu(s), radius)


def encode_mask(labels: np.ndarray, encoding: str, classes: dict | None = None,
                class_names: Sequence[str] | None = None, thickness: int = 1) -> np.ndarray:
    """(C, *spatial) float32 in {-1, 1}: the mask domain's network input for ``encoding``.

    >>> lab = np.zeros((6, 6), np.uint16); lab[1:5, 1:5] = 1
    >>> encode_mask(lab, "foreground")[0, 0, 0], encode_mask(lab, "foreground")[0, 2, 2]
    (np.float32(-1.0), np.float32(1.0))
    """
    if encoding == "boundaries":
        ch = [encode.boundaries(labels, thickness)]
    elif encoding == "foreground":
        ch = [labels > 0]
    elif encoding == "classes":
        if not classes or not class_names:
            raise ConfigError("mask encoding 'classes' needs simulated scenes with class names (--preset)")
        lut = {name: np.zeros(int(labels.max()) + 1, bool) for name in class_names}
        for lab, name in classes.items():
            if name in lut and 0 < int(lab) <= labels.max():
                lut[name][int(lab)] = True
        ch = [lut[name][labels] for name in class_names]
    else:
        raise ConfigError(f"mask encoding '{encoding}': choose one of {', '.join(ENCODINGS)}")
    return np.stack(ch).astype(np.float32) * 2 - 1


def distance_weight(boundary: np.ndarray, saturation: float = 5.0, minimum: float = 0.1) -> np.ndarray:
    """Cycle-loss weight of Eschweiler et al. 2019 eq. 1: small at membranes, large at centres and background.

    w = minimum + (1 − minimum) · min(d / saturation, 1), d = Euclidean distance (px) to the
    nearest boundary voxel. A slightly shifted membrane then costs little, while the
    content of cells and background must come back exactly. No boundary: w = 1.

    >>> b = np.zeros(7, bool); b[3] = True
    >>> distance_weight(b, saturation=2.0, minimum=0.0).tolist()
    [1.0, 1.0, 0.5, 0.0, 0.5, 1.0, 1.0]
    """
    if not boundary.any():
        return np.ones(boundary.shape, np.float32)
    d = ndi.distance_transform_edt(~boundary)
    return (minimum + (1 - minimum) * np.minimum(d / saturation, 1.0)).astype(np.float32)


@dataclass
class Domains:
    """Prepared full-size arrays of both domains, each (C, *spatial) float32."""

    images: list[np.ndarray]
    masks: list[np.ndarray]
    image_pos: list[np.ndarray] = field(default_factory=list)
    mask_pos: list[np.ndarray] = field(default_factory=list)
    mask_weight: list[np.ndarray] = field(default_factory=list)
    image_files: list[Path] = field(default_factory=list)
    mask_source: dict = field(default_factory=dict)

    @property
    def ndim(self) -> int:
        return self.images[0].ndim - 1

    def sampler(self, patch: Sequence[int], batch_size: int):
        """``rng -> batch``: independent random patches of each domain (flip/rot90 in YX alike per patch)."""
        def draw(rng: np.random.Generator, arrays: list[list[np.ndarray]]) -> list[np.ndarray]:
            i = int(rng.integers(len(arrays[0])))
            parts = [a[i] for a in arrays]
            sizes = [p.shape[0] for p in parts]
            stacked = np.concatenate(parts, 0)
            cut = np.stack(tiling.random_patches(list(stacked), patch, rng), 0)
            cut = tiling.random_flip_rot(cut, rng)
            return np.split(cut, np.cumsum(sizes)[:-1], 0)

        img_sets = [self.images] + ([self.image_pos] if self.image_pos else [])
        mask_sets = [self.masks] + ([self.mask_pos] if self.mask_pos else []) + \
            ([self.mask_weight] if self.mask_weight else [])

        def sample(rng: np.random.Generator) -> dict[str, np.ndarray]:
            ib = [draw(rng, img_sets) for _ in range(batch_size)]
            mb = [draw(rng, mask_sets) for _ in range(batch_size)]
            out = {"image": np.stack([b[0] for b in ib]), "mask": np.stack([b[0] for b in mb])}
            if self.image_pos:
                out["image_pos"] = np.stack([b[1] for b in ib])
                out["mask_pos"] = np.stack([b[1] for b in mb])
            if self.mask_weight:
                out["mask_weight"] = np.stack([b[-1] for b in mb])
            return {k: v.astype(np.float32) for k, v in out.items()}
        return sample


def read_image_domain(folder: str | Path, percentiles: Sequence[float]) -> tuple[list[np.ndarray], list[Path]]:
    """Normalised real images (1, *spatial) from a folder; all of one dimensionality."""
    files = list_images(folder, what="training images")
    out = []
    for f in files:
        a = read_image(f)
        if out and a.ndim != out[0].ndim - 1:
            raise InputError(f"training images must all be 2D or all 3D: '{files[0].name}' is "
                             f"{out[0].ndim - 1}D but '{f.name}' is {a.ndim}D")
        if not np.all(np.isfinite(a)):
            raise InputError(f"training image '{f}' contains NaN or infinite values")
        out.append(normalise_image(a, percentiles)[None])
    return out, files


def read_label_domain(folder: str | Path) -> tuple[list[np.ndarray], list[Path]]:
    """Instance masks from a folder (each must hold at least one object)."""
    files = list_images(folder, what="training masks")
    return [read_labels(f, allow_empty=False) for f in files], files


def simulate_label_domain(preset: str, n: int, seed: int, overrides: Sequence[str] = ()) -> list:
    """``n`` scenes simulated from ``preset`` (seeded), for the mask domain."""
    from ..config import load_config
    from ..simulate import simulate_scene
    cfg = load_config(preset, None, list(overrides))
    rngs = np.random.default_rng(seed).spawn(n)
    return [simulate_scene(cfg.scene, r) for r in rngs]


def prepare_domains(images: str | Path, masks: str | Path | None = None, preset: str | None = None,
                    n_scenes: int = 8, seed: int = 0, scene_overrides: Sequence[str] = (),
                    encoding: str = "foreground", class_names: Sequence[str] | None = None,
                    percentiles: Sequence[float] = (1.0, 99.8), positional: tuple[float, float] | None = None,
                    cycle_weight: dict | None = None, thickness: int = 1,
                    specimen_radius: float = 8.0) -> Domains:
    """Read/simulate and encode both domains; every input problem is one line before anything is written.

    ``positional`` = (α, β) adds positional maps of the specimen (image: Otsu, mask: closed
    objects or the scene's foreground). ``cycle_weight`` = {"saturation", "minimum"} adds the
    distance weight of the mask's boundaries (None: plain L1, weight 1).
    """
    if (masks is None) == (preset is None):
        raise ConfigError("give the mask domain as exactly one of --masks DIR or --preset P")
    imgs, img_files = read_image_domain(images, percentiles)
    nd = imgs[0].ndim - 1
    if masks is not None:
        labels, mask_files = read_label_domain(masks)
        by_name = {f.name: im for f, im in zip(img_files, imgs)}
        for f, lab in zip(mask_files, labels):  # same name = the image's own annotation: shapes must agree
            if f.name in by_name and by_name[f.name].shape[1:] != lab.shape:
                raise InputError(f"mask '{f}' has shape {lab.shape} but image '{f.name}' has shape "
                                 f"{by_name[f.name].shape[1:]}")
        scenes_fg = [None] * len(labels)
        classes = [None] * len(labels)
        source = {"masks": Path(masks).name, "count": len(labels)}
    else:
        scenes = simulate_label_domain(preset, n_scenes, seed, scene_overrides)
        labels = [s.labels for s in scenes]
        scenes_fg = [s.foreground for s in scenes]
        classes = [s.classes for s in scenes]
        source = {"preset": preset, "count": len(scenes), "seed": seed, "overrides": list(scene_overrides)}
    bad = [i for i, lab in enumerate(labels) if lab.ndim != nd]
    if bad:
        what = f"mask '{mask_files[bad[0]].name}'" if masks is not None else f"preset '{preset}' scenes"
        raise InputError(f"{what} is {labels[bad[0]].ndim}D but the training images are {nd}D")
    if encoding == "classes" and not class_names:
        class_names = sorted({c for cl in classes if cl for c in cl.values()})
    enc = [encode_mask(lab, encoding, cl, class_names, thickness) for lab, cl in zip(labels, classes)]
    d = Domains(images=imgs, masks=enc, image_files=img_files,
                mask_source={**source, "encoding": encoding, "class_names": list(class_names or [])})
    if positional is not None:
        a, b = positional
        d.image_pos = [encode.positional_map(specimen_from_image(i[0], specimen_radius), a, b)[None]
                       for i in imgs]
        d.mask_pos = [encode.positional_map(fg if fg is not None else specimen_from_labels(lab, specimen_radius),
                                            a, b)[None] for lab, fg in zip(labels, scenes_fg)]
    if cycle_weight is not None:
        d.mask_weight = [distance_weight(encode.boundaries(lab), **cycle_weight)[None] for lab in labels]
    return d
