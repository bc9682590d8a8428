"""The forgetting core's pieces, each against a dense NumPy reference: predictors
(including toy ones from outside the package, linear and nonlinear in theta),
likelihoods, the prior's floor, merged likelihood terms and typed diagnostics."""

import json

import numpy as np
import pytest

from sklunlearn.posterior import GaussianPosterior
from sklunlearn.unlearning import (
    BernoulliLogit,
    GaussianNoise,
    GaussianPrior,
    Likelihood,
    LikelihoodTerms,
    LinearPredictor,
    Model,
    Predictor,
    eubo_forget,
    floor_precision,
    laplace_divide_out,
    learn,
    variational_update,
)


class RandomFeatures(Predictor):
    """``f = cos(x W + b)' theta``: nonlinear in x, linear in theta."""

    linear_in_parameters = True

    def __init__(self, n_features, n_components, seed=0):
        rng = np.random.RandomState(seed)
        self.W = rng.randn(n_features, n_components)
        self.b = rng.uniform(0, 2 * np.pi, n_components)

    def features(self, X):
        return np.cos(X @ self.W + self.b)

    def value(self, X, theta):
        return self.features(X) @ theta

    def jacobian(self, X, theta):
        return self.features(X)


class Tanh(Predictor):
    """``f = 2 tanh(x' theta)``: nonlinear in theta (a one-unit network)."""

    def value(self, X, theta):
        return 2.0 * np.tanh(X @ theta)

    def jacobian(self, X, theta):
        return (2.0 * (1.0 - np.tanh(X @ theta) ** 2))[:, None] * X


def _sigmoid(f):
    return 1.0 / (1.0 + np.exp(-f))


def _dense_jacobian(predictor, X, theta):
    """Finite-difference Jacobian: the reference does not trust ``jacobian``."""
    eps = 1e-6
    return np.column_stack(
        [
            (predictor.value(X, theta + eps * e) - predictor.value(X, theta - eps * e))
            / (2 * eps)
            for e in np.eye(theta.shape[0])
        ]
    )


def _logistic_reference(predictor, X, y, w, theta):
    J = _dense_jacobian(predictor, X, theta)
    p = _sigmoid(predictor.value(X, theta))
    return J.T @ (w * (y - p)), J.T @ np.diag(w * p * (1 - p)) @ J


@pytest.fixture(scope="module")
def problem():
    rng = np.random.RandomState(0)
    X = rng.randn(300, 3)
    y = (X @ [1.0, -1.0, 0.5] + 0.5 * rng.logistic(size=300) > 0).astype(float)
    return X, y, np.ones(300)


PREDICTORS = {
    "random_features": lambda: (RandomFeatures(3, 6), 6),
    "tanh": lambda: (Tanh(), 3),
}


@pytest.mark.parametrize("name", list(PREDICTORS))
def test_laplace_divide_out_with_a_toy_predictor_matches_numpy(problem, name):
    X, y, w = problem
    predictor, p = PREDICTORS[name]()
    model = Model(predictor, BernoulliLogit(), GaussianPrior(1.0, p))
    full, record = learn(model.prior.posterior(), model, X, y, w)
    assert record.converged
    # the fit is a stationary point of the log posterior (to the tolerance of a
    # Gauss-Newton iteration, linear convergence when nonlinear in theta)
    g, H = _logistic_reference(predictor, X, y, w, full.mean)
    np.testing.assert_allclose(g, full.mean, atol=1e-4)
    np.testing.assert_allclose(full.precision, np.eye(p) + H, rtol=1e-6)
    forgotten, diagnostics = laplace_divide_out(full, model, X[:30], y[:30], w[:30])
    g_f, H_f = _logistic_reference(predictor, X[:30], y[:30], w[:30], full.mean)
    precision = full.precision - H_f
    np.testing.assert_allclose(forgotten.precision, precision, rtol=1e-6)
    np.testing.assert_allclose(
        forgotten.mean, full.mean - np.linalg.solve(precision, g_f), rtol=1e-6, atol=1e-8
    )
    assert diagnostics.clipped_eigenvalue == 0.0 and diagnostics.warnings == ()


