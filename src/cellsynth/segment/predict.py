"""Segment a folder of images with a trained U-Net segmenter or the classical baseline."""
from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from ..errors import ConfigError, InputError
from ..io import check_writable, list_images, read_image, write_tiff

log = logging.getLogger(__name__)

CLASSICAL = "classical"


def segmenter_function(model: str | Path, *, device: str = "auto", tile: Sequence[int] | None = None,
                       overlap: float | None = None, min_size: int | None = None,
                       sigma: float | None = None, min_distance: float | None = None,
                       adaptive: bool = True, tta: int | None = None, diameter: float | None = None
                       ) -> tuple[Callable[[np.ndarray], np.ndarray], int | None]:
    """``(image -> labels, spatial dims or None)`` for a segmenter folder or ``'classical'``.

    ``min_size`` overrides the model's post-processing; ``sigma``, ``min_distance`` and
    ``adaptive`` act only for the classical baseline (None = from each image's own object
    size, or the fixed defaults with ``adaptive=False``; see
    :func:`cellsynth.segment.classical.classical_segment`), ``tile``/``overlap``/``tta`` (test-time
    flips, None = the model's) and ``diameter`` (the images' median object diameter in px, None = estimated
    per image) only for a U-Net; ``diameter`` only for one trained with ``rescale``.
    """
    from .selfsupervised import cyclegan_segmenter, is_cyclegan_folder
    if diameter is not None and (str(model) == CLASSICAL or is_cyclegan_folder(model)):
        raise ConfigError("--diameter acts only for a U-Net segmenter trained with rescale")
    if str(model) != CLASSICAL and is_cyclegan_folder(model):
        return cyclegan_segmenter(model, device=device, tile=tile, min_size=min_size)
    if str(model) == CLASSICAL:
        from .classical import classical_segment

        def classical(img: np.ndarray) -> np.ndarray:
            return classical_segment(img, sigma=sigma, min_size=min_size, min_distance=min_distance,
                                     adaptive=adaptive)
        return classical, None
    from .unet import load_segmenter

    seg = load_segmenter(model, device=device)
    if min_size is not None:
        seg.postprocess = seg.postprocess.model_copy(update={"min_size": min_size})
    seg.check_tile(tile, overlap)
    if tta is not None and tta not in (1, 2, 4, 8):
        raise ConfigError(f"tta {tta}: choose 1, 2, 4 or 8")
    if diameter is not None:
        if seg.rescale is None:
            raise ConfigError(f"--diameter: the segmenter '{model}' was trained at native scale (no rescale)")
        seg.scale_factor(None, diameter)  # refuses a bad diameter before any work

    def unet(img: np.ndarray) -> np.ndarray:
        return seg.predict(img, tile=tile, overlap=overlap, tta=tta, diameter=diameter)
    return unet, seg.spatial_dims


def segment_folder(model: str | Path, images: str | Path, out: str | Path, *, progress: bool = True,
                   **kw) -> list[Path]:
    """Segment every TIFF in ``images`` into uint16 label TIFFs of the same names in ``out``.

    ``model`` is a folder written by ``cellsynth segment train`` or ``'classical'``; a CycleGAN
    segmenter (``--method cyclegan``) also writes each class's mask (uint8 0/1) to
    ``out/<class name>/<name>``. ``kw`` go to
    :func:`segmenter_function`. Every image is checked (readable, dimensionality of the model)
    before the first file is written; files already in ``out`` are overwritten atomically.
    Returns the written paths.
    """
    from tqdm.auto import tqdm

    out = Path(out)
    files = list_images(images, what="images")
    segment, ndim = segmenter_function(model, **kw)
    for f in files:
        img = read_image(f)
        if ndim is not None and img.ndim != ndim:
            raise InputError(f"image '{f}' is {img.ndim}D but the model '{model}' is {ndim}D")
    check_writable(out, "output folder")
    written = []
    for f in tqdm(files, desc="segment", disable=not progress):
        result = segment(read_image(f))
        if isinstance(result, tuple):  # (instances, {class: mask})
            result, classes = result
            for name, mask in classes.items():
                write_tiff(out / name / f.name, mask)
        write_tiff(out / f.name, result)
        written.append(out / f.name)
    log.info("segmented %d images -> %s", len(files), out)
    return written
