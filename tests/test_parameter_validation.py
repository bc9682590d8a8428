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


@pytest.mark.parametrize("how", ["set_params", "assignment"])
def test_a_changed_parameter_is_validated_again(how):
    est = BayesianLogisticRegression().fit(X, y_clf)
    est.partial_unfit(X[:2], y_clf[:2])  # validated and remembered
    before = pickle.dumps(est)
    if how == "set_params":
        est.set_params(unlearning="nope")
    else:
        est.unlearning = "nope"
    with pytest.raises(InvalidParameterError, match="unlearning"):
        est.partial_unfit(X[2:4], y_clf[2:4])
    est.unlearning = "laplace"
    assert pickle.dumps(est) == before


def test_refused_first_partial_fit_leaves_no_trace():
    # A first partial_fit that is refused after its parameters were validated
    # leaves no trace, and a pickled copy validates its own parameters.
    est = BayesianLogisticRegression()
    before = pickle.dumps(est)
    with pytest.raises(ValueError):
        est.partial_fit(X[:5], y_clf[:4], classes=[0, 1])
    assert pickle.dumps(est) == before
    est.fit(X, y_clf)
    copy = pickle.loads(pickle.dumps(est))
    copy.unlearning = "nope"
    with pytest.raises(InvalidParameterError):
        copy.partial_unfit(X[:2], y_clf[:2])


def test_skip_parameter_validation_is_honoured():
    from sklearn import config_context

    est = BayesianLinearRegression().fit(X, y_reg)
    est.set_params(tol=-1.0)  # read by nothing but the validation of partial_unfit
    with pytest.raises(InvalidParameterError):
        est.partial_unfit(X[:2], y_reg[:2])
    with config_context(skip_parameter_validation=True):
        est.partial_unfit(X[:2], y_reg[:2])
    assert est.n_samples_seen_ == len(y_reg) - 2


def test_unhashable_subclass_is_validated_every_time():
    class Unhashable(BayesianLogisticRegression):
        def __eq__(self, other):  # sets __hash__ to None
            return self is other

    est = Unhashable().fit(X, y_clf)
    est.partial_unfit(X[:2], y_clf[:2])
    est.unlearning = "nope"
    with pytest.raises(InvalidParameterError):
        est.partial_unfit(X[2:4], y_clf[2:4])
