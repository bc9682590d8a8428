"""Weighted sufficient statistics of a linear-Gaussian model that add and subtract.

Statistics are stored centred on their own weighted means (Chan, Golub &
LeVeque 1979, pairwise update), which keeps the centred Gram matrix accurate
when features have large offsets, and means that nothing but the current
weighted means is ever stored as a location: after forgetting, no reference
point of the forgotten rows survives.

Forgetting subtracts, and subtraction cancels: a statistic that absorbed
terms of total magnitude ``A`` carries a round-off error of about ``u A``
(``u = 2^-53``) whatever remains of it. Every statistic therefore keeps a
record of that error (:class:`RoundOff`), which the estimators compare with
what remains after a forget; :class:`CompensatedStatistics` keeps the sums
in double-double arithmetic instead, where the same cancellation costs
``u^2 A``.
"""

import dataclasses
import functools
from typing import NamedTuple

import numpy as np
from scipy.linalg import lapack

from .._numba import compensated
from .._numba.tridiagonal import shifted_tridiagonal
from ..exceptions import NotPositiveDefiniteError

# Unit round-off of float64 and of the double-double sums (Ogita et al. 2005).
UNIT_ROUNDOFF = np.finfo(np.float64).eps / 2
DOUBLE_DOUBLE_ROUNDOFF = UNIT_ROUNDOFF**2 * 4
# Estimated relative round-off error above which a forget warns, provided a refit on
# the remaining rows would be this many times more accurate (else it would not help).
ROUND_OFF_WARNING_THRESHOLD = 1e-8
REFIT_GAIN = 10.0
# Largest magnitude a statistic may reach: products of two statistics stay finite.
LARGEST_STATISTIC = float(np.sqrt(np.finfo(np.float64).max))
# Negative curvature attributed to round-off: a multiple of the estimated
# error without a ledger, a millionth of the absorbed magnitude with one.
_ROUNDOFF_SAFETY = 16.0
_TRUSTED_FRACTION = 1e-6


class Mergeable:
    """``a + b``, ``a - b`` and ``sum(parts)`` for statistics with ``merge(other, sign)``.

    Chunked and distributed reductions build statistics this way; only
    statistics of the same kind merge.
    """

    __slots__ = ()

    def __add__(self, other):
        if type(other) is not type(self):
            return NotImplemented
        return self.merge(other, 1.0)

    def __radd__(self, other):
        if isinstance(other, int | float) and other == 0:  # sum() starts from 0
            return self
        return NotImplemented

    def __sub__(self, other):
        if type(other) is not type(self):
            return NotImplemented
        return self.merge(other, -1.0)


class RoundOff(NamedTuple):
    """Estimated absolute round-off error carried by each statistic.

    Each addition of a term ``t`` to a sum errs by at most ``u |t|`` (Higham
    2002, Sec. 4.2) and later additions carry earlier errors without
    amplifying them, so a sum's error is about ``u`` times the magnitude of
    everything it absorbed, forgotten terms and the pairwise merge's cross
    terms included. Only the diagonal of the scatter is tracked: an
    off-diagonal error is at most the geometric mean of the two diagonal
    ones (Cauchy-Schwarz on the absorbed terms ``w a_j a_k``).

    Attributes
    ----------
    weight_sum : float
        Error of the total weight ``weight_sum``.
    x_mean : ndarray of shape (n_features,)
        Error of the weighted feature means ``x_mean``.
    y_mean : float
        Error of the weighted target mean ``y_mean``.
    xx : ndarray of shape (n_features,)
        Error of the diagonal of ``xx``.
    yy : float
        Error of the centred target scatter ``yy``.
    """

    weight_sum: float
    x_mean: np.ndarray
    y_mean: float
    xx: np.ndarray
    yy: float

    def __add__(self, other):
        return RoundOff(*(a + b for a, b in zip(self, other, strict=True)))


def _fresh_round_off(weight_sum, x_mean, y_mean, xx_diag, yy):
    """Round-off of statistics just computed from rows (or rounded once to float64).

    The centred scatter of a block errs by ``u sum w |x - m| (|x - m| + |x|)``
    (the centring and the product); by Cauchy-Schwarz that is at most
    ``u (S + sqrt(S (S + W m^2)))`` with ``S`` the centred diagonal, and a
    mean's error is at most ``u sqrt((S + W m^2) / W)``: both computable from
    the statistics alone.
    """
    W = np.float64(max(weight_sum, np.finfo(np.float64).tiny))
    y_mean, yy = np.float64(y_mean), np.abs(np.float64(yy))  # overflow: inf, not an error
    xx_diag = np.abs(xx_diag)  # a round-off negative stands for a zero
    raw_x = xx_diag + W * x_mean**2
    raw_y = yy + W * y_mean**2
    return RoundOff(
        UNIT_ROUNDOFF * weight_sum,
        UNIT_ROUNDOFF * np.sqrt(raw_x / W),
        UNIT_ROUNDOFF * np.sqrt(raw_y / W),
        UNIT_ROUNDOFF * (xx_diag + np.sqrt(xx_diag * raw_x)),
        UNIT_ROUNDOFF * (yy + np.sqrt(yy * raw_y)),
    )


