"""predict_log_proba is the logarithm of predict_proba, and finite for confident rows."""

import numpy as np
import pytest
from numpy.testing import assert_allclose
from sklearn.datasets import load_iris

from sklunlearn.gaussian_process import SparseGPClassifier
from sklunlearn.linear_model import BayesianLogisticRegression


@pytest.mark.parametrize("n_classes", [2, 3])
@pytest.mark.parametrize("moderated", [True, False])
def test_log_proba_is_finite_and_matches_the_probabilities(n_classes, moderated):
    X, y = load_iris(return_X_y=True)
    keep = y < n_classes
    X, y = X[keep], y[keep]
    est = BayesianLogisticRegression(alpha=1e-3).fit(X, y)
    # Rows far out make some probabilities round to 0 in float64.
    X_far = np.vstack([X, 50.0 * X[:5], -50.0 * X[:5]])
    log_proba = est.predict_log_proba(X_far, moderated=moderated)
    proba = est.predict_proba(X_far, moderated=moderated)
    assert np.all(np.isfinite(log_proba))
    # predict_proba forms 1 - p, exact only to the round-off of 1.
    assert_allclose(np.exp(log_proba), proba, rtol=1e-12, atol=1e-15)
    if not moderated:
        assert np.any(proba == 0.0)  # where np.log(proba) would be -inf


def test_sparse_gp_classifier_log_proba():
    X, y = load_iris(return_X_y=True)
    est = SparseGPClassifier(inducing_points=10, random_state=0).fit(X, y)
    log_proba = est.predict_log_proba(X)
    assert_allclose(np.exp(log_proba), est.predict_proba(X), rtol=1e-12)
