"""Double-double kernels against exact rational arithmetic (``fractions.Fraction``).

CI reruns this file with NUMBA_DISABLE_JIT=1, so the kernels are checked both
compiled (without fastmath) and as plain Python.
"""

from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sklunlearn._numba import compensated

finite = st.floats(-1e100, 1e100, allow_nan=False, allow_infinity=False)


def exact(value):
    return Fraction(float(value))


def exact_moments(X, y, w, sign=1):
    Z = np.column_stack([np.ones(len(y)), X, y])
    p = Z.shape[1]
    return [
        [
            sign * sum(exact(w[i]) * exact(Z[i, j]) * exact(Z[i, k]) for i in range(len(y)))
            for k in range(p)
        ]
        for j in range(p)
    ]


def spread_data(seed, n=6, d=2):
    """Rows whose entries span 16 decades, so that float64 sums lose everything."""
    rng = np.random.RandomState(seed)
    X = rng.randn(n, d) * 10.0 ** rng.randint(-8, 8, size=(n, d))
    y = rng.randn(n) * 10.0 ** rng.randint(-8, 8, size=n)
    w = rng.uniform(0.2, 3.0, size=n)
    return X, y, w


@given(finite, finite)
def test_two_sum_and_two_prod_are_error_free(a, b):
    s, e = compensated.two_sum(a, b)
    assert Fraction(s) + Fraction(e) == Fraction(a) + Fraction(b)
    if abs(a * b) < 1e300 and (a == 0 or b == 0 or abs(a * b) > 1e-280):
        p, e = compensated.two_prod(a, b)
        assert Fraction(p) + Fraction(e) == Fraction(a) * Fraction(b)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_moments_match_exact_sums(seed, sign):
    X, y, w = spread_data(seed)
    hi, lo, absorbed = compensated.moments(X, y, w, sign)
    reference = exact_moments(X, y, w, int(sign))
    for j in range(hi.shape[0]):
        for k in range(hi.shape[1]):
            got = Fraction(hi[j, k]) + Fraction(lo[j, k])
            scale = sum(
                abs(exact(w[i]) * exact(v))
                for i, v in enumerate(
                    np.column_stack([np.ones(len(y)), X, y])[:, j]
                    * np.column_stack([np.ones(len(y)), X, y])[:, k]
                )
            )
            assert abs(got - reference[j][k]) <= scale * Fraction(2.0**-100)
    Z = np.column_stack([np.ones(len(y)), X, y])
    np.testing.assert_allclose(absorbed, w @ Z**2, rtol=1e-14)


def test_moments_beat_float64_on_cancellation():
    X = np.array([[1e8], [1.0], [2.0], [-1e8]])
    y = np.array([1e8, 1.0, 2.0, -1e8])
    hi, lo, _ = compensated.moments(X, y, np.ones(4))
    assert hi[1, 1] + lo[1, 1] == 2e16 + 5.0
    assert hi[0, 1] + lo[0, 1] == 3.0  # float64 gives 0.0 or 4.0 depending on order


@pytest.mark.parametrize("seed", range(3))
def test_add_matches_exact_sums(seed):
    a = compensated.moments(*spread_data(seed))[:2]
    b = compensated.moments(*spread_data(seed + 10))[:2]
    for sign in (1.0, -1.0):
        hi, lo = compensated.add(a, b, sign)
        want = [
            Fraction(x) + Fraction(z) + int(sign) * (Fraction(u) + Fraction(v))
            for x, z, u, v in zip(
                a[0].ravel(), a[1].ravel(), b[0].ravel(), b[1].ravel(), strict=True
            )
        ]
        got = [
            Fraction(x) + Fraction(z) for x, z in zip(hi.ravel(), lo.ravel(), strict=True)
        ]
        for g, r, scale in zip(
            got, want, np.abs(a[0]).ravel() + np.abs(b[0]).ravel(), strict=True
        ):
            assert abs(g - r) <= Fraction(float(scale)) * Fraction(2.0**-104)


@pytest.mark.parametrize("seed", range(3))
def test_centre_matches_exact_centred_scatter(seed):
    X, y, w = spread_data(seed, n=5)
    X[:, 0] += 1e6  # a large offset: float64 centring from raw moments loses it all
    hi, lo, _ = compensated.moments(X, y, w)
    means, scatter = compensated.centre(hi, lo)
    Z = np.column_stack([X, y])
    W = sum(exact(v) for v in w)
    exact_means = [
        sum(exact(w[i]) * exact(Z[i, j]) for i in range(len(y))) / W
        for j in range(Z.shape[1])
    ]
    for j in range(Z.shape[1]):
        assert abs(exact(means[j]) - exact_means[j]) <= abs(exact_means[j]) * Fraction(
            2.0**-52
        )
        for k in range(Z.shape[1]):
            centred = sum(
                exact(w[i])
                * (exact(Z[i, j]) - exact_means[j])
                * (exact(Z[i, k]) - exact_means[k])
                for i in range(len(y))
            )
            bound = abs(centred) * Fraction(2.0**-52) + Fraction(
                float(np.sqrt(abs(hi[j + 1, j + 1] * hi[k + 1, k + 1])))
            ) * Fraction(2.0**-98)
            assert abs(exact(scatter[j, k]) - centred) <= bound


def test_wrappers_check_inputs_and_report_statuses():
    X, y, w = np.ones((3, 2)), np.ones(3), np.ones(3)
    with pytest.raises(TypeError, match="C-contiguous float64"):
        compensated.moments(X.astype(np.float32), y, w)
    with pytest.raises(TypeError, match="C-contiguous float64"):
        compensated.moments(np.asfortranarray(np.ones((3, 2))), y, w)
    with pytest.raises(ValueError, match="same number of rows"):
        compensated.moments(X, y[:2], w)
    with pytest.raises(compensated.CompensationError, match="overflowed"):
        compensated.moments(X * 1e200, y, w)
    hi, lo, _ = compensated.moments(X, y, np.zeros(3))
    with pytest.raises(compensated.CompensationError, match="no positive total weight"):
        compensated.centre(hi, lo)
    with pytest.raises(compensated.CompensationError, match="overflowed"):
        compensated.add(
            (np.full(2, 1.7e308), np.zeros(2)), (np.full(2, 1.7e308), np.zeros(2))
        )
    with pytest.raises(ValueError, match="same shape"):
        compensated.add((np.ones(2), np.zeros(2)), (np.ones(3), np.zeros(3)))
