"""Double-double (compensated) sums of products: statistics that survive forgetting.

A double-double number is an unevaluated sum ``hi + lo`` of two float64 with
``|lo| <= ulp(hi) / 2``: about 106 bits of significand. Its arithmetic is built
from error-free transformations: ``two_sum`` (Knuth 1969) gives ``a + b`` and
its exact rounding error, ``two_prod`` (Dekker 1971, splitting each factor
into halves of 26 bits) gives ``a * b`` and its exact rounding error. The
moment kernel is Ogita, Rump & Oishi's (2005) ``Dot2``: each product and each
addition keeps its error in a second accumulator, so that the sum is as
accurate as if computed in twice the working precision.

The kernels return a status (0 ok, 1 not positive weight, 2 non-finite
result); the wrappers check their inputs and turn a status into an exception.

These kernels are compiled without fastmath: re-association, which the
package's other kernels allow, lets the compiler simplify ``(a + b) - a`` to
``b`` and so erase the very rounding errors an error-free transformation
computes.

References
----------
T. J. Dekker, A floating-point technique for extending the available
precision, Numer. Math. 18, 1971.

D. E. Knuth, The Art of Computer Programming, vol. 2, 1969, Sec. 4.2.2.

T. Ogita, S. M. Rump and S. Oishi, Accurate sum and dot product, SIAM J. Sci.
Comput. 26(6), 2005.

Y. Hida, X. S. Li and D. H. Bailey, Library for double-double and quad-double
arithmetic, 2007 (the division and accurate addition used here).
"""

import numpy as np

from ._config import jit

STATUS_OK = 0
STATUS_NOT_POSITIVE = 1
STATUS_NOT_FINITE = 2

# 2^27 + 1: multiplying by it splits a float64 into two halves of 26 bits (Dekker).
_SPLITTER = 134217729.0


@jit(fastmath=False)
def two_sum(a, b):
    """``(s, e)`` with ``s = fl(a + b)`` and ``s + e = a + b`` exactly (Knuth)."""
    s = a + b
    bb = s - a
    return s, (a - (s - bb)) + (b - bb)


@jit(fastmath=False)
def _quick_two_sum(a, b):
    """:func:`two_sum` for ``|a| >= |b|`` (Dekker's Fast2Sum)."""
    s = a + b
    return s, b - (s - a)


@jit(fastmath=False)
def _split(a):
    t = _SPLITTER * a
    high = t - (t - a)
    return high, a - high


@jit(fastmath=False)
def two_prod(a, b):
    """``(p, e)`` with ``p = fl(a * b)`` and ``p + e = a * b`` exactly (Dekker)."""
    p = a * b
    a_high, a_low = _split(a)
    b_high, b_low = _split(b)
    e = ((a_high * b_high - p) + a_high * b_low + a_low * b_high) + a_low * b_low
    return p, e


@jit(fastmath=False)
def _dd_add(a_hi, a_lo, b_hi, b_lo):
    """Accurate double-double addition (Hida, Li & Bailey's ``ieee_add``)."""
    s, e = two_sum(a_hi, b_hi)
    t, f = two_sum(a_lo, b_lo)
    e += t
    s, e = _quick_two_sum(s, e)
    e += f
    return _quick_two_sum(s, e)


@jit(fastmath=False)
def _dd_mul(a_hi, a_lo, b_hi, b_lo):
    p, e = two_prod(a_hi, b_hi)
    e += a_hi * b_lo + a_lo * b_hi
    return _quick_two_sum(p, e)


@jit(fastmath=False)
def _dd_div(a_hi, a_lo, b_hi, b_lo):
    """``a / b``: a quotient digit, the exact remainder, a correction digit."""
    q1 = a_hi / b_hi
    p_hi, p_lo = _dd_mul(b_hi, b_lo, q1, 0.0)
    r_hi, r_lo = _dd_add(a_hi, a_lo, -p_hi, -p_lo)
    q2 = r_hi / b_hi
    p_hi, p_lo = _dd_mul(b_hi, b_lo, q2, 0.0)
    r_hi, r_lo = _dd_add(r_hi, r_lo, -p_hi, -p_lo)
    q3 = r_hi / b_hi
    q1, q2 = _quick_two_sum(q1, q2)
    return _dd_add(q1, q2, q3, 0.0)