def check_remaining_weight(learned, forgotten, n_rows, tolerance):
    """Refuse a forget that removes all of the training weight, or more.

    ``learned - forgotten`` within ``tolerance`` of zero, or below it, is the
    only weight-based impossibility the statistics can see: which rows were
    learned is the ledger's business.
    """
    remaining = learned - forgotten
    if remaining < -tolerance:
        raise ValueError(
            f"Cannot forget rows of total weight {forgotten:.6g}: only {n_rows} rows "
            f"with a total weight of {learned:.6g} were learned and not forgotten. "
            "Forgetting more than all of the training weight means some of these rows "
            "(or weights) were never learned. Nothing was changed."
        )
    if remaining <= tolerance:
        raise ValueError(
            "Forgetting these rows would remove all of the training weight "
            f"({learned:.6g} learned, {forgotten:.6g} to forget); "
            "fit a new estimator instead. Nothing was changed."
        )


def _remaining_rows(n_rows, other_rows, sign, weight_sum):
    """Rows with weight left: the signed count, at least one while weight remains.

    Without a ledger the statistics cannot tell a row forgotten in part from
    one forgotten in full, so every forgotten row with a positive weight is
    counted as gone; the count cannot drop below one while weight remains.
    """
    count = n_rows + int(sign) * other_rows
    return max(count, 1) if weight_sum > 0 else max(count, 0)


