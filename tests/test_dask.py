"""Rows on a dask cluster give what the same rows give in memory.

A real ``distributed.LocalCluster`` (two worker processes, one thread each)
runs every test; each compares against the in-memory estimator fitted on the
same rows.
"""

import copy
import pickle
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest

da = pytest.importorskip("dask.array")
dd = pytest.importorskip("dask.dataframe")
pd = pytest.importorskip("pandas")
distributed = pytest.importorskip("distributed")

from _memory import clear_peak_rss, peak_rss_bytes  # noqa: E402

from sklunlearn._dask import (  # noqa: E402
    dask_laplace_divide_out,
    dask_newton_fit,
    is_dask_collection,
)
from sklunlearn._dask._rows import DaskRows  # noqa: E402
from sklunlearn.ledger import Ledger  # noqa: E402
from sklunlearn.linear_model import (  # noqa: E402
    BayesianLinearRegression,
    BayesianLogisticRegression,
)
from sklunlearn.unlearning import laplace_divide_out, newton_fit  # noqa: E402

RTOL = 1e-10


def _regression(n=600, d=4, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.randn(n, d) + 3.0
    y = X @ rng.randn(d) + 0.5 * rng.randn(n)
    return X, y, rng.uniform(0.5, 2.0, n)


def _assert_linear_equal(dask_est, memory_est):
    for name in ("coef_", "intercept_", "alpha_", "lambda_", "sigma_"):
        np.testing.assert_allclose(
            getattr(dask_est, name), getattr(memory_est, name), rtol=RTOL, err_msg=name
        )
    assert dask_est.n_samples_seen_ == memory_est.n_samples_seen_


def _ragged(n):
    """Chunk sizes 1, 4, 13, ... (and the rest): ragged, single rows included."""
    sizes, total, k = [], 0, 1
    while total + k < n:
        sizes.append(k)
        total += k
        k = k * 3 + 1
    return (*sizes, n - total)


def _lazy(values, rows):
    """``values`` as a dask array with row chunks ``rows`` (an int or sizes)."""
    rows = rows if isinstance(rows, int) else tuple(rows)
    return da.from_array(values, chunks=(rows, *values.shape[1:]))


CHUNKINGS = {
    "regular": lambda n: 100,
    "ragged": _ragged,
    "single-row": lambda n: 1,
}


@pytest.mark.parametrize("chunking", CHUNKINGS)
def test_linear_fit_partial_fit_unfit_equal_memory(client, chunking):
    n = 40 if chunking == "single-row" else 600
    X, y, w = _regression(n)
    chunks = CHUNKINGS[chunking](n)
    Xd, yd, wd = (_lazy(a, chunks) for a in (X, y, w))
    half = n // 2
    memory = BayesianLinearRegression().fit(X[:half], y[:half], w[:half])
    on_dask = BayesianLinearRegression().fit(Xd[:half], yd[:half], wd[:half])
    _assert_linear_equal(on_dask, memory)
    memory.partial_fit(X[half:], y[half:], w[half:])
    on_dask.partial_fit(Xd[half:], yd[half:], wd[half:])
    _assert_linear_equal(on_dask, memory)
    # forget rows from both halves, weights in part
    forget = slice(half // 2, half + half // 2)
    memory.partial_unfit(X[forget], y[forget], 0.5 * w[forget])
    on_dask.partial_unfit(Xd[forget], yd[forget], 0.5 * wd[forget])
    _assert_linear_equal(on_dask, memory)
    report, expected = on_dask.forget_report_, memory.forget_report_
    assert (report.n_rows, report.method, report.exact) == (
        expected.n_rows,
        expected.method,
        expected.exact,
    )
    np.testing.assert_allclose(report.weight, expected.weight, rtol=RTOL)
    assert on_dask.ledger_.n_rows == memory.ledger_.n_rows
    assert np.all(on_dask.ledger_.contains(X[:10], y[:10]))


def test_linear_mixed_inputs_compensated_and_float32(client):
    X, y, w = _regression(300)
    memory = BayesianLinearRegression(compensated=True, fit_intercept=False).fit(X, y, w)
    # y and the weights in memory, X on the cluster with column chunks to merge
    on_dask = BayesianLinearRegression(compensated=True, fit_intercept=False).fit(
        da.from_array(X, chunks=(70, 3)), y, w
    )
    _assert_linear_equal(on_dask, memory)
    X32 = X.astype(np.float32)
    memory = BayesianLinearRegression().fit(X32, y)
    on_dask = BayesianLinearRegression().fit(da.from_array(X32, chunks=64), y)
    assert on_dask.coef_.dtype == memory.coef_.dtype == np.float32
    np.testing.assert_allclose(on_dask.coef_, memory.coef_, rtol=1e-6)


@pytest.mark.filterwarnings("ignore:X does not have valid feature names")
def test_linear_dataframe_equal_memory_and_lazy_predictions(client):
    X, y, w = _regression(500, d=3)
    frame = pd.DataFrame(X, columns=["a", "b", "c"]).assign(target=y, weight=w)
    ddf = dd.from_pandas(frame, npartitions=7)
    features = ["a", "b", "c"]
    memory = BayesianLinearRegression().fit(frame[features], frame.target, frame.weight)
    on_dask = BayesianLinearRegression().fit(ddf[features], ddf.target, ddf.weight)
    _assert_linear_equal(on_dask, memory)
    assert list(on_dask.feature_names_in_) == features
    memory.partial_unfit(frame[features][:40], frame.target[:40], frame.weight[:40] / 2)
    head = ddf.head(40, compute=False)  # the first partition's first 40 rows, lazily
    on_dask.partial_unfit(head[features], head.target, head.weight / 2)
    _assert_linear_equal(on_dask, memory)

    mean, std = on_dask.predict(ddf[features], return_std=True)
    assert is_dask_collection(mean) and is_dask_collection(std)
    assert mean.numblocks == (7,)
    expected_mean, expected_std = memory.predict(frame[features], return_std=True)
    np.testing.assert_allclose(mean.compute(), expected_mean, rtol=RTOL)
    np.testing.assert_allclose(std.compute(), expected_std, rtol=RTOL)

    Xd = da.from_array(X, chunks=(_ragged(500), 2))
    lazy = on_dask.predict(Xd)
    assert lazy.chunks == (Xd.chunks[0],)
    np.testing.assert_allclose(lazy.compute(), memory.predict(X), rtol=RTOL)


def _error(method, *args):
    """Type and message of what ``method(*args)`` raises."""
    with pytest.raises(Exception) as info:
        method(*args)
    return type(info.value), str(info.value)


def _bad_inputs(X, y):
    """Named ``(X, y, weights)`` requests that in-memory validation refuses."""
    nan, inf = X.copy(), X.copy()
    nan[437, 1] = np.nan
    inf[5, 0] = np.inf
    y_nan = y.copy()
    y_nan[300] = np.nan
    negative = np.ones(len(y))
    negative[250] = -1.0
    return {
        "nan": (nan, y, None),
        "inf": (inf, y, None),
        "y-nan": (X, y_nan, None),
        "features": (X[:, :2], y, None),
        "negative-weight": (X, y, negative),
        "zero-weights": (X, y, np.zeros(len(y))),
        "length": (X, y[:-1], None),
    }


BAD = ("nan", "inf", "y-nan", "features", "negative-weight", "zero-weights", "length")


@pytest.mark.parametrize("bad", BAD)
def test_bad_chunk_same_error_changes_nothing(client, bad):
    X, y, _ = _regression(600)
    memory = BayesianLinearRegression().fit(X, y)
    on_dask = BayesianLinearRegression().fit(da.from_array(X, chunks=97), y)
    state = pickle.dumps(on_dask)
    Xb, yb, wb = _bad_inputs(X, y)[bad]
    chunks = _ragged(len(Xb))
    lazy = [None if a is None else _lazy(a, 50) for a in (yb, wb)]  # realigned to X
    for name in ("partial_fit", "partial_unfit"):
        if bad == "zero-weights" and name == "partial_unfit":
            continue  # forgetting zero weight is a valid no-op
        expected = _error(getattr(memory, name), Xb, yb, wb)
        found = _error(getattr(on_dask, name), da.from_array(Xb, chunks=(chunks, 1)), *lazy)
        assert found == expected
        assert pickle.dumps(on_dask) == state


def test_forget_refused_by_ledger_and_feature_names_checked(client):
    X, y, _ = _regression(400)
    memory = BayesianLinearRegression().fit(X[:300], y[:300])
    on_dask = BayesianLinearRegression().fit(da.from_array(X[:300], chunks=64), y[:300])
    state = pickle.dumps(on_dask)
    # rows 250..349: the last 50 were never learned (positions 50.. of the request)
    request = (X[250:350], y[250:350])
    expected = _error(memory.partial_unfit, *request)
    found = _error(
        on_dask.partial_unfit,
        da.from_array(request[0], chunks=33),
        da.from_array(request[1], chunks=33),
    )
    assert found == expected and "positions 50, 51" in found[1]
    assert pickle.dumps(on_dask) == state
    # a dataframe with other column names
    names = pd.DataFrame(X, columns=list("abcd"))
    fitted = BayesianLinearRegression().fit(names, y)
    on_frame = BayesianLinearRegression().fit(dd.from_pandas(names, npartitions=3), y)
    other = names.rename(columns={"d": "e"})
    expected = _error(fitted.partial_fit, other, y)
    found = _error(on_frame.partial_fit, dd.from_pandas(other, npartitions=3), y)
    assert found == expected


def test_nothing_of_size_n_on_the_client(client):
    """82 MB of rows made on the workers; the client's peak grows by far less.

    Materialising X (or y) on the client would raise the peak by its size.
    """
    n, d, rows_per_chunk = 640_000, 16, 10_000
    state = da.random.RandomState(0)
    X = state.standard_normal((n, d), chunks=(rows_per_chunk, d))
    y = X @ np.linspace(-1.0, 1.0, d) + state.standard_normal(n, chunks=rows_per_chunk)
    if not clear_peak_rss():
        pytest.skip("cannot reset the peak resident size here")
    before = peak_rss_bytes()
    est = BayesianLinearRegression(ledger=False).fit(X, y)
    est.partial_unfit(X[: n // 100], y[: n // 100])
    total = float(est.predict(X).sum().compute())
    grown = peak_rss_bytes() - before
    print(f"client peak grew by {grown / 1e6:.1f} MB for {X.nbytes / 1e6:.0f} MB of rows")
    assert np.isfinite(total)
    assert grown < X.nbytes / 4, f"the client's peak grew by {grown / 1e6:.0f} MB"
    np.testing.assert_allclose(est.coef_, np.linspace(-1.0, 1.0, d), atol=0.01)


def _classification(n=500, d=3, n_classes=2, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.randn(n, d)
    scores = X @ rng.randn(d, n_classes) + 0.5 * rng.randn(n, n_classes)
    return X, np.argmax(scores, axis=1), rng.uniform(0.5, 2.0, n)


def test_logistic_newton_and_divide_out_equal_memory(client):
    """Ragged chunks, a single-row one among them; one pass per Newton step."""
    n = 500
    X, y, w = _classification(n)
    estimator = BayesianLogisticRegression().fit(X, y, w)
    model, prior = estimator.model_, estimator.model_.prior.posterior()
    chunks = _ragged(n)
    rows = DaskRows(
        estimator, _lazy(X, chunks), _lazy(y, chunks), _lazy(w, chunks), reset=False
    )
    target = y.astype(np.float64)
    expected, expected_record = newton_fit(prior, model, X, target, w)
    found, record = dask_newton_fit(prior, model, rows, 1)
    assert record.n_iter == expected_record.n_iter and record.converged
    np.testing.assert_allclose(found.mean, expected.mean, rtol=RTOL)
    np.testing.assert_allclose(found.precision, expected.precision, rtol=RTOL)
    forget = DaskRows(
        estimator, da.from_array(X[:20], chunks=7), y[:20], w[:20], reset=False, forget=True
    )
    expected, _ = laplace_divide_out(found, model, X[:20], target[:20], w[:20])
    removed, _ = dask_laplace_divide_out(found, model, forget, 1)
    np.testing.assert_allclose(removed.mean, expected.mean, rtol=RTOL)
    np.testing.assert_allclose(removed.precision, expected.precision, rtol=RTOL)


def test_classifier_on_dask_equals_memory(client):
    """Fit and forget on dask through the estimator: multiclass, two requests."""
    X, y, w = _classification(300, n_classes=3)
    labels = np.array(["a", "b", "c"])[y]
    memory = BayesianLogisticRegression().fit(X, labels, w)
    on_dask = BayesianLogisticRegression().fit(_lazy(X, _ragged(300)), _lazy(labels, 50), w)
    assert list(on_dask.classes_) == ["a", "b", "c"]
    np.testing.assert_allclose(on_dask.coef_, memory.coef_, rtol=RTOL)
    np.testing.assert_allclose(on_dask.class_count_, memory.class_count_, rtol=RTOL)
    memory.partial_unfit(X[:30], labels[:30], w[:30])
    on_dask.partial_unfit(da.from_array(X[:30], chunks=7), labels[:30], w[:30])
    np.testing.assert_allclose(on_dask.coef_, memory.coef_, rtol=RTOL)
    # a second request: the union of both is divided out of the fitted posterior
    memory.partial_unfit(X[30:50], labels[30:50], w[30:50])
    on_dask.partial_unfit(_lazy(X[30:50], 6), labels[30:50], w[30:50])
    np.testing.assert_allclose(on_dask.coef_, memory.coef_, rtol=RTOL)
    assert on_dask.n_samples_seen_ == memory.n_samples_seen_ == 250
    Xd = _lazy(X, 64)
    proba = on_dask.predict_proba(Xd)
    assert proba.chunks == (Xd.chunks[0], (3,))
    np.testing.assert_allclose(proba.compute(), memory.predict_proba(X), rtol=1e-9)
    np.testing.assert_array_equal(on_dask.predict(Xd), memory.predict(X))
    state = pickle.dumps(on_dask)
    bad = labels[:30].copy()
    bad[17] = "z"
    expected = _error(memory.partial_unfit, X[60:90], bad)
    found = _error(on_dask.partial_unfit, da.from_array(X[60:90], chunks=7), bad)
    assert found == expected
    assert pickle.dumps(on_dask) == state


@pytest.mark.parametrize(
    "params",
    [
        {"unlearning": "uib"},
        {"unlearning": "eubo", "unlearning_lambda": 0.1, "random_state": 0},
        {"unlearning": "lcodec", "random_state": 0},
        {"inference": "vi"},
        {"removal_noise": 0.5, "random_state": 0},
    ],
    ids=["uib", "eubo", "lcodec", "vi", "certified"],
)
def test_classifier_forgets_dask_rows_with_any_method_as_in_memory(client, params):
    """A request's rows are gathered and forgotten in memory, on a model fitted in memory
    (learning on the cluster with VI or the removal perturbation is refused)."""
    X, y, w = _classification(300, n_classes=2, seed=1)
    fitted = BayesianLogisticRegression(**params).fit(X, y, w)
    learns_on_the_cluster = "inference" not in params and "removal_noise" not in params
    if not learns_on_the_cluster:
        state = pickle.dumps(fitted)
        with pytest.raises(NotImplementedError, match="Compute the"):
            fitted.partial_fit(_lazy(X[:40], 7), y[:40], w[:40])
        assert pickle.dumps(fitted) == state
    memory, on_dask = copy.deepcopy(fitted), copy.deepcopy(fitted)
    with warnings.catch_warnings(record=True) as expected_warnings:
        warnings.simplefilter("always")
        memory.partial_unfit(X[:25], y[:25], w[:25])
    with warnings.catch_warnings(record=True) as found_warnings:
        warnings.simplefilter("always")
        on_dask.partial_unfit(_lazy(X[:25], 4), y[:25], _lazy(w[:25], 6))
    assert [str(x.message) for x in found_warnings] == [
        str(x.message) for x in expected_warnings
    ]
    np.testing.assert_allclose(on_dask.coef_, memory.coef_, rtol=RTOL, atol=1e-14)
    np.testing.assert_allclose(
        on_dask.posterior_.precision, memory.posterior_.precision, rtol=RTOL
    )
    assert on_dask.forget_report_.n_rows == memory.forget_report_.n_rows == 25
    if "removal_noise" in params:
        assert on_dask.certificate_ == memory.certificate_
    # the ledger refused rows it never learned, before anything changed
    state = pickle.dumps(on_dask)
    with pytest.raises(ValueError):
        on_dask.partial_unfit(_lazy(X[:25] + 1.0, 5), y[:25])
    assert pickle.dumps(on_dask) == state


def test_ledger_spawn_fingerprints_merge():
    X, y, _ = _regression(50)
    ledger = Ledger(4)
    ledger.add(X[:30], y[:30])
    part = ledger.spawn()
    assert len(part) == 0
    part.add(X[30:], y[30:])
    ledger.merge(part)
    assert ledger.n_rows == 50 and np.all(ledger.contains(X, y))
    other = Ledger(4)
    with pytest.raises(ValueError, match="same key"):
        other.merge(part)
    fingerprints = ledger.fingerprint(X[:5], y[:5])
    assert fingerprints.shape == (5, 2)
    np.testing.assert_array_equal(part.fingerprint(X[:5], y[:5]), fingerprints)
    plan = ledger.plan_forget_fingerprints(fingerprints, np.ones(5))
    ledger.apply(plan)
    assert ledger.n_rows == 45 and not ledger.contains(X[:5], y[:5]).any()


def test_package_works_without_dask():
    """With dask unimportable, the package imports and fits NumPy rows."""
    code = textwrap.dedent(
        """
        import sys
        sys.modules["dask"] = None
        import numpy as np
        from sklunlearn.linear_model import BayesianLinearRegression
        X = np.random.RandomState(0).randn(20, 2)
        est = BayesianLinearRegression().fit(X, X[:, 0]).partial_unfit(X[:2], X[:2, 0])
        print(est.predict(X[:1]).shape, "dask" in sys.modules and sys.modules["dask"])
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.split() == ["(1,)", "None"]


def test_sparse_gp_classifier_needs_given_inducing_points_on_dask(client):
    from sklunlearn.gaussian_process import SparseGPClassifier

    rng = np.random.RandomState(0)
    X = rng.randn(120, 2)
    y = (X[:, 0] + 0.3 * rng.randn(120) > 0).astype(int)
    lazy_X, lazy_y = da.from_array(X, chunks=40), da.from_array(y, chunks=40)
    fitted = SparseGPClassifier(inducing_points=10, random_state=0).fit(X, y)
    state = pickle.dumps(fitted)
    with pytest.raises(NotImplementedError, match="inducing_points as an array"):
        fitted.fit(lazy_X, lazy_y)
    assert pickle.dumps(fitted) == state
    # with the fitted locations given, the dask fit is the in-memory one
    Z = fitted.inducing_points_
    on_dask = SparseGPClassifier(inducing_points=Z).fit(lazy_X, lazy_y)
    in_memory = SparseGPClassifier(inducing_points=Z).fit(X, y)
    np.testing.assert_allclose(
        on_dask.whitened_posterior_.mean, in_memory.whitened_posterior_.mean, atol=1e-10
    )
    np.testing.assert_allclose(
        on_dask.predict_proba(lazy_X).compute(), in_memory.predict_proba(X), rtol=1e-10
    )
