"""Sparse Gaussian process regression (Titsias 2009) that forgets rows exactly."""

import warnings
from numbers import Integral, Real

import numpy as np
import scipy.optimize
from scipy import linalg
from sklearn.base import BaseEstimator, RegressorMixin, _fit_context, clone
from sklearn.gaussian_process.kernels import RBF, Kernel
from sklearn.gaussian_process.kernels import ConstantKernel as C
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.optimize import _check_optimize_result
from sklearn.utils.validation import check_is_fitted, validate_data

from ..base import UnlearningMixin, check_weights, validate_rows
from ..exceptions import NotPositiveDefiniteError, UnlearningWarning
from ..posterior import GaussianPosterior
from ._bound import (
    SparseStatistics,
    bound_gradient,
    inducing_cholesky,
    optimal_posterior,
    target_normalization,
    whitened_features,
)
from ._inducing import resolve_inducing_points, warn_if_inducing_points_forgotten

# Bounds of the noise variance while maximising the bound.
_NOISE_BOUNDS = (1e-8, 1e8)


def _inducing_posterior(mean_v, R_v, factor):
    """q(u) from q(v) with ``u = L v``: mean ``L mean_v``, precision factor from QR.

    The precision of ``u`` is ``(R_v L^-1)' (R_v L^-1)``; the R factor of a QR
    decomposition of ``R_v L^-1`` is an upper Cholesky factor of it, computed
    without forming the (possibly ill-conditioned) precision.
    """
    R = linalg.qr(R_v @ factor.inverse, mode="r")[0]
    signs = np.where(np.diag(R) < 0, -1.0, 1.0)
    return GaussianPosterior(factor.cholesky @ mean_v, signs[:, None] * R)


