"""Gaussian variational updates: the ELBO to learn, VBU's EUBO to forget.

With ``q0 = N(m0, Lambda0^-1)`` the current posterior (the prior before the
first fit) and ``l(theta) = sum_i w_i log p(y_i | x_i' theta)``, both
directions maximise over full-covariance Gaussians ``q = N(m, Lambda^-1)``

    F(q) = sign * E_q[l_adj(theta)] - KL(q || q0),

- ``sign = +1``: the evidence lower bound of the new rows with prior ``q0``
  (Gaussian variational inference, ``inference='vi'``);
- ``sign = -1``: minus the evidence upper bound of Nguyen, Low & Jaillet
  (2020, eq. 6), ``E_q[log p(y_F | X_F, theta)] + KL(q || q(theta|D))``, whose
  minimiser is ``p(theta | D_r)`` when ``q(theta|D)`` is exact.

``l_adj`` is VBU's adjusted likelihood (their Sec. 3.3): the rows' likelihood
is used only inside the region ``q0(theta) > lambda max q0``, i.e. the
ellipsoid ``||R0 (theta - m0)||^2 <= -2 log lambda``, and replaced by 1
outside it.

What is solved: the stationary point, found by the natural-gradient fixed
point (Opper & Archambeau 2009)

    Lambda = Lambda0 + sign * E_q[c],   E_q[c] = X' diag(w E_q[c_i]) X
    m      = m + Lambda^-1 (sign * E_q[grad l] - Lambda0 (m - m0)),

with the region's indicator held constant (VBU's own code differentiates the
masked likelihood through a ``where``, which is the same). This matters for
``lambda > 0``: literally minimising the masked EUBO's *value* rewards moving
``q`` into the region, where the bound is lower, which collapses ``q`` onto
``q0`` (the opposite of forgetting). The precision equation uses the masked
expected curvature; the pathwise (reparameterisation) gradient in the
covariance would add a boundary term of the region, which is ignored.

Expectations: without a region each row's ``f_i = x_i' theta`` is a
one-dimensional Gaussian, so Gauss-Hermite quadrature gives them exactly and
deterministically. With a region (``lambda > 0``) the indicator couples all
coordinates, so they are fixed-seed Monte Carlo averages over ``n_samples``
draws ``theta_s = m + R^-1 eps_s`` with the same ``eps_s`` at every iteration
(common random numbers: the fixed point is deterministic).

Holding the indicator constant, concretely: each fixed draw ``eps_s`` gets
its indicator ``1[m + R^-1 eps_s in region]`` evaluated at the current ``q``
and frozen for one step. With the indicators frozen, ``F`` is a smooth
objective that no longer rewards moving into the region; one damped
natural-gradient step increases it, then the indicators are re-evaluated at
the new ``q`` (as VBU's optimiser does at every step). The iteration ends
when at most 1% of the draws change side and the step is below ``tol``: a
stationary point of the masked objective with the indicator held constant,
up to the draws on the region's boundary. When draws keep crossing the
boundary back and forth until ``max_iter``, the iterates oscillate around the
fixed point and the average of the last half of them (in natural parameters,
Polyak-Ruppert averaging) is returned, with a warning.

Damping: a step is shrunk (``t`` halved, ``Lambda`` and ``m`` interpolated,
so ``Lambda`` stays positive definite) until ``F`` (indicators frozen)
increases. Iteration stops when the stationarity residual or the step's
``KL(q_new || q)`` falls below ``tol``. Forgotten precisions are floored at the
prior precision (:func:`~sklunlearn.unlearning._common.floor_precision`).

Catastrophic unlearning (VBU Sec. 3.3; DESIGN.md): with ``lambda = 0`` on
nearly separable data the exact EUBO minimiser can lie very far away; the
iteration then runs away. Two symptoms are detected and reported as warnings:
no convergence within ``max_iter``, and a final move (Mahalanobis, under
``q0``) much larger than the first natural-gradient step, which is the
Newton/Laplace prediction.
"""

import numpy as np
from scipy import linalg
from sklearn.utils import check_random_state

from .._numba import weighted_gram
from ..posterior import GaussianPosterior
from ._common import (
    UpdateResult,
    floor_precision,
    linear_predictor_moments,
    mahalanobis,
    region_mahalanobis_radius,
    region_mass,
)

__all__ = ["variational_update"]

# A final move larger than this multiple of the first (Newton-sized) step,
# plus one standard deviation, is reported as likely catastrophic.
RUNAWAY_FACTOR = 3.0
_MAX_HALVINGS = 12
_MAX_HALVINGS_MONTE_CARLO = 4
# The region counts as settled when at most this fraction of draws changed side.
SETTLED_FRACTION = 0.01


