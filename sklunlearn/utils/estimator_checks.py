"""Checks that an estimator with ``partial_unfit`` forgets correctly.

The unlearning counterpart of :mod:`sklearn.utils.estimator_checks`, for
authors of estimators that forget (in this package or elsewhere). Every
check takes ``(name, estimator)``, works on clones, and raises an
``AssertionError`` saying what went wrong.

Exact and approximate forgetting
--------------------------------
An estimator declares that its forgetting is exact (the result equals
refitting on the remaining rows, to floating-point accuracy) with the
attribute ``_unlearning_is_exact = True``: a class attribute, or a property
when exactness depends on the parameters. Without it, forgetting is treated
as approximate, and the checks ask that it beats doing nothing instead of
matching the refit.

How models are compared: exact forgetting must reproduce ``posterior_``
(mean and covariance, or variances of a diagonal posterior; each posterior
of a one-vs-rest list) when the estimator has one and the predictions on the
training inputs (``predict_proba`` for classifiers, ``predict(X,
return_std=True)`` or ``predict`` for regressors) to a relative 1e-6;
approximate forgetting must lower the mean predictive KL divergence to the
target model (:func:`~sklunlearn.metrics.predictive_kl`), so regressors need
``predict(X, return_std=True)``.

Two checks hold approximate forgetting to more than beating doing nothing,
on a small request from a large problem, where a sound approximation is
close to exact: :func:`check_forget_counts_every_row` (forgetting a whole
request beats forgetting its first row alone, or all but its last row, by a
clear margin) and :func:`check_forget_honours_weights` (forgetting weight
``w`` lands nearest the model that learned the rows with weight ``1 - w``).
Their targets learn the request last by ``partial_fit``, instead of being
refitted, so that they keep the structure of the model that forgets.
"""

import copy
import pickle
import re
from functools import partial

import numpy as np
from numpy.testing import assert_allclose
from sklearn.base import clone, is_classifier
from sklearn.exceptions import NotFittedError

from .._diagonal_posterior import DiagonalGaussianPosterior
from ..metrics import predictive_kl
from ..posterior import GaussianPosterior

__all__ = [
    "check_forget_counts_every_row",
    "check_forget_equals_refit",
    "check_forget_honours_weights",
    "check_forget_improves_on_doing_nothing",
    "check_forget_report",
    "check_ledger_refuses_rows_not_learned",
    "check_partial_fit_partial_unfit_identity",
    "check_partial_unfit_keeps_fitted_metadata",
    "check_partial_unfit_not_fitted",
    "check_rejected_calls_leave_state_unchanged",
    "check_unlearning_estimator",
    "check_weighted_forgetting",
    "check_zero_weight_forgetting_is_no_op",
    "is_exact_unlearner",
    "parametrize_with_unlearning_checks",
    "yield_unlearning_checks",
]

# Agreement demanded of exact forgetting; round-off of a refit on ~50 rows is
# orders of magnitude below this, a forgotten row's influence orders above.
_EXACT_RTOL = 1e-6
_EXACT_ATOL = 1e-8
_N_SAMPLES = 60
_N_FORGET = 10
# A small request from a large problem: every method of the package is then
# close to exact, so a request forgotten only in part stands out.
_N_LARGE = 300
_N_REQUEST = 4
# Forgetting the whole request must bring the predictive KL to the target
# below this fraction of what forgetting part of it leaves.
_PART_GAP_RATIO = 0.75
# Weights are checked where learning a request with weight 1/2 instead of 1
# lands 1/2 +- this of the way to not learning it (the model is locally
# linear in the weights), and forgetting weight 1/2 must then move the
# posterior mean as far as learning does, +- this.
_HALF_STEP_TOL = 0.1
# Seeds of the requests drawn in turn until one lies where the model is locally
# linear in the weights: a network's first request need not.
_REQUEST_SEEDS = (2, 3, 4)


