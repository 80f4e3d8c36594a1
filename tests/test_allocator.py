"""retained_heap: inside it the memory of freed large tensors is reused step after step (no new page
faults); on exit it is handed back to the system. Measured in a fresh process, so the heap
layout left by other tests does not matter."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from cellsynth.allocator import _libc

pytestmark = pytest.mark.skipif(_libc() is None, reason="glibc malloc only")

N = 64 * 2**20 // 4  # 64 MiB float32 tensors: above glibc's largest mmap threshold (32 MiB), like 3D activations
PAGES = N * 4 // 4096

SCRIPT = f"""
import json, os, resource, torch
from cellsynth.allocator import retained_heap

def steps(k):  # minor page faults of k 'training steps' that each allocate, use and free three tensors
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(k):
        a = torch.ones({N}); b = a * 2; c = a + b
        del a, b, c
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

def rss():
    return int(open("/proc/self/statm").read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

out = {{"default": steps(4)}}
with retained_heap(enabled=False) as a:
    out["disabled"], out["disabled_active"] = steps(4), a
with retained_heap() as a:
    out["active"], out["first"], out["retained"] = a, steps(3), steps(4)
    out["rss_inside"] = rss()
out["rss_after"] = rss()
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def faults():
    r = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, check=True)
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_freed_memory_is_reused_inside(faults):
    assert faults["default"] > 4 * 3 * PAGES // 2  # glibc defaults: each 64 MiB tensor mapped and faulted anew
    assert faults["active"]
    assert faults["retained"] < faults["default"] // 4  # after a few steps, steps reuse freed memory


def test_memory_handed_back_on_exit(faults):
    assert faults["rss_after"] < faults["rss_inside"] - 2 * N * 4


def test_disabled_changes_nothing(faults):
    assert not faults["disabled_active"]
    assert faults["disabled"] > 4 * 3 * PAGES // 2


def test_nested_blocks_leave_the_settings_to_the_outermost(monkeypatch):
    import cellsynth.allocator as al
    calls = []
    monkeypatch.setattr(al, "set_retained", lambda lib, on: calls.append(on) or True)
    with al.retained_heap() as outer:
        with al.retained_heap() as inner:   # e.g. GAN rendering inside a training step
            assert inner == outer
        assert calls == [True]              # the inner exit did not restore glibc's defaults
    assert calls == [True, False]
    with al.retained_heap(enabled=False) as off:
        with al.retained_heap() as inner:
            assert off is False and inner is False  # nested in a disabled block: stays off
    assert calls == [True, False]
