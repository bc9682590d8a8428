"""BayesianLogisticRegression(inference='vi'): the fit reaches the ELBO's maximum.

The reference is an independent maximisation of the ELBO with L-BFGS over the
mean and the covariance's Cholesky factor, its expectations computed with a
trapezoid rule much finer than the package's (plain NumPy, no package code).
"""

import warnings

import numpy as np
import pytest
from scipy import integrate, optimize
from scipy.special import expit, log_expit
from sklearn.datasets import load_breast_cancer, load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from sklunlearn._numba import expected_logistic_terms
from sklunlearn.linear_model import BayesianLogisticRegression
from sklunlearn.unlearning import BernoulliLogit, Likelihood
from sklunlearn.unlearning._likelihoods import gauss_hermite
from sklunlearn.utils._blas import blas_threads, one_blas_thread


def _digits_3_vs_8():
    X, y = load_digits(return_X_y=True)
    keep = (y == 3) | (y == 8)
    return StandardScaler().fit_transform(X[keep]), y[keep]


def _breast_cancer():
    X, y = load_breast_cancer(return_X_y=True)
    return StandardScaler().fit_transform(X), y


def _reference_terms(f_mean, f_sd, signs):
    """Per-row E[log sigmoid(s f)], E[s (1 - sigmoid(s f))], E[p (1 - p)] (trapezoid)."""
    step = min(0.25, 0.3 / max(float(f_sd.max()), 1e-300))
    z = np.arange(-9.5, 9.5 + step / 2, step)
    weights = step * np.exp(-0.5 * z * z) / np.sqrt(2.0 * np.pi)
    f = signs[:, None] * (f_mean[:, None] + f_sd[:, None] * z)
    p = expit(f)
    return log_expit(f) @ weights, signs * ((1.0 - p) @ weights), (p * (1.0 - p)) @ weights


def _negative_elbo(theta, design, signs, alpha):
    """Minus the ELBO of N(m, L L') and its gradient in (m, lower triangle of L)."""
    d = design.shape[1]
    lower = np.tril_indices(d)
    m, L = theta[:d], np.zeros((d, d))
    L[lower] = theta[d:]
    B = design @ L
    value, gradient, curvature = _reference_terms(
        design @ m, np.sqrt(np.einsum("ij,ij->i", B, B)), signs
    )
    diag = np.diag(L)
    log_det = np.log(diag**2).sum()  # of L L'
    kl = 0.5 * (alpha * (np.sum(L * L) + m @ m) - d - d * np.log(alpha) - log_det)
    grad_m = design.T @ gradient - alpha * m
    # d E[log p_i] / d Sigma = -E[c_i] x_i x_i' / 2 (Price's theorem), Sigma = L L'.
    grad_L = -(design.T * curvature) @ B - alpha * L + np.diag(1.0 / diag)
    return -(value.sum() - kl), -np.concatenate([grad_m, grad_L[lower]])


def _posterior_vector(posterior):
    lower = np.linalg.cholesky(posterior.covariance)
    return np.concatenate([posterior.mean, lower[np.tril_indices(lower.shape[0])]])


def _problem(X, y):
    design = np.hstack([X, np.ones((X.shape[0], 1))])
    return design, np.where(y == y.max(), 1.0, -1.0)


