"""Fused row-block gradient and Hessian of generalised linear model terms.

For a design ``X`` (n, d), per-row weights ``w`` and a linear predictor
``f = X @ theta``, Newton's method needs ``sum_i w_i g_i x_i`` (gradient) and
``sum_i w_i c_i x_i x_i'`` (curvature, the negative Hessian). NumPy would
build the n x d temporary ``sqrt(w c)[:, None] * X``; these kernels walk the
rows in blocks of ``BLOCK_ROWS``, scale one block into a small buffer and hand
it to BLAS, so memory stays O(block x d) and the speed is BLAS's. A
scipy.sparse design is walked row by row in CSR form instead, each row adding
the products of its stored entries to the dense d x d curvature.
"""

import numpy as np
from scipy import sparse

from ._config import jit

STATUS_OK = 0
STATUS_NOT_FINITE = 2

# Rows per block: large enough for BLAS to run at full speed, small enough to
# stay in cache (256 rows x 64 features x 8 bytes = 128 KiB).
BLOCK_ROWS = 256


def _negative_log_likelihood(y, softplus_minus, softplus_plus):
    """``-log p(y | f) = y softplus(-f) + (1 - y) softplus(f)``.

    Labels 0 and 1 take a branch: under the fastmath 'reassoc' flag the
    compiler may rewrite the blend as ``b + y (a - b)``, which for ``y = 1``
    cancels ``softplus(f) ~ f`` against itself and loses the tiny
    ``softplus(-f)`` of a confidently right row.
    """
    if y == 1.0:
        return softplus_minus
    if y == 0.0:
        return softplus_plus
    return y * softplus_minus + (1.0 - y) * softplus_plus


def _sigmoid_and_loss(f, y, with_value):
    """``sigmoid(f)`` and ``-log p(y | f)`` (0.0 unless ``with_value``).

    Both from ``exp(-|f|)``, so neither overflows nor cancels.
    """
    e = np.exp(-abs(f))
    q = 1.0 / (1.0 + e)
    p = q if f >= 0.0 else e * q
    if not with_value:
        return p, 0.0
    small = np.log1p(e)
    if f >= 0.0:
        return p, _negative_log_likelihood(y, small, f + small)
    return p, _negative_log_likelihood(y, small - f, small)


def _add_block_gram(X, scale, start, stop, buffer, gram, intercept):
    """``gram += B' B`` with ``B[i] = scale[i] * [X[start + i], 1]`` for one row block.

    The trailing 1 (an implicit intercept column) only when ``intercept``.
    """
    d = X.shape[1]
    m = stop - start
    for i in range(m):
        s = scale[start + i]
        for j in range(d):
            buffer[i, j] = s * X[start + i, j]
        if intercept:
            buffer[i, d] = s
    block = buffer[:m]
    gram += np.dot(block.T, block)


def _weighted_gram_kernel(X, weights, intercept, gram):
    """``gram += X' diag(weights) X`` by row blocks; ``weights >= 0``.

    With ``intercept``, ``X`` stands for ``[X, 1]`` without building it.
    """
    n, d = X.shape
    n_params = d + 1 if intercept else d
    scale = np.sqrt(weights)
    buffer = np.empty((BLOCK_ROWS, n_params))
    for start in range(0, n, BLOCK_ROWS):
        _add_block_gram(
            X, scale, start, min(start + BLOCK_ROWS, n), buffer, gram, intercept
        )
    for j in range(n_params):
        if not np.isfinite(gram[j, j]):
            return STATUS_NOT_FINITE
    return STATUS_OK


