"""scikit-learn's ``skip_parameter_validation`` is honoured by every learning call.

``fit`` validates through scikit-learn's ``_fit_context``; ``partial_fit`` and
``partial_unfit`` validate the parameters again (they may have changed since the last
call), and must skip it where the configuration says so, as ``fit`` does.
"""

import numpy as np
import pytest
import sklearn

from sklunlearn.gaussian_process import SparseGPClassifier, SparseGPRegressor
from sklunlearn.linear_model import BayesianLinearRegression, BayesianLogisticRegression
from sklunlearn.neural_network import BayesianMLPRegressor

pytestmark = pytest.mark.filterwarnings("ignore::sklunlearn.exceptions.UnlearningWarning")

ESTIMATORS = [
    (BayesianLinearRegression, {}, False),
    (BayesianLogisticRegression, {}, True),
    (SparseGPClassifier, {"inducing_points": 5}, True),
    (SparseGPRegressor, {"inducing_points": 5, "optimizer": None}, False),
    (BayesianMLPRegressor, {"hidden_layer_sizes": (3,), "max_iter": 50}, False),
]


def _counting(cls):
    class Counting(cls):
        calls = 0

        def _validate_params(self):
            type(self).calls += 1
            super()._validate_params()

    Counting.__name__ = cls.__name__
    return Counting


@pytest.mark.parametrize("cls, params, classifier", ESTIMATORS)
@pytest.mark.parametrize("method", ["partial_fit", "partial_unfit"])
def test_batch_calls_skip_validation_when_configured(cls, params, classifier, method):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(30, 3))
    y = (X[:, 0] > 0).astype(int) if classifier else X @ [1.0, -1.0, 0.5]
    est = _counting(cls)(**params).fit(X, y)
    call = getattr(est, method)
    type(est).calls = 0
    with sklearn.config_context(skip_parameter_validation=True):
        call(X[:2], y[:2])
    assert type(est).calls == 0
    call(X[2:4], y[2:4])
    assert type(est).calls == 1
