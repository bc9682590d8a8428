"""Row-block Jacobian and Gauss-Newton kernels of a fully connected network.

For a network with a scalar output ``f``, the Jacobian row of one data row
with respect to a layer's weights ``W`` (in x out, stored row-major) and bias
``b`` is ``[h_j delta_k]`` and ``[delta_k]``: ``h`` the layer's input and
``delta = df / dz`` the back-propagated derivative at its pre-activations.
NumPy would build that outer product as a temporary and copy it into place;
:func:`scaled_jacobian` writes ``s_i h_ij delta_ik`` straight into a
``(block, p)`` buffer.

The Gauss-Newton matrix ``J' diag(c) J`` is accumulated from transposed
(column-per-row) blocks, which the kernels fill with unit-stride inner loops:
:func:`jacobian_columns` writes ``(diag(s) J)'``, and a hidden layer's own
diagonal block uses its Kronecker structure. With ``h~ = [h, 1]``, that block is
``sum_i c_i (h~_i h~_i') kron (delta_i delta_i')``, symmetric in both factors, so
only the products of pairs ``j <= j'`` and ``k <= k'`` are needed
(:func:`pair_products`): one general product of those pair matrices gives every
distinct entry with about half the multiplications of the rank-k update of the
layer's Jacobian, and :func:`scatter_kronecker_gram` places them.

The passes that fill a block run in the same transposed layout:
:func:`activate` applies a hidden layer's activation in place and writes its
derivative in the same call (the MAP objective's row blocks call it too). Its
``tanh`` is ``-m / (2 + m)`` with ``m = expm1(-2 |z|)``, computed by a range
reduction and a polynomial that the compiler vectorises (libm's ``tanh`` is one
call per entry); it is accurate to a few units in the last place.
"""

import decimal
import math

import numpy as np

from ._config import jit

__all__ = [
    "ACTIVATION_CODES",
    "activate",
    "check_finite",
    "jacobian_columns",
    "mirror_upper",
    "pair_products",
    "scaled_jacobian",
    "scatter_kronecker_gram",
]

STATUS_OK = 0

# The hidden activations :func:`activate` knows, by the code its kernel reads.
ACTIVATION_CODES = {"tanh": 0, "logistic": 1, "relu": 2, "identity": 3}

# 1.5 * 2**52: adding it to an integer-valued float of magnitude below 2**51
# leaves that integer in the low bits of the sum's representation.
_ROUNDING_SHIFT = 6755399441055744.0
_ROUNDING_SHIFT_BITS = 0x4338000000000000
_EXPONENT_BIAS = 1023
# ln 2 split so that k * _LN2_HIGH is exact for |k| < 2**11 (Cody and Waite's
# reduction): _LN2_HIGH holds ln 2's leading 42 bits, _LN2_LOW the rest of ln 2
# (not of its double), rounded.
_LN2_DIGITS = "0.693147180559945309417232121458176568075500134360255254120680"
_LN2_HIGH = math.ldexp(math.floor(math.ldexp(float(_LN2_DIGITS), 42)), -42)
with decimal.localcontext(prec=60):
    _LN2_LOW = float(decimal.Decimal(_LN2_DIGITS) - decimal.Decimal(_LN2_HIGH))
# exp(-708) is still a normal number: clamping x there keeps 2**k normal.
_EXP_FLOOR = -708.0


