"""Gaussian posteriors stored as a mean and the Cholesky factor of the precision."""

import copy
import functools

import numpy as np
from scipy import linalg
from sklearn.utils import check_random_state

from ._diagonal_posterior import DiagonalGaussianPosterior, _point, _points
from ._numba import CholeskyUpdateError, cholesky_rank_k_update
from .exceptions import NotPositiveDefiniteError

__all__ = ["DiagonalGaussianPosterior", "GaussianPosterior"]

# Rank-k changes with k below d / _DENSE_UPDATE_RATIO use k rank-one Numba
# updates (O(k d^2), scalar code); larger ones re-factorise with LAPACK
# (O(k d^2 + d^3 / 3) at BLAS speed), which is faster beyond that ratio
# (benchmarks/README.md, "Forget cost").
_DENSE_UPDATE_RATIO = 60


# A matrix more asymmetric than this, relative to its largest entry, is refused: the
# factorisation would read its upper triangle only. Round-off asymmetry is far below it.
_ASYMMETRY_TOLERANCE = 1e-6
# Rows compared at a time by the symmetry check (a (block, d) temporary, not (d, d)).
_SYMMETRY_BLOCK_ROWS = 256


def _upper_cholesky(matrix, what):
    """The upper Cholesky factor of a symmetric positive definite ``matrix``."""
    matrix = np.asarray(matrix)
    if matrix.ndim == 2 and matrix.shape[0] == matrix.shape[1]:
        # LAPACK reads the upper triangle only: an asymmetric matrix is refused here.
        scale = worst = 0.0
        for start in range(0, matrix.shape[0], _SYMMETRY_BLOCK_ROWS):
            rows = matrix[start : start + _SYMMETRY_BLOCK_ROWS]
            columns = matrix[:, start : start + _SYMMETRY_BLOCK_ROWS].T
            scale = max(scale, np.max(np.abs(rows), initial=0.0))
            worst = max(worst, np.max(np.abs(rows - columns), initial=0.0))
        if worst > _ASYMMETRY_TOLERANCE * scale:  # NaN is left to check_finite below
            raise ValueError(
                f"The {what} is not symmetric: entries differ from their transposes by "
                f"up to {worst:.3g}, against a largest entry of {scale:.3g}."
            )
    try:
        return linalg.cholesky(matrix, lower=False, check_finite=True)
    except linalg.LinAlgError as exc:
        raise NotPositiveDefiniteError(
            f"The {what} is not positive definite ({exc}). Check that it is "
            "symmetric with positive eigenvalues; a larger prior precision "
            "(regularisation) makes it so."
        ) from exc


@functools.lru_cache(maxsize=8)
def _strict_lower(d):
    """Read-only mask of the strictly lower triangle of a ``d x d`` matrix."""
    mask = np.tri(d, k=-1, dtype=bool)
    mask.setflags(write=False)
    return mask


# Rows whitened at a time by GaussianPosterior.predictive_variance.
_VARIANCE_BLOCK_ROWS = 4096


