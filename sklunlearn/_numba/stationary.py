"""Cross-covariances of stationary kernels and their contracted derivatives.

For rows ``X`` (b, p), inducing points ``Z`` (m, p), inverse length scales
``1 / l`` (p,) and a signal variance ``s``, the kernel is
``k(x, z) = s g(r)`` with ``r^2 = sum_q ((x_q - z_q) / l_q)^2`` and

- ``KIND_RBF``: ``g = exp(-r^2 / 2)``,
- ``KIND_MATERN_05``: ``g = exp(-r)``,
- ``KIND_MATERN_15``: ``g = (1 + sqrt(3) r) exp(-sqrt(3) r)``,
- ``KIND_MATERN_25``: ``g = (1 + sqrt(5) r + 5 r^2 / 3) exp(-sqrt(5) r)``

(Rasmussen and Williams 2006, eqs. 4.9 and 4.17). With ``h(r) = -g'(r) / r``,
``dk/dlog l_q = s h(r) (x_q - z_q)^2 / l_q^2`` and
``dk/dz_q = s h(r) (x_q - z_q) / l_q^2``. A bound that depends on the kernel
matrix only through ``sum_iu C[i, u] K[i, u]`` has derivatives
``sum_iu C[i, u] dK[i, u]``: :func:`cross_kernel_gradient` accumulates them
in one walk over the b x m pairs, O(b m p), without any b x m x p array,
reusing ``K`` so that it evaluates no exponential. The loops run over the
inducing points innermost, on the transposed ``Z / l``, so they vectorise.
"""

import numpy as np

from ._config import jit

KIND_RBF = 0
KIND_MATERN_05 = 1
KIND_MATERN_15 = 2
KIND_MATERN_25 = 3
KINDS = (KIND_RBF, KIND_MATERN_05, KIND_MATERN_15, KIND_MATERN_25)

_SQRT3 = np.sqrt(3.0)
_SQRT5 = np.sqrt(5.0)


# exp(x) for x <= 0 written out so that LLVM vectorises it (np.exp is a scalar
# libm call per entry without Intel's SVML): Cody and Waite's reduction x = k ln 2 + r,
# k = round(x / ln 2), |r| <= ln(2) / 2, then exp(x) = 2^k exp(r) with exp(r) by its
# Taylor polynomial of degree 13 (truncation error below 1e-17 relative) and 2^k
# written into the exponent bits (Muller, Elementary Functions, 2016, sec. 11.3).
# The reduction is compiled without fastmath (re-association would fold the two parts
# of ln 2 into one, an error of |x| units in the last place), the polynomial with it.
_LOG2E = 1.4426950408889634
# ln 2 in two parts (fdlibm's): k * _LN2_HI is exact for |k| < 2^11.
_LN2_HI = 6.93147180369123816490e-01
_LN2_LO = 1.90821492927058770002e-10
# Below this exp(x) < 2^-1021, and 2^k would leave the normal range: it gives 0.
_EXP_LOWEST = -708.0
_EXPONENT_BIAS = 1023.0
_MANTISSA_BITS = 52


@jit
def _exp_reduced(r):
    """Taylor polynomial of degree 13 of ``exp(r)``, by Horner's rule."""
    p = 1.0 / 6227020800.0
    p = p * r + 1.0 / 479001600.0
    p = p * r + 1.0 / 39916800.0
    p = p * r + 1.0 / 3628800.0
    p = p * r + 1.0 / 362880.0
    p = p * r + 1.0 / 40320.0
    p = p * r + 1.0 / 5040.0
    p = p * r + 1.0 / 720.0
    p = p * r + 1.0 / 120.0
    p = p * r + 1.0 / 24.0
    p = p * r + 1.0 / 6.0
    p = p * r + 0.5
    p = p * r + 1.0
    return p * r + 1.0


@jit(fastmath=False)
def _exp_nonpositive(x, bits, powers, out):
    """``out[u] = exp(x[u])`` for ``x[u] <= 0`` within about one unit in the last
    place; 0 below ``_EXP_LOWEST``, 1 for a positive ``x[u]`` (clamped to 0), NaN
    for NaN.

    ``bits`` (int64) and ``powers`` (its float64 view) are scratch of x's length.
    """
    for u in range(x.shape[0]):
        value = min(max(x[u], _EXP_LOWEST), 0.0)
        k = np.floor(value * _LOG2E + 0.5)
        out[u] = _exp_reduced((value - k * _LN2_HI) - k * _LN2_LO)
        # 2^k's bit pattern: biased exponent k + 1023, a zero mantissa
        bits[u] = np.int64(np.int32(k + _EXPONENT_BIAS)) << _MANTISSA_BITS
    for u in range(x.shape[0]):
        out[u] = 0.0 if x[u] < _EXP_LOWEST else out[u] * powers[u]


