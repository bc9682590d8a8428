"""L-CODEC: forget with a Newton step on the parameters the forgotten rows' loss depends on.

Mehta, Pal, Singh & Ravi (2022) select the parameters to update from the
forgotten rows themselves: they perturb the rows, ``x + s eps`` with
``eps ~ N(0, I)``, record the loss of each perturbed copy (the response) and
one quantity per candidate group of parameters (a network unit's activation;
here, through :meth:`~sklunlearn.unlearning.Predictor.candidate_values`, a
linear model's per-feature contribution ``x_j w_j``), and keep the groups that
FOCI (Azadkia & Chatterjee 2021) selects: greedy forward selection by
the conditional dependence coefficient ``T_n`` until it is no longer positive.
The Newton removal step (Guo et al. 2020, eq. 3; the ``'laplace'``
divide-out) is then taken on that block only.

The block step, with ``S`` the selected parameters (and those in no group,
such as the intercept), ``m`` the mean, ``Lambda`` the precision, ``g`` and
``H`` the forgotten rows' log-likelihood gradient and curvature at ``m``:

    m_S <- m_S - (Lambda_SS - H_SS)^-1 g_S,     m_rest unchanged,
    Lambda <- Lambda - H.

The mean's step is the exact Newton step of the remaining rows' log
posterior restricted to ``S`` with the other parameters held at their mean
(block coordinate Newton), at ``O(k P s + s^3)``. The precision loses the
rows' whole curvature, as in ``'laplace'``: a rank-k downdate of the stored
factor, ``O(k P^2)``, the same cost as removing only the block ``H_SS``,
which would leave the rows' coupling of ``theta_S`` with the other
parameters in the precision and can leave it below the prior. Both reduce to
the ``'laplace'`` step when every group is selected. The downdate, the full
Newton step and the check of the shared precision at its mean (below) do not
depend on the block, so they run in a second thread during the selection.
Mehta et al.'s code estimates the block's Hessian from two saved gradients;
the model's own curvature block is used here instead.

The step is checked against the full Newton step, whose mean the new
factor gives in ``O(P^2)``: with the precision shared, the KL of either mean
to it is its Mahalanobis distance, and a block step that ends further from it
than the unmoved mean is reported as likely worse than not forgetting. Both
that check and the step trust the quadratic model at the full-data mean, so
the forgotten rows are also re-evaluated
(:func:`~sklunlearn.unlearning._checks.linearisation_check`, as the
``'laplace'`` divide-out does at its mean): at the block step's own mean for
its mean, and at the full step's for the precision the two steps share. Two
more passes over the forgotten rows, none over the remaining ones. Each check
can pass while their errors add up: the block step is also reported when the
full step's estimated error (its measures over their thresholds, as a fraction
of doing nothing's KL) and the block step's KL from the full step (as a
fraction of the unforgotten posterior's) could reach doing nothing's distance
together, ``sqrt(error) + sqrt(disagreement) > 1`` (the triangle inequality of
the square-root KL, a distance between means in the shared precision).

Certified removal adds no noise here: as for ``'laplace'``, the fit's random
linear term ``b`` (Guo et al.'s objective perturbation) masks the gradient
residual the steps leave, which the estimator's certificate bounds, counting
what a block step leaves outside its block (``predicted_residual``). Noise
drawn afresh at every forget would stay in the mean as a random walk that no
later step (which never sees the remaining rows) could undo.

With ``inference='vi'`` the rows' gradient and curvature are averaged under
the posterior, as the ``'laplace'`` divide-out does for a variational
posterior (whose precision holds the rows' expected curvature), and the
re-linearisation check is not run.

A :class:`~sklunlearn._diagonal_posterior.DiagonalGaussianPosterior` takes the
same block step with the diagonal curvature and a step length
(:mod:`sklunlearn.unlearning._diagonal`); under a diagonal precision the block
step ends where the full step does on ``S``, so the block checks above cannot
fail, and the step is checked by re-evaluating the rows at the new mean instead.
"""

import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from scipy import linalg
from sklearn.utils import check_random_state

from .._diagonal_posterior import DiagonalGaussianPosterior
from .._numba.foci import (
    candidate_orders,
    foci_scores,
    nearest_neighbours,
    rank_counts,
    scoring_threads,
)
from ..exceptions import NotPositiveDefiniteError
from ..posterior import GaussianPosterior
from ._checks import (
    MEAN_RELINEARISATION,
    NEGLIGIBLE_MOVE,
    OVERSHOOT_CLIP,
    _covariance_level,
    linearisation_bounds,
    linearisation_check,
    overshoot_warning,
    probe_solves,
)
from ._diagnostics import Diagnostics
from ._diagonal import diagonal_block_step

