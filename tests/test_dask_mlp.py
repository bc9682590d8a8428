"""BayesianMLPRegressor on rows held on a dask cluster against the same rows in memory.

A real ``distributed.LocalCluster`` (the session's ``client`` fixture) runs
every test; each compares with the in-memory estimator on the same rows.

How close the two can be depends on the step. A forget gathers the request's
rows and runs the in-memory code on them, and adding rows to the output layer
(``curvature='last_layer'``) is a sum of statistics: both equal the in-memory
result to round-off (1e-10 relative) from the same fitted state, whatever the
chunking. A MAP fit by L-BFGS-B is a different matter: its gradients are sums
over rows, and summing them chunk by chunk changes them in the last bits,
which sends the iterates along a slightly different path. With one chunk the
sums are computed in the in-memory order and the fits agree to round-off (even
with the noise learned, whose fit is otherwise chaotic at round-off); with
several chunks both stop within the gradient tolerance of the same mode, so
the weights agree to about that tolerance over the objective's smallest
curvature (bounded below by the prior's ``alpha / W``).
"""

import copy
import pickle
import warnings

import numpy as np
import pytest

da = pytest.importorskip("dask.array")
dd = pytest.importorskip("dask.dataframe")
pd = pytest.importorskip("pandas")
pytest.importorskip("distributed")

from _memory import clear_peak_rss, peak_rss_bytes  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402

from sklunlearn._dask import is_dask_collection  # noqa: E402
from sklunlearn.exceptions import UnlearningWarning  # noqa: E402
from sklunlearn.neural_network import BayesianMLPRegressor  # noqa: E402

RTOL = 1e-10
# The fits compared across chunkings: a well-conditioned objective (alpha=100, noise
# variance 1) and a per-row gradient tolerance of 1e-10, so both stop within
# tol / (alpha / W) ~ 2.5e-10 of the same mode (W ~ 250): weights agree to 1e-8.
CONDITIONED = {"alpha": 100.0, "noise_variance": 1.0, "tol": 1e-10, "max_iter": 500}
SAME_MODE_ATOL = 1e-8


