"""sklunlearn.metrics against closed forms."""

import warnings

import numpy as np
import pytest
from _reference import gaussian_kl as reference_gaussian_kl
from _unlearning_toys import (
    ColumnClassifier,
    ColumnRegressor,
    PointRegressor,
    ToyUnlearningClassifier,
)
from conftest import random_spd
from hypothesis import given
from hypothesis import strategies as st
from numpy.testing import assert_allclose
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import Ridge
from sklearn.utils._param_validation import InvalidParameterError

from sklunlearn.exceptions import UnlearningWarning
from sklunlearn.gaussian_process import SparseGPRegressor
from sklunlearn.linear_model import BayesianLinearRegression
from sklunlearn.metrics import (
    gaussian_kl,
    membership_inference_auc,
    per_sample_loss,
    posterior_kl,
    predictive_kl,
)
from sklunlearn.posterior import GaussianPosterior

finite = st.floats(-10, 10)
positive = st.floats(0.05, 20)


def normal_kl_1d(m0, s0, m1, s1):
    """KL(N(m0, s0^2) || N(m1, s1^2)), the textbook formula."""
    return np.log(s1 / s0) + (s0**2 + (m0 - m1) ** 2) / (2 * s1**2) - 0.5


def bernoulli_kl(p, q):
    return p * np.log(p / q) + (1 - p) * np.log((1 - p) / (1 - q))