__all__ = [
    "SCREENED_CANDIDATES",
    "DividedOut",
    "LCodecDiagnostics",
    "block_newton_step",
    "conditional_dependence",
    "divide_out_rows",
    "foci",
    "lcodec_forget",
]

# FOCI's steps after the first score only this many candidates, those with the
# largest unconditional coefficient: each step finds a nearest neighbour per
# copy and candidate, and scoring all G candidates at every step would cost
# more than the full Newton step the method replaces.
SCREENED_CANDIDATES = 128


@dataclass(frozen=True)
class LCodecDiagnostics(Diagnostics):
    """Diagnostics of the L-CODEC block step (see :mod:`._lcodec`).

    Attributes
    ----------
    selected : tuple of int
        The candidate groups FOCI selected, in the order of selection (for a
        linear model, the feature indices).
    dependence : tuple of float
        ``T_n`` of each selected group given the ones selected before it.
    parameters : tuple of int
        Indices into ``theta`` of the block updated: the selected groups'
        and those in no group (the intercept).
    n_candidates : int
        Number of candidate groups.
    n_perturbations : int
        Perturbed copies of the rows used for the selection.
    gradient_norm : float
        ``||g||``: the remaining rows' log-posterior gradient at the old mean,
        the residual of doing nothing.
    predicted_residual : float
        That gradient after the block step under the quadratic
        model, ``||g + (Lambda - H)[:, S] delta_S||``: what the step leaves
        outside the block (a diagonal posterior: ``||g + t H_r d||``, see
        :func:`diagonal_block_step`).
    full_step_distance : float
        Squared distance of the block step's mean from the full step's over
        that of the unmoved mean, in the new precision (see
        :func:`block_newton_step`).
    mean_relinearisation, covariance_relinearisation : float
        The re-linearisation check of the step: for a full posterior
        :func:`linearisation_check` at the block step's mean (or the bounds
        of :func:`linearisation_bounds` that certify it), NaN when the mean
        did not move or with ``inference='vi'``; for a diagonal one
        :func:`diagonal_linearisation_check`, NaN for a move below
        ``CHECKED_MOVE``.
    step_length : float
        A diagonal posterior's fraction of the Newton step taken (see
        :func:`diagonal_block_step`); 1.0 for a full posterior.
    full_step_error : float
        The full Newton step's own estimated error as a fraction of doing
        nothing's distance: the larger of its re-linearisation measures at
        its mean, each over its threshold (NaN when not run).
    block_disagreement : float
        ``KL(block step || full step) / KL(unforgotten || full step)``: the
        block step's distance from the full step as a fraction of doing
        nothing's (NaN when the full step does not move).
    """

    selected: tuple = ()
    dependence: tuple = ()
    parameters: tuple = ()
    n_candidates: int = 0
    n_perturbations: int = 0
    gradient_norm: float = 0.0
    predicted_residual: float = 0.0
    full_step_distance: float = float("nan")
    mean_relinearisation: float = float("nan")
    covariance_relinearisation: float = float("nan")
    step_length: float = 1.0
    full_step_error: float = float("nan")
    block_disagreement: float = float("nan")


def _dependence_sums(y):
    """The ranks and sums of ``T_n``: ``R``, ``sum R``, ``sum L^2``, ``sum L (n - L)``."""
    below, above = rank_counts(y)
    n = y.shape[0]
    above = above.astype(np.float64)
    return below, float(below.sum()), float(above @ above), float(above @ (n - above))


