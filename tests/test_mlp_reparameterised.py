"""The reparameterised-gradient variational fit: gradients, an exact linear check, the
conjugate optimum, determinism and non-convergence."""

import numpy as np
import pytest
from conftest import random_spd

from sklunlearn._diagonal_posterior import DiagonalGaussianPosterior
from sklunlearn.neural_network import MLPPredictor
from sklunlearn.neural_network._reparameterised import (
    ReparameterisedELBO,
    maximise,
    reparameterised_vi,
)
from sklunlearn.posterior import GaussianPosterior
from sklunlearn.unlearning import GaussianNoise, GaussianPrior, Model

BETA = 4.0  # the Gaussian likelihood's noise precision, fixed


def network_problem(rng, layer_sizes=(2, 3, 1), n=40, activation="tanh"):
    predictor = MLPPredictor(layer_sizes, activation)
    p = predictor.n_weights
    model = Model(predictor, GaussianNoise(BETA), GaussianPrior(1.0, n_features=p))
    X = rng.randn(n, layer_sizes[0])
    y = np.sin(X[:, 0]) + 0.3 * rng.randn(n)
    return model, X, y, rng.uniform(0.5, 1.5, n)


def moment_matched_draws(rng, n_samples, p):
    """Standard normal draws centred and whitened: sample mean 0, second moment I."""
    draws = rng.randn(n_samples, p)
    draws -= draws.mean(axis=0)
    factor = np.linalg.cholesky(draws.T @ draws / n_samples)
    return np.linalg.solve(factor, draws.T).T


def conjugate_posterior(model, X, y, weights, prior):
    """The exact posterior of a linear predictor with a Gaussian likelihood."""
    A = model.predictor.jacobian(X, np.zeros(model.predictor.n_weights))
    precision = prior.precision + BETA * A.T @ (weights[:, None] * A)
    mean = np.linalg.solve(
        precision, prior.precision @ prior.mean + BETA * A.T @ (weights * y)
    )
    return GaussianPosterior.from_precision(mean, precision)


def finite_difference(function, x, step=1e-6):
    return np.array([
        (function(x + step * e)[0] - function(x - step * e)[0]) / (2 * step)
        for e in np.eye(x.size)
    ])  # fmt: skip


@pytest.mark.parametrize("covariance", ["full", "diagonal"])
def test_elbo_gradient_matches_finite_differences(rng, covariance):
    model, X, y, w = network_problem(rng)
    p = model.predictor.n_weights
    prior_precision = random_spd(rng, p, 0.2)
    priors = {
        "full": GaussianPosterior.from_precision(rng.randn(p), prior_precision),
        "diagonal": DiagonalGaussianPosterior(rng.randn(p), np.diag(prior_precision)),
    }
    elbo = ReparameterisedELBO(
        priors[covariance], model, X, y, w, rng.randn(5, p), covariance
    )
    if covariance == "full":
        x = elbo.pack(rng.randn(p), np.tril(0.2 * rng.randn(p, p)) + 0.5 * np.eye(p))
    else:
        x = elbo.pack(rng.randn(p), rng.uniform(0.2, 0.8, p))
    _, gradient = elbo(x)
    np.testing.assert_allclose(
        gradient, finite_difference(elbo, x), rtol=1e-6, atol=1e-6 * np.abs(gradient).max()
    )