def is_exact_unlearner(estimator):
    """Whether ``estimator`` declares exact forgetting (``_unlearning_is_exact``).

    Parameters
    ----------
    estimator : estimator
        An estimator instance.

    Returns
    -------
    exact : bool
        True when its ``_unlearning_is_exact`` attribute is true.
    """
    return bool(getattr(estimator, "_unlearning_is_exact", False))


def _make_data(estimator, n_samples=_N_SAMPLES, n_features=3, random_state=0):
    """Small well-conditioned data: noisy linear targets, or overlapping binary classes."""
    rng = np.random.RandomState(random_state)
    X = rng.randn(n_samples, n_features)
    signal = X @ np.linspace(1.0, -0.5, n_features)
    if is_classifier(estimator):
        y = (signal + rng.randn(n_samples) > 0).astype(np.int64)
    else:
        y = signal + 0.5 * rng.randn(n_samples)
    return X, y


def _split(n_samples, n_forget=_N_FORGET, random_state=0):
    """Indices of a random forget set and of the remaining rows."""
    order = np.random.RandomState(random_state).permutation(n_samples)
    return np.sort(order[:n_forget]), np.sort(order[n_forget:])


def _posterior_outputs(posterior):
    """Mean and covariance (full or diagonal) of ``posterior_``, a posterior or a list.

    A list holds one posterior per class (one-vs-rest); anything else is not
    a posterior this module knows how to compare, and gives nothing.
    """
    posteriors = posterior if isinstance(posterior, list) else [posterior]
    outputs = {}
    for index, part in enumerate(posteriors):
        name = f"posterior_[{index}]" if isinstance(posterior, list) else "posterior_"
        if isinstance(part, GaussianPosterior):
            outputs[f"{name}.mean"] = part.mean
            outputs[f"{name}.covariance"] = part.covariance
        elif isinstance(part, DiagonalGaussianPosterior):
            outputs[f"{name}.mean"] = part.mean
            outputs[f"{name}.variance"] = part.variance
    return outputs


def _outputs(estimator, X):
    """Everything a user can observe of a fitted model, as named arrays."""
    outputs = _posterior_outputs(getattr(estimator, "posterior_", None))
    if is_classifier(estimator):
        outputs["predict_proba"] = estimator.predict_proba(X)
    else:
        try:
            outputs["predict"], outputs["predictive std"] = estimator.predict(
                X, return_std=True
            )
        except TypeError:
            outputs["predict"] = estimator.predict(X)
    return outputs


def _assert_same_model(actual, desired, X, what):
    desired_outputs = _outputs(desired, X)
    actual_outputs = _outputs(actual, X)
    assert actual_outputs.keys() == desired_outputs.keys(), (
        f"{what}: the models expose different outputs, {sorted(actual_outputs)} and "
        f"{sorted(desired_outputs)} (posterior_ of another shape or kind)."
    )
    for key, value in actual_outputs.items():
        assert_allclose(
            value,
            desired_outputs[key],
            rtol=_EXACT_RTOL,
            atol=_EXACT_ATOL,
            err_msg=f"{what}: {key} differs.",
        )


def _assert_closer(moved, baseline, target, X, what):
    """``moved`` must be strictly closer to ``target`` than ``baseline`` is.

    Distances are predictive KL divergences over ``X``: unlike posterior KL
    they stay meaningful when the two models' parameters mean different
    things (a sparse GP refitted from scratch picks other inducing points).
    """
    gap = predictive_kl(moved, target, X)
    baseline_gap = predictive_kl(baseline, target, X)
    assert gap < baseline_gap, (
        f"{what}: predictive KL to the target is {gap:.3g}, not below {baseline_gap:.3g}, "
        "that of doing nothing."
    )


