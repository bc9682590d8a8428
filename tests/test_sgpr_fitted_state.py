"""What SparseGPRegressor derives from its fitted state once, and when it renews it.

The inducing factor carries the cross-covariance of the kernel and inducing
points it factorised, so that learning and forgetting rows does not inspect
the kernel again; every fit, reoptimize and change of kernel or inducing
points must renew it, or forgetting would subtract rows seen through another
kernel than the refit's.
"""

import copy
import pickle
import warnings

import numpy as np
import pytest
from sklearn.gaussian_process.kernels import RBF, Matern, RationalQuadratic
from sklearn.gaussian_process.kernels import ConstantKernel as C
from threadpoolctl import threadpool_limits

from sklunlearn.exceptions import UnlearningWarning
from sklunlearn.gaussian_process import SparseGPRegressor
from sklunlearn.gaussian_process._bound import (
    SparseStatistics,
    inducing_cholesky,
    whitened_features,
)


@pytest.fixture(autouse=True)
def one_blas_thread():
    with threadpool_limits(1):
        yield


def _data(n=120, d=3, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.uniform(-2, 2, size=(n, d))
    y = np.sin(X).sum(axis=1) + 0.1 * rng.randn(n)
    return X, y


def _refit(est, X, y):
    """The model forgetting must equal: the fitted parameters kept, the rows given."""
    return SparseGPRegressor(
        kernel=est.kernel_,
        inducing_points=est.inducing_points_,
        noise_variance=est.noise_variance_,
        optimizer=None,
    ).fit(X, y)


def _assert_equal_models(a, b, X):
    mean_a, std_a = a.predict(X, return_std=True)
    mean_b, std_b = b.predict(X, return_std=True)
    np.testing.assert_allclose(mean_a, mean_b, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(std_a, std_b, rtol=1e-9, atol=1e-9)
    assert a.log_marginal_likelihood_value_ == pytest.approx(
        b.log_marginal_likelihood_value_, rel=1e-9
    )


def _forget_equals_refit(est, X, y, k):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnlearningWarning)
        est.partial_unfit(X[:k], y[:k])
    _assert_equal_models(est, _refit(est, X[k:], y[k:]), X)


@pytest.mark.parametrize(
    "first, second",
    [
        (C(2.0) * RBF([1.0, 0.5, 2.0]), C(0.5) * RBF([0.3, 3.0, 1.0])),
        (RBF(1.0), Matern(0.7, nu=1.5)),
        (C(1.0) * RBF(1.0), C(1.0) * RationalQuadratic(length_scale=0.8)),
    ],
)
def test_forgetting_after_a_refit_with_another_kernel_uses_the_new_kernel(first, second):
    X, y = _data()
    Z = X[::6].copy()
    est = SparseGPRegressor(kernel=first, inducing_points=Z, optimizer=None).fit(X, y)
    _forget_equals_refit(est, X, y, 10)
    est.set_params(kernel=second).fit(X, y)
    _forget_equals_refit(est, X, y, 10)


def test_forgetting_after_new_inducing_points_uses_them():
    X, y = _data()
    est = SparseGPRegressor(kernel=RBF(1.0), inducing_points=X[::6].copy(), optimizer=None)
    est.fit(X, y)
    est.set_params(inducing_points=X[1::5] + 0.01).fit(X, y)
    _forget_equals_refit(est, X, y, 12)


def test_forgetting_after_reoptimize_uses_the_reoptimized_kernel():
    X, y = _data(n=150)
    est = SparseGPRegressor(
        kernel=C(1.0) * RBF([1.0, 1.0, 1.0]), inducing_points=X[::10].copy()
    ).fit(X, y)
    before = est.kernel_.theta.copy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnlearningWarning)
        est.partial_unfit(X[:40], y[:40])
    est.reoptimize(X[40:], y[40:])
    assert not np.allclose(est.kernel_.theta, before)
    _forget_equals_refit(est, X[40:], y[40:], 15)


@pytest.mark.parametrize(
    "duplicate", [copy.deepcopy, lambda e: pickle.loads(pickle.dumps(e))]
)
def test_a_copy_forgets_as_the_original(duplicate):
    X, y = _data()
    est = SparseGPRegressor(
        kernel=C(1.0) * RBF([1.0, 2.0, 0.5]), inducing_points=X[::6].copy(), optimizer=None
    ).fit(X, y)
    twin = duplicate(est)
    est.partial_unfit(X[:9], y[:9])
    twin.partial_unfit(X[:9], y[:9])
    np.testing.assert_array_equal(twin.predict(X), est.predict(X))
    assert twin.log_marginal_likelihood_value_ == est.log_marginal_likelihood_value_


@pytest.mark.parametrize("kernel", [C(3.0) * RBF([0.5, 2.0, 1.0]), RationalQuadratic()])
def test_a_factor_without_its_cross_covariance_whitens_from_the_kernel(kernel):
    X, _ = _data(n=40)
    Z = X[::4].copy()
    factor = inducing_cholesky(kernel, Z)
    carried = whitened_features(kernel, Z, factor, X)
    np.testing.assert_array_equal(
        whitened_features(kernel, Z, factor._replace(cross=None), X), carried
    )
    np.testing.assert_allclose(carried, factor.inverse @ kernel(Z, X), atol=1e-12)


def test_statistics_of_one_block_are_the_block_merged_into_no_rows():
    X, y = _data(n=30)
    rng = np.random.RandomState(1)
    weights = rng.uniform(0.5, 2.0, size=30)
    kernel, Z = C(2.0) * RBF(0.7), X[::3].copy()
    factor = inducing_cholesky(kernel, Z)
    statistics = SparseStatistics.from_data(kernel, Z, factor, X, y, weights)
    merged = SparseStatistics.empty(Z.shape[0]) + statistics
    for got, want in zip(statistics.linear, merged.linear, strict=True):
        np.testing.assert_array_equal(got, want)
    assert statistics.kdiag == merged.kdiag
    np.testing.assert_array_equal(statistics.aa_diagonal, np.diag(statistics.aa))
    none = SparseStatistics.from_data(kernel, Z, factor, X, y, np.zeros(30))
    assert none.weight_sum == 0.0 and none.n_rows == 0
