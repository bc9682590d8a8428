"""Sparse GP binary classification that forgets, as in VBU's sparse GP experiments."""

from numbers import Integral, Real

import numpy as np
from sklearn.base import _fit_context, clone
from sklearn.gaussian_process.kernels import RBF, Kernel
from sklearn.gaussian_process.kernels import ConstantKernel as C
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from ..linear_model._classifier import _GaussianClassifier
from ..unlearning import (
    METHOD_NAMES,
    BernoulliLogit,
    GaussianPrior,
    InducingPointPredictor,
    Model,
)
from ._bound import inducing_cholesky
from ._inducing import forgotten_inducing_points_message, resolve_inducing_points
from ._sgpr import _inducing_posterior


class SparseGPClassifier(_GaussianClassifier):
    """Sparse GP binary classifier with approximate forgetting (VBU's model).

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
    Gaussian q(u) throughout.

    Kernel hyperparameters are not learned (there is no collapsed bound for a
    Bernoulli likelihood); pass a kernel with good values, e.g. from
    :class:`SparseGPRegressor` or
    :class:`~sklearn.gaussian_process.GaussianProcessClassifier`.

    Parameters
    ----------
    kernel : kernel instance, default=None
        A :mod:`sklearn.gaussian_process.kernels` kernel, used as given.
        ``None`` means ``ConstantKernel(1.0) * RBF(1.0)``.
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
    unlearning_beta : float, default=2.0
        Weight ``beta`` of the bottleneck term of ``unlearning='uib'`` (Han et
        al. 2024): ``beta * KL(q || dynamic prior)``, the dynamic prior being
        the previous stage's estimate of the remaining-data posterior. The
        stages divide out the fraction ``1 - (beta / (1 + beta))^stages`` of
        the forgotten rows' likelihood site; 0 divides out all of it (the
        'laplace' step).
    unlearning_stages : int, default=4
        Number of stages of ``unlearning='uib'``, each using the previous
        stage's result as its prior.
    lcodec_n_perturbations : int, default=1000
        Parameter of ``unlearning='lcodec'`` (L-CODEC, Mehta et al. 2022):
        number of perturbed copies of the forgotten rows used to estimate
        the conditional dependence of the loss on each parameter.
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
        Seeds the choice of inducing points and the Monte Carlo samples, and ``b`` of
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
    ledger : bool, default=True
        Keep keyed 128-bit fingerprints of the rows learned (never the rows)
        in ``ledger_``, and refuse to forget rows that were never learned,
        were already forgotten, or would lose more weight than they have
        left. False trusts the caller (no fingerprints, no such refusals).

    Attributes
    ----------
    classes_ : ndarray of shape (2,)
        Class labels.
    kernel_ : kernel instance
        The kernel (a clone of ``kernel``).
    inducing_points_ : ndarray of shape (n_inducing, n_features)
        Inducing locations ``Z``.
    whitened_posterior_ : GaussianPosterior
        q(v) over the whitened inducing values (prior N(0, I)).
    posterior_ : GaussianPosterior
        q(u) over the inducing values ``u = f(Z)``.
    class_count_ : ndarray of shape (2,)
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
    locations, when chosen by k-means, were computed from all rows.

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
        "inducing_points": [Interval(Integral, 1, None, closed="left"), "array-like"],
        "inference": [StrOptions({"laplace", "vi"})],
        # The registry's live set of names: methods registered later are accepted.
        "unlearning": [StrOptions(METHOD_NAMES)],
        "unlearning_lambda": [Interval(Real, 0, 1, closed="left")],
        "n_samples": [Interval(Integral, 2, None, closed="left")],
        "unlearning_beta": [Interval(Real, 0, None, closed="left")],
        "unlearning_stages": [Interval(Integral, 1, None, closed="left")],
        "lcodec_n_perturbations": [Interval(Integral, 1, None, closed="left")],
        "lcodec_scale": [Interval(Real, 0, None, closed="neither")],
        "lcodec_max_features": [None, Interval(Integral, 1, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="neither")],
        "random_state": ["random_state"],
        "removal_noise": [None, Interval(Real, 0, None, closed="left")],
        "removal_epsilon": [Interval(Real, 0, None, closed="neither")],
        "removal_delta": [Interval(Real, 0, 1, closed="neither")],
        "ledger": ["boolean"],
    }

    _model_parameters = ("kernel", "inducing_points", "inference", "removal_noise")

    def __init__(
        self,
        *,
        kernel=None,
        inducing_points=100,
        inference="laplace",
        unlearning="laplace",
        unlearning_lambda=0.0,
        n_samples=1000,
        unlearning_beta=2.0,
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
        ledger=True,
    ):
        self.kernel = kernel
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
        self.ledger = ledger

    # ------------------------------------------------------------ public API
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Choose the inducing points and fit q(u).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data.
        y : array-like of shape (n_samples,)
            Binary class labels.
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
        classes : array-like of shape (2,), default=None
            Both classes, required on the first call, ignored afterwards.
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        self : object
        """
        self._validate_params()  # parameters may have been changed since the last call
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
            When a forgotten row is stored as an inducing point, or the
            forgetting method's result is likely worse than doing nothing.
        """
        return self._forget(X, y, sample_weight)

    @property
    def posterior_(self):
        """q(u) over the inducing values ``u = f(Z)``."""
        check_is_fitted(self, "whitened_posterior_")
        posterior = self.whitened_posterior_
        return _inducing_posterior(
            posterior.mean, posterior.precision_cholesky, self._inducing_factor
        )

    # ------------------------------------------------------------ internals
    def _check_classes(self, classes):
        super()._check_classes(classes)
        if classes.shape[0] > 2:
            raise ValueError(_BINARY_ONLY)

    def _check_labels(self, y):
        if np.unique(y).shape[0] > 2:
            raise ValueError(_BINARY_ONLY)
        return super()._check_labels(y)

    def _start(self, X, weights):
        """Inducing points from the first batch, and the prior N(0, I) over q(v)."""
        self.kernel_ = C(1.0) * RBF(1.0) if self.kernel is None else clone(self.kernel)
        self.inducing_points_ = np.array(
            resolve_inducing_points(self, X, weights), dtype=np.float64, copy=True
        )
        self._inducing_factor = inducing_cholesky(self.kernel_, self.inducing_points_)
        predictor = InducingPointPredictor(
            self.kernel_, self.inducing_points_, self._inducing_factor
        )
        prior = GaussianPrior(1.0, self.inducing_points_.shape[0])
        self.model_ = Model(predictor, BernoulliLogit(), prior)
        self._set_posteriors([prior.posterior()])
        self.class_count_ = np.zeros(self.classes_.shape[0])
        self.n_samples_seen_ = 0

    def _posterior_list(self):
        return [self.whitened_posterior_]

    def _set_posteriors(self, posteriors):
        # Drops the pending forget requests' state (``_update`` sets it again
        # after a forget that keeps it).
        self.__dict__.pop("_pending_forgets", None)
        (self.whitened_posterior_,) = posteriors

    def _update(self, X, labels, weights, *, sign, reset):
        """The shared update, and a warning for forgotten rows kept as inducing points."""
        outcome = super()._update(X, labels, weights, sign=sign, reset=reset)
        if sign > 0:
            return outcome
        message = forgotten_inducing_points_message(
            X[weights > 0],
            self.inducing_points_,
            "Fit again on the remaining rows with other inducing_points.",
        )
        if message is None:
            return outcome
        return outcome._replace(warnings=(*outcome.warnings, message))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = False
        return tags


_BINARY_ONLY = (
    "Only binary classification is supported by SparseGPClassifier: y must hold "
    "at most two classes."
)
