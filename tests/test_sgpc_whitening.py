"""SparseGPClassifier's whitening with an ill-conditioned ``K_ZZ``.

The classifier's features ``a(x) = L^-1 k_Z(x)`` are products with an
explicit ``L^-1`` (:class:`~sklunlearn.unlearning.InducingPointPredictor`,
the Laplace evidence), which cost SparseGPRegressor its Nystrom residuals
``k_ii - |a_i|^2``. The classifier has no such residual (no conditional
variance; the latent variance ``a' Sigma a`` is a sum of squares) and its
jitter is at least ``1e-8 mean(diag K_ZZ)``, so ``cond(L) <= sqrt(1 + m /
1e-8)``: these tests pin, in its exact-GP limit (``inducing_points=X``, dense
rows, a large amplitude and a long length scale), that its latent moments,
probabilities, evidence and gradient agree with a backward-stable computation
(forward substitution with ``L``) of the same model, and that a row forgotten
alone lands where it lands in a block.
"""

import warnings

import numpy as np
import pytest
from scipy import linalg
from scipy.special import expit
from sklearn.gaussian_process import GaussianProcessClassifier
from sklearn.gaussian_process.kernels import RBF
from sklearn.gaussian_process.kernels import ConstantKernel as C
from threadpoolctl import threadpool_limits

from sklunlearn.exceptions import UnlearningWarning
from sklunlearn.gaussian_process import SparseGPClassifier
from sklunlearn.gaussian_process._sgpc_evidence import laplace_evidence

# (amplitude, length scale): K_ZZ of the 150 dense rows is singular but for the jitter.
SETTINGS = [(1.0, 1.0), (1e4, 3.0)]


@pytest.fixture(autouse=True)
def one_blas_thread():
    with threadpool_limits(1):
        yield


def _dense(n=150):
    rng = np.random.RandomState(0)
    X = np.sort(rng.uniform(-3, 3, (n, 1)), axis=0)
    y = (np.sin(2 * X[:, 0]) + 0.5 * rng.randn(n) > 0).astype(int)
    return X, y


def _kernel(amplitude, length_scale):
    return C(amplitude, "fixed") * RBF(length_scale, "fixed")


def _reference(kernel, Z, X, t, jitter, X_test):
    """Whitened Laplace fit solved with ``L`` (forward substitution), not ``L^-1``.

    Returns the latent mean and variance at ``X_test``, the Laplace log
    evidence, and ``L`` (``K_ZZ + jitter mean(diag K_ZZ) I = L L'``).
    """
    K = kernel(Z)
    K[np.diag_indices_from(K)] += jitter * np.mean(np.diag(K))
    L = linalg.cholesky(K, lower=True)
    A = linalg.solve_triangular(L, kernel(Z, X), lower=True).T
    v = np.zeros(Z.shape[0])
    for _ in range(100):  # Newton on the whitened mode (R&W 2006, Algorithm 3.1)
        pi = expit(A @ v)
        B = np.eye(v.shape[0]) + A.T @ ((pi * (1 - pi))[:, None] * A)
        step = linalg.cho_solve(linalg.cho_factor(B), A.T @ (t - pi) - v)
        v += step
        if np.max(np.abs(step)) <= 1e-14 * (1 + np.max(np.abs(v))):
            break
    f = A @ v
    pi = expit(f)
    R = linalg.cholesky(
        np.eye(v.shape[0]) + A.T @ ((pi * (1 - pi))[:, None] * A), lower=True
    )
    evidence = (
        t @ f - np.sum(np.logaddexp(0.0, f)) - 0.5 * v @ v - np.sum(np.log(np.diag(R)))
    )
    A_test = linalg.solve_triangular(L, kernel(Z, X_test), lower=True)
    S = linalg.solve_triangular(R, A_test, lower=True)
    return A_test.T @ v, np.einsum("ij,ij->j", S, S), evidence


def _fit(kernel, X, y, **params):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no flatness or other warning either
        return SparseGPClassifier(kernel=kernel, inducing_points=X, **params).fit(X, y)


