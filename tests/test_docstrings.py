"""Run the Examples sections of every public module's docstrings (as installed)."""

import doctest
import importlib
import pkgutil

import pytest

import sklunlearn

MODULES = sorted(
    info.name
    for info in pkgutil.walk_packages(sklunlearn.__path__, prefix="sklunlearn.")
    if not info.name.endswith("__main__")
)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0, f"{result.failed} docstring example(s) failed in {name}"


def test_the_estimators_have_examples():
    attempted = {
        name: doctest.testmod(importlib.import_module(name)).attempted
        for name in [
            "sklunlearn.linear_model._bayesian_linear",
            "sklunlearn.linear_model._logistic",
            "sklunlearn.gaussian_process._sgpr",
            "sklunlearn.gaussian_process._sgpc",
            "sklunlearn.posterior",
        ]
    }
    assert all(count > 0 for count in attempted.values()), attempted
