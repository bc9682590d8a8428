"""BayesianMLPRegressor: a fit off its mode, counts without a ledger, a noise the rows
cannot determine, non-finite fits, and diagonal forgets that remove almost nothing;
each against a dense NumPy reference or a retrain."""

import copy
import pickle
import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from test_mlp import dense_tanh_jacobian, diabetes, sine_data

from sklunlearn.exceptions import UnlearningWarning
from sklunlearn.linear_model import BayesianLinearRegression
from sklunlearn.neural_network import BayesianMLPRegressor
from sklunlearn.neural_network._mlp import MODE_DISTANCE
from sklunlearn.unlearning._diagonal import LEFT_OUT_DISTANCE, SHORT_STEP


def dense_newton_decrement(est, X, y, weights=None):
    """``sqrt(g' Lambda^-1 g)`` of the MAP objective at the fitted weights, densely.

    ``g = J' (beta w r) + alpha theta`` and ``Lambda = alpha I + beta J' diag(w) J``
    (its diagonal for ``'diag'``), ``J`` from ``coefs_`` row by row.
    """
    weights = np.ones(X.shape[0]) if weights is None else weights
    J, _ = dense_tanh_jacobian(est, X)
    theta = est.posterior_.mean
    beta = 1.0 / est.noise_variance_
    gradient = J.T @ (beta * weights * (est.predict(X) - y)) + est.alpha_ * theta
    precision = est.alpha_ * np.eye(theta.size) + beta * (J.T * weights) @ J
    if est.curvature == "diag":
        return np.sqrt(gradient @ (gradient / np.diag(precision)))
    return np.sqrt(gradient @ np.linalg.solve(precision, gradient))


# ------------------------------------------------------------------ off the mode
@pytest.mark.parametrize("curvature", ["ggn", "diag"])
def test_an_adam_fit_far_from_the_mode_warns_with_its_newton_decrement(curvature):
    X, y = diabetes()
    est = BayesianMLPRegressor(
        hidden_layer_sizes=(5,), solver="adam", learning_rate_init=0.01, max_iter=300,
        random_state=0, curvature=curvature,
    )  # fmt: skip
    with pytest.warns(ConvergenceWarning, match="standard deviations from the mode"):
        est.fit(X, y)
    assert est.n_iter_ < 300  # Adam's own stopping rule was met
    np.testing.assert_allclose(est.mode_distance_, dense_newton_decrement(est, X, y))
    assert est.mode_distance_ > MODE_DISTANCE
    if curvature == "ggn":
        # the warning is true: L-BFGS continued from Adam's weights moves them further
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            polished = copy.deepcopy(est).set_params(solver="lbfgs")
            polished = polished._local_retrain(X, y, max_iter=5000, tol=1e-9)
        assert est.posterior_.mahalanobis(polished.posterior_.mean) > MODE_DISTANCE
        assert polished.mode_distance_ < 0.1


def test_partial_fit_with_adam_is_checked_too():
    X, y = sine_data(200)
    est = BayesianMLPRegressor(
        hidden_layer_sizes=(5,), random_state=0, max_iter=2000, tol=1e-8
    ).fit(X[:100], y[:100])
    est.set_params(solver="adam", learning_rate_init=0.05, max_iter=40)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        est.partial_fit(X[100:], y[100:])
    messages = [str(w.message) for w in caught if w.category is ConvergenceWarning]
    assert est.mode_distance_ > MODE_DISTANCE
    assert messages and f"{est.mode_distance_:.3g} posterior standard" in messages[0]


@pytest.mark.parametrize("curvature", ["ggn", "diag"])
def test_an_lbfgs_fit_at_the_mode_does_not_warn(curvature):
    X, y = diabetes()
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        est = BayesianMLPRegressor(
            hidden_layer_sizes=(5,), random_state=0, max_iter=1000, curvature=curvature
        ).fit(X, y)
    np.testing.assert_allclose(
        est.mode_distance_, dense_newton_decrement(est, X, y), rtol=1e-6, atol=1e-9
    )
    assert est.mode_distance_ < 0.2 * MODE_DISTANCE


# ------------------------------------------------------------------ no ledger
@pytest.mark.parametrize("curvature", ["ggn", "last_layer"])
def test_without_a_ledger_counts_and_refusals_follow_the_linear_model(curvature):
    X, y = sine_data(20)
    kw = dict(hidden_layer_sizes=(3,), random_state=0, noise_variance=0.01)
    est = BayesianMLPRegressor(curvature=curvature, ledger=False, **kw).fit(X, y)
    reference = BayesianLinearRegression(ledger=False).fit(X, y)
    half = np.full(10, 0.5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnlearningWarning)
        for rows, weights in [
            (slice(0, 10), half), (slice(0, 10), half), (slice(10, 12), None)
        ]:  # fmt: skip
            est.partial_unfit(X[rows], y[rows], sample_weight=weights)
            reference.partial_unfit(X[rows], y[rows], sample_weight=weights)
            assert est.n_samples_seen_ == reference.n_samples_seen_
        assert est.n_samples_seen_ >= 1  # 8 rows of weight are left
        before = pickle.dumps(est)
        # more weight than is left (8), though fewer rows than were learned
        with pytest.raises(ValueError, match="only .* total weight of 8 were learned"):
            est.partial_unfit(X[12:], y[12:], sample_weight=np.full(8, 1.5))
        with pytest.raises(ValueError, match="remove all of the training weight"):
            est.partial_unfit(X[12:], y[12:])
        assert pickle.dumps(est) == before


