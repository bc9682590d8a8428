"""About as many rows as features, on ill-conditioned raw data.

The residual of an interpolating fit can be summed from positive terms, each divided by
an eigenvalue of the Gram matrix; with raw breast_cancer (29 rows, 30 features) those
eigenvalues carry the eigensolver's round-off of the largest one, so each iterate takes
the more accurate of that sum and the difference of statistics.
At 29 rows the eigensolver cannot tell the null direction from a real one below its
round-off, and zeroing its computed eigenvector's X'y moved coef_ by 1.2e-7: the
eigenvalues beyond the rank bound are now zeroed in a basis orthogonal to X'y.
"""

import warnings

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import BayesianRidge

from sklunlearn.linear_model import BayesianLinearRegression


@pytest.fixture(scope="module")
def rows():
    X, y = load_breast_cancer(return_X_y=True)
    return X, y.astype(float)


@pytest.mark.parametrize("n_rows", [28, 29, 30])
@pytest.mark.parametrize("compensated", [False, True])
def test_fit_with_about_as_many_rows_as_features_matches_bayesian_ridge(
    rows, n_rows, compensated
):
    X, y = rows
    kept = np.random.default_rng(0).choice(len(X), n_rows, replace=False)
    ridge = BayesianRidge(fit_intercept=False).fit(X[kept], y[kept])
    est = BayesianLinearRegression(fit_intercept=False, compensated=compensated)
    est.fit(X[kept], y[kept])
    np.testing.assert_allclose(est.alpha_, ridge.alpha_, rtol=1e-8)
    np.testing.assert_allclose(est.lambda_, ridge.lambda_, rtol=1e-8)
    _, std = est.predict(X[:50], return_std=True)
    _, ridge_std = ridge.predict(X[:50], return_std=True)
    np.testing.assert_allclose(std, ridge_std, rtol=1e-8)
    # At 29 rows the null direction and a real one (eigenvalues 0 and 4e-8) are both
    # within the eigensolver's round-off: zeroing the X'y of either mixed eigenvector
    # drops data.
    error = np.linalg.norm(est.coef_ - ridge.coef_) / np.linalg.norm(ridge.coef_)
    assert error <= 1e-9


@pytest.mark.parametrize("compensated", [False, True])
def test_forget_down_to_them_is_exact_within_its_estimate(rows, compensated):
    X, y = rows
    kept = np.random.default_rng(0).choice(len(X), 29, replace=False)
    forget = np.setdiff1d(np.arange(len(X)), kept)
    est = BayesianLinearRegression(fit_intercept=False, compensated=compensated)
    est.fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.partial_unfit(X[forget], y[forget])
    refit = BayesianLinearRegression(fit_intercept=False, compensated=compensated)
    refit.fit(X[kept], y[kept])
    report = est.forget_report_
    error = max(abs(est.alpha_ / refit.alpha_ - 1), abs(est.lambda_ / refit.lambda_ - 1))
    if report.exact:
        assert error <= report.estimated_error
    else:
        assert report.estimated_error > 1e-8
