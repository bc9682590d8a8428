"""Deterministic choice of inducing points that does not keep training rows."""

import warnings

import numpy as np
from sklearn.cluster import KMeans

from ..exceptions import UnlearningWarning


def select_inducing_points(X, sample_weight, n_inducing, random_state):
    """Weighted k-means++ centroids of the rows with non-zero weight.

    Centroids are averages of rows, not rows, so forgetting a row leaves no
    copy of it in the model (except for a cluster of one row, whose centroid
    is that row: :func:`coinciding_inducing_points` detects it). With
    ``n_inducing`` at least the number of distinct rows, the distinct rows
    themselves are returned (the exact-GP limit).

    Returns
    -------
    Z : ndarray of shape (min(n_inducing, n_distinct), n_features)
    """
    keep = sample_weight > 0
    rows, weights = X[keep], sample_weight[keep]
    distinct = np.unique(rows, axis=0)
    if distinct.shape[0] <= n_inducing:
        return distinct
    kmeans = KMeans(
        n_clusters=n_inducing, init="k-means++", n_init=1, max_iter=100,
        random_state=random_state,
    )
    return np.ascontiguousarray(kmeans.fit(rows, sample_weight=weights).cluster_centers_)


def coinciding_inducing_points(X, Z):
    """Indices of the inducing points equal (bit for bit) to some row of ``X``."""
    hits = np.zeros(Z.shape[0], dtype=bool)
    for start in range(0, X.shape[0], 256):
        block = X[start:start + 256]
        hits |= np.any(np.all(block[:, None, :] == Z[None, :, :], axis=2), axis=0)
    return np.flatnonzero(hits)


def warn_if_inducing_points_forgotten(X, Z, advice):
    """Warn when forgotten rows are still stored as inducing points."""
    indices = coinciding_inducing_points(X, Z)
    if indices.size:
        warnings.warn(
            f"inducing_points_ {indices.tolist()} are copies of rows being forgotten; "
            "their contribution to the posterior is removed, but the rows themselves "
            "remain stored in the model as inducing locations. " + advice,
            UnlearningWarning,
            stacklevel=3,
        )