@jit
def _exponent(squared, kind):
    """``e(r)`` of ``g(r) = c(r) exp(e(r))`` for the kernel ``kind``, from ``r^2``."""
    if kind == KIND_RBF:
        return -0.5 * squared
    r = np.sqrt(squared)
    if kind == KIND_MATERN_05:
        return -r
    if kind == KIND_MATERN_15:
        return -_SQRT3 * r
    return -_SQRT5 * r


@jit
def _prefactor(squared, kind):
    """``c(r)`` of ``g(r) = c(r) exp(e(r))`` for the kernel ``kind``, from ``r^2``."""
    if kind == KIND_RBF or kind == KIND_MATERN_05:
        return 1.0
    r = np.sqrt(squared)
    if kind == KIND_MATERN_15:
        return 1.0 + _SQRT3 * r
    return 1.0 + _SQRT5 * r + 5.0 / 3.0 * squared


@jit
def _slope_ratio(squared, kind):
    """``h(r) / g(r)``, so that ``s h = K h / g`` needs no second exponential;
    0 at ``r = 0`` for nu = 1/2, whose derivative does not exist there
    (scikit-learn's convention)."""
    if kind == KIND_RBF:
        return 1.0
    r = np.sqrt(squared)
    if kind == KIND_MATERN_05:
        return 1.0 / r if r > 0.0 else 0.0
    if kind == KIND_MATERN_15:
        return 3.0 / (1.0 + _SQRT3 * r)
    return 5.0 / 3.0 * (1.0 + _SQRT5 * r) / (1.0 + _SQRT5 * r + 5.0 / 3.0 * squared)


@jit
def _squared_distances(Xs, i, Zst, out):
    """``out[u] = |Xs[i] - Zs[u]|^2`` for scaled rows and transposed scaled ``Z``;
    the inner loop runs over inducing points, contiguous in ``Zst``."""
    out[:] = 0.0
    for q in range(Xs.shape[1]):
        x = Xs[i, q]
        for u in range(Zst.shape[1]):
            difference = x - Zst[q, u]
            out[u] += difference * difference


@jit
def _cross_kernel(Xs, Zst, variance, kind, out):
    m = Zst.shape[1]
    squared, exponents = np.empty(m), np.empty(m)
    bits = np.empty(m, dtype=np.int64)
    powers = bits.view(np.float64)
    for i in range(Xs.shape[0]):
        _squared_distances(Xs, i, Zst, squared)
        for u in range(m):
            exponents[u] = _exponent(squared[u], kind)
        _exp_nonpositive(exponents, bits, powers, out[i])
        for u in range(m):
            out[i, u] *= variance * _prefactor(squared[u], kind)


@jit
def _cross_kernel_gradient(
    Xs, Zst, kind, K, base, weights, t, gamma, d_length, d_inducing_t, with_inducing
):
    """Accumulate ``sum_iu C[i, u] dK[i, u]`` with
    ``C[i, u] = w_i (base[i, u] + t_i gamma_u)``; returns the log-variance part.

    In scaled coordinates ``xs = x / l``: ``d_length[q] += sum C s h (xs_q -
    zs_q)^2`` and ``d_inducing_t[q, u] += sum_i C s h (xs_q - zs_q)`` (the
    caller divides by ``l_q``).
    """
    m = Zst.shape[1]
    squared = np.empty(m)
    coefficient = np.empty(m)
    d_log_variance = 0.0
    for i in range(Xs.shape[0]):
        if weights[i] == 0.0:
            continue
        if kind != KIND_RBF:
            _squared_distances(Xs, i, Zst, squared)
        for u in range(m):
            c = weights[i] * (base[i, u] + t[i] * gamma[u])
            k = c * K[i, u]
            d_log_variance += k
            coefficient[u] = k if kind == KIND_RBF else k * _slope_ratio(squared[u], kind)
        for q in range(Xs.shape[1]):
            x = Xs[i, q]
            total = 0.0
            for u in range(m):
                difference = x - Zst[q, u]
                scaled = coefficient[u] * difference
                total += scaled * difference
                if with_inducing:
                    d_inducing_t[q, u] += scaled
            d_length[q] += total
    return d_log_variance


def _checked(X, Z, inverse_length_scales, kind):
    X = np.ascontiguousarray(X, dtype=np.float64)
    Z = np.ascontiguousarray(Z, dtype=np.float64)
    inverse_length_scales = np.ascontiguousarray(inverse_length_scales, dtype=np.float64)
    if X.ndim != 2 or Z.ndim != 2 or X.shape[1] != Z.shape[1]:
        raise ValueError(
            f"X and Z must be 2-D with equal columns, got {X.shape}, {Z.shape}."
        )
    if inverse_length_scales.shape != (X.shape[1],):
        raise ValueError(
            f"inverse_length_scales must have shape ({X.shape[1]},), got "
            f"{inverse_length_scales.shape}."
        )
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}.")
    return X, Z, inverse_length_scales


