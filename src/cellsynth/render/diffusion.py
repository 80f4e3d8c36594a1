"""Diffusion renderer (Eschweiler et al. 2024): Scene → sketch → SDEdit with a trained DDPM → realistic image.

The scene's labels are the annotation; the image is generated from the sketch of
those labels, so image and mask correspond by construction. The sketch is drawn
without its own blur (the renderer's σ is the paper's blur before noising) and its
intensity levels (``SketchConfig.background`` and ``.intensity``) are mapped to the
model's stored background/foreground statistics.
"""
from __future__ import annotations

from importlib import resources
from pathlib import Path

import numpy as np

from ..config import DiffusionRenderConfig, SketchConfig, config_to_dict
from ..errors import InputError
from ..scene import Scene

DEFAULT_MODEL = "nuclei2d-dsb"


def default_model_path() -> Path:
    """The shipped model directory ``cellsynth/models/nuclei2d-dsb`` (used when ``model`` is None)."""
    path = Path(str(resources.files("cellsynth.models").joinpath(DEFAULT_MODEL)))
    if not (path / "weights.safetensors").is_file():
        raise InputError(f"the shipped diffusion model '{path}' is missing from this installation; "
                         f"pass a model directory (--model)")
    return path


class DiffusionRenderer:
    """``render(scene, rng) -> float32`` image by SDEdit from the scene's sketch.

    Parameters
    ----------
    cfg : DiffusionRenderConfig
        model (directory, None = shipped), t_start, steps (K), sigma (σ), tile, overlap,
        device, intensity matching and output range.
    sketch_cfg : SketchConfig
        How the sketch is drawn (per-object intensities, decay, overlaps, nucleoli); its
        own ``sigma`` is not applied — ``cfg.sigma`` blurs instead.
    """

    name = "diffusion"

    def __init__(self, cfg: DiffusionRenderConfig | None = None, sketch_cfg: SketchConfig | None = None):
        from ..generative.diffusion import check_sampling, load_model
        self.cfg = cfg or DiffusionRenderConfig()
        self.sketch_cfg = sketch_cfg or SketchConfig()
        if self.cfg.threads:
            import torch
            torch.set_num_threads(self.cfg.threads)  # process-wide, as torch allows nothing finer
        self.model_path = Path(self.cfg.model) if self.cfg.model is not None else default_model_path()
        self.model = load_model(self.model_path, device=self.cfg.device)  # validates before any output
        # sampling settings against the model's own T, also before any output
        check_sampling(self.cfg.t_start, self.cfg.steps, self.model.schedule.T, prefix="render.diffusion.",
                       model=str(self.model_path))

    def sketch(self, scene: Scene, rng: np.random.Generator) -> np.ndarray:
        from .sketch import sketch
        return sketch(scene, self.sketch_cfg.model_copy(update={"sigma": 0.0}), rng)

    @property
    def spatial_dims(self) -> int:
        """2 or 3: the scenes this renderer's model can render."""
        return self.model.ndim

    def render(self, scene: Scene, rng: np.random.Generator) -> np.ndarray:
        from ..generative.diffusion import sdedit
        if scene.ndim != self.model.ndim:
            raise InputError(f"scene is {scene.ndim}D but diffusion model '{self.model_path}' is "
                             f"{self.model.ndim}D")
        s = self.sketch(scene, rng)
        seed = int(rng.integers(0, 2**63 - 1))
        c = self.cfg
        return sdedit(self.model, s, t_start=c.t_start, steps=c.steps, sigma=c.sigma, seed=seed,
                      tile=c.tile, overlap=c.overlap, match_intensities=c.match_intensities,
                      sketch_levels=(self.sketch_cfg.background, *self.sketch_cfg.intensity),
                      background=c.background, foreground=c.foreground, output=c.output,
                      batch_size=c.batch_size)

    def describe(self) -> dict:
        training = self.model.config.get("training", {})
        return {"renderer": self.name, "dtype": "float32",
                "range": [0.0, 1.0] if self.cfg.output == "unit" else "raw",
                "model": str(self.model_path), "model_training": training,
                "model_versions": self.model.config.get("versions", {}),
                **config_to_dict(self.cfg), "sketch": config_to_dict(self.sketch_cfg)}