def conditional_dependence(y, z, x=None):
    """Azadkia & Chatterjee's coefficient ``T_n(Y, Z | X)`` (``T_n(Y, Z)`` without ``X``).

    With ``R_i = #{j : y_j <= y_i}``, ``L_i = #{j : y_j >= y_i}``, ``M(i)``
    the nearest neighbour of ``i`` in ``(X, Z)`` and ``N(i)`` in ``X``
    (Azadkia & Chatterjee 2021, Sec. 2):

        T_n(Y, Z | X) = sum_i (min(R_i, R_M(i)) - min(R_i, R_N(i)))
                        / sum_i (R_i - min(R_i, R_N(i))),
        T_n(Y, Z) = sum_i (n min(R_i, R_M(i)) - L_i^2) / sum_i L_i (n - L_i).

    Parameters
    ----------
    y : array-like of shape (n,)
    z : array-like of shape (n,) or (n, q)
    x : array-like of shape (n,) or (n, r), default=None

    Returns
    -------
    coefficient : float
        Near 0 when ``Y`` is independent of ``Z`` given ``X``, near 1 when
        ``Y`` is a function of ``(X, Z)``; NaN when the denominator is 0
        (``Y`` constant, or a function of ``X`` alone).
    """
    y = np.asarray(y, dtype=np.float64)
    below, _, sum_above_squared, spread = _dependence_sums(y)
    z = np.asarray(z, dtype=np.float64).reshape(y.shape[0], -1)
    if x is None:
        joint = below[nearest_neighbours(z)]
        numerator = y.shape[0] * np.minimum(below, joint).sum() - sum_above_squared
        return float(numerator / spread) if spread > 0 else np.nan
    x = np.asarray(x, dtype=np.float64).reshape(y.shape[0], -1)
    alone = np.minimum(below, below[nearest_neighbours(x)])
    joint = np.minimum(below, below[nearest_neighbours(np.hstack([x, z]))])
    denominator = float((below - alone).sum())
    return float((joint - alone).sum() / denominator) if denominator > 0 else np.nan


def foci(y, candidates, max_features=None, screen=None):
    """FOCI: greedy forward selection by ``T_n`` (Azadkia & Chatterjee 2021).

    Step ``k`` adds the candidate ``j`` maximising ``T_n(Y, Z_j | Z_S)``, ``S``
    the candidates selected so far (equivalently their ``Q_n(Y, Z_S u j)``),
    and stops when that is no longer positive, or after ``max_features``.
    Constant candidates are never selected. With ``screen``, the steps after
    the first score only the ``screen`` candidates of largest ``T_n(Y, Z_j)``
    (exact FOCI without).

    Parameters
    ----------
    y : ndarray of shape (n,)
        The response.
    candidates : ndarray of shape (n, G)
        One variable per column.
    max_features : int, default=None
        Largest number selected (no cap by default).
    screen : int, default=None
        Candidates kept after the first step (all by default).

    Returns
    -------
    selected : list of int
        Columns in the order of selection.
    coefficients : list of float
        ``T_n(Y, Z_j | Z_S)`` of each when it was selected.
    """
    below, *sums = _dependence_sums(np.asarray(y, dtype=np.float64))
    columns = np.ascontiguousarray(np.asarray(candidates, dtype=np.float64).T)
    active = np.ptp(columns, axis=1) > 0
    # One pool for every step: starting threads at each of them costs more than a step.
    with ThreadPoolExecutor(max(1, scoring_threads() - 1)) as pool:
        orders = candidate_orders(columns, pool=pool)
        return _forward_steps(
            columns, orders, active, below, sums, max_features, screen, pool
        )


def _forward_steps(columns, orders, active, below, sums, max_features, screen, pool):
    """FOCI's steps on ``columns`` (G, n) sorted by ``orders``: see :func:`foci`."""
    total_below, sum_above_squared, spread = sums
    n = columns.shape[1]
    names = np.arange(columns.shape[0])  # the candidate in each row of columns
    limit = columns.shape[0] if max_features is None else int(max_features)
    selected, coefficients, base, base_score = [], [], [], None
    while spread > 0 and len(selected) < limit and active.any():
        conditioning = np.array(base).T if base else np.empty((n, 0))
        # -1 if inactive
        scores = foci_scores(conditioning, columns, below, active, orders, pool=pool)
        best = int(np.argmax(scores))
        if base_score is None:  # unconditional T_n(Y, Z_j)
            coefficient = (n * float(scores[best]) - sum_above_squared) / spread
        elif total_below > base_score:  # T_n(Y, Z_j | Z_S)
            coefficient = (scores[best] - base_score) / (total_below - base_score)
        else:  # Y is already a function of Z_S
            break
        if not coefficient > 0:
            break
        selected.append(int(names[best]))
        coefficients.append(float(coefficient))
        base.append(columns[best])
        base_score = float(scores[best])
        active[best] = False
        if screen is not None and len(selected) == 1:
            # Later steps score only the screened candidates: copy them out once.
            kept = np.flatnonzero(active & _top(scores, screen))
            columns, orders, names = columns[kept], orders[kept], names[kept]
            active = np.ones(kept.shape[0], dtype=bool)
    return selected, coefficients


def _top(scores, size):
    """Mask of the ``size`` largest ``scores``."""
    mask = np.zeros(scores.shape[0], dtype=bool)
    mask[np.argsort(-scores, kind="stable")[:size]] = True
    return mask


