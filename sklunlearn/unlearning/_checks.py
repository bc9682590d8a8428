"""Checks shared by the forgetting methods: the adjusted-likelihood region and
the signs of a result that is likely worse than not forgetting at all."""

from functools import lru_cache

import numpy as np
from scipy import sparse, stats

from ._prior import FLOOR_SLACK

__all__ = [
    "COVARIANCE_PER_MOVE",
    "COVARIANCE_RELINEARISATION",
    "MEAN_RELINEARISATION",
    "NEWTON_DECREMENT",
    "OVERSHOOT_CLIP",
    "REFERENCE_DISAGREEMENT",
    "decrement_warning",
    "linearisation_bounds",
    "linearisation_check",
    "overshoot_warning",
    "reference_disagreement",
    "region_mahalanobis_radius",
    "region_mass",
]

# A log-concave likelihood can only add curvature, so no posterior of the model
# has a precision below the prior's. A forgotten precision that had to be
# floored by more than this fraction of the prior precision (in some direction)
# removed curvature the posterior never had: the method over-forgot.
OVERSHOOT_CLIP = 0.1
# A step shorter than this many posterior standard deviations (rows the model was
# certain about, whose gradient and curvature are round-off) changes nothing float64
# can show: the checks would divide round-off by round-off, and their warning would
# refuse a forget that doing nothing makes exact. Such steps are not judged.
NEGLIGIBLE_MOVE = 1e-9

# 'eubo' and 'rkl' are cross-checked against the one-step Laplace divide-out,
# which predicts the retrained posterior well (benchmarks/README.md). A result
# whose KL to it exceeds this fraction of the unforgotten posterior's is, in
# square-root-KL terms, at least 2/3 of the way back to doing nothing: with the
# reference's own error, likely no better than not forgetting.
REFERENCE_DISAGREEMENT = 0.45
# Below this KL (nats) between the unforgotten posterior and the reference,
# forgetting changes nothing measurable and the ratio is not formed.
_NEGLIGIBLE_KL = 1e-10


# The one-step divide-out linearises the forgotten rows' likelihood at the
# full-data mode. Re-evaluated at the new mean, a change of their gradient that
# the linearisation did not predict (Newton decrement, over the step's own) or
# of their curvature (approximate KL of the two precisions, over the step's KL
# from the input) above these levels marks a step the quadratic picture does
# not support: in the settings measured (docs/pattern_forgetting.md) such steps
# end near or beyond the do-nothing distance from the retrained posterior.
MEAN_RELINEARISATION = 1.0
# The diagonal check's covariance level (sklunlearn/unlearning/_diagonal.py).
COVARIANCE_RELINEARISATION = 0.02
# The full check's covariance level, for a predictor linear in its parameters, is
# this times the mean's move in posterior standard deviations, up to one: a
# curvature change that appears over a short move marks a likelihood whose
# curvature varies fast near the mode, and the remaining rows, which the check
# cannot re-evaluate, share it (benchmarks/bench_laplace_check.py calibrates it
# against retraining on linear and inducing-point predictors). A network's
# curvature also moves with its Jacobian, which that calibration did not see: it
# keeps COVARIANCE_RELINEARISATION, set on its own benchmark (bench_mlp.py).
COVARIANCE_PER_MOVE = 0.08
# The one-step divide-out is one Newton step of the remaining rows' log posterior from
# the full-data mode; its Newton decrement, sqrt(g' P^-1 g), is the step's length in
# standard deviations of the posterior it lands on (Boyd & Vandenberghe 2004, Sec.
# 9.5.1). A step longer than this rests on the remaining rows' likelihood staying
# quadratic over several of their own standard deviations, which the check, seeing only
# the forgotten rows, cannot confirm: a confidently misclassified row holds almost no
# curvature, so its likelihood stays linear over the step while the remaining rows'
# does not (benchmarks/README.md, "The Laplace divide-out's self-check").
NEWTON_DECREMENT = 2.0
# Fixed Rademacher probes of the Hutchinson trace estimates of the check.
_N_PROBES = 8


