"""The Gaussian prior of a model, and the floor it puts under every precision.

With a log-concave likelihood every Laplace or Gaussian variational posterior
has precision ``prior + (positive semi-definite curvature)``, so the prior
precision is a lower bound on any precision the model can have. A forgotten
precision computed at another point, or round-off, can break that bound;
:func:`floor_precision` projects it back.
"""

import functools
from numbers import Real

import numpy as np
from scipy import linalg

from ..posterior import GaussianPosterior

__all__ = ["FLOOR_SLACK", "GaussianPrior", "floor_precision"]

# Eigenvalues of D^-1/2 (P - D) D^-1/2 down to -FLOOR_SLACK are left alone by
# floor_precision: round-off of a precision built as prior + curvature.
FLOOR_SLACK = 1e-10


class GaussianPrior:
    """Zero-mean Gaussian prior ``N(0, Lambda0^-1)`` over a model's parameters.

    Parameters
    ----------
    precision : float, ndarray of shape (d,) or ndarray of shape (d, d)
        Isotropic ``alpha`` (``Lambda0 = alpha I``), diagonal, or full
        (symmetric positive definite) prior precision.
    n_features : int, default=None
        Dimension ``d``; required for an isotropic prior, checked otherwise.

    Attributes
    ----------
    precision : float or ndarray
        The precision as given (a float for an isotropic prior).
    n_features : int
        Dimension ``d``.
    eigenvalue_range : tuple of float
        ``(low, high)`` with ``low <= eigenvalues of Lambda0 <= high``: exact
        for an isotropic or diagonal prior; ``(0, min(||Lambda0||_F,
        ||Lambda0||_inf))`` for a full one (bounds, not computed eigenvalues).

    Examples
    --------
    >>> from sklunlearn.unlearning import GaussianPrior
    >>> prior = GaussianPrior(4.0, n_features=3)
    >>> prior.posterior().covariance[0, 0]
    np.float64(0.25)
    """

    # What a subclass that sets only ``precision`` claims: nothing (never certified).
    eigenvalue_range = (0.0, np.inf)

    def __init__(self, precision, n_features=None):
        if isinstance(precision, Real):
            if n_features is None:
                raise ValueError("An isotropic prior needs n_features.")
            if not 0.0 < precision < np.inf:
                raise ValueError("The prior precision must be positive and finite.")
            self.precision = float(precision)
            self.n_features = int(n_features)
            self.eigenvalue_range = (self.precision, self.precision)
            return
        precision = np.asarray(precision, dtype=np.float64)
        if precision.ndim not in (1, 2) or (
            precision.ndim == 2 and precision.shape[0] != precision.shape[1]
        ):
            raise ValueError(
                f"The prior precision must be a scalar, a vector or a square matrix, "
                f"got shape {precision.shape}."
            )
        if n_features is not None and precision.shape[0] != n_features:
            raise ValueError(
                f"The prior precision has {precision.shape[0]} dimensions, "
                f"not {n_features}."
            )
        if not np.all(np.isfinite(precision)) or (
            precision.ndim == 1 and np.any(precision <= 0)
        ):
            raise ValueError("The prior precision must be positive and finite.")
        self.precision = precision
        self.n_features = precision.shape[0]
        if precision.ndim == 1:
            self.eigenvalue_range = (float(precision.min()), float(precision.max()))
            return
        # spectral norm <= Frobenius and infinity norms, both O(d^2)
        high = min(np.linalg.norm(precision), np.linalg.norm(precision, np.inf))
        self.eigenvalue_range = (0.0, float(high))
        # Built now, so that a full prior that is not positive definite is refused here.
        self._scaling = _scaling(precision, self.n_features)

    @functools.cached_property
    def _scaling(self):
        """The floor's ``(D, root)``, built on the first :meth:`floor` call.

        An isotropic or diagonal prior of a large network would otherwise carry a
        (d, d) matrix it may never use.
        """
        return _scaling(self.precision, self.n_features)

    def __getstate__(self):
        # The floor's cache is rebuilt on demand: a pickle holds only what defines the
        # prior, so that a forget that built it and was then refused pickles as before.
        state = self.__dict__.copy()
        state.pop("_scaling", None)
        return state

    def precision_matrix(self):
        """``Lambda0`` as a (d, d) array."""
        if isinstance(self.precision, float):
            return self.precision * np.eye(self.n_features)
        if self.precision.ndim == 1:
            return np.diag(self.precision)
        return self.precision.copy()

    def posterior(self):
        """The prior as a ``GaussianPosterior`` (where a fit starts)."""
        low = self.eigenvalue_range[0]
        if isinstance(self.precision, float):
            root = np.sqrt(self.precision) * np.eye(self.n_features)
            return GaussianPosterior(np.zeros(self.n_features), root, eigenvalue_bound=low)
        return GaussianPosterior.from_precision(
            np.zeros(self.n_features), self.precision_matrix(), eigenvalue_bound=low
        )

    def floor(self, precision):
        """Project ``precision`` onto ``{P : P >= Lambda0}`` (see :func:`floor_precision`).

        Parameters
        ----------
        precision : ndarray of shape (d, d)
            Symmetric (only its upper triangle is read when nothing is clipped).

        Returns
        -------
        precision : ndarray of shape (d, d)
            ``>= Lambda0 (1 - FLOOR_SLACK)``: the input when nothing was
            clipped, else the symmetric projection.
        clipped : float
            The most negative eigenvalue clipped (0.0 when none was).
        """
        floor_matrix, root = self._scaling
        if not np.all(np.isfinite(precision)):  # LAPACK may factorise NaN without failing
            raise ValueError("The precision matrix contains NaN or inf.")
        if root.ndim == 1:  # a diagonal floor: shift the diagonal only
            shifted = precision.copy()
            shifted.flat[:: shifted.shape[0] + 1] -= (1.0 - FLOOR_SLACK) * root**2
        else:
            shifted = precision - (1.0 - FLOOR_SLACK) * floor_matrix
        try:  # the bound holds to within the slack: nothing to clip
            linalg.cholesky(shifted, lower=False, overwrite_a=True, check_finite=False)
        except linalg.LinAlgError:
            return _clip(0.5 * (precision + precision.T), floor_matrix, root)
        return precision, 0.0

    def __repr__(self):
        kind = (
            "isotropic"
            if isinstance(self.precision, float)
            else ("diagonal" if self.precision.ndim == 1 else "full")
        )
        return f"GaussianPrior({kind}, n_features={self.n_features})"


