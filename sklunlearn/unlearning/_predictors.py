"""Predictors ``f = g(x; theta)``: the Jacobian products every method needs.

A forgetting method never sees a design matrix. It asks the predictor for the
value ``f`` of rows at ``theta`` and for products with the Jacobian
``J = df / dtheta`` (one row per data row): ``J' v`` (a gradient),
``J' diag(c) J`` (Gauss-Newton curvature) and ``J`` itself for a block of rows
(per-row gradients). All are computed in row blocks, so no (n, p) temporary
is built. :class:`Predictor` implements the products from :meth:`value` and
:meth:`jacobian`; a predictor that is nonlinear in ``theta`` (a neural
network) only provides those two.
"""

import numpy as np
from scipy import sparse

from .._numba import weighted_gram

__all__ = ["InducingPointPredictor", "LinearPredictor", "Predictor", "row_blocks"]

# Rows per block of the generic products: (block, p) temporaries stay small.
BLOCK_ROWS = 4096


def row_blocks(n, size=BLOCK_ROWS):
    """Slices of ``range(n)`` of at most ``size`` rows."""
    return [slice(start, min(start + size, n)) for start in range(0, n, size)]


class Predictor:
    """Base class of ``f = g(x; theta)`` with ``p`` parameters.

    Subclasses implement :meth:`value` and :meth:`jacobian`; the products
    below are then computed block by block. ``linear_in_parameters`` says
    whether ``J`` does not depend on ``theta`` (then Monte Carlo expectations
    need ``J`` once, and the moments of ``f`` under a Gaussian are exact).
    """

    linear_in_parameters = False

    def value(self, X, theta):
        """``f`` of the rows: shape (n,) for ``theta`` (p,), (n, S) for (p, S)."""
        raise NotImplementedError

    def jacobian(self, X, theta):
        """``J = df / dtheta`` of a block of rows, shape (n, p)."""
        raise NotImplementedError

    def vjp(self, X, theta, v):
        """``J' v``, shape (p,)."""
        return sum(self.jacobian(X[b], theta).T @ v[b] for b in row_blocks(X.shape[0]))

    def gauss_newton(self, X, theta, c):
        """``J' diag(c) J`` for non-negative ``c``, shape (p, p)."""
        total = 0.0
        for b in row_blocks(X.shape[0]):
            J = self.jacobian(X[b], theta)
            total = total + J.T @ (c[b, None] * J)
        return total

    def gauss_newton_product(self, X, theta, c, V):
        """``J' diag(c) J V`` for a (p, s) block of vectors, shape (p, s).

        ``O(n p s)``: cheaper than :meth:`gauss_newton` when ``s`` is small,
        and the (p, p) curvature is never formed.
        """
        total = np.zeros(V.shape)
        for b in row_blocks(X.shape[0]):
            J = self.jacobian(X[b], theta)
            total += J.T @ (c[b, None] * (J @ V))
        return total

    def row_moves(self, X, theta, steps):
        """``|J_i steps|`` and ``||J_i||^2`` of each row.

        For a predictor linear in ``theta``, how far each row's ``f`` moves
        along each of ``steps`` (shape (p,) or (p, s)), shape (n,) or (n, s),
        and the squared norm of its Jacobian, shape (n,).
        """
        moves = np.empty((X.shape[0], *steps.shape[1:]))
        norms = np.empty(X.shape[0])
        for b in row_blocks(X.shape[0]):
            J = self.jacobian(X[b], theta)
            moves[b] = np.abs(J @ steps)
            norms[b] = np.einsum("ij,ij->i", J, J)
        return moves, norms

    def moments(self, X, posterior):
        """Mean and variance of ``f`` under ``theta ~ posterior``, linearised at its mean.

        ``f ~ N(g(x; m), J Sigma J')`` per row: exact for a predictor linear in
        ``theta``, the linearised (delta-method) moments otherwise.
        """
        mean = self.value(X, posterior.mean)
        variance = np.empty(X.shape[0])
        for b in row_blocks(X.shape[0]):
            variance[b] = posterior.predictive_variance(self.jacobian(X[b], posterior.mean))
        return mean, variance

    def fused_terms(self, likelihood, X, y, weights, theta, with_value, vectors=None):
        """Summed likelihood terms from a fused kernel, or None when there is none.

        With ``vectors`` (p, s), the third term is the curvature applied to
        them (see :meth:`Model.terms <sklunlearn.unlearning.Model.terms>`).
        """
        return None

    def candidate_values(self, X, theta):
        """One quantity per candidate parameter group for each row, shape (n, G).

        The variables whose dependence with the loss selects the groups that
        the ``'lcodec'`` method updates (:mod:`._lcodec`); group ``g`` owns
        the parameters ``candidate_indices(theta)[g]``.
        """
        raise self._no_candidate_groups()

    def candidate_indices(self, theta):
        """The indices into ``theta`` of each candidate group: a list of G int arrays.

        Parameters in no group (an intercept, an output layer) are always
        updated by ``'lcodec'``.
        """
        raise self._no_candidate_groups()

    def _no_candidate_groups(self):
        return NotImplementedError(
            f"{type(self).__name__} defines no candidate parameter groups, so "
            "unlearning='lcodec' cannot select among its parameters: implement "
            "candidate_values and candidate_indices, or use another method."
        )


