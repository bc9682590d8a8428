"""The network's Jacobian kernels against plain NumPy (small sizes: CI reruns this
file with NUMBA_DISABLE_JIT=1)."""

import numpy as np
import pytest

from sklunlearn._numba.mlp import add_gram, scaled_jacobian
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


def test_add_gram_accumulates_the_block_product(rng):
    start = rng.randn(5, 5)
    start += start.T
    block = rng.randn(6, 5)
    for scratch in (None, np.empty((5, 5))):
        gram = start.copy()
        assert add_gram(block, gram, scratch) is gram
        np.testing.assert_allclose(gram, start + block.T @ block, rtol=1e-13)
    with pytest.raises(ValueError, match="float64"):
        add_gram(block, np.zeros((4, 4)))


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


def test_gauss_newton_over_many_pipelined_blocks_matches_dense_numpy(rng, monkeypatch):
    # 256-row blocks: 1100 rows take five, the last one short, through both buffers
    monkeypatch.setattr(predictor_module, "JACOBIAN_BLOCK_ENTRIES", 1)
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