@dataclasses.dataclass(frozen=True, eq=False)
class LinearStatistics(Mergeable):
    """Weighted statistics of rows ``(x_i, y_i)`` with weights ``w_i``.

    They merge with ``a + b`` and ``a - b`` (exact inverses of each other up
    to round-off) and ``sum(parts)``, so chunked or distributed reductions can
    build them. Iterating gives the seven statistics in the order below, as a
    tuple would; ``round_off`` is a record about them, not a statistic.

    Attributes
    ----------
    weight_sum : float
        ``W = sum w_i``.
    n_rows : int
        Rows with a positive weight left (see :func:`_remaining_rows`).
    x_mean : ndarray of shape (n_features,)
        ``sum w_i x_i / W``.
    y_mean : float
        ``sum w_i y_i / W``.
    xx : ndarray of shape (n_features, n_features)
        Centred scatter ``sum w_i (x_i - x_mean)(x_i - x_mean)'``.
    xy : ndarray of shape (n_features,)
        ``sum w_i (x_i - x_mean)(y_i - y_mean)``.
    yy : float
        ``sum w_i (y_i - y_mean)^2``.
    round_off : RoundOff
        Estimated absolute round-off error of each statistic.
    """

    weight_sum: float
    n_rows: int
    x_mean: np.ndarray
    y_mean: float
    xx: np.ndarray
    xy: np.ndarray
    yy: float
    round_off: RoundOff = None

    _fields = ("weight_sum", "n_rows", "x_mean", "y_mean", "xx", "xy", "yy")

    def __post_init__(self):
        if self.round_off is None:
            object.__setattr__(self, "round_off", self.refit_round_off())

    def __iter__(self):
        return (getattr(self, name) for name in self._fields)

    def _replace(self, **changes):
        return dataclasses.replace(self, **changes)

    @classmethod
    def empty(cls, n_features):
        """Statistics of no rows (the identity of :meth:`merge`)."""
        return cls(
            0.0,
            0,
            np.zeros(n_features),
            0.0,
            np.zeros((n_features, n_features)),
            np.zeros(n_features),
            0.0,
        )

    @classmethod
    def from_data(cls, X, y, sample_weight):
        """Statistics of a block of rows; O(k d^2) time, one k x d temporary.

        Parameters
        ----------
        X : ndarray of shape (k, n_features), float64
        y : ndarray of shape (k,), float64
        sample_weight : ndarray of shape (k,), non-negative
        """
        weight_sum = float(sample_weight.sum())
        n_rows = int(np.count_nonzero(sample_weight))
        if weight_sum == 0.0:
            return cls.empty(X.shape[1])._replace(n_rows=n_rows)
        x_mean = sample_weight @ X / weight_sum
        y_mean = float(sample_weight @ y / weight_sum)
        Xc = X - x_mean
        yc = y - y_mean
        if n_rows != X.shape[0] or (sample_weight != 1.0).any():
            # sqrt(w) scaling turns the weighted scatter into a plain X'X (BLAS syrk)
            root = np.sqrt(sample_weight)
            Xc *= root[:, None]
            yc *= root
        return cls(weight_sum, n_rows, x_mean, y_mean, Xc.T @ Xc, Xc.T @ yc, float(yc @ yc))

    def merge(self, other, sign=1.0):
        """Statistics of ``self`` plus (``sign=1``) or minus (``sign=-1``) ``other``.

        Pairwise combination with signed weight ``v = sign * W_b``:
        ``W = W_a + v``, ``delta = mean_b - mean_a``,
        ``mean = mean_a + delta v / W``,
        ``scatter = scatter_a + sign * scatter_b + delta delta' W_a v / W``
        (Chan, Golub & LeVeque 1979). With ``sign=-1`` this is the exact
        inverse of ``sign=1``. Subtracting refuses to leave no weight, or
        less than none.
        """
        if other.x_mean.shape != self.x_mean.shape:
            raise ValueError(
                f"Cannot merge statistics of {other.x_mean.shape[0]} features into "
                f"statistics of {self.x_mean.shape[0]}."
            )
        v = sign * other.weight_sum
        weight_sum = self.weight_sum + v
        if sign < 0:
            tolerance = _ROUNDOFF_SAFETY * (
                self.round_off.weight_sum + UNIT_ROUNDOFF * other.weight_sum
            )
            check_remaining_weight(
                self.weight_sum, other.weight_sum, self.n_rows, tolerance
            )
        elif weight_sum == 0.0:  # two statistics of no weight
            return self._replace(n_rows=self.n_rows + other.n_rows)
        factor = v / weight_sum
        dx = other.x_mean - self.x_mean
        dy = other.y_mean - self.y_mean
        cross = self.weight_sum * factor
        return LinearStatistics(
            weight_sum,
            _remaining_rows(self.n_rows, other.n_rows, sign, weight_sum),
            self.x_mean + factor * dx,
            self.y_mean + factor * dy,
            self.xx + sign * other.xx + cross * np.outer(dx, dx),
            self.xy + sign * other.xy + cross * dx * dy,
            self.yy + sign * other.yy + cross * dy * dy,
            self._merged_round_off(other, weight_sum, factor, cross, dx, dy),
        )

    def _merged_round_off(self, other, weight_sum, factor, cross, dx, dy):
        """Round-off after :meth:`merge`: both records, plus the merge's own terms.

        A mean is the weighted average ``(W_a m_a + v m_b) / W`` of the two,
        so their errors are averaged with weights ``|W_a|/W`` and ``|v|/W``
        (large when ``W`` is small: that is the cancellation), plus the
        rounding of the update. A scatter entry errs by the rounding of its
        three terms, plus the cross term's sensitivity to the errors in
        ``delta`` (whose own rounding is ``u (|m_a| + |m_b|)``).
        """
        u = UNIT_ROUNDOFF
        a, b = self.round_off, other.round_off
        W, v = abs(weight_sum), abs(weight_sum - self.weight_sum)
        shares = abs(self.weight_sum) / W, v / W
        error_dx = a.x_mean + b.x_mean + u * (np.abs(self.x_mean) + np.abs(other.x_mean))
        error_dy = a.y_mean + b.y_mean + u * (abs(self.y_mean) + abs(other.y_mean))
        return RoundOff(
            a.weight_sum + b.weight_sum + u * W,
            shares[0] * a.x_mean
            + shares[1] * b.x_mean
            + u * (np.abs(self.x_mean) + 2 * np.abs(factor * dx)),
            shares[0] * a.y_mean
            + shares[1] * b.y_mean
            + u * (abs(self.y_mean) + 2 * abs(factor * dy)),
            a.xx
            + b.xx
            + u
            * (
                np.abs(self.xx.diagonal())
                + np.abs(other.xx.diagonal())
                + abs(cross) * dx**2
            )
            + 2 * abs(cross) * np.abs(dx) * error_dx,
            a.yy
            + b.yy
            + u * (abs(self.yy) + abs(other.yy) + abs(cross) * dy**2)
            + 2 * abs(cross) * abs(dy) * error_dy,
        )

    def refit_round_off(self):
        """The round-off record these statistics would have if computed afresh from rows.

        Computed once (the statistics never change): a forget reads it three times.
        """
        record = self.__dict__.get("_refit_round_off")
        if record is None:
            record = _fresh_round_off(
                self.weight_sum, self.x_mean, self.y_mean, self.xx.diagonal(), self.yy
            )
            object.__setattr__(self, "_refit_round_off", record)
        return record

    def yy_beyond_round_off(self):
        """``yy``, or zero when it is within its round-off of zero.

        The targets of one row, or of identical rows, have no spread; what
        centring (or a cancellation) leaves of ``yy`` then is round-off, and
        must not pass for a spread (``normalize_y`` divides by it).
        """
        return 0.0 if self.yy <= _ROUNDOFF_SAFETY * self.round_off.yy else float(self.yy)

    def gram(self, fit_intercept):
        """Return ``(G, Xty, yty)``: centred when ``fit_intercept``, raw otherwise.

        Without an intercept, ``X'WX = xx + W x_mean x_mean'`` (and likewise for
        the other two), a sum of non-negative terms.
        """
        if fit_intercept:
            return self.xx, self.xy, self.yy
        W = self.weight_sum
        return (
            self.xx + W * np.outer(self.x_mean, self.x_mean),
            self.xy + W * self.x_mean * self.y_mean,
            self.yy + W * self.y_mean**2,
        )

    def gram_round_off(self, fit_intercept, round_off=None):
        """Estimated errors ``(of diag G, of yty)`` of :meth:`gram`'s results.

        From ``round_off`` (default: the statistics' own record). Without an
        intercept, ``W m^2`` adds its rounding and the propagated error
        ``2 W |m| e_m`` of the mean.
        """
        errors = self.round_off if round_off is None else round_off
        if fit_intercept:
            return errors.xx, errors.yy
        W, u = self.weight_sum, UNIT_ROUNDOFF
        x, y = np.abs(self.x_mean), abs(self.y_mean)
        return (
            errors.xx + W * x * (u * x + 2 * errors.x_mean) + x * x * errors.weight_sum,
            errors.yy + W * y * (u * y + 2 * errors.y_mean) + y * y * errors.weight_sum,
        )

    def check_magnitude(self, what):
        """Refuse statistics that are not finite or so large that products overflow."""
        W = np.float64(self.weight_sum)
        with np.errstate(over="ignore", invalid="ignore"):
            sizes = (
                W,
                (self.xx.diagonal() + W * np.square(self.x_mean)).max(initial=0.0),
                np.float64(self.yy) + W * np.square(np.float64(self.y_mean)),
            )
        if not all(np.isfinite(size) and abs(size) <= LARGEST_STATISTIC for size in sizes):
            raise ValueError(
                f"The weighted sums of squares of {what} exceed {LARGEST_STATISTIC:.3g} "
                "(or overflow), beyond which float64 products of them overflow. Rescale "
                "X and y (e.g. StandardScaler, or a change of units) or the sample "
                "weights. Nothing was changed."
            )


