"""BioImage Model Zoo export: package contents consistent (2D and 3D); bad input refused before writing.

``tests/ecosystem/test_bioimageio.py`` runs ``bioimageio.core.test_model`` on such a package.
"""
from __future__ import annotations

import hashlib
import io
import zipfile

import numpy as np
import pytest
import torch
import yaml

from cellsynth.errors import InputError
from cellsynth.io import write_tiff
from cellsynth.segment.bioimageio import export_bioimageio
from cellsynth.segment.unet import SegmenterConfig, load_segmenter, train_segmenter


def tiny_segmenter(tmp_path, ndim: int):
    rng = np.random.default_rng(0)
    shape = (8, 32, 32) if ndim == 3 else (32, 32)
    lab = np.zeros(shape, np.uint16)
    lab[..., 4:12, 4:12] = 1
    lab[..., 18:28, 16:26] = 2
    write_tiff(tmp_path / "d" / "images" / "a.tif", (lab > 0) * 100 + rng.random(shape).astype(np.float32) * 20)
    write_tiff(tmp_path / "d" / "masks" / "a.tif", lab)
    patch = [8, 16, 16] if ndim == 3 else [16, 16]
    cfg = SegmenterConfig(channels=[4, 8], patch=patch, batch_size=1, steps=2,
                          strides=[[1, 2, 2]] if ndim == 3 else None)
    train_segmenter([tmp_path / "d"], tmp_path / "m", cfg, device="cpu", progress=False)
    return tmp_path / "m"


@pytest.mark.parametrize("ndim", [2, 3])
def test_package_is_consistent(tmp_path, ndim):
    model = tiny_segmenter(tmp_path, ndim)
    out = export_bioimageio(model, tmp_path / "model.zip")
    z = zipfile.ZipFile(out)
    rdf = yaml.safe_load(z.read("rdf.yaml"))
    assert rdf["type"] == "model" and rdf["weights"]["torchscript"]["source"] == "weights.pt"
    for entry in (rdf["inputs"][0]["test_tensor"], rdf["outputs"][0]["test_tensor"], rdf["weights"]["torchscript"]):
        assert hashlib.sha256(z.read(entry["source"])).hexdigest() == entry["sha256"]
    x = np.load(io.BytesIO(z.read("test_input.npy")))
    y = np.load(io.BytesIO(z.read("test_output.npy")))
    assert x.shape[:2] == (1, 1) and x.ndim == ndim + 2 and y.shape == (1, 3, *x.shape[2:])
    np.testing.assert_allclose(y.sum(1), 1.0, atol=1e-5)
    # the TorchScript gives cellsynth's own probabilities on the normalised test input
    net = torch.jit.load(io.BytesIO(z.read("weights.pt")))
    lo, hi = np.percentile(x, load_segmenter(model).percentiles, axis=tuple(range(2, x.ndim)), keepdims=True)
    with torch.no_grad():
        np.testing.assert_allclose(net(torch.from_numpy(((x - lo) / (hi - lo + 1e-6)).astype(np.float32))).numpy(),
                                   y, atol=1e-5)
    assert [a.get("id") for a in rdf["inputs"][0]["axes"][2:]] == list("zyx"[-ndim:])
    assert "seeded watershed" in z.read("README.md").decode()


def test_bad_inputs_refused(tmp_path):
    model = tiny_segmenter(tmp_path, 2)
    with pytest.raises(InputError, match=".zip"):
        export_bioimageio(model, tmp_path / "model.tar")
    write_tiff(tmp_path / "vol.tif", np.zeros((4, 32, 32), np.float32))
    with pytest.raises(InputError, match="3D"):
        export_bioimageio(model, tmp_path / "m.zip", test_image=tmp_path / "vol.tif")
    with pytest.raises(InputError):
        export_bioimageio(tmp_path / "nomodel", tmp_path / "m.zip")
    assert not (tmp_path / "m.zip").exists()


def test_cli_segment_export(tmp_path, capsys):
    from cellsynth.cli import main
    model = tiny_segmenter(tmp_path, 2)
    assert main(["segment", "export", "--model", str(model), "--format", "bioimageio",
                 "--out", str(tmp_path / "p.zip")]) == 0
    assert "p.zip" in capsys.readouterr().out and zipfile.is_zipfile(tmp_path / "p.zip")
