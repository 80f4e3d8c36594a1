"""bioimageio.core's own test_model on a package from ``cellsynth segment export --format bioimageio`` (2D, 3D)."""
from __future__ import annotations

import pytest

from conftest import cellsynth, cellsynth_python

TRAIN = """
import json, sys, pathlib, numpy as np
sys.path.insert(0, str(pathlib.Path(sys.argv[1])))
from test_bioimageio_export import tiny_segmenter
print(json.dumps(str(tiny_segmenter(pathlib.Path(sys.argv[2]), int(sys.argv[3])))))
"""


@pytest.mark.parametrize("ndim", [2, 3])
def test_model_passes(tmp_path, ndim):
    from bioimageio.core import test_model

    from conftest import REPO
    model = cellsynth_python(TRAIN, REPO / "tests", tmp_path, ndim)
    cellsynth("segment", "export", "--model", model, "--format", "bioimageio", "--out", tmp_path / "model.zip")
    summary = test_model(str(tmp_path / "model.zip"))
    assert summary.status == "passed", summary.format()
