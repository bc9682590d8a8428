"""Warnings name the line of user code that made the call, however deep the call.

A warning that points into the package (or scikit-learn's pipeline) gives the user
no way to find which of their calls it is about, and ``-W error::...:module`` filters
by the caller's module cannot select it.
"""

import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.preprocessing import StandardScaler

from sklunlearn.exceptions import UnlearningWarning
from sklunlearn.gaussian_process import SparseGPRegressor
from sklunlearn.linear_model import BayesianLogisticRegression
from sklunlearn.metrics import posterior_kl
from sklunlearn.pipeline import make_unlearning_pipeline


def _rows(n=120, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    y = (X[:, 0] + 0.5 * rng.normal(size=n) > 0).astype(int)
    return X, y


def _recorded(call):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        call()
    return caught


def _assert_here(caught, category):
    matching = [w for w in caught if issubclass(w.category, category)]
    assert matching, f"no {category.__name__} was issued"
    for w in matching:
        assert w.filename == __file__, (w.filename, str(w.message)[:80])


def _forget_many(estimator):
    X, y = _rows()
    estimator.fit(X, y)
    # Half the rows at once, with EUBO: its own diagnostics warn.
    return _recorded(lambda: estimator.partial_unfit(X[:60], y[:60]))


def test_a_forget_warning_names_the_callers_line():
    estimator = BayesianLogisticRegression(unlearning="eubo", unlearning_lambda=0.0)
    _assert_here(_forget_many(estimator), UnlearningWarning)


@pytest.mark.parametrize("depth", [1, 2])
def test_pipeline_warnings_name_the_callers_line(depth):
    estimator = BayesianLogisticRegression(unlearning="eubo", unlearning_lambda=0.0)
    for _ in range(depth):
        estimator = make_unlearning_pipeline(StandardScaler(), estimator)
    caught = _forget_many(estimator)
    assert any("may still hold statistics" in str(w.message) for w in caught)
    _assert_here(caught, UnlearningWarning)


def test_a_fit_warning_names_the_callers_line():
    X, y = _rows()
    estimator = BayesianLogisticRegression(max_iter=1)
    _assert_here(_recorded(lambda: estimator.fit(X, y)), ConvergenceWarning)


def test_a_metric_warning_names_the_callers_line():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 2))
    y = np.sin(X[:, 0])
    first = SparseGPRegressor(inducing_points=X[:10], optimizer=None).fit(X, y)
    second = SparseGPRegressor(inducing_points=X[10:20], optimizer=None).fit(X, y)
    caught = _recorded(lambda: posterior_kl(first, second))
    _assert_here(caught, UnlearningWarning)


def test_a_network_fit_warning_names_the_callers_line():
    from sklunlearn.neural_network import BayesianMLPRegressor

    X, _ = _rows(60)
    estimator = BayesianMLPRegressor(hidden_layer_sizes=(3,), max_iter=2, random_state=0)
    caught = _recorded(lambda: estimator.fit(X, X[:, 0]))
    _assert_here(caught, ConvergenceWarning)


def test_a_warning_in_a_grid_search_names_the_callers_line():
    from sklearn.model_selection import GridSearchCV

    X, y = _rows()
    search = GridSearchCV(BayesianLogisticRegression(max_iter=1), {"alpha": [1.0]}, cv=2)
    _assert_here(_recorded(lambda: search.fit(X, y)), ConvergenceWarning)
