"""Rank-one Cholesky update and downdate kernels.

The factor is the *upper* triangular ``R`` with ``A = R.T @ R``, stored
C-contiguous so that the inner loop of the kernel walks along rows. The lower
factor used elsewhere is ``R.T`` (no copy).

References
----------
Golub & Van Loan, *Matrix Computations*, 4th ed., Sec. 6.5.4 (updating the
Cholesky factorisation); Seeger, "Low rank updates for the Cholesky
decomposition" (2004).
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
