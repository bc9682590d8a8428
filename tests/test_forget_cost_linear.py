"""The evidence fixed point on a tridiagonal form (no eigendecomposition per forget).

The kernels are checked against dense NumPy; the estimator's tridiagonal route
against its eigendecomposition route (forced by disabling the certificate) and
against scikit-learn's BayesianRidge refitted on the remaining rows.
"""

import numpy as np
import pytest
from scipy.linalg import lapack
from sklearn.linear_model import BayesianRidge

import sklunlearn.linear_model._bayesian_linear as bayesian_linear
from sklunlearn._numba.tridiagonal import apply_reflectors, shifted_tridiagonal
from sklunlearn.linear_model import BayesianLinearRegression
from sklunlearn.linear_model._bayesian_linear import _TridiagonalProblem
from sklunlearn.linear_model._sufficient_statistics import certified_tridiagonal

FITTED = ("coef_", "intercept_", "alpha_", "lambda_", "scores_", "n_iter_")


def _tridiagonalised(d, seed=0):
    rng = np.random.RandomState(seed)
    A = rng.randn(2 * d + 3, d)
    gram, xty = A.T @ A, rng.randn(d)
    bordered = np.zeros((d + 1, d + 1), order="F")
    bordered[1:, 1:] = gram
    bordered[1:, 0] = xty
    reflectors, diagonal, off, tau, _ = lapack.dsytrd(bordered, lower=1)
    return gram, xty, reflectors[1:, :-1], diagonal[1:], off[1:], off[0], tau


@pytest.mark.parametrize("d", [1, 2, 7, 60])
def test_reflectors_tridiagonalise_the_gram_matrix_and_align_xty(d):
    gram, xty, reflectors, diagonal, off, norm, tau = _tridiagonalised(d)
    Q = apply_reflectors(reflectors, tau, np.eye(d))
    T = np.diag(diagonal) + np.diag(off, 1) + np.diag(off, -1)
    scale = np.abs(gram).max()
    np.testing.assert_allclose(Q.T @ Q, np.eye(d), atol=1e-13)
    np.testing.assert_allclose(Q.T @ gram @ Q, T, atol=1e-13 * scale)
    np.testing.assert_allclose(Q.T @ xty, np.eye(d)[0] * norm, atol=1e-13 * abs(norm))
    v = np.random.RandomState(1).randn(d)
    np.testing.assert_allclose(apply_reflectors(reflectors, tau, v), Q @ v, atol=1e-13)


@pytest.mark.parametrize("shift", [1e-3, 0.7, 50.0])
def test_shifted_tridiagonal_against_dense_algebra(shift):
    _, _, _, diagonal, off, _, _ = _tridiagonalised(30, seed=2)
    T = np.diag(diagonal) + np.diag(off, 1) + np.diag(off, -1)
    s = np.linalg.eigvalsh(T)
    rhs = np.random.RandomState(3).randn(30)
    negative, solution, effective, log_det = shifted_tridiagonal(diagonal, off, shift, rhs)
    assert negative == 0
    np.testing.assert_allclose(solution, np.linalg.solve(T + shift * np.eye(30), rhs))
    assert effective == pytest.approx(np.sum(s / (s + shift)), rel=1e-12)
    assert log_det == pytest.approx(np.sum(np.log(s + shift)), rel=1e-12)
    # Sturm counts: eigenvalues below -shift for shifts between the eigenvalues
    for k in range(0, 30, 7):
        cut = 0.5 * (s[k] + s[k + 1]) if k + 1 < 30 else s[-1] + 1.0
        assert shifted_tridiagonal(diagonal, off, -cut, rhs)[0] == k + 1


