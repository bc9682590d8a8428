"""BayesianMLPRegressor with curvature='diag' and inference='vi': the mean-field
variational posterior of the reparameterised fit, against a direct call from the
Laplace posterior, fresh draws of its ELBO, and forgetting against the local retrain."""

import copy
import pickle
import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.estimator_checks import parametrize_with_checks
from test_mlp import EXPECTED_FAILED_CHECKS, dense_tanh_jacobian
from test_mlp_diagonal import objective_gradient, plane_data

from sklunlearn._diagonal_posterior import DiagonalGaussianPosterior
from sklunlearn.exceptions import UnlearningWarning
from sklunlearn.metrics import predictive_kl
from sklunlearn.neural_network import BayesianMLPRegressor, _mlp
from sklunlearn.neural_network._reparameterised import (
    ReparameterisedELBO,
    reparameterised_vi,
)

N_ROWS = 150


def network(**params):
    defaults = dict(
        hidden_layer_sizes=(6,), curvature="diag", inference="vi", noise_variance=0.1,
        random_state=0, max_iter=5000, tol=1e-5,
    )  # fmt: skip
    return BayesianMLPRegressor(**(defaults | params))


def isotropic_prior(est):
    p = est.posterior_.n_features
    return DiagonalGaussianPosterior(np.zeros(p), np.full(p, est.alpha))


def direct_fit(est, prior, start, X, y, **params):
    """:func:`reparameterised_vi` called as the estimator documents it."""
    options = dict(
        covariance="diagonal", n_samples=est.vi_n_samples, random_state=0,
        max_iter=est.max_iter, tol=est.tol * X.shape[0],
    )  # fmt: skip
    return reparameterised_vi(
        prior, est.model_, X, y, np.ones(X.shape[0]), start=start, **(options | params)
    )


@pytest.fixture(scope="module")
def fitted():
    X, y = plane_data(N_ROWS)
    laplace = network(inference="laplace").fit(X, y)
    return X, y, network().fit(X, y), laplace


def assert_same_posterior(a, b, rtol=1e-12):
    np.testing.assert_allclose(a.mean, b.mean, rtol=rtol, atol=1e-14)
    np.testing.assert_allclose(a.precision, b.precision, rtol=rtol)


# ------------------------------------------------------------------ the posterior
def test_posterior_is_reparameterised_vi_from_the_laplace_posterior(fitted):
    X, y, est, laplace = fitted
    assert isinstance(est.posterior_, DiagonalGaussianPosterior)
    # the noise is fixed, so the MAP and its diagonal Laplace posterior are shared
    assert est.noise_variance_ == laplace.noise_variance_
    expected = direct_fit(est, isotropic_prior(est), laplace.posterior_, X, y)
    assert expected.converged
    assert_same_posterior(est.posterior_, expected.posterior)
    # the refinement moved the posterior: it is not the Laplace one
    assert np.max(np.abs(est.posterior_.mean - laplace.posterior_.mean)) > 1e-3
    np.testing.assert_array_equal(est.coefs_[0].ravel(), est.posterior_.mean[:12])
    assert est.n_iter_ > expected.n_iter  # the MAP's iterations and the VI's


def test_partial_fit_refines_from_the_online_laplace_posterior(fitted, monkeypatch):
    X, y, est, _ = fitted
    est = copy.deepcopy(est)
    before = est.posterior_
    calls = []

    def spy(prior, model, X, y, weights, **options):
        calls.append((prior, options["start"]))
        return reparameterised_vi(prior, model, X, y, weights, **options)

    monkeypatch.setattr(_mlp, "reparameterised_vi", spy)
    X_new, y_new = plane_data(40, seed=1)
    est.partial_fit(X_new, y_new)
    ((prior, start),) = calls
    assert prior is before  # the current posterior is the prior of the new rows
    # the start is the online diagonal Laplace posterior at the new rows' MAP
    coefs, intercepts = est.model_.predictor.unpack(start.mean)
    at_start = type("Weights", (), {"coefs_": coefs, "intercepts_": intercepts})
    J, _ = dense_tanh_jacobian(at_start, X_new)
    np.testing.assert_allclose(
        start.precision, before.precision + (J * J).sum(axis=0) / est.noise_variance_,
        rtol=1e-10,
    )  # fmt: skip
    expected = direct_fit(est, before, start, X_new, y_new)
    assert_same_posterior(est.posterior_, expected.posterior)
    assert est.n_samples_seen_ == N_ROWS + 40