def _logistic_terms_kernel(
    X, y, weights, theta, intercept, with_value, vectors, gradient, hessian, out_loglik
):
    """Bernoulli-logit terms at ``theta`` for labels ``y`` in {0, 1}.

    ``out_loglik[0] = sum w (y f - log(1 + e^f))``,
    ``gradient += X' (w (y - p))`` and ``hessian += X' diag(w p (1 - p)) X``
    with ``p = sigmoid(f)``; ``log(1 + e^f)`` and ``p`` are evaluated without
    overflow for any ``f``. With ``intercept``, ``X`` stands for ``[X, 1]``
    (``theta`` has one more entry, the intercept, last) without building it.
    Without ``with_value`` the log-likelihood is skipped (``out_loglik[0] = 0``).
    With ``vectors`` of shape (d + intercept, s), s > 0, ``hessian`` is (d +
    intercept, s) and receives ``X' diag(w p (1 - p)) X vectors`` instead.
    """
    n, d = X.shape
    products = vectors.shape[1] > 0
    n_params = d + 1 if intercept else d
    # Three passes per block, each a simple loop the compiler vectorises: the
    # linear predictors, the per-row scalars, then gradient and scaled rows.
    f = np.empty(BLOCK_ROWS)
    residual = np.empty(BLOCK_ROWS)
    scale = np.empty(BLOCK_ROWS)
    buffer = np.empty((BLOCK_ROWS, n_params))
    loglik = 0.0
    for start in range(0, n, BLOCK_ROWS):
        stop = min(start + BLOCK_ROWS, n)
        m = stop - start
        for i in range(m):
            acc = theta[d] if intercept else 0.0
            for j in range(d):
                acc += X[start + i, j] * theta[j]
            f[i] = acc
        for i in range(m):
            p, loss = _sigmoid_and_loss(f[i], y[start + i], with_value)
            w = weights[start + i]
            loglik -= w * loss
            residual[i] = w * (y[start + i] - p)
            scale[i] = np.sqrt(w * p * (1.0 - p))
        for i in range(m):
            r = residual[i]
            s = scale[i]
            for j in range(d):
                x = X[start + i, j]
                gradient[j] += r * x
                buffer[i, j] = s * x
            if intercept:
                gradient[d] += r
                buffer[i, d] = s
        block = buffer[:m]
        if products:
            hessian += np.dot(block.T, np.dot(block, vectors))
        else:
            hessian += np.dot(block.T, block)
    out_loglik[0] = loglik
    return _terms_status(loglik, gradient, hessian, products)


def _terms_status(loglik, gradient, hessian, products):
    """Whether the summed terms are finite (the diagonal suffices for a Hessian)."""
    if not np.isfinite(loglik):
        return STATUS_NOT_FINITE
    for j in range(gradient.shape[0]):
        if not np.isfinite(gradient[j]):
            return STATUS_NOT_FINITE
        if products:
            for c in range(hessian.shape[1]):
                if not np.isfinite(hessian[j, c]):
                    return STATUS_NOT_FINITE
        elif not np.isfinite(hessian[j, j]):
            return STATUS_NOT_FINITE
    return STATUS_OK


def _expected_logistic_kernel(
    mean, variance, y, nodes, node_weights, value, gradient, curvature
):
    """Per-row Gauss-Hermite expectations of the Bernoulli-logit terms.

    For ``f_i = mean_i + sqrt(variance_i) z``, ``z ~ N(0, 1)``:
    ``value_i = E[log p(y_i | f)]``, ``gradient_i = E[y_i - p]`` and
    ``curvature_i = E[p (1 - p)]``, with ``p = sigmoid(f)`` evaluated without
    overflow for any ``f``. One pass, no (n, nodes) temporaries. Finite
    moments give finite terms; the wrapper checks the moments (a finiteness
    test of the results is not reliable under the fastmath flags).
    """
    n = mean.shape[0]
    n_nodes = nodes.shape[0]
    for i in range(n):
        sd = np.sqrt(max(variance[i], 0.0))
        v = 0.0
        g = 0.0
        c = 0.0
        for k in range(n_nodes):
            f = mean[i] + sd * nodes[k]
            e = np.exp(-abs(f))
            small = np.log1p(e)
            if f >= 0.0:
                p = 1.0 / (1.0 + e)
                softplus_minus, softplus_plus = small, f + small
            else:
                p = e / (1.0 + e)
                softplus_minus, softplus_plus = small - f, small
            w = node_weights[k]
            v -= w * _negative_log_likelihood(y[i], softplus_minus, softplus_plus)
            g += w * (y[i] - p)
            c += w * p * (1.0 - p)
        value[i] = v
        gradient[i] = g
        curvature[i] = c
    return STATUS_OK


