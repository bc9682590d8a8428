"""Aligned row chunks of a dask collection, validated and summed on the workers."""

import functools
import operator
import warnings
from dataclasses import dataclass

import numpy as np
from sklearn.base import clone
from sklearn.exceptions import DataConversionWarning
from sklearn.utils.validation import validate_data

from .._caller import caller_stacklevel
from ..base import check_weights
from . import is_dask_collection

__all__ = ["DaskRows"]

# Parts added per task of the tree reduction: log_8(chunks) levels, and no task
# holds more than eight parts at once.
FAN_IN = 8


def _kind(obj):
    """``'DataFrame'``, ``'Series'`` or ``'Array'`` for dask collections, else None.

    By class name: a delayed object answers every attribute, so duck typing fails.
    """
    name = type(obj).__name__
    if is_dask_collection(obj) and name in ("DataFrame", "Series", "Array"):
        return name
    return None


def _is_frame(obj):
    """A dask DataFrame, as opposed to an array, a series or a delayed object."""
    return _kind(obj) == "DataFrame"


def _describe(X):
    """``(n_features, dtype, stand_in)`` from the collection's metadata alone.

    ``stand_in`` is an empty array or frame with X's columns: scikit-learn's
    own checks of the feature count and names run on it on the client.
    """
    if _is_frame(X):
        meta = X._meta  # an empty pandas frame with the columns and dtypes
        try:
            dtype = np.result_type(*meta.dtypes)
        except TypeError:  # extension or object dtypes: validation converts or refuses
            dtype = np.dtype(np.float64)
        return len(X.columns), _float_dtype(dtype), meta
    if _kind(X) != "Array":  # a series, a delayed object, a bag
        raise TypeError(
            f"Expected rows in a dask array or dataframe, got a {type(X).__name__}. "
            "Convert it (series.to_frame(), dask.array.from_delayed, ...) first."
        )
    if X.ndim != 2:
        raise ValueError(
            f"Expected a 2D dask array of rows, got a {X.ndim}D array of shape "
            f"{X.shape}. Reshape your data, e.g. X.reshape(-1, 1) for a single feature."
        )
    return int(X.shape[1]), _float_dtype(X.dtype), np.empty((0, X.shape[1]), X.dtype)


def _float_dtype(dtype):
    """The dtype validation gives: float32 and float64 are kept, the rest is float64."""
    return dtype if dtype in (np.float32, np.float64) else np.dtype(np.float64)


def _split(X, y, sample_weight):
    """Per-chunk parts of ``X`` (delayed), with ``y``'s and the weights' aligned to them."""
    y = _as_column(y)
    if _is_frame(X):
        x_parts = list(X.to_delayed())
        lengths = None

        def parts_of(values, what):
            nonlocal lengths
            if _same_partitions(values, X):
                return list(values.to_delayed())
            if lengths is None:  # one small result per partition
                lengths = tuple(int(k) for k in X.map_partitions(len).compute())
            return _parts_of(values, lengths, what)

    else:
        X = X.rechunk({1: -1})  # whole rows per chunk: the kernels read rows
        if any(np.isnan(size) for size in X.chunks[0]):
            X = X.compute_chunk_sizes()
        x_parts = list(X.to_delayed().ravel())

        def parts_of(values, what):
            return _parts_of(values, X.chunks[0], what)

    return list(
        zip(x_parts, parts_of(y, "y"), parts_of(sample_weight, "weights"), strict=True)
    )


def _as_column(y):
    """``y`` with one value per row: a column vector raveled, a wider ``y`` refused.

    Done on the client, as scikit-learn's ``column_or_1d`` does in memory, so the
    warning is given once rather than once per chunk and the refusal gives the
    shape of the whole ``y``, not of a chunk's.
    """
    if y is None:  # refused by the chunks' validation, with the in-memory message
        return y
    kind = _kind(y)
    if kind == "DataFrame":
        if len(y.columns) == 1:
            _warn_column_vector()
            return y[y.columns[0]]
        raise _not_1d((int(y.shape[0].compute()), len(y.columns)))
    if kind is None and is_dask_collection(y):
        return y  # refused by _parts_of with the type it has
    if kind is None:
        y = np.asarray(y)  # already on the client
    if y.ndim < 2:
        return y
    if y.ndim == 2 and y.shape[1] == 1:
        _warn_column_vector()
        return y[:, 0]
    if kind == "Array" and any(np.isnan(size) for size in y.chunks[0]):
        y = y.compute_chunk_sizes()
    raise _not_1d(tuple(int(size) for size in y.shape))


