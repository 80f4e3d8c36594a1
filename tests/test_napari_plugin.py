"""napari plugin parts that need no napari: manifest in sync, reader, writer, sample data (2D and 3D)."""
from __future__ import annotations

import importlib
from pathlib import Path

import numpy as np
import pytest
import tifffile
import yaml

from cellsynth.config import list_presets
from cellsynth.errors import InputError
from cellsynth.export.common import read_dataset
from cellsynth.io import write_tiff
from cellsynth.napari.reader import get_reader, read_dataset_layers
from cellsynth.napari.sample import scene_layers
from cellsynth.napari.writer import write_dataset

MANIFEST = Path(__file__).resolve().parents[1] / "src" / "cellsynth" / "napari" / "napari.yaml"


def test_manifest_commands_exist_and_cover_every_preset():
    m = yaml.safe_load(MANIFEST.read_text())
    for c in m["contributions"]["commands"]:
        mod, fn = c["python_name"].split(":")
        assert callable(getattr(importlib.import_module(mod), fn)), c["python_name"]
    assert [s["key"] for s in m["contributions"]["sample_data"]] == list(list_presets())


@pytest.mark.parametrize("ndim", [2, 3])
def test_writer_then_reader_round_trip(tmp_path, rng, ndim):
    shape, scale = ((6, 16, 16), (2.0, 0.5, 0.5)) if ndim == 3 else ((16, 16), (0.5, 0.5))
    lab = np.zeros(shape, np.uint16)
    lab[..., 2:8, 2:8] = 3
    img = rng.random(shape).astype(np.float32)
    for name in ("a", "b"):
        write_dataset(str(tmp_path / "ds"), [(img, {"name": name, "scale": scale}, "image"),
                                             (lab, {"name": "labels"}, "labels")])
    assert get_reader(str(tmp_path / "ds")) is read_dataset_layers and get_reader(str(tmp_path)) is None
    (im, im_meta, k1), (lb, lb_meta, k2) = read_dataset_layers(str(tmp_path / "ds"))
    assert (k1, k2) == ("image", "labels") and im.shape == (2, *shape)
    assert im_meta["scale"] == pytest.approx((1.0, *scale))
    np.testing.assert_array_equal(lb[1], lab)
    np.testing.assert_array_equal(im[0], img)
    assert [s.name for s in read_dataset(tmp_path / "ds")] == ["a", "b"]  # a dataset the exporters take
    with pytest.raises(InputError, match="exists"):
        write_dataset(str(tmp_path / "ds"), [(img, {"name": "a"}, "image"), (lab, {}, "labels")])


def test_reader_keeps_differently_shaped_samples_apart(tmp_path):
    for n, s in (("a", (8, 8)), ("b", (8, 12))):
        write_tiff(tmp_path / "images" / f"{n}.tif", np.zeros(s, np.uint8))
        write_tiff(tmp_path / "masks" / f"{n}.tif", np.ones(s, np.uint16))
    layers = read_dataset_layers(str(tmp_path))
    assert [(ld[1]["name"], ld[2]) for ld in layers] == [("a", "image"), ("a masks", "labels"),
                                                        ("b", "image"), ("b masks", "labels")]


def test_writer_refuses_bad_layers_before_writing(tmp_path):
    img = np.zeros((8, 8), np.float32)
    with pytest.raises(InputError, match="one image and one labels"):
        write_dataset(str(tmp_path / "o"), [(img, {"name": "x"}, "image")])
    with pytest.raises(InputError, match="shape"):
        write_dataset(str(tmp_path / "o"), [(img, {"name": "x"}, "image"), (np.ones((8, 9), np.uint16), {}, "labels")])
    with pytest.raises(InputError, match="integer"):
        write_dataset(str(tmp_path / "o"), [(img, {"name": "x"}, "image"), (img, {"name": "l"}, "labels")])
    bad = img.copy()
    bad[0, 0] = np.nan
    with pytest.raises(InputError, match="NaN"):
        write_dataset(str(tmp_path / "o"), [(bad, {"name": "x"}, "image"), (np.ones((8, 8), np.uint16), {}, "labels")])
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("preset,sets", [("nuclei2d-dsb", ["scene.shape=[48,48]"]),
                                         ("nuclei3d-celegans", ["scene.shape=[12,32,32]",
                                                                "scene.placement.n_points=[2,3]",
                                                                "scene.nuclei.radius=[3,5]",
                                                                "scene.placement.min_distance=6"])])
def test_sample_scene_matches_generate(tmp_path, preset, sets):
    """The sample/widget scene is the first sample `generate --seed 0` writes (same bytes)."""
    from cellsynth.cli import main
    (img, meta, _), (lab, lmeta, _) = scene_layers(preset, 0, "physics", sets)
    assert main(["generate", "--preset", preset, *[x for s in sets for x in ("--set", s)], "--renderer",
                 "physics", "--n", "1", "--out", str(tmp_path / "g"), "--no-progress"]) == 0
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "g" / "masks" / "sample_00000.tif"), lab)
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "g" / "images" / "sample_00000.tif"), img)
    assert meta["scale"] == lmeta["scale"] and len(meta["scale"]) == lab.ndim


def test_widget_parameters_are_valid_overrides_for_every_preset():
    from cellsynth.config import load_config
    from cellsynth.napari.widget import main_parameters
    for p in list_presets():
        params = main_parameters(p)
        assert "scene.shape" in params
        cfg = load_config(p, overrides=[f"{k}={v}" for k, v in params.items()])
        assert list(cfg.scene.shape) == yaml.safe_load(params["scene.shape"])
