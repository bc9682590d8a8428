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
from scipy.linalg import blas, lapack
from sklearn.gaussian_process.kernels import (
    RBF,
    ConstantKernel,
    DotProduct,
    Exponentiation,
    ExpSineSquared,
    Matern,
    Product,
    RationalQuadratic,
    Sum,
    WhiteKernel,
)

from .._numba._config import jit
from .._numba.stationary import (
    KIND_MATERN_05,
    KIND_MATERN_15,
    KIND_MATERN_25,
    KIND_RBF,
    cross_kernel,
    cross_kernel_gradient,
)
from ..exceptions import NotPositiveDefiniteError
from ..linear_model._sufficient_statistics import UNIT_ROUNDOFF, LinearStatistics, Mergeable

# Relative jitters tried in turn on the diagonal of K_uu (times the mean of its
# diagonal): the smallest that gives a Cholesky factor is used, so that with
# inducing points at the data the model stays as close to the exact GP as it can.
# A jitter j adds about j |K_uu^-1 k_i|^2 / (2 s2) per row to the bound's trace
# term, so a smaller one gives a tighter bound where K_uu is ill-conditioned.
JITTERS = (1e-8, 1e-6, 1e-4)
# Kernels whose derivatives (in theta and Z) are computed in O(b m p) per block.
SUPPORTED_KERNELS = (
    "RBF or Matern (nu 0.5, 1.5, 2.5), isotropic or ARD, optionally times a "
    "ConstantKernel and plus a WhiteKernel"
)
# Memory budget (float64 entries) of one block's stacked kernel gradient.
_GRADIENT_BLOCK_ENTRIES = 1_000_000
_VALUE_BLOCK_ROWS = 2048
# Entries (float64) of one row block's b x m arrays in the bound's sweeps: about
# 1 MiB, so that a block stays in cache from one BLAS call on it to the next.
_BOUND_BLOCK_ENTRIES = 2**17
# Entries one bound evaluation may keep between its two sweeps (128 MiB of float64).
_KEPT_ENTRIES = 2**24


class AbsoluteJitters(tuple):
    """Jitters tried in turn that are added to the diagonal of ``K_uu`` as they are.

    A plain tuple of jitters is relative: each is multiplied by
    ``mean(diag K_uu)``, which moves with the kernel's hyperparameters.
    """

    __slots__ = ()


class GrowingJitters(tuple):
    """Relative jitters tried in turn that grow with the signal-to-noise ratio.

    Each ``j`` adds ``j D (1 + (D / (s2 S))^2)`` to the diagonal of ``K_uu``,
    with ``D = mean(diag K_uu)``, ``s2`` the noise variance and ``S`` =
    :data:`SIGNAL_TO_NOISE_SCALE`. A jitter ``j`` costs about ``j |K_uu^-1
    k_i|^2 / (2 s2)`` nats per row: a relative one, ``D / s2`` times ``j``,
    grows with the signal-to-noise ratio ``D / s2``. Up to ``S`` this one
    costs what ``j`` relative costs; above it, the cost grows as ``(D /
    s2)^3``, which keeps the bound from favouring an interpolation (a noise
    variance at its lower bound) or an ever larger signal variance, as a
    larger relative jitter would. Both ``D`` and ``s2`` are in the targets'
    units squared, so the model is the same for targets in any unit.

    Parameters
    ----------
    values : iterable of float
        The relative jitters ``j``, increasing.
    noise_variance : float or None
        ``s2``; None until the noise variance is known (:func:`with_noise`).
    """

    def __new__(cls, values, noise_variance=None):
        jitters = super().__new__(cls, values)
        jitters.noise_variance = noise_variance
        return jitters


# Signal-to-noise ratio above which GrowingJitters grow, and the power they grow with.
SIGNAL_TO_NOISE_SCALE = 1e6
GROWTH_POWER = 2


def with_noise(jitters, noise_variance):
    """``jitters`` at the noise variance ``noise_variance`` (only
    :class:`GrowingJitters` depend on it)."""
    if isinstance(jitters, GrowingJitters):
        return GrowingJitters(jitters, float(noise_variance))
    return jitters


class InducingFactor(NamedTuple):
    """Factors of the jittered inducing-point kernel matrix.

    Fields
    ------
    cholesky : ndarray of shape (m, m)
        Lower ``L`` with ``L L' = K_uu + jitter * scale I``, ``scale`` being
        ``mean(diag K_uu)`` when ``relative`` (times ``1 + growth`` for
        :class:`GrowingJitters`), else 1.
    inverse : ndarray of shape (m, m)
        ``L^-1`` (lower), for the bound's derivatives in ``K_uu`` and for q(u).
        Whitening solves with ``cholesky`` instead (:func:`whitened_features`):
        a product with ``L^-1`` loses the Nystrom residuals ``k_ii - |a_i|^2``
        where ``K_uu`` is ill-conditioned.
    jitter : float
        The jitter used.
    relative : bool
        Whether ``jitter`` multiplies ``mean(diag K_uu)``.
    cross : cross-covariance or None
        Computes ``K(X, Z)`` for the kernel and ``Z`` factorised (stateless),
        so that whitening rows does not inspect the kernel again; None
        means: from the kernel passed along with the factor.
    growth : float
        ``(D / (s2 S))^2`` of :class:`GrowingJitters`, else 0.
    noise_derivative : float
        Derivative of the jitter added in the noise variance ``s2``:
        ``-2 jitter D growth / s2`` for :class:`GrowingJitters`, else 0.
    """

    cholesky: np.ndarray
    inverse: np.ndarray
    jitter: float
    relative: bool = True
    cross: object = None
    growth: float = 0.0
    noise_derivative: float = 0.0

    @property
    def moving_jitter(self):
        """Derivative of the jitter added in ``mean(diag K_uu)`` (0 for an absolute
        jitter): the part of the jitter that moves with the kernel's hyperparameters."""
        if not self.relative:
            return 0.0
        return self.jitter * (1.0 + (GROWTH_POWER + 1) * self.growth)