@pytest.mark.parametrize("covariance", ["full", "diagonal"])
def test_linear_elbo_is_the_closed_form_with_the_draws_moments(rng, covariance):
    # f = a' theta: the sampled expectation of the Gaussian log-likelihood is the exact
    # one with E[eps] -> mean of the draws and E[eps eps'] -> their second moment C:
    # mean_s (r - a' L eps_s)^2 = r^2 - 2 r a' L eps_bar + a' L C L' a, r = y - a' m.
    model, X, y, w = network_problem(rng, (3, 1), activation="identity")
    p = model.predictor.n_weights
    prior = GaussianPosterior.from_precision(rng.randn(p), random_spd(rng, p, 0.5))
    draws = rng.randn(7, p)
    elbo = ReparameterisedELBO(prior, model, X, y, w, draws, covariance)
    mean = rng.randn(p)
    if covariance == "full":
        factor = np.tril(0.3 * rng.randn(p, p)) + np.diag(rng.uniform(0.3, 1.0, p))
        x, q = (
            elbo.pack(mean, factor),
            GaussianPosterior.from_covariance(mean, factor @ factor.T),
        )
    else:
        sigma = rng.uniform(0.3, 1.0, p)
        x, q = (
            elbo.pack(mean, sigma),
            GaussianPosterior.from_covariance(mean, np.diag(sigma**2)),
        )
        factor = np.diag(sigma)
    A = model.predictor.jacobian(X, mean)
    r, eps_bar, C = y - A @ mean, draws.mean(axis=0), draws.T @ draws / draws.shape[0]
    AL = A @ factor
    expected = w @ (
        0.5 * np.log(BETA / (2 * np.pi))
        - 0.5 * BETA * (r**2 - 2 * r * (AL @ eps_bar) + np.sum((AL @ C) * AL, axis=1))
    )
    value, gradient = elbo(x)
    np.testing.assert_allclose(value, expected - q.kl_divergence(prior), rtol=1e-12)
    # d/dm = beta A'W (r - A L eps_bar) - P0 (m - m0)
    mean_gradient = BETA * A.T @ (w * (r - AL @ eps_bar)) - prior.precision @ (
        mean - prior.mean
    )
    # d/dL = beta A'W r eps_bar' - beta A'WA L C - P0 L + diag(1 / L_jj)
    factor_gradient = (
        BETA * np.outer(A.T @ (w * r), eps_bar)
        - BETA * A.T @ (w[:, None] * AL) @ C
        - prior.precision @ factor
        + np.diag(1.0 / np.diag(factor))
    )
    if covariance == "full":
        lower = np.tril_indices(p)
        chained = factor_gradient[lower]
        chained[lower[0] == lower[1]] *= np.diag(factor)  # log of the diagonal
    else:
        chained = np.diag(factor_gradient) * sigma  # log sigma
    np.testing.assert_allclose(
        gradient, np.concatenate([mean_gradient, chained]), rtol=1e-10
    )


@pytest.mark.parametrize("covariance", ["full", "diagonal"])
def test_linear_optimum_is_the_conjugate_posterior_with_moment_matched_draws(
    rng, covariance
):
    # With draws of sample mean 0 and second moment I the sampled ELBO is the exact
    # one; for a linear predictor and a Gaussian likelihood its maximum over full
    # Gaussians is the conjugate posterior, over diagonal ones the mean-field
    # optimum (the posterior mean, variances 1 / P_jj: Bishop 2006, eq. 10.12-10.13).
    model, X, y, w = network_problem(rng, (3, 1), n=60, activation="identity")
    p = model.predictor.n_weights
    prior = GaussianPosterior.from_precision(rng.randn(p), random_spd(rng, p, 0.5))
    exact = conjugate_posterior(model, X, y, w, prior)
    elbo = ReparameterisedELBO(
        prior, model, X, y, w, moment_matched_draws(rng, 50, p), covariance
    )
    start = GaussianPosterior.from_precision(np.zeros(p), np.eye(p))
    fit = maximise(elbo, elbo.start(start), max_iter=1000, tol=1e-9)
    assert fit.converged
    # the ELBO (about 1e2) carries round-off of about 1e-12, so a line search along
    # a direction of curvature of order one (log sigma, log L_jj) resolves the
    # optimum to about sqrt(1e-12) = 1e-6: a relative 1e-5 on the precisions
    np.testing.assert_allclose(fit.posterior.mean, exact.mean, rtol=1e-6, atol=1e-7)
    if covariance == "full":
        assert isinstance(fit.posterior, GaussianPosterior)
        np.testing.assert_allclose(fit.posterior.covariance, exact.covariance, atol=1e-7)
    else:
        assert isinstance(fit.posterior, DiagonalGaussianPosterior)
        np.testing.assert_allclose(
            fit.posterior.precision, np.diag(exact.precision), rtol=1e-5
        )


