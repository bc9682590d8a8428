"""The 'laplace' self-check on cases an independent tester found: results worse than
doing nothing that were silent, and warnings on good results; each against the
posterior retrained on the remaining rows."""

import numpy as np
import pytest
from _reference import self_check_warnings
from sklearn.datasets import load_breast_cancer
from sklearn.gaussian_process.kernels import RBF
from sklearn.gaussian_process.kernels import ConstantKernel as C
from sklearn.preprocessing import StandardScaler

from sklunlearn.datasets import load_banknote
from sklunlearn.gaussian_process import SparseGPClassifier
from sklunlearn.linear_model import BayesianLogisticRegression


def _kl_ratio(forgotten, full, retrained):
    return forgotten.kl_divergence(retrained) / full.kl_divergence(retrained)


@pytest.mark.parametrize("seed", [0, 1])
def test_small_moves_of_a_large_amplitude_sparse_gp_are_checked(seed):
    """The kernel the classifier's optimiser learns on standardised banknote: 10% random
    rows move the mean less than 0.1 standard deviations, yet the step ends further
    from the retrain than doing nothing; the check must run and warn."""
    X, y = load_banknote(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    kernel = C(193.0**2) * RBF(3.55)
    Z = X[np.random.RandomState(0).choice(len(y), 50, replace=False)] + 0.01
    forget = np.sort(np.random.RandomState(seed).choice(len(y), 137, replace=False))
    remain = np.setdiff1d(np.arange(len(y)), forget)
    est = SparseGPClassifier(kernel=kernel, inducing_points=Z).fit(X, y)
    full = est.whitened_posterior_
    retrained = SparseGPClassifier(kernel=kernel, inducing_points=Z).fit(
        X[remain], y[remain]
    )
    alarms = self_check_warnings(est, X[forget], y[forget])
    ratio = _kl_ratio(est.whitened_posterior_, full, retrained.whitened_posterior_)
    assert ratio > 1.0  # worse than doing nothing
    assert est.forget_report_.moved < 0.1  # a small move, checked all the same
    assert len(alarms) == 1, ratio


def test_a_good_random_forget_with_a_moderate_curvature_change_is_quiet():
    """Unscaled breast_cancer, 56 random rows: the step is far better than doing
    nothing; its curvature measure is above 0.02 but, for a move of more than one
    standard deviation, no sign of a bad step."""
    X, y = load_breast_cancer(return_X_y=True)
    forget = np.sort(np.random.RandomState(1).choice(len(y), 56, replace=False))
    remain = np.setdiff1d(np.arange(len(y)), forget)
    est = BayesianLogisticRegression().fit(X, y)
    full = est.posterior_
    retrained = BayesianLogisticRegression().fit(X[remain], y[remain])
    alarms = self_check_warnings(est, X[forget], y[forget])
    ratio = _kl_ratio(est.posterior_, full, retrained.posterior_)
    assert ratio < 0.2
    assert est.forget_report_.diagnostics.covariance_relinearisation > 0.02
    assert alarms == []
