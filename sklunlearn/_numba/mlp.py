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
"""

import numpy as np

from ._config import jit

__all__ = [
    "check_finite",
    "jacobian_columns",
    "mirror_upper",
    "pair_products",
    "scaled_jacobian",
    "scatter_kronecker_gram",
]

STATUS_OK = 0


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
