"""Graded columns and fewer rows than features: a singular Gram matrix, accurate anyway.

The Cholesky factor of a singular Gram matrix does not exist, and the normwise
eigensolver's ``d u ||G||`` in each eigenvalue swamps the small nonzero ones when the
columns differ hugely in scale. These compare with BayesianRidge's fixed-point
iteration carried out in 50-digit decimal arithmetic, from the same float64 data.
"""

import decimal
import pickle
from decimal import Decimal

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose

from sklunlearn.exceptions import NotPositiveDefiniteError
from sklunlearn.linear_model import BayesianLinearRegression
from sklunlearn.linear_model._sufficient_statistics import graded_eigh, is_graded

DIGITS = 50


def _decimal(array):
    return [[Decimal(float(v)) for v in row] for row in np.atleast_2d(array)]


def _inverse(matrix):
    """Gauss-Jordan elimination with partial pivoting, in the current decimal context."""
    n = len(matrix)
    rows = [
        row[:] + [Decimal(int(i == j)) for j in range(n)] for i, row in enumerate(matrix)
    ]
    for col in range(n):
        pivot = max(range(col, n), key=lambda r: abs(rows[r][col]))
        rows[col], rows[pivot] = rows[pivot], rows[col]
        head = rows[col][col]
        rows[col] = [v / head for v in rows[col]]
        for r in range(n):
            if r != col and rows[r][col] != 0:
                f = rows[r][col]
                rows[r] = [a - f * b for a, b in zip(rows[r], rows[col], strict=True)]
    return [row[n:] for row in rows]


def reference_bayesian_ridge(X, y, fit_intercept, max_iter=300, tol=1e-3):
    """BayesianRidge's iteration (its defaults) at DIGITS digits: ``(alpha, lambda, coef,
    intercept)``.

    With n rows, coef = X'(XX' + (lambda/alpha) I)^-1 y (scikit-learn's own formula for
    n < d), and gamma = sum_k s_k / (s_k + c) = n - c tr((XX' + c I)^-1) over the
    eigenvalues s_k of XX', so that no eigendecomposition is needed.
    """
    with decimal.localcontext() as context:
        context.prec = DIGITS
        n, d = X.shape
        rows, targets = _decimal(X), _decimal(y)[0]
        x_mean = [sum(row[j] for row in rows) / n for j in range(d)]
        y_mean = sum(targets) / n
        variance = sum((v - y_mean) ** 2 for v in targets) / n
        if fit_intercept:
            rows = [[v - m for v, m in zip(row, x_mean, strict=True)] for row in rows]
            targets = [v - y_mean for v in targets]
        gram = [[sum(a * b for a, b in zip(r, s, strict=True)) for s in rows] for r in rows]
        small = Decimal(1e-6)

        def update(alpha, lambda_):
            c = lambda_ / alpha
            inverse = _inverse(
                [[g + c * (i == j) for j, g in enumerate(r)] for i, r in enumerate(gram)]
            )
            z = [sum(a * b for a, b in zip(r, targets, strict=True)) for r in inverse]
            coef = [sum(rows[i][k] * z[i] for i in range(n)) for k in range(d)]
            fitted = [sum(a * b for a, b in zip(r, coef, strict=True)) for r in rows]
            sse = sum((a - b) ** 2 for a, b in zip(targets, fitted, strict=True))
            gamma = n - c * sum(inverse[i][i] for i in range(n))
            return coef, sse, gamma

        alpha = 1 / (variance + Decimal(float(np.finfo(np.float64).eps)))
        lambda_ = Decimal(1)
        coef_old = None
        for iteration in range(max_iter):
            coef, sse, gamma = update(alpha, lambda_)
            lambda_ = (gamma + 2 * small) / (sum(v * v for v in coef) + 2 * small)
            alpha = (n - gamma + 2 * small) / (sse + 2 * small)
            if iteration and sum(
                abs(a - b) for a, b in zip(coef_old, coef, strict=True)
            ) < Decimal(tol):
                break
            coef_old = coef
        coef = update(alpha, lambda_)[0]
        intercept = (
            y_mean - sum(a * b for a, b in zip(x_mean, coef, strict=True))
            if fit_intercept
            else 0
        )
        return (
            float(alpha),
            float(lambda_),
            np.array([float(v) for v in coef]),
            float(intercept),
        )


def _graded_data(seed, n_rows, n_features=20, decades=5.0):
    rng = np.random.RandomState(seed)
    scales = np.logspace(0, decades, n_features)
    X = rng.randn(n_rows, n_features) * scales
    y = X @ (rng.randn(n_features) / scales) + 0.1 * rng.randn(n_rows)
    return X, y


def _relative(a, b):
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))


def _error(est, reference, X):
    """Largest relative error of alpha_, lambda_, coef_ and the predictions."""
    alpha, lambda_, coef, intercept = reference
    return max(
        _relative(est.alpha_, alpha),
        _relative(est.lambda_, lambda_),
        _relative(est.coef_, coef),
        _relative(est.predict(X), X @ coef + intercept),
    )


