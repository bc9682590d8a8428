"""Gaussian variational updates: the ELBO to learn, VBU's EUBO to forget.

With ``q0 = N(m0, Lambda0^-1)`` the current posterior (the prior before the
first fit) and ``l(theta) = sum_i w_i log p(y_i | g(x_i; theta))``, both
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

    Lambda = Lambda0 + sign * E_q[c],   E_q[c] = J' diag(w E_q[c_i]) J
    m      = m + Lambda^-1 (sign * E_q[grad l] - Lambda0 (m - m0)),

with the region's indicator held constant (VBU's own code differentiates the
masked likelihood through a ``where``, which is the same). Literally
minimising the masked EUBO's *value* would reward moving ``q`` into the
region, where the bound is lower, collapsing ``q`` onto ``q0`` (the opposite
of forgetting). The pathwise gradient in the covariance would add a boundary
term of the region, which is ignored.

Expectations: without a region each row's ``f_i`` is a one-dimensional
Gaussian (linearised for a predictor nonlinear in ``theta``), so quadrature
gives them deterministically (the likelihood's rule, :mod:`._likelihoods`). The
fixed point is only the ELBO's stationary point when ``E[c]`` is the derivative
of ``E[log p]`` in the variance to rounding, which a Gauss-Hermite rule of fixed
size loses for rows whose ``f`` spreads widely: the likelihood then uses the
trapezoid rule.
With a region (``lambda > 0``) the
indicator couples all coordinates, so they are fixed-seed Monte Carlo
averages over draws ``theta_s = m + R^-1 eps_s`` with the same ``eps_s`` at
every iteration (common random numbers: the fixed point is deterministic).
A hard indicator makes that sample-average map discontinuous (a draw flips
side as ``q`` moves) and the iterates can cycle around a fixed point they
cannot hit, so the indicator is softened over a band of width
``SOFTNESS * sqrt(2 d)`` in the squared Mahalanobis distance (a tenth of that
distance's spread under ``q0``).

Damping: a step is shrunk (``t`` halved, ``Lambda`` and ``m`` interpolated,
so ``Lambda`` stays positive definite) until it improves: ``F`` must not
decrease (quadrature), or the stationarity residual must drop by a quarter of
``t`` (Monte Carlo, where ``F``'s value would reward moving into the region).
When no step of length ``2^-12`` or more reduces the residual, the masked
fixed point is out of reach of a damped iteration from ``q0``: it stops there
("stalled", a warning). Forgotten precisions are floored at the prior's.

Catastrophic unlearning (VBU Sec. 3.3): with ``lambda = 0`` on nearly
separable data the exact EUBO minimiser can lie very far away and the
iteration runs away. Two symptoms are reported as warnings: no convergence
within ``max_iter``, and a final move (Mahalanobis, under ``q0``) much larger
than the first natural-gradient step, which is the Newton prediction.
"""

from typing import NamedTuple

import numpy as np
from scipy import linalg
from scipy.special import expit
from sklearn.utils import check_random_state

from ..posterior import GaussianPosterior
from ._checks import (
    overshoot_warning,
    reference_disagreement,
    region_mahalanobis_radius,
    region_mass,
)
from ._diagnostics import VariationalDiagnostics
from ._laplace import laplace_divide_out

__all__ = ["UpdateResult", "eubo_forget", "variational_update"]

# A final move larger than this multiple of the first (Newton-sized) step,
# plus one standard deviation, is reported as likely catastrophic.
RUNAWAY_FACTOR = 3.0
_MAX_HALVINGS = 12
# Width of the softened region boundary, in units of the spread sqrt(2 d) of the
# squared Mahalanobis distance under q(theta|D) (see _Expectations).
SOFTNESS = 0.1


class UpdateResult(NamedTuple):
    """A new posterior and the method's diagnostics record."""

    posterior: GaussianPosterior
    diagnostics: object

    @property
    def converged(self):
        """Whether the method's stopping criterion was met."""
        return self.diagnostics.converged

    @property
    def n_iter(self):
        """Iterations run."""
        return self.diagnostics.n_iter


