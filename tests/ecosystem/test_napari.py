"""The napari plugin through napari's own machinery, headless (no display): npe2 validation, the
reader and sample data through ``ViewerModel``, the writer through ``LayerList.save``, the widget offscreen."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tifffile

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


@pytest.fixture(autouse=True, scope="module")
def plugins():
    """What napari does at start-up: discover installed npe2 plugins (cellsynth's entry point)."""
    from npe2 import PluginManager
    pm = PluginManager.instance()
    pm.discover()
    assert pm.get_manifest("cellsynth").name == "cellsynth"


def test_npe2_validate_with_imports():
    npe2 = Path(sys.executable).parent / "npe2"
    r = subprocess.run([str(npe2), "validate", "cellsynth", "--imports"], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.parametrize("ndim", [2, 3])
def test_viewer_model_opens_dataset_and_saves_layers(datasets, tmp_path, ndim):
    from napari.components import ViewerModel
    v = ViewerModel()
    v.open(str(datasets[ndim]), plugin="cellsynth")
    assert [type(layer).__name__ for layer in v.layers] == ["Image", "Labels"]
    masks = sorted((datasets[ndim] / "masks").glob("*.tif"))
    np.testing.assert_array_equal(np.asarray(v.layers[1].data)[0], tifffile.imread(masks[0]))
    spacing = (0.5, 0.25, 0.25) if ndim == 3 else None
    if spacing:
        assert tuple(v.layers[0].scale)[1:] == pytest.approx(spacing)
    # save one sample's image + labels back as a dataset through napari's writer machinery
    img, lab = v.layers[0], v.layers[1]
    v2 = ViewerModel()
    v2.add_image(np.asarray(img.data)[0], name="back", scale=tuple(img.scale)[1:])
    v2.add_labels(np.asarray(lab.data)[0], name="back labels")
    written = v2.layers.save(str(tmp_path / "out"), plugin="cellsynth")
    assert sorted(Path(p).relative_to(tmp_path / "out").as_posix() for p in written) == \
        ["images/back.tif", "masks/back.tif"]
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "out" / "masks" / "back.tif"), tifffile.imread(masks[0]))


def test_sample_data_headless():
    from napari.components import ViewerModel
    v = ViewerModel()
    v.open_sample("cellsynth", "nuclei2d-dsb")
    assert [type(layer).__name__ for layer in v.layers] == ["Image", "Labels"]
    assert v.layers[1].data.max() >= 1 and v.layers[0].data.shape == v.layers[1].data.shape


def test_widget_offscreen():
    from qtpy.QtWidgets import QApplication
    app = QApplication.instance() or QApplication([])  # noqa: F841  (offscreen platform)
    from cellsynth.napari.widget import simulate_widget
    w = simulate_widget()
    w.preset.value = "nuclei3d-celegans"
    assert "scene.shape=" in w.parameters.value  # the preset's own main parameters are shown
    w.parameters.value = ("scene.shape=[12,32,32]\nscene.placement.n_points=[2,3]\nscene.nuclei.radius=[3,5]\n"
                          "scene.placement.min_distance=6")
    w.seed.value = 3
    layers = w()
    assert [t for _, _, t in layers] == ["image", "labels"]
    assert layers[0][0].shape == (12, 32, 32) and layers[1][0].max() >= 1
    w.native.show()  # builds the Qt widget offscreen