def _selection(model, X, y, weights, theta, n_perturbations, scale, max_features, rng):
    """FOCI's groups and coefficients from perturbed copies of the rows (Mehta et al.).

    Copy ``c`` perturbs row ``c mod k`` of the ``k`` rows with positive weight,
    so every row gets the same number of copies; the response is the copy's
    loss ``-log p(y | g(x + s eps; theta))``.
    """
    rows = np.flatnonzero(weights > 0)
    if rows.shape[0] == 0:
        return [], []
    source = rows[np.arange(n_perturbations) % rows.shape[0]]
    perturbed = rng.standard_normal((n_perturbations, X.shape[1]))
    perturbed *= scale  # in place: the same numbers as X[source] + scale * eps
    perturbed += X[source]
    f = model.predictor.value(perturbed, theta)
    loss = -model.likelihood.log_likelihood(f, y[source])
    values = model.predictor.candidate_values(perturbed, theta)
    return foci(loss, values, max_features, screen=SCREENED_CANDIDATES)


def _divided_out(posterior, model, J, curvature):
    """``Lambda - J' diag(c) J`` as a posterior, and the eigenvalue clipped (0.0 if none).

    A rank-k downdate of the stored factor, ``O(k P^2)``. The floor at the
    prior is only applied when that fails: checking it would factorise the
    whole precision, the cost this method avoids.
    """
    try:
        return posterior.rank_downdate(J, curvature), 0.0
    except NotPositiveDefiniteError:
        change = J.T @ (curvature[:, None] * J)
        precision, clipped = model.prior.floor(posterior.precision - change)
        return GaussianPosterior.from_precision(posterior.mean, precision), clipped


class DividedOut(NamedTuple):
    """The rows to forget at the mean ``m``, and the precision without them.

    Everything of the block step that does not depend on the block.

    Attributes
    ----------
    jacobian : ndarray of shape (k, P)
        ``J``, the predictor's Jacobian at ``m``.
    gradient : ndarray of shape (P,)
        ``g = J' (w * d log p / d f)``, the rows' log-likelihood gradient.
    curvature : ndarray of shape (k,)
        ``w * c``, the rows' weighted curvature, ``H = J' diag(w c) J``.
    posterior : GaussianPosterior
        Mean ``m``, precision ``Lambda - H`` (floored at the prior when the
        downdate fails).
    clipped : float
        The eigenvalue clipped by that floor (0.0 if none).
    """

    jacobian: np.ndarray
    gradient: np.ndarray
    curvature: np.ndarray
    posterior: GaussianPosterior
    clipped: float


def divide_out_rows(posterior, model, X, y, weights, inference="laplace"):
    """The rows' terms at the mean and the rank-k downdate of the precision (O(k P^2)).

    With ``inference='vi'`` the terms are averaged under ``posterior`` (see
    :meth:`Model.expected_terms`), with ``J`` at its mean.

    Returns
    -------
    divided : DividedOut
    """
    m = posterior.mean
    if inference == "vi":
        f_mean, f_variance = model.predictor.moments(X, posterior)
        derivative, curvature = model.likelihood.expected_terms(f_mean, f_variance, y)[1:]
    else:
        f = model.predictor.value(X, m)
        derivative, curvature = model.likelihood.row_terms(f, y)[1:]
    curvature = weights * curvature
    J = model.predictor.jacobian(X, m)  # (k, P): O(k P), never (P, P)
    new, clipped = _divided_out(posterior, model, J, curvature)
    return DividedOut(J, J.T @ (weights * derivative), curvature, new, clipped)


