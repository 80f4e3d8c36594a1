"""Helpers shared by the sketch and physics renderers (numpy/scipy only, any ndim)."""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from ..config import validate
from ..errors import ConfigError, InputError
from ..scene import Scene
from ..simulate.encode import boundaries


def as_config(cfg: Any, model: type) -> Any:
    """Accept a config instance, a dict (validated into a one-line ConfigError) or None (defaults)."""
    if cfg is None:
        return model()
    if isinstance(cfg, model):
        return cfg
    if isinstance(cfg, dict):
        return validate(model, cfg)
    raise ConfigError(f"{model.__name__} expected, got {type(cfg).__name__}")


def check_inputs(scene: Any, rng: Any, who: str) -> None:
    """Reject a non-Scene, a bad ``extras["overlap"]`` or a non-Generator rng with one line."""
    if not isinstance(scene, Scene):
        raise InputError(f"{who}: expected a cellsynth Scene, got {type(scene).__name__}")
    if not isinstance(rng, np.random.Generator):
        raise InputError(f"{who}: rng must be a numpy.random.Generator, got {type(rng).__name__}")
    if scene.labels.size and scene.labels.min() < 0:
        raise InputError(f"{who}: scene labels must be >= 0, got min {scene.labels.min()}")
    ov = scene.extras.get("overlap")
    if ov is not None:
        ov = np.asarray(ov)
        if ov.shape != scene.shape:
            raise InputError(f"{who}: extras['overlap'] shape {ov.shape} != labels shape {scene.shape}")
        if not np.issubdtype(ov.dtype, np.integer):
            raise InputError(f"{who}: extras['overlap'] must hold integer counts, got {ov.dtype}")


def conditioned(cfg: Any, scene: Scene, keys: Iterable[str]) -> Any:
    """``cfg`` with the fields ``keys`` replaced by the scene's per-image condition record
    (``scene.params["condition"]``, drawn by the simulation from ``cellsynth fit``'s records)
    where the record sets them; unchanged otherwise."""
    cond = scene.params.get("condition") if isinstance(scene.params, dict) else None
    if not cond:
        return cfg
    upd = {k: (tuple(cond[k]) if isinstance(cond[k], list) else cond[k]) for k in keys
           if cond.get(k) is not None}
    return cfg.model_copy(update=upd) if upd else cfg


def class_factors(scene: Scene, factors: dict[str, float], n: int) -> np.ndarray:
    """Per-label factor LUT (length n + 1, entry 0 unused) from a class-name -> factor mapping."""
    lut = np.ones(n + 1, dtype=np.float32)
    if factors:
        for lab, cls in scene.classes.items():
            if 0 < int(lab) <= n and cls in factors:
                lut[int(lab)] = factors[cls]
    return lut


def emitting_labels(scene: Scene, membrane_classes: Iterable[str]) -> np.ndarray:
    """Labels where the object emits light: filled objects, or only the walls of membrane classes.

    Walls are :func:`cellsynth.simulate.encode.boundaries` of ``scene.wall_thickness`` voxels
    per side (against neighbours and the background alike).
    """
    labels = scene.labels
    wall_ids = [int(k) for k, c in scene.classes.items() if c in set(membrane_classes)]
    if not wall_ids:
        return labels
    n = scene.n_objects
    is_wall = np.zeros(n + 1, dtype=bool)
    is_wall[[i for i in wall_ids if 0 < i <= n]] = True
    hide = is_wall[labels] & ~boundaries(labels, scene.wall_thickness)
    out = labels.copy()
    out[hide] = 0
    return out


def axis_ramp(shape: tuple[int, ...], axis: int, dtype=np.float32) -> np.ndarray:
    """0..1 along ``axis``, shaped to broadcast against an array of ``shape``."""
    n = shape[axis]
    r = np.linspace(0.0, 1.0, n, dtype=dtype) if n > 1 else np.zeros(1, dtype=dtype)
    view = [1] * len(shape)
    view[axis] = n
    return r.reshape(view)
