"""Exporters: each layout read back with tifffile / zarr / our readers, 2D and 3D; bad input; resume."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest
import tifffile
from scipy import ndimage as ndi

from cellsynth.cli import main
from cellsynth.errors import ConfigError, InputError
from cellsynth.export import export_dataset
from cellsynth.export.stardist import star_convexity
from cellsynth.io import read_spacing, write_json, write_tiff


def _labels(ndim: int, rng: np.random.Generator) -> np.ndarray:
    """Three objects: a box with a hole, a box, and a crescent (not star-convex)."""
    shape = (8, 40, 40) if ndim == 3 else (40, 40)
    lab = np.zeros(shape, np.uint16)
    yy, xx = np.mgrid[:40, :40]
    crescent = (((yy - 28) ** 2 + (xx - 28) ** 2) <= 9 ** 2) & ~(((yy - 28) ** 2 + (xx - 33) ** 2) <= 8 ** 2)
    sl = (slice(1, 7),) if ndim == 3 else ()
    lab[sl + (slice(2, 12), slice(2, 12))] = 5
    lab[(slice(3, 5),) * (ndim - 2) + (slice(6, 8), slice(6, 8))] = 0  # a hole (enclosed in 3D too)
    lab[sl + (slice(2, 10), slice(20, 30))] = 7
    lab[sl + (crescent,)] = 9
    return lab


@pytest.fixture(params=[2, 3], ids=["2d", "3d"])
def dataset(request, tmp_path, rng):
    ndim = request.param
    d = tmp_path / f"ds{ndim}"
    spacing = (2.0, 0.5, 0.5) if ndim == 3 else (0.5, 0.5)
    samples = []
    for i in range(4):
        lab = _labels(ndim, rng)
        if i == 3:
            lab[:] = 0  # an empty sample is allowed
        img = (rng.random(lab.shape) * 50 + (lab > 0) * 100).astype(np.float32)
        write_tiff(d / "images" / f"s{i}.tif", img, spacing)
        write_tiff(d / "masks" / f"s{i}.tif", lab, spacing)
        samples.append({"name": f"s{i}", "spacing": list(spacing)})
    write_json(d / "manifest.json", {"samples": samples})
    return d, ndim, spacing


def _files(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def test_cellpose_layout_and_split(dataset, tmp_path):
    d, ndim, spacing = dataset
    s = export_dataset(d, "cellpose", tmp_path / "cp", test_fraction=0.25, progress_bar=False)
    assert (s["n_train"], s["n_test"]) == (3, 1)
    names = {p.name for p in (tmp_path / "cp").glob("*/*.tif")}
    assert names == {f"s{i}{x}.tif" for i in range(4) for x in ("", "_masks")}
    test = sorted(p.name for p in (tmp_path / "cp" / "test").iterdir())
    assert len(test) == 2 and test[1] == test[0].replace(".tif", "_masks.tif")
    for m in (tmp_path / "cp").glob("*/*_masks.tif"):
        orig = tifffile.imread(d / "masks" / m.name.replace("_masks", ""))
        np.testing.assert_array_equal(tifffile.imread(m), orig)
        assert read_spacing(m, ndim) == pytest.approx(spacing)


def test_cellpose_slices_3d(tmp_path, rng):
    lab = _labels(3, rng)
    write_tiff(tmp_path / "d" / "images" / "a.tif", (lab > 0).astype(np.uint8) * 200, (2.0, 0.5, 0.5))
    write_tiff(tmp_path / "d" / "masks" / "a.tif", lab, (2.0, 0.5, 0.5))
    s = export_dataset(tmp_path / "d", "cellpose", tmp_path / "cp", progress_bar=False,
                       options={"slices": True, "min_masks": 2})
    sl = tmp_path / "cp" / "train_slices"
    masks = sorted(sl.glob("*_masks.tif"))
    assert s["slices"] == len(masks) > 0
    # isotropic: z (8 planes at 2 µm) becomes 32 at 0.5 µm; XZ planes are 32 x 40
    xz = [tifffile.imread(m) for m in masks if "_xz" in m.name]
    assert xz and all(m.shape == (32, 40) for m in xz)
    for m in masks:  # at least min_masks objects, numbered 1..N, each one connected piece
        lb = tifffile.imread(m)
        assert lb.max() >= 2 and set(np.unique(lb)) == set(range(lb.max() + 1))
        assert all(ndi.label(lb == i)[1] == 1 for i in range(1, lb.max() + 1))
    for m in masks:
        assert (sl / m.name.replace("_masks", "")).is_file()
    write_tiff(tmp_path / "d2" / "images" / "a.tif", lab[3])
    write_tiff(tmp_path / "d2" / "masks" / "a.tif", lab[3])
    with pytest.raises(ConfigError, match="slices"):
        export_dataset(tmp_path / "d2", "cellpose", tmp_path / "x", options={"slices": True}, progress_bar=False)
    assert not (tmp_path / "x").exists()


def test_stardist_fills_holes_and_reports(dataset, tmp_path):
    d, ndim, _ = dataset
    s = export_dataset(d, "stardist", tmp_path / "sd", progress_bar=False)
    m = tifffile.imread(tmp_path / "sd" / "train" / "masks" / "s0.tif")
    hole = (3, 6, 6) if ndim == 3 else (6, 6)
    assert m[hole] == 5 and tifffile.imread(d / "masks" / "s0.tif")[hole] == 0
    assert {p.name for p in (tmp_path / "sd" / "train" / "images").iterdir()} == \
        {p.name for p in (tmp_path / "sd" / "train" / "masks").iterdir()}
    # three objects in each of three samples; the crescent (label 9) is the non-star-convex one
    assert s["objects"] == 9 and s["not_star_convex"] == 3
    rep = json.loads((tmp_path / "sd" / "star_convexity.json").read_text())
    assert rep["samples"]["s3"]["objects"] == 0


def test_star_convexity_2d_3d():
    yy, xx = np.mgrid[:41, :41]
    disk = ((yy - 20) ** 2 + (xx - 20) ** 2 <= 15 ** 2).astype(np.uint16)
    assert star_convexity(disk, 32)[0] < 0.01
    zz, yy, xx = np.mgrid[:21, :41, :41]
    ball = (((zz - 10) * 2) ** 2 + (yy - 20) ** 2 + (xx - 20) ** 2 <= 15 ** 2).astype(np.uint16)
    assert star_convexity(ball, 96, spacing=(2, 1, 1))[0] < 0.05
    ball = ((zz - 10) ** 2 + (yy - 20) ** 2 + (xx - 20) ** 2 <= 9 ** 2)
    crescent = (ball & ~((zz - 10) ** 2 + (yy - 20) ** 2 + (xx - 26) ** 2 <= 8 ** 2)).astype(np.uint16) * 2
    lost = star_convexity(crescent, 96)
    assert np.isnan(lost[0]) and lost[1] > 0.1


def test_nnunet_layout(dataset, tmp_path):
    d, ndim, spacing = dataset
    s = export_dataset(d, "nnunet", tmp_path / "raw", test_fraction=0.25, progress_bar=False,
                       options={"dataset_id": 7, "dataset_name": "Toy"})
    root = tmp_path / "raw" / "Dataset007_Toy"
    assert s["out"] == str(root)
    ds = json.loads((root / "dataset.json").read_text())
    assert ds["numTraining"] == 3 and ds["file_ending"] == ".tif"
    assert ds["labels"] == {"background": 0, "boundary": 1, "interior": 2}
    assert ("overwrite_image_reader_writer" in ds) == (ndim == 3)
    cases = sorted(p.name[:-len(".tif")] for p in (root / "labelsTr").glob("*.tif"))
    assert len(cases) == 3 and sorted(p.name for p in (root / "imagesTs").glob("*.tif")) != []
    for c in cases:
        sem = tifffile.imread(root / "labelsTr" / f"{c}.tif")
        inst = tifffile.imread(root / "instancesTr" / f"{c}.tif")
        assert (root / "imagesTr" / f"{c}_0000.tif").is_file()
        assert set(np.unique(sem)) <= {0, 1, 2}
        np.testing.assert_array_equal(sem > 0, inst > 0)
        if inst.max():
            assert (sem == 1).any() and (sem == 2).any()
        if ndim == 3:
            for j in (root / "imagesTr" / f"{c}.json", root / "labelsTr" / f"{c}.json"):
                assert json.loads(j.read_text()) == {"spacing": list(spacing)}
    with pytest.raises(ConfigError, match="Dataset007_Toy"):  # one id, two names: ambiguous for nnU-Net
        export_dataset(d, "nnunet", tmp_path / "raw", progress_bar=False, options={"dataset_id": 7})


def test_ctc_layout(dataset, tmp_path):
    d, ndim, _ = dataset
    export_dataset(d, "ctc", tmp_path / "ctc", progress_bar=False)
    seg = sorted((tmp_path / "ctc" / "01_GT" / "SEG").glob("man_seg*.tif"))
    assert [p.name for p in seg] == [f"man_seg{i:03d}.tif" for i in range(4)]
    lines = (tmp_path / "ctc" / "01_GT" / "TRA" / "man_track.txt").read_text().split("\n")[:-1]
    tracks = [tuple(map(int, ln.split())) for ln in lines]
    seen = []
    for t, p in enumerate(seg):
        m = tifffile.imread(p)
        assert m.dtype == np.uint16
        np.testing.assert_array_equal(m, tifffile.imread(tmp_path / "ctc" / "01_GT" / "TRA" / f"man_track{t:03d}.tif"))
        ids = [int(i) for i in np.unique(m) if i]
        assert sorted(L for L, b, e, par in tracks if b == e == t) == ids
        seen += ids
        orig = tifffile.imread(d / "masks" / f"s{t}.tif")
        np.testing.assert_array_equal(m > 0, orig > 0)
        assert tifffile.imread(tmp_path / "ctc" / "01" / f"t{t:03d}.tif").dtype == np.uint16
    assert len(seen) == len(set(seen)) == 9
    assert json.loads((tmp_path / "ctc" / "01_frames.json").read_text())["t002"] == "s2"


@pytest.mark.parametrize("version", ["0.4", "0.5"])
def test_omezarr_layout(dataset, tmp_path, version):
    zarr = pytest.importorskip("zarr")
    d, ndim, spacing = dataset
    export_dataset(d, "omezarr", tmp_path / "z", progress_bar=False, options={"ngff_version": version, "levels": 2})
    g = zarr.open_group(str(tmp_path / "z" / "s0.zarr"), mode="r")
    assert g.metadata.zarr_format == (2 if version == "0.4" else 3)
    attrs = dict(g.attrs) if version == "0.4" else dict(g.attrs)["ome"]
    ms = attrs["multiscales"][0]
    assert [a["name"] for a in ms["axes"]] == list("zyx"[-ndim:])
    assert all(a["unit"] == "micrometer" for a in ms["axes"])
    assert ms["datasets"][1]["coordinateTransformations"][0]["scale"][-1] == pytest.approx(2 * spacing[-1])
    assert ms["datasets"][0]["coordinateTransformations"][0]["scale"] == pytest.approx(list(spacing))
    lab_attrs = dict(g["labels"].attrs) if version == "0.4" else dict(g["labels"].attrs)["ome"]
    assert lab_attrs["labels"] == ["cells"]
    cells = g["labels/cells"]
    cattrs = dict(cells.attrs) if version == "0.4" else dict(cells.attrs)["ome"]
    assert "image-label" in cattrs
    assert [x["path"] for x in cattrs["multiscales"][0]["datasets"]] == [x["path"] for x in ms["datasets"]]
    for lev in ("0", "1"):
        assert g[lev].shape == cells[lev].shape
    np.testing.assert_array_equal(cells["0"][...], tifffile.imread(d / "masks" / "s0.tif"))
    np.testing.assert_array_equal(g["0"][...], tifffile.imread(d / "images" / "s0.tif"))
    if version == "0.5":
        assert g["0"].metadata.dimension_names == tuple("zyx"[-ndim:])
    if version == "0.4":
        assert (tmp_path / "z" / "s0.zarr" / "0" / ".zarray").is_file()
        assert json.loads((tmp_path / "z" / "s0.zarr" / "0" / ".zarray").read_text())["dimension_separator"] == "/"


def test_bad_inputs_refused_before_writing(tmp_path, rng):
    d = tmp_path / "d"
    write_tiff(d / "images" / "a.tif", rng.random((16, 16)).astype(np.float32))
    write_tiff(d / "masks" / "a.tif", rng.random((16, 16)).astype(np.float32))  # float mask
    with pytest.raises(InputError, match="a.tif"):
        export_dataset(d, "cellpose", tmp_path / "o1", progress_bar=False)
    write_tiff(d / "masks" / "a.tif", np.ones((16, 17), np.uint16))  # shape mismatch
    with pytest.raises(InputError, match="shape"):
        export_dataset(d, "stardist", tmp_path / "o1", progress_bar=False)
    with pytest.raises(InputError, match="does not exist"):
        export_dataset(tmp_path / "missing", "ctc", tmp_path / "o1", progress_bar=False)
    assert not (tmp_path / "o1").exists()
    write_tiff(d / "masks" / "a.tif", np.ones((16, 16), np.uint16))
    with pytest.raises(ConfigError, match="n_rays"):
        export_dataset(d, "cellpose", tmp_path / "o1", options={"n_rays": 8}, progress_bar=False)
    with pytest.raises(ConfigError, match="split"):
        export_dataset(d, "omezarr", tmp_path / "o1", test_fraction=0.5, progress_bar=False)
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "x.txt").write_text("mine")
    with pytest.raises(InputError, match="not an empty folder"):
        export_dataset(d, "cellpose", tmp_path / "busy", progress_bar=False)
    assert not (tmp_path / "o1").exists() and _files(tmp_path / "busy") == ["x.txt"]


def test_resume_redoes_only_missing(dataset, tmp_path):
    d, _, _ = dataset
    out = tmp_path / "ctc"
    export_dataset(d, "ctc", out, progress_bar=False)
    before = {f: (out / f).read_bytes() for f in _files(out) if not f.startswith(".")}
    kept = out / "01" / "t000.tif"
    os.utime(kept, (1, 1))
    (out / "01" / "t002.tif").unlink()  # as if interrupted
    (out / "01" / ".t002.tif.abcd.part").write_bytes(b"partial")
    export_dataset(d, "ctc", out, progress_bar=False)
    after = {f: (out / f).read_bytes() for f in _files(out) if not f.startswith(".")}
    assert after == before and kept.stat().st_mtime == 1
    assert not list(out.rglob("*.part"))
    with pytest.raises(InputError, match="other settings"):
        export_dataset(d, "ctc", out, test_fraction=0.5, progress_bar=False)


def test_cli_export(dataset, tmp_path, capsys):
    d, _, _ = dataset
    assert main(["export", "--in", str(d), "--format", "stardist", "--out", str(tmp_path / "sd"),
                 "--n-rays", "16", "--no-progress"]) == 0
    assert "not star-convex with 16 rays" in capsys.readouterr().out
    assert main(["export", "--in", str(d), "--format", "cellpose", "--out", str(tmp_path / "cp"),
                 "--dataset-id", "3", "--no-progress"]) == 2
    assert "dataset_id" in capsys.readouterr().err and not (tmp_path / "cp").exists()


def test_generate_then_export(tmp_path, capsys):
    out = tmp_path / "g"
    assert main(["generate", "--preset", "nuclei2d-dsb", "--renderer", "sketch", "--n", "2", "--out", str(out),
                 "--set", "scene.shape=[32,32]", "--set", "scene.placement.n_points=[2,3]",
                 "--set", "scene.placement.min_distance=8", "--set", "scene.nuclei.radius=[3,5]",
                 "--no-progress", "--export", "cellpose", "--export", "ctc"]) == 0
    assert len(list((tmp_path / "g_cellpose" / "train").glob("*_masks.tif"))) == 2
    assert len(list((tmp_path / "g_ctc" / "01").glob("t*.tif"))) == 2
    # an option no chosen format takes is refused before anything is generated
    assert main(["generate", "--preset", "nuclei2d-dsb", "--n", "2", "--out", str(tmp_path / "h"),
                 "--export", "cellpose", "--n-rays", "8", "--no-progress"]) == 2
    assert "n_rays" in capsys.readouterr().err and not (tmp_path / "h").exists()