def test_the_same_fit_gives_the_same_posterior_and_none_means_seed_zero(fitted):
    X, y, est, _ = fitted
    again = network().fit(X, y)
    np.testing.assert_array_equal(again.posterior_.mean, est.posterior_.mean)
    np.testing.assert_array_equal(again.posterior_.precision, est.posterior_.precision)
    # random_state=None: the draws still come from seed 0 (the initial weights do
    # not; adding rows to one fitted state isolates the draws)
    X_new, y_new = plane_data(40, seed=1)
    posteriors = []
    for random_state in (None, None, 0, 1):
        copied = copy.deepcopy(est).set_params(random_state=random_state)
        posteriors.append(copied.partial_fit(X_new, y_new).posterior_)
    for other in posteriors[1:3]:
        np.testing.assert_array_equal(other.mean, posteriors[0].mean)
        np.testing.assert_array_equal(other.precision, posteriors[0].precision)
    # another seed, other draws: another optimum of the sampled ELBO
    assert np.max(np.abs(posteriors[3].mean - posteriors[0].mean)) > 1e-6


def test_a_fit_that_stops_at_max_iter_warns(fitted):
    X, y, est, _ = fitted
    est = copy.deepcopy(est).set_params(max_iter=5)
    with pytest.warns(ConvergenceWarning) as record:
        est.partial_fit(X[:40], y[:40])
    messages = [str(warning.message) for warning in record]
    assert any("variational fit did not converge in max_iter=5" in m for m in messages)


def test_a_converged_fit_does_not_warn(fitted):
    X, y, _, _ = fitted
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        network(hidden_layer_sizes=(3,)).fit(X[:60], y[:60])


def test_vi_raises_the_elbo_on_fresh_draws_above_the_laplace_start(fitted):
    X, y, est, laplace = fitted
    p, w = est.posterior_.n_features, np.ones(X.shape[0])

    def elbo(posterior, draws):
        objective = ReparameterisedELBO(
            isotropic_prior(est), est.model_, X, y, w, draws, "diagonal"
        )
        return objective(objective.start(posterior))[0]

    fitted_draws = np.random.RandomState(0).standard_normal((est.vi_n_samples, p))
    fresh = np.random.RandomState(12345).standard_normal((4000, p))
    # the maximised objective, and an independent estimate of the exact ELBO
    assert elbo(est.posterior_, fitted_draws) > elbo(laplace.posterior_, fitted_draws)
    gain = elbo(est.posterior_, fresh) - elbo(laplace.posterior_, fresh)
    assert gain > 1.0


# ------------------------------------------------------------------ forgetting
@pytest.mark.parametrize("seed", [0, 1])
def test_forgetting_the_vi_posterior_beats_doing_nothing(fitted, seed):
    X, y, est, _ = fitted
    forget = np.random.RandomState(seed).choice(N_ROWS, 8, replace=False)
    keep = np.setdiff1d(np.arange(N_ROWS), forget)
    # the local retrain: the remaining rows from the fitted weights, MAP, diagonal
    # Laplace and the same variational refinement
    local = est._local_retrain(X[keep], y[keep])
    assert isinstance(local.posterior_, DiagonalGaussianPosterior)
    nothing = predictive_kl(local, est, X[forget])
    for method in ["laplace", "lcodec"]:
        unlearned = copy.deepcopy(est).set_params(
            unlearning=method, lcodec_n_perturbations=300
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UnlearningWarning)
            unlearned.partial_unfit(X[forget], y[forget])
        assert unlearned.forget_report_.method == method
        assert predictive_kl(local, unlearned, X[forget]) < 0.9 * nothing, method
        # divided out and floored at the prior (the variational precision, unlike
        # the Laplace one, can fall below the prior's where the expected curvature
        # of the log-likelihood is negative)
        precision = unlearned.posterior_.precision
        assert np.all(precision >= est.alpha)
        assert np.all(precision <= np.maximum(est.posterior_.precision, est.alpha))
        assert 0.0 < unlearned.forget_report_.diagnostics.step_length < 1.0
        gradient = objective_gradient(unlearned, X[keep], y[keep], unlearned._theta)
        assert np.all(np.isfinite(gradient))


def test_a_refused_method_leaves_the_vi_estimator_byte_identical(fitted):
    X, y, est, _ = fitted
    est = copy.deepcopy(est)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnlearningWarning)
        est.partial_unfit(X[:2], y[:2])  # the lock and a report exist
    before = pickle.dumps(est)
    est.set_params(unlearning="eubo")
    with pytest.raises(ValueError, match="'laplace' .* or 'lcodec'"):
        est.partial_unfit(X[2:5], y[2:5])
    est.set_params(unlearning="laplace")
    assert pickle.dumps(est) == before


# ------------------------------------------------------------ scikit-learn checks
@parametrize_with_checks(
    [
        BayesianMLPRegressor(
            hidden_layer_sizes=(3,), curvature="diag", inference="vi", max_iter=50,
            random_state=0,
        )
    ],
    expected_failed_checks=lambda estimator: EXPECTED_FAILED_CHECKS,
)  # fmt: skip
def test_sklearn_compatible(estimator, check):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        check(estimator)
