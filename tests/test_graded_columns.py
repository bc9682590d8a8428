"""Columns on very different scales: the evidence reads every eigenvalue of the Gram matrix.

A normwise eigensolver errs by ``d u ||G||`` in each eigenvalue, so with one column 1e8
times the others the small eigenvalues (and with them alpha_, lambda_, the mean and the
predictive std) were wrong while ``exact=True`` (scikit-learn's BayesianRidge, from the
SVD of X, was right). These compare with BayesianRidge and with an SVD of the rows.
"""

import decimal
import warnings
from decimal import Decimal

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import BayesianRidge

from sklunlearn.linear_model import BayesianLinearRegression
from sklunlearn.linear_model._sufficient_statistics import graded_eigh, is_graded


def relative(a, b):
    return float(np.max(np.abs(np.asarray(a) - b)) / np.max(np.abs(b)))


@pytest.mark.parametrize("scale", [1e4, 1e6, 1e8])
@pytest.mark.parametrize("fit_intercept", [True, False])
def test_a_column_on_a_large_scale_matches_bayesian_ridge_after_a_forget(
    scale, fit_intercept
):
    rng = np.random.RandomState(0)
    X = rng.randn(200, 3) * [1.0, 1.0, scale]
    y = X @ [1.0, -2.0, 0.5 / scale] + 0.1 * rng.randn(200)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        est = BayesianLinearRegression(fit_intercept=fit_intercept).fit(X, y)
        est.partial_unfit(X[:50], y[:50])
    ref = BayesianRidge(fit_intercept=fit_intercept).fit(X[50:], y[50:])
    assert est.forget_report_.exact
    # Graded columns must not lose the small eigenvalues the evidence reads.
    assert est.alpha_ == pytest.approx(ref.alpha_, rel=1e-8)
    assert est.lambda_ == pytest.approx(ref.lambda_, rel=1e-8)
    mean, std = est.predict(X, return_std=True)
    ref_mean, ref_std = ref.predict(X, return_std=True)
    assert relative(mean, ref_mean) < 1e-8
    assert relative(std, ref_std) < 1e-8


def test_raw_breast_cancer_features_match_bayesian_ridge():
    # Feature scales from 1e-3 to 1e3: the coefficients were 1e-8 off, estimated 5e-13.
    X, y = load_breast_cancer(return_X_y=True)
    est = BayesianLinearRegression().fit(X, y)
    est.partial_unfit(X[:100], y[:100])
    ref = BayesianRidge().fit(X[100:], y[100:])
    assert relative(est.coef_, ref.coef_) < 1e-10
    assert est.lambda_ == pytest.approx(ref.lambda_, rel=1e-10)
    assert est.alpha_ == pytest.approx(ref.alpha_, rel=1e-10)


@settings(max_examples=60, deadline=None)
@given(
    d=st.integers(2, 12),
    extra=st.integers(1, 40),
    decades=st.floats(4.0, 6.0),
    seed=st.integers(0, 2**31 - 1),
)
def test_graded_eigenvalues_have_relative_accuracy(d, extra, decades, seed):
    rng = np.random.RandomState(seed)
    X = rng.randn(d + extra, d) * np.logspace(0, decades, d)
    gram = X.T @ X
    result = graded_eigh(gram)
    assert result is not None
    eigenvalues, eigenvectors = result
    # The SVD of X is accurate to u ||X|| / sigma, about 1e-9 here; eigh of the Gram
    # matrix only to d u ||G|| / sigma^2, 1e-4 and worse.
    expected = np.sort(np.linalg.svd(X, compute_uv=False) ** 2)
    assert_allclose(eigenvalues, expected, rtol=1e-7)
    assert_allclose(eigenvectors.T @ eigenvectors, np.eye(d), atol=1e-10)


@pytest.mark.parametrize(
    "extra, fit_intercept",
    [(3.0, True), (0.1, True), (1.0 / 3.0, True), (0.0, False)],
    ids=["constant 3", "constant 0.1", "constant 1/3", "zero column"],
)
def test_a_constant_or_zero_column_does_not_switch_the_graded_path_off(
    extra, fit_intercept
):
    # A centred constant column is zero up to round-off, which may be of either sign:
    # alpha_ was 1.24 against 107.2 with a constant 3.0, 0.35 with a zero column.
    rng = np.random.RandomState(0)
    X = rng.randn(200, 3) * [1.0, 1.0, 1e8]
    y = X @ [1.0, -2.0, 0.5e-8] + 0.1 * rng.randn(200)
    X = np.c_[X, np.full(200, extra)]
    est = BayesianLinearRegression(fit_intercept=fit_intercept).fit(X, y)
    ref = BayesianRidge(fit_intercept=fit_intercept).fit(X, y)
    assert est.alpha_ == pytest.approx(ref.alpha_, rel=1e-8)
    assert relative(est.predict(X), ref.predict(X)) < 1e-8


def test_a_singular_graded_gram_has_a_zero_eigenvalue_and_accurate_others():
    # The pivoted Cholesky factor of a singular A exists: graded_eigh no longer leaves
    # such a Gram matrix to the normwise solver, which loses the small eigenvalue.
    X = np.array([[1.0, 1e5, 2.0], [2.0, 3e5, 4.0], [0.5, 1e5, 1.0]])
    gram = X.T @ X  # columns 0 and 2 are parallel; every entry is exact in float64
    assert is_graded(gram)
    result = graded_eigh(gram)
    assert result is not None
    eigenvalues, eigenvectors = result
    # X X' = Y Y' with Y = [5^1/2 x_0, x_1]: the nonzero eigenvalues are those of Y'Y,
    # whose trace and determinant are exact rationals.
    with decimal.localcontext() as context:
        context.prec = 50
        a, b, c = (Decimal(float(v)) for v in (gram[0, 0], gram[1, 1], gram[0, 1]))
        trace, det = 5 * a + b, 5 * (a * b - c * c)
        root = (trace * trace - 4 * det).sqrt()
        expected = [float(2 * det / (trace + root)), float((trace + root) / 2)]
    assert eigenvalues[0] == 0.0
    assert_allclose(eigenvalues[1:], expected, rtol=1e-13)
    assert_allclose(
        eigenvectors[:, 0],
        np.array([2.0, 0.0, -1.0]) / np.sqrt(5.0) * np.sign(eigenvectors[0, 0]),
        atol=1e-15,
    )
    assert_allclose(eigenvectors.T @ eigenvectors, np.eye(3), atol=1e-15)