def batch_statistics(X, y, sample_weight, compensated=False):
    """Statistics of a block of rows: :class:`LinearStatistics`, or compensated moments.

    The one kernel for a batch in memory and for each chunk on a cluster
    (whose chunks' statistics are then summed with ``+``). Overflow is not
    an error here: it shows as inf, which the estimators refuse with advice.

    Parameters
    ----------
    X : ndarray of shape (k, n_features)
        Converted to float64.
    y : ndarray of shape (k,), float64
    sample_weight : ndarray of shape (k,), non-negative
    compensated : bool, default=False
        Whether to return :class:`CompensatedStatistics`.
    """
    X = np.asarray(X, dtype=np.float64)
    if compensated:
        return CompensatedStatistics.from_data(X, y, sample_weight)
    with np.errstate(over="ignore", invalid="ignore"):
        return LinearStatistics.from_data(X, y, sample_weight)


def round_off_tolerance(error, trusted):
    """How far below zero a quantity with estimated round-off ``error`` may fall.

    Without a ledger, a safety multiple of the error: beyond it the rows
    forgotten were not all learned. With a ledger (``trusted``) the rows are
    known to have been learned, and only a shortfall beyond a millionth of the
    absorbed magnitude (``error / u``), which no round-off explains, is refused.
    """
    tolerance = _ROUNDOFF_SAFETY * np.asarray(error, dtype=np.float64)
    if trusted:
        tolerance = np.maximum(tolerance, tolerance * _TRUSTED_FRACTION / UNIT_ROUNDOFF)
    return tolerance


# A Gram matrix whose diagonal spans more than this ratio (columns 1,000 times apart
# in scale) loses its small eigenvalues to a normwise eigensolver, whose error is
# d u ||G||: graded_eigh computes them to relative accuracy instead.
_GRADED_RATIO = 1e6


def is_graded(gram, null=None):
    """Whether the Gram matrix's columns differ so much in scale that :func:`graded_eigh`
    is needed: the diagonal entries not in ``null`` (zero columns within their
    round-off, such as a constant feature once centred) are positive and their
    ratio exceeds ``_GRADED_RATIO``."""
    diagonal = np.diagonal(gram)
    if null is not None:
        diagonal = diagonal[~null]
    return bool(
        diagonal.size
        and np.all(diagonal > 0)
        and diagonal.max() > _GRADED_RATIO * diagonal.min()
    )


def graded_eigh(gram, null=None):
    """Eigendecomposition of a positive semi-definite ``G = D A D``, to relative accuracy.

    A normwise eigensolver (``eigh``, or a tridiagonal reduction) errs by
    ``d u ||G||`` in every eigenvalue: with columns 1e4 apart in scale the
    small eigenvalues lose 8 digits, and the evidence, which reads them all,
    moves with them. With ``D = diag(G)^1/2`` and the pivoted Cholesky factor
    ``R`` (``r x d``, ``r`` its numerical rank) of the well-scaled ``A``,
    ``G = (R D)' (R D)``; the preconditioned Jacobi SVD (LAPACK ``dgejsv``)
    of ``R D`` computes its singular values to relative accuracy ``cond(A) u``
    whatever ``D`` (Demmel & Veselic 1992; Drmac & Veselic 2008), the
    eigenvalues as their squares.

    A singular ``G`` (fewer rows than features) has ``r < d``: the nonzero
    eigenvalues are those of :func:`_graded_eigh_semidefinite`, the rest of
    the space is completed orthonormally.

    Columns in ``null`` (boolean mask: zero within round-off) are zero
    throughout (``|G_jk| <= (G_jj G_kk)^1/2``): their unit vectors are
    eigenvectors of eigenvalue zero, and the rest is solved without them.

    Returns
    -------
    eigenvalues, eigenvectors : ndarray, or None
        Ascending, as :func:`numpy.linalg.eigh`; None when LAPACK fails or
        returns what is not finite (the normwise path then decides).
    """
    d = gram.shape[0]
    if null is not None and null.any():
        kept, dropped = np.flatnonzero(~null), np.flatnonzero(null)
        inner = graded_eigh(gram[np.ix_(kept, kept)]) if kept.size else None
        if inner is None:
            return None
        eigenvectors = np.zeros((d, d))
        eigenvectors[dropped, np.arange(dropped.size)] = 1.0
        eigenvectors[np.ix_(kept, np.arange(dropped.size, d))] = inner[1]
        return np.concatenate([np.zeros(dropped.size), inner[0]]), eigenvectors
    scale = np.sqrt(np.diagonal(gram))
    scaled = gram / np.outer(scale, scale)
    if not np.all(np.isfinite(scaled)):
        return None
    # LAPACK's own default tolerance for a unit diagonal, d u: a Schur complement below
    # it is the round-off of A's entries (Higham 1990, "Analysis of the Cholesky
    # decomposition of a semi-definite matrix").
    upper, pivots, rank, info = lapack.dpstrf(scaled, tol=d * UNIT_ROUNDOFF, lower=0)
    if info < 0 or rank < 1:
        return None
    # P' A P = U' U with U's first ``rank`` rows: column k of U is column pivots[k] of A.
    factor = np.zeros((rank, d))
    factor[:, pivots - 1] = np.triu(upper[:rank])
    if rank < d:
        return _graded_eigh_semidefinite(gram, factor * scale)
    # joba=0: 'C' (high relative accuracy for B = R D), jobu=0 and jobv=0: 'U' and 'V'
    # (the left vectors too: the path that computes V alone fails with LAPACK's
    # "illegal value" errors on some square matrices), jobt=1: 'N' (never transpose).
    values, _, vectors, work, _, info = lapack.dgejsv(
        factor * scale, joba=0, jobu=0, jobv=0, jobt=1
    )
    if info != 0 or not np.all(np.isfinite(values)) or work[0] <= 0:
        return None
    # LAPACK returns the singular values as SVA * WORK(2) / WORK(1), the scaling that
    # keeps them in range.
    eigenvalues = (values * (work[1] / work[0])) ** 2
    order = np.argsort(eigenvalues)
    return eigenvalues[order], np.ascontiguousarray(vectors[:, order])