def block_newton_step(
    posterior, model, X, y, weights, block, *, divided=None, full_step=None
):
    """The Newton removal step on the parameters ``block`` only (see :mod:`._lcodec`).

    Parameters
    ----------
    posterior : GaussianPosterior
        ``q(theta|D)``; not modified.
    model : Model
        Predictor, likelihood and prior.
    X, y, weights : ndarrays
        Rows to forget, their targets and weights.
    block : ndarray of int
        Indices into ``theta`` of the parameters to update.
    divided : DividedOut, default=None
        :func:`divide_out_rows` of the same arguments, when already computed.
    full_step : ndarray of shape (P,), default=None
        ``divided.posterior.solve(divided.gradient)``, when already computed.

    Returns
    -------
    posterior : GaussianPosterior
    gradient_norm, predicted_residual : float
        ``||g||`` before and ``||g + (Lambda - H)[:, S] delta_S||`` after the
        step.
    clipped : float
        The eigenvalue clipped when flooring the precision (0.0 if none).
    full_step_distance : float
        ``||m_block - m_full||^2 / ||m - m_full||^2`` in the new precision,
        ``m_full = m - (Lambda - H)^-1 g`` the full Newton step and
        ``m_block`` the block step: above 1, the block step ends
        further from it than not moving (NaN when ``m_full = m``).
    """
    if divided is None:
        divided = divide_out_rows(posterior, model, X, y, weights)
    J, gradient, curvature, new, clipped = divided
    m = posterior.mean
    # (Lambda - H)[:, S], O(k P s)
    remaining = posterior.precision[:, block] - J.T @ (curvature[:, None] * J[:, block])
    block_precision = (
        remaining[block] if clipped == 0.0 else new.precision[np.ix_(block, block)]
    )
    factor = linalg.cho_factor(block_precision, lower=False)
    step = -linalg.cho_solve(factor, gradient[block])
    mean = m.copy()
    mean[block] += step
    predicted = float(np.linalg.norm(gradient + remaining @ step))
    if full_step is None:  # Guo et al.'s full step: where the block step should head
        full_step = new.solve(gradient)
    moved = np.zeros_like(m)
    moved[block] = step
    away = new.mahalanobis(m + moved + full_step) ** 2  # |m_block - m_full|^2
    # |m - m_full|^2 = full_step' Lambda_new full_step = g' full_step: no product with R.
    unmoved = float(gradient @ full_step)
    distance = away / unmoved if unmoved > 0.0 else float("nan")
    norm = float(np.linalg.norm(gradient))
    return new.with_mean(mean), norm, predicted, clipped, distance


def _block(groups, selected, n_parameters):
    """The parameters of the selected groups and those in no group, sorted."""
    grouped = np.zeros(n_parameters, dtype=bool)
    chosen = np.zeros(n_parameters, dtype=bool)
    for indices in groups:
        grouped[indices] = True
    for g in selected:
        chosen[groups[g]] = True
    return np.flatnonzero(chosen | ~grouped)


def lcodec_forget(
    posterior,
    model,
    X,
    y,
    weights,
    *,
    lcodec_n_perturbations=1000,
    lcodec_scale=0.1,
    lcodec_max_features=None,
    random_state=None,
    inference="laplace",
):
    """Forget rows with L-CODEC: select parameters by FOCI, Newton step on them only.

    Perturbed copies ``x + lcodec_scale * N(0, I)`` of the rows give the loss
    and the predictor's candidate values (:meth:`Predictor.candidate_values`);
    FOCI selects candidate groups (:func:`foci`); :func:`block_newton_step`
    divides the rows out on the selected block and the parameters in no group
    (the intercept). Costs ``O(k P s + s^3)`` for the step and ``O(k P^2)``
    for the rank-k downdate of the stored factor, against ``O(k P^2 + P^3)``
    for ``'laplace'``; the selection costs ``O(N G log N)`` for ``N`` copies and
    ``G`` groups plus the nearest-neighbour searches of each FOCI step.

    Parameters
    ----------
    posterior : GaussianPosterior
        ``q(theta|D)``, a Laplace posterior at its mode; not modified.
    model : Model
        Predictor (with candidate groups), likelihood and prior.
    X, y, weights : ndarrays
        Rows to forget, their targets and weights.
    lcodec_n_perturbations : int, default=1000
        Perturbed copies ``N`` of the rows (at least 2), shared evenly among
        the rows with positive weight.
    lcodec_scale : float, default=0.1
        Standard deviation ``s`` of the perturbation.
    lcodec_max_features : int, default=None
        Largest number of groups selected; None stops only when FOCI's
        coefficient is no longer positive.
    random_state : int, RandomState instance or None, default=None
        Seeds the perturbations.
    inference : {'laplace', 'vi'}, default='laplace'
        How ``posterior`` was obtained. For ``'vi'`` the rows' gradient and
        curvature are averaged under it, and the re-linearisation check is
        not run (as for ``'laplace'``).

    Returns
    -------
    posterior : GaussianPosterior
    diagnostics : LCodecDiagnostics

    References
    ----------
    R. Mehta, S. Pal, V. Singh, S. N. Ravi, Deep Unlearning via Randomized
    Conditionally Independent Hessians, CVPR 2022.

    M. Azadkia, S. Chatterjee, A simple measure of conditional dependence,
    Annals of Statistics 49(6), 2021.

    C. Guo, T. Goldstein, A. Hannun, L. van der Maaten, Certified Data
    Removal from Machine Learning Models, ICML 2020.
    """
    if int(lcodec_n_perturbations) < 2:
        raise ValueError(
            f"lcodec_n_perturbations must be at least 2, got {lcodec_n_perturbations}: "
            "the dependence coefficient compares each copy with its nearest neighbour."
        )
    theta = posterior.mean
    groups = model.predictor.candidate_indices(theta)
    # A generator seeded once from random_state: draws much faster than RandomState.
    rng = np.random.default_rng(check_random_state(random_state).randint(2**31 - 1))

    def select():
        """FOCI's groups and coefficients and the block, drawn from rng."""
        selected, dependence = _selection(
            model,
            X,
            y,
            weights,
            theta,
            int(lcodec_n_perturbations),
            float(lcodec_scale),
            lcodec_max_features,
            rng,
        )
        return selected, dependence, _block(groups, selected, theta.shape[0])

    if isinstance(posterior, DiagonalGaussianPosterior):
        selected, dependence, block = select()
        new, fields = _diagonal_forget(posterior, model, X, y, weights, block)
    else:
        new, (selected, dependence, block), fields = _full_forget(
            posterior, model, X, y, weights, select, inference
        )
    return new, LCodecDiagnostics(
        selected=tuple(int(g) for g in selected),
        dependence=tuple(dependence),
        parameters=tuple(int(i) for i in block),
        n_candidates=len(groups),
        n_perturbations=int(lcodec_n_perturbations),
        **fields,
    )


