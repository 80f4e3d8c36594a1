"""TIFF read/write with voxel size, input validation, atomic writes and the dataset manifest.

Every reader raises :class:`InputError` with one line naming the file and what is
wrong, so callers can validate all inputs before writing any output.
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import tifffile

from .errors import InputError

IMAGE_SUFFIXES = (".tif", ".tiff")


def list_images(folder: str | Path, what: str = "images") -> list[Path]:
    """Sorted TIFF files in ``folder``; error if the folder is missing or holds none."""
    folder = Path(folder)
    if not folder.exists():
        raise InputError(f"{what} folder '{folder}' does not exist")
    if not folder.is_dir():
        raise InputError(f"{what} path '{folder}' is not a folder")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not files:
        raise InputError(f"{what} folder '{folder}' holds no .tif/.tiff files")
    return files


def read_image(path: str | Path, ndim: Iterable[int] | None = (2, 3)) -> np.ndarray:
    """Read a single-channel 2D (YX) or 3D (ZYX) TIFF; singleton axes are squeezed.

    Raises :class:`InputError` for a missing or corrupt file, NaNs/infs, or a wrong
    number of dimensions.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"file '{path}' does not exist")
    try:
        # tifffile logs a warning for a broken page table and returns nothing; we raise one line instead
        with _quiet_tifffile():
            arr = tifffile.imread(path)
    except Exception as e:  # tifffile raises several types for corrupt files
        raise InputError(f"file '{path}' is not a readable TIFF ({type(e).__name__}: {str(e)[:80]})") from None
    arr = np.squeeze(np.asarray(arr))
    if arr.size == 0:  # tifffile warns and returns nothing for a broken page table
        raise InputError(f"file '{path}' is not a readable TIFF (no image data; corrupt or truncated?)")
    if ndim is not None and arr.ndim not in tuple(ndim):
        raise InputError(f"file '{path}' has shape {arr.shape}; expected a single-channel "
                         f"{' or '.join(f'{d}D' for d in ndim)} image")
    if np.issubdtype(arr.dtype, np.floating) and not np.all(np.isfinite(arr)):
        raise InputError(f"file '{path}' contains NaN or infinite values")
    return arr


def read_labels(path: str | Path, allow_empty: bool = True) -> np.ndarray:
    """Read an instance mask: integers (or integral floats refused), 2D/3D, no negatives."""
    arr = read_image(path)
    path = Path(path)
    if not np.issubdtype(arr.dtype, np.integer) and arr.dtype != bool:
        raise InputError(f"mask '{path}' has dtype {arr.dtype}; instance masks must be integer labels")
    if arr.dtype == bool:
        arr = arr.astype(np.uint16)
    if arr.min() < 0:
        raise InputError(f"mask '{path}' has negative labels")
    if not allow_empty and arr.max() == 0:
        raise InputError(f"mask '{path}' is empty (no labelled objects)")
    return arr


def read_spacing(path: str | Path, ndim: int) -> tuple[float, ...] | None:
    """Voxel size (µm, (Z)YX) from ImageJ/resolution tags, or None when absent."""
    try:
        with tifffile.TiffFile(path) as tf:
            page = tf.pages[0]
            xr = page.tags.get("XResolution")
            yr = page.tags.get("YResolution")
            sy = sx = None
            if xr is not None and yr is not None:
                xv, yv = xr.value, yr.value
                if xv[0] and yv[0]:
                    sx, sy = xv[1] / xv[0], yv[1] / yv[0]
            ij = tf.imagej_metadata or {}
            sz = ij.get("spacing")
            if sx is None or sy is None:
                return None
            if ndim == 3:
                return (float(sz) if sz else 1.0, float(sy), float(sx))
            return (float(sy), float(sx))
    except Exception:
        return None


@contextlib.contextmanager
def _quiet_tifffile():
    log = logging.getLogger("tifffile")
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        log.setLevel(level)


