"""Sparse GP binary classification that forgets, as in VBU's sparse GP experiments."""

import copy
from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, _fit_context, clone
from sklearn.gaussian_process.kernels import RBF, Kernel
from sklearn.gaussian_process.kernels import ConstantKernel as C
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from ..base import UnlearningMixin, check_weights, validate_rows
from ..linear_model import BayesianLogisticRegression
from ..unlearning import FORGETTING_METHODS
from ._bound import inducing_cholesky, whitened_features
from ._inducing import resolve_inducing_points, warn_if_inducing_points_forgotten
from ._sgpr import _inducing_posterior


class SparseGPClassifier(UnlearningMixin, ClassifierMixin, BaseEstimator):
    """Sparse GP binary classifier with approximate forgetting (VBU's model).

    The latent function is the projection ``f(x) = k_Z(x)' K_ZZ^-1 u`` of the
    inducing values ``u ~ N(0, K_ZZ)``, with a Bernoulli-logit likelihood and
    no conditional variance, as in the sparse GP classification experiments
    of Nguyen, Low & Jaillet (2020). In the whitened basis ``v = L^-1 u``
    (``K_ZZ = L L'``) this is exactly Bayesian logistic regression on the
    features ``a(x) = L^-1 k_Z(x)`` with prior N(0, I). The estimator
    therefore keeps a fitted
    :class:`~sklunlearn.linear_model.BayesianLogisticRegression`
    (``alpha=1``, no intercept) on those features, ``logistic_``, and
    forgets through its :meth:`partial_unfit`: the same Laplace, EUBO and
    reverse-KL machinery (:mod:`sklunlearn.unlearning`), with a Gaussian
    q(u) throughout.

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
    unlearning : {'laplace', 'eubo', 'rkl'}, default='laplace'
        Forgetting method of :meth:`partial_unfit` (see
        :class:`~sklunlearn.linear_model.BayesianLogisticRegression`).
    unlearning_lambda : float, default=0.0
        VBU's adjusted-likelihood threshold for 'eubo' and 'rkl'.
    n_samples : int, default=1000
        Monte Carlo samples ('rkl'; 'eubo' with ``unlearning_lambda > 0``).
    max_iter : int, default=100
        Maximum Newton or fixed-point iterations.
    tol : float, default=1e-10
        Convergence tolerance.
    random_state : int, RandomState instance or None, default=None
        Seeds the choice of inducing points and the Monte Carlo samples.

    Attributes
    ----------
    classes_ : ndarray of shape (2,)
        Class labels.
    kernel_ : kernel instance
        The kernel (a clone of ``kernel``).
    inducing_points_ : ndarray of shape (n_inducing, n_features)
        Inducing locations ``Z``.
    logistic_ : BayesianLogisticRegression
        The logistic regression on the whitened features that holds q(v).
    whitened_posterior_ : GaussianPosterior
        q(v) over the whitened inducing values (prior N(0, I)).
    posterior_ : GaussianPosterior
        q(u) over the inducing values ``u = f(Z)``.
    unlearning_diagnostics_ : dict
        Diagnostics of the last :meth:`partial_unfit`.
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
    Cost: ``fit`` is that of the logistic regression on ``n x m`` features,
    O(n m^2) per Newton step; ``partial_unfit`` of ``k`` rows is
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
        "unlearning": [StrOptions(set(FORGETTING_METHODS))],
        "unlearning_lambda": [Interval(Real, 0, 1, closed="left")],
        "n_samples": [Interval(Integral, 2, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="neither")],
        "random_state": ["random_state"],
    }

    def __init__(
        self,
        *,
        kernel=None,
        inducing_points=100,
        inference="laplace",
        unlearning="laplace",
        unlearning_lambda=0.0,
        n_samples=1000,
        max_iter=100,
        tol=1e-10,
        random_state=None,
    ):
        self.kernel = kernel
        self.inducing_points = inducing_points
        self.inference = inference
        self.unlearning = unlearning
        self.unlearning_lambda = unlearning_lambda
        self.n_samples = n_samples
        self.max_iter = max_iter
        self.tol = tol
        self.random_state = random_state

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
        with self._atomic():
            X, y, weights = self._validate(X, y, sample_weight, reset=True)
            self._start(X, weights)
            self.logistic_ = self._new_logistic().fit(self._features(X), y, weights)
            self.classes_ = self.logistic_.classes_
        return self

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
        first = not hasattr(self, "logistic_")
        if first:
            self._validate_params()
        with self._atomic():
            X, y, weights = self._validate(X, y, sample_weight, reset=first)
            if first:
                if classes is not None and np.unique(classes).shape[0] > 2:
                    raise ValueError(_BINARY_ONLY)
                self._start(X, weights)
                logistic = self._new_logistic()
            else:
                logistic = self._current_logistic()
            self.logistic_ = logistic.partial_fit(
                self._features(X), y, classes=classes, sample_weight=weights
            )
            self.classes_ = self.logistic_.classes_
        return self

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
            weight than were learned.

        Warns
        -----
        UnlearningWarning
            When a forgotten row is stored as an inducing point, or the
            forgetting method's result is likely worse than doing nothing.
        """
        check_is_fitted(self)
        with self._atomic():
            X, y, weights = self._validate(X, y, sample_weight, reset=False,
                                           allow_all_zero=True)
            logistic = self._current_logistic()
            self.logistic_ = logistic.partial_unfit(self._features(X), y, weights)
            warn_if_inducing_points_forgotten(
                X[weights > 0], self.inducing_points_,
                "Fit again on the remaining rows with other inducing_points.",
            )
        return self

    def decision_function(self, X, moderated=True):
        """Logit of :meth:`predict_proba` (moderated by the posterior variance).

        Returns
        -------
        scores : ndarray of shape (n_samples,)
        """
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=np.float64)
        return self.logistic_.decision_function(self._features(X), moderated=moderated)

    def predict_proba(self, X, moderated=True):
        """Posterior predictive class probabilities.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        moderated : bool, default=True
            Average the sigmoid over q(u) (probit approximation); False uses
            the posterior mean of ``u`` only.

        Returns
        -------
        proba : ndarray of shape (n_samples, 2)
        """
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=np.float64)
        return self.logistic_.predict_proba(self._features(X), moderated=moderated)

    def predict_log_proba(self, X, moderated=True):
        """Logarithm of :meth:`predict_proba`."""
        return np.log(self.predict_proba(X, moderated=moderated))

    def predict(self, X):
        """Most probable class.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
        """
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=np.float64)
        return self.logistic_.predict(self._features(X))

    @property
    def whitened_posterior_(self):
        """q(v) over the whitened inducing values ``v = L^-1 u``."""
        check_is_fitted(self, "logistic_")
        return self.logistic_.posterior_

    @property
    def posterior_(self):
        """q(u) over the inducing values ``u = f(Z)``."""
        posterior = self.whitened_posterior_
        return _inducing_posterior(posterior.mean, posterior.precision_cholesky,
                                   self._inducing_factor)

    @property
    def unlearning_diagnostics_(self):
        """Diagnostics of the last :meth:`partial_unfit`."""
        check_is_fitted(self, "logistic_")
        return self.logistic_.unlearning_diagnostics_

    @property
    def n_samples_seen_(self):
        """Rows with non-zero weight learned and not forgotten."""
        check_is_fitted(self, "logistic_")
        return self.logistic_.n_samples_seen_

    @property
    def n_iter_(self):
        """Iterations of the last fit, partial_fit or partial_unfit."""
        check_is_fitted(self, "logistic_")
        return self.logistic_.n_iter_

    # ------------------------------------------------------------ internals
    def _validate(self, X, y, sample_weight, reset, allow_all_zero=False):
        if reset:
            X, y = validate_data(self, X, y, reset=True, dtype=np.float64)
        else:
            X, y = validate_rows(self, X, y)
        check_classification_targets(y)
        if np.unique(y).shape[0] > 2:
            raise ValueError(_BINARY_ONLY)
        weights = check_weights(sample_weight, X, allow_all_zero=allow_all_zero)
        return X, y, weights

    def _start(self, X, weights):
        self.kernel_ = C(1.0) * RBF(1.0) if self.kernel is None else clone(self.kernel)
        self.inducing_points_ = np.array(
            resolve_inducing_points(self, X, weights), dtype=np.float64, copy=True
        )
        self._inducing_factor = inducing_cholesky(self.kernel_, self.inducing_points_)

    def _logistic_params(self):
        return dict(
            inference=self.inference, unlearning=self.unlearning,
            unlearning_lambda=self.unlearning_lambda, n_samples=self.n_samples,
            max_iter=self.max_iter, tol=self.tol, random_state=self.random_state,
        )

    def _new_logistic(self):
        """Logistic regression on the whitened features, prior N(0, I)."""
        return BayesianLogisticRegression(
            alpha=1.0, fit_intercept=False, **self._logistic_params()
        )

    def _current_logistic(self):
        """A copy of ``logistic_`` with this estimator's current parameters.

        ``set_params(unlearning=...)`` after fitting then takes effect.
        """
        return copy.deepcopy(self.logistic_).set_params(**self._logistic_params())

    def _features(self, X):
        """``a(x) = L^-1 k_Z(x)`` as rows, shape (n_samples, n_inducing)."""
        A = whitened_features(self.kernel_, self.inducing_points_, self._inducing_factor, X)
        return np.ascontiguousarray(A.T)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = False
        return tags


_BINARY_ONLY = (
    "Only binary classification is supported by SparseGPClassifier: y must hold "
    "at most two classes."
)