def inducing_cholesky(kernel, Z, jitters=JITTERS):
    """:class:`InducingFactor` of ``K_uu + jitter mean(diag K_uu) I``.

    ``jitter`` is the first of ``jitters`` (increasing) for which the
    factorisation succeeds; it depends only on the kernel and ``Z`` (and the
    noise variance for :class:`GrowingJitters`), so forgetting and refitting
    use the same one. :class:`AbsoluteJitters` are added without the factor
    ``mean(diag K_uu)``. The factor carries the cross-covariance of ``kernel``
    and ``Z`` (see :func:`whitened_features`).
    """
    Kuu = kernel(Z)
    diagonal = np.diag_indices_from(Kuu)
    relative = not isinstance(jitters, AbsoluteJitters)
    scale = np.mean(Kuu[diagonal]) if relative else 1.0
    growth = 0.0
    if isinstance(jitters, GrowingJitters):
        growth = (scale / (jitters.noise_variance * SIGNAL_TO_NOISE_SCALE)) ** GROWTH_POWER
    for jitter in jitters:
        jittered = Kuu.copy()
        jittered[diagonal] += jitter * scale * (1.0 + growth)
        try:
            L = linalg.cholesky(jittered, lower=True)
        except linalg.LinAlgError:
            continue
        inverse = linalg.solve_triangular(L, np.eye(L.shape[0]), lower=True)
        cross = _cross_covariance(kernel, Z, fast=True)
        noise_derivative = (
            -GROWTH_POWER * jitter * scale * growth / jitters.noise_variance
            if growth
            else 0.0
        )
        return InducingFactor(L, inverse, jitter, relative, cross, growth, noise_derivative)
    kind = "relative" if relative else "absolute"
    raise NotPositiveDefiniteError(
        "The kernel matrix of the inducing points is not positive definite even "
        f"with a {kind} jitter of {jitters[-1]:g}. Use fewer or more spread-out "
        "inducing points, or a kernel with a shorter length scale."
    )


def whitened_features(kernel, Z, factor, X, independent_rows=True):
    """``A = L^-1 K(Z, X)``, shape (m, n): column i is ``a_i``.

    ``factor`` is :func:`inducing_cholesky`'s of ``kernel`` and ``Z``; the
    cross-covariance it carries computes ``K(Z, X)`` (by the Numba kernels
    for the kernels of :func:`stationary_spec`, by ``kernel`` otherwise).
    With ``independent_rows``, column ``i`` depends on ``x_i`` alone, to the
    last bit, whatever other rows ``X`` holds (:func:`row_independent_cross`,
    :func:`forward_substitution_rows`); without, ``K(Z, X)`` of a kernel
    without a fast path is one call of ``kernel`` (for predictions, which
    need no row to cancel).
    """
    cross = factor.cross
    if cross is None:
        cross = _cross_covariance(kernel, Z, fast=True)
    # Row by row in a fixed order: a row forgotten alone must be whitened to the same
    # bits as when it was learned in a block, or with an ill-conditioned K_uu its
    # statistics do not cancel (a BLAS product rounds a column by the block's shape).
    K = cross.rows(X) if independent_rows else cross.matrix(X)
    return forward_substitution_rows(factor.cholesky, K).T


# Leaves whose K(X, Z) scikit-learn computes entry by entry (scipy's cdist, then
# elementwise functions), so that a row's entries do not depend on the other rows.
_ENTRYWISE_KERNELS = (
    RBF,
    Matern,
    RationalQuadratic,
    ExpSineSquared,
    ConstantKernel,
    WhiteKernel,
)


