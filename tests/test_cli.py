"""The command line through its real entry point."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import tifffile

from cellsynth.cli import main
from cellsynth.config import list_presets


def test_list_presets(capsys):
    assert main(["simulate", "--list-presets"]) == 0
    out = capsys.readouterr().out
    for name in list_presets():
        assert name in out
    assert len(out.strip().splitlines()) == len(list_presets())


def test_console_script_help():
    r = subprocess.run([sys.executable, "-m", "cellsynth.cli", "--help"], capture_output=True, text=True)
    assert r.returncode == 0
    for cmd in ("simulate", "generate", "demo"):
        assert cmd in r.stdout


def test_simulate_writes_scenes(tmp_path, capsys):
    out = tmp_path / "scenes"
    rc = main(["simulate", "--preset", "nuclei3d-celegans", "--n", "2", "--seed", "3", "--out", str(out),
               "--set", "scene.shape=[16,40,40]", "--set", "scene.placement.n_points=[2,4]",
               "--set", "scene.nuclei.radius=[4,6]", "--set", "scene.placement.min_distance=8", "--no-progress"])
    assert rc == 0
    masks = sorted((out / "masks").glob("*.tif"))
    fg = sorted((out / "foreground").glob("*.tif"))
    assert len(masks) == len(fg) == 2
    lab, f = tifffile.imread(masks[0]), tifffile.imread(fg[0])
    assert lab.shape == (16, 40, 40) and lab.max() >= 1
    assert np.all(f[lab > 0] > 0)
    assert "wrote 2 scene(s)" in capsys.readouterr().out


def test_generate_and_errors(tmp_path, capsys):
    out = tmp_path / "ds"
    rc = main(["generate", "--preset", "nuclei2d-dsb", "--renderer", "sketch", "--n", "2", "--out", str(out),
               "--set", "scene.shape=[48,48]", "--set", "scene.placement.n_points=[2,4]", "--no-progress"])
    assert rc == 0
    assert len(list((out / "images").glob("*.tif"))) == 2
    # bad key: exit 2, one line on stderr, nothing written
    bad = tmp_path / "bad"
    rc = main(["generate", "--preset", "nuclei2d-dsb", "--n", "1", "--out", str(bad),
               "--set", "scene.nucl.radius=3"])
    err = capsys.readouterr().err
    assert rc == 2 and "unknown config key 'scene.nucl'" in err and len(err.strip().splitlines()) == 1
    assert not bad.exists()
    rc = main(["generate", "--labels", str(tmp_path / "missing"), "--renderer", "sketch", "--out", str(bad)])
    err = capsys.readouterr().err
    assert rc == 2 and "missing" in err and not bad.exists()


def test_every_listed_command_is_registered():
    """COMMANDS lists only commands that exist (none is skipped silently)."""
    from cellsynth.cli import COMMANDS, build_parser

    sub = next(a for a in build_parser()._actions if a.dest == "command")
    assert list(sub.choices) == COMMANDS