def check_writable(path: str | Path, what: str = "output", folder: bool = True) -> Path:
    """Refuse an output path that cannot be created and written, before any work is done.

    ``path`` is an output folder (``folder=True``) or file; the folder that would hold it
    is probed by creating and removing an empty temporary entry in it, or in its nearest
    existing parent folder when it does not exist yet. Nothing is left behind. The
    refusal is one :class:`InputError` line naming ``path``.

    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> check_writable(d / "new" / "out") == d / "new" / "out", sorted(d.iterdir())
    (True, [])
    >>> check_writable("/proc/x")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    cellsynth.errors.InputError: output '/proc/x' cannot be created or written (...)
    """
    import tempfile
    path = Path(path)
    if folder and path.exists() and not path.is_dir():
        raise InputError(f"{what} '{path}' exists and is not a folder")
    if not folder and path.is_dir():
        raise InputError(f"{what} '{path}' is a folder, not a file")
    probe = path if folder else path.parent
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        raise InputError(f"{what} '{path}' cannot be created: '{probe}' is not a folder")
    try:
        os.rmdir(tempfile.mkdtemp(dir=probe, prefix=".cellsynth-probe-"))
    except OSError as e:
        raise InputError(f"{what} '{path}' cannot be created or written ({e.strerror or type(e).__name__})") from None
    return path


@contextlib.contextmanager
def atomic_path(path: str | Path, directory: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it is renamed onto ``path``.

    With ``directory=True`` the temporary path is an empty folder (for multi-file
    outputs such as a Zarr store); ``path`` must then not exist yet.

    The one atomic write of the package: an interrupted write leaves only a hidden
    ``.NAME.XXXX.part`` file (removed by :func:`remove_partials`), never a partial file
    under the final name. The file is created with mode 0666 less the process umask.
    A folder that cannot be created or written raises :class:`InputError` naming it.

    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> with atomic_path(d / "a.txt") as tmp:
    ...     _ = tmp.write_text("hello")
    >>> (d / "a.txt").read_text(), sorted(p.name for p in d.iterdir())
    ('hello', ['a.txt'])
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(100):
            tmp = path.parent / f".{path.name}.{os.urandom(4).hex()}.part"
            try:
                if directory:
                    os.mkdir(tmp)
                else:
                    os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
                break
            except FileExistsError:
                continue
    except OSError as e:
        raise InputError(f"output '{path}' cannot be written ({e.strerror or type(e).__name__})") from None
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        elif tmp.exists():
            tmp.unlink()


def write_tiff(path: str | Path, array: np.ndarray, spacing: Iterable[float] | None = None,
               compress: bool = True) -> Path:
    """Write an ImageJ-compatible TIFF (Fiji reads the voxel size) atomically.

    The data go to a temporary name in the same folder and are renamed into place,
    so an interrupted write never leaves a partial file under the final name.
    """
    path = Path(path)
    array = np.asarray(array)
    if array.dtype == np.int64 or array.dtype == np.uint64:
        array = array.astype(np.uint32 if array.max() > 65535 else np.uint16)
    if array.dtype == np.float64:
        array = array.astype(np.float32)
    if array.dtype == bool:
        array = array.astype(np.uint8)
    kwargs: dict[str, Any] = {}
    metadata: dict[str, Any] = {"axes": "ZYX" if array.ndim == 3 else "YX"}
    if spacing is not None:
        sp = [float(s) for s in spacing]
        kwargs["resolution"] = (1.0 / sp[-1], 1.0 / sp[-2])
        metadata["unit"] = "um"
        if array.ndim == 3:
            metadata["spacing"] = sp[0]
    imagej = array.dtype in (np.uint8, np.uint16, np.float32)
    with atomic_path(path) as tmp:
        if imagej:
            tifffile.imwrite(tmp, array, imagej=True, metadata=metadata,
                             compression="zlib" if compress else None, **kwargs)
        else:  # uint32 labels: plain TIFF (ImageJ cannot hold uint32)
            tifffile.imwrite(tmp, array, metadata=metadata,
                             compression="zlib" if compress else None, **kwargs)
    return path


def write_json(path: str | Path, data: Any) -> Path:
    """Atomic JSON write."""
    path = Path(path)
    text = json.dumps(data, indent=2, sort_keys=False, default=_json_default)
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return path


def write_text(path: str | Path, text: str | bytes) -> Path:
    """Atomic text (or bytes) write."""
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_bytes(text) if isinstance(text, bytes) else tmp.write_text(text)
    return path


def read_json(path: str | Path, what: str = "JSON file") -> Any:
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{what} '{path}' does not exist")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise InputError(f"{what} '{path}' is not valid JSON ({e.msg} at line {e.lineno})") from None


def _json_default(o: Any) -> Any:
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def remove_partials(folder: str | Path) -> int:
    """Delete temporary ``.*.part`` files left by an interrupted run; return how many."""
    folder = Path(folder)
    n = 0
    if folder.is_dir():
        for p in folder.glob(".*.part"):
            if p.is_dir():
                shutil.rmtree(p, ignore_errors=True)
            else:
                p.unlink(missing_ok=True)
            n += 1
    return n
