"""The fused row-block GLM kernels against plain NumPy."""

import numpy as np
import pytest
from _reference import logistic_terms as reference_terms
from hypothesis import example, given
from hypothesis import strategies as st
from scipy import sparse

from sklunlearn._numba import logistic_terms, weighted_gram
from sklunlearn._numba.glm import BLOCK_ROWS


@pytest.mark.parametrize(
    "n", [0, 1, BLOCK_ROWS - 1, BLOCK_ROWS, BLOCK_ROWS + 1, 3 * BLOCK_ROWS + 7]
)
@pytest.mark.parametrize("d", [1, 6])
def test_logistic_terms_match_numpy(rng, n, d):
    X = rng.randn(n, d)
    y = (rng.rand(n) < 0.4).astype(float)
    w = rng.uniform(0.0, 2.0, size=n)
    theta = rng.randn(d)
    value, gradient, hessian = logistic_terms(X, y, w, theta)
    expected = reference_terms(X, y, w, theta)
    np.testing.assert_allclose(value, expected[0], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(gradient, expected[1], rtol=1e-11, atol=1e-12)
    np.testing.assert_allclose(hessian, expected[2], rtol=1e-11, atol=1e-12)
    gram = weighted_gram(X, w)
    np.testing.assert_allclose(gram, X.T @ (w[:, None] * X), rtol=1e-11, atol=1e-12)


@given(
    f=st.floats(-800.0, 800.0, allow_nan=False),
    label=st.sampled_from([0.0, 1.0]),
)
# found by hypothesis: fastmath 'reassoc' turned y a + (1 - y) b into b + y (a - b)
@example(f=28.0, label=1.0)
@example(f=-28.0, label=0.0)
def test_logistic_terms_are_stable_for_large_logits(f, label):
    value, gradient, hessian = logistic_terms(
        np.array([[1.0]]), np.array([label]), np.ones(1), np.array([f])
    )
    # log p(y | f) = -log(1 + exp(-s f)), s = 2y - 1
    s = 2.0 * label - 1.0
    # atol: fastmath "afn" lets log1p(e) be evaluated as log(1 + e)
    np.testing.assert_allclose(value, -np.logaddexp(0.0, -s * f), rtol=1e-12, atol=1e-15)
    assert np.isfinite(gradient).all() and np.isfinite(hessian).all()
    assert 0.0 <= hessian[0, 0] <= 0.25
    assert abs(gradient[0]) <= 1.0


def test_zero_weight_rows_do_not_count(rng):
    X = rng.randn(20, 3)
    y = (rng.rand(20) < 0.5).astype(float)
    w = np.r_[np.ones(10), np.zeros(10)]
    theta = rng.randn(3)
    X_garbage = X.copy()
    X_garbage[10:] *= 1e3
    a = logistic_terms(X_garbage, y, w, theta)
    b = logistic_terms(X[:10], y[:10], np.ones(10), theta)
    np.testing.assert_allclose(a[0], b[0], rtol=1e-12)
    np.testing.assert_allclose(a[1], b[1], rtol=1e-12)
    np.testing.assert_allclose(a[2], b[2], rtol=1e-12)


def test_non_finite_input_raises():
    with pytest.raises(FloatingPointError, match="not finite"):
        logistic_terms(np.array([[np.nan]]), np.zeros(1), np.ones(1), np.ones(1))
    with pytest.raises(FloatingPointError, match="not finite"):
        weighted_gram(np.array([[np.inf]]), np.ones(1))


@pytest.mark.parametrize(
    "args, message",
    [
        ((np.ones(3), np.zeros(3), np.ones(3), np.ones(1)), "2-D"),
        ((np.ones((3, 2)), np.zeros(2), np.ones(3), np.ones(2)), "y must have shape"),
        ((np.ones((3, 2)), np.zeros(3), np.ones(3), np.ones(3)), "theta must have shape"),
        ((np.ones((3, 2)), np.zeros(3), -np.ones(3), np.ones(2)), "non-negative"),
    ],
)
def test_wrapper_validates(args, message):
    with pytest.raises(ValueError, match=message):
        logistic_terms(*args)


def _expected_reference(mean, variance, y, n_points=32):
    """E[log p], E[y - p], E[p (1 - p)] by Gauss-Hermite on (n, nodes) temporaries."""
    from scipy.special import expit, log_expit

    from sklunlearn.unlearning import gauss_hermite

    nodes, weights = gauss_hermite(n_points)
    f = mean[:, None] + np.sqrt(variance)[:, None] * nodes
    p = expit(f)
    value = log_expit(np.where(y[:, None] > 0.5, f, -f))
    return value @ weights, (y[:, None] - p) @ weights, (p * (1 - p)) @ weights


@pytest.mark.parametrize("scale", [0.1, 3.0, 300.0])
def test_expected_logistic_terms_match_numpy(rng, scale):
    from sklunlearn._numba import expected_logistic_terms
    from sklunlearn.unlearning import gauss_hermite

    n = 500
    mean = scale * rng.randn(n)
    variance = np.where(rng.rand(n) < 0.1, 0.0, (scale * rng.rand(n)) ** 2)
    y = (rng.rand(n) < 0.5).astype(float)
    got = expected_logistic_terms(mean, variance, y, *gauss_hermite(32))
    for a, b in zip(got, _expected_reference(mean, variance, y), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-11, atol=1e-13)


def test_expected_logistic_terms_reject_non_finite_moments():
    from sklunlearn._numba import expected_logistic_terms
    from sklunlearn.unlearning import gauss_hermite

    with pytest.raises(FloatingPointError, match="not finite"):
        expected_logistic_terms(
            np.array([0.0, np.nan]), np.ones(2), np.ones(2), *gauss_hermite(8)
        )


@pytest.mark.parametrize("n", [0, 5, BLOCK_ROWS + 3])
def test_implicit_intercept_equals_an_explicit_ones_column(rng, n):
    X = rng.randn(n, 4)
    y = (rng.rand(n) < 0.5).astype(float)
    w = rng.uniform(0.5, 2.0, size=n)
    theta = rng.randn(5)
    implicit = logistic_terms(X, y, w, theta, intercept=True)
    explicit = logistic_terms(np.hstack([X, np.ones((n, 1))]), y, w, theta)
    for a, b in zip(implicit, explicit, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match="theta must have shape"):
        logistic_terms(X, y, w, theta[:4], intercept=True)


def test_derivatives_without_the_value_are_the_same(rng):
    X = rng.randn(300, 4)
    y = (rng.rand(300) < 0.5).astype(float)
    w = rng.uniform(0.5, 2.0, size=300)
    theta = rng.randn(5)
    full = logistic_terms(X, y, w, theta, intercept=True)
    derivatives = logistic_terms(X, y, w, theta, intercept=True, with_value=False)
    assert np.isnan(derivatives[0]) and np.isfinite(full[0])
    np.testing.assert_array_equal(derivatives[1], full[1])
    np.testing.assert_array_equal(derivatives[2], full[2])


@pytest.mark.parametrize("intercept", [False, True])
@pytest.mark.parametrize("fmt", ["csr", "csc"])
def test_sparse_logistic_terms_and_gram_equal_dense(rng, intercept, fmt):
    X = sparse.random(40, 7, density=0.3, random_state=rng, format="csr")
    X.data[0] = 0.0  # a stored zero
    # An unsummed duplicate: (row 0, column 2) stored twice, summed by toarray().
    end = X.indptr[1]
    X = sparse.csr_matrix(
        (
            np.insert(X.data, end, [1.5, -0.5]),
            np.insert(X.indices, end, [2, 2]),
            np.r_[0, X.indptr[1:] + 2],
        ),
        shape=X.shape,
    )
    assert not X.has_canonical_format
    dense = X.toarray()
    y = (rng.rand(40) < 0.5).astype(float)
    w = rng.uniform(0.0, 2.0, size=40)
    theta = rng.randn(7 + intercept)
    got = logistic_terms(X.asformat(fmt), y, w, theta, intercept=intercept)
    expected = logistic_terms(dense, y, w, theta, intercept=intercept)
    for a, b in zip(got, expected, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(
        weighted_gram(X.asformat(fmt), w, intercept=intercept),
        weighted_gram(dense, w, intercept=intercept),
        rtol=1e-10,
        atol=1e-10,
    )


@given(
    n=st.integers(0, 2 * BLOCK_ROWS + 3),
    d=st.integers(1, 7),
    s=st.integers(1, 5),
    intercept=st.booleans(),
    dense=st.booleans(),
    seed=st.integers(0, 2**31 - 1),
)
def test_logistic_terms_apply_the_hessian_to_vectors(n, d, s, intercept, dense, seed):
    rng = np.random.RandomState(seed)
    X = rng.randn(n, d) * (rng.rand(n, d) < 0.6)
    y = (rng.rand(n) < 0.4).astype(float)
    w = rng.uniform(0.0, 2.0, size=n)
    theta = rng.randn(d + intercept)
    V = rng.randn(d + intercept, s)
    rows = X if dense else sparse.csr_matrix(X)
    full = logistic_terms(rows, y, w, theta, intercept=intercept)
    applied = logistic_terms(rows, y, w, theta, intercept=intercept, vectors=V)
    assert applied[2].shape == (d + intercept, s)
    np.testing.assert_allclose(applied[0], full[0], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(applied[1], full[1], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(applied[2], full[2] @ V, rtol=1e-10, atol=1e-10)


def test_logistic_terms_refuse_vectors_of_the_wrong_length(rng):
    X, y, w = rng.randn(5, 3), np.ones(5), np.ones(5)
    with pytest.raises(ValueError, match="vectors must have shape"):
        logistic_terms(X, y, w, np.zeros(4), intercept=True, vectors=np.ones((3, 2)))
