"""A logistic deletion service on dask rows: partial_fit and partial_unfit interleaved.

The same calls are made with the rows as dask arrays (on the synchronous
scheduler and on a ``LocalCluster``) and as NumPy arrays: every step must
give the in-memory posterior, which learns the new rows into the pending
requests' anchor and so stays near a refit on the remaining rows
(tests/test_logistic_service.py), and a refused call must leave the
estimator exactly as it was.
"""

import pickle
import warnings

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_wine
from sklearn.exceptions import ConvergenceWarning
from sklearn.preprocessing import StandardScaler

from sklunlearn.linear_model import BayesianLogisticRegression

dask = pytest.importorskip("dask")
da = pytest.importorskip("dask.array")
pytest.importorskip("distributed")

# Chunked sums add in another order than in memory: equal to round-off.
RTOL = 1e-10


@pytest.fixture(scope="module")
def cancer():
    X, y = load_breast_cancer(return_X_y=True)
    return StandardScaler().fit_transform(X), y


@pytest.fixture(scope="module")
def wine():
    X, y = load_wine(return_X_y=True)
    return StandardScaler().fit_transform(X), np.array(["a", "b", "c"])[y]


def _calls(n, seed, n_steps, n_fit, learn=0.25):
    """``(method, rows)`` of a service: a fit, then forgets of 1-5 remaining rows,
    a share ``learn`` of them after a ``partial_fit`` of 1-5 new rows.

    With ``learn=0.25`` the draws are those of tests/test_logistic_service.py.
    """
    rng = np.random.RandomState(seed)
    order = rng.permutation(n)
    remaining, pool = list(order[:n_fit]), list(order[n_fit:])
    calls = [("fit", list(remaining))]
    for _ in range(n_steps):
        if rng.rand() < learn:
            new = [pool.pop() for _ in range(rng.randint(1, 6))]
            calls.append(("partial_fit", new))
            remaining += new
        picked = set(rng.choice(len(remaining), rng.randint(1, 6), replace=False))
        calls.append(("partial_unfit", [r for i, r in enumerate(remaining) if i in picked]))
        remaining = [r for i, r in enumerate(remaining) if i not in picked]
    return calls