class _Expectations:
    """Expected likelihood terms under a Gaussian ``q``: quadrature or fixed-seed MC.

    With a region, each fixed draw ``theta_s = m + R^-1 eps_s`` counts with the
    weight ``a_s = sigmoid((r^2 - D_s) / tau)``, ``D_s`` its squared Mahalanobis
    distance under ``q0`` and ``r^2 = -2 log lambda``: the region's indicator
    softened over ``tau = softness * sqrt(2 d)``. The weights are not
    differentiated (the indicator is held constant, as in VBU).
    """

    def __init__(
        self,
        model,
        X,
        y,
        weights,
        reference,
        unlearning_lambda,
        n_samples,
        random_state,
        softness,
    ):
        self.model = model
        self.X, self.y, self.weights = X, y, weights
        self.reference = reference
        self.radius2 = region_mahalanobis_radius(unlearning_lambda)
        self.monte_carlo = bool(np.isfinite(self.radius2))
        if self.monte_carlo:
            rng = check_random_state(random_state)
            self.eps = rng.standard_normal((reference.n_features, n_samples))
            self.tau = softness * np.sqrt(2.0 * reference.n_features)

    def _draws(self, q):
        """Draws ``theta_s = m + R^-1 eps_s`` (d, S) and their region weights."""
        theta = q.mean[:, None] + linalg.solve_triangular(
            q.precision_cholesky, self.eps, lower=False
        )
        r = self.reference.precision_cholesky @ (theta - self.reference.mean[:, None])
        distance2 = np.einsum("ij,ij->j", r, r)
        if self.tau > 0:
            return theta, expit((self.radius2 - distance2) / self.tau)
        return theta, (distance2 <= self.radius2).astype(np.float64)

    def __call__(self, q):
        """Return ``(LikelihoodTerms, mass of q in the region)``."""
        if not self.monte_carlo:
            return self.model.expected_terms(self.X, self.y, self.weights, q), 1.0
        theta, inside = self._draws(q)
        keep = inside > 1e-12
        terms = self.model.sampled_terms(
            self.X, self.y, self.weights, theta[:, keep], inside[keep] / inside.shape[0]
        )
        return terms, float(inside.mean())


class _State(NamedTuple):
    """The fixed-point map evaluated at one ``q``."""

    target: np.ndarray  # precision the fixed point asks for
    step: np.ndarray  # natural-gradient step of the mean
    residual: float
    objective: float  # F, with the region weights held at their values
    inside: float  # mass of q in the region (1.0 without one)
    clipped: float  # eigenvalue clipped when flooring the target (0.0 if none)


def _residual(q, target_precision, step):
    """Stationarity residual: Newton decrement of the mean plus precision mismatch.

    ``step' Lambda* step + ||R^-T (Lambda* - Lambda) R^-1||_F^2`` with
    ``Lambda = R' R`` the current precision and ``Lambda*`` the fixed-point
    target: zero exactly at a stationary point.
    """
    M = q.whiten(q.whiten(target_precision - q.precision))
    return float(step @ target_precision @ step + np.sum(M * M))