def _assert_matches(est, reference):
    alpha, lambda_, coef, intercept = reference
    assert est.alpha_ == pytest.approx(alpha, rel=1e-9)
    assert est.lambda_ == pytest.approx(lambda_, rel=1e-9)
    assert _relative(est.coef_, coef) < 1e-9
    assert est.intercept_ == pytest.approx(intercept, rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("fit_intercept", [True, False])
def test_fit_on_fewer_rows_than_graded_features_is_bayesian_ridge(seed, fit_intercept):
    X, y = _graded_data(seed, n_rows=18)
    est = BayesianLinearRegression(fit_intercept=fit_intercept).fit(X, y)
    _assert_matches(est, reference_bayesian_ridge(X, y, fit_intercept))


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("fit_intercept", [True, False])
def test_forget_to_fewer_rows_than_graded_features_is_within_the_estimate(
    seed, fit_intercept
):
    X, y = _graded_data(seed, n_rows=30)
    est = BayesianLinearRegression(fit_intercept=fit_intercept).fit(X, y)
    est.partial_unfit(X[18:], y[18:])
    reference = reference_bayesian_ridge(X[:18], y[:18], fit_intercept)
    _assert_matches(est, reference)
    assert _error(est, reference, X) <= est.forget_report_.estimated_error


def _decimal_eigenvalues(matrix, sweeps=30):
    """Eigenvalues of a symmetric matrix by cyclic Jacobi rotations (Golub & Van Loan 2013,
    Alg. 8.5.3), in the current decimal context."""
    a = [row[:] for row in matrix]
    n = len(a)
    # An off-diagonal entry this small beside its diagonal moves no eigenvalue in the
    # working precision (Demmel & Veselic 1992, Sec. 4).
    negligible = Decimal(10) ** (5 - decimal.getcontext().prec)
    for _ in range(sweeps):
        rotated = False
        for p in range(n - 1):
            for q in range(p + 1, n):
                if abs(a[p][q]) <= negligible * (abs(a[p][p] * a[q][q])).sqrt():
                    continue
                rotated = True
                tau = (a[q][q] - a[p][p]) / (2 * a[p][q])
                sign = 1 if tau >= 0 else -1
                t = sign / (abs(tau) + (1 + tau * tau).sqrt())
                c = 1 / (1 + t * t).sqrt()
                s = t * c
                for k in range(n):
                    akp, akq = a[k][p], a[k][q]
                    a[k][p], a[k][q] = c * akp - s * akq, s * akp + c * akq
                for k in range(n):
                    apk, aqk = a[p][k], a[q][k]
                    a[p][k], a[q][k] = c * apk - s * aqk, s * apk + c * aqk
        if not rotated:
            break
    return sorted(a[i][i] for i in range(n))


@settings(max_examples=40, deadline=None)
@given(
    d=st.integers(3, 12),
    deficit=st.integers(1, 11),
    decades=st.floats(4.0, 6.0),
    seed=st.integers(0, 2**31 - 1),
)
def test_graded_eigh_of_a_singular_gram_has_relative_accuracy(d, deficit, decades, seed):
    rank = max(d - deficit, 1)
    rng = np.random.RandomState(seed)
    X = rng.randn(rank, d) * np.logspace(0, decades, d)
    gram = X.T @ X
    result = graded_eigh(gram)
    assert result is not None
    eigenvalues, eigenvectors = result
    assert_allclose(eigenvectors.T @ eigenvectors, np.eye(d), atol=1e-12)
    scale = np.sqrt(np.diagonal(gram))
    rebuilt = (eigenvectors * eigenvalues) @ eigenvectors.T
    assert (
        np.max(np.abs(rebuilt - gram) / np.outer(scale, scale))
        < 100 * d * np.finfo(float).eps
    )
    # The nonzero eigenvalues of X'X are those of XX' (rank x rank), from the same
    # float64 rows at DIGITS digits.
    with decimal.localcontext() as context:
        context.prec = DIGITS
        rows = _decimal(X)
        small = [
            [sum(a * b for a, b in zip(r, s, strict=True)) for s in rows] for r in rows
        ]
        expected = np.array([float(v) for v in _decimal_eigenvalues(small)])
    assert_allclose(eigenvalues[d - rank :], expected, rtol=1e-10)
    assert np.all(
        np.abs(eigenvalues[: d - rank]) <= d * np.finfo(float).eps * np.trace(gram)
    )


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("fit_intercept", [True, False])
def test_forgetting_a_row_never_learned_is_refused(seed, fit_intercept):
    # A learned row with one small-scale entry changed: its forget leaves a negative
    # eigenvalue below the nonzero ones that the normwise solver's round-off hides.
    X, y = _graded_data(seed, n_rows=18)
    est = BayesianLinearRegression(fit_intercept=fit_intercept, ledger=False).fit(X, y)
    before = pickle.dumps(est)
    changed = X[:1].copy()
    changed[0, 0] += 1e-3
    with pytest.raises(NotPositiveDefiniteError):
        est.partial_unfit(changed, y[:1])
    assert pickle.dumps(est) == before


def test_the_data_are_graded_and_singular():
    X, _ = _graded_data(0, n_rows=18)
    gram = X.T @ X
    assert is_graded(gram)
    assert np.linalg.matrix_rank(X) == 18 < X.shape[1]
