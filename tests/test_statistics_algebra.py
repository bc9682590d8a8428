"""Sufficient statistics merge the same way: ``a + b``, ``a - b``, ``sum(parts)``.

Chunked or distributed reductions build them from per-chunk statistics, so
the sum of the chunks' statistics must equal the statistics of all rows.
"""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sklearn.gaussian_process.kernels import RBF

from sklunlearn.gaussian_process import SparseStatistics
from sklunlearn.gaussian_process._bound import inducing_cholesky
from sklunlearn.linear_model import LinearStatistics
from sklunlearn.linear_model._sufficient_statistics import (
    UNIT_ROUNDOFF,
    CompensatedStatistics,
)

chunkings = st.lists(st.integers(1, 12), min_size=1, max_size=6)


def data(seed, n, d, offset=0.0):
    rng = np.random.RandomState(seed)
    X = rng.randn(n, d) * rng.uniform(0.1, 10, d) + offset
    return X, rng.randn(n) * 3 + offset, rng.uniform(0.2, 3.0, n)


def split(n, sizes):
    return np.array_split(np.arange(n), np.cumsum(sizes)[:-1])


def assert_same_statistics(got, want, rtol=1e-9):
    for name, a, b in zip(got._fields, got, want, strict=True):
        scale = np.max(np.abs(b), initial=1.0)
        np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol * scale, err_msg=name)


@given(chunkings, st.integers(1, 4), st.integers(0, 2**16), st.sampled_from([0.0, 1e4]))
def test_sum_of_chunk_statistics_equals_statistics_of_all_rows(sizes, d, seed, offset):
    X, y, w = data(seed, sum(sizes), d, offset)
    parts = [LinearStatistics.from_data(X[i], y[i], w[i]) for i in split(len(y), sizes)]
    assert_same_statistics(sum(parts), LinearStatistics.from_data(X, y, w))
    assert sum(parts).n_rows == len(y)


@given(chunkings, st.integers(0, 2**16))
def test_sparse_statistics_sum_like_linear_ones(sizes, seed):
    X, y, w = data(seed, sum(sizes), 2)
    kernel, Z = RBF(1.3), np.random.RandomState(seed + 1).randn(4, 2)
    factor = inducing_cholesky(kernel, Z)
    parts = [
        SparseStatistics.from_data(kernel, Z, factor, X[i], y[i], w[i])
        for i in split(len(y), sizes)
    ]
    total = SparseStatistics.from_data(kernel, Z, factor, X, y, w)
    merged = sum(parts)
    assert isinstance(merged, SparseStatistics)  # not a concatenated tuple
    assert_same_statistics(merged.linear, total.linear)
    assert merged.kdiag == pytest.approx(total.kdiag, rel=1e-12)
    if len(parts) > 1:
        back = merged - parts[-1]
        assert_same_statistics(back.linear, sum(parts[:-1]).linear, rtol=1e-7)


@given(chunkings, st.integers(1, 3), st.integers(0, 2**16))
def test_compensated_statistics_sum_and_subtract_exactly(sizes, d, seed):
    X, y, w = data(seed, sum(sizes), d, offset=1e6)
    parts = [
        CompensatedStatistics.from_data(X[i], y[i], w[i]) for i in split(len(y), sizes)
    ]
    total = CompensatedStatistics.from_data(X, y, w)
    merged = sum(parts)
    scale = np.abs(total.moments_hi)
    np.testing.assert_allclose(
        (merged.moments_hi - total.moments_hi) + (merged.moments_lo - total.moments_lo),
        0.0,
        atol=1e-28 * scale.max(),
    )
    assert_same_statistics(merged.to_linear(), LinearStatistics.from_data(X, y, w), 1e-8)
    if len(parts) > 1:
        rest = merged - parts[0]
        assert_same_statistics(rest.to_linear(), sum(parts[1:]).to_linear(), 1e-12)


def test_subtraction_is_the_inverse_of_addition(rng):
    X, y, w = data(0, 30, 3)
    a = LinearStatistics.from_data(X[:20], y[:20], w[:20])
    b = LinearStatistics.from_data(X[20:], y[20:], w[20:])
    assert_same_statistics((a + b) - b, a, rtol=1e-10)
    assert ((a + b) - b).n_rows == 20


def test_round_off_record_grows_with_what_was_absorbed():
    X, y, w = data(1, 40, 2)
    small = LinearStatistics.from_data(X, y, w)
    typo = LinearStatistics.from_data(np.ones((1, 2)), np.array([1e8]), np.ones(1))
    after = (small + typo) - typo
    # the cancellation cost ~u * 1e16 on yy, not ~u * yy, and the record says so
    assert abs(after.yy - small.yy) > 1e6 * small.round_off.yy
    assert abs(after.yy - small.yy) < after.round_off.yy
    assert after.round_off.yy < 20 * UNIT_ROUNDOFF * 1e16  # an estimate, not a loose bound
    np.testing.assert_allclose(after.xx, small.xx, rtol=1e-12)
    assert small.round_off.yy == pytest.approx(small.refit_round_off().yy)


def test_merging_refuses_what_no_rows_can_give():
    X, y, w = data(2, 10, 2)
    learned = LinearStatistics.from_data(X, y, w)
    with pytest.raises(ValueError, match="only 10 rows"):
        learned - LinearStatistics.from_data(X, y, 2 * w)
    with pytest.raises(ValueError, match="all of the training weight"):
        learned - learned
    with pytest.raises(ValueError, match="3 features"):
        learned + LinearStatistics.empty(3)
    empty = LinearStatistics.empty(2)
    assert (empty + empty).weight_sum == 0.0
    with pytest.raises(TypeError):
        learned + 1


def test_fractional_weights_that_add_up_empty_the_statistics():
    X, y = np.ones((1, 2)), np.ones(1)
    learned = LinearStatistics.from_data(
        X, y, np.array([0.1])
    ) + LinearStatistics.from_data(X, y, np.array([0.2]))
    with pytest.raises(ValueError, match="all of the training weight"):
        learned - LinearStatistics.from_data(X, y, np.array([0.3]))
