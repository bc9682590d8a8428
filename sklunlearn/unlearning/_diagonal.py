"""Forgetting from a diagonal Gaussian posterior (networks too large for a full one).

A :class:`~sklunlearn._diagonal_posterior.DiagonalGaussianPosterior` keeps a
mean ``m`` and a precision vector ``p``. Forgetting rows divides their diagonal
Gauss-Newton curvature ``h = diag(J' diag(w c) J)`` out of it (Rawat et al.
2022, Sec. 3) and takes a shortened Newton step on a block ``S`` of the
parameters (all of them for ``'laplace'``, those L-CODEC selects for
``'lcodec'``, Mehta et al. 2022):

    p <- max(p - h, p0),     m_S <- m_S - t g_S / p_S,     m_rest unchanged,

``p0`` the prior's precision and ``t`` in ``[0, 1]`` a step length that the
diagonal needs (it ignores how the weights' curvature couples). The step is
checked by re-evaluating the rows at the new mean
(:func:`diagonal_linearisation_check`), as the full ``'laplace'`` step is.

References
----------
A. Rawat, J. Requeima, W. Bruinsma, R. Turner, Challenges and Pitfalls of
Bayesian Unlearning, 2022.

R. Mehta, S. Pal, V. Singh, S. N. Ravi, Deep Unlearning via Randomized
Conditionally Independent Hessians, CVPR 2022.

C. Guo, T. Goldstein, A. Hannun, L. van der Maaten, Certified Data Removal
from Machine Learning Models, ICML 2020.

R. H. Byrd, G. M. Chin, W. Neveitt, J. Nocedal, On the use of stochastic
Hessian information in optimization methods for machine learning, SIAM J.
Optim. 21(3), 2011.
"""

import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from .._diagonal_posterior import DiagonalGaussianPosterior
from ._checks import (
    COVARIANCE_RELINEARISATION,
    MEAN_RELINEARISATION,
    overshoot_warning,
)
from ._diagnostics import LaplaceDiagnostics
from ._laplace import CHECKED_MOVE
from ._prior import FLOOR_SLACK

__all__ = [
    "LEFT_OUT_DISTANCE",
    "RESIDUAL_GROWTH",
    "SHORT_STEP",
    "DiagonalLaplaceDiagnostics",
    "DiagonalStep",
    "diagonal_block_step",
    "diagonal_divide_out",
    "diagonal_gauss_newton",
    "diagonal_linearisation_check",
]

# A diagonal step whose quadratic model predicts a remaining gradient this many
# times larger than not moving is reported as likely worse than not forgetting;
# below it, the prediction is within its own error (benchmarks/README.md).
RESIDUAL_GROWTH = 1.25

# A line search that keeps less than this fraction of the diagonal Newton step, and
# leaves out more than LEFT_OUT_DISTANCE posterior standard deviations of it, is
# reported: most of the rows' pull on the mean stays, beyond the posterior's own
# spread. Short steps whose left-out part is within that spread are ordinary
# (docs/neural_network.md, "The pitfalls").
SHORT_STEP = 0.5
LEFT_OUT_DISTANCE = 2.0

# Entries of a Jacobian block read by diagonal_gauss_newton (16 MiB): the rows per
# block shrink as the network grows, so no (n, p) array is ever formed.
_DIAGONAL_BLOCK_ENTRIES = 2**21