class _Expectations:
    """Expected likelihood terms under a Gaussian ``q``: quadrature or fixed-seed MC."""

    def __init__(self, likelihood, X, y, weights, reference, unlearning_lambda,
                 n_samples, random_state):
        self.likelihood = likelihood
        self.X, self.y, self.weights = X, y, weights
        self.reference = reference
        self.radius2 = region_mahalanobis_radius(unlearning_lambda)
        self.monte_carlo = np.isfinite(self.radius2)
        self.frozen = None
        if self.monte_carlo:
            rng = check_random_state(random_state)
            self.eps = rng.standard_normal((reference.n_features, n_samples))

    def _draws(self, q):
        """Draws ``theta_s = m + R^-1 eps_s`` (d, S) and whether each is in the region."""
        theta = q.mean[:, None] + linalg.solve_triangular(
            q.precision_cholesky, self.eps, lower=False
        )
        r = self.reference.precision_cholesky @ (theta - self.reference.mean[:, None])
        return theta, np.einsum("ij,ij->j", r, r) <= self.radius2

    def freeze(self, q):
        """Hold the indicator of each draw ``eps_s`` at its value under ``q``.

        Returns the number of draws whose indicator changed.
        """
        inside = self._draws(q)[1]
        changed = inside.size if self.frozen is None else int(np.sum(inside != self.frozen))
        self.frozen = inside
        return changed

    def __call__(self, q):
        """Return ``(E[l], E[grad l], E[curvature matrix], mass of q in the region)``."""
        X, y, w = self.X, self.y, self.weights
        if not self.monte_carlo:
            mean, variance = linear_predictor_moments(q, X)
            terms = self.likelihood.expected_design_terms(X, y, w, mean, variance)
            return terms.log_likelihood, terms.gradient, terms.hessian, 1.0
        theta, inside = self._draws(q)  # (d, S), (S,)
        n_samples = inside.shape[0]
        f = X @ theta[:, self.frozen]  # (k, S_inside)
        terms = self.likelihood.row_terms(f, y[:, None])
        value, gradient, curvature = (term.sum(axis=1) / n_samples for term in terms)
        return (
            float(w @ value),
            X.T @ (w * gradient),
            weighted_gram(X, w * curvature),
            float(inside.mean()),
        )


def _residual(q, target_precision, step):
    """Stationarity residual: Newton decrement of the mean plus precision mismatch.

    ``step' Lambda* step + ||R^-T (Lambda* - Lambda) R^-1||_F^2`` with
    ``Lambda = R' R`` the current precision and ``Lambda*`` the fixed-point
    target: zero exactly at a stationary point.
    """
    R = q.precision_cholesky
    M = linalg.solve_triangular(R, target_precision - q.precision, trans="T")
    M = linalg.solve_triangular(R, M.T, trans="T")
    return float(step @ target_precision @ step + np.sum(M * M))


