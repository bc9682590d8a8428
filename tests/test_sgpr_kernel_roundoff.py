"""Kernels without a fast path forget a row as a refit would, within the estimate.

scikit-learn's ``DotProduct`` computes ``K(X, Z)`` with a BLAS product, which
rounds a row by the shape of the block it is in: a row learned in a block and
forgotten alone must leave none of its whitened features in the statistics, and
the forget must match a refit within the ``estimated_error`` it reports.
Rows far from the origin (``X + 1e3``) also give kernel values far above the
noise variance, whose sum ``sum k_ii - tr A`` in the bound cancels most of its
digits, and a polynomial kernel of them an ill-conditioned ``A`` whose q(v) no
refit determines to more than a few digits: the estimate must include both.
"""

import warnings

import numpy as np
import pytest
from sklearn.datasets import load_diabetes
from sklearn.gaussian_process.kernels import (
    RBF,
    DotProduct,
    ExpSineSquared,
    Matern,
    PairwiseKernel,
    RationalQuadratic,
    WhiteKernel,
)
from sklearn.gaussian_process.kernels import ConstantKernel as C

from sklunlearn.gaussian_process import SparseGPRegressor
from sklunlearn.gaussian_process._bound import inducing_cholesky, whitened_features

KERNELS = {
    "DotProduct": lambda: DotProduct(1.0),
    "C * DotProduct": lambda: C(2.0) * DotProduct(0.5),
    "DotProduct + White": lambda: DotProduct(1.0) + WhiteKernel(0.1),
    "RationalQuadratic": lambda: RationalQuadratic(1.0, 1.0),
    "C * RationalQuadratic + White": lambda: (
        C(2.0) * RationalQuadratic(1.0, 1.0) + WhiteKernel(0.1)
    ),
    "ExpSineSquared": lambda: ExpSineSquared(1.0, 5.0),
    "RBF * DotProduct": lambda: RBF(10.0) * DotProduct(1.0),
    "C * RBF + DotProduct": lambda: C(1.0) * RBF(1.0) + DotProduct(1.0),
    "C * Matern(nu=inf) + DotProduct ** 2": lambda: (
        C(1.0) * Matern(3.0, nu=np.inf) + DotProduct(0.1) ** 2
    ),
}
FORGETS = {"row 0": [0], "row 7": [7], "row 250": [250], "rows 3-5": [3, 4, 5]}


def _data(name, kernel_name):
    if name == "diabetes":  # raw: centred features, targets in the hundreds
        return load_diabetes(return_X_y=True)
    rng = np.random.RandomState(0)
    # ExpSineSquared of the Euclidean distance is a kernel in one dimension only
    d = 1 if kernel_name == "ExpSineSquared" else 3
    X = rng.randn(300, d) + 1e3
    return X, X.sum(axis=1) - 1e3 * d + 0.1 * rng.randn(300)


def _relative(a, b):
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


def _params(kernel_name, X, y):
    return dict(
        kernel=KERNELS[kernel_name](),
        inducing_points=X[::10][:30] + 0.01,
        optimizer=None,
        noise_variance=0.1 * np.var(y),
    )


def _error_from_refit(est, refit, X):
    """Relative difference of q(v)'s mean, the predictions and the bound."""
    mean, std = est.predict(X, return_std=True)
    refit_mean, refit_std = refit.predict(X, return_std=True)
    bound = est.log_marginal_likelihood_value_
    refit_bound = refit.log_marginal_likelihood_value_
    return max(
        _relative(est.whitened_posterior_.mean, refit.whitened_posterior_.mean),
        _relative(mean, refit_mean),
        _relative(std, refit_std),
        abs(bound - refit_bound) / abs(refit_bound),
    )


@pytest.mark.parametrize("forget", FORGETS)
@pytest.mark.parametrize("data", ["diabetes", "offset"])
@pytest.mark.parametrize("kernel_name", KERNELS)
def test_forget_is_a_refit_within_the_estimated_error(kernel_name, data, forget):
    """Every kernel's forget is within its estimate: DotProduct's block rounding,
    the bound's trace term and q(v)'s conditioning all counted."""
    X, y = _data(data, kernel_name)
    params = _params(kernel_name, X, y)
    rows = np.array(FORGETS[forget])
    keep = np.setdiff1d(np.arange(len(y)), rows)
    est = SparseGPRegressor(**params).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an ordinary forget warns of nothing
        est.partial_unfit(X[rows], y[rows])
    refit = SparseGPRegressor(**params).fit(X[keep], y[keep])
    report = est.forget_report_
    assert report.exact
    # A first-order estimate: within a factor that covers the predictions' own
    # round-off (a few u, as between two refits in another row order).
    assert _error_from_refit(est, refit, X) <= 10 * report.estimated_error


@pytest.mark.parametrize("data", ["diabetes", "offset"])
@pytest.mark.parametrize("kernel_name", KERNELS)
def test_whitened_features_of_a_row_alone_are_those_of_its_block(kernel_name, data):
    X, y = _data(data, kernel_name)
    params = _params(kernel_name, X, y)
    kernel, Z = params["kernel"], params["inducing_points"]
    factor = inducing_cholesky(kernel, Z)
    block = whitened_features(kernel, Z, factor, X)
    for i in (0, 1, 7, 131, X.shape[0] - 1):
        alone = whitened_features(kernel, Z, factor, X[i : i + 1])
        pair = whitened_features(kernel, Z, factor, X[i : i + 2])
        assert np.array_equal(alone[:, 0], block[:, i])
        assert np.array_equal(pair[:, 0], block[:, i])


class _SubclassedDotProduct(DotProduct):
    """A kernel the package does not know: evaluated one row at a time."""


@pytest.mark.parametrize(
    "kernel",
    [
        DotProduct(0.5) ** 3,
        C(2.0) * DotProduct(1.0) + WhiteKernel(0.5),
        PairwiseKernel(metric="rbf", gamma=1e-6),
        _SubclassedDotProduct(1.0) * RBF(30.0),
    ],
    ids=str,
)
def test_features_of_any_kernel_are_row_independent_and_its_values(kernel):
    rng = np.random.RandomState(1)
    X = rng.randn(70, 4) * 3 + 1e3
    Z = X[::7] + 0.5
    factor = inducing_cholesky(kernel, Z, jitters=(1e-6, 1e-4))
    block = whitened_features(kernel, Z, factor, X)
    alone = [whitened_features(kernel, Z, factor, X[i : i + 1]) for i in range(70)]
    assert np.array_equal(np.hstack(alone), block)
    # the same features as scikit-learn's K(Z, X) whitened, up to rounding
    reference = whitened_features(kernel, Z, factor, X, independent_rows=False)
    np.testing.assert_allclose(block, reference, rtol=1e-8, atol=1e-8 * np.abs(block).max())
