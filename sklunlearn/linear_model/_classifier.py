"""The update path shared by the classifiers with a Gaussian posterior.

:class:`~sklunlearn.linear_model.BayesianLogisticRegression` and
:class:`~sklunlearn.gaussian_process.SparseGPClassifier` are the same model
on different predictors: a Bernoulli-logit likelihood of ``f = g(x; theta)``
with a Gaussian prior, one-vs-rest for more than two classes. This private
base class holds what they share: label handling, the one path of learning
and forgetting (through :mod:`sklunlearn.unlearning`), and predictions. A
subclass supplies ``_start`` (the prior state and ``model_``, its predictor
x likelihood x prior) and ``_set_posteriors``.

Both get certified removal (Guo et al. 2020) here: the fit minimises the
regularised loss plus ``b' theta`` (``removal_noise``), every learn and forget
updates the Gram matrix of the remaining rows' design, and every forget adds
the Newton step's residual bound to ``certificate_``
(:mod:`sklunlearn.unlearning._certified`).
"""

import warnings

import numpy as np
from scipy import linalg, sparse
from scipy.special import expit, logsumexp
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.multiclass import (
    _check_partial_fit_first_call,
    check_classification_targets,
)
from sklearn.utils.parallel import Parallel, delayed
from sklearn.utils.validation import check_is_fitted, validate_data

from .._caller import caller_stacklevel
from .._dask import is_dask_collection
from ..base import UnlearningMixin, UpdateOutcome
from ..exceptions import NotPositiveDefiniteError
from ..unlearning import (
    CertifiedDiagnostics,
    LikelihoodTerms,
    RemovalState,
    get_method,
    laplace_divide_out,
    learn,
    perturbed_priors,
    region_mass,
    uib_forget,
)
from ..unlearning._certified import design_statistics

__all__ = []

# Relative slack when checking that no more weight is forgotten than was learned.
_WEIGHT_TOLERANCE = 1e-9

# Methods whose result is a function of the forgotten rows' site terms at the
# stored posterior's mean: requests one after another re-divide their union.
_PENDING_METHODS = (laplace_divide_out, uib_forget)

# Built-in methods that only read the rows through the predictor (so CSR rows work);
# others (and 'lcodec', which perturbs them) get the request's rows dense.
_SPARSE_METHODS = ("laplace", "eubo", "rkl", "uib")

# Forgetting methods whose step is the Newton removal step the certificate bounds.
_CERTIFIED_METHODS = ("laplace", "lcodec")

# The end of every reason that voids a certificate which was valid; the budget's
# reason (sklunlearn.unlearning._certified) ends the same way.
_RESTORE = "refit from the remaining rows to restore the guarantee."
_PARTIAL_FIT_REASON = (
    "Rows were added by partial_fit after the fit: the online update is not the "
    "minimiser of the perturbed objective on all rows, so the removal certificate "
    f"no longer holds; {_RESTORE}"
)
_METHOD_REASON = (
    "unlearning={!r} is not a Newton removal step ('laplace' or 'lcodec'), the only "
    f"steps the removal certificate covers, so it no longer holds; {_RESTORE}"
)
_FLOORED_REASON = (
    "The forgotten precision was floored at the prior's, so the step was not the "
    "Newton step on the remaining rows and the removal certificate no longer holds; "
    f"{_RESTORE}"
)
# A refit on the remaining rows would not know a class none of them has; the
# forgotten model still lists it and predicts it from what is left of its problem.
_EMPTIED_CLASSES = (
    "Every learned row of class(es) {} has now been forgotten. The model still has "
    "them in classes_ and predicts them from what is left of their one-vs-rest "
    "problems (the prior where nothing is left); a refit on the remaining rows would "
    "not know them. Fit again on the remaining rows to drop them."
)
_VI_REASON = (
    "inference='vi': the fitted mean is not the minimiser of the perturbed objective "
    "that the certificate is about. Use inference='laplace'."
)
_UNCONVERGED_REASON = (
    "The fit did not converge, so its mean is not the minimiser of the perturbed "
    "objective. Increase max_iter and fit again."
)
_ROW_NORM_MESSAGE = (
    "Certified removal assumes rows of the model's design with norm at most 1; the "
    "largest learned is {:.4g}, and the residual bound is scaled by it. The design "
    "includes the intercept's constant 1 with fit_intercept=True, so unit-norm rows "
    "have norm sqrt(2) there: scale the rows to norm at most 1/sqrt(2) (e.g. "
    "sklearn.preprocessing.Normalizer, then multiply by 0.7), or use "
    "fit_intercept=False, to keep the budget of the guarantee."
)


