"""Certified removal: objective perturbation and the Newton step's residual bound.

Guo, Goldstein, Hannun & van der Maaten (2020) fit the minimiser of
``L(theta) + b' theta``, ``L`` the regularised loss summed over the rows and
``b ~ N(0, sigma^2 I)`` drawn once per fit, and remove rows by one Newton step
on the remaining data (the ``'laplace'`` divide-out). After the step the
gradient of the remaining rows' perturbed objective is not zero; its norm is
at most (their Corollary 1, with the rows' norms ``<= C``)

    gamma C ||X_r||_2 ||H^-1 Delta|| ||X_r H^-1 Delta||,

``gamma = 1/4`` a Lipschitz constant of the logistic loss' second derivative,
``X_r`` the remaining rows' design (weighted by ``sqrt(w)``), ``H`` the
remaining data's Hessian and ``H^-1 Delta`` the Newton step. Summed over
removals, the result is (epsilon, delta)-indistinguishable from a refit on the
remaining rows while the sum stays below ``sigma epsilon / c``,
``c = sqrt(2 log(1.5 / delta))`` (their Theorem 3).

Only the remaining rows' Gram matrix ``G = X_r' W X_r`` is needed
(``||X_r||_2 = sqrt(lambda_max(G))``, ``||X_r v|| = sqrt(v' G v)``): it is kept
as a downdatable statistic, never the rows. ``b`` enters the fit as the mean
``-Lambda0^-1 b`` of the prior the fit starts from (``-(alpha/2)||theta +
b/alpha||^2 = -(alpha/2)||theta||^2 - b' theta`` up to a constant), and is
not kept: the Newton steps do not need it.
"""

import math
from dataclasses import dataclass, fields, replace

import numpy as np
from sklearn.utils import check_random_state

from ._diagnostics import _plain
from ._predictors import row_blocks

__all__ = [
    "LOGISTIC_GAMMA",
    "CertifiedDiagnostics",
    "RemovalCertificate",
    "RemovalState",
    "certificate_constant",
    "perturbed_priors",
]

# Lipschitz constant of the logistic loss' second derivative used by Guo et al.
# (2020, Sec. 3.2); |p (1 - p) (1 - 2p)| <= 1 / (6 sqrt(3)) is the sharp one.
LOGISTIC_GAMMA = 0.25

_NORM_BLOCK_ROWS = 256


def certificate_constant(delta):
    """``c = sqrt(2 log(1.5 / delta))`` of Guo et al. (2020, Theorem 3)."""
    return math.sqrt(2.0 * math.log(1.5 / delta))


def perturbed_priors(prior, noise, n_problems, random_state):
    """Start posteriors of a perturbed fit: ``N(-Lambda0^-1 b, Lambda0^-1)`` per problem.

    One ``b ~ N(0, noise^2 I)`` per one-vs-rest problem, drawn from
    ``random_state`` and returned nowhere: maximising ``log q + l`` from such a
    start minimises the loss plus ``alpha/2 ||theta||^2 + b' theta``.
    """
    start = prior.posterior()
    if noise == 0.0:
        return [start] * n_problems
    rng = check_random_state(random_state)
    draws = rng.normal(0.0, noise, size=(n_problems, prior.n_features))
    return [start.with_mean(-start.solve(b)) for b in draws]


def design_statistics(predictor, X, weights, theta):
    """``G = J' W J`` of the rows and the largest norm of a weighted row's ``J_i``."""
    gram = np.asarray(predictor.gauss_newton(X, theta, weights), dtype=np.float64)
    squared = 0.0
    # Small blocks: a fit reads the rows in place, and this pass should not copy them.
    for b in row_blocks(X.shape[0], size=_NORM_BLOCK_ROWS):
        J = predictor.jacobian(X[b], theta)
        norms = np.einsum("ij,ij->i", J, J)[weights[b] > 0]
        if norms.size:
            squared = max(squared, float(np.max(norms)))
    return gram, math.sqrt(squared)


