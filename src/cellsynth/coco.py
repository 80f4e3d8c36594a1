"""COCO-style instance annotations (polygons, uncompressed RLE) -> Scenes that keep overlaps.

LIVECell (Edlund et al. 2021), the data of Lesmes-Leon et al. 2025, annotates cells as
COCO polygons, which may overlap. Each annotation becomes one whole object of a
:class:`cellsynth.scene.Scene` (``Scene.layers``), so nothing is lost where cells overlap.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from skimage.draw import polygon as fill_polygon

from .errors import InputError
from .io import read_json
from .scene import Scene

__all__ = ["read_coco", "rasterise_segmentation"]


def rasterise_segmentation(segmentation, shape: Sequence[int], what: str = "segmentation") -> np.ndarray:
    """Bool mask of one COCO ``segmentation``: a list of polygons ``[x0, y0, x1, y1, ...]``
    (pixel centres inside any polygon) or an uncompressed RLE ``{"counts": [...], "size": [h, w]}``
    (column-major runs, starting with background).

    Examples
    --------
    >>> m = rasterise_segmentation([[1, 1, 4, 1, 4, 3, 1, 3]], (5, 6))
    >>> m.astype(int).sum(), m[2, 2]
    (np.int64(12), np.True_)
    >>> rasterise_segmentation({"counts": [2, 3, 15], "size": [4, 5]}, (4, 5))[:, 0].tolist()
    [False, False, True, True]
    """
    h, w = int(shape[0]), int(shape[1])
    mask = np.zeros((h, w), bool)
    if isinstance(segmentation, dict):
        counts, size = segmentation.get("counts"), segmentation.get("size")
        if isinstance(counts, str):
            raise InputError(f"{what}: compressed RLE strings are not supported; give polygons or "
                             "uncompressed RLE (a list of counts)")
        if not isinstance(counts, list) or list(size or []) != [h, w]:
            raise InputError(f"{what}: RLE needs a list of counts and size [{h}, {w}], got size {size}")
        runs = np.asarray(counts, dtype=np.int64)
        if (runs < 0).any() or runs.sum() != h * w:
            raise InputError(f"{what}: RLE counts must be >= 0 and sum to {h * w}, got {int(runs.sum())}")
        vals = np.arange(len(runs)) % 2 == 1
        return np.repeat(vals, runs).reshape((w, h)).T.copy()
    if not isinstance(segmentation, list) or not segmentation:
        raise InputError(f"{what}: expected a list of polygons or an RLE dict")
    for poly in segmentation:
        xy = np.asarray(poly, dtype=float)
        if xy.ndim != 1 or len(xy) < 6 or len(xy) % 2 or not np.isfinite(xy).all():
            raise InputError(f"{what}: a polygon needs >= 3 finite (x, y) pairs, got {len(xy)} numbers")
        rr, cc = fill_polygon(xy[1::2], xy[0::2], shape=(h, w))
        mask[rr, cc] = True
    return mask


def read_coco(path: str | Path, spacing: Sequence[float] | None = None) -> dict[str, Scene]:
    """Read a COCO instance-annotation JSON into one Scene per image, keyed by ``file_name``.

    Objects keep their annotation order (ids 1..N; an earlier object lies on top in
    ``labels``), are kept whole in ``layers`` where they overlap, and are named by their
    category; crowd annotations and empty masks are left out. The whole image is the
    foreground. ``spacing`` (µm per axis, YX) defaults to 1.

    Raises :class:`InputError` naming the file for a missing/corrupt file, missing keys,
    an annotation of an unknown image or a bad polygon.
    """
    path = Path(path)
    data = read_json(path, what="COCO annotations")
    if not isinstance(data, dict) or not isinstance(data.get("images"), list) \
            or not isinstance(data.get("annotations"), list):
        raise InputError(f"COCO annotations '{path}': needs 'images' and 'annotations' lists")
    cats = {c.get("id"): str(c.get("name", c.get("id"))) for c in data.get("categories", []) if isinstance(c, dict)}
    images = {}
    for im in data["images"]:
        try:
            images[im["id"]] = (str(im["file_name"]), int(im["height"]), int(im["width"]))
        except (KeyError, TypeError, ValueError):
            raise InputError(f"COCO annotations '{path}': every image needs id, file_name, height, width") from None
    per_image: dict = {k: [] for k in images}
    for i, ann in enumerate(data["annotations"]):
        if not isinstance(ann, dict) or ann.get("image_id") not in images:
            raise InputError(f"COCO annotations '{path}': annotation {i} refers to no listed image")
        per_image[ann["image_id"]].append(ann)
    scenes = {}
    for img_id, (name, h, w) in images.items():
        masks, classes = [], []
        for ann in per_image[img_id]:
            if ann.get("iscrowd", 0):
                continue
            what = f"COCO annotations '{path}': annotation id {ann.get('id')} of '{name}'"
            masks.append(rasterise_segmentation(ann.get("segmentation"), (h, w), what))
            classes.append(cats.get(ann.get("category_id"), "object"))
        if not masks:
            scenes[name] = Scene(np.zeros((h, w), np.uint16), np.ones((h, w), bool), spacing or (1.0, 1.0),
                                 params={"source": path.name})
            continue
        scenes[name] = Scene.from_masks(masks, spacing=spacing, classes=classes, params={"source": path.name})
    return scenes