def _warn_column_vector():
    """scikit-learn's warning for a column-vector ``y``, pointing at the user's call."""
    warnings.warn(
        "A column-vector y was passed when a 1d array was expected. Please change "
        "the shape of y to (n_samples, ), for example using ravel().",
        DataConversionWarning,
        stacklevel=caller_stacklevel(),
    )


def _not_1d(shape):
    """scikit-learn's refusal of a ``y`` that is not one column."""
    return ValueError(f"y should be a 1d array, got an array of shape {shape} instead.")


def _same_partitions(values, X):
    return (
        _kind(values) in ("DataFrame", "Series")
        and values.npartitions == X.npartitions
        and values.divisions == X.divisions
    )


def _parts_of(values, lengths, what):
    """``values`` (a dask or in-memory 1-D sequence) cut into chunks of ``lengths`` rows."""
    if values is None:
        return [None] * len(lengths)
    n = int(sum(lengths))
    if is_dask_collection(values):
        if _kind(values) in ("DataFrame", "Series"):
            values = values.to_dask_array(lengths=True)
        elif _kind(values) != "Array":
            raise TypeError(
                f"Expected {what} as a dask array or series, or in memory, got a "
                f"{type(values).__name__}."
            )
        elif any(np.isnan(size) for size in values.chunks[0]):
            values = values.compute_chunk_sizes()
        _check_length(values.shape, n, what)
        values = values.rechunk(
            {0: tuple(lengths)} | {axis: -1 for axis in range(1, values.ndim)}
        )
        return list(values.to_delayed().ravel())
    values = np.asarray(values)  # already on the client: sent to the workers in chunks
    _check_length(values.shape, n, what)
    return np.split(values, np.cumsum(lengths)[:-1])


def _check_length(shape, n, what):
    """The in-memory messages of scikit-learn for a length mismatch."""
    if len(shape) and shape[0] == n:
        return
    if what == "weights":
        raise ValueError(f"sample_weight.shape == {tuple(shape)}, expected {(n,)}!")
    raise ValueError(
        "Found input variables with inconsistent numbers of samples: "
        f"{[n, int(shape[0]) if len(shape) else 0]}"
    )


@dataclass(frozen=True)
class _Part:
    """What one chunk (or a subtree of chunks) contributes to a reduction."""

    value: object
    weight: float
    rows: int
    recorded: object = None

    def __add__(self, other):
        return _Part(
            _add(self.value, other.value),
            self.weight + other.weight,
            self.rows + other.rows,
            None if self.recorded is None else _add(self.recorded, other.recorded),
        )


@dataclass(frozen=True)
class _Request:
    """Fingerprints and weights of the rows of a forget request, in request order."""

    fingerprints: np.ndarray
    weights: np.ndarray

    def __add__(self, other):
        return _Request(
            np.concatenate([self.fingerprints, other.fingerprints]),
            np.concatenate([self.weights, other.weights]),
        )


def _add(a, b):
    """``a + b`` for sums, elementwise for tuples of them, merge for ledgers."""
    if type(a) is tuple:  # not a NamedTuple, whose + concatenates
        return tuple(_add(x, y) for x, y in zip(a, b, strict=True))
    if hasattr(a, "spawn"):  # a Ledger: merge copies, so a retried task sees its inputs
        merged = a.copy()
        merged.merge(b)
        return merged
    return a + b