def step_factor(gram, step, row_norm, gamma=LOGISTIC_GAMMA):
    """``gamma C ||X_r||_2 ||X_r v||`` from ``G = X_r' W X_r`` and the step ``v``.

    Times ``||v||`` it is Guo et al.'s (2020, Corollary 1) bound on the
    residual the step leaves; alone it bounds the operator norm of the change
    of the rows' Hessian along the step, ``||X_r' W D X_r||`` with
    ``|D_ii| <= gamma |x_i' v|`` and ``|x_i' z| <= C ||z||``.
    """
    top = max(float(np.linalg.eigvalsh(gram)[-1]), 0.0)
    along = max(float(step @ gram @ step), 0.0)
    return gamma * row_norm * math.sqrt(top) * math.sqrt(along)


@dataclass(frozen=True)
class RemovalCertificate:
    """The state of an estimator's certified-removal guarantee, ``certificate_``.

    Immutable; :meth:`to_dict` gives plain values that ``json.dumps`` accepts.

    Attributes
    ----------
    epsilon : float
        The epsilon certified so far, ``c * residual_bound / noise`` (inf
        without noise).
    delta : float
        The delta of the guarantee (times the number of one-vs-rest problems,
        which compose).
    residual_bound : float
        Accumulated bound on the norm of the remaining rows' objective
        gradient at the current mean (summed over one-vs-rest problems),
        starting from the fit's own (Newton stops at a tolerance).
    newton_bound : float
        The part of ``residual_bound`` from Guo et al.'s per-step terms; the
        rest bounds the curvature that the stored precision did not refresh
        (it keeps the remaining rows' Hessian at the fitted mode).
    budget : float
        ``noise * removal_epsilon / c``: the largest ``residual_bound`` the
        guarantee survives.
    remaining : float
        ``budget - residual_bound`` (0 when negative).
    n_removals : int
        Forgets since the fit.
    valid : bool
        Whether the model is (epsilon, delta)-indistinguishable from a refit
        on the remaining rows with ``epsilon <= removal_epsilon``.
    reason : str or None
        Why it is not valid.
    noise : float
        ``removal_noise`` (sigma) of the fit.
    row_norm : float
        Largest norm of a learned row of the model's design (the bound
        assumes at most 1 and is scaled by it when larger).
    """

    epsilon: float
    delta: float
    residual_bound: float
    newton_bound: float
    budget: float
    remaining: float
    n_removals: int
    valid: bool
    reason: str | None
    noise: float
    row_norm: float

    def to_dict(self):
        """The certificate as a dict of plain Python values."""
        return {field.name: _plain(getattr(self, field.name)) for field in fields(self)}


