"""UnlearningAudit routes ``sample_weight`` by its estimator's fit request.

With metadata routing enabled, a scikit-learn meta-estimator passes weights to a
step only when the step's request asks for them and refuses weights nobody
requested; the audit fits, retrains and forgets as its estimator would be fitted.
"""

import numpy as np
import pytest
import sklearn
from numpy.testing import assert_allclose
from sklearn.exceptions import UnsetMetadataPassedError
from sklearn.model_selection import GridSearchCV

from sklunlearn.linear_model import BayesianLinearRegression
from sklunlearn.model_selection import UnlearningAudit


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 3))
    y = X @ [1.0, -2.0, 0.5] + 0.1 * rng.normal(size=60)
    return X, y, rng.uniform(0.2, 3.0, size=60)


def _audit(estimator):
    return UnlearningAudit(estimator, forget_size=0.2, random_state=0)


def test_weights_follow_the_estimators_fit_request(data):
    X, y, w = data
    with sklearn.config_context(enable_metadata_routing=True):
        inner = BayesianLinearRegression().set_fit_request(sample_weight=True)
        audit = _audit(inner).fit(X, y, sample_weight=w)
    keep = ~audit.forget_mask_
    expected = BayesianLinearRegression().fit(X[keep], y[keep], sample_weight=w[keep])
    assert_allclose(audit.retrained_estimator_.coef_, expected.coef_, rtol=1e-12)
    assert_allclose(audit.unlearned_estimator_.coef_, expected.coef_, rtol=1e-9)


def test_weights_the_estimator_declines_are_not_used(data):
    # As for scikit-learn's routers: weights no object consumes are refused, never
    # applied to an estimator that declined them.
    X, y, w = data
    with sklearn.config_context(enable_metadata_routing=True):
        inner = BayesianLinearRegression().set_fit_request(sample_weight=False)
        with pytest.raises(TypeError, match="not routed"):
            _audit(inner).fit(X, y, sample_weight=w)
        audit = _audit(inner).fit(X, y)
    keep = ~audit.forget_mask_
    expected = BayesianLinearRegression().fit(X[keep], y[keep])
    assert_allclose(audit.retrained_estimator_.coef_, expected.coef_, rtol=1e-12)


def test_weights_nobody_requested_are_refused(data):
    X, y, w = data
    audit = _audit(BayesianLinearRegression())
    with sklearn.config_context(enable_metadata_routing=True):
        with pytest.raises(UnsetMetadataPassedError):
            audit.fit(X, y, sample_weight=w)
    assert not hasattr(audit, "retrained_estimator_")


def test_grid_search_routes_weights_to_the_audited_estimator(data):
    X, y, w = data
    with sklearn.config_context(enable_metadata_routing=True):
        inner = BayesianLinearRegression().set_fit_request(sample_weight=True)
        search = GridSearchCV(
            _audit(inner), {"estimator__fit_intercept": [True, False]}, cv=2
        ).fit(X, y, sample_weight=w)
    best = search.best_estimator_
    keep = ~best.forget_mask_
    fit_intercept = search.best_params_["estimator__fit_intercept"]
    expected = BayesianLinearRegression(fit_intercept=fit_intercept).fit(
        X[keep], y[keep], sample_weight=w[keep]
    )
    assert_allclose(best.retrained_estimator_.coef_, expected.coef_, rtol=1e-12)


def test_without_routing_weights_are_used_as_before(data):
    X, y, w = data
    audit = _audit(BayesianLinearRegression()).fit(X, y, sample_weight=w)
    keep = ~audit.forget_mask_
    expected = BayesianLinearRegression().fit(X[keep], y[keep], sample_weight=w[keep])
    assert_allclose(audit.retrained_estimator_.coef_, expected.coef_, rtol=1e-12)