def row_independent_cross(kernel, X, Z):
    """``kernel(X, Z)`` with row ``i`` a function of ``x_i`` alone, to the last bit.

    scikit-learn's ``DotProduct`` (``np.inner``, a BLAS product) rounds a row
    by the shape of the block it is in: a row forgotten alone then leaves
    ``u |x_i| |z|`` of its features in the statistics, amplified by ``L^-1``.
    Sums, products and powers of kernels are combined entry by entry as
    scikit-learn does; :data:`_ENTRYWISE_KERNELS` are scikit-learn's own,
    ``DotProduct`` is :func:`_dot_rows`; any other kernel (``PairwiseKernel``, a
    subclass, a user's kernel) is called on one row at a time.
    """
    kind = type(kernel)
    if kind in (Sum, Product):
        first = row_independent_cross(kernel.k1, X, Z)
        second = row_independent_cross(kernel.k2, X, Z)
        return first + second if kind is Sum else first * second
    if kind is Exponentiation:
        return row_independent_cross(kernel.kernel, X, Z) ** kernel.exponent
    if kind is DotProduct:
        return _dot_rows(X, Z) + kernel.sigma_0**2
    if kind in _ENTRYWISE_KERNELS:
        return kernel(X, Z)
    rows = [kernel(X[i : i + 1], Z) for i in range(X.shape[0])]
    return np.vstack(rows) if rows else np.empty((0, Z.shape[0]))


@jit(fastmath=False)
def _dot_rows_kernel(X, ZT, out):
    """``out[i, j] = sum_k X[i, k] ZT[k, j]``, summed over ``k`` in order with separate
    IEEE multiplies and adds: the same operations for a row in any block."""
    n, p = X.shape
    for i in range(n):
        row = out[i]
        row[:] = 0.0
        for k in range(p):
            x = X[i, k]
            z = ZT[k]
            for j in range(row.shape[0]):
                row[j] = row[j] + x * z[j]


def _dot_rows(X, Z):
    """``X Z'``, shape (n, m), each row independent of the others (see
    :func:`_dot_rows_kernel`); O(n m p) without BLAS."""
    X = np.ascontiguousarray(X, dtype=np.float64)
    ZT = np.ascontiguousarray(np.asarray(Z, dtype=np.float64).T)
    out = np.empty((X.shape[0], ZT.shape[1]))
    _dot_rows_kernel(X, ZT, out)
    return out


# Rows per tile of the forward substitution: the columns of L it reads stay in cache.
_TILE_ROWS = 16


@jit(fastmath=False)
def _forward_rows_kernel(K, upper, out):
    """``out[r] = L^-1 K[r]`` by column-oriented forward substitution, each row alone.

    ``upper = L'`` (C-ordered), so ``upper[j, j:]`` is column ``j`` of ``L`` from
    its diagonal down. Per row, four unknowns ``x_j..x_j+3`` are solved in turn
    and then subtracted from the rest as ``(((o - l_j x_j) - l_j+1 x_j+1) - ...)``
    with separate IEEE multiplies and adds (no fused multiply-add): the same
    operations in the same order for a row in any tile or block, alone or in a
    pair (two rows share the loads of ``L``).
    """
    n, m = K.shape
    out[:] = K
    for start in range(0, n, _TILE_ROWS):
        stop = min(start + _TILE_ROWS, n)
        j = 0
        while j + 4 <= m:
            w0, w1 = upper[j, j + 4 :], upper[j + 1, j + 4 :]
            w2, w3 = upper[j + 2, j + 4 :], upper[j + 3, j + 4 :]
            # the 4 x 4 triangle of L at j: its columns below the diagonal, then
            # its diagonal
            l10, l20, l30 = upper[j, j + 1], upper[j, j + 2], upper[j, j + 3]
            l21, l31, l32 = upper[j + 1, j + 2], upper[j + 1, j + 3], upper[j + 2, j + 3]
            # reciprocals of the diagonal: a multiply instead of a division per unknown
            d0, d1 = 1.0 / upper[j, j], 1.0 / upper[j + 1, j + 1]
            d2, d3 = 1.0 / upper[j + 2, j + 2], 1.0 / upper[j + 3, j + 3]
            r = start
            while r + 2 <= stop:
                # two rows at a time share the loads of L's columns
                o, p = out[r, j:], out[r + 1, j:]
                x0, y0 = o[0] * d0, p[0] * d0
                x1, y1 = (o[1] - l10 * x0) * d1, (p[1] - l10 * y0) * d1
                x2 = ((o[2] - l20 * x0) - l21 * x1) * d2
                y2 = ((p[2] - l20 * y0) - l21 * y1) * d2
                x3 = (((o[3] - l30 * x0) - l31 * x1) - l32 * x2) * d3
                y3 = (((p[3] - l30 * y0) - l31 * y1) - l32 * y2) * d3
                o[0], o[1], o[2], o[3] = x0, x1, x2, x3
                p[0], p[1], p[2], p[3] = y0, y1, y2, y3
                rest, other = out[r, j + 4 :], out[r + 1, j + 4 :]
                for u in range(rest.shape[0]):
                    a, b, c, d = w0[u], w1[u], w2[u], w3[u]
                    rest[u] = (((rest[u] - a * x0) - b * x1) - c * x2) - d * x3
                    other[u] = (((other[u] - a * y0) - b * y1) - c * y2) - d * y3
                r += 2
            if r < stop:
                o = out[r, j:]
                x0 = o[0] * d0
                x1 = (o[1] - l10 * x0) * d1
                x2 = ((o[2] - l20 * x0) - l21 * x1) * d2
                x3 = (((o[3] - l30 * x0) - l31 * x1) - l32 * x2) * d3
                o[0], o[1], o[2], o[3] = x0, x1, x2, x3
                rest = out[r, j + 4 :]
                for u in range(rest.shape[0]):
                    t = ((rest[u] - w0[u] * x0) - w1[u] * x1) - w2[u] * x2
                    rest[u] = t - w3[u] * x3
            j += 4
        while j < m:
            w, d = upper[j, j + 1 :], 1.0 / upper[j, j]
            for r in range(start, stop):
                x = out[r, j] * d
                out[r, j] = x
                rest = out[r, j + 1 :]
                for u in range(rest.shape[0]):
                    rest[u] -= w[u] * x
            j += 1


