"""Forgetting methods measured against retraining from scratch on the remaining rows."""

import copy
import warnings

import numpy as np
import pytest
from _reference import logistic_terms
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.datasets import load_breast_cancer
from sklearn.preprocessing import StandardScaler

from sklunlearn._demo import forget_masks
from sklunlearn.datasets import load_banknote
from sklunlearn.exceptions import UnlearningWarning
from sklunlearn.linear_model import BayesianLogisticRegression


def _standardised(loader):
    X, y = loader(return_X_y=True)
    return StandardScaler().fit_transform(X), y


DATA = {"breast_cancer": load_breast_cancer, "banknote": load_banknote}


@pytest.fixture(scope="module", params=list(DATA))
def dataset(request):
    return request.param, _standardised(DATA[request.param])


def kl_ratios(X, y, fraction, seeds, **params):
    """KL(unlearned || retrained) / KL(full || retrained) for random forget sets.

    Returns the ratios and whether any UnlearningWarning was raised.
    """
    full = BayesianLogisticRegression(**params).fit(X, y)
    ratios, warned = [], False
    for seed in seeds:
        mask = forget_masks(X, fraction, seed)[f"random {100 * fraction:.0f}%"]
        unlearned = copy.deepcopy(full)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            unlearned.partial_unfit(X[mask], y[mask])
        warned |= any(issubclass(w.category, UnlearningWarning) for w in caught)
        retrained = BayesianLogisticRegression(**params).fit(X[~mask], y[~mask])
        do_nothing = full.posterior_.kl_divergence(retrained.posterior_)
        ratios.append(unlearned.posterior_.kl_divergence(retrained.posterior_) / do_nothing)
        assert np.all(np.linalg.eigvalsh(unlearned.posterior_.precision) > 0)
    return np.array(ratios), warned


def test_laplace_is_one_newton_step_of_the_remaining_posterior(rng):
    X = rng.randn(200, 4)
    y = (X @ [1.0, -1.0, 0.5, 0.0] + rng.randn(200) > 0).astype(int)
    est = BayesianLogisticRegression(alpha=0.5).fit(X, y)
    m = est.posterior_.mean
    est.partial_unfit(X[:40], y[:40])
    design = np.hstack([X, np.ones((200, 1))])
    # Newton step of log p(theta | D_r) from the full-data mode m, with all data at hand
    _, g_r, H_r = logistic_terms(design[40:], y[40:], np.ones(160), m)
    Lambda_r = 0.5 * np.eye(5) + H_r
    expected = m + np.linalg.solve(Lambda_r, g_r - 0.5 * m)
    np.testing.assert_allclose(est.posterior_.mean, expected, rtol=1e-8)
    np.testing.assert_allclose(est.posterior_.precision, Lambda_r, rtol=1e-8)


@pytest.mark.parametrize("fraction, target", [(0.01, 0.25), (0.1, 0.25), (0.3, 0.75)])
def test_laplace_kl_target(dataset, fraction, target):
    name, (X, y) = dataset
    ratios, _ = kl_ratios(X, y, fraction, seeds=range(3))
    assert np.median(ratios) <= target, (name, ratios)


def test_laplace_clustered_forget_keeps_precision_positive_definite(dataset):
    _, (X, y) = dataset
    est = BayesianLogisticRegression().fit(X, y)
    mask = forget_masks(X, 0.3, 0)["clustered 30%"]
    est.partial_unfit(X[mask], y[mask])
    assert np.linalg.eigvalsh(est.posterior_.precision).min() >= 1.0 - 1e-8


def test_sequential_forgets_start_from_the_last_posterior(dataset):
    _, (X, y) = dataset
    full = BayesianLogisticRegression().fit(X, y)
    est = copy.deepcopy(full)
    for chunk in np.array_split(np.arange(30), 3):
        est.partial_unfit(X[chunk], y[chunk])
    retrained = BayesianLogisticRegression().fit(X[30:], y[30:])
    assert est.n_samples_seen_ == len(y) - 30
    do_nothing = full.posterior_.kl_divergence(retrained.posterior_)
    assert est.posterior_.kl_divergence(retrained.posterior_) < 0.25 * do_nothing


