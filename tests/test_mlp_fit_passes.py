"""The MAP objective's row-block passes equal the plain formulas to round-off.

:meth:`MLPPredictor.squared_error` runs the forward pass, the backward pass and
the gradient's sums block by block in reused buffers, with the activation and
its derivative from one Numba kernel; the reference here is the textbook
back-propagation on all rows at once, with NumPy's activations.
"""

import numpy as np
import pytest

from sklunlearn.neural_network import _predictor
from sklunlearn.neural_network._predictor import MLPPredictor
from sklunlearn.neural_network._training import StartingPoint, _objective

REFERENCE_ACTIVATIONS = {
    "tanh": (np.tanh, lambda h: 1.0 - h * h),
    "logistic": (lambda z: 1.0 / (1.0 + np.exp(-z)), lambda h: h * (1.0 - h)),
    "relu": (lambda z: np.maximum(z, 0.0), lambda h: (h > 0.0).astype(float)),
    "identity": (lambda z: z, np.ones_like),
}
SHAPES = [(3, 1), (3, 5, 1), (4, 6, 3, 1), (8, 50, 1), (2, 1, 1)]
ACTIVATIONS = list(REFERENCE_ACTIVATIONS)


def reference_passes(layer_sizes, activation, X, y, weights, theta, beta):
    """``(sum_i w_i r_i^2, J' (beta w r))`` by back-propagation on all rows at once."""
    forward, derivative = REFERENCE_ACTIVATIONS[activation]
    coefs, intercepts, start = [], [], 0
    for n_in, n_out in zip(layer_sizes[:-1], layer_sizes[1:], strict=True):
        coefs.append(theta[start : start + n_in * n_out].reshape(n_in, n_out))
        start += n_in * n_out
        intercepts.append(theta[start : start + n_out])
        start += n_out
    inputs = [X]
    for W, b in zip(coefs[:-1], intercepts[:-1], strict=True):
        inputs.append(forward(inputs[-1] @ W + b))
    residual = inputs[-1] @ coefs[-1][:, 0] + intercepts[-1][0] - y
    delta = (beta * weights * residual)[:, None]
    parts = []
    for layer in range(len(coefs) - 1, -1, -1):
        parts = [(inputs[layer].T @ delta).ravel(), delta.sum(axis=0), *parts]
        if layer:
            delta = (delta @ coefs[layer].T) * derivative(inputs[layer])
    return float(weights * residual @ residual), np.concatenate(parts)


def network(layer_sizes, activation, n, seed=0):
    """A predictor, rows, targets, weights (some zero) and weights of the network."""
    rng = np.random.RandomState(seed)
    predictor = MLPPredictor(layer_sizes, activation)
    X = rng.randn(n, layer_sizes[0])
    y = rng.randn(n)
    weights = rng.uniform(0.0, 3.0, n) * (rng.rand(n) > 0.2)
    theta = rng.randn(predictor.n_weights) / np.sqrt(layer_sizes[0])
    return predictor, X, y, weights, theta


def assert_round_off(actual, expected):
    scale = max(np.max(np.abs(expected)), np.finfo(float).tiny)
    np.testing.assert_allclose(actual, expected, rtol=1e-12, atol=1e-12 * scale)


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("layer_sizes", SHAPES)
def test_squared_error_matches_back_propagation(monkeypatch, layer_sizes, activation):
    # a small budget: several blocks, the last one short
    monkeypatch.setattr(_predictor, "FIT_BLOCK_ENTRIES", 2**12)
    predictor, X, y, weights, theta = network(layer_sizes, activation, n=1000)
    passes = predictor.squared_error(X, y, weights)
    assert passes.rows < X.shape[0] and X.shape[0] % passes.rows
    error, gradient = passes(theta, 2.5)
    expected_error, expected_gradient = reference_passes(
        layer_sizes, activation, X, y, weights, theta, 2.5
    )
    assert gradient.shape == (predictor.n_weights,)
    assert_round_off(error, expected_error)
    assert_round_off(gradient, expected_gradient)


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_squared_error_one_block_equals_many(monkeypatch, activation):
    predictor, X, y, weights, theta = network((4, 6, 3, 1), activation, n=700)
    error, gradient = predictor.squared_error(X, y, weights)(theta, 1.0)
    monkeypatch.setattr(_predictor, "FIT_BLOCK_ENTRIES", 2**10)
    blocked = predictor.squared_error(X, y, weights)
    assert blocked.rows < 100
    blocked_error, blocked_gradient = blocked(theta, 1.0)
    assert_round_off(blocked_error, error)
    assert_round_off(blocked_gradient, gradient)


