"""BayesianMLPRegressor with curvature='diag' and DiagonalGaussianPosterior against dense
NumPy references, against the local retrain and against doing nothing."""

import copy
import pickle
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.estimator_checks import parametrize_with_checks
from test_mlp import EXPECTED_FAILED_CHECKS, dense_tanh_jacobian

from sklunlearn._diagonal_posterior import DiagonalGaussianPosterior
from sklunlearn.exceptions import UnlearningWarning
from sklunlearn.metrics import gaussian_kl, predictive_kl
from sklunlearn.model_selection import UnlearningAudit
from sklunlearn.neural_network import BayesianMLPRegressor
from sklunlearn.posterior import GaussianPosterior
from sklunlearn.unlearning import get_method
from sklunlearn.unlearning._diagonal import (
    diagonal_divide_out,
    diagonal_gauss_newton,
)


def plane_data(n=400, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.uniform(-2, 2, (n, 2))
    return X, np.sin(2 * X[:, 0]) + 0.5 * X[:, 1] + 0.1 * rng.randn(n)


def network(**params):
    defaults = dict(
        hidden_layer_sizes=(8,), curvature="diag", noise_variance=0.01, random_state=0,
        max_iter=5000, tol=1e-9,
    )  # fmt: skip
    return BayesianMLPRegressor(**(defaults | params))


@pytest.fixture(scope="module")
def fitted():
    X, y = plane_data()
    return X, y, network().fit(X, y)


def objective_gradient(est, X, y, theta):
    """Gradient of the MAP objective on the rows (prior alpha, noise fixed) at theta."""
    predictor, beta = est.model_.predictor, 1.0 / est.noise_variance_
    residual = predictor.value(X, theta) - y
    return predictor.vjp(X, theta, beta * residual) + est.alpha * theta


# ------------------------------------------------------------------ the posterior
@pytest.mark.parametrize("hidden", [(6,), (4, 3)])
def test_diagonal_precision_is_the_diagonal_of_the_ggn_precision(hidden):
    X, y = plane_data(150)
    diagonal = network(hidden_layer_sizes=hidden).fit(X, y)
    full = network(hidden_layer_sizes=hidden, curvature="ggn").fit(X, y)
    # the noise is fixed, so both fits minimise one objective from one start
    np.testing.assert_array_equal(diagonal.posterior_.mean, full.posterior_.mean)
    np.testing.assert_allclose(
        diagonal.posterior_.precision, np.diag(full.posterior_.precision), rtol=1e-10
    )
    assert isinstance(diagonal.posterior_, DiagonalGaussianPosterior)


def test_diagonal_gauss_newton_reads_small_blocks_without_changing_the_sum(monkeypatch):
    X, y = plane_data(50)
    est = network(hidden_layer_sizes=(5,)).fit(X, y)
    predictor, theta = est.model_.predictor, est.posterior_.mean
    c = np.random.RandomState(0).uniform(0.5, 2.0, 50)
    J = predictor.jacobian(X, theta)
    expected = c @ (J * J)
    monkeypatch.setattr("sklunlearn.unlearning._diagonal._DIAGONAL_BLOCK_ENTRIES", 7 * 21)
    np.testing.assert_allclose(diagonal_gauss_newton(predictor, X, theta, c), expected)


def test_predictive_std_matches_dense_reference(fitted):
    X, _, est = fitted
    J, _ = dense_tanh_jacobian(est, X[:50])
    variance = (J * J) @ (1.0 / est.posterior_.precision) + est.noise_variance_
    mean, std = est.predict(X[:50], return_std=True)
    np.testing.assert_allclose(std, np.sqrt(variance), rtol=1e-10)
    W1, W2 = est.coefs_
    b1, b2 = est.intercepts_
    np.testing.assert_allclose(mean, np.tanh(X[:50] @ W1 + b1) @ W2[:, 0] + b2[0])


def test_noise_learning_uses_the_diagonal_effective_number_of_parameters():
    X, y = plane_data(300)
    est = network(noise_variance=None).fit(X, y)
    assert 0.005 < est.noise_variance_ < 0.02  # the true noise variance is 0.01
    # MacKay's fixed point with gamma = p - alpha sum_j 1 / precision_j, stopped at 1%
    posterior = est.posterior_
    gamma = posterior.n_features - est.alpha * np.sum(1.0 / posterior.precision)
    residual = y - est.predict(X)
    expected = (X.shape[0] - gamma) / (residual @ residual)
    np.testing.assert_allclose(1.0 / est.noise_variance_, expected, rtol=0.02)
    # the precision is the diagonal GGN at the learned noise
    J, _ = dense_tanh_jacobian(est, X)
    precision = est.alpha + (J * J).sum(axis=0) / est.noise_variance_
    np.testing.assert_allclose(posterior.precision, precision, rtol=1e-10)


def test_partial_fit_adds_the_rows_diagonal_curvature_to_the_posterior():
    X, y = plane_data(300)
    est = network().fit(X[:200], y[:200])
    before = est.posterior_
    est.partial_fit(X[200:], y[200:])
    J, _ = dense_tanh_jacobian(est, X[200:])
    expected = before.precision + (J * J).sum(axis=0) / est.noise_variance_
    np.testing.assert_allclose(est.posterior_.precision, expected, rtol=1e-10)
    # the new mean is the MAP of the rows under the old posterior as the prior
    theta = est.posterior_.mean
    predictor, beta = est.model_.predictor, 1.0 / est.noise_variance_
    gradient = predictor.vjp(
        X[200:], theta, beta * (predictor.value(X[200:], theta) - y[200:])
    )
    gradient += before.precision * (theta - before.mean)
    assert np.max(np.abs(gradient)) < 1e-6 * np.max(np.abs(before.precision * theta))
    assert est.n_samples_seen_ == 300


def test_vi_with_diag_on_dask_is_refused_before_any_pass(client, monkeypatch):
    da = pytest.importorskip("dask.array")
    X, y = plane_data(50)

    def no_pass(rows):
        raise AssertionError("a pass over the chunks was started")

    monkeypatch.setattr("sklunlearn._dask._mlp.ChunkedRows", no_pass)
    lazy = (da.from_array(X, chunks=(25, 2)), da.from_array(y, chunks=25))
    est = network(inference="vi", hidden_layer_sizes=(3,))
    state = pickle.dumps(est)
    with pytest.raises(NotImplementedError, match="inference='laplace'"):
        est.fit(*lazy)
    assert pickle.dumps(est) == state
    # in memory it fits; adding rows on the cluster is refused, changing nothing
    est.fit(X, y)
    state = pickle.dumps(est)
    with pytest.raises(NotImplementedError, match="inference='laplace'"):
        est.partial_fit(*lazy)
    assert pickle.dumps(est) == state


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_a_network_beyond_the_ggn_limit_fits_with_diag():
    X, y = plane_data(60)
    est = network(hidden_layer_sizes=(2000,), max_iter=5).fit(X, y)
    assert est.posterior_.n_features == 2000 * 4 + 1
    assert np.all(est.posterior_.precision >= est.alpha)


# --------------------------------------------------------- the posterior class
def dense(posterior):
    return GaussianPosterior.from_precision(posterior.mean, np.diag(posterior.precision))


def random_posterior(rng, d):
    return DiagonalGaussianPosterior(rng.randn(d), rng.uniform(0.2, 5.0, d))


def test_diagonal_posterior_algebra_matches_dense_formulas():
    rng = np.random.RandomState(0)
    p, q = random_posterior(rng, 6), random_posterior(rng, 6)
    full = GaussianPosterior.from_precision(
        rng.randn(6), np.cov(rng.randn(6, 20)) + np.eye(6)
    )
    np.testing.assert_allclose(p.kl_divergence(q), dense(p).kl_divergence(dense(q)))
    np.testing.assert_allclose(p.kl_divergence(full), dense(p).kl_divergence(full))
    # the metrics compare diagonal and full posteriors either way round
    np.testing.assert_allclose(gaussian_kl(full, p), full.kl_divergence(dense(p)))
    np.testing.assert_allclose(gaussian_kl(p, q), p.kl_divergence(q))
    theta = rng.randn(4, 6)
    reference = stats.multivariate_normal(p.mean, np.diag(1.0 / p.precision))
    np.testing.assert_allclose(p.log_pdf(theta), reference.logpdf(theta))
    np.testing.assert_allclose(p.log_det_covariance(), dense(p).log_det_covariance())
    np.testing.assert_allclose(p.mahalanobis(theta[0]), dense(p).mahalanobis(theta[0]))
    np.testing.assert_allclose(p.solve(theta.T), dense(p).solve(theta.T))
    np.testing.assert_allclose(
        p.predictive_variance(theta), dense(p).predictive_variance(theta)
    )
    np.testing.assert_allclose(p.variance, np.diag(dense(p).covariance))
    samples = p.sample(40000, random_state=0)
    np.testing.assert_allclose(samples.mean(axis=0), p.mean, atol=0.03)
    np.testing.assert_allclose(samples.var(axis=0), p.variance, rtol=0.05)
    np.testing.assert_array_equal(p.sample(3, random_state=1), p.sample(3, random_state=1))


@settings(max_examples=50, deadline=None)
@given(st.integers(1, 8), st.integers(0, 2**31 - 1))
def test_kl_is_zero_to_itself_and_positive_otherwise(d, seed):
    rng = np.random.RandomState(seed)
    p, q = random_posterior(rng, d), random_posterior(rng, d)
    assert abs(p.kl_divergence(p)) < 1e-12
    assert abs(p.kl_divergence(p.copy())) < 1e-12
    assert p.kl_divergence(q) > 0.0
    assert p.kl_divergence(p.with_mean(p.mean + 1e-3)) > 0.0


def test_diagonal_posterior_is_immutable_validated_and_pickles():
    rng = np.random.RandomState(0)
    mean, precision = rng.randn(3), np.array([1.0, 2.0, 3.0])
    p = DiagonalGaussianPosterior(mean, precision)
    mean[0], precision[0] = 99.0, 99.0  # the caller's arrays are not kept
    assert p.mean[0] != 99.0 and p.precision[0] == 1.0
    with pytest.raises(ValueError, match="read-only"):
        p.mean[0] = 1.0
    with pytest.raises(ValueError, match="read-only"):
        p.precision[0] = 1.0
    moved = p.with_mean(np.zeros(3))
    assert moved is not p and p.mean[0] != 0.0
    again = pickle.loads(pickle.dumps(p))
    np.testing.assert_array_equal(again.mean, p.mean)
    np.testing.assert_array_equal(again.precision, p.precision)
    with pytest.raises(ValueError, match="read-only"):
        again.mean[0] = 1.0
    assert repr(p) == "DiagonalGaussianPosterior(n_features=3)"
    with pytest.raises(ValueError, match="positive"):
        DiagonalGaussianPosterior(np.zeros(2), [1.0, 0.0])
    with pytest.raises(ValueError, match="2 entries"):
        DiagonalGaussianPosterior(np.zeros(2), [1.0, 1.0, 1.0])
    with pytest.raises(ValueError, match="finite"):
        DiagonalGaussianPosterior([np.nan, 0.0], [1.0, 1.0])
    with pytest.raises(ValueError, match="3-dimensional"):
        p.kl_divergence(DiagonalGaussianPosterior(np.zeros(2), np.ones(2)))
    with pytest.raises(TypeError, match="DiagonalGaussianPosterior"):
        p.kl_divergence((np.zeros(3), np.eye(3)))


# ------------------------------------------------------------------ forgetting
def dense_divide_out(est, X, y, block=None):
    """The diagonal divide-out with the full Newton step, densely: (mean, precision)."""
    posterior, beta = est.posterior_, 1.0 / est.noise_variance_
    theta = posterior.mean
    J, _ = dense_tanh_jacobian(est, X)
    residual = y - est.model_.predictor.value(X, theta)
    gradient = beta * J.T @ residual
    precision = np.maximum(posterior.precision - beta * (J * J).sum(axis=0), est.alpha)
    step = -gradient / precision
    if block is not None:
        step[np.setdiff1d(np.arange(theta.shape[0]), block)] = 0.0
    return theta + step, precision


def test_divide_out_matches_the_dense_formula_and_its_step_length(fitted):
    X, y, est = fitted
    mean, precision = dense_divide_out(est, X[:10], y[:10])
    full, record = diagonal_divide_out(
        est.posterior_, est.model_, X[:10], y[:10], np.ones(10), line_search=False
    )
    np.testing.assert_allclose(full.precision, precision, rtol=1e-10)
    np.testing.assert_allclose(full.mean, mean, rtol=1e-10, atol=1e-12)
    assert record.step_length == 1.0
    damped, record = diagonal_divide_out(
        est.posterior_, est.model_, X[:10], y[:10], np.ones(10)
    )
    np.testing.assert_array_equal(damped.precision, full.precision)
    theta, direction = est.posterior_.mean, mean - est.posterior_.mean
    np.testing.assert_allclose(damped.mean, theta + record.step_length * direction)
    # t minimises the predicted ||g + t H_r d||, H_r d estimated from the rows (densely)
    J, _ = dense_tanh_jacobian(est, X[:10])
    beta = 1.0 / est.noise_variance_
    h = beta * (J * J).sum(axis=0)
    rho = (precision - est.alpha).sum() / h.sum()
    gradient = -direction * precision
    estimated = est.alpha * direction + rho * beta * J.T @ (J @ direction)
    assert 0.0 < record.step_length < 1.0
    np.testing.assert_allclose(
        record.step_length, -(gradient @ estimated) / (estimated @ estimated)
    )
    np.testing.assert_allclose(
        record.predicted_residual,
        np.linalg.norm(gradient + record.step_length * estimated),
    )
    assert record.predicted_residual < record.gradient_norm


def test_lcodec_on_diag_moves_only_the_selected_units_and_the_output_layer(fitted):
    X, y, est = fitted
    new, record = get_method("lcodec").function(
        est.posterior_, est.model_, X[:10], y[:10], np.ones(10),
        lcodec_n_perturbations=300, random_state=0,
    )  # fmt: skip
    block = np.array(record.parameters)
    output = np.arange(*est.model_.predictor.output_slice().indices(new.n_features))
    assert record.selected and set(output) <= set(block)
    groups = est.model_.predictor.candidate_indices(est.posterior_.mean)
    expected = np.union1d(np.concatenate([groups[g] for g in record.selected]), output)
    np.testing.assert_array_equal(block, expected)
    mean, precision = dense_divide_out(est, X[:10], y[:10], block)
    theta = est.posterior_.mean
    np.testing.assert_allclose(new.precision, precision, rtol=1e-10)
    np.testing.assert_allclose(new.mean, theta + record.step_length * (mean - theta))
    unselected = np.setdiff1d(np.arange(theta.shape[0]), block)
    np.testing.assert_array_equal(new.mean[unselected], theta[unselected])
    assert 0.0 < record.full_step_distance < 1.0


def forget_quality(est, local, X, y, forget, keep):
    """(predictive KL(local || est) on the forgotten rows, remaining gradient norm)."""
    return (
        predictive_kl(local, est, X[forget]),
        np.linalg.norm(objective_gradient(est, X[keep], y[keep], est.posterior_.mean)),
    )


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_laplace_and_lcodec_on_diag_beat_doing_nothing_without_false_alarms(fitted, seed):
    X, y, est = fitted
    forget = np.random.RandomState(seed).choice(X.shape[0], 20, replace=False)
    keep = np.setdiff1d(np.arange(X.shape[0]), forget)
    local = est._local_retrain(X[keep], y[keep])
    nothing = forget_quality(est, local, X, y, forget, keep)
    # the local retrain is a mode of the remaining rows
    assert forget_quality(local, local, X, y, forget, keep)[1] < 1e-3 * nothing[1]
    for method in ["laplace", "lcodec"]:
        unlearned = copy.deepcopy(est).set_params(
            unlearning=method, lcodec_n_perturbations=300
        )
        with warnings.catch_warnings():
            warnings.simplefilter("error", UnlearningWarning)  # no false alarm
            unlearned.partial_unfit(X[forget], y[forget])
        kl, residual = forget_quality(unlearned, local, X, y, forget, keep)
        record = unlearned.forget_report_.diagnostics
        assert unlearned.forget_report_.method == method
        assert kl < 0.9 * nothing[0], method
        assert residual < 0.6 * nothing[1], method
        assert 0.0 < record.step_length < 1.0
        # the record's ||g|| is the remaining rows' gradient of doing nothing
        np.testing.assert_allclose(record.gradient_norm, nothing[1], rtol=1e-4)


def test_the_full_diagonal_step_overshoots_and_is_reported(fitted):
    """Why the step length: the undamped step ends further than doing nothing."""
    X, y, est = fitted
    forget = np.random.RandomState(0).choice(X.shape[0], 20, replace=False)
    keep = np.setdiff1d(np.arange(X.shape[0]), forget)
    full, record = diagonal_divide_out(
        est.posterior_, est.model_, X[forget], y[forget], np.ones(20), line_search=False
    )
    nothing = np.linalg.norm(objective_gradient(est, X[keep], y[keep], est._theta))
    residual = np.linalg.norm(objective_gradient(est, X[keep], y[keep], full.mean))
    assert residual > 2.0 * nothing
    assert record.predicted_residual > 2.0 * record.gradient_norm
    assert any("predicted to leave" in message for message in record.warnings)


def test_a_clustered_deletion_steps_short_of_where_the_full_step_warns():
    X, y = plane_data(300)
    with warnings.catch_warnings():
        # a weak prior: L-BFGS ends on its budget near the mode; the measures below
        # are of the remaining rows' gradient, so they compare the same fitted state
        warnings.simplefilter("ignore", ConvergenceWarning)
        est = network(hidden_layer_sizes=(20,), alpha=0.01).fit(X, y)
    forget = np.flatnonzero(X[:, 0] > 1.0)  # a whole region of the input
    keep = np.setdiff1d(np.arange(X.shape[0]), forget)

    def remaining_gradient(theta):
        return np.linalg.norm(objective_gradient(est, X[keep], y[keep], theta))

    full, record = diagonal_divide_out(
        est.posterior_, est.model_, X[forget], y[forget], np.ones(forget.size),
        line_search=False,
    )  # fmt: skip
    nothing = remaining_gradient(est._theta)
    assert remaining_gradient(full.mean) > 3.0 * nothing
    assert any("predicted to leave" in message for message in record.warnings)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnlearningWarning)
        est.partial_unfit(X[forget], y[forget])
    assert remaining_gradient(est._theta) < nothing