@dataclass(frozen=True)
class RemovalState:
    """What the certificate needs between requests (private to an estimator).

    Attributes
    ----------
    gram : ndarray of shape (p, p)
        ``J' W J`` of the rows learned and not forgotten.
    residuals : tuple of float
        Accumulated residual bound per one-vs-rest problem (from the fit's
        gradient norm).
    newton : tuple of float
        Its part from Guo et al.'s per-step terms.
    drift : tuple of float
        Bound on the operator norm of the difference between the remaining
        rows' Hessian at the current mean and the stored precision.
    n_removals : int
        Forgets since the fit.
    row_norm : float
        Largest design-row norm learned.
    invalid : str or None
        Why the guarantee was lost for good (until the next fit).
    """

    gram: np.ndarray
    residuals: tuple
    newton: tuple
    drift: tuple
    n_removals: int = 0
    row_norm: float = 0.0
    invalid: str | None = None

    def invalidate(self, reason):
        """A copy marked invalid (the first reason is kept)."""
        return self if self.invalid else replace(self, invalid=reason)

    def added(self, gram, row_norm, *, reason=None):
        """The state after adding rows with Gram matrix ``gram`` (``partial_fit``)."""
        state = replace(self, gram=self.gram + gram, row_norm=max(self.row_norm, row_norm))
        return state if reason is None else state.invalidate(reason)

    @classmethod
    def start(cls, gram, residuals, row_norm, invalid=None):
        """The state of a fit, whose gradient norms ``residuals`` start the bound."""
        zeros = (0.0,) * len(residuals)
        return cls(gram, tuple(residuals), zeros, zeros, 0, row_norm, invalid)

    def forgot(self, gram, steps, *, left=None, reason=None):
        """The state after a forget with Newton steps ``steps`` (one per problem).

        With ``P`` the stored precision and ``H_t`` the remaining rows'
        Hessian at the mean before the step, the new residual is the old one
        plus ``(integral of H_t along the step - H_t) v + (H_t - P) v``: Guo
        et al.'s term, and the drift of the curvature since the fit, whose
        norm is at most the sum of the earlier steps' :func:`step_factor`
        (the Hessian changes by at most that along each step). ``left`` adds,
        per problem, the gradient norm a method's step leaves by design (the
        parameters outside an L-CODEC block).
        """
        left = (0.0,) * len(steps) if left is None else left
        remaining = self.gram - gram
        residuals, newton, drift = [], [], []
        for k, step in enumerate(steps):
            factor = step_factor(remaining, step, self.row_norm)
            size = float(np.linalg.norm(step))
            residuals.append(self.residuals[k] + (factor + self.drift[k]) * size + left[k])
            newton.append(self.newton[k] + factor * size)
            drift.append(self.drift[k] + factor)
        state = RemovalState(
            remaining,
            tuple(residuals),
            tuple(newton),
            tuple(drift),
            self.n_removals + 1,
            self.row_norm,
            self.invalid,
        )
        return state if reason is None else state.invalidate(reason)

    def certificate(self, noise, epsilon, delta):
        """The :class:`RemovalCertificate` of this state for the given parameters."""
        c = certificate_constant(delta)
        total = float(sum(self.residuals))
        budget = noise * epsilon / c
        reason = self.invalid
        if reason is None and noise == 0.0:
            reason = (
                "removal_noise=0: the fit is not perturbed, so no epsilon is "
                "certified (the residual bound still accumulates)."
            )
        if reason is None and total > budget:
            reason = (
                f"The accumulated residual bound {total:.3g} exceeds the budget "
                f"{budget:.3g} (removal_noise * removal_epsilon / c): refit from the "
                "remaining rows to restore the guarantee."
            )
        return RemovalCertificate(
            epsilon=c * total / noise if noise > 0.0 else math.inf,
            delta=delta * len(self.residuals),
            residual_bound=total,
            newton_bound=float(sum(self.newton)),
            budget=budget,
            remaining=max(budget - total, 0.0),
            n_removals=self.n_removals,
            valid=reason is None,
            reason=reason,
            noise=noise,
            row_norm=self.row_norm,
        )


@dataclass(frozen=True)
class CertifiedDiagnostics:
    """A forgetting method's diagnostics with the certificate after the forget.

    Reads like the method's record (``record.move``, ``record['move']``);
    :meth:`to_dict` adds the ``certificate``.

    Attributes
    ----------
    record : Diagnostics
        The method's record.
    certificate : RemovalCertificate
        The estimator's ``certificate_`` after the forget.
    """

    record: object
    certificate: RemovalCertificate

    def __getattr__(self, name):
        # Only reached for names that are not fields; unpickling asks before
        # the fields exist, and must get an AttributeError, not a recursion.
        if name.startswith("__") or name in ("record", "certificate"):
            raise AttributeError(name)
        return getattr(self.record, name)

    def __getitem__(self, name):
        if name == "certificate":
            return self.certificate
        return self.record[name]

    def to_dict(self):
        """The method's record as a dict, with ``certificate`` added."""
        return {**self.record.to_dict(), "certificate": self.certificate.to_dict()}
