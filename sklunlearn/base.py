"""What every estimator that forgets shares.

One path for learning and forgetting (:meth:`UnlearningMixin._learn` and
:meth:`UnlearningMixin._forget`): a lock so that concurrent requests on one
instance serialise, a guard against parameters changed since ``fit``, rollback
of every attribute when a call is refused, the ledger of what was learned
(:class:`~sklunlearn.ledger.Ledger`), and the :class:`ForgetReport` of every
forget. Estimators supply two hooks, ``_validate_rows`` and ``_update``; the
posterior and the forgetting methods know nothing of this module.
"""

import copy
import json
import threading
import time
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from types import MappingProxyType
from typing import NamedTuple

import numpy as np
from scipy import sparse
from sklearn import get_config
from sklearn.utils.validation import _check_sample_weight, check_is_fitted

from ._caller import caller_stacklevel
from ._dask import is_dask_collection
from .exceptions import UnlearningWarning
from .unlearning._diagnostics import _plain as plain_scalar

__all__ = [
    "ForgetReport",
    "UnlearningMixin",
    "UpdateOutcome",
    "check_weights",
]


class UpdateOutcome(NamedTuple):
    """What an estimator's ``_update`` tells the shared path.

    Fields
    ------
    method : str
        ``'exact'`` for a conjugate update, else the forgetting method's name.
    exact : bool
        Whether the result equals a refit on the remaining rows (up to
        round-off small enough not to warn about).
    estimated_error : float or None
        Exact updates: the estimated relative round-off error of the result.
        Approximate ones: the method's estimate or bound of the KL divergence
        to retraining, or None when it has none.
    diagnostics : object or None
        The method's diagnostics: a record with ``to_dict()``, a mapping, a
        tuple of those (one per one-vs-rest problem), or None.
    warnings : tuple of str
        Texts of the UnlearningWarnings to issue; the shared path issues them
        (estimators never warn themselves, so that the report lists them all).
    n_iter : int or None
        Iterations the update ran, where that means something.
    """

    method: str
    exact: bool
    estimated_error: float | None = None
    diagnostics: object = None
    warnings: tuple = ()
    n_iter: int | None = None


def _plain(value):
    """``value`` as JSON-ready Python objects (records, mappings, arrays, scalars)."""
    if hasattr(value, "to_dict"):
        return _plain(value.to_dict())
    if isinstance(value, dict | MappingProxyType):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if isinstance(value, np.ndarray):
        return _plain(value.tolist())
    return plain_scalar(value)


# The request a meta-estimator forwards to one of its steps (see ``forwarded``).
_FORWARDED = threading.local()


class _Forwarded(NamedTuple):
    estimator: object
    rows: object
    warnings: tuple


@contextmanager
def forwarded(estimator, rows=None, messages=()):
    """Within: ``estimator``'s learn or forget is one a meta-estimator forwarded.

    ``rows`` (when not None) key its ledger instead of the rows it receives:
    a pipeline passes the rows its caller gave, because transformed rows
    depend in their last bits on the batch they were transformed in (a
    projection's BLAS product does), so the rows a deletion request
    transforms to need not match those learned bit for bit. ``messages`` are
    UnlearningWarnings of the meta-estimator, issued (and reported) with the
    estimator's own before anything is committed, so that one turned into an
    error rolls the whole request back. A meta-estimator that receives a
    forwarded request passes it on (:func:`forwarded_to`): a pipeline inside a
    pipeline keys its final estimator by the outer rows.
    """
    previous = getattr(_FORWARDED, "request", None)
    _FORWARDED.request = _Forwarded(estimator, rows, tuple(messages))
    try:
        yield
    finally:
        _FORWARDED.request = previous


def forwarded_to(estimator):
    """The request forwarded to ``estimator`` in this thread, or None.

    Has ``rows`` (the ledger keys, or None) and ``warnings`` (a tuple of texts).
    """
    request = getattr(_FORWARDED, "request", None)
    return request if request is not None and request.estimator is estimator else None


