"""generate --scheduler: samples as Dask tasks give the bytes of a serial run (2D and 3D)."""
from __future__ import annotations

import os
import socket

import pytest

import cellsynth.dataset
from cellsynth.cli import main
from cellsynth.config import load_config
from cellsynth.dataset import _Job, generate_dataset
from cellsynth.errors import ConfigError, InputError

distributed = pytest.importorskip("distributed")
pytestmark = pytest.mark.slow

TINY = {2: ("nuclei2d-dsb", ["scene.shape=[32,32]", "scene.placement.n_points=[2,4]",
                             "scene.placement.min_distance=8", "scene.nuclei.radius=[3,5]"]),
        3: ("nuclei3d-celegans", ["scene.shape=[8,24,24]", "scene.placement.n_points=[2,3]",
                                  "scene.nuclei.radius=[3,4]", "scene.placement.min_distance=6"])}


def _bytes(folder):
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
            and p.name != "manifest.json"}


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address="127.0.0.1:0") as c:
        yield c


@pytest.mark.parametrize("ndim", [2, 3])
def test_dask_bytes_equal_serial(tmp_path, cluster, ndim):
    preset, sets = TINY[ndim]
    cfg = load_config(preset, overrides=sets)
    serial = generate_dataset(cfg, "physics", 4, 7, tmp_path / "serial", progress=False)
    dask = generate_dataset(cfg, "physics", 4, 7, tmp_path / "dask", progress=False,
                            scheduler=cluster.scheduler_address)
    a, b = _bytes(serial), _bytes(dask)
    assert len(a) == 4 * 3 and a == b  # image, mask and record per sample
    assert not list(dask.rglob("*.part"))


def test_cli_local_scheduler_resumes(tmp_path):
    preset, sets = TINY[2]
    args = ["generate", "--preset", preset, *[x for s in sets for x in ("--set", s)], "--renderer", "sketch",
            "--n", "3", "--out", str(tmp_path / "d"), "--no-progress"]
    assert main(args) == 0
    (tmp_path / "d" / "images" / "sample_00001.tif").unlink()
    ref = _bytes(tmp_path / "d")
    assert main(args + ["--scheduler", "local:2"]) == 0  # a serial run resumed on two Dask workers
    assert set(_bytes(tmp_path / "d")) == set(ref) | {"images/sample_00001.tif"}


def test_bad_scheduler_refused_before_writing(tmp_path):
    cfg = load_config(*(lambda p, s: (p, None, s))(*TINY[2]))
    with pytest.raises(ConfigError, match="scheduler"):
        generate_dataset(cfg, "sketch", 2, 0, tmp_path / "a", scheduler="local:x")
    with socket.socket() as s:  # a free port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(InputError, match="cannot be reached"):
        generate_dataset(cfg, "sketch", 2, 0, tmp_path / "a", scheduler=f"tcp://127.0.0.1:{port}")
    with pytest.raises(ConfigError, match="not both"):
        generate_dataset(cfg, "sketch", 2, 0, tmp_path / "a", scheduler="local:2", workers=2)
    assert not (tmp_path / "a").exists()


class _DyingJob(_Job):
    """Sample 1's first attempt leaves a partial file and kills its worker process (as a node failure would)."""

    def make(self, i):
        flag = self.out.parent / "died-once"
        if i == 1 and not flag.exists():
            flag.touch()
            (self.out / "images").mkdir(parents=True, exist_ok=True)
            (self.out / "images" / ".sample_00001.tif.dead.part").write_bytes(b"half an image")
            os._exit(1)
        return super().make(i)


def test_task_on_a_dying_worker_is_retried_without_partial_files(tmp_path, cluster, monkeypatch):
    preset, sets = TINY[2]
    cfg = load_config(preset, overrides=sets)
    serial = generate_dataset(cfg, "sketch", 3, 5, tmp_path / "serial", progress=False)
    monkeypatch.setattr(cellsynth.dataset, "_Job", _DyingJob)  # workers unpickle this class from this module
    dask = generate_dataset(cfg, "sketch", 3, 5, tmp_path / "dask", progress=False,
                            scheduler=cluster.scheduler_address)
    assert (tmp_path / "died-once").exists()  # the worker did die mid-task
    assert _bytes(dask) == _bytes(serial) and not list(dask.rglob("*.part"))
