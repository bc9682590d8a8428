"""Deterministic choice of inducing points that does not keep training rows."""

from numbers import Integral

import numpy as np
from sklearn.cluster import KMeans
from sklearn.utils.validation import check_array


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
        n_clusters=n_inducing,
        init="k-means++",
        n_init=1,
        max_iter=100,
        random_state=random_state,
    )
    return np.ascontiguousarray(kmeans.fit(rows, sample_weight=weights).cluster_centers_)


def resolve_inducing_points(estimator, X, sample_weight):
    """The estimator's ``inducing_points`` parameter as an array for data ``X``.

    An int selects that many with :func:`select_inducing_points` and the
    estimator's ``random_state``; an array is validated like ``X``.
    """
    if isinstance(estimator.inducing_points, Integral):
        return select_inducing_points(
            X, sample_weight, int(estimator.inducing_points), estimator.random_state
        )
    # Inducing points are locations, not rows of a frame: no feature-name check
    # (an array of them beside a DataFrame of rows would warn for nothing).
    Z = check_array(
        estimator.inducing_points, dtype=np.float64, input_name="inducing_points"
    )
    if Z.shape[1] != X.shape[1]:
        raise ValueError(
            f"inducing_points has {Z.shape[1]} features, but X has {X.shape[1]}; give "
            "inducing points in the space of the rows."
        )
    return Z


def coinciding_inducing_points(X, Z):
    """Indices of the inducing points equal (bit for bit) to some row of ``X``."""

    def as_bytes(A):
        A = np.ascontiguousarray(A, dtype=np.float64)
        return A.view(np.dtype((np.void, A.dtype.itemsize * A.shape[1]))).ravel()

    return np.flatnonzero(np.isin(as_bytes(Z), as_bytes(X)))


def forgotten_inducing_points_message(X, Z, advice):
    """Text of the UnlearningWarning when forgotten rows are stored as inducing points.

    None when no row of ``X`` is an inducing point of ``Z``.
    """
    indices = coinciding_inducing_points(X, Z)
    if not indices.size:
        return None
    return (
        f"inducing_points_ {indices.tolist()} are copies of rows being forgotten; "
        "their contribution to the posterior is removed, but the rows themselves "
        "remain stored in the model as inducing locations. " + advice
    )
