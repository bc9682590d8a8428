"""Pipelines that forward ``partial_fit`` and ``partial_unfit`` to their final step."""

import copy
import dataclasses
import math
import warnings
from collections import Counter
from contextlib import contextmanager

import numpy as np
from sklearn import get_config
from sklearn.base import clone
from sklearn.compose import ColumnTransformer
from sklearn.pipeline import FeatureUnion, Pipeline, _name_estimators
from sklearn.preprocessing import PolynomialFeatures
from sklearn.utils import get_tags
from sklearn.utils.metadata_routing import process_routing
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import _is_fitted, check_is_fitted

from ._caller import caller_stacklevel
from ._row_keys import input_row_keys
from .base import UnlearningMixin, forwarded, forwarded_to
from .exceptions import UnlearningWarning

__all__ = ["UnlearningPipeline", "make_unlearning_pipeline", "is_stateless"]

_NO_OP_STEPS = (None, "passthrough", "drop")
# Transformers that need fitting but learn only the number of input features,
# nothing about the rows themselves.
_SHAPE_ONLY_TRANSFORMERS = (PolynomialFeatures,)


def _final_estimator_has(attribute):
    """available_if condition: the final step has ``attribute``."""

    def check(self):
        getattr(self._final_estimator, attribute)
        return True

    return check


def _step_parameters(value):
    """A parameter value in a form that compares with ``==``.

    Estimators are named by type only (their own parameters have their own
    ``name__param`` entries, and an estimator compares by identity, which a
    copy never passes); random states by type (they change as they are used);
    arrays by their bytes; containers item by item.
    """
    if hasattr(value, "get_params"):
        return ("estimator", type(value).__qualname__)
    if isinstance(value, np.random.RandomState | np.random.Generator):
        return ("random state", type(value).__qualname__)
    if isinstance(value, np.ndarray):
        if value.dtype.hasobject:
            return ("array", value.shape, _step_parameters(value.tolist()))
        return ("array", value.dtype.str, value.shape, value.tobytes())
    if isinstance(value, dict):
        return {key: _step_parameters(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_step_parameters(item) for item in value)
    return value


def _equal(a, b):
    """``a == b`` for :func:`_step_parameters` values, item by item, with NaN equal
    to NaN (a common ``missing_values``, and unequal to itself)."""
    if a is b:
        return True
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_equal(a[key], b[key]) for key in a)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return type(a) is type(b) and len(a) == len(b) and all(map(_equal, a, b))
    try:
        return bool(a == b)
    except (TypeError, ValueError):
        return False


def is_stateless(transformer):
    """Whether a transformer learns nothing from the rows it is fitted on.

    Stateless transformers are those scikit-learn tags with
    ``requires_fit=False`` (``FunctionTransformer``, ``Normalizer``,
    ``Binarizer``, ...), ``PolynomialFeatures`` (which learns only the
    number of features), the no-op steps ``None``, ``'passthrough'`` and
    ``'drop'``, and pipelines, feature unions and (fitted) column
    transformers made only of stateless parts. Anything else (scalers, PCA,
    imputers, encoders) is assumed to keep statistics of its training rows.

    Parameters
    ----------
    transformer : estimator, str or None
        A pipeline step.

    Returns
    -------
    stateless : bool
    """
    if isinstance(transformer, str) or transformer is None:
        return transformer in _NO_OP_STEPS
    if isinstance(transformer, Pipeline):
        return all(is_stateless(step) for _, step in transformer.steps)
    if isinstance(transformer, FeatureUnion):
        return all(is_stateless(part) for _, part in transformer.transformer_list)
    if isinstance(transformer, ColumnTransformer):
        # Before fitting, the remainder is not resolved; judge the declared parts.
        parts = getattr(transformer, "transformers_", None)
        if parts is None:
            parts = [*transformer.transformers, ("remainder", transformer.remainder, None)]
        return all(is_stateless(part) for _, part, _ in parts)
    if isinstance(transformer, _SHAPE_ONLY_TRANSFORMERS):
        return True
    return get_tags(transformer).requires_fit is False


def _fits_on_batch(transformer, first_call):
    """Whether ``partial_fit`` fits this step on its batch rather than transforming it.

    Unfitted steps are fitted; on the first call (final step unfitted) so are
    the stateless ones, which learn only the batch's shape.
    """
    return not _is_fitted(transformer) or (first_call and is_stateless(transformer))


