"""The Laplace step's self-check is skipped only where its bounds show it cannot warn.

linearisation_bounds (sklunlearn/unlearning/_checks.py) certifies a step from
the rows' moves alone; wherever it does, the full re-evaluation at the new
mean (linearisation_check) must be quiet and its two measures below the bounds.
"""

import functools

import numpy as np
import pytest
from scipy import sparse
from sklearn.datasets import load_breast_cancer
from sklearn.preprocessing import StandardScaler

from sklunlearn.linear_model import BayesianLogisticRegression
from sklunlearn.unlearning import laplace_divide_out
from sklunlearn.unlearning._checks import linearisation_bounds, linearisation_check


@functools.lru_cache(maxsize=1)
def _cases():
    rng = np.random.RandomState(0)
    X, y = load_breast_cancer(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    cases = []
    for alpha in (0.01, 1.0):
        est = BayesianLogisticRegression(alpha=alpha).fit(X, y)
        for k in (1, 11, 170):  # the largest ones warn
            rows = rng.choice(X.shape[0], k, replace=False)
            cases.append((est, X[rows], y[rows], rng.uniform(0.5, 2.0, k)))
    for d in (3, 20, 60):
        Xs = rng.randn(6000, d)
        ys = (Xs @ rng.randn(d) / np.sqrt(d) + rng.logistic(size=6000) > 0).astype(int)
        for fit_intercept in (True, False):
            est = BayesianLogisticRegression(fit_intercept=fit_intercept).fit(Xs, ys)
            for k in (1, 10, 100, 600):
                cases.append((est, Xs[:k], ys[:k], rng.uniform(0.5, 2.0, k)))
        est = BayesianLogisticRegression().fit(sparse.csr_matrix(Xs), ys)
        cases.append((est, sparse.csr_matrix(Xs[:50]), ys[:50], np.ones(50)))
    return cases


@pytest.mark.parametrize("case", range(33))
def test_bounds_certify_only_quiet_checks(case):
    est, X, y, weights = _cases()[case]
    y = y.astype(np.float64)
    posterior, model = est.posterior_, est.model_
    terms = model.terms(X, y, weights, posterior.mean, with_value=False)
    new, _ = laplace_divide_out(posterior, model, X, y, weights, terms=terms)
    mean, covariance, message = linearisation_check(
        model, X, y, weights, posterior, new, terms
    )
    bounds = linearisation_bounds(
        model, X, weights, posterior, new, terms, new.eigenvalue_bound
    )
    if bounds is not None:
        assert message is None
        assert mean <= bounds[0] and covariance <= bounds[1]


def test_bounds_certify_small_deletions_from_large_data():
    certified = 0
    for est, X, y, weights in _cases():
        posterior, model = est.posterior_, est.model_
        y = y.astype(np.float64)
        terms = model.terms(X, y, weights, posterior.mean, with_value=False)
        new, _ = laplace_divide_out(posterior, model, X, y, weights, terms=terms)
        certified += (
            linearisation_bounds(
                model, X, weights, posterior, new, terms, new.eigenvalue_bound
            )
            is not None
        )
    assert certified >= 15
