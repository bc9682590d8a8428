"""The network's Jacobian kernels against plain NumPy (small sizes: CI reruns this
file with NUMBA_DISABLE_JIT=1)."""

import numpy as np
import pytest

from sklunlearn._numba.mlp import (
    jacobian_columns,
    mirror_upper,
    pair_products,
    scaled_jacobian,
    scatter_kronecker_gram,
)
from sklunlearn.neural_network import MLPPredictor
from sklunlearn.neural_network import _predictor as predictor_module


def dense_jacobian(predictor, X, theta):
    """``J`` row by row: each layer's outer products ``h delta'`` and ``delta``."""
    inputs, _ = predictor.forward(X, theta)
    deltas = predictor.backward(inputs, theta, np.ones(X.shape[0]))
    rows = []
    for i in range(X.shape[0]):
        parts = []
        for h, delta in zip(inputs, deltas, strict=True):
            parts.append(np.outer(h[i], delta[i]).ravel())
            parts.append(delta[i])
        rows.append(np.concatenate(parts))
    return np.array(rows)


def test_scaled_jacobian_matches_outer_products(rng):
    predictor = MLPPredictor((3, 4, 2, 1), "tanh")
    theta = rng.randn(predictor.n_weights)
    X = rng.randn(7, 3)
    scale = rng.uniform(0.5, 2.0, 7)
    inputs, _ = predictor.forward(X, theta)
    deltas = predictor.backward(inputs, theta, np.ones(7))
    out = np.empty((9, predictor.n_weights))
    J = scaled_jacobian(inputs, deltas, scale, out)
    np.testing.assert_allclose(
        J, scale[:, None] * dense_jacobian(predictor, X, theta), rtol=1e-13
    )


def test_scaled_jacobian_refuses_non_finite_and_bad_buffers(rng):
    predictor = MLPPredictor((2, 3, 1), "relu")
    theta = rng.randn(predictor.n_weights)
    X = rng.randn(4, 2)
    inputs, _ = predictor.forward(X, theta)
    deltas = predictor.backward(inputs, theta, np.ones(4))
    with pytest.raises(FloatingPointError, match="not finite"):
        scaled_jacobian(inputs, deltas, np.array([1.0, np.inf, 1.0, 1.0]),
                        np.empty((4, predictor.n_weights)))  # fmt: skip
    with pytest.raises(ValueError, match="C-contiguous"):
        scaled_jacobian(inputs, deltas, np.ones(4), np.empty((4, predictor.n_weights)).T)
    with pytest.raises(ValueError, match="parameters"):
        scaled_jacobian(inputs, deltas, np.ones(4), np.empty((4, predictor.n_weights + 1)))


def transposed_terms(predictor, X, theta):
    """Each layer's input with a row of ones, and its deltas, one column per row."""
    inputs, _ = predictor.forward(X, theta)
    deltas = predictor.backward(inputs, theta, np.ones(X.shape[0]))
    augmented = [np.vstack([h.T, np.ones((1, X.shape[0]))]) for h in inputs]
    return augmented, [np.ascontiguousarray(delta.T) for delta in deltas]


def test_jacobian_columns_is_the_transposed_scaled_jacobian(rng):
    predictor = MLPPredictor((3, 4, 2, 1), "tanh")
    theta = rng.randn(predictor.n_weights)
    X = rng.randn(7, 3)
    scale = rng.uniform(0.5, 2.0, 7)
    augmented, deltas = transposed_terms(predictor, X, theta)
    out = np.empty((predictor.n_weights, 7))
    assert jacobian_columns(augmented, deltas, scale, out) is out
    np.testing.assert_allclose(
        out.T, scale[:, None] * dense_jacobian(predictor, X, theta), rtol=1e-13
    )
    with pytest.raises(ValueError, match="shape"):
        jacobian_columns(augmented, deltas, scale, np.empty((predictor.n_weights, 8)))


