"""A refused forget leaves the estimator's pickle byte for byte as it was, a method's
non-finite result is refused, and a forget report is strict JSON."""

import json
import pickle
import warnings

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.preprocessing import StandardScaler

from sklunlearn.exceptions import UnlearningWarning
from sklunlearn.linear_model import BayesianLogisticRegression
from sklunlearn.unlearning import get_method, register_method


@pytest.fixture(scope="module")
def cancer():
    X, y = load_breast_cancer(return_X_y=True)
    return StandardScaler().fit_transform(X), y


def state_bytes(est):
    return pickle.dumps({k: v for k, v in vars(est).items() if k != "_lock"})


def test_a_forget_refused_by_its_warning_leaves_the_pickle_unchanged(cancer):
    X, y = cancer
    est = BayesianLogisticRegression().fit(X, y)
    before = state_bytes(est)
    # every row of one class: the divide-out's self-check warns, and the error refuses
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnlearningWarning)
        with pytest.raises(UnlearningWarning):
            est.partial_unfit(X[y == 0], y[y == 0])
    assert state_bytes(est) == before


def test_a_method_that_returns_a_nan_mean_is_refused(cancer):
    X, y = cancer
    laplace = get_method("laplace").function

    def nan_mean(posterior, model, X, y, weights):
        new, record = laplace(posterior, model, X, y, weights)
        # the posterior refuses a NaN mean at construction and hands its mean out
        # read-only; a faulty method can still unlock its own copy and write one
        new = pickle.loads(pickle.dumps(new))
        new.mean.flags.writeable = True
        new.mean[:] = np.nan
        return new, record

    register_method("test-nan-mean", nan_mean, replace=True)
    est = BayesianLogisticRegression(unlearning="test-nan-mean").fit(X, y)
    before = state_bytes(est)
    with pytest.raises(FloatingPointError, match="NaN or infinite"):
        est.partial_unfit(X[:3], y[:3])
    assert state_bytes(est) == before
    assert np.all(np.isfinite(est.coef_))


def test_a_report_with_checks_not_run_is_strict_json(cancer):
    X, y = cancer
    est = BayesianLogisticRegression(unlearning="uib").fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnlearningWarning)
        est.partial_unfit(X[y == 0][:40], y[y == 0][:40])
    report = est.forget_report_
    # 'uib' does not run the divide-out's re-linearisation check: NaN in the record
    assert np.isnan(report.diagnostics["mean_relinearisation"])

    def refuse(constant):
        raise ValueError(f"not strict JSON: {constant}")

    parsed = json.loads(report.to_json(), parse_constant=refuse)
    assert parsed["diagnostics"]["mean_relinearisation"] is None
    assert parsed == json.loads(json.dumps(report.to_dict()), parse_constant=refuse)