def _fit_without_warning(X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        return BayesianLogisticRegression(inference="vi").fit(X, y)


@pytest.mark.parametrize("load", [_digits_3_vs_8, _breast_cancer])
def test_vi_fit_is_a_stationary_point_of_the_elbo(load):
    # The ELBO is concave in (m, L) for a log-concave likelihood (Challis &
    # Barber 2013): a zero gradient is its maximum.
    X, y = load()
    est = _fit_without_warning(X, y)
    design, signs = _problem(X, y)
    gradient = _negative_elbo(_posterior_vector(est.posterior_), design, signs, 1.0)[1]
    assert np.abs(gradient).max() < 1e-4


def test_vi_fit_on_digits_reaches_the_elbo_of_a_reference_maximisation():
    X, y = _digits_3_vs_8()
    est = _fit_without_warning(X, y)
    design, signs = _problem(X, y)
    # The reference starts from the Laplace fit, not from the variational one.
    start = BayesianLogisticRegression().fit(X, y).posterior_
    with one_blas_thread():  # small products: a second thread only waits
        reference = optimize.minimize(
            _negative_elbo,
            _posterior_vector(start),
            args=(design, signs, 1.0),
            jac=True,
            method="L-BFGS-B",
            options={"maxiter": 5000, "maxcor": 50, "gtol": 1e-11, "ftol": 0.0},
        )
    assert np.abs(reference.jac).max() < 1e-5  # the reference itself is converged
    fit_value = _negative_elbo(_posterior_vector(est.posterior_), design, signs, 1.0)[0]
    assert abs(fit_value - reference.fun) < 1e-7
    d = design.shape[1]
    np.testing.assert_allclose(est.posterior_.mean, reference.x[:d], atol=1e-5)
    lower = np.zeros((d, d))
    lower[np.tril_indices(d)] = reference.x[d:]
    np.testing.assert_allclose(est.posterior_.covariance, lower @ lower.T, atol=1e-5)


def test_vi_fit_differs_from_the_laplace_fit_on_digits():
    # What the reference test measures is the variational optimum, not the mode.
    X, y = _digits_3_vs_8()
    vi = BayesianLogisticRegression(inference="vi").fit(X, y).posterior_
    laplace = BayesianLogisticRegression().fit(X, y).posterior_
    assert np.abs(vi.mean - laplace.mean).max() > 0.1


@pytest.mark.parametrize("spread", [0.3, 1.0, 1.5, 3.0, 10.0, 40.0])
@pytest.mark.parametrize("label", [0.0, 1.0])
def test_expected_terms_match_adaptive_quadrature(spread, label):
    mean = np.linspace(-3 * spread - 5, 3 * spread + 5, 7)
    variance = np.full(mean.shape, spread**2)
    y = np.full(mean.shape, label)
    value, gradient, curvature = BernoulliLogit().expected_terms(mean, variance, y)
    sign = 1.0 if label else -1.0
    for i, mu in enumerate(mean):

        def expect(h, mu=mu):
            density = lambda f: np.exp(-0.5 * ((f - mu) / spread) ** 2)  # noqa: E731
            lo, hi = mu - 12 * spread, mu + 12 * spread
            points = [0.0] if lo < 0.0 < hi else None
            integral = integrate.quad(
                lambda f: h(f) * density(f), lo, hi, points=points, limit=500,
                epsabs=1e-14, epsrel=1e-13,
            )[0]  # fmt: skip
            return integral / (spread * np.sqrt(2.0 * np.pi))

        np.testing.assert_allclose(
            value[i], expect(lambda f: log_expit(sign * f)), atol=1e-10
        )
        np.testing.assert_allclose(
            gradient[i], expect(lambda f: label - expit(f)), atol=1e-10
        )
        np.testing.assert_allclose(
            curvature[i], expect(lambda f: expit(f) * expit(-f)), atol=1e-10
        )


@pytest.mark.parametrize("spread", [0.5, 2.0, 8.0, 25.0])
def test_expected_curvature_is_the_variance_derivative_of_the_expected_value(spread):
    # Stein's lemma: E[c] = -2 d E[log p] / d variance, which the fixed point needs.
    mean = np.linspace(-2 * spread, 2 * spread, 9)
    y = (np.arange(mean.shape[0]) % 2).astype(float)
    variance = np.full(mean.shape, spread**2)
    likelihood = BernoulliLogit()
    curvature = likelihood.expected_terms(mean, variance, y)[2]
    h = 1e-4 * spread**2
    up = likelihood.expected_terms(mean, variance + h, y)[0]
    down = likelihood.expected_terms(mean, variance - h, y)[0]
    np.testing.assert_allclose(-2.0 * (up - down) / (2.0 * h), curvature, rtol=1e-6)


def test_narrow_rows_keep_the_gauss_hermite_rule():
    rng = np.random.RandomState(0)
    mean, variance = rng.randn(50), rng.uniform(0.01, 0.9, 50)
    y = (rng.rand(50) < 0.5).astype(float)
    likelihood = BernoulliLogit()
    for ours, theirs in zip(
        likelihood.expected_terms(mean, variance, y),
        expected_logistic_terms(mean, variance, y, *gauss_hermite(32)),
        strict=True,
    ):
        np.testing.assert_array_equal(ours, theirs)


class _GenericLogit(Likelihood):
    """The Bernoulli-logit through the base class's expectations (no Numba kernel)."""

    def row_terms(self, f, y):
        p = expit(f)
        return log_expit(np.where(y > 0.5, f, -f)), y - p, p * (1.0 - p)


def test_generic_expectations_agree_with_the_kernel_on_narrow_and_wide_rows():
    rng = np.random.RandomState(1)
    mean, variance = 5 * rng.randn(300), np.exp(rng.uniform(-4, 7, 300))
    y = (rng.rand(300) < 0.5).astype(float)
    for ours, theirs in zip(
        _GenericLogit().expected_terms(mean, variance, y),
        BernoulliLogit().expected_terms(mean, variance, y),
        strict=True,
    ):
        np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-14)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_vi_fit_runs_blas_on_one_thread_and_restores_the_count(monkeypatch):
    from sklunlearn.unlearning import _learning

    seen = []
    original = _learning.variational_update

    def recording(*args, **kwargs):
        seen.append(blas_threads())
        return original(*args, **kwargs)

    monkeypatch.setattr(_learning, "variational_update", recording)
    X, y = _breast_cancer()
    with threadpool_limits(limits=2, user_api="blas"):  # more than one, if the BLAS can
        before = blas_threads()
        BayesianLogisticRegression(inference="vi", max_iter=3).fit(X[:100], y[:100])
        BayesianLogisticRegression(inference="vi", max_iter=3).partial_fit(
            X[:100], y[:100], classes=[0, 1]
        )
        assert seen == [1, 1]
        assert blas_threads() == before


@pytest.mark.parametrize("method", ["eubo", "rkl"])
def test_sampling_forgets_run_blas_on_one_thread_and_restore_the_count(method, monkeypatch):
    from sklunlearn.unlearning import _registry

    original = _registry.get_method(method)
    seen = []

    def recording(*args, **kwargs):
        seen.append(blas_threads())
        return original.function(*args, **kwargs)

    monkeypatch.setitem(_registry._METHODS, method, original._replace(function=recording))
    X, y = _breast_cancer()
    est = BayesianLogisticRegression(unlearning=method, random_state=0).fit(X, y)
    with threadpool_limits(limits=2, user_api="blas"):  # more than one, if the BLAS can
        before = blas_threads()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            est.partial_unfit(X[:10], y[:10])
        assert blas_threads() == before
    assert seen == [1]