def _keys(estimator, X):
    """The rows ``estimator``'s ledger keys this request by (see :func:`forwarded`)."""
    request = forwarded_to(estimator)
    if request is None or request.rows is None:
        return _ledger_rows(X)
    if request.rows.shape[0] != X.shape[0]:
        raise ValueError(
            f"{request.rows.shape[0]} rows were given and {X.shape[0]} reached the "
            "final estimator: a step that adds or drops rows cannot forward a "
            "deletion request. Nothing was changed."
        )
    return request.rows


def _with_forwarded_warnings(estimator, outcome):
    """``outcome`` with the forwarding meta-estimator's warnings after its own."""
    request = forwarded_to(estimator)
    if request is None or not request.warnings:
        return outcome
    return outcome._replace(warnings=(*(outcome.warnings or ()), *request.warnings))


# What an approximate forget keeps between requests in one process (see
# ``_classifier.py``): never pickled or copied (``__getstate__``, ``__copy__``).
_PENDING_STATE = ("_pending_forgets", "_pending_origins", "_pending_method")

_EARLIER_WARNING = (
    "This forget's own checks passed, but {0} earlier forget{1} since the fit warned "
    "that its result may be worse than doing nothing: that error stays in the "
    "posterior, and no later step can re-check it (the rows that would measure it are "
    "forgotten). Fit on the remaining rows to clear it (forget_report_ of the earlier "
    "requests says what was found)."
)

# A mean that moved less than this many standard deviations, under a precision within
# _UNCHANGED_KL nats, is the posterior the forget started from.
_UNMOVED = 1e-9
_UNCHANGED_KL = 1e-12


def _did_nothing(outcome, before, after, moved):
    """Whether an approximate method that warned returned the posterior it was given.

    A method that gives up (VBU's adjusted likelihood with a region holding none
    of the posterior, say) says so in a warning; recording its rows as forgotten
    would then refuse the retry with another method. A forget that leaves the
    posterior as it was without warning is legitimate (rows the model was
    already certain about carry no curvature), and exact updates change the
    statistics even when the posterior stays.
    """
    if outcome.exact or not _method_warnings(outcome.diagnostics) or moved > _UNMOVED:
        return False
    return all(
        old is new or old.kl_divergence(new) <= _UNCHANGED_KL
        for old, new in zip(before, after, strict=True)
    )


def _method_warnings(diagnostics):
    """The forgetting method's own warnings in its diagnostics (one-vs-rest: all).

    Not the estimator's routine ones (what the hyperparameters still carry), which a
    forget of rows the model was certain about issues too.
    """
    records = diagnostics if isinstance(diagnostics, tuple) else (diagnostics,)
    return tuple(
        message for record in records for message in getattr(record, "warnings", ()) or ()
    )


def _issue(outcome):
    """Issue an update's warnings as UnlearningWarnings, once each, in order, at the
    user's call; return their texts."""
    messages = tuple(dict.fromkeys(getattr(outcome, "warnings", None) or ()))
    for message in messages:
        warnings.warn(message, UnlearningWarning, stacklevel=caller_stacklevel())
    return messages


def _frozen(diagnostics):
    """Read-only view of the diagnostics kept by a :class:`ForgetReport`."""
    if isinstance(diagnostics, list | tuple):
        return tuple(_frozen(item) for item in diagnostics)
    if isinstance(diagnostics, dict):
        return MappingProxyType(copy.deepcopy(diagnostics))
    return diagnostics  # None, or a frozen record of the method