@jit(fastmath=False)  # re-association would undo Cody and Waite's split of ln 2
def _exp_nonpositive_kernel(x, minus_one, out, shifted):
    """``out = exp(x) - minus_one`` for ``x <= 0``, with ``exp(x) = 0`` below -708.

    NaN stays NaN. ``x``, ``out`` and ``shifted`` must be distinct arrays.

    ``x = k ln 2 + r`` with ``k = round(x / ln 2)`` and ``|r| <= ln(2) / 2``, so
    ``exp(x) - 1 = 2**k expm1(r) + (2**k - 1)`` (Cody and Waite's additive range
    reduction: J.-M. Muller, "Elementary Functions: Algorithms and
    Implementation", 3rd ed., 2016), ``expm1(r)`` by its Taylor series to
    ``r**13 / 13!`` (truncation below ``2**-56`` relative). With ``k = 0`` and
    ``minus_one = 1`` this is ``expm1(r)`` itself, so small ``|x|`` keeps its
    relative accuracy. ``2**k`` is built from its bits (``shifted`` holds
    ``k + 1.5 * 2**52``), which keeps the loops free of calls and branches.
    """
    n = x.shape[0]
    bits = shifted.view(np.int64)
    for i in range(n):
        v = x[i] if x[i] > _EXP_FLOOR else _EXP_FLOOR
        k = np.floor(v * (1.0 / (_LN2_HIGH + _LN2_LOW)) + 0.5)  # a float: vectorises
        r = (v - k * _LN2_HIGH) - k * _LN2_LOW
        out[i] = r * (1.0 + r * (1 / 2 + r * (1 / 6 + r * (1 / 24 + r * (1 / 120 + r * (
            1 / 720 + r * (1 / 5040 + r * (1 / 40320 + r * (1 / 362880 + r * (
                1 / 3628800 + r * (1 / 39916800 + r * (1 / 479001600 + r * (
                    1 / 6227020800)))))))))))))  # fmt: skip
        shifted[i] = k + _ROUNDING_SHIFT
    for i in range(n):
        bits[i] = (bits[i] - _ROUNDING_SHIFT_BITS + _EXPONENT_BIAS) << 52
    for i in range(n):
        power = shifted[i]  # 2**k
        value = power * out[i] + (power - minus_one)
        # below the floor exp(x) is under 2**-1021: zero, as the subnormals round
        out[i] = (
            value if x[i] >= _EXP_FLOOR else (x[i] if x[i] != x[i] else 0.0 - minus_one)
        )
    return STATUS_OK


@jit
def _activate_kernel(z, code, derivative):
    """``z <- a(z)`` in place, ``derivative <- a'(z)``, for the activation ``code``.

    With ``m = expm1(-2 |z|)``, ``tanh z = -sign(z) m / (2 + m)``; with
    ``e = exp(-|z|)``, the logistic ``1 / (1 + e^-z)`` is ``1 / (1 + e)`` for
    ``z >= 0`` and ``e / (1 + e)`` below (no cancellation either way). The
    derivatives are written from the output, ``1 - h**2`` and ``h (1 - h)``, as
    the predictor's backward pass writes them. NaN stays NaN.
    """
    n = z.shape[0]
    if code == 0 or code == 1:
        steepness = 2.0 if code == 0 else 1.0
        # distinct arrays: the compiler vectorises no loop over aliased ones
        x, e = np.empty(n), np.empty(n)
        for i in range(n):
            x[i] = -steepness * abs(z[i])
        _exp_nonpositive_kernel(x, 1.0 if code == 0 else 0.0, e, derivative)
        if code == 0:
            for i in range(n):
                v = z[i]
                h = math.copysign(-e[i] / (2.0 + e[i]), v)
                z[i] = h if v == v else v
                derivative[i] = 1.0 - z[i] * z[i]
        else:
            for i in range(n):
                v = z[i]
                h = (1.0 if v >= 0.0 else e[i]) / (1.0 + e[i])
                z[i] = h if v == v else v
                derivative[i] = z[i] * (1.0 - z[i])
    elif code == 2:
        for i in range(n):
            v = z[i]
            z[i] = 0.0 if v <= 0.0 else v  # +0 for -0, as np.maximum(z, 0)
            derivative[i] = 1.0 if v > 0.0 else 0.0
    else:
        for i in range(n):
            derivative[i] = 1.0
    return STATUS_OK


def activate(activation, z, derivative):
    """Apply a hidden activation in place and write its derivative, in one call.

    Parameters
    ----------
    activation : {'tanh', 'logistic', 'relu', 'identity'}
    z : ndarray, C-contiguous float64
        The pre-activations; overwritten with ``a(z)``.
    derivative : ndarray of the shape of ``z``, C-contiguous float64
        Overwritten with ``a'(z)``.

    Returns
    -------
    z : ndarray
    """
    for array in (z, derivative):
        if array.dtype != np.float64 or not array.flags.c_contiguous:
            raise ValueError("z and derivative must be C-contiguous float64 arrays.")
    if derivative.shape != z.shape:
        raise ValueError("derivative must have the shape of z.")
    _activate_kernel(z.reshape(-1), ACTIVATION_CODES[activation], derivative.reshape(-1))
    return z


@jit
def _layer_jacobian_kernel(inputs, delta, scale, offset, out):
    """``out[i, offset + j n_out + k] = s_i h_ij delta_ik``, then the bias ``s_i delta_ik``.

    The scaled deltas of a row go to a small buffer first, so that the inner
    loop reads no entry of ``out`` and vectorises.
    """
    n, n_in = inputs.shape
    n_out = delta.shape[1]
    bias = offset + n_in * n_out
    scaled = np.empty(n_out)
    for i in range(n):
        s = scale[i]
        for k in range(n_out):
            scaled[k] = s * delta[i, k]
            out[i, bias + k] = scaled[k]
        for j in range(n_in):
            h = inputs[i, j]
            base = offset + j * n_out
            for k in range(n_out):
                out[i, base + k] = h * scaled[k]
    return STATUS_OK


