"""Approximate forgets that end further from the retrained posterior than doing nothing.

Such a result must never be silent: it warns (``UnlearningWarning``), per one-vs-rest
class, naming the class.

L-CODEC on a sparse GP classifier: a block step whose checks each pass (its mean is
closer to the full Newton step's than the unforgotten mean, and the full step's
re-linearisation measures are below their thresholds) can still add up to more than
doing nothing, since the full step it approximates is itself only part of the way to
the retrained posterior.

'uib' on a predictor linear in its parameters has no self-check: the two tests marked
xfail record known silent misses that no measure of the forgotten rows separates
from results at 0.96 of doing nothing that tests/test_uib.py requires to stay silent.
"""

import copy
import warnings

import numpy as np
import pytest
from sklearn.datasets import load_wine
from sklearn.gaussian_process.kernels import RBF
from sklearn.gaussian_process.kernels import ConstantKernel as C
from sklearn.preprocessing import StandardScaler

from sklunlearn.datasets import load_banknote
from sklunlearn.exceptions import UnlearningWarning
from sklunlearn.gaussian_process import SparseGPClassifier
from sklunlearn.linear_model import BayesianLogisticRegression


def _unlearning_warnings(est, X, y):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        est.partial_unfit(X, y)
    return [str(w.message) for w in caught if issubclass(w.category, UnlearningWarning)]


def _banknote_subset(n, seed):
    """``n`` standardised banknote rows and 30 of them as inducing points."""
    X, y = load_banknote(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    rng = np.random.default_rng(seed)
    rows = rng.choice(X.shape[0], n, replace=False)
    X, y = X[rows], y[rows]
    return X, y, X[rng.choice(n, 30, replace=False)]


@pytest.mark.parametrize("n, seed, forget_seed", [(300, 101, 1), (400, 102, 0)])
def test_lcodec_sparse_gp_worse_than_doing_nothing_warns(n, seed, forget_seed):
    """A random 5% forgotten in one request, worse than doing nothing although the
    block step is near the full step and the full step's checks pass."""
    X, y, Z = _banknote_subset(n, seed)
    forget = np.sort(
        np.random.default_rng(forget_seed).choice(n, int(0.05 * n), replace=False)
    )
    keep = np.setdiff1d(np.arange(n), forget)

    def model(**params):
        kernel = C(100.0) * RBF(2.0)
        return SparseGPClassifier(
            kernel=kernel, inducing_points=Z, optimizer=None, random_state=0, **params
        )

    full = model(unlearning="lcodec").fit(X, y)
    retrained = model().fit(X[keep], y[keep]).whitened_posterior_
    est = copy.deepcopy(full)
    caught = _unlearning_warnings(est, X[forget], y[forget])
    nothing = full.whitened_posterior_.kl_divergence(retrained)
    ratio = est.whitened_posterior_.kl_divergence(retrained) / nothing
    assert ratio > 1.0  # the finding this guards
    assert any("L-CODEC" in message for message in caught), caught
    assert est.forget_report_.warnings
    record = est.forget_report_.diagnostics
    assert record.full_step_distance < 1.0  # the check that passed before
    combined = np.sqrt(min(record.full_step_error, 1.0))
    assert combined + np.sqrt(record.block_disagreement) > 1.0


def _wine(binary):
    X, y = load_wine(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    return (X, (y == 0).astype(int)) if binary else (X, y)


def _nearest(X, fraction, seed):
    rng = np.random.default_rng(seed)
    centre = X[rng.integers(X.shape[0])]
    forget = np.argsort(((X - centre) ** 2).sum(axis=1))[: int(fraction * X.shape[0])]
    return np.sort(forget), np.setdiff1d(np.arange(X.shape[0]), forget)


_UIB_REASON = (
    "'uib' has no self-check on a predictor linear in its parameters; these misses "
    "are covariance-driven (its precision divided out where the forgotten rows held "
    "almost all of it, while the remaining rows' curvature there grows at the "
    "retrained mean) and the forgotten rows' re-linearisation measures are as large "
    "on results at 0.4-0.96 of doing nothing that tests/test_uib.py keeps silent"
)


@pytest.mark.xfail(strict=True, reason=_UIB_REASON)
def test_uib_one_vs_rest_class_worse_than_doing_nothing_warns_naming_it():
    """Standardised wine, alpha=0.01, the 20% nearest one row: class 0's posterior
    ends worse than doing nothing, silently."""
    X, y = _wine(binary=False)
    forget, keep = _nearest(X, 0.2, 2)
    full = BayesianLogisticRegression(alpha=0.01, unlearning="uib").fit(X, y)
    retrained = BayesianLogisticRegression(alpha=0.01).fit(X[keep], y[keep])
    est = copy.deepcopy(full)
    caught = _unlearning_warnings(est, X[forget], y[forget])
    target = retrained.posterior_[0]
    ratio = est.posterior_[0].kl_divergence(target) / full.posterior_[0].kl_divergence(
        target
    )
    assert ratio > 1.0
    assert any(message.startswith("Class 0 ") for message in caught), caught


@pytest.mark.xfail(strict=True, reason=_UIB_REASON)
def test_uib_clustered_forget_slightly_worse_than_doing_nothing_warns():
    """Wine class 0 against the rest, alpha=0.01, the 15% nearest one row: 1.015."""
    X, y = _wine(binary=True)
    forget, keep = _nearest(X, 0.15, 2)
    full = BayesianLogisticRegression(alpha=0.01, unlearning="uib").fit(X, y)
    retrained = BayesianLogisticRegression(alpha=0.01).fit(X[keep], y[keep])
    est = copy.deepcopy(full)
    caught = _unlearning_warnings(est, X[forget], y[forget])
    nothing = full.posterior_.kl_divergence(retrained.posterior_)
    assert est.posterior_.kl_divergence(retrained.posterior_) > nothing
    assert caught
