"""Everyday command-line behaviour: --version, --quiet, log levels, exit codes."""
from __future__ import annotations

import logging
import subprocess
import sys

import numpy as np
import pytest

from cellsynth import __version__
from cellsynth.cli import main
from cellsynth.io import write_tiff


@pytest.fixture
def dataset(tmp_path):
    lab = np.zeros((16, 16), np.uint16)
    lab[2:8, 2:8] = 1
    write_tiff(tmp_path / "ds" / "images" / "a.tif", lab.astype(np.uint8) * 100)
    write_tiff(tmp_path / "ds" / "masks" / "a.tif", lab)
    return tmp_path / "ds"


def test_version():
    r = subprocess.run([sys.executable, "-m", "cellsynth", "--version"], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.strip() == f"cellsynth {__version__}"


@pytest.mark.parametrize("where", ["before", "after"])
def test_quiet_prints_nothing(dataset, tmp_path, capsys, where):
    cmd = ["export", "--in", str(dataset), "--format", "ctc", "--out", str(tmp_path / "o")]
    assert main(["--quiet", *cmd] if where == "before" else [*cmd, "--quiet"]) == 0
    out = capsys.readouterr()
    assert out.out == "" and out.err == ""  # no summary line, no progress bar
    assert (tmp_path / "o" / "01" / "t000.tif").is_file()


def test_log_levels(dataset, tmp_path, capsys):
    assert main(["-v", "export", "--in", str(dataset), "--format", "ctc", "--out", str(tmp_path / "o"),
                 "--no-progress"]) == 0
    err = capsys.readouterr().err
    assert "INFO cellsynth.export: exported 1 sample(s)" in err
    assert main(["export", "--in", str(dataset), "--format", "ctc", "--out", str(tmp_path / "o"),
                 "--no-progress", "--log-level", "warning"]) == 0
    assert "INFO" not in capsys.readouterr().err
    assert logging.getLogger("cellsynth").level == logging.WARNING


def test_exit_codes(tmp_path, capsys):
    assert main(["-q", "export", "--in", str(tmp_path / "missing"), "--format", "ctc",
                 "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "missing" in err[0]  # errors stay visible under --quiet
    with pytest.raises(SystemExit) as e:
        main(["export", "--format", "nope"])
    assert e.value.code == 2