@jit(fastmath=False)
def _moments_kernel(X, y, weights, sign, hi, lo, absorbed):
    """Add ``sign * sum_i w_i z_i z_i'`` with ``z_i = [1, x_i, y_i]`` to ``(hi, lo)``.

    Only the upper triangle of the (p, p) accumulators (``p = d + 2``) is
    written. ``absorbed[j] += sum_i w_i z_ij^2``: the magnitude of what each
    diagonal entry took in. ``Dot2`` (Ogita et al. 2005, Alg. 5.3) with the
    errors of all terms of an entry gathered in ``lo``.
    """
    n, d = X.shape
    p = d + 2
    z = np.empty(p)
    for i in range(n):
        w = weights[i]
        if w == 0.0:
            continue
        z[0] = 1.0
        for j in range(d):
            z[j + 1] = X[i, j]
        z[p - 1] = y[i]
        signed_w = sign * w
        for j in range(p):
            absorbed[j] += w * z[j] * z[j]
            for k in range(j, p):
                product, error = two_prod(z[j], z[k])
                if w != 1.0:
                    scaled, scale_error = two_prod(signed_w, product)
                    error = scale_error + signed_w * error
                    product = scaled
                elif sign < 0.0:
                    product, error = -product, -error
                total, sum_error = two_sum(hi[j, k], product)
                hi[j, k] = total
                lo[j, k] += sum_error + error
    for j in range(p):
        if not np.isfinite(absorbed[j]):
            return STATUS_NOT_FINITE
        for k in range(j, p):
            hi[j, k], lo[j, k] = two_sum(hi[j, k], lo[j, k])
            if not np.isfinite(hi[j, k]):
                return STATUS_NOT_FINITE
    return STATUS_OK


@jit(fastmath=False)
def _add_kernel(a_hi, a_lo, b_hi, b_lo, sign, out_hi, out_lo):
    """``out = a + sign * b``, elementwise on flat double-double arrays."""
    for i in range(a_hi.shape[0]):
        out_hi[i], out_lo[i] = _dd_add(a_hi[i], a_lo[i], sign * b_hi[i], sign * b_lo[i])
        if not np.isfinite(out_hi[i]):
            return STATUS_NOT_FINITE
    return STATUS_OK


@jit(fastmath=False)
def _centre_kernel(hi, lo, means, scatter):
    """Weighted means and centred scatter of the moments, each rounded once to float64.

    With ``W = M_00`` and ``m_j = M_0j / W``: ``means[j - 1] = m_j`` and
    ``scatter[j - 1, k - 1] = M_jk - M_0j m_k`` for ``1 <= j <= k`` (upper
    triangle), evaluated in double-double.
    """
    p = hi.shape[0]
    w_hi, w_lo = hi[0, 0], lo[0, 0]
    if not w_hi > 0.0:
        return STATUS_NOT_POSITIVE
    mean_hi = np.empty(p)
    mean_lo = np.empty(p)
    for j in range(1, p):
        mean_hi[j], mean_lo[j] = _dd_div(hi[0, j], lo[0, j], w_hi, w_lo)
        means[j - 1] = mean_hi[j] + mean_lo[j]
    for j in range(1, p):
        for k in range(j, p):
            c_hi, c_lo = _dd_mul(hi[0, j], lo[0, j], mean_hi[k], mean_lo[k])
            s_hi, s_lo = _dd_add(hi[j, k], lo[j, k], -c_hi, -c_lo)
            scatter[j - 1, k - 1] = s_hi + s_lo
    return STATUS_OK


class CompensationError(ValueError):
    """A compensated sum overflowed, or its weight is not positive."""


