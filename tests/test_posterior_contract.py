"""What a posterior hands out cannot change it, and what it is given is checked."""

import copy
import pickle

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.preprocessing import StandardScaler

from sklunlearn.linear_model import BayesianLogisticRegression
from sklunlearn.posterior import DiagonalGaussianPosterior, GaussianPosterior


def posterior(d=3, seed=0):
    rng = np.random.RandomState(seed)
    A = rng.randn(d, d)
    return GaussianPosterior.from_precision(rng.randn(d), A @ A.T + d * np.eye(d))


def test_a_fitted_posterior_mean_cannot_be_written():
    X, y = load_breast_cancer(return_X_y=True)
    est = BayesianLogisticRegression().fit(StandardScaler().fit_transform(X), y)
    proba = est.predict_proba(X[:5])
    with pytest.raises(ValueError, match="read-only"):
        est.posterior_.mean[:] = 0.0
    np.testing.assert_array_equal(est.predict_proba(X[:5]), proba)


@pytest.mark.parametrize(
    "make",
    [
        lambda p: p,
        lambda p: p.with_mean(p.mean + 1.0),
        lambda p: p.copy(),
        copy.copy,
        copy.deepcopy,
        lambda p: pickle.loads(pickle.dumps(p)),
        lambda p: p.rank_update(np.ones((1, p.n_features))),
        lambda p: p.rank_downdate(0.1 * np.ones((1, p.n_features))),
    ],
    ids=["self", "with_mean", "copy", "copy.copy", "deepcopy", "pickle", "update", "down"],
)
def test_every_posterior_hands_out_a_read_only_mean(make):
    p = posterior()
    before = p.mean.copy()
    q = make(p)
    with pytest.raises(ValueError, match="read-only"):
        q.mean[0] = -999.0
    np.testing.assert_array_equal(p.mean, before)


def test_an_asymmetric_matrix_is_refused():
    with pytest.raises(ValueError, match="not symmetric"):
        GaussianPosterior.from_precision(np.zeros(2), [[2.0, 1.0], [0.0, 2.0]])
    with pytest.raises(ValueError, match="not symmetric"):
        GaussianPosterior.from_covariance(np.zeros(2), [[2.0, 1.0], [0.0, 2.0]])
    # round-off asymmetry is accepted, and the matrix kept symmetric
    P = posterior(30).precision.copy()
    P[0, 1] *= 1 + 1e-13
    q = GaussianPosterior.from_precision(np.zeros(30), P)
    np.testing.assert_allclose(q.covariance @ q.precision, np.eye(30), atol=1e-10)


@pytest.mark.parametrize("diagonal", [False, True])
def test_a_point_of_the_wrong_length_is_refused(diagonal):
    p = posterior()
    if diagonal:
        p = DiagonalGaussianPosterior(p.mean, np.ones(3))
    for bad in (np.zeros(1), 1.0, np.zeros(4)):
        with pytest.raises(ValueError, match="coordinates"):
            p.mahalanobis(bad)
        with pytest.raises(ValueError, match="coordinates"):
            p.log_pdf(bad)
    assert p.log_pdf(np.zeros((2, 3))).shape == (2,)


def test_kl_between_full_and_diagonal_agrees_both_ways():
    p = posterior()
    q = DiagonalGaussianPosterior(np.ones(3), np.array([1.0, 2.0, 3.0]))
    full_q = GaussianPosterior.from_precision(q.mean, np.diag(q.precision))
    assert p.kl_divergence(q) == pytest.approx(p.kl_divergence(full_q), rel=1e-12)
    assert q.kl_divergence(p) == pytest.approx(full_q.kl_divergence(p), rel=1e-12)


def test_every_posterior_has_the_design_contracts_covariance():
    """DESIGN.md: a posterior has at least mean, covariance, precision,
    log_det_covariance(), sample() and kl_divergence(); a diagonal one gives its
    covariance as a sparse diagonal array (a network's dense one would not fit)."""
    precision = np.array([1.0, 2.0, 4.0])
    mean = np.array([0.5, -1.0, 2.0])
    diagonal = DiagonalGaussianPosterior(mean, precision)
    full = GaussianPosterior.from_precision(mean, np.diag(precision))
    np.testing.assert_allclose(diagonal.covariance.toarray(), full.covariance, rtol=1e-15)
    np.testing.assert_allclose(diagonal.covariance @ mean, full.covariance @ mean)
    for posterior in (diagonal, full):
        assert np.isclose(posterior.log_det_covariance(), -np.log(precision).sum())
        assert posterior.sample(2, random_state=0).shape == (2, 3)
        assert np.isclose(posterior.kl_divergence(posterior), 0.0)
