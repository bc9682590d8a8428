"""Copies and pickles of a fitted estimator are independent and faithful.

A shallow copy (a snapshot of a model before a request) must own its ledger,
which changes in place; a pickled model must continue exactly as the original.
"""

import copy
import pickle
import warnings

import numpy as np
import pytest

from sklunlearn.linear_model import BayesianLinearRegression
from sklunlearn.neural_network import BayesianMLPRegressor
from sklunlearn.posterior import GaussianPosterior


def _data(n=40, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.randn(n, 3)
    return X, X @ [1.0, -2, 0.5] + 0.1 * rng.randn(n)


@pytest.mark.parametrize("copier", [copy.copy, copy.deepcopy])
def test_a_snapshot_refuses_rows_only_the_original_learned(copier):
    X, y = _data()
    X_new, y_new = X[:5] + 1.0, y[:5] + 3.0
    live = BayesianLinearRegression().fit(X, y)
    snapshot = copier(live)
    live.partial_fit(X_new, y_new)
    coef = snapshot.coef_.copy()
    with pytest.raises(ValueError, match="never learned"):
        snapshot.partial_unfit(X_new, y_new)
    np.testing.assert_array_equal(snapshot.coef_, coef)
    assert snapshot.n_samples_seen_ == len(snapshot.ledger_) == 40
    assert live.n_samples_seen_ == len(live.ledger_) == 45


@pytest.mark.parametrize("copier", [copy.copy, copy.deepcopy])
def test_a_snapshot_keeps_rows_the_original_forgot(copier):
    X, y = _data()
    live = BayesianLinearRegression().fit(X, y)
    snapshot = copier(live)
    live.partial_unfit(X[:5], y[:5])
    assert snapshot.ledger_.contains(X[:5], y[:5]).all()
    snapshot.partial_unfit(X[:5], y[:5])  # its own model still holds them
    np.testing.assert_allclose(snapshot.coef_, live.coef_, rtol=1e-12, atol=1e-14)


def test_a_pickled_posterior_keeps_the_precision_it_was_built_from():
    rng = np.random.RandomState(0)
    A = rng.randn(30, 8)
    precision = A.T @ A + np.diag(rng.rand(8))
    posterior = GaussianPosterior.from_precision(rng.randn(8), precision)
    restored = pickle.loads(pickle.dumps(posterior))
    np.testing.assert_array_equal(restored.precision, posterior.precision)
    np.testing.assert_array_equal(restored.precision, (precision + precision.T) / 2)


def test_a_pickled_network_continues_exactly_as_the_original():
    X, y = _data(80)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        original = BayesianMLPRegressor(hidden_layer_sizes=(5,), random_state=0)
        original.fit(X[:60], y[:60])
        restored = pickle.loads(pickle.dumps(original))
        for model in (original, restored):
            model.partial_unfit(X[:5], y[:5])
            model.partial_fit(X[60:], y[60:])
    np.testing.assert_array_equal(restored.predict(X), original.predict(X))
    np.testing.assert_array_equal(
        restored.posterior_.precision, original.posterior_.precision
    )


def test_a_pipeline_snapshot_owns_its_final_steps_ledger():
    from sklearn.preprocessing import FunctionTransformer

    from sklunlearn.pipeline import make_unlearning_pipeline

    X, y = _data(60)
    live = make_unlearning_pipeline(FunctionTransformer(), BayesianLinearRegression())
    live.fit(X[:40], y[:40])
    snapshot = copy.copy(live)
    live.partial_fit(X[40:], y[40:])
    with pytest.raises(ValueError, match="never learned"):
        snapshot.partial_unfit(X[40:42], y[40:42])
    assert len(snapshot.ledger_) == 40 and len(live.ledger_) == 60
    snapshot.partial_unfit(X[:2], y[:2])
    assert len(live.ledger_) == 60
