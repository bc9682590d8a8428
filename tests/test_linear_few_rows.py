"""Fewer rows than features: fit and forget equal BayesianRidge.

- ``fit`` on 1-5 rows matches BayesianRidge (the Gram matrix's round-off
  eigenvalues beyond its rank, ``d u ||G||`` each, must not count as
  parameters, and the residual of rows that interpolate is not a difference);
- forgetting down to 1-2 rows matches a refit, within ``estimated_error``
  whenever the report says exact;
- ``compensated=True`` forgets down to one row are accepted and exact.
"""

import warnings

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes, load_digits
from sklearn.linear_model import BayesianRidge

from sklunlearn.linear_model import BayesianLinearRegression


def _data(name, n=None):
    loader = {
        "breast_cancer": load_breast_cancer,
        "digits": load_digits,
        "diabetes": load_diabetes,
    }[name]
    X, y = loader(return_X_y=True)
    return X[:n], y[:n].astype(float)


def _relative(a, b):
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))


def _difference(est, ridge, X):
    """Largest relative difference of the fitted model from BayesianRidge's."""
    mean, std = est.predict(X, return_std=True)
    ridge_mean, ridge_std = ridge.predict(X, return_std=True)
    parts = [
        _relative(est.alpha_, ridge.alpha_),
        _relative(est.lambda_, ridge.lambda_),
        _relative(est.sigma_, ridge.sigma_),
        _relative(std, ridge_std),
    ]
    if np.max(np.abs(ridge.coef_)) > 1e-8:  # y = 0 leaves coefficients of round-off
        parts += [_relative(est.coef_, ridge.coef_), _relative(mean, ridge_mean)]
    return max(parts)


@pytest.mark.parametrize("name", ["breast_cancer", "digits", "diabetes"])
@pytest.mark.parametrize("fit_intercept", [False, True])
@pytest.mark.parametrize("n_rows", [1, 2, 3, 5])
def test_fit_on_few_rows_is_bayesian_ridge(name, fit_intercept, n_rows):
    X, y = _data(name)
    rng = np.random.default_rng(n_rows + 10 * fit_intercept)
    for _ in range(8):
        rows = rng.choice(len(y), n_rows, replace=False)
        ridge = BayesianRidge(fit_intercept=fit_intercept).fit(X[rows], y[rows])
        est = BayesianLinearRegression(fit_intercept=fit_intercept).fit(X[rows], y[rows])
        assert _difference(est, ridge, X[:20]) < 1e-8, rows


def test_the_reported_rows_fit():
    """Single rows whose round-off eigenvalues once counted as parameters."""
    for name, row in [("breast_cancer", 567), ("diabetes", 377)]:
        X, y = _data(name)
        ridge = BayesianRidge(fit_intercept=False).fit(X[[row]], y[[row]])
        est = BayesianLinearRegression(fit_intercept=False).fit(X[[row]], y[[row]])
        assert _difference(est, ridge, X[:20]) < 1e-9


def test_two_rows_with_equal_targets_fit():
    X, y = _data("breast_cancer")
    for label in (0.0, 1.0):
        rows = np.flatnonzero(y == label)[:2]
        ridge = BayesianRidge(fit_intercept=False).fit(X[rows], y[rows])
        est = BayesianLinearRegression(fit_intercept=False).fit(X[rows], y[rows])
        assert _difference(est, ridge, X[:20]) < 1e-8


def _forget_all_but(X, y, keep, seed, **params):
    est = BayesianLinearRegression(**params).fit(X, y)
    rest = np.setdiff1d(np.arange(len(y)), keep)
    forget = np.random.default_rng(seed).permutation(rest)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.partial_unfit(X[forget], y[forget])
    return est


def test_forget_to_one_digits_row_equals_the_refit():
    """A forget down to one row reports an estimate at least its error."""
    X, y = _data("digits", 1500)
    est = _forget_all_but(X, y, [745], 1, fit_intercept=False)
    ridge = BayesianRidge(fit_intercept=False).fit(X[[745]], y[[745]])
    assert est.forget_report_.exact
    assert _difference(est, ridge, X[:20]) < 1e-9


@pytest.mark.parametrize("name", ["breast_cancer", "digits", "diabetes"])
@pytest.mark.parametrize("n_keep", [1, 2])
@pytest.mark.parametrize("compensated", [False, True])
@pytest.mark.parametrize("fit_intercept", [False, True])
def test_forget_to_few_rows_is_within_the_estimate(
    name, n_keep, compensated, fit_intercept
):
    """Against our own refit the estimate must hold; against BayesianRidge, add what
    BayesianRidge's own round-off contributes (our refit's distance from it)."""
    X, y = _data(name, 600)
    rng = np.random.default_rng(n_keep + 2 * compensated + 4 * fit_intercept)
    for seed in range(5):
        keep = rng.choice(len(y), n_keep, replace=False)
        est = _forget_all_but(
            X, y, keep, seed, fit_intercept=fit_intercept, compensated=compensated
        )
        refit = BayesianLinearRegression(fit_intercept=fit_intercept)
        refit.fit(X[keep], y[keep])
        ridge = BayesianRidge(fit_intercept=fit_intercept).fit(X[keep], y[keep])
        report = est.forget_report_
        assert _difference(refit, ridge, X[:20]) < 1e-8
        if compensated:
            assert report.exact, keep
        if report.exact:
            error = _difference(est, refit, X[:20])
            assert error <= report.estimated_error, (keep, error, report)
            assert _difference(est, ridge, X[:20]) <= (
                report.estimated_error + _difference(refit, ridge, X[:20])
            )


@pytest.mark.parametrize("keep", [0, 1, 2, 3, 4])
def test_compensated_forget_to_one_diabetes_row_is_accepted(keep):
    """Compensated statistics forget down to one row, exactly."""
    X, y = _data("diabetes")
    est = _forget_all_but(X, y, [keep], 0, fit_intercept=False, compensated=True)
    ridge = BayesianRidge(fit_intercept=False).fit(X[[keep]], y[[keep]])
    assert est.forget_report_.exact
    assert _difference(est, ridge, X[:20]) < 1e-9


def test_compensated_forget_to_one_digits_row_is_accepted():
    X, y = _data("digits", 1500)
    est = _forget_all_but(X, y, [745], 0, fit_intercept=False, compensated=True)
    ridge = BayesianRidge(fit_intercept=False).fit(X[[745]], y[[745]])
    assert est.forget_report_.exact
    assert _difference(est, ridge, X[:20]) < 1e-9


def test_a_partial_forget_keeps_the_rows_rank():
    """Forgetting half a row's weight leaves it: its direction must not be zeroed,
    although the statistics count the row as gone."""
    X, y = _data("diabetes", 3)
    weights = np.array([1.0, 1.0, 2.0])
    est = BayesianLinearRegression(fit_intercept=False).fit(X, y, sample_weight=weights)
    est.partial_unfit(X[2:], y[2:], sample_weight=[1.0])
    refit = BayesianLinearRegression(fit_intercept=False).fit(X, y)
    assert est.forget_report_.exact
    np.testing.assert_allclose(est.coef_, refit.coef_, rtol=1e-8)
    np.testing.assert_allclose(est.alpha_, refit.alpha_, rtol=1e-8)