def _check(status, what):
    if status == STATUS_NOT_FINITE:
        raise CompensationError(
            f"The {what} overflowed float64: the values (or weights) are too large. "
            "Rescale X and y (StandardScaler), or the weights."
        )
    if status == STATUS_NOT_POSITIVE:
        raise CompensationError(f"The {what} have no positive total weight.")


def _float64_contiguous(name, array, ndim):
    if not (
        isinstance(array, np.ndarray)
        and array.dtype == np.float64
        and array.ndim == ndim
        and array.flags.c_contiguous
    ):
        raise TypeError(f"{name} must be a C-contiguous float64 array with {ndim} dims.")


def moments(X, y, weights, sign=1.0):
    """Double-double moments ``sign * sum_i w_i z_i z_i'`` of ``z_i = [1, x_i, y_i]``.

    Parameters
    ----------
    X : ndarray of shape (n, d), C-contiguous float64
    y : ndarray of shape (n,), float64
    weights : ndarray of shape (n,), float64, non-negative
    sign : {1.0, -1.0}, default=1.0

    Returns
    -------
    hi, lo : ndarrays of shape (d + 2, d + 2)
        Symmetric; ``hi + lo`` is the sum to about 106 bits.
    absorbed : ndarray of shape (d + 2,)
        ``sum_i w_i z_ij^2``: the magnitude taken in by each diagonal entry.
    """
    _float64_contiguous("X", X, 2)
    _float64_contiguous("y", y, 1)
    _float64_contiguous("weights", weights, 1)
    if not (y.shape[0] == weights.shape[0] == X.shape[0]):
        raise ValueError("X, y and weights must have the same number of rows.")
    p = X.shape[1] + 2
    hi, lo, absorbed = np.zeros((p, p)), np.zeros((p, p)), np.zeros(p)
    _check(_moments_kernel(X, y, weights, float(sign), hi, lo, absorbed), "moments")
    upper = np.triu_indices(p, 1)
    for part in (hi, lo):
        part.T[upper] = part[upper]
    return hi, lo, absorbed


def add(a, b, sign=1.0):
    """``a + sign * b`` for double-double arrays given as ``(hi, lo)`` pairs."""
    a_hi, a_lo = (np.ascontiguousarray(part, dtype=np.float64) for part in a)
    b_hi, b_lo = (np.ascontiguousarray(part, dtype=np.float64) for part in b)
    if not (a_hi.shape == a_lo.shape == b_hi.shape == b_lo.shape):
        raise ValueError("Both double-double arrays must have the same shape.")
    out_hi, out_lo = np.empty_like(a_hi), np.empty_like(a_hi)
    status = _add_kernel(
        a_hi.ravel(),
        a_lo.ravel(),
        b_hi.ravel(),
        b_lo.ravel(),
        float(sign),
        out_hi.reshape(-1),
        out_lo.reshape(-1),
    )
    _check(status, "sum of moments")
    return out_hi, out_lo


def centre(hi, lo):
    """Weighted means and centred scatter of double-double moments, in float64.

    Parameters
    ----------
    hi, lo : ndarray of shape (p, p)
        Moments of ``z = [1, x, y]`` as returned by :func:`moments`.

    Returns
    -------
    means : ndarray of shape (p - 1,)
        ``[x_mean, y_mean]``.
    scatter : ndarray of shape (p - 1, p - 1)
        Centred ``sum w (z - mean)(z - mean)'`` over ``[x, y]``, symmetric.
    """
    hi = np.ascontiguousarray(hi, dtype=np.float64)
    lo = np.ascontiguousarray(lo, dtype=np.float64)
    p = hi.shape[0]
    means, scatter = np.empty(p - 1), np.zeros((p - 1, p - 1))
    _check(_centre_kernel(hi, lo, means, scatter), "moments")
    upper = np.triu_indices(p - 1, 1)
    scatter.T[upper] = scatter[upper]
    return means, scatter