def _graded_eigh_semidefinite(gram, factor):
    """:func:`graded_eigh` of ``G ~ B' B`` with ``B = R D`` of rank ``r < d`` (``r x d``).

    ``B'`` is ``d x r`` (``dgejsv`` needs at least as many rows as columns), a
    well-conditioned matrix scaled by rows: its left singular vectors are the
    eigenvectors of the ``r`` nonzero eigenvalues, the squares of its singular
    values, to relative accuracy with full (row and column) pivoting,
    JOBA='F' (Drmac & Veselic 2008). Their orthogonal complement (from a full
    QR) is ``B``'s null space; ``G`` restricted to it is the Schur complement
    the pivoted Cholesky left below its tolerance, round-off or, for an
    indefinite ``G``, its negative part: its eigenvalues there are those of
    ``N' G N`` (Rayleigh-Ritz, Parlett 1998, Sec. 11.4), zero within their
    round-off, and beyond it left for :func:`psd_eigh` to judge.
    """
    d, r = gram.shape[0], factor.shape[0]
    # joba=2: 'F' (relative accuracy for D1 C D2), jobu=0 and jobv=0: 'U' and 'V',
    # jobt=1: 'N'.
    values, vectors, _, work, _, info = lapack.dgejsv(
        np.asfortranarray(factor.T), joba=2, jobu=0, jobv=0, jobt=1
    )
    if info != 0 or not np.all(np.isfinite(values)) or work[0] <= 0:
        return None
    # LAPACK returns the singular values as SVA * WORK(2) / WORK(1).
    positive = (values * (work[1] / work[0])) ** 2
    complement = np.linalg.qr(vectors, mode="complete")[0][:, r:]
    # A semi-definite Schur complement below the tolerance (|S_jk| <= d u in A) and the
    # rounding of N' G N (Higham 2002, Sec. 3.5) are each at most d u a_k a_l in entry
    # (k, l), with a_k = sum_j |n_jk| G_jj^1/2; their 2-norm, at most d u sum_k a_k^2,
    # bounds what they move the eigenvalues (Weyl): within it an eigenvalue is zero,
    # beyond it psd_eigh judges it.
    spread = np.abs(complement.T) @ np.sqrt(np.diagonal(gram))
    round_off = 2 * d * UNIT_ROUNDOFF * (spread @ spread)
    null, rotation = np.linalg.eigh(complement.T @ gram @ complement)
    complement = complement @ rotation
    null[np.abs(null) <= round_off] = 0.0
    eigenvalues = np.concatenate([null, positive])
    eigenvectors = np.concatenate([complement, vectors], axis=1)
    if not np.all(np.isfinite(eigenvalues)) or not np.all(np.isfinite(eigenvectors)):
        return None
    order = np.argsort(eigenvalues, kind="stable")
    return eigenvalues[order], np.ascontiguousarray(eigenvectors[:, order])


def rank_bound(statistics, fit_intercept):
    """Upper bound on the Gram matrix's rank: its rows with weight, less one if centred.

    ``X'WX`` is a sum of one rank-one term per row with a positive weight, and
    centring removes one dimension (``1' W (X - 1 m') = 0``). The count is the
    statistics' ``n_rows``, which a forget of part of a row's weight can make
    too small: :func:`psd_eigh` only zeroes eigenvalues beyond the bound that
    are also within their round-off.
    """
    return max(statistics.n_rows - int(fit_intercept), 0)