def _check_remaining(statistics, rtol=1e-8):
    """Refuse statistics no set of rows can have (what forgetting unlearned rows gives).

    ``sum w a a'`` must be positive semi-definite and the Nystrom residual
    ``sum w (k_ii - a_i'a_i)`` non-negative. Rows never learned are not always
    detected: only when removing them leaves such impossible statistics.
    """
    aa = statistics.aa
    scale = max(float(np.max(np.diag(aa), initial=0.0)), 1.0)
    residual = statistics.kdiag - np.trace(aa)
    try:
        linalg.cholesky(aa + rtol * scale * np.eye(aa.shape[0]), lower=False)
    except linalg.LinAlgError:
        residual = -np.inf
    if residual < -rtol * max(abs(statistics.kdiag), 1.0):
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
        of them than that. An array: used as given. Inducing locations are
        never optimised.
    noise_variance : float, default=None
        Variance of the Gaussian noise (in the units of the normalised
        targets when ``normalize_y``). The starting value of its optimisation
        (1.0 when None); kept fixed when ``optimizer=None``.
    optimizer : 'fmin_l_bfgs_b', callable or None, default='fmin_l_bfgs_b'
        As in :class:`~sklearn.gaussian_process.GaussianProcessRegressor`: a
        callable ``optimizer(obj_func, initial_theta, bounds)`` returning
        ``(theta_opt, func_min)``, where ``theta`` is ``kernel.theta`` followed
        by ``log(noise_variance)``. None keeps the kernel and noise as given.
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
        The weighted sums the posterior is computed from; they merge with
        ``merge(other, sign)``.
    n_samples_seen_ : int
        Number of rows with non-zero weight learned and not forgotten.
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
    two such passes. ``partial_fit`` / ``partial_unfit`` of ``k`` rows cost
    O(k m^2 + m^3), independent of ``n``.

    What is not forgotten: the kernel hyperparameters, the noise variance
    and the inducing locations (k-means centroids) were learned on all rows.
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
    }

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
    ):
        self.kernel = kernel
        self.inducing_points = inducing_points
        self.noise_variance = noise_variance
        self.optimizer = optimizer
        self.n_restarts_optimizer = n_restarts_optimizer
        self.normalize_y = normalize_y
        self.random_state = random_state

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
        with self._atomic():
            X, y = validate_data(self, X, y, reset=True, dtype=np.float64, y_numeric=True)
            weights = check_weights(sample_weight, X)
            self._learn(X, y, weights, inducing_points=None)
        return self

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
        if not hasattr(self, "sufficient_statistics_"):
            self._validate_params()
            return self.fit(X, y, sample_weight)
        return self._change(X, y, sample_weight, sign=1.0)

    def partial_unfit(self, X, y, sample_weight=None):
        """Forget rows: q(u) becomes the one fitted without them.

        Subtracts the rows' weighted statistics; exact up to floating-point
        round-off at the current hyperparameters and inducing points, which
        are not changed (see :meth:`reoptimize`). Forgetting a row with weight
        ``w`` equals having learned it with its weight reduced by ``w``.

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
            learned from the data; and whenever a forgotten row is stored as
            an inducing point.

        Raises
        ------
        NotFittedError
            When nothing was learned yet.
        ValueError
            On NaN/inf, a wrong number of features or different feature names,
            more rows or more weight than were learned.
        NotPositiveDefiniteError
            When the remaining statistics are impossible, i.e. the rows were
            not all part of the training data.
        """
        check_is_fitted(self)
        return self._change(X, y, sample_weight, sign=-1.0)

    def reoptimize(self, X, y, sample_weight=None, keep_inducing_points=True):
        """Re-learn the hyperparameters on rows you supply (e.g. the remaining ones).

        After :meth:`partial_unfit`, ``kernel_`` and ``noise_variance_`` still
        reflect the forgotten rows. This re-runs the hyperparameter
        optimisation from the constructor's starting values (not from the
        current values, which carry the forgotten rows) on ``X, y`` and
        refits q(u) on them, keeping ``inducing_points_`` by default. With
        ``keep_inducing_points=False`` it is :meth:`fit`.

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
        self._validate_params()
        with self._atomic():
            X, y = validate_data(self, X, y, reset=False, dtype=np.float64, y_numeric=True)
            weights = check_weights(sample_weight, X)
            kept = self.inducing_points_ if keep_inducing_points else None
            self._learn(X, y, weights, inducing_points=kept)
        return self

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
        """
        if return_std and return_cov:
            raise RuntimeError(
                "At most one of return_std or return_cov can be requested."
            )
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=np.float64)
        Z, kernel = self.inducing_points_, self.kernel_
        A = whitened_features(kernel, Z, self._inducing_factor, X)
        posterior = self.whitened_posterior_
        mean = A.T @ posterior.mean * self.y_train_std_ + self.y_train_mean_
        if not (return_std or return_cov):
            return mean
        B = posterior.whiten(A.T)
        scale = self.y_train_std_**2
        if return_cov:
            cov = kernel(X) - A.T @ A + B.T @ B
            return mean, cov * scale
        variance = (
            kernel.diag(X) - np.einsum("ij,ij->j", A, A) + np.einsum("ij,ij->j", B, B)
        )
        return mean, np.sqrt(np.clip(variance, 0.0, None) * scale)

    def sample_y(self, X, n_samples=1, random_state=0):
        """Draw functions from the posterior at ``X``.

        Returns
        -------
        y_samples : ndarray of shape (n_samples_X, n_samples)
        """
        rng = check_random_state(random_state)
        mean, cov = self.predict(X, return_cov=True)
        return rng.multivariate_normal(mean, cov, n_samples).T

    def log_marginal_likelihood(self, theta=None, eval_gradient=False, X=None, y=None,
                                sample_weight=None):
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
        X, y = validate_data(self, X, y, reset=False, dtype=np.float64, y_numeric=True)
        weights = check_weights(sample_weight, X)
        if theta is None:
            theta = np.append(self.kernel_.theta, np.log(self.noise_variance_))
        objective = self._objective(X, y, weights, self.inducing_points_, self.kernel_)
        value, gradient = objective(np.asarray(theta, dtype=np.float64))
        if eval_gradient:
            return -value, -gradient
        return -value

    # ------------------------------------------------------------ internals
    def _learn(self, X, y, weights, inducing_points):
        """Choose ``Z`` (unless given), learn the hyperparameters, fit q(u)."""
        if inducing_points is None:
            inducing_points = resolve_inducing_points(self, X, weights)
        kernel = (
            C(1.0) * RBF(1.0) if self.kernel is None else clone(self.kernel)
        )
        noise_variance = 1.0 if self.noise_variance is None else float(self.noise_variance)
        if self.optimizer is not None:
            kernel, noise_variance = self._optimize(
                X, y, weights, inducing_points, kernel, noise_variance
            )
        self.kernel_ = kernel
        self.inducing_points_ = np.array(inducing_points, dtype=np.float64, copy=True)
        self.noise_variance_ = float(noise_variance)
        self._inducing_factor = inducing_cholesky(kernel, self.inducing_points_)
        self._warned_about_hyperparameters = False
        empty = SparseStatistics.empty(inducing_points.shape[0])
        self._accumulate(X, y, weights, 1.0, empty)

    def _change(self, X, y, sample_weight, sign):
        """The one path of partial_fit (+1) and partial_unfit (-1)."""
        with self._atomic():
            X, y = validate_rows(self, X, y, y_numeric=True)
            weights = check_weights(sample_weight, X, allow_all_zero=sign < 0)
            self._accumulate(X, y, weights, sign, self.sufficient_statistics_)
            if sign < 0:
                self._warn_about_what_remains(X[weights > 0])
        return self

    def _accumulate(self, X, y, weights, sign, current):
        """Add (sign=+1) or subtract (-1) the rows' statistics and re-solve q(u)."""
        Z, kernel = self.inducing_points_, self.kernel_
        batch = SparseStatistics.from_data(kernel, Z, self._inducing_factor, X, y, weights)
        if sign < 0 and batch.n_rows > current.n_rows:
            raise ValueError(
                f"Cannot forget {batch.n_rows} rows: only {current.n_rows} rows "
                "with non-zero weight were learned."
            )
        statistics = current.merge(batch, sign)
        if sign < 0:
            _check_remaining(statistics)
        posterior = optimal_posterior(statistics, self.noise_variance_, self.normalize_y)
        self.sufficient_statistics_ = statistics
        self.n_samples_seen_ = statistics.n_rows
        self.y_train_mean_, self.y_train_std_ = statistics.normalization(self.normalize_y)
        self.whitened_posterior_ = GaussianPosterior.from_cholesky(
            posterior.mean, posterior.precision_cholesky
        )
        self.log_marginal_likelihood_value_ = posterior.bound

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
        return _inducing_posterior(posterior.mean, posterior.precision_cholesky,
                                   self._inducing_factor)

    def _warn_about_what_remains(self, X_forgotten):
        learned = []
        if self.optimizer is not None:
            learned.append("kernel_ and noise_variance_")
        if isinstance(self.inducing_points, Integral):
            learned.append("inducing_points_")
        if learned and not self._warned_about_hyperparameters:
            self._warned_about_hyperparameters = True
            warnings.warn(
                f"{' and '.join(learned)} were learned from data that included the "
                "forgotten rows and still carry information about them (q(u) does "
                "not). Call reoptimize(X_remaining, y_remaining) to re-learn them on "
                "the remaining rows.",
                UnlearningWarning,
                stacklevel=3,
            )
        if isinstance(self.inducing_points, Integral):
            advice = ("Call reoptimize(X_remaining, y_remaining, "
                      "keep_inducing_points=False) to choose new ones.")
        else:
            advice = ("Pass other inducing_points (set_params) and fit on the "
                      "remaining rows.")
        warn_if_inducing_points_forgotten(X_forgotten, self.inducing_points_, advice)

    def _objective(self, X, y, weights, Z, kernel):
        """``theta -> (-bound, -gradient)`` with ``theta = [kernel.theta, log s2]``."""
        y_mean = weights @ y / weights.sum()
        mean, std = target_normalization(
            y_mean, weights @ (y - y_mean) ** 2, weights.sum(), self.normalize_y
        )
        # The bound is that of the model's targets t (normalised with normalize_y).
        t = (y - mean) / std

        def objective(theta):
            candidate = kernel.clone_with_theta(theta[:-1])
            s2 = float(np.exp(theta[-1]))
            try:
                factor = inducing_cholesky(candidate, Z)
                statistics = SparseStatistics.from_data(candidate, Z, factor, X, t, weights)
                posterior = optimal_posterior(statistics, s2, False)
                gradient = bound_gradient(candidate, Z, factor, X, t, weights,
                                          statistics, posterior, s2, False)
            except np.linalg.LinAlgError:
                return np.inf, np.zeros_like(theta)
            return -posterior.bound, -gradient

        return objective

    def _optimize(self, X, y, weights, Z, kernel, noise_variance):
        """Maximise the collapsed bound over ``[kernel.theta, log s2]``."""
        objective = self._objective(X, y, weights, Z, kernel)
        bounds = np.vstack([kernel.bounds.reshape(-1, 2), np.log(_NOISE_BOUNDS)])
        initial = np.append(kernel.theta, np.log(noise_variance))
        runs = [self._run_optimizer(objective, initial, bounds)]
        if self.n_restarts_optimizer > 0:
            if not np.isfinite(bounds).all():
                raise ValueError(
                    "Multiple optimizer restarts (n_restarts_optimizer>0) require "
                    "that all bounds are finite."
                )
            rng = check_random_state(self.random_state)
            for _ in range(self.n_restarts_optimizer):
                start = rng.uniform(bounds[:, 0], bounds[:, 1])
                runs.append(self._run_optimizer(objective, start, bounds))
        theta = min(runs, key=lambda run: run[1])[0]
        return kernel.clone_with_theta(theta[:-1]), float(np.exp(theta[-1]))

    def _run_optimizer(self, objective, initial, bounds):
        if self.optimizer == "fmin_l_bfgs_b":
            result = scipy.optimize.minimize(
                objective, initial, method="L-BFGS-B", jac=True, bounds=bounds
            )
            _check_optimize_result("lbfgs", result)
            return result.x, result.fun

        def obj_func(theta, eval_gradient=True):
            value, gradient = objective(theta)
            return (value, gradient) if eval_gradient else value

        return self.optimizer(obj_func, initial, bounds)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        return tags