def forward_substitution_rows(cholesky, K):
    """``K @ L^-T`` for a lower-triangular ``L``, each row solved on its own.

    Forward substitution with the Cholesky factor, not a product with ``L^-1``:
    it is backward stable, so a row's Nystrom residual ``k_ii - |a_i|^2`` is
    computed to about ``m u k_ii`` (Higham 2002, Thm. 8.5 and 10.3), where a
    product with an explicit inverse errs by about ``u |L^-1|^2 |k_i|^2``, which
    is ``1e-7`` for an ``L`` of condition ``1e7`` and exceeds the residual it
    is subtracted from (predictive variances clipped to 0, a bound above the
    exact evidence).

    Parameters
    ----------
    cholesky : ndarray of shape (m, m)
        Lower triangular ``L`` (the strict upper triangle is not read).
    K : ndarray of shape (n, m)

    Returns
    -------
    out : ndarray of shape (n, m), C-contiguous
        ``out[r] = L^-1 K[r]``; bit-for-bit the same for a row whatever other
        rows ``K`` holds.
    """
    K = np.ascontiguousarray(K, dtype=np.float64)
    m = cholesky.shape[0]
    if K.ndim != 2 or K.shape[1] != m:
        raise ValueError(f"K must be 2-D with {m} columns, got shape {K.shape}.")
    out = np.empty(K.shape)
    _forward_rows_kernel(K, np.ascontiguousarray(np.tril(cholesky).T), out)
    return out


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
        statistics = None
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
                # The first block is the sum: adding it to no rows is exact.
                statistics = block if statistics is None else statistics + block
        return cls.empty(Z.shape[0]) if statistics is None else statistics

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

    @property
    def aa_diagonal(self):
        """The diagonal of :attr:`aa`, shape (m,), without forming ``A``."""
        linear = self.linear
        return np.diag(linear.xx) + linear.weight_sum * (linear.x_mean * linear.x_mean)

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
    b, yy = statistics.targets(normalize_y)
    return _collapsed(
        statistics.aa, b, yy, statistics.kdiag, statistics.weight_sum, noise_variance
    )


def _collapsed(aa, b, yy, kdiag, weight_sum, noise_variance):
    """:class:`OptimalPosterior` from the raw sums (see :func:`optimal_posterior`)."""
    s2 = float(noise_variance)
    precision = np.eye(aa.shape[0]) + aa / s2
    try:
        R = linalg.cholesky(precision, lower=False, check_finite=False)
    except linalg.LinAlgError as exc:
        raise NotPositiveDefiniteError(
            "The posterior precision of the inducing values is not positive "
            f"definite ({exc}): were the rows being forgotten ever learned?"
        ) from exc
    c = linalg.solve_triangular(R, b, lower=False, trans="T", check_finite=False)
    mean = linalg.solve_triangular(R, c, lower=False, check_finite=False) / s2
    bound = (
        -0.5 * weight_sum * np.log(2 * np.pi * s2)
        - 0.5 * yy / s2
        + 0.5 * (c @ c) / s2**2
        - np.sum(np.log(np.diag(R)))
        - 0.5 * (kdiag - np.trace(aa)) / s2
    )
    return OptimalPosterior(R, mean, float(bound))


# ------------------------------------------------- kernels with fast derivatives
_MATERN_KINDS = {0.5: KIND_MATERN_05, 1.5: KIND_MATERN_15, 2.5: KIND_MATERN_25}


class StationarySpec(NamedTuple):
    """A kernel ``C * g(r) [+ WhiteKernel]`` that has analytic O(b m p) derivatives.

    Fields
    ------
    kind : int
        The shape ``g`` (a ``KIND_*`` constant of ``sklunlearn._numba.stationary``).
    variance : float
        ``ConstantKernel``'s value (1 without one).
    length_scales : ndarray of shape (n_features,)
        Per-feature length scales (repeated when isotropic).
    white : float
        ``WhiteKernel``'s noise level (0 without one).
    variance_index, length_index, white_index : int or None
        Position in ``kernel.theta`` of ``log variance``, of the first
        ``log length_scale`` and of ``log white``; None when fixed or absent.
    isotropic : bool
        One length scale for all features.
    """

    kind: int
    variance: float
    length_scales: np.ndarray
    white: float
    variance_index: int | None
    length_index: int | None
    white_index: int | None
    isotropic: bool


def _theta_leaves(kernel):
    """Leaves of a Sum/Product kernel in the order of ``kernel.theta``."""
    if isinstance(kernel, (Sum, Product)):
        return _theta_leaves(kernel.k1) + _theta_leaves(kernel.k2)
    return [kernel]