@pytest.mark.parametrize("amplitude, length_scale", SETTINGS)
def test_exact_limit_latent_moments_match_forward_substitution(amplitude, length_scale):
    X, y = _dense()
    kernel = _kernel(amplitude, length_scale)
    estimator = _fit(kernel, X, y)
    X_test = np.vstack([np.linspace(-2.9, 2.9, 41)[:, None], X[::10]])
    mean, variance = estimator.model_.predictor.moments(
        X_test, estimator.whitened_posterior_
    )
    jitter = estimator._inducing_factor.jitter
    expected_mean, expected_variance, evidence = _reference(
        kernel, X, X, y.astype(float), jitter, X_test
    )
    assert jitter == 1e-8  # the smallest: K_ZZ is as ill-conditioned as it can be
    assert np.all(variance > 0.01)
    np.testing.assert_allclose(variance, expected_variance, rtol=1e-7)
    np.testing.assert_allclose(mean, expected_mean, rtol=0, atol=1e-7)
    proba = expit(expected_mean / np.sqrt(1 + np.pi / 8 * expected_variance))
    np.testing.assert_allclose(
        estimator.predict_proba(X_test)[:, 1], proba, rtol=0, atol=1e-9
    )
    assert estimator.log_marginal_likelihood_value_ == pytest.approx(evidence, abs=1e-8)
    # The exact GP's Laplace evidence, apart from what the jitter changes.
    exact = GaussianProcessClassifier(kernel=kernel, optimizer=None).fit(X, y)
    assert estimator.log_marginal_likelihood_value_ == pytest.approx(
        exact.log_marginal_likelihood_value_, abs=1e-4
    )


@pytest.mark.parametrize("amplitude, length_scale", SETTINGS)
def test_exact_limit_evidence_gradient_matches_differences(amplitude, length_scale):
    X, y = _dense(100)
    t = y.astype(float)
    kernel = C(amplitude) * RBF(length_scale)
    evidence = laplace_evidence(kernel, X, X, [t], np.ones(t.shape[0]), 1e-8)
    step, differences = 1e-4, []
    for i in range(kernel.theta.shape[0]):
        values = []
        for sign in (1, -1):
            theta = kernel.theta.copy()
            theta[i] += sign * step
            values.append(_reference(kernel.clone_with_theta(theta), X, X, t, 1e-8, X)[2])
        differences.append((values[0] - values[1]) / (2 * step))
    assert evidence.value == pytest.approx(
        _reference(kernel, X, X, t, 1e-8, X)[2], abs=1e-8
    )
    np.testing.assert_allclose(evidence.gradient, differences, rtol=1e-7, atol=1e-7)


def test_a_row_forgotten_alone_lands_where_it_lands_in_a_block():
    """Forget rows 50..52 in one block, or 51..52 and then 50 alone: the
    Laplace steps differ (two steps, not one) by far less than either's error."""
    X, y = _dense(200)
    Z = np.linspace(-3, 3, 120)[:, None]  # close inducing points, none a row
    kernel = _kernel(1e4, 3.0)
    X_test = np.linspace(-2.9, 2.9, 41)[:, None]

    def forgotten(*blocks):
        estimator = SparseGPClassifier(kernel=kernel, inducing_points=Z).fit(X, y)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UnlearningWarning)
            for rows in blocks:
                estimator.partial_unfit(X[rows], y[rows])
        return estimator.predict_proba(X_test)[:, 1]

    block = forgotten(slice(50, 53))
    alone = forgotten(slice(51, 53), slice(50, 51))
    keep = np.ones(200, dtype=bool)
    keep[50:53] = False
    refit = SparseGPClassifier(kernel=kernel, inducing_points=Z).fit(X[keep], y[keep])
    error = np.max(np.abs(block - refit.predict_proba(X_test)[:, 1]))
    assert 1e-5 < error < 1e-2  # the one-step Laplace divide-out's own error
    np.testing.assert_allclose(alone, block, rtol=0, atol=1e-9)