def test_buffers_carry_nothing_between_calls():
    predictor, X, y, weights, theta = network((4, 6, 3, 1), "tanh", n=300)
    passes = predictor.squared_error(X, y, weights)
    first_error, first_gradient = passes(theta, 1.0)
    kept = first_gradient.copy()
    passes(2.0 * theta, 3.0)  # another network through the same buffers
    again_error, again_gradient = passes(theta, 1.0)
    # each call returns its own gradient: L-BFGS keeps the previous one
    np.testing.assert_array_equal(first_gradient, kept)
    assert again_gradient is not first_gradient
    assert again_error == first_error
    np.testing.assert_array_equal(again_gradient, first_gradient)


def test_fortran_ordered_rows():
    predictor, X, y, weights, theta = network((3, 5, 1), "logistic", n=200)
    error, gradient = predictor.squared_error(X, y, weights)(theta, 1.0)
    fortran_error, fortran_gradient = predictor.squared_error(
        np.asfortranarray(X), y, weights
    )(theta, 1.0)
    assert_round_off(fortran_error, error)
    assert_round_off(fortran_gradient, gradient)


def test_no_rows():
    predictor, X, y, weights, theta = network((3, 5, 1), "tanh", n=0)
    error, gradient = predictor.squared_error(X, y, weights)(theta, 1.0)
    assert error == 0.0
    np.testing.assert_array_equal(gradient, np.zeros(predictor.n_weights))


@pytest.mark.parametrize("precision", ["scalar", "vector", "matrix"])
def test_objective_matches_formula(precision):
    predictor, X, y, weights, theta = network((4, 6, 3, 1), "tanh", n=500)
    rng = np.random.RandomState(1)
    p = predictor.n_weights
    lam = {
        "scalar": 0.7,
        "vector": rng.uniform(0.1, 2.0, p),
        "matrix": (lambda A: A @ A.T + np.eye(p))(rng.randn(p, p) / np.sqrt(p)),
    }[precision]
    prior = StartingPoint(rng.randn(p), lam)
    beta, scale = 4.0, 1.0 / weights.sum()
    objective = _objective(predictor, X, y, weights, beta, prior, scale)
    value, gradient = objective(theta)
    error, data_gradient = reference_passes(
        predictor.layer_sizes, "tanh", X, y, weights, theta, beta
    )
    d = theta - prior.mean
    product = lam @ d if precision == "matrix" else lam * d
    assert_round_off(value, (0.5 * beta * error + 0.5 * d @ product) * scale)
    assert_round_off(gradient, (data_gradient + product) * scale)


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("layer_sizes", [(3, 5, 1), (4, 6, 3, 1), (3, 1)])
def test_batched_passes_match_single(layer_sizes, activation):
    """The general passes, with a batch of parameter vectors, as one vector at a time."""
    predictor, X, y, weights, _ = network(layer_sizes, activation, n=60)
    rng = np.random.RandomState(2)
    thetas = rng.randn(3, predictor.n_weights) / 2.0
    v = rng.randn(3, X.shape[0])
    inputs, f = predictor.forward(X, thetas)
    gradients = predictor.gradient_from(inputs, predictor.backward(inputs, thetas, v))
    assert f.shape == (3, X.shape[0]) and gradients.shape == thetas.shape
    for theta, v_s, f_s, gradient in zip(thetas, v, f, gradients, strict=True):
        one_inputs, one_f = predictor.forward(X, theta)
        one_gradient = predictor.gradient_from(
            one_inputs, predictor.backward(one_inputs, theta, v_s)
        )
        assert_round_off(f_s, one_f)
        assert_round_off(gradient, one_gradient)
        # J' v against the reference with unit weights and targets f - v
        _, expected = reference_passes(
            layer_sizes, activation, X, one_f - v_s, np.ones(X.shape[0]), theta, 1.0
        )
        assert_round_off(one_gradient, expected)