def _rows(n, d, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.randn(n, d) * rng.uniform(0.5, 3.0, size=d) + rng.randn(d)
    y = X @ rng.randn(d) + 0.5 * rng.randn(n) + 2.0
    return X, y


def _forgotten(monkeypatch, eigen, X, y, k, weights=None, **params):
    if eigen:
        monkeypatch.setattr(bayesian_linear, "certified_tridiagonal", lambda *a: None)
    est = BayesianLinearRegression(**params).fit(X, y, sample_weight=weights)
    est.partial_unfit(X[:k], y[:k], None if weights is None else weights[:k])
    monkeypatch.undo()
    return est


@pytest.mark.parametrize("d", [2, 9, 70])
@pytest.mark.parametrize(
    "params", [{}, {"fit_intercept": False}, {"compute_score": True, "tol": 1e-8}]
)
def test_tridiagonal_route_equals_the_eigendecomposition(monkeypatch, d, params):
    X, y = _rows(3 * d + 40, d, seed=d)
    weights = np.random.RandomState(d).uniform(0.5, 2.0, size=X.shape[0])
    tridiagonal = _forgotten(monkeypatch, False, X, y, 5, weights, **params)
    eigen = _forgotten(monkeypatch, True, X, y, 5, weights, **params)
    statistics = tridiagonal.sufficient_statistics_
    assert certified_tridiagonal(statistics, tridiagonal.fit_intercept) is not None
    for name in FITTED:
        np.testing.assert_allclose(
            getattr(tridiagonal, name), getattr(eigen, name), rtol=1e-10, atol=1e-12
        )
    np.testing.assert_allclose(
        tridiagonal.posterior_.precision, eigen.posterior_.precision, rtol=1e-10
    )
    ridge = BayesianRidge(**params).fit(X[5:], y[5:], sample_weight=weights[5:])
    np.testing.assert_allclose(tridiagonal.coef_, ridge.coef_, rtol=1e-6)
    assert tridiagonal.n_iter_ == ridge.n_iter_


def test_uncertified_gram_matrices_take_the_eigendecomposition(monkeypatch):
    """More features than rows left: singular, so the route must be psd_eigh's."""
    X, y = _rows(12, 20, seed=5)
    calls = []
    original = bayesian_linear.psd_eigh
    monkeypatch.setattr(
        bayesian_linear, "psd_eigh", lambda *a, **k: calls.append(1) or original(*a, **k)
    )
    est = BayesianLinearRegression().fit(X, y).partial_unfit(X[:3], y[:3])
    assert calls  # refused by the certificate
    statistics = est.sufficient_statistics_
    assert certified_tridiagonal(statistics, True) is None
    ridge = BayesianRidge().fit(X[3:], y[3:])
    np.testing.assert_allclose(est.coef_, ridge.coef_, rtol=1e-6, atol=1e-8)


def test_a_nearly_flat_evidence_falls_back_to_the_eigendecomposition(monkeypatch):
    """A prior so strong that gamma ~ 0 would cancel on the tridiagonal form."""
    X, y = _rows(200, 6, seed=6)
    params = {"lambda_1": 1e12, "lambda_2": 1e-6}
    tridiagonal = _forgotten(monkeypatch, False, X, y, 10, **params)
    eigen = _forgotten(monkeypatch, True, X, y, 10, **params)
    for name in FITTED:
        np.testing.assert_allclose(
            getattr(tridiagonal, name), getattr(eigen, name), rtol=1e-10, atol=1e-14
        )
    problem = _TridiagonalProblem(
        certified_tridiagonal(tridiagonal.sufficient_statistics_, True), 190.0
    )
    assert problem.point(1.0, 1e12) is None


def test_the_l1_rule_is_decided_as_on_the_coefficients():
    X, y = _rows(300, 40, seed=7)
    statistics = BayesianLinearRegression().fit(X, y).sufficient_statistics_
    problem = _TridiagonalProblem(certified_tridiagonal(statistics, True), 300.0)
    rng = np.random.RandomState(8)
    for scale in np.geomspace(1e-6, 1.0, 40):
        a, b = rng.randn(40), rng.randn(40)
        b = a + scale * b / np.linalg.norm(b)
        exact = np.abs(problem.coefficients(a) - problem.coefficients(b)).sum()
        for tol in (0.5 * exact, 0.999 * exact, 1.001 * exact, 2 * exact):
            assert problem.converged(a, b, tol) == (exact < tol)


def test_noise_free_targets_take_the_eigendecomposition(monkeypatch):
    """A residual that is round-off is computed as the eigendecomposition route does."""
    rng = np.random.RandomState(0)
    X = rng.randn(30, 20)
    y = X @ rng.randn(20)
    tridiagonal = _forgotten(monkeypatch, False, X, y, 1)
    eigen = _forgotten(monkeypatch, True, X, y, 1)
    for name in FITTED:
        np.testing.assert_allclose(
            getattr(tridiagonal, name), getattr(eigen, name), rtol=1e-10
        )
