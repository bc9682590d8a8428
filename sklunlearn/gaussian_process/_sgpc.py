"""Sparse GP classification that forgets, as in VBU's sparse GP experiments."""

import warnings
from numbers import Integral, Real

import numpy as np
from sklearn.base import _fit_context, clone
from sklearn.gaussian_process.kernels import RBF, Kernel
from sklearn.gaussian_process.kernels import ConstantKernel as C
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.optimize import _check_optimize_result
from sklearn.utils.validation import check_is_fitted

from .._caller import caller_stacklevel
from ..exceptions import NotPositiveDefiniteError
from ..linear_model._classifier import _GaussianClassifier
from ..unlearning import (
    METHOD_NAMES,
    BernoulliLogit,
    GaussianPrior,
    InducingPointPredictor,
    Model,
)
from ..utils._blas import one_blas_thread
from ._bound import inducing_cholesky
from ._inducing import (
    coinciding_inducing_points,
    forgotten_inducing_points_message,
    resolve_inducing_points,
)
from ._sgpc_evidence import laplace_evidence
from ._sgpr import _inducing_posterior, minimize_within_bounds


class SparseGPClassifier(_GaussianClassifier):
    """Sparse GP classifier with approximate forgetting (VBU's model).

    The latent function is the projection ``f(x) = k_Z(x)' K_ZZ^-1 u`` of the
    inducing values ``u ~ N(0, K_ZZ)``, with a Bernoulli-logit likelihood and
    no conditional variance, as in the sparse GP classification experiments
    of Nguyen, Low & Jaillet (2020). In the whitened basis ``v = L^-1 u``
    (``K_ZZ = L L'``) this is Bayesian logistic regression on the features
    ``a(x) = L^-1 k_Z(x)`` with prior N(0, I): the model is the
    :class:`~sklunlearn.unlearning.InducingPointPredictor` with a
    :class:`~sklunlearn.unlearning.BernoulliLogit` likelihood, and it learns
    and forgets through the same path and the same registry of methods
    (:mod:`sklunlearn.unlearning`) as
    :class:`~sklunlearn.linear_model.BayesianLogisticRegression`, with a
    Gaussian q(u) throughout. More than two classes are fitted one-vs-rest,
    one q(u) per class, each forgotten by the same method.

    With ``optimizer``, the kernel hyperparameters are learned at fit by
    maximising the Laplace approximation of the log evidence (summed over
    the one-vs-rest problems, one kernel for all) with its analytic
    gradient, the inducing points fixed; by default the kernel is used as
    given.

    Parameters
    ----------
    kernel : kernel instance, default=None
        A :mod:`sklearn.gaussian_process.kernels` kernel, used as given.
        ``None`` means ``ConstantKernel(1.0) * RBF(1.0)``. With an
        ``optimizer``, its hyperparameters are the optimiser's start.
    optimizer : 'fmin_l_bfgs_b', callable or None, default=None
        Learn the kernel's (non-fixed) log-hyperparameters at fit by
        maximising the Laplace log evidence ``log p(y | v*) - v*'v* / 2 -
        log det(I + A' W A) / 2`` (whitened features ``A``, mode ``v*``; summed
        over the one-vs-rest problems), with its gradient from Rasmussen &
        Williams (2006), Algorithm 5.1, in the whitened inducing-point model.
        A callable is called as ``optimizer(obj_func, initial_theta,
        bounds)`` and returns ``(theta_opt, func_min)``, as for
        :class:`~sklearn.gaussian_process.GaussianProcessClassifier`. None
        keeps the kernel as given.
    n_restarts_optimizer : int, default=0
        Further optimiser runs from log-hyperparameters drawn uniformly
        within the kernel's bounds (which must then be finite), seeded by
        ``random_state``; the best run is kept.
    inducing_points : int or array-like of shape (n_inducing, n_features), default=100
        An int: that many weighted k-means++ centroids of the first training
        batch (or its distinct rows, when there are no more of them). An
        array: used as given.
    inference : {'laplace', 'vi'}, default='laplace'
        How q(u) is fitted: Laplace approximation or Gaussian variational
        inference.
    unlearning : str, default='laplace'
        Forgetting method of :meth:`partial_unfit`: ``'laplace'``, ``'eubo'``,
        ``'rkl'``, ``'uib'`` (see
        :class:`~sklunlearn.linear_model.BayesianLogisticRegression`), or the
        name of a method registered with
        :func:`sklunlearn.unlearning.register_method`.
    unlearning_lambda : float, default=0.0
        VBU's adjusted-likelihood threshold for 'eubo' and 'rkl'.
    n_samples : int, default=1000
        Monte Carlo samples ('rkl'; 'eubo' with ``unlearning_lambda > 0``).
    unlearning_beta : float, default=3.0
        Weight ``beta`` of the bottleneck term of ``unlearning='uib'`` (Han et
        al. 2024): ``beta * KL(q || dynamic prior)``, the dynamic prior being
        the previous stage's estimate of the remaining-data posterior. The
        stages divide out the fraction ``1 - (beta / (1 + beta))^stages`` of
        the forgotten rows' likelihood site along directions whose precision
        the remaining rows hold, and more where the forgotten rows held it
        (all of it where they held all of it); 0 divides out all of it (the
        'laplace' step).
    unlearning_stages : int, default=4
        Number of stages of ``unlearning='uib'``, each using the previous
        stage's result as its prior.
    lcodec_n_perturbations : int, default=1000
        Parameter of ``unlearning='lcodec'`` (L-CODEC, Mehta et al. 2022):
        number of perturbed copies of the forgotten rows used to estimate
        the conditional dependence of the loss on each parameter (at least 2).
    lcodec_scale : float, default=0.1
        Parameter of ``unlearning='lcodec'`` (L-CODEC, Mehta et al. 2022):
        standard deviation of the Gaussian perturbation of the rows.
    lcodec_max_features : int or None, default=None
        Parameter of ``unlearning='lcodec'`` (L-CODEC, Mehta et al. 2022):
        largest number of parameters selected for the Newton update; None
        means no cap beyond FOCI's own stopping rule.
    max_iter : int, default=100
        Maximum Newton or fixed-point iterations.
    tol : float, default=1e-10
        Convergence tolerance.
    random_state : int, RandomState instance or None, default=None
        Seeds the choice of inducing points, the optimiser's restarts and the
        Monte Carlo samples, and ``b`` of
        ``removal_noise`` (leave it None to keep ``b`` secret: a known seed
        gives it away).
    removal_noise : float or None, default=None
        Certified removal (Guo et al. 2020). A float is the standard
        deviation ``sigma`` of the random linear term ``b' theta``,
        ``b ~ N(0, sigma^2 I)`` drawn once per fit (per one-vs-rest problem)
        from ``random_state``, added to the negative log posterior (Guo et
        al.'s scaling: the summed loss plus ``b' theta``, i.e. the mean loss
        plus ``b' theta / n``); ``b`` is not stored, and ``certificate_``
        follows the guarantee. 0 fits the unperturbed posterior: no epsilon
        is certified, but ``certificate_`` still accumulates the residual
        bound. None: no ``certificate_`` and none of its cost (a Gram matrix
        pass at fit, a d x d eigenproblem per forget).
    removal_epsilon : float, default=1.0
        Epsilon of the certified-removal guarantee: removals are certified
        while the accumulated residual bound stays below
        ``removal_noise * removal_epsilon / c``, ``c = sqrt(2 log(1.5 /
        removal_delta))``. Only sets the budget (the fitted model does not
        depend on it), so it may be changed between forgets.
    removal_delta : float, default=1e-4
        Delta of the guarantee (in ``(0, 1)``); like ``removal_epsilon``.
    verbose : int, default=0
        Print the progress of fitting: each Newton iteration's log posterior
        and decrement and, with ``inference='vi'``, each variational
        iteration's objective and stationarity residual.
    ledger : bool, default=True
        Keep keyed 128-bit fingerprints of the rows learned (never the rows)
        in ``ledger_``, and refuse to forget rows that were never learned,
        were already forgotten, or would lose more weight than they have
        left. False trusts the caller (no fingerprints, no such refusals).

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Class labels.
    kernel_ : kernel instance
        The kernel: a clone of ``kernel``, with the learned hyperparameters
        when ``optimizer`` is set.
    log_marginal_likelihood_value_ : float
        Laplace log evidence of the rows of the last fit at ``kernel_``
        (summed over the one-vs-rest problems).
    inducing_points_ : ndarray of shape (n_inducing, n_features)
        Inducing locations ``Z``.
    whitened_posterior_ : GaussianPosterior or list of GaussianPosterior
        q(v) over the whitened inducing values (prior N(0, I)); one per class
        (one-vs-rest) when multiclass.
    posterior_ : GaussianPosterior or list of GaussianPosterior
        q(u) over the inducing values ``u = f(Z)`` (one per class when
        multiclass).
    class_count_ : ndarray of shape (n_classes,)
        Weighted number of rows learned per class.
    unlearning_diagnostics_ : Diagnostics
        Deprecated alias of ``forget_report_.diagnostics`` (kept for one
        release): the diagnostics record of the last :meth:`partial_unfit`
        (one per one-vs-rest problem when multiclass).
    unlearning_region_mass_ : float
        Mass of q(v) inside the adjusted-likelihood region (1.0 when
        ``unlearning_lambda=0``).
    certificate_ : RemovalCertificate
        State of the certified-removal guarantee (only when ``removal_noise``
        is not None): epsilon certified so far, delta, accumulated residual
        bound, budget, forgets, whether it holds and why not (see the
        certified-removal page of the docs).
    forget_report_ : ForgetReport
        What the last :meth:`partial_unfit` did.
    ledger_ : Ledger
        Fingerprints of the rows learned (``ledger=True`` only).
    model_ : Model
        The :class:`~sklunlearn.unlearning.Model` fitted: whitened
        inducing-point predictor, Bernoulli-logit likelihood, prior N(0, I).
    n_samples_seen_ : int
        Rows with non-zero weight learned and not forgotten.
    n_iter_ : int
        Iterations of the last fit, partial_fit or partial_unfit.
    n_features_in_ : int
        Number of features seen during :term:`fit`.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of features seen during :term:`fit`, when ``X`` has string
        feature names.

    See Also
    --------
    SparseGPRegressor : Sparse GP regression with exact forgetting.
    sklunlearn.linear_model.BayesianLogisticRegression : The same machinery on
        raw features.
    sklearn.gaussian_process.GaussianProcessClassifier : The exact GP
        classifier (Laplace), without forgetting.

    Notes
    -----
    Cost: ``fit`` is that of the logistic regression on ``n x m`` features
    (computed per row block, never stored), O(n m^2) per Newton step;
    ``partial_unfit`` of ``k`` rows is
    O(k m^2 + m^3) for 'laplace' (independent of ``n``).

    Forgetting is approximate (see the logistic regression): compare with
    retraining using :func:`sklunlearn.metrics.predictive_kl`. The inducing
    locations, when chosen by k-means, were computed from all rows, and so
    was ``kernel_`` when learned: the first :meth:`partial_unfit` after a
    fit with an ``optimizer`` or an int ``inducing_points`` warns about them.

    Fitting warns (UserWarning) when the fitted probabilities on the
    training rows are nearly constant while the labels are not: usually
    unscaled features, at which the kernel's length scales do not reach
    between rows and inducing points.

    References
    ----------
    Q. P. Nguyen, B. K. H. Low, P. Jaillet, Variational Bayesian Unlearning,
    NeurIPS 2020.

    Examples
    --------
    >>> from sklearn.datasets import make_moons
    >>> from sklunlearn.gaussian_process import SparseGPClassifier
    >>> X, y = make_moons(200, noise=0.2, random_state=0)
    >>> est = SparseGPClassifier(inducing_points=20, random_state=0).fit(X, y)
    >>> _ = est.partial_unfit(X[:20], y[:20])
    >>> est.predict_proba(X[:2]).shape
    (2, 2)
    """

    _parameter_constraints: dict = {
        "kernel": [None, Kernel],
        "optimizer": [StrOptions({"fmin_l_bfgs_b"}), callable, None],
        "n_restarts_optimizer": [Interval(Integral, 0, None, closed="left")],
        "inducing_points": [Interval(Integral, 1, None, closed="left"), "array-like"],
        "inference": [StrOptions({"laplace", "vi"})],
        # The registry's live set of names: methods registered later are accepted.
        "unlearning": [StrOptions(METHOD_NAMES)],
        "unlearning_lambda": [Interval(Real, 0, 1, closed="left")],
        "n_samples": [Interval(Integral, 2, None, closed="left")],
        "unlearning_beta": [Interval(Real, 0, None, closed="left")],
        "unlearning_stages": [Interval(Integral, 1, None, closed="left")],
        "lcodec_n_perturbations": [Interval(Integral, 2, None, closed="left")],
        "lcodec_scale": [Interval(Real, 0, None, closed="neither")],
        "lcodec_max_features": [None, Interval(Integral, 1, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="neither")],
        "random_state": ["random_state"],
        "removal_noise": [None, Interval(Real, 0, None, closed="left")],
        "removal_epsilon": [Interval(Real, 0, None, closed="neither")],
        "removal_delta": [Interval(Real, 0, 1, closed="neither")],
        "verbose": ["verbose"],
        "ledger": ["boolean"],
    }

    _model_parameters = (
        "kernel",
        "optimizer",
        "n_restarts_optimizer",
        "inducing_points",
        "inference",
        "removal_noise",
    )

    def __init__(
        self,
        *,
        kernel=None,
        optimizer=None,
        n_restarts_optimizer=0,
        inducing_points=100,
        inference="laplace",
        unlearning="laplace",
        unlearning_lambda=0.0,
        n_samples=1000,
        unlearning_beta=3.0,
        unlearning_stages=4,
        lcodec_n_perturbations=1000,
        lcodec_scale=0.1,
        lcodec_max_features=None,
        max_iter=100,
        tol=1e-10,
        random_state=None,
        removal_noise=None,
        removal_epsilon=1.0,
        removal_delta=1e-4,
        verbose=0,
        ledger=True,
    ):
        self.kernel = kernel
        self.optimizer = optimizer
        self.n_restarts_optimizer = n_restarts_optimizer
        self.inducing_points = inducing_points
        self.inference = inference
        self.unlearning = unlearning
        self.unlearning_lambda = unlearning_lambda
        self.n_samples = n_samples
        self.unlearning_beta = unlearning_beta
        self.unlearning_stages = unlearning_stages
        self.lcodec_n_perturbations = lcodec_n_perturbations
        self.lcodec_scale = lcodec_scale
        self.lcodec_max_features = lcodec_max_features
        self.max_iter = max_iter
        self.tol = tol
        self.random_state = random_state
        self.removal_noise = removal_noise
        self.removal_epsilon = removal_epsilon
        self.removal_delta = removal_delta
        self.verbose = verbose
        self.ledger = ledger

    # ------------------------------------------------------------ public API
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Choose the inducing points, learn the kernel (with ``optimizer``), fit q(u).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data.
        y : array-like of shape (n_samples,)
            Class labels.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights; a weight of 2 counts the row twice.

        Returns
        -------
        self : object
            Fitted estimator.
        """
        return self._learn(X, y, sample_weight, reset=True)

    def partial_fit(self, X, y, classes=None, sample_weight=None):
        """Add rows (online Laplace/variational update; fits if not fitted yet).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
        classes : array-like of shape (n_classes,), default=None
            All classes, required on the first call; a later call may pass
            them again, and a ValueError is raised when they differ from
            ``classes_``.
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        self : object
        """
        self._validate_params_again()
        return self._learn(
            X,
            y,
            sample_weight,
            reset="whitened_posterior_" not in self.__dict__,
            classes=classes,
            partial=True,
        )

    def partial_unfit(self, X, y, sample_weight=None):
        """Forget rows with the method chosen by ``unlearning``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Rows to forget, as they were learned.
        y : array-like of shape (n_samples,)
            Their labels.
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
            On NaN/inf, wrong features, unknown labels, more rows or more
            weight than were learned, or values so large that the update
            overflows.

        Warns
        -----
        UnlearningWarning
            When a forgotten row is stored as an inducing point, at the first
            forget after a fit that learned ``kernel_`` or chose
            ``inducing_points_`` by k-means, or when the
            forgetting method's result is likely worse than doing nothing.
        """
        return self._forget(X, y, sample_weight)

    @property
    def posterior_(self):
        """q(u) over the inducing values ``u = f(Z)`` (a list when multiclass)."""
        check_is_fitted(self, "whitened_posterior_")
        posteriors = [
            _inducing_posterior(p.mean, p.precision_cholesky, self._inducing_factor)
            for p in self._posterior_list()
        ]
        return posteriors[0] if len(posteriors) == 1 else posteriors

    # ------------------------------------------------------------ internals
    def _start(self, X, weights):
        """Inducing points, kernel, and the prior N(0, I) over q(v) of each problem."""
        # The labels of the fit, set by _update in the same call (none from dask rows).
        self._choose_model(X, self.__dict__.pop("_fit_labels", None), weights)
        predictor = InducingPointPredictor(
            self.kernel_, self.inducing_points_, self._inducing_factor
        )
        prior = GaussianPrior(1.0, self.inducing_points_.shape[0])
        self.model_ = Model(predictor, BernoulliLogit(), prior)
        self._set_posteriors([prior.posterior()] * self._n_problems())
        self.class_count_ = np.zeros(self.classes_.shape[0])
        self.n_samples_seen_ = 0

    def _choose_model(self, X, labels, weights):
        """Inducing points from the first batch, and the kernel (learned with an
        ``optimizer``)."""
        kernel = C(1.0) * RBF(1.0) if self.kernel is None else clone(self.kernel)
        if labels is None and isinstance(self.inducing_points, Integral):
            raise NotImplementedError(
                "Rows in a dask collection need inducing_points as an array of "
                "locations: choosing them by k-means needs the rows in memory. Choose "
                "them on a sample (e.g. sklunlearn.gaussian_process.SparseGPRegressor "
                "on dask keeps its inducing_points_) or compute the rows (X.compute())."
            )
        self.inducing_points_ = np.array(
            resolve_inducing_points(self, X, weights), dtype=np.float64, copy=True
        )
        if self.optimizer is not None and kernel.n_dims > 0:
            if labels is None:
                raise NotImplementedError(
                    "Rows in a dask collection support optimizer=None only. Compute "
                    "the rows (X.compute()) or learn the kernel on a sample in memory "
                    "and pass it with optimizer=None."
                )
            kernel = self._optimize(kernel, X, self._targets(labels), weights)
        self.kernel_ = kernel
        self._inducing_factor = inducing_cholesky(self.kernel_, self.inducing_points_)
        self._warned_about_hyperparameters = False

    def _targets(self, labels):
        """The {0, 1} target vector of each one-vs-rest problem (one when binary)."""
        classes = [1] if self.classes_.shape[0] == 2 else range(self.classes_.shape[0])
        return [(labels == c).astype(np.float64) for c in classes]

    def _optimize(self, kernel, X, targets, weights):
        """Maximise the Laplace log evidence over ``kernel.theta`` (``Z`` fixed).

        One kernel for all one-vs-rest problems: the sum of their evidences.
        """
        Z = self.inducing_points_
        # One jitter for the whole run, so the evidence does not jump where K_ZZ
        # would need a larger one.
        jitter = inducing_cholesky(kernel, Z).jitter
        options = {"max_iter": self.max_iter, "tol": self.tol}

        def objective(theta):
            try:
                evidence = laplace_evidence(
                    kernel.clone_with_theta(theta),
                    Z,
                    X,
                    targets,
                    weights,
                    jitter,
                    **options,
                )
            except (NotPositiveDefiniteError, np.linalg.LinAlgError):
                return np.inf, np.zeros_like(theta)
            return -evidence.value, -evidence.gradient

        bounds = kernel.bounds
        scale = float(weights.sum())
        runs = [self._run_optimizer(objective, kernel.theta, bounds, scale)]
        if self.n_restarts_optimizer > 0:
            if not np.isfinite(bounds).all():
                raise ValueError(
                    "Multiple optimizer restarts (n_restarts_optimizer>0) require "
                    "that all bounds are finite."
                )
            rng = check_random_state(self.random_state)
            for _ in range(self.n_restarts_optimizer):
                start = rng.uniform(bounds[:, 0], bounds[:, 1])
                runs.append(self._run_optimizer(objective, start, bounds, scale))
        theta = min(runs, key=lambda run: run[1])[0]
        return kernel.clone_with_theta(theta)

    def _run_optimizer(self, objective, initial, bounds, scale):
        """``(theta, value)`` of one run, as GaussianProcessClassifier's optimizer;
        ``scale`` is the rows' total weight (see :func:`minimize_within_bounds`)."""
        if self.optimizer == "fmin_l_bfgs_b":
            result = minimize_within_bounds(objective, initial, bounds, scale)
            _check_optimize_result("lbfgs", result)
            return result.x, result.fun

        def obj_func(theta, eval_gradient=True):
            value, gradient = objective(theta)
            return (value, gradient) if eval_gradient else value

        return self.optimizer(obj_func, initial, bounds)

    def _posterior_list(self):
        posterior = self.whitened_posterior_
        return list(posterior) if isinstance(posterior, list) else [posterior]

    def _set_posteriors(self, posteriors):
        # Drops the pending forget requests' state (``_update`` sets it again
        # after a forget that keeps it).
        self.__dict__.pop("_pending_forgets", None)
        posteriors = list(posteriors)
        self.whitened_posterior_ = posteriors[0] if len(posteriors) == 1 else posteriors

    def _update(self, X, labels, weights, *, sign, reset):
        """The shared update, the fit's evidence and flatness check, and the
        warnings of a forget about what still carries the rows."""
        if reset:
            self._fit_labels = labels  # read and removed by _start, in the same call
        # As SparseGPRegressor's: m-wide products between multi-threaded Numba kernels.
        with one_blas_thread():
            outcome = super()._update(X, labels, weights, sign=sign, reset=reset)
            if reset:
                self._check_evidence(X, labels, weights)
        if sign > 0:
            return outcome
        messages = [
            forgotten_inducing_points_message(
                X[weights > 0],
                self.inducing_points_,
                "Fit again on the remaining rows with other inducing_points.",
            )
        ]
        messages.extend(self._learned_from_forgotten_rows())
        messages = tuple(message for message in messages if message is not None)
        return outcome._replace(warnings=(*outcome.warnings, *messages))

    def _update_dask(self, rows, *, sign, reset):
        """:meth:`_update` for rows on a cluster, with a forget's warnings about
        what still carries the rows (one more pass: which inducing points are
        forgotten rows). A forget that gathers its rows runs :meth:`_update`."""
        from .._dask._newton import _forgets_on_the_cluster

        outcome = super()._update_dask(rows, sign=sign, reset=reset)
        if sign > 0 or not _forgets_on_the_cluster(self):
            return outcome
        Z = self.inducing_points_
        hits = rows.reduce(_chunk_forgotten_inducing_points, Z)
        messages = [
            forgotten_inducing_points_message(
                Z[np.asarray(hits) > 0],
                Z,
                "Fit again on the remaining rows with other inducing_points.",
            ),
            *self._learned_from_forgotten_rows(),
        ]
        messages = tuple(message for message in messages if message is not None)
        return outcome._replace(warnings=(*outcome.warnings, *messages))

    def _learned_from_forgotten_rows(self):
        """Texts of the warnings about what fit learned from all rows, once per fit."""
        if self._warned_about_hyperparameters:
            return []
        learned = []
        if self.optimizer is not None:
            learned.append(_LEARNED_KERNEL)
        if isinstance(self.inducing_points, Integral):
            learned.append(_CHOSEN_INDUCING_POINTS)
        self._warned_about_hyperparameters = bool(learned)
        return learned

    def _check_evidence(self, X, labels, weights):
        """Set ``log_marginal_likelihood_value_``; warn when the fit is flat.

        The fitted means are the modes the evidence needs for a Laplace fit
        of the unperturbed posterior; otherwise it finds its own.
        """
        exact_modes = self.inference == "laplace" and self.removal_noise is None
        evidence = laplace_evidence(
            self.kernel_,
            self.inducing_points_,
            X,
            self._targets(labels),
            weights,
            self._inducing_factor.jitter,
            modes=[p.mean for p in self._posterior_list()] if exact_modes else None,
            with_gradient=False,
            max_iter=self.max_iter,
            tol=self.tol,
        )
        self.log_marginal_likelihood_value_ = evidence.value
        targets = self._targets(labels)
        keep = weights > 0
        for spread, t, label in zip(
            evidence.spreads, targets, self.classes_[-len(targets) :], strict=True
        ):
            rate = np.average(t[keep], weights=weights[keep])
            label_spread = np.sqrt(rate * (1.0 - rate))
            if label_spread > 0 and spread < _FLAT_RATIO * label_spread:
                problem = (
                    "" if len(targets) == 1 else f" (class {label!r} against the rest)"
                )
                warnings.warn(
                    _FLAT_MESSAGE.format(problem, spread, label_spread, self.kernel_),
                    UserWarning,
                    stacklevel=caller_stacklevel(),
                )
                return