def _sparse_row_gram(data, indices, lo, hi, s, intercept, d, gram):
    """Add ``s [x, 1] [x, 1]'`` of one CSR row to the upper triangle of ``gram``.

    Pairs ``(a, b)`` of stored entries go to ``(min, max)`` of their columns;
    a repeated column (unsummed duplicates) meets itself off the diagonal of
    the pair loop and counts twice there, as ``(x_a + x_b)^2`` needs.
    """
    for a in range(lo, hi):
        ja = indices[a]
        va = s * data[a]
        gram[ja, ja] += va * data[a]
        for b in range(a + 1, hi):
            jb = indices[b]
            v = va * data[b]
            if ja < jb:
                gram[ja, jb] += v
            elif jb < ja:
                gram[jb, ja] += v
            else:
                gram[ja, ja] += 2.0 * v
        if intercept:
            gram[ja, d] += va
    if intercept:
        gram[d, d] += s


def _mirror_upper(gram):
    """Copy the upper triangle of a square matrix onto its lower one, in place."""
    n = gram.shape[0]
    for i in range(n):
        for j in range(i + 1, n):
            gram[j, i] = gram[i, j]


def _sparse_weighted_gram_kernel(data, indices, indptr, weights, intercept, gram):
    """``gram = X' diag(weights) X`` of a CSR matrix (``gram`` zero on entry).

    O(sum of squared row counts) work; ``X`` is never densified.
    """
    n = indptr.shape[0] - 1
    d = gram.shape[0] - 1 if intercept else gram.shape[0]
    for i in range(n):
        _sparse_row_gram(
            data, indices, indptr[i], indptr[i + 1], weights[i], intercept, d, gram
        )
    _mirror_upper(gram)
    for j in range(gram.shape[0]):
        if not np.isfinite(gram[j, j]):
            return STATUS_NOT_FINITE
    return STATUS_OK


def _sparse_logistic_terms_kernel(
    data,
    indices,
    indptr,
    y,
    weights,
    theta,
    intercept,
    with_value,
    vectors,
    gradient,
    hessian,
    out_loglik,
):
    """:func:`_logistic_terms_kernel` for a CSR matrix (``hessian`` zero on entry).

    Row ``i`` has its values ``data[indptr[i]:indptr[i + 1]]`` in the columns
    ``indices[...]``; the terms are the dense kernel's, summed in another order.
    """
    n = indptr.shape[0] - 1
    d = gradient.shape[0] - 1 if intercept else gradient.shape[0]
    products = vectors.shape[1] > 0
    projected = np.empty(vectors.shape[1])
    loglik = 0.0
    for i in range(n):
        lo, hi = indptr[i], indptr[i + 1]
        fi = theta[d] if intercept else 0.0
        for a in range(lo, hi):
            fi += data[a] * theta[indices[a]]
        p, loss = _sigmoid_and_loss(fi, y[i], with_value)
        w = weights[i]
        loglik -= w * loss
        r = w * (y[i] - p)
        for a in range(lo, hi):
            gradient[indices[a]] += r * data[a]
        if intercept:
            gradient[d] += r
        if products:
            _sparse_row_product(
                data,
                indices,
                lo,
                hi,
                w * p * (1.0 - p),
                intercept,
                d,
                vectors,
                projected,
                hessian,
            )
        else:
            _sparse_row_gram(
                data, indices, lo, hi, w * p * (1.0 - p), intercept, d, hessian
            )
    if not products:
        _mirror_upper(hessian)
    out_loglik[0] = loglik
    return _terms_status(loglik, gradient, hessian, products)