def _dense_rows(X):
    """A block of rows as a C-ordered ndarray (a sparse block is densified, alone)."""
    return X.toarray() if sparse.issparse(X) else np.ascontiguousarray(X)


class LinearPredictor(Predictor):
    """``f = x' w + b``: ``theta = [w, b]`` (``b`` last, only with an intercept).

    The intercept column of ones is implicit: it is never added to ``X``, and
    with a likelihood that has a fused ``linear_terms`` kernel, Newton steps
    read the data in place. ``X`` may be a scipy.sparse matrix (CSR for the
    kernels): the products then never densify it, only :meth:`jacobian` and
    :meth:`moments` densify one block of rows at a time.

    Parameters
    ----------
    fit_intercept : bool, default=True
        Whether ``theta`` ends with an intercept.
    """

    linear_in_parameters = True

    def __init__(self, fit_intercept=True):
        self.fit_intercept = fit_intercept

    def n_parameters(self, n_features):
        """``p`` for rows of ``n_features`` columns."""
        return n_features + int(self.fit_intercept)

    def value(self, X, theta):
        if self.fit_intercept:
            return X @ theta[:-1] + theta[-1]
        return X @ theta

    def jacobian(self, X, theta):
        if self.fit_intercept:
            return np.hstack([_dense_rows(X), np.ones((X.shape[0], 1))])
        return _dense_rows(X)

    def vjp(self, X, theta, v):
        gradient = np.asarray(X.T @ v)
        return np.append(gradient, v.sum()) if self.fit_intercept else gradient

    def gauss_newton(self, X, theta, c):
        return weighted_gram(X, c, intercept=self.fit_intercept)

    def row_moves(self, X, theta, steps):
        # J steps: the rows times the coefficients' steps, plus the intercept's.
        moves = np.abs(X @ steps[:-1] + steps[-1] if self.fit_intercept else X @ steps)
        if sparse.issparse(X):
            norms = np.asarray(X.multiply(X).sum(axis=1)).reshape(-1)
        else:
            norms = np.einsum("ij,ij->i", X, X)
        return moves, norms + float(self.fit_intercept)

    def gauss_newton_product(self, X, theta, c, V):
        if not self.fit_intercept:
            return np.asarray(X.T @ (c[:, None] * (X @ V)))
        scaled = c[:, None] * (X @ V[:-1] + V[-1])
        return np.vstack([np.asarray(X.T @ scaled), scaled.sum(axis=0)])

    def candidate_values(self, X, theta):
        """Feature ``j``'s contribution ``x_j w_j`` to ``f``, shape (n, d)."""
        return _dense_rows(X) * theta[: X.shape[1]]

    def candidate_indices(self, theta):
        """Group ``j`` is ``w_j``; the intercept (last) is in no group."""
        n_features = theta.shape[0] - int(self.fit_intercept)
        return [np.array([j]) for j in range(n_features)]

    def moments(self, X, posterior):
        """Mean and variance of ``f`` under ``theta ~ posterior`` (exact: linear)."""
        mean = self.value(X, posterior.mean)
        if not (self.fit_intercept or sparse.issparse(X)):
            return mean, posterior.predictive_variance(X)
        variance = np.empty(X.shape[0])
        # One block buffer (with its ones column), refilled: no (n, d + 1) copy.
        d = X.shape[1]
        rows = np.ones((min(BLOCK_ROWS, X.shape[0]), d + int(self.fit_intercept)))
        for b in row_blocks(X.shape[0]):
            n_rows = b.stop - b.start
            rows[:n_rows, :d] = _dense_rows(X[b])
            variance[b] = posterior.predictive_variance(rows[:n_rows])
        return mean, variance

    def fused_terms(self, likelihood, X, y, weights, theta, with_value, vectors=None):
        kernel = getattr(likelihood, "linear_terms", None)
        if kernel is None:
            return None
        return kernel(
            X,
            y,
            weights,
            theta,
            intercept=self.fit_intercept,
            with_value=with_value,
            vectors=vectors,
        )


