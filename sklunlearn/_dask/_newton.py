"""Laplace learning and forgetting on rows held on a dask cluster.

The in-memory methods (:func:`~sklunlearn.unlearning.newton_fit`,
:func:`~sklunlearn.unlearning.laplace_divide_out`) touch the rows only
through ``model.terms`` (and ``model.expected_terms``): sums over rows. A
:class:`ChunkedModel` computes those sums as one pass over the chunks, each
chunk's terms by the fused kernel on its worker, added with ``+`` in a tree;
the methods themselves run unchanged on the client. Each Newton iteration
(and each halving of a step) is then one pass, and a divide-out one pass.
"""

import numpy as np
from sklearn.utils.multiclass import (
    _check_partial_fit_first_call,
    check_classification_targets,
)

from ..linear_model._classifier import _moved_site
from ..unlearning import laplace_divide_out, newton_fit

__all__ = [
    "ChunkedModel",
    "classifier_update",
    "dask_laplace_divide_out",
    "dask_newton_fit",
    "dask_site_terms",
]


def _targets(labels, target):
    """The {0, 1} target of one (one-vs-rest) problem from class indices."""
    return (labels == target).astype(np.float64)


def _chunk_terms(X, labels, weights, model, target, theta, with_value, vectors):
    return model.terms(
        X, _targets(labels, target), weights, theta, with_value=with_value, vectors=vectors
    )


def _chunk_expected_terms(X, labels, weights, model, target, posterior):
    return model.expected_terms(X, _targets(labels, target), weights, posterior)


def _chunk_class_weight(X, labels, weights, n_classes):
    return np.bincount(labels, weights=weights, minlength=n_classes)


class _RowsStandIn:
    """Stands for the rows in the in-memory methods' signatures; it has a shape only.

    ``shape[0]`` is at least the number of parameters, so that a divide-out
    factorises the new precision rather than downdating row by row (which
    would need the rows on the client); both equal to round-off.
    """

    def __init__(self, rows, n_parameters):
        self._rows = rows
        self._n_parameters = n_parameters

    @property
    def shape(self):
        n_rows = self._rows.n_rows or 0
        return (max(n_rows, self._n_parameters), self._rows.n_features)


class ChunkedModel:
    """A :class:`~sklunlearn.unlearning.Model` whose terms are sums over a cluster's chunks.

    Parameters
    ----------
    model : Model
        The estimator's ``model_`` (predictor, likelihood, prior).
    rows : DaskRows
        The rows; their ``y`` are class indices (a classifier's ``_validate_rows``).
    target : int
        The class whose indicator is the {0, 1} target (1 for a binary problem).
    """

    def __init__(self, model, rows, target):
        self.model = model
        self.rows = rows
        self.target = target
        self.predictor = model.predictor
        self.likelihood = model.likelihood
        self.prior = model.prior

    def terms(self, X, y, weights, theta, *, with_value=True, vectors=None):
        """:meth:`Model.terms` of all the rows (``X, y, weights`` are ignored): one pass."""
        return self.rows.reduce(
            _chunk_terms, self.model, self.target, np.asarray(theta), with_value, vectors
        )

    def expected_terms(self, X, y, weights, posterior):
        """:meth:`Model.expected_terms` of all the rows: one pass."""
        return self.rows.reduce(_chunk_expected_terms, self.model, self.target, posterior)


def dask_newton_fit(posterior, model, rows, target, *, max_iter=100, tol=1e-10):
    """:func:`~sklunlearn.unlearning.newton_fit` on rows on a cluster, one pass a step.

    Returns what ``newton_fit`` returns on the same rows in memory (to round-off).
    """
    chunked = ChunkedModel(model, rows, target)
    stand_in = _RowsStandIn(rows, model.prior.n_features)
    return newton_fit(posterior, chunked, stand_in, None, None, max_iter=max_iter, tol=tol)


def dask_site_terms(posterior, model, rows, target, inference="laplace"):
    """The rows' terms ``posterior`` holds (at its mean, or expected for 'vi'): one pass."""
    chunked = ChunkedModel(model, rows, target)
    if inference == "vi":
        return chunked.expected_terms(None, None, None, posterior)
    return chunked.terms(None, None, None, posterior.mean, with_value=False)


def dask_laplace_divide_out(
    posterior,
    model,
    rows,
    target,
    *,
    inference="laplace",
    terms=None,
    previous=None,
    origin=None,
):
    """:func:`~sklunlearn.unlearning.laplace_divide_out` of rows on a cluster.

    One pass for the rows' terms (none when ``terms`` are given), and one
    more when the step moves the mean: the check re-evaluates the rows there
    (the bounds that can settle it in memory need the rows on the client).
    ``terms``, ``previous`` and ``origin`` are as in memory.
    """
    chunked = ChunkedModel(model, rows, target)
    stand_in = _RowsStandIn(rows, model.prior.n_features)
    return laplace_divide_out(
        posterior,
        chunked,
        stand_in,
        None,
        None,
        inference=inference,
        terms=terms,
        previous=previous,
        origin=origin,
    )


