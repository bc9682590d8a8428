"""Gaussian posteriors with a diagonal precision: a mean and one precision per weight."""

import numpy as np
from sklearn.utils import check_random_state

__all__ = ["DiagonalGaussianPosterior"]

# Rows of a Jacobian block read at a time by predictive_variance.
_VARIANCE_BLOCK_ROWS = 4096


def _frozen(values, name, n_features=None):
    """``values`` as a new read-only float64 vector, checked finite."""
    array = np.array(values, dtype=np.float64, copy=True).reshape(-1)
    if n_features is not None and array.shape[0] != n_features:
        raise ValueError(
            f"{name} must have {n_features} entries to match the mean, got "
            f"{array.shape[0]}."
        )
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} must be finite.")
    array.flags.writeable = False
    return array


def _point(theta, n_features):
    """``theta`` as one float64 point of ``n_features`` coordinates, or a ValueError."""
    theta = np.asarray(theta, dtype=np.float64)
    if theta.shape != (n_features,):
        raise ValueError(
            f"theta must be a vector of {n_features} coordinates, got shape {theta.shape}."
        )
    return theta


def _points(theta, n_features):
    """``theta`` as rows of ``n_features`` coordinates (one row from a vector)."""
    theta = np.atleast_2d(np.asarray(theta, dtype=np.float64))
    if theta.ndim != 2 or theta.shape[1] != n_features:
        raise ValueError(
            f"theta must have {n_features} coordinates per row, got shape {theta.shape}."
        )
    return theta