_RELINEARISATION_MESSAGE = (
    "{} is not supported by the forgotten rows' "
    "likelihood: re-evaluated at the new mean, their gradient changed {:.2g} times "
    "the step's Newton decrement (threshold {:g}) and their curvature {:.2g} times the "
    "step's size (threshold {:g}). {}"
)
# 'uib' can end further from the retrain than a warned step, so the advice offers it
# as a candidate to compare, not as the remedy.
_LAPLACE_ADVICE = (
    "Large or clustered deletions with a weak prior, or "
    "a large-amplitude kernel, do this; the result may be worse than not forgetting. "
    "Fit again on the remaining rows (for a systematic group, unlearning='uib' may do "
    "better or worse: compare them with sklunlearn.model_selection.UnlearningAudit)."
)


def _covariance_level(model, moved):
    """The covariance measure's threshold at a move of ``sqrt(moved)`` deviations."""
    if not model.predictor.linear_in_parameters:
        return COVARIANCE_RELINEARISATION
    return COVARIANCE_PER_MOVE * min(1.0, np.sqrt(moved))


@lru_cache(maxsize=8)
def _probes(n_features):
    probes = np.random.RandomState(0).choice([-1.0, 1.0], size=(n_features, _N_PROBES))
    probes.setflags(write=False)
    return probes


def _prior_matrix(model):
    """The prior precision as a matrix, or as a column (diagonal); whether a matrix."""
    prior = np.asarray(model.prior.precision)  # a scalar, a diagonal or a matrix
    return (prior[:, None] if prior.ndim == 1 else prior), prior.ndim == 2


def probe_solves(model, after, union):
    """The solves of :func:`linearisation_check` that do not depend on the new mean.

    ``(P^-1 [V, H V], W)`` with ``V`` the probes, ``H`` the curvature of
    ``union`` and ``W = P^-1 V - P^-1 Lambda0 P^-1 V``, ``P`` the precision
    of ``after``.
    """
    prior, full = _prior_matrix(model)
    probes = _probes(after.n_features)
    k = probes.shape[1]
    inverse = after.solve(np.column_stack([probes, union.hessian @ probes]))
    # W = P^-1 S' V = P^-1 V - P^-1 Lambda0 P^-1 V, so that C' V = (H0 - H1) W below.
    spread = inverse[:, :k] - after.solve(
        prior @ inverse[:, :k] if full else prior * inverse[:, :k]
    )
    return inverse, spread


