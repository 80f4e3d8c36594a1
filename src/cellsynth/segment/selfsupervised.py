"""CycleGAN as a self-supervised segmenter (Rosa et al.): no manual annotation enters training.

Real (unannotated) volumes ↔ simulated semantic masks of a preset (one channel per
class, e.g. nucleus and Golgi of ``nuclei-golgi3d``) are translated by a CycleGAN
(:mod:`cellsynth.generative.cyclegan`) on 64³ patches with per-class weights in the
mask-domain cycle and identity L1 (Golgi 3.5) and percentile contrast stretching. The
image→mask generator is the segmenter: tiled inference gives per-class masks (> 0), and
instances are connected components of each class (numbered class after class).
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

from ..errors import InputError
from .classical import finish_labels

# Rosa et al.'s settings, applied where the user's config leaves a key unset (the Golgi weight only
# for presets whose scenes have a Golgi class, i.e. kind "organelles")
DEFAULTS = {"mask_encoding": "classes", "cycle_weighting": "plain"}
GOLGI_WEIGHT = {"golgi": 3.5}


def train_cyclegan_segmenter(images: str | Path, preset: str, out: str | Path, config: dict | None = None,
                             steps: int | None = None, device: str = "auto", resume: bool = False,
                             progress: bool = True) -> Path:
    """Train the self-supervised segmenter on real ``images`` and scenes simulated from ``preset``.

    ``config``: :class:`~cellsynth.generative.cyclegan.CycleGANTrainConfig` keys; :data:`DEFAULTS`
    fill what it leaves out (class-per-channel masks, plain cycle L1, and Golgi weight 3.5 for
    nucleus–Golgi presets).
    """
    from ..config import load_config, validate
    from ..generative.cyclegan import CycleGANTrainConfig, train_cyclegan
    defaults = dict(DEFAULTS)
    if load_config(preset).scene.kind == "organelles":
        defaults["class_weights"] = GOLGI_WEIGHT
    cfg = validate(CycleGANTrainConfig, {**defaults, **(config or {})}, prefix="")
    return train_cyclegan(images, out, cfg, preset=preset, steps=steps, device=device, resume=resume,
                          progress=progress)


def instances_from_classes(class_masks: np.ndarray, min_size: int = 0) -> np.ndarray:
    """Instance labels from per-class masks (C, *spatial): connected components, class after class.

    >>> m = np.zeros((2, 1, 7), bool); m[0, 0, :2] = m[0, 0, 4:] = True; m[1, 0, 2] = True
    >>> instances_from_classes(m).tolist()
    [[1, 1, 3, 0, 2, 2, 2]]
    """
    out = np.zeros(class_masks.shape[1:], np.int64)
    offset = 0
    for mask in class_masks:
        lab, n = ndi.label(mask)
        out[lab > 0] = lab[lab > 0] + offset
        offset += n
    return finish_labels(out, min_size)


def cyclegan_segmenter(model: str | Path, device: str = "auto", tile: Sequence[int] | None = None,
                       min_size: int | None = None):
    """``(image -> (instance labels, {class name: uint8 mask}), spatial dims)`` for a CycleGAN folder."""
    from ..generative.translate import load_translator, segment_image
    from ..modelfolder import resolve_device
    net = load_translator(model, device=str(resolve_device(device)), kinds=("cyclegan",))
    ms = 0 if min_size is None else int(min_size)
    names = net.meta.get("class_names") or [net.meta.get("mask_encoding")]

    def segment(img: np.ndarray):
        classes = segment_image(net, img, tile=tile)
        return instances_from_classes(classes, ms), {n: c.astype(np.uint8) for n, c in zip(names, classes)}
    return segment, net.spatial_dims


def is_cyclegan_folder(model: str | Path) -> bool:
    """Whether ``model`` is a CycleGAN model folder (by its ``config.json`` format)."""
    import json
    f = Path(model) / "config.json"
    try:
        return f.is_file() and json.loads(f.read_text()).get("format") == "cellsynth-cyclegan"
    except (json.JSONDecodeError, UnicodeDecodeError, AttributeError):
        raise InputError(f"model '{model}': config.json is not valid JSON") from None
