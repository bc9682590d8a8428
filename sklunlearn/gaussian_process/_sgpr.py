"""Sparse Gaussian process regression (Titsias 2009) that forgets rows exactly."""

import warnings
from numbers import Integral, Real
from typing import NamedTuple

import numpy as np
import scipy.optimize
from scipy import linalg
from scipy.special import expit
from sklearn.base import BaseEstimator, RegressorMixin, _fit_context, clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.gaussian_process.kernels import RBF, Kernel
from sklearn.gaussian_process.kernels import ConstantKernel as C
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.optimize import _check_optimize_result
from sklearn.utils.validation import check_is_fitted, validate_data

from .._caller import caller_stacklevel
from .._dask import is_dask_collection
from ..base import UnlearningMixin, UpdateOutcome, check_weights
from ..exceptions import NotPositiveDefiniteError
from ..linear_model._sufficient_statistics import (
    UNIT_ROUNDOFF,
    LinearStatistics,
    check_numeric_targets,
    round_off_tolerance,
    round_off_warning,
)
from ..posterior import GaussianPosterior
from ..utils._blas import one_blas_thread
from ._bound import (
    SUPPORTED_KERNELS,
    AbsoluteJitters,
    GrowingJitters,
    SparseStatistics,
    collapsed_bound,
    inducing_cholesky,
    optimal_posterior,
    supports_inducing_gradient,
    target_normalization,
    whitened_features,
    with_noise,
)
from ._inducing import forgotten_inducing_points_message, resolve_inducing_points

# Bounds of the noise variance while maximising the bound.
_NOISE_BOUNDS = (1e-8, 1e8)
# The relative jitter of jitter='auto' (GrowingJitters), and the largest the ladder of
# a small one climbs to where K_ZZ does not factorise.
_AUTO_JITTER = 1e-12
_LARGEST_JITTER = 1e-4
# L-BFGS-B's tolerance on the projected gradient (scipy's default).
_GRADIENT_TOLERANCE = 1e-5
# L-BFGS-B's memory: scipy's default, and the regressor's longer one, whose curvature
# pairs span the ridge along which long length scales trade against a large signal
# variance (benchmarks/README.md, "Sparse Gaussian processes").
_MEMORY = 10
_REGRESSION_MEMORY = 30
# scipy.optimize.minimize's status of a run stopped by its callback.
_STOPPED = 99


def _inducing_posterior(mean_v, R_v, factor):
    """q(u) from q(v) with ``u = L v``: mean ``L mean_v``, precision factor from QR.

    The precision of ``u`` is ``(R_v L^-1)' (R_v L^-1)``; the R factor of a QR
    decomposition of ``R_v L^-1`` is an upper Cholesky factor of it, computed
    without forming the (possibly ill-conditioned) precision. ``R_v L^-1`` is
    solved for (``L^-T R_v'``), not multiplied out with an explicit ``L^-1``,
    which loses digits where ``K_uu`` is ill-conditioned.
    """
    whitened = linalg.solve_triangular(factor.cholesky, R_v.T, lower=True, trans="T")
    R = linalg.qr(whitened.T, mode="r")[0]
    signs = np.where(np.diag(R) < 0, -1.0, 1.0)
    return GaussianPosterior(factor.cholesky @ mean_v, signs[:, None] * R)


class _Progress:
    """The optimiser's objective, remembering its last evaluations to print progress.

    With ``verbose`` > 0, each iteration prints the bound and the gradient's
    Euclidean norm at the iterate, as scikit-learn's iterative estimators do.
    """

    def __init__(self, objective, verbose):
        self.objective, self.verbose = objective, verbose
        self.evaluations = self.iterations = 0
        self._last = {}

    def __call__(self, theta):
        value, gradient = self.objective(theta)
        self.evaluations += 1
        # L-BFGS-B reports an iterate after evaluating there: two entries suffice.
        self._last = {
            theta.tobytes(): (value, gradient),
            **dict(list(self._last.items())[:1]),
        }
        return value, gradient

    def report(self, label, value, gradient):
        if self.verbose:
            norm = np.linalg.norm(gradient)
            print(f"{label}, bound = {-value:.8g}, gradient norm = {norm:.3g}")

    def iteration(self, intermediate_result):
        """scipy.optimize.minimize's callback after each iteration."""
        self.iterations += 1
        theta = np.asarray(intermediate_result.x, dtype=np.float64)
        if not self.verbose:
            return
        value, gradient = self._last.get(theta.tobytes()) or self.objective(theta)
        self.report(f"Iteration {self.iterations}", value, gradient)

    def notify(self, message):
        if self.verbose:
            print(message)

    def finish(self, result):
        if self.verbose:
            print(
                f"L-BFGS-B stopped after {result.nit} iterations and {result.nfev} "
                f"evaluations: {result.message}"
            )


class _Refit(NamedTuple):
    """What :meth:`SparseGPRegressor.reoptimize` hands to the update: the
    inducing points to keep (None: choose them again)."""

    inducing_points: np.ndarray | None


class _RowsBound:
    """The collapsed bound of rows in memory, on the model's (normalised) targets.

    Called as ``bound(kernel, Z, noise_variance, with_inducing, jitters)``,
    it returns :func:`collapsed_bound`'s :class:`BoundEvaluation`; the rows
    on a dask cluster have a twin of it in :mod:`sklunlearn._dask`.
    """

    def __init__(self, X, y, weights, normalize_y):
        y_mean = weights @ y / weights.sum()
        mean, std = target_normalization(
            y_mean, weights @ (y - y_mean) ** 2, weights.sum(), normalize_y
        )
        self.X, self.t, self.weights = X, (y - mean) / std, weights
        self.n_rows = X.shape[0]
        self.weight_sum = float(weights.sum())

    def __call__(self, kernel, Z, noise_variance, with_inducing, jitters):
        return collapsed_bound(
            kernel,
            Z,
            self.X,
            self.t,
            self.weights,
            noise_variance,
            with_inducing=with_inducing,
            jitters=jitters,
        )


def _at_bounds(theta, bounds):
    """Mask of the entries of ``theta`` at one of their finite ``bounds``."""
    low, high = bounds[:, 0], bounds[:, 1]
    return (np.isfinite(low) & np.isclose(theta, low)) | (
        np.isfinite(high) & np.isclose(theta, high)
    )


def _left(theta, initial, bounds):
    """How many variables of ``theta`` are at bounds they were not at in ``initial``."""
    return int(np.sum(_at_bounds(theta, bounds) & ~_at_bounds(initial, bounds)))


def _lbfgsb(objective, initial, bounds, scale=1.0, callback=None, memory=_MEMORY):
    """scipy's L-BFGS-B on ``objective / scale`` with its default tolerances,
    the gradient's divided by ``scale`` so that it stops at the same gradient,
    keeping ``memory`` curvature pairs; the result's ``fun`` is in the units
    of ``objective``."""

    def scaled(theta):
        value, gradient = objective(theta)
        return value / scale, gradient / scale

    result = scipy.optimize.minimize(
        scaled,
        initial,
        method="L-BFGS-B",
        jac=True,
        bounds=bounds,
        callback=callback,
        options={"gtol": _GRADIENT_TOLERANCE / scale, "maxcor": memory},
    )
    result.fun = result.fun * scale
    return result