@dataclass(frozen=True)
class ForgetReport:
    """What one :meth:`partial_unfit` did, set as ``forget_report_``.

    Immutable; :meth:`to_dict` gives plain Python objects that ``json.dumps``
    accepts, for a deletion service's audit log (a NaN, such as a check that was not
    run, or an infinity is None there, so that the log is strict JSON).

    Attributes
    ----------
    method : str
        ``'exact'``, or the forgetting method (``'laplace'``, ``'eubo'``, ...).
    exact : bool
        Whether the result equals a refit on the remaining rows up to the
        round-off given by ``estimated_error``; False when that round-off is
        large enough to warn that the result may differ from a refit.
    n_rows : int
        Rows forgotten (rows of the request with a positive weight).
    weight : float
        Total weight forgotten.
    seconds : float
        Wall time of the forget once it holds the estimator's lock (validation
        of the rows and the ledger's check included; time spent waiting for
        other requests is not).
    moved : float
        Mahalanobis distance of the posterior mean's move, in standard
        deviations of the posterior before the forget (the largest over
        one-vs-rest problems).
    estimated_error : float or None
        Exact methods: the estimated relative round-off error of the result
        (a refit is advised above 1e-8, with a warning). Approximate methods:
        the method's own estimate or bound of the KL divergence (nats) to the
        retrained posterior, or None when it has none.
    diagnostics : object
        The method's figures (effective sample size, region mass, reference
        disagreement, ...): its record, a read-only mapping, a tuple of those
        (one per one-vs-rest problem), or None.
    warnings : tuple of str
        Texts of the UnlearningWarnings this forget issued.
    """

    method: str
    exact: bool
    n_rows: int
    weight: float
    seconds: float
    moved: float
    estimated_error: float | None
    diagnostics: object
    warnings: tuple

    def to_dict(self):
        """The report as a dict of plain Python values (``json.dumps`` accepts it)."""
        return {
            "method": self.method,
            "exact": bool(self.exact),
            "n_rows": int(self.n_rows),
            "weight": float(self.weight),
            "seconds": float(self.seconds),
            "moved": plain_scalar(float(self.moved)),
            "estimated_error": (
                None
                if self.estimated_error is None
                else plain_scalar(float(self.estimated_error))
            ),
            "diagnostics": _plain(self.diagnostics),
            "warnings": list(self.warnings),
        }

    def to_json(self):
        """:meth:`to_dict` as a JSON string."""
        return json.dumps(self.to_dict(), allow_nan=False)


def _same_value(a, b):
    """Whether a parameter value equals the one recorded at fit."""
    if a is b:
        return True
    # Arrays, and what converts to one (a data frame's == is elementwise, and its
    # truth value ambiguous), compare by their values.
    if any(isinstance(v, np.ndarray) or hasattr(v, "__array__") for v in (a, b)):
        try:
            a, b = np.asarray(a), np.asarray(b)
        except (TypeError, ValueError):
            return False
        try:
            return np.array_equal(a, b, equal_nan=True)
        except TypeError:  # values without NaN (strings, objects)
            return np.array_equal(a, b)
    try:
        return bool(a == b)
    except (TypeError, ValueError):  # e.g. an elementwise comparison of lists of arrays
        return False


