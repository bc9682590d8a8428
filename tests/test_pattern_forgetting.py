"""Forgetting patterns: the 'laplace' self-check, pending requests, feature
injection and subgroup removal, each against the posterior retrained on the
remaining rows."""

import warnings

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.gaussian_process.kernels import RBF
from sklearn.gaussian_process.kernels import ConstantKernel as C
from sklearn.preprocessing import StandardScaler

from sklunlearn.datasets import load_banknote
from sklunlearn.exceptions import UnlearningWarning
from sklunlearn.gaussian_process import SparseGPClassifier
from sklunlearn.linear_model import BayesianLogisticRegression
from sklunlearn.unlearning import (
    COVARIANCE_RELINEARISATION,
    MEAN_RELINEARISATION,
    LikelihoodTerms,
    laplace_divide_out,
    learn,
)

_SELF_CHECK = "not supported by the forgotten rows' likelihood"


def _breast_cancer():
    X, y = load_breast_cancer(return_X_y=True)
    return StandardScaler().fit_transform(X), y


def _banknote():
    X, y = load_banknote(return_X_y=True)
    return StandardScaler().fit_transform(X), y


def _clustered(X, fraction, seed):
    """The ``fraction`` of rows nearest a random row, and the others."""
    centre = X[np.random.default_rng(seed).integers(X.shape[0])]
    order = np.argsort(((X - centre) ** 2).sum(axis=1))
    k = int(fraction * X.shape[0])
    return np.sort(order[:k]), np.sort(order[k:])


