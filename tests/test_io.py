"""TIFF I/O: voxel size round trip, atomic writes, clear one-line errors for bad files."""
from __future__ import annotations

import numpy as np
import pytest
import tifffile

from cellsynth.errors import InputError
from cellsynth.io import list_images, read_image, read_labels, read_spacing, remove_partials, write_tiff


@pytest.mark.parametrize("shape, spacing", [((20, 30), (0.5, 0.25)), ((4, 20, 30), (2.0, 0.5, 0.25))])
def test_roundtrip_with_spacing(tmp_path, shape, spacing):
    a = np.arange(np.prod(shape), dtype=np.uint16).reshape(shape)
    p = write_tiff(tmp_path / "a.tif", a, spacing)
    np.testing.assert_array_equal(read_image(p), a)
    np.testing.assert_allclose(read_spacing(p, len(shape)), spacing, rtol=1e-5)
    # ImageJ metadata so Fiji reads the calibration
    with tifffile.TiffFile(p) as tf:
        assert tf.is_imagej
        assert tf.imagej_metadata.get("unit") in ("um", "micron", "\\u00B5m")
    assert not list(tmp_path.glob(".*.part"))


def test_uint32_labels(tmp_path):
    a = np.zeros((8, 8), np.uint32)
    a[0, 0] = 70000
    p = write_tiff(tmp_path / "big.tif", a, (1.0, 1.0))
    assert read_labels(p).max() == 70000


def test_errors_name_the_file(tmp_path):
    with pytest.raises(InputError, match="missing.tif"):
        read_image(tmp_path / "missing.tif")
    bad = tmp_path / "corrupt.tif"
    bad.write_bytes(b"II*\x00garbage" * 10)
    with pytest.raises(InputError, match="corrupt.tif.*not a readable TIFF"):
        read_image(bad)
    f = tmp_path / "nan.tif"
    tifffile.imwrite(f, np.full((4, 4), np.nan, np.float32))
    with pytest.raises(InputError, match="NaN"):
        read_image(f)
    f4 = tmp_path / "4d.tif"
    tifffile.imwrite(f4, np.zeros((2, 3, 4, 5), np.uint8), photometric="minisblack")
    with pytest.raises(InputError, match="4d.tif.*shape"):
        read_image(f4)
    ff = tmp_path / "float_mask.tif"
    tifffile.imwrite(ff, np.ones((4, 4), np.float32))
    with pytest.raises(InputError, match="float_mask.tif.*integer"):
        read_labels(ff)
    fe = tmp_path / "empty_mask.tif"
    tifffile.imwrite(fe, np.zeros((4, 4), np.uint16))
    with pytest.raises(InputError, match="empty"):
        read_labels(fe, allow_empty=False)
    with pytest.raises(InputError, match="does not exist"):
        list_images(tmp_path / "nope")
    (tmp_path / "emptydir").mkdir()
    with pytest.raises(InputError, match="no .tif"):
        list_images(tmp_path / "emptydir")


def test_remove_partials(tmp_path):
    (tmp_path / ".x.tif.abc.part").write_bytes(b"1")
    (tmp_path / "keep.tif").write_bytes(b"1")
    assert remove_partials(tmp_path) == 1
    assert [p.name for p in tmp_path.iterdir()] == ["keep.tif"]


def test_written_files_get_usual_permissions(tmp_path):
    import os
    p = write_tiff(tmp_path / "p.tif", np.zeros((4, 4), np.uint8))
    umask = os.umask(0)
    os.umask(umask)
    assert (p.stat().st_mode & 0o777) == (0o666 & ~umask)