class GaussianPosterior:
    """Multivariate normal N(mean, precision^-1), stored as mean and Cholesky factor.

    The precision ``Lambda = R.T @ R`` is kept through its upper triangular
    factor ``R``; every quantity (covariance products, log-determinants, KL
    divergences, samples) is computed with triangular solves, never with an
    explicit inverse. Instances are never modified: rank-k updates and
    downdates, and :meth:`with_mean`, return new posteriors.

    Build instances with :meth:`from_precision`, :meth:`from_covariance` or
    :meth:`from_cholesky`.

    Parameters
    ----------
    mean : array-like of shape (n_features,)
        Mean vector.
    precision_cholesky : ndarray of shape (n_features, n_features)
        Upper triangular ``R`` with ``precision = R.T @ R``.
    eigenvalue_bound : float, default=0.0
        A lower bound on the smallest eigenvalue of the precision (up to the
        round-off of the factor), known to the caller (0.0, always true, when
        none is known). Rank-k updates
        and downdates carry it along by Weyl's inequality; a method may use
        it to certify that a forgotten precision stays above a floor
        without factorising again.

    Attributes
    ----------
    mean : ndarray of shape (n_features,)
        Mean vector.
    n_features : int
        Dimension of the distribution.
    eigenvalue_bound : float
        The lower bound on the smallest eigenvalue of the precision.

    Examples
    --------
    >>> import numpy as np
    >>> from sklunlearn.posterior import GaussianPosterior
    >>> p = GaussianPosterior.from_precision(np.zeros(2), 2 * np.eye(2))
    >>> p.covariance
    array([[0.5, 0. ],
           [0. , 0.5]])
    >>> q = GaussianPosterior.from_covariance(np.ones(2), np.eye(2))
    >>> round(p.kl_divergence(q), 6)
    np.float64(1.193147)
    """

    def __init__(self, mean, precision_cholesky, *, eigenvalue_bound=0.0):
        mean = np.array(mean, dtype=np.float64, copy=True).reshape(-1)
        R = np.asarray(precision_cholesky, dtype=np.float64)
        if R.shape != (mean.shape[0], mean.shape[0]):
            raise ValueError(
                f"precision_cholesky must have shape {(mean.shape[0],) * 2} to match a "
                f"mean of length {mean.shape[0]}, got {R.shape}."
            )
        if not (np.isfinite(mean).all() and np.isfinite(R).all()):
            raise ValueError("The mean and the Cholesky factor must be finite.")
        if (R.diagonal() <= 0).any():
            raise NotPositiveDefiniteError(
                "The Cholesky factor must have a positive diagonal."
            )
        if not 0.0 <= eigenvalue_bound < np.inf:
            raise ValueError(
                "eigenvalue_bound must be finite and non-negative, got "
                f"{eigenvalue_bound!r}."
            )
        # Read-only, as every array a posterior hands out: instances never change.
        mean.flags.writeable = False
        self.mean = mean
        self.eigenvalue_bound = float(eigenvalue_bound)
        # A new C-contiguous array (the row-wise kernels need it): the caller's is not
        # kept. One copy, its lower triangle zeroed in place: fresh d x d arrays cost
        # page faults as well as flops.
        upper = np.array(R, order="C")
        upper[_strict_lower(R.shape[0])] = 0.0
        self._R = upper
        self._precision = None  # R' R, computed once when first needed

    def __copy__(self):
        # The arrays are never modified, so a shallow copy may share them.
        new = object.__new__(type(self))
        new.__dict__.update(self.__dict__)
        return new

    def __deepcopy__(self, memo):
        new = self.copy()
        new._precision = None if self._precision is None else self._precision.copy()
        return new

    def __getstate__(self):
        # The precision a posterior was built from (or has computed) travels with it:
        # R'R recomputed from the factor differs from it in round-off, and a model
        # sensitive to round-off would continue differently after unpickling.
        return {
            "mean": self.mean,
            "_R": self._R,
            "eigenvalue_bound": self.eigenvalue_bound,
            "_precision": self._precision,
        }

    def __setstate__(self, state):
        self.mean, self._R = np.array(state["mean"], dtype=np.float64), state["_R"]
        self.mean.flags.writeable = False
        self.eigenvalue_bound = state.get("eigenvalue_bound", 0.0)  # older pickles
        self._precision = state.get("_precision")

    # ------------------------------------------------------------------ builders
    @classmethod
    def from_precision(cls, mean, precision, *, eigenvalue_bound=0.0):
        """Build from a mean and a (symmetric positive definite) precision matrix.

        Parameters
        ----------
        mean : array-like of shape (n_features,)
            Mean vector.
        precision : array-like of shape (n_features, n_features)
            Precision matrix, symmetric up to round-off (a larger asymmetry
            raises ``ValueError``).
        eigenvalue_bound : float, default=0.0
            A lower bound on the smallest eigenvalue of ``precision``, as in
            the constructor.

        Returns
        -------
        posterior : GaussianPosterior
            The posterior ``N(mean, precision^-1)``.

        Raises
        ------
        NotPositiveDefiniteError
            If ``precision`` is not positive definite.
        """
        precision = np.asarray(precision, dtype=np.float64)
        new = cls(
            mean,
            _upper_cholesky(precision, "precision matrix"),
            eigenvalue_bound=eigenvalue_bound,
        )
        symmetric = precision + precision.T
        symmetric *= 0.5
        new._precision = symmetric
        return new

    @classmethod
    def from_covariance(cls, mean, covariance):
        """Build from a mean and a (symmetric positive definite) covariance matrix.

        With ``covariance = U.T @ U`` (U upper), the precision is
        ``U^-1 U^-T``; its factor is obtained from the triangular inverse of
        ``U`` without forming any inverse of a full matrix.

        Parameters
        ----------
        mean : array-like of shape (n_features,)
            Mean vector.
        covariance : array-like of shape (n_features, n_features)
            Covariance matrix.

        Returns
        -------
        posterior : GaussianPosterior
            The posterior ``N(mean, covariance)``.

        Raises
        ------
        NotPositiveDefiniteError
            If ``covariance`` is not positive definite.
        """
        covariance = np.asarray(covariance, dtype=np.float64)
        U = _upper_cholesky(covariance, "covariance matrix")
        d = U.shape[0]
        U_inv = linalg.solve_triangular(U, np.eye(d), lower=False)
        # precision = U_inv @ U_inv.T; U_inv is upper, so a QR of U_inv.T gives
        # precision = R.T @ R with R upper.
        R = linalg.qr(U_inv.T, mode="r")[0]
        signs = np.sign(np.diag(R))
        signs[signs == 0] = 1.0
        return cls(mean, signs[:, None] * R)

    @classmethod
    def from_cholesky(cls, mean, precision_cholesky, lower=False):
        """Build from a mean and a Cholesky factor of the precision.

        Parameters
        ----------
        mean : array-like of shape (n_features,)
            Mean vector.
        precision_cholesky : array-like of shape (n_features, n_features)
            Triangular factor of the precision: upper ``R`` with ``precision =
            R.T @ R``, or lower ``L = R.T`` with ``lower=True``.
        lower : bool, default=False
            Whether ``precision_cholesky`` is the lower factor.

        Returns
        -------
        posterior : GaussianPosterior
            The posterior ``N(mean, precision^-1)``.
        """
        R = np.asarray(precision_cholesky, dtype=np.float64)
        return cls(mean, R.T if lower else R)

    # ---------------------------------------------------------------- properties
    @property
    def n_features(self):
        """Dimension of the distribution."""
        return self.mean.shape[0]

    @property
    def precision_cholesky(self):
        """Upper triangular ``R`` with ``precision = R.T @ R`` (a copy)."""
        return self._R.copy()

    @property
    def precision(self):
        """Precision matrix ``R.T @ R`` (read-only: the posterior never changes)."""
        if self._precision is None:
            # Forming R' R costs more than a Cholesky factorisation: done once.
            self._precision = self._R.T @ self._R
        view = self._precision.view()
        view.flags.writeable = False
        return view

    @property
    def covariance(self):
        """Covariance matrix ``R^-1 R^-T`` (computed by triangular solves)."""
        R_inv = linalg.solve_triangular(self._R, np.eye(self.n_features), lower=False)
        return R_inv @ R_inv.T

    def log_det_covariance(self):
        """Log-determinant of the covariance, ``-2 sum(log(diag(R)))``.

        Returns
        -------
        log_det : float
        """
        return -2.0 * np.sum(np.log(np.diag(self._R)))

    # --------------------------------------------------------------- operations
    def with_mean(self, mean):
        """The same precision around another ``mean`` (a new posterior).

        A Newton step solves with the new precision's factor before the new
        mean is known; this reuses that factor instead of factorising again.

        Parameters
        ----------
        mean : array-like of shape (n_features,)
            The new mean; finite.

        Returns
        -------
        posterior : GaussianPosterior
            ``N(mean, precision^-1)`` with this posterior's precision.
        """
        mean = np.array(mean, dtype=np.float64, copy=True).reshape(-1)
        if mean.shape != self.mean.shape or not np.isfinite(mean).all():
            raise ValueError(f"mean must be {self.n_features} finite numbers.")
        mean.flags.writeable = False
        new = copy.copy(self)  # shares the factor and precision, which never change
        new.mean = mean
        return new

    def mahalanobis(self, theta):
        """``||R (theta - mean)||``: the distance of ``theta`` in standard deviations.

        Parameters
        ----------
        theta : array-like of shape (n_features,)
            A point.

        Returns
        -------
        distance : float
            The Mahalanobis distance of ``theta`` from the mean.
        """
        r = self._R @ (_point(theta, self.n_features) - self.mean)
        return float(np.sqrt(r @ r))

    def solve(self, b):
        """Return ``covariance @ b`` (``precision^-1 b``) by two triangular solves.

        Parameters
        ----------
        b : array-like of shape (n_features,) or (n_features, k)
            Right-hand side(s).

        Returns
        -------
        x : ndarray of the shape of ``b``
            ``precision^-1 b``.
        """
        # R' is the lower factor in Fortran order, which LAPACK reads in place: given
        # the C-ordered R itself, cho_solve copies all d^2 entries on every call.
        return linalg.cho_solve((self._R.T, True), b, check_finite=False)  # R is finite

    def whiten(self, X):
        """Return ``R^-T @ X.T`` of shape (n_features, n_samples).

        Column ``i`` has squared norm ``x_i' covariance x_i``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Rows to whiten.

        Returns
        -------
        Z : ndarray of shape (n_features, n_samples)
            The whitened rows, as columns.
        """
        X = np.atleast_2d(np.asarray(X, dtype=np.float64))
        return linalg.solve_triangular(self._R, X.T, lower=False, trans="T")

    def predictive_variance(self, X):
        """Return ``diag(X @ covariance @ X.T)``, the variance of ``X @ theta``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Rows ``x_i``.

        Returns
        -------
        variance : ndarray of shape (n_samples,)
            ``x_i' covariance x_i`` for each row.
        """
        X = np.atleast_2d(np.asarray(X, dtype=np.float64))
        variance = np.empty(X.shape[0])
        # Row blocks: the whitened rows are a (d, block) temporary, not (d, n)
        # (fitting with inference='vi' evaluates this on every row, every pass).
        for start in range(0, X.shape[0], _VARIANCE_BLOCK_ROWS):
            Z = self.whiten(X[start : start + _VARIANCE_BLOCK_ROWS])
            variance[start : start + Z.shape[1]] = np.einsum("ij,ij->j", Z, Z)
        return variance

    def log_pdf(self, theta):
        """Log-density at the rows of ``theta``.

        Parameters
        ----------
        theta : array-like of shape (n_points, n_features) or (n_features,)
            Points at which to evaluate the density.

        Returns
        -------
        log_density : ndarray of shape (n_points,)
            The log-density at each point (shape (1,) for a vector).
        """
        theta = _points(theta, self.n_features)
        Z = self._R @ (theta - self.mean).T
        d = self.n_features
        return (
            -0.5 * np.einsum("ij,ij->j", Z, Z)
            - 0.5 * d * np.log(2 * np.pi)
            - 0.5 * self.log_det_covariance()
        )

    def sample(self, n_samples=1, random_state=None):
        """Draw ``n_samples`` samples, ``mean + R^-1 z`` with ``z ~ N(0, I)``.

        Parameters
        ----------
        n_samples : int, default=1
            Number of samples.
        random_state : int, RandomState instance or None, default=None
            Source of the normal draws.

        Returns
        -------
        samples : ndarray of shape (n_samples, n_features)
        """
        rng = check_random_state(random_state)
        z = rng.standard_normal((self.n_features, int(n_samples)))
        return self.mean + linalg.solve_triangular(self._R, z, lower=False).T

    def kl_divergence(self, other):
        """KL(self || other) in nats, from the two Cholesky factors.

        ``0.5 * (tr(P_o S_s) + (m_o - m_s)' P_o (m_o - m_s) - d + log|S_o| - log|S_s|)``
        with ``tr(P_o S_s) = ||R_o R_s^-1||_F^2``; the round-off below zero of
        nearly equal posteriors (about -1e-15) is returned as 0.0, so that ratios
        of divergences keep their sign.

        Parameters
        ----------
        other : GaussianPosterior or DiagonalGaussianPosterior
            The second distribution, of the same dimension.

        Returns
        -------
        kl : float
            KL(self || other) in nats, non-negative.
        """
        if isinstance(other, DiagonalGaussianPosterior):
            # As a full posterior: the factor of a diagonal precision is its square root.
            other = GaussianPosterior(other.mean, np.diag(np.sqrt(other.precision)))
        if not isinstance(other, GaussianPosterior):
            raise TypeError(
                "other must be a GaussianPosterior or a DiagonalGaussianPosterior, got "
                f"{type(other).__name__}."
            )
        if other.n_features != self.n_features:
            raise ValueError(
                f"Cannot compare a {self.n_features}-dimensional posterior with a "
                f"{other.n_features}-dimensional one."
            )
        # (R_o R_s^-1)^T = R_s^-T R_o^T
        M = linalg.solve_triangular(self._R, other._R.T, lower=False, trans="T")
        trace = np.sum(M * M)
        r = other._R @ (other.mean - self.mean)
        mahalanobis = r @ r
        log_det_ratio = other.log_det_covariance() - self.log_det_covariance()
        return max(0.5 * (trace + mahalanobis - self.n_features + log_det_ratio), 0.0)

    def copy(self):
        """Return an independent copy.

        Returns
        -------
        posterior : GaussianPosterior
        """
        return GaussianPosterior(self.mean, self._R, eigenvalue_bound=self.eigenvalue_bound)

    # ---------------------------------------------------- rank-k (down)dates
    def _rank_k_change(self, X, weights, sign):
        X = np.atleast_2d(np.asarray(X, dtype=np.float64))
        if X.shape[1] != self.n_features:
            raise ValueError(
                f"X has {X.shape[1]} columns; this posterior has {self.n_features} "
                "dimensions."
            )
        if weights is None:
            weights = np.ones(X.shape[0])
        weights = np.asarray(weights, dtype=np.float64).reshape(-1)
        if (
            weights.shape[0] != X.shape[0]
            or np.any(weights < 0)
            or not np.all(np.isfinite(weights))
        ):
            raise ValueError(
                f"weights must be {X.shape[0]} finite non-negative numbers, one per row."
            )
        if not np.all(np.isfinite(X)):
            raise ValueError("X contains NaN or infinity.")
        # Weyl's inequality: adding a PSD change keeps the bound; removing one lowers
        # it by at most the change's largest eigenvalue, at most its trace.
        bound = self.eigenvalue_bound
        if sign < 0:
            bound = max(bound - float(weights @ np.einsum("ij,ij->i", X, X)), 0.0)
        if X.shape[0] * _DENSE_UPDATE_RATIO < self.n_features:
            try:
                R_new = cholesky_rank_k_update(self._R, X, weights, sign)
            except CholeskyUpdateError as exc:
                raise NotPositiveDefiniteError(str(exc)) from exc
            new = copy.copy(self)  # R_new is a new, checked upper factor
            new._R = R_new
            new.eigenvalue_bound = bound
            if self._precision is not None:  # O(k d^2), where R' R would cost O(d^3)
                change = X.T @ (weights[:, None] * X)
                new._precision = (
                    self._precision + change if sign > 0 else self._precision - change
                )
            return new
        change = X.T @ (weights[:, None] * X)
        what = (
            "updated precision matrix"
            if sign > 0
            else "downdated precision matrix "
            "(the rows removed carry more information than the posterior holds)"
        )
        precision = self.precision + sign * change
        new = GaussianPosterior(
            self.mean, _upper_cholesky(precision, what), eigenvalue_bound=bound
        )
        new._precision = precision
        return new

    def rank_update(self, X, weights=None):
        """Posterior with ``X.T @ diag(weights) @ X`` added to the precision.

        The mean is unchanged; this posterior is not modified.

        Parameters
        ----------
        X : array-like of shape (k, n_features)
            Rows whose weighted outer products are added.
        weights : array-like of shape (k,), default=None
            Non-negative weights, ones by default.

        Returns
        -------
        posterior : GaussianPosterior
            A new posterior. Few rows against many dimensions are applied as
            rank-one updates of the Cholesky factor (O(k d^2)), more by a new
            factorisation.
        """
        return self._rank_k_change(X, weights, 1.0)

    def rank_downdate(self, X, weights=None):
        """Posterior with ``X.T @ diag(weights) @ X`` subtracted from the precision.

        The mean is unchanged; this posterior is not modified.

        Parameters
        ----------
        X : array-like of shape (k, n_features)
            Rows whose weighted outer products are subtracted.
        weights : array-like of shape (k,), default=None
            Non-negative weights, ones by default.

        Returns
        -------
        posterior : GaussianPosterior
            A new posterior, computed as in :meth:`rank_update`.

        Raises
        ------
        NotPositiveDefiniteError
            If the result would not be positive definite.
        """
        return self._rank_k_change(X, weights, -1.0)

    def __repr__(self):
        return f"GaussianPosterior(n_features={self.n_features})"
