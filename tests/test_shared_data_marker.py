"""A shared-data test that skips is a failure when CELLSYNTH_REQUIRE_DATA=1 (what `.ci/run` sets)."""
from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

BODY = '''
import pytest

@pytest.mark.shared_data
def test_marked():
    pytest.skip("data absent")

def test_fixture(shared_data):
    pytest.skip("data absent")

def test_plain():
    pytest.skip("unrelated")
'''


@pytest.mark.parametrize("require, failed, skipped", [("", 0, 3), ("1", 2, 1)])
def test_require_data_turns_skip_into_failure(pytester, monkeypatch, require, failed, skipped):
    pytester.makeconftest((Path(__file__).parent / "conftest.py").read_text())
    pytester.makepyfile(test_it=BODY)
    monkeypatch.setenv("CELLSYNTH_REQUIRE_DATA", require)
    res = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    got = res.parseoutcomes()
    # a skip in the fixture's setup surfaces as an error, in the test body as a failure
    assert got.get("failed", 0) + got.get("errors", got.get("error", 0)) == failed
    assert got.get("skipped", 0) == skipped