def check_partial_unfit_not_fitted(name, estimator_orig):
    """``partial_unfit`` before any fit raises NotFittedError and changes nothing.

    Parameters
    ----------
    name : str
        The estimator's name, used in failure messages.
    estimator_orig : estimator
        An unfitted estimator; the check fits clones of it and leaves it
        unchanged.
    """
    estimator = clone(estimator_orig)
    X, y = _make_data(estimator)
    before = pickle.dumps(estimator)
    try:
        estimator.partial_unfit(X[:5], y[:5])
    except NotFittedError:
        pass
    except Exception as exc:
        raise AssertionError(
            f"{name}.partial_unfit on an unfitted estimator raised {type(exc).__name__}: "
            f"{exc}; expected NotFittedError."
        ) from exc
    else:
        raise AssertionError(
            f"{name}.partial_unfit on an unfitted estimator did not raise NotFittedError."
        )
    assert pickle.dumps(estimator) == before, (
        f"{name}.partial_unfit on an unfitted estimator changed its state."
    )


def check_partial_unfit_keeps_fitted_metadata(name, estimator_orig):
    """``partial_unfit`` returns self and keeps ``n_features_in_`` and ``classes_``.

    Classifiers forget rows of a single class, so that re-learning
    ``classes_`` from the forgotten labels shows.

    Parameters
    ----------
    name : str
        The estimator's name, used in failure messages.
    estimator_orig : estimator
        An unfitted estimator; the check fits clones of it and leaves it
        unchanged.
    """
    estimator = clone(estimator_orig)
    X, y = _make_data(estimator)
    forget, _ = _split(X.shape[0])
    if is_classifier(estimator):
        forget = np.flatnonzero(y == y[0])[:_N_FORGET]
    estimator.fit(X, y)
    n_features = estimator.n_features_in_
    classes = getattr(estimator, "classes_", None)
    returned = estimator.partial_unfit(X[forget], y[forget])
    assert returned is estimator, f"{name}.partial_unfit must return self."
    assert estimator.n_features_in_ == n_features, (
        f"{name}.partial_unfit changed n_features_in_; it must validate with reset=False."
    )
    if classes is not None:
        assert np.array_equal(estimator.classes_, classes), (
            f"{name}.partial_unfit changed classes_."
        )


def check_forget_equals_refit(name, estimator_orig):
    """Exact estimators: fit, then forget rows == fit on the remaining rows.

    Parameters
    ----------
    name : str
        The estimator's name, used in failure messages.
    estimator_orig : estimator
        An unfitted estimator; the check fits clones of it and leaves it
        unchanged.
    """
    X, y = _make_data(estimator_orig)
    forget, keep = _split(X.shape[0])
    unlearned = clone(estimator_orig).fit(X, y).partial_unfit(X[forget], y[forget])
    retrained = clone(estimator_orig).fit(X[keep], y[keep])
    _assert_same_model(unlearned, retrained, X, f"{name}: forgetting != refitting")


def check_forget_improves_on_doing_nothing(name, estimator_orig):
    """Forgetting brings the model strictly closer to the refit than not forgetting.

    Parameters
    ----------
    name : str
        The estimator's name, used in failure messages.
    estimator_orig : estimator
        An unfitted estimator; the check fits clones of it and leaves it
        unchanged.
    """
    X, y = _make_data(estimator_orig)
    forget, keep = _split(X.shape[0])
    full = clone(estimator_orig).fit(X, y)
    unlearned = clone(estimator_orig).fit(X, y).partial_unfit(X[forget], y[forget])
    retrained = clone(estimator_orig).fit(X[keep], y[keep])
    _assert_closer(unlearned, full, retrained, X, f"{name}: forgetting {len(forget)} rows")