class UnlearningPipeline(Pipeline):
    """A :class:`~sklearn.pipeline.Pipeline` whose final step can learn and forget rows.

    :meth:`partial_fit` and :meth:`partial_unfit` pass ``X`` through the
    already fitted transformers (``transform`` only) and forward the result
    to the final estimator's ``partial_fit`` / ``partial_unfit``. Everything
    else (``fit``, ``predict(X, return_std=True)``, parameters, grid search,
    pickling) is scikit-learn's :class:`~sklearn.pipeline.Pipeline`.

    Forgetting is exact through stateless steps (see :func:`is_stateless`).
    A fitted stateful step (``StandardScaler``, ``PCA``, ...) keeps the
    statistics it learned from the forgotten rows, and the final estimator
    keeps seeing features computed with them; :meth:`partial_unfit` then
    emits an :class:`~sklunlearn.exceptions.UnlearningWarning` naming the
    steps. Remedies: refit the pipeline on the remaining rows, fit those
    steps on data that will never need forgetting (then silence the warning),
    or use stateless steps.

    The final estimator's ledger (``ledger_``, see
    :class:`~sklunlearn.ledger.Ledger`) fingerprints the rows *as they were
    given to the pipeline*, not as the steps transform them: a step's output
    depends in its last bits on the batch it transformed (a projection such as
    ``PCA`` computes each row with BLAS kernels chosen by the batch's size),
    and an encoder may give a value it never saw the code of one it did. Text
    and categories are read by their values, and NaN (for an imputer) as NaN.
    A deletion request must give the rows as they were given to :meth:`fit` or
    :meth:`partial_fit`; a row that was never learned is refused.

    A data frame given to :meth:`partial_unfit`, to :meth:`partial_fit` once
    the first step is fitted, or to ``ledger_.contains`` / ``fingerprint``
    is read as the columns the first step was fitted on (its
    ``feature_names_in_``; past a ``'passthrough'``, the next step's), by name
    and in the fitted order, before both the ledger and the steps see it: its
    columns may come in any order, columns the pipeline was not fitted on (a
    request id, say) are dropped, and a missing column is refused. The first
    step therefore always sees the frame
    it was fitted on, so its own feature-name check passes for such requests
    even where it would refuse the same frame in ``predict``; ``predict`` and
    the other methods are scikit-learn's and give the frame to the first step
    as it is. A pipeline fitted on an array reads a frame by position.

    Changing a fitted step's parameters with ``set_params`` makes later
    requests refuse (the steps would transform the rows otherwise). A dask
    collection is keyed by its transformed rows, which must then match bit for
    bit. A pipeline whose final step is another :class:`UnlearningPipeline`
    keys that one's final estimator by its own input rows.

    Read more in the :ref:`User Guide <unlearning_pipeline>`.

    Parameters
    ----------
    steps : list of tuples
        ``(name, transformer)`` pairs, the last one ``(name, estimator)``
        where the estimator has ``partial_unfit``. See
        :class:`~sklearn.pipeline.Pipeline`.
    transform_input : list of str, default=None
        See :class:`~sklearn.pipeline.Pipeline`.
    memory : str or object with the joblib.Memory interface, default=None
        See :class:`~sklearn.pipeline.Pipeline`.
    verbose : bool, default=False
        See :class:`~sklearn.pipeline.Pipeline`.

    Attributes
    ----------
    named_steps : :class:`~sklearn.utils.Bunch`
        Access the steps by name.
    posterior_ : GaussianPosterior
        The final estimator's posterior (when it has one).
    forget_report_ : ForgetReport
        The final estimator's report of the last :meth:`partial_unfit`.
    ledger_ : Ledger
        The final estimator's ledger of the rows it learned, as they were given
        to the pipeline (see above).
    classes_ : ndarray of shape (n_classes,)
        The classes labels (only for classifiers).
    n_features_in_ : int
        Number of features seen by the first step during :term:`fit`.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of features seen by the first step during :term:`fit`.

    See Also
    --------
    make_unlearning_pipeline : Build one without naming the steps.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.preprocessing import FunctionTransformer
    >>> from sklunlearn.linear_model import BayesianLinearRegression
    >>> from sklunlearn.pipeline import make_unlearning_pipeline
    >>> rng = np.random.RandomState(0)
    >>> X = rng.rand(100, 2)
    >>> y = np.log1p(X) @ [1.0, -1.0] + 0.1 * rng.randn(100)
    >>> pipe = make_unlearning_pipeline(FunctionTransformer(np.log1p),
    ...                                 BayesianLinearRegression()).fit(X, y)
    >>> pipe = pipe.partial_unfit(X[:10], y[:10])
    >>> retrained = make_unlearning_pipeline(FunctionTransformer(np.log1p),
    ...                                      BayesianLinearRegression()).fit(X[10:], y[10:])
    >>> bool(np.allclose(pipe.predict(X), retrained.predict(X)))
    True
    """

    def fit(self, X, y=None, sample_weight=None, **params):
        """Fit the transformers, then the final estimator (see ``Pipeline.fit``).

        Parameters
        ----------
        X : iterable
            Training data, in the input format of the first step.
        y : iterable, default=None
            Targets.
        sample_weight : array-like of shape (n_samples,), default=None
            Row weights for the final estimator, so that ``fit``,
            ``partial_fit`` and ``partial_unfit`` take weights alike. The
            transformers are fitted unweighted. With metadata routing
            enabled, the weights go where the steps' fit requests send them,
            in ``fit`` as in :meth:`partial_fit` and :meth:`partial_unfit`.
        **params : dict of str -> object
            As in :meth:`sklearn.pipeline.Pipeline.fit`.

        Returns
        -------
        self : UnlearningPipeline
        """
        if sample_weight is not None:
            if get_config()["enable_metadata_routing"]:
                params["sample_weight"] = sample_weight
            else:
                params[f"{self.steps[-1][0]}__sample_weight"] = sample_weight
        with self._request(X, first=True) as keyed:
            super().fit(X, y, **params)
        self._keyed_by_input = keyed
        self._record_step_parameters()
        return self

    @contextmanager
    def _request(self, X, messages=(), *, first=False):
        """Forward a request for ``X`` to the final estimator; yields whether keyed.

        The final estimator's ledger is keyed by ``X`` as given here (see
        :func:`~sklunlearn._row_keys.input_row_keys`), or, when this pipeline
        is itself the final step of another, by that pipeline's rows. Only a
        fit or the first ``partial_fit`` (``first``) decides whether the
        ledger is keyed by the input rows at all (not for a dask collection);
        later requests follow it.
        """
        outer = forwarded_to(self)
        if outer is not None:
            rows, messages = outer.rows, (*outer.warnings, *messages)
        else:
            rows = input_row_keys(X, None if first else self._input_names())
        keyed = rows is not None if first else self.__dict__.get("_keyed_by_input", False)
        if rows is None and keyed:
            raise ValueError(
                "This pipeline's ledger holds the rows as they were given to fit, in "
                f"memory; got {type(X).__name__} rows. Give them in memory as they were "
                "learned (e.g. X.compute()). Nothing was changed."
            )
        with forwarded(self._final_estimator, rows if keyed else None, messages):
            yield keyed

    def __copy__(self):
        # Each step is copied too: a copy sharing the final estimator would share its
        # ledger (and partial_fit replaces steps in the list in place).
        new = object.__new__(type(self))
        new.__dict__.update(self.__dict__)
        new.steps = [(name, copy.copy(step)) for name, step in self.steps]
        return new

    def _input_names(self):
        """The column names the first step that is not ``'passthrough'`` saw at fit
        (the one that reads the frame as given), or None."""
        for _, step in self.steps:
            if step is not None and not isinstance(step, str):
                return getattr(step, "feature_names_in_", None)
        return None

    def _read_request(self, X):
        """A data frame ``X`` as the first step's fitted columns, by name, in order.

        Anything else, or any ``X`` when the first step saw no names, is
        returned as it is.
        """
        names = self._input_names()
        columns = getattr(X, "columns", None)
        if names is None or columns is None:
            return X
        names, columns = [str(name) for name in names], list(columns)
        if columns == names:
            return X
        counts = Counter(columns)
        missing = [name for name in names if counts[name] == 0]
        repeated = [name for name in names if counts[name] > 1]
        if missing or repeated:
            problem = (
                f"lacks the column(s) {missing} the pipeline was fitted with"
                if missing
                else f"has the column(s) {repeated} more than once"
            )
            raise ValueError(
                f"X {problem}; give each fitted column once, by name (in any order; "
                "columns not seen at fit are dropped). Nothing was changed."
            )
        return X[names]

    def _fit_routing(self, metadata):
        """Where :meth:`fit` sends ``metadata``, and what the final step gets.

        With metadata routing enabled, ``fit`` gives each step the metadata
        its fit request asks for, under the name (or alias) the request
        gives; a later learn or forget must weigh the rows as that fit did.
        Routing refuses metadata that no step requested, or that a step left
        unset, as in ``fit``. Without routing, ``metadata`` goes to the final
        step as it is.

        Parameters
        ----------
        metadata : dict of str -> object
            The keyword arguments of the call, ``sample_weight`` or its alias
            among them.

        Returns
        -------
        routing : Bunch or None
            ``routing[step name][method]``: the keyword arguments for that
            step's method; None without routing (or without metadata).
        final : dict of str -> object
            The keyword arguments for the final step's ``fit``.
        """
        metadata = {key: value for key, value in metadata.items() if value is not None}
        if not metadata or not get_config()["enable_metadata_routing"]:
            return None, metadata
        routing = process_routing(self, "fit", **metadata)
        return routing, dict(routing[self.steps[-1][0]]["fit"])

    def _record_step_parameters(self):
        self._fitted_step_parameters = {
            name: copy.deepcopy(
                {key: _step_parameters(v) for key, v in step.get_params(deep=True).items()}
            )
            for _, name, step in self._iter(with_final=False)
            if hasattr(step, "get_params")
        }

    def _check_step_parameters(self):
        """Refuse a request when a fitted step's parameters changed since the fit.

        The steps would transform the rows otherwise than they did for the
        rows learned, and the final estimator would forget other rows.
        """
        fitted = self.__dict__.get("_fitted_step_parameters")
        if fitted is None:
            return
        changed = []
        for _, name, step in self._iter(with_final=False):
            if name not in fitted or not hasattr(step, "get_params"):
                continue
            current = step.get_params(deep=True)
            for key, value in fitted[name].items():
                if key not in current or not _equal(_step_parameters(current[key]), value):
                    changed.append(f"{name}__{key}")
        if changed:
            raise ValueError(
                f"{', '.join(changed)} changed since the pipeline was fitted: its steps "
                "would transform these rows otherwise than the rows learned, and the "
                "final step would forget other rows. Fit again, or set them back with "
                "set_params. Nothing was changed."
            )

    def _transform_through_fitted_steps(self, X):
        Xt = X
        for _, _, transformer in self._iter(with_final=False):
            Xt = transformer.transform(Xt)
        return Xt

    def _fit_transform_batch(self, X, y, first_call, routing):
        """A batch through the steps, and the steps newly fitted on it (unapplied).

        Fitted steps transform the batch; clones of the others (see
        :func:`_fits_on_batch`) are fitted on it, with the weights ``fit``
        would route them.

        Returns
        -------
        Xt : array-like
            The batch as the final step takes it.
        newly_fitted : dict of int -> (str, estimator)
            The fitted clones, by position in ``steps``.
        """
        Xt = X
        newly_fitted = {}
        for index, name, transformer in self._iter(with_final=False):
            if not _fits_on_batch(transformer, first_call):
                Xt = transformer.transform(Xt)
                continue
            step_params = {} if routing is None else routing[name].get("fit_transform", {})
            fitted = clone(transformer)
            Xt = fitted.fit_transform(Xt, y, **step_params)
            newly_fitted[index] = (name, fitted)
        return Xt, newly_fitted

    @available_if(_final_estimator_has("partial_fit"))
    def partial_fit(self, X, y=None, **params):
        """Learn a batch: transform it, then ``partial_fit`` the final estimator.

        Steps already fitted only ``transform`` the batch (their statistics
        are not updated). On the first call (final estimator not fitted yet),
        unfitted and stateless steps are fitted on this batch (given the
        weights that :meth:`fit` would route them), so later batches are
        transformed with the first batch's statistics; fit stateful steps
        beforehand on representative data if that matters. A data frame is
        read by name as in :meth:`partial_unfit` once the first step is fitted.

        Parameters
        ----------
        X : iterable
            Batch, in the input format of the first step.
        y : iterable, default=None
            Targets of the batch.
        **params : dict of str -> object
            Passed to the final estimator's ``partial_fit`` (for example
            ``sample_weight`` or ``classes``). With metadata routing enabled,
            the weights (or their alias) are routed as :meth:`fit` routes
            them: to the final step only when its fit request asks for them.

        Returns
        -------
        self : UnlearningPipeline
        """
        # fit validates through scikit-learn's _fit_context; a batch must be held to the
        # same constraints.
        if not get_config()["skip_parameter_validation"]:
            self._validate_params()
        first_call = not _is_fitted(self._final_estimator)
        if not first_call:
            self._check_step_parameters()
        first = self.steps[0][1]
        if first in _NO_OP_STEPS or not _fits_on_batch(first, first_call):
            # The first step keeps its fitted columns: read the batch by them.
            X = self._read_request(X)
        classes = {} if "classes" not in params else {"classes": params.pop("classes")}
        routing, params = self._fit_routing(params)
        params.update(classes)
        forward = self._request(X, first=first_call)
        Xt, newly_fitted = self._fit_transform_batch(X, y, first_call, routing)
        # Steps are replaced only once the final step accepted the batch, so
        # a rejected batch leaves the pipeline as it was.
        with forward as keyed:
            self._final_estimator.partial_fit(Xt, y, **params)
        for index, step in newly_fitted.items():
            self.steps[index] = step
        if first_call:
            self._keyed_by_input = keyed
            self._record_step_parameters()
        return self

    @available_if(_final_estimator_has("partial_unfit"))
    def partial_unfit(self, X, y=None, sample_weight=None, **params):
        """Forget rows: transform them, then ``partial_unfit`` the final estimator.

        Pass the rows as they were given to :meth:`fit` or :meth:`partial_fit`
        (untransformed; a data frame's columns by name, see the class
        description). Warns with
        :class:`~sklunlearn.exceptions.UnlearningWarning` when a fitted step
        before the final one is stateful and so may still hold statistics of
        these rows.

        Parameters
        ----------
        X : iterable
            Rows to forget, in the input format of the first step.
        y : iterable, default=None
            Their targets.
        sample_weight : array-like of shape (n_samples,), default=None
            Weight to forget per row, passed to the final estimator (with
            metadata routing enabled, only when its fit request asks for
            weights, as :meth:`fit` does; otherwise it forgets whole rows).
        **params : dict of str -> object
            With metadata routing enabled, the weights under the alias the
            final step's fit request gives them (``set_fit_request(
            sample_weight="w")`` learns from ``fit(X, y, w=...)`` and forgets
            with ``partial_unfit(X, y, w=...)``), routed as :meth:`fit` routes
            them. Without routing, none are accepted.

        Returns
        -------
        self : UnlearningPipeline
        """
        check_is_fitted(self)
        if not get_config()["skip_parameter_validation"]:
            self._validate_params()
        stateful = [
            f"'{name}' ({type(transformer).__name__})"
            for _, name, transformer in self._iter(with_final=False)
            if not is_stateless(transformer)
        ]
        messages = ()
        if stateful:
            messages = (
                f"The final step forgot the rows, but the fitted step(s) "
                f"{', '.join(stateful)} may still hold statistics of them (means, "
                "scales, components, ...) and keep transforming new data with those. "
                "To forget them there too, refit the pipeline on the remaining rows; "
                "or fit these steps on data that never needs forgetting and ignore this "
                "UnlearningWarning; or use stateless steps (FunctionTransformer).",
            )
        final = self._final_estimator
        # An estimator of this package (or a pipeline ending in one) issues the
        # pipeline's warning with its own, before it commits: a warning turned into
        # an error then changes nothing.
        forwards = isinstance(final, UnlearningMixin | UnlearningPipeline)
        self._check_step_parameters()
        X = self._read_request(X)
        if params and not get_config()["enable_metadata_routing"]:
            raise TypeError(
                f"partial_unfit got unexpected argument(s) {sorted(params)}: without "
                "metadata routing it takes only sample_weight. Nothing was changed."
            )
        _, routed = self._fit_routing({"sample_weight": sample_weight, **params})
        if isinstance(final, UnlearningPipeline):
            # An inner pipeline routes its share again, under the names (aliases) its
            # own steps request, as its fit did.
            kwargs = routed
        else:
            weights = routed.get("sample_weight")
            kwargs = {} if weights is None else {"sample_weight": weights}
        forward = self._request(X, messages if forwards else ())
        Xt = self._transform_through_fitted_steps(X)
        with forward:
            final.partial_unfit(Xt, y, **kwargs)
        if messages and not forwards:
            warnings.warn(messages[0], UnlearningWarning, stacklevel=caller_stacklevel())
        return self

    @property
    def posterior_(self):
        """The final estimator's ``posterior_``."""
        return self._final_estimator.posterior_

    @property
    def forget_report_(self):
        """The final estimator's ``forget_report_``; ``exact`` only when the whole
        pipeline forgets exactly (a fitted-statistics step still carries the rows)."""
        report = self._final_estimator.forget_report_
        if report.exact and not self._unlearning_is_exact:
            return dataclasses.replace(report, exact=False)
        return report

    @property
    def ledger_(self):
        """The final estimator's ``ledger_``, read with the rows as given to the pipeline.

        Its methods that take rows (``contains``, ``fingerprint``) take them as
        :meth:`fit` did (a data frame's columns by name, as :meth:`partial_unfit`
        reads them); everything else is the final estimator's ledger's.
        """
        ledger = self._final_estimator.ledger_
        if not self.__dict__.get("_keyed_by_input", False):
            return ledger
        if isinstance(ledger, _InputRowsLedger):
            # An inner pipeline's ledger holds this pipeline's input rows' keys (they
            # were forwarded to it): read it with this pipeline's keys only.
            ledger = ledger._ledger
        return _InputRowsLedger(
            ledger, lambda X: input_row_keys(self._read_request(X), self._input_names())
        )

    @property
    def _unlearning_is_exact(self):
        """Exact when every earlier step is stateless and the final step is exact.

        The declaration read by :mod:`sklunlearn.utils.estimator_checks`.
        """
        return all(
            is_stateless(transformer) for _, _, transformer in self._iter(with_final=False)
        ) and bool(getattr(self._final_estimator, "_unlearning_is_exact", False))


