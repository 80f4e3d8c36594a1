"""py-ctcmetrics (the CTC's SEG, Maška et al. 2014) and ome-zarr's Reader on cellsynth exports."""
from __future__ import annotations

import numpy as np
import pytest
import tifffile

from conftest import cellsynth, cellsynth_python

SEG_CODE = """
import json, sys, glob, numpy as np, tifffile
from cellsynth.metrics.segmentation import seg_per_object
gt = sorted(glob.glob(sys.argv[1] + '/man_seg*.tif')); res = sorted(glob.glob(sys.argv[2] + '/mask*.tif'))
j = np.concatenate([seg_per_object(tifffile.imread(g), tifffile.imread(r)) for g, r in zip(gt, res)])
print(json.dumps(float(j.mean())))
"""


def _as_result(gt_seq, res_seq, perturb=None):
    """The CTC result layout: ``01_RES/maskNNN.tif`` + ``res_track.txt`` (GT copied, optionally perturbed)."""
    res_seq.mkdir()
    lines = []
    for t, p in enumerate(sorted((gt_seq / "SEG").glob("man_seg*.tif"))):
        m = tifffile.imread(p)
        if perturb is not None:
            m = perturb(m)
        tifffile.imwrite(res_seq / p.name.replace("man_seg", "mask"), m.astype(np.uint16))
        lines += [f"{i} {t} {t} 0" for i in np.unique(m) if i]
    (res_seq / "res_track.txt").write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize("ndim", [2, 3])
def test_ctc_self_score_is_one(datasets, tmp_path, ndim):
    from ctc_metrics import evaluate_sequence, validate_sequence
    cellsynth("export", "--in", datasets[ndim], "--format", "ctc", "--out", tmp_path / "ctc", "--no-progress")
    gt, res = tmp_path / "ctc" / "01_GT", tmp_path / "ctc" / "01_RES"
    _as_result(gt, res)
    assert validate_sequence(str(res), threads=1)["Valid"] == 1
    scores = evaluate_sequence(str(res), str(gt), metrics=["SEG"], threads=1)
    assert scores["SEG"] == pytest.approx(1.0)


def test_ctc_seg_agrees_with_cellsynth(datasets, tmp_path):
    from ctc_metrics import evaluate_sequence
    from scipy import ndimage
    cellsynth("export", "--in", datasets[2], "--format", "ctc", "--out", tmp_path / "ctc", "--no-progress")
    gt, res = tmp_path / "ctc" / "01_GT", tmp_path / "ctc" / "01_RES"

    def perturb(m):  # drop the first object, shrink every other one by 1 px, grow the rest by 1 px
        out = np.zeros_like(m)
        ids = [i for i in np.unique(m) if i]
        for k, i in enumerate(ids[1:]):
            op = ndimage.binary_erosion if k % 2 else ndimage.binary_dilation
            out[op(m == i) & ((m == 0) | (m == i))] = i
        return out
    _as_result(gt, res, perturb)
    ctc = evaluate_sequence(str(res), str(gt), metrics=["SEG"], threads=1)["SEG"]
    ours = cellsynth_python(SEG_CODE, gt / "SEG", res)
    print(f"py-ctcmetrics SEG {ctc:.6f}, cellsynth SEG {ours:.6f}")
    assert 0.2 < ctc < 0.95  # non-trivial
    assert ours == pytest.approx(ctc, abs=1e-6)


@pytest.mark.parametrize("ndim", [2, 3])
@pytest.mark.parametrize("version", ["0.4", "0.5"])
def test_omezarr_reader_round_trips_labels(datasets, tmp_path, ndim, version):
    from ome_zarr.io import parse_url
    from ome_zarr.reader import Reader
    out = tmp_path / "z"
    cellsynth("export", "--in", datasets[ndim], "--format", "omezarr", "--out", out, "--ngff-version", version,
              "--levels", "2", "--no-progress")
    store = sorted(out.glob("*.zarr"))[0]
    nodes = list(Reader(parse_url(str(store)))())
    image = nodes[0]
    mask = tifffile.imread(datasets[ndim] / "masks" / (store.stem + ".tif"))
    img = tifffile.imread(datasets[ndim] / "images" / (store.stem + ".tif"))
    assert len(image.data) == 2
    np.testing.assert_array_equal(np.asarray(image.data[0]), img)
    assert [a["name"] for a in image.metadata["axes"]] == list("zyx"[-ndim:])
    labels = [n for n in nodes if "image-label" in n.zarr.root_attrs or
              "image-label" in n.zarr.root_attrs.get("ome", {})]
    assert len(labels) == 1 and len(labels[0].data) == 2
    np.testing.assert_array_equal(np.asarray(labels[0].data[0]), mask)
    assert labels[0].data[1].shape == image.data[1].shape


@pytest.mark.parametrize("version", ["0.4", "0.5"])
def test_omezarr_models_validate(datasets, tmp_path, version):
    import zarr
    out = tmp_path / "z"
    cellsynth("export", "--in", datasets[3], "--format", "omezarr", "--out", out, "--ngff-version", version,
              "--no-progress")
    store = sorted(out.glob("*.zarr"))[0]
    if version == "0.4":
        from ome_zarr_models.v04.image import Image
        from ome_zarr_models.v04.image_label import ImageLabel
    else:
        from ome_zarr_models.v05.image import Image
        from ome_zarr_models.v05.image_label import ImageLabel
    Image.from_zarr(zarr.open_group(str(store), mode="r"))
    ImageLabel.from_zarr(zarr.open_group(str(store / "labels" / "cells"), mode="r"))
