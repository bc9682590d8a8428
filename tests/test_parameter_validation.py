"""Parameters changed with set_params after fitting are validated when forgetting.

``partial_unfit`` reads constructor parameters (the evidence iteration's
``max_iter``, the forgetting method and its ``unlearning_lambda``): an invalid
value must raise scikit-learn's InvalidParameterError and change nothing.
"""

import pickle
import warnings

import numpy as np
import pytest
from sklearn.gaussian_process.kernels import RBF
from sklearn.utils._param_validation import InvalidParameterError

from sklunlearn.gaussian_process import SparseGPClassifier
from sklunlearn.linear_model import BayesianLinearRegression, BayesianLogisticRegression

rng = np.random.RandomState(0)
X = rng.randn(80, 3)
y_reg = X @ [1.0, -2.0, 0.5] + rng.randn(80)
y_clf = (y_reg > 0).astype(int)
Z = rng.randn(6, 3)


@pytest.mark.parametrize(
    "estimator, y, bad",
    [
        (BayesianLinearRegression(), y_reg, {"max_iter": 0}),
        (BayesianLinearRegression(), y_reg, {"tol": -1.0}),
        (BayesianLogisticRegression(), y_clf, {"unlearning": "nope"}),
        (BayesianLogisticRegression(unlearning="eubo"), y_clf, {"unlearning_lambda": 5.0}),
        (
            SparseGPClassifier(kernel=RBF(), inducing_points=Z),
            y_clf,
            {"unlearning": "nope"},
        ),
    ],
    ids=lambda v: str(v) if isinstance(v, dict) else None,
)
@pytest.mark.parametrize("method", ["partial_unfit", "partial_fit"])
def test_invalid_parameter_set_after_fit_is_rejected(estimator, y, bad, method):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        estimator.fit(X, y)
    good = {name: estimator.get_params()[name] for name in bad}
    before = pickle.dumps(estimator)
    estimator.set_params(**bad)
    with pytest.raises(InvalidParameterError):
        getattr(estimator, method)(X[:5], y[:5])
    estimator.set_params(**good)
    assert pickle.dumps(estimator) == before