def _sum_parts(parts):
    """Sum of the non-empty parts, or None when every chunk was empty."""
    parts = [part for part in parts if part is not None]
    if not parts:
        return None
    # Overflow shows as inf in the sums, refused on the client with advice.
    with np.errstate(over="ignore", invalid="ignore"):
        return functools.reduce(operator.add, parts)


def _union(parts):
    return functools.reduce(np.union1d, parts)


def _unique(y):
    return np.unique(np.asarray(y))


def _tree_sum(parts, combine=_sum_parts):
    """Delayed ``combine`` of ``parts`` as a tree of fan-in :data:`FAN_IN`.

    ``combine`` takes a list of parts (default: their sum, skipping empty ones).
    """
    from dask import delayed

    combine = delayed(combine, pure=True)
    while len(parts) > 1:
        parts = [combine(parts[i : i + FAN_IN]) for i in range(0, len(parts), FAN_IN)]
    return parts[0]


def _chunk_part(template, X, y, weights, function, args, ledger):
    """One chunk on a worker: validated as in memory, then ``function``'s part.

    ``ledger`` is None, ``('add', ledger)`` (the chunk's rows are recorded in a
    spawn of it) or ``('forget', ledger)`` (they are fingerprinted with its key).
    """
    if X.shape[0] == 0:  # an empty chunk adds nothing (and must not refuse the rest)
        return None
    X, y_model, y_key = template._validate_rows(X, y, reset=False)
    weights = check_weights(weights, X, allow_all_zero=True)
    value = function(X, y_model, weights, *args)
    recorded = None
    if ledger is not None:
        mode, parent = ledger
        rows = np.asarray(X, dtype=np.float64)
        if mode == "add":
            recorded = parent.spawn()
            recorded.add(rows, y_key, weights)
        else:
            recorded = _Request(parent.fingerprint(rows, y_key), weights)
    return _Part(value, float(weights.sum()), int(np.count_nonzero(weights)), recorded)


@dataclass(frozen=True)
class _Gathered:
    """Validated rows; ``+`` stacks them in row order (the tree adds left to right)."""

    X: np.ndarray
    y: np.ndarray
    weights: np.ndarray

    def __add__(self, other):
        return _Gathered(
            np.concatenate([self.X, other.X]),
            np.concatenate([self.y, other.y]),
            np.concatenate([self.weights, other.weights]),
        )


def _gathered(X, y, weights):
    return _Gathered(X, y, weights)


def _nothing(X, y, weights):
    return 0.0