def _null_orthogonal_to_data(eigenvalues, eigenvectors, xty, tolerances, surplus):
    """Zero the ``surplus`` eigenvalues beyond :func:`rank_bound`, in place.

    Returns the boolean mask of the zeroed ones, whose ``X'Wy`` is zero.

    When no more eigenvalues than that are within their ``tolerances``, those
    are zeroed. When more are, the eigensolver cannot tell the null space from
    the directions of real eigenvalues below its round-off: each computed
    eigenvector of that cluster mixes them (Davis & Kahan 1970), and its
    ``X'Wy`` is partly data. Within the cluster any orthonormal basis is an
    eigenbasis within round-off, and ``X'Wy`` lies in the row space, which is
    orthogonal to the null space: the basis is rotated to ``X'Wy``'s
    component in the cluster (keeping its Rayleigh quotient) and an
    eigenbasis of the rest, whose ``surplus`` smallest eigenvalues are zeroed.
    """
    order = np.argsort(eigenvalues)
    within = eigenvalues[order] <= tolerances[order]
    count = int(np.argmin(within)) if not within.all() else within.size
    null = np.zeros(eigenvalues.shape, dtype=bool)
    if count <= surplus:
        null[order[:count]] = True
        return null
    cluster = order[:count]
    basis = eigenvectors[:, cluster]
    z = basis.T @ xty
    # A Householder reflector whose first column is z / |z| (any, when z is zero).
    v = z.copy()
    v[0] += np.copysign(np.linalg.norm(z), z[0]) if z[0] != 0 else np.linalg.norm(z)
    reflector = np.eye(count)
    if v @ v > 0:
        reflector -= 2.0 * np.outer(v, v) / (v @ v)
    block = reflector.T @ (eigenvalues[cluster][:, None] * reflector)
    rest, rotation = np.linalg.eigh(block[1:, 1:])
    new_basis = basis @ reflector
    new_basis[:, 1:] = new_basis[:, 1:] @ rotation
    eigenvectors[:, cluster] = new_basis
    eigenvalues[cluster] = np.concatenate([[block[0, 0]], rest])
    null[cluster[1 : 1 + surplus]] = True
    return null


def psd_eigh(statistics, fit_intercept, trusted):
    """Eigendecomposition of the Gram matrix, which must be positive semi-definite.

    With ``G = V diag(s) V'`` from :meth:`LinearStatistics.gram`, the round-off
    of ``s_k = v_k' G v_k`` is at most ``(sum_j |v_jk| sqrt(e_j))^2``, ``e`` the
    errors of the diagonal (an off-diagonal error is at most
    ``sqrt(e_j e_k)``, see :class:`RoundOff`).

    - Eigenvalues, or ``y'Wy``, below zero beyond :func:`round_off_tolerance`
      of that (plus the eigensolver's ``d u ||G||_2``) raise
      :class:`~sklunlearn.exceptions.NotPositiveDefiniteError`: what
      forgetting rows that were never learned produces.
    - Eigenvalues within the error that forgetting added (the record's excess
      over :meth:`LinearStatistics.refit_round_off`) of zero are zero, and
      their directions carry no ``X'Wy`` (``|v_k' X'Wy| <= sqrt(s_k y'Wy)``):
      the Gram matrix of one remaining row, or of identical rows, has such
      eigenvalues, and the cancelled round-off must not pose as data. The
      round-off a refit would have is left alone, as a refit leaves it.
    - Beyond :func:`rank_bound` (``r`` rows with weight), the ``d - r``
      smallest eigenvalues are zero whenever they are within their round-off
      tolerance (the one negativity is judged by, without the ledger's
      latitude), in a basis of those orthogonal to ``X'Wy``
      (:func:`_null_orthogonal_to_data`): a normwise eigensolver leaves
      ``d u ||G||`` in each of them, where the SVD of ``X`` that BayesianRidge
      uses has ``min(n, d)`` values only, and at the starting ``alpha = 1 /
      eps`` each such eigenvalue would count as a whole parameter.

    Returns
    -------
    eigenvalues : ndarray of shape (n_features,)
        Non-negative.
    eigenvectors : ndarray of shape (n_features, n_features)
    projected_xty : ndarray of shape (n_features,)
        ``V' X'Wy``, zero along the directions of zeroed eigenvalues.
    yty : float
        ``y'Wy``, clipped at zero.
    """
    gram, xty, yty = statistics.gram(fit_intercept)
    gram_error, yty_error = statistics.gram_round_off(fit_intercept)
    refit_error, _ = statistics.gram_round_off(fit_intercept, statistics.refit_round_off())
    null = np.abs(np.diagonal(gram)) <= _ROUNDOFF_SAFETY * gram_error
    graded = graded_eigh(gram, null) if is_graded(gram, null) else None
    if graded is None:
        eigenvalues, eigenvectors = np.linalg.eigh(gram)
        scale = np.max(np.abs(eigenvalues), initial=0.0)
    else:
        eigenvalues, eigenvectors = graded
        scale = eigenvalues
    weights = np.abs(eigenvectors)
    direction_error = (np.sqrt(gram_error) @ weights) ** 2
    solver_error = gram.shape[0] * UNIT_ROUNDOFF * scale
    tolerances = round_off_tolerance(direction_error + solver_error, trusted)
    if np.any(eigenvalues < -tolerances) or (
        yty < -round_off_tolerance(yty_error, trusted)
    ):
        raise NotPositiveDefiniteError(
            "After forgetting, the Gram matrix of the remaining data is not "
            f"positive semi-definite (smallest eigenvalue {eigenvalues[0]:.3g}, beyond "
            f"its round-off tolerance {tolerances[0]:.3g}). The rows passed to "
            "partial_unfit (with these weights) were not all part of the training "
            "data. Nothing was changed."
        )
    null = np.zeros(eigenvalues.shape, dtype=bool)
    surplus = gram.shape[0] - rank_bound(statistics, fit_intercept)
    if surplus > 0:
        error = direction_error + np.broadcast_to(solver_error, eigenvalues.shape)
        tolerances = round_off_tolerance(error, False)
        null = _null_orthogonal_to_data(eigenvalues, eigenvectors, xty, tolerances, surplus)
        weights = np.abs(eigenvectors)
    excess = (np.sqrt(np.clip(gram_error - refit_error, 0.0, None)) @ weights) ** 2
    null |= eigenvalues <= _ROUNDOFF_SAFETY * excess
    eigenvalues = np.where(null, 0.0, np.clip(eigenvalues, 0.0, None))
    projected_xty = np.where(null, 0.0, eigenvectors.T @ xty)
    return eigenvalues, eigenvectors, projected_xty, max(float(yty), 0.0)


