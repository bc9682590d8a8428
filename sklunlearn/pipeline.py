"""Pipelines that forward ``partial_fit`` and ``partial_unfit`` to their final step."""

import dataclasses
import warnings

import numpy as np
from scipy import sparse
from sklearn import get_config
from sklearn.base import clone
from sklearn.compose import ColumnTransformer
from sklearn.pipeline import FeatureUnion, Pipeline, _name_estimators
from sklearn.preprocessing import PolynomialFeatures
from sklearn.utils import get_tags
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import _is_fitted, check_is_fitted

from ._dask import is_dask_collection
from .base import UnlearningMixin, forwarded
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


def _input_rows(X):
    """The pipeline's input rows as ledger keys: float64 (sparse stays sparse), or None.

    None for input that is not a table of numbers (text, mixed types) or is a
    dask collection: the final estimator then keys its ledger by the
    transformed rows.
    """
    if is_dask_collection(X):
        return None
    if sparse.issparse(X):
        return sparse.csr_matrix(X, dtype=np.float64)
    try:
        rows = np.asarray(X, dtype=np.float64)
    except (TypeError, ValueError):
        return None
    return rows if rows.ndim == 2 else None


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
    given to the pipeline* when they are a table of numbers (an array, a
    sparse matrix, a numeric data frame): transformed rows would not do, since
    a step's output depends in its last bits on the batch it transformed (a
    projection such as ``PCA`` computes each row with BLAS kernels chosen by
    the batch's size), so a row forgotten alone would not match the row
    learned among many. A deletion request must give the rows as they were
    given to :meth:`fit` or :meth:`partial_fit`; a row that was never learned
    is refused. Input that is not a table of numbers (text, mixed types) and
    dask collections are keyed by the transformed rows instead, which then
    must match bit for bit.

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
            transformers are fitted unweighted (unless metadata routing is
            enabled and they request the weights).
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
        rows = _input_rows(X)
        with forwarded(self._final_estimator, rows):
            super().fit(X, y, **params)
        self._keyed_by_input = rows is not None
        return self

    def _forwarded(self, X, messages=(), keyed=None):
        """The context forwarding a request for ``X`` to the final estimator.

        ``keyed``: whether the final estimator's ledger is keyed by the input
        rows (None: as the fitted pipeline's is).
        """
        rows = _input_rows(X)
        if keyed is None:
            keyed = self.__dict__.get("_keyed_by_input", False)
        if rows is None and keyed:
            raise ValueError(
                "This pipeline's ledger holds the rows as they were given to fit, a "
                f"table of numbers; got {type(X).__name__} rows that are not one. Give "
                "them in memory as they were learned. Nothing was changed."
            )
        return forwarded(self._final_estimator, rows if keyed else None, messages)

    def _transform_through_fitted_steps(self, X):
        Xt = X
        for _, _, transformer in self._iter(with_final=False):
            Xt = transformer.transform(Xt)
        return Xt

    @available_if(_final_estimator_has("partial_fit"))
    def partial_fit(self, X, y=None, **params):
        """Learn a batch: transform it, then ``partial_fit`` the final estimator.

        Steps already fitted only ``transform`` the batch (their statistics
        are not updated). On the first call (final estimator not fitted yet),
        unfitted and stateless steps are fitted on this batch, so later
        batches are transformed with the first batch's statistics; fit
        stateful steps beforehand on representative data if that matters.

        Parameters
        ----------
        X : iterable
            Batch, in the input format of the first step.
        y : iterable, default=None
            Targets of the batch.
        **params : dict of str -> object
            Passed to the final estimator's ``partial_fit`` (for example
            ``sample_weight`` or ``classes``).

        Returns
        -------
        self : UnlearningPipeline
        """
        first_call = not _is_fitted(self._final_estimator)
        forward = self._forwarded(
            X, keyed=(_input_rows(X) is not None) if first_call else None
        )
        Xt = X
        newly_fitted = {}
        for index, name, transformer in self._iter(with_final=False):
            fit_step = not _is_fitted(transformer) or (
                first_call and is_stateless(transformer)
            )
            if not fit_step:
                Xt = transformer.transform(Xt)
            else:
                fitted = clone(transformer)
                Xt = fitted.fit_transform(Xt, y)
                newly_fitted[index] = (name, fitted)
        # Steps are replaced only once the final step accepted the batch, so
        # a rejected batch leaves the pipeline as it was.
        with forward:
            self._final_estimator.partial_fit(Xt, y, **params)
        for index, step in newly_fitted.items():
            self.steps[index] = step
        if first_call:
            self._keyed_by_input = _input_rows(X) is not None
        return self

    @available_if(_final_estimator_has("partial_unfit"))
    def partial_unfit(self, X, y=None, sample_weight=None):
        """Forget rows: transform them, then ``partial_unfit`` the final estimator.

        Pass the rows as they were given to :meth:`fit` or :meth:`partial_fit`
        (untransformed). Warns with
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
            Weight to forget per row, passed to the final estimator.

        Returns
        -------
        self : UnlearningPipeline
        """
        check_is_fitted(self)
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
        # An estimator of this package issues the pipeline's warning with its own,
        # before it commits: a warning turned into an error then changes nothing.
        forward = self._forwarded(X, messages if isinstance(final, UnlearningMixin) else ())
        Xt = self._transform_through_fitted_steps(X)
        kwargs = {} if sample_weight is None else {"sample_weight": sample_weight}
        with forward:
            final.partial_unfit(Xt, y, **kwargs)
        if messages and not isinstance(final, UnlearningMixin):
            warnings.warn(messages[0], UnlearningWarning, stacklevel=2)
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
        """The final estimator's ``ledger_`` (fingerprints of the pipeline's input rows)."""
        return self._final_estimator.ledger_

    @property
    def _unlearning_is_exact(self):
        """Exact when every earlier step is stateless and the final step is exact.

        The declaration read by :mod:`sklunlearn.utils.estimator_checks`.
        """
        return all(
            is_stateless(transformer) for _, _, transformer in self._iter(with_final=False)
        ) and bool(getattr(self._final_estimator, "_unlearning_is_exact", False))


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