@given(seed=st.integers(0, 2**16), d=st.integers(1, 5), k=st.integers(1, 30))
@settings(max_examples=25)
def test_divide_out_is_the_remaining_newton_step_property(seed, d, k):
    rng = np.random.RandomState(seed)
    X = rng.randn(60, d)
    y = (X @ rng.randn(d) + rng.logistic(size=60) > 0).astype(int)
    if len(np.unique(y)) < 2:
        y[:2] = [0, 1]
    est = BayesianLogisticRegression(alpha=0.3, fit_intercept=False).fit(X, y)
    m = est.posterior_.mean
    est.partial_unfit(X[:k], y[:k])
    _, g_r, H_r = logistic_terms(X[k:], y[k:].astype(float), np.ones(60 - k), m)
    Lambda_r = 0.3 * np.eye(d) + H_r
    expected = m + np.linalg.solve(Lambda_r, g_r - 0.3 * m)
    np.testing.assert_allclose(est.posterior_.precision, Lambda_r, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(est.posterior_.mean, expected, rtol=1e-6, atol=1e-8)


def test_vi_partial_fit_in_one_batch_equals_fit(dataset):
    _, (X, y) = dataset
    a = BayesianLogisticRegression(inference="vi").fit(X, y)
    b = BayesianLogisticRegression(inference="vi").partial_fit(X, y, classes=[0, 1])
    np.testing.assert_allclose(a.posterior_.mean, b.posterior_.mean)
    np.testing.assert_allclose(a.posterior_.precision, b.posterior_.precision)


def test_forgetting_every_row_returns_the_prior(rng):
    X = rng.randn(80, 3)
    y = (X[:, 0] + rng.logistic(size=80) > 0).astype(int)
    est = BayesianLogisticRegression(alpha=2.0).fit(X, y)
    est.partial_unfit(X, y)
    # Lambda - H(m) = alpha I, and the Newton step lands on the prior mean 0
    np.testing.assert_allclose(est.posterior_.mean, 0.0, atol=1e-10)
    np.testing.assert_allclose(est.posterior_.precision, 2.0 * np.eye(4), atol=1e-10)
    assert est.n_samples_seen_ == 0


@given(
    seed=st.integers(0, 2**16),
    n_classes=st.integers(2, 4),
    string_labels=st.booleans(),
    k=st.integers(1, 20),
)
@settings(max_examples=25, deadline=None)
def test_forgetting_labels_weights_and_one_vs_rest_property(
    seed, n_classes, string_labels, k
):
    """Any label set: each one-vs-rest posterior is the divide-out of its own
    {0, 1} targets, integer weights act as repeated rows, class counts follow."""
    rng = np.random.RandomState(seed)
    X = rng.randn(60, 3)
    codes = np.r_[np.arange(n_classes), rng.randint(0, n_classes, 60 - n_classes)]
    rng.shuffle(codes)
    names = (
        np.array([f"c{i}" for i in rng.permutation(n_classes)])
        if string_labels
        else rng.choice(np.arange(-50, 50), n_classes, replace=False)
    )
    y = names[codes]
    full = BayesianLogisticRegression(alpha=0.7, ledger=False).fit(X, y)
    weights = rng.randint(1, 3, k).astype(float)
    weighted = copy.deepcopy(full).partial_unfit(X[:k], y[:k], sample_weight=weights)
    rows = np.repeat(np.arange(k), weights.astype(int))
    repeated = copy.deepcopy(full).partial_unfit(X[rows], y[rows])
    posteriors = [weighted.posterior_] if n_classes == 2 else weighted.posterior_
    others = [repeated.posterior_] if n_classes == 2 else repeated.posterior_
    befores = [full.posterior_] if n_classes == 2 else full.posterior_
    positives = full.classes_[1:] if n_classes == 2 else full.classes_
    design = np.hstack([X[:k], np.ones((k, 1))])
    for posterior, other, before, label in zip(
        posteriors, others, befores, positives, strict=True
    ):
        np.testing.assert_allclose(posterior.mean, other.mean, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(posterior.precision, other.precision, rtol=1e-9)
        m = before.mean
        _, g, H = logistic_terms(design, (y[:k] == label).astype(float), weights, m)
        precision = before.precision - H
        np.testing.assert_allclose(posterior.precision, precision, rtol=1e-8, atol=1e-10)
        np.testing.assert_allclose(
            posterior.mean, m - np.linalg.solve(precision, g), rtol=1e-7, atol=1e-9
        )
    expected_counts = [np.sum(weights[y[:k] == c]) for c in full.classes_]
    np.testing.assert_allclose(full.class_count_ - weighted.class_count_, expected_counts)
    np.testing.assert_allclose(weighted.class_count_, repeated.class_count_)
