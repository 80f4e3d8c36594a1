"""Shared fixtures: seeded generators, and the real data.

Tests that read ``../shared/data`` carry ``@pytest.mark.shared_data`` (added automatically to
every test using the ``shared_data`` fixture). On a user's clone without the data they skip;
with ``CELLSYNTH_REQUIRE_DATA=1`` (set by ``.ci/run``) a skip of such a test is a failure, so a
green CI run means they ran.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
REQUIRE_DATA = os.environ.get("CELLSYNTH_REQUIRE_DATA", "") not in ("", "0")


def pytest_configure(config):
    config.addinivalue_line("markers", "shared_data: needs ../shared/data (see tests/conftest.py)")


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "shared_data" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.shared_data)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if REQUIRE_DATA and rep.skipped and item.get_closest_marker("shared_data") is not None:
        reason = rep.longrepr[-1] if isinstance(rep.longrepr, tuple) else str(rep.longrepr)
        rep.outcome = "failed"
        rep.longrepr = f"CELLSYNTH_REQUIRE_DATA=1 but this shared-data test skipped: {reason}"


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


@pytest.fixture
def shared_data() -> Path:
    """``../shared/data`` beside the checkout; tests using it skip when it is absent (a user's clone)."""
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data not present")
    return SHARED_DATA
