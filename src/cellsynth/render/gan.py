"""GAN renderers (``cgan``: Eschweiler et al. 2021; ``cyclegan``: Eschweiler et al. 2019): Scene → image.

The scene's labels are encoded as in training and translated by the model's (EMA)
generator, tile by tile; the image corresponds to the labels by construction.
"""
from __future__ import annotations

from importlib import resources
from pathlib import Path

import numpy as np

from ..config import CGANRenderConfig, CycleGANRenderConfig, config_to_dict
from ..errors import InputError
from ..scene import Scene

DEFAULT_MODELS = {"cgan": "nuclei3d-cgan"}


def default_model_path(kind: str) -> Path:
    """The shipped model of ``kind`` (``cellsynth/models/...``), or a one-line error if none is shipped."""
    name = DEFAULT_MODELS.get(kind)
    path = Path(str(resources.files("cellsynth.models").joinpath(name))) if name else None
    if path is None or not (path / "weights.safetensors").is_file():
        raise InputError(f"no {kind} model is shipped with this installation; pass a model folder (--model)")
    return path


class GANRenderer:
    """``render(scene, rng) -> float32`` image in [0, 1] with a trained cGAN or CycleGAN."""

    def __init__(self, kind: str, cfg: CycleGANRenderConfig | None = None):
        from ..generative.translate import load_translator
        self.name = kind
        self.cfg = cfg or (CGANRenderConfig() if kind == "cgan" else CycleGANRenderConfig())
        if self.cfg.threads:
            import torch
            torch.set_num_threads(self.cfg.threads)
        self.model_path = Path(self.cfg.model) if self.cfg.model is not None else default_model_path(kind)
        from ..modelfolder import resolve_device
        self.model = load_translator(self.model_path, device=resolve_device(self.cfg.device), kinds=(kind,))

    @property
    def spatial_dims(self) -> int:
        """2 or 3: the scenes this renderer's model can render."""
        return self.model.spatial_dims

    def render(self, scene: Scene, rng: np.random.Generator) -> np.ndarray:
        from ..generative.translate import render_labels
        if scene.ndim != self.model.spatial_dims:
            raise InputError(f"scene is {scene.ndim}D but {self.name} model '{self.model_path}' is "
                             f"{self.model.spatial_dims}D")
        c = self.cfg
        extra = {"alpha": c.alpha, "beta": c.beta} if isinstance(c, CGANRenderConfig) else {}
        # a scene read from a mask file has the whole field as foreground (no outline known): then the
        # specimen is the objects closed as in training
        fg = None if scene.foreground.all() else scene.foreground
        return render_labels(self.model, scene.labels, fg, scene.classes, tile=c.tile, overlap=c.overlap,
                             crop=c.crop, **extra)

    def describe(self) -> dict:
        return {"renderer": self.name, "dtype": "float32", "range": [0.0, 1.0], "model": str(self.model_path),
                "model_training": self.model.meta.get("training", {}),
                "model_versions": self.model.meta.get("versions", {}), **config_to_dict(self.cfg)}