def test_pair_products_are_the_upper_triangle_of_each_outer_product(rng):
    columns = rng.randn(4, 6)
    scale = rng.uniform(0.5, 2.0, 6)
    out = pair_products(columns, scale, np.empty((10, 6)))
    rows, cols = np.triu_indices(4)
    expected = scale * columns[rows] * columns[cols]  # row-major order of the triangle
    np.testing.assert_allclose(out, expected, rtol=1e-14)
    with pytest.raises(ValueError, match="shape"):
        pair_products(columns, scale, np.empty((16, 6)))


def test_scatter_kronecker_gram_and_mirror_rebuild_a_kronecker_sum(rng):
    # sum_i c_i (a_i a_i') kron (d_i d_i') from the product of the pair matrices
    a, d, c = rng.randn(3, 5), rng.randn(4, 5), rng.uniform(0.5, 2.0, 5)
    pair_gram = (
        pair_products(a, np.ones(5), np.empty((6, 5)))
        @ pair_products(d, c, np.empty((10, 5))).T
    )
    gram = np.full((14, 14), np.nan)
    scatter_kronecker_gram(pair_gram, 3, 4, 2, gram)
    expected = sum(c[i] * np.kron(np.outer(a[:, i], a[:, i]), np.outer(d[:, i], d[:, i]))
                   for i in range(5))  # fmt: skip
    np.testing.assert_allclose(gram[2:, 2:], expected, rtol=1e-13)
    assert np.isnan(gram[:2]).all() and np.isnan(gram[:, :2]).all()
    with pytest.raises(ValueError, match="shape"):
        scatter_kronecker_gram(pair_gram, 4, 3, 0, gram)
    upper = np.triu(rng.randn(5, 5))
    np.testing.assert_array_equal(mirror_upper(upper.copy()), upper + np.triu(upper, 1).T)


