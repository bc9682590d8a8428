"""The certified prior-floor test of the Laplace divide-out (one factorisation per forget).

``GaussianPosterior.eigenvalue_bound`` is a lower bound on the smallest eigenvalue
of the precision; ``laplace_divide_out`` skips the prior floor's own factorisation
when Weyl's inequality puts the forgotten precision above the prior. These tests
check the bound against dense eigenvalues and the result against the path that
tests the floor, never against timings.
"""

import copy
import pickle

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sklunlearn.exceptions import NotPositiveDefiniteError
from sklunlearn.linear_model import BayesianLogisticRegression
from sklunlearn.posterior import GaussianPosterior
from sklunlearn.unlearning import (
    BernoulliLogit,
    GaussianPrior,
    LinearPredictor,
    Model,
    laplace_divide_out,
    newton_fit,
)


def _smallest_eigenvalue(matrix):
    return np.linalg.eigvalsh(0.5 * (matrix + matrix.T))[0]


def _prior(kind, d, rng):
    if kind == "isotropic":
        return GaussianPrior(float(rng.uniform(0.1, 3.0)), n_features=d)
    if kind == "diagonal":
        return GaussianPrior(rng.uniform(0.1, 3.0, size=d))
    A = rng.randn(d, d)
    return GaussianPrior(A @ A.T / d + 0.5 * np.eye(d))


def _logistic_rows(rng, n, d, scale):
    X = scale * rng.randn(n, d)
    y = (X @ rng.randn(d) + rng.logistic(size=n) > 0).astype(np.float64)
    return X, y


def test_prior_eigenvalue_range_brackets_its_eigenvalues():
    rng = np.random.RandomState(0)
    for kind in ("isotropic", "diagonal", "full"):
        prior = _prior(kind, 6, rng)
        eigenvalues = np.linalg.eigvalsh(prior.precision_matrix())
        low, high = prior.eigenvalue_range
        assert low <= eigenvalues[0] * (1 + 1e-12)
        assert high >= eigenvalues[-1] * (1 - 1e-12)
        assert prior.posterior().eigenvalue_bound == low


def test_eigenvalue_bound_survives_copies_and_pickles():
    rng = np.random.RandomState(1)
    A = rng.randn(5, 5)
    P = A @ A.T + 2 * np.eye(5)
    post = GaussianPosterior.from_precision(rng.randn(5), P, eigenvalue_bound=1.5)
    for other in (
        copy.copy(post),
        copy.deepcopy(post),
        post.copy(),
        pickle.loads(pickle.dumps(post)),
        post.with_mean(np.zeros(5)),
    ):
        assert other.eigenvalue_bound == 1.5
    # a pickle of a posterior from before the bound existed reads as "unknown"
    old = GaussianPosterior.__new__(GaussianPosterior)
    old.__setstate__({"mean": post.mean, "_R": post.precision_cholesky})
    assert old.eigenvalue_bound == 0.0
    for bad in (-1.0, np.inf, np.nan):
        with pytest.raises(ValueError, match="eigenvalue_bound"):
            GaussianPosterior.from_precision(np.zeros(5), P, eigenvalue_bound=bad)


@pytest.mark.parametrize("k", [1, 30])  # rank-one kernels and a new factorisation
def test_rank_changes_carry_the_bound_by_weyl(k):
    rng = np.random.RandomState(2)
    d = 80
    A = rng.randn(3 * d, d)
    P = A.T @ A + np.eye(d)
    true_min = _smallest_eigenvalue(P)
    post = GaussianPosterior.from_precision(np.zeros(d), P, eigenvalue_bound=true_min)
    X = 0.3 * rng.randn(k, d)
    w = rng.uniform(0.5, 1.5, size=k)
    down = post.rank_downdate(X, w)
    assert (
        0.0 <= down.eigenvalue_bound <= _smallest_eigenvalue(down.precision) * (1 + 1e-10)
    )
    assert down.eigenvalue_bound == pytest.approx(
        max(true_min - np.sum(w * np.sum(X * X, axis=1)), 0.0)
    )
    assert post.rank_update(X, w).eigenvalue_bound == true_min