def test_forgetting_rows_never_learned_is_floored_at_the_prior_and_warned():
    X, y = plane_data(100)
    est = network(hidden_layer_sizes=(4,), ledger=False).fit(X, y)
    with pytest.warns(UnlearningWarning, match="more curvature than the posterior"):
        # rows never learned, far outside the training inputs: more curvature than the
        # posterior holds (more weight than was learned is refused without a ledger)
        est.partial_unfit(3.0 * X[:50], y[:50])
    assert np.all(est.posterior_.precision >= est.alpha)
    assert est.forget_report_.diagnostics.clipped_eigenvalue < -0.1


@pytest.mark.parametrize("method", ["eubo", "rkl", "uib"])
def test_methods_needing_a_full_posterior_are_refused_leaving_it_unchanged(fitted, method):
    X, y, est = fitted
    est = copy.deepcopy(est)
    est.partial_unfit(X[:2], y[:2])  # the lock and a report exist before the refusal
    before = pickle.dumps(est)
    est.set_params(unlearning=method)
    with pytest.raises(ValueError, match="'laplace' .* or 'lcodec'"):
        est.partial_unfit(X[2:5], y[2:5])
    est.set_params(unlearning="laplace")
    assert pickle.dumps(est) == before


def test_the_audit_and_the_metrics_take_a_diagonal_posterior():
    X, y = plane_data(200)
    audit = UnlearningAudit(
        network(hidden_layer_sizes=(4,)), forget_size=0.02, random_state=0
    ).fit(X, y)
    assert 0.0 <= audit.kl_to_retrained_ < audit.kl_do_nothing_
    unlearned, retrained = audit.unlearned_estimator_, audit.retrained_estimator_
    np.testing.assert_allclose(
        audit.kl_to_retrained_,
        dense(unlearned.posterior_).kl_divergence(dense(retrained.posterior_)),
    )