@pytest.mark.parametrize("activation", ["tanh", "relu", "logistic", "identity"])
def test_predictor_products_match_dense_numpy(rng, activation, monkeypatch):
    # the smallest blocks (256 rows): 300 rows take two, so the block loop is exercised
    monkeypatch.setattr(predictor_module, "JACOBIAN_BLOCK_ENTRIES", 1)
    predictor = MLPPredictor((3, 5, 1), activation)
    theta = rng.randn(predictor.n_weights)
    X = rng.randn(300, 3)
    J = dense_jacobian(predictor, X, theta)
    v = rng.randn(300)
    c = rng.uniform(0, 2, 300)
    np.testing.assert_allclose(predictor.jacobian(X, theta), J, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(predictor.vjp(X, theta, v), J.T @ v, rtol=1e-10)
    np.testing.assert_allclose(
        predictor.gauss_newton(X, theta, c), J.T @ (c[:, None] * J), rtol=1e-10, atol=1e-12
    )


@pytest.mark.parametrize("n_workers", [1, 2, 3])
def test_gauss_newton_shared_among_workers_matches_dense_numpy(rng, monkeypatch, n_workers):
    # 256-row blocks: 1100 rows take five, the last one short, dealt to one, two or
    # three workers
    monkeypatch.setattr(predictor_module, "JACOBIAN_BLOCK_ENTRIES", 1)
    monkeypatch.setattr(predictor_module, "blas_threads", lambda: n_workers)
    predictor = MLPPredictor((2, 3, 1), "tanh")
    theta = rng.randn(predictor.n_weights)
    X = rng.randn(1100, 2)
    c = rng.uniform(0, 2, 1100)
    J = dense_jacobian(predictor, X, theta)
    gram = predictor.gauss_newton(X, theta, c)
    np.testing.assert_allclose(gram, J.T @ (c[:, None] * J), rtol=1e-10, atol=1e-12)
    np.testing.assert_array_equal(gram, gram.T)


def test_jacobian_is_the_derivative_of_the_value(rng):
    predictor = MLPPredictor((2, 4, 3, 1), "tanh")
    theta = rng.randn(predictor.n_weights)
    X = rng.randn(5, 2)
    step = 1e-6
    numeric = np.column_stack([
        (predictor.value(X, theta + step * e) - predictor.value(X, theta - step * e))
        / (2 * step)
        for e in np.eye(predictor.n_weights)
    ])  # fmt: skip
    np.testing.assert_allclose(predictor.jacobian(X, theta), numeric, atol=1e-7)


@pytest.mark.parametrize(
    "layer_sizes",
    [(3, 4, 2, 1), (2, 1, 3, 1), (4, 6, 1, 1), (1, 1)],
    ids=["two hidden", "one-unit first layer", "one-unit last hidden", "linear"],
)
def test_gauss_newton_of_deep_and_degenerate_networks_matches_dense_numpy(
    rng, layer_sizes, monkeypatch
):
    # layers with one unit take the columns' route, wider ones the pair products
    monkeypatch.setattr(predictor_module, "JACOBIAN_BLOCK_ENTRIES", 1)
    predictor = MLPPredictor(layer_sizes, "tanh")
    theta = rng.randn(predictor.n_weights)
    X = rng.randn(600, layer_sizes[0])
    c = rng.uniform(0, 2, 600)
    J = dense_jacobian(predictor, X, theta)
    gram = predictor.gauss_newton(X, theta, c)
    expected = J.T @ (c[:, None] * J)
    np.testing.assert_allclose(
        gram, expected, rtol=1e-10, atol=1e-12 * np.abs(expected).max()
    )
    np.testing.assert_array_equal(gram, gram.T)


def test_gauss_newton_of_a_single_row_and_of_zero_weights(rng):
    predictor = MLPPredictor((3, 5, 1), "relu")
    theta = rng.randn(predictor.n_weights)
    X = rng.randn(1, 3)
    J = dense_jacobian(predictor, X, theta)
    np.testing.assert_allclose(
        predictor.gauss_newton(X, theta, np.array([0.7])), 0.7 * J.T @ J, rtol=1e-12
    )
    np.testing.assert_array_equal(
        predictor.gauss_newton(rng.randn(10, 3), theta, np.zeros(10)), 0.0
    )


def test_gauss_newton_refuses_non_finite_terms_and_overflow(rng):
    predictor = MLPPredictor((2, 3, 1), "identity")
    X = rng.randn(5, 2)
    ones = np.ones(predictor.n_weights)
    # finite activations whose products overflow; overflowing activations; a NaN
    # row; a NaN curvature
    for theta, rows, c in [
        (1e200 * ones, X, np.ones(5)),
        (1e300 * ones, X, np.ones(5)),
        (ones, np.vstack([X[:4], [np.nan, 0.0]]), np.ones(5)),
        (ones, X, np.array([1.0, 1.0, np.nan, 1.0, 1.0])),
    ]:
        with np.errstate(over="ignore", invalid="ignore"):
            with pytest.raises(FloatingPointError, match="not finite"):
                predictor.gauss_newton(rows, theta, c)


@pytest.mark.parametrize("activation", ["tanh", "relu", "logistic", "identity"])
def test_batched_passes_equal_one_parameter_vector_at_a_time(rng, activation):
    predictor = MLPPredictor((3, 4, 2, 1), activation)
    thetas = rng.randn(5, predictor.n_weights)
    X, V = rng.randn(11, 3), rng.randn(5, 11)
    inputs, f = predictor.forward(X, thetas)
    gradients = predictor.gradient_from(inputs, predictor.backward(inputs, thetas, V))
    assert f.shape == (5, 11) and gradients.shape == thetas.shape
    for theta, v, f_s, gradient in zip(thetas, V, f, gradients, strict=True):
        np.testing.assert_allclose(f_s, predictor.value(X, theta), rtol=1e-13)
        J = dense_jacobian(predictor, X, theta)
        np.testing.assert_allclose(gradient, J.T @ v, rtol=1e-11, atol=1e-13)
