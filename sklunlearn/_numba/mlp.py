"""Row-block Jacobian and Gauss-Newton kernels of a fully connected network.

For a network with a scalar output ``f``, the Jacobian row of one data row
with respect to a layer's weights ``W`` (in x out, stored row-major) and bias
``b`` is ``[h_j delta_k]`` and ``[delta_k]``: ``h`` the layer's input and
``delta = df / dz`` the back-propagated derivative at its pre-activations.
NumPy would build that outer product as a temporary and copy it into place;
:func:`scaled_jacobian` writes ``s_i h_ij delta_ik`` straight into a
``(block, p)`` buffer, and :func:`add_gram` accumulates ``B' B`` of that
buffer with BLAS's symmetric rank-k update (half the flops of a general product).
"""

import numpy as np

from ._config import jit

__all__ = ["add_gram", "scaled_jacobian"]

STATUS_OK = 0
STATUS_NOT_FINITE = 2


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
        finite = np.isfinite(h).all() and np.isfinite(delta).all()
        status = _layer_jacobian_kernel(h, delta, scale, offset, out)
        if status != STATUS_OK or not (finite and np.isfinite(scale).all()):
            raise FloatingPointError(
                "The network's Jacobian is not finite: the weights or the rows overflow "
                "the activations. Standardise X and y."
            )
        offset += (h.shape[1] + 1) * delta.shape[1]
    if offset != out.shape[1]:
        raise ValueError(f"The layers hold {offset} parameters; out has {out.shape[1]}.")
    return out[:n]


def add_gram(block, gram, scratch=None):
    """``gram += block' block``, in place, by one BLAS product.

    NumPy's ``block.T @ block`` is a symmetric rank-k update (``dsyrk``, half
    the flops of a general product) mirrored to the full matrix. It runs in the
    same BLAS library as the network's passes: a second library (SciPy's)
    would keep its own threads spinning against NumPy's between calls.

    Parameters
    ----------
    block : ndarray of shape (n, p), float64
    gram : ndarray of shape (p, p), float64
        Updated in full (both triangles).
    scratch : ndarray of shape (p, p), C-contiguous float64, default=None
        Space for the product (allocated when None).

    Returns
    -------
    gram : ndarray of shape (p, p)
    """
    if gram.dtype != np.float64 or gram.shape != (block.shape[1], block.shape[1]):
        raise ValueError("gram must be a (p, p) float64 array, p the block's columns.")
    gram += np.matmul(block.T, block, out=scratch)
    return gram
