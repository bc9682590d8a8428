"""Shared pieces of the update and forgetting methods."""

from typing import NamedTuple

import numpy as np
from scipy import linalg, stats
from scipy.linalg import lapack

from ..posterior import GaussianPosterior

__all__ = [
    "UpdateResult",
    "floor_precision",
    "linear_predictor_moments",
    "mahalanobis",
    "region_mahalanobis_radius",
    "region_mass",
    "safe_posterior",
]


class UpdateResult(NamedTuple):
    """Outcome of adding or forgetting rows.

    Fields
    ------
    posterior : GaussianPosterior
        The new Gaussian posterior (a new object; the input is untouched).
    n_iter : int
        Iterations (Newton or fixed-point steps) run.
    converged : bool
        Whether the stopping criterion was met within ``max_iter``.
    diagnostics : dict
        Method-specific measurements (documented by each method), e.g. the
        Mahalanobis size of the move, the effective sample size, the mass of
        ``q(theta|D)`` inside the adjusted-likelihood region, and
        ``warnings``: a list of messages about a result that may be worse
        than not forgetting at all (the caller decides how to raise them).
    """

    posterior: GaussianPosterior
    n_iter: int
    converged: bool
    diagnostics: dict


# Eigenvalues of D^-1/2 (P - D) D^-1/2 down to -FLOOR_SLACK are left alone by
# floor_precision: round-off of a precision built as prior + curvature.
FLOOR_SLACK = 1e-10


def _floor_vector(prior_precision, d):
    if isinstance(prior_precision, float | int):  # the common scalar prior, quickly
        if not 0.0 < prior_precision < np.inf:
            raise ValueError("prior_precision must be positive and finite.")
        return np.full(d, float(prior_precision))
    floor = np.broadcast_to(np.asarray(prior_precision, dtype=np.float64), (d,))
    if np.any(floor <= 0) or not np.all(np.isfinite(floor)):
        raise ValueError("prior_precision must be positive and finite.")
    return np.array(floor)


def floor_precision(precision, prior_precision):
    """Project ``precision`` onto ``{P : P >= diag(prior_precision)}``.

    With a log-concave likelihood every Laplace or Gaussian variational
    posterior has precision ``prior + (positive semi-definite curvature)``, so
    the prior precision is a lower bound. A subtraction of forgotten rows'
    curvature computed at another point, or round-off, can break it; this
    clips the negative eigenvalues of ``D^-1/2 (P - D) D^-1/2`` to zero
    (``D = diag(prior_precision)``), the nearest matrix in that scaled
    Frobenius norm that satisfies the bound.

    Eigenvalues down to ``-FLOOR_SLACK`` (round-off) are left alone; that is
    checked with one Cholesky factorisation, and only a precision that fails
    it is eigendecomposed.

    Returns
    -------
    precision : ndarray of shape (d, d)
        Symmetric, ``>= D (1 - FLOOR_SLACK)`` and so positive definite.
    clipped : float
        The most negative eigenvalue that was clipped (0.0 when none was).
    """
    d = precision.shape[0]
    floor = _floor_vector(prior_precision, d)
    precision = 0.5 * (precision + precision.T)
    # Fast path (the usual case, e.g. every one-step Laplace divide-out): a
    # Cholesky factor of P - (1 - FLOOR_SLACK) D exists, i.e. no eigenvalue of
    # D^-1/2 (P - D) D^-1/2 is below -FLOOR_SLACK, and the bound holds to within
    # that (relative) slack: the precision is returned as is. A Cholesky costs a
    # tenth of the eigendecomposition below.
    if not np.all(np.isfinite(precision)):
        raise ValueError("The precision matrix contains NaN or inf.")
    shifted = precision.copy()
    shifted.flat[:: d + 1] -= (1.0 - FLOOR_SLACK) * floor
    # LAPACK directly: scipy.linalg.cholesky's checks cost more than a d=50 factor.
    _, info = lapack.dpotrf(shifted, lower=0, clean=0, overwrite_a=1)
    if info < 0:  # pragma: no cover - a wrong argument, not a matrix property
        raise ValueError(f"dpotrf: illegal value in argument {-info}.")
    if info == 0:
        return precision, 0.0
    root = np.sqrt(floor)
    excess = (precision - np.diag(floor)) / np.outer(root, root)
    excess = 0.5 * (excess + excess.T)
    eigenvalues, eigenvectors = linalg.eigh(excess)
    clipped = float(min(eigenvalues.min(), 0.0))
    excess = (eigenvectors * np.maximum(eigenvalues, 0.0)) @ eigenvectors.T
    return excess * np.outer(root, root) + np.diag(root**2), clipped


def safe_posterior(mean, precision, prior_precision):
    """GaussianPosterior with ``precision`` floored at the prior (:func:`floor_precision`).

    Returns the posterior and the clipped eigenvalue (0.0 when the
    precision already satisfied the bound).
    """
    precision, clipped = floor_precision(precision, prior_precision)
    return GaussianPosterior.from_precision(mean, precision), clipped


def linear_predictor_moments(posterior, X):
    """Mean and variance of ``f = X @ theta`` under ``theta ~ posterior``."""
    return X @ posterior.mean, posterior.predictive_variance(X)


def region_mahalanobis_radius(unlearning_lambda):
    """Squared Mahalanobis radius ``-2 log lambda`` of ``{q(theta|D) > lambda max q}``."""
    if unlearning_lambda <= 0:
        return np.inf
    return -2.0 * np.log(unlearning_lambda)


def region_mass(unlearning_lambda, n_features):
    """Mass of ``q(theta|D)`` inside the adjusted-likelihood region.

    The region is an ellipsoid of squared Mahalanobis radius ``-2 log lambda``
    under a ``d``-dimensional Gaussian, so its mass is the chi-squared
    distribution function ``F_{chi2_d}(-2 log lambda)``: ``lambda = 0.1``
    holds 68% of the mass at ``d = 5`` but 1% at ``d = 20``.
    """
    if unlearning_lambda <= 0:
        return 1.0
    if unlearning_lambda >= 1:
        return 0.0
    return float(stats.chi2.cdf(region_mahalanobis_radius(unlearning_lambda), n_features))


def mahalanobis(posterior, theta):
    """``||R (theta - mean)||``: distance in units of posterior standard deviations."""
    r = posterior._R @ (theta - posterior.mean)  # the factor itself: no copy
    return float(np.sqrt(r @ r))