def _sparse_row_product(data, indices, lo, hi, s, intercept, d, vectors, projected, out):
    """Add ``s [x, 1] ([x, 1]' vectors)`` of one CSR row to ``out`` (p, s)."""
    for c in range(vectors.shape[1]):
        acc = vectors[d, c] if intercept else 0.0
        for a in range(lo, hi):
            acc += data[a] * vectors[indices[a], c]
        projected[c] = s * acc
    for a in range(lo, hi):
        for c in range(vectors.shape[1]):
            out[indices[a], c] += data[a] * projected[c]
    if intercept:
        for c in range(vectors.shape[1]):
            out[d, c] += projected[c]


_negative_log_likelihood = jit(_negative_log_likelihood)
_sigmoid_and_loss = jit(_sigmoid_and_loss)
_sparse_row_gram = jit(_sparse_row_gram)
_sparse_row_product = jit(_sparse_row_product)
_terms_status = jit(_terms_status)
_mirror_upper = jit(_mirror_upper)
_sparse_weighted_gram_kernel = jit(_sparse_weighted_gram_kernel)
_sparse_logistic_terms_kernel = jit(_sparse_logistic_terms_kernel)
_add_block_gram = jit(_add_block_gram)
_expected_logistic_kernel = jit(_expected_logistic_kernel)
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


def _as_csr(X):
    """A float64 CSR matrix with contiguous arrays: the sparse kernels read rows."""
    X = sparse.csr_matrix(X) if X.format != "csr" else X
    data = np.ascontiguousarray(X.data, dtype=np.float64)
    indices = np.ascontiguousarray(X.indices)
    indptr = np.ascontiguousarray(X.indptr)
    return X.shape, data, indices, indptr


def weighted_gram(X, weights, intercept=False):
    """Return ``X' diag(weights) X`` without an n x d temporary.

    Parameters
    ----------
    X : array-like or sparse matrix of shape (n, d)
        A scipy.sparse matrix is read row by row in CSR form (CSC and others
        are converted), never densified; the result is dense.
    weights : array-like of shape (n,)
        Non-negative row weights.
    intercept : bool, default=False
        Treat ``X`` as ``[X, 1]`` (an implicit column of ones, never built).

    Returns
    -------
    gram : ndarray of shape (d + intercept, d + intercept)
    """
    if sparse.issparse(X):
        (n, d), data, indices, indptr = _as_csr(X)
    else:
        X = _as_matrix(X)
        n, d = X.shape
    weights = _as_vector(weights, n, "weights")
    if np.any(weights < 0):
        raise ValueError("weights must be non-negative.")
    n_params = d + int(bool(intercept))
    gram = np.zeros((n_params, n_params))
    if sparse.issparse(X):
        status = _sparse_weighted_gram_kernel(
            data, indices, indptr, weights, bool(intercept), gram
        )
    else:
        status = _weighted_gram_kernel(X, weights, bool(intercept), gram)
    _raise_not_finite(status)
    return gram