class DaskRows:
    """The rows of one learn or forget call, held in a dask array or dataframe.

    Built on the client from the collections' metadata: the feature count and
    names are checked there by scikit-learn's own code (the estimator's
    ``n_features_in_`` and ``feature_names_in_`` are set on ``reset``), and
    ``y`` and the weights are cut into chunks aligned with ``X``'s rows.
    :meth:`reduce` then validates every chunk on its worker with the
    estimator's ``_validate_rows`` (the same messages as in memory) and sums a
    function of the chunks in a tree; nothing of the size of the data reaches
    the client.

    The first :meth:`reduce` also sums the weights and, with
    :meth:`record_into` or :meth:`check_against`, fingerprints the rows with
    the ledger's key on the workers; a forget request the ledger refuses
    raises there, before the estimator uses the sums.

    Parameters
    ----------
    estimator : estimator with ``_validate_rows``
    X : dask array of shape (n, n_features) or dask DataFrame
    y : dask array or series, or array-like, of shape (n,)
    sample_weight : dask array or series, array-like of shape (n,), or None
    reset : bool
        Whether this is a fit (the estimator's feature count and names are set).
    forget : bool, default=False
        Whether the rows are to be forgotten (zero weights are then allowed).
    **options
        Further arguments of the public method (``classes`` of a classifier's
        ``partial_fit``), kept as ``options`` for the estimator's update.

    Attributes
    ----------
    n_features : int
    dtype : numpy dtype
        float32 or float64, as in-memory validation would give.
    weight : float or None
        Total weight of the rows, after the first :meth:`reduce`.
    n_rows : int or None
        Rows with a positive weight, after the first :meth:`reduce`.
    """

    def __init__(self, estimator, X, y, sample_weight, *, reset, forget=False, **options):
        self.estimator = estimator
        self.forget = forget
        self.options = options
        self.n_features, self.dtype, self._stand_in = _describe(X)
        validate_data(estimator, self._stand_in, reset=reset, skip_check_array=True)
        self._parts = _split(X, y, sample_weight)
        self._ledger = None
        self._mode = None
        self.weight = self.n_rows = None
        self._recorded = self._plan = None

    def record_into(self, ledger):
        """Fingerprint the rows in the first pass, to be merged into ``ledger``."""
        self._ledger, self._mode = ledger, "add"

    def check_against(self, ledger):
        """Fingerprint the rows in the first pass and check the forget with ``ledger``."""
        self._ledger, self._mode = ledger, "forget"

    def template(self):
        """A clone of the estimator with what validation needs of its fitted state.

        Only the parameters, the feature count and names and ``classes_`` travel
        to the workers, never the model or its ledger.
        """
        template = clone(self.estimator)
        for name in ("n_features_in_", "feature_names_in_", "classes_"):
            if name in self.estimator.__dict__:
                setattr(template, name, self.estimator.__dict__[name])
        return template

    def reduce(self, function, *args):
        """``sum over chunks of function(X, y, weights, *args)``, computed on the workers.

        ``X, y, weights`` are a chunk's rows validated by the estimator's
        ``_validate_rows`` (``y`` as the update needs it); ``function`` must
        be importable by the workers (a module-level function), and its
        results add with ``+`` (plain tuples of them elementwise).
        """
        import dask

        first = self.weight is None
        ledger = None
        if first and self._ledger is not None:
            ledger = dask.delayed(
                (self._mode, self._ledger.spawn()), pure=False, traverse=False
            )
        template = dask.delayed(self.template(), pure=False, traverse=False)
        shared = dask.delayed((function, args), pure=False, traverse=False)
        task = dask.delayed(_chunk_part, pure=True)
        parts = [
            task(template, X, y, w, shared[0], shared[1], ledger) for X, y, w in self._parts
        ]
        (total,) = dask.compute(_tree_sum(parts))
        if total is None:
            self._refuse_empty()
        if first:
            self._first_pass(total)
        return total.value

    def gather(self):
        """The validated rows, on the client: ``(X, y, weights)`` in row order.

        One pass (the first also fingerprints the rows for the ledger). For a
        deletion request, which must fit in the client's memory.
        """
        gathered = self.reduce(_gathered)
        return gathered.X, gathered.y, gathered.weights

    def unique_targets(self):
        """The sorted distinct values of ``y`` (unvalidated), from one pass over ``y``."""
        import dask

        task = dask.delayed(_unique, pure=True)
        (classes,) = dask.compute(_tree_sum([task(y) for _, y, _ in self._parts], _union))
        return classes

    def _first_pass(self, total):
        self.weight, self.n_rows = total.weight, total.rows
        if not self.forget and self.weight == 0.0:
            raise ValueError("Sample weights must contain at least one non-zero number.")
        if self._mode == "add":
            self._recorded = total.recorded
        elif self._mode == "forget":
            request = total.recorded
            self._plan = self._ledger.plan_forget_fingerprints(
                request.fingerprints, request.weights
            )

    def _refuse_empty(self):
        """Raise what in-memory validation raises for no rows at all."""
        self.template()._validate_rows(self._stand_in, np.empty(0), reset=False)
        raise ValueError("X has no rows.")  # unreachable unless validation accepts none

    def _ensure_first_pass(self):
        if self.weight is None:
            self.reduce(_nothing)

    def learned_ledger(self):
        """The rows' entries, in a spawn of the ledger given to :meth:`record_into`."""
        self._ensure_first_pass()
        return self._recorded

    def forget_plan(self):
        """The checked plan of the ledger given to :meth:`check_against`."""
        self._ensure_first_pass()
        return self._plan