def _data(n=200, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.uniform(-2.0, 2.0, (n, 2))
    y = np.sin(2.0 * X[:, 0]) + 0.5 * X[:, 1] + 0.1 * rng.randn(n)
    return X, y, rng.uniform(0.5, 2.0, n)


def _ragged(n):
    """Chunk sizes 1, 4, 13, 40, ... and the rest: ragged, a single row first."""
    sizes, total, k = [], 0, 1
    while total + k < n:
        sizes.append(k)
        total += k
        k = 3 * k + 1
    return (*sizes, n - total)


CHUNKINGS = {"one": lambda n: n, "ragged": _ragged, "single-row": lambda n: 1}


def _lazy(values, rows):
    rows = rows if isinstance(rows, int) else tuple(rows)
    return da.from_array(values, chunks=(rows, *values.shape[1:]))


def _network(**params):
    defaults = {"hidden_layer_sizes": (3,), "random_state": 0}
    return BayesianMLPRegressor(**(defaults | params))


def _assert_equal(on_dask, memory, rtol=RTOL, atol=0.0):
    pairs = {
        "mean": (on_dask.posterior_.mean, memory.posterior_.mean),
        "precision": (on_dask.posterior_.precision, memory.posterior_.precision),
        "theta": (np.concatenate([c.ravel() for c in on_dask.coefs_]),
                  np.concatenate([c.ravel() for c in memory.coefs_])),
        "noise_variance_": (on_dask.noise_variance_, memory.noise_variance_),
    }  # fmt: skip
    for name, (found, expected) in pairs.items():
        scale = atol * max(1.0, float(np.max(np.abs(expected))))
        np.testing.assert_allclose(found, expected, rtol=rtol, atol=scale, err_msg=name)
    assert on_dask.n_samples_seen_ == memory.n_samples_seen_


def _error(method, *args):
    with pytest.raises(Exception) as info:  # noqa: PT011 - compared with in-memory
        method(*args)
    return type(info.value), str(info.value)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize(
    "params",
    [
        {"curvature": "ggn", "noise_variance": 0.05},
        {"curvature": "last_layer", "noise_variance": 0.05},
        {"curvature": "ggn", "noise_variance": None},
    ],
    ids=["ggn", "last_layer", "ggn-learned-noise"],
)
def test_fit_on_one_chunk_equals_memory(client, params):
    """One chunk sums in the in-memory order: L-BFGS takes the same steps (the
    few iterations allowed are enough to tell), learned noise included."""
    X, y, w = _data()
    memory = _network(max_iter=4, **params).fit(X, y, w)
    on_dask = _network(max_iter=4, **params).fit(_lazy(X, len(y)), _lazy(y, len(y)), w)
    _assert_equal(on_dask, memory)
    assert on_dask.n_iter_ == memory.n_iter_
    np.testing.assert_allclose(on_dask.loss_, memory.loss_, rtol=RTOL)
    assert on_dask.ledger_.n_rows == memory.ledger_.n_rows == len(y)
    if params["noise_variance"] is None:  # MacKay's updates ran, not the start value
        assert on_dask.noise_variance_ < 0.5 * np.var(y)


def test_fit_on_ragged_chunks_reaches_the_same_mode(client):
    X, y, w = _data()
    memory = _network(**CONDITIONED).fit(X, y, w)
    chunks = _ragged(len(y))
    on_dask = _network(**CONDITIONED).fit(_lazy(X, chunks), _lazy(y, chunks), _lazy(w, 50))
    _assert_equal(on_dask, memory, rtol=1e-8, atol=SAME_MODE_ATOL)
    assert on_dask.ledger_.n_rows == memory.ledger_.n_rows
    assert np.all(on_dask.ledger_.contains(X[:5], y[:5]))


def _fitted(n=200, **params):
    """A network fitted in memory on the first ``n`` rows of :func:`_data`, quietly."""
    X, y, w = _data()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return _network(**params).fit(X[:n], y[:n], w[:n])


@pytest.mark.parametrize("chunking", CHUNKINGS)
def test_last_layer_partial_fit_from_the_same_state_equals_memory(client, chunking):
    X, y, w = _data()
    fitted = _fitted(150, curvature="last_layer", noise_variance=0.05, max_iter=50)
    memory = copy.deepcopy(fitted).partial_fit(X[150:], y[150:], w[150:])
    chunks = CHUNKINGS[chunking](50)
    on_dask = copy.deepcopy(fitted).partial_fit(
        _lazy(X[150:], chunks), _lazy(y[150:], chunks), w[150:]
    )
    _assert_equal(on_dask, memory)
    assert on_dask.ledger_.n_rows == memory.ledger_.n_rows == 200
    assert np.all(on_dask.ledger_.contains(X[150:160], y[150:160]))


@pytest.mark.parametrize("chunking", ["one", "ragged"])
def test_ggn_partial_fit_from_the_same_state_equals_memory(client, chunking):
    """One chunk: the same L-BFGS steps (1e-10); ragged chunks: the same mode."""
    X, y, w = _data()
    fitted = _fitted(150, **CONDITIONED)
    memory = copy.deepcopy(fitted).partial_fit(X[150:], y[150:], w[150:])
    chunks = CHUNKINGS[chunking](50)
    on_dask = copy.deepcopy(fitted).partial_fit(
        _lazy(X[150:], chunks), _lazy(y[150:], chunks), _lazy(w[150:], chunks)
    )
    if chunking == "one":
        _assert_equal(on_dask, memory)
        assert on_dask.n_iter_ == memory.n_iter_
    else:
        _assert_equal(on_dask, memory, rtol=1e-8, atol=SAME_MODE_ATOL)


def _forget_both(fitted, memory_args, dask_args):
    """``partial_unfit`` of copies of ``fitted``, with the warnings each issued."""
    results = []
    for args in (memory_args, dask_args):
        estimator = copy.deepcopy(fitted)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            estimator.partial_unfit(*args)
        results.append((estimator, [str(w.message) for w in caught]))
    return results


@pytest.mark.parametrize("chunking", CHUNKINGS)
@pytest.mark.parametrize(
    "params",
    [
        {"curvature": "ggn"},
        {"curvature": "last_layer"},
        {"curvature": "ggn", "unlearning": "eubo", "max_iter": 50},
    ],
    ids=["laplace", "exact", "eubo"],
)
def test_partial_unfit_from_the_same_state_equals_memory(client, chunking, params):
    X, y, w = _data()
    fitted = _fitted(noise_variance=0.05, **({"max_iter": 50} | params))
    forget = slice(20, 60)
    chunks = CHUNKINGS[chunking](40)
    # y in memory, X and the weights on the cluster
    (memory, expected), (on_dask, found) = _forget_both(
        fitted,
        (X[forget], y[forget], 0.5 * w[forget]),
        (_lazy(X[forget], chunks), y[forget], _lazy(0.5 * w[forget], chunks)),
    )
    _assert_equal(on_dask, memory)
    assert found == expected
    report, reference = on_dask.forget_report_, memory.forget_report_
    for name in ("method", "exact", "n_rows", "warnings"):
        assert getattr(report, name) == getattr(reference, name), name
    for name in ("weight", "moved"):
        np.testing.assert_allclose(getattr(report, name), getattr(reference, name), RTOL)
    # half of each row's weight was forgotten: the rows stay, with less weight
    assert on_dask.ledger_.n_rows == memory.ledger_.n_rows == 200
    np.testing.assert_allclose(
        on_dask.ledger_.total_weight, memory.ledger_.total_weight, rtol=RTOL
    )


@pytest.mark.filterwarnings("ignore:X does not have valid feature names")
@pytest.mark.parametrize("curvature", ["ggn", "last_layer"])
def test_dataframe_fit_and_lazy_predictions_equal_memory(client, curvature):
    X, y, w = _data()
    frame = pd.DataFrame(X, columns=["a", "b"])
    params = {"curvature": curvature, "noise_variance": 0.05, "max_iter": 4}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        memory = _network(**params).fit(frame, y, w)
        # one partition: the rows are summed in the in-memory order
        on_dask = _network(**params).fit(dd.from_pandas(frame, npartitions=1), y, w)
    _assert_equal(on_dask, memory)
    assert list(on_dask.feature_names_in_) == ["a", "b"]
    mean, std = on_dask.predict(dd.from_pandas(frame, npartitions=3), return_std=True)
    assert is_dask_collection(mean) and is_dask_collection(std)
    expected_mean, expected_std = memory.predict(frame, return_std=True)
    np.testing.assert_allclose(mean.compute(), expected_mean, rtol=RTOL)
    np.testing.assert_allclose(std.compute(), expected_std, rtol=RTOL)
    lazy = on_dask.predict(_lazy(X, 70))
    assert lazy.chunks == ((70, 70, 60),)
    np.testing.assert_allclose(lazy.compute(), memory.predict(X), rtol=RTOL)


def _bad_inputs(X, y, w):
    """Named ``(X, y, weights)`` requests that in-memory validation refuses."""
    nan, y_nan, negative = X.copy(), y.copy(), w.copy()
    nan[37, 1] = np.nan
    y_nan[30] = np.inf
    negative[25] = -1.0
    return {
        "nan": (nan, y, w),
        "y-inf": (X, y_nan, w),
        "features": (X[:, :1], y, w),
        "negative-weight": (X, y, negative),
    }


@pytest.mark.parametrize("bad", ["nan", "y-inf", "features", "negative-weight"])
def test_bad_chunk_same_error_changes_nothing(client, bad):
    X, y, w = _data()
    fitted = _fitted(noise_variance=0.05, max_iter=20)
    on_dask = copy.deepcopy(fitted)
    state = pickle.dumps(on_dask)
    Xb, yb, wb = _bad_inputs(X[:50], y[:50], w[:50])[bad]
    lazy = (_lazy(Xb, (20, 20, 10)), _lazy(yb, 10), _lazy(wb, 25))
    for name in ("partial_fit", "partial_unfit"):
        expected = _error(getattr(copy.deepcopy(fitted), name), Xb, yb, wb)
        assert _error(getattr(on_dask, name), *lazy) == expected, name
        assert pickle.dumps(on_dask) == state
    if bad == "features":
        return  # one feature is valid for a fit
    # a fit from scratch refuses as in memory and leaves the estimator unfitted
    expected = _error(_network(noise_variance=None).fit, Xb, yb, wb)
    fresh = _network(noise_variance=None)
    assert _error(fresh.fit, *lazy) == expected
    assert pickle.dumps(fresh) == pickle.dumps(_network(noise_variance=None))


def test_adam_and_vi_are_refused_and_change_nothing(client):
    X, y, w = _data()
    lazy = (_lazy(X, 50), _lazy(y, 50))
    fresh = _network(solver="adam")
    with pytest.raises(NotImplementedError, match="solver='lbfgs'"):
        fresh.fit(*lazy)
    assert pickle.dumps(fresh) == pickle.dumps(_network(solver="adam"))
    with pytest.raises(NotImplementedError, match="inference='laplace'"):
        _network(inference="vi").fit(*lazy)
    fitted = _fitted(solver="adam", noise_variance=0.05, max_iter=3)
    state = pickle.dumps(fitted)
    with pytest.raises(NotImplementedError, match="solver='lbfgs'"):
        fitted.partial_fit(*lazy)
    assert pickle.dumps(fitted) == state
    # adding rows to the output layer needs no MAP fit: accepted with Adam
    fitted = _fitted(150, solver="adam", curvature="last_layer", max_iter=3)
    memory = copy.deepcopy(fitted).partial_fit(X[150:], y[150:])
    on_dask = copy.deepcopy(fitted).partial_fit(_lazy(X[150:], 20), _lazy(y[150:], 20))
    _assert_equal(on_dask, memory)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_nothing_of_size_n_on_the_client(client):
    """41 MB of rows made on the workers; the client's peak grows by far less.

    Materialising X (or y) on the client would raise the peak by its size.
    """
    n, d, rows_per_chunk = 320_000, 16, 20_000
    state = da.random.RandomState(0)
    X = state.standard_normal((n, d), chunks=(rows_per_chunk, d))
    y = da.tanh(X[:, 0]) + 0.1 * state.standard_normal(n, chunks=rows_per_chunk)
    if not clear_peak_rss():
        pytest.skip("cannot reset the peak resident size here")
    before = peak_rss_bytes()
    est = _network(curvature="last_layer", noise_variance=0.01, max_iter=2, ledger=False)
    est.fit(X, y)
    est.partial_fit(X[: n // 10], y[: n // 10])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnlearningWarning)
        est.partial_unfit(X[: n // 100], y[: n // 100])
    total = float(est.predict(X).sum().compute())
    grown = peak_rss_bytes() - before
    print(f"client peak grew by {grown / 1e6:.1f} MB for {X.nbytes / 1e6:.0f} MB of rows")
    assert np.isfinite(total)
    # materialising X would add X.nbytes; dask's own bookkeeping stays well below half
    assert grown < X.nbytes / 2, f"the client's peak grew by {grown / 1e6:.0f} MB"
