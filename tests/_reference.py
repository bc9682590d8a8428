"""Plain NumPy reference implementations the fast code is tested against."""

import warnings

import numpy as np

from sklunlearn.exceptions import UnlearningWarning


def gaussian_kl(m0, S0, m1, S1):
    """KL(N(m0, S0) || N(m1, S1)) with explicit inverses and determinants."""
    d = len(m0)
    S1_inv = np.linalg.inv(S1)
    diff = m1 - m0
    return 0.5 * (
        np.trace(S1_inv @ S0)
        + diff @ S1_inv @ diff
        - d
        + np.linalg.slogdet(S1)[1]
        - np.linalg.slogdet(S0)[1]
    )


def upper_cholesky(A):
    return np.ascontiguousarray(np.linalg.cholesky(A).T)


def rank_k_update(A, X, weights, sign):
    return A + sign * X.T @ (weights[:, None] * X)


def sigmoid(f):
    return 1.0 / (1.0 + np.exp(-f))


def logistic_terms(X, y, w, theta):
    """Weighted Bernoulli-logit log-likelihood, gradient and negative Hessian."""
    f = X @ theta
    p = sigmoid(f)
    log_likelihood = np.sum(w * (y * f - np.logaddexp(0.0, f)))
    return log_likelihood, X.T @ (w * (y - p)), X.T @ np.diag(w * p * (1 - p)) @ X


def logistic_map(X, y, w, alpha, n_iter=100):
    """MAP of the N(0, I / alpha)-prior logistic model by Newton, and its precision."""
    theta = np.zeros(X.shape[1])
    for _ in range(n_iter):
        _, g, H = logistic_terms(X, y, w, theta)
        theta = theta + np.linalg.solve(H + alpha * np.eye(len(theta)), g - alpha * theta)
    H = logistic_terms(X, y, w, theta)[2]
    return theta, H + alpha * np.eye(len(theta))


def expected_logistic_terms(X, y, w, mean, covariance, n_points=64):
    """E[gradient] and E[negative Hessian] of logistic rows, theta ~ N(mean, covariance).

    Per-row Gauss-Hermite quadrature on f = x' theta ~ N(x' mean, x' covariance x).
    """
    nodes, weights = np.polynomial.hermite_e.hermegauss(n_points)
    weights = weights / weights.sum()
    mu = X @ mean
    sd = np.sqrt(np.einsum("ij,jk,ik->i", X, covariance, X))
    p = sigmoid(mu[:, None] + sd[:, None] * nodes)
    g = (y[:, None] - p) @ weights
    c = (p * (1 - p)) @ weights
    return X.T @ (w * g), X.T @ np.diag(w * c) @ X


def self_check_warnings(est, X, y):
    """``est.partial_unfit(X, y)``; the texts of the Laplace self-check's warnings."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        est.partial_unfit(X, y)
    return [
        str(w.message)
        for w in caught
        if w.category is UnlearningWarning
        and "not supported by the forgotten rows' likelihood" in str(w.message)
    ]