def test_linear_optimum_approaches_the_conjugate_posterior_as_draws_grow(rng):
    # The sampled optimum differs from the exact one through the draws' sample mean
    # and second moment, errors of order 1/sqrt(S): KL(q_S || exact) is of order
    # (number of free parameters) / S. Three parameters, 9 free ones; 10x margin.
    model, X, y, w = network_problem(rng, (2, 1), n=60, activation="identity")
    p = model.predictor.n_weights
    prior = GaussianPrior(1.0, n_features=p).posterior()
    exact = conjugate_posterior(model, X, y, w, prior)
    divergences = []
    for n_samples in (20, 200, 2000):
        fit = reparameterised_vi(
            prior, model, X, y, w, start=exact, n_samples=n_samples, tol=1e-8
        )
        assert fit.converged
        divergences.append(fit.posterior.kl_divergence(exact))
    assert divergences[2] < 10 * 9 / 2000
    assert divergences[2] < divergences[0] / 10


def test_network_fit_raises_the_elbo_from_its_start_and_is_deterministic(rng):
    model, X, y, w = network_problem(rng, n=60)
    p = model.predictor.n_weights
    prior = model.prior.posterior()
    start = GaussianPosterior.from_precision(0.3 * rng.randn(p), 20.0 * np.eye(p))

    def fit(seed, covariance):
        return reparameterised_vi(prior, model, X, y, w, start=start, n_samples=30,
                                  random_state=seed, covariance=covariance)  # fmt: skip

    same, again, other, diagonal = (
        fit(3, "full"), fit(3, "full"), fit(4, "full"), fit(3, "diagonal")
    )  # fmt: skip
    np.testing.assert_array_equal(same.posterior.mean, again.posterior.mean)
    np.testing.assert_array_equal(same.posterior.precision, again.posterior.precision)
    assert same.elbo == again.elbo and same.n_iter == again.n_iter
    assert not np.allclose(same.posterior.mean, other.posterior.mean)
    for result, covariance in [(same, "full"), (diagonal, "diagonal")]:
        assert result.converged
        draws = np.random.RandomState(3).standard_normal((30, p))
        elbo = ReparameterisedELBO(prior, model, X, y, w, draws, covariance)
        assert result.elbo > elbo(elbo.start(start))[0]
        # the reported ELBO is the objective at the returned posterior
        at_result = elbo(elbo.start(result.posterior))[0]
        np.testing.assert_allclose(result.elbo, at_result, rtol=1e-10)


def test_row_blocks_give_the_same_elbo(rng):
    model, X, y, w = network_problem(rng, n=50)
    p = model.predictor.n_weights
    prior, draws = model.prior.posterior(), rng.randn(4, p)
    whole = ReparameterisedELBO(prior, model, X, y, w, draws)
    blocks = ReparameterisedELBO(prior, model, X, y, w, draws, block_rows=7)
    x = whole.pack(rng.randn(p), 0.5 * np.eye(p))
    for a, b in zip(whole(x), blocks(x), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12)


def test_non_convergence_is_reported_and_arguments_are_checked(rng):
    model, X, y, w = network_problem(rng)
    p = model.predictor.n_weights
    prior = model.prior.posterior()
    fit = reparameterised_vi(prior, model, X, y, w, start=prior, n_samples=4, max_iter=1)
    assert not fit.converged and fit.n_iter == 1
    with pytest.raises(ValueError, match="n_samples"):
        reparameterised_vi(prior, model, X, y, w, start=prior, n_samples=0)
    with pytest.raises(ValueError, match="covariance"):
        ReparameterisedELBO(prior, model, X, y, w, rng.randn(3, p), "banded")
    with pytest.raises(ValueError, match="draws"):
        ReparameterisedELBO(prior, model, X, y, w, rng.randn(3, p + 1))