def variational_update(
    posterior,
    likelihood,
    X,
    y,
    weights,
    *,
    sign,
    prior_precision,
    unlearning_lambda=0.0,
    n_samples=1000,
    random_state=None,
    max_iter=100,
    tol=1e-10,
):
    """Learn (``sign=+1``, ELBO) or forget (``sign=-1``, EUBO) rows variationally.

    Parameters
    ----------
    posterior : GaussianPosterior
        ``q0``: the prior when learning, ``q(theta|D)`` when forgetting.
        Not modified.
    likelihood : object
        Per-row likelihood (see :mod:`sklunlearn.linear_model._likelihoods`).
    X : ndarray of shape (k, d)
    y : ndarray of shape (k,)
    weights : ndarray of shape (k,)
    sign : {1, -1}
    prior_precision : float or ndarray of shape (d,)
        Diagonal prior precision, the floor of a forgotten precision.
    unlearning_lambda : float, default=0.0
        Adjusted-likelihood threshold (forgetting only).
    n_samples : int, default=1000
        Monte Carlo draws when ``unlearning_lambda > 0``.
    random_state : int, RandomState instance or None, default=None
    max_iter : int, default=100
    tol : float, default=1e-10
        Stop when the stationarity residual is below ``tol``.

    Returns
    -------
    UpdateResult
        ``diagnostics``: ``move`` (Mahalanobis distance of the new mean under
        ``q0``), ``newton_move`` (that of the first, undamped step),
        ``residual``, ``objective`` (``F`` at the result), ``region_mass``
        (mass of ``q0`` in the region) and ``final_region_mass`` (of the
        result, Monte Carlo), ``clipped_eigenvalue`` and ``warnings``.
    """
    if sign > 0 and unlearning_lambda > 0:
        raise ValueError("The adjusted likelihood applies to forgetting only.")
    expectations = _Expectations(
        likelihood, X, y, weights, posterior, unlearning_lambda, n_samples, random_state
    )
    m0, Lambda0 = posterior.mean, posterior.precision
    clipped_most = 0.0

    def fixed_point(q):
        """Target precision, mean step, residual and objective at ``q``."""
        nonlocal clipped_most
        value, gradient, curvature, inside = expectations(q)
        target = Lambda0 + sign * curvature
        if sign < 0:
            target, clipped = floor_precision(target, prior_precision)
            clipped_most = min(clipped_most, clipped)
        residual_gradient = sign * gradient - Lambda0 @ (q.mean - m0)
        step = linalg.solve(target, residual_gradient, assume_a="pos")
        objective = sign * value - q.kl_divergence(posterior)
        return target, step, _residual(q, target, step), objective, inside

    def ascend(q, n_iter, max_steps):
        """Natural-gradient ascent of F (indicators frozen) with backtracking."""
        target, step, residual, objective, inside = fixed_point(q)
        first_step = step
        converged = residual < tol
        stop = min(max_iter, n_iter + max_steps)
        # With refrozen indicators every step, a short step is still progress:
        # halve less, so an iteration costs at most a few Monte Carlo passes.
        halvings = _MAX_HALVINGS_MONTE_CARLO if expectations.monte_carlo else _MAX_HALVINGS
        while not converged and n_iter < stop:
            n_iter += 1
            t = 1.0
            for _ in range(halvings):
                precision = (1.0 - t) * q.precision + t * target
                candidate = GaussianPosterior.from_precision(q.mean + t * step, precision)
                state = fixed_point(candidate)
                if state[3] >= objective - 1e-12 * abs(objective):
                    break
                t *= 0.5
            change = candidate.kl_divergence(q)
            q = candidate
            target, step, residual, objective, inside = state
            converged = residual < tol or change < tol
        return q, n_iter, converged, first_step, residual, objective, inside

    q, n_iter, settled = posterior, 0, True
    if not expectations.monte_carlo:
        q, n_iter, converged, first_step, residual, objective, inside = ascend(
            q, n_iter, max_iter
        )
    else:
        # One step per freeze: the indicators follow q at every step, as in
        # VBU's optimiser, until no draw changes side and the step is below tol.
        expectations.freeze(q)
        q, n_iter, converged, first_step, residual, objective, inside = ascend(q, 0, 1)
        settled = False
        iterates = [q]
        while n_iter < max_iter:
            changed = expectations.freeze(q)
            if changed <= SETTLED_FRACTION * n_samples and converged:
                settled = True
                break
            q, n_iter, converged, _, residual, objective, inside = ascend(q, n_iter, 1)
            iterates.append(q)
        converged = converged and settled
        if not settled:
            # The iterates oscillate around the fixed point (draws cross the
            # boundary back and forth): report the average of the last half,
            # in natural parameters (Polyak-Ruppert averaging).
            tail = iterates[len(iterates) // 2:]
            precision = np.mean([p.precision for p in tail], axis=0)
            shift = np.mean([p.precision @ p.mean for p in tail], axis=0)
            q = GaussianPosterior.from_precision(linalg.solve(precision, shift), precision)
    newton_move = mahalanobis(posterior, m0 + first_step)
    move = mahalanobis(posterior, q.mean)
    messages = []
    if sign < 0 and not converged:
        messages.append(
            f"EUBO unlearning did not converge in {max_iter} iterations (residual "
            f"{residual:.3g}): the bound may be running away from q(theta|D) "
            "(catastrophic unlearning), or, with unlearning_lambda > 0, Monte Carlo "
            "draws keep crossing the region's boundary (the last iterates are then "
            "averaged). Compare with unlearning='laplace'."
        )
    if sign < 0 and move > RUNAWAY_FACTOR * newton_move + 1.0:
        messages.append(
            f"EUBO unlearning moved the mean {move:.3g} posterior standard deviations, "
            f"{move / max(newton_move, 1e-300):.3g}x what a Newton step predicts "
            f"({newton_move:.3g}): likely catastrophic unlearning, worse than not "
            "forgetting. Use unlearning='laplace', or a positive unlearning_lambda."
        )
    diagnostics = {
        "move": move,
        "newton_move": newton_move,
        "residual": residual,
        "objective": float(objective),
        "region_mass": region_mass(unlearning_lambda, posterior.n_features),
        "final_region_mass": inside,
        "clipped_eigenvalue": clipped_most,
        "warnings": messages,
    }
    return UpdateResult(q, n_iter, bool(converged), diagnostics)