def linearisation_check(
    model,
    X,
    y,
    weights,
    before,
    after,
    terms,
    union=None,
    *,
    step="The one-step Laplace divide-out",
    advice=_LAPLACE_ADVICE,
    judge_mean=True,
    solves=None,
):
    """Re-evaluate the forgotten rows at the divided-out mean; flag a bad linearisation.

    ``after`` is the divide-out of ``union`` (the rows' terms at
    ``before.mean``, ``terms`` those of ``X`` alone; the same rows when None)
    from ``before``. With ``delta = after.mean - before.mean``, ``P`` the
    precision of ``after``, ``Lambda0`` the prior's, ``S = P^-1 (P - Lambda0)``
    the share of ``P`` the remaining rows hold, ``H0``, ``g0`` the rows'
    curvature and gradient at ``before.mean`` and ``H1``, ``g1`` at
    ``after.mean``:

    - mean: ``s' (P - Lambda0) s / g' P^-1 g``, ``s = P^-1 r``,
      ``r = g0 - g1 - H0 delta`` the change of the gradient that the quadratic
      did not predict, over the step's own Newton decrement (``g`` of
      ``union``);
    - covariance: ``tr((S P^-1 (H0 - H1))^2) / (tr((P^-1 H)^2) + 2 delta'
      Lambda delta)``: four times the second-order KL between the precisions
      linearised at the two means over four times that of the step
      (``Lambda`` the precision of ``before``, ``H`` of ``union``). The traces
      are Hutchinson estimates with fixed probes, O(d^2) each.

    The thresholds are ``MEAN_RELINEARISATION`` and ``COVARIANCE_PER_MOVE``
    times the move ``min(1, sqrt(delta' Lambda delta))`` (``COVARIANCE_RELINEARISATION``
    for a predictor nonlinear in ``theta``). Both count changes
    only where the remaining rows hold curvature (``S``, ``P - Lambda0``): in
    directions only the forgotten rows informed, the remaining posterior is
    the prior's quadratic and the step is exact, whatever their likelihood
    does there. Costs one more pass over the rows
    (their gradient at ``after.mean`` and their curvature there applied to
    the probes, ``O(k d s)``) and solves with ``after``'s factor; no
    factorisation.

    :func:`linearisation_bounds` certifies most small moves without that
    pass, with the same warnings.

    ``step`` names the step in the warning and ``advice`` ends it. With
    ``judge_mean=False`` only the covariance measure can warn (a step that
    does not move the mean to ``after.mean`` asks this check about the
    precision alone). ``solves``: :func:`probe_solves` of the same
    ``model``, precision of ``after`` and ``union``, when already computed
    (they do not depend on ``after.mean``).

    Returns
    -------
    mean_error, covariance_error : float
    message : str or None
        The warning when either exceeds its threshold.
    """
    union = terms if union is None else union
    delta = after.mean - before.mean
    prior, full = _prior_matrix(model)
    probes = _probes(delta.shape[0])
    k = probes.shape[1]
    if solves is None:
        solves = probe_solves(model, after, union)
    inverse, spread = solves
    # The rows' curvature at the new mean only along V and W: O(k d s), not formed.
    at_new = model.terms(
        X, y, weights, after.mean, with_value=False, vectors=np.hstack([probes, spread])
    )
    change = terms.hessian @ np.hstack([probes, spread]) - at_new.hessian
    remainder = terms.gradient - at_new.gradient - terms.hessian @ delta
    solved = after.solve(np.column_stack([change[:, :k], remainder]))
    # v' C^2 v = (C' v)' (C v), C = S P^-1 (H0 - H1) = P^-1 (P - Lambda0) P^-1 (H0 - H1).
    projected = solved[:, :k] - after.solve(
        prior @ solved[:, :k] if full else prior * solved[:, :k]
    )
    transposed = change[:, k:]
    # The probe estimates of these non-negative traces can come out negative.
    changed = abs(np.sum(transposed * projected)) / k
    removed = abs(np.sum((union.hessian @ inverse[:, :k]) * inverse[:, k:])) / k
    shifted = solved[:, -1]
    in_prior = shifted @ (
        prior @ shifted if full else np.reshape(prior * shifted[:, None], -1)
    )
    tiny = np.finfo(np.float64).tiny
    mean_error = max(remainder @ shifted - in_prior, 0.0) / max(
        -(union.gradient @ delta), tiny
    )
    moved = max(delta @ before.precision @ delta, 0.0)
    covariance_error = changed / max(removed + 2.0 * moved, tiny)
    level = _covariance_level(model, moved)
    mean_judged = mean_error if judge_mean else 0.0
    if mean_judged <= MEAN_RELINEARISATION and covariance_error <= level:
        return float(mean_error), float(covariance_error), None
    message = _RELINEARISATION_MESSAGE.format(
        step, mean_error, MEAN_RELINEARISATION, covariance_error, level, advice
    )
    return float(mean_error), float(covariance_error), message


# The bounds certify the check with this factor to spare for the round-off of
# the check's own sums, which the bounds (exact arithmetic) do not count.
_CERTIFIED_FRACTION = 0.5
# The probes' bound of the covariance measure is typically 1 / sqrt(d) of the
# norm bound; it is computed only when the norm bound is within this factor
# times sqrt(d) of certifying (a cost rule: failing falls back to the check).
_PROBE_GAIN = 4.0


