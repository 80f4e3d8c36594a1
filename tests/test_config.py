"""Configuration: presets load and validate; bad keys/types/values give one line naming the key."""
from __future__ import annotations

import pytest

from cellsynth.config import Config, list_presets, load_config, parse_override
from cellsynth.errors import ConfigError

EXPECTED = {"nuclei2d-dsb", "nuclei2d-gowt1", "nuclei2d-hela", "nuclei3d-celegans",
            "membrane2d-arabidopsis", "membrane3d-meristem", "nuclei-golgi3d", "cells2d-overlapping"}


def test_all_presets_listed_and_valid():
    presets = list_presets()
    assert EXPECTED <= set(presets)
    for name in presets:
        cfg = load_config(name)
        assert isinstance(cfg, Config)
        assert cfg.name == name
        assert len(cfg.scene.spacing) == len(cfg.scene.shape)
        assert cfg.reference, f"preset {name} must cite what it follows"
        # cites papers by first author and year (docs/REFERENCES.md) or says what it was measured on
        assert " et al." in cfg.reference or "measured" in cfg.reference.lower()
        assert "seed 0" not in cfg.reference.lower()
        assert presets[name].endswith("]") and "et al." in presets[name].rsplit("[", 1)[1]


def test_overrides_apply_in_order(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("scene:\n  nuclei:\n    radius: [3, 4]\n")
    cfg = load_config("nuclei2d-dsb", f, ["scene.nuclei.radius=[5,6]", "scene.shape=[64,64]"])
    assert cfg.scene.nuclei.radius == (5.0, 6.0)
    assert cfg.scene.shape == [64, 64]
    assert load_config("nuclei2d-dsb", f).scene.nuclei.radius == (3.0, 4.0)


@pytest.mark.parametrize("override, words", [
    ("scene.nucleii.radius=[1,2]", ["unknown", "scene.nucleii"]),
    ("scene.nuclei.radius=abc", ["scene.nuclei.radius", "abc"]),
    ("scene.nuclei.radius=[9,2]", ["scene.nuclei.radius", "low <= high"]),
    ("render.physics.na=5", ["render.physics.na", "5", "less than or equal"]),
    ("scene.shape=[64,64,64,64]", ["shape", "2 (YX) or 3 (ZYX)"]),
    ("scene.spacing=[1,1,1]", ["spacing"]),
    ("renderer=gan", ["renderer", "gan"]),
])
def test_bad_values_give_one_line(override, words):
    with pytest.raises(ConfigError) as e:
        load_config("nuclei2d-dsb", overrides=[override])
    msg = str(e.value)
    assert "\n" not in msg
    for w in words:
        assert w in msg


def test_unknown_preset_and_bad_files(tmp_path):
    with pytest.raises(ConfigError, match="unknown preset 'nope'"):
        load_config("nope")
    with pytest.raises(ConfigError, match="not found"):
        load_config(None, tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("scene: [1, 2\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(None, bad)
    lst = tmp_path / "list.yaml"
    lst.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_config(None, lst)


def test_parse_override():
    assert parse_override("a.b=[1, 2]") == ("a.b", [1, 2])
    assert parse_override("a=true") == ("a", True)
    assert parse_override("a=text") == ("a", "text")
    with pytest.raises(ConfigError):
        parse_override("novalue")