# ------------------------------------------------------------------------- dask
def test_dask_fit_partial_fit_and_forget_equal_memory(client):
    da = pytest.importorskip("dask.array")
    X, y = plane_data(120)

    def lazy(values, rows):
        return da.from_array(values, chunks=(rows, *values.shape[1:]))

    # a well-conditioned objective: few L-BFGS passes over the chunks
    settings = dict(hidden_layer_sizes=(3,), noise_variance=None, alpha=100.0, tol=1e-8)
    memory = network(**settings).fit(X[:80], y[:80])
    on_dask = network(**settings).fit(lazy(X[:80], 80), lazy(y[:80], 80))
    assert isinstance(on_dask.posterior_, DiagonalGaussianPosterior)
    for step in ("fit", "partial_fit", "partial_unfit"):
        if step == "partial_fit":
            memory.partial_fit(X[80:], y[80:])
            on_dask.partial_fit(lazy(X[80:], 40), lazy(y[80:], 40))
        elif step == "partial_unfit":
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UnlearningWarning)
                memory.partial_unfit(X[:4], y[:4])
                on_dask.partial_unfit(lazy(X[:4], 2), lazy(y[:4], 2))
        for name in ("mean", "precision"):
            np.testing.assert_allclose(
                getattr(on_dask.posterior_, name),
                getattr(memory.posterior_, name),
                rtol=1e-10,
                err_msg=f"{step}: {name}",
            )


# ------------------------------------------------------------ scikit-learn checks
@parametrize_with_checks(
    [
        BayesianMLPRegressor(
            hidden_layer_sizes=(3,), curvature="diag", max_iter=50, random_state=0
        )
    ],
    expected_failed_checks=lambda estimator: EXPECTED_FAILED_CHECKS,
)
def test_sklearn_compatible(estimator, check):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        check(estimator)