def _full_forget(posterior, model, X, y, weights, select, inference):
    """The block step of a full posterior, what does not depend on the block computed
    during the selection.

    ``select()`` returns ``(selected, dependence, block)``. The rank-k
    downdate, the full Newton step and the re-linearisation check of the
    precision at that step's mean do not depend on the block, so a second
    thread computes them meanwhile (the kernels and BLAS release the GIL).
    Returns the new posterior, the selection and the record's other fields.
    """
    precision = posterior.precision  # formed (once) here, so the downdate carries it
    with ThreadPoolExecutor(1) as pool:
        future = pool.submit(
            _independent_of_block, posterior, model, X, y, weights, inference
        )
        selection = select()
        divided, full_step, check, shared, staying = future.result()
    n_selected, block = len(selection[0]), selection[2]
    new, before, after, clipped, distance = block_newton_step(
        posterior, model, X, y, weights, block, divided=divided, full_step=full_step
    )
    # Only the block moved: its distance needs Lambda_SS alone, O(s^2), not R.
    delta = new.mean[block] - posterior.mean[block]
    mean_error, message = float("nan"), None
    if check is not None:  # the mean measure at the block step's own mean
        mean_error, _, message = check(new, "The L-CODEC block step")
    covariance_error = shared[1]
    message = message or shared[2]
    messages = _warnings(before, after, clipped, distance, n_selected)
    full_move = math.sqrt(max(full_step @ precision @ full_step, 0.0))
    error, disagreement, combined = _combined_error(
        model, shared, full_move, distance, float(divided.gradient @ full_step), staying
    )
    if combined is not None:
        messages = (*messages, combined)
    if full_move <= NEGLIGIBLE_MOVE:  # the rows carry nothing a check could measure
        message = None
        messages = tuple(m for m in messages if m == overshoot_warning(clipped))
    fields = {
        "move": float(np.sqrt(delta @ precision[np.ix_(block, block)] @ delta)),
        "clipped_eigenvalue": clipped,
        "warnings": messages if message is None else (*messages, message),
        "gradient_norm": before,
        "predicted_residual": after,
        "full_step_distance": distance,
        "mean_relinearisation": mean_error,
        "covariance_relinearisation": covariance_error,
        "full_step_error": error,
        "block_disagreement": disagreement,
    }
    return new, selection, fields


# The block step and the full Newton step share their precision and differ in the
# mean. In square-root KL, which is a distance between means in a shared precision,
# the block step's distance from the retrained posterior is at most the full step's
# plus the block step's from the full step; when that sum can reach doing nothing's
# distance, the block step may be worse than not forgetting though each check alone
# passes (benchmarks/README.md, "L-CODEC's combined check", measures it).
_COMBINED_MESSAGE = (
    "The L-CODEC block step may be worse than not forgetting: the full Newton step it "
    "approximates is estimated {:.2g} of doing nothing's KL from the retrained "
    "posterior (its re-linearisation measures over their thresholds) and the block "
    "step is {:.2g} of doing nothing's KL from the full step; the square roots add to "
    "{:.3g}, above 1. Raise lcodec_max_features or lcodec_n_perturbations, use "
    "unlearning='laplace', or fit again on the remaining rows."
)