def _scaled(X, Z, inverse_length_scales):
    """Rows and transposed inducing points divided by the length scales."""
    return X * inverse_length_scales, np.ascontiguousarray((Z * inverse_length_scales).T)


def cross_kernel(X, Z, inverse_length_scales, variance, kind, out=None):
    """``K[i, u] = variance g(r(X[i], Z[u]))``.

    Parameters
    ----------
    X : ndarray of shape (b, p)
    Z : ndarray of shape (m, p)
    inverse_length_scales : ndarray of shape (p,)
        ``1 / l`` per feature (repeat one value for an isotropic kernel).
    variance : float
    kind : int
        One of ``KIND_RBF``, ``KIND_MATERN_05``, ``KIND_MATERN_15``,
        ``KIND_MATERN_25``.
    out : ndarray of shape (b, m), default=None
        C-contiguous float64 array to write ``K`` into (a new one when None).

    Returns
    -------
    K : ndarray of shape (b, m)
        ``out`` when given.
    """
    X, Z, inverse_length_scales = _checked(X, Z, inverse_length_scales, kind)
    shape = (X.shape[0], Z.shape[0])
    if out is None:
        out = np.empty(shape)
    elif out.shape != shape or out.dtype != np.float64 or not out.flags.c_contiguous:
        raise ValueError(
            f"out must be a C-contiguous float64 array of shape {shape}, got "
            f"{out.dtype} {out.shape}."
        )
    Xs, Zst = _scaled(X, Z, inverse_length_scales)
    _cross_kernel(Xs, Zst, float(variance), kind, out)
    return out


def cross_kernel_gradient(
    X,
    Z,
    inverse_length_scales,
    kind,
    K,
    coefficients,
    weights=None,
    t=None,
    gamma=None,
    with_inducing=False,
):
    """Derivatives of ``sum_iu C[i, u] K[i, u]`` for ``K = cross_kernel(...)``.

    ``C[i, u] = w_i (coefficients[i, u] + t_i gamma_u)``: the weights and the
    rank-one part are applied on the fly, without a b x m temporary.

    Parameters
    ----------
    X, Z, inverse_length_scales, kind
        As :func:`cross_kernel`.
    K : ndarray of shape (b, m)
        ``cross_kernel(X, Z, inverse_length_scales, variance, kind)``.
    coefficients : ndarray of shape (b, m)
    weights : ndarray of shape (b,), default=None
        ``w`` (ones when None).
    t : ndarray of shape (b,), default=None
        With ``gamma``, the rank-one part (none when None).
    gamma : ndarray of shape (m,), default=None
    with_inducing : bool, default=False
        Also return the derivative w.r.t. ``Z`` (second argument only).

    Returns
    -------
    d_log_variance : float
    d_log_length_scales : ndarray of shape (p,)
        W.r.t. ``log l_q`` of each feature (sum them for an isotropic kernel).
    d_inducing : ndarray of shape (m, p) or None
    """
    X, Z, inverse_length_scales = _checked(X, Z, inverse_length_scales, kind)
    b, m = X.shape[0], Z.shape[0]
    K = np.ascontiguousarray(K, dtype=np.float64)
    coefficients = np.ascontiguousarray(coefficients, dtype=np.float64)
    if K.shape != (b, m) or coefficients.shape != (b, m):
        raise ValueError(
            f"K and coefficients must have shape {(b, m)}, got {K.shape} and "
            f"{coefficients.shape}."
        )
    weights = np.ones(b) if weights is None else np.ascontiguousarray(weights, np.float64)
    if t is None or gamma is None:
        t, gamma = np.zeros(b), np.zeros(m)
    t = np.ascontiguousarray(t, dtype=np.float64)
    gamma = np.ascontiguousarray(gamma, dtype=np.float64)
    d_length = np.zeros(X.shape[1])
    d_inducing_t = np.zeros((X.shape[1], m if with_inducing else 0))
    Xs, Zst = _scaled(X, Z, inverse_length_scales)
    d_log_variance = _cross_kernel_gradient(
        Xs,
        Zst,
        kind,
        K,
        coefficients,
        weights,
        t,
        gamma,
        d_length,
        d_inducing_t,
        with_inducing,
    )
    d_inducing = d_inducing_t.T * inverse_length_scales if with_inducing else None
    return float(d_log_variance), d_length, d_inducing