def _scaling(prior_precision, d):
    """``(D, root)``: the floor matrix ``D`` and ``root`` with ``D = root root'``.

    ``root`` is a vector (diagonal ``D``) or a lower triangular matrix.
    """
    if isinstance(prior_precision, Real):  # the common scalar prior, quickly
        if not 0.0 < prior_precision < np.inf:
            raise ValueError("prior_precision must be positive and finite.")
        floor = np.full(d, float(prior_precision))
        return np.diag(floor), np.sqrt(floor)
    prior_precision = np.asarray(prior_precision, dtype=np.float64)
    if prior_precision.ndim == 2:
        if prior_precision.shape != (d, d) or not np.all(np.isfinite(prior_precision)):
            raise ValueError("prior_precision must be a finite (d, d) matrix.")
        return prior_precision, linalg.cholesky(prior_precision, lower=True)
    floor = np.broadcast_to(prior_precision, (d,))
    if np.any(floor <= 0) or not np.all(np.isfinite(floor)):
        raise ValueError("prior_precision must be positive and finite.")
    return np.diag(floor), np.sqrt(floor)


def floor_precision(precision, prior_precision):
    """Project ``precision`` onto ``{P : P >= D}``, ``D`` the prior precision.

    Clips the negative eigenvalues of ``root^-1 (P - D) root^-T`` (``D = root
    root'``) to zero: the nearest matrix in that scaled Frobenius norm that
    satisfies the bound. Eigenvalues down to ``-FLOOR_SLACK`` (round-off) are
    left alone; that is checked with one Cholesky factorisation of
    ``P - (1 - FLOOR_SLACK) D``, and only a precision that fails it is
    eigendecomposed.

    Parameters
    ----------
    precision : ndarray of shape (d, d)
        Symmetric precision to floor (returned as is when nothing is clipped).
    prior_precision : float, ndarray of shape (d,) or ndarray of shape (d, d)
        Isotropic, diagonal or full prior precision ``D``.

    Returns
    -------
    precision : ndarray of shape (d, d)
        ``>= D (1 - FLOOR_SLACK)`` and so positive definite.
    clipped : float
        The most negative eigenvalue that was clipped (0.0 when none was).
    """
    return GaussianPrior(prior_precision, precision.shape[0]).floor(precision)


def _clip(precision, floor_matrix, root):
    """Clip the negative eigenvalues of ``root^-1 (P - D) root^-T``: ``(P, clipped)``."""
    if root.ndim == 1:
        scaled = (precision - floor_matrix) / np.outer(root, root)
    else:
        half = linalg.solve_triangular(root, precision - floor_matrix, lower=True)
        scaled = linalg.solve_triangular(root, half.T, lower=True)
    eigenvalues, eigenvectors = linalg.eigh(0.5 * (scaled + scaled.T))
    clipped = float(min(eigenvalues.min(), 0.0))
    excess = (eigenvectors * np.maximum(eigenvalues, 0.0)) @ eigenvectors.T
    if root.ndim == 1:
        return excess * np.outer(root, root) + floor_matrix, clipped
    return root @ excess @ root.T + floor_matrix, clipped
