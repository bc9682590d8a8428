"""Bayesian linear regression with exact forgetting (evidence re-optimised)."""

from math import log
from numbers import Integral, Real
from typing import NamedTuple

import numpy as np
from scipy import linalg
from sklearn.base import BaseEstimator, RegressorMixin, _fit_context
from sklearn.utils._param_validation import Interval
from sklearn.utils.validation import check_is_fitted, validate_data

from .._dask import is_dask_collection
from .._numba.tridiagonal import apply_reflectors, shifted_tridiagonal
from ..base import UnlearningMixin, UpdateOutcome
from ..posterior import GaussianPosterior
from ._sufficient_statistics import (
    UNIT_ROUNDOFF,
    CompensatedStatistics,
    LinearStatistics,
    Tridiagonal,
    batch_statistics,
    certified_tridiagonal,
    check_numeric_targets,
    psd_eigh,
    rank_bound,
    round_off_tolerance,
    round_off_warning,
)


class EvidenceSolution(NamedTuple):
    """Result of the evidence fixed point.

    Fields
    ------
    coef : ndarray of shape (n_features,)
        Posterior mean at the final ``(alpha, lambda_)``.
    alpha : float
        Noise precision.
    lambda_ : float
        Weight precision.
    n_iter : int
        Iterations run (as ``BayesianRidge.n_iter_``).
    scores : list of float
        Log marginal likelihood at each iteration and at the end (empty unless
        requested).
    sse : float
        Weighted sum of squared residuals at ``coef``.
    path : ndarray of shape (n_points, 5)
        ``|c|^2``, ``sse``, ``gamma``, ``alpha`` and ``lambda`` at each point
        evaluated, the last one included: a round-off error at an early
        iterate outlives it, as the iteration stops at ``tol`` rather than at
        the fixed point.
    cancelled_sse : ndarray of bool, shape (n_points,)
        Per point of ``path``, whether its ``sse`` was a difference of
        statistics (else a sum of positive terms, see
        :meth:`_EigenProblem.point`).
    path_coef : ndarray of shape (n_points, n_features) or None
        The coefficients at each point, when the problem's coordinates are
        the coefficients (the eigendecomposition).
    spectrum : tuple or None
        ``(s, |V|, z)``, the eigenvalues, absolute eigenvectors and
        ``z = V' X'Wy``, when the eigendecomposition was used.
    """

    coef: np.ndarray
    alpha: float
    lambda_: float
    n_iter: int
    scores: list
    sse: float
    path: np.ndarray = np.zeros((0, 5))
    cancelled_sse: np.ndarray = np.ones(0, dtype=bool)
    path_coef: np.ndarray = None
    spectrum: tuple = None


class _Point(NamedTuple):
    """The model at one ``(alpha, lambda_)``: what an evidence iteration reads.

    Fields: ``coordinates`` of the posterior mean in the problem's orthonormal
    basis, ``sse`` (weighted sum of squared residuals), ``gamma`` (the
    effective number of parameters ``sum_k alpha s_k / (lambda + alpha s_k)``)
    and ``log_det`` (``log det(lambda I + alpha G)``); ``cancelled``, whether
    ``sse`` was a difference of statistics.
    """

    coordinates: np.ndarray
    sse: float
    gamma: float
    log_det: float
    cancelled: bool = True


class _EigenProblem(NamedTuple):
    """The linear-Gaussian model in the eigenbasis of the Gram matrix ``G = V diag(s) V'``.

    Fields: ``eigenvalues`` s (clipped at 0), ``eigenvectors`` V, ``z = V' X'Wy``,
    ``yty = y'Wy``, ``weight_sum = sum w`` and ``interpolates``, whether ``y``
    lies in the span of the rows (see :func:`_interpolates`). Coordinates are
    the coefficients themselves.
    """

    eigenvalues: np.ndarray
    eigenvectors: np.ndarray
    z: np.ndarray
    yty: float
    weight_sum: float
    interpolates: bool = False

    def point(self, alpha, lambda_):
        """The :class:`_Point` at ``(alpha, lambda_)``.

        ``c = V diag(1 / (s + lambda/alpha)) z`` (BayesianRidge._update_coef_);
        ``sse = y'Wy - 2 c'X'Wy + c'Gc``, evaluated in the eigenbasis in O(d).
        When ``y = X b`` (``interpolates``) that is ``|X (b - c)|^2 =
        r^2 sum_k c_k^2 / s_k`` with ``r = lambda / alpha``, a sum of positive
        terms: the difference would leave the statistics' round-off (``u y'Wy``,
        far more after a forget) where the residual is tiny, as it is at the
        starting ``alpha = 1 / eps``, and ``alpha`` there is set by ``alpha_2``.
        But each of its terms divides by an ``s_k`` that the eigensolver
        computes to ``d u max(s)``: with an ill-conditioned Gram matrix the
        sum is the less accurate one, so each point takes the formula whose
        round-off (``d u`` times the difference's terms, or each positive
        term times ``d u max(s) / s_k``) is smaller.
        """
        s = self.eigenvalues
        ridge = lambda_ / alpha
        c = self.z / (s + ridge)
        sse = self.yty - 2.0 * (c @ self.z) + (s * c) @ c
        cancelled = True
        if self.interpolates:
            positive = s > 0
            terms = ridge**2 * c[positive] ** 2 / s[positive]
            solver = s.shape[0] * UNIT_ROUNDOFF
            summed_error = solver * s.max() * np.sum(terms / s[positive])
            difference_error = solver * (self.yty + 2 * abs(c @ self.z) + (s * c) @ c)
            if summed_error <= difference_error:
                sse, cancelled = np.sum(terms), False
        gamma = np.sum((alpha * s) / (lambda_ + alpha * s))
        log_det = np.sum(np.log(lambda_ + alpha * s))
        return _Point(
            self.eigenvectors @ c, max(float(sse), 0.0), gamma, log_det, cancelled
        )

    def converged(self, previous, coordinates, tol):
        """Whether the L1 change of the coefficients is below ``tol`` (BayesianRidge's)."""
        return np.sum(np.abs(previous - coordinates)) < tol

    def coefficients(self, coordinates):
        return coordinates

    def posterior(self, solution):
        return _posterior(solution, self.eigenvalues, self.eigenvectors)