def diagonal_gauss_newton(predictor, X, theta, c):
    """``diag(J' diag(c) J) = sum_i c_i J_ij^2`` of the rows, shape (p,).

    Reads the predictor's Jacobian in row blocks of at most
    ``_DIAGONAL_BLOCK_ENTRIES`` entries: ``O(n p)`` time, ``O(p)`` memory
    beyond one block.
    """
    diagonal = np.zeros(predictor.n_parameters(X.shape[1]))
    size = max(1, _DIAGONAL_BLOCK_ENTRIES // diagonal.shape[0])
    for start in range(0, X.shape[0], size):
        J = predictor.jacobian(X[start : start + size], theta)
        diagonal += c[start : start + size] @ (J * J)
    return diagonal


def _diagonal_terms(model, X, y, weights, theta):
    """The rows' log-likelihood gradient ``J' (w g)``, diagonal curvature and ``w c``."""
    derivative, curvature = model.likelihood.row_terms(model.predictor.value(X, theta), y)[
        1:
    ]
    curvature = weights * curvature
    gradient = model.predictor.vjp(X, theta, weights * derivative)
    return gradient, diagonal_gauss_newton(model.predictor, X, theta, curvature), curvature


def _prior_diagonal(model, n_parameters):
    """The prior's precision as a vector (a full prior matrix: its diagonal)."""
    precision = np.asarray(model.prior.precision, dtype=np.float64)
    if precision.ndim == 2:
        precision = np.diag(precision)
    return np.broadcast_to(precision, (n_parameters,))


@dataclass(frozen=True)
class DiagonalLaplaceDiagnostics(LaplaceDiagnostics):
    """Diagnostics of the diagonal divide-out (:func:`diagonal_divide_out`).

    Attributes
    ----------
    step_length : float
        ``t`` in ``[0, 1]``: the fraction of the diagonal Newton step taken
        (see :func:`diagonal_block_step`).
    gradient_norm : float
        ``||g||``, the remaining rows' log-posterior gradient at the old mean.
    predicted_residual : float
        ``||g + t H_r d||``, that gradient after the step under the quadratic
        model with the estimated curvature.
    """

    step_length: float = 1.0
    gradient_norm: float = 0.0
    predicted_residual: float = 0.0


class DiagonalStep(NamedTuple):
    """A step of :func:`diagonal_block_step`.

    Fields
    ------
    posterior : DiagonalGaussianPosterior
        The new posterior.
    gradient_norm : float
        ``||g||``, the remaining rows' log-posterior gradient before the step:
        the residual of doing nothing.
    predicted_residual : float
        ``||g + t H_r d||``, that gradient after the step under the
        quadratic model with the estimated curvature ``H_r d``.
    clipped : float
        The most negative ``(p - h - p0) / p0`` floored (0.0 if none).
    full_step_distance : float
        ``||m_block - m_full||^2 / ||m - m_full||^2`` in the new precision:
        the share of the full diagonal step's squared length left out.
    step_length : float
        ``t``, the fraction of the diagonal Newton step taken.
    mean_relinearisation, covariance_relinearisation : float
        :func:`diagonal_linearisation_check`'s measures (NaN when not run).
    warnings : tuple of str
        Reasons to think the step is worse than not forgetting.
    """

    posterior: object
    gradient_norm: float
    predicted_residual: float
    clipped: float
    full_step_distance: float
    step_length: float
    mean_relinearisation: float
    covariance_relinearisation: float
    warnings: tuple


def diagonal_block_step(posterior, model, X, y, weights, block=None, *, line_search=True):
    """Divide the rows out of a diagonal posterior; Newton step on ``block`` only.

    With ``g``, ``h`` the rows' log-likelihood gradient and diagonal
    Gauss-Newton curvature at the mean ``m``, ``p`` the precision and ``p0``
    the prior's:

        p_r = max(p - h, p0),   d_S = -g_S / p_r,S,   m_r,S = m_S + t d_S.

    The precision is Rawat et al. (2022, Sec. 3)'s divide-out with the
    diagonal curvature, floored at the prior (no posterior of the model has
    less). ``d`` is the Newton direction of the remaining rows' log posterior
    ``log q(theta) - l(theta)``: its gradient at ``m`` is ``-g`` (``q`` is at
    its mode) and its diagonal negative Hessian ``p_r`` (Guo et al. 2020,
    eq. 3); on the block ``S`` alone (Mehta et al. 2022) the other
    coordinates stay.

    The diagonal ignores how the weights' curvature couples, and along ``d``
    the remaining rows' curvature is typically many times ``d' diag(p_r) d``:
    the full step (``t = 1``) overshoots. The forgotten rows, a sample of the
    training rows, estimate that curvature (a sub-sampled curvature, Byrd et
    al. 2011), scaled to the remaining rows' share of the precision's trace:

        H_r d = p0 d + rho H d,   rho = sum_j (p_r - p0)_j / sum_j h_j,

    ``H d = J' diag(w c) J d`` the rows' full curvature along ``d``. With
    ``line_search``, ``t = clip(-g' H_r d / ||H_r d||^2, 0, 1)`` minimises
    the predicted gradient residual ``||g + t H_r d||`` of the remaining
    rows' objective (the quantity Guo et al. 2020 bound). The step is
    reported as likely worse than not forgetting when that prediction
    exceeds ``RESIDUAL_GROWTH`` times ``||g||`` (only a full step can), when
    the floor clipped more than ``OVERSHOOT_CLIP``, or when
    :func:`diagonal_linearisation_check` (run on moves of ``CHECKED_MOVE``
    standard deviations or more) flags it. A line search that keeps less than
    ``SHORT_STEP`` of the step and leaves out more than ``LEFT_OUT_DISTANCE``
    of its length ``sqrt(d_S' diag(p_r,S) d_S)`` (the remaining rows'
    Newton decrement on the block, in standard deviations) is reported as
    leaving most of the rows' influence in place.

    Parameters
    ----------
    posterior : DiagonalGaussianPosterior
        ``q(theta|D)`` at its mode; not modified.
    model : Model
        Predictor, likelihood and prior.
    X, y, weights : ndarrays
        Rows to forget, their targets and weights.
    block : ndarray of int, default=None
        Indices of the parameters to move (all by default).
    line_search : bool, default=True
        Choose ``t`` as above; False takes the full step ``t = 1``.

    Returns
    -------
    step : DiagonalStep
    """
    m = posterior.mean
    block = np.arange(m.shape[0]) if block is None else np.asarray(block, dtype=np.intp)
    gradient, curvature, row_curvature = _diagonal_terms(model, X, y, weights, m)
    prior = _prior_diagonal(model, m.shape[0])
    remaining, clipped = _floored(posterior.precision - curvature, prior)
    direction = np.zeros_like(m)
    direction[block] = -gradient[block] / remaining[block]
    # O(k p): the rows' full curvature along d, never (p, p)
    along = model.predictor.gauss_newton_product(X, m, row_curvature, direction[:, None])
    removed = float(curvature.sum())
    share = float((remaining - prior).sum()) / removed if removed > 0.0 else 0.0
    estimated = prior * direction + share * along[:, 0]
    length = 1.0
    if line_search:
        reduction, size = -float(gradient @ estimated), float(estimated @ estimated)
        length = min(max(reduction / size, 0.0), 1.0) if size > 0.0 else 0.0
    step = length * direction
    new = DiagonalGaussianPosterior(m + step, remaining)
    before = float(np.linalg.norm(gradient))
    after = float(np.linalg.norm(gradient + length * estimated))
    full = gradient * gradient / remaining
    distance = 1.0 - float(full[block].sum() / full.sum()) if full.sum() > 0.0 else math.nan
    checked = (math.nan, math.nan, None)
    if posterior.mahalanobis(m + step) >= CHECKED_MOVE:
        checked = diagonal_linearisation_check(
            model, X, y, weights, posterior, new, gradient,
            curvature, length * along[:, 0],
        )  # fmt: skip
    messages = (
        overshoot_warning(clipped),
        _growth_warning(before, after, block.shape[0], m.shape[0]),
        _short_step_warning(length, math.sqrt(full[block].sum())),
        checked[2],
    )
    return DiagonalStep(
        new, before, after, clipped, distance, float(length), *checked[:2],
        tuple(message for message in messages if message is not None),
    )  # fmt: skip


def _floored(precision, prior):
    """``max(precision, prior)`` and the most negative ``(precision - prior) / prior``.

    Entries down to ``-FLOOR_SLACK`` (round-off of a precision built as the
    prior plus curvature) are kept as they are and not reported.
    """
    scaled = (precision - prior) / prior
    floored = scaled < -FLOOR_SLACK
    if not floored.any():
        return precision, 0.0
    return np.where(floored, prior, precision), float(scaled.min())


def _growth_warning(before, after, n_moved, n_parameters):
    """The warning for a step predicted to leave a larger remaining gradient."""
    if not after > RESIDUAL_GROWTH * before:
        return None
    return (
        f"The diagonal Laplace step on {n_moved} of {n_parameters} parameters is "
        f"predicted to leave the remaining rows' gradient {after / before:.3g} times "
        "as large as not moving (their curvature along the step estimated from the "
        "forgotten rows): it is likely worse than not forgetting. Forget fewer rows "
        "at a time, or fit again on the remaining rows."
    )


def _short_step_warning(length, full_distance):
    """The warning for a step shortened so much that most of the rows' pull remains.

    ``full_distance``: the diagonal Newton step's length ``sqrt(d' diag(p_r) d)``
    in the new posterior's standard deviations; ``1 - length`` of it is left out.
    """
    left_out = (1.0 - length) * full_distance
    if not (length < SHORT_STEP and left_out > LEFT_OUT_DISTANCE):
        return None
    return (
        f"The diagonal Laplace step had to be shortened to {length:.2g} of its length "
        "(the diagonal curvature ignores how the weights couple, and the full step "
        f"would overshoot): {left_out:.3g} posterior standard deviations of it were "
        f"left out (threshold {LEFT_OUT_DISTANCE:g}), so most of the forgotten rows' "
        "influence on the mean remains and the result is close to not forgetting. Fit "
        "again on the remaining rows, or use curvature='ggn', whose step uses the full "
        "curvature."
    )


def diagonal_linearisation_check(
    model, X, y, weights, before, after, gradient, curvature, predicted
):
    """Re-evaluate the rows at the new mean; flag a step their linearisation misses.

    The diagonal form of :func:`~sklunlearn.unlearning._checks.linearisation_check`,
    needing no remaining rows. With ``delta = after.mean - before.mean``,
    ``p`` the precision of ``after``, ``p0`` the prior's, ``g0``, ``h0`` the
    rows' gradient and diagonal curvature at ``before.mean``, ``g1``, ``h1``
    at ``after.mean`` and ``predicted = H0 delta = J' diag(w c) J delta`` at
    ``before.mean``:

    - mean: ``sum_j (p - p0)_j s_j^2 / (-g0' delta)``, ``s = r / p``,
      ``r = g0 - g1 - H0 delta`` the change of the gradient that the
      quadratic did not predict, over the step's own Newton decrement;
    - covariance: ``sum_j ((1 - p0 / p) (h0 - h1) / p)_j^2 / (sum_j (h0 /
      p)_j^2 + 2 delta' diag(p_before) delta)``, the second-order KL between
      the precisions linearised at the two means over that of the step.

    Both weigh a change by the remaining rows' share ``p - p0`` of the
    precision, as the full check does. Costs one pass over the rows.

    Returns
    -------
    mean_error, covariance_error : float
    message : str or None
        The warning when either exceeds ``MEAN_RELINEARISATION`` or
        ``COVARIANCE_RELINEARISATION``.
    """
    m, delta = before.mean, after.mean - before.mean
    prior = _prior_diagonal(model, m.shape[0])
    p = after.precision
    new_gradient, new_curvature, _ = _diagonal_terms(model, X, y, weights, after.mean)
    shifted = (gradient - new_gradient - predicted) / p
    tiny = np.finfo(np.float64).tiny
    mean_error = float(
        max(shifted @ ((p - prior) * shifted), 0.0) / max(-(gradient @ delta), tiny)
    )
    changed = (1.0 - prior / p) * (curvature - new_curvature) / p
    step = np.sum((curvature / p) ** 2) + 2.0 * delta @ (before.precision * delta)
    covariance_error = float(changed @ changed / max(step, tiny))
    if (
        mean_error <= MEAN_RELINEARISATION
        and covariance_error <= COVARIANCE_RELINEARISATION
    ):
        return mean_error, covariance_error, None
    return (
        mean_error,
        covariance_error,
        _DIAGONAL_RELINEARISATION_MESSAGE.format(
            mean_error, MEAN_RELINEARISATION, covariance_error, COVARIANCE_RELINEARISATION
        ),
    )


_DIAGONAL_RELINEARISATION_MESSAGE = (
    "The diagonal Laplace step is not supported by the forgotten rows' likelihood: "
    "re-evaluated at the new mean, their gradient changed {:.2g} times the step's "
    "Newton decrement (threshold {:g}) and their diagonal curvature {:.2g} times the "
    "step's size (threshold {:g}). Large or clustered deletions do this; the result "
    "may be worse than not forgetting. Forget fewer rows at a time, or fit again on "
    "the remaining rows."
)


def diagonal_divide_out(posterior, model, X, y, weights, *, line_search=True):
    """Forget rows from a diagonal Laplace posterior: the divide-out and one Newton step.

    :func:`diagonal_block_step` on every parameter: ``p_r = max(p - h, p0)``,
    ``m_r = m - t g / p_r`` (Rawat et al. 2022, Sec. 3; Guo et al. 2020,
    eq. 3, with the diagonal Gauss-Newton curvature ``h``), ``t`` its step
    length in ``[0, 1]``.

    Parameters
    ----------
    posterior : DiagonalGaussianPosterior
        ``q(theta|D)`` at its mode; not modified.
    model : Model
        Predictor, likelihood and prior.
    X, y, weights : ndarrays
        Rows to forget, their targets and weights.
    line_search : bool, default=True
        See :func:`diagonal_block_step`.

    Returns
    -------
    posterior : DiagonalGaussianPosterior
    diagnostics : DiagonalLaplaceDiagnostics
    """
    step = diagonal_block_step(posterior, model, X, y, weights, line_search=line_search)
    return step.posterior, DiagonalLaplaceDiagnostics(
        move=posterior.mahalanobis(step.posterior.mean),
        clipped_eigenvalue=step.clipped,
        warnings=step.warnings,
        mean_relinearisation=step.mean_relinearisation,
        covariance_relinearisation=step.covariance_relinearisation,
        step_length=step.step_length,
        gradient_norm=step.gradient_norm,
        predicted_residual=step.predicted_residual,
    )