def linearisation_bounds(
    model, X, weights, before, after, union, eigenvalue_bound, *, origin=None
):
    """Upper bounds on :func:`linearisation_check`'s measures, when both certify it.

    Where this returns bounds, the check would not warn: its second pass over
    the rows and its solves are skipped, and the bounds stand for its
    measures. ``eigenvalue_bound`` is a lower bound on the smallest
    eigenvalue of ``after``'s precision (0 when none is known). ``origin``
    is where the rows' terms were linearised when not at ``before.mean``
    (a site moved there): the rows' moves are then measured from it.

    For a predictor linear in ``theta`` (the rows' ``f`` move by
    ``a_i = |J_i delta|``) and a likelihood whose curvature ``c(f)`` is
    ``L``-Lipschitz (``curvature_lipschitz``), each row's weighted curvature
    changes by at most ``e_i = w_i L a_i`` and its gradient departs from the
    linearisation by at most ``w_i L a_i^2 / 2`` (Taylor's theorem). With
    ``s_i = ||J_i||^2``, ``lambda`` a lower bound on the smallest eigenvalue
    of ``P``, ``B = S P^-1 = P^-1 (P - Lambda0) P^-1`` (``||B||_2 <= 1 /
    lambda``) and ``M = B (H0 - H1)``, ``||H0 - H1||_2 <= E = sum_i e_i s_i``:

    - each probe ``v`` (squared norm ``d``) adds ``v' M^2 v <= ||M' v|| ||M v||``
      to the covariance estimate, at most ``d (E / lambda)^2``, and, sharper,
      ``||M' v|| <= sqrt(d) E / lambda`` with ``||M v|| <= sum_i e_i |J_i' v|
      sqrt(s_i) / lambda``; the step's term is at least ``2 delta' Lambda delta``;
    - ``||r|| <= sum_i w_i L a_i^2 sqrt(s_i) / 2`` and the mean measure is
      ``r' B r / g' P^-1 g <= ||r||^2 / (lambda g' P^-1 g)``.

    ``O(k d)``, and ``O(k d s)`` for the sharper bound with ``s`` probes: no
    solve, no curvature; the check's second pass and solves are what this
    avoids.

    Returns
    -------
    bounds : tuple or None
        ``(mean, covariance, None)`` as :func:`linearisation_check` returns
        them, when both are below ``_CERTIFIED_FRACTION`` of their thresholds;
        None otherwise, or when the model gives no such bound (a predictor
        nonlinear in ``theta``, a likelihood without ``curvature_lipschitz``,
        no positive ``eigenvalue_bound`` or prior, rows that are not in
        memory, such as a cluster's).
    """
    lipschitz = getattr(model.likelihood, "curvature_lipschitz", None)
    lowest = max(
        float(eigenvalue_bound), (1.0 - FLOOR_SLACK) * model.prior.eigenvalue_range[0]
    )
    in_memory = isinstance(X, np.ndarray) or sparse.issparse(X)
    if (
        lipschitz is None
        or not model.predictor.linear_in_parameters
        or not lowest > 0
        or not in_memory
    ):
        return None
    delta = after.mean - before.mean
    d = delta.shape[0]
    start = before.mean if origin is None else origin
    shift, norms = model.predictor.row_moves(X, start, after.mean - start)
    change = lipschitz * weights * shift
    roots = np.sqrt(norms)
    tiny = np.finfo(np.float64).tiny
    moved = max(delta @ before.precision @ delta, 0.0)
    step = max(2.0 * moved, tiny)
    residual = 0.5 * lipschitz * (weights @ (shift**2 * roots))
    mean = residual**2 / lowest / max(-(union.gradient @ delta), tiny)
    curvature = (change @ norms) / lowest
    covariance = d * curvature**2 / step
    limit = _CERTIFIED_FRACTION * COVARIANCE_PER_MOVE * min(1.0, np.sqrt(moved))
    if not mean <= _CERTIFIED_FRACTION * MEAN_RELINEARISATION or not (
        covariance <= limit * _PROBE_GAIN * np.sqrt(d)
    ):
        return None
    if covariance > limit:
        along, _ = model.predictor.row_moves(X, before.mean, _probes(d))
        sharper = (change * roots) @ along / lowest  # ||M v|| at most, per probe
        covariance = np.sqrt(d) * curvature * np.mean(sharper) / step
        if not covariance <= limit:
            return None
    return float(mean), float(covariance), None