def _interpolates(statistics, fit_intercept, eigenvalues, eigenvectors, z, yty):
    """Whether ``y`` lies in the span of the rows, so that a residual is ``|X (b - c)|``.

    The Gram matrix has as many positive eigenvalues as :func:`rank_bound`
    allows, so the rows (centred: less one) are independent and any ``y`` is
    ``X b`` for some ``b``. The bound can be too large (rows repeated) or,
    after a forget of part of a row's weight, too small; either way the
    least-squares residual ``y'Wy - sum_k z_k^2 / s_k`` must also be zero within
    its round-off, that of ``y'Wy`` and of ``X'WX b`` (as in
    :meth:`BayesianLinearRegression._estimated_error`), plus the eigensolver's
    (``d u ||G||`` in each ``s_k``).
    """
    positive = eigenvalues > 0
    if np.count_nonzero(positive) != rank_bound(statistics, fit_intercept):
        return False
    fitted = z[positive] / eigenvalues[positive]  # least squares, in the eigenbasis
    residual = yty - fitted @ z[positive]
    gram_error, yty_error = statistics.gram_round_off(fit_intercept)
    b = eigenvectors[:, positive] @ fitted
    error = (np.sqrt(yty_error) + np.abs(b) @ np.sqrt(gram_error)) ** 2
    # The eigensolver's d u ||G|| in each s_k (and its vector) moves z_k^2 / s_k by
    # about that times (z_k / s_k)^2.
    solver = z.shape[0] * UNIT_ROUNDOFF
    error += solver * (yty + eigenvalues.max(initial=0.0) * fitted @ fitted)
    return bool(abs(residual) <= round_off_tolerance(error, False))


def _posterior(solution, eigenvalues, eigenvectors):
    """``N(coef, precision^-1)`` with ``precision = V diag(alpha s + lambda) V'``.

    Its factor is the R of a QR factorisation of ``B = diag(sqrt(alpha s +
    lambda)) V'`` (``precision = B'B``), backward stable in ``B``: an error
    of ``u |B|`` in the direction of the smallest ``alpha s + lambda``, where
    forming the precision and factorising it errs by ``u |B|^2``, the
    condition number times more. The eigendecomposition is taken when few
    rows or cancelled statistics leave the precision ill-conditioned, which
    is when the difference shows (BayesianRidge's ``sigma_`` has the former
    accuracy). The factorisation never fails.
    """
    scale = solution.alpha * eigenvalues + solution.lambda_
    R = linalg.qr(np.sqrt(scale)[:, None] * eigenvectors.T, mode="r")[0]
    R *= np.where(np.diag(R) < 0, -1.0, 1.0)[:, None]
    return GaussianPosterior(solution.coef, R)


class _TridiagonalProblem(NamedTuple):
    """The same model in the basis ``Q`` of a tridiagonalisation ``G = Q T Q'``.

    ``Q' X'Wy = b e_1`` (:func:`certified_tridiagonal`), so that each
    iteration is one ``LDL'`` of ``T + (lambda / alpha) I``, O(d): with
    ``u = (T + r I)^-1 b e_1`` the coefficients are ``Q u``,
    ``|c|^2 = |u|^2``, ``sse = y'Wy - 2 b u_1 + u'Tu`` and ``gamma =
    tr(T (T + r I)^-1)``. No eigenvector is computed; ``Q`` is applied only
    where the L1 stopping rule cannot be settled from ``|u|`` alone.

    Fields: ``tridiagonal`` (a :class:`Tridiagonal`) and ``weight_sum``.
    """

    tridiagonal: Tridiagonal
    weight_sum: float

    def point(self, alpha, lambda_):
        """The :class:`_Point` at ``(alpha, lambda_)``, or None when it is not accurate.

        ``gamma`` sums ``1 - r (T + r I)^-1_ii``, each accurate to about
        ``u``; below ``_CANCELLED_GAMMA`` parameters its relative error would
        pass 1e-11. A residual ``sse`` below ``_CANCELLED_SSE y'Wy`` is mostly
        the round-off of its cancellation, which differs between the two
        routes. In both cases the eigendecomposition is used instead.
        """
        t = self.tridiagonal
        d = t.diagonal.shape[0]
        rhs = np.zeros(d)
        rhs[0] = t.xty_norm
        negative, u, effective, log_det = shifted_tridiagonal(
            t.diagonal, t.off, lambda_ / alpha, rhs
        )
        if negative or not effective > _CANCELLED_GAMMA * d:
            return None
        Tu = t.diagonal * u
        Tu[1:] += t.off * u[:-1]
        Tu[:-1] += t.off * u[1:]
        sse = t.yty - 2.0 * t.xty_norm * u[0] + u @ Tu
        if not sse > _CANCELLED_SSE * t.yty:
            return None
        return _Point(u, float(sse), effective, d * log(alpha) + log_det)

    def converged(self, previous, coordinates, tol):
        """The L1 rule on ``Q (previous - coordinates)``, settled from ``|x|_2`` if it can.

        ``|x|_2 <= |Q x|_1 <= sqrt(d) |x|_2``; ``Q`` is applied in between.
        """
        change = previous - coordinates
        norm = float(np.sqrt(change @ change))
        if norm >= tol * (1 + _RULE_SLACK):
            return False
        if np.sqrt(change.shape[0]) * norm < tol * (1 - _RULE_SLACK):
            return True
        return np.abs(self.coefficients(change)).sum() < tol

    def coefficients(self, coordinates):
        t = self.tridiagonal
        return apply_reflectors(t.rows.T, t.tau, coordinates)

    def posterior(self, solution):
        """``N(coef, (alpha G + lambda I)^-1)``: one Cholesky factorisation."""
        precision = solution.alpha * self.tridiagonal.gram
        precision.flat[:: precision.shape[0] + 1] += solution.lambda_
        return GaussianPosterior.from_precision(solution.coef, precision)


