"""Open a cellsynth dataset folder (``images/`` + ``masks/``) as an image and a labels layer."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..io import read_image, read_labels, read_spacing


def get_reader(path: str | list[str]) -> Callable | None:
    """npe2 reader hook: a callable for a dataset folder, None for anything else (napari tries other readers)."""
    if isinstance(path, list):
        if len(path) != 1:
            return None
        path = path[0]
    p = Path(path)
    return read_dataset_layers if (p / "images").is_dir() and (p / "masks").is_dir() else None


def read_dataset_layers(path: str | list[str]) -> list[tuple]:
    """Layer data for a dataset: samples of one shape stack along a leading "sample" axis; otherwise
    each sample is its own image + labels pair. Scale = voxel size (µm) from the TIFFs.

    Examples
    --------
    >>> import tempfile, numpy as np
    >>> from cellsynth.io import write_tiff
    >>> d = tempfile.mkdtemp()
    >>> for n in ("a", "b"):
    ...     _ = write_tiff(f"{d}/images/{n}.tif", np.zeros((8, 8), np.uint8), (0.5, 0.5))
    ...     _ = write_tiff(f"{d}/masks/{n}.tif", np.ones((8, 8), np.uint16), (0.5, 0.5))
    >>> [(ld[0].shape, ld[1]["scale"], ld[2]) for ld in read_dataset_layers(d)]
    [((2, 8, 8), (1.0, 0.5, 0.5), 'image'), ((2, 8, 8), (1.0, 0.5, 0.5), 'labels')]
    """
    from ..dataset import read_pairs
    path = Path(path[0] if isinstance(path, list) else path)
    pairs = read_pairs(path)
    images, labels, scales = [], [], []
    for _name, ip, mp in pairs:
        img, lab = read_image(ip), read_labels(mp)
        if img.shape != lab.shape:
            raise InputError(f"image '{ip}' has shape {img.shape} but its mask has {lab.shape}")
        images.append(img)
        labels.append(lab)
        scales.append(tuple(read_spacing(ip, img.ndim) or (1.0,) * img.ndim))
    if len({a.shape for a in images}) == 1 and len(set(scales)) == 1 and len({a.dtype for a in images}) == 1:
        scale = (1.0, *scales[0])
        return [(np.stack(images), {"name": f"{path.name} images", "scale": scale}, "image"),
                (np.stack(labels), {"name": f"{path.name} masks", "scale": scale}, "labels")]
    out = []
    for (name, _, _), img, lab, sc in zip(pairs, images, labels, scales):
        out += [(img, {"name": name, "scale": sc}, "image"), (lab, {"name": f"{name} masks", "scale": sc}, "labels")]
    return out
