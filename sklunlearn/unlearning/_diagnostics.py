"""Typed diagnostics records that forgetting methods return with a posterior."""

import math
from dataclasses import dataclass, fields, replace

import numpy as np

__all__ = [
    "Diagnostics",
    "LaplaceDiagnostics",
    "ReverseKLDiagnostics",
    "UIBDiagnostics",
    "VariationalDiagnostics",
]


def _plain(value):
    """``value`` as plain Python values; a NaN (a check not run) or an infinity is None,
    which strict JSON parsers accept where they reject ``NaN`` and ``Infinity``."""
    if isinstance(value, tuple | list):
        return [_plain(item) for item in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


@dataclass(frozen=True)
class Diagnostics:
    """What every method reports.

    Immutable; :meth:`to_dict` gives plain values that ``json.dumps`` accepts.
    Fields can also be read as ``record['move']``.

    Attributes
    ----------
    n_iter : int
        Iterations (Newton or fixed-point steps) run.
    converged : bool
        Whether the method's stopping criterion was met.
    move : float
        Mahalanobis distance of the new mean under the input posterior.
    clipped_eigenvalue : float
        Most negative eigenvalue clipped when flooring the precision at the
        prior's (0.0 when none was).
    kl_estimate : float or None
        The method's estimate of KL(result || retrained posterior), or None
        when it has none.
    warnings : tuple of str
        Reasons to think the result is worse than not forgetting at all.
    """

    n_iter: int = 1
    converged: bool = True
    move: float = 0.0
    clipped_eigenvalue: float = 0.0
    kl_estimate: float | None = None
    warnings: tuple = ()

    def to_dict(self):
        """The record as a dict of plain Python values."""
        return {field.name: _plain(getattr(self, field.name)) for field in fields(self)}

    def __getitem__(self, name):
        if name not in {field.name for field in fields(self)}:
            raise KeyError(name)
        return getattr(self, name)

    def with_warning(self, message):
        """A copy with ``message`` added (once) to ``warnings``."""
        if message in self.warnings:
            return self
        return replace(self, warnings=(*self.warnings, message))

    def replace(self, **changes):
        """A copy with some fields changed."""
        return replace(self, **changes)


@dataclass(frozen=True)
class LaplaceDiagnostics(Diagnostics):
    """Diagnostics of the Laplace update (see :mod:`._laplace`).

    Attributes
    ----------
    mean_relinearisation : float
        Change of the forgotten rows' gradient at the new mean that the
        linearisation did not predict, over the step's Newton decrement (NaN
        when not checked: learning, ``inference='vi'``; an upper bound when
        :func:`~sklunlearn.unlearning._checks.linearisation_bounds` settled
        the check without re-evaluating the rows).
    covariance_relinearisation : float
        Change of their curvature between the two means, as a KL between the
        two precisions over the step's KL (NaN when not checked; an upper
        bound when the bounds settled the check).
    """

    mean_relinearisation: float = math.nan
    covariance_relinearisation: float = math.nan


@dataclass(frozen=True)
class UIBDiagnostics(Diagnostics):
    """Diagnostics of the unlearning-information-bottleneck update (see :mod:`._uib`).

    Attributes
    ----------
    forgotten_fraction : float
        ``rho = 1 - (beta / (1 + beta))^stages``: the fraction of the rows'
        likelihood site divided out along directions whose precision the
        remaining rows hold (more where the forgotten rows held it).
    stages : int
        Stages run.
    mean_relinearisation, covariance_relinearisation : float
        The divide-out's linearisation check
        (:class:`LaplaceDiagnostics`) at the new mean, for a predictor that
        is not linear in the parameters; NaN when not run.
    """

    forgotten_fraction: float = 1.0
    stages: int = 1
    mean_relinearisation: float = math.nan
    covariance_relinearisation: float = math.nan


@dataclass(frozen=True)
class VariationalDiagnostics(Diagnostics):
    """Diagnostics of the ELBO/EUBO fixed point (see :mod:`._variational`).

    Attributes
    ----------
    newton_move : float
        Mahalanobis size of the first, undamped natural-gradient step.
    residual : float
        Stationarity residual at the result.
    objective : float
        ``F`` at the result.
    region_mass : float
        Mass of ``q(theta|D)`` in the adjusted-likelihood region.
    final_region_mass : float
        Mass of the result in that region (Monte Carlo; 1.0 without a region).
    stalled : bool
        No damped step reduced the residual.
    reference_disagreement : float
        KL to the one-step Laplace divide-out over the unforgotten
        posterior's (NaN when learning).
    """

    newton_move: float = 0.0
    residual: float = 0.0
    objective: float = 0.0
    region_mass: float = 1.0
    final_region_mass: float = 1.0
    stalled: bool = False
    reference_disagreement: float = math.nan


@dataclass(frozen=True)
class ReverseKLDiagnostics(Diagnostics):
    """Diagnostics of reverse-KL moment matching (see :mod:`._reverse_kl`).

    Attributes
    ----------
    effective_sample_size : float
        ``1 / sum w_s^2`` of the normalised importance weights.
    noise_to_move : float
        Estimated Monte Carlo error over the size of the change.
    pareto_k : float
        Pareto shape of the weights' tail.
    region_mass : float
        Mass of ``q(theta|D)`` in the adjusted-likelihood region.
    covariance_correction_scale : float
        Fraction of the covariance correction kept to stay positive definite.
    reference_disagreement : float
        KL to the one-step Laplace divide-out over the unforgotten posterior's.
    """

    effective_sample_size: float = 0.0
    noise_to_move: float = 0.0
    pareto_k: float = math.nan
    region_mass: float = 1.0
    covariance_correction_scale: float = 1.0
    reference_disagreement: float = math.nan