def _by_rows(X):
    """A sparse ``X`` as CSR (the kernels walk rows); anything else as it is."""
    return X.tocsr() if sparse.issparse(X) and X.format != "csr" else X


def _moved_site(terms, step):
    """A Gaussian site's terms at ``theta + step`` from its terms at ``theta``.

    The site ``l(t) = l + g'(t - theta) - (t - theta)' H (t - theta) / 2`` has
    gradient ``g - H step`` and value ``l + g' step - step' H step / 2`` there.
    """
    moved = terms.hessian @ step
    return LikelihoodTerms(
        terms.log_likelihood + terms.gradient @ step - 0.5 * step @ moved,
        terms.gradient - moved,
        terms.hessian,
    )


class _GaussianClassifier(UnlearningMixin, ClassifierMixin, BaseEstimator):
    """Base of the Bernoulli-logit classifiers with a Gaussian posterior.

    ``_accept_sparse`` lists the scipy.sparse formats a subclass's predictor
    reads (False: dense only).
    """

    _accept_sparse = False

    # ------------------------------------------------------------ hooks
    def _validate_rows(self, X, y, *, reset, classes=None, partial=False):
        """Validated ``X`` (float64), class indices, and those indices as float64."""
        # C order: the fused kernels read rows (they would copy other layouts).
        X, y = validate_data(
            self,
            X,
            y,
            reset=reset,
            accept_sparse=self._accept_sparse,
            dtype=np.float64,
            order="C",
        )
        X = _by_rows(X)
        if reset:  # later rows are checked against classes_ by _check_labels
            check_classification_targets(y)
        if reset and partial:
            if _check_partial_fit_first_call(self, classes):
                self._check_classes(self.classes_)
        elif partial and classes is not None:
            # scikit-learn's convention: later calls may repeat classes, not change them.
            _check_partial_fit_first_call(self, classes)
        elif reset:
            self._check_classes(np.unique(y))
            self.classes_ = np.unique(y)
        labels = self._check_labels(y)
        return X, labels, labels.astype(np.float64)

    def _check_classes(self, classes):
        if classes.shape[0] < 2:
            raise ValueError(
                "This solver needs samples of at least 2 classes in the data, but "
                f"the data contains only one class: {classes[0]!r}."
            )

    def _update(self, X, labels, weights, *, sign, reset):
        """Learn (``sign=+1``) or forget (``sign=-1``) the rows, one problem per class.

        The model is the one built at fit (``model_``), so a model parameter
        changed since cannot mix two models.
        """
        certified = self.removal_noise is not None
        if reset:
            self._start(X, weights)
            for name in ("certificate_", "_removal_state"):
                self.__dict__.pop(name, None)
            if certified:
                self._set_posteriors(
                    perturbed_priors(
                        self.model_.prior,
                        float(self.removal_noise),
                        self._n_problems(),
                        self.random_state,
                    )
                )
        before = self._posterior_list() if certified else None
        class_weight = np.bincount(
            labels, weights=weights, minlength=self.classes_.shape[0]
        )
        n_rows = int(np.count_nonzero(weights))
        if sign < 0 and not self.ledger:  # with a ledger, the ledger has refused
            self._check_forgettable(class_weight, n_rows)
        try:
            results, name, targets, pending = self._run(X, labels, weights, sign)
        except (FloatingPointError, NotPositiveDefiniteError, linalg.LinAlgError) as exc:
            raise ValueError(
                f"The update is not finite ({exc}): X or sample_weight holds values so "
                "large that the likelihood's curvature overflows. Standardise the "
                "features and keep weights moderate. Nothing was changed."
            ) from exc
        records, outcome = self._conclude(
            name, results, pending, class_weight, n_rows, sign
        )
        if sign > 0:
            if certified:
                was_valid = not reset and self.certificate_.valid
                self._certify_learned(X, targets, weights, records, reset and before)
                if was_valid and not self.certificate_.valid:
                    outcome = outcome._replace(
                        warnings=(*outcome.warnings, self.certificate_.reason)
                    )
            self._warn_unconverged(records)
            return outcome
        if not certified:
            return outcome
        crossed = self._certify_forgotten(X, weights, name, before, records)
        return self._with_certificate(outcome, crossed)

    def _update_dask(self, rows, *, sign, reset):
        """:meth:`_update` for rows on a dask cluster: one pass per Newton step.

        Learning needs the Laplace posterior without certified removal; a
        forget with another method gathers its rows (see
        :func:`sklunlearn._dask.classifier_update`).
        """
        from .._dask import classifier_update

        return classifier_update(self, rows, sign=sign, reset=reset)

    # ------------------------------------------------------------ certified removal
    def _certify_learned(self, X, targets, weights, records, starts):
        """Add the rows' Gram matrix to the removal state; say what voids the guarantee.

        ``starts`` are the (perturbed) priors of a fit, False for ``partial_fit``.
        """
        mean = self._posterior_list()[0].mean  # the design does not depend on it
        gram, row_norm = design_statistics(self.model_.predictor, X, weights, mean)
        reason = None
        if self.inference != "laplace":
            reason = _VI_REASON
        elif not all(record.converged for record in records):
            reason = _UNCONVERGED_REASON
        elif not starts:
            reason = _PARTIAL_FIT_REASON
        if not starts:
            state = self._removal_state.added(gram, row_norm, reason=reason)
        else:
            residuals = [
                self._fit_residual(X, target, weights, start, posterior.mean)
                for target, start, posterior in zip(
                    targets, starts, self._posterior_list(), strict=True
                )
            ]
            state = RemovalState.start(gram, residuals, row_norm, reason)
        if row_norm > 1.0 + 1e-12 and float(self.removal_noise) > 0.0:
            warnings.warn(
                _ROW_NORM_MESSAGE.format(row_norm),
                UserWarning,
                stacklevel=caller_stacklevel(),
            )
        self._set_removal_state(state)

    def _fit_residual(self, X, y, weights, start, theta):
        """``||grad||`` of the perturbed negative log posterior at the fitted mean.

        Newton stops at a tolerance, not at zero: what is left starts the bound.
        """
        terms = self.model_.terms(X, y, weights, theta, with_value=False)
        gradient = terms.gradient - start.precision @ (theta - start.mean)
        return float(np.linalg.norm(gradient))

    def _certify_forgotten(self, X, weights, name, before, records):
        """Add the Newton steps' residual bounds; whether this forget voided the guarantee.

        Any reason counts (a method the certificate does not cover, a floored
        precision, the budget): the forget that turns a valid certificate
        invalid is the one that must say so.
        """
        was_valid = self.certificate_.valid
        gram, _ = design_statistics(self.model_.predictor, X, weights, before[0].mean)
        steps = [
            new.mean - old.mean
            for old, new in zip(before, self._posterior_list(), strict=True)
        ]
        # What a block step leaves of the gradient outside its block (0 for 'laplace').
        left = [float(getattr(record, "predicted_residual", 0.0)) for record in records]
        reason = None
        if name not in _CERTIFIED_METHODS:
            reason = _METHOD_REASON.format(name)
        elif any(record.clipped_eigenvalue < 0.0 for record in records):
            reason = _FLOORED_REASON
        self._set_removal_state(
            self._removal_state.forgot(gram, steps, left=left, reason=reason)
        )
        return was_valid and not self.certificate_.valid

    def _with_certificate(self, outcome, crossed):
        """The outcome with ``certificate_`` in its diagnostics and, if voided, why."""
        certificate = self.certificate_
        if isinstance(outcome.diagnostics, tuple):
            diagnostics = tuple(
                CertifiedDiagnostics(record, certificate) for record in outcome.diagnostics
            )
        else:
            diagnostics = CertifiedDiagnostics(outcome.diagnostics, certificate)
        # Every reason ends with how to restore the guarantee (see _RESTORE).
        messages = (*outcome.warnings, certificate.reason) if crossed else outcome.warnings
        return outcome._replace(diagnostics=diagnostics, warnings=messages)

    def _set_removal_state(self, state):
        self._removal_state = state
        self.certificate_ = state.certificate(
            float(self.removal_noise),
            float(self.removal_epsilon),
            float(self.removal_delta),
        )

    def _run(self, X, labels, weights, sign):
        """Per problem ``(posterior, diagnostics)``; the method, targets, pending state."""
        model = self.model_
        if self.classes_.shape[0] == 2:
            targets = [(labels == 1).astype(np.float64)]
        else:  # one {0, 1} target vector per one-vs-rest problem
            targets = [
                (labels == c).astype(np.float64) for c in range(self.classes_.shape[0])
            ]
        # Several one-vs-rest problems may run in threads; a single one runs here.
        each = self._per_problem if len(targets) > 1 else map
        if sign > 0:
            options = {
                "inference": self.inference,
                "max_iter": self.max_iter,
                "tol": self.tol,
                "verbose": self.verbose,
            }
            results = each(
                lambda p, t: learn(p, model, X, t, weights, **options),
                self._posterior_list(),
                targets,
            )
            pending = self._learn_pending(X, targets, weights, options, each)
            return list(results), self.inference, targets, pending
        method = get_method(self.unlearning)
        missing = [name for name in method.parameters if not hasattr(self, name)]
        if missing:
            raise ValueError(
                f"unlearning={method.name!r} needs parameter(s) {missing} which "
                f"{type(self).__name__} does not have. Choose another unlearning "
                "method. Nothing was changed."
            )
        options = {name: getattr(self, name) for name in method.parameters}
        if sparse.issparse(X) and method.name not in _SPARSE_METHODS:
            X = X.toarray()  # the request's rows only, for a method that reads them dense
        if method.function in _PENDING_METHODS and self.removal_noise is None:
            results, pending = self._run_pending(method, X, targets, weights, options, each)
            return results, method.name, targets, pending
        results = each(
            lambda p, t: method.function(p, model, X, t, weights, **options),
            self._posterior_list(),
            targets,
        )
        return list(results), method.name, targets, None

    def _per_problem(self, function, *arguments):
        """``map(function, *arguments)`` over the one-vs-rest problems, as a list.

        With ``n_jobs`` the problems run in joblib threads: they share the
        validated rows read-only, and the Numba kernels release the GIL, so
        threads run in parallel without copying the data to processes. Each
        problem's arithmetic is the same as in one thread (BLAS keeps its own
        thread count), so the results do not depend on ``n_jobs``. Problems
        run one after another for an estimator without ``n_jobs``, and when
        they draw from one shared ``RandomState`` instance (in threads, the
        order of the draws would change).
        """
        problems = list(zip(*arguments, strict=True))
        shared_draws = isinstance(
            getattr(self, "random_state", None), np.random.RandomState
        )
        if not hasattr(self, "n_jobs") or shared_draws:
            return [function(*problem) for problem in problems]
        return Parallel(n_jobs=self.n_jobs, prefer="threads")(
            delayed(function)(*problem) for problem in problems
        )

    def _run_pending(self, method, X, targets, weights, options, each=map):
        """Divide the union of the pending requests out of the stored full-data posterior.

        Keeps, per problem, an anchor (the posterior before the first forget
        since the fit, with every row learned since: see :meth:`_learn_pending`)
        and the summed site terms (gradient, curvature) of every row forgotten
        since, at its mean; a request adds its rows' terms and re-divides the
        union, so requests one after another end where one request of their
        union would, learned rows or not. ``each`` maps over the problems
        (:meth:`_per_problem` to run them in threads).
        """
        stored = self.__dict__.get("_pending_forgets")
        key = (method.name, sorted(options.items()))
        if self.__dict__.get("_pending_method") != key:
            # Re-dividing the earlier requests under another method or parameter would
            # undo part of their forget: start from the posterior held instead.
            stored = None
        self._pending_method = key
        if stored is None:
            stored = [(posterior, None) for posterior in self._posterior_list()]
            self.__dict__.pop("_pending_origins", None)
        anchors, previous = zip(*stored, strict=True)
        # The posteriors the pending state started from: the anchors until a learn.
        origins = self.__dict__.get("_pending_origins") or list(anchors)
        self._pending_origins = origins  # _conclude drops them with the pending state
        # Rows learned before the pending state started are held as their site at
        # the origin (a learn adds curvature, never re-linearises it): take it there.
        sites = each(
            lambda origin, target: (
                # the site a variational posterior holds
                self.model_.expected_terms(X, target, weights, origin)
                if self.inference == "vi"
                else self.model_.terms(X, target, weights, origin.mean, with_value=False)
            ),
            origins,
            targets,
        )
        terms = [
            site if origin is anchor else _moved_site(site, anchor.mean - origin.mean)
            for anchor, origin, site in zip(anchors, origins, sites, strict=True)
        ]
        # The site's linearisation point, where it is not the anchor's mean (which
        # the divide-out's bounds of the check would assume).
        linearised = [
            {"origin": origin.mean}
            if origin is not anchor and method.function is laplace_divide_out
            else {}
            for anchor, origin in zip(anchors, origins, strict=True)
        ]
        results = each(
            lambda anchor, before, target, site, where: method.function(
                anchor,
                self.model_,
                X,
                target,
                weights,
                **options,
                terms=site,
                previous=before,
                **where,
            ),
            anchors,
            previous,
            targets,
            terms,
            linearised,
        )
        pending = [
            (anchor, site if before is None else before + site)
            for anchor, before, site in zip(anchors, previous, terms, strict=True)
        ]
        return list(results), pending

    def _learn_pending(self, X, targets, weights, options, each=map):
        """The pending requests' state after learning rows; None when there is none.

        The anchor learns the rows too, so that it stays the posterior of every
        row learned, holding each row's curvature where it was learned: the
        union's terms are what it holds of the forgotten rows, and dividing
        them out never removes curvature it lacks. Re-anchoring at the learned
        posterior would divide later requests out at a mean where their rows'
        curvature differs from what it holds (docs/logistic_regression.md).
        The union stays the same Gaussian site, its terms moved to the new
        anchor's mean along their curvature.
        """
        stored = self.__dict__.get("_pending_forgets")
        if stored is None:
            return None
        quiet = {**options, "verbose": 0}  # the reported fit is the posterior's own

        def carry(anchor, union, target):
            learned, _ = learn(anchor, self.model_, X, target, weights, **quiet)
            return learned, _moved_site(union, learned.mean - anchor.mean)

        anchors, unions = zip(*stored, strict=True)
        # The site of rows learned before stays where it was taken (see _run_pending).
        self._pending_origins = self.__dict__.get("_pending_origins") or list(anchors)
        return list(each(carry, anchors, unions, targets))

    def _conclude(self, name, results, pending, class_weight, n_rows, sign):
        """Set the new posteriors and counts; the diagnostics records and the outcome.

        ``results`` are ``(posterior, diagnostics)`` per one-vs-rest problem and
        ``pending`` the forgotten terms to keep (None when learning). A forget's
        warnings name their class.
        """
        self._set_posteriors([posterior for posterior, _ in results])
        if pending is not None:  # _set_posteriors dropped the previous state
            self._pending_forgets = pending
        else:
            self.__dict__.pop("_pending_origins", None)
        records = tuple(diagnostics for _, diagnostics in results)
        self.n_iter_ = max(record.n_iter for record in records)
        held = self.class_count_ > 0
        self.class_count_ = np.maximum(self.class_count_ + sign * class_weight, 0.0)
        self.n_samples_seen_ = self.n_samples_seen_ + int(sign) * n_rows
        if sign > 0:
            return records, UpdateOutcome(name, False, None, None, (), self.n_iter_)
        if len(records) == 1:
            messages = tuple(records[0].warnings)
            diagnostics = records[0]
        else:  # one-vs-rest: say which class's problem went wrong
            messages = tuple(
                f"Class {label!r} (one-vs-rest): {message}"
                for label, record in zip(self.classes_.tolist(), records, strict=True)
                for message in record.warnings
            )
            diagnostics = records
        emptied = self.classes_[held & (self.class_count_ <= 0)].tolist()
        if emptied:
            messages = (*messages, _EMPTIED_CLASSES.format(emptied))
        estimates = [getattr(record, "kl_estimate", None) for record in records]
        estimate = None if None in estimates else float(sum(estimates))
        return records, UpdateOutcome(
            name, False, estimate, diagnostics, messages, self.n_iter_
        )

    def _warn_unconverged(self, records):
        if all(record.converged for record in records):
            return
        advice = "increase max_iter, or standardise the features"
        if self.inference != "laplace":
            # The variational fixed point converges linearly: say how far it got.
            residual = max(getattr(record, "residual", 0.0) for record in records)
            advice = (
                f"its stationarity residual is {residual:.3g} against tol={self.tol:g}; "
                + advice
            )
        warnings.warn(
            f"{'Newton' if self.inference == 'laplace' else 'Variational'} fitting "
            f"did not converge in max_iter={self.max_iter} iterations; {advice}.",
            ConvergenceWarning,
            stacklevel=caller_stacklevel(),
        )

    # ------------------------------------------------------------ helpers
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

    def _n_problems(self):
        return 1 if self.classes_.shape[0] == 2 else self.classes_.shape[0]

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

    # ------------------------------------------------------------ predictions
    @property
    def unlearning_region_mass_(self):
        """Mass of ``q(theta|D)`` inside VBU's adjusted-likelihood region.

        For the current ``unlearning_lambda`` (1.0 when it is 0), from the
        fit on: a value near 0 means the forgotten rows' likelihood would be
        ignored almost everywhere, so little would be forgotten.
        """
        check_is_fitted(self, "model_")
        if self.unlearning_lambda <= 0:
            return 1.0
        return region_mass(self.unlearning_lambda, self.model_.prior.n_features)

    def decision_function(self, X, moderated=True):
        """Logit of each problem's probability (the moderated one by default).

        Binary: the logit of :meth:`predict_proba`. Multiclass: the logit of
        each one-vs-rest problem's probability, before :meth:`predict_proba`
        normalises those probabilities to sum to one.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        moderated : bool, default=True
            Scale the mean logit by ``1 / sqrt(1 + pi s^2 / 8)``, ``s^2`` its
            posterior variance (MacKay's probit approximation); False gives
            the logit at the posterior mean.

        Returns
        -------
        scores : ndarray of shape (n_samples,) or (n_samples, n_classes)
        """
        check_is_fitted(self)
        if is_dask_collection(X):  # a lazy dask array, chunked like X's rows
            from .._dask import predict_rows

            return predict_rows(self, X, "decision_function", moderated=moderated)
        X = validate_data(
            self, X, reset=False, accept_sparse=self._accept_sparse, dtype=np.float64
        )
        X = _by_rows(X)
        predictor = self.model_.predictor
        scores = []
        for posterior in self._posterior_list():
            if moderated:
                mean, variance = predictor.moments(X, posterior)
                mean = mean / np.sqrt(1.0 + np.pi / 8.0 * variance)
            else:
                mean = predictor.value(X, posterior.mean)
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
            False uses the posterior mean only.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Columns in the order of ``classes_``; one-vs-rest probabilities
            normalised to sum to one when multiclass.
        """
        if is_dask_collection(X):  # a lazy dask array, chunked like X's rows
            from .._dask import predict_rows

            return predict_rows(self, X, "predict_proba", moderated=moderated)
        proba = expit(self.decision_function(X, moderated=moderated))
        if proba.ndim == 1:
            return np.column_stack([1.0 - proba, proba])
        return proba / proba.sum(axis=1, keepdims=True)

    def predict_log_proba(self, X, moderated=True):
        """Logarithm of :meth:`predict_proba`, finite where a probability rounds to 0.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        moderated : bool, default=True
            As in :meth:`predict_proba`.

        Returns
        -------
        log_proba : ndarray of shape (n_samples, n_classes)
        """
        if is_dask_collection(X):  # a lazy dask array, chunked like X's rows
            return np.log(self.predict_proba(X, moderated=moderated))
        scores = self.decision_function(X, moderated=moderated)
        # log expit(f) = -log(1 + exp(-f)), taken by logaddexp so that it does not
        # round to log(0) for a confident row.
        if scores.ndim == 1:
            return np.column_stack(
                [-np.logaddexp(0.0, scores), -np.logaddexp(0.0, -scores)]
            )
        log_proba = -np.logaddexp(0.0, -scores)
        return log_proba - logsumexp(log_proba, axis=1, keepdims=True)

    def predict(self, X):
        """Most probable class.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
        """
        if is_dask_collection(X):  # a lazy dask array, chunked like X's rows
            from .._dask import predict_rows

            return predict_rows(self, X, "predict")
        scores = self.decision_function(X)
        if scores.ndim == 1:
            return self.classes_[(scores > 0).astype(int)]
        return self.classes_[np.argmax(scores, axis=1)]
