"""Bayesian logistic regression that forgets (Laplace, EUBO, reverse KL)."""

import warnings
from numbers import Integral, Real

import numpy as np
from scipy.special import expit
from sklearn.base import BaseEstimator, ClassifierMixin, _fit_context
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.multiclass import (
    _check_partial_fit_first_call,
    check_classification_targets,
)
from sklearn.utils.validation import check_is_fitted, validate_data

from ..base import UnlearningMixin, check_weights, validate_rows
from ..exceptions import UnlearningWarning
from ..posterior import GaussianPosterior
from ..unlearning import FORGETTING_METHODS, forget, learn, region_mass
from ._likelihoods import BernoulliLogit

__all__ = ["BayesianLogisticRegression"]

# Relative slack when checking that no more weight is forgotten than was learned.
_WEIGHT_TOLERANCE = 1e-9


class BayesianLogisticRegression(UnlearningMixin, ClassifierMixin, BaseEstimator):
    """Bayesian logistic regression with approximate forgetting.

    The model is ``p(y = 1 | x, theta) = sigmoid(x' w + b)`` with the prior
    ``theta = [w, b] ~ N(0, alpha^-1 I)``: the intercept ``b`` has the same
    Gaussian prior as the coefficients (so that the posterior is proper on
    separable data; VBU's banknote experiment uses the same). The posterior is
    approximated by a Gaussian, by Laplace's method (mode by Newton/IRLS,
    precision ``alpha I + X' diag(p (1 - p)) X`` at the mode) or by a
    full-covariance variational fit.

    :meth:`partial_unfit` removes rows with one of three approximate methods
    (see :mod:`sklunlearn.unlearning`), using only the stored posterior and
    the rows to forget:

    - ``'laplace'``: divide the rows' likelihood out of the posterior, with
      one Newton step from the mode (precision minus the rows' curvature at
      the mode, floored at the prior precision so it stays positive definite).
    - ``'eubo'``: minimise VBU's evidence upper bound
      ``E_q[log p(y_F|X_F, theta)] + KL(q || q(theta|D))`` over Gaussians,
      with the adjusted likelihood when ``unlearning_lambda > 0``.
    - ``'rkl'``: minimise the reverse KL ``KL(p_adj || q)`` by importance
      sampling from ``q(theta|D)`` and moment matching.

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
    unlearning : {'laplace', 'eubo', 'rkl'}, default='laplace'
        Forgetting method of :meth:`partial_unfit`.
    unlearning_lambda : float, default=0.0
        VBU's adjusted-likelihood threshold in ``[0, 1)``: the forgotten
        rows' likelihood is used only where
        ``q(theta|D) > unlearning_lambda * max q(theta|D)`` ('eubo', 'rkl').
    n_samples : int, default=1000
        Monte Carlo samples ('rkl'; 'eubo' with ``unlearning_lambda > 0``).
    max_iter : int, default=100
        Maximum Newton or fixed-point iterations.
    tol : float, default=1e-10
        Convergence tolerance (Newton decrement, in nats).
    random_state : int, RandomState instance or None, default=None
        Seed of the Monte Carlo samples.

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
    unlearning_diagnostics_ : dict or list of dict
        Diagnostics of the last :meth:`partial_unfit` (one dict per
        one-vs-rest problem when multiclass), see :mod:`sklunlearn.unlearning`.
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
    ``fit`` costs O(n d^2) per Newton step (a fused row-block Numba kernel,
    no n x d temporary) plus O(d^3); ``partial_unfit`` with ``k`` rows costs
    O(k d^2 + d^3) for 'laplace' and 'eubo' with ``unlearning_lambda=0``
    (Gauss-Hermite quadrature per row), and O(n_samples (k + d) d) for
    'rkl' and the adjusted-likelihood 'eubo': none depends on ``n``.

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
        alpha=1.0,
        fit_intercept=True,
        inference="laplace",
        unlearning="laplace",
        unlearning_lambda=0.0,
        n_samples=1000,
        max_iter=100,
        tol=1e-10,
        random_state=None,
    ):
        self.alpha = alpha
        self.fit_intercept = fit_intercept
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
        """Fit the posterior on ``X, y``, discarding anything learned before.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data.
        y : array-like of shape (n_samples,)
            Class labels (at least two classes).
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights; a weight of 2 counts as the row twice.

        Returns
        -------
        self : object
            Fitted estimator.
        """
        with self._atomic():
            X, y = validate_data(self, X, y, reset=True, dtype=np.float64)
            check_classification_targets(y)
            classes = np.unique(y)
            if classes.shape[0] < 2:
                raise ValueError(
                    "This solver needs samples of at least 2 classes in the data, but "
                    f"the data contains only one class: {classes[0]!r}."
                )
            self.classes_ = classes
            self._start()
            self._change(X, self._check_labels(y), sample_weight, sign=1.0)
        return self

    def partial_fit(self, X, y, classes=None, sample_weight=None):
        """Add rows to the posterior (online update; fits if not fitted yet).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
        classes : array-like of shape (n_classes,), default=None
            All classes, required on the first call (as in scikit-learn's
            online classifiers), ignored afterwards.
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        self : object
        """
        self._validate_params()
        with self._atomic():
            first = not hasattr(self, "posterior_")
            X, y = validate_data(self, X, y, reset=first, dtype=np.float64)
            check_classification_targets(y)
            if _check_partial_fit_first_call(self, classes):
                if self.classes_.shape[0] < 2:
                    raise ValueError("classes must hold at least two labels.")
                self._start()
            self._change(X, self._check_labels(y), sample_weight, sign=1.0)
        return self

    def partial_unfit(self, X, y, sample_weight=None):
        """Forget rows with the method chosen by ``unlearning``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Rows to forget, as they were learned.
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
            class) than were learned.

        Warns
        -----
        UnlearningWarning
            When the result is likely worse than not forgetting at all.
        """
        self._check_fitted("posterior_")
        self._validate_params()  # unlearning, unlearning_lambda, ... are read here
        with self._atomic():
            X, y = validate_rows(self, X, y)
            self._change(X, self._check_labels(y), sample_weight, sign=-1.0)
        return self

    def decision_function(self, X, moderated=True):
        """Logit of :meth:`predict_proba` (the moderated one by default).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        moderated : bool, default=True
            Scale the mean logit by ``1 / sqrt(1 + pi s^2 / 8)``, ``s^2`` its
            posterior variance (MacKay's probit approximation); False gives
            the MAP logit ``X @ coef_.T + intercept_``.

        Returns
        -------
        scores : ndarray of shape (n_samples,) or (n_samples, n_classes)
        """
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=np.float64)
        design = self._design(X)
        scores = []
        for posterior in self._posterior_list():
            mean = design @ posterior.mean
            if moderated:
                mean = mean / np.sqrt(
                    1.0 + np.pi / 8.0 * posterior.predictive_variance(design)
                )
            scores.append(mean)
        scores = np.column_stack(scores)
        return scores[:, 0] if self.classes_.shape[0] == 2 else scores

    def predict_proba(self, X, moderated=True):
        """Posterior predictive class probabilities.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        moderated : bool, default=True
            Average the sigmoid over the posterior (probit approximation);
            False uses the MAP parameters only.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Columns in the order of ``classes_``; one-vs-rest probabilities
            normalised to sum to one when multiclass.
        """
        proba = expit(self.decision_function(X, moderated=moderated))
        if proba.ndim == 1:
            return np.column_stack([1.0 - proba, proba])
        return proba / proba.sum(axis=1, keepdims=True)

    def predict_log_proba(self, X, moderated=True):
        """Logarithm of :meth:`predict_proba`."""
        return np.log(self.predict_proba(X, moderated=moderated))

    def predict(self, X):
        """Most probable class.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
        """
        scores = self.decision_function(X)
        if scores.ndim == 1:
            return self.classes_[(scores > 0).astype(int)]
        return self.classes_[np.argmax(scores, axis=1)]

    # ------------------------------------------------------------ internals
    def _start(self):
        """Prior state: N(0, alpha^-1 I) for every one-vs-rest problem."""
        d = self.n_features_in_ + int(self.fit_intercept)
        prior = GaussianPosterior(np.zeros(d), np.sqrt(self.alpha) * np.eye(d))
        n_problems = 1 if self.classes_.shape[0] == 2 else self.classes_.shape[0]
        self._set_posteriors([prior] * n_problems)
        self.class_count_ = np.zeros(self.classes_.shape[0])
        self.n_samples_seen_ = 0

    def _check_labels(self, y):
        """Refuse labels not in ``classes_``; return each label's index in it."""
        # classes_ is sorted (np.unique): a binary search finds each label.
        try:
            position = np.searchsorted(self.classes_, y)
        except TypeError:  # labels not comparable with classes_: the slow path says why
            pass
        else:
            position = np.minimum(position, self.classes_.shape[0] - 1)
            if np.array_equal(self.classes_[position], y):
                return position
        unknown = np.setdiff1d(np.unique(y), self.classes_)
        if unknown.size:
            raise ValueError(
                f"y contains labels {unknown.tolist()} not in classes_ "
                f"{self.classes_.tolist()}."
            )
        index = {label: i for i, label in enumerate(self.classes_.tolist())}
        return np.array([index[label] for label in np.asarray(y).tolist()], dtype=np.intp)

    def _design(self, X):
        if self.fit_intercept:
            return np.hstack([X, np.ones((X.shape[0], 1))])
        return np.ascontiguousarray(X)

    def _posterior_list(self):
        return self.posterior_ if isinstance(self.posterior_, list) else [self.posterior_]

    def _targets(self, labels):
        """One {0, 1} target vector per one-vs-rest problem (``labels``: class indices)."""
        if self.classes_.shape[0] == 2:
            return [(labels == 1).astype(np.float64)]
        return [(labels == c).astype(np.float64) for c in range(self.classes_.shape[0])]

    def _change(self, X, labels, sample_weight, sign):
        """The one path of fit, partial_fit (+1) and partial_unfit (-1).

        ``labels`` are the rows' indices in ``classes_`` (:meth:`_check_labels`).
        """
        weights = check_weights(sample_weight, X, allow_all_zero=sign < 0)
        class_weight = np.bincount(
            labels, weights=weights, minlength=self.classes_.shape[0]
        )
        n_rows = int(np.count_nonzero(weights))
        if sign < 0:
            self._check_forgettable(class_weight, n_rows)
        likelihood = BernoulliLogit()
        newton_only = self.inference == "laplace" and (
            sign > 0 or self.unlearning == "laplace"
        )
        if newton_only and self.fit_intercept:
            # Newton's method and the one-step divide-out need only the fused
            # kernel, which adds the intercept column itself: no (n, d + 1) copy.
            design = np.ascontiguousarray(X)
            likelihood = likelihood.with_implicit_intercept()
        else:
            design = self._design(X)
        options = {
            "prior_precision": self.alpha,
            "n_samples": self.n_samples,
            "random_state": self.random_state,
            "max_iter": self.max_iter,
            "tol": self.tol,
        }
        results = []
        targets = self._targets(labels)
        for posterior, target in zip(self._posterior_list(), targets, strict=True):
            if sign > 0:
                result = learn(
                    posterior, likelihood, design, target, weights,
                    inference=self.inference, **options,
                )
            else:
                result = forget(
                    posterior, likelihood, design, target, weights,
                    method=self.unlearning, inference=self.inference,
                    unlearning_lambda=self.unlearning_lambda, **options,
                )
            results.append(result)
        if sign > 0 and not all(result.converged for result in results):
            warnings.warn(
                f"{'Newton' if self.inference == 'laplace' else 'Variational'} fitting "
                f"did not converge in max_iter={self.max_iter} iterations; increase "
                "max_iter, or standardise the features.",
                ConvergenceWarning,
                stacklevel=3,
            )
        if sign < 0:
            diagnostics = [result.diagnostics for result in results]
            if len(diagnostics) == 1:
                messages = diagnostics[0]["warnings"]
            else:  # one-vs-rest: say which class's problem went wrong
                messages = [
                    f"Class {label!r} (one-vs-rest): {message}"
                    for label, d in zip(self.classes_.tolist(), diagnostics, strict=True)
                    for message in d["warnings"]
                ]
            for message in dict.fromkeys(messages):  # once each, in order
                warnings.warn(message, UnlearningWarning, stacklevel=3)
            self.unlearning_diagnostics_ = (
                diagnostics[0] if len(diagnostics) == 1 else diagnostics
            )
            self.unlearning_region_mass_ = region_mass(
                self.unlearning_lambda, self._posterior_list()[0].n_features
            )
        self._set_posteriors([result.posterior for result in results])
        self.n_iter_ = max(result.n_iter for result in results)
        self.class_count_ = np.maximum(self.class_count_ + sign * class_weight, 0.0)
        self.n_samples_seen_ = self.n_samples_seen_ + int(sign) * n_rows

    def _check_forgettable(self, class_weight, n_rows):
        if n_rows > self.n_samples_seen_:
            raise ValueError(
                f"Cannot forget {n_rows} rows: only {self.n_samples_seen_} rows with "
                "non-zero weight were learned."
            )
        excess = class_weight - self.class_count_ * (1.0 + _WEIGHT_TOLERANCE)
        if np.any(excess > _WEIGHT_TOLERANCE):
            c = int(np.argmax(excess))
            raise ValueError(
                f"Cannot forget weight {class_weight[c]:.6g} of class "
                f"{self.classes_[c]!r}: only {self.class_count_[c]:.6g} was learned."
            )

    def _set_posteriors(self, posteriors):
        """Assign ``posterior_``, ``coef_`` and ``intercept_`` from new posteriors."""
        means = np.vstack([p.mean for p in posteriors])
        if self.fit_intercept:
            self.coef_, self.intercept_ = means[:, :-1].copy(), means[:, -1].copy()
        else:
            self.coef_, self.intercept_ = means, np.zeros(means.shape[0])
        self.posterior_ = posteriors[0] if len(posteriors) == 1 else list(posteriors)