def check_partial_fit_partial_unfit_identity(name, estimator_orig):
    """``partial_fit(B)`` then ``partial_unfit(B)`` undoes the batch.

    Exact estimators must return to the model fitted without ``B``;
    approximate ones must end strictly closer to it than with ``B`` learned.

    Parameters
    ----------
    name : str
        The estimator's name, used in failure messages.
    estimator_orig : estimator
        An unfitted estimator; the check fits clones of it and leaves it
        unchanged.
    """
    X, y = _make_data(estimator_orig)
    batch, base = _split(X.shape[0])
    fitted = clone(estimator_orig).fit(X[base], y[base])
    with_batch = clone(estimator_orig).fit(X[base], y[base]).partial_fit(X[batch], y[batch])
    round_trip = clone(estimator_orig).fit(X[base], y[base]).partial_fit(X[batch], y[batch])
    round_trip.partial_unfit(X[batch], y[batch])
    what = f"{name}: partial_fit then partial_unfit of the same rows"
    if is_exact_unlearner(estimator_orig):
        _assert_same_model(round_trip, fitted, X, what)
    else:
        _assert_closer(round_trip, with_batch, fitted, X, what)


def check_weighted_forgetting(name, estimator_orig):
    """Forgetting with weights ``u`` == fitting with the weights reduced to ``w - u``.

    Some rows are forgotten partly, some entirely (their reduced weight is
    zero, the same as an absent row). Approximate estimators must end
    strictly closer to the reduced-weight fit than without forgetting.

    Parameters
    ----------
    name : str
        The estimator's name, used in failure messages.
    estimator_orig : estimator
        An unfitted estimator; the check fits clones of it and leaves it
        unchanged.
    """
    X, y = _make_data(estimator_orig)
    forget, _ = _split(X.shape[0])
    rng = np.random.RandomState(1)
    weights = rng.randint(1, 4, size=X.shape[0]).astype(np.float64)
    forgotten_weights = weights[forget] * rng.choice([0.5, 1.0], size=forget.shape[0])
    reduced = weights.copy()
    reduced[forget] -= forgotten_weights
    full = clone(estimator_orig).fit(X, y, sample_weight=weights)
    unlearned = clone(estimator_orig).fit(X, y, sample_weight=weights)
    unlearned.partial_unfit(X[forget], y[forget], sample_weight=forgotten_weights)
    target = clone(estimator_orig).fit(X, y, sample_weight=reduced)
    what = f"{name}: forgetting with sample_weight"
    if is_exact_unlearner(estimator_orig):
        _assert_same_model(unlearned, target, X, f"{what} != fitting with reduced weights")
    else:
        _assert_closer(unlearned, full, target, X, what)


def _request_learned_last(estimator_orig, random_state=_REQUEST_SEEDS[0]):
    """A large problem whose last-learned batch is a small deletion request.

    Returns ``X, y``, the ``request`` rows (drawn with ``random_state``),
    ``base`` (fitted on the other rows) and the model that then learned the
    request by ``partial_fit``, every row with weight 1. Targets are built
    the same way, not refitted: a refit may choose other inducing points or
    another network optimum, which moves it further than one row does.
    """
    X, y = _make_data(estimator_orig, n_samples=_N_LARGE)
    request, rest = _split(X.shape[0], n_forget=_N_REQUEST, random_state=random_state)
    base = clone(estimator_orig).fit(X[rest], y[rest])
    learned = _learned(base, X, y, request, 1.0)
    assert predictive_kl(learned, base, X) > 0, "partial_fit of a batch changed nothing."
    return X, y, request, base, learned


def _learned(model, X, y, rows, weight):
    """A copy of ``model`` that also learned ``rows``, each with weight ``weight``."""
    weights = np.full(len(rows), weight)
    return copy.deepcopy(model).partial_fit(X[rows], y[rows], sample_weight=weights)


def _forgotten(model, X, y, rows, weight=1.0):
    """A copy of ``model`` that forgot ``rows``, each with weight ``weight``."""
    weights = np.full(len(rows), weight)
    return copy.deepcopy(model).partial_unfit(X[rows], y[rows], sample_weight=weights)


