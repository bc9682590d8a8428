"""SparseGPRegressor on rows held on a dask cluster gives what the rows give in memory.

A real ``distributed.LocalCluster`` (two worker processes, one thread each)
runs every test; each compares against the in-memory estimator on the same
rows (or :func:`collapsed_bound` on them).
"""

import warnings

import numpy as np
import pytest
from sklearn.gaussian_process.kernels import RBF, Matern, RationalQuadratic, WhiteKernel
from sklearn.gaussian_process.kernels import ConstantKernel as C

da = pytest.importorskip("dask.array")
dd = pytest.importorskip("dask.dataframe")
pd = pytest.importorskip("pandas")
distributed = pytest.importorskip("distributed")

from sklunlearn._dask._rows import DaskRows  # noqa: E402
from sklunlearn._dask._sparse_gp import (  # noqa: E402
    ChunkedBound,
    _chunk_first,
    _Sample,
    sample_size,
)
from sklunlearn.exceptions import UnlearningWarning  # noqa: E402
from sklunlearn.gaussian_process import SparseGPRegressor  # noqa: E402
from sklunlearn.gaussian_process._bound import collapsed_bound  # noqa: E402
from sklunlearn.linear_model._sufficient_statistics import LinearStatistics  # noqa: E402

RTOL = 1e-10
KERNEL = C(1.3) * RBF([0.9, 1.4])