class _FixedPoint:
    """The natural-gradient fixed-point map of ``F`` and its damped steps."""

    def __init__(self, posterior, prior, sign, expectations):
        self.q0, self.prior, self.sign = posterior, prior, sign
        self.expectations = expectations
        self.m0, self.Lambda0 = posterior.mean, posterior.precision

    def state(self, q):
        """The fixed-point map at ``q`` (a :class:`_State`)."""
        terms, inside = self.expectations(q)
        target, clipped = self.Lambda0 + self.sign * terms.hessian, 0.0
        if self.sign < 0:
            target, clipped = self.prior.floor(target)
        gradient = self.sign * terms.gradient - self.Lambda0 @ (q.mean - self.m0)
        step = linalg.solve(target, gradient, assume_a="pos")
        objective = self.sign * terms.log_likelihood - q.kl_divergence(self.q0)
        return _State(target, step, _residual(q, target, step), objective, inside, clipped)

    def move_to(self, q, state, t):
        """Step ``t`` of the way from ``q`` to the fixed point's target."""
        precision = (1.0 - t) * q.precision + t * state.target
        candidate = GaussianPosterior.from_precision(q.mean + t * state.step, precision)
        return candidate, self.state(candidate)

    def acceptable(self, new, old, t):
        if self.expectations.monte_carlo:
            # F's value does not guide the search here (moving q into the region
            # lowers it): the stationarity residual must decrease sufficiently.
            return new.residual <= (1.0 - 0.25 * t) * old.residual
        return new.objective >= old.objective - 1e-12 * abs(old.objective)

    def damped_step(self, q, state, t):
        """First acceptable step of length ``t, t/2, ...``: ``(q, state, t)`` or None."""
        for _ in range(_MAX_HALVINGS):
            candidate, candidate_state = self.move_to(q, state, t)
            if self.acceptable(candidate_state, state, t):
                if self.sign > 0:
                    return self.greedy_halving(q, state, candidate, candidate_state, t)
                return candidate, candidate_state, t
            t *= 0.5
        if self.expectations.monte_carlo:
            return None
        # Quadrature: F is smooth; the tiny step is taken (F's value is at its
        # maximum to rounding, or the start was far from it).
        return candidate, candidate_state, t

    def greedy_halving(self, q, state, candidate, candidate_state, t):
        """Learning: halve an accepted step while that raises ``F`` further.

        A full natural-gradient step can overshoot into a slowly decaying
        two-cycle; not when forgetting, where it makes a runaway crawl.
        """
        while t > 2.0**-_MAX_HALVINGS:
            half, half_state = self.move_to(q, state, 0.5 * t)
            if half_state.objective <= candidate_state.objective:
                break
            candidate, candidate_state, t = half, half_state, 0.5 * t
        return candidate, candidate_state, t


def _iterate(fixed_point, q, max_iter, tol, verbose=0):
    """Damped fixed-point iteration from ``q``; ``verbose`` prints each iteration.

    Returns ``(q, state, first_step, n_iter, converged, stalled)``.
    """
    monte_carlo = fixed_point.expectations.monte_carlo
    state = fixed_point.state(q)
    first_step = q.mean - fixed_point.m0 + state.step
    converged, stalled, n_iter, t = state.residual < tol, False, 0, 1.0
    while not converged and n_iter < max_iter:
        # Monte Carlo: start from twice the last accepted step length, so that
        # once the damping has settled an iteration costs about two passes.
        t = min(1.0, 2.0 * t) if monte_carlo else 1.0
        accepted = fixed_point.damped_step(q, state, t)
        if accepted is None:
            # No step of any length brings the residual down: the masked fixed
            # point is out of reach. Stop at the last accepted iterate.
            stalled = True
            break
        n_iter += 1
        candidate, candidate_state, t = accepted
        change = candidate.kl_divergence(q)
        q, state = candidate, candidate_state
        if verbose:
            print(
                f"Variational iteration {n_iter}, objective = "
                f"{float(state.objective):.6g}, residual = {state.residual:.3g}"
            )
        # A tiny step is no sign of convergence when it was damped (Monte Carlo).
        small_step = change < tol and (t == 1.0 or not monte_carlo)
        converged = state.residual < tol or small_step
    return q, state, first_step, n_iter, bool(converged), stalled


def _runaway_warnings(converged, stalled, n_iter, residual, max_iter, move, newton_move):
    """Warnings of an EUBO iteration that did not converge or ran away."""
    messages = []
    if not converged:
        messages.append(
            "EUBO unlearning did not converge ("
            + (
                f"stalled after {n_iter} steps: no damped step reduced the "
                f"stationarity residual {residual:.3g}"
                if stalled
                else f"residual {residual:.3g} after {max_iter} iterations"
            )
            + "): the bound may be running away from q(theta|D) (catastrophic "
            "unlearning), or, with unlearning_lambda > 0, have no stationary point "
            "in reach of q(theta|D) (the iterates would cycle through the region's "
            "boundary); the last iterate is returned. Compare with unlearning='laplace'."
        )
    if move > RUNAWAY_FACTOR * newton_move + 1.0:
        messages.append(
            f"EUBO unlearning moved the mean {move:.3g} posterior standard deviations, "
            f"{move / max(newton_move, 1e-300):.3g}x what a Newton step predicts "
            f"({newton_move:.3g}): likely catastrophic unlearning, worse than not "
            "forgetting. Use unlearning='laplace', or a positive unlearning_lambda."
        )
    return tuple(messages)


