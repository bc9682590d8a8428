"""Per-row statistics of sparse GP regression and Titsias' collapsed bound.

Everything is expressed in the whitened basis of the inducing values: with
``K_uu = L L'`` (``L`` lower) the features of a row are ``a_i = L^-1 k_u(x_i)``
(shape (m,)), the prior over ``v = L^-1 u`` is N(0, I) and the projected
latent function is ``f_i = a_i' v``. At fixed kernel, inducing points and
noise, the optimal q(v) (Titsias 2009) depends on the data only through the
weighted sums kept in :class:`SparseStatistics`, which add and subtract.
Rows are processed in blocks, so memory is O(b m + m^2) for b rows per block
and never O(n^2).
"""

from typing import NamedTuple

import numpy as np
from scipy import linalg

from ..exceptions import NotPositiveDefiniteError
from ..linear_model._sufficient_statistics import UNIT_ROUNDOFF, LinearStatistics, Mergeable

# Relative jitters tried in turn on the diagonal of K_uu (times the mean of its
# diagonal): the smallest that gives a Cholesky factor is used, so that with
# inducing points at the data the model stays within ~1e-6 of the exact GP.
JITTERS = (1e-8, 1e-6, 1e-4)
# Memory budget (float64 entries) of one block's stacked kernel gradient.
_GRADIENT_BLOCK_ENTRIES = 1_000_000
_VALUE_BLOCK_ROWS = 2048


class InducingFactor(NamedTuple):
    """Factors of the jittered inducing-point kernel matrix.

    Fields
    ------
    cholesky : ndarray of shape (m, m)
        Lower ``L`` with ``L L' = K_uu + jitter * mean(diag K_uu) I``.
    inverse : ndarray of shape (m, m)
        ``L^-1`` (lower). Whitening multiplies by it: a matrix product is as
        accurate here as a triangular solve, and much faster than a
        multi-threaded one on a busy machine.
    jitter : float
        The relative jitter used.
    """

    cholesky: np.ndarray
    inverse: np.ndarray
    jitter: float


def inducing_cholesky(kernel, Z):
    """:class:`InducingFactor` of ``K_uu + jitter mean(diag K_uu) I``.

    ``jitter`` is the first of :data:`JITTERS` for which the factorisation
    succeeds; it depends only on the kernel and ``Z``, so forgetting and
    refitting use the same one.
    """
    Kuu = kernel(Z)
    diagonal = np.diag_indices_from(Kuu)
    scale = np.mean(Kuu[diagonal])
    for jitter in JITTERS:
        jittered = Kuu.copy()
        jittered[diagonal] += jitter * scale
        try:
            L = linalg.cholesky(jittered, lower=True)
        except linalg.LinAlgError:
            continue
        inverse = linalg.solve_triangular(L, np.eye(L.shape[0]), lower=True)
        return InducingFactor(L, inverse, jitter)
    raise NotPositiveDefiniteError(
        "The kernel matrix of the inducing points is not positive definite even "
        f"with a relative jitter of {JITTERS[-1]:g}. Use fewer or more spread-out "
        "inducing points, or a kernel with a shorter length scale."
    )


def whitened_features(kernel, Z, factor, X):
    """``A = L^-1 K(Z, X)``, shape (m, n): column i is ``a_i``."""
    return factor.inverse @ kernel(Z, X)


def _blocks(n, size):
    for start in range(0, n, size):
        yield slice(start, min(start + size, n))


def target_normalization(y_mean, centred_yy, weight_sum, normalize_y):
    """``(mean, std)`` that ``normalize_y`` uses: the weighted mean and standard
    deviation (ddof=0; 1 when zero, as GaussianProcessRegressor), or ``(0, 1)``."""
    if not normalize_y:
        return 0.0, 1.0
    std = np.sqrt(max(centred_yy, 0.0) / weight_sum)
    return y_mean, (std if std > 0 else 1.0)