class _InputRowsLedger:
    """A ledger keyed by input row keys, read with the input rows themselves."""

    def __init__(self, ledger, keys):
        self._ledger = ledger
        self._keys = keys

    def __getattr__(self, name):
        return getattr(self._ledger, name)

    def __len__(self):
        return len(self._ledger)

    def __repr__(self):
        return repr(self._ledger)

    def contains(self, X, y):
        """See :meth:`sklunlearn.ledger.Ledger.contains`; ``X`` as given to fit."""
        return self._ledger.contains(self._keys(X), y)

    def fingerprint(self, X, y):
        """See :meth:`sklunlearn.ledger.Ledger.fingerprint`; ``X`` as given to fit."""
        return self._ledger.fingerprint(self._keys(X), y)


def make_unlearning_pipeline(*steps, memory=None, transform_input=None, verbose=False):
    """Construct an :class:`UnlearningPipeline` from the given estimators.

    Like :func:`sklearn.pipeline.make_pipeline`: the steps are named after
    their lowercased class names.

    Parameters
    ----------
    *steps : list of estimators
        Transformers, then a final estimator with ``partial_unfit``.
    memory : str or object with the joblib.Memory interface, default=None
        See :class:`~sklearn.pipeline.Pipeline`.
    transform_input : list of str, default=None
        See :class:`~sklearn.pipeline.Pipeline`.
    verbose : bool, default=False
        See :class:`~sklearn.pipeline.Pipeline`.

    Returns
    -------
    pipeline : UnlearningPipeline

    Examples
    --------
    >>> from sklearn.preprocessing import StandardScaler
    >>> from sklunlearn.linear_model import BayesianLinearRegression
    >>> from sklunlearn.pipeline import make_unlearning_pipeline
    >>> make_unlearning_pipeline(StandardScaler(), BayesianLinearRegression())
    UnlearningPipeline(steps=[('standardscaler', StandardScaler()),
                              ('bayesianlinearregression',
                               BayesianLinearRegression())])
    """
    return UnlearningPipeline(
        _name_estimators(steps),
        transform_input=transform_input,
        memory=memory,
        verbose=verbose,
    )