class Tridiagonal(NamedTuple):
    """The Gram matrix as ``G = Q T Q'`` with ``Q' X'Wy = xty_norm e_1``.

    Fields: ``diagonal``, ``off`` (the tridiagonal ``T``), ``xty_norm``,
    ``rows`` and ``tau`` (the Householder reflectors of ``Q``, row ``j``
    holding reflector ``j``, for
    :func:`~sklunlearn._numba.tridiagonal.apply_reflectors` as ``rows.T``),
    ``gram``, ``yty``.
    """

    diagonal: np.ndarray
    off: np.ndarray
    xty_norm: float
    rows: np.ndarray
    tau: np.ndarray
    gram: np.ndarray
    yty: float


def certified_tridiagonal(statistics, fit_intercept):
    """``G = Q T Q'`` when :func:`psd_eigh` would neither clip, zero nor refuse; else None.

    Householder tridiagonalisation of the bordered matrix ``[[0, b'], [b, G]]``
    (``b = X'Wy``), so that ``Q' b`` is a multiple of ``e_1`` (Golub & Van
    Loan 2013, Sec. 8.3.1): a third of the work of an eigendecomposition with
    vectors. :func:`psd_eigh` changes nothing when every eigenvalue of ``G``
    exceeds ``_ROUNDOFF_SAFETY`` times its error excess over a refit, which
    is at most ``sum_j (e_j - e_j^refit)`` (Cauchy-Schwarz on its bound), and
    when ``y'Wy`` is not negative. That is certified by a Sturm count of
    ``T`` (no eigenvalue below the threshold plus twice the eigensolvers'
    ``d u tr(G)``); an uncertified ``G`` returns None, for :func:`psd_eigh`.
    """
    gram, xty, yty = statistics.gram(fit_intercept)
    gram_error, _ = statistics.gram_round_off(fit_intercept)
    null = np.abs(np.diagonal(gram)) <= _ROUNDOFF_SAFETY * gram_error
    if yty < 0 or is_graded(gram, null):
        return None
    refit_error, _ = statistics.gram_round_off(fit_intercept, statistics.refit_round_off())
    d = gram.shape[0]
    scale = np.abs(np.diagonal(gram)).sum()
    threshold = _ROUNDOFF_SAFETY * np.maximum(gram_error - refit_error, 0.0).sum()
    threshold += 2 * _ROUNDOFF_SAFETY * d * UNIT_ROUNDOFF * scale
    bordered = np.zeros((d + 1, d + 1), order="F")
    bordered[1:, 1:] = gram
    bordered[1:, 0] = xty
    # scipy.linalg has no public tridiagonal reduction: its LAPACK wrapper does it,
    # blocked (BLAS 3) given the work space it asks for.
    reflectors, diagonal, off, tau, info = lapack.dsytrd(
        bordered, lower=1, lwork=_tridiagonal_work(d + 1), overwrite_a=1
    )
    if info != 0 or not np.isfinite(threshold):
        return None
    negative = shifted_tridiagonal(diagonal[1:], off[1:], -threshold, np.zeros(d))[0]
    if negative:
        return None
    return Tridiagonal(
        diagonal[1:],
        off[1:],
        float(off[0]),
        np.ascontiguousarray(reflectors[1:, :-1].T),
        tau,
        gram,
        float(yty),
    )


@functools.lru_cache(maxsize=16)
def _tridiagonal_work(n):
    """The work space LAPACK's ``dsytrd`` asks for an ``n x n`` matrix, asked once per n."""
    return max(int(lapack.dsytrd_lwork(n, lower=1)[0]), n)


def check_numeric_targets(y):
    """``y`` as float64, refusing strings and other non-numbers with advice."""
    kind = np.asarray(y).dtype.kind
    if kind not in "biuf":
        raise ValueError(
            f"y must hold numbers for regression, got dtype {np.asarray(y).dtype}. "
            "Convert the targets to float (e.g. y.astype(float)), or use a classifier "
            "for labels. Nothing was changed."
        )
    return np.asarray(y, dtype=np.float64)