class UnlearningMixin:
    """Mixin for estimators with ``partial_unfit``: the shared learn/forget path.

    Estimators define

    - ``_validate_rows(X, y, *, reset, **kwargs)`` returning ``(X, y, y_key)``:
      the validated rows, the targets as the update needs them, and the
      targets as float64 for the ledger (class indices for classifiers);
    - ``_update(X, y, weights, *, sign, reset)`` returning an
      :class:`UpdateOutcome`: learn (``sign=+1``; from the prior when
      ``reset``) or forget (``sign=-1``), assigning new fitted attributes;
    - ``_posterior_list()``: the GaussianPosterior(s) the model holds;
    - ``_model_parameters``: names of the parameters that define the fitted
      model. Changing one with ``set_params`` after ``fit`` makes
      ``partial_fit`` and ``partial_unfit`` raise (refit, or set it back);
      parameters of the forgetting method may change between requests.
    - optionally ``_update_dask(rows, *, sign, reset)``: ``_update`` for rows
      in a dask array or dataframe, given as a
      :class:`sklunlearn._dask.DaskRows` whose ``reduce`` sums a function of
      the validated chunks on the workers; without it, dask input is refused.

    and a ``ledger`` constructor parameter. Their ``fit``, ``partial_fit`` and
    ``partial_unfit`` call :meth:`_learn` and :meth:`_forget`, which

    - hold a per-instance lock, so that calls from several threads serialise
      (the lock is neither pickled nor copied);
    - restore every attribute when the call raises, so that a refused call
      leaves the estimator exactly as it was (estimators never mutate a fitted
      array in place: they compute new objects and assign them);
    - keep ``ledger_`` (with ``ledger=True``) and refuse, before changing
      anything, to forget rows that were never learned or have no weight left;
    - set ``n_samples_seen_`` from the ledger, and ``forget_report_``.
    """

    _model_parameters = ()

    # ------------------------------------------------------------- plumbing
    def __getstate__(self):
        # A lock cannot be pickled, and a copy must not share the original's. Under
        # the lock, so that a concurrent request is in the state whole or not at all.
        with self._instance_lock():
            state = dict(super().__getstate__())
            state.pop("_lock", None)
            # The pending requests' anchor is the posterior before the forgets, and
            # their summed terms hold the forgotten rows (one row's gradient is a
            # multiple of the row): a saved or copied model keeps neither, and its
            # next forget starts from the posterior it holds.
            for name in _PENDING_STATE:
                state.pop(name, None)
            return _owning_its_ledger(state)

    def __copy__(self):
        # The ledger changes in place: a copy sharing it would accept forgets of rows
        # only the original learned. Everything else is replaced, never changed.
        with self._instance_lock():
            state = _owning_its_ledger(dict(self.__dict__))
        state.pop("_lock", None)
        for name in _PENDING_STATE:  # as __getstate__
            state.pop(name, None)
        new = object.__new__(type(self))
        new.__dict__.update(state)
        return new

    def _instance_lock(self):
        """The instance's re-entrant lock, created on first use (``dict.setdefault``
        is atomic, so two threads get the same one)."""
        return self.__dict__.get("_lock") or self.__dict__.setdefault(
            "_lock", threading.RLock()
        )

    def _validate_params_again(self):
        """Validate the constructor parameters, unless scikit-learn's configuration
        skips validation: they may have been changed since the last call (the
        forgetting method's between requests, for instance)."""
        if not get_config()["skip_parameter_validation"]:
            self._validate_params()

    @contextmanager
    def _atomic(self):
        """Hold the instance's lock; restore every attribute when the body raises.

        The lock is re-entrant, so a call may run another under it.
        """
        with self._instance_lock():
            saved = dict(self.__dict__)
            try:
                yield
            except BaseException:
                self.__dict__.clear()
                self.__dict__.update(saved)
                raise

    def _record_model_parameters(self):
        params = self.get_params(deep=False)
        names = (*self._model_parameters, "ledger")
        self._fitted_parameters = {
            name: copy.deepcopy(params[name]) for name in names if name in params
        }

    def _check_model_parameters(self):
        """Refuse to add or forget rows when a model-defining parameter changed."""
        fitted = self.__dict__.get("_fitted_parameters")
        if not fitted:
            return
        changed = []
        for name, value in fitted.items():
            # Parameters are attributes of the same name (scikit-learn's convention);
            # deepcopy returns immutable values themselves, so identity settles most.
            current = getattr(self, name)
            if current is not value and not _same_value(current, value):
                changed.append(name)
        if changed:
            was = ", ".join(f"{name}={fitted[name]!r}" for name in changed)
            raise ValueError(
                f"{', '.join(changed)} changed since the model was fitted (it was {was}). "
                "These parameters define the fitted model, so adding or forgetting rows "
                "now would mix two models. Fit again, or set them back with set_params. "
                "Nothing was changed."
            )

    # ------------------------------------------------------------ the path
    def _learn(self, X, y, sample_weight, *, reset, **kwargs):
        """Validate and learn rows (``fit`` when ``reset``, else ``partial_fit``).

        ``kwargs`` go to ``_validate_rows`` (``classes`` for classifiers).
        """
        with self._atomic():
            if not reset:
                self._check_model_parameters()
            if is_dask_collection(X):  # before validation, which would compute it here
                return self._learn_dask(X, y, sample_weight, reset=reset, **kwargs)
            X, y_model, y_key = self._validate_rows(X, y, reset=reset, **kwargs)
            keys = _keys(self, X)
            weights = check_weights(sample_weight, X)
            outcome = self._update(X, y_model, weights, sign=1.0, reset=reset)
            # Before the ledger: an error still rolls back.
            _issue(_with_forwarded_warnings(self, outcome))
            if not self._learned(reset):
                return self
            if reset or "ledger_" not in self.__dict__:
                from .ledger import Ledger  # its kernels compile on first use

                self.ledger_ = Ledger(keys.shape[1])
            # In place, once the update has succeeded (nothing can fail after it):
            # copying a ledger of every learned row on each call would cost O(n).
            self.ledger_.add(keys, y_key, weights)
            self.n_samples_seen_ = self.ledger_.n_rows
        return self

    def _forget(self, X, y, sample_weight):
        """Validate and forget rows; set ``forget_report_``.

        Refusals (validation, the ledger, the update itself, a warning turned
        into an error) restore every attribute; the ledger is changed last, in
        place, by a step that cannot fail.
        """
        check_is_fitted(self)
        self._validate_params_again()
        with self._atomic():
            # Under the lock: time spent waiting for other requests is not counted.
            start = time.perf_counter()
            self._check_model_parameters()
            if is_dask_collection(X):  # before validation, which would compute it here
                before, outcome, plan, n_rows, weight = self._forget_dask(
                    X, y, sample_weight
                )
            else:
                X, y_model, y_key = self._validate_rows(X, y, reset=False)
                if sample_weight is None:
                    weights = np.ones(X.shape[0])
                else:
                    weights = check_weights(sample_weight, X, allow_all_zero=True)
                plan = None
                if self.ledger:
                    plan = self.ledger_.plan_forget(_keys(self, X), y_key, weights)
                before = self._posterior_list()
                outcome = self._update(X, y_model, weights, sign=-1.0, reset=False)
                n_rows, weight = int(np.count_nonzero(weights)), float(weights.sum())
            moved = 0.0
            for old, new in zip(before, self._posterior_list(), strict=True):
                # A method's NaN would be committed silently: refuse it, rolled back.
                if not np.all(np.isfinite(new.mean)):
                    raise FloatingPointError(
                        f"The forgetting method {outcome.method!r} returned a posterior "
                        "mean with NaN or infinite entries. Nothing was changed."
                    )
                moved = max(moved, old.mahalanobis(new.mean))
            if weight > 0 and _did_nothing(outcome, before, self._posterior_list(), moved):
                quoted = " ".join(
                    f"[{message}]" for message in _method_warnings(outcome.diagnostics)
                )
                raise ValueError(
                    f"The forgetting method {outcome.method!r} left the posterior "
                    "exactly as it was, so the request was refused: the rows stay "
                    "learned and nothing was changed. Use another forgetting method, or "
                    f"fit again on the remaining rows. The method's warnings: {quoted}"
                )
            outcome = self._carry_earlier_warnings(outcome)
            messages = _issue(_with_forwarded_warnings(self, outcome))
            if plan is not None:
                self.ledger_.apply(plan)
                self.n_samples_seen_ = self.ledger_.n_rows
            diagnostics = outcome.diagnostics
            if isinstance(diagnostics, dict | list | tuple):
                diagnostics = _frozen(diagnostics)
            self.forget_report_ = ForgetReport(
                method=outcome.method,
                exact=bool(outcome.exact),
                n_rows=n_rows,
                weight=weight,
                seconds=time.perf_counter() - start,
                moved=float(moved),
                estimated_error=outcome.estimated_error,
                diagnostics=diagnostics,
                warnings=messages,
            )
        return self

    def _carry_earlier_warnings(self, outcome):
        """``outcome``, warning again when an earlier approximate forget since the fit
        warned and this one's own checks did not; counts the forgets that warned.

        A method's checks judge its own step, from the posterior it was given
        (or the pending union's anchor, by re-evaluating this request's rows
        only): the error of an earlier step that warned stays in the posterior,
        and the rows that could measure it are forgotten. Without this, the
        requests after a warned one report clean while the model stays worse
        than doing nothing. Only a fit clears it.
        """
        if outcome.exact:
            return outcome
        earlier = self.__dict__.get("_warned_forgets", 0)
        if _method_warnings(outcome.diagnostics):
            self._warned_forgets = earlier + 1
        elif earlier:
            message = _EARLIER_WARNING.format(earlier, "" if earlier == 1 else "s")
            outcome = outcome._replace(warnings=(*(outcome.warnings or ()), message))
        return outcome

    # ------------------------------------------------- rows on a dask cluster
    def _learn_dask(self, X, y, sample_weight, *, reset, **kwargs):
        """:meth:`_learn` for rows in a dask collection, under the caller's lock.

        The estimator's ``_update_dask(rows, *, sign, reset)`` computes what it
        needs from the rows (:class:`sklunlearn._dask.DaskRows`) in passes on
        the workers; the first pass also records the rows in a spawn of the
        ledger, merged here once the update has succeeded.
        """
        from ._dask import DaskRows

        self._check_dask_support()
        rows = DaskRows(self, X, y, sample_weight, reset=reset, **kwargs)
        extend = not reset and "ledger_" in self.__dict__
        if self.ledger:
            from .ledger import Ledger

            rows.record_into(self.ledger_ if extend else Ledger(rows.n_features))
        outcome = self._update_dask(rows, sign=1.0, reset=reset)
        _issue(_with_forwarded_warnings(self, outcome))
        if not self._learned(reset):
            return self
        learned = rows.learned_ledger()
        if extend:
            self.ledger_.merge(learned)  # in place, after the update (as _learn)
        else:
            self.ledger_ = learned
        self.n_samples_seen_ = self.ledger_.n_rows
        return self

    def _learned(self, reset):
        """Bookkeeping after a successful learn; whether the ledger takes the rows."""
        if reset:
            self._record_model_parameters()
            self.__dict__.pop("forget_report_", None)
            self.__dict__.pop("_warned_forgets", None)
        if not self.ledger:
            self.__dict__.pop("ledger_", None)
        return bool(self.ledger)

    def _check_dask_support(self):
        if not hasattr(self, "_update_dask"):
            raise TypeError(
                f"{type(self).__name__} does not accept dask collections yet; pass "
                "NumPy arrays or pandas frames (e.g. X.compute())."
            )

    def _forget_dask(self, X, y, sample_weight):
        """The update of :meth:`_forget` for rows in a dask collection.

        Returns ``(posteriors before, outcome, ledger plan, rows, weight)``;
        the ledger refuses in the first pass, before the update uses its sums.
        """
        from ._dask import DaskRows

        self._check_dask_support()
        rows = DaskRows(self, X, y, sample_weight, reset=False, forget=True)
        if self.ledger:
            rows.check_against(self.ledger_)
        before = self._posterior_list()
        outcome = self._update_dask(rows, sign=-1.0, reset=False)
        plan = rows.forget_plan() if self.ledger else None
        return before, outcome, plan, rows.n_rows, rows.weight

    @property
    def unlearning_diagnostics_(self):
        """Deprecated alias of ``forget_report_.diagnostics`` (a list when multiclass).

        Kept for one release; read ``forget_report_`` instead.
        """
        report = self.__dict__.get("forget_report_")
        if report is None:
            raise AttributeError(
                f"{type(self).__name__} has no unlearning_diagnostics_: nothing was "
                "forgotten yet."
            )
        warnings.warn(
            "unlearning_diagnostics_ is deprecated and will be removed in the next "
            "release; use forget_report_.diagnostics (or forget_report_.to_dict()).",
            FutureWarning,
            stacklevel=2,
        )
        diagnostics = report.diagnostics
        return list(diagnostics) if isinstance(diagnostics, tuple) else diagnostics


def _owning_its_ledger(state):
    """``state`` (an instance's attributes) with a copy of its ledger, if it has one."""
    if state.get("ledger_") is not None:
        state["ledger_"] = state["ledger_"].copy()
    return state


def _ledger_rows(X):
    """Validated rows as the ledger takes them: float64, a sparse matrix left sparse.

    The ledger densifies a sparse matrix block by block, so that a sparse and
    a dense copy of a row have one fingerprint.
    """
    return X if sparse.issparse(X) else np.asarray(X, dtype=np.float64)


def check_weights(sample_weight, X, allow_all_zero=False):
    """Validate ``sample_weight``: finite, non-negative, one per row of ``X``.

    ``None`` gives ones. All-zero weights are refused unless ``allow_all_zero``
    (forgetting rows with zero weight is a valid no-op; fitting on them is not).
    """
    if sample_weight is None:
        return np.ones(X.shape[0])
    return _check_sample_weight(
        sample_weight,
        X,
        dtype=np.float64,
        ensure_non_negative=True,
        allow_all_zero_weights=allow_all_zero,
    )