def test_with_the_ledger_fractional_forgets_count_rows_until_their_weight_is_gone():
    X, y = sine_data(20)
    est = BayesianMLPRegressor(
        hidden_layer_sizes=(3,), random_state=0, noise_variance=0.01
    ).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnlearningWarning)
        est.partial_unfit(X[:10], y[:10], sample_weight=np.full(10, 0.5))
        assert est.n_samples_seen_ == 20
        est.partial_unfit(X[:10], y[:10], sample_weight=np.full(10, 0.5))
    assert est.n_samples_seen_ == 10


# ------------------------------------------------------------------ learned noise
def dense_mackay_noise(est, X, y, weights):
    """``sum_i w_i r_i^2 / max(W - gamma, min(W, 1))``, ``gamma = p - alpha tr(Sigma)``
    (MacKay 1992), and ``W - gamma``."""
    J, _ = dense_tanh_jacobian(est, X)
    beta = 1.0 / est.noise_variance_
    precision = est.alpha_ * np.eye(J.shape[1]) + beta * (J.T * weights) @ J
    gamma = J.shape[1] - est.alpha_ * np.trace(np.linalg.inv(precision))
    squared_error = weights @ (y - est.predict(X)) ** 2
    total = weights.sum()
    return squared_error / max(total - gamma, min(total, 1.0)), total - gamma


def test_a_noise_learned_from_a_total_weight_below_one_is_warned_and_not_shrunk():
    X, y = sine_data(50)
    weights = np.full(50, 0.01)
    est = BayesianMLPRegressor(hidden_layer_sizes=(3,), random_state=0, max_iter=500)
    with pytest.warns(UserWarning, match="residual degrees of freedom") as record:
        est.fit(X, y, sample_weight=weights)
    # the specific warning replaces the one about the targets' scale
    assert not any("explains none" in str(w.message) for w in record)
    expected, degrees = dense_mackay_noise(est, X, y, weights)
    assert degrees < 1.0
    # MacKay's fixed point, settled to the fit's relative tolerance
    np.testing.assert_allclose(est.noise_variance_, expected, rtol=2e-2)
    # with W < 1: the weighted residual variance (maximum likelihood), not W times it
    weighted_mse = weights @ (y - est.predict(X)) ** 2 / weights.sum()
    np.testing.assert_allclose(est.noise_variance_, weighted_mse, rtol=2e-2)


def test_an_ordinary_learned_noise_is_unchanged_and_silent():
    X, y = sine_data(50)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        est = BayesianMLPRegressor(
            hidden_layer_sizes=(3,), random_state=0, max_iter=500
        ).fit(X, y)
    expected, degrees = dense_mackay_noise(est, X, y, np.ones(50))
    assert degrees > 10
    np.testing.assert_allclose(est.noise_variance_, expected, rtol=2e-2)


# ------------------------------------------------------------------ non-finite fits
@pytest.mark.parametrize("curvature", ["ggn", "diag", "last_layer"])
@pytest.mark.parametrize("noise_variance", [None, 0.1])
def test_a_fit_that_overflows_is_refused_and_changes_nothing(curvature, noise_variance):
    X, y = sine_data(60)
    est = BayesianMLPRegressor(
        hidden_layer_sizes=(3,), random_state=0, max_iter=300, curvature=curvature,
        noise_variance=noise_variance,
    )  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        with pytest.raises(ValueError, match="did not stay within float64"):
            clone = copy.deepcopy(est)
            clone.fit(X, y * 1e200)
        est.fit(X, y)
    before = pickle.dumps(est)
    prediction = est.predict(X[:3])
    with pytest.raises(ValueError, match="standardise X and y"):
        est.partial_fit(X[:3], y[:3] * 1e200)
    assert pickle.dumps(est) == before
    np.testing.assert_array_equal(est.predict(X[:3]), prediction)


# ------------------------------------------------------------------ diagonal step
def test_a_diagonal_forget_cut_to_a_short_step_says_most_influence_remains():
    X, y = diabetes()
    forget = np.sort(np.random.RandomState(0).choice(len(X), 5, replace=False))
    y = y.copy()
    y[forget] = 8.0  # mislabelled rows, then forgotten
    keep = np.setdiff1d(np.arange(len(X)), forget)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est = BayesianMLPRegressor(
            hidden_layer_sizes=(5,), curvature="diag", random_state=0, max_iter=1000,
            tol=1e-6,
        ).fit(X, y)  # fmt: skip
        local = est._local_retrain(X[keep], y[keep], max_iter=2000, tol=1e-8)
    unlearned = copy.deepcopy(est)
    with pytest.warns(UnlearningWarning, match="most of the forgotten rows' influence"):
        unlearned.partial_unfit(X[forget], y[forget])
    record = unlearned.forget_report_.diagnostics
    # the left-out length, densely: (1 - t) sqrt(g' diag(p_r)^-1 g), g the rows'
    # log-likelihood gradient and p_r the divided-out precision
    J, _ = dense_tanh_jacobian(est, X[forget])
    beta = 1.0 / est.noise_variance_
    gradient = J.T @ (beta * (y[forget] - est.predict(X[forget])))
    remaining = np.maximum(est.posterior_.precision - beta * (J * J).sum(0), est.alpha)
    np.testing.assert_allclose(unlearned.posterior_.precision, remaining, rtol=1e-10)
    left_out = (1.0 - record.step_length) * np.sqrt(gradient @ (gradient / remaining))
    assert record.step_length < SHORT_STEP and left_out > LEFT_OUT_DISTANCE
    assert any(f"{left_out:.3g} posterior standard" in m for m in record.warnings)
    # the warning is true: the forget is almost as far from the retrain as before it
    ratio = unlearned.posterior_.kl_divergence(
        local.posterior_
    ) / est.posterior_.kl_divergence(local.posterior_)
    assert ratio > 0.9