def _lazy(X, y, rows):
    """The rows as dask arrays, ``y`` chunked unlike ``X`` (realigned on the way)."""
    return (
        da.from_array(X[rows], chunks=(max(1, len(rows) // 3), -1)),
        da.from_array(y[rows], chunks=max(1, len(rows) // 2)),
    )


def _call(estimator, method, X, y):
    """``estimator.method(X, y)``; the warnings' texts (those of partial_unfit's report)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        getattr(estimator, method)(X, y)
    return estimator.forget_report_.warnings if method == "partial_unfit" else ()


def _same_posteriors(found, expected):
    """Whether the estimators' posteriors are equal to round-off."""
    return all(
        np.allclose(a.mean, b.mean, rtol=RTOL, atol=1e-10)
        and np.allclose(a.precision, b.precision, rtol=RTOL, atol=1e-10)
        for a, b in zip(found._posterior_list(), expected._posterior_list(), strict=True)
    )


def _lock_step(X, y, calls, fitted=None):
    """Run ``calls`` in memory and on dask: both estimators, and the steps that differ.

    A step differs when its posteriors or its forget's warnings do. ``fitted``:
    an estimator both start from (copies), else an unfitted one.
    """
    memory = BayesianLogisticRegression() if fitted is None else fitted
    on_dask = pickle.loads(pickle.dumps(memory))
    differ = []
    for step, (method, rows) in enumerate(calls):
        expected = _call(memory, method, X[rows], y[rows])
        found = _call(on_dask, method, *_lazy(X, y, rows))
        if found != expected or not _same_posteriors(on_dask, memory):
            differ.append((step, method))
    assert on_dask.n_samples_seen_ == memory.n_samples_seen_
    np.testing.assert_allclose(on_dask.class_count_, memory.class_count_, rtol=RTOL)
    return memory, on_dask, differ


def _remaining(calls):
    """The rows learned and not forgotten after ``calls``, and every row ever learned."""
    remaining, seen = [], []
    for method, rows in calls:
        if method == "partial_unfit":
            remaining = [row for row in remaining if row not in set(rows)]
        else:
            remaining, seen = remaining + rows, seen + rows
    return remaining, seen


def test_dask_service_equals_memory_and_stays_near_the_refit(cancer):
    """A long service: re-anchoring at every learn drifts far from the refit.

    Run on dask's synchronous scheduler, the same passes over the chunks as on
    a cluster without its transport (tested below on a shorter service).
    """
    X, y = cancer
    # Enough forgets for re-anchoring at every learn to end past doing nothing.
    calls = _calls(y.shape[0], 2, 50, 340)
    with dask.config.set(scheduler="sync"):
        memory, on_dask, differ = _lock_step(X, y, calls)
    remaining, seen = _remaining(calls)
    refit = BayesianLogisticRegression().fit(X[remaining], y[remaining]).posterior_
    nothing = BayesianLogisticRegression().fit(X[seen], y[seen]).posterior_
    limit = 0.5 * nothing.kl_divergence(refit)
    assert memory.posterior_.kl_divergence(refit) < limit
    assert on_dask.posterior_.kl_divergence(refit) < limit
    assert not differ


def test_cluster_service_equals_memory(client, cancer):
    """Forgets after learns while others are pending, on the LocalCluster.

    Both start from the same fit in memory (fits on dask are compared above).
    """
    X, y = cancer
    (_, rows), *calls = _calls(y.shape[0], 5, 3, 340, learn=0.6)
    assert [method for method, _ in calls[2:]] == ["partial_fit", "partial_unfit"] * 2
    *_, differ = _lock_step(X, y, calls, BayesianLogisticRegression().fit(X[rows], y[rows]))
    assert not differ


def test_dask_multiclass_service_equals_memory(wine):
    """One anchor and union per one-vs-rest problem, learned and moved together."""
    X, y = wine
    with dask.config.set(scheduler="sync"):
        *_, differ = _lock_step(X, y, _calls(y.shape[0], 0, 12, 120, learn=0.5))
    assert not differ


def _refused(estimator, method, *args, error=Exception):
    """Type and message of what the refused call raises; assert nothing changed."""
    state = pickle.dumps(estimator)
    # A pickle leaves out the pending requests' state (it holds the forgotten rows):
    # the refusal must put back the very objects.
    pending = [estimator.__dict__.get(name) for name in _PENDING]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(error) as info:
            getattr(estimator, method)(*args)
    assert pickle.dumps(estimator) == state
    for name, kept in zip(_PENDING, pending, strict=True):
        assert estimator.__dict__.get(name) is kept
    return type(info.value), str(info.value)


_PENDING = ("_pending_forgets", "_pending_origins")


def _forgets_pending(X, y):
    """A model with forgets pending and rows learned since (anchors, unions, origins)."""
    model = BayesianLogisticRegression().fit(X[:400], y[:400])
    model.partial_unfit(X[:3], y[:3])
    model.partial_fit(X[400:405], y[400:405])
    return model


def test_refused_calls_on_dask_change_nothing_while_forgets_are_pending(client, cancer):
    """Refusals before and after the update: the anchors, unions and origins stay."""
    X, y = cancer
    memory, on_dask = _forgets_pending(X, y), _forgets_pending(X, y)
    assert "_pending_origins" in on_dask.__dict__
    lazy = da.from_array(X, chunks=(50, -1))
    # 40 rows of class 1, the largest in the first feature: the check warns.
    ones = np.flatnonzero(y[3:400] == 1) + 3
    cluster = ones[np.argsort(-X[ones, 0])][:40]
    requests = [
        # the ledger refuses rows never learned (first pass)
        ("partial_unfit", (X[450:455], y[450:455]), (lazy[450:455], y[450:455])),
        # a label not in classes_ (validation on the workers)
        ("partial_fit", (X[405:410], y[405:410] + 2), (lazy[405:410], y[405:410] + 2)),
        # the check's warning raised as an error, after the divide-out
        ("partial_unfit", (X[cluster], y[cluster]), (lazy[cluster], y[cluster])),
    ]
    for method, in_memory, on_cluster in requests:
        expected = _refused(memory, method, *in_memory)
        assert _refused(on_dask, method, *on_cluster) == expected
    # Newton's ConvergenceWarning raised as an error, after both fits
    for estimator in (memory, on_dask):
        estimator.set_params(max_iter=1)
    expected = _refused(
        memory, "partial_fit", X[405:410], y[405:410], error=ConvergenceWarning
    )
    found = _refused(
        on_dask, "partial_fit", lazy[405:410], y[405:410], error=ConvergenceWarning
    )
    assert found == expected
    for estimator in (memory, on_dask):
        estimator.set_params(max_iter=100)
    # the next forget finds the pending state the refused calls left alone
    memory.partial_unfit(X[5:8], y[5:8])
    on_dask.partial_unfit(lazy[5:8], y[5:8])
    assert _same_posteriors(on_dask, memory)
