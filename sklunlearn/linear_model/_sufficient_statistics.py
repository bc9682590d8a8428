"""Weighted sufficient statistics of a linear-Gaussian model that add and subtract.

Statistics are stored centred on their own weighted means (Chan, Golub &
LeVeque 1979, pairwise update), which keeps the centred Gram matrix accurate
when features have large offsets, and means that nothing but the current
weighted means is ever stored as a location: after forgetting, no reference
point of the forgotten rows survives.
"""

from typing import NamedTuple

import numpy as np

from ..exceptions import NotPositiveDefiniteError


class LinearStatistics(NamedTuple):
    """Weighted statistics of rows ``(x_i, y_i)`` with weights ``w_i``.

    Fields
    ------
    weight_sum : float
        ``W = sum w_i``.
    n_rows : int
        Number of rows with a non-zero weight.
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
    """

    weight_sum: float
    n_rows: int
    x_mean: np.ndarray
    y_mean: float
    xx: np.ndarray
    xy: np.ndarray
    yy: float

    @classmethod
    def empty(cls, n_features):
        """Statistics of no rows (the identity of :meth:`merge`)."""
        return cls(
            0.0, 0, np.zeros(n_features), 0.0,
            np.zeros((n_features, n_features)), np.zeros(n_features), 0.0,
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
        if n_rows != X.shape[0] or np.any(sample_weight != 1.0):
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
        ``scatter = scatter_a + sign * scatter_b + delta delta' W_a v / W``.
        With ``sign=-1`` this is the exact inverse of ``sign=1``.
        """
        v = sign * other.weight_sum
        weight_sum = self.weight_sum + v
        n_rows = self.n_rows + int(sign) * other.n_rows
        if weight_sum <= 1e-12 * max(self.weight_sum, other.weight_sum, 1.0):
            raise ValueError(
                "Forgetting these rows would remove all of the training weight "
                f"({self.weight_sum:.6g} learned, {other.weight_sum:.6g} to forget); "
                "fit a new estimator instead."
            )
        factor = v / weight_sum
        dx = other.x_mean - self.x_mean
        dy = other.y_mean - self.y_mean
        cross = self.weight_sum * factor
        return LinearStatistics(
            weight_sum,
            n_rows,
            self.x_mean + factor * dx,
            self.y_mean + factor * dy,
            self.xx + sign * other.xx + cross * np.outer(dx, dx),
            self.xy + sign * other.xy + cross * dx * dy,
            self.yy + sign * other.yy + cross * dy * dy,
        )

    def __add__(self, other):
        return self.merge(other, 1.0)

    def __sub__(self, other):
        return self.merge(other, -1.0)

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
            self.yy + W * self.y_mean ** 2,
        )


def psd_eigh(gram, yty, rtol=1e-8):
    """Eigendecomposition of a Gram matrix that must be positive semi-definite.

    Raises :class:`~sklunlearn.exceptions.NotPositiveDefiniteError` when it is
    clearly indefinite (which is what forgetting rows that were never learned
    produces); otherwise returns ``(eigenvalues, eigenvectors)`` with the
    round-off negatives clipped to zero.
    """
    eigenvalues, eigenvectors = np.linalg.eigh(gram)
    scale = max(float(np.max(np.abs(eigenvalues), initial=0.0)), np.finfo(float).tiny)
    if eigenvalues[0] < -rtol * scale or yty < -rtol * max(abs(yty), 1.0):
        raise NotPositiveDefiniteError(
            "After forgetting, the Gram matrix of the remaining data is not "
            f"positive semi-definite (smallest eigenvalue {eigenvalues[0]:.3g}). "
            "The rows passed to partial_unfit (with these weights) were not "
            "all part of the training data."
        )
    return np.clip(eigenvalues, 0.0, None), eigenvectors