@pytest.mark.parametrize("n", [3, 200])
def test_newton_fit_bound_is_below_the_smallest_eigenvalue(n):
    rng = np.random.RandomState(3)
    d = 6
    X, y = _logistic_rows(rng, n, d - 1, 1.0)
    model = Model(LinearPredictor(), BernoulliLogit(), GaussianPrior(0.7, n_features=d))
    fitted, _ = newton_fit(model.prior.posterior(), model, X, y, np.ones(n))
    smallest = _smallest_eigenvalue(fitted.precision)
    assert fitted.eigenvalue_bound <= smallest * (1 + 1e-12)  # to round-off
    if n >= d:  # computed: close to the smallest eigenvalue, far above the prior's
        assert fitted.eigenvalue_bound == pytest.approx(smallest, rel=1e-8)
        assert fitted.eigenvalue_bound > 0.7
    else:  # Weyl from the prior
        assert fitted.eigenvalue_bound == 0.7


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    kind=st.sampled_from(["isotropic", "diagonal", "full"]),
    d=st.integers(2, 7),
    k=st.integers(1, 40),
    scale=st.sampled_from([0.3, 1.0, 3.0]),
    fraction=st.floats(0.0, 1.0),
)
def test_certified_floor_never_claims_wrongly(seed, kind, d, k, scale, fraction):
    """Whatever valid bound the posterior carries, the result is the floor-tested one.

    The anchor's precision is the prior plus the curvature of other rows, so
    that forgetting ``k`` rows sometimes falls below the prior (then the floor
    clips) and sometimes not; its bound is a random fraction of the true
    smallest eigenvalue. The result must equal the divide-out from the same
    posterior with no bound (which always tests the floor), and its own bound
    must be below its smallest eigenvalue.
    """
    rng = np.random.RandomState(seed)
    prior = _prior(kind, d + 1, rng)
    model = Model(LinearPredictor(), BernoulliLogit(), prior)
    X_kept, _ = _logistic_rows(rng, 60, d, 1.0)
    X, y = _logistic_rows(rng, k, d, scale)
    w = rng.uniform(0.2, 2.0, size=k)
    mean = 0.3 * rng.randn(d + 1)
    anchor = (
        prior.precision_matrix()
        + model.terms(X_kept, np.zeros(60), np.ones(60), mean).hessian
    )
    true_min = _smallest_eigenvalue(anchor)
    bounded = GaussianPosterior.from_precision(
        mean, anchor, eigenvalue_bound=max(fraction * true_min, 0.0)
    )
    unbounded = GaussianPosterior.from_precision(mean, anchor)
    try:
        reference, reference_record = laplace_divide_out(unbounded, model, X, y, w)
    except (NotPositiveDefiniteError, ValueError):
        return
    result, record = laplace_divide_out(bounded, model, X, y, w)
    np.testing.assert_allclose(result.mean, reference.mean, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(
        result.precision, reference.precision, rtol=1e-10, atol=1e-12
    )
    assert record.clipped_eigenvalue == reference_record.clipped_eigenvalue
    smallest = _smallest_eigenvalue(result.precision)
    assert result.eigenvalue_bound <= smallest + 1e-12 * abs(np.trace(result.precision))
    if result.eigenvalue_bound > 0.0:  # the floor was certified, not tested
        excess = result.precision - prior.precision_matrix()
        assert _smallest_eigenvalue(excess) >= -1e-10 * np.abs(excess).max()


def test_estimator_forget_equals_the_floor_tested_divide_out():
    rng = np.random.RandomState(4)
    X = rng.randn(800, 12)
    y = (X[:, 0] - X[:, 3] + rng.logistic(size=800) > 0).astype(int)
    est = BayesianLogisticRegression(alpha=0.5).fit(X, y)
    fitted = est.posterior_
    assert 0.5 < fitted.eigenvalue_bound <= _smallest_eigenvalue(fitted.precision)
    unbounded = GaussianPosterior.from_precision(fitted.mean, fitted.precision)
    reference, _ = laplace_divide_out(
        unbounded, est.model_, X[:40], y[:40].astype(np.float64), np.ones(40)
    )
    est.partial_unfit(X[:40], y[:40])
    np.testing.assert_allclose(est.posterior_.mean, reference.mean, rtol=1e-12)
    np.testing.assert_allclose(
        est.posterior_.precision, reference.precision, rtol=1e-12, atol=1e-12
    )
    assert est.posterior_.eigenvalue_bound > 0.5  # certified: above the prior
