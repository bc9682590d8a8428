"""Small factorisation kernels: rank-one Cholesky changes, shifted tridiagonals.

- Rank-one Cholesky update and downdate. The factor is the *upper*
  triangular ``R`` with ``A = R.T @ R``, stored C-contiguous so that the
  inner loop of the kernel walks along rows. The lower factor used elsewhere
  is ``R.T`` (no copy).
- The ``LDL'`` factorisation of a shifted symmetric tridiagonal matrix
  ``T + r I`` (its solve, inertia, log-determinant and the trace of
  ``T (T + r I)^-1``, all O(d)), and the product with the orthogonal factor
  ``Q`` of a Householder tridiagonalisation ``A = Q T Q'`` (O(d^2) per
  vector): what the evidence fixed point of Bayesian linear regression needs
  at each of its iterations, without an eigendecomposition.

References
----------
Golub & Van Loan, *Matrix Computations*, 4th ed., Sec. 6.5.4 (updating the
Cholesky factorisation), Sec. 4.3.6 (tridiagonal ``LDL'``), Sec. 8.3.1
(Householder tridiagonalisation), Sec. 8.4.1 (Sturm counts); Seeger, "Low
rank updates for the Cholesky decomposition" (2004); Meurant, "A review on
the inverse of symmetric tridiagonal and block tridiagonal matrices", SIAM
J. Matrix Anal. Appl. 13(3), 1992 (the diagonal of the inverse from the
two one-sided factorisations).
"""

import numpy as np

from ._config import jit

STATUS_OK = 0
STATUS_NOT_POSITIVE_DEFINITE = 1
STATUS_NOT_FINITE = 2


def _cholesky_rank_one_kernel(R, x, sign):
    """Overwrite ``R`` with the factor of ``R.T @ R + sign * x x.T``.

    ``x`` (float64, length d) is used as work space and overwritten.  Returns a
    status: 0 on success, 1 when the result is not positive definite (``R``
    is then partially overwritten: callers work on a copy), 2 when a
    non-finite value appeared.
    """
    d = R.shape[0]
    for k in range(d):
        r_kk = R[k, k]
        radicand = r_kk * r_kk + sign * x[k] * x[k]
        if not radicand > 0.0:
            if radicand != radicand:
                return STATUS_NOT_FINITE
            return STATUS_NOT_POSITIVE_DEFINITE
        r_new = np.sqrt(radicand)
        c = r_new / r_kk
        s = x[k] / r_kk
        R[k, k] = r_new
        for j in range(k + 1, d):
            R[k, j] = (R[k, j] + sign * s * x[j]) / c
            x[j] = c * x[j] - s * R[k, j]
        if not np.isfinite(r_new):
            return STATUS_NOT_FINITE
    return STATUS_OK


def _cholesky_rank_k_kernel(R, X, weights, sign):
    """Apply ``sign * w_i x_i x_i.T`` for every row ``i`` of ``X`` in turn.

    Returns the status of the first failing row (see the rank-one kernel).
    """
    d = R.shape[0]
    work = np.empty(d)
    for i in range(X.shape[0]):
        w = weights[i]
        if w == 0.0:
            continue
        root = np.sqrt(w)
        for j in range(d):
            work[j] = root * X[i, j]
        status = _cholesky_rank_one_kernel(R, work, sign)
        if status != STATUS_OK:
            return status
    return STATUS_OK


_cholesky_rank_one_kernel = jit(_cholesky_rank_one_kernel)
_cholesky_rank_k_kernel = jit(_cholesky_rank_k_kernel)


class CholeskyUpdateError(np.linalg.LinAlgError):
    """A Cholesky up/downdate would leave a matrix that is not positive definite."""


def _check_factor(R):
    if not (isinstance(R, np.ndarray) and R.dtype == np.float64):
        raise TypeError("The Cholesky factor must be a float64 numpy array.")
    if R.ndim != 2 or R.shape[0] != R.shape[1]:
        raise ValueError(f"The Cholesky factor must be square, got shape {R.shape}.")
    if not R.flags.c_contiguous or not R.flags.writeable:
        raise ValueError("The Cholesky factor must be C-contiguous and writeable.")


def cholesky_rank_k_update(R, X, weights=None, sign=1.0):
    """Return the upper factor of ``R.T @ R + sign * X.T @ diag(weights) @ X``.

    Parameters
    ----------
    R : ndarray of shape (d, d), float64, C-contiguous
        Upper triangular factor, ``A = R.T @ R``. Not modified.
    X : array-like of shape (k, d)
        Rows to add (``sign=1``) or remove (``sign=-1``).
    weights : array-like of shape (k,), default=None
        Non-negative row weights; ``None`` means all ones.
    sign : {1.0, -1.0}, default=1.0
        Update or downdate.

    Returns
    -------
    R_new : ndarray of shape (d, d)
        A new upper factor; ``R`` is left untouched.

    Raises
    ------
    CholeskyUpdateError
        When the downdated matrix is not (numerically) positive definite.
    """
    _check_factor(R)
    X = np.ascontiguousarray(X, dtype=np.float64)
    if X.ndim == 1:
        X = X[None, :]
    if X.ndim != 2 or X.shape[1] != R.shape[0]:
        raise ValueError(
            f"X must have shape (k, {R.shape[0]}) to update a factor of size "
            f"{R.shape[0]}, got {X.shape}."
        )
    if weights is None:
        weights = np.ones(X.shape[0])
    weights = np.ascontiguousarray(weights, dtype=np.float64)
    if weights.shape != (X.shape[0],):
        raise ValueError(f"weights must have shape ({X.shape[0]},), got {weights.shape}.")
    if np.any(weights < 0):
        raise ValueError("weights must be non-negative; use sign=-1 to remove rows.")
    if sign not in (1.0, -1.0):
        raise ValueError(f"sign must be 1 or -1, got {sign!r}.")
    R_new = R.copy()
    status = _cholesky_rank_k_kernel(R_new, X, weights, float(sign))
    if status == STATUS_NOT_POSITIVE_DEFINITE:
        raise CholeskyUpdateError(
            "The Cholesky downdate would leave a matrix that is not positive "
            "definite: the rows removed carry more information than the "
            "matrix holds (were they all part of it, with these weights?)."
        )
    if status == STATUS_NOT_FINITE:
        raise CholeskyUpdateError(
            "The Cholesky update produced a non-finite value; check the inputs "
            "for NaN, inf or values too large to square."
        )
    return R_new


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
