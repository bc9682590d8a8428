"""Plain NumPy reference implementations the fast code is tested against."""

import numpy as np


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