class _Softplus:
    """Softplus coordinates: each variable of ``positive``, the logarithm of
    ``v = lower + softplus(x)`` with ``softplus(x) = log(1 + e^x)`` and
    ``lower`` its lower bound, moved in ``x``; the other variables as they are.

    Far from the lower bound a step in ``x`` changes ``v`` additively, not in
    proportion as a step in ``log v`` does (GPflow's and GPy's coordinates).
    """

    def __init__(self, bounds, positive):
        self.positive = positive
        self.lower = np.exp(bounds[positive, 0])
        with np.errstate(over="ignore"):
            gap = np.exp(bounds[positive, 1]) - self.lower
        limits = np.array(bounds, dtype=np.float64)
        limits[positive, 0] = -np.inf
        limits[positive, 1] = np.where(np.isfinite(gap), self._inverse(gap), np.inf)
        # L-BFGS-B's box: only the upper bounds of the positive variables
        self.bounds = [tuple(None if np.isinf(b) else b for b in row) for row in limits]

    @staticmethod
    def _inverse(softplus):
        return softplus + np.log(-np.expm1(-softplus))

    def theta(self, x):
        theta = np.array(x, dtype=np.float64)
        theta[self.positive] = np.log(self.lower + np.logaddexp(0.0, x[self.positive]))
        return theta

    def x(self, theta):
        x = np.array(theta, dtype=np.float64)
        gap = np.exp(x[self.positive]) - self.lower
        x[self.positive] = self._inverse(np.maximum(gap, np.finfo(float).tiny))
        return x

    def gradient(self, x, theta, gradient):
        """The gradient in ``x`` from the gradient in ``theta``."""
        gradient = np.array(gradient, dtype=np.float64)
        # d theta / dx = sigmoid(x) / v for theta = log(lower + softplus(x))
        positive = self.positive
        gradient[positive] *= expit(x[positive]) / np.exp(theta[positive])
        return gradient


def _softplus_lbfgsb(
    objective,
    initial,
    bounds,
    positive,
    callback=None,
    budget=None,
    target=np.inf,
    memory=_MEMORY,
):
    """scipy's L-BFGS-B from ``initial`` in :class:`_Softplus` coordinates.

    Only the upper bounds of the ``positive`` variables are L-BFGS-B's, so
    that no variable is boxed on both sides and the first trial step has
    unit length (Zhu et al. 1997, subroutine ``lnsrlb``), as in GPflow and
    GPy. ``objective`` and ``callback`` see ``theta``; so do the result's
    ``x`` and ``fun``. With a ``budget``, the run stops after the iteration
    that reaches ``budget`` evaluations if its value is not below
    ``target`` then (a path that has not overtaken another by then).
    L-BFGS-B keeps ``memory`` curvature pairs.
    """
    coordinates = _Softplus(bounds, positive)
    evaluations = 0

    def transformed(x):
        nonlocal evaluations
        evaluations += 1
        theta = coordinates.theta(x)
        value, gradient = objective(theta)
        return value, coordinates.gradient(x, theta, gradient)

    def iteration(intermediate_result):
        if callback is not None:
            callback(
                scipy.optimize.OptimizeResult(x=coordinates.theta(intermediate_result.x))
            )
        if (
            budget is not None
            and evaluations >= budget
            and intermediate_result.fun >= target
        ):
            raise StopIteration

    result = scipy.optimize.minimize(
        transformed,
        coordinates.x(initial),
        method="L-BFGS-B",
        jac=True,
        bounds=coordinates.bounds,
        callback=iteration,
        options={"gtol": _GRADIENT_TOLERANCE, "maxcor": memory},
    )
    result.x = coordinates.theta(result.x)
    return result


def _log_path(objective, initial, bounds, scale, callback, notify, memory):
    """L-BFGS-B in ``theta`` within ``bounds``, repeated on ``objective / scale``
    when it ends at bounds it did not start at (see :func:`minimize_within_bounds`)."""
    result = _lbfgsb(objective, initial, bounds, callback=callback, memory=memory)
    left = _left(result.x, initial, bounds)
    if not left or scale <= 1.0:
        return result
    if notify is not None:
        notify(
            f"L-BFGS-B ended at bounds of {left} variables that did not start "
            f"there: again from the start on the objective / {scale:.6g}, then on "
            "the objective from that end"
        )
    rescaled = _lbfgsb(objective, initial, bounds, scale, callback, memory)
    polished = _lbfgsb(objective, rescaled.x, bounds, callback=callback, memory=memory)
    return _better_end((result, polished), (rescaled,))


class _Interpolates:
    """Whether ``theta`` has the log noise variance, its entry ``index``, at its
    lower bound ``floor``: a fit that interpolates its rows, whose higher bound is
    not a better fit (see :func:`minimize_within_bounds`)."""

    def __init__(self, floor, index):
        self.floor, self.index = floor, index

    def __call__(self, theta):
        return bool(np.isclose(theta[self.index], self.floor))


def _better_end(ends, others=()):
    """The run of ``ends`` of lowest ``fun``, its ``nfev`` and ``nit`` summed
    over ``ends`` and ``others`` (runs whose end is not a candidate)."""
    runs = (*ends, *others)
    best = min(ends, key=lambda run: run.fun)
    best.nfev = sum(run.nfev for run in runs)
    best.nit = sum(run.nit for run in runs)
    return best


def minimize_within_bounds(
    objective,
    initial,
    bounds,
    scale,
    callback=None,
    notify=None,
    positive=None,
    memory=_MEMORY,
    degenerate=None,
):
    """Minimise ``objective`` with L-BFGS-B within ``bounds``, checked for a
    first step that ends the run on the bounds; with ``positive``, along two
    paths from ``initial``, keeping the better end.

    With every variable bounded on both sides, the line search of L-BFGS-B's
    first iteration tries the whole projected gradient as its step (a step
    of unit length when some variable is unbounded; Zhu et al. 1997, ACM
    TOMS 23(4), subroutine ``lnsrlb``). The gradient of a sum over many rows
    is in the thousands, so that trial can land on the bounds, where a flat
    objective (a constant predictor) stops the run. So a run that ends with
    variables at bounds they did not start at is repeated from ``initial``
    on ``objective / scale``, with ``scale`` the rows' total weight (the
    number of rows when unweighted: a first step of order one for
    parameters of order one), then continued from that
    end on ``objective`` itself, so that its stopping tests are the first
    run's; the better end is kept.

    Which local optimum L-BFGS-B reaches depends on the coordinates it moves
    in. With ``positive``, a second run from ``initial`` moves each of those
    variables (logarithms of positive quantities) in softplus coordinates,
    as GPflow and GPy do (see :func:`_softplus_lbfgsb`), and the lower of
    the two ends is returned: neither path reaches the better optimum on
    every problem. The second run gets the first's number of evaluations:
    if it is not below the first end by then, it stops, so that the two
    cost at most twice the first where the second does not win. Where it
    ends below the first, L-BFGS-B continues from its end in ``theta``
    within ``bounds``, so that the end kept passes the first path's
    stopping tests (the gradient in ``theta``, and bounds reached exactly);
    that end replaces the first path's unless ``degenerate`` says it is an
    end that a higher objective does not make a better fit (a noise-free
    interpolation) and the first path's is not. Other variables at their
    bounds do not count against it: a kernel's signal variance at its upper
    bound, or the length scale of a feature the target does not depend on,
    can be the right end.

    Parameters
    ----------
    objective : callable
        ``theta -> (value, gradient)``.
    initial : ndarray of shape (n_variables,)
    bounds : ndarray of shape (n_variables, 2)
    scale : float
        The total weight of the rows ``objective`` sums over.
    callback : callable, default=None
        scipy.optimize.minimize's callback, after each iteration of each run,
        with the iterate in the coordinates of ``theta``.
    notify : callable, default=None
        Called with a sentence before the runs that repeat the first and
        before the second path.
    positive : ndarray of shape (n_variables,) of bool, default=None
        The variables that are logarithms of positive quantities, moved in
        softplus coordinates along the second path. None: one path only.
    memory : int, default=10
        The number of curvature pairs L-BFGS-B keeps (scipy's ``maxcor``).
    degenerate : callable, default=None
        ``theta -> bool``: whether an end is degenerate, for the choice
        between the two paths' ends. None: none is.

    Returns
    -------
    result : OptimizeResult
        The better end's result, ``nfev`` and ``nit`` summed over the runs.
    """
    result = _log_path(objective, initial, bounds, scale, callback, notify, memory)
    if positive is None:
        return result
    if notify is not None:
        notify(
            f"Log path ended at {-result.fun:.8g} after {result.nfev} evaluations; "
            "second path: again from the start in softplus coordinates"
        )
    softplus = _softplus_lbfgsb(
        objective, initial, bounds, positive, callback, result.nfev, result.fun, memory
    )
    higher = softplus.fun < result.fun
    if notify is not None:
        how = "stopped" if softplus.status == _STOPPED else "ended"
        then = (
            "higher: continued in log coordinates within the bounds"
            if higher
            else "keeping the log path's end"
        )
        notify(
            f"Softplus path {how} at {-softplus.fun:.8g} after {softplus.nfev} "
            f"evaluations; {then}"
        )
    if not higher:
        return _better_end((result, softplus))
    # Softplus coordinates reach a lower bound only in the limit and test the
    # gradient in x, not in theta: the first path's stopping tests end the run.
    polished = _lbfgsb(objective, softplus.x, bounds, callback=callback, memory=memory)
    if degenerate is not None and degenerate(polished.x) and not degenerate(result.x):
        if notify is not None:
            notify(
                f"Softplus path continued to {-polished.fun:.8g}, a degenerate end: "
                "keeping the log path's end"
            )
        return _better_end((result,), (softplus, polished))
    return _better_end((result, polished), (softplus,))