def _combined_error(model, shared, full_move, distance, unmoved, staying):
    """``(full_step_error, block_disagreement, warning or None)`` of a block step.

    ``full_step_error`` is ``max(mean / MEAN_RELINEARISATION, covariance / level)``
    of the check at the full step's mean (``shared``): a measure at its threshold
    marks a step no better than doing nothing, so this is the full step's error on
    the scale of doing nothing's distance (where :func:`linearisation_bounds`
    certified the check, its bounds stand for the measures: an upper estimate).
    ``block_disagreement`` is
    ``KL(block || full) / KL(unforgotten || full) = away / (unmoved + 2 staying)``,
    ``away = distance * unmoved`` the block step's squared distance from the full
    step's mean, ``unmoved`` the unforgotten mean's and ``staying`` the KL between
    the unforgotten precision and the full step's. The step warns when
    ``sqrt(min(error, 1)) + sqrt(disagreement) > 1`` (the triangle inequality of
    the square-root KL, with the retrained posterior unknown).
    """
    mean, covariance = shared[0], shared[1]
    level = _covariance_level(model, full_move**2)
    parts = [mean / MEAN_RELINEARISATION, covariance / level]
    parts = [part for part in parts if np.isfinite(part)]
    error = max(parts) if parts else float("nan")
    nothing = unmoved + 2.0 * staying
    if not (nothing > 0.0 and np.isfinite(distance)):
        return error, float("nan"), None
    disagreement = distance * unmoved / nothing
    known = error if np.isfinite(error) else 0.0
    combined = math.sqrt(min(known, 1.0)) + math.sqrt(max(disagreement, 0.0))
    if not combined > 1.0:
        return error, disagreement, None
    return error, disagreement, _COMBINED_MESSAGE.format(known, disagreement, combined)


def _staying_kl(posterior, divided):
    """``KL(N(m, Lambda^-1) || N(m, P^-1))``, ``P`` the divided-out precision.

    ``(tr(P Lambda^-1) - d + log det(Lambda P^-1)) / 2`` with ``tr(P Lambda^-1)
    = d - tr(Lambda^-1 H)``: ``tr(Lambda^-1 H) = sum_i c_i |R^-T J_i|^2`` costs
    one triangular solve on ``k`` columns, the log-determinants the factors'
    diagonals. A floored precision is compared whole (it was factorised anyway).
    """
    R = posterior.precision_cholesky
    if divided.clipped == 0.0:
        half = linalg.solve_triangular(R, divided.jacobian.T, trans="T", check_finite=False)
        removed = float(np.sum(half * half, axis=0) @ divided.curvature)
    else:
        change = posterior.precision - divided.posterior.precision
        removed = float(np.trace(posterior.solve(change)))
    log_det = divided.posterior.log_det_covariance() - posterior.log_det_covariance()
    return max(0.5 * (log_det - removed), 0.0)


def _independent_of_block(posterior, model, X, y, weights, inference):
    """The block step's parts that do not depend on the block.

    Returns
    -------
    divided : DividedOut
        :func:`divide_out_rows` of the rows.
    full_step : ndarray of shape (P,)
        ``(Lambda - H)^-1 g``, Guo et al.'s full Newton step (``m - full_step``).
    check : _Relinearisation or None
        The re-linearisation check of this divide-out (None with
        ``inference='vi'``).
    shared : tuple
        Its ``(mean, covariance, warning or None)`` at the full step's mean,
        for the precision the block step shares with it (NaN and None when
        not run).
    staying : float
        :func:`_staying_kl`, the precision's part of doing nothing's KL to the
        full step.
    """
    divided = divide_out_rows(posterior, model, X, y, weights, inference)
    full_step = divided.posterior.solve(divided.gradient)
    staying = _staying_kl(posterior, divided)
    if inference == "vi":
        nothing = (float("nan"), float("nan"), None)
        return divided, full_step, None, nothing, staying
    check = _Relinearisation(posterior, model, X, y, weights, divided)
    shared = check(
        divided.posterior.with_mean(posterior.mean - full_step), _SHARED_PRECISION
    )
    return divided, full_step, check, shared, staying


class _RowCurvature:
    """``H = J' diag(c) J`` of the forgotten rows as a product, never formed (O(k P) each).

    Stands for the ``hessian`` of :class:`~sklunlearn.unlearning.LikelihoodTerms`
    in :func:`linearisation_check`, which only multiplies it by vectors: forming
    it would cost ``O(k P^2)`` on top of the downdate.
    """

    def __init__(self, jacobian, curvature):
        self.jacobian = jacobian
        self.curvature = curvature

    def __matmul__(self, vectors):
        along = self.jacobian @ vectors
        along *= self.curvature if along.ndim == 1 else self.curvature[:, None]
        return self.jacobian.T @ along