def check_forget_counts_every_row(name, estimator_orig):
    """Every row of a request is forgotten, not only some of them.

    A large problem learns a small request last (``fit`` on the other rows,
    then ``partial_fit`` of the request); the target is the model before the
    request. Forgetting the whole request must bring the predictive KL to
    the target below a fraction (``_PART_GAP_RATIO``) of what forgetting
    its first row alone, or all but its last row, leaves.

    Parameters
    ----------
    name : str
        The estimator's name, used in failure messages.
    estimator_orig : estimator
        An unfitted estimator; the check fits clones of it and leaves it
        unchanged.
    """
    X, y, request, base, learned = _request_learned_last(estimator_orig)
    gap = predictive_kl(_forgotten(learned, X, y, request), base, X)
    parts = [("its first row alone", request[:1]), ("all but its last row", request[:-1])]
    for description, rows in parts:
        partial_gap = predictive_kl(_forgotten(learned, X, y, rows), base, X)
        assert gap < _PART_GAP_RATIO * partial_gap, (
            f"{name}: forgetting a request of {len(request)} rows leaves a predictive KL "
            f"to the model without them of {gap:.3g}; forgetting {description} leaves "
            f"{partial_gap:.3g}. Every row of the request must be forgotten."
        )


def _posterior_means(estimator):
    """The posterior mean(s) of ``estimator`` (a pipeline: its final step), or None."""
    posterior = getattr(_final_step(estimator), "posterior_", None)
    parts = posterior if isinstance(posterior, list) else [posterior]
    kinds = (GaussianPosterior, DiagonalGaussianPosterior)
    if not all(isinstance(part, kinds) for part in parts):
        return None
    return parts


def _mean_step(posteriors, moved):
    """How far ``moved``'s posterior mean(s) lie from ``posteriors``, in their metric."""
    pairs = zip(posteriors, _posterior_means(moved), strict=True)
    steps = [before.mahalanobis(after.mean) for before, after in pairs]
    return float(np.sqrt(np.sum(np.square(steps))))


def _request_learned_halfway(estimator_orig):
    """The first request learned last where the model is locally linear in its weights.

    Returns ``X, y, request, base, learned`` (see :func:`_request_learned_last`)
    and the references that learned the request with weight 0, 1/2 and 3/4, for
    the first request (of the seeds ``_REQUEST_SEEDS``) whose weight-1/2 reference
    lies halfway to not learning it; None when there is none.
    """
    for seed in _REQUEST_SEEDS:
        X, y, request, base, learned = _request_learned_last(estimator_orig, seed)
        references = {w: _learned(base, X, y, request, w) for w in (0.5, 0.75)}
        references[0.0] = base
        # Near a model the predictive KL grows as the square of the step.
        halfway = np.sqrt(
            predictive_kl(references[0.5], base, X) / predictive_kl(learned, base, X)
        )
        if abs(halfway - 0.5) <= _HALF_STEP_TOL:
            return X, y, request, base, learned, references
    return None


def check_forget_honours_weights(name, estimator_orig):
    """Forgetting weight ``w`` of each row removes weight ``w``, no more, no less.

    A large problem learns a small request last, every row with weight 1
    (as in :func:`check_forget_counts_every_row`); references learn it with
    weight 0, 1/2 and 3/4 instead. Forgetting weight 1/2 of each row must
    land closer (predictive KL) to the weight-1/2 reference than to the
    weight-0 and weight-3/4 ones, forgetting weight 1 closer to the weight-0
    reference than to the weight-1/2 one. With a Gaussian ``posterior_``,
    forgetting weight 1/2 must also move its mean the fraction of the way
    forgetting weight 1 does that learning with weight 1/2 instead of 1 does
    (distances in the metric of the posterior before forgetting).

    Each comparison is made only where the model is locally linear in the
    weights: the weight-1/2 reference lies about halfway (predictive KL a
    quarter of the weight-1 model's; posterior mean half as far). Requests are
    drawn in turn until one does; a network whose ``partial_fit`` saturates
    on every small batch has none, and passes.

    Parameters
    ----------
    name : str
        The estimator's name, used in failure messages.
    estimator_orig : estimator
        An unfitted estimator; the check fits clones of it and leaves it
        unchanged.
    """
    found = _request_learned_halfway(estimator_orig)
    if found is None:
        return
    X, y, request, base, learned, references = found
    moved = {w: _forgotten(learned, X, y, request, w) for w in (0.5, 1.0)}
    for forgotten_weight, others in [(0.5, (0.0, 0.75)), (1.0, (0.5,))]:
        left = 1.0 - forgotten_weight
        gap = predictive_kl(moved[forgotten_weight], references[left], X)
        for other in others:
            other_gap = predictive_kl(moved[forgotten_weight], references[other], X)
            assert gap < other_gap, (
                f"{name}: after forgetting weight {forgotten_weight} of rows learned with "
                f"weight 1, the predictive KL to the model that learned them with weight "
                f"{left} is {gap:.3g}, not below {other_gap:.3g}, that to weight {other}."
            )
    posteriors = _posterior_means(learned)
    if posteriors is None:
        return
    learning = _mean_step(posteriors, references[0.5]) / _mean_step(posteriors, base)
    if abs(learning - 0.5) > _HALF_STEP_TOL:
        return
    forgetting = _mean_step(posteriors, moved[0.5]) / _mean_step(posteriors, moved[1.0])
    assert abs(forgetting - learning) <= _HALF_STEP_TOL, (
        f"{name}: forgetting weight 0.5 of each row moves the posterior mean "
        f"{forgetting:.3g} of the way forgetting weight 1 does; learning the rows with "
        f"weight 0.5 instead of 1 moves it {learning:.3g} of the way to not learning them."
    )