def _check_remaining(statistics, trusted):
    """Refuse statistics no set of rows can have (what forgetting unlearned rows gives).

    ``A = sum w a a'`` must be positive semi-definite and the Nystrom residual
    ``sum w (k_ii - a_i'a_i)`` non-negative, each up to its round-off
    (:func:`round_off_tolerance`; with the ledger, ``trusted``, only what no
    round-off can explain is refused). Rows never learned are not always
    detected without the ledger: only when removing them leaves such
    impossible statistics.
    """
    linear = statistics.linear
    diagonal = statistics.aa_diagonal
    aa_error, _ = linear.gram_round_off(False)
    m = diagonal.shape[0]
    # A + t I factorises iff the smallest eigenvalue of A exceeds -t (up to Cholesky's
    # own backward error m u ||A||): an eigenvalue errs by at most m max_j e_j
    scale = np.max(diagonal, initial=0.0)
    error = m * (np.max(aa_error, initial=0.0) + UNIT_ROUNDOFF * scale)
    shift = float(round_off_tolerance(error, trusted)) + np.finfo(float).tiny
    shifted = np.array(statistics.aa)  # our own copy, shifted and factorised in place
    shifted[np.diag_indices(m)] += shift
    try:
        linalg.cholesky(shifted, lower=False, overwrite_a=True)
        factorises = True
    except linalg.LinAlgError:
        factorises = False
    residual = statistics.kdiag - np.sum(diagonal)
    residual_error = statistics.kdiag_round_off + float(np.sum(aa_error))
    if not factorises or residual < -round_off_tolerance(residual_error, trusted):
        raise NotPositiveDefiniteError(
            "Forgetting these rows leaves statistics that no set of rows can have: "
            "they (or their weights) were not all learned. Nothing was changed."
        )