def _forget(est, X, y, **kwargs):
    """``partial_unfit``; the self-check's warnings and the other UnlearningWarnings."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        est.partial_unfit(X, y, **kwargs)
    messages = [str(w.message) for w in caught if w.category is UnlearningWarning]
    return [m for m in messages if _SELF_CHECK in m], [
        m for m in messages if _SELF_CHECK not in m
    ]


def _kl_ratio(forgotten, full, retrained):
    return forgotten.kl_divergence(retrained) / full.kl_divergence(retrained)


# ----------------------------------------------------------------- self-check
@pytest.mark.parametrize("alpha, fraction, seed", [(0.01, 0.5, 0), (0.03, 0.3, 1)])
def test_self_check_warns_on_large_clustered_deletions_with_a_weak_prior(
    alpha, fraction, seed
):
    X, y = _breast_cancer()
    forget, remain = _clustered(X, fraction, seed)
    est = BayesianLogisticRegression(alpha=alpha).fit(X, y)
    alarms, _ = _forget(est, X[forget], y[forget])
    assert len(alarms) == 1
    record = est.forget_report_.diagnostics
    assert record.mean_relinearisation > MEAN_RELINEARISATION


@pytest.mark.parametrize("seed", [0, 1])
def test_self_check_warns_on_a_large_amplitude_sparse_gp(seed):
    X, y = _banknote()
    rng = np.random.default_rng(seed)
    chosen = rng.choice(X.shape[0], 50, replace=False)
    pool = np.setdiff1d(np.arange(X.shape[0]), chosen)
    forget = np.sort(rng.choice(pool, X.shape[0] // 10, replace=False))
    remain = np.setdiff1d(np.arange(X.shape[0]), forget)
    kernel = C(100.0) * RBF(1.0)
    est = SparseGPClassifier(kernel=kernel, inducing_points=X[chosen]).fit(X, y)
    full = est.whitened_posterior_
    retrained = SparseGPClassifier(kernel=kernel, inducing_points=X[chosen]).fit(
        X[remain], y[remain]
    )
    alarms, _ = _forget(est, X[forget], y[forget])
    assert len(alarms) == 1
    # The warning is deserved: the step is at most halfway to retraining.
    ratio = _kl_ratio(est.whitened_posterior_, full, retrained.whitened_posterior_)
    assert ratio > 0.5
    record = est.forget_report_.diagnostics
    assert record.covariance_relinearisation > COVARIANCE_RELINEARISATION


def test_self_check_is_quiet_on_small_random_deletions():
    """False alarms over 40 small random deletions (0.2-5%) where 'laplace' is good."""
    alarms, ratios = 0, []
    for X, y in (_breast_cancer(), _banknote()):
        est = BayesianLogisticRegression().fit(X, y)
        full = est.posterior_
        for seed in range(20):
            rng = np.random.default_rng(seed)
            k = max(1, int(X.shape[0] * (0.002, 0.01, 0.03, 0.05)[seed % 4]))
            forget = rng.choice(X.shape[0], k, replace=False)
            remain = np.setdiff1d(np.arange(X.shape[0]), forget)
            copy = BayesianLogisticRegression().fit(X, y)
            found, _ = _forget(copy, X[forget], y[forget])
            alarms += len(found)
            retrained = BayesianLogisticRegression().fit(X[remain], y[remain])
            ratios.append(_kl_ratio(copy.posterior_, full, retrained.posterior_))
    assert np.median(ratios) < 0.1  # the default is good here
    assert alarms <= 2  # at most 5% of 40


def test_self_check_is_quiet_on_small_random_deletions_from_a_sparse_gp():
    X, y = _banknote()
    alarms = 0
    for seed in range(10):
        rng = np.random.default_rng(seed)
        chosen = rng.choice(X.shape[0], 30, replace=False)
        pool = np.setdiff1d(np.arange(X.shape[0]), chosen)
        k = int(X.shape[0] * (0.01, 0.03, 0.05)[seed % 3])
        forget = rng.choice(pool, k, replace=False)
        est = SparseGPClassifier(inducing_points=X[chosen]).fit(X, y)
        found, _ = _forget(est, X[forget], y[forget])
        alarms += len(found)
    assert alarms == 0


# ----------------------------------------------------------- pending requests
def _sequential_and_union(method, alpha, seed):
    X, y = _breast_cancer()
    rng = np.random.default_rng(seed)
    forget = rng.permutation(X.shape[0])[: int(0.3 * X.shape[0])]
    remain = np.setdiff1d(np.arange(X.shape[0]), forget)
    sequential = BayesianLogisticRegression(alpha=alpha, unlearning=method).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnlearningWarning)
        for part in np.array_split(forget, 10):
            sequential.partial_unfit(X[part], y[part])
        union = BayesianLogisticRegression(alpha=alpha, unlearning=method).fit(X, y)
        union.partial_unfit(X[forget], y[forget])
    retrained = BayesianLogisticRegression(alpha=alpha).fit(X[remain], y[remain])
    return sequential, union, retrained


@pytest.mark.parametrize("method", ["laplace", "uib"])
def test_sequential_requests_end_where_their_union_does(method):
    kls = []
    for seed in range(3):
        sequential, union, retrained = _sequential_and_union(method, 1.0, seed)
        np.testing.assert_allclose(
            sequential.posterior_.mean, union.posterior_.mean, rtol=1e-7, atol=1e-9
        )
        kls.append(
            sequential.posterior_.kl_divergence(retrained.posterior_)
            / union.posterior_.kl_divergence(retrained.posterior_)
        )
    assert np.median(kls) <= 1.5


def test_partial_fit_after_forgets_keeps_the_anchor():
    X, y = _breast_cancer()
    est = BayesianLogisticRegression().fit(X[:400], y[:400])
    fitted = est.posterior_
    est.partial_unfit(X[:20], y[:20])
    est.partial_fit(X[400:], y[400:])
    est.partial_unfit(X[20:40], y[20:40])
    # The union divided out of the fitted posterior that learned the new rows too,
    # as the Gaussian site it holds of them: taken at the fitted mean, moved to the
    # anchor's.
    new = np.arange(400, X.shape[0])
    anchor, _ = learn(fitted, est.model_, X[new], y[new].astype(float), np.ones(new.size))
    site = est.model_.terms(
        X[:40], y[:40].astype(float), np.ones(40), fitted.mean, with_value=False
    )
    held = LikelihoodTerms(
        np.nan, site.gradient - site.hessian @ (anchor.mean - fitted.mean), site.hessian
    )
    expected, _ = laplace_divide_out(
        anchor, est.model_, X[:40], y[:40].astype(float), np.ones(40), terms=held
    )
    np.testing.assert_allclose(est.posterior_.mean, expected.mean, rtol=1e-9)


def test_a_refused_request_leaves_the_pending_requests_alone():
    X, y = _breast_cancer()
    est = BayesianLogisticRegression().fit(X, y)
    union = BayesianLogisticRegression().fit(X, y).partial_unfit(X[:30], y[:30])
    est.partial_unfit(X[:15], y[:15])
    with pytest.raises(ValueError):
        est.partial_unfit(X[:15], y[:15])  # already forgotten: the ledger refuses
    est.partial_unfit(X[15:30], y[15:30])
    np.testing.assert_allclose(est.posterior_.mean, union.posterior_.mean, rtol=1e-8)


def test_certified_removal_steps_from_the_current_posterior():
    X, y = _breast_cancer()
    X = X / np.linalg.norm(X, axis=1).max()
    est = BayesianLogisticRegression(removal_noise=0.1, random_state=0).fit(X, y)
    est.partial_unfit(X[:10], y[:10])
    before = est.posterior_
    est.partial_unfit(X[10:20], y[10:20])
    expected, _ = laplace_divide_out(
        before, est.model_, X[10:20], y[10:20].astype(float), np.ones(10)
    )
    np.testing.assert_allclose(est.posterior_.mean, expected.mean, rtol=1e-9)


# ------------------------------------------------------------ feature injection
def _injected(X, y, seed):
    """A column zero except on a 5% group, where it is +-3 by the label."""
    rng = np.random.default_rng(seed)
    group = np.sort(rng.choice(X.shape[0], int(0.05 * X.shape[0]), replace=False))
    column = np.zeros(X.shape[0])
    column[group] = np.where(y[group] == 1, 3.0, -3.0)
    remain = np.setdiff1d(np.arange(X.shape[0]), group)
    return np.column_stack([X, column]), group, remain


def _inject_and_forget(method):
    """Remaining fraction of the injected weight, KL ratio, UnlearningWarnings."""
    X, y = _breast_cancer()
    X, group, remain = _injected(X, y, 0)
    est = BayesianLogisticRegression(unlearning=method, random_state=0).fit(X, y)
    injected = est.coef_[0, -1]
    full = est.posterior_
    retrained = BayesianLogisticRegression().fit(X[remain], y[remain])
    # Retrained, the column is zero on every row: its weight's posterior is the prior.
    assert abs(retrained.coef_[0, -1]) < 1e-8
    alarms, others = _forget(est, X[group], y[group])
    ratio = _kl_ratio(est.posterior_, full, retrained.posterior_)
    return est.coef_[0, -1] / injected, ratio, alarms + others


@pytest.mark.parametrize("method, largest", [("laplace", 1e-6), ("uib", 0.5)])
def test_feature_injection_weight_is_removed(method, largest):
    remaining, ratio, messages = _inject_and_forget(method)
    assert abs(remaining) <= largest
    assert ratio < 0.2
    assert not messages


@pytest.mark.parametrize("method", ["eubo", "rkl"])
def test_feature_injection_is_never_silently_worse(method):
    remaining, ratio, messages = _inject_and_forget(method)
    assert ratio < 1.0 or messages


# ------------------------------------------------------------- subgroup removal
def test_subgroup_removal_moves_toward_retraining():
    """Forget every row whose 'mean radius' is in the top 30%: a clustered subgroup."""
    X, y = _breast_cancer()
    attribute = X[:, 0]
    group = np.flatnonzero(attribute > np.quantile(attribute, 0.7))
    remain = np.setdiff1d(np.arange(X.shape[0]), group)
    retrained = BayesianLogisticRegression(alpha=0.03).fit(X[remain], y[remain])
    for method in ("laplace", "uib"):
        est = BayesianLogisticRegression(alpha=0.03, unlearning=method).fit(X, y)
        full = est.posterior_
        alarms, _ = _forget(est, X[group], y[group])
        ratio = _kl_ratio(est.posterior_, full, retrained.posterior_)
        # Never silently worse than doing nothing.
        assert ratio < 1.0 or alarms, method
        if method == "uib":
            assert ratio < 0.7


@pytest.mark.parametrize(
    "load, alpha, n_attributes", [(_breast_cancer, 0.03, 10), (_banknote, 1.0, 4)]
)
def test_subgroup_removal_by_each_attribute_with_uib(load, alpha, n_attributes):
    """The top 30% of each attribute in turn: 'uib' within half of doing nothing."""
    X, y = load()
    ratios = []
    for column in range(n_attributes):
        group = np.flatnonzero(X[:, column] > np.quantile(X[:, column], 0.7))
        remain = np.setdiff1d(np.arange(X.shape[0]), group)
        retrained = BayesianLogisticRegression(alpha=alpha).fit(X[remain], y[remain])
        est = BayesianLogisticRegression(alpha=alpha, unlearning="uib").fit(X, y)
        full = est.posterior_
        alarms, others = _forget(est, X[group], y[group])
        assert not alarms and not others
        ratios.append(_kl_ratio(est.posterior_, full, retrained.posterior_))
    assert np.median(ratios) <= 0.5
    assert max(ratios) < 1.0