def _split(kernel, operator, leaf_type):
    """``(leaf, rest)`` when ``kernel`` is ``leaf operator rest`` in either order."""
    if type(kernel) is operator:
        if type(kernel.k1) is leaf_type:
            return kernel.k1, kernel.k2
        if type(kernel.k2) is leaf_type:
            return kernel.k2, kernel.k1
    return None, kernel


def stationary_spec(kernel, n_features):
    """:class:`StationarySpec` of ``kernel``, or None when it has another form.

    Recognised: RBF or Matern (nu 0.5, 1.5, 2.5) with isotropic or per-feature
    length scales, optionally times a ConstantKernel, optionally plus a
    WhiteKernel; any of their hyperparameters may be fixed.
    """
    white_kernel, main = _split(kernel, Sum, WhiteKernel)
    constant, shape = _split(main, Product, ConstantKernel)
    if type(shape) is RBF:
        kind = KIND_RBF
    elif type(shape) is Matern and float(shape.nu) in _MATERN_KINDS:
        kind = _MATERN_KINDS[float(shape.nu)]
    else:
        return None
    length_scales = np.atleast_1d(np.asarray(shape.length_scale, dtype=np.float64))
    if length_scales.size not in (1, n_features) or length_scales.ndim != 1:
        return None
    offsets, position = {}, 0
    for leaf in _theta_leaves(kernel):
        offsets[id(leaf)] = position if leaf.n_dims else None
        position += leaf.n_dims
    return StationarySpec(
        kind=kind,
        variance=1.0 if constant is None else float(constant.constant_value),
        length_scales=np.broadcast_to(length_scales, (n_features,)).copy(),
        white=0.0 if white_kernel is None else float(white_kernel.noise_level),
        variance_index=None if constant is None else offsets[id(constant)],
        length_index=offsets[id(shape)],
        white_index=None if white_kernel is None else offsets[id(white_kernel)],
        isotropic=length_scales.size == 1,
    )


class _StationaryCross:
    """Cross-covariance blocks ``K(X_b, Z)`` and their contracted derivatives,
    computed by the Numba kernels of :mod:`sklunlearn._numba.stationary`."""

    def __init__(self, spec, Z, n_theta):
        self.spec, self.Z, self.n_theta = spec, Z, n_theta
        self.inverse_length_scales = 1.0 / spec.length_scales

    def matrix(self, X, out=None):
        """``K(X, Z)``, written into ``out`` (C-contiguous (b, m)) when given."""
        spec = self.spec
        return cross_kernel(
            X, self.Z, self.inverse_length_scales, spec.variance, spec.kind, out
        )

    def rows(self, X):
        """``K(X, Z)``; each entry is computed on its own (row-independent)."""
        return self.matrix(X)

    def diagonal_sum(self, X, weights):
        """``sum w_i k(x_i, x_i)`` over rows ``X``: the diagonal is constant."""
        return float(np.sum(weights)) * (self.spec.variance + self.spec.white)

    def _theta_gradient(self, d_log_variance, d_length, d_log_white):
        spec = self.spec
        gradient = np.zeros(self.n_theta)
        if spec.variance_index is not None:
            gradient[spec.variance_index] += d_log_variance
        if spec.length_index is not None:
            if spec.isotropic:
                gradient[spec.length_index] += np.sum(d_length)
            else:
                gradient[spec.length_index : spec.length_index + d_length.size] += d_length
        if spec.white_index is not None:
            gradient[spec.white_index] += d_log_white
        return gradient

    def gradient(self, X, K, base, weights, t, gamma, diagonal, with_inducing):
        """Derivatives (theta, Z) of ``sum_iu C[i, u] K[i, u] + sum_i c_i k(x_i, x_i)``
        with ``C = diag(w) (base + t gamma')`` and ``c = diagonal``."""
        spec = self.spec
        d_log_variance, d_length, d_Z = cross_kernel_gradient(
            X,
            self.Z,
            self.inverse_length_scales,
            spec.kind,
            K,
            base,
            weights,
            t,
            gamma,
            with_inducing,
        )
        c = float(np.sum(diagonal))
        theta = self._theta_gradient(
            d_log_variance + c * spec.variance, d_length, c * spec.white
        )
        return theta, d_Z

    def inducing_gradient(self, coefficients, jitter, with_inducing):
        """Derivatives of ``sum G (K_ZZ + jitter mean(diag K_ZZ) I)`` for symmetric G."""
        spec, Z = self.spec, self.Z
        K = self.matrix(Z)
        d_log_variance, d_length, d_Z = cross_kernel_gradient(
            Z,
            Z,
            self.inverse_length_scales,
            spec.kind,
            K,
            coefficients,
            with_inducing=with_inducing,
        )
        trace = float(np.trace(coefficients))
        theta = self._theta_gradient(
            d_log_variance + jitter * trace * spec.variance,
            d_length,
            (1.0 + jitter) * trace * spec.white,
        )
        # K_ZZ[u, v] moves with both z_u and z_v: twice the second-argument part.
        return theta, (None if d_Z is None else 2.0 * d_Z)