class DiagonalGaussianPosterior:
    """Multivariate normal ``N(mean, diag(precision)^-1)``: independent coordinates.

    The posterior of a model whose full precision matrix is too large to keep
    (a network of tens of thousands of weights): ``O(d)`` memory, and every
    operation below costs ``O(d)`` per row. The interface follows
    :class:`~sklunlearn.posterior.GaussianPosterior` where the operation makes
    sense for a diagonal precision; ``precision`` is the vector of the
    diagonal, not a matrix. Instances are never modified: :meth:`with_mean`
    returns a new posterior, and ``mean`` and ``precision`` are read-only
    arrays.

    Parameters
    ----------
    mean : array-like of shape (n_features,)
        Mean vector.
    precision : array-like of shape (n_features,)
        Positive, finite precision of each coordinate (the diagonal of the
        precision matrix).

    Attributes
    ----------
    mean : ndarray of shape (n_features,)
        Mean vector (read-only).
    n_features : int
        Dimension of the distribution.

    See Also
    --------
    sklunlearn.posterior.GaussianPosterior : Full-covariance Gaussian posterior.

    Examples
    --------
    >>> import numpy as np
    >>> from sklunlearn.posterior import DiagonalGaussianPosterior
    >>> p = DiagonalGaussianPosterior(np.zeros(2), [2.0, 4.0])
    >>> p.variance
    array([0.5 , 0.25])
    >>> q = DiagonalGaussianPosterior(np.ones(2), [1.0, 1.0])
    >>> round(float(p.kl_divergence(q)), 6)
    1.414721
    """

    def __init__(self, mean, precision):
        mean = _frozen(mean, "mean")
        precision = _frozen(precision, "precision", mean.shape[0])
        if np.any(precision <= 0):
            raise ValueError("The precision must be positive in every coordinate.")
        self.mean = mean
        self._precision = precision

    def __getstate__(self):
        return {"mean": np.array(self.mean), "precision": np.array(self._precision)}

    def __setstate__(self, state):
        self.__init__(state["mean"], state["precision"])

    # ---------------------------------------------------------------- properties
    @property
    def n_features(self):
        """Dimension of the distribution."""
        return self.mean.shape[0]

    @property
    def precision(self):
        """Precision of each coordinate, shape (n_features,) (read-only)."""
        return self._precision

    @property
    def variance(self):
        """Variance of each coordinate, ``1 / precision``, shape (n_features,)."""
        return 1.0 / self._precision

    @property
    def covariance(self):
        """The covariance matrix ``diag(variance)``, as a sparse diagonal array.

        ``O(d)`` memory, where a dense ``d x d`` matrix of a network's weights
        would not fit; it multiplies as a matrix does (``covariance @ v``), and
        ``covariance.toarray()`` gives the dense matrix of a small model.
        """
        from scipy import sparse

        return sparse.diags_array(self.variance)

    def log_det_covariance(self):
        """Log-determinant of the covariance, ``-sum(log(precision))``."""
        return -float(np.sum(np.log(self._precision)))

    # --------------------------------------------------------------- operations
    def with_mean(self, mean):
        """The same precision around another ``mean`` (a new posterior).

        Parameters
        ----------
        mean : array-like of shape (n_features,)
            The new mean; finite.

        Returns
        -------
        posterior : DiagonalGaussianPosterior
            ``N(mean, diag(precision)^-1)`` with this posterior's precision.
        """
        return DiagonalGaussianPosterior(mean, self._precision)

    def copy(self):
        """Return an independent copy."""
        return DiagonalGaussianPosterior(self.mean, self._precision)

    def mahalanobis(self, theta):
        """``sqrt(sum_j precision_j (theta_j - mean_j)^2)``, in standard deviations.

        Parameters
        ----------
        theta : array-like of shape (n_features,)
            A point.

        Returns
        -------
        distance : float
            The Mahalanobis distance of ``theta`` from the mean.
        """
        d = _point(theta, self.n_features) - self.mean
        return float(np.sqrt(d @ (self._precision * d)))

    def solve(self, b):
        """Return ``covariance @ b``: ``b / precision`` along the first axis.

        Parameters
        ----------
        b : array-like of shape (n_features,) or (n_features, k)
            Right-hand side(s).

        Returns
        -------
        x : ndarray of the shape of ``b``
            ``b`` divided by the precision, row by row.
        """
        b = np.asarray(b, dtype=np.float64)
        return b / self._precision.reshape((-1,) + (1,) * (b.ndim - 1))

    def predictive_variance(self, X):
        """Return ``diag(X @ covariance @ X.T) = sum_j X_ij^2 / precision_j``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Rows, such as a block of a model's Jacobian.

        Returns
        -------
        variance : ndarray of shape (n_samples,)
            ``x_i' covariance x_i`` for each row.
        """
        X = np.atleast_2d(np.asarray(X, dtype=np.float64))
        if X.shape[1] != self.n_features:
            raise ValueError(
                f"X has {X.shape[1]} columns; this posterior has {self.n_features} "
                "dimensions."
            )
        variance = np.empty(X.shape[0])
        inverse = self.variance
        # Row blocks: X**2 is a (block, d) temporary, not (n, d).
        for start in range(0, X.shape[0], _VARIANCE_BLOCK_ROWS):
            block = X[start : start + _VARIANCE_BLOCK_ROWS]
            variance[start : start + block.shape[0]] = (block * block) @ inverse
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
        d = _points(theta, self.n_features) - self.mean
        return (
            -0.5 * (d * d) @ self._precision
            - 0.5 * self.n_features * np.log(2 * np.pi)
            - 0.5 * self.log_det_covariance()
        )

    def sample(self, n_samples=1, random_state=None):
        """Draw ``n_samples`` samples, ``mean + z / sqrt(precision)``, ``z ~ N(0, I)``.

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
        z = rng.standard_normal((int(n_samples), self.n_features))
        return self.mean + z / np.sqrt(self._precision)

    def kl_divergence(self, other):
        """KL(self || other) in nats.

        With another diagonal posterior, in closed form per coordinate::

            0.5 sum_j (p_o / p_s + p_o (m_o - m_s)^2 - 1 + log p_s - log p_o)_j

        With a :class:`~sklunlearn.posterior.GaussianPosterior` ``other`` of
        precision ``P_o``: ``0.5 (sum_j (P_o)_jj / p_s,j + (m_o - m_s)' P_o
        (m_o - m_s) - d + log|S_o| - log|S_s|)``.

        Parameters
        ----------
        other : DiagonalGaussianPosterior or GaussianPosterior
            The second distribution, of the same dimension.

        Returns
        -------
        kl : float
            KL(self || other) in nats.
        """
        from .posterior import GaussianPosterior

        if not isinstance(other, DiagonalGaussianPosterior | GaussianPosterior):
            raise TypeError(
                "other must be a DiagonalGaussianPosterior or a GaussianPosterior, got "
                f"{type(other).__name__}."
            )
        if other.n_features != self.n_features:
            raise ValueError(
                f"Cannot compare a {self.n_features}-dimensional posterior with a "
                f"{other.n_features}-dimensional one."
            )
        d = other.mean - self.mean
        if isinstance(other, DiagonalGaussianPosterior):
            ratio = other._precision / self._precision
            return 0.5 * float(
                np.sum(ratio - 1.0 - np.log(ratio)) + d @ (other._precision * d)
            )
        return kl_from_trace(self, other, float(np.diag(other.precision) @ self.variance))

    def __repr__(self):
        return f"DiagonalGaussianPosterior(n_features={self.n_features})"


def kl_from_trace(p, q, trace):
    """KL(p || q) of two Gaussians given ``trace = tr(Sigma_p Lambda_q)``.

    ``0.5 (tr(Sigma_p Lambda_q) + (m_q - m_p)' Lambda_q (m_q - m_p) - d +
    log|Sigma_q| - log|Sigma_p|)``: the trace is the one term whose cheap form
    depends on which of the two is diagonal. Round-off below zero is returned
    as 0.0.
    """
    kl = 0.5 * (
        trace
        + q.mahalanobis(p.mean) ** 2
        - p.n_features
        + q.log_det_covariance()
        - p.log_det_covariance()
    )
    return max(float(kl), 0.0)
