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


def benchmark_with(segmenter: str, tmp_path: Path, test: Path, **settings) -> dict:
    """A tiny ``benchmark syn2real`` (Real2Real, Syn2Real-physics, Mix2Real, classical) in the main environment
    whose arms train ``segmenter`` in THIS environment (the consumer's python); returns the report."""
    import sys
    train = tmp_path / "train"
    cellsynth("generate", *TINY[2], "--renderer", "physics", "--n", 4, "--seed", 2, "--out", train, "--no-progress")
    code = ("import json, sys\n"
            "from cellsynth.benchmark.syn2real import BenchmarkSettings, run_benchmark\n"
            "a = sys.argv\n"
            "s = BenchmarkSettings(train_images=a[1] + '/images', train_masks=a[1] + '/masks', test=a[2], out=a[3],\n"
            "                      renderers=('physics',), n=2, val_images=2, segmenter=a[4], segmenter_python=a[5],\n"
            "                      threads=1, progress=False, verbose=False, **json.loads(a[6]))\n"
            "r = run_benchmark(s)\n"
            "print(json.dumps({k: r[k] for k in ('segmenter', 'arms')}))\n")
    return cellsynth_python(code, train, test, tmp_path / "report", segmenter, sys.executable, json.dumps(settings))
