"""Laplace log evidence of the sparse GP classifier and its kernel gradient.

In the whitened basis (``K_ZZ = L L'``, features ``a_i = L^-1 k_Z(x_i)``,
prior ``v ~ N(0, I)``) the Laplace approximation of the log evidence of a
Bernoulli-logit problem with targets ``t`` and row weights ``w`` is
(Rasmussen & Williams 2006, eq. 3.32, in the whitened basis)

    psi = sum_i w_i log p(t_i | f_i) - v'v / 2 - log det B / 2,
    B = I + A' W A,  f = A v,  W = diag(w pi (1 - pi)),

``v`` the mode. Its total derivative in the kernel's log-hyperparameters
follows Rasmussen & Williams' Algorithm 5.1: an explicit part at fixed
``v`` (the data-fit terms have no derivative in ``v`` at the mode), the
change of ``W`` with ``f``, and the implicit change of the mode,
``dv = B^-1 (dA' w g - A' W dA v)`` with ``g = t - pi``. All of it
contracts to ``sum G ∘ dA`` for an n x m matrix ``G``, which the chain rule
through ``A = K_XZ L^-T`` turns into coefficients of ``dK_XZ`` and of the
jittered ``dK_ZZ`` (the Cholesky derivative of Murray 2016, eq. 8).
"""

from typing import NamedTuple

import numpy as np
from scipy import linalg
from scipy.special import expit

from ..unlearning import BernoulliLogit, GaussianPrior, InducingPointPredictor, Model, learn
from ._bound import bound_setup


class Evidence(NamedTuple):
    """Laplace log evidence summed over the one-vs-rest problems.

    Fields
    ------
    value : float
    gradient : ndarray of shape (n_theta,) or None
        In ``kernel.theta`` (log-hyperparameters); None when not asked for.
    spreads : list of float
        Per problem, the weighted standard deviation of the probabilities
        ``pi`` at the mode over the rows.
    """

    value: float
    gradient: np.ndarray | None
    spreads: list


def _feature_blocks(setup, X):
    """``(rows, A_b, K_b)`` per row block: ``K_b = K(X_b, Z)``, ``A_b = K_b L^-T``."""
    for start in range(0, X.shape[0], setup.block):
        rows = slice(start, min(start + setup.block, X.shape[0]))
        K = setup.cross.matrix(X[rows])
        yield rows, K @ setup.factor.inverse.T, K


def _problem(blocks, t, w, v, with_gradient):
    """Value, ``G`` per block (None without gradient) and the spread of one problem.

    ``blocks()`` iterates over the ``(rows, A_b, K_b)`` of :func:`_feature_blocks`.
    """
    m = v.shape[0]
    B, value = np.eye(m), -0.5 * float(v @ v)
    rows = []
    for rows_b, A, _ in blocks():
        f = A @ v
        pi = expit(f)
        wc = w[rows_b] * pi * (1.0 - pi)
        value += float(w[rows_b] @ (t[rows_b] * f - np.logaddexp(0.0, f)))
        B += A.T @ (wc[:, None] * A)
        rows.append((pi, wc))
    cholesky = linalg.cho_factor(B, lower=True)
    value -= float(np.sum(np.log(np.diag(cholesky[0]))))
    pi_all = np.concatenate([pi for pi, _ in rows])
    mean = w @ pi_all / w.sum()
    spread = float(np.sqrt(w @ (pi_all - mean) ** 2 / w.sum()))
    if not with_gradient:
        return value, None, spread
    B_inverse = linalg.cho_solve(cholesky, np.eye(m))
    # r_i = -w_i c_i (1 - 2 pi_i) s_i / 2: the change of log det B with f_i
    r_list, Ar = [], np.zeros(m)
    for (_, A, _), (pi, wc) in zip(blocks(), rows, strict=True):
        s = np.einsum("ij,jk,ik->i", A, B_inverse, A)
        r = -0.5 * wc * (1.0 - 2.0 * pi) * s
        Ar += A.T @ r
        r_list.append(r)
    q = B_inverse @ Ar  # the implicit change of the mode enters through q' dv
    # Row i of G, the coefficient of da_i in d psi:
    # w_i g_i (v + q) + (r_i - w_i c_i a_i'q) v - w_i c_i B^-1 a_i
    G = []
    for (rows_b, A, _), (pi, wc), r in zip(blocks(), rows, r_list, strict=True):
        wg = w[rows_b] * (t[rows_b] - pi)
        G.append(
            np.outer(wg + r - wc * (A @ q), v)
            + np.outer(wg, q)
            - wc[:, None] * (A @ B_inverse)
        )
    return value, G, spread


def laplace_evidence(
    kernel, Z, X, targets, weights, jitter, *, modes=None, with_gradient=True, **options
):
    """:class:`Evidence` of the one-vs-rest problems ``targets`` at ``kernel``.

    ``modes`` (one whitened mode per problem) skips the Newton fits;
    ``options`` (``max_iter``, ``tol``) are those of
    :func:`sklunlearn.unlearning.learn`. Memory is O(n m) (the whitened
    features are kept between the gradient's passes; O(b m) without gradient).
    """
    keep = weights > 0
    X, weights = X[keep], weights[keep]
    targets = [t[keep] for t in targets]
    # K(X_b, Z) and its contracted derivatives: Numba kernels for the stationary
    # kernels of _bound.stationary_spec, the kernel's eval_gradient otherwise.
    setup = bound_setup(kernel, Z, jitters=(jitter,))
    factor = setup.factor
    if with_gradient:  # the gradient's passes reuse the features: O(n m) memory
        kept = list(_feature_blocks(setup, X))

        def blocks():
            return iter(kept)
    else:

        def blocks():
            return _feature_blocks(setup, X)

    if modes is None:
        predictor = InducingPointPredictor(kernel, Z, factor)
        model = Model(predictor, BernoulliLogit(), GaussianPrior(1.0, Z.shape[0]))
        modes = [
            learn(model.prior.posterior(), model, X, t, weights, **options)[0].mean
            for t in targets
        ]
    value, gradient, spreads = 0.0, None, []
    M = np.zeros((Z.shape[0], Z.shape[0]))
    if with_gradient:
        gradient = np.zeros(kernel.theta.shape[0])
    for t, v in zip(targets, modes, strict=True):
        part, G, spread = _problem(blocks, t, weights, v, with_gradient)
        value += part
        spreads.append(spread)
        if not with_gradient:
            continue
        for (rows_b, A, K), G_b in zip(blocks(), G, strict=True):
            # sum G o dA with A = K_XZ L^-T: dK_XZ's coefficients are G L^-1
            b = K.shape[0]
            part, _ = setup.cross.gradient(
                X[rows_b],
                K,
                G_b @ factor.inverse,
                np.ones(b),
                np.zeros(b),
                np.zeros(Z.shape[0]),
                np.zeros(b),
                False,
            )
            gradient += part
            M += G_b.T @ A
    if with_gradient:
        # -tr(G' A dL' L^-T): L^-1 dL is the lower part (half diagonal) of L^-1 dK L^-T
        N = np.tril(M, -1) + 0.5 * np.diag(np.diag(M))
        S = factor.inverse.T @ (0.5 * (N + N.T)) @ factor.inverse
        gradient -= setup.cross.inducing_gradient(S, factor.moving_jitter, False)[0]
    return Evidence(value, gradient, spreads)