# ---------------------------------------------------------------- gaussian_kl
@given(finite, positive, finite, positive)
def test_gaussian_kl_one_dimensional_closed_form(m0, s0, m1, s1):
    kl = gaussian_kl(([m0], [[s0**2]]), ([m1], [[s1**2]]))
    assert_allclose(kl, max(normal_kl_1d(m0, s0, m1, s1), 0.0), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("d", [1, 3, 8])
def test_gaussian_kl_matches_dense_reference_and_accepts_both_forms(rng, d):
    m0, m1 = rng.randn(d), rng.randn(d)
    S0, S1 = random_spd(rng, d), random_spd(rng, d, scale=2.0)
    expected = reference_gaussian_kl(m0, S0, m1, S1)
    p = GaussianPosterior.from_covariance(m0, S0)
    q = GaussianPosterior.from_covariance(m1, S1)
    assert_allclose(gaussian_kl((m0, S0), (m1, S1)), expected, rtol=1e-10)
    assert_allclose(gaussian_kl(p, q), expected, rtol=1e-10)
    assert_allclose(gaussian_kl(p, (m1, S1)), expected, rtol=1e-10)
    assert gaussian_kl(p, p) == 0.0


def test_gaussian_kl_stable_when_explicit_inverse_is_not():
    # Posteriors with a direction of variance 1e-14 (condition number 3e14),
    # given by their precisions as estimators hold them: the factor-based KL
    # stays within 1e-3 of the closed form (on this instance the dense
    # formula of tests/_reference.py happens to be off by 2%; in general
    # both lose digits alike, see benchmarks/README.md).
    variances_p = np.array([1e-14, 1.0, 3.0])
    variances_q = np.array([2e-14, 1.0, 3.0])
    expected = sum(
        normal_kl_1d(0, np.sqrt(a), 0, np.sqrt(b))
        for a, b in zip(variances_p, variances_q, strict=True)
    )
    rotation = np.linalg.qr(np.random.RandomState(0).randn(3, 3))[0]
    p = GaussianPosterior.from_precision(
        np.zeros(3), rotation @ np.diag(1 / variances_p) @ rotation.T
    )
    q = GaussianPosterior.from_precision(
        np.zeros(3), rotation @ np.diag(1 / variances_q) @ rotation.T
    )
    assert_allclose(gaussian_kl(p, q), expected, rtol=1e-3)


def test_gaussian_kl_rejects_bad_input():
    with pytest.raises(InvalidParameterError):
        gaussian_kl([np.zeros(2), np.eye(2)], (np.zeros(2), np.eye(2)))
    with pytest.raises(ValueError, match="pair"):
        gaussian_kl((np.zeros(2), np.eye(2), 1), (np.zeros(2), np.eye(2)))
    with pytest.raises(ValueError, match="shape"):
        gaussian_kl((np.zeros(2), np.eye(3)), (np.zeros(2), np.eye(2)))
    with pytest.raises(ValueError, match="dimensional"):
        gaussian_kl((np.zeros(2), np.eye(2)), (np.zeros(3), np.eye(3)))
    with pytest.raises(np.linalg.LinAlgError, match="positive definite"):
        gaussian_kl((np.zeros(2), -np.eye(2)), (np.zeros(2), np.eye(2)))


# --------------------------------------------------------------- posterior_kl
def test_posterior_kl_of_blr_is_gaussian_kl_of_its_posterior(rng):
    X, y = rng.randn(40, 3), rng.randn(40)
    a = BayesianLinearRegression().fit(X, y)
    b = BayesianLinearRegression().fit(X[5:], y[5:])
    expected = reference_gaussian_kl(a.coef_, a.sigma_, b.coef_, b.sigma_)
    assert_allclose(posterior_kl(a, b), expected, rtol=1e-8)
    assert posterior_kl(a, b) > 0
    assert posterior_kl(a, a) == 0.0


def test_posterior_kl_needs_fitted_estimators_with_a_posterior(rng):
    X, y = rng.randn(20, 2), rng.randn(20)
    fitted = BayesianLinearRegression().fit(X, y)
    with pytest.raises(NotFittedError):
        posterior_kl(BayesianLinearRegression(), fitted)
    with pytest.raises(TypeError, match="posterior_"):
        posterior_kl(fitted, Ridge().fit(X, y))
    with pytest.raises(InvalidParameterError):
        posterior_kl(fitted, "not an estimator")


# -------------------------------------------------------------- predictive_kl
def test_predictive_kl_regressors_closed_form(rng):
    means_a, means_b = rng.randn(7), rng.randn(7)
    stds_a, stds_b = rng.uniform(0.1, 2, 7), rng.uniform(0.1, 2, 7)
    X = np.column_stack([means_a, stds_a, means_b, stds_b])
    a, b = ColumnRegressor().fit(X), ColumnRegressor(first_column=2).fit(X)
    expected = normal_kl_1d(means_a, stds_a, means_b, stds_b)
    assert_allclose(predictive_kl(a, b, X), expected.mean(), rtol=1e-12)
    weights = rng.uniform(0, 1, 7)
    assert_allclose(
        predictive_kl(a, b, X, sample_weight=weights),
        np.average(expected, weights=weights),
        rtol=1e-12,
    )


def test_predictive_kl_bernoulli_and_categorical_by_hand():
    p = np.array([0.1, 0.5, 0.9, 0.99])
    q = np.array([0.2, 0.5, 0.6, 0.5])
    X = np.column_stack([1 - p, p, 1 - q, q])
    a, b = ColumnClassifier().fit(X), ColumnClassifier(first_column=2).fit(X)
    assert_allclose(predictive_kl(a, b, X), bernoulli_kl(p, q).mean(), rtol=1e-12)

    P = np.array([[0.2, 0.3, 0.5], [0.6, 0.3, 0.1]])
    Q = np.array([[0.1, 0.1, 0.8], [1 / 3, 1 / 3, 1 / 3]])
    X = np.hstack([P, Q])
    a = ColumnClassifier(classes=(0, 1, 2)).fit(X)
    b = ColumnClassifier(classes=(0, 1, 2), first_column=3).fit(X)
    expected = np.sum(P * np.log(P / Q), axis=1).mean()
    assert_allclose(predictive_kl(a, b, X), expected, rtol=1e-12)


probability = st.floats(1e-6, 1 - 1e-6)


@given(st.lists(st.tuples(probability, probability), min_size=1, max_size=5))
def test_predictive_kl_bernoulli_property(pairs):
    p, q = np.array(pairs).T
    X = np.column_stack([1 - p, p, 1 - q, q])
    a, b = ColumnClassifier().fit(X), ColumnClassifier(first_column=2).fit(X)
    expected = np.mean(bernoulli_kl(p, q))
    assert_allclose(predictive_kl(a, b, X), max(expected, 0.0), rtol=1e-8, atol=1e-14)


@given(st.integers(1, 4), st.integers(0, 2**31 - 1))
def test_gaussian_kl_properties(d, seed):
    rng = np.random.RandomState(seed)
    m0, m1 = rng.randn(d), rng.randn(d)
    S0, S1 = random_spd(rng, d), random_spd(rng, d)
    kl = gaussian_kl((m0, S0), (m1, S1))
    assert kl >= 0
    assert_allclose(kl, reference_gaussian_kl(m0, S0, m1, S1), rtol=1e-8, atol=1e-12)
    assert gaussian_kl((m0, S0), (m0, S0)) < 1e-12
    # invariant under a common affine map x -> A x + c
    A = rng.randn(d, d) + 3 * np.eye(d)
    c = rng.randn(d)
    mapped = gaussian_kl((A @ m0 + c, A @ S0 @ A.T), (A @ m1 + c, A @ S1 @ A.T))
    assert_allclose(mapped, kl, rtol=1e-6, atol=1e-10)


def test_predictive_kl_zero_probability_is_finite():
    X = np.array([[1.0, 0.0, 0.0, 1.0]])
    a, b = ColumnClassifier().fit(X), ColumnClassifier(first_column=2).fit(X)
    kl = predictive_kl(a, b, X)
    assert np.isfinite(kl) and kl > 30


def test_predictive_kl_rejects_mismatched_models(rng):
    X, y = rng.randn(30, 2), rng.randn(30)
    regressor = BayesianLinearRegression().fit(X, y)
    P = np.full((3, 2), 0.5)
    with pytest.raises(ValueError, match="two classifiers or two regressors"):
        predictive_kl(regressor, ColumnClassifier().fit(P), P)
    with pytest.raises(ValueError, match="different classes"):
        predictive_kl(ColumnClassifier().fit(P), ColumnClassifier(classes=(1, 2)).fit(P), P)
    with pytest.raises(TypeError, match="return_std"):
        predictive_kl(PointRegressor().fit(X), PointRegressor().fit(X), X)
    with pytest.raises(NotFittedError):
        predictive_kl(regressor, BayesianLinearRegression(), X)
    with pytest.raises(ValueError):
        predictive_kl(regressor, regressor, X, sample_weight=np.ones(3))


def test_predictive_kl_of_blr_is_mean_of_gaussian_kls(rng):
    X, y = rng.randn(40, 3), rng.randn(40)
    a = BayesianLinearRegression().fit(X, y)
    b = BayesianLinearRegression().fit(X[10:], y[10:])
    mean_a, std_a = a.predict(X, return_std=True)
    mean_b, std_b = b.predict(X, return_std=True)
    assert_allclose(
        predictive_kl(a, b, X),
        normal_kl_1d(mean_a, std_a, mean_b, std_b).mean(),
        rtol=1e-10,
    )


# ------------------------------------------------------- membership inference
def test_per_sample_loss_closed_forms(rng):
    means, stds, y = rng.randn(5), rng.uniform(0.5, 2, 5), rng.randn(5)
    X = np.column_stack([means, stds])
    assert_allclose(
        per_sample_loss(ColumnRegressor().fit(X), X, y),
        0.5 * np.log(2 * np.pi * stds**2) + 0.5 * ((y - means) / stds) ** 2,
    )
    assert_allclose(per_sample_loss(PointRegressor().fit(X), X, y), (y - means) ** 2)
    P = np.array([[0.2, 0.8], [0.7, 0.3], [0.5, 0.5]])
    labels = np.array(["b", "a", "b"])
    classifier = ColumnClassifier(classes=("a", "b")).fit(P)
    assert_allclose(per_sample_loss(classifier, P, labels), -np.log([0.8, 0.7, 0.5]))
    with pytest.raises(ValueError, match="labels"):
        per_sample_loss(classifier, P, np.array(["a", "c", "b"]))
    with pytest.raises(ValueError):
        per_sample_loss(classifier, P, labels[:2])


def test_membership_inference_auc_by_hand():
    # Losses are the predicted probabilities of the wrong class: member rows
    # get losses -log(0.9), -log(0.6); unseen rows -log(0.7), -log(0.6), -log(0.2).
    # Pairs (member, unseen) where the member's loss is lower: 0.9 beats all
    # three, 0.6 beats 0.2 and ties 0.6: AUC = (3 + 1 + 0.5) / 6.
    P_member = np.array([[0.1, 0.9], [0.4, 0.6]])
    P_unseen = np.array([[0.3, 0.7], [0.4, 0.6], [0.8, 0.2]])
    classifier = ColumnClassifier().fit(P_member)
    auc = membership_inference_auc(classifier, P_member, [1, 1], P_unseen, [1, 1, 1])
    assert_allclose(auc, 4.5 / 6)


def test_membership_inference_auc_separating_and_random_attackers(rng):
    X_member = np.column_stack([np.zeros(20), np.ones(20)])
    X_unseen = np.column_stack([np.zeros(30), np.ones(30)])
    y_member = 0.01 * rng.randn(20)  # near the mean: low loss
    y_unseen = 3.0 + rng.randn(30)  # far from it: high loss
    model = ColumnRegressor().fit(X_member)
    assert membership_inference_auc(model, X_member, y_member, X_unseen, y_unseen) == 1.0
    assert membership_inference_auc(model, X_unseen, y_unseen, X_member, y_member) == 0.0
    # Same distribution on both sides: a coin flip.
    y_a, y_b = rng.randn(2000), rng.randn(2000)
    X_a = np.column_stack([np.zeros(2000), np.ones(2000)])
    auc = membership_inference_auc(model, X_a, y_a, X_a, y_b)
    assert abs(auc - 0.5) < 0.04
    with pytest.raises(ValueError, match="at least one row"):
        membership_inference_auc(model, X_a[:0], y_a[:0], X_a, y_b)


def test_forgetting_removes_membership_signal(rng):
    # An over-parametrised model remembers its training rows; after exact
    # forgetting the attacker does exactly as well as against a model
    # retrained without them, and no better than chance-level noise allows.
    d = 25
    X = rng.randn(200, d)
    y = X @ rng.randn(d) + rng.randn(200)
    members, others, unseen = slice(0, 20), slice(20, 40), slice(100, 200)
    X_train = np.vstack([X[members], X[others]])
    y_train = np.r_[y[members], y[others]]
    full = BayesianLinearRegression().fit(X_train, y_train)
    auc_full = membership_inference_auc(full, X[members], y[members], X[unseen], y[unseen])
    unlearned = BayesianLinearRegression().fit(X_train, y_train)
    unlearned.partial_unfit(X[members], y[members])
    retrained = BayesianLinearRegression().fit(X[others], y[others])
    auc_unlearned = membership_inference_auc(
        unlearned, X[members], y[members], X[unseen], y[unseen]
    )
    auc_retrained = membership_inference_auc(
        retrained, X[members], y[members], X[unseen], y[unseen]
    )
    assert auc_full > 0.8
    assert_allclose(auc_unlearned, auc_retrained)
    assert auc_unlearned < 0.7


def test_membership_inference_with_a_classifier(rng):
    X = rng.randn(80, 2)
    y = (X[:, 0] + rng.randn(80) > 0).astype(int)
    model = ToyUnlearningClassifier(forget_fraction=1.0).fit(X[:40], y[:40])
    auc = membership_inference_auc(model, X[:40], y[:40], X[40:], y[40:])
    assert 0.0 <= auc <= 1.0
    with pytest.raises(ValueError, match="labels"):
        membership_inference_auc(model, X[:40], y[:40] + 5, X[40:], y[40:])


def test_posterior_kl_warns_when_inducing_points_differ(rng):
    X = rng.randn(40, 2)
    y = np.sin(X[:, 0]) + 0.1 * rng.randn(40)

    def sgpr(inducing_points):
        return SparseGPRegressor(
            inducing_points=inducing_points, optimizer=None, random_state=0
        )

    full, half = sgpr(6).fit(X, y), sgpr(6).fit(X[:20], y[:20])
    assert not np.array_equal(full.inducing_points_, half.inducing_points_)
    with pytest.warns(UnlearningWarning, match="different inducing points"):
        posterior_kl(full, half)
    Z = full.inducing_points_
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert posterior_kl(sgpr(Z).fit(X, y), sgpr(Z).fit(X[:20], y[:20])) > 0


def test_per_sample_loss_ravels_a_column_target_with_sklearns_warning(rng):
    from sklearn.exceptions import DataConversionWarning

    from sklunlearn.linear_model import BayesianLogisticRegression

    X = rng.randn(40, 2)
    y = X @ [1.0, -1.0] + 0.1 * rng.randn(40)
    labels = (y > 0).astype(int)
    for estimator, target in (
        (BayesianLinearRegression().fit(X, y), y),
        (BayesianLogisticRegression().fit(X, labels), labels),
    ):
        with pytest.warns(DataConversionWarning, match="column-vector y"):
            loss = per_sample_loss(estimator, X, target[:, None])
        assert_allclose(loss, per_sample_loss(estimator, X, target))