class _RowTerms(NamedTuple):
    """The forgotten rows' gradient and curvature at the old mean, for the check."""

    gradient: np.ndarray
    hessian: _RowCurvature


_RELINEARISATION_ADVICE = (
    "Large or clustered deletions with a weak prior, or a large-amplitude kernel, do "
    "this; the result may be worse than not forgetting. Fit again on the remaining rows."
)


# The covariance check's name for the precision the block step shares with the full step.
_SHARED_PRECISION = (
    "The precision of the L-CODEC block step (the full Newton step's, the rows' "
    "curvature at the old mean removed)"
)


class _Relinearisation:
    """The block step's re-linearisation check, ``check(after, step)``.

    The forgotten rows are re-evaluated twice, as :func:`laplace_divide_out`
    re-evaluates them at the full step's mean (unless
    :func:`linearisation_bounds` certifies the check from the rows' moves
    alone): for the mean measure at the block step's own mean, since its mean
    rests on the quadratic picture only along the move it makes; for the
    covariance measure at the full Newton step's mean, near which the
    retrained posterior's precision is evaluated, since the block step's
    precision is the full step's (the rows' whole curvature at the old mean
    removed) however little its own mean moves. Each is one pass over the
    forgotten rows, none over the remaining ones, and a few solves with the
    downdated factor; the solves that do not depend on the mean
    (:func:`probe_solves`) are made once, for whichever check needs them first.
    """

    def __init__(self, posterior, model, X, y, weights, divided):
        self.posterior, self.model = posterior, model
        self.X, self.y, self.weights = X, y, weights
        self.clipped = divided.clipped
        self.terms = _RowTerms(
            divided.gradient, _RowCurvature(divided.jacobian, divided.curvature)
        )
        self.solves = None

    def __call__(self, after, step):
        """``(mean, covariance, warning or None)`` at ``after.mean`` for ``step``.

        With ``step=_SHARED_PRECISION`` only the covariance measure can warn;
        NaN and None when the mean did not move.
        """
        posterior, model, terms = self.posterior, self.model, self.terms
        if np.array_equal(after.mean, posterior.mean):
            return float("nan"), float("nan"), None
        bound = after.eigenvalue_bound if self.clipped == 0.0 else 0.0
        certified = linearisation_bounds(
            model, self.X, self.weights, posterior, after, terms, bound
        )
        if certified is not None:
            return certified
        if self.solves is None:
            self.solves = probe_solves(model, after, terms)
        return linearisation_check(
            model,
            self.X,
            self.y,
            self.weights,
            posterior,
            after,
            terms,
            step=step,
            advice=_RELINEARISATION_ADVICE,
            judge_mean=step != _SHARED_PRECISION,
            solves=self.solves,
        )


def _diagonal_forget(posterior, model, X, y, weights, block):
    """The block step of a diagonal posterior: the new posterior and the record's fields."""
    step = diagonal_block_step(posterior, model, X, y, weights, block)
    new, before, after, clipped, distance = step[:5]
    fields = {
        "move": posterior.mahalanobis(new.mean),
        "clipped_eigenvalue": clipped,
        "warnings": step.warnings,  # the full posterior's block checks cannot fail here
        "gradient_norm": before,
        "predicted_residual": after,
        "full_step_distance": distance,
        "mean_relinearisation": step.mean_relinearisation,
        "covariance_relinearisation": step.covariance_relinearisation,
        "step_length": step.step_length,
    }
    return new, fields


def _warnings(before, after, clipped, distance, n_selected):
    """Why the block step is likely worse than doing nothing (a tuple of texts)."""
    messages = []
    if distance > 1.0:
        messages.append(
            f"The L-CODEC step on {n_selected} selected parameter group(s) ends "
            f"further from the full Newton removal step than not moving at all "
            f"({distance:.3g} times the squared distance, in the new posterior's "
            "standard deviations): it is likely worse than not forgetting. Raise "
            "lcodec_max_features or lcodec_n_perturbations, or use "
            "unlearning='laplace'."
        )
    if before > 0.0 and not after < before:
        messages.append(
            f"The L-CODEC step on {n_selected} selected parameter group(s) does not "
            f"reduce the remaining rows' gradient under its own quadratic model "
            f"({before:.3g} before, {after:.3g} predicted after): it is likely worse "
            "than not forgetting. Raise lcodec_max_features or lcodec_n_perturbations, "
            "or use unlearning='laplace'."
        )
    if clipped < -OVERSHOOT_CLIP:
        messages.append(overshoot_warning(clipped))
    return tuple(messages)
