"""The public registry of forgetting methods: a method registered from outside the
package is used through an estimator's ``unlearning`` parameter and GridSearchCV."""

import json

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.gaussian_process.kernels import RBF
from sklearn.model_selection import GridSearchCV
from sklearn.preprocessing import StandardScaler
from sklearn.utils._param_validation import InvalidParameterError

from sklunlearn.gaussian_process import SparseGPClassifier
from sklunlearn.linear_model import BayesianLogisticRegression
from sklunlearn.model_selection import UnlearningAudit
from sklunlearn.posterior import GaussianPosterior
from sklunlearn.unlearning import Diagnostics, get_method, register_method

CALLS = []


def _halfway(posterior, model, X, y, weights, *, inference):
    """Toy method: half the Laplace divide-out step, written against the core only."""
    CALLS.append((model.predictor.__class__.__name__, X.shape, inference))
    terms = model.terms(X, y, weights, posterior.mean)
    precision, clipped = model.prior.floor(posterior.precision - 0.5 * terms.hessian)
    new = GaussianPosterior.from_precision(
        posterior.mean - 0.5 * np.linalg.solve(precision, terms.gradient), precision
    )
    return new, Diagnostics(
        move=posterior.mahalanobis(new.mean),
        clipped_eigenvalue=clipped,
        warnings=("toy method: half a step",),
    )


register_method("halfway", _halfway, replace=True)


@pytest.fixture(scope="module")
def data():
    X, y = load_breast_cancer(return_X_y=True)
    return StandardScaler().fit_transform(X)[::2], y[::2]


def test_a_registered_method_is_used_by_the_estimator(data):
    X, y = data
    assert get_method("halfway").parameters == ("inference",)
    full = BayesianLogisticRegression().fit(X, y)
    est = BayesianLogisticRegression(unlearning="halfway").fit(X, y)
    CALLS.clear()
    with pytest.warns(match="toy method: half a step"):
        est.partial_unfit(X[:20], y[:20])
    assert CALLS == [("LinearPredictor", (20, 30), "laplace")]
    # dense reference: half the curvature and half the Newton step of the rows
    design = np.hstack([X[:20], np.ones((20, 1))])
    m = full.posterior_.mean
    p = 1.0 / (1.0 + np.exp(-design @ m))
    H = design.T @ ((p * (1 - p))[:, None] * design)
    g = design.T @ (y[:20] - p)
    precision = full.posterior_.precision - 0.5 * H
    np.testing.assert_allclose(est.posterior_.precision, precision, rtol=1e-9)
    np.testing.assert_allclose(
        est.posterior_.mean, m - 0.5 * np.linalg.solve(precision, g), rtol=1e-8
    )
    record = est.unlearning_diagnostics_
    assert json.loads(json.dumps(record.to_dict()))["warnings"] == [
        "toy method: half a step"
    ]


def test_a_registered_method_works_with_the_sparse_gp_classifier(data):
    X, y = data
    est = SparseGPClassifier(kernel=RBF(3.0), inducing_points=X[:10], unlearning="halfway")
    est.fit(X, y)
    CALLS.clear()
    with pytest.warns(match="toy method"):
        est.partial_unfit(X[20:30], y[20:30])
    assert CALLS == [("InducingPointPredictor", (10, 30), "laplace")]


def test_grid_search_over_registered_methods(data):
    X, y = data
    search = GridSearchCV(
        UnlearningAudit(BayesianLogisticRegression(), forget_size=0.1, random_state=0),
        {"estimator__unlearning": ["laplace", "halfway"]},
        cv=2,
    )
    with pytest.warns(match="toy method"):
        search.fit(X, y)
    scores = search.cv_results_["mean_test_score"]
    # the full Newton step is closer to retraining than half of it
    assert search.best_params_ == {"estimator__unlearning": "laplace"}
    assert scores[0] > scores[1]


def test_a_method_registered_after_fitting_is_accepted_by_set_params(data):
    X, y = data
    est = BayesianLogisticRegression().fit(X, y)
    with pytest.raises(InvalidParameterError, match="unlearning"):
        est.set_params(unlearning="late").partial_unfit(X[:2], y[:2])
    register_method("late", _halfway, replace=True)
    with pytest.warns(match="toy method"):
        est.set_params(unlearning="late").partial_unfit(X[:2], y[:2])


def test_registration_errors():
    with pytest.raises(ValueError, match="already registered"):
        register_method("laplace", _halfway)
    with pytest.raises(TypeError, match="callable"):
        register_method("broken", 3)
    with pytest.raises(ValueError, match="Unknown forgetting method"):
        get_method("never-registered")