class SparseGPRegressor(UnlearningMixin, RegressorMixin, BaseEstimator):
    """Sparse variational GP regression (SGPR) that can forget rows exactly.

    The model is Titsias' (2009) collapsed variational approximation with
    inducing points ``Z``: at fixed kernel, ``Z`` and noise variance the
    optimal Gaussian q(u) over the inducing values is a product of per-row
    sites, so it depends on the data only through weighted sums (in the
    whitened basis ``a_i = L^-1 k_Z(x_i)``, ``K_ZZ = L L'``). The estimator
    keeps those sums, never the rows, and

    - :meth:`partial_fit` adds a batch's sums and
    - :meth:`partial_unfit` subtracts them, through the same code path,

    so that after forgetting the model equals
    ``SparseGPRegressor(kernel=est.kernel_, inducing_points=est.inducing_points_,
    noise_variance=est.noise_variance_, optimizer=None).fit(X_remaining,
    y_remaining)`` to floating-point accuracy, at a cost independent of the
    number of rows learned.

    Hyperparameters (kernel, noise variance) are learned by :meth:`fit` only,
    by maximising the collapsed bound with analytic gradients; they and the
    inducing locations then stay fixed. They were learned from all rows,
    forgotten ones included: :meth:`partial_unfit` says so once with an
    :class:`~sklunlearn.exceptions.UnlearningWarning`, and
    :meth:`reoptimize` re-learns them on remaining rows that you supply.

    Parameters
    ----------
    kernel : kernel instance, default=None
        A :mod:`sklearn.gaussian_process.kernels` kernel. ``None`` means
        ``ConstantKernel(1.0) * RBF(1.0)`` (both learned).
    inducing_points : int or array-like of shape (n_inducing, n_features), default=100
        An int: that many inducing points are chosen on :meth:`fit` as
        weighted k-means++ centroids of the rows (``random_state`` makes it
        reproducible), or the distinct rows themselves when there are no more
        of them than that. An array: used as given. These are the starting
        locations when ``optimize_inducing``.
    noise_variance : float, default=None
        Variance of the Gaussian noise (in the units of the normalised
        targets when ``normalize_y``). The starting value of its optimisation
        (1.0 when None); kept fixed when ``optimizer=None``.
    optimizer : 'fmin_l_bfgs_b', callable or None, default='fmin_l_bfgs_b'
        As in :class:`~sklearn.gaussian_process.GaussianProcessRegressor`: a
        callable ``optimizer(obj_func, initial_theta, bounds)`` returning
        ``(theta_opt, func_min)``, where ``theta`` is ``kernel.theta`` followed
        by ``log(noise_variance)``. None keeps the kernel and noise as given.
        'fmin_l_bfgs_b' runs L-BFGS-B from the start along two paths and
        keeps the higher bound: in these log coordinates within the kernel's
        bounds, and in softplus coordinates (each hyperparameter its lower
        bound plus the softplus of a free variable, as GPflow and GPy move;
        see :func:`minimize_within_bounds`). Neither path reaches the
        better local optimum on every data set; the second stops when it has
        not overtaken the first after as many evaluations, so the two cost at
        most about twice one where it does not win (a callable can move in
        any coordinates).
    n_restarts_optimizer : int, default=0
        Extra optimiser runs from log-uniform random starting points within
        the bounds (which must then be finite).
    normalize_y : bool, default=False
        Model ``(y - mean) / std`` (weighted, over the rows learned) and undo
        it in predictions. Mean and standard deviation are recomputed from
        mergeable statistics after every :meth:`partial_fit` and
        :meth:`partial_unfit`, so they too forget exactly; the kernel and noise,
        fixed in normalised units, are not re-scaled. Recommended unless the
        targets are already centred with unit scale: the default starting
        values (signal and noise variance 1) assume it, and on raw targets far
        from that scale the optimiser can end at the constant-prediction optimum.
    random_state : int, RandomState instance or None, default=None
        Seeds the choice of inducing points and the optimiser restarts.
    optimize_inducing : bool, default=False
        Also maximise the bound over the inducing locations, jointly with the
        hyperparameters and with analytic derivatives (only with an
        ``optimizer``). Needs an RBF or Matern (nu 0.5, 1.5 or 2.5) kernel,
        isotropic or ARD, optionally times a ConstantKernel and plus a
        WhiteKernel. The optimised locations are learned from all rows, like
        the hyperparameters.
    jitter : 'auto' or float, default='auto'
        Jitter of the inducing points' kernel matrix. A float ``j`` is
        relative: ``K_ZZ + j D I`` is factorised, ``D = mean(diag K_ZZ)``.
        ``'auto'`` adds ``1e-12 D (1 + (D / (1e6 s2))^2)``, ``s2`` the noise
        variance: ``1e-12`` relative up to a signal-to-noise ratio ``D / s2`` of
        ``1e6``, growing above it (``1e-8`` relative at ``1e8``). Where ``K_ZZ``
        does not factorise, 100 times more in turn (up to ``1e-4``, and at
        least twice); the optimiser keeps the one of its starting point. The
        bound is that of inducing values observed with that variance: a jitter
        ``J`` costs about ``J |K_ZZ^-1 k_i|^2 / (2 s2)`` nats per row, which
        for a relative one grows with the signal variance, most where ``K_ZZ``
        is ill-conditioned (long length scales, large signal variance).
        ``'auto'`` costs little there up to a signal-to-noise ratio of about
        ``1e6``, and its growth keeps the optimum away from an interpolation
        (the noise variance at its lower bound) and from an ever larger signal
        variance. A relative ``1e-8`` (the default before ``'auto'``) holds
        the signal variance down where the data support a larger one, and ends
        lower. GPflow and GPy add an absolute ``1e-6`` and ``1e-8``.
    relative_jitter : bool, default=True
        Whether a float ``jitter`` multiplies ``mean(diag K_ZZ)``, which keeps
        the model the same for targets in any unit (as ``'auto'`` does). False
        adds ``jitter`` as it is, as GPflow and GPy do: the model then depends
        on the targets' scale. False needs a float ``jitter``.
    verbose : int, default=0
        When positive, :meth:`fit` and :meth:`reoptimize` print the
        optimiser's progress: per iteration the bound and the norm of its
        gradient, and why the optimiser stopped.
    ledger : bool, default=True
        Keep keyed 128-bit fingerprints of the rows learned (never the rows)
        in ``ledger_``, and refuse to forget rows that were never learned,
        were already forgotten, or would lose more weight than they have
        left. False trusts the caller (no fingerprints, no such refusals).

    Attributes
    ----------
    kernel_ : kernel instance
        The kernel with the learned hyperparameters.
    inducing_points_ : ndarray of shape (n_inducing, n_features)
        Inducing locations ``Z``.
    noise_variance_ : float
        Learned (or given) noise variance.
    posterior_ : GaussianPosterior
        Optimal q(u) over the inducing values ``u = f(Z)`` (computed on
        access from ``whitened_posterior_``).
    whitened_posterior_ : GaussianPosterior
        The same in the whitened basis ``v = L^-1 u`` (prior N(0, I)); better
        conditioned, used for predictions.
    log_marginal_likelihood_value_ : float
        Collapsed evidence lower bound of the rows learned and not forgotten,
        at the current hyperparameters.
    sufficient_statistics_ : SparseStatistics
        The weighted sums the posterior is computed from, with their
        round-off record; they merge with ``+``, ``-`` and ``sum``.
    n_samples_seen_ : int
        Number of rows with weight left. With the ledger, exact (a row
        forgotten in halves stays counted until its weight is gone); without
        it, rows learned minus rows forgotten (with a positive weight), never
        below one while weight remains.
    ledger_ : Ledger
        Fingerprints of the rows learned, only with ``ledger=True``.
    forget_report_ : ForgetReport
        What the last :meth:`partial_unfit` did; its ``estimated_error`` is
        the estimated relative round-off error of q(u) and the bound.
    y_train_mean_ : float
        Mean used to normalise the targets (0 without ``normalize_y``).
    y_train_std_ : float
        Standard deviation used to normalise the targets (1 without).
    n_features_in_ : int
        Number of features seen during :term:`fit`.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of features seen during :term:`fit`, when ``X`` has string
        feature names.

    See Also
    --------
    sklearn.gaussian_process.GaussianProcessRegressor : The exact GP; equal to
        this estimator with ``inducing_points=X`` and ``optimizer=None``.
    SparseGPClassifier : Binary GP classification that forgets.

    Notes
    -----
    Cost: ``fit`` at fixed hyperparameters is O(n m^2 + m^3) in time and
    O(b m + m^2) in memory (rows in blocks of b); each optimiser step costs
    two such passes, plus O(n m p) for the kernel derivatives, computed in
    compiled loops for RBF and Matern kernels (see ``optimize_inducing``).
    ``partial_fit`` / ``partial_unfit`` of ``k`` rows cost O(k m^2 + m^3),
    independent of ``n``.

    Rows in a dask array or dataframe are learned, forgotten and predicted
    on the cluster without reaching the client: one pass over the chunks at
    fixed hyperparameters, one per evaluation of the bound (two with
    ``optimize_inducing=True``), and inducing points chosen from a bounded
    sample of the rows (see "Scaling out on dask" in the documentation).

    What is not forgotten: the kernel hyperparameters, the noise variance
    and the inducing locations (k-means centroids, optimised with
    ``optimize_inducing``) were learned on all rows.
    A forgotten row that is itself an inducing point (``inducing_points=X``,
    a user array holding it, or a k-means cluster of one row) stays stored
    as an inducing location; :meth:`partial_unfit` warns and says what to do.

    References
    ----------
    M. Titsias, Variational Learning of Inducing Variables in Sparse Gaussian
    Processes, AISTATS 2009.

    Examples
    --------
    >>> import numpy as np
    >>> from sklunlearn.gaussian_process import SparseGPRegressor
    >>> rng = np.random.RandomState(0)
    >>> X = rng.uniform(-3, 3, size=(200, 1))
    >>> y = np.sin(X[:, 0]) + 0.1 * rng.randn(200)
    >>> est = SparseGPRegressor(inducing_points=15, random_state=0).fit(X, y)
    >>> import warnings
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore")
    ...     _ = est.partial_unfit(X[:20], y[:20])
    >>> retrained = SparseGPRegressor(
    ...     kernel=est.kernel_, inducing_points=est.inducing_points_,
    ...     noise_variance=est.noise_variance_, optimizer=None).fit(X[20:], y[20:])
    >>> bool(np.allclose(est.predict(X), retrained.predict(X)))
    True
    """

    _parameter_constraints: dict = {
        "kernel": [None, Kernel],
        "inducing_points": [Interval(Integral, 1, None, closed="left"), "array-like"],
        "noise_variance": [None, Interval(Real, 0, None, closed="neither")],
        "optimizer": [StrOptions({"fmin_l_bfgs_b"}), callable, None],
        "n_restarts_optimizer": [Interval(Integral, 0, None, closed="left")],
        "normalize_y": ["boolean"],
        "random_state": ["random_state"],
        "optimize_inducing": ["boolean"],
        "jitter": [StrOptions({"auto"}), Interval(Real, 0, 1e-2, closed="neither")],
        "relative_jitter": ["boolean"],
        "verbose": ["verbose"],
        "ledger": ["boolean"],
    }
    # Parameters that define the fitted model: changing one after fit makes
    # partial_fit and partial_unfit refuse (fit again, or set it back).
    _model_parameters = (
        "kernel",
        "inducing_points",
        "noise_variance",
        "optimizer",
        "n_restarts_optimizer",
        "normalize_y",
        "optimize_inducing",
        "jitter",
        "relative_jitter",
    )

    def __init__(
        self,
        *,
        kernel=None,
        inducing_points=100,
        noise_variance=None,
        optimizer="fmin_l_bfgs_b",
        n_restarts_optimizer=0,
        normalize_y=False,
        random_state=None,
        optimize_inducing=False,
        jitter="auto",
        relative_jitter=True,
        verbose=0,
        ledger=True,
    ):
        self.kernel = kernel
        self.inducing_points = inducing_points
        self.noise_variance = noise_variance
        self.optimizer = optimizer
        self.n_restarts_optimizer = n_restarts_optimizer
        self.normalize_y = normalize_y
        self.random_state = random_state
        self.optimize_inducing = optimize_inducing
        self.jitter = jitter
        self.relative_jitter = relative_jitter
        self.verbose = verbose
        self.ledger = ledger

    # ------------------------------------------------------------ public API
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Choose inducing points, learn the hyperparameters and fit q(u).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data.
        y : array-like of shape (n_samples,)
            Target values.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights multiplying each row's log-likelihood; a
            weight of 2 counts the row twice.

        Returns
        -------
        self : object
            Fitted estimator.
        """
        return self._learn(X, y, sample_weight, reset=True)

    def partial_fit(self, X, y, sample_weight=None):
        """Add rows at fixed hyperparameters (fits if not fitted yet).

        Equivalent to fitting with ``optimizer=None`` and the current
        ``kernel_``, ``inducing_points_`` and ``noise_variance_`` on all rows
        learned so far plus these.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        self : object
        """
        self._validate_params_again()
        first = "sufficient_statistics_" not in self.__dict__
        return self._learn(X, y, sample_weight, reset=first)

    def partial_unfit(self, X, y, sample_weight=None):
        """Forget rows: q(u) becomes the one fitted without them.

        Subtracts the rows' weighted statistics; exact up to floating-point
        round-off (estimated in ``forget_report_.estimated_error``) at the
        current hyperparameters and inducing points, which are not changed
        (see :meth:`reoptimize`). Forgetting a row with weight ``w`` equals
        having learned it with its weight reduced by ``w``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Rows to forget, as they were learned.
        y : array-like of shape (n_samples,)
            Their targets.
        sample_weight : array-like of shape (n_samples,), default=None
            Weight to forget per row (ones by default).

        Returns
        -------
        self : object

        Warns
        -----
        UnlearningWarning
            Once per fit, when the hyperparameters or inducing locations were
            learned from the data; whenever a forgotten row is stored as an
            inducing point; and when the estimated relative round-off error
            of the result exceeds 1e-8 (a refit is then needed for exactness).

        Raises
        ------
        NotFittedError
            When nothing was learned yet.
        ValueError
            On NaN/inf, a wrong number of features or different feature names,
            rows the ledger does not hold (``ledger=True``), more weight than
            was learned, or all of it.
        NotPositiveDefiniteError
            Without the ledger, when the remaining statistics are impossible
            beyond round-off, i.e. the rows were not all part of the training
            data.
        """
        return self._forget(X, y, sample_weight)

    def reoptimize(self, X, y, sample_weight=None, keep_inducing_points=True):
        """Re-learn the hyperparameters on rows you supply (e.g. the remaining ones).

        After :meth:`partial_unfit`, ``kernel_`` and ``noise_variance_`` still
        reflect the forgotten rows. This re-runs the hyperparameter
        optimisation from the constructor's starting values (not from the
        current values, which carry the forgotten rows) on ``X, y`` and
        refits q(u) on them, keeping ``inducing_points_`` by default. With
        ``keep_inducing_points=False`` it is :meth:`fit` on rows with the
        fitted number of features. Like :meth:`fit`, it starts a new ledger
        of the rows learned: these.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
        sample_weight : array-like of shape (n_samples,), default=None
        keep_inducing_points : bool, default=True
            Keep the current inducing locations (k-means centroids of the
            original data, a weak trace of it) or choose them again.

        Returns
        -------
        self : object
        """
        check_is_fitted(self)
        self._validate_params_again()
        kept = self.inducing_points_ if keep_inducing_points else None
        return self._learn(X, y, sample_weight, reset=True, reoptimize=_Refit(kept))

    def predict(self, X, return_std=False, return_cov=False):
        """Predictive distribution of the latent function at ``X``.

        As :meth:`GaussianProcessRegressor.predict`: the noise is not included.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        return_std : bool, default=False
            Also return the standard deviation.
        return_cov : bool, default=False
            Also return the covariance (n_samples x n_samples).

        Returns
        -------
        y_mean : ndarray of shape (n_samples,)
        y_std : ndarray of shape (n_samples,)
            Only when ``return_std``.
        y_cov : ndarray of shape (n_samples, n_samples)
            Only when ``return_cov``.

        Warns
        -----
        UserWarning
            With ``return_std``, when a predictive variance is below its estimated
            round-off (it then cancelled all its digits; it is clipped at 0).
        """
        if return_std and return_cov:
            raise RuntimeError("At most one of return_std or return_cov can be requested.")
        check_is_fitted(self)
        if is_dask_collection(X):  # lazy dask arrays, chunked like X's rows
            if return_cov:
                raise ValueError(
                    "return_cov=True on a dask collection would build an n x n matrix; "
                    "use return_std=True, or compute a slice of the rows first."
                )
            from .._dask import predict_rows

            return predict_rows(self, X, "predict", return_std=return_std)
        X = validate_data(self, X, reset=False, dtype=np.float64)
        Z, kernel = self.inducing_points_, self.kernel_
        # A prediction cancels no row: one call of a kernel without a fast path, not one
        # per row (a scikit-learn kernel call costs a fixed overhead).
        A = whitened_features(kernel, Z, self._inducing_factor, X, independent_rows=False)
        posterior = self.whitened_posterior_
        mean = A.T @ posterior.mean * self.y_train_std_ + self.y_train_mean_
        if not (return_std or return_cov):
            return mean
        B = posterior.whiten(A.T)
        scale = self.y_train_std_**2
        if return_cov:
            cov = kernel(X) - A.T @ A + B.T @ B
            return mean, cov * scale
        prior = kernel.diag(X)
        projected = np.einsum("ij,ij->j", A, A)
        explained = np.einsum("ij,ij->j", B, B)
        # k** - |a|^2 + |R^-T a|^2 (Titsias 2009, eq. 6, whitened): the Nystrom residual
        # k** - |a|^2 cancels, but forward substitution (whitened_features) computes it
        # as the last pivot of a Cholesky factor of [[K_ZZ, k], [k', k**]], to about
        # (m + 2) u times what it cancelled (Higham 2002, Thm. 10.3).
        variance = (prior - projected) + explained
        error = (A.shape[0] + 2) * UNIT_ROUNDOFF * (np.abs(prior) + projected + explained)
        _warn_unresolved_variances(variance, error, scale)
        return mean, np.sqrt(np.clip(variance, 0.0, None) * scale)

    def sample_y(self, X, n_samples=1, random_state=0):
        """Draw functions from the posterior at ``X``.

        The draws need the joint covariance at ``X`` (n_samples_X x
        n_samples_X), built in memory: ``X`` in a dask collection is refused;
        compute the rows first (e.g. ``X.compute()``, or a slice of them).

        Returns
        -------
        y_samples : ndarray of shape (n_samples_X, n_samples)
        """
        check_is_fitted(self)
        if is_dask_collection(X):
            raise ValueError(
                "sample_y draws from the joint posterior at X, whose n x n covariance "
                "is built in memory, so it does not take a dask collection: compute "
                "the rows first (e.g. sample_y(X.compute()), or a slice of them)."
            )
        rng = check_random_state(random_state)
        mean, cov = self.predict(X, return_cov=True)
        return rng.multivariate_normal(mean, cov, n_samples).T

    def log_marginal_likelihood(
        self, theta=None, eval_gradient=False, X=None, y=None, sample_weight=None
    ):
        """Collapsed evidence lower bound, optionally at other hyperparameters.

        The estimator keeps no training rows, so evaluating at ``theta`` or
        with the gradient needs the rows ``X, y`` (at the current inducing
        points). Without them, only the value at the fitted hyperparameters
        on the rows learned is available.

        Parameters
        ----------
        theta : array-like of shape (n_kernel_hyperparameters + 1,), default=None
            ``kernel_.theta`` followed by ``log(noise_variance)``; None means
            the fitted values.
        eval_gradient : bool, default=False
            Also return the gradient w.r.t. ``theta``.
        X, y, sample_weight : array-like, default=None
            Rows on which to evaluate the bound.

        Returns
        -------
        bound : float
        gradient : ndarray of shape (n_kernel_hyperparameters + 1,)
            Only when ``eval_gradient``.
        """
        check_is_fitted(self)
        if theta is None and not eval_gradient and X is None:
            return self.log_marginal_likelihood_value_
        if X is None or y is None:
            raise ValueError(
                "This estimator keeps no training rows: pass X and y to evaluate the "
                "bound at other hyperparameters or with its gradient."
            )
        if any(is_dask_collection(a) for a in (X, y, sample_weight)):
            # Validation would compute every chunk into this process.
            raise ValueError(
                "log_marginal_likelihood evaluates the bound in memory: pass NumPy "
                "arrays (e.g. X.compute()), or use reoptimize on a dask collection to "
                "learn the hyperparameters on the cluster."
            )
        if theta is None:
            theta = np.append(self.kernel_.theta, np.log(self.noise_variance_))
        theta = np.asarray(theta, dtype=np.float64)
        expected = self.kernel_.theta.shape[0] + 1
        if theta.shape != (expected,):
            names = [h.name for h in self.kernel_.hyperparameters if not h.fixed]
            raise ValueError(
                f"theta must be a 1-D array of length {expected}, got shape "
                f"{theta.shape}: the log-transformed kernel_.theta ({', '.join(names)}) "
                "followed by log(noise_variance). Start from "
                "np.append(est.kernel_.theta, np.log(est.noise_variance_))."
            )
        X, y = validate_data(self, X, y, reset=False, dtype=np.float64, y_numeric=True)
        weights = check_weights(sample_weight, X)
        objective = self._objective(X, y, weights, self.inducing_points_, self.kernel_)
        with one_blas_thread():  # as the fit evaluates it (see _update)
            value, gradient = objective(theta)
        if eval_gradient:
            return -value, -gradient
        return -value

    # ------------------------------------------------------ the shared path
    def _validate_rows(self, X, y, *, reset, reoptimize=None):
        """``validate_data`` as GaussianProcessRegressor does; targets must be numbers.

        ``reoptimize`` (from :meth:`reoptimize`) keeps the fitted features
        and hands the inducing points to keep to :meth:`_update`.
        """
        X, y = validate_data(
            self,
            X,
            y,
            reset=reset and reoptimize is None,
            dtype=np.float64,
            y_numeric=True,
        )
        y = check_numeric_targets(y)
        if reoptimize is not None:
            self._refit = reoptimize  # read and removed by _update, in the same call
        return X, y, y

    def _posterior_list(self):
        return [self.whitened_posterior_]

    def _update(self, X, y, weights, *, sign, reset):
        """Add (``sign=+1``; from the prior and new hyperparameters when ``reset``)
        or subtract (``-1``) the rows' statistics, and re-solve q(u)."""
        # The products are m columns wide, between Numba kernels that use the cores:
        # a second BLAS thread gains little and, waiting on the others, costs much.
        with one_blas_thread():
            return self._update_rows(X, y, weights, sign=sign, reset=reset)

    def _update_rows(self, X, y, weights, *, sign, reset):
        with np.errstate(over="ignore", invalid="ignore"):
            rows = LinearStatistics.from_data(X, y, weights)
        rows.check_magnitude("these rows")
        if reset:
            refit = self.__dict__.pop("_refit", None)
            inducing_points = getattr(refit, "inducing_points", None)
            if inducing_points is None:
                inducing_points = resolve_inducing_points(self, X, weights)
            bound = None
            if self.optimizer is not None:
                bound = _RowsBound(X, y, weights, self.normalize_y)
            self._choose_model(inducing_points, bound)
        batch = SparseStatistics.from_data(
            self.kernel_, self.inducing_points_, self._inducing_factor, X, y, weights
        )
        return self._apply(batch, sign, reset, X[weights > 0] if sign < 0 else None)

    def _update_dask(self, rows, *, sign, reset):
        """:meth:`_update` for rows on a dask cluster (:class:`sklunlearn._dask.DaskRows`).

        One pass at fixed hyperparameters; with an optimiser, one pass per
        evaluation of the bound and its gradient, two when it learns the
        inducing locations too (see :mod:`sklunlearn._dask`).
        """
        from .._dask._sparse_gp import sparse_gp_update

        return sparse_gp_update(self, rows, sign=sign, reset=reset)

    def _apply(self, batch, sign, reset, forgotten):
        """Merge a batch's :class:`SparseStatistics`, re-solve q(u), assign the results.

        ``forgotten`` holds the rows forgotten (or the inducing points equal to
        one of them), checked against the inducing points; None when learning.
        """
        if reset:
            current = SparseStatistics.empty(self.inducing_points_.shape[0])
        else:
            current = self.sufficient_statistics_
        statistics = current.merge(batch, sign)
        statistics.linear.check_magnitude("the rows learned")
        if sign < 0:
            _check_remaining(statistics, trusted=self.ledger)
        posterior = optimal_posterior(statistics, self.noise_variance_, self.normalize_y)
        cancelled = None
        if sign < 0:
            # A forget subtracts sums of up to current.n_rows terms (see _estimated_error).
            absorbed = np.abs(current.aa_diagonal) + np.abs(batch.aa_diagonal)
            cancelled = (current.n_rows, absorbed)
        error = self._estimated_error(
            statistics, posterior.mean, refit=False, cancelled=cancelled
        )
        messages, round_off = (), None
        if sign < 0:
            round_off = self._round_off_message(statistics, posterior.mean, error)
            messages = (round_off, *self._forget_messages(forgotten))
            messages = tuple(message for message in messages if message is not None)
        self.sufficient_statistics_ = statistics
        self.n_samples_seen_ = statistics.n_rows
        self.y_train_mean_, self.y_train_std_ = statistics.normalization(self.normalize_y)
        self.whitened_posterior_ = GaussianPosterior.from_cholesky(
            posterior.mean, posterior.precision_cholesky
        )
        self.log_marginal_likelihood_value_ = posterior.bound
        # The update of q(u) is exact; the model equals a refit only when the
        # hyperparameters and inducing points were not learned from the data
        # and no digits were lost.
        return UpdateOutcome(
            method="exact",
            exact=self._unlearning_is_exact and round_off is None,
            estimated_error=error,
            diagnostics=None,
            warnings=messages,
        )

    def _choose_model(self, inducing_points, bound):
        """Set the model at ``Z``; learn the hyperparameters with the rows' ``bound``.

        ``bound`` (:class:`_RowsBound` or its dask twin) is used only with an
        optimizer.
        """
        kernel = C(1.0) * RBF(1.0) if self.kernel is None else clone(self.kernel)
        noise_variance = 1.0 if self.noise_variance is None else float(self.noise_variance)
        if self.optimizer is not None:
            kernel, noise_variance, inducing_points = self._optimize(
                bound, inducing_points, kernel, noise_variance
            )
        self.kernel_ = kernel
        self.inducing_points_ = np.array(inducing_points, dtype=np.float64, copy=True)
        self.noise_variance_ = float(noise_variance)
        self._inducing_factor = inducing_cholesky(
            kernel, self.inducing_points_, self._jitters(noise_variance=noise_variance)
        )
        self._warned_about_hyperparameters = False

    def _estimated_error(self, statistics, mean, refit, cancelled=None):
        """Estimated relative round-off error of q(u) and the bound, the worst of six.

        From the statistics' round-off records (or, with ``refit``, the records
        a refit on the same rows would have), each absolute error divided by
        the size of what it determines, in the model's (normalised) units:
        a diagonal entry of ``A = sum w a a'`` by itself plus ``s2`` (the
        relative error of the precision ``I + A / s2``); the targets' ``yy``
        by ``yy + W s2`` (the data-fit term ``yy / (2 s2)`` of the bound
        against its ``W / 2`` scale; ``b``'s errors are bounded by these two
        by Cauchy-Schwarz); the weight sum by itself; the kernel diagonal sum
        by itself; and the errors of ``sum w k_ii`` and ``tr A`` by ``sum w
        k_ii - tr A + W s2`` (the bound's trace term ``(sum w k_ii - tr A) /
        (2 s2)`` against the same scale: kernel values far above ``s2``, as
        ``DotProduct`` gives for rows far from the origin, cancel most of their
        digits in it); and the propagated error of the mean ``v`` (``mean``)
        of q(v) in the rows' predictions ``a_i' v``. A first-order estimate, as
        for :class:`~sklunlearn.linear_model.BayesianLinearRegression`.

        The last: with ``|dA_jk| <= sqrt(e_j e_k)`` (``e`` the errors of ``A``'s
        diagonal) and ``|db_j| <= sqrt(e_j e_yy)``, ``P dv = (db - dA v) / s2``
        gives ``|dv|_A^2 <= s2 |dv|_P^2 <= s2 |P dv|^2`` (``P >= I``): the
        root-mean-square error of the predictions at the rows, ``|e|^1/2
        (sum_j e_j^1/2 |v_j| + e_yy^1/2) / s2^1/2``, relative to their root
        mean square ``(v' A v)^1/2`` (per ``W^1/2`` both). It is large where
        ``A`` is ill-conditioned and ``v`` has large cancelling components, as
        for a polynomial kernel of rows far from the origin, where a refit
        is no more accurate.

        After a forget, ``cancelled`` is ``(n, absorbed)``: the rows of the
        statistics forgotten from and, per diagonal entry of ``A``, the learned
        plus the forgotten sum (sums of non-negative terms ``w a_j^2``). Each
        of them errs by up to ``gamma_n`` times itself (Higham 2002, Lemma 3.1
        and Eq. (4.4)), not ``u``, and the part that cancels (``absorbed -
        |A_jj|``) leaves that error in what is left: an entry learned only
        from forgotten rows keeps the rounding of what it absorbed. It enters
        the precision's and the trace term's ratios, not the propagated error
        of ``v``, whose Cauchy-Schwarz bound on the off-diagonal entries would
        turn this worst case over every entry into false alarms.
        """
        linear = statistics.linear
        round_off = linear.refit_round_off() if refit else linear.round_off
        kdiag_error = (
            UNIT_ROUNDOFF * abs(statistics.kdiag) if refit else statistics.kdiag_round_off
        )
        s2 = self.noise_variance_
        _, std = statistics.normalization(self.normalize_y)
        aa_error, raw_yy_error = linear.gram_round_off(False, round_off)
        diagonal_error = aa_error
        if cancelled is not None:
            # gamma_n = n u / (1 - n u) bounds a sum of n terms relative to the sum of
            # their magnitudes (Higham 2002, Lemma 3.1 and Eq. (4.4)).
            n, absorbed = cancelled
            gamma = n * UNIT_ROUNDOFF / max(1.0 - n * UNIT_ROUNDOFF, UNIT_ROUNDOFF)
            left = np.abs(statistics.aa_diagonal)
            diagonal_error = aa_error + gamma * np.clip(absorbed - left, 0.0, None)
        _, yy = statistics.targets(self.normalize_y)
        yy_error = (round_off.yy if self.normalize_y else raw_yy_error) / std**2
        W = linear.weight_sum
        aa_diagonal = np.clip(statistics.aa_diagonal, 0, None)
        residual = max(statistics.kdiag - float(np.sum(aa_diagonal)), 0.0)
        ratios = (
            np.max(diagonal_error / (aa_diagonal + s2), initial=0),
            yy_error / (max(yy, 0.0) + W * s2),
            round_off.weight_sum / W,
            kdiag_error / max(abs(statistics.kdiag), np.finfo(float).tiny),
            (kdiag_error + float(np.sum(diagonal_error))) / (residual + W * s2),
            _prediction_error(statistics.aa, mean, aa_error, yy_error, s2),
        )
        return float(max(max(ratios), UNIT_ROUNDOFF))

    def _round_off_message(self, statistics, mean, error):
        """Text of the round-off UnlearningWarning of a forget, or None."""
        refit_advice = (
            "fit SparseGPRegressor(kernel=est.kernel_, inducing_points="
            "est.inducing_points_, noise_variance=est.noise_variance_, optimizer=None) "
            "on the remaining rows."
        )
        refit_error = self._estimated_error(statistics, mean, refit=True)
        return round_off_warning(error, refit_error, refit_advice)

    def _forget_messages(self, X_forgotten):
        """Texts of the UnlearningWarnings of a forget: what remains of the rows."""
        messages = []
        learned = []
        if self.optimizer is not None:
            learned.append("kernel_ and noise_variance_")
        if self._learns_inducing_points:
            learned.append("inducing_points_")
        if learned and not self._warned_about_hyperparameters:
            self._warned_about_hyperparameters = True
            messages.append(
                f"{' and '.join(learned)} were learned from data that included the "
                "forgotten rows and still carry information about them (q(u) does "
                "not). Call reoptimize(X_remaining, y_remaining) to re-learn them on "
                "the remaining rows."
            )
        if isinstance(self.inducing_points, Integral):
            advice = (
                "Call reoptimize(X_remaining, y_remaining, "
                "keep_inducing_points=False) to choose new ones."
            )
        else:
            advice = (
                "Pass other inducing_points (set_params) and fit on the remaining rows."
            )
        messages.append(
            forgotten_inducing_points_message(X_forgotten, self.inducing_points_, advice)
        )
        return tuple(message for message in messages if message is not None)

    @property
    def _learns_inducing_points(self):
        """Inducing locations chosen by k-means or optimised on the rows."""
        optimised = self.optimize_inducing and self.optimizer is not None
        return isinstance(self.inducing_points, Integral) or optimised

    @property
    def _unlearning_is_exact(self):
        """Forgetting equals a refit with the same parameters when those learn
        nothing from the data (``optimizer=None`` and an array of inducing
        points); otherwise a refit would learn other hyperparameters."""
        return self.optimizer is None and not isinstance(self.inducing_points, Integral)

    @property
    def posterior_(self):
        """Optimal q(u) over the inducing values, computed from ``whitened_posterior_``."""
        check_is_fitted(self, "whitened_posterior_")
        posterior = self.whitened_posterior_
        return _inducing_posterior(
            posterior.mean, posterior.precision_cholesky, self._inducing_factor
        )

    def _jitters(self, values=None, noise_variance=None):
        """Jitters of ``K_uu`` tried in turn, ``values`` or those of ``jitter``:
        :class:`GrowingJitters` at ``noise_variance`` for ``'auto'``, else a
        tuple (relative) or :class:`AbsoluteJitters` (see ``relative_jitter``)."""
        auto = isinstance(self.jitter, str)
        if auto and not self.relative_jitter:
            raise ValueError(
                "relative_jitter=False needs a number as jitter (GPflow adds 1e-6, "
                "GPy 1e-8); jitter='auto' is relative."
            )
        if values is None:
            # From the smallest up by factors of 100, at least twice and up to
            # _LARGEST_JITTER.
            smallest = _AUTO_JITTER if auto else self.jitter
            steps = int(np.ceil(np.log(_LARGEST_JITTER / smallest) / np.log(100.0) - 1e-9))
            values = smallest * 100.0 ** np.arange(max(3, 1 + steps))
        values = tuple(float(value) for value in values)
        if auto:
            return GrowingJitters(values, noise_variance)
        return values if self.relative_jitter else AbsoluteJitters(values)

    def _objective(self, X, y, weights, Z, kernel, optimize_inducing=False, jitters=None):
        """``theta -> (-bound, -gradient)`` with ``theta = [kernel.theta, log s2]``,
        followed by ``Z.ravel()`` when ``optimize_inducing``, for rows in memory."""
        bound = _RowsBound(X, y, weights, self.normalize_y)
        return self._bound_objective(bound, Z, kernel, optimize_inducing, jitters)

    def _bound_objective(self, bound, Z, kernel, optimize_inducing=False, jitters=None):
        """:meth:`_objective` of the rows whose bound ``bound`` evaluates
        (:class:`_RowsBound`, or its twin for rows on a dask cluster)."""
        jitters = self._jitters() if jitters is None else jitters
        n_theta = kernel.theta.shape[0]

        def objective(theta):
            candidate = kernel.clone_with_theta(theta[:n_theta])
            s2 = float(np.exp(theta[n_theta]))
            inducing = theta[n_theta + 1 :].reshape(Z.shape) if optimize_inducing else Z
            try:
                evaluation = bound(
                    candidate, inducing, s2, optimize_inducing, with_noise(jitters, s2)
                )
            except np.linalg.LinAlgError:
                return np.inf, np.zeros_like(theta)
            gradient = evaluation.gradient
            if optimize_inducing:
                gradient = np.append(gradient, evaluation.inducing_gradient.ravel())
            return -evaluation.bound, -gradient

        return objective

    def _optimize(self, bound, Z, kernel, noise_variance):
        """Maximise the rows' ``bound`` over ``[kernel.theta, log s2]`` (and ``Z``).

        Returns the kernel, the noise variance and the inducing points.
        """
        if self.optimize_inducing and not supports_inducing_gradient(kernel, Z.shape[1]):
            raise ValueError(
                f"optimize_inducing=True needs a kernel of the form {SUPPORTED_KERNELS}; "
                f"got {kernel}. Use such a kernel or optimize_inducing=False."
            )
        # One jitter for the whole run: a larger one where K_uu needs it would
        # make the bound jump down there and stall the optimiser.
        start = inducing_cholesky(kernel, Z, self._jitters(noise_variance=noise_variance))
        jitters = self._jitters([start.jitter])
        objective = _Progress(
            self._bound_objective(bound, Z, kernel, self.optimize_inducing, jitters),
            self.verbose,
        )
        n_theta = kernel.theta.shape[0]
        bounds = np.vstack([kernel.bounds.reshape(-1, 2), np.log(_NOISE_BOUNDS)])
        initial = np.append(kernel.theta, np.log(noise_variance))
        if self.optimize_inducing:
            bounds = np.vstack([bounds, np.tile([-np.inf, np.inf], (Z.size, 1))])
            initial = np.append(initial, Z.ravel())
        if self.verbose:
            print(
                f"Maximising the collapsed bound over {initial.size} parameters "
                f"({bound.n_rows} rows, {Z.shape[0]} inducing points)"
            )
        # the hyperparameters are logarithms; the inducing locations are not
        positive = np.arange(initial.size) <= n_theta
        options = (
            bounds,
            bound.weight_sum,
            positive,
            _Interpolates(bounds[n_theta, 0], n_theta),
        )
        runs = [self._run_optimizer(objective, initial, *options)]
        if self.n_restarts_optimizer > 0:
            hyperparameters = bounds[: n_theta + 1]
            if not np.isfinite(hyperparameters).all():
                raise ValueError(
                    "Multiple optimizer restarts (n_restarts_optimizer>0) require "
                    "that all bounds are finite."
                )
            rng = check_random_state(self.random_state)
            for restart in range(self.n_restarts_optimizer):
                start = initial.copy()
                start[: n_theta + 1] = rng.uniform(
                    hyperparameters[:, 0], hyperparameters[:, 1]
                )
                if self.verbose:
                    print(f"Restart {restart + 1} of {self.n_restarts_optimizer}")
                runs.append(self._run_optimizer(objective, start, *options))
        theta = min(runs, key=lambda run: run[1])[0]
        _warn_at_bounds(kernel, theta[: n_theta + 1], bounds[: n_theta + 1])
        inducing = theta[n_theta + 1 :].reshape(Z.shape) if self.optimize_inducing else Z
        return (
            kernel.clone_with_theta(theta[:n_theta]),
            float(np.exp(theta[n_theta])),
            inducing,
        )

    def _run_optimizer(self, objective, initial, bounds, scale, positive, degenerate):
        """``(theta, value)`` of one run from ``initial``: the built-in optimiser
        along its two paths (``positive``: the variables that are logarithms;
        ``degenerate``: ends not to prefer; see :func:`minimize_within_bounds`),
        or the callable ``optimizer``."""
        if self.optimizer == "fmin_l_bfgs_b":
            objective.iterations = 0  # counted per run, as L-BFGS-B's own nit
            result = minimize_within_bounds(
                objective,
                initial,
                bounds,
                scale,
                callback=objective.iteration,
                notify=objective.notify,
                positive=positive,
                memory=_REGRESSION_MEMORY,
                degenerate=degenerate,
            )
            if "ABNORMAL" in str(result.message):
                _warn_abnormal(result, bounds)
            else:
                _check_optimize_result("lbfgs", result)
            objective.finish(result)
            return result.x, result.fun

        def obj_func(theta, eval_gradient=True):
            value, gradient = objective(theta)
            objective.report(f"Evaluation {objective.evaluations}", value, gradient)
            return (value, gradient) if eval_gradient else value

        return self.optimizer(obj_func, initial, bounds)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        return tags


