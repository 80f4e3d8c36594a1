"""Dataset generation: determinism, serial == parallel, resume after a kill, --labels, errors."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import tifffile

from cellsynth.config import load_config
from cellsynth.dataset import generate_dataset, load_manifest, read_pairs
from cellsynth.errors import ConfigError, InputError

TINY2D = ["scene.shape=[48,48]", "scene.placement.n_points=[3,6]", "scene.placement.min_distance=8",
          "scene.nuclei.radius=[4,6]"]
TINY3D = ["scene.shape=[16,40,40]", "scene.placement.n_points=[3,6]", "scene.placement.min_distance=8",
          "scene.nuclei.radius=[4,6]"]


def files_bytes(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes()
            for p in sorted(folder.rglob("*.tif"))}


@pytest.mark.parametrize("preset, over, renderer", [("nuclei2d-dsb", TINY2D, "physics"),
                                                    ("nuclei3d-celegans", TINY3D, "sketch")])
def test_layout_manifest_and_determinism(tmp_path, preset, over, renderer):
    cfg = load_config(preset, overrides=over)
    a = generate_dataset(cfg, renderer, 3, 7, tmp_path / "a", progress=False)
    b = generate_dataset(cfg, renderer, 3, 7, tmp_path / "b", progress=False)
    c = generate_dataset(cfg, renderer, 3, 8, tmp_path / "c", progress=False)
    assert files_bytes(a) == files_bytes(b)
    assert files_bytes(a) != files_bytes(c)
    pairs = read_pairs(a)
    assert [p[0] for p in pairs] == ["sample_00000", "sample_00001", "sample_00002"]
    m = load_manifest(a)
    assert m["complete"] and m["n"] == 3 and len(m["samples"]) == 3
    s0 = m["samples"][0]
    assert s0["seed"] == 7 and s0["renderer"] == renderer and s0["preset"] == preset
    assert len(s0["spacing"]) == len(cfg.scene.shape)
    for _name, ip, mp in pairs:
        img, lab = tifffile.imread(ip), tifffile.imread(mp)
        assert img.shape == lab.shape == tuple(cfg.scene.shape)
        assert lab.dtype == np.uint16
        ids = np.unique(lab)
        assert list(ids) == list(range(len(ids)))  # consecutive


def test_serial_equals_parallel(tmp_path):
    cfg = load_config("nuclei2d-dsb", overrides=TINY2D)
    s = generate_dataset(cfg, "physics", 4, 3, tmp_path / "serial", progress=False)
    p = generate_dataset(cfg, "physics", 4, 3, tmp_path / "par", workers=2, progress=False)
    assert files_bytes(s) == files_bytes(p)
    assert load_manifest(s)["samples"] == load_manifest(p)["samples"]


@pytest.mark.slow
def test_resume_after_kill(tmp_path):
    out = tmp_path / "ds"
    args = [sys.executable, "-m", "cellsynth.cli", "generate", "--preset", "nuclei2d-dsb",
            "--renderer", "physics", "--n", "40", "--seed", "1", "--out", str(out), "--no-progress",
            "--set", "scene.shape=[160,160]"]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    t0 = time.time()
    while time.time() - t0 < 60:
        if len(list((out / "images").glob("*.tif"))) >= 3 if (out / "images").is_dir() else False:
            break
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done_before = {p.name: p.stat().st_mtime_ns for p in (out / "images").glob("*.tif")}
    assert 0 < len(done_before) < 40, "kill the run part-way"
    assert not load_manifest(out)["complete"]
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    # completed samples were kept, not redone
    for name, mtime in done_before.items():
        assert (out / "images" / name).stat().st_mtime_ns == mtime
    assert not list(out.rglob("*.part"))
    fresh = tmp_path / "fresh"
    subprocess.run(args[:-3] + ["--out", str(fresh)] + args[-2:], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert files_bytes(out) == files_bytes(fresh)
    assert load_manifest(out)["complete"]


def test_labels_mode_keeps_names_and_masks(tmp_path):
    lab_dir = tmp_path / "labels"
    lab_dir.mkdir()
    for name, shape in [("cellA", (40, 40)), ("cellB", (30, 50))]:
        lab = np.zeros(shape, np.uint16)
        lab[5:15, 5:15] = 1
        lab[20:28, 20:30] = 3  # non-consecutive on purpose: passed through unchanged
        tifffile.imwrite(lab_dir / f"{name}.tif", lab)
    out = generate_dataset(load_config("nuclei2d-dsb"), "sketch", None, 0, tmp_path / "out",
                           labels_dir=lab_dir, progress=False)
    pairs = read_pairs(out)
    assert [p[0] for p in pairs] == ["cellA", "cellB"]
    for name, ip, mp in pairs:
        assert mp.read_bytes() == (lab_dir / f"{name}.tif").read_bytes()
        img = tifffile.imread(ip)
        lab = tifffile.imread(mp)
        assert img.shape == lab.shape
        assert img[lab > 0].mean() > img[lab == 0].mean()


def test_bad_inputs_write_nothing(tmp_path):
    lab_dir = tmp_path / "labels"
    lab_dir.mkdir()
    tifffile.imwrite(lab_dir / "ok.tif", np.ones((8, 8), np.uint16))
    tifffile.imwrite(lab_dir / "float.tif", np.ones((8, 8), np.float32))
    with pytest.raises(InputError, match="float.tif"):
        generate_dataset(load_config("nuclei2d-dsb"), "sketch", None, 0, tmp_path / "o1", labels_dir=lab_dir,
                         progress=False)
    assert not (tmp_path / "o1").exists()
    with pytest.raises(ConfigError, match="--n"):
        generate_dataset(load_config("nuclei2d-dsb"), "sketch", 0, 0, tmp_path / "o2", progress=False)
    assert not (tmp_path / "o2").exists()
    cfg = load_config("nuclei2d-dsb", overrides=TINY2D)
    generate_dataset(cfg, "sketch", 1, 0, tmp_path / "o3", progress=False)
    with pytest.raises(InputError, match="other settings"):
        generate_dataset(cfg, "physics", 1, 0, tmp_path / "o3", progress=False)
    (tmp_path / "o4").mkdir()
    (tmp_path / "o4" / "x.txt").write_text("user file")
    with pytest.raises(InputError, match="not empty"):
        generate_dataset(cfg, "sketch", 1, 0, tmp_path / "o4", progress=False)
