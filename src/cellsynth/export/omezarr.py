"""OME-Zarr (OME-NGFF; Moore et al. 2021, 2023): one ``NAME.zarr`` image per sample with ``labels/cells``.

NGFF 0.4 (Zarr v2, ``.zattrs``; what the Fiji and napari readers in use open today) by
default, 0.5 (Zarr v3, metadata under ``attributes.ome``) by option. The image is a
multiscale pyramid — YX halved per level, Z kept (microscopy stacks are anisotropic
already) — with the physical voxel size as each level's scale, in micrometres. The
labels image has the same levels (nearest-neighbour: every other pixel) and
``image-label`` metadata pointing at the image. Each store is written to a temporary
folder and renamed into place, so a store that exists is complete. Needs ``zarr>=3``
(``pip install cellsynth[omezarr]``).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import ConfigError
from ..io import atomic_path
from .common import Sample, check_option, write_missing

OPTIONS = {"ngff_version": "0.4", "levels": 3, "chunk": 256}
LABEL_NAME = "cells"
SPLIT = False  # one store per sample, no train/test folders


def root(out: Path, opts: dict, source: Path) -> Path:
    return out


def _zarr():
    try:
        import zarr
    except ImportError:
        raise ConfigError("--format omezarr needs the zarr package: pip install 'cellsynth[omezarr]'") from None
    return zarr


def check(samples: list[Sample], split: dict, opts: dict) -> None:
    _zarr()
    v = opts["ngff_version"]
    if v not in ("0.4", "0.5"):
        raise ConfigError(f"--ngff-version must be 0.4 or 0.5, got '{v}'")
    check_option("levels", opts["levels"], isinstance(opts["levels"], int) and opts["levels"] >= 1,
                 "an integer >= 1")
    check_option("chunk", opts["chunk"], isinstance(opts["chunk"], int) and opts["chunk"] >= 8, "an integer >= 8")


def pyramid(image: np.ndarray, labels: np.ndarray, levels: int):
    """Yield (image, labels) per level; YX halved each level (image: 2×2 block mean, labels: every other pixel)."""
    for lev in range(levels):
        yield image, labels
        if lev == levels - 1 or min(image.shape[-2:]) < 2:
            break
        pad = [(0, 0)] * (image.ndim - 2) + [(0, image.shape[-2] % 2), (0, image.shape[-1] % 2)]
        p = np.pad(image.astype(np.float32), pad, mode="edge")
        p = p.reshape(*p.shape[:-2], p.shape[-2] // 2, 2, p.shape[-1] // 2, 2).mean(axis=(-3, -1))
        image = np.rint(p).astype(image.dtype) if np.issubdtype(image.dtype, np.integer) else p.astype(image.dtype)
        labels = labels[..., ::2, ::2]


def multiscales(name: str, spacing, n_levels: int, version: str) -> dict:
    """The NGFF ``multiscales`` entry: axes with units, one scale transformation per level."""
    names = "zyx"[-len(spacing):]
    axes = [{"name": a, "type": "space", "unit": "micrometer"} for a in names]
    datasets = []
    for lev in range(n_levels):
        f = [1.0] * (len(spacing) - 2) + [2.0 ** lev] * 2
        datasets.append({"path": str(lev), "coordinateTransformations": [
            {"type": "scale", "scale": [float(s) * k for s, k in zip(spacing, f)]}]})
    ms = {"name": name, "axes": axes, "datasets": datasets}
    if version == "0.4":
        ms = {"version": "0.4", **ms}
    return ms


def _attrs(version: str, content: dict) -> dict:
    return {"ome": {"version": version, **content}} if version == "0.5" else content


def write_store(path: Path, name: str, image: np.ndarray, labels: np.ndarray, spacing, opts: dict) -> None:
    """Write one OME-Zarr image with its labels at ``path`` (atomically: temp folder, then rename)."""
    zarr = _zarr()
    version = opts["ngff_version"]
    levels = list(pyramid(image, labels.astype(np.uint32 if labels.max() > 65535 else np.uint16), opts["levels"]))
    fmt = 2 if version == "0.4" else 3
    kw = {"chunk_key_encoding": {"name": "v2", "separator": "/"}} if fmt == 2 else {}

    def arrays(group, key_arrays):
        for i, a in enumerate(key_arrays):
            chunks = tuple(min(s, opts["chunk"]) for s in a.shape[-2:])
            chunks = (min(a.shape[0], 16),) * (a.ndim - 2) + chunks
            if fmt == 3:  # NGFF 0.5 requires the axis names on every array
                kw["dimension_names"] = tuple("zyx"[-a.ndim:])
            arr = group.create_array(str(i), shape=a.shape, dtype=a.dtype, chunks=chunks, **kw)
            arr[...] = a

    with atomic_path(path, directory=True) as tmp:
        root = zarr.open_group(str(tmp), mode="w", zarr_format=fmt)
        arrays(root, [im for im, _ in levels])
        root.attrs.update(_attrs(version, {"multiscales": [multiscales(name, spacing, len(levels), version)]}))
        lab_group = root.create_group("labels")
        lab_group.attrs.update(_attrs(version, {"labels": [LABEL_NAME]}))
        cells = lab_group.create_group(LABEL_NAME)
        arrays(cells, [lb for _, lb in levels])
        image_label = {"source": {"image": "../../"}}
        if version == "0.4":
            image_label = {"version": "0.4", **image_label}
        cells.attrs.update(_attrs(version, {"multiscales": [multiscales(LABEL_NAME, spacing, len(levels), version)],
                                            "image-label": image_label}))


def write(samples: list[Sample], root: Path, split: dict, opts: dict, bar) -> dict:
    for s in samples:
        write_missing(root / f"{s.name}.zarr",
                      lambda p: write_store(p, s.name, s.image(), s.labels(), s.spacing, opts))
        bar.update(1)
    return {"ngff_version": opts["ngff_version"], "zarr_format": 2 if opts["ngff_version"] == "0.4" else 3,
            "levels": opts["levels"]}
