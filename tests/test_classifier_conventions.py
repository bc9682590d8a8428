"""The classifiers follow scikit-learn's online conventions; their diagnostics are
there from the fit on; divergences of nearly equal posteriors are not negative."""

import pickle

import numpy as np
import pytest
from scipy import stats
from sklearn.datasets import load_breast_cancer, load_iris
from sklearn.preprocessing import StandardScaler

from sklunlearn.linear_model import BayesianLogisticRegression


def test_partial_fit_refuses_classes_that_differ_from_classes_():
    X, y = load_iris(return_X_y=True)
    est = BayesianLogisticRegression().fit(X, y)
    before = pickle.dumps(est)
    for classes in ([0, 1], [5, 6, 7]):
        with pytest.raises(ValueError, match="is not the same as on last call"):
            est.partial_fit(X[:5], y[:5], classes=classes)
        assert pickle.dumps(est) == before
    est.partial_fit(X[:5], y[:5], classes=[0, 1, 2])  # repeating them is fine
    np.testing.assert_array_equal(est.classes_, [0, 1, 2])


def test_region_mass_follows_the_current_lambda_from_the_fit_on():
    X, y = load_breast_cancer(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    est = BayesianLogisticRegression(unlearning="eubo").fit(X, y)
    assert est.unlearning_region_mass_ == 1.0  # lambda = 0: the whole posterior
    est.set_params(unlearning_lambda=1e-9)
    d = X.shape[1] + 1
    expected = stats.chi2.cdf(-2 * np.log(1e-9), d)
    assert est.unlearning_region_mass_ == pytest.approx(expected, rel=1e-12)
    assert not hasattr(BayesianLogisticRegression(), "unlearning_region_mass_")


def test_kl_of_nearly_equal_posteriors_is_not_negative():
    # Two halves of a request forget what the whole does: the posteriors agree to
    # round-off, and the divergence's terms sum to a few 1e-15 either side of zero.
    X, y = load_breast_cancer(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    halves = BayesianLogisticRegression().fit(X, y)
    for _ in range(2):
        halves.partial_unfit(X[:40], y[:40], sample_weight=np.full(40, 0.5))
    whole = BayesianLogisticRegression().fit(X, y).partial_unfit(X[:40], y[:40])
    assert 0.0 <= halves.posterior_.kl_divergence(whole.posterior_) < 1e-12
    assert halves.posterior_.kl_divergence(halves.posterior_) == 0.0
