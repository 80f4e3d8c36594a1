"""Save the current image + labels layers as one sample of a cellsynth dataset folder."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import InputError
from ..io import write_tiff


def write_dataset(path: str, layer_data: list[tuple]) -> list[str]:
    """npe2 multi-layer writer: exactly one image and one labels layer of the same shape.

    Writes ``PATH/images/NAME.tif`` and ``PATH/masks/NAME.tif`` (NAME = the image layer's
    name; the voxel size from its scale). An existing sample of that name is refused,
    and everything is checked before anything is written.

    Examples
    --------
    >>> import tempfile, numpy as np
    >>> d = tempfile.mkdtemp()
    >>> img = (np.zeros((8, 8), np.uint8), {"name": "cell", "scale": (0.5, 0.5)}, "image")
    >>> lab = (np.ones((8, 8), np.uint16), {"name": "cell masks"}, "labels")
    >>> [p.split("/")[-2:] for p in write_dataset(d, [img, lab])]
    [['images', 'cell.tif'], ['masks', 'cell.tif']]
    """
    kinds = [t for _, _, t in layer_data]
    if sorted(kinds) != ["image", "labels"]:
        raise InputError(f"save one image and one labels layer as a cellsynth dataset sample, got {kinds}")
    (img, meta, _), = [ld for ld in layer_data if ld[2] == "image"]
    (lab, lmeta, _), = [ld for ld in layer_data if ld[2] == "labels"]
    img, lab = np.asarray(img), np.asarray(lab)
    if img.shape != lab.shape:
        raise InputError(f"image layer '{meta.get('name')}' has shape {img.shape} but labels layer "
                         f"'{lmeta.get('name')}' has {lab.shape}")
    if img.ndim not in (2, 3):
        raise InputError(f"image layer '{meta.get('name')}' is {img.ndim}D; a sample is 2D (YX) or 3D (ZYX)")
    if not np.issubdtype(lab.dtype, np.integer) or (lab.size and lab.min() < 0):
        raise InputError(f"labels layer '{lmeta.get('name')}' must hold non-negative integer labels")
    if np.issubdtype(img.dtype, np.floating) and not np.all(np.isfinite(img)):
        raise InputError(f"image layer '{meta.get('name')}' contains NaN or infinite values")
    name = "".join(c if c.isalnum() or c in "-_." else "_" for c in str(meta.get("name") or "sample"))
    root = Path(path)
    targets = [root / "images" / f"{name}.tif", root / "masks" / f"{name}.tif"]
    for t in targets:
        if t.exists():
            raise InputError(f"'{t}' exists; rename the image layer or choose another folder")
    scale = meta.get("scale")
    spacing = tuple(float(s) for s in scale[-img.ndim:]) if scale is not None else None
    write_tiff(targets[1], lab.astype(np.uint32 if lab.max(initial=0) > 65535 else np.uint16), spacing)
    write_tiff(targets[0], img, spacing)  # the image last: a sample is complete once its image exists
    return [str(t) for t in targets]
