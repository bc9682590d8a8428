"""The network's Jacobian kernels against plain NumPy (small sizes: CI reruns this
file with NUMBA_DISABLE_JIT=1)."""

import numpy as np
import pytest
from scipy.special import expit

from sklunlearn._numba import mlp as mlp_kernels
from sklunlearn._numba.mlp import (
    activate,
    jacobian_columns,
    mirror_upper,
    pair_products,
    scaled_jacobian,
    scatter_kronecker_gram,
)
from sklunlearn.neural_network import MLPPredictor
from sklunlearn.neural_network import _predictor as predictor_module
from sklunlearn.neural_network._predictor import ACTIVATIONS, _GramLayout

ALL_ACTIVATIONS = ["tanh", "relu", "logistic", "identity"]

# plain NumPy references of the hidden activations
REFERENCE_ACTIVATIONS = {
    "tanh": np.tanh,
    "logistic": expit,
    "relu": lambda z: np.maximum(z, 0.0),
    "identity": lambda z: z.copy(),
}


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
    # the smallest blocks (128 rows): 300 rows take three, so the block loop is exercised
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
    # 128-row blocks: 1100 rows take nine, the last one short, dealt to one, two or
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


def activation_inputs(rng):
    """Ordinary values, every binade from the subnormals to the saturation, the
    boundaries of the range reduction and of the exponent clamp, and specials."""
    tiny_to_large = np.logspace(-320, 2.9, 400)
    special = [0.0, -0.0, 0.3466, -0.3466, 19.06, 354.0, -354.0, 707.9, -708.1, -744.0]
    special += [1e300, -1e300, np.inf, -np.inf, np.nan]
    return np.concatenate([4 * rng.randn(400), tiny_to_large, -tiny_to_large, special])


@pytest.mark.parametrize("activation", ALL_ACTIVATIONS)
def test_activate_matches_numpy_and_the_backward_pass_derivative(rng, activation):
    z = np.stack([activation_inputs(rng), -activation_inputs(rng)])
    h, derivative = z.copy(), np.full_like(z, -7.0)
    assert activate(activation, h, derivative) is h
    expected = REFERENCE_ACTIVATIONS[activation](z)
    # a few units in the last place (NumPy's own tanh and expit are within one)
    np.testing.assert_allclose(h, expected, rtol=1e-15, atol=1e-300)
    zero = expected == 0
    np.testing.assert_array_equal(np.signbit(h[zero]), np.signbit(expected[zero]))
    # the derivative the predictor's backward pass writes from the output
    np.testing.assert_allclose(
        derivative, ACTIVATIONS[activation][1](expected), rtol=1e-14, atol=2e-15
    )


def test_activate_refuses_bad_buffers():
    z = np.zeros((3, 4))
    with pytest.raises(ValueError, match="C-contiguous"):
        activate("tanh", z.T, np.zeros((4, 3)))
    with pytest.raises(ValueError, match="shape"):
        activate("tanh", z, np.zeros(12))


@pytest.mark.parametrize("minus_one", [0.0, 1.0])
def test_exp_kernel_matches_numpy_exp_and_expm1(minus_one):
    x = -np.concatenate([np.logspace(-320, 2.9, 2000), np.linspace(0, 750, 2001)])
    x = np.append(x, [np.nan, -np.inf])
    out, shifted = np.empty_like(x), np.empty_like(x)
    mlp_kernels._exp_nonpositive_kernel(x, minus_one, out, shifted)
    expected = np.expm1(x) if minus_one else np.exp(x)
    # below -708 the result is exp's underflow to zero (the subnormals are dropped)
    np.testing.assert_allclose(out, expected, rtol=1e-15, atol=1e-307)
    assert np.isnan(out[-2]) and out[-1] == -minus_one


@pytest.mark.parametrize("activation", ALL_ACTIVATIONS)
@pytest.mark.parametrize("layer_sizes", [(3, 5, 1), (4, 6, 3, 1), (2, 1, 4, 1)])
def test_block_passes_are_the_transposed_forward_and_backward(rng, activation, layer_sizes):
    predictor = MLPPredictor(layer_sizes, activation)
    layout = _GramLayout(predictor)
    theta = rng.randn(predictor.n_weights)
    X = rng.randn(37, layer_sizes[0])
    terms = layout.terms(np.full(layout.entries_per_row * 40, np.nan), 37)
    n_layers = len(layer_sizes) - 1
    augmented, deltas = terms[:n_layers], terms[n_layers : 2 * n_layers]
    layout.passes(X, layout.weights(theta), augmented, deltas)
    inputs, _ = predictor.forward(X, theta)
    # the pre-activations are summed in another order (the bias inside the product)
    for h, expected in zip(augmented, inputs, strict=True):
        np.testing.assert_allclose(
            h, np.vstack([expected.T, np.ones(37)]), rtol=1e-14, atol=1e-15
        )
    expected_deltas = predictor.backward(inputs, theta, np.ones(37))
    for delta, expected in zip(deltas, expected_deltas, strict=True):
        np.testing.assert_allclose(delta, expected.T, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("activation", ALL_ACTIVATIONS)
@pytest.mark.parametrize(
    "layer_sizes", [(3, 5, 1), (4, 6, 3, 1), (2, 1, 4, 1), (5, 1)],
    ids=["one hidden", "two hidden", "one-unit first layer", "linear"],
)  # fmt: skip
def test_weighted_gauss_newton_matches_dense_numpy(
    rng, activation, layer_sizes, monkeypatch
):
    # 128-row blocks: 700 rows take six, the last one short; sample weights (some
    # zero) times a per-row curvature, as a likelihood's forget passes them
    monkeypatch.setattr(predictor_module, "JACOBIAN_BLOCK_ENTRIES", 1)
    predictor = MLPPredictor(layer_sizes, activation)
    theta = rng.randn(predictor.n_weights)
    X = rng.randn(700, layer_sizes[0])
    sample_weight = rng.choice([0.0, 0.5, 1.0, 3.0], 700)
    c = sample_weight * rng.uniform(0.1, 2.0, 700)
    J = dense_jacobian(predictor, X, theta)
    expected = J.T @ np.diag(c) @ J
    gram = predictor.gauss_newton(X, theta, c)
    np.testing.assert_allclose(
        gram, expected, rtol=1e-10, atol=1e-12 * np.abs(expected).max()
    )
    np.testing.assert_array_equal(gram, gram.T)


def test_add_product_updates_the_sum_in_place(rng):
    total = rng.randn(5, 7)
    expected = total.copy()
    A, B = rng.randn(5, 3), rng.randn(7, 3)
    assert predictor_module._add_product(total, A, B) is None
    np.testing.assert_allclose(total, expected + A @ B.T, rtol=1e-14)
