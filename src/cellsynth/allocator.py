"""Keep freed CPU memory in the process heap during training (glibc), instead of returning it to the kernel.

Why: glibc's malloc serves blocks above its mmap threshold (at most 32 MiB) with a fresh
``mmap`` and returns them with ``munmap`` on free. A 3D training step allocates and frees
dozens of activation tensors larger than that (batch 8 × 16 channels × 32×64×64 voxels =
64 MiB each), so every step maps, zero-fills (a page fault per 4 KiB page) and unmaps
gigabytes: on a 32×64×64, batch-8 step we measured 1.5 million page faults and a third of
the CPU time in the kernel (``benchmarks/RESULTS.md``, "3D segmenter step cost").
Inside :func:`retained_heap` every allocation comes from the heap (``M_MMAP_MAX = 0``) and
the heap is never trimmed (``M_TRIM_THRESHOLD``), so step *n* reuses the memory step *n−1* freed.
On exit glibc's defaults are restored and the retained memory is handed back (``malloc_trim``).
Elsewhere than glibc (macOS, musl, Windows) it does nothing.
"""
from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import logging
from collections.abc import Iterator

log = logging.getLogger(__name__)

# mallopt parameters (glibc malloc.h)
M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4
# nesting depth of retained_heap blocks and whether the outermost one is active
_DEPTH, _ACTIVE = 0, False
# glibc's defaults, restored on exit
DEFAULT_TRIM_THRESHOLD, DEFAULT_MMAP_MAX = 128 * 1024, 65536


def _libc():
    try:
        lib = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None
    if not all(hasattr(lib, f) for f in ("mallopt", "malloc_trim", "gnu_get_libc_version")):
        return None  # not glibc
    return lib


def set_retained(lib, on: bool) -> bool:
    """Switch the glibc heap to keep (``on``) or release freed memory; True if glibc accepted it."""
    if on:
        ok = lib.mallopt(M_MMAP_MAX, 0) and lib.mallopt(M_TRIM_THRESHOLD, 2**31 - 1)
    else:
        ok = lib.mallopt(M_MMAP_MAX, DEFAULT_MMAP_MAX) and lib.mallopt(M_TRIM_THRESHOLD, DEFAULT_TRIM_THRESHOLD)
        lib.malloc_trim(0)
    return bool(ok)


@contextlib.contextmanager
def retained_heap(enabled: bool = True) -> Iterator[bool]:
    """Within the block, freed CPU memory stays in the heap for reuse (glibc); yields whether it is active.

    Peak memory is unchanged (the same tensors are alive at once); what changes is that the
    process keeps its peak between steps instead of mapping it anew each step. Blocks nest: an
    inner block (inference inside training) leaves the settings to the outermost one.

    >>> with retained_heap() as active:
    ...     isinstance(active, bool)
    True
    """
    global _DEPTH, _ACTIVE
    if _DEPTH:  # nested (e.g. inference inside a training step): the outer block decides
        _DEPTH += 1
        try:
            yield _ACTIVE
        finally:
            _DEPTH -= 1
        return
    lib = _libc() if enabled else None
    active = bool(lib is not None and set_retained(lib, True))
    _DEPTH, _ACTIVE = 1, active
    if lib is not None and not active:
        log.debug("mallopt refused the retained-heap settings; training with glibc's defaults")
    try:
        yield active
    finally:
        _DEPTH, _ACTIVE = 0, False
        if active:
            set_retained(lib, False)