def logistic_terms(X, y, weights, theta, intercept=False, with_value=True, vectors=None):
    """Log-likelihood, gradient and negative Hessian of weighted logistic rows.

    Parameters
    ----------
    X : array-like or sparse matrix of shape (n, d)
        Design matrix. A scipy.sparse matrix is read row by row in CSR form
        (CSC and others are converted), never densified; the Hessian is dense.
    y : array-like of shape (n,)
        Labels in {0, 1}.
    weights : array-like of shape (n,)
        Non-negative row weights.
    theta : array-like of shape (d + intercept,)
        Parameters at which the terms are evaluated (the intercept last).
    intercept : bool, default=False
        Treat ``X`` as ``[X, 1]``: an intercept column of ones, never built
        (no ``n x d`` copy of the data).
    with_value : bool, default=True
        Compute the log-likelihood; when False it is returned as NaN (one
        ``log1p`` per row less, for callers that need only the derivatives).
    vectors : array-like of shape (d + intercept, s), default=None
        When given, the negative Hessian is only applied to these vectors
        (``O(n d s)``, the Hessian is never formed): a check that needs the
        curvature along a few directions.

    Returns
    -------
    log_likelihood : float
        ``sum w (y f - log(1 + exp(f)))`` with ``f = X @ theta``.
    gradient : ndarray of shape (d + intercept,)
        ``X' (w (y - p))``.
    hessian : ndarray of shape (d + intercept, d + intercept)
        ``X' diag(w p (1 - p)) X`` (the negative Hessian, positive semi-definite);
        with ``vectors``, ``X' diag(w p (1 - p)) X vectors`` of shape
        (d + intercept, s).
    """
    # Checked here rather than by the helpers: this runs once per Newton step
    # and per forget, where a few function calls are a sizeable share.
    if sparse.issparse(X):
        (n, d), *csr = _as_csr(X)
    else:
        csr = None
        X = np.ascontiguousarray(X, dtype=np.float64)
        if X.ndim != 2:
            raise ValueError(f"X must be a 2-D array, got shape {X.shape}.")
        n, d = X.shape
    n_params = d + int(bool(intercept))
    y = np.ascontiguousarray(y, dtype=np.float64)
    weights = np.ascontiguousarray(weights, dtype=np.float64)
    theta = np.ascontiguousarray(theta, dtype=np.float64)
    for name, v, size in (("y", y, n), ("weights", weights, n), ("theta", theta, n_params)):
        if v.shape != (size,):
            raise ValueError(f"{name} must have shape ({size},), got {v.shape}.")
    if np.any(weights < 0):
        raise ValueError("weights must be non-negative.")
    if vectors is None:
        vectors = np.zeros((n_params, 0))
    vectors = np.ascontiguousarray(vectors, dtype=np.float64)
    if vectors.ndim != 2 or vectors.shape[0] != n_params:
        raise ValueError(f"vectors must have shape ({n_params}, s), got {vectors.shape}.")
    gradient = np.zeros(n_params)
    hessian = np.zeros((n_params, vectors.shape[1] or n_params))
    loglik = np.zeros(1)
    options = (bool(intercept), bool(with_value), vectors, gradient, hessian, loglik)
    if csr is None:
        status = _logistic_terms_kernel(X, y, weights, theta, *options)
    else:
        status = _sparse_logistic_terms_kernel(*csr, y, weights, theta, *options)
    if status != STATUS_OK:
        _raise_not_finite(status)
    return (float(loglik[0]) if with_value else np.nan), gradient, hessian


def expected_logistic_terms(mean, variance, y, nodes, node_weights):
    """Per-row expected Bernoulli-logit terms for ``f ~ N(mean, variance)``.

    Parameters
    ----------
    mean, variance : array-like of shape (n,)
        Moments of each row's linear predictor.
    y : array-like of shape (n,)
        Labels in {0, 1}.
    nodes, node_weights : array-like of shape (n_nodes,)
        A rule for ``E[h(z)]``, ``z ~ N(0, 1)`` (Gauss-Hermite or trapezoid).

    Returns
    -------
    value, gradient, curvature : ndarrays of shape (n,)
        ``E[log p(y | f)]``, ``E[y - sigmoid(f)]`` and
        ``E[sigmoid(f) (1 - sigmoid(f))]`` per row.
    """
    mean = np.ascontiguousarray(mean, dtype=np.float64)
    n = mean.shape[0]
    variance = _as_vector(variance, n, "variance")
    y = _as_vector(y, n, "y")
    nodes = np.ascontiguousarray(nodes, dtype=np.float64)
    node_weights = _as_vector(node_weights, nodes.shape[0], "node_weights")
    if not (np.all(np.isfinite(mean)) and np.all(np.isfinite(variance))):
        _raise_not_finite(STATUS_NOT_FINITE)
    value, gradient, curvature = np.empty(n), np.empty(n), np.empty(n)
    status = _expected_logistic_kernel(
        mean, variance, y, nodes, node_weights, value, gradient, curvature
    )
    _raise_not_finite(status)
    return value, gradient, curvature
