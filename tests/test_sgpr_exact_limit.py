"""SparseGPRegressor in its exact-GP limit (``inducing_points=X``, ``optimizer=None``).

With dense rows and a small noise variance ``K_ZZ`` is singular but for the
jitter, and the whitened features ``a_i = L^-1 k_i`` must be solved for, not
multiplied out with ``L^-1``: the product lost the Nystrom residuals
``k_ii - |a_i|^2`` (about 1e-12) to a round-off of 1e-7, which clipped
predictive variances to 0 and, divided by the noise variance, lifted the
collapsed "lower" bound up to 6 nats above the exact log marginal likelihood.
"""

import warnings

import numpy as np
import pytest
from scipy import linalg
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.gaussian_process.kernels import RBF
from sklearn.gaussian_process.kernels import ConstantKernel as C

from sklunlearn.exceptions import UnlearningWarning
from sklunlearn.gaussian_process import SparseGPRegressor
from sklunlearn.gaussian_process._bound import forward_substitution_rows, whitened_features

KERNEL = C(1.0) * RBF(2.0)


def _dense(n, noise_variance):
    rng = np.random.RandomState(0)
    X = np.sort(rng.uniform(-3, 3, (n, 1)), axis=0)
    return X, np.sin(X[:, 0]) + 1e-3 * rng.randn(n)


def _exact_limit(X, y, noise_variance, **params):
    return SparseGPRegressor(
        kernel=KERNEL,
        inducing_points=X,
        noise_variance=noise_variance,
        optimizer=None,
        **params,
    ).fit(X, y)


@pytest.mark.parametrize("n, noise_variance", [(300, 1e-5), (300, 1e-6), (100, 1e-6)])
def test_exact_limit_is_gaussian_process_regressor(n, noise_variance):
    """Near-noise-free data: the predictive stds must not collapse to zero and the
    bound must stay below the exact evidence, as GaussianProcessRegressor's."""
    X, y = _dense(n, noise_variance)
    X_test = np.linspace(-2.9, 2.9, 40)[:, None]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # and no round-off warning from predict
        sparse = _exact_limit(X, y, noise_variance)
        mean, std = sparse.predict(X_test, return_std=True)
    exact = GaussianProcessRegressor(kernel=KERNEL, alpha=noise_variance, optimizer=None)
    exact.fit(X, y)
    exact_mean, exact_std = exact.predict(X_test, return_std=True)
    assert np.all(std > 0)
    np.testing.assert_allclose(std, exact_std, rtol=1e-4)
    np.testing.assert_allclose(mean, exact_mean, rtol=0, atol=1e-8)
    # A lower bound, below by what the jitter (2e-12 here) costs, 1.5e-5 nats; the
    # two evidences' round-off is far below 1e-6 nats.
    lml = exact.log_marginal_likelihood_value_
    assert lml - 3e-4 <= sparse.log_marginal_likelihood_value_ <= lml + 1e-6


def test_nystrom_residuals_of_the_inducing_rows_are_those_of_the_jittered_kernel():
    """``k_ii - |a_i|^2`` of a row that is an inducing point is
    ``jitter * [K (K + jitter I)^-1]_ii`` in [0, jitter]; before: all 300 were
    negative, down to -9.5e-8."""
    X, y = _dense(300, 1e-6)
    sparse = _exact_limit(X, y, 1e-6)
    factor = sparse._inducing_factor
    K = KERNEL(X)
    jitter = factor.jitter * np.mean(np.diag(K)) * (1.0 + factor.growth)
    A = whitened_features(KERNEL, X, factor, X)
    residual = KERNEL.diag(X) - np.einsum("ij,ij->j", A, A)
    eigenvalues, vectors = np.linalg.eigh(K)
    eigenvalues = np.clip(eigenvalues, 0.0, None)
    expected = jitter * (vectors**2) @ (eigenvalues / (eigenvalues + jitter))
    np.testing.assert_allclose(residual, expected, rtol=0, atol=1e-13)
    assert np.all(residual >= 0)
    statistics = sparse.sufficient_statistics_
    trace = statistics.kdiag - np.trace(statistics.aa)
    assert 0 <= trace <= X.shape[0] * jitter


def test_forward_substitution_rows_solves_each_row_alone():
    rng = np.random.RandomState(0)
    for m in (1, 3, 4, 5, 8, 9, 33):  # below, at and past the blocks of four unknowns
        lower = np.tril(rng.randn(m, m)) + 3 * np.eye(m)
        read = lower.copy()
        read[np.triu_indices(m, 1)] = 7.0  # the strict upper triangle is not read
        K = rng.randn(37, m)  # tiles of 16 rows, pairs of rows and a lone one
        block = forward_substitution_rows(read, K)
        expected = linalg.solve_triangular(lower, K.T, lower=True).T
        np.testing.assert_allclose(block, expected, rtol=1e-12, atol=1e-12)
        for r in range(K.shape[0]):
            alone = forward_substitution_rows(read, K[r : r + 1])
            assert np.array_equal(alone[0], block[r])
            assert np.array_equal(
                forward_substitution_rows(read, K[r : r + 3])[0], block[r]
            )
    with pytest.raises(ValueError, match="3 columns"):
        forward_substitution_rows(np.eye(3), np.zeros((4, 2)))


def test_forgetting_in_the_exact_limit_equals_the_exact_gp_of_the_rest():
    X, y = _dense(300, 1e-6)
    rest = np.arange(300) % 3 != 0
    sparse = _exact_limit(X, y, 1e-6)
    with warnings.catch_warnings():
        # the forgotten rows stay stored as inducing points: said, and not tested here
        warnings.simplefilter("ignore", UnlearningWarning)
        sparse.partial_unfit(X[~rest], y[~rest])
    X_test = np.linspace(-2.9, 2.9, 40)[:, None]
    _, std = sparse.predict(X_test, return_std=True)
    exact = GaussianProcessRegressor(kernel=KERNEL, alpha=1e-6, optimizer=None)
    _, exact_std = exact.fit(X[rest], y[rest]).predict(X_test, return_std=True)
    np.testing.assert_allclose(std, exact_std, rtol=1e-4)
    refit = SparseGPRegressor(
        kernel=KERNEL, inducing_points=X, noise_variance=1e-6, optimizer=None
    ).fit(X[rest], y[rest])
    assert sparse.log_marginal_likelihood_value_ == pytest.approx(
        refit.log_marginal_likelihood_value_, rel=1e-9
    )
    assert sparse.log_marginal_likelihood_value_ <= exact.log_marginal_likelihood_value_


def test_variances_below_their_round_off_warn_instead_of_silently_clipping():
    # A noise variance of 1e-14: posterior variances at the rows of about 1e-15,
    # below what float64 resolves after cancelling k** = 1.
    X, y = _dense(100, 1e-14)
    sparse = _exact_limit(X, y, 1e-14, jitter=1e-16)
    with pytest.warns(UserWarning, match="below their estimated round-off"):
        _, std = sparse.predict(X, return_std=True)
    assert np.all(np.isfinite(std)) and np.all(std >= 0)
