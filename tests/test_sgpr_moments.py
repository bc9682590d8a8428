"""One sweep's moments give the collapsed bound and its gradient of the two sweeps.

The Numba derivatives of stationary cross-covariances are checked against
scikit-learn's ``eval_gradient``; the bound and gradient from summed moments
against :func:`collapsed_bound` (two sweeps) and against finite differences.
"""

import numpy as np
import pytest
from sklearn.gaussian_process.kernels import RBF, Matern, RationalQuadratic, WhiteKernel
from sklearn.gaussian_process.kernels import ConstantKernel as C
from test_stationary_kernels import SHAPES

from sklunlearn._numba.sgpr_moments import length_scale_derivatives
from sklunlearn._numba.stationary import (
    KIND_RBF,
    cross_kernel,
)
from sklunlearn.gaussian_process._bound import bound_setup, collapsed_bound
from sklunlearn.gaussian_process._bound_moments import bound_moments, moments_evaluation

KERNELS = {
    "rbf-ard-white": C(0.8) * RBF([1.1, 0.7, 2.0]) + WhiteKernel(0.01),
    "rbf-isotropic": RBF(1.3),
    "matern05-times-constant": Matern(0.9, nu=0.5) * C(2.0),
    "matern15-ard": C(1.2) * Matern([1.0, 2.0, 0.5], nu=1.5),
    "matern25-white": Matern(0.7, nu=2.5) + WhiteKernel(0.1),
    "fixed-variance": C(1.5, "fixed") * RBF([1.0, 2.0, 3.0]),
    # not a stationary spec: the dense kernel gradient per block
    "rational-quadratic": C(0.9) * RationalQuadratic(1.0, 0.5) + WhiteKernel(0.1),
}


def _problem(n=250, m=15, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.uniform(-3, 3, size=(n, 3))
    t = np.sin(X[:, 0]) + 0.3 * rng.randn(n)
    weights = rng.uniform(0.5, 2.0, n)
    weights[::17] = 0.0  # rows of zero weight add nothing
    Z = rng.uniform(-3, 3, size=(m, 3))
    Z[0] = X[5]  # r = 0 between a row and an inducing point
    return X, t, weights, Z


def _sum(parts):
    """Elementwise sum of plain tuples, as the chunks' moments are reduced."""
    return tuple(sum(values) for values in zip(*parts, strict=True))


@pytest.mark.parametrize("kind", SHAPES)
@pytest.mark.parametrize("isotropic", [True, False])
def test_length_scale_derivatives_equal_sklearn(kind, isotropic):
    X, _, _, Z = _problem(40, 7)
    length_scales = np.array([0.8]) if isotropic else np.array([0.8, 1.7, 0.5])
    variance = 1.7
    inverse = np.broadcast_to(1.0 / length_scales, (3,)).copy()
    K = cross_kernel(X, Z, inverse, variance, kind)
    got = length_scale_derivatives(X, Z, inverse, kind, K, isotropic)
    shape = SHAPES[kind](length_scales[0] if isotropic else length_scales)
    _, gradient = shape(np.vstack([X, Z]), eval_gradient=True)
    expected = variance * gradient[: X.shape[0], X.shape[0] :, :].transpose(0, 2, 1)
    assert got.shape == expected.shape == (40, length_scales.size, 7)
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-14)


def test_length_scale_derivatives_refuse_a_wrong_K():
    X, _, _, Z = _problem(10, 4)
    with pytest.raises(ValueError, match=r"K must have shape \(10, 4\)"):
        length_scale_derivatives(X, Z, np.ones(3), KIND_RBF, np.ones((4, 10)), True)


@pytest.mark.parametrize("name", KERNELS)
@pytest.mark.parametrize("chunks", [(250,), (1, 2, 5, 14, 41, 187), (1,) * 20 + (230,)])
def test_summed_moments_equal_two_sweeps(name, chunks):
    X, t, weights, Z = _problem()
    kernel = KERNELS[name]
    expected = collapsed_bound(kernel, Z, X, t, weights, 0.07)
    setup = bound_setup(kernel, Z)
    edges = np.cumsum((0, *chunks))
    parts = [
        bound_moments(setup, X[a:b], t[a:b], weights[a:b])
        for a, b in zip(edges[:-1], edges[1:], strict=True)
    ]
    got = moments_evaluation(setup, _sum(parts), 0.07)
    np.testing.assert_allclose(got.bound, expected.bound, rtol=1e-10)
    scale = np.max(np.abs(expected.gradient))
    np.testing.assert_allclose(got.gradient, expected.gradient, rtol=0, atol=1e-10 * scale)
    assert got.gradient.shape == (kernel.theta.size + 1,)
    assert got.inducing_gradient is None


@pytest.mark.parametrize("name", ["rbf-ard-white", "matern15-ard", "rational-quadratic"])
def test_moments_gradient_equals_finite_differences(name):
    X, t, weights, Z = _problem(120, 10)
    kernel = KERNELS[name]
    theta = np.append(kernel.theta, np.log(0.07))

    def bound(point):
        candidate = kernel.clone_with_theta(point[:-1])
        setup = bound_setup(candidate, Z, jitters=(1e-8,))
        return moments_evaluation(
            setup, bound_moments(setup, X, t, weights), np.exp(point[-1])
        )

    gradient = bound(theta).gradient
    step = 1e-5
    for j in range(theta.size):
        shift = np.zeros_like(theta)
        shift[j] = step
        difference = (bound(theta + shift).bound - bound(theta - shift).bound) / (2 * step)
        np.testing.assert_allclose(gradient[j], difference, rtol=1e-6, atol=1e-6, err_msg=j)


def test_moments_refuse_inducing_derivatives():
    X, t, weights, Z = _problem(20, 4)
    setup = bound_setup(KERNELS["rbf-isotropic"], Z, with_inducing=True)
    with pytest.raises(ValueError, match="inducing locations need two sweeps"):
        bound_moments(setup, X, t, weights)


def test_small_blocks_sum_to_one_block(monkeypatch):
    """Blocks of a chunk (here 16 rows, the memory budget's floor) add up exactly."""
    X, t, weights, Z = _problem()
    setup = bound_setup(KERNELS["matern15-ard"], Z)
    whole = bound_moments(setup, X, t, weights)
    monkeypatch.setattr(
        "sklunlearn.gaussian_process._bound_moments._GRADIENT_BLOCK_ENTRIES", 1
    )
    blocked = bound_moments(setup, X, t, weights)
    for got, expected in zip(blocked, whole, strict=True):
        scale = np.max(np.abs(expected), initial=1.0)
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12 * scale)
