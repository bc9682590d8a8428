"""Stationary cross-covariance kernels and their derivatives against scikit-learn.

CI also runs this file with NUMBA_DISABLE_JIT=1, so every array is tiny.
"""

import numpy as np
import pytest
from sklearn.gaussian_process.kernels import (
    RBF,
    DotProduct,
    Matern,
    RationalQuadratic,
    WhiteKernel,
)
from sklearn.gaussian_process.kernels import ConstantKernel as C

from sklunlearn._numba.stationary import (
    KIND_MATERN_05,
    KIND_MATERN_15,
    KIND_MATERN_25,
    KIND_RBF,
    cross_kernel,
    cross_kernel_gradient,
)
from sklunlearn.gaussian_process._bound import collapsed_bound, stationary_spec

SHAPES = {
    KIND_RBF: lambda length: RBF(length),
    KIND_MATERN_05: lambda length: Matern(length, nu=0.5),
    KIND_MATERN_15: lambda length: Matern(length, nu=1.5),
    KIND_MATERN_25: lambda length: Matern(length, nu=2.5),
}
LENGTHS = {"isotropic": 0.8, "ard": np.array([0.5, 1.7, 1.1])}


@pytest.fixture
def points():
    rng = np.random.RandomState(3)
    return rng.randn(6, 3), rng.randn(4, 3)


@pytest.mark.parametrize("kind", list(SHAPES))
@pytest.mark.parametrize("lengths", list(LENGTHS))
def test_values_and_hyperparameter_derivatives_match_sklearn(points, kind, lengths):
    X, Z = points
    length = LENGTHS[lengths]
    kernel = C(1.7) * SHAPES[kind](length)
    inverse = 1.0 / np.broadcast_to(length, (3,))
    K = cross_kernel(X, Z, inverse, 1.7, kind)
    np.testing.assert_allclose(K, kernel(X, Z), rtol=1e-12)

    # sklearn's gradient of the stacked matrix; its (X, Z) block is dK(X, Z)
    _, dK = kernel(np.vstack([X, Z]), eval_gradient=True)
    dK = dK[:6, 6:, :]
    rng = np.random.RandomState(kind)
    base, w, t, gamma = rng.randn(6, 4), rng.rand(6), rng.randn(6), rng.randn(4)
    coefficients = w[:, None] * (base + np.outer(t, gamma))
    d_variance, d_length, d_Z = cross_kernel_gradient(
        X, Z, inverse, kind, K, base, w, t, gamma, with_inducing=True
    )
    expected = np.einsum("iu,iup->p", coefficients, dK)
    np.testing.assert_allclose(d_variance, expected[0], rtol=1e-10)
    d_length = d_length.sum(keepdims=True) if lengths == "isotropic" else d_length
    np.testing.assert_allclose(d_length, expected[1:], rtol=1e-10, atol=1e-12)
    assert d_Z.shape == Z.shape


@pytest.mark.parametrize("kind", list(SHAPES))
def test_inducing_derivatives_match_finite_differences(points, kind):
    X, Z = points
    inverse = 1.0 / LENGTHS["ard"]
    coefficients = np.random.RandomState(1).randn(6, 4)

    def value(Z):
        return np.sum(coefficients * cross_kernel(X, Z, inverse, 1.3, kind))

    K = cross_kernel(X, Z, inverse, 1.3, kind)
    _, _, d_Z = cross_kernel_gradient(
        X, Z, inverse, kind, K, coefficients, with_inducing=True
    )
    eps = 1e-6
    numeric = np.zeros_like(Z)
    for index in np.ndindex(*Z.shape):
        step = np.zeros_like(Z)
        step[index] = eps
        numeric[index] = (value(Z + step) - value(Z - step)) / (2 * eps)
    np.testing.assert_allclose(d_Z, numeric, rtol=1e-6, atol=1e-8)


def test_matern_half_has_zero_slope_at_coinciding_points():
    """nu = 1/2 is not differentiable at r = 0: sklearn's convention is 0 there."""
    Z = np.array([[0.0, 1.0], [2.0, -1.0]])
    kernel = Matern([0.7, 1.4], nu=0.5)
    K = cross_kernel(Z, Z, 1.0 / np.array([0.7, 1.4]), 1.0, KIND_MATERN_05)
    coefficients = np.ones((2, 2))
    _, d_length, _ = cross_kernel_gradient(
        Z, Z, 1.0 / np.array([0.7, 1.4]), KIND_MATERN_05, K, coefficients
    )
    _, dK = kernel(Z, eval_gradient=True)
    np.testing.assert_allclose(d_length, dK.sum(axis=(0, 1)), rtol=1e-12)


def test_rejects_mismatched_shapes(points):
    X, Z = points
    with pytest.raises(ValueError, match="equal columns"):
        cross_kernel(X, Z[:, :2], np.ones(3), 1.0, KIND_RBF)
    with pytest.raises(ValueError, match="inverse_length_scales"):
        cross_kernel(X, Z, np.ones(2), 1.0, KIND_RBF)
    with pytest.raises(ValueError, match="kind"):
        cross_kernel(X, Z, np.ones(3), 1.0, 7)
    with pytest.raises(ValueError, match="coefficients"):
        cross_kernel_gradient(X, Z, np.ones(3), KIND_RBF, np.ones((6, 4)), np.ones((4, 6)))


FAST_KERNELS = [
    C(2.0) * RBF([0.5, 2.0, 1.0]),
    RBF(1.3),
    C(0.5) * Matern(1.3, nu=1.5) + WhiteKernel(0.1),
    WhiteKernel(0.2) + Matern([1.0, 2.0, 3.0], nu=0.5) * C(3.0),
    C(1.5, "fixed") * Matern(0.7, nu=2.5),
    C(1.2) * RBF([0.9, 1.1, 1.4], length_scale_bounds="fixed") + WhiteKernel(0.3),
]


@pytest.mark.parametrize("kernel", FAST_KERNELS, ids=str)
def test_fast_path_equals_general_path(kernel):
    rng = np.random.RandomState(0)
    X, t, w, Z = rng.randn(30, 3), rng.randn(30), rng.uniform(0.2, 2, 30), rng.randn(5, 3)
    assert stationary_spec(kernel, 3) is not None
    fast = collapsed_bound(kernel, Z, X, t, w, 0.3)
    general = collapsed_bound(kernel, Z, X, t, w, 0.3, fast=False)
    np.testing.assert_allclose(fast.bound, general.bound, rtol=1e-10)
    scale = np.abs(general.gradient).max()
    np.testing.assert_allclose(
        fast.gradient, general.gradient, rtol=1e-10, atol=1e-10 * scale
    )


@pytest.mark.parametrize(
    "kernel",
    [
        Matern(1.0, nu=1.3),
        RationalQuadratic(),
        C(1.0) * RBF(1.0) + C(1.0) * RBF(2.0),
        DotProduct(),
        RBF([1.0, 2.0]),  # two length scales for three features
        C(1.0) * (RBF(1.0) + WhiteKernel()),
    ],
    ids=str,
)
def test_other_kernels_take_the_general_path(kernel):
    assert stationary_spec(kernel, 3) is None