def scaled_jacobian(inputs, deltas, scale, out):
    """Fill ``out`` with ``diag(scale) J`` of a row block, layer by layer.

    Parameters
    ----------
    inputs : list of ndarrays of shape (n, n_in_l)
        Each layer's input (the data, then the hidden activations).
    deltas : list of ndarrays of shape (n, n_out_l)
        ``df / dz`` at each layer's pre-activations.
    scale : ndarray of shape (n,)
        Per-row factor (``sqrt(c)`` for a Gauss-Newton block, ones for ``J``).
    out : ndarray of shape (>= n, p), C-contiguous float64
        Written in its first ``n`` rows; ``p`` the number of parameters,
        ordered layer by layer as ``W`` (row-major) then ``b``.

    Returns
    -------
    out : ndarray of shape (n, p)
        A view of the first ``n`` rows of ``out``.
    """
    n = scale.shape[0]
    if out.dtype != np.float64 or not out.flags.c_contiguous or out.shape[0] < n:
        raise ValueError("out must be a C-contiguous float64 array with enough rows.")
    scale = np.ascontiguousarray(scale, dtype=np.float64)
    offset = 0
    for h, delta in zip(inputs, deltas, strict=True):
        h = np.ascontiguousarray(h, dtype=np.float64)
        delta = np.ascontiguousarray(delta, dtype=np.float64)
        if h.shape[0] != n or delta.shape[0] != n:
            raise ValueError("Every layer's inputs and deltas need one row per scale.")
        # O(n (n_in + n_out)) checks here instead of one per entry of out
        check_finite(scale, h, delta)
        _layer_jacobian_kernel(h, delta, scale, offset, out)
        offset += (h.shape[1] + 1) * delta.shape[1]
    if offset != out.shape[1]:
        raise ValueError(f"The layers hold {offset} parameters; out has {out.shape[1]}.")
    return out[:n]


def check_finite(*arrays):
    """Raise the network's overflow error unless every array is finite.

    Parameters
    ----------
    *arrays : ndarrays
    """
    if not all(np.isfinite(array).all() for array in arrays):
        raise FloatingPointError(
            "The network's Jacobian is not finite: the weights or the rows overflow "
            "the activations. Standardise X and y."
        )


def _check_columns_out(out, n_rows, n_columns):
    expected = (n_rows, n_columns)
    if out.dtype != np.float64 or not out.flags.c_contiguous or out.shape != expected:
        raise ValueError(f"out must be a C-contiguous float64 array of shape {expected}.")


@jit
def _jacobian_columns_kernel(augmented, delta, scale, offset, out):
    """``out[offset + j n_out + k, i] = h~_ji s_i delta_ki`` (``h~`` ends with ones)."""
    n_in, n = augmented.shape
    n_out = delta.shape[0]
    scaled = np.empty((n_out, n))
    for k in range(n_out):
        for i in range(n):
            scaled[k, i] = scale[i] * delta[k, i]
    for j in range(n_in):
        for k in range(n_out):
            row = offset + j * n_out + k
            for i in range(n):
                out[row, i] = augmented[j, i] * scaled[k, i]
    return STATUS_OK


def jacobian_columns(augmented, deltas, scale, out):
    """Fill ``out`` with ``(diag(scale) J)'`` of a row block, one column per row.

    Parameters
    ----------
    augmented : list of ndarrays of shape (n_in_l + 1, n), C-contiguous float64
        Each layer's input, transposed, with a last row of ones (the bias).
    deltas : list of ndarrays of shape (n_out_l, n), C-contiguous float64
        ``df / dz`` at each layer's pre-activations, transposed.
    scale : ndarray of shape (n,)
        Per-row factor (``sqrt(c)`` for a Gauss-Newton block).
    out : ndarray of shape (p, n), C-contiguous float64
        ``p`` the number of parameters, ordered layer by layer as ``W``
        (row-major) then ``b``.

    Returns
    -------
    out : ndarray of shape (p, n)
        Non-finite terms propagate into it (the caller checks the sums it
        forms, once, instead of every block's terms).
    """
    scale = np.ascontiguousarray(scale, dtype=np.float64)
    n = scale.shape[0]
    n_parameters = sum(
        h.shape[0] * delta.shape[0] for h, delta in zip(augmented, deltas, strict=True)
    )
    _check_columns_out(out, n_parameters, n)
    offset = 0
    for h, delta in zip(augmented, deltas, strict=True):
        if h.shape[1] != n or delta.shape[1] != n:
            raise ValueError("Every layer's inputs and deltas need one column per scale.")
        _jacobian_columns_kernel(h, delta, scale, offset, out)
        offset += h.shape[0] * delta.shape[0]
    return out


