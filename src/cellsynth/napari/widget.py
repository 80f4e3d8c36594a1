"""Dock widget: pick a preset, edit its main parameters, simulate and render into layers.

No ``from __future__ import annotations`` here: magicgui reads the return annotation at
definition time to add the returned layers to the viewer.
"""

from ..config import list_presets, load_config
from ..errors import ConfigError, InputError
from .sample import LEARNED, scene_layers


def main_parameters(preset: str) -> dict[str, str]:
    """The preset's main scene parameters, as ``--set`` values the widget shows for editing."""
    import json
    cfg = load_config(preset)
    out = {"scene.shape": json.dumps(list(cfg.scene.shape))}
    # only keys that act for this kind of scene (membranes: cell count; nuclei: count and size)
    if cfg.scene.kind == "organelles":
        out["scene.organelles.n_pairs"] = json.dumps(list(cfg.scene.organelles.n_pairs))
    else:
        out["scene.placement.n_points"] = json.dumps(list(cfg.scene.placement.n_points))
    if cfg.scene.kind == "nuclei":
        out["scene.nuclei.radius"] = json.dumps(list(cfg.scene.nuclei.radius))
    return out


def simulate_widget():
    """A magicgui widget (npe2 widget command); calling it adds an image and a labels layer."""
    from magicgui import magicgui
    from napari.types import LayerDataTuple
    from napari.utils.notifications import show_error
    presets = list(list_presets())
    first = "nuclei2d-dsb" if "nuclei2d-dsb" in presets else presets[0]

    def text(p):
        return "\n".join(f"{k}={v}" for k, v in main_parameters(p).items())

    @magicgui(call_button="Simulate and render", preset={"choices": presets},
              renderer={"choices": ["physics", "sketch"]},
              parameters={"widget_type": "TextEdit", "label": "parameters (key=value per line)"},
              seed={"min": 0, "max": 2 ** 31 - 1})
    def widget(preset: str = first, renderer: str = "physics", seed: int = 0,
               parameters: str = text(first)) -> list[LayerDataTuple]:
        overrides = [ln.strip() for ln in parameters.splitlines() if ln.strip()]
        try:
            return scene_layers(preset, seed, renderer, overrides)
        except (ConfigError, InputError) as e:
            show_error(str(e))
            return []

    @widget.preset.changed.connect
    def _reset(p: str) -> None:  # a new preset shows its own main parameters
        widget.parameters.value = text(p)
        cfg = load_config(p)
        widget.renderer.value = cfg.renderer if cfg.renderer not in LEARNED and cfg.renderer in (
            "physics", "sketch") else "physics"
    return widget
