"""A method or parameter changed between requests never undoes the earlier requests.

Pending requests are divided out as their union from the posterior before the first
of them. Re-dividing the earlier requests' rows under a changed method or parameter
would undo part of their forget, so a change starts from the posterior held, as a
saved model does.
"""

import pickle
import warnings

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.preprocessing import StandardScaler

from sklunlearn.exceptions import UnlearningWarning
from sklunlearn.linear_model import BayesianLogisticRegression
from sklunlearn.neural_network import BayesianMLPRegressor


def _quiet(call, *args):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnlearningWarning)
        return call(*args)


@pytest.fixture(scope="module")
def network():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(80, 3))
    y = np.sin(X[:, 0]) + X[:, 1] + 0.3 * rng.normal(size=80)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = BayesianMLPRegressor(
            hidden_layer_sizes=(4,),
            max_iter=2000,
            random_state=0,
            unlearning="uib",
            unlearning_beta=1.0,
        ).fit(X, y)
    return model, X, y


@pytest.fixture(scope="module")
def classifier():
    X, y = load_breast_cancer(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    model = BayesianLogisticRegression(unlearning="uib", unlearning_beta=1.0).fit(X, y)
    return model, X, y


@pytest.mark.parametrize("data", ["network", "classifier"])
@pytest.mark.parametrize(
    "change",
    [{"unlearning_beta": 100.0}, {"unlearning": "laplace"}],
    ids=["beta", "method"],
)
def test_a_changed_parameter_starts_from_the_posterior_held(data, change, request):
    fitted, X, y = request.getfixturevalue(data)
    model = pickle.loads(pickle.dumps(fitted))
    _quiet(model.partial_unfit, X[:5], y[:5])
    first = model.posterior_
    # What the second request must give: a step from the posterior held.
    held = pickle.loads(pickle.dumps(model)).set_params(**change)
    _quiet(held.partial_unfit, X[5:6], y[5:6])
    model.set_params(**change)
    _quiet(model.partial_unfit, X[5:6], y[5:6])
    np.testing.assert_allclose(model.posterior_.mean, held.posterior_.mean, atol=1e-10)
    np.testing.assert_allclose(
        model.posterior_.precision, held.posterior_.precision, rtol=1e-10, atol=1e-10
    )
    assert model.posterior_ is not first


@pytest.mark.parametrize("data", ["network", "classifier"])
def test_the_same_parameters_still_divide_out_the_union(data, request):
    fitted, X, y = request.getfixturevalue(data)
    once = pickle.loads(pickle.dumps(fitted))
    _quiet(once.partial_unfit, X[:6], y[:6])
    model = pickle.loads(pickle.dumps(fitted))
    _quiet(model.partial_unfit, X[:5], y[:5])
    model.set_params(unlearning_beta=1.0)  # set again, unchanged
    _quiet(model.partial_unfit, X[5:6], y[5:6])
    np.testing.assert_allclose(model.posterior_.mean, once.posterior_.mean, atol=1e-9)
