import pickle

import numpy as np
import pytest
from _reference import gaussian_kl
from conftest import random_spd
from hypothesis import given
from hypothesis import strategies as st

from sklunlearn.exceptions import NotPositiveDefiniteError
from sklunlearn.posterior import GaussianPosterior


@pytest.mark.parametrize("d", [1, 4, 12])
def test_constructors_agree(rng, d):
    m = rng.randn(d)
    P = random_spd(rng, d)
    S = np.linalg.inv(P)
    a = GaussianPosterior.from_precision(m, P)
    b = GaussianPosterior.from_covariance(m, S)
    c = GaussianPosterior.from_cholesky(m, np.linalg.cholesky(P), lower=True)
    for post in (a, b, c):
        np.testing.assert_allclose(post.precision, P, rtol=1e-9)
        np.testing.assert_allclose(post.covariance, S, rtol=1e-9, atol=1e-14)
        np.testing.assert_allclose(
            post.log_det_covariance(), np.linalg.slogdet(S)[1], rtol=1e-10
        )
        np.testing.assert_array_equal(post.mean, m)
    assert a.kl_divergence(b) == pytest.approx(0.0, abs=1e-9)


@given(st.integers(1, 6), st.integers(0, 10_000))
def test_kl_matches_dense_formula(d, seed):
    rng = np.random.RandomState(seed)
    m0, m1 = rng.randn(d), rng.randn(d)
    S0, S1 = random_spd(rng, d, 0.3), random_spd(rng, d, 2.0)
    p = GaussianPosterior.from_covariance(m0, S0)
    q = GaussianPosterior.from_covariance(m1, S1)
    expected = gaussian_kl(m0, S0, m1, S1)
    assert p.kl_divergence(q) == pytest.approx(expected, rel=1e-8, abs=1e-10)
    assert p.kl_divergence(q) >= 0
    assert p.kl_divergence(p) == pytest.approx(0.0, abs=1e-10)


def test_kl_known_value():
    p = GaussianPosterior.from_covariance([0.0], [[1.0]])
    q = GaussianPosterior.from_covariance([1.0], [[4.0]])
    # 0.5 * (1/4 + 1/4 - 1 + log 4)
    assert p.kl_divergence(q) == pytest.approx(0.5 * (0.5 - 1 + np.log(4.0)))


def test_kl_rejects_mismatch():
    p = GaussianPosterior.from_precision(np.zeros(2), np.eye(2))
    with pytest.raises(ValueError, match="dimensional"):
        p.kl_divergence(GaussianPosterior.from_precision(np.zeros(3), np.eye(3)))
    with pytest.raises(TypeError):
        p.kl_divergence("not a posterior")


def test_sample_moments(rng):
    P = random_spd(rng, 3)
    m = np.array([1.0, -2.0, 0.5])
    post = GaussianPosterior.from_precision(m, P)
    draws = post.sample(200_000, random_state=0)
    assert draws.shape == (200_000, 3)
    np.testing.assert_allclose(draws.mean(axis=0), m, atol=0.01)
    np.testing.assert_allclose(np.cov(draws.T), post.covariance, atol=0.01)
    np.testing.assert_array_equal(draws[:5], post.sample(200_000, random_state=0)[:5])


def test_predictive_variance_and_solve(rng):
    P = random_spd(rng, 5)
    post = GaussianPosterior.from_precision(np.zeros(5), P)
    X = rng.randn(7, 5)
    S = np.linalg.inv(P)
    np.testing.assert_allclose(
        post.predictive_variance(X), np.einsum("ij,jk,ik->i", X, S, X), rtol=1e-10
    )
    b = rng.randn(5)
    np.testing.assert_allclose(post.solve(b), S @ b, rtol=1e-10)


def test_predictive_variance_in_row_blocks(rng):
    # More rows than one block, and a last block that is partly filled.
    from sklunlearn.posterior import _VARIANCE_BLOCK_ROWS

    P = random_spd(rng, 4)
    post = GaussianPosterior.from_precision(np.zeros(4), P)
    X = rng.randn(2 * _VARIANCE_BLOCK_ROWS + 7, 4)
    expected = np.einsum("ij,jk,ik->i", X, np.linalg.inv(P), X)
    np.testing.assert_allclose(post.predictive_variance(X), expected, rtol=1e-10)
    np.testing.assert_allclose(post.predictive_variance(X[0]), expected[:1], rtol=1e-10)


def test_log_pdf_matches_scipy(rng):
    from scipy.stats import multivariate_normal

    P = random_spd(rng, 3)
    m = rng.randn(3)
    post = GaussianPosterior.from_precision(m, P)
    theta = rng.randn(4, 3)
    expected = multivariate_normal(m, np.linalg.inv(P)).logpdf(theta)
    np.testing.assert_allclose(post.log_pdf(theta), expected, rtol=1e-10)


@pytest.mark.parametrize("k", [1, 2, 40])  # rank-one Numba path and dense path
def test_rank_update_then_downdate_is_identity(rng, k):
    d = 40
    P = random_spd(rng, d)
    post = GaussianPosterior.from_precision(np.zeros(d), P)
    X = rng.randn(k, d)
    w = rng.uniform(0.5, 2.0, size=k)
    updated = post.rank_update(X, w)
    np.testing.assert_allclose(updated.precision, P + X.T @ (w[:, None] * X), rtol=1e-10)
    np.testing.assert_allclose(post.precision, P, rtol=1e-10)  # never modified in place
    back = updated.rank_downdate(X, w)
    np.testing.assert_allclose(back.precision, P, rtol=1e-8, atol=1e-8)


@pytest.mark.parametrize("k", [1, 10])
def test_indefinite_downdate_raises_and_leaves_unchanged(rng, k):
    d = 8
    post = GaussianPosterior.from_precision(rng.randn(d), np.eye(d))
    before = pickle.dumps(post)
    X = 3.0 * np.ones((k, d))
    with pytest.raises(NotPositiveDefiniteError, match="positive definite"):
        post.rank_downdate(X)
    assert pickle.dumps(post) == before


def test_invalid_construction():
    with pytest.raises(NotPositiveDefiniteError):
        GaussianPosterior.from_precision(np.zeros(2), [[1.0, 2.0], [2.0, 1.0]])
    with pytest.raises(ValueError, match="shape"):
        GaussianPosterior(np.zeros(2), np.eye(3))
    with pytest.raises(ValueError, match="finite"):
        GaussianPosterior(np.array([np.nan, 0.0]), np.eye(2))


def test_copy_is_independent(rng):
    post = GaussianPosterior.from_precision(np.zeros(3), np.eye(3))
    other = post.copy()
    other.rank_update(np.ones((1, 3)))
    np.testing.assert_array_equal(post.precision, np.eye(3))