def _prediction_error(aa, mean, aa_error, yy_error, noise_variance):
    """Relative error of the rows' predictions ``a_i' v`` propagated from the
    statistics' errors (see :meth:`SparseGPRegressor._estimated_error`)."""
    root = np.sqrt(np.clip(aa_error, 0.0, None))
    error = np.linalg.norm(root) * (root @ np.abs(mean) + np.sqrt(max(yy_error, 0.0)))
    if error == 0.0:
        return 0.0
    size = np.sqrt(max(float(mean @ aa @ mean), 0.0) * noise_variance)
    return float(error / max(size, np.finfo(float).tiny))


def _warn_unresolved_variances(variance, error, scale):
    """A UserWarning when predictive variances are below their round-off ``error``.

    There the variance returned (clipped at 0, as GaussianProcessRegressor
    does with negative ones) is known only to lie between 0 and about
    ``error``; ``scale`` converts both to the targets' units.
    """
    unresolved = variance < error
    if not np.any(unresolved):
        return
    largest = float(np.sqrt(np.max(error[unresolved]) * scale))
    warnings.warn(
        f"Predictive variances at {int(np.sum(unresolved))} of {variance.shape[0]} "
        "points are below their estimated round-off: the standard deviations "
        "returned there (of the variance clipped at 0) are known only to be below "
        f"about {largest:.2g}. A larger noise_variance or jitter resolves them.",
        UserWarning,
        stacklevel=caller_stacklevel(),
    )


