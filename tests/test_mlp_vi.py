"""BayesianMLPRegressor with curvature='diag' and inference='vi': the mean-field
variational posterior of the reparameterised fit, against a direct call from the
Laplace posterior, fresh draws of its ELBO, and forgetting against the local retrain."""

import copy
import functools
import pickle
import warnings

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils._param_validation import InvalidParameterError
from test_mlp import dense_tanh_jacobian
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
        random_state=0, max_iter=5000, vi_max_iter=5000, tol=1e-5,
    )  # fmt: skip
    return BayesianMLPRegressor(**(defaults | params))


def isotropic_prior(est):
    p = est.posterior_.n_features
    return DiagonalGaussianPosterior(np.zeros(p), np.full(p, est.alpha))


def direct_fit(est, prior, start, X, y, **params):
    """:func:`reparameterised_vi` called as the estimator documents it."""
    options = dict(
        covariance="diagonal", n_samples=est.vi_n_samples, random_state=0,
        max_iter=est.vi_max_iter, tol=est.tol * X.shape[0],
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


def warning_texts(fit):
    """The ConvergenceWarning texts of ``fit()``."""
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always", ConvergenceWarning)
        fit()
    return [str(w.message) for w in record if issubclass(w.category, ConvergenceWarning)]


def test_a_fit_that_stops_at_vi_max_iter_warns_and_max_iter_bounds_the_map(fitted):
    X, y, est, _ = fitted
    est = copy.deepcopy(est).set_params(vi_max_iter=5)
    messages = warning_texts(lambda: est.partial_fit(X[:40], y[:40]))
    assert len(messages) == 1
    assert "variational fit did not converge in vi_max_iter=5" in messages[0]
    assert "increase vi_max_iter" in messages[0]
    # max_iter bounds the MAP stage only: its warning names it, the variational
    # fit (with its own budget) converges and is silent
    est = copy.deepcopy(fitted[2]).set_params(max_iter=5)
    messages = warning_texts(lambda: est.partial_fit(X[:40], y[:40]))
    assert len(messages) == 1
    assert messages[0].startswith("lbfgs did not converge in max_iter=5")


def test_a_converged_fit_does_not_warn(fitted):
    X, y, _, _ = fitted
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        network(hidden_layer_sizes=(3,)).fit(X[:60], y[:60])


def standardised_plane(n):
    X, y = plane_data(n)
    return (X - X.mean(axis=0)) / X.std(axis=0), (y - y.mean()) / y.std()


def spy_on(monkeypatch, name):
    """Replace ``_mlp.<name>`` by a wrapper; the list of its ``(options, result)``."""
    calls, original = [], getattr(_mlp, name)

    def spy(*args, **options):
        result = original(*args, **options)
        calls.append((options, result))
        return result

    monkeypatch.setattr(_mlp, name, spy)
    return calls


def test_a_default_vi_fit_converges_where_the_map_budget_would_stop_it(monkeypatch):
    X, y = standardised_plane(60)
    params = dict(hidden_layer_sizes=(3,), curvature="diag", inference="vi", random_state=0)
    calls = spy_on(monkeypatch, "reparameterised_vi")
    est = BayesianMLPRegressor(**params)
    assert warning_texts(lambda: est.fit(X, y)) == []  # nor the MAP's warning
    ((options, result),) = calls
    assert options["max_iter"] == est.vi_max_iter
    # more iterations than max_iter, the budget that bounded it before
    assert result.converged and est.max_iter < result.n_iter < est.vi_max_iter
    # the budget only stops the fit: a larger one gives the same posterior
    larger = BayesianMLPRegressor(vi_max_iter=10 * est.vi_max_iter, **params).fit(X, y)
    assert_same_posterior(larger.posterior_, est.posterior_, rtol=0)
    # with the old budget it stops, and the warning names the parameter to raise
    old = BayesianMLPRegressor(vi_max_iter=est.max_iter, **params)
    messages = warning_texts(lambda: old.fit(X, y))
    assert len(messages) == 1
    assert f"did not converge in vi_max_iter={est.max_iter} iterations" in messages[0]
    assert "increase vi_max_iter" in messages[0]
    assert not calls[-1][1].converged and calls[-1][1].n_iter == est.max_iter


def fit_then_add(est, X, y, n_fit):
    """``fit`` on the first ``n_fit`` rows, ``partial_fit`` on the others."""
    return est.fit(X[:n_fit], y[:n_fit]).partial_fit(X[n_fit:], y[n_fit:])


@pytest.mark.parametrize(
    "curvature, inference",
    [("ggn", "laplace"), ("diag", "laplace"), ("last_layer", "laplace"),
     ("last_layer", "vi")],
)  # fmt: skip
def test_vi_max_iter_does_not_change_fits_without_a_variational_stage(curvature, inference):
    X, y = standardised_plane(80)
    params = dict(
        hidden_layer_sizes=(3,), curvature=curvature, inference=inference,
        random_state=0, max_iter=60,
    )  # fmt: skip
    fits, texts = [], []
    for vi_max_iter in (None, 1):
        est = BayesianMLPRegressor(**params)
        if vi_max_iter is not None:
            est.set_params(vi_max_iter=vi_max_iter)
        texts.append(warning_texts(functools.partial(fit_then_add, est, X, y, 60)))
        fits.append(est)
    default, other = fits
    assert texts[0] == texts[1]
    assert not any("vi_max_iter" in text for text in texts[0])
    for a, b in zip(
        default.coefs_ + default.intercepts_, other.coefs_ + other.intercepts_, strict=True
    ):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(default.posterior_.mean, other.posterior_.mean)
    np.testing.assert_array_equal(default.posterior_.precision, other.posterior_.precision)
    assert (default.noise_variance_, default.n_iter_, default.loss_) == (
        other.noise_variance_, other.n_iter_, other.loss_,
    )  # fmt: skip


@pytest.mark.parametrize(
    "curvature, stage", [("diag", "reparameterised_vi"), ("ggn", "variational_update")]
)
def test_fit_and_partial_fit_give_vi_max_iter_to_the_variational_stage(
    monkeypatch, curvature, stage
):
    X, y = standardised_plane(80)
    calls = spy_on(monkeypatch, stage)
    est = BayesianMLPRegressor(
        hidden_layer_sizes=(3,), curvature=curvature, inference="vi", noise_variance=0.1,
        random_state=0, max_iter=300, vi_max_iter=1234,
    )  # fmt: skip
    est.fit(X[:60], y[:60])
    est.set_params(vi_max_iter=4321).partial_fit(X[60:], y[60:])
    assert [options["max_iter"] for options, _ in calls] == [1234, 4321]
    assert all(result.converged for _, result in calls)


def test_vi_max_iter_round_trips_and_is_validated():
    X, y = standardised_plane(20)
    est = BayesianMLPRegressor(vi_max_iter=7)
    assert est.get_params()["vi_max_iter"] == 7
    assert clone(est).get_params() == est.get_params()
    assert est.set_params(vi_max_iter=9).vi_max_iter == 9
    assert clone(est).vi_max_iter == 9
    default = BayesianMLPRegressor()
    assert default.vi_max_iter > default.max_iter
    for bad in (0, -3, 2.5, "many", None):
        with pytest.raises(InvalidParameterError, match="vi_max_iter"):
            BayesianMLPRegressor(vi_max_iter=bad).fit(X, y)
    fitted = BayesianMLPRegressor(hidden_layer_sizes=(2,), max_iter=20)
    warning_texts(lambda: fitted.fit(X, y))
    with pytest.raises(InvalidParameterError, match="vi_max_iter"):
        fitted.set_params(vi_max_iter=0).partial_fit(X, y)


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