def variational_update(
    posterior,
    model,
    X,
    y,
    weights,
    *,
    sign,
    unlearning_lambda=0.0,
    n_samples=1000,
    random_state=None,
    max_iter=100,
    tol=1e-10,
    softness=SOFTNESS,
    start=None,
    verbose=0,
):
    """Learn (``sign=+1``, ELBO) or forget (``sign=-1``, EUBO) rows variationally.

    Parameters
    ----------
    posterior : GaussianPosterior
        ``q0``: the prior when learning, ``q(theta|D)`` when forgetting.
        Not modified.
    model : Model
        Predictor, likelihood and prior (the floor of a forgotten precision).
    X, y, weights : ndarrays
        The rows, their targets and weights.
    sign : {1, -1}
    unlearning_lambda : float, default=0.0
        Adjusted-likelihood threshold (forgetting only).
    n_samples : int, default=1000
        Monte Carlo draws when ``unlearning_lambda > 0``.
    random_state : int, RandomState instance or None, default=None
    max_iter : int, default=100
    tol : float, default=1e-10
        Stop when the stationarity residual is below ``tol``.
    softness : float, default=SOFTNESS
        Width of the softened region boundary (Monte Carlo only), in units of
        ``sqrt(2 d)``; 0 gives VBU's hard indicator.
    start : GaussianPosterior or None, default=None
        Where the iteration starts (``posterior`` when None), e.g. the Laplace
        approximation. The solution does not depend on it where ``F`` is
        concave (learning).
    verbose : int, default=0
        Print the objective and the stationarity residual of each iteration.

    Returns
    -------
    UpdateResult
        The new posterior and its :class:`VariationalDiagnostics`.
    """
    if sign > 0 and unlearning_lambda > 0:
        raise ValueError("The adjusted likelihood applies to forgetting only.")
    expectations = _Expectations(
        model,
        X,
        y,
        weights,
        posterior,
        unlearning_lambda,
        n_samples,
        random_state,
        softness,
    )
    fixed_point = _FixedPoint(posterior, model.prior, sign, expectations)
    q = posterior if start is None else start
    q, state, first_step, n_iter, converged, stalled = _iterate(
        fixed_point, q, max_iter, tol, verbose
    )
    newton_move = posterior.mahalanobis(posterior.mean + first_step)
    move = posterior.mahalanobis(q.mean)
    messages = ()
    if sign < 0:
        messages = _runaway_warnings(
            converged, stalled, n_iter, state.residual, max_iter, move, newton_move
        )
    diagnostics = VariationalDiagnostics(
        n_iter=n_iter,
        converged=converged,
        move=move,
        clipped_eigenvalue=state.clipped,
        warnings=messages,
        newton_move=newton_move,
        residual=state.residual,
        objective=float(state.objective),
        region_mass=region_mass(unlearning_lambda, posterior.n_features),
        final_region_mass=state.inside,
        stalled=stalled,
    )
    return UpdateResult(q, diagnostics)


def eubo_forget(
    posterior,
    model,
    X,
    y,
    weights,
    *,
    inference="laplace",
    unlearning_lambda=0.0,
    n_samples=1000,
    random_state=None,
    max_iter=100,
    tol=1e-10,
):
    """Forget rows by minimising VBU's EUBO (:func:`variational_update`, ``sign=-1``).

    The result is cross-checked against the one-step Laplace divide-out of
    the same rows (``reference_disagreement``); a floored precision is only
    reported as over-forgetting when the result also disagrees with it.

    Returns
    -------
    posterior : GaussianPosterior
    diagnostics : VariationalDiagnostics
    """
    new, diagnostics = variational_update(
        posterior,
        model,
        X,
        y,
        weights,
        sign=-1.0,
        unlearning_lambda=unlearning_lambda,
        n_samples=n_samples,
        random_state=random_state,
        max_iter=max_iter,
        tol=tol,
    )
    reference = laplace_divide_out(posterior, model, X, y, weights, inference=inference)[0]
    disagreement, disagrees = reference_disagreement(new, reference, posterior)
    diagnostics = diagnostics.replace(reference_disagreement=disagreement)
    if disagrees is not None:
        diagnostics = diagnostics.with_warning(disagrees)
        overshoot = overshoot_warning(diagnostics.clipped_eigenvalue)
        if overshoot is not None:
            diagnostics = diagnostics.with_warning(overshoot)
    return new, diagnostics