def _warn_abnormal(result, bounds):
    """A ConvergenceWarning for an L-BFGS-B run whose last line search found no
    decrease (``ABNORMAL``), which says where it stopped: the bound and the
    largest gradient entry of the variables not at their ``bounds``.

    Near an optimum of a bound summed over many rows, round-off in the bound
    and its gradient leaves no decrease to find, and the end is as good as the
    bound's precision allows; scikit-learn's generic advice to scale the data
    then misleads.
    """
    free = ~_at_bounds(result.x, bounds)
    largest = float(np.max(np.abs(result.jac[free]), initial=0.0))
    warnings.warn(
        f"L-BFGS-B stopped after {result.nit} iterations because its last line "
        "search found no decrease (ABNORMAL), at log_marginal_likelihood_value_ "
        f"{-result.fun:.10g} with gradient entries up to {largest:.2g} where no "
        "limit is active. Near an optimum this is the round-off of the evidence, "
        "a sum over the rows. If the fit is poor, scale the features, use "
        "normalize_y=True, or restart from other points (n_restarts_optimizer).",
        ConvergenceWarning,
        stacklevel=caller_stacklevel(),
    )


def _warn_at_bounds(kernel, theta, bounds):
    """A ConvergenceWarning for each hyperparameter the optimiser left at a bound.

    ``theta`` and ``bounds`` are in log space, the kernel's free hyperparameters
    then the noise variance. An optimum at a bound (a length scale at 1e-5, say:
    a predictor that is constant away from the rows) usually means unscaled
    features or targets, as scikit-learn's GaussianProcessRegressor warns too.
    """
    names = []
    for hyperparameter in kernel.hyperparameters:
        if hyperparameter.fixed:
            continue
        if hyperparameter.n_elements == 1:
            names.append(hyperparameter.name)
        else:
            names += [
                f"{hyperparameter.name}[{i}]" for i in range(hyperparameter.n_elements)
            ]
    names.append("noise_variance")
    for name, value, (low, high) in zip(names, theta, bounds, strict=True):
        for side, limit in (("lower", low), ("upper", high)):
            if np.isfinite(limit) and np.isclose(value, limit):
                warnings.warn(
                    f"The optimal value found for {name} is at its {side} bound "
                    f"{np.exp(limit):.3g}: "
                    + _at_bound_advice(name, side)
                    + "Otherwise scale the features and use normalize_y=True, or "
                    "widen the bound in the kernel.",
                    ConvergenceWarning,
                    stacklevel=caller_stacklevel(),
                )


def _at_bound_advice(name, side):
    """What a hyperparameter at a bound usually means, by which one and which bound."""
    if side == "upper" and name.endswith("]") and "length_scale" in name:
        # Automatic relevance determination: an irrelevant feature's scale grows.
        return (
            "the fit finds that feature irrelevant, which is expected of a feature "
            "that does not help predict y under an anisotropic kernel. "
        )
    return "the fit may be poor (for instance nearly constant predictions). "