@jit
def _pair_products_kernel(columns, scale, out):
    """``out[t, i] = s_i a_ji a_j'i`` for the pairs ``j <= j'`` in row-major order."""
    m, n = columns.shape
    scaled = np.empty(n)
    t = 0
    for j in range(m):
        for i in range(n):
            scaled[i] = scale[i] * columns[j, i]
        for jp in range(j, m):
            for i in range(n):
                out[t, i] = scaled[i] * columns[jp, i]
            t += 1
    return STATUS_OK


def pair_products(columns, scale, out):
    """Products of every pair of rows ``j <= j'`` of ``columns``, scaled per column.

    Parameters
    ----------
    columns : ndarray of shape (m, n), C-contiguous float64
    scale : ndarray of shape (n,)
    out : ndarray of shape (m (m + 1) / 2, n), C-contiguous float64
        Row ``t`` holds the pair ``(j, j')``, ``j <= j'``, in row-major order
        of the upper triangle.

    Returns
    -------
    out : ndarray of shape (m (m + 1) / 2, n)
        Non-finite terms propagate into it, as in :func:`jacobian_columns`.
    """
    m, n = columns.shape
    _check_columns_out(out, m * (m + 1) // 2, n)
    scale = np.ascontiguousarray(scale, dtype=np.float64)
    _pair_products_kernel(columns, scale, out)
    return out


@jit
def _scatter_kronecker_gram_kernel(pair_gram, n_in, n_out, start, gram):
    r = 0
    for j in range(n_in):
        for jp in range(j, n_in):
            t = 0
            for k in range(n_out):
                for kp in range(k, n_out):
                    value = pair_gram[r, t]
                    # (h h') kron (delta delta') is symmetric in (j, j') and in (k, k')
                    gram[start + j * n_out + k, start + jp * n_out + kp] = value
                    gram[start + j * n_out + kp, start + jp * n_out + k] = value
                    gram[start + jp * n_out + k, start + j * n_out + kp] = value
                    gram[start + jp * n_out + kp, start + j * n_out + k] = value
                    t += 1
            r += 1
    return STATUS_OK


def scatter_kronecker_gram(pair_gram, n_in, n_out, start, gram):
    """Write a layer's diagonal Gauss-Newton block from its pair products' product.

    ``pair_gram[(j, j'), (k, k')] = sum_i c_i h~_ij h~_ij' delta_ik delta_ik'``
    (the pairs in the order of :func:`pair_products`) is the entry of the layer's
    block at rows ``j n_out + k`` and columns ``j' n_out + k'`` and at the three
    other positions its symmetries give.

    Parameters
    ----------
    pair_gram : ndarray of shape (n_in (n_in + 1) / 2, n_out (n_out + 1) / 2)
    n_in, n_out : int
        Rows of the layer's weight matrix with its bias (``n_in``), and columns.
    start : int
        Index of the layer's first parameter in ``gram``.
    gram : ndarray of shape (p, p), float64
        Written in the block ``[start, start + n_in n_out)`` squared, both triangles.

    Returns
    -------
    gram : ndarray of shape (p, p)
    """
    expected = (n_in * (n_in + 1) // 2, n_out * (n_out + 1) // 2)
    if pair_gram.shape != expected or start + n_in * n_out > gram.shape[0]:
        raise ValueError(f"pair_gram must have shape {expected} and fit in gram.")
    _scatter_kronecker_gram_kernel(pair_gram, n_in, n_out, start, gram)
    return gram


@jit
def _mirror_upper_kernel(gram):
    p = gram.shape[0]
    for i in range(p):
        for j in range(i + 1, p):
            gram[j, i] = gram[i, j]
    return STATUS_OK


def mirror_upper(gram):
    """Copy the upper triangle of a square float64 array onto its lower, in place."""
    if gram.ndim != 2 or gram.shape[0] != gram.shape[1] or gram.dtype != np.float64:
        raise ValueError("gram must be a square float64 array.")
    _mirror_upper_kernel(gram)
    return gram
