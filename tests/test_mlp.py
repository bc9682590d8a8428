"""BayesianMLPRegressor against dense NumPy references and against retraining."""

import copy
import warnings

import numpy as np
import pytest
from sklearn.datasets import load_diabetes
from sklearn.exceptions import ConvergenceWarning
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from sklunlearn.exceptions import UnlearningWarning
from sklunlearn.neural_network import MAX_GGN_WEIGHTS, BayesianMLPRegressor
from sklunlearn.unlearning import get_method, register_method


def sine_data(n=200, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.uniform(-2, 2, (n, 1))
    return X, np.sin(2 * X[:, 0]) + 0.1 * rng.randn(n)


def diabetes():
    X, y = load_diabetes(return_X_y=True)
    return StandardScaler().fit_transform(X), (y - y.mean()) / y.std()


def dense_tanh_jacobian(est, X):
    """``J`` of a one-hidden-layer tanh network, from ``coefs_`` row by row."""
    W1, W2 = est.coefs_
    b1, _ = est.intercepts_
    h = np.tanh(X @ W1 + b1)
    delta = (1 - h**2) * W2[:, 0]  # df / dz of the hidden units
    rows = [
        np.concatenate([np.outer(x, d).ravel(), d, hi, [1.0]])
        for x, d, hi in zip(X, delta, h, strict=True)
    ]
    return np.array(rows), np.column_stack([h, np.ones(X.shape[0])])


def output_layer_refit(est, X, y):
    """The output layer's conjugate posterior on the rows' features, densely."""
    _, features = dense_tanh_jacobian(est, X)
    beta = 1.0 / est.noise_variance_
    precision = est.alpha * np.eye(features.shape[1]) + beta * features.T @ features
    return np.linalg.solve(precision, beta * features.T @ y), precision


def test_last_layer_forgetting_equals_a_refit_of_the_output_layer():
    X, y = sine_data()
    est = BayesianMLPRegressor(
        hidden_layer_sizes=(8,), curvature="last_layer", random_state=0, max_iter=2000
    ).fit(X, y)
    with pytest.warns(UnlearningWarning, match="hidden layers"):
        est.partial_unfit(X[:20], y[:20])
    mean, precision = output_layer_refit(est, X[20:], y[20:])
    np.testing.assert_allclose(est.posterior_.mean, mean, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(est.posterior_.precision, precision, rtol=1e-10)
    np.testing.assert_allclose(est.coefs_[-1][:, 0], mean[:-1], rtol=1e-10, atol=1e-12)
    # the output layer is exact, the model is not: its hidden layers learned the rows
    assert not est.forget_report_.exact and est.forget_report_.method == "exact"
    with warnings.catch_warnings():  # once per fit: the second forget is silent
        warnings.simplefilter("error", UnlearningWarning)
        est.partial_unfit(X[20:30], y[20:30], sample_weight=np.full(10, 0.5))
    weights = np.r_[np.full(10, 0.5), np.ones(X.shape[0] - 30)]
    _, features = dense_tanh_jacobian(est, X[20:])
    beta = 1.0 / est.noise_variance_
    precision = est.alpha * np.eye(9) + beta * features.T @ (weights[:, None] * features)
    expected = np.linalg.solve(precision, beta * features.T @ (weights * y[20:]))
    np.testing.assert_allclose(est.posterior_.mean, expected, rtol=1e-10, atol=1e-12)


def test_last_layer_partial_fit_adds_the_rows_features_exactly():
    X, y = sine_data()
    est = BayesianMLPRegressor(
        hidden_layer_sizes=(6,), curvature="last_layer", random_state=0, max_iter=2000
    ).fit(X[:150], y[:150])
    est.partial_fit(X[150:], y[150:])
    mean, precision = output_layer_refit(est, X, y)
    np.testing.assert_allclose(est.posterior_.mean, mean, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(est.posterior_.precision, precision, rtol=1e-10)
    assert est.n_samples_seen_ == 200


@pytest.mark.parametrize("curvature", ["ggn", "last_layer"])
def test_predictive_std_matches_dense_linearisation(curvature):
    X, y = sine_data()
    est = BayesianMLPRegressor(
        hidden_layer_sizes=(6,), curvature=curvature, random_state=1
    ).fit(X, y)
    J, features = dense_tanh_jacobian(est, X[:40])
    rows = J if curvature == "ggn" else features
    covariance = np.linalg.inv(est.posterior_.precision)
    variance = np.einsum("ij,jk,ik->i", rows, covariance, rows) + est.noise_variance_
    mean, std = est.predict(X[:40], return_std=True)
    np.testing.assert_allclose(std, np.sqrt(variance), rtol=1e-8)
    W1, W2 = est.coefs_
    b1, b2 = est.intercepts_
    np.testing.assert_allclose(mean, np.tanh(X[:40] @ W1 + b1) @ W2[:, 0] + b2[0])
    np.testing.assert_allclose(est.predict(X[:40]), mean)


def test_fit_learns_the_noise_and_follows_the_data():
    X, y = sine_data(300)
    est = BayesianMLPRegressor(hidden_layer_sizes=(10,), random_state=0).fit(X, y)
    assert 0.006 < est.noise_variance_ < 0.015  # the true noise variance is 0.01
    assert est.score(X, y) > 0.95
    assert len(est.coefs_) == 2 and est.coefs_[0].shape == (1, 10)
    assert est.posterior_.n_features == 31
    fixed = BayesianMLPRegressor(hidden_layer_sizes=(10,), noise_variance=0.5).fit(X, y)
    assert fixed.noise_variance_ == 0.5


def test_adam_trains_the_network():
    X, y = sine_data(300)
    est = BayesianMLPRegressor(
        hidden_layer_sizes=(10,),
        solver="adam",
        learning_rate_init=0.02,
        batch_size=50,
        max_iter=300,
        random_state=0,
    ).fit(X, y)
    assert est.score(X, y) > 0.9


def test_unconverged_fit_warns():
    X, y = sine_data()
    with pytest.warns(ConvergenceWarning, match="max_iter"):
        BayesianMLPRegressor(hidden_layer_sizes=(4,), max_iter=2).fit(X, y)


def test_ggn_refuses_a_large_network_and_suggests_last_layer():
    X, y = sine_data(20)
    est = BayesianMLPRegressor(hidden_layer_sizes=(MAX_GGN_WEIGHTS // 2,))
    with pytest.raises(ValueError, match="last_layer"):
        est.fit(X, y)


@pytest.fixture(scope="module")
def diabetes_fit():
    X, y = diabetes()
    return (
        X,
        y,
        BayesianMLPRegressor(
            hidden_layer_sizes=(5,), random_state=0, max_iter=3000, tol=1e-8
        ).fit(X, y),
    )


@pytest.mark.parametrize("fraction", [0.01, 0.1])
def test_ggn_laplace_forgetting_moves_towards_the_local_retrain(diabetes_fit, fraction):
    X, y, est = diabetes_fit
    rng = np.random.RandomState(0)
    forget = rng.choice(X.shape[0], round(fraction * X.shape[0]), replace=False)
    keep = np.setdiff1d(np.arange(X.shape[0]), forget)
    local = est._local_retrain(X[keep], y[keep], max_iter=3000, tol=1e-8)
    unlearned = copy.deepcopy(est)
    with warnings.catch_warnings():
        # the routine noise warning, and at 10% the core's linearisation check
        warnings.simplefilter("ignore", UnlearningWarning)
        unlearned.partial_unfit(X[forget], y[forget])
    nothing = est.posterior_.kl_divergence(local.posterior_)
    after = unlearned.posterior_.kl_divergence(local.posterior_)
    # the remainder is the mode's non-local move (benchmarks/README.md, "Diagnosis")
    assert after < 0.85 * nothing


def test_local_retrain_is_one_mode_and_keeps_the_noise_unless_asked(diabetes_fit):
    X, y, est = diabetes_fit
    keep = np.arange(10, X.shape[0])
    local = est._local_retrain(X[keep], y[keep], max_iter=3000, tol=1e-8)
    assert local.noise_variance_ == est.noise_variance_
    nothing = est.posterior_.kl_divergence(local.posterior_)
    # started from the forgotten posterior's mean instead, the MAP lands on it: the
    # reference is the one mode near the fit, not a point where L-BFGS stopped
    moved = copy.deepcopy(est)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnlearningWarning)
        moved.partial_unfit(X[:10], y[:10])
    again = moved._local_retrain(X[keep], y[keep], max_iter=3000, tol=1e-8)
    assert moved.posterior_.kl_divergence(local.posterior_) > 1e-2 * nothing
    assert again.posterior_.kl_divergence(local.posterior_) < 1e-4 * nothing
    relearned = est._local_retrain(
        X[keep], y[keep], max_iter=3000, tol=1e-8, relearn_noise=True
    )
    # MacKay's fixed point on the remaining rows at the retrained mode
    beta = 1.0 / relearned.noise_variance_
    posterior = relearned.posterior_
    gamma = posterior.n_features - est.alpha * np.trace(np.linalg.inv(posterior.precision))
    residual = y[keep] - relearned.predict(X[keep])
    np.testing.assert_allclose(beta, (keep.size - gamma) / (residual @ residual), rtol=0.02)


def test_a_method_parameter_the_network_lacks_keeps_the_methods_default():
    X, y = sine_data(120)
    est = BayesianMLPRegressor(
        hidden_layer_sizes=(4,), unlearning="lcodec", random_state=0, max_iter=2000,
        lcodec_n_perturbations=50,
    ).fit(X, y)  # fmt: skip
    before = est.posterior_
    # the method called directly with the estimator's parameters and its own default
    expected, _ = get_method("lcodec").function(
        before, est.model_, X[:3], y[:3], np.ones(3), lcodec_n_perturbations=50,
        lcodec_scale=0.1, lcodec_max_features=None, random_state=0,
    )  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnlearningWarning)
        est.partial_unfit(X[:3], y[:3])  # 'lcodec' also reads removal_noise
    assert est.forget_report_.method == "lcodec"
    assert not np.allclose(est.posterior_.mean, before.mean)
    np.testing.assert_allclose(est.posterior_.mean, expected.mean, rtol=1e-12)

    def needs_a_knob(posterior, model, X, y, weights, *, knob):
        return posterior, None

    register_method("needs-a-knob", needs_a_knob, replace=True)
    with pytest.raises(ValueError, match=r"needs parameter\(s\) \['knob'\]"):
        est.set_params(unlearning="needs-a-knob").partial_unfit(X[3:5], y[3:5])
    assert est.n_samples_seen_ == 117


@pytest.mark.parametrize("curvature", ["ggn", "last_layer"])
def test_forget_runs_blas_on_one_thread_and_restores_it(curvature, monkeypatch):
    from threadpoolctl import threadpool_info

    def blas_threads():
        return [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]

    X, y = sine_data(100)
    est = BayesianMLPRegressor(
        hidden_layer_sizes=(4,), curvature=curvature, noise_variance=0.01, random_state=0,
        max_iter=2000,
    ).fit(X, y)  # fmt: skip
    before, seen = blas_threads(), []
    name = "_forget_exactly" if curvature == "last_layer" else "_forget_approximately"
    original = getattr(est, name)

    def recording(*args):
        seen.extend(blas_threads())
        return original(*args)

    monkeypatch.setattr(est, name, recording)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnlearningWarning)
        est.partial_unfit(X[:3], y[:3])
    assert seen and set(seen) == {1}
    assert blas_threads() == before


@pytest.mark.parametrize("method", ["eubo", "rkl"])
def test_sampling_methods_run_and_warn_when_no_better_than_nothing(method):
    X, y = sine_data(150)
    est = BayesianMLPRegressor(
        hidden_layer_sizes=(4,), random_state=0, max_iter=2000, tol=1e-8, n_samples=400
    ).fit(X, y)
    keep = np.arange(3, 150)
    local = est._local_retrain(X[keep], y[keep], max_iter=2000, tol=1e-8)
    nothing = est.posterior_.kl_divergence(local.posterior_)
    est.set_params(unlearning=method)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        est.partial_unfit(X[:3], y[:3])
    messages = [str(w.message) for w in caught if "noise_variance_" not in str(w.message)]
    assert est.forget_report_.method == method
    assert np.all(np.isfinite(est.posterior_.mean))
    # better than doing nothing, or it said it may not be
    assert est.posterior_.kl_divergence(local.posterior_) < nothing or messages


def test_laplace_on_a_vi_posterior_uses_expected_curvature():
    X, y = sine_data(150)
    est = BayesianMLPRegressor(
        hidden_layer_sizes=(4,), inference="vi", random_state=0, max_iter=500
    ).fit(X, y)
    before = est.posterior_
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "noise_variance_", UnlearningWarning)
        est.partial_unfit(X[:5], y[:5])
    assert est.forget_report_.method == "laplace"
    assert est.posterior_.log_det_covariance() > before.log_det_covariance()


@pytest.mark.filterwarnings("ignore:overflow:RuntimeWarning")
@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")
def test_a_refused_forget_leaves_the_estimator_unchanged():
    X, y = sine_data()
    est = BayesianMLPRegressor(hidden_layer_sizes=(4,), random_state=0).fit(X, y)
    saved = copy.deepcopy(est)
    with pytest.raises(ValueError):
        est.partial_unfit(X[:3] + 10.0, y[:3])  # never learned: the ledger refuses
    with pytest.raises(ValueError, match="unlearning='eubo' failed"):
        # forgetting most rows by the EUBO runs away: refused, not stored
        est.set_params(unlearning="eubo").partial_unfit(X[:150], y[:150])
    est.set_params(unlearning="laplace")
    assert set(est.__dict__) - {"_lock"} == set(saved.__dict__)
    np.testing.assert_array_equal(est.posterior_.precision, saved.posterior_.precision)
    np.testing.assert_array_equal(est.posterior_.mean, saved.posterior_.mean)
    np.testing.assert_array_equal(est.coefs_[0], saved.coefs_[0])
    assert est.n_samples_seen_ == saved.n_samples_seen_
    assert est.ledger_.n_rows == saved.ledger_.n_rows
    assert "forget_report_" not in est.__dict__


def test_a_runaway_eubo_is_refused_without_numpy_warnings():
    X, y = diabetes()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est = BayesianMLPRegressor(hidden_layer_sizes=(8,), random_state=0).fit(X, y)
    forget = np.random.RandomState(0).permutation(len(y))[: int(0.4 * len(y))]
    with warnings.catch_warnings():
        # the overflow of the runaway iterates is expected: only the refusal surfaces
        warnings.simplefilter("error")
        warnings.simplefilter("ignore", UnlearningWarning)
        with pytest.raises(ValueError, match="unlearning='eubo' failed"):
            est.set_params(unlearning="eubo").partial_unfit(X[forget], y[forget])
    assert est.n_samples_seen_ == len(y) and "forget_report_" not in est.__dict__


def test_candidate_groups_are_each_hidden_units_incoming_weights():
    X, _ = sine_data(30)
    est = BayesianMLPRegressor(
        hidden_layer_sizes=(3, 2), random_state=0, max_iter=2000
    ).fit(X, np.sin(X[:, 0]))
    predictor, theta = est.model_.predictor, est.posterior_.mean
    values = predictor.candidate_values(X, theta)
    groups = predictor.candidate_indices(theta)
    assert values.shape == (30, 5) and len(groups) == 5
    np.testing.assert_allclose(
        values[:, :3], np.tanh(X @ est.coefs_[0] + est.intercepts_[0])
    )
    for g, indices in enumerate(groups[:3]):  # first layer: only unit g changes
        moved = theta.copy()
        moved[indices] += 0.3
        changed = np.abs(predictor.candidate_values(X, moved) - values)[:, :3].max(axis=0)
        assert changed[g] > 0 and np.all(np.delete(changed, g) == 0)


EXPECTED_FAILED_CHECKS = {
    "check_sample_weight_equivalence_on_dense_data": (
        "L-BFGS on the non-convex MAP objective stops at a tolerance: weighted and "
        "repeated rows define the same objective, but round-off sends the iterates "
        "along slightly different paths (predictions differ at the 1e-5 level)."
    ),
}


@parametrize_with_checks(
    [
        BayesianMLPRegressor(hidden_layer_sizes=(3,), max_iter=50, random_state=0),
        BayesianMLPRegressor(
            hidden_layer_sizes=(3,), max_iter=50, alpha=None, random_state=0
        ),
    ],
    expected_failed_checks=lambda estimator: EXPECTED_FAILED_CHECKS,
)
def test_sklearn_compatible(estimator, check):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        check(estimator)


@pytest.mark.parametrize("solver", ["lbfgs", "adam"])
def test_verbose_prints_each_iteration_and_changes_nothing(solver, capsys):
    rng = np.random.RandomState(0)
    X = rng.randn(60, 2)
    y = np.sin(X[:, 0]) + 0.1 * rng.randn(60)
    settings = dict(
        hidden_layer_sizes=(3,), solver=solver, noise_variance=0.01, max_iter=30,
        random_state=0,
    )  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        quiet = BayesianMLPRegressor(**settings).fit(X, y)
        assert capsys.readouterr().out == ""
        loud = BayesianMLPRegressor(verbose=1, **settings).fit(X, y)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == loud.n_iter_ >= 1
    assert lines[0].startswith("Iteration 1, loss = ")
    np.testing.assert_array_equal(loud.predict(X), quiet.predict(X))


def test_a_fit_that_explains_nothing_warns():
    """Unscaled diabetes targets (mean 152, standard deviation 77) under the prior
    N(0, 1): the learned noise exceeds their variance, the network predicts them
    worse than their mean, and fit says so; standardised, it does not."""
    X, y = load_diabetes(return_X_y=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        est = BayesianMLPRegressor(random_state=0).fit(X, y)
    assert est.noise_variance_ >= y.var()
    assert est.score(X, y) < 0.0
    assert any(
        w.category is UserWarning and "explains none" in str(w.message) for w in caught
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        est = BayesianMLPRegressor(random_state=0).fit(X, (y - y.mean()) / y.std())
    assert est.score(X, (y - y.mean()) / y.std()) > 0.3
    assert not [w for w in caught if "explains none" in str(w.message)]


def test_a_clustered_forget_worse_than_doing_nothing_warns():
    # The rows furthest along the first principal axis of standardised diabetes: the
    # one-step divide-out ends further from the local retrain than doing nothing.
    X, y = load_diabetes(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    y = (y - y.mean()) / y.std()
    order = np.random.RandomState(0).permutation(X.shape[0])
    X, y = X[order[: int(0.8 * X.shape[0])]], y[order[: int(0.8 * X.shape[0])]]
    est = BayesianMLPRegressor(
        hidden_layer_sizes=(5,), random_state=0, max_iter=3000, tol=1e-8
    ).fit(X, y)
    centred = X - X.mean(axis=0)
    axis = np.linalg.svd(centred, full_matrices=False)[2][0]
    forget = np.argsort(centred @ axis)[-round(0.1 * X.shape[0]) :]
    keep = np.setdiff1d(np.arange(X.shape[0]), forget)
    local = est._local_retrain(X[keep], y[keep], max_iter=3000, tol=1e-8)
    unlearned = copy.deepcopy(est)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UnlearningWarning)
        unlearned.partial_unfit(X[forget], y[forget])
    ratio = unlearned.posterior_.kl_divergence(
        local.posterior_
    ) / est.posterior_.kl_divergence(local.posterior_)
    assert ratio > 1.0
    texts = [
        str(w.message)
        for w in caught
        if "noise_variance_ was learned" not in str(w.message)
    ]
    assert any("not supported by the forgotten rows' likelihood" in t for t in texts), texts