def _gauss_hermite_terms(predictor, X, y, w, q, n_points=64):
    """E[g], E[c] per row for f ~ N(g(x; m), J Sigma J'), by dense quadrature."""
    nodes, weights = np.polynomial.hermite_e.hermegauss(n_points)
    weights = weights / weights.sum()
    J = _dense_jacobian(predictor, X, q.mean)
    mean = predictor.value(X, q.mean)
    sd = np.sqrt(np.einsum("ij,jk,ik->i", J, q.covariance, J))
    prob = _sigmoid(mean[:, None] + sd[:, None] * nodes)
    return J, (y[:, None] - prob) @ weights, (prob * (1 - prob)) @ weights


@pytest.mark.parametrize("name", list(PREDICTORS))
def test_eubo_with_a_toy_predictor_is_the_eubo_stationary_point(problem, name):
    X, y, w = problem
    predictor, p = PREDICTORS[name]()
    model = Model(predictor, BernoulliLogit(), GaussianPrior(1.0, p))
    full, _ = learn(model.prior.posterior(), model, X, y, w, inference="vi")
    q, diagnostics = eubo_forget(full, model, X[:30], y[:30], w[:30], inference="vi")
    assert diagnostics.converged and diagnostics.residual < 1e-10
    J, g, c = _gauss_hermite_terms(predictor, X[:30], y[:30], w[:30], q)
    # natural-gradient fixed point: Lambda = Lambda0 - J' diag(E c) J,
    # Lambda0 (m - m0) = -J' E[g]
    np.testing.assert_allclose(
        q.precision, full.precision - J.T @ (c[:, None] * J), rtol=1e-4, atol=1e-5
    )
    np.testing.assert_allclose(full.precision @ (q.mean - full.mean), -J.T @ g, atol=1e-5)
    assert diagnostics.reference_disagreement < 0.45


def test_monte_carlo_terms_of_a_nonlinear_predictor_average_the_draws(problem):
    X, y, w = problem
    model = Model(Tanh(), BernoulliLogit(), GaussianPrior(1.0, 3))
    thetas = np.random.RandomState(1).randn(3, 5)
    a = np.full(5, 0.2)
    sampled = model.sampled_terms(X[:40], y[:40], w[:40], thetas, a)
    for field in ("gradient", "hessian"):
        expected = sum(
            0.2
            * np.array(
                _logistic_reference(Tanh(), X[:40], y[:40], w[:40], t)[
                    0 if field == "gradient" else 1
                ]
            )
            for t in thetas.T
        )
        np.testing.assert_allclose(getattr(sampled, field), expected, rtol=1e-6)


def test_linear_predictor_products_match_the_explicit_design(problem):
    X, y, w = problem
    theta = np.array([0.3, -0.2, 0.1, 0.05])
    design = np.hstack([X, np.ones((300, 1))])
    predictor = LinearPredictor(fit_intercept=True)
    c = np.random.RandomState(0).uniform(0, 1, 300)
    np.testing.assert_allclose(predictor.value(X, theta), design @ theta)
    np.testing.assert_allclose(predictor.vjp(X, theta, c), design.T @ c)
    np.testing.assert_allclose(
        predictor.gauss_newton(X, theta, c), design.T @ (c[:, None] * design)
    )
    # the generic block products of the base class agree with the fused ones
    generic = Predictor.gauss_newton(predictor, X, theta, c)
    np.testing.assert_allclose(generic, design.T @ (c[:, None] * design))
    model = Model(predictor, BernoulliLogit(), GaussianPrior(1.0, 4))
    rows = model.row_gradients(X, y, w, theta)
    assert rows.shape == (300, 4)
    np.testing.assert_allclose(rows.sum(axis=0), model.terms(X, y, w, theta).gradient)
    np.testing.assert_allclose(rows, (y - _sigmoid(design @ theta))[:, None] * design)