def check_zero_weight_forgetting_is_no_op(name, estimator_orig):
    """Forgetting rows with zero weight leaves the model as it was.

    Parameters
    ----------
    name : str
        The estimator's name, used in failure messages.
    estimator_orig : estimator
        An unfitted estimator; the check fits clones of it and leaves it
        unchanged.
    """
    X, y = _make_data(estimator_orig)
    forget, _ = _split(X.shape[0])
    fitted = clone(estimator_orig).fit(X, y)
    unlearned = clone(estimator_orig).fit(X, y)
    unlearned.partial_unfit(X[forget], y[forget], sample_weight=np.zeros(len(forget)))
    _assert_same_model(unlearned, fitted, X, f"{name}: forgetting zero weight")


def _bad_calls(estimator, X, y):
    """(description, X, y, sample_weight) of calls to partial_unfit that must fail.

    ``estimator`` was fitted on ``X[:n_learned], y[:n_learned]``.
    """
    n = _N_SAMPLES // 2
    X_learned, y_learned = X[:n], y[:n]
    X_nan = X_learned[:5].copy()
    X_nan[0, 0] = np.nan
    X_inf = X_learned[:5].copy()
    X_inf[1, 1] = np.inf
    calls = [
        ("X with NaN", X_nan, y_learned[:5], None),
        ("X with inf", X_inf, y_learned[:5], None),
        ("a wrong number of features", X_learned[:5, :-1], y_learned[:5], None),
        ("y of the wrong length", X_learned[:5], y_learned[:4], None),
        ("negative sample_weight", X_learned[:5], y_learned[:5], -np.ones(5)),
        (
            "more rows than were learned",
            np.vstack([X_learned, X_learned[:1]]),
            np.r_[y_learned, y_learned[:1]],
            None,
        ),
        ("more weight than was learned", X_learned, y_learned, np.full(n, 2.0)),
    ]
    if is_classifier(estimator):
        unknown = y_learned[:5].copy()
        unknown[0] = np.max(y) + 7
        calls.append(("an unknown class label", X_learned[:5], unknown, None))
    else:
        y_nan = y_learned[:5].copy()
        y_nan[0] = np.nan
        calls.append(("y with NaN", X_learned[:5], y_nan, None))
    return calls