def _data(n=400, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.uniform(-3, 3, size=(n, 2))
    y = np.sin(X[:, 0]) + 0.5 * X[:, 1] + 2.0 + 0.1 * rng.randn(n)
    Z = rng.uniform(-3, 3, size=(12, 2))
    return X, y, rng.uniform(0.5, 2.0, n), Z


def _ragged(n):
    """Chunk sizes 1, 2, 5, 14, ... (and the rest): ragged, single rows included."""
    sizes, total, k = [], 0, 1
    while total + k < n:
        sizes.append(k)
        total += k
        k = k * 3 - 1
    return (*sizes, n - total)


CHUNKINGS = {"regular": lambda n: 64, "ragged": _ragged, "single-row": lambda n: 1}


def _lazy(values, rows):
    rows = rows if isinstance(rows, int) else tuple(rows)
    return da.from_array(values, chunks=(rows, *values.shape[1:]))


def _fixed(Z, **params):
    return SparseGPRegressor(
        kernel=KERNEL, inducing_points=Z, noise_variance=0.05, optimizer=None, **params
    )


def _assert_equal(on_dask, memory, rtol=RTOL):
    pairs = [
        (on_dask.whitened_posterior_.mean, memory.whitened_posterior_.mean),
        (
            on_dask.whitened_posterior_.precision_cholesky,
            memory.whitened_posterior_.precision_cholesky,
        ),
        (on_dask.sufficient_statistics_.aa, memory.sufficient_statistics_.aa),
        (on_dask.log_marginal_likelihood_value_, memory.log_marginal_likelihood_value_),
        (on_dask.y_train_mean_, memory.y_train_mean_),
        (on_dask.y_train_std_, memory.y_train_std_),
        (on_dask.inducing_points_, memory.inducing_points_),
    ]
    for index, (got, expected) in enumerate(pairs):
        scale = np.max(np.abs(expected), initial=1.0)
        np.testing.assert_allclose(got, expected, rtol=0, atol=rtol * scale, err_msg=index)
    assert on_dask.n_samples_seen_ == memory.n_samples_seen_


@pytest.mark.parametrize("chunking", CHUNKINGS)
def test_fixed_fit_partial_fit_unfit_equal_memory(client, chunking):
    n = 40 if chunking == "single-row" else 400
    X, y, w, Z = _data(n)
    Z[0] = X[3]  # an inducing point that is a training row: the forget check per chunk
    chunks = CHUNKINGS[chunking](n)
    Xd, yd, wd = (_lazy(a, chunks) for a in (X, y, w))
    half = n // 2
    memory = _fixed(Z, normalize_y=True).fit(X[:half], y[:half], w[:half])
    on_dask = _fixed(Z, normalize_y=True).fit(Xd[:half], yd[:half], wd[:half])
    _assert_equal(on_dask, memory)
    memory.partial_fit(X[half:], y[half:], w[half:])
    on_dask.partial_fit(Xd[half:], yd[half:], wd[half:])
    _assert_equal(on_dask, memory)
    forget = slice(2, half + half // 2)  # from both halves, weights in part
    with pytest.warns(UnlearningWarning) as expected:
        memory.partial_unfit(X[forget], y[forget], 0.5 * w[forget])
    with pytest.warns(UnlearningWarning) as got:
        on_dask.partial_unfit(Xd[forget], yd[forget], 0.5 * wd[forget])
    _assert_equal(on_dask, memory)
    assert [str(r.message) for r in got] == [str(r.message) for r in expected]
    assert "inducing_points_ [0] are copies of rows being forgotten" in str(got[0].message)
    report, reference = on_dask.forget_report_, memory.forget_report_
    assert (report.n_rows, report.method, report.exact) == (
        reference.n_rows,
        reference.method,
        reference.exact,
    )
    np.testing.assert_allclose(report.weight, reference.weight, rtol=RTOL)
    assert on_dask.ledger_.n_rows == memory.ledger_.n_rows
    assert np.all(on_dask.ledger_.contains(X[half:], y[half:]))


@pytest.mark.filterwarnings("ignore:X does not have valid feature names")
def test_dataframe_fit_and_lazy_predictions(client):
    X, y, w, Z = _data(300)
    frame = pd.DataFrame(X, columns=["a", "b"]).assign(target=y, weight=w)
    ddf = dd.from_pandas(frame, npartitions=5)
    memory = _fixed(Z, ledger=False).fit(frame[["a", "b"]], frame.target, frame.weight)
    on_dask = _fixed(Z, ledger=False).fit(ddf[["a", "b"]], ddf.target, ddf.weight)
    _assert_equal(on_dask, memory)
    assert list(on_dask.feature_names_in_) == ["a", "b"]
    Xd = _lazy(X, 70)
    mean, std = on_dask.predict(Xd, return_std=True)
    assert isinstance(mean, da.Array) and mean.chunks == (Xd.chunks[0],)
    assert std.chunks == (Xd.chunks[0],)
    expected_mean, expected_std = memory.predict(X, return_std=True)
    np.testing.assert_allclose(mean.compute(), expected_mean, rtol=RTOL)
    np.testing.assert_allclose(std.compute(), expected_std, rtol=1e-8)
    np.testing.assert_allclose(on_dask.predict(Xd).compute(), expected_mean, rtol=RTOL)
    with pytest.raises(ValueError, match="return_cov=True on a dask collection"):
        on_dask.predict(Xd, return_cov=True)


def _state(est):
    return (
        est.whitened_posterior_.mean.copy(),
        est.log_marginal_likelihood_value_,
        est.n_samples_seen_,
        est.ledger_.n_rows,
    )


@pytest.mark.parametrize("call", ["fit", "partial_fit", "partial_unfit"])
def test_bad_chunk_same_error_changes_nothing(client, call):
    X, y, w, Z = _data(200)
    bad = X.copy()
    bad[150, 1] = np.nan
    memory = _fixed(Z).fit(X, y)
    on_dask = _fixed(Z).fit(_lazy(X, 50), _lazy(y, 50))
    before = _state(on_dask)
    with pytest.raises(ValueError) as expected:
        getattr(memory, call)(bad, y)
    with pytest.raises(ValueError) as got:
        getattr(on_dask, call)(_lazy(bad, 50), _lazy(y, 50))
    assert str(got.value) == str(expected.value)
    after = _state(on_dask)
    np.testing.assert_array_equal(after[0], before[0])
    assert after[1:] == before[1:]


@pytest.mark.parametrize("optimize_inducing", [False, True])
def test_bound_and_gradient_equal_memory(client, optimize_inducing):
    X, y, w, Z = _data(300)
    kernel = C(0.8) * RBF([1.1, 0.7]) + WhiteKernel(0.01)
    est = _fixed(Z, normalize_y=True)
    rows = DaskRows(est, _lazy(X, 45), _lazy(y, 45), _lazy(w, 45), reset=True)
    raw = LinearStatistics.from_data(X, y, w)
    bound = ChunkedBound(rows, rows.reduce(_chunk_first, None, None), normalize_y=True)
    t = (y - raw.y_mean) / np.sqrt(raw.yy / raw.weight_sum)
    expected = collapsed_bound(kernel, Z, X, t, w, 0.07, with_inducing=optimize_inducing)
    got = bound(kernel, Z, 0.07, optimize_inducing, (1e-8, 1e-6, 1e-4))
    np.testing.assert_allclose(got.bound, expected.bound, rtol=RTOL)
    np.testing.assert_allclose(got.gradient, expected.gradient, rtol=1e-9, atol=1e-12)
    if optimize_inducing:
        np.testing.assert_allclose(
            got.inducing_gradient, expected.inducing_gradient, rtol=1e-9, atol=1e-12
        )
    else:
        assert got.inducing_gradient is None


def _wavy(n=300):
    """Rows whose bound has a sharp optimum (length scales about 1)."""
    rng = np.random.RandomState(0)
    X = rng.uniform(-3, 3, size=(n, 2))
    y = np.sin(2 * X[:, 0]) * np.cos(X[:, 1]) + 0.1 * rng.randn(n)
    w, Z = rng.uniform(0.5, 2.0, n), rng.uniform(-3, 3, size=(20, 2))
    params = dict(inducing_points=Z, normalize_y=True, kernel=C(1.0) * RBF([1.0, 1.0]))
    return X, y, w, Z, params


def test_optimised_fit_same_optimum(client):
    X, y, w, Z, params = _wavy()
    memory = SparseGPRegressor(**params).fit(X, y, w)
    on_dask = SparseGPRegressor(**params).fit(_lazy(X, 64), _lazy(y, 64), _lazy(w, 64))
    # L-BFGS-B from the same start, on values and gradients equal to round-off, takes
    # the same steps; a flat optimum would let them part by the optimiser's tolerance
    # (pgtol 1e-5), this one is sharp: the same optimum to 1e-6 relative.
    np.testing.assert_allclose(on_dask.kernel_.theta, memory.kernel_.theta, rtol=1e-6)
    np.testing.assert_allclose(on_dask.noise_variance_, memory.noise_variance_, rtol=1e-6)
    np.testing.assert_allclose(
        on_dask.log_marginal_likelihood_value_,
        memory.log_marginal_likelihood_value_,
        rtol=1e-9,
    )
    # at the optimum found, the model equals the in-memory one at those hyperparameters
    refit = SparseGPRegressor(
        kernel=on_dask.kernel_,
        inducing_points=Z,
        noise_variance=on_dask.noise_variance_,
        normalize_y=True,
        optimizer=None,
    ).fit(X, y, w)
    _assert_equal(on_dask, refit)


@pytest.fixture
def passes(monkeypatch):
    """Records the chunk function of every pass over the rows and counts the graphs
    submitted to the cluster; ``evaluations`` counts the calls of the bound."""
    import dask

    record = {"functions": [], "computes": 0, "evaluations": 0}
    reduce, compute, evaluate = DaskRows.reduce, dask.compute, ChunkedBound.__call__

    def counted_reduce(self, function, *args):
        record["functions"].append(function.__name__)
        return reduce(self, function, *args)

    def counted_compute(*args, **kwargs):
        record["computes"] += 1
        return compute(*args, **kwargs)

    def counted_evaluate(self, *args):
        record["evaluations"] += 1
        return evaluate(self, *args)

    monkeypatch.setattr(DaskRows, "reduce", counted_reduce)
    monkeypatch.setattr(dask, "compute", counted_compute)
    monkeypatch.setattr(ChunkedBound, "__call__", counted_evaluate)
    return record


ONE_PASS_KERNELS = {
    "rbf-ard-white": C(0.8) * RBF([1.1, 0.7]) + WhiteKernel(0.01),
    "matern25-isotropic": Matern(0.9, nu=2.5) * C(1.4),
    # no analytic derivatives: the dense kernel gradient per block, still one pass
    "rational-quadratic": C(0.9) * RationalQuadratic(1.0, 0.5) + WhiteKernel(0.1),
}


@pytest.mark.parametrize(
    "chunking, name",
    [
        ("regular", "rbf-ard-white"),
        ("ragged", "matern25-isotropic"),
        ("ragged", "rational-quadratic"),
        ("single-row", "rbf-ard-white"),
        ("single-row", "rational-quadratic"),
    ],
)
def test_bound_and_gradient_in_one_pass(client, passes, chunking, name):
    n = 40 if chunking == "single-row" else 300
    X, y, w, Z = _data(n)
    est = _fixed(Z, normalize_y=True)
    chunks = CHUNKINGS[chunking](n)
    rows = DaskRows(est, *(_lazy(a, chunks) for a in (X, y, w)), reset=True)
    bound = ChunkedBound(rows, rows.reduce(_chunk_first, None, None), normalize_y=True)
    raw = LinearStatistics.from_data(X, y, w)
    t = (y - raw.y_mean) / np.sqrt(raw.yy / raw.weight_sum)
    kernel = ONE_PASS_KERNELS[name]
    expected = collapsed_bound(kernel, Z, X, t, w, 0.07)
    passes["functions"].clear()
    passes["computes"] = 0
    got = bound(kernel, Z, 0.07, False, (1e-8, 1e-6, 1e-4))
    assert passes["functions"] == ["_chunk_bound_moments"]
    assert passes["computes"] == 1
    np.testing.assert_allclose(got.bound, expected.bound, rtol=RTOL)
    scale = np.max(np.abs(expected.gradient))
    np.testing.assert_allclose(got.gradient, expected.gradient, rtol=0, atol=RTOL * scale)
    assert got.inducing_gradient is None
    # derivatives in the inducing locations keep the two passes
    passes["computes"] = 0
    if name != "rational-quadratic":
        bound(kernel, Z, 0.07, True, (1e-8, 1e-6, 1e-4))
        assert passes["computes"] == 2


# (chunks, kernel): ragged chunks from a single row up; the sharp optimum of the
# rows of _wavy pins the hyperparameters, so equal values and gradients give equal
# L-BFGS-B steps and the same optimum to round-off.
OPTIMISED = {
    "regular": (64, C(1.0) * Matern([1.0, 1.0], nu=2.5)),
    "ragged": (_ragged(300), C(1.0) * Matern([1.0, 1.0], nu=1.5) + WhiteKernel(0.1)),
}


@pytest.mark.parametrize("chunking", OPTIMISED)
def test_optimised_fit_equals_memory_one_pass_per_evaluation(client, passes, chunking):
    chunks, kernel = OPTIMISED[chunking]
    X, y, w, Z, params = _wavy()
    params["kernel"] = kernel
    memory = SparseGPRegressor(**params).fit(X, y, w)
    on_dask = SparseGPRegressor(**params).fit(*(_lazy(a, chunks) for a in (X, y, w)))
    # the targets' statistics, one pass per evaluation of the bound, the statistics
    evaluations = passes["evaluations"]
    assert evaluations > 3
    assert passes["functions"] == [
        "_chunk_first",
        *["_chunk_bound_moments"] * evaluations,
        "_chunk_update",
    ]
    assert passes["computes"] == evaluations + 2
    np.testing.assert_allclose(on_dask.kernel_.theta, memory.kernel_.theta, rtol=RTOL)
    np.testing.assert_allclose(on_dask.noise_variance_, memory.noise_variance_, rtol=RTOL)
    _assert_equal(on_dask, memory)


def test_inducing_points_from_a_sample(client):
    X, y, w, _ = _data(400)
    # fewer distinct rows than inducing points: the distinct rows, as in memory
    few = np.repeat(X[:9], 3, axis=0)
    y_few = np.repeat(y[:9], 3)
    params = dict(kernel=KERNEL, noise_variance=0.05, optimizer=None, inducing_points=10)
    memory = SparseGPRegressor(**params).fit(few, y_few)
    on_dask = SparseGPRegressor(**params).fit(_lazy(few, 4), _lazy(y_few, 4))
    _assert_equal(on_dask, memory)
    # k-means centroids of the sample (all rows here: fewer than sample_size(8))
    params |= dict(inducing_points=8, random_state=0)
    first = SparseGPRegressor(**params).fit(_lazy(X, 50), _lazy(y, 50), _lazy(w, 50))
    again = SparseGPRegressor(**params).fit(_lazy(X, 50), _lazy(y, 50), _lazy(w, 50))
    np.testing.assert_array_equal(first.inducing_points_, again.inducing_points_)
    assert first.inducing_points_.shape == (8, 2)
    assert np.all(np.abs(first.inducing_points_) <= 3.0)
    refit = _fixed(first.inducing_points_).fit(X, y, w)
    _assert_equal(first, refit)


def test_sample_keeps_the_largest_keys():
    rng = np.random.RandomState(0)
    keys, rows, weights = rng.rand(100), rng.randn(100, 3), rng.rand(100)
    parts = [
        _Sample.largest(keys[i : i + 7], rows[i : i + 7], weights[i : i + 7], 10)
        for i in range(0, 100, 7)
    ]
    merged = sum(parts[1:], parts[0])
    top = np.argsort(-keys)[:10]
    assert set(merged.keys) == set(keys[top])
    order = np.argsort(-merged.keys)
    np.testing.assert_array_equal(merged.rows[order], rows[top])
    np.testing.assert_array_equal(merged.weights[order], weights[top])
    assert sample_size(8) == 10_000 and sample_size(1000) == 50_000


def test_reoptimize_on_dask_keeps_the_inducing_points(client):
    X, y, w, _ = _data(300)
    params = dict(kernel=KERNEL, noise_variance=0.05, optimizer=None, random_state=0)
    memory = SparseGPRegressor(inducing_points=8, **params).fit(X, y, w)
    on_dask = SparseGPRegressor(inducing_points=8, **params).fit(X, y, w)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnlearningWarning)
        memory.partial_unfit(X[:30], y[:30], w[:30])
        on_dask.partial_unfit(_lazy(X[:30], 7), _lazy(y[:30], 7), _lazy(w[:30], 7))
    _assert_equal(on_dask, memory)
    memory.reoptimize(X[30:], y[30:], w[30:])
    on_dask.reoptimize(_lazy(X[30:], 64), _lazy(y[30:], 64), _lazy(w[30:], 64))
    _assert_equal(on_dask, memory)  # the inducing points of the first fit, kept
    assert on_dask.ledger_.n_rows == memory.ledger_.n_rows == 270


def _peak_rss():
    """This process's peak resident size in bytes (Linux), or None."""
    try:
        with open("/proc/self/status") as handle:
            return next(int(line.split()[1]) * 1024 for line in handle if "VmHWM" in line)
    except (OSError, StopIteration):
        return None


def test_nothing_of_size_n_on_the_client(client):
    """51 MB of rows made on the workers; the client's peak grows by far less.

    Choosing the inducing points reads a sample of sample_size(20) = 10,000 rows
    (1.3 MB); materialising X (or y) on the client would raise the peak by its size.
    """
    n, d, rows_per_chunk = 400_000, 16, 25_000
    state = da.random.RandomState(0)
    X = state.uniform(-2, 2, size=(n, d), chunks=(rows_per_chunk, d))
    y = da.sin(X[:, 0]) + 0.1 * state.standard_normal(n, chunks=rows_per_chunk)
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
    except OSError:
        pytest.skip("cannot reset the peak resident size here")
    before = _peak_rss()
    if before is None:
        pytest.skip("no peak resident size here")
    kernel = C(1.0) * RBF(3.0)
    est = SparseGPRegressor(
        kernel=kernel, inducing_points=20, optimizer=None, random_state=0, ledger=False
    )
    est.fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnlearningWarning)
        est.partial_unfit(X[: n // 100], y[: n // 100])
    mean, std = est.predict(X, return_std=True)
    total = float((mean + std).sum().compute())
    grown = _peak_rss() - before
    assert np.isfinite(total)
    assert grown < X.nbytes / 4, f"the client's peak grew by {grown / 1e6:.0f} MB"
    assert est.inducing_points_.shape == (20, d)
    assert est.n_samples_seen_ == n - n // 100