class SparseStatistics(NamedTuple):
    """Weighted statistics of rows ``(x_i, y_i)`` in the whitened inducing basis.

    They are the linear-model statistics (:class:`LinearStatistics`) of the
    whitened features ``a_i`` and the targets, plus the kernel diagonal, so
    they merge the same way: ``a + b``, ``a - b`` (exact inverses up to
    round-off) and ``sum(parts)``, for chunked or distributed reductions.

    Fields
    ------
    linear : LinearStatistics
        Statistics of ``(a_i, y_i)`` with weights ``w_i``: weight sum, row
        count, means, centred scatter ``sum w (a - a_mean)(a - a_mean)'``,
        centred ``sum w (a - a_mean)(y - y_mean)`` and ``sum w (y - y_mean)^2``,
        with their round-off record.
    kdiag : float
        ``sum w_i k(x_i, x_i)``.
    kdiag_round_off : float
        Estimated round-off error of ``kdiag`` (``u`` times what it absorbed).
    """

    linear: LinearStatistics
    kdiag: float
    kdiag_round_off: float = 0.0

    @classmethod
    def empty(cls, m):
        """Statistics of no rows (the identity of :meth:`merge`)."""
        return cls(LinearStatistics.empty(m), 0.0)

    @classmethod
    def from_data(cls, kernel, Z, factor, X, y, sample_weight):
        """Statistics of rows ``X, y`` with weights; O(n m^2) time, in row blocks."""
        statistics = cls.empty(Z.shape[0])
        for rows in _blocks(X.shape[0], _VALUE_BLOCK_ROWS):
            w = sample_weight[rows]
            A = whitened_features(kernel, Z, factor, X[rows])
            kdiag = float(w @ kernel.diag(X[rows]))
            block = cls(
                LinearStatistics.from_data(A.T, y[rows], w),
                kdiag,
                UNIT_ROUNDOFF * abs(kdiag),
            )
            if block.weight_sum > 0:  # a block of zero weights adds nothing
                statistics = statistics + block
        return statistics

    def merge(self, other, sign=1.0):
        """Statistics of ``self`` plus (``sign=1``) or minus (``sign=-1``) ``other``."""
        return SparseStatistics(
            self.linear.merge(other.linear, sign),
            self.kdiag + sign * other.kdiag,
            self.kdiag_round_off
            + other.kdiag_round_off
            + UNIT_ROUNDOFF * (abs(self.kdiag) + abs(other.kdiag)),
        )

    # a + b, a - b and sum(parts), as every statistics object of the package
    __add__ = Mergeable.__add__
    __radd__ = Mergeable.__radd__
    __sub__ = Mergeable.__sub__

    @property
    def weight_sum(self):
        """``W = sum w_i``."""
        return self.linear.weight_sum

    @property
    def n_rows(self):
        """Number of rows with a non-zero weight."""
        return self.linear.n_rows

    @property
    def aa(self):
        """``A = sum w_i a_i a_i'``, shape (m, m)."""
        return self.linear.gram(fit_intercept=False)[0]

    def normalization(self, normalize_y):
        """``(mean, std)`` of the targets used by the model (``(0, 1)`` without)."""
        linear = self.linear
        return target_normalization(
            linear.y_mean, linear.yy_beyond_round_off(), linear.weight_sum, normalize_y
        )

    def targets(self, normalize_y):
        """``(b, yy)``: ``sum w a_i t_i`` and ``sum w t_i^2`` for model targets ``t``.

        ``t = (y - mean) / std`` with the statistics' own normalisation.
        """
        linear = self.linear
        mean, std = self.normalization(normalize_y)
        shift = linear.y_mean - mean
        W = linear.weight_sum
        b = (linear.xy + W * shift * linear.x_mean) / std
        yy = (linear.yy + W * shift * shift) / std**2
        return b, yy


class OptimalPosterior(NamedTuple):
    """The optimal q(v) and the collapsed bound at fixed hyperparameters.

    Fields
    ------
    precision_cholesky : ndarray of shape (m, m)
        Upper ``R`` with ``P = I + A / s2 = R' R``, ``A = sum w a a'``.
    mean : ndarray of shape (m,)
        ``beta = P^-1 b / s2``, the mean of q(v).
    bound : float
        The collapsed evidence lower bound.
    """

    precision_cholesky: np.ndarray
    mean: np.ndarray
    bound: float


