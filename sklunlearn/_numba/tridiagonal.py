"""Shifted symmetric tridiagonal kernels for the evidence fixed point.

The ``LDL'`` factorisation of a shifted symmetric tridiagonal matrix ``T + r I``
(its solve, inertia, log-determinant and the trace of ``T (T + r I)^-1``, all
O(d)), and the product with the orthogonal factor ``Q`` of a Householder
tridiagonalisation ``A = Q T Q'`` (O(d^2) per vector): what the evidence fixed
point of Bayesian linear regression needs at each of its iterations, without an
eigendecomposition.

References
----------
Golub & Van Loan, *Matrix Computations*, 4th ed., Sec. 4.3.6 (tridiagonal
``LDL'``), Sec. 8.3.1 (Householder tridiagonalisation), Sec. 8.4.1 (Sturm
counts); Meurant, "A review on the inverse of symmetric tridiagonal and block
tridiagonal matrices", SIAM J. Matrix Anal. Appl. 13(3), 1992 (the diagonal of
the inverse from the two one-sided factorisations).
"""

import numpy as np

from ._config import jit

__all__ = ["apply_reflectors", "shifted_tridiagonal"]


def _shifted_tridiagonal_kernel(diagonal, off, shift, rhs, solution):
    """``LDL'`` of ``M = T + shift I``, ``T`` with ``diagonal`` and ``off``-diagonal.

    Writes ``M^-1 rhs`` into ``solution`` and returns ``(negative, effective,
    log_det)``: the number of negative pivots (by Sylvester's law of inertia,
    the eigenvalues of ``T`` below ``-shift``), ``tr(T M^-1) = sum_i (1 -
    shift (M^-1)_ii)`` and ``log det M``. The last two and the solution are
    only meaningful when ``negative`` is 0. ``(M^-1)_ii = 1 / (f_i + g_i -
    m_ii)`` with ``f``, ``g`` the pivots of the forward and backward
    factorisations (Meurant 1992).
    """
    d = diagonal.shape[0]
    forward = np.empty(d)
    backward = np.empty(d)
    tiny = np.finfo(np.float64).tiny
    negative = 0
    log_det = 0.0
    for i in range(d):
        pivot = diagonal[i] + shift
        if i > 0:
            pivot -= off[i - 1] * off[i - 1] / forward[i - 1]
        if pivot == 0.0:  # the usual Sturm-count perturbation of a zero pivot
            pivot = -tiny
        if pivot < 0.0:
            negative += 1
        else:
            log_det += np.log(pivot)
        forward[i] = pivot
    if negative:
        return negative, 0.0, 0.0
    for i in range(d - 1, -1, -1):
        pivot = diagonal[i] + shift
        if i < d - 1:
            pivot -= off[i] * off[i] / backward[i + 1]
        backward[i] = pivot
    effective = 0.0
    for i in range(d):
        effective += 1.0 - shift / (forward[i] + backward[i] - diagonal[i] - shift)
    # M = L D L' with unit lower bidiagonal L (multipliers off / forward)
    for i in range(d):
        solution[i] = rhs[i]
        if i > 0:
            solution[i] -= off[i - 1] / forward[i - 1] * solution[i - 1]
    for i in range(d - 1, -1, -1):
        solution[i] /= forward[i]
        if i < d - 1:
            solution[i] -= off[i] / forward[i] * solution[i + 1]
    return negative, effective, log_det


def _apply_reflectors_kernel(rows, tau, vectors):
    """Overwrite ``vectors`` (d, m) with ``Q vectors``, ``Q = H_0 H_1 ... H_{d-1}``.

    ``H_j = I - tau_j v_j v_j'`` with ``v_j`` zero before index ``j``, one at
    ``j`` and ``rows[j, j + 1:]`` after (row ``j`` holds reflector ``j``).
    """
    d, m = vectors.shape
    for j in range(min(tau.shape[0], d) - 1, -1, -1):
        t = tau[j]
        if t == 0.0:
            continue
        for col in range(m):
            dot = vectors[j, col]
            for i in range(j + 1, d):
                dot += rows[j, i] * vectors[i, col]
            dot *= t
            vectors[j, col] -= dot
            for i in range(j + 1, d):
                vectors[i, col] -= dot * rows[j, i]


_shifted_tridiagonal_kernel = jit(_shifted_tridiagonal_kernel)
_apply_reflectors_kernel = jit(_apply_reflectors_kernel)


def shifted_tridiagonal(diagonal, off, shift, rhs):
    """Solve ``(T + shift I) u = rhs``; its inertia, ``tr(T (T + shift I)^-1)``, log det.

    Parameters
    ----------
    diagonal : ndarray of shape (d,)
    off : ndarray of shape (d - 1,)
        The diagonal and off-diagonal of the symmetric tridiagonal ``T``.
    shift : float
    rhs : ndarray of shape (d,)

    Returns
    -------
    negative : int
        How many eigenvalues of ``T`` lie below ``-shift`` (Sturm count).
    solution : ndarray of shape (d,) or None
    effective : float or None
        ``tr(T (T + shift I)^-1)``, i.e. ``sum_k s_k / (s_k + shift)`` over
        the eigenvalues ``s_k`` of ``T``.
    log_det : float or None
        ``log det (T + shift I)``.
        The last three are None unless ``negative`` is 0.
    """
    diagonal = np.ascontiguousarray(diagonal, dtype=np.float64)
    off = np.ascontiguousarray(off, dtype=np.float64)
    rhs = np.ascontiguousarray(rhs, dtype=np.float64)
    d = diagonal.shape[0]
    if off.shape != (max(d - 1, 0),) or rhs.shape != (d,):
        raise ValueError(
            f"A tridiagonal matrix of size {d} needs {max(d - 1, 0)} off-diagonal "
            f"entries and a right-hand side of {d}, got {off.shape} and {rhs.shape}."
        )
    solution = np.empty(d)
    negative, effective, log_det = _shifted_tridiagonal_kernel(
        diagonal, off, float(shift), rhs, solution
    )
    if negative:
        return int(negative), None, None, None
    return 0, solution, float(effective), float(log_det)


def apply_reflectors(reflectors, tau, vectors):
    """``Q @ vectors`` for the ``Q`` of a tridiagonalisation ``A = Q T Q'``.

    ``reflectors`` (d, d) and ``tau`` (d,) hold the Householder vectors:
    column ``j`` of ``reflectors`` below the diagonal is reflector ``j``
    after its leading one. ``dsytrd(B, lower=1)`` returns them, as
    ``c[1:, :-1]``, for the bordered matrix ``B = [[0, b'], [b, A]]``; then
    ``Q' b`` is a multiple of the first unit vector.

    Returns
    -------
    product : ndarray of the shape of ``vectors``
        A new array; ``vectors`` is not modified.
    """
    # Row j of the transpose is reflector j: the kernel walks it contiguously.
    rows = np.ascontiguousarray(np.asarray(reflectors, dtype=np.float64).T)
    tau = np.ascontiguousarray(tau, dtype=np.float64)
    product = np.array(vectors, dtype=np.float64, order="C", copy=True)
    squeeze = product.ndim == 1
    if squeeze:
        product = product[:, None]
    if rows.shape != (product.shape[0],) * 2 or tau.shape[0] > product.shape[0]:
        raise ValueError(
            f"reflectors must be ({product.shape[0]}, {product.shape[0]}) with at most "
            f"{product.shape[0]} tau, got {rows.shape} and {tau.shape}."
        )
    _apply_reflectors_kernel(rows, tau, product)
    return product[:, 0] if squeeze else product