def check_rejected_calls_leave_state_unchanged(name, estimator_orig):
    """Bad ``partial_unfit`` calls raise ValueError and leave the estimator byte-identical.

    Bad calls: NaN or inf in ``X`` (or ``y``), a wrong number of features,
    ``y`` of the wrong length, negative weights, forgetting more rows or more
    weight than were learned, and (classifiers) unknown labels. The state is
    compared through ``pickle.dumps``.

    Parameters
    ----------
    name : str
        The estimator's name, used in failure messages.
    estimator_orig : estimator
        An unfitted estimator; the check fits clones of it and leaves it
        unchanged.
    """
    estimator = clone(estimator_orig)
    X, y = _make_data(estimator)
    n = _N_SAMPLES // 2
    estimator.fit(X[:n], y[:n])
    before = pickle.dumps(estimator)
    for description, X_bad, y_bad, weights in _bad_calls(estimator, X, y):
        kwargs = {} if weights is None else {"sample_weight": weights}
        try:
            estimator.partial_unfit(X_bad, y_bad, **kwargs)
        except ValueError:
            pass
        except Exception as exc:
            raise AssertionError(
                f"{name}.partial_unfit with {description} raised {type(exc).__name__}: "
                f"{exc}; expected a ValueError (or a subclass)."
            ) from exc
        else:
            raise AssertionError(f"{name}.partial_unfit accepted {description}.")
        assert pickle.dumps(estimator) == before, (
            f"{name}.partial_unfit with {description} raised but changed the estimator; "
            "a rejected call must leave it exactly as it was."
        )


def _final_step(estimator):
    """The estimator that learns the rows: the last step of a pipeline, else itself."""
    steps = getattr(estimator, "steps", None)
    return steps[-1][1] if steps else estimator


def _has_ledger(estimator):
    """Whether the estimator (a pipeline: its final step) keeps a ledger of its rows."""
    final = _final_step(estimator)
    return hasattr(final, "get_params") and bool(
        final.get_params(deep=False).get("ledger", False)
    )


def check_ledger_refuses_rows_not_learned(name, estimator_orig):
    """With ``ledger=True``: rows never learned, or already forgotten, are refused.

    Each refusal is a ValueError that leaves the estimator byte-identical; a
    learned row is forgotten once and then refused; ``n_samples_seen_`` and
    ``len(ledger_)`` count the rows with weight left.

    Parameters
    ----------
    name : str
        The estimator's name, used in failure messages.
    estimator_orig : estimator
        An unfitted estimator; the check fits clones of it and leaves it
        unchanged.
    """
    estimator = clone(estimator_orig)
    X, y = _make_data(estimator)
    n = _N_SAMPLES // 2
    estimator.fit(X[:n], y[:n])
    requests = [
        ("rows never learned", X[n : n + 3], y[n : n + 3]),
        ("a learned row listed twice", X[[0, 0]], y[[0, 0]]),
    ]
    for description, X_bad, y_bad in requests:
        before = pickle.dumps(estimator)
        try:
            estimator.partial_unfit(X_bad, y_bad)
        except ValueError:
            pass
        else:
            raise AssertionError(f"{name}.partial_unfit accepted {description}.")
        assert pickle.dumps(estimator) == before, (
            f"{name}.partial_unfit refused {description} but changed the estimator."
        )
    estimator.partial_unfit(X[:1], y[:1])
    # A pipeline's row count is its final step's.
    n_seen = _final_step(estimator).n_samples_seen_
    assert n_seen == n - 1 == len(estimator.ledger_), (
        f"{name}: after forgetting one of {n} rows, n_samples_seen_ is "
        f"{n_seen} and the ledger holds {len(estimator.ledger_)} rows."
    )
    try:
        estimator.partial_unfit(X[:1], y[:1])
    except ValueError:
        return
    raise AssertionError(f"{name}.partial_unfit forgot the same row twice.")


