"""Proofs with each consumer's own code (``make test-ecosystem``); not collected by plain ``make test``.

Each ``test_<env>.py`` runs inside that consumer's environment (``.venv-<env>``). The data
are made by this checkout's cellsynth through its command line, in the main environment
(``CELLSYNTH_PYTHON``, default ``.venv/bin/python``): what a user does, with zero glue.
"""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
collect_ignore_glob = [] if os.environ.get("CELLSYNTH_ECOSYSTEM") else ["test_*.py"]

TINY = {2: ["--preset", "nuclei2d-dsb", "--set", "scene.shape=[64,64]", "--set", "scene.placement.n_points=[4,7]",
            "--set", "scene.placement.min_distance=10", "--set", "scene.nuclei.radius=[4,7]"],
        3: ["--preset", "nuclei3d-celegans", "--set", "scene.shape=[16,40,40]",
            "--set", "scene.placement.n_points=[3,5]", "--set", "scene.nuclei.radius=[4,6]",
            "--set", "scene.placement.min_distance=8"]}


def cellsynth(*args) -> str:
    """Run ``python -m cellsynth ARGS`` with this checkout's code in the main environment."""
    py = os.environ.get("CELLSYNTH_PYTHON", str(REPO / ".venv" / "bin" / "python"))
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "OMP_NUM_THREADS": "1"}
    r = subprocess.run([py, "-m", "cellsynth", *map(str, args)], env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return r.stdout


def cellsynth_python(code: str, *args) -> object:
    """Run Python ``code`` in the main environment (cellsynth importable); it prints JSON, returned parsed."""
    py = os.environ.get("CELLSYNTH_PYTHON", str(REPO / ".venv" / "bin" / "python"))
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    r = subprocess.run([py, "-c", code, *map(str, args)], env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


@pytest.fixture(scope="session")
def datasets(tmp_path_factory) -> dict[int, Path]:
    """A tiny rendered 2D (3 × 64²) and 3D (2 × 16×40²) dataset."""
    root = tmp_path_factory.mktemp("cellsynth")
    out = {}
    for ndim, n in ((2, 3), (3, 2)):
        out[ndim] = root / f"ds{ndim}"
        cellsynth("generate", *TINY[ndim], "--renderer", "physics", "--n", n, "--seed", 1, "--out", out[ndim],
                  "--no-progress")
    return out