def _forget_pending(estimator, rows, targets):
    """Divide the union of the pending requests out, as the in-memory ``_run_pending``.

    Per problem, the anchor (the posterior before the first forget since
    the fit, with every row learned since: :func:`_learn_pending`) and the
    summed terms of the rows forgotten since are kept in
    ``_pending_forgets``. A request's rows are taken as a site at the
    origin (the anchor before any such learn, in ``_pending_origins``) in
    one pass, the site moved to the anchor's mean, and the union re-divided
    from the anchor.
    """
    stored = estimator.__dict__.get("_pending_forgets")
    if stored is None:
        stored = [(posterior, None) for posterior in estimator._posterior_list()]
        estimator.__dict__.pop("_pending_origins", None)
    anchors, previous = zip(*stored, strict=True)
    origins = estimator.__dict__.get("_pending_origins") or list(anchors)
    estimator._pending_origins = origins  # _conclude drops them with the pending state
    model, inference = estimator.model_, estimator.inference
    results, pending = [], []
    for anchor, before, origin, target in zip(
        anchors, previous, origins, targets, strict=True
    ):
        terms = dask_site_terms(origin, model, rows, target, inference)
        where = None
        if origin is not anchor:  # rows learned since: the site taken at the origin
            terms, where = _moved_site(terms, anchor.mean - origin.mean), origin.mean
        results.append(
            dask_laplace_divide_out(
                anchor,
                model,
                rows,
                target,
                inference=inference,
                terms=terms,
                previous=before,
                origin=where,
            )
        )
        pending.append((anchor, terms if before is None else before + terms))
    return results, pending


def _learn_pending(estimator, rows, targets, options):
    """The pending requests' state after learning rows, as the in-memory ``_learn_pending``.

    None when no forget is pending. Each anchor learns the rows too (Newton
    passes over the chunks), so that it stays the posterior of every row
    learned, and the union's site is moved to its new mean; the site of the
    rows learned before stays taken at the origin.
    """
    stored = estimator.__dict__.get("_pending_forgets")
    if stored is None:
        return None
    anchors, unions = zip(*stored, strict=True)
    model = estimator.model_
    learned = [
        dask_newton_fit(anchor, model, rows, target, **options)[0]
        for anchor, target in zip(anchors, targets, strict=True)
    ]
    estimator._pending_origins = estimator.__dict__.get("_pending_origins") or list(anchors)
    return [
        (new, _moved_site(union, new.mean - anchor.mean))
        for new, anchor, union in zip(learned, anchors, unions, strict=True)
    ]


def _check_supported(estimator):
    """Learning on a cluster: Newton passes, without the certified-removal perturbation."""
    unsupported = []
    if estimator.removal_noise is not None:
        unsupported.append("removal_noise (certified removal)")
    if estimator.inference != "laplace":
        unsupported.append(f"inference={estimator.inference!r}")
    if unsupported:
        raise NotImplementedError(
            f"Learning rows in a dask collection supports inference='laplace' "
            f"without certified removal; got {', '.join(unsupported)}. Compute the "
            "rows (X.compute()) or change these parameters."
        )


def _forgets_on_the_cluster(estimator):
    """Whether a forget runs as passes over the chunks (else its rows are gathered)."""
    return (
        estimator.unlearning == "laplace"
        and estimator.inference == "laplace"
        and estimator.removal_noise is None
    )


def _start_classes(estimator, rows):
    """Set ``classes_`` on a fit: from the labels on the cluster (one pass over y)."""
    if rows.options.get("partial"):
        if _check_partial_fit_first_call(estimator, rows.options.get("classes")):
            estimator._check_classes(estimator.classes_)
        return
    classes = rows.unique_targets()
    if classes.size == 0:  # no rows: the in-memory message, not one about classes
        rows._refuse_empty()
    check_classification_targets(classes)
    estimator._check_classes(classes)
    estimator.classes_ = classes


def classifier_update(estimator, rows, *, sign, reset):
    """``_update`` of a Bernoulli-logit classifier for rows on a cluster.

    Learning runs :func:`dask_newton_fit` (and, while forgets are pending,
    once more from their anchor), forgetting with ``'laplace'``
    :func:`dask_laplace_divide_out` of the pending requests' union (as in
    memory), once per one-vs-rest problem, with the estimator's ``model_``;
    the class weights are one more pass (the first, which also checks the
    ledger). Any other forgetting method, a variational posterior or a
    certificate gathers the request's rows (validated and fingerprinted per
    chunk) and forgets them in memory.

    Parameters
    ----------
    estimator : BayesianLogisticRegression
    rows : DaskRows
    sign : float
        +1 to learn, -1 to forget.
    reset : bool
        Whether this is a fit.

    Returns
    -------
    outcome : UpdateOutcome
    """
    if sign < 0 and not _forgets_on_the_cluster(estimator):
        # Any other method, or a certificate, reads the request's rows in memory.
        X, labels, weights = rows.gather()
        return estimator._update(X, labels, weights, sign=-1.0, reset=False)
    if sign > 0:
        _check_supported(estimator)
    if reset:
        _start_classes(estimator, rows)
        estimator._start(np.empty((0, rows.n_features)), None)
    n_classes = estimator.classes_.shape[0]
    class_weight = rows.reduce(_chunk_class_weight, n_classes)
    if sign < 0 and not estimator.ledger:  # with a ledger, the ledger has refused
        estimator._check_forgettable(class_weight, rows.n_rows)
    targets = [1] if n_classes == 2 else list(range(n_classes))
    problems = zip(estimator._posterior_list(), targets, strict=True)
    model = estimator.model_
    if sign > 0:
        options = {"max_iter": estimator.max_iter, "tol": estimator.tol}
        results = [dask_newton_fit(p, model, rows, t, **options) for p, t in problems]
        pending = _learn_pending(estimator, rows, targets, options)
    else:
        results, pending = _forget_pending(estimator, rows, targets)
    records, outcome = estimator._conclude(
        "laplace", results, pending, class_weight, rows.n_rows, sign
    )
    if sign > 0:
        estimator._warn_unconverged(records)
    return outcome
