"""The runnable examples in the docstrings run and give what they show (every cellsynth module)."""
from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import cellsynth

# __main__ modules run the command line when imported: they hold no examples
MODULES = sorted(m.name for m in pkgutil.walk_packages(cellsynth.__path__, "cellsynth.")
                 if not m.name.endswith("__main__"))


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    for test in finder.find(module, name, globs=vars(module).copy()):
        runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} docstring examples in {name} failed"
