"""Sample data: one simulated and rendered scene per preset (seed 0)."""
from __future__ import annotations

import numpy as np

from ..config import list_presets, load_config

LEARNED = ("diffusion", "cgan", "cyclegan", "stylegan")  # need a model and minutes: samples use physics


def scene_layers(preset: str, seed: int = 0, renderer: str | None = None,
                 overrides: list[str] | None = None) -> list[tuple]:
    """(image, labels) layer data for one scene of ``preset``; scale = its voxel size (µm).

    Examples
    --------
    >>> img, lab = scene_layers("nuclei2d-dsb", overrides=["scene.shape=[48,48]"])
    >>> img[0].shape, lab[2], lab[1]["scale"] == img[1]["scale"]
    ((48, 48), 'labels', True)
    """
    from ..dataset import sample_generators
    from ..render import make_renderer
    from ..simulate import simulate_scene
    cfg = load_config(preset, overrides=overrides or [])
    renderer = renderer or (cfg.renderer if cfg.renderer not in LEARNED else "physics")
    scene_rng, render_rng = sample_generators(seed, 0)  # the same scene `generate --seed S` writes first
    scene = simulate_scene(cfg.scene, scene_rng)
    image = make_renderer(renderer, cfg.render).render(scene, render_rng)
    scale = tuple(float(s) for s in scene.spacing)
    return [(np.asarray(image), {"name": f"{preset} ({renderer})", "scale": scale}, "image"),
            (scene.labels, {"name": f"{preset} labels", "scale": scale}, "labels")]


def _command(preset: str):
    def load() -> list[tuple]:
        return scene_layers(preset)
    load.__name__ = preset.replace("-", "_")
    return load


# one module-level function per preset, named as in napari.yaml
for _p in list_presets():
    globals()[_p.replace("-", "_")] = _command(_p)