# A fit is flat when its probabilities on the training rows spread less than
# this fraction of the labels' own standard deviation.
_FLAT_RATIO = 0.05
_FLAT_MESSAGE = (
    "The fitted latent function is nearly flat{}: the predicted probabilities on the "
    "training rows have standard deviation {:.3g} while the labels have {:.3g}, so "
    "every row gets about the base rate. Usually the kernel {} does not fit the "
    "features' scale (its length scales far smaller or larger than the distances "
    "between rows and inducing points): standardise the features (e.g. "
    "sklearn.preprocessing.StandardScaler), start the kernel at length scales of the "
    "features' size, or learn it (optimizer='fmin_l_bfgs_b'). Otherwise the features "
    "do not predict the labels."
)
_LEARNED_KERNEL = (
    "kernel_ was learned (optimizer) from data that included the forgotten rows and "
    "still carries information about them (q(u) does not). Fit again on the remaining "
    "rows to re-learn it."
)
_CHOSEN_INDUCING_POINTS = (
    "inducing_points_ were chosen (k-means++) from data that included the forgotten "
    "rows and still carry information about them (q(u) does not). Fit again on the "
    "remaining rows to choose new ones."
)


def _chunk_forgotten_inducing_points(X, labels, weights, Z):
    """Which inducing points equal one of the chunk's rows with weight (0 or 1 each)."""
    hits = np.zeros(Z.shape[0], dtype=np.int64)
    hits[coinciding_inducing_points(X[weights > 0], Z)] = 1
    return hits