class _GeneralCross:
    """The same for any scikit-learn kernel, from its ``eval_gradient`` on the
    stacked ``[X_b; Z]`` (O((b + m)^2 p) per block); no derivative in Z."""

    def __init__(self, kernel, Z, n_theta):
        self.kernel, self.Z, self.n_theta = kernel, Z, n_theta

    def matrix(self, X, out=None):
        if out is None:
            return self.kernel(X, self.Z)
        out[...] = self.kernel(X, self.Z)
        return out

    def rows(self, X):
        """``K(X, Z)`` whose row ``i`` depends on ``x_i`` alone, to the last bit."""
        return row_independent_cross(self.kernel, X, self.Z)

    def diagonal_sum(self, X, weights):
        return float(weights @ self.kernel.diag(X))

    def gradient(self, X, K, base, weights, t, gamma, diagonal, with_inducing):
        k = X.shape[0]
        _, dK = self.kernel(np.vstack([X, self.Z]), eval_gradient=True)
        coefficients = weights[:, None] * (base + np.outer(t, gamma))
        theta = np.einsum("iu,iup->p", coefficients, dK[:k, k:, :])
        theta += diagonal @ np.einsum("iip->ip", dK[:k, :k, :])
        return theta, None

    def inducing_gradient(self, coefficients, jitter, with_inducing):
        _, dKuu = self.kernel(self.Z, eval_gradient=True)
        jitter_gradient = jitter * np.einsum("iip->p", dKuu) / dKuu.shape[0]
        theta = np.einsum("uv,uvp->p", coefficients, dKuu)
        return theta + np.trace(coefficients) * jitter_gradient, None

    def block_rows(self):
        m = self.Z.shape[0]
        return max(16, int(np.sqrt(_GRADIENT_BLOCK_ENTRIES / max(self.n_theta, 1))) - m)


def _cross_covariance(kernel, Z, fast):
    n_theta = kernel.theta.shape[0]
    spec = stationary_spec(kernel, Z.shape[1]) if fast else None
    if spec is None:
        return _GeneralCross(kernel, Z, n_theta)
    return _StationaryCross(spec, Z, n_theta)


class BoundEvaluation(NamedTuple):
    """The collapsed bound with its gradient.

    Fields
    ------
    bound : float
    gradient : ndarray of shape (len(kernel.theta) + 1,)
        W.r.t. ``kernel.theta`` and ``log s2``.
    inducing_gradient : ndarray of shape (m, n_features) or None
        W.r.t. the inducing locations ``Z``, when requested.
    """

    bound: float
    gradient: np.ndarray
    inducing_gradient: np.ndarray | None


def supports_inducing_gradient(kernel, n_features):
    """Whether :func:`collapsed_bound` can differentiate w.r.t. ``Z`` for ``kernel``."""
    return stationary_spec(kernel, n_features) is not None


def collapsed_bound(
    kernel,
    Z,
    X,
    t,
    weights,
    noise_variance,
    *,
    with_inducing=False,
    jitters=JITTERS,
    fast=True,
):
    """Collapsed bound (Titsias 2009) of targets ``t`` and its analytic gradient.

    Two sweeps over the rows in blocks: the first accumulates the whitened
    sums ``A = sum w a a'``, ``b = sum w t a``, ``sum w t^2`` and
    ``sum w k_ii``; after the O(m^3) solve, the second contracts each block's
    cross-covariance derivatives with the bound's partial derivative in
    ``K(X_b, Z)``, which needs the solve. For the kernels of
    :func:`stationary_spec` (unless ``fast=False``) that contraction is
    O(b m p) in a Numba kernel; other kernels use their ``eval_gradient``.
    ``K_uu`` is jittered as in :func:`inducing_cholesky` with ``jitters``.

    With ``Sigma = K_uu + Psi / s2``, ``Psi = K_uf W K_fu``, ``phi = K_uf W t``,
    ``K_uu = L L'`` and ``beta = P^-1 b`` (``P = I + A / s2``), the partial
    derivatives are ``dF/dK_uu = L^-T M_K L^-1``, ``dF/dPsi = L^-T M_Psi
    L^-1`` with ``M_K = (I - P^-1 - A/s2 - beta beta'/s2^2) / 2`` and
    ``M_Psi = (I - P^-1 - beta beta'/s2^2) / (2 s2)``, so
    ``dF/dK(x_i, Z) = w_i (2 L^-T M_Psi L^-1 k_i + L^-T beta t_i / s2^2)``,
    and ``dF/dk_ii = -w_i / (2 s2)``.

    Returns
    -------
    evaluation : BoundEvaluation
    """
    setup = bound_setup(kernel, Z, with_inducing=with_inducing, jitters=jitters, fast=fast)
    # The first sweep's blocks are kept for the second within the budget: the
    # whitened features first (they save a triangular solve per block), then
    # K(X_b, Z).
    entries = X.shape[0] * Z.shape[0]
    aa, b, yy, kdiag, kept = _whitened_sums(
        setup.cross,
        setup.factor,
        X,
        t,
        weights,
        setup.block,
        keep_features=entries <= _KEPT_ENTRIES,
        keep_matrix=2 * entries <= _KEPT_ENTRIES,
    )
    sums = BoundSums(aa, b, yy, kdiag, float(np.sum(weights)))
    posterior, partial, start = bound_partials(setup, sums, noise_variance)
    theta_gradient, Z_gradient = gradient_sweep(
        setup, X, t, weights, partial, noise_variance, start, kept
    )
    gradient = np.append(theta_gradient, float(noise_variance) * partial.d_s2)
    return BoundEvaluation(posterior.bound, gradient, Z_gradient)