# Iterations of the fixed point on the tridiagonal form whose effective number of
# parameters falls below this fraction of d switch to the eigendecomposition.
_CANCELLED_GAMMA = 1e-4
# Residuals below this fraction of y'Wy (nearly noise-free targets) have lost most
# of their digits to cancellation: the eigendecomposition computes them instead.
_CANCELLED_SSE = 1e-8
# Relative margin of the L1 rule's bounds: closer calls apply Q and decide exactly.
_RULE_SLACK = 1e-9


class BayesianLinearRegression(UnlearningMixin, RegressorMixin, BaseEstimator):
    """Bayesian ridge regression that can forget training rows exactly.

    The model, priors and evidence maximisation are those of
    :class:`sklearn.linear_model.BayesianRidge` (MacKay 1992): with the same
    parameters, ``fit`` returns the same ``coef_``, ``intercept_``,
    ``alpha_``, ``lambda_`` and predictions. The estimator keeps only weighted
    sufficient statistics of the data it has seen (sum of weights, weighted
    means, centred ``X'WX``, ``X'Wy`` and ``y'Wy``), never the rows, so that

    - :meth:`partial_fit` adds a batch's statistics and
    - :meth:`partial_unfit` subtracts them, through the same code path,

    after which the evidence hyperparameters ``alpha_`` and ``lambda_`` are
    re-optimised from the new statistics, restarting from the initial values
    (``alpha_init``/``lambda_init`` or BayesianRidge's defaults). The result
    equals ``BayesianRidge`` fitted on the remaining rows, hyperparameters
    included, to floating-point accuracy. Restarting (rather than warm
    starting from the previous optimum) matters: the evidence can have two
    fixed points and a warm start can land on the other one.

    Read more in the :ref:`User Guide <exact_forgetting>`.

    Parameters
    ----------
    max_iter : int, default=300
        Maximum number of iterations of the evidence fixed point.
    tol : float, default=1e-3
        Stop when the L1 change of ``coef_`` between iterations is below ``tol``.
    alpha_1 : float, default=1e-6
        Shape of the Gamma prior over the noise precision ``alpha``.
    alpha_2 : float, default=1e-6
        Rate of the Gamma prior over ``alpha``.
    lambda_1 : float, default=1e-6
        Shape of the Gamma prior over the weight precision ``lambda``.
    lambda_2 : float, default=1e-6
        Rate of the Gamma prior over ``lambda``.
    alpha_init : float, default=None
        Starting value of ``alpha``; ``1 / Var(y)`` (weighted) when None.
    lambda_init : float, default=None
        Starting value of ``lambda``; 1 when None.
    compute_score : bool, default=False
        Whether to record the log marginal likelihood at each iteration.
    fit_intercept : bool, default=True
        Whether to fit an intercept (by centring on the weighted means, as
        BayesianRidge does; the intercept carries no prior).
    copy_X : bool, default=True
        Kept for compatibility with BayesianRidge; ``X`` is never modified.
    verbose : bool, default=False
        Print convergence messages.
    compensated : bool, default=False
        Keep the sufficient statistics as double-double (about 106-bit) raw
        moments accumulated with error-free transformations (TwoSum/TwoProd,
        Ogita, Rump & Oishi 2005), so that forgetting rows that dwarf the rest
        (a typo with ``y = 1e8`` among targets of size 1) loses nothing that
        matters: the cancellation then costs ``u^2`` instead of ``u`` times
        the absorbed magnitude. Cost: computing a batch's statistics is a
        compiled loop instead of a BLAS product: ``fit``, and
        ``partial_fit``/``partial_unfit`` of thousands of rows, are several
        to about twenty times slower, a forget of a few rows barely (the
        solve is unchanged; figures in ``benchmarks/README.md``). May be switched on
        or off between requests: switching on continues from the float64
        statistics, whose round-off so far stays in the estimate.
    ledger : bool, default=True
        Keep keyed 128-bit fingerprints of the rows learned (never the rows)
        in ``ledger_``, and refuse to forget rows that were never learned,
        were already forgotten, or would lose more weight than they have
        left. False trusts the caller (no fingerprints, no such refusals).

    Attributes
    ----------
    coef_ : ndarray of shape (n_features,)
        Posterior mean of the coefficients.
    intercept_ : float
        Intercept (0.0 when ``fit_intercept=False``).
    alpha_ : float
        Estimated noise precision.
    lambda_ : float
        Estimated weight precision.
    sigma_ : ndarray of shape (n_features, n_features)
        Posterior covariance of the coefficients.
    posterior_ : GaussianPosterior
        Posterior over the coefficients, ``N(coef_, sigma_)``.
    scores_ : ndarray of shape (n_iter_ + 1,)
        Log marginal likelihood at each iteration and at the end; empty unless
        ``compute_score`` is True. The last entry is the evidence at the final
        ``alpha_``, ``lambda_`` and their coefficients;
        :class:`~sklearn.linear_model.BayesianRidge`'s last entry takes the prior
        term from the previous iteration's coefficients (its residuals from the
        final ones), so the two differ there by up to the last update's change (the
        other entries agree to round-off).
    n_iter_ : int
        Iterations of the last evidence optimisation.
    X_offset_ : ndarray of shape (n_features,)
        Weighted mean of the training features (zeros without intercept).
    X_scale_ : ndarray of shape (n_features,)
        Ones (kept for compatibility with BayesianRidge).
    n_samples_seen_ : int
        Number of rows with weight left. With the ledger, exact (a row
        forgotten in halves stays counted until its weight is gone); without
        it, rows learned minus rows forgotten (with a positive weight), never
        below one while weight remains: the statistics cannot tell a row
        forgotten in part from one forgotten in full.
    sufficient_statistics_ : LinearStatistics
        The weighted sufficient statistics (float64) and the estimate of their
        round-off; they merge with ``+``, ``-`` and ``sum``, so chunked or
        distributed reductions can build them.
    compensated_statistics_ : CompensatedStatistics
        The double-double moments, only with ``compensated=True``.
    ledger_ : Ledger
        Fingerprints of the rows learned, only with ``ledger=True``.
    forget_report_ : ForgetReport
        What the last :meth:`partial_unfit` did; its ``estimated_error`` is
        the estimated relative round-off error of the model.
    n_features_in_ : int
        Number of features seen during :term:`fit`.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of features seen during :term:`fit`, when ``X`` has string
        feature names.

    See Also
    --------
    sklearn.linear_model.BayesianRidge : The same model without forgetting.
    BayesianLogisticRegression : Binary and multiclass classification that forgets.

    Notes
    -----
    Cost: ``fit`` is O(n d^2 + d^3); ``partial_fit`` and ``partial_unfit``
    with ``k`` rows are O(k d^2 + d^3), independent of the number of rows
    seen. Memory is O(d^2) for the model and O(k d) per call.

    What is forgotten: every fitted attribute is recomputed from the
    statistics of the remaining rows, so none depends on the forgotten ones
    beyond floating-point round-off. Fitted pipeline steps before this
    estimator (scalers, PCA) are another matter: see the user guide.

    Round-off: subtracting rows whose statistics dwarf what remains cancels
    digits. Each statistic keeps an estimate of its round-off (``u`` times
    the magnitude it ever absorbed, see :class:`RoundOff`); after a forget
    the estimated relative error of the model is
    ``forget_report_.estimated_error``, and above 1e-8 an UnlearningWarning
    says how many digits were lost and that a refit is needed for exactness
    (or use ``compensated=True``).

    Parameters changed with ``set_params`` after fitting are used by the next
    update: the model is a pure function of the statistics and the
    parameters, recomputed on every update, so no parameter is fixed at fit.
    Float32 data gives float32 ``coef_``, ``intercept_`` and predictions, as
    BayesianRidge; the statistics and ``posterior_`` stay float64.

    References
    ----------
    D. J. C. MacKay, Bayesian Interpolation, Neural Computation 4(3), 1992.

    T. F. Chan, G. H. Golub and R. J. LeVeque, Updating formulae and a
    pairwise algorithm for computing sample variances, 1979.

    T. Ogita, S. M. Rump and S. Oishi, Accurate sum and dot product, SIAM J.
    Sci. Comput. 26(6), 2005.

    Examples
    --------
    >>> import numpy as np
    >>> from sklunlearn.linear_model import BayesianLinearRegression
    >>> rng = np.random.RandomState(0)
    >>> X = rng.randn(100, 3)
    >>> y = X @ [1.0, -2.0, 0.5] + 0.1 * rng.randn(100)
    >>> est = BayesianLinearRegression().fit(X, y)
    >>> _ = est.partial_unfit(X[:10], y[:10])
    >>> retrained = BayesianLinearRegression().fit(X[10:], y[10:])
    >>> bool(np.allclose(est.coef_, retrained.coef_))
    True
    """

    # Forgetting equals refitting on the remaining rows (checked by
    # sklunlearn.utils.estimator_checks against a refit to float accuracy).
    _unlearning_is_exact = True
    # The fitted model is a pure function of the statistics and the parameters,
    # recomputed on every update: no parameter needs to stay as it was at fit.
    _model_parameters = ()

    _parameter_constraints: dict = {
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="neither")],
        "alpha_1": [Interval(Real, 0, None, closed="left")],
        "alpha_2": [Interval(Real, 0, None, closed="left")],
        "lambda_1": [Interval(Real, 0, None, closed="left")],
        "lambda_2": [Interval(Real, 0, None, closed="left")],
        "alpha_init": [None, Interval(Real, 0, None, closed="left")],
        "lambda_init": [None, Interval(Real, 0, None, closed="left")],
        "compute_score": ["boolean"],
        "fit_intercept": ["boolean"],
        "copy_X": ["boolean"],
        "verbose": ["verbose"],
        "compensated": ["boolean"],
        "ledger": ["boolean"],
    }

    def __init__(
        self,
        *,
        max_iter=300,
        tol=1.0e-3,
        alpha_1=1.0e-6,
        alpha_2=1.0e-6,
        lambda_1=1.0e-6,
        lambda_2=1.0e-6,
        alpha_init=None,
        lambda_init=None,
        compute_score=False,
        fit_intercept=True,
        copy_X=True,
        verbose=False,
        compensated=False,
        ledger=True,
    ):
        self.max_iter = max_iter
        self.tol = tol
        self.alpha_1 = alpha_1
        self.alpha_2 = alpha_2
        self.lambda_1 = lambda_1
        self.lambda_2 = lambda_2
        self.alpha_init = alpha_init
        self.lambda_init = lambda_init
        self.compute_score = compute_score
        self.fit_intercept = fit_intercept
        self.copy_X = copy_X
        self.verbose = verbose
        self.compensated = compensated
        self.ledger = ledger

    # ------------------------------------------------------------ public API
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Fit the model on ``X, y``, discarding anything learned before.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data.
        y : array-like of shape (n_samples,)
            Target values.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights; a weight of 2 counts as the row twice.

        Returns
        -------
        self : object
            Fitted estimator.
        """
        return self._learn(X, y, sample_weight, reset=True)

    def partial_fit(self, X, y, sample_weight=None):
        """Add rows to what the model has learned (fits if not fitted yet).

        Equivalent to ``fit`` on all rows learned so far plus these.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Rows to learn.
        y : array-like of shape (n_samples,)
            Their targets.
        sample_weight : array-like of shape (n_samples,), default=None
            Weight of each row (ones by default).

        Returns
        -------
        self : object
        """
        self._validate_params_again()
        first = "sufficient_statistics_" not in self.__dict__
        return self._learn(X, y, sample_weight, reset=first)

    def partial_unfit(self, X, y, sample_weight=None):
        """Forget rows: the model becomes the one fitted without them.

        Subtracts the rows' weighted sufficient statistics and re-optimises
        ``alpha_`` and ``lambda_``; exact up to floating-point round-off,
        whose estimate is ``forget_report_.estimated_error``. Forgetting a row
        with weight ``w`` equals having learned it with its weight reduced by
        ``w``.

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

        Raises
        ------
        NotFittedError
            When nothing was learned yet.
        ValueError
            On NaN/inf, a wrong number of features or different feature names,
            rows the ledger does not hold (``ledger=True``), more weight than
            was learned, or all of it.
        NotPositiveDefiniteError
            Without the ledger, when the remaining Gram matrix would be
            indefinite beyond round-off, i.e. the rows were not all part of
            the training data.

        Warns
        -----
        UnlearningWarning
            When the estimated relative round-off error of the result exceeds
            1e-8: the rows forgotten dwarfed what remains, and subtracting
            them cancelled digits (see ``compensated``). The forget completes
            with ``forget_report_.exact`` False; refit on the remaining rows for
            an exact model.
        """
        return self._forget(X, y, sample_weight)

    def predict(self, X, return_std=False):
        """Predictive mean (and standard deviation) at ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), or dask collection
            A dask array or dataframe gives lazy dask arrays, chunked like
            its rows and computed on the workers.
        return_std : bool, default=False
            Also return the predictive standard deviation, including the
            noise ``1 / alpha_``.

        Returns
        -------
        y_mean : ndarray of shape (n_samples,)
            In the dtype of ``X @ coef_`` (float32 for float32 data, as
            BayesianRidge).
        y_std : ndarray of shape (n_samples,)
            Only when ``return_std`` is True.
        """
        check_is_fitted(self)
        if is_dask_collection(X):  # a lazy dask array, chunked like X's rows
            from .._dask import predict_rows

            return predict_rows(self, X, "predict", return_std=return_std)
        X = validate_data(self, X, reset=False, dtype=[np.float64, np.float32])
        y_mean = X @ self.coef_ + self.intercept_
        if not return_std:
            return y_mean
        X64 = np.asarray(X, dtype=np.float64)
        variance = self.posterior_.predictive_variance(X64 - self.X_offset_)
        return y_mean, np.sqrt(variance + 1.0 / self.alpha_).astype(y_mean.dtype)

    @property
    def sigma_(self):
        """Posterior covariance of the coefficients, ``posterior_.covariance``.

        Computed on access from the Cholesky factor of the precision, so that
        forgetting does not pay for a d x d inverse nobody reads; in the
        dtype of ``coef_``.
        """
        return self.posterior_.covariance.astype(self.coef_.dtype, copy=False)

    # ------------------------------------------------------ the shared path
    def _validate_rows(self, X, y, *, reset, classes=None):
        """Validate as BayesianRidge does; targets must be numbers.

        Returns ``(X, y, y)``: ``X`` float64 or float32 (kept for the dtype
        of the fitted attributes), ``y`` float64.
        """
        X, y = validate_data(
            self, X, y, reset=reset, dtype=[np.float64, np.float32], y_numeric=True
        )
        y = check_numeric_targets(y)
        return X, y, y

    def _posterior_list(self):
        return [self.posterior_]

    def _update(self, X, y, weights, *, sign, reset):
        """Add (``sign=+1``) or subtract (``-1``) the rows' statistics and re-solve."""
        dtype = X.dtype if reset else self.coef_.dtype
        batch = batch_statistics(X, y, weights, self.compensated)
        return self._apply(batch, sign, reset, dtype)

    def _update_dask(self, rows, *, sign, reset):
        """:meth:`_update` for rows on a dask cluster: one pass, the solve here.

        Each chunk's statistics are computed on its worker with the kernel
        used in memory and summed in a tree (:class:`sklunlearn._dask.DaskRows`).
        """
        dtype = rows.dtype if reset else self.coef_.dtype
        batch = rows.reduce(batch_statistics, self.compensated)
        return self._apply(batch, sign, reset, dtype)

    def _apply(self, batch, sign, reset, dtype):
        """Merge a batch's statistics, re-solve, and assign the fitted attributes."""
        statistics = self._merged_statistics(batch, sign, reset)
        solution, posterior = self._solve(statistics)
        error = self._estimated_error(statistics, solution, statistics.round_off)
        message = None
        if sign < 0:
            refit_error = self._estimated_error(
                statistics, solution, statistics.refit_round_off()
            )
            message = round_off_warning(error, refit_error, self._refit_advice())
        self._assign(statistics, solution, posterior, dtype)
        return UpdateOutcome(
            method="exact",
            # A forget that warns of lost digits is not known to equal a refit.
            exact=message is None,
            estimated_error=error,
            diagnostics=None,
            warnings=() if message is None else (message,),
            n_iter=solution.n_iter,
        )

    def _refit_advice(self):
        advice = "fit on the remaining rows"
        if not self.compensated:
            advice += ", or set compensated=True before fitting to keep exactness"
        return advice + "."

    def _merged_statistics(self, batch, sign, reset):
        """The statistics after the update, as float64 :class:`LinearStatistics`.

        ``batch`` holds the rows' statistics (:func:`batch_statistics`). With
        ``compensated``, the double-double moments are merged and kept in
        ``compensated_statistics_``, and the float64 statistics derived from them.
        """
        d = batch.absorbed.shape[0] - 2 if self.compensated else batch.x_mean.shape[0]
        if not self.compensated:
            self.__dict__.pop("compensated_statistics_", None)
            batch.check_magnitude("these rows")
            current = LinearStatistics.empty(d) if reset else self.sufficient_statistics_
            merged = current.merge(batch, sign)
            merged.check_magnitude("the rows learned")
            return merged
        batch.to_linear().check_magnitude("these rows")
        if reset:
            current = CompensatedStatistics.empty(d)
        else:  # compensated may have been switched on since the last update
            current = self.__dict__.get("compensated_statistics_")
            if current is None:
                current = CompensatedStatistics.from_linear(self.sufficient_statistics_)
        merged = current.merge(batch, sign)
        statistics = merged.to_linear()
        statistics.check_magnitude("the rows learned")
        self.compensated_statistics_ = merged
        return statistics

    def _solve(self, statistics):
        """Re-optimise the evidence from ``statistics``: ``(solution, posterior)``.

        On the tridiagonal form of the Gram matrix when it is certified
        positive definite beyond round-off (:func:`certified_tridiagonal`),
        else on its eigendecomposition, where round-off eigenvalues are zeroed
        and negativity beyond round-off is refused (see :func:`psd_eigh`:
        with the ledger, only what no round-off can explain).
        """
        d = statistics.x_mean.shape[0]
        tridiagonal = None
        if rank_bound(statistics, self.fit_intercept) >= d:  # else singular: uncertified
            tridiagonal = certified_tridiagonal(statistics, self.fit_intercept)
        if tridiagonal is not None:
            problem = _TridiagonalProblem(tridiagonal, statistics.weight_sum)
            solution = self._evidence_fixed_point(problem, statistics)
            if solution is not None:
                return solution, problem.posterior(solution)
        eigenvalues, eigenvectors, z, yty = psd_eigh(
            statistics, self.fit_intercept, trusted=self.ledger
        )
        interpolates = _interpolates(
            statistics, self.fit_intercept, eigenvalues, eigenvectors, z, yty
        )
        problem = _EigenProblem(
            eigenvalues, eigenvectors, z, yty, statistics.weight_sum, interpolates
        )
        solution = self._evidence_fixed_point(problem, statistics)
        solution = solution._replace(spectrum=(eigenvalues, np.abs(eigenvectors), z))
        return solution, problem.posterior(solution)

    def _estimated_error(self, statistics, solution, round_off):
        """Estimated relative round-off error of the fitted model, the worst of several.

        Each statistic's absolute error ``e`` (from the :class:`RoundOff`
        record ``round_off``) is divided by the size of what it determines in
        the result:

        - a diagonal entry of the Gram matrix, by that entry plus
          ``lambda_ / alpha_``: the relative error of the posterior precision
          ``alpha_ G + lambda_ I``;
        - the residual ``sse = [-c; 1]' M [-c; 1]`` (``M`` the Gram matrix of
          ``[X, y]``) errs by at most ``(sum_j |v_j| sqrt(e_j))^2`` (each
          ``|E_jk| <= sqrt(e_j e_k)``), divided by ``sse + 2 alpha_2``, the
          denominator of the noise precision ``alpha_``;
        - the weight sum, by itself;
        - the intercept ``y_mean - x_mean' c``, in units of the noise standard
          deviation ``alpha_^-1/2``;
        - with the eigendecomposition, each positive eigenvalue's error (and
          ``V'X'Wy``'s, moving the coefficients) relative to that eigenvalue
          plus the ridge; the diagonal's ratio is then left out when the
          zeroed eigenvalues are exactly those beyond :func:`rank_bound`;
        - along the iteration's path, summed: the residual's error, and the
          cancellation in ``W - gamma`` that a refit shares (twice);
        - a floor of ``2 d u`` per iterate, the solve's own round-off, and
          with the eigendecomposition ``2 d u sqrt(cond)`` for the posterior's
          factor (see :func:`_posterior`).

        This is a first-order estimate, not a bound: worst-case bounds grow
        with the number of terms summed (Higham 2002, eq. 4.4), typical errors
        like its square root. A forget warns when it exceeds 1e-8 and ten
        times what a refit on the remaining rows would carry
        (:meth:`LinearStatistics.refit_round_off`): the second condition
        keeps silent the cases a refit would not improve (the residual of
        nearly noise-free targets, computed from the statistics either way).
        """
        gram_error, yty_error = statistics.gram_round_off(self.fit_intercept, round_off)
        gram, _, _ = statistics.gram(self.fit_intercept)
        diagonal = np.maximum(gram.diagonal(), 0.0)
        ridge = solution.lambda_ / solution.alpha
        coef = np.abs(solution.coef)
        root_error = np.sqrt(gram_error)
        tiny = np.finfo(float).tiny
        solver = statistics.x_mean.shape[0] * UNIT_ROUNDOFF
        ratios = [round_off.weight_sum / statistics.weight_sum]
        _, sse, gamma, alphas, lambdas = solution.path.T
        # Terms along the path are summed: an iteration that does not amplify
        # carries each iterate's error to the end, and it stops at tol, not at the
        # fixed point (a slowly drifting evidence runs to max_iter).
        exact_null = False
        if solution.spectrum is not None:
            s, weights, z = solution.spectrum
            positive = s > 0
            kept = s[positive]
            ridges = (lambdas / alphas)[:, None]
            denominator = sse + 2 * self.alpha_2 + tiny
            # Each positive eigenvalue errs by (sum_j |v_jk| sqrt(e_j))^2 (psd_eigh),
            # relative to its own size plus the ridge, not to the diagonal's.
            root = root_error @ weights[:, positive]
            ratios.append(np.sum((root**2 / (kept + ridges)).max(axis=1, initial=0.0)))
            # V'X'Wy errs by sqrt(e_yy) times the same sums: the final coefficients
            # move by that over s_k + ridge, relative to their norm. Coefficients far
            # inside the posterior (targets all zero leave round-off) are measured in
            # its smallest standard deviation: a shift of a fraction t of it moves
            # the predictive distribution by about t, so it is a relative error t.
            shift = np.sqrt(yty_error) * root / (kept + ridge)
            spread = 1.0 / (solution.alpha * s.max(initial=0.0) + solution.lambda_)
            ratios.append(np.sqrt(shift @ shift / (coef @ coef + spread)))
            summed = ~solution.cancelled_sse
            if summed.any():
                # sse = r^2 sum_k z_k^2 / (s_k (s_k + r)^2) (_EigenProblem.point), z_k
                # off by sqrt(e_yy) root_k and s_k by root_k^2: each term moves by
                # root_k^2 (1 / s_k + 2 / (s_k + r)) of itself (first order), so the
                # sum by those weighted by the terms, not by the worst k times sse.
                # The eigensolver's own d u max(s) adds to each s_k's error.
                moved = np.sqrt(yty_error) * root * ridges
                moved /= np.sqrt(kept) * (kept + ridges)
                squared = (moved**2).sum(axis=1)
                sse_error = 2 * np.sqrt(sse * squared) + squared
                terms = (ridges * z[positive] / (kept + ridges)) ** 2 / kept
                s_error = root**2 + solver * s.max(initial=0.0)
                sse_error += (terms * s_error * (1 / kept + 2 / (kept + ridges))).sum(1)
                ratios.append(np.sum((sse_error / denominator)[summed]))
            # The posterior's QR factor (_posterior) errs by d u sqrt(cond) in the
            # covariance's largest direction, here and in a refit: twice.
            largest = solution.alpha * s.max(initial=0.0) + solution.lambda_
            ratios.append(2 * solver * np.sqrt(largest / solution.lambda_))
            # As many positive eigenvalues as the rank bound allows: the zeroed ones
            # are zero in exact arithmetic, and a refit zeroes them too.
            exact_null = np.count_nonzero(positive) == rank_bound(
                statistics, self.fit_intercept
            )
        if not exact_null:
            ratios.append((gram_error / (diagonal + ridge)).max(initial=0.0))
        cancelled = solution.cancelled_sse
        if cancelled[-1]:
            residual_error = (np.sqrt(yty_error) + coef @ root_error) ** 2
            ratios.append(residual_error / (solution.sse + 2 * self.alpha_2 + tiny))
        if solution.path_coef is not None and cancelled.any():
            path_error = np.sqrt(yty_error) + np.abs(solution.path_coef) @ root_error
            path_error = path_error**2 / (sse + 2 * self.alpha_2 + tiny)
            ratios.append(np.sum(path_error[cancelled]))
        # Alpha's numerator W - gamma cancels when the rows are fitted exactly (gamma,
        # a sum of terms near one, errs by about u gamma), as it does in a refit: twice.
        W = statistics.weight_sum
        numerator = np.abs(W - gamma) + 2 * self.alpha_1 + tiny
        ratios.append(np.sum(4 * UNIT_ROUNDOFF * (W + 3 * gamma) / numerator))
        if self.fit_intercept:
            intercept_error = round_off.y_mean + round_off.x_mean @ coef
            ratios.append(intercept_error * np.sqrt(solution.alpha))
        # The solve's own round-off, in the forget and in a refit: each iterate's
        # eigensolver or factorisation errs by about d u, normwise, carried to the end
        # as above.
        floor = 2 * statistics.x_mean.shape[0] * UNIT_ROUNDOFF * len(solution.path)
        return float(max(max(ratios), floor))

    def _assign(self, statistics, solution, posterior, dtype):
        """Set the fitted attributes (new objects, in the data's dtype)."""
        d = statistics.x_mean.shape[0]
        self.sufficient_statistics_ = statistics
        self.n_samples_seen_ = statistics.n_rows
        self.coef_ = solution.coef.astype(dtype)
        self.alpha_ = solution.alpha
        self.lambda_ = solution.lambda_
        self.n_iter_ = solution.n_iter
        self.scores_ = np.array(solution.scores)
        self.posterior_ = posterior
        self.X_scale_ = np.ones(d, dtype=dtype)
        if self.fit_intercept:
            self.X_offset_ = statistics.x_mean.astype(dtype)
            intercept = statistics.y_mean - statistics.x_mean @ solution.coef
        else:
            self.X_offset_ = np.zeros(d, dtype=dtype)
            intercept = 0.0
        self.intercept_ = dtype.type(intercept)

    def _evidence_fixed_point(self, problem, statistics):
        """MacKay's fixed point for (alpha, lambda), restarted from the initial values.

        ``gamma = sum(alpha s / (lambda + alpha s))``,
        ``lambda <- (gamma + 2 lambda_1) / (|c|^2 + 2 lambda_2)``,
        ``alpha <- (W - gamma + 2 alpha_1) / (sse + 2 alpha_2)``
        (MacKay 1992, eqs. 4.24-4.25 with Gamma hyperpriors), stopping when
        the L1 change of the coefficients is below ``tol``. None when the
        problem cannot evaluate a point accurately (then the caller uses
        the eigendecomposition).
        """
        eps = np.finfo(np.float64).eps
        W = statistics.weight_sum
        alpha = self.alpha_init
        if alpha is None:
            alpha = 1.0 / (statistics.yy_beyond_round_off() / W + eps)
        lambda_ = 1.0 if self.lambda_init is None else self.lambda_init
        priors = (self.alpha_1, self.alpha_2, self.lambda_1, self.lambda_2)
        scores = []
        path, cancelled = [], []
        # The eigenbasis' coordinates are the coefficients: kept for the estimate.
        path_coef = [] if isinstance(problem, _EigenProblem) else None
        previous = None
        for iteration in range(self.max_iter):
            point = problem.point(alpha, lambda_)
            if point is None:
                return None
            if self.compute_score:
                scores.append(_log_evidence(point, alpha, lambda_, W, priors))
            gamma = point.gamma
            norm = (point.coordinates**2).sum()
            path.append((norm, point.sse, gamma, alpha, lambda_))
            cancelled.append(point.cancelled)
            if path_coef is not None:
                path_coef.append(point.coordinates)
            lambda_ = (gamma + 2 * self.lambda_1) / (norm + 2 * self.lambda_2)
            alpha = (W - gamma + 2 * self.alpha_1) / (point.sse + 2 * self.alpha_2)
            if not (alpha > 0 and lambda_ > 0 and np.isfinite(alpha * lambda_)):
                raise ValueError(
                    f"The evidence fixed point left the valid region (alpha={alpha:.3g}, "
                    f"lambda={lambda_:.3g}): the total sample weight {W:.3g} is below "
                    f"the effective number of parameters {gamma:.3g}, or the targets "
                    "are fitted exactly with no prior to bound the precisions. Use "
                    "larger weights (weights count as repeated rows), or set "
                    "alpha_1/alpha_2 (lambda_1/lambda_2) to give the precisions an "
                    "informative prior."
                )
            if iteration != 0 and problem.converged(previous, point.coordinates, self.tol):
                if self.verbose:
                    print("Convergence after ", str(iteration), " iterations")
                break
            previous = point.coordinates
        point = problem.point(alpha, lambda_)
        if point is None:
            return None
        if self.compute_score:
            scores.append(_log_evidence(point, alpha, lambda_, W, priors))
        path.append(((point.coordinates**2).sum(), point.sse, point.gamma, alpha, lambda_))
        cancelled.append(point.cancelled)
        if path_coef is not None:
            path_coef.append(point.coordinates)
            path_coef = np.array(path_coef)
        return EvidenceSolution(
            problem.coefficients(point.coordinates),
            float(alpha),
            float(lambda_),
            iteration + 1,
            scores,
            float(point.sse),
            np.array(path, dtype=np.float64),
            np.array(cancelled, dtype=bool),
            path_coef,
        )


def _log_evidence(point, alpha, lambda_, weight_sum, priors):
    """Log evidence with Gamma hyperpriors (BayesianRidge._log_marginal_likelihood)."""
    alpha_1, alpha_2, lambda_1, lambda_2 = priors
    d = point.coordinates.shape[0]
    score = lambda_1 * log(lambda_) - lambda_2 * lambda_
    score += alpha_1 * log(alpha) - alpha_2 * alpha
    score += 0.5 * (
        d * log(lambda_)
        + weight_sum * log(alpha)
        - alpha * point.sse
        - lambda_ * np.sum(point.coordinates**2)
        - point.log_det
        - weight_sum * log(2 * np.pi)
    )
    return float(score)