@pytest.mark.parametrize("name", ["linear", *PREDICTORS])
@pytest.mark.parametrize("sparse_rows", [False, True])
def test_curvature_applied_to_vectors_is_the_curvature_times_them(
    problem, name, sparse_rows
):
    from scipy import sparse

    X, y, w = problem
    if name == "linear":
        predictor, p = LinearPredictor(fit_intercept=True), 4
    else:
        if sparse_rows:
            pytest.skip("the toy predictors take dense rows")
        predictor, p = PREDICTORS[name]()
    rows = sparse.csr_matrix(X) if sparse_rows else X
    rng = np.random.RandomState(1)
    theta, V, c = 0.3 * rng.randn(p), rng.randn(p, 5), rng.uniform(0, 1, 300)
    model = Model(predictor, BernoulliLogit(), GaussianPrior(1.0, p))
    full = model.terms(rows, y, w, theta)
    applied = model.terms(rows, y, w, theta, with_value=False, vectors=V)
    np.testing.assert_allclose(applied.gradient, full.gradient, rtol=1e-12)
    np.testing.assert_allclose(applied.hessian, full.hessian @ V, rtol=1e-10, atol=1e-12)
    # the generic block product of the base class, without a fused kernel
    generic = Predictor.gauss_newton_product(predictor, rows, theta, c, V)
    expected = predictor.gauss_newton(rows, theta, c) @ V
    np.testing.assert_allclose(generic, expected, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(
        predictor.gauss_newton_product(rows, theta, c, V), expected, rtol=1e-10, atol=1e-12
    )


def test_likelihood_terms_merge_like_statistics(problem):
    X, y, w = problem
    model = Model(LinearPredictor(), BernoulliLogit(), GaussianPrior(1.0, 4))
    theta = np.array([0.3, -0.2, 0.1, 0.05])
    parts = [
        model.terms(X[b], y[b], w[b], theta) for b in np.array_split(np.arange(300), 3)
    ]
    whole = model.terms(X, y, w, theta)
    for merged in (sum(parts), parts[0] + parts[1] + parts[2]):
        assert isinstance(merged, LikelihoodTerms)
        np.testing.assert_allclose(merged.log_likelihood, whole.log_likelihood)
        np.testing.assert_allclose(merged.gradient, whole.gradient)
        np.testing.assert_allclose(merged.hessian, whole.hessian)
    rest = whole - parts[0]
    np.testing.assert_allclose(rest.hessian, (parts[1] + parts[2]).hessian)


def test_gaussian_noise_expectations_match_quadrature(rng):
    noise = GaussianNoise(noise_precision=4.0)
    mean, variance, y = rng.randn(20), rng.uniform(0.1, 2, 20), rng.randn(20)
    closed = noise.expected_terms(mean, variance, y)
    quadrature = Likelihood.expected_terms(noise, mean, variance, y)
    for a, b in zip(closed, quadrature, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
    value, gradient, curvature = noise.row_terms(mean, y)
    np.testing.assert_allclose(
        value, -0.5 * np.log(2 * np.pi / 4.0) - 2.0 * (y - mean) ** 2
    )


@pytest.mark.parametrize("seed", range(5))
def test_full_prior_floor_is_the_scaled_projection(seed):
    rng = np.random.RandomState(seed)
    d = 4
    A = rng.randn(d, d)
    D = A @ A.T + np.eye(d)
    B = rng.randn(d, d)
    P = D + 0.3 * (B + B.T)  # below D in some directions
    floored, clipped = floor_precision(P, D)
    L = np.linalg.cholesky(D)
    scaled = np.linalg.solve(L, np.linalg.solve(L, P - D).T)
    eigenvalues, vectors = np.linalg.eigh(scaled)
    assert clipped == pytest.approx(eigenvalues.min())
    expected = L @ (vectors * np.maximum(eigenvalues, 0)) @ vectors.T @ L.T + D
    np.testing.assert_allclose(floored, expected, rtol=1e-9, atol=1e-12)
    assert np.linalg.eigvalsh(floored - D).min() > -1e-9
    # a diagonal prior given as a matrix floors as the vector does
    v = rng.uniform(0.5, 2, d)
    np.testing.assert_allclose(
        floor_precision(P, np.diag(v))[0], floor_precision(P, v)[0], rtol=1e-9, atol=1e-12
    )


def test_prior_kinds_give_their_posterior():
    for prior, covariance in [
        (GaussianPrior(2.0, n_features=3), 0.5 * np.eye(3)),
        (GaussianPrior(np.array([1.0, 2.0, 4.0])), np.diag([1.0, 0.5, 0.25])),
        (GaussianPrior(np.diag([1.0, 2.0, 4.0])), np.diag([1.0, 0.5, 0.25])),
    ]:
        np.testing.assert_allclose(prior.posterior().covariance, covariance)
    with pytest.raises(ValueError, match="n_features"):
        GaussianPrior(1.0)


def test_diagnostics_are_typed_frozen_and_json_ready(problem):
    X, y, w = problem
    model = Model(LinearPredictor(), BernoulliLogit(), GaussianPrior(1.0, 4))
    full, _ = learn(model.prior.posterior(), model, X, y, w, inference="vi")
    _, record = variational_update(
        full,
        model,
        X[:10],
        y[:10],
        w[:10],
        sign=-1.0,
        unlearning_lambda=0.1,
        random_state=0,
    )
    data = json.loads(json.dumps(record.to_dict()))
    assert set(data) >= {"move", "warnings", "kl_estimate", "residual", "region_mass"}
    assert isinstance(record.warnings, tuple) and record["residual"] == record.residual
    with pytest.raises(AttributeError):
        record.move = 0.0


def test_posteriors_are_never_modified_in_place(rng):
    P = np.eye(5) * 3
    post = GaussianPosterior.from_precision(np.zeros(5), P)
    X = rng.randn(1, 5)
    for new in (post.rank_update(X), post.with_mean(np.ones(5))):
        assert new is not post
    np.testing.assert_array_equal(post.precision, P)
    np.testing.assert_array_equal(post.mean, np.zeros(5))
    assert post.mahalanobis(np.ones(5)) == pytest.approx(np.sqrt(15.0))


@pytest.mark.parametrize("k", [1, 40])  # rank-one downdates of the factor; a new factor
def test_laplace_divide_out_of_few_rows_in_many_dimensions_matches_numpy(k):
    rng = np.random.RandomState(3)
    X = rng.randn(400, 80)
    y = (X[:, 0] + rng.logistic(size=400) > 0).astype(float)
    w = np.ones(400)
    model = Model(
        LinearPredictor(fit_intercept=False), BernoulliLogit(), GaussianPrior(2.0, 80)
    )
    full, _ = learn(model.prior.posterior(), model, X, y, w)
    forgotten, _ = laplace_divide_out(full, model, X[:k], y[:k], w[:k])
    p = _sigmoid(X[:k] @ full.mean)
    precision = full.precision - X[:k].T @ ((p * (1 - p))[:, None] * X[:k])
    np.testing.assert_allclose(forgotten.precision, precision, rtol=1e-9, atol=1e-10)
    step = np.linalg.solve(precision, X[:k].T @ (y[:k] - p))
    np.testing.assert_allclose(forgotten.mean, full.mean - step, rtol=1e-8, atol=1e-12)


def test_monte_carlo_terms_without_draws_are_zero(problem):
    X, y, w = problem
    for predictor, p in [(Tanh(), 3), (LinearPredictor(), 4)]:
        model = Model(predictor, BernoulliLogit(), GaussianPrior(1.0, p))
        terms = model.sampled_terms(X, y, w, np.zeros((p, 0)), np.zeros(0))
        assert terms.log_likelihood == 0.0
        np.testing.assert_array_equal(terms.hessian, np.zeros((p, p)))


def test_verbose_learning_prints_each_iteration_and_changes_nothing(problem, capsys):
    X, y, w = problem
    model = Model(LinearPredictor(), BernoulliLogit(), GaussianPrior(1.0, 4))
    prior = GaussianPosterior.from_precision(np.zeros(4), np.eye(4))
    quiet, _ = learn(prior, model, X, y, w, inference="vi")
    assert capsys.readouterr().out == ""
    loud, diagnostics = learn(prior, model, X, y, w, inference="vi", verbose=1)
    lines = capsys.readouterr().out.splitlines()
    newton = [line for line in lines if line.startswith("Newton iteration")]
    variational = [line for line in lines if line.startswith("Variational iteration")]
    assert len(newton) >= 1 and len(variational) >= 1
    assert len(newton) + len(variational) == diagnostics.n_iter == len(lines)
    np.testing.assert_array_equal(loud.mean, quiet.mean)
    np.testing.assert_array_equal(loud.precision, quiet.precision)
