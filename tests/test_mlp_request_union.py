"""A network forgets requests one after another as one request of their union.

Each Laplace divide-out (and ``'uib'``) step takes the rows' terms at a mean. A second
step from the mean the first one moved to removes curvature the posterior does not hold
there, so single-row requests compound. As the classifiers do, the
network divides the union of the pending requests out of the posterior before the first
of them (docs/neural_network.md).
"""

import copy
import pickle
import warnings

import numpy as np
import pytest

from sklunlearn.exceptions import UnlearningWarning
from sklunlearn.neural_network import BayesianMLPRegressor


@pytest.fixture(scope="module")
def rows():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(80, 3))
    y = np.sin(X[:, 0]) + X[:, 1] + 0.3 * rng.normal(size=80)
    return X, y


def _fitted(X, y, sample_weight=None, **params):
    params = {"hidden_layer_sizes": (4,), "max_iter": 2000, "random_state": 0, **params}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return BayesianMLPRegressor(**params).fit(X, y, sample_weight=sample_weight)


def _forget(model, X, y, sample_weight=None):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnlearningWarning)
        return model.partial_unfit(X, y, sample_weight=sample_weight)


def _assert_same_posterior(first, second):
    np.testing.assert_allclose(first.posterior_.mean, second.posterior_.mean, atol=1e-9)
    np.testing.assert_allclose(
        first.posterior_.precision, second.posterior_.precision, rtol=1e-9, atol=1e-9
    )


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"unlearning": "uib", "unlearning_beta": 1.0},
        {"inference": "vi", "noise_variance": 0.1, "max_iter": 500},
    ],
    ids=["laplace", "uib", "vi"],
)
def test_single_row_requests_end_where_one_request_of_their_union_does(rows, params):
    X, y = rows
    once = _forget(_fitted(X, y, **params), X[:10], y[:10])
    one_by_one = _fitted(X, y, **params)
    for i in range(10):
        _forget(one_by_one, X[i : i + 1], y[i : i + 1])
    _assert_same_posterior(one_by_one, once)
    np.testing.assert_allclose(one_by_one.predict(X), once.predict(X), atol=1e-8)


def test_weight_forgotten_in_parts_ends_where_the_whole_weight_does(rows):
    X, y = rows
    weight = np.ones(80)
    weight[:10] = 2.0
    whole = _forget(_fitted(X, y, weight), X[:10], y[:10], 2.0 * np.ones(10))
    parts = _fitted(X, y, weight)
    _forget(parts, X[:10], y[:10])
    _forget(parts, X[:10], y[:10])
    _assert_same_posterior(parts, whole)


def test_learning_or_saving_starts_the_next_request_from_the_posterior_held(rows):
    X, y = rows
    model = _forget(_fitted(X, y), X[:3], y[:3])
    assert "_pending_forgets" in model.__dict__
    for saved in (pickle.loads(pickle.dumps(model)), copy.deepcopy(model)):
        assert "_pending_forgets" not in saved.__dict__
        fresh = copy.deepcopy(saved)
        _forget(saved, X[3:5], y[3:5])
        # No anchor: the same step a model saved before any forget would take.
        expected = _forget(fresh, X[3:5], y[3:5])
        _assert_same_posterior(saved, expected)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.partial_fit(X[:3], y[:3])
    assert "_pending_forgets" not in model.__dict__


def test_a_refused_request_keeps_the_pending_requests(rows):
    X, y = rows
    model = _forget(_fitted(X, y), X[:3], y[:3])
    anchor, union = model._pending_forgets
    with pytest.raises(ValueError):
        model.partial_unfit(X[:1], y[:1])  # already forgotten: the ledger refuses it
    assert model._pending_forgets[0] is anchor and model._pending_forgets[1] is union
    once = _forget(_fitted(X, y), X[:5], y[:5])
    _forget(model, X[3:5], y[3:5])
    _assert_same_posterior(model, once)


def test_another_method_or_the_diagonal_posterior_keeps_no_pending_state(rows):
    X, y = rows
    diagonal = _forget(_fitted(X, y, curvature="diag"), X[:3], y[:3])
    assert "_pending_forgets" not in diagonal.__dict__
    model = _forget(_fitted(X, y), X[:3], y[:3])
    model.set_params(unlearning="eubo")
    try:
        _forget(model, X[3:4], y[3:4])
    except ValueError:  # eubo may run away on a network and be refused
        assert "_pending_forgets" in model.__dict__
    else:
        assert "_pending_forgets" not in model.__dict__
