"""scikit-learn's own BayesianRidge tests, run against BayesianLinearRegression.

``sklearn/linear_model/tests/test_bayes.py`` is imported as a module and its
``BayesianRidge`` name replaced by BayesianLinearRegression while each test
runs; tests parametrized over the estimator class run with it in place of
BayesianRidge. Tests of ARDRegression alone are skipped.
"""

import itertools

import pytest

from sklunlearn.linear_model import BayesianLinearRegression

bayes = pytest.importorskip("sklearn.linear_model.tests.test_bayes")

ARD_ONLY = {
    "test_update_of_sigma_in_ard": "ARDRegression's sigma update; no BayesianRidge",
    "test_toy_ard_object": "ARDRegression on a toy problem; no BayesianRidge",
    "test_ard_accuracy_on_easy_problem": "ARDRegression's accuracy; no BayesianRidge",
    "test_update_sigma": "ARDRegression's two sigma helpers; no BayesianRidge",
}
SEEDS = (0, 42)


def _parametrizations(function):
    """The argument combinations of a test's ``parametrize`` marks (with seeds)."""
    grids = []
    for mark in getattr(function, "pytestmark", []):
        if mark.name != "parametrize":
            continue
        names = (
            [name.strip() for name in mark.args[0].split(",")]
            if isinstance(mark.args[0], str)
            else list(mark.args[0])
        )
        rows = [value if len(names) > 1 else (value,) for value in mark.args[1]]
        grids.append([dict(zip(names, row, strict=True)) for row in rows])
    if (
        "global_random_seed"
        in function.__code__.co_varnames[: function.__code__.co_argcount]
    ):
        grids.append([{"global_random_seed": seed} for seed in SEEDS])
    for combination in itertools.product(*grids):
        yield {key: value for part in combination for key, value in part.items()}


def _cases():
    for name, function in sorted(vars(bayes).items()):
        if not name.startswith("test_") or not callable(function):
            continue
        if name in ARD_ONLY:
            yield pytest.param(name, {}, id=name, marks=pytest.mark.skip(ARD_ONLY[name]))
            continue
        for kwargs in _parametrizations(function):
            if kwargs.get("Estimator") is bayes.ARDRegression:
                continue  # the ARDRegression half of a test over both estimators
            if kwargs.get("Estimator") is not None:
                kwargs = {**kwargs, "Estimator": BayesianLinearRegression}
            label = "-".join(
                f"{key}={getattr(v, '__name__', v)}" for key, v in kwargs.items()
            )
            yield pytest.param(name, kwargs, id=f"{name}[{label}]" if label else name)


@pytest.mark.parametrize("name, kwargs", list(_cases()))
def test_bayesian_ridge_suite(name, kwargs, monkeypatch):
    monkeypatch.setattr(bayes, "BayesianRidge", BayesianLinearRegression)
    getattr(bayes, name)(**kwargs)


def test_the_suite_runs_ours():
    """The substitution is real: the suite's BayesianRidge tests see our estimator."""
    seen = []

    class Recording(BayesianLinearRegression):
        def fit(self, X, y, sample_weight=None):
            seen.append(type(self))
            return super().fit(X, y, sample_weight)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(bayes, "BayesianRidge", Recording)
        bayes.test_bayesian_ridge_scores()
    assert seen == [Recording]