class BoundSetup(NamedTuple):
    """What both sweeps of :func:`collapsed_bound` share at one set of hyperparameters.

    Fields
    ------
    cross : cross-covariance
        Computes ``K(X_b, Z)`` and its contracted derivatives.
    factor : InducingFactor
    block : int
        Rows per block.
    with_inducing : bool
        Whether derivatives in ``Z`` are computed.
    """

    cross: object
    factor: InducingFactor
    block: int
    with_inducing: bool


def bound_setup(kernel, Z, *, with_inducing=False, jitters=JITTERS, fast=True):
    """:class:`BoundSetup` of ``kernel`` and ``Z`` (see :func:`collapsed_bound`)."""
    factor = inducing_cholesky(kernel, Z, jitters)
    cross = factor.cross if fast else _cross_covariance(kernel, Z, fast)
    if with_inducing and isinstance(cross, _GeneralCross):
        raise ValueError(
            f"Inducing locations can only be optimised for {SUPPORTED_KERNELS}, "
            f"got {kernel}."
        )
    if isinstance(cross, _GeneralCross):
        block = cross.block_rows()
    else:
        block = max(64, _BOUND_BLOCK_ENTRIES // Z.shape[0])
    return BoundSetup(cross, factor, block, with_inducing)


class BoundSums(NamedTuple):
    """The first sweep's sums: ``sum w a a'``, ``sum w t a``, ``sum w t^2``,
    ``sum w k_ii`` and ``sum w``. A plain tuple of them adds elementwise."""

    aa: np.ndarray
    b: np.ndarray
    yy: float
    kdiag: float
    weight_sum: float


def bound_sums(setup, X, t, weights):
    """The first sweep of :func:`collapsed_bound` over rows ``X`` (one chunk of them).

    Returns a plain tuple, the fields of :class:`BoundSums`, so that the
    chunks' sums add elementwise.
    """
    aa, b, yy, kdiag, _ = _whitened_sums(
        setup.cross, setup.factor, X, t, weights, setup.block
    )
    return (aa, b, yy, kdiag, float(np.sum(weights)))


def bound_partials(setup, sums, noise_variance):
    """The solve between the sweeps: ``(posterior, partials, start)``.

    ``start`` is the gradient's ``K_uu`` part, ``(theta, Z or None)``, to
    which :func:`gradient_sweep` adds the rows' parts.
    """
    s2 = float(noise_variance)
    sums = BoundSums(*sums)
    posterior = _collapsed(sums.aa, sums.b, sums.yy, sums.kdiag, sums.weight_sum, s2)
    partial = _partial_derivatives(*sums, posterior, s2, setup.factor)
    start = setup.cross.inducing_gradient(
        partial.d_Kuu, setup.factor.moving_jitter, setup.with_inducing
    )
    return posterior, partial, start


def gradient_sweep(setup, X, t, weights, partial, noise_variance, start, kept=None):
    """The second sweep of :func:`collapsed_bound`: ``start`` plus the rows' parts.

    ``start`` is ``(theta, Z or None)`` (zeros for one chunk of a sum over
    chunks); ``kept`` what the first sweep kept (:class:`_Kept`), if anything.
    """
    cross, factor, with_inducing = setup.cross, setup.factor, setup.with_inducing
    theta_gradient, Z_gradient = start
    kept = _Kept(None, None) if kept is None else kept
    s2 = float(noise_variance)
    twice_whitened = 2.0 * partial.d_Psi_whitened
    for rows in _blocks(X.shape[0], setup.block):
        w = weights[rows]
        root = np.sqrt(w)
        K = cross.matrix(X[rows]) if kept.matrix is None else kept.matrix[rows]
        if kept.features is None:
            features = _scaled_features(factor.cholesky, K, root)
        else:
            features = kept.features[:, rows]
        # Through the whitened features (L^-1 K')' as the bound has them: K (L^-T M L^-1)
        # loses the rows' part that cancels the K_uu part where K_uu is ill-conditioned.
        # The same features as the first sweep's, to the last bit: the cancellation
        # leaves only what the two sweeps agree on. With x_i = root_i a_i, the
        # coefficient w_i (2 a_i' M L^-1 + t_i gamma') is root_i (x_i' 2 M L^-1
        # + root_i t_i gamma').
        theta, d_Z = cross.gradient(
            X[rows],
            K,
            features.T @ twice_whitened,
            root,
            root * t[rows],
            partial.d_phi,
            -0.5 / s2 * w,
            with_inducing,
        )
        theta_gradient += theta
        if with_inducing:
            Z_gradient += d_Z
    return theta_gradient, Z_gradient


class _Kept(NamedTuple):
    """What the first sweep of :func:`collapsed_bound` keeps for the second.

    Each is one array for all rows, allocated at once: a large allocation gets
    huge pages, where many block-sized ones would each fault in page by page of
    4 KiB. A block is a contiguous slice of it.

    Fields
    ------
    matrix : ndarray of shape (n, m) or None
        ``K(X, Z)``, C-ordered; None when not kept.
    features : ndarray of shape (m, n) or None
        :func:`_scaled_features` of every block, Fortran-ordered; None when not kept.
    """

    matrix: np.ndarray | None
    features: np.ndarray | None


def _scaled_features(cholesky, K, root, out=None):
    """``L^-1 (diag(root) K)'``, shape (m, b), Fortran-ordered: column i is
    ``root_i a_i``, the whitened features scaled by the root of the weights, so
    that ``sum w a a'`` is their symmetric rank-k update. Written into ``out``
    (Fortran-ordered (m, b)) when given."""
    scaled = np.multiply(K, root[:, None], out=None if out is None else out.T)
    # scaled' is Fortran-ordered: the triangular solve overwrites it.
    return blas.dtrsm(1.0, cholesky, scaled.T, lower=1, overwrite_b=1)


def _whitened_sums(
    cross, factor, X, t, weights, block, keep_features=False, keep_matrix=False
):
    """``(A, b, yy, kdiag, kept)``: ``sum w a a'``, ``sum w t a``, ``sum w t^2`` and
    ``sum w k_ii`` with ``a_i = L^-1 k(Z, x_i)``, one block at a time, and
    :class:`_Kept` (the features when ``keep_features``, ``K(X, Z)`` when
    ``keep_matrix``)."""
    n, m = X.shape[0], factor.cholesky.shape[0]
    kept = _Kept(
        np.empty((n, m)) if keep_matrix else None,
        np.empty((m, n), order="F") if keep_features else None,
    )
    # Only the upper triangle is accumulated by the rank-k updates, in place.
    aa, b = np.zeros((m, m), order="F"), np.zeros(m)
    yy = kdiag = 0.0
    for rows in _blocks(n, block):
        w = weights[rows]
        root = np.sqrt(w)
        K = cross.matrix(X[rows], None if kept.matrix is None else kept.matrix[rows])
        features = _scaled_features(
            factor.cholesky,
            K,
            root,
            None if kept.features is None else kept.features[:, rows],
        )
        aa = blas.dsyrk(1.0, features, beta=1.0, c=aa, overwrite_c=1)
        b += features @ (root * t[rows])
        yy += float(w @ t[rows] ** 2)
        kdiag += cross.diagonal_sum(X[rows], w)
    upper = np.triu(aa)
    return upper + np.triu(upper, 1).T, b, yy, kdiag, kept


class _Partials(NamedTuple):
    """Partial derivatives of the bound (see :func:`collapsed_bound`).

    Fields
    ------
    d_Kuu : ndarray of shape (m, m)
        ``dF/dK_uu = L^-T M_K L^-1``.
    d_phi : ndarray of shape (m,)
        ``dF/dphi = L^-T beta / s2^2``.
    d_s2 : float
        ``dF/ds2``.
    d_Psi_whitened : ndarray of shape (m, m)
        ``M_Psi L^-1``, so that ``dF/dPsi = L^-T d_Psi_whitened``: the rows'
        part contracts the whitened features ``(L^-1 K(Z, X_b))'`` with it.
    """

    d_Kuu: np.ndarray
    d_phi: np.ndarray
    d_s2: float
    d_Psi_whitened: np.ndarray


def _partial_derivatives(aa, b, yy, kdiag, W, posterior, s2, factor):
    """Partial derivatives of the bound in ``K_uu``, ``Psi``, ``phi`` and ``s2``."""
    m = aa.shape[0]
    beta = s2 * posterior.mean
    # P^-1 = R^-1 R^-T from the factor (LAPACK's potri fills the upper triangle)
    P_inv, _ = lapack.dpotri(posterior.precision_cholesky, lower=0)
    P_inv = np.triu(P_inv) + np.triu(P_inv, 1).T
    identity = np.eye(m)
    outer = np.outer(beta, beta) / s2**2
    L_inv = factor.inverse
    M_K = 0.5 * (identity - P_inv - aa / s2 - outer)
    M_Psi = 0.5 / s2 * (identity - P_inv - outer)
    d_s2 = (
        -0.5 * W / s2
        + 0.5 * yy / s2**2
        - (b @ beta) / s2**3
        + 0.5 * (beta @ aa @ beta) / s2**4
        + 0.5 * np.sum(P_inv * aa) / s2**2
        + 0.5 * kdiag / s2**2
        - 0.5 * np.trace(aa) / s2**2
    )
    d_Kuu = L_inv.T @ M_K @ L_inv
    # a jitter that depends on s2 (GrowingJitters) adds dF/dK_uu : I djitter/ds2
    d_s2 += np.trace(d_Kuu) * factor.noise_derivative
    d_Psi_whitened = M_Psi @ L_inv
    return _Partials(
        d_Kuu=d_Kuu,
        d_phi=L_inv.T @ beta / s2**2,
        d_s2=float(d_s2),
        d_Psi_whitened=d_Psi_whitened,
    )
