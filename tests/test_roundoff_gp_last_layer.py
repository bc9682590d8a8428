"""Forgets that cancel digits: a refit on the remaining rows, or an honest warning.

- SparseGPRegressor whitens a row with ``L^-1`` of an ill-conditioned ``K_uu``:
  a row forgotten alone must be whitened to the same bits as when it was
  learned in a block, or an outlying target leaves a difference from a refit
  far beyond the estimated error, silently.
- BayesianMLPRegressor(curvature='last_layer') forgetting a row of large
  target cancels digits of ``Phi' W y``: its estimated error must see them,
  and warn as BayesianLinearRegression does.
"""

import warnings

import numpy as np
import pytest
from sklearn.datasets import load_diabetes
from sklearn.gaussian_process.kernels import RBF
from sklearn.gaussian_process.kernels import ConstantKernel as C
from sklearn.preprocessing import StandardScaler

from sklunlearn.exceptions import UnlearningWarning
from sklunlearn.gaussian_process import SparseGPRegressor
from sklunlearn.gaussian_process._bound import whitened_features
from sklunlearn.neural_network import BayesianMLPRegressor
from sklunlearn.neural_network._last_layer import features

ROUND_OFF = "cancelled most of"


def _relative(a, b):
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


def _round_off_warnings(caught):
    return [w for w in caught if ROUND_OFF in str(w.message)]


# ----------------------------------------------------- sparse GP, one row alone
def _sine(n=200):
    rng = np.random.RandomState(0)
    X = rng.uniform(-3, 3, (n, 1))
    return X, np.sin(X[:, 0]) + 0.1 * rng.randn(n)


def _ill_conditioned_sgpr(X):
    # 20 inducing points in [-3, 3] with a unit length scale: K_uu is singular
    # but for the jitter, so L^-1 has entries of order 1e5.
    return dict(
        kernel=C(1.0) * RBF(1.0),
        inducing_points=X[::10],
        optimizer=None,
        noise_variance=0.01,
    )


def test_whitened_features_of_a_row_alone_are_those_of_its_block():
    X, y = _sine()
    est = SparseGPRegressor(**_ill_conditioned_sgpr(X)).fit(X, y)
    kernel, Z, factor = est.kernel_, est.inducing_points_, est._inducing_factor
    assert np.abs(factor.inverse).max() > 1e5  # the case that amplifies rounding
    block = whitened_features(kernel, Z, factor, X)
    for i in (0, 57, 199):
        alone = whitened_features(kernel, Z, factor, X[i : i + 1])
        assert np.array_equal(alone[:, 0], block[:, i])


@pytest.mark.parametrize("typo", [30.0, 1e4])
def test_sgpr_forgetting_one_outlying_row_equals_a_refit(typo):
    """An outlying row forgotten must leave the model a refit would give, within the
    estimate, however far the row lies from the rest."""
    X, y = _sine()
    n = X.shape[0]
    params = _ill_conditioned_sgpr(X)
    X_all, y_all = np.vstack([X, [[0.5]]]), np.r_[y, typo]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        est = SparseGPRegressor(**params).fit(X_all, y_all)
        est.partial_unfit(X_all[n:], y_all[n:])
    refit = SparseGPRegressor(**params).fit(X, y)
    mean, std = est.predict(X, return_std=True)
    mean_refit, std_refit = refit.predict(X, return_std=True)
    assert _relative(mean, mean_refit) < 1e-11
    assert _relative(std, std_refit) < 1e-11
    report = est.forget_report_
    # Whatever it claims, the claim holds: exact means within the estimate.
    if report.exact:
        assert not _round_off_warnings(caught)
        assert _relative(mean, mean_refit) <= 10 * max(report.estimated_error, 1e-13)


def test_sgpr_row_learned_alone_and_forgotten_in_a_batch_equals_a_refit():
    """A row's whitened features must not depend on the size of the block it is
    whitened in (one row when learned, a batch when forgotten)."""
    X, y = _sine()
    params = _ill_conditioned_sgpr(X)
    est = SparseGPRegressor(**params).fit(X, y)
    est.partial_fit([[0.5]], [1e4])
    keep = np.r_[0, 3 : X.shape[0]]  # rows 1 and 2 are not inducing points
    est.partial_unfit(np.r_[[[0.5]], X[1:3]], np.r_[1e4, y[1:3]])
    refit = SparseGPRegressor(**params).fit(X[keep], y[keep])
    assert _relative(est.predict(X), refit.predict(X)) < 1e-11


# ------------------------------------------------- MLP last layer, typo target
@pytest.fixture(scope="module")
def diabetes():
    X, y = load_diabetes(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    return X, (y - y.mean()) / y.std()


def _last_layer_forget(X, y, X_forget, y_forget):
    est = BayesianMLPRegressor(
        hidden_layer_sizes=(20,),
        curvature="last_layer",
        noise_variance=0.5,
        max_iter=60,
        random_state=0,
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        est.fit(np.vstack([X, X_forget]), np.r_[y, y_forget])
        caught.clear()  # the fit's ConvergenceWarning is not the forget's
        est.partial_unfit(X_forget, y_forget)
    return est, caught


def _conjugate_refit(est, X, y):
    """The output layer's posterior mean refitted on ``X, y`` (same hidden layers)."""
    P = features(est.model_.predictor, X, est._theta)
    beta = est.model_.likelihood.noise_precision
    precision = est._alpha * np.eye(P.shape[1]) + beta * P.T @ P
    return np.linalg.solve(precision, beta * P.T @ y)


@pytest.mark.parametrize("typo", [1e10, 1e12])
def test_last_layer_forgetting_a_large_target_warns_of_round_off(diabetes, typo):
    """A huge target's round-off in the output layer's statistics must be counted in
    the estimate, and the forget must warn."""
    X, y = diabetes
    est, caught = _last_layer_forget(X, y, 0.5 * X[:1], [typo])
    weights = est._theta[est.model_.predictor.output_slice()]
    actual = _relative(weights, _conjugate_refit(est, X, y))
    assert actual > 1e-8  # the digits really are lost
    report = est.forget_report_
    assert report.estimated_error >= actual / 10
    assert not report.exact
    messages = _round_off_warnings(caught)
    assert messages and all(m.category is UnlearningWarning for m in messages)


def test_last_layer_ordinary_forget_does_not_warn_of_round_off(diabetes):
    X, y = diabetes
    est, caught = _last_layer_forget(X[5:], y[5:], X[:5], y[:5])
    weights = est._theta[est.model_.predictor.output_slice()]
    assert _relative(weights, _conjugate_refit(est, X[5:], y[5:])) < 1e-10
    assert est.forget_report_.estimated_error < 1e-12
    assert not _round_off_warnings(caught)
