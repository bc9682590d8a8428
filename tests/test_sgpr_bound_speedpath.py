"""The collapsed bound's fast path: kept blocks, the vectorised exponential and
weighted rows where ``K_ZZ`` is ill-conditioned."""

import numpy as np
import pytest
from sklearn.gaussian_process.kernels import RBF, Matern, WhiteKernel
from sklearn.gaussian_process.kernels import ConstantKernel as C

from sklunlearn._numba.stationary import _exp_nonpositive
from sklunlearn.gaussian_process import _bound
from sklunlearn.gaussian_process._bound import AbsoluteJitters, collapsed_bound


def _exp(x):
    bits = np.empty(x.shape[0], dtype=np.int64)
    out = np.empty(x.shape[0])
    _exp_nonpositive(x, bits, bits.view(np.float64), out)
    return out


def test_exp_nonpositive_matches_numpy_within_two_units_in_the_last_place():
    rng = np.random.RandomState(0)
    x = -np.concatenate(
        [
            rng.uniform(0, 708, 100_000),
            rng.uniform(0, 1, 10_000),
            10.0 ** rng.uniform(-300, 0, 10_000),
            [0.0, 0.5 * np.log(2), np.log(2), 707.9, 708.0],
        ]
    )
    reference = np.exp(x)
    np.testing.assert_allclose(_exp(x), reference, rtol=2 * np.finfo(float).eps, atol=0)


def test_exp_nonpositive_outside_its_range():
    """0 below it, 1 above (positive arguments are clamped to 0), NaN for NaN."""
    x = np.array([-708.5, -745.0, -1e4, -np.inf, 1.0, np.inf, np.nan])
    np.testing.assert_array_equal(_exp(x), [0.0, 0.0, 0.0, 0.0, 1.0, 1.0, np.nan])


def _rows(n, d, seed):
    rng = np.random.RandomState(seed)
    X = rng.uniform(-2, 2, size=(n, d))
    y = np.sin(X * rng.uniform(0.5, 1.5, d)).sum(axis=1) / np.sqrt(d)
    y += 0.1 * rng.randn(n)
    weights = rng.uniform(0, 3, n)
    weights[rng.rand(n) < 0.1] = 0.0
    return X, y, weights, rng


@pytest.mark.parametrize(
    "kernel, noise_variance",
    [
        (C(2.0) * RBF([0.7, 1.3, 2.0]), 0.1),
        (C(1.5) * Matern([1.0, 0.5, 2.0], nu=1.5) + WhiteKernel(0.05), 0.2),
    ],
)
def test_kept_and_recomputed_blocks_give_the_same_evaluation(
    monkeypatch, kernel, noise_variance
):
    """Keeping the first sweep's features and K(X, Z), the features only, or
    nothing (the second sweep recomputes them, as the dask twin does) gives the
    same bound and gradients, over several blocks."""
    X, y, weights, rng = _rows(300, 3, 1)
    Z = X[rng.choice(300, 25, replace=False)]
    monkeypatch.setattr(_bound, "_BOUND_BLOCK_ENTRIES", 64 * 25)
    evaluations = []
    for budget in (2 * 300 * 25, 300 * 25, 0):
        monkeypatch.setattr(_bound, "_KEPT_ENTRIES", budget)
        evaluations.append(
            collapsed_bound(kernel, Z, X, y, weights, noise_variance, with_inducing=True)
        )
    first = evaluations[0]
    for other in evaluations[1:]:
        assert other.bound == pytest.approx(first.bound, rel=1e-13)
        np.testing.assert_allclose(other.gradient, first.gradient, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(
            other.inducing_gradient, first.inducing_gradient, rtol=1e-12, atol=1e-12
        )


def test_weighted_gradient_is_accurate_where_K_ZZ_is_ill_conditioned():
    """At a large signal variance with long length scales the K_uu part and the
    rows' part of the gradient are large and cancel: with weights, both sweeps
    must use the same weighted whitened features, to the last bit. The inducing
    gradient along random directions agrees with central differences."""
    X, y, weights, rng = _rows(1000, 8, 0)
    Z = X[rng.choice(1000, 100, replace=False)]
    length_scales = [15.6, 1040.0, 14.6, 1060.0, 18.7, 1180.0, 15.3, 18.6]
    kernel, noise_variance = C(7500.0) * RBF(length_scales), 0.01
    jitters = AbsoluteJitters((1e-6,))

    def bound(inducing):
        return collapsed_bound(
            kernel, inducing, X, y, weights, noise_variance, jitters=jitters
        ).bound

    gradient = collapsed_bound(
        kernel, Z, X, y, weights, noise_variance, with_inducing=True, jitters=jitters
    ).inducing_gradient
    step = 1e-3
    for seed in range(3):
        direction = np.random.RandomState(seed).randn(*Z.shape)
        numeric = (bound(Z + step * direction) - bound(Z - step * direction)) / (2 * step)
        # directional derivatives of a few units; the differences' error is ~1e-3
        assert np.sum(gradient * direction) == pytest.approx(numeric, abs=0.01)
