"""Bayesian linear regression with exact forgetting (evidence re-optimised)."""

from math import log
from numbers import Integral, Real
from typing import NamedTuple

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin, _fit_context
from sklearn.utils._param_validation import Interval
from sklearn.utils.validation import check_is_fitted, validate_data

from ..base import UnlearningMixin, check_weights, validate_rows
from ..posterior import GaussianPosterior
from ._sufficient_statistics import LinearStatistics, psd_eigh


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
    """

    coef: np.ndarray
    alpha: float
    lambda_: float
    n_iter: int
    scores: list


class _EigenProblem(NamedTuple):
    """The linear-Gaussian model in the eigenbasis of the Gram matrix ``G = V diag(s) V'``.

    Fields: ``eigenvalues`` s (clipped at 0), ``eigenvectors`` V, ``z = V' X'Wy``,
    ``yty = y'Wy`` and ``weight_sum = sum w``.
    """

    eigenvalues: np.ndarray
    eigenvectors: np.ndarray
    z: np.ndarray
    yty: float
    weight_sum: float

    def coef_and_sse(self, alpha, lambda_):
        """Posterior mean and weighted sum of squared residuals at ``(alpha, lambda_)``.

        ``c = V diag(1 / (s + lambda/alpha)) z`` (BayesianRidge._update_coef_);
        ``sse = y'Wy - 2 c'X'Wy + c'Gc``, evaluated in the eigenbasis in O(d).
        """
        c = self.z / (self.eigenvalues + lambda_ / alpha)
        sse = self.yty - 2.0 * (c @ self.z) + (self.eigenvalues * c) @ c
        return self.eigenvectors @ c, max(float(sse), 0.0)

    def log_marginal_likelihood(self, alpha, lambda_, coef, sse, priors):
        """Log evidence with Gamma hyperpriors (BayesianRidge._log_marginal_likelihood)."""
        alpha_1, alpha_2, lambda_1, lambda_2 = priors
        d = self.eigenvalues.shape[0]
        logdet_sigma = -np.sum(np.log(lambda_ + alpha * self.eigenvalues))
        score = lambda_1 * log(lambda_) - lambda_2 * lambda_
        score += alpha_1 * log(alpha) - alpha_2 * alpha
        score += 0.5 * (
            d * log(lambda_)
            + self.weight_sum * log(alpha)
            - alpha * sse
            - lambda_ * np.sum(coef**2)
            + logdet_sigma
            - self.weight_sum * log(2 * np.pi)
        )
        return float(score)


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
        ``compute_score`` is True.
    n_iter_ : int
        Iterations of the last evidence optimisation.
    X_offset_ : ndarray of shape (n_features,)
        Weighted mean of the training features (zeros without intercept).
    X_scale_ : ndarray of shape (n_features,)
        Ones (kept for compatibility with BayesianRidge).
    n_samples_seen_ : int
        Number of rows with non-zero weight learned and not forgotten.
    sufficient_statistics_ : LinearStatistics
        The weighted sufficient statistics; they merge with ``+`` and ``-``,
        so chunked or distributed reductions can build them.
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

    References
    ----------
    D. J. C. MacKay, Bayesian Interpolation, Neural Computation 4(3), 1992.

    T. F. Chan, G. H. Golub and R. J. LeVeque, Updating formulae and a
    pairwise algorithm for computing sample variances, 1979.

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
        return self._change(X, y, sample_weight, sign=1.0, reset=True)

    def partial_fit(self, X, y, sample_weight=None):
        """Add rows to what the model has learned (fits if not fitted yet).

        Equivalent to ``fit`` on all rows learned so far plus these.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        self : object
        """
        self._validate_params()
        first = not hasattr(self, "sufficient_statistics_")
        return self._change(X, y, sample_weight, sign=1.0, reset=first)

    def partial_unfit(self, X, y, sample_weight=None):
        """Forget rows: the model becomes the one fitted without them.

        Subtracts the rows' weighted sufficient statistics and re-optimises
        ``alpha_`` and ``lambda_``; exact up to floating-point round-off.
        Forgetting a row with weight ``w`` equals having learned it with its
        weight reduced by ``w``.

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
            more rows or more weight than were learned.
        NotPositiveDefiniteError
            When the remaining Gram matrix would be indefinite, i.e. the rows
            were not all part of the training data.
        """
        self._check_fitted("posterior_")
        self._validate_params()  # the evidence is re-optimised with max_iter, tol, ...
        return self._change(X, y, sample_weight, sign=-1.0, reset=False)

    def predict(self, X, return_std=False):
        """Predictive mean (and standard deviation) at ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        return_std : bool, default=False
            Also return the predictive standard deviation, including the
            noise ``1 / alpha_``.

        Returns
        -------
        y_mean : ndarray of shape (n_samples,)
        y_std : ndarray of shape (n_samples,)
            Only when ``return_std`` is True.
        """
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=np.float64)
        y_mean = X @ self.coef_ + self.intercept_
        if not return_std:
            return y_mean
        variance = self.posterior_.predictive_variance(X - self.X_offset_)
        return y_mean, np.sqrt(variance + 1.0 / self.alpha_)

    @property
    def sigma_(self):
        """Posterior covariance of the coefficients, ``posterior_.covariance``.

        Computed on access from the Cholesky factor of the precision, so that
        forgetting does not pay for a d x d inverse nobody reads.
        """
        return self.posterior_.covariance

    # ------------------------------------------------------------ internals
    def _change(self, X, y, sample_weight, sign, reset):
        """The one path of fit (reset), partial_fit (+1) and partial_unfit (-1)."""
        with self._atomic():
            if reset:
                X, y = validate_data(
                    self, X, y, reset=True, dtype=np.float64, y_numeric=True
                )
            else:
                X, y = validate_rows(self, X, y, y_numeric=True)
            weights = check_weights(sample_weight, X, allow_all_zero=sign < 0)
            batch = LinearStatistics.from_data(X, y, weights)
            if reset:
                current = LinearStatistics.empty(X.shape[1])
            else:
                current = self.sufficient_statistics_
            if sign < 0 and batch.n_rows > current.n_rows:
                raise ValueError(
                    f"Cannot forget {batch.n_rows} rows: only {current.n_rows} "
                    "rows with non-zero weight were learned."
                )
            statistics = current.merge(batch, sign)
            self._solve(statistics)
        return self

    def _solve(self, statistics):
        """Re-optimise the evidence from ``statistics`` and set the fitted attributes."""
        gram, Xty, yty = statistics.gram(self.fit_intercept)
        eigenvalues, eigenvectors = psd_eigh(gram, yty)
        problem = _EigenProblem(
            eigenvalues,
            eigenvectors,
            eigenvectors.T @ Xty,
            float(yty),
            statistics.weight_sum,
        )
        solution = self._evidence_fixed_point(problem, statistics)
        alpha, lambda_ = solution.alpha, solution.lambda_
        # precision = lambda I + alpha G = V diag(lambda + alpha s) V'
        precision = (eigenvectors * (alpha * eigenvalues + lambda_)) @ eigenvectors.T

        self.sufficient_statistics_ = statistics
        self.n_samples_seen_ = statistics.n_rows
        self.coef_ = solution.coef
        self.alpha_ = alpha
        self.lambda_ = lambda_
        self.n_iter_ = solution.n_iter
        self.scores_ = np.array(solution.scores)
        self.posterior_ = GaussianPosterior.from_precision(solution.coef, precision)
        d = eigenvalues.shape[0]
        self.X_scale_ = np.ones(d)
        if self.fit_intercept:
            self.X_offset_ = statistics.x_mean.copy()
            self.intercept_ = float(statistics.y_mean - self.X_offset_ @ self.coef_)
        else:
            self.X_offset_ = np.zeros(d)
            self.intercept_ = 0.0

    def _evidence_fixed_point(self, problem, statistics):
        """MacKay's fixed point for (alpha, lambda), restarted from the initial values.

        ``gamma = sum(alpha s / (lambda + alpha s))``,
        ``lambda <- (gamma + 2 lambda_1) / (|c|^2 + 2 lambda_2)``,
        ``alpha <- (W - gamma + 2 alpha_1) / (sse + 2 alpha_2)``
        (MacKay 1992, eqs. 4.24-4.25 with Gamma hyperpriors), stopping when
        the L1 change of the coefficients is below ``tol``.
        """
        eps = np.finfo(np.float64).eps
        W = statistics.weight_sum
        alpha = self.alpha_init
        if alpha is None:
            alpha = 1.0 / (statistics.yy / W + eps)
        lambda_ = 1.0 if self.lambda_init is None else self.lambda_init
        priors = (self.alpha_1, self.alpha_2, self.lambda_1, self.lambda_2)
        s = problem.eigenvalues
        scores = []
        coef_old = None
        for iteration in range(self.max_iter):
            coef, sse = problem.coef_and_sse(alpha, lambda_)
            if self.compute_score:
                scores.append(
                    problem.log_marginal_likelihood(alpha, lambda_, coef, sse, priors)
                )
            gamma = np.sum((alpha * s) / (lambda_ + alpha * s))
            lambda_ = (gamma + 2 * self.lambda_1) / (np.sum(coef**2) + 2 * self.lambda_2)
            alpha = (W - gamma + 2 * self.alpha_1) / (sse + 2 * self.alpha_2)
            if not (alpha > 0 and lambda_ > 0):
                raise ValueError(
                    f"The evidence fixed point left the valid region (alpha={alpha:.3g}, "
                    f"lambda={lambda_:.3g}): the total sample weight {W:.3g} is below "
                    f"the effective number of parameters {gamma:.3g}. Use larger "
                    "weights (weights count as repeated rows), or set alpha_1/alpha_2 "
                    "to give the noise precision an informative prior."
                )
            if iteration != 0 and np.sum(np.abs(coef_old - coef)) < self.tol:
                if self.verbose:
                    print("Convergence after ", str(iteration), " iterations")
                break
            coef_old = coef
        coef, sse = problem.coef_and_sse(alpha, lambda_)
        if self.compute_score:
            scores.append(
                problem.log_marginal_likelihood(alpha, lambda_, coef, sse, priors)
            )
        return EvidenceSolution(coef, float(alpha), float(lambda_), iteration + 1, scores)