def optimal_posterior(statistics, noise_variance, normalize_y):
    """Optimal q(v) and the collapsed bound (Titsias 2009, eq. 9), weighted.

    ``F = -W/2 log(2 pi s2) - yy/(2 s2) + |R^-T b|^2 / (2 s2^2) - log|R|
    - (sum w k_ii - tr A) / (2 s2)``, where a weight ``w_i`` multiplies the
    log-likelihood of row ``i`` (a weight of 2 counts the row twice).
    """
    s2 = float(noise_variance)
    m = statistics.aa.shape[0]
    b, yy = statistics.targets(normalize_y)
    precision = np.eye(m) + statistics.aa / s2
    try:
        R = linalg.cholesky(precision, lower=False)
    except linalg.LinAlgError as exc:
        raise NotPositiveDefiniteError(
            "The posterior precision of the inducing values is not positive "
            f"definite ({exc}): were the rows being forgotten ever learned?"
        ) from exc
    c = linalg.solve_triangular(R, b, lower=False, trans="T")
    mean = linalg.solve_triangular(R, c, lower=False) / s2
    W = statistics.weight_sum
    bound = (
        -0.5 * W * np.log(2 * np.pi * s2)
        - 0.5 * yy / s2
        + 0.5 * (c @ c) / s2**2
        - np.sum(np.log(np.diag(R)))
        - 0.5 * (statistics.kdiag - np.trace(statistics.aa)) / s2
    )
    return OptimalPosterior(R, mean, float(bound))


def bound_gradient(
    kernel,
    Z,
    factor,
    X,
    t,
    sample_weight,
    statistics,
    posterior,
    noise_variance,
    normalize_y,
):
    """Gradient of the collapsed bound w.r.t. ``kernel.theta`` and ``log s2``.

    With ``Sigma = K_uu + Psi / s2``, ``Psi = K_uf W K_fu``, ``phi = K_uf W t``
    and ``alpha = Sigma^-1 phi = L^-T beta``, the partial derivatives are
    ``dF/dK_uu = L^-T M_K L^-1``, ``dF/dPsi = L^-T M_Psi L^-1`` with
    ``M_K = (I - P^-1 - A/s2 - beta beta'/s2^2) / 2`` and
    ``M_Psi = (I - P^-1 - beta beta'/s2^2) / (2 s2)`` (``beta`` here is
    ``P^-1 b``, i.e. ``s2`` times the posterior mean), ``dF/dK_uf[:, i] =
    w_i L^-T (2 M_Psi a_i + beta t_i / s2^2)`` and ``dF/dk_ii = -w_i / (2 s2)``.
    Kernel derivatives of the cross-covariance come from the kernel evaluated
    on the stacked ``[X_b; Z]`` with ``eval_gradient=True``, block by block.

    Returns
    -------
    gradient : ndarray of shape (len(kernel.theta) + 1,)
    """
    s2 = float(noise_variance)
    m = Z.shape[0]
    R = posterior.precision_cholesky
    b, yy = statistics.targets(normalize_y)
    A = statistics.aa
    beta = s2 * posterior.mean
    R_inv = linalg.solve_triangular(R, np.eye(m), lower=False)
    P_inv = R_inv @ R_inv.T
    outer = np.outer(beta, beta)
    identity = np.eye(m)
    M_K = 0.5 * (identity - P_inv - A / s2 - outer / s2**2)
    M_Psi = 0.5 / s2 * (identity - P_inv - outer / s2**2)

    L_inv = factor.inverse
    G_K = L_inv.T @ M_K @ L_inv
    _, dKuu = kernel(Z, eval_gradient=True)
    n_theta = dKuu.shape[2]
    jitter_gradient = factor.jitter * np.einsum("iip->p", dKuu) / m
    gradient = np.zeros(n_theta + 1)
    gradient[:n_theta] = np.einsum("uv,uvp->p", G_K, dKuu) + np.trace(G_K) * jitter_gradient

    block = max(16, int(np.sqrt(_GRADIENT_BLOCK_ENTRIES / max(n_theta, 1))) - m)
    for rows in _blocks(X.shape[0], block):
        w = sample_weight[rows]
        k = rows.stop - rows.start
        stacked = np.vstack([X[rows], Z])
        K, dK = kernel(stacked, eval_gradient=True)
        a = L_inv @ K[k:, :k]
        D = (L_inv.T @ (2.0 * M_Psi @ a + np.outer(beta, t[rows]) / s2**2)) * w
        gradient[:n_theta] += np.einsum("ui,iup->p", D, dK[:k, k:, :])
        gradient[:n_theta] -= 0.5 / s2 * (w @ np.einsum("iip->ip", dK[:k, :k, :]))

    W = statistics.weight_sum
    d_s2 = (
        -0.5 * W / s2
        + 0.5 * yy / s2**2
        - (b @ beta) / s2**3
        + 0.5 * (beta @ A @ beta) / s2**4
        + 0.5 * np.sum(P_inv * A) / s2**2
        + 0.5 * statistics.kdiag / s2**2
        - 0.5 * np.trace(A) / s2**2
    )
    gradient[n_theta] = s2 * d_s2
    return gradient