class InducingPointPredictor(Predictor):
    """``f(x) = a(x)' v`` with whitened inducing-point features ``a(x) = L^-1 k_Z(x)``.

    ``K_ZZ = L L'``; ``v = L^-1 u`` are the whitened inducing values, with
    prior N(0, I). The features of each row block are computed when needed,
    so no (n, m) feature matrix is kept.

    Parameters
    ----------
    kernel : kernel instance
        A :mod:`sklearn.gaussian_process.kernels` kernel.
    inducing_points : ndarray of shape (m, n_features)
        Inducing locations ``Z``.
    factor : object
        Holds ``inverse``, the inverse of the Cholesky factor ``L`` of
        ``K_ZZ`` (as ``inducing_cholesky`` of the sparse GP estimators gives).
    """

    linear_in_parameters = True

    def __init__(self, kernel, inducing_points, factor):
        self.kernel = kernel
        self.inducing_points = inducing_points
        self.factor = factor

    def n_parameters(self, n_features):
        """``m``, the number of inducing points (whatever ``n_features``)."""
        return self.inducing_points.shape[0]

    def features(self, X):
        """``a(x)`` as rows, shape (n, m)."""
        # L^-1 K(Z, X) as columns, transposed to rows
        return np.ascontiguousarray(
            (self.factor.inverse @ self.kernel(self.inducing_points, X)).T
        )

    def value(self, X, theta):
        return np.concatenate([self.features(X[b]) @ theta for b in row_blocks(X.shape[0])])

    def jacobian(self, X, theta):
        return self.features(X)

    def candidate_values(self, X, theta):
        """Inducing value ``j``'s contribution ``a_j(x) v_j`` to ``f``, shape (n, m)."""
        return np.vstack([self.features(X[b]) * theta for b in row_blocks(X.shape[0])])

    def candidate_indices(self, theta):
        """Group ``j`` is the whitened inducing value ``v_j``."""
        return [np.array([j]) for j in range(theta.shape[0])]

    def fused_terms(self, likelihood, X, y, weights, theta, with_value, vectors=None):
        kernel = getattr(likelihood, "linear_terms", None)
        if kernel is None:
            return None
        parts = [
            kernel(
                self.features(X[b]),
                y[b],
                weights[b],
                theta,
                with_value=with_value,
                vectors=vectors,
            )
            for b in row_blocks(X.shape[0])
        ]
        return (
            sum(part[0] for part in parts),
            sum(part[1] for part in parts),
            sum(part[2] for part in parts),
        )