def decrement_warning(decrement):
    """The warning for a divide-out step of Newton decrement ``decrement``, or None.

    ``decrement = sqrt(g' P^-1 g) = sqrt(delta' P delta)``, ``g`` the forgotten
    rows' gradient at the full-data mode, ``P`` the forgotten precision and
    ``delta`` the step: the step's length in standard deviations of the
    forgotten posterior. A step longer than ``NEWTON_DECREMENT`` warns.
    """
    if not decrement > NEWTON_DECREMENT:
        return None
    return (
        f"The one-step Laplace divide-out moved the mean {decrement:.2g} standard "
        "deviations of the forgotten posterior (its Newton decrement; threshold "
        f"{NEWTON_DECREMENT:g}): so long a step holds only if the remaining rows' "
        "likelihood is quadratic along it, which a forget cannot evaluate. Confidently "
        "misclassified rows with a weak prior, whose likelihood is nearly linear, or "
        "large or clustered deletions do this; the result may be worse than not "
        "forgetting. Fit again on the remaining rows."
    )


def region_mahalanobis_radius(unlearning_lambda):
    """Squared Mahalanobis radius ``-2 log lambda`` of ``{q(theta|D) > lambda max q}``."""
    if unlearning_lambda <= 0:
        return np.inf
    return -2.0 * np.log(unlearning_lambda)


def region_mass(unlearning_lambda, n_features):
    """Mass of ``q(theta|D)`` inside the adjusted-likelihood region.

    The region is an ellipsoid of squared Mahalanobis radius ``-2 log lambda``
    under a ``d``-dimensional Gaussian, so its mass is the chi-squared
    distribution function ``F_{chi2_d}(-2 log lambda)``: ``lambda = 0.1``
    holds 68% of the mass at ``d = 5`` but 1% at ``d = 20``.
    """
    if unlearning_lambda <= 0:
        return 1.0
    if unlearning_lambda >= 1:
        return 0.0
    return float(stats.chi2.cdf(region_mahalanobis_radius(unlearning_lambda), n_features))


def overshoot_warning(clipped):
    """The over-forgetting warning for a precision floored ``-clipped`` below the prior."""
    if clipped >= -OVERSHOOT_CLIP:
        return None
    return (
        f"Unlearning removed more curvature than the posterior holds: the new "
        f"precision fell {-clipped:.2g} times the prior precision below the prior "
        "in some direction and was floored there. The result is likely worse "
        "than not forgetting (over-forgetting); forget fewer rows at a time, or "
        "use unlearning='laplace' or a larger unlearning_lambda."
    )


def reference_disagreement(result, reference, posterior):
    """``KL(result || reference) / KL(posterior || reference)`` and its warning (or None).

    ``reference`` is the one-step Laplace divide-out of the same rows from
    ``posterior``. A floored precision is only reported (see
    :func:`overshoot_warning`) when the result also disagrees with it.
    """
    nothing = posterior.kl_divergence(reference)
    distance = result.kl_divergence(reference)
    if nothing <= _NEGLIGIBLE_KL:
        disagreement = 0.0 if distance <= _NEGLIGIBLE_KL else np.inf
    else:
        disagreement = float(distance / nothing)
    if disagreement <= REFERENCE_DISAGREEMENT:
        return disagreement, None
    if np.isinf(disagreement):
        how_far = (
            f"The result is {distance:.2g} nats (KL) from the one-step Laplace "
            "divide-out of the same rows, while the unforgotten posterior is "
            f"within {_NEGLIGIBLE_KL:.0e} nats of it; "
        )
    else:
        how_far = (
            f"The result is {disagreement:.2g} times as far (KL) from the one-step "
            "Laplace divide-out of the same rows as the unforgotten posterior is; "
        )
    return disagreement, how_far + (
        "the Laplace step predicts the retrained posterior well, so this result "
        "is likely no better than not forgetting. Compare with "
        "unlearning='laplace'."
    )
