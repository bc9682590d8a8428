"""Fused row-block gradient and Hessian of generalised linear model terms.

For a design ``X`` (n, d), per-row weights ``w`` and a linear predictor
``f = X @ theta``, Newton's method needs ``sum_i w_i g_i x_i`` (gradient) and
``sum_i w_i c_i x_i x_i'`` (curvature, the negative Hessian). NumPy would
build the n x d temporary ``sqrt(w c)[:, None] * X``; these kernels walk the
rows in blocks of ``BLOCK_ROWS``, scale one block into a small buffer and hand
it to BLAS, so memory stays O(block x d) and the speed is BLAS's.
"""

import numpy as np

from ._config import jit

STATUS_OK = 0
STATUS_NOT_FINITE = 2

# Rows per block: large enough for BLAS to run at full speed, small enough to
# stay in cache (256 rows x 64 features x 8 bytes = 128 KiB).
BLOCK_ROWS = 256


def _add_block_gram(X, scale, start, stop, buffer, gram):
    """``gram += B' B`` with ``B[i] = scale[i] * X[start + i]`` for one row block."""
    d = X.shape[1]
    m = stop - start
    for i in range(m):
        s = scale[start + i]
        for j in range(d):
            buffer[i, j] = s * X[start + i, j]
    block = buffer[:m]
    gram += np.dot(block.T, block)


def _weighted_gram_kernel(X, weights, gram):
    """``gram += X' diag(weights) X`` by row blocks; ``weights >= 0``."""
    n, d = X.shape
    scale = np.sqrt(weights)
    buffer = np.empty((BLOCK_ROWS, d))
    for start in range(0, n, BLOCK_ROWS):
        _add_block_gram(X, scale, start, min(start + BLOCK_ROWS, n), buffer, gram)
    for j in range(d):
        if not np.isfinite(gram[j, j]):
            return STATUS_NOT_FINITE
    return STATUS_OK


def _logistic_terms_kernel(X, y, weights, theta, gradient, hessian, out_loglik):
    """Bernoulli-logit terms at ``theta`` for labels ``y`` in {0, 1}.

    ``out_loglik[0] = sum w (y f - log(1 + e^f))``,
    ``gradient += X' (w (y - p))`` and ``hessian += X' diag(w p (1 - p)) X``
    with ``p = sigmoid(f)``; ``log(1 + e^f)`` and ``p`` are evaluated without
    overflow for any ``f``.
    """
    n, d = X.shape
    scale = np.empty(n)
    buffer = np.empty((BLOCK_ROWS, d))
    loglik = 0.0
    for start in range(0, n, BLOCK_ROWS):
        stop = min(start + BLOCK_ROWS, n)
        for i in range(start, stop):
            f = 0.0
            for j in range(d):
                f += X[i, j] * theta[j]
            # log p = -(y softplus(-f) + (1 - y) softplus(f)), without cancellation
            e = np.exp(-abs(f))
            small = np.log1p(e)
            if f >= 0.0:
                p = 1.0 / (1.0 + e)
                softplus_minus, softplus_plus = small, f + small
            else:
                p = e / (1.0 + e)
                softplus_minus, softplus_plus = small - f, small
            w = weights[i]
            loglik -= w * (y[i] * softplus_minus + (1.0 - y[i]) * softplus_plus)
            residual = w * (y[i] - p)
            for j in range(d):
                gradient[j] += residual * X[i, j]
            scale[i] = np.sqrt(w * p * (1.0 - p))
        _add_block_gram(X, scale, start, stop, buffer, hessian)
    out_loglik[0] = loglik
    if not np.isfinite(loglik):
        return STATUS_NOT_FINITE
    for j in range(d):
        if not (np.isfinite(gradient[j]) and np.isfinite(hessian[j, j])):
            return STATUS_NOT_FINITE
    return STATUS_OK


_add_block_gram = jit(_add_block_gram)
_weighted_gram_kernel = jit(_weighted_gram_kernel)
_logistic_terms_kernel = jit(_logistic_terms_kernel)


def _as_matrix(X):
    X = np.ascontiguousarray(X, dtype=np.float64)
    if X.ndim != 2:
        raise ValueError(f"X must be a 2-D array, got shape {X.shape}.")
    return X


def _as_vector(v, n, name):
    v = np.ascontiguousarray(v, dtype=np.float64)
    if v.shape != (n,):
        raise ValueError(f"{name} must have shape ({n},), got {v.shape}.")
    return v


def _raise_not_finite(status):
    if status == STATUS_NOT_FINITE:
        raise FloatingPointError(
            "A GLM gradient or Hessian is not finite; check the inputs for NaN, "
            "inf or values too large (standardise the features)."
        )


def weighted_gram(X, weights):
    """Return ``X' diag(weights) X`` without an n x d temporary.

    Parameters
    ----------
    X : array-like of shape (n, d)
    weights : array-like of shape (n,)
        Non-negative row weights.

    Returns
    -------
    gram : ndarray of shape (d, d)
    """
    X = _as_matrix(X)
    weights = _as_vector(weights, X.shape[0], "weights")
    if np.any(weights < 0):
        raise ValueError("weights must be non-negative.")
    gram = np.zeros((X.shape[1], X.shape[1]))
    _raise_not_finite(_weighted_gram_kernel(X, weights, gram))
    return gram


def logistic_terms(X, y, weights, theta):
    """Log-likelihood, gradient and negative Hessian of weighted logistic rows.

    Parameters
    ----------
    X : array-like of shape (n, d)
        Design matrix (append a column of ones for an intercept).
    y : array-like of shape (n,)
        Labels in {0, 1}.
    weights : array-like of shape (n,)
        Non-negative row weights.
    theta : array-like of shape (d,)
        Parameters at which the terms are evaluated.

    Returns
    -------
    log_likelihood : float
        ``sum w (y f - log(1 + exp(f)))`` with ``f = X @ theta``.
    gradient : ndarray of shape (d,)
        ``X' (w (y - p))``.
    hessian : ndarray of shape (d, d)
        ``X' diag(w p (1 - p)) X`` (the negative Hessian, positive semi-definite).
    """
    X = _as_matrix(X)
    n, d = X.shape
    y = _as_vector(y, n, "y")
    weights = _as_vector(weights, n, "weights")
    theta = _as_vector(theta, d, "theta")
    if np.any(weights < 0):
        raise ValueError("weights must be non-negative.")
    gradient = np.zeros(d)
    hessian = np.zeros((d, d))
    loglik = np.zeros(1)
    status = _logistic_terms_kernel(X, y, weights, theta, gradient, hessian, loglik)
    _raise_not_finite(status)
    return float(loglik[0]), gradient, hessian
