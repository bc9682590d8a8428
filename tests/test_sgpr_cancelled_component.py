"""A forget that cancels all of a whitened component's weight is within its estimate.

With ``RBF * DotProduct`` on raw features an inducing point can get its weight
only from rows that are then forgotten: its diagonal entry of ``A`` cancels to
round-off of what it had absorbed, and the estimate must count that.
"""

import warnings

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_wine
from sklearn.gaussian_process.kernels import RBF, DotProduct

from sklunlearn.exceptions import UnlearningWarning
from sklunlearn.gaussian_process import SparseGPRegressor


def _relative(a, b):
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def _wine_duplicates():
    X, _ = load_wine(return_X_y=True)
    y, X = X[:, 0].copy(), X[:, 1:]
    rng = np.random.RandomState(0)
    n = X.shape[0]
    Z = X[rng.choice(n, 30, replace=False)].copy()
    duplicated = rng.choice(n, 20)
    X, y = np.vstack([X, X[duplicated]]), np.r_[y, y[duplicated]]
    forget = np.r_[duplicated[:10], np.arange(n, n + 10)]
    return X, y, Z, forget


def _breast_cancer_clustered():
    X, _ = load_breast_cancer(return_X_y=True)
    y, X = X[:, 0].copy(), X[:, 1:]
    rng = np.random.RandomState(0)
    n = X.shape[0]
    Z = X[rng.choice(n, 30, replace=False)].copy()
    return X, y, Z, np.argsort(X[:, 0])[-n // 10 :]


@pytest.mark.parametrize("case", [_wine_duplicates, _breast_cancer_clustered])
def test_forget_cancelling_a_component_is_within_the_estimate(case):
    X, y, Z, forget = case()
    keep = np.setdiff1d(np.arange(X.shape[0]), forget)
    params = dict(
        kernel=RBF(2.0) * DotProduct(1.0),
        inducing_points=Z,
        noise_variance=1.0,
        optimizer=None,
        normalize_y=True,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = SparseGPRegressor(**params).fit(X, y)
        refit = SparseGPRegressor(**params).fit(X[keep], y[keep])
    with pytest.warns(UnlearningWarning, match="round-off error"):
        est.partial_unfit(X[forget], y[forget])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _, std = est.predict(X, return_std=True)
        _, refit_std = refit.predict(X, return_std=True)
    error = max(
        _relative(est.posterior_.covariance, refit.posterior_.covariance),
        _relative(est.whitened_posterior_.covariance, refit.whitened_posterior_.covariance),
        _relative(est.posterior_.mean, refit.posterior_.mean),
        float(np.max(np.abs(std - refit_std)) / np.max(refit_std)),
    )
    report = est.forget_report_
    assert error <= report.estimated_error
    assert not report.exact
    assert not report.exact