@dataclasses.dataclass(frozen=True, eq=False)
class CompensatedStatistics(Mergeable):
    """Raw weighted moments of ``z_i = [1, x_i, y_i]`` in double-double arithmetic.

    ``M = sum w_i z_i z_i'`` holds the weight sum, the weighted sums of ``x``
    and ``y`` and the raw ``X'WX``, ``X'Wy``, ``y'Wy``; it merges by plain
    (double-double) addition and subtraction, ``a + b``, ``a - b``,
    ``sum(parts)``, and :meth:`to_linear` centres it, rounding once to
    float64. Subtracting a contribution of magnitude ``A`` leaves an error of
    about ``u^2 A`` instead of ``u A``: rows 10^8 times larger than the rest
    can be forgotten without losing a digit that matters.

    Attributes
    ----------
    n_rows : int
        Rows with a positive weight left.
    moments_hi, moments_lo : ndarray of shape (n_features + 2, n_features + 2)
        ``M = moments_hi + moments_lo``.
    absorbed : ndarray of shape (n_features + 2,)
        ``sum |w_i| z_ij^2`` over every row ever added or subtracted.
    inherited : RoundOff or None
        Errors carried over from float64 statistics this was built from.
    """

    n_rows: int
    moments_hi: np.ndarray
    moments_lo: np.ndarray
    absorbed: np.ndarray
    inherited: RoundOff = None

    @classmethod
    def empty(cls, n_features):
        """Moments of no rows."""
        p = n_features + 2
        return cls(0, np.zeros((p, p)), np.zeros((p, p)), np.zeros(p))

    @classmethod
    def from_data(cls, X, y, sample_weight):
        """Moments of a block of rows: O(k d^2) compensated products, in Numba."""
        hi, lo, absorbed = compensated.moments(
            np.ascontiguousarray(X, dtype=np.float64),
            np.ascontiguousarray(y, dtype=np.float64),
            np.ascontiguousarray(sample_weight, dtype=np.float64),
        )
        return cls(int(np.count_nonzero(sample_weight)), hi, lo, absorbed)

    @classmethod
    def from_linear(cls, statistics):
        """Moments equal to float64 statistics, which keep their round-off record."""
        W, m = statistics.weight_sum, np.append(statistics.x_mean, statistics.y_mean)
        scatter = np.block(
            [
                [statistics.xx, statistics.xy[:, None]],
                [statistics.xy[None, :], np.array([[statistics.yy]])],
            ]
        )
        first = np.append(W, W * m)
        hi = np.vstack([first, np.column_stack([W * m, scatter + W * np.outer(m, m)])])
        absorbed = np.append(W, np.diag(hi)[1:])
        return cls(statistics.n_rows, hi, np.zeros_like(hi), absorbed, statistics.round_off)

    @property
    def weight_sum(self):
        """``W = sum w_i``."""
        return float(self.moments_hi[0, 0] + self.moments_lo[0, 0])

    def merge(self, other, sign=1.0):
        """Moments of ``self`` plus (``sign=1``) or minus (``sign=-1``) ``other``."""
        if other.absorbed.shape != self.absorbed.shape:
            raise ValueError("Cannot merge moments of different numbers of features.")
        hi, lo = compensated.add(
            (self.moments_hi, self.moments_lo), (other.moments_hi, other.moments_lo), sign
        )
        weight_sum = float(hi[0, 0] + lo[0, 0])
        if sign < 0:
            tolerance = _ROUNDOFF_SAFETY * (
                DOUBLE_DOUBLE_ROUNDOFF * (self.absorbed[0] + other.absorbed[0])
                + (0.0 if self.inherited is None else self.inherited.weight_sum)
            )
            check_remaining_weight(
                self.weight_sum, other.weight_sum, self.n_rows, tolerance
            )
        inherited = [part.inherited for part in (self, other) if part.inherited is not None]
        return CompensatedStatistics(
            _remaining_rows(self.n_rows, other.n_rows, sign, weight_sum),
            hi,
            lo,
            self.absorbed + other.absorbed,
            sum(inherited[1:], inherited[0]) if inherited else None,
        )

    def to_linear(self):
        """Centred :class:`LinearStatistics`, each entry rounded once to float64.

        The double-double centring ``M_jk - M_0j M_0k / W`` errs by about
        ``u^2`` times the absorbed ``sum |w| z_j^2``, the rounding to float64
        by ``u`` times the result: both go into the round-off record.
        """
        d = self.absorbed.shape[0] - 2
        if self.weight_sum <= 0:
            return LinearStatistics.empty(d)._replace(n_rows=self.n_rows)
        means, scatter = compensated.centre(self.moments_hi, self.moments_lo)
        W = self.weight_sum
        u2, A = DOUBLE_DOUBLE_ROUNDOFF, self.absorbed
        diagonal = np.diag(scatter)
        mean_errors = u2 * np.sqrt(A[0] * A[1:]) / W + UNIT_ROUNDOFF * np.abs(means)
        errors = RoundOff(
            u2 * A[0] + UNIT_ROUNDOFF * W,
            mean_errors[:d],
            float(mean_errors[d]),
            4 * u2 * A[1:-1] + UNIT_ROUNDOFF * np.abs(diagonal[:d]),
            float(4 * u2 * A[-1] + UNIT_ROUNDOFF * abs(diagonal[d])),
        )
        if self.inherited is not None:
            errors = errors + self.inherited
        return LinearStatistics(
            W,
            self.n_rows,
            means[:d],
            float(means[d]),
            scatter[:d, :d],
            scatter[:d, d],
            float(scatter[d, d]),
            errors,
        )


def round_off_warning(error, refit_error, advice):
    """Text of the UnlearningWarning for a forget with estimated relative error ``error``.

    None when ``error`` is at most :data:`ROUND_OFF_WARNING_THRESHOLD` or a
    refit (estimated error ``refit_error``) would not be :data:`REFIT_GAIN`
    times more accurate. ``advice`` says how to refit.
    """
    if error <= ROUND_OFF_WARNING_THRESHOLD or error <= REFIT_GAIN * refit_error:
        return None
    digits = min(np.log10(error / UNIT_ROUNDOFF), 16.0)
    lost = "all" if digits >= 15.5 else f"about {digits:.0f}"
    return (
        "Forgetting these rows cancelled most of what the sufficient statistics had "
        f"absorbed: the estimated relative round-off error of the model is {error:.2g} "
        f"({lost} of float64's 16 significant digits lost), so it may differ from a "
        f"refit on the remaining rows. A refit is needed for exactness: {advice}"
    )
