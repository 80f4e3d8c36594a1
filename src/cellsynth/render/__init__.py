"""Renderers turn a Scene into an image: ``renderer.render(scene, rng) -> ndarray``.

All share one interface, 2D and 3D alike. ``make_renderer(name, cfg)`` builds one
from the ``render`` section of a :class:`~cellsynth.config.Config`.
"""
from __future__ import annotations

from typing import Protocol

import numpy as np

from ..config import RenderConfig
from ..errors import ConfigError
from ..scene import Scene

RENDERERS = ("physics", "sketch", "diffusion", "cgan", "cyclegan")


class Renderer(Protocol):
    name: str

    def render(self, scene: Scene, rng: np.random.Generator) -> np.ndarray: ...

    def describe(self) -> dict: ...


def make_renderer(name: str, cfg: RenderConfig | None = None) -> Renderer:
    """Build the renderer ``name`` (one of RENDERERS) from its config section."""
    cfg = cfg or RenderConfig()
    if name == "sketch":
        from .sketch import SketchRenderer
        return SketchRenderer(cfg.sketch)
    if name == "physics":
        from .physics import PhysicsRenderer
        return PhysicsRenderer(cfg.physics)
    if name == "diffusion":
        from .diffusion import DiffusionRenderer
        return DiffusionRenderer(cfg.diffusion, cfg.sketch)
    if name in ("cgan", "cyclegan"):
        from .gan import GANRenderer
        return GANRenderer(name, getattr(cfg, name))
    raise ConfigError(f"unknown renderer '{name}'; choose one of {', '.join(RENDERERS)}")