def check_forget_report(name, estimator_orig):
    """Every ``partial_unfit`` sets ``forget_report_`` with what was forgotten.

    Its ``exact`` is the estimator's declared exactness (a pipeline's own).

    Parameters
    ----------
    name : str
        The estimator's name, used in failure messages.
    estimator_orig : estimator
        An unfitted estimator; the check fits clones of it and leaves it
        unchanged.
    """
    import json

    from ..base import ForgetReport

    estimator = clone(estimator_orig)
    X, y = _make_data(estimator)
    forget, _ = _split(len(y))
    estimator.fit(X, y).partial_unfit(X[forget], y[forget])
    report = getattr(estimator, "forget_report_", None)
    assert isinstance(report, ForgetReport), (
        f"{name}.partial_unfit did not set forget_report_ (a ForgetReport)."
    )
    assert report.n_rows == len(forget) and report.weight == len(forget), (
        f"{name}.forget_report_ says {report.n_rows} rows, weight {report.weight}; "
        f"{len(forget)} rows of weight 1 were forgotten."
    )
    declared = is_exact_unlearner(estimator)
    assert report.exact == declared, (
        f"{name}.forget_report_.exact is {report.exact}, but the estimator declares "
        f"exact forgetting {declared}."
    )
    json.dumps(report.to_dict())


def yield_unlearning_checks(estimator):
    """Yield the checks that apply to ``estimator`` (exact or approximate).

    Parameters
    ----------
    estimator : estimator
        An estimator instance with ``partial_unfit``.

    Yields
    ------
    check : callable
        ``check(name, estimator)``, one per applicable check.
    """
    yield check_partial_unfit_not_fitted
    yield check_partial_unfit_keeps_fitted_metadata
    if is_exact_unlearner(estimator):
        yield check_forget_equals_refit
    yield check_forget_improves_on_doing_nothing
    yield check_partial_fit_partial_unfit_identity
    yield check_weighted_forgetting
    if not is_exact_unlearner(estimator):
        yield check_forget_counts_every_row
        yield check_forget_honours_weights
    yield check_zero_weight_forgetting_is_no_op
    yield check_rejected_calls_leave_state_unchanged
    if _has_ledger(estimator):
        yield check_ledger_refuses_rows_not_learned
        yield check_forget_report


def _estimator_id(estimator):
    """Test id: the estimator's repr without spaces, array parameters abbreviated."""
    with np.printoptions(threshold=2, edgeitems=1, precision=2):
        return re.sub(r"\s+", "", repr(estimator))


def parametrize_with_unlearning_checks(estimators, *, expected_failed_checks=None):
    """Pytest decorator running every unlearning check on every estimator.

    Use it like :func:`sklearn.utils.estimator_checks.parametrize_with_checks`::

        @parametrize_with_unlearning_checks([MyEstimator()])
        def test_unlearning(estimator, check):
            check(estimator)

    Parameters
    ----------
    estimators : list of estimators
        Instances (not classes) with ``partial_unfit``.
    expected_failed_checks : callable, default=None
        ``expected_failed_checks(estimator)`` returns a dict mapping the
        names of checks known to fail for that estimator to the reason;
        those are marked ``xfail(strict=True)``, so they must keep failing.

    Returns
    -------
    decorator : `pytest.mark.parametrize`
        Parametrizes ``estimator`` and ``check``.
    """
    import pytest

    params = []
    for estimator in estimators:
        failing = expected_failed_checks(estimator) if expected_failed_checks else {}
        name = type(estimator).__name__
        for check in yield_unlearning_checks(estimator):
            marks = []
            if check.__name__ in failing:
                marks.append(pytest.mark.xfail(reason=failing[check.__name__], strict=True))
            params.append(
                pytest.param(
                    estimator,
                    partial(check, name),
                    id=f"{_estimator_id(estimator)}-{check.__name__}",
                    marks=marks,
                )
            )
    return pytest.mark.parametrize("estimator, check", params)


def check_unlearning_estimator(estimator):
    """Run every unlearning check on ``estimator``; raise on the first failure.

    Parameters
    ----------
    estimator : estimator
        Instance with ``fit``, ``partial_fit`` and ``partial_unfit``.

    Raises
    ------
    AssertionError
        Naming the check and what went wrong.
    """
    name = type(estimator).__name__
    for check in yield_unlearning_checks(estimator):
        check(name, estimator)
