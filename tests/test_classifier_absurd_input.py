"""Absurd input gives a clear ValueError that changes nothing (issue 11)."""

import pickle

import numpy as np
import pytest
from sklearn.gaussian_process.kernels import RBF

from sklunlearn.gaussian_process import SparseGPClassifier
from sklunlearn.linear_model import BayesianLogisticRegression

rng = np.random.RandomState(0)
X = rng.randn(50, 3)
y = (X[:, 0] > 0).astype(int)

ESTIMATORS = [
    lambda **kw: BayesianLogisticRegression(**kw),
    lambda **kw: SparseGPClassifier(kernel=RBF(), inducing_points=X[:5], **kw),
]


def test_huge_features_are_refused_at_fit():
    with pytest.raises(ValueError, match="Standardise the features"):
        BayesianLogisticRegression().fit(1e300 * np.sign(X), y)


@pytest.mark.parametrize("make", ESTIMATORS)
@pytest.mark.parametrize("ledger", [True, False])
def test_huge_weights_are_refused_and_change_nothing(make, ledger):
    with pytest.raises(ValueError, match="sample_weight"):
        make(ledger=ledger).fit(X, y, sample_weight=np.full(50, 1e300))
    est = make(ledger=ledger).fit(X, y)
    before = pickle.dumps(est)
    with pytest.raises(ValueError, match="Nothing was changed"):
        est.partial_fit(X[:2], y[:2], sample_weight=np.full(2, 1e300))
    assert pickle.dumps(est) == before
    with pytest.raises(ValueError, match="(?i)cannot forget"):
        est.partial_unfit(X[:2], y[:2], sample_weight=np.full(2, 1e300))
    assert pickle.dumps(est) == before


@pytest.mark.parametrize("ledger", [True, False])
def test_fit_intercept_changed_after_fit_is_refused(ledger):
    est = BayesianLogisticRegression(ledger=ledger).fit(X, y)
    before = pickle.dumps(est)
    est.set_params(fit_intercept=False)
    with pytest.raises(ValueError, match="fit_intercept") as caught:
        est.partial_unfit(X[:2], y[:2])
    assert "theta must have shape" not in str(caught.value)
    est.set_params(fit_intercept=True)
    assert pickle.dumps(est) == before
