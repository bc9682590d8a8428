"""Bayesian logistic regression that forgets (Laplace, EUBO, reverse KL, UIB)."""

import contextlib
from numbers import Integral, Real

import numpy as np
from sklearn.base import _fit_context
from sklearn.utils._param_validation import Interval, StrOptions

from ..unlearning import (
    METHOD_NAMES,
    BernoulliLogit,
    GaussianPrior,
    LinearPredictor,
    Model,
)
from ..utils._blas import one_blas_thread
from ._classifier import _GaussianClassifier

__all__ = ["BayesianLogisticRegression"]


class BayesianLogisticRegression(_GaussianClassifier):
    """Bayesian logistic regression with approximate forgetting.

    The model is ``p(y = 1 | x, theta) = sigmoid(x' w + b)`` with the prior
    ``theta = [w, b] ~ N(0, alpha^-1 I)``: the intercept ``b`` has the same
    Gaussian prior as the coefficients (so that the posterior is proper on
    separable data; VBU's banknote experiment uses the same). The posterior is
    approximated by a Gaussian, by Laplace's method (mode by Newton/IRLS,
    precision ``alpha I + X' diag(p (1 - p)) X`` at the mode) or by a
    full-covariance variational fit.

    :meth:`partial_unfit` removes rows with a method of the registry of
    :mod:`sklunlearn.unlearning` (three are built in; others can be
    registered with :func:`sklunlearn.unlearning.register_method`), using
    only the stored posterior and the rows to forget:

    - ``'laplace'``: divide the rows' likelihood out of the posterior, with
      one Newton step from the mode (precision minus the rows' curvature at
      the mode, floored at the prior precision so it stays positive definite).
    - ``'eubo'``: minimise VBU's evidence upper bound
      ``E_q[log p(y_F|X_F, theta)] + KL(q || q(theta|D))`` over Gaussians,
      with the adjusted likelihood when ``unlearning_lambda > 0``.
    - ``'rkl'``: minimise the reverse KL ``KL(p_adj || q)`` by importance
      sampling from ``q(theta|D)`` and moment matching.
    - ``'uib'``: the unlearning information bottleneck (Han et al. 2024):
      staged, with a bottleneck ``unlearning_beta * KL(q || dynamic prior)``
      that divides out only part of the rows' likelihood site, which is
      closer to retraining for large or clustered deletions.

    'laplace' checks its step by re-evaluating the forgotten rows at the new
    mean and warns when the linearisation does not hold. With 'laplace' and
    'uib', requests one after another re-divide their union out of the
    posterior stored before the first of them (see the Notes).

    Every method is approximate: the docs report its KL to the retrained
    posterior. A method whose result is likely worse than not forgetting at
    all (effective sample size collapse, a move far beyond a Newton step's)
    raises an :class:`~sklunlearn.exceptions.UnlearningWarning`.

    Parameters
    ----------
    alpha : float, default=1.0
        Prior precision of the coefficients and the intercept.
    fit_intercept : bool, default=True
        Whether to fit an intercept (with prior ``N(0, 1 / alpha)``).
    inference : {'laplace', 'vi'}, default='laplace'
        Laplace approximation or Gaussian variational inference.
    unlearning : str, default='laplace'
        Forgetting method of :meth:`partial_unfit`: ``'laplace'``, ``'eubo'``,
        ``'rkl'``, ``'uib'``, or the name of a method registered with
        :func:`sklunlearn.unlearning.register_method`.
    unlearning_lambda : float, default=0.0
        VBU's adjusted-likelihood threshold in ``[0, 1)``: the forgotten
        rows' likelihood is used only where
        ``q(theta|D) > unlearning_lambda * max q(theta|D)`` ('eubo', 'rkl').
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
        Convergence tolerance (Newton decrement, in nats).
    random_state : int, RandomState instance or None, default=None
        Seed of the Monte Carlo samples, and ``b`` of
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
    n_jobs : int or None, default=None
        Number of threads fitting and forgetting the one-vs-rest problems of
        more than two classes in parallel (joblib, as scikit-learn's
        :class:`~sklearn.multiclass.OneVsRestClassifier`); the results do not
        depend on it. None means 1 unless in a :func:`joblib.parallel_backend`
        context; -1 means all processors. Binary problems ignore it.
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
    coef_ : ndarray of shape (1, n_features) or (n_classes, n_features)
        Posterior mean of the coefficients (one row per class when there are
        more than two classes, one-vs-rest).
    intercept_ : ndarray of shape (1,) or (n_classes,)
        Posterior mean of the intercept (zeros when ``fit_intercept=False``).
    posterior_ : GaussianPosterior or list of GaussianPosterior
        Binary: the posterior over ``[coef_[0], intercept_[0]]`` (just
        ``coef_[0]`` without an intercept). Multiclass: a list with one such
        posterior per class, for the one-vs-rest problem "this class or not".
    class_count_ : ndarray of shape (n_classes,)
        Weighted number of rows learned per class (forgetting more raises).
    n_samples_seen_ : int
        Rows with non-zero weight learned and not forgotten.
    n_iter_ : int
        Iterations of the last fit, partial_fit or partial_unfit (the
        largest over the one-vs-rest problems).
    unlearning_diagnostics_ : Diagnostics or list of Diagnostics
        Deprecated alias of ``forget_report_.diagnostics`` (kept for one
        release): the diagnostics record of the last :meth:`partial_unfit`
        (one per one-vs-rest problem when multiclass).
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
        The :class:`~sklunlearn.unlearning.Model` fitted: linear predictor,
        Bernoulli-logit likelihood, isotropic prior (what a forgetting method
        receives with ``posterior_``).
    unlearning_region_mass_ : float
        Mass of ``q(theta|D)`` inside the adjusted-likelihood region
        ``q > unlearning_lambda * max q`` (1.0 when ``unlearning_lambda=0``):
        close to 0 means the forgotten rows' likelihood is ignored almost
        everywhere, so little is forgotten.
    n_features_in_ : int
        Number of features seen during :term:`fit`.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of features seen during :term:`fit`, when ``X`` has string
        feature names.

    See Also
    --------
    sklearn.linear_model.LogisticRegression : The MAP of this model
        (``C = 1 / alpha``, ``fit_intercept=False``) without uncertainty.
    BayesianLinearRegression : Regression with exact forgetting.

    Notes
    -----
    The model is :class:`~sklunlearn.unlearning.Model` of a
    :class:`~sklunlearn.unlearning.LinearPredictor`, a
    :class:`~sklunlearn.unlearning.BernoulliLogit` likelihood and an isotropic
    :class:`~sklunlearn.unlearning.GaussianPrior`.
    ``fit`` costs O(n d^2) per Newton step (a fused row-block Numba kernel,
    no n x d temporary) plus O(d^3); ``partial_unfit`` with ``k`` rows costs
    O(k d^2 + d^3) for 'laplace' and 'eubo' with ``unlearning_lambda=0``
    (Gauss-Hermite quadrature per row), and O(n_samples (k + d) d) for
    'rkl' and the adjusted-likelihood 'eubo': none depends on ``n``. A
    scipy.sparse ``X`` (CSR, or CSC converted to CSR once per call) is never
    densified: a Newton step costs O(sum_i nnz_i^2) for the rows' curvature
    plus O(d^3) for the dense precision's factorisation; the ledger densifies
    one block of rows at a time to fingerprint them, so a row learned sparse
    can be forgotten dense and the other way round. With more than two
    classes, ``n_jobs`` runs the one-vs-rest problems in parallel threads
    over one validated copy of the rows.

    Pending requests ('laplace' and 'uib', without ``removal_noise``): the
    estimator keeps, per one-vs-rest problem, the posterior before the first
    forget since the last fit or ``partial_fit`` and the summed gradient
    (d) and curvature (d x d) of all rows forgotten since, at its mean, so
    that each request divides the union out of it. These hold aggregate
    information about the forgotten rows until the next fit or
    ``partial_fit`` (which drops them); each request after the first costs
    one d x d factorisation.

    ``partial_fit`` is the online Laplace (or variational) update: the
    current posterior becomes the prior of the new rows. It equals ``fit`` on
    all rows only up to that approximation.

    Forgetting is approximate: the result is not the retrained posterior,
    and its distance to it grows with the fraction forgotten and with how
    separable the data are. On the forgotten rows' own pipeline steps
    (scalers) see the user guide.

    References
    ----------
    F. Rawat, J. Requeima, W. Bruinsma, V. Fortuin, R. Turner, Challenges and
    Pitfalls of Bayesian Unlearning, ICML workshop, 2022.

    Q. P. Nguyen, B. K. H. Low, P. Jaillet, Variational Bayesian Unlearning,
    NeurIPS 2020.

    C. Guo, T. Goldstein, A. Hannun, L. van der Maaten, Certified Data
    Removal from Machine Learning Models, ICML 2020.

    R. Han, W. Huang, D. Scheinost, C. Hartley, M. Rodriguez Martinez,
    Unlearning Information Bottleneck: Machine Unlearning of Systematic
    Patterns and Biases, 2024.

    D. J. C. MacKay, The evidence framework applied to classification
    networks, Neural Computation 4(5), 1992 (moderated outputs).

    Examples
    --------
    >>> from sklearn.datasets import load_breast_cancer
    >>> from sklearn.preprocessing import StandardScaler
    >>> from sklunlearn.linear_model import BayesianLogisticRegression
    >>> X, y = load_breast_cancer(return_X_y=True)
    >>> X = StandardScaler().fit_transform(X)
    >>> est = BayesianLogisticRegression().fit(X, y)
    >>> _ = est.partial_unfit(X[:50], y[:50])
    >>> retrained = BayesianLogisticRegression().fit(X[50:], y[50:])
    >>> full = BayesianLogisticRegression().fit(X, y)
    >>> bool(est.posterior_.kl_divergence(retrained.posterior_)
    ...      < full.posterior_.kl_divergence(retrained.posterior_))
    True
    """

    _parameter_constraints: dict = {
        "alpha": [Interval(Real, 0, None, closed="neither")],
        "fit_intercept": ["boolean"],
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
        "n_jobs": [None, Integral],
        "verbose": ["verbose"],
        "ledger": ["boolean"],
    }

    _model_parameters = ("alpha", "fit_intercept", "inference", "removal_noise")

    # The kernels walk CSR rows; CSC is converted once per call.
    _accept_sparse = ("csr", "csc")

    def __init__(
        self,
        *,
        alpha=1.0,
        fit_intercept=True,
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
        n_jobs=None,
        verbose=0,
        ledger=True,
    ):
        self.alpha = alpha
        self.fit_intercept = fit_intercept
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
        self.n_jobs = n_jobs
        self.verbose = verbose
        self.ledger = ledger

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags

    # ------------------------------------------------------------ public API
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Fit the posterior on ``X, y``, discarding anything learned before.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training data (scipy.sparse CSR or CSC; never densified).
        y : array-like of shape (n_samples,)
            Class labels (at least two classes).
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights; a weight of 2 counts as the row twice.

        Returns
        -------
        self : object
            Fitted estimator.
        """
        with self._fit_threads():
            return self._learn(X, y, sample_weight, reset=True)

    def partial_fit(self, X, y, classes=None, sample_weight=None):
        """Add rows to the posterior (online update; fits if not fitted yet).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Rows to learn.
        y : array-like of shape (n_samples,)
            Their labels.
        classes : array-like of shape (n_classes,), default=None
            All classes, required on the first call (as in scikit-learn's
            online classifiers); a later call may pass them again, and a
            ValueError is raised when they differ from ``classes_``.
        sample_weight : array-like of shape (n_samples,), default=None
            Weight of each row (ones by default).

        Returns
        -------
        self : object
        """
        self._validate_params_again()
        with self._fit_threads():
            return self._learn(
                X,
                y,
                sample_weight,
                reset="posterior_" not in self.__dict__,
                classes=classes,
                partial=True,
            )

    def partial_unfit(self, X, y, sample_weight=None):
        """Forget rows with the method chosen by ``unlearning``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Rows to forget, as they were learned (dense or sparse: a row is
            the same row in either form).
        y : array-like of shape (n_samples,)
            Their labels (each must be in ``classes_``).
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
            On NaN/inf, a wrong number of features or different feature
            names, a label not in ``classes_``, more rows or more weight (per
            class) than were learned, or values so large that the update
            overflows; and when the method left the posterior exactly as it
            was and warned (a stalled ``'eubo'``, a region holding none of the
            posterior): the rows stay learned, for another method to forget.

        Warns
        -----
        UnlearningWarning
            When the result is likely worse than not forgetting at all.
        """
        with self._forget_threads():
            return self._forget(X, y, sample_weight)

    # ------------------------------------------------------------ internals
    def _fit_threads(self):
        """The BLAS thread limit of a fit: one thread for the variational fit.

        Its fixed-point iteration factorises and solves with the small
        (d + 1) x (d + 1) precision a few times per state, between the Numba
        kernels' passes over the rows: BLAS threads would wait for each other
        more than they compute. The limit is set here, around all one-vs-rest
        problems, because it is process-wide (not per joblib thread).
        """
        return one_blas_thread() if self.inference == "vi" else contextlib.nullcontext()

    def _forget_threads(self):
        """The BLAS thread limit of a forget: one thread for the sampling methods.

        'eubo' and 'rkl' iterate over (d + 1) x (d + 1) factorisations and
        solves between passes over the rows and draws, as the variational fit
        does (see :meth:`_fit_threads`).
        """
        sampling = self.unlearning in ("eubo", "rkl")
        return one_blas_thread() if sampling else contextlib.nullcontext()

    def _start(self, X, weights):
        """The model, and the prior N(0, alpha^-1 I) for every one-vs-rest problem."""
        predictor = LinearPredictor(fit_intercept=self.fit_intercept)
        prior = GaussianPrior(float(self.alpha), predictor.n_parameters(X.shape[1]))
        self.model_ = Model(predictor, BernoulliLogit(), prior)
        self._set_posteriors([prior.posterior()] * self._n_problems())
        self.class_count_ = np.zeros(self.classes_.shape[0])
        self.n_samples_seen_ = 0

    def _posterior_list(self):
        return self.posterior_ if isinstance(self.posterior_, list) else [self.posterior_]

    def _set_posteriors(self, posteriors):
        """Assign ``posterior_``, ``coef_`` and ``intercept_`` from new posteriors.

        Drops the pending forget requests' state (``_update`` sets it again
        after a forget that keeps it).
        """
        self.__dict__.pop("_pending_forgets", None)
        means = np.vstack([p.mean for p in posteriors])
        if self.fit_intercept:
            self.coef_, self.intercept_ = means[:, :-1].copy(), means[:, -1].copy()
        else:
            self.coef_, self.intercept_ = means, np.zeros(means.shape[0])
        self.posterior_ = posteriors[0] if len(posteriors) == 1 else list(posteriors)
