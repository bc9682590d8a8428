"""Benchmark: learning and forgetting rows that live on a dask cluster (issue 15).

Rows are generated lazily by dask on the workers (``da.random``), so no
process ever holds them all; each pass over them regenerates their chunks,
as a pass over data read from storage rereads it. Measured in one run on a
``distributed.LocalCluster`` (``--workers`` processes, one thread each):

- a pass that only generates the rows (the floor of any pass);
- ``BayesianLinearRegression.fit`` (one pass) and ``partial_unfit`` of 1% of
  the rows given as a dask array, with each chunk size of ``--chunk-rows``,
  and the peak resident memory of each worker during the fit;
- the same fit in memory (NumPy) at ``--memory-n`` rows, beside the cluster
  fit of the same number of rows: the ratio is the cost of going through the
  cluster;
- ``BayesianLogisticRegression`` at ``--logistic-n`` rows through the Newton
  passes of :mod:`sklunlearn._dask` (one pass per Newton step), with the
  in-memory fit at ``--memory-n`` rows beside it;
- ``SparseGPRegressor`` at ``--sgpr-n`` rows x ``--sgpr-d`` features with
  ``--sgpr-m`` inducing points: a fit at fixed hyperparameters (inducing
  points from a sample of the rows: two passes), ``partial_unfit`` of 1%, a
  fit with a short optimisation (``--sgpr-iterations`` L-BFGS-B iterations,
  one pass per evaluation), and the fixed fit in memory against the
  cluster at ``--sgpr-memory-n`` rows;
- one evaluation of the collapsed bound and its gradient at
  ``--sgpr-bound-n`` rows (section ``sgpr-bound``): in memory, in one pass on
  the cluster, and in the two passes that derivatives in the inducing
  locations take.

Run: ``python benchmarks/bench_dask.py`` (n = 20,000,000 x 50 by default;
``--n`` for less on a small machine). ``--ledger`` keeps the ledger of learned
rows (it lives on the client: 64 to 128 bytes per distinct row).
"""

import argparse
import pickle
import time
import warnings

import numpy as np
import scipy.optimize
from _common import environment, table
from sklearn.gaussian_process.kernels import RBF
from sklearn.gaussian_process.kernels import ConstantKernel as C

from sklunlearn.exceptions import UnlearningWarning
from sklunlearn.gaussian_process import SparseGPRegressor
from sklunlearn.linear_model import BayesianLinearRegression, BayesianLogisticRegression
from sklunlearn.linear_model._sufficient_statistics import LinearStatistics


def lazy_rows(n, d, rows_per_chunk, seed, kind="regression"):
    """``(X, y)`` as dask arrays generated on the workers, chunk by chunk."""
    import dask.array as da

    state = da.random.RandomState(seed)
    X = state.standard_normal((n, d), chunks=(rows_per_chunk, d))
    coef = np.linspace(-1.0, 1.0, d) / np.sqrt(d)
    noise = state.standard_normal(n, chunks=rows_per_chunk)
    if kind == "regression":
        return X, X @ coef + 0.5 * noise
    return X, (X @ coef + noise > 0).astype(np.int64)


def _clear_peak():
    """Reset this process's peak resident size (Linux ``clear_refs``)."""
    with open("/proc/self/clear_refs", "w") as handle:
        handle.write("5")


def _memory():
    """``(resident, peak)`` bytes of this process."""
    figures = {}
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith(("VmRSS:", "VmHWM:")):
                figures[line[:5]] = int(line.split()[1]) * 1024
    return figures["VmRSS"], figures["VmHWM"]


def timed(client, function):
    """``(seconds, largest worker peak in bytes)`` of ``function()``."""
    client.run(_clear_peak)
    start = time.perf_counter()
    function()
    seconds = time.perf_counter() - start
    peak = max(peak for _, peak in client.run(_memory).values())
    return seconds, peak


def _mb(n_bytes):
    return f"{n_bytes / 2**20:.0f} MiB"


def linear_rows(client, args):
    """Table rows for BayesianLinearRegression; also the figures the docs use."""
    rows, d, n = [], args.d, args.n
    k = n // 100
    for chunk in args.chunk_rows:
        X, y = lazy_rows(n, d, chunk, seed=0)
        chunks = -(-n // chunk)
        seconds, peak = timed(client, lambda X=X: X.sum().compute())
        rows.append(
            ["generate only (one pass)", n, chunk, f"{seconds:.1f} s", "", _mb(peak)]
        )
        est = BayesianLinearRegression(ledger=args.ledger)
        fit, peak = timed(client, lambda est=est, X=X, y=y: est.fit(X, y))
        per_chunk = fit * args.workers / chunks
        rows.append(
            [f"fit ({chunks} chunks)", n, chunk, f"{fit:.1f} s", "1x", _mb(peak)]
            + [f"{1e3 * per_chunk:.0f} ms/chunk"]
        )
        forget, peak = timed(
            client, lambda est=est, X=X, y=y: est.partial_unfit(X[:k], y[:k])
        )
        rows.append(
            [f"partial_unfit 1% ({k} rows)", n, chunk, f"{forget:.2f} s"]
            + [f"fit / {fit / forget:.0f}", _mb(peak), ""]
        )
    return rows


def memory_rows(client, args):
    """In memory and on the cluster at ``--memory-n`` rows, side by side."""
    import dask.array as da

    n, d, chunk = args.memory_n, args.d, args.chunk_rows[0]
    rng = np.random.default_rng(0)
    X = rng.standard_normal((n, d))
    y = X @ (np.linspace(-1.0, 1.0, d) / np.sqrt(d)) + 0.5 * rng.standard_normal(n)
    BayesianLinearRegression(ledger=args.ledger).fit(X[:1000], y[:1000])  # warm, untimed
    start = time.perf_counter()
    BayesianLinearRegression(ledger=args.ledger).fit(X, y)
    in_memory = time.perf_counter() - start
    del X, y
    X, y = lazy_rows(n, d, chunk, seed=0)
    generate, _ = timed(client, lambda: da.stack([X.sum(), y.sum()]).compute())
    cluster, peak = timed(
        client, lambda: BayesianLinearRegression(ledger=args.ledger).fit(X, y)
    )
    return [
        ["fit in memory (NumPy)", n, "", f"{in_memory:.2f} s", "1x", ""],
        ["generate only (one pass)", n, chunk, f"{generate:.2f} s", "", _mb(peak)],
        ["fit on the cluster", n, chunk, f"{cluster:.2f} s"]
        + [f"{cluster / in_memory:.2f}x", _mb(peak)],
    ]


def logistic_rows(client, args):
    """BayesianLogisticRegression on the cluster and in memory."""
    n, d, chunk = args.logistic_n, args.d, args.chunk_rows[0]
    k = n // 100
    Xw, yw = lazy_rows(1000, d, 500, seed=1, kind="classification")
    BayesianLogisticRegression().fit(Xw, yw)  # the workers' kernels, untimed
    X, y = lazy_rows(n, d, chunk, seed=1, kind="classification")
    est = BayesianLogisticRegression(ledger=args.ledger)
    fit, peak = timed(client, lambda: est.fit(X, y))
    steps = est.n_iter_  # one pass each, plus backtracking passes, labels, class counts
    forget, forget_peak = timed(client, lambda: est.partial_unfit(X[:k], y[:k]))
    m = args.logistic_memory_n
    rng = np.random.default_rng(1)
    Xm = rng.standard_normal((m, d))
    ym = Xm @ (np.linspace(-1.0, 1.0, d) / np.sqrt(d)) + rng.standard_normal(m) > 0
    # compile (or load) the fused kernel in this process first, untimed
    BayesianLogisticRegression(ledger=args.ledger).fit(Xm[:1000], ym[:1000])
    start = time.perf_counter()
    BayesianLogisticRegression(ledger=args.ledger).fit(Xm, ym.astype(np.int64))
    in_memory = time.perf_counter() - start
    del Xm, ym
    Xs, ys = lazy_rows(m, d, chunk, seed=1, kind="classification")
    small, small_peak = timed(
        client, lambda: BayesianLogisticRegression(ledger=args.ledger).fit(Xs, ys)
    )
    return [
        [f"fit ({steps} Newton steps)", n, chunk] + [f"{fit:.1f} s", "1x", _mb(peak)],
        [f"partial_unfit 1% ({k} rows)", n, chunk, f"{forget:.2f} s"]
        + [f"fit / {fit / forget:.0f}", _mb(forget_peak)],
        ["fit in memory (NumPy)", m, "", f"{in_memory:.2f} s", "1x", ""],
        ["fit on the cluster", m, chunk, f"{small:.2f} s"]
        + [f"{small / in_memory:.2f}x", _mb(small_peak)],
    ]


def lazy_gp_rows(n, d, rows_per_chunk, seed):
    """``(X, y)`` of a smooth function of the first two features, made on the workers."""
    import dask.array as da

    state = da.random.RandomState(seed)
    X = state.uniform(-2.0, 2.0, size=(n, d), chunks=(rows_per_chunk, d))
    noise = state.standard_normal(n, chunks=rows_per_chunk)
    return X, da.sin(2.0 * X[:, 0]) + 0.5 * da.cos(X[:, 1]) + 0.1 * noise


class _ShortLBFGS:
    """An ``optimizer`` for SparseGPRegressor: L-BFGS-B stopped after ``iterations``."""

    def __init__(self, iterations):
        self.iterations, self.evaluations = iterations, 0

    def __call__(self, obj_func, initial_theta, bounds):
        result = scipy.optimize.minimize(
            obj_func,
            initial_theta,
            jac=True,
            method="L-BFGS-B",
            bounds=bounds,
            options={"maxiter": self.iterations},
        )
        self.evaluations = result.nfev
        return result.x, result.fun


def sgpr_rows(client, args):
    """SparseGPRegressor on the cluster, and in memory beside it at a smaller n."""
    n, d, m, chunk = args.sgpr_n, args.sgpr_d, args.sgpr_m, args.sgpr_chunk_rows
    k = n // 100
    kernel = C(1.0) * RBF(np.ones(d))
    fixed = dict(kernel=kernel, noise_variance=0.1, optimizer=None, ledger=args.ledger)
    Xw, yw = lazy_gp_rows(2000, d, 500, seed=2)
    SparseGPRegressor(inducing_points=20, **fixed).fit(Xw, yw)  # the workers' kernels
    X, y = lazy_gp_rows(n, d, chunk, seed=2)
    est = SparseGPRegressor(inducing_points=m, random_state=0, **fixed)
    fit, peak = timed(client, lambda: est.fit(X, y))
    with warnings.catch_warnings():  # the inducing points were learned: said once
        warnings.simplefilter("ignore", UnlearningWarning)
        forget, forget_peak = timed(client, lambda: est.partial_unfit(X[:k], y[:k]))
    short = _ShortLBFGS(args.sgpr_iterations)
    optimised = SparseGPRegressor(
        kernel=kernel,
        inducing_points=est.inducing_points_,
        noise_variance=0.1,
        optimizer=short,
        normalize_y=True,
        ledger=args.ledger,
    )
    search, search_peak = timed(client, lambda: optimised.fit(X, y))
    small_n = args.sgpr_memory_n
    Xs, ys = lazy_gp_rows(small_n, d, chunk, seed=3)
    Z = est.inducing_points_
    small, small_peak = timed(
        client, lambda: SparseGPRegressor(inducing_points=Z, **fixed).fit(Xs, ys)
    )
    Xm, ym = (np.asarray(a) for a in client.compute([Xs, ys], sync=True))
    SparseGPRegressor(inducing_points=Z, **fixed).fit(Xm[:1000], ym[:1000])  # warm
    start = time.perf_counter()
    SparseGPRegressor(inducing_points=Z, **fixed).fit(Xm, ym)
    in_memory = time.perf_counter() - start
    evaluations = f"{short.evaluations} evaluations, {short.evaluations + 2} passes"
    return [
        [f"fit, fixed, m={m} from a sample (2 passes)", n, chunk, f"{fit:.1f} s"]
        + ["1x", _mb(peak)],
        [f"partial_unfit 1% ({k} rows)", n, chunk, f"{forget:.2f} s"]
        + [f"fit / {fit / forget:.0f}", _mb(forget_peak)],
        [f"fit, {args.sgpr_iterations} L-BFGS-B iteration(s) ({evaluations})", n, chunk]
        + [f"{search:.1f} s", f"{search / fit:.1f}x", _mb(search_peak)],
        ["fit, fixed, given Z, in memory (NumPy)", small_n, "", f"{in_memory:.2f} s"]
        + ["1x", ""],
        ["fit, fixed, given Z, on the cluster", small_n, chunk, f"{small:.2f} s"]
        + [f"{small / in_memory:.2f}x", _mb(small_peak)],
    ]


def _evaluations(client, rows, Xm, ym, Z, kernel):
    """``(in memory, one pass, two passes)``: seconds of one evaluation of the bound
    and its gradient each way, and the largest relative difference of the
    cluster's gradients from the in-memory one."""
    from sklunlearn._dask._sparse_gp import ChunkedBound, _chunk_first
    from sklunlearn.gaussian_process._sgpr import _RowsBound

    jitters, s2 = (1e-6,), 0.1
    memory = _RowsBound(Xm, ym, np.ones(ym.size), normalize_y=True)
    chunked = ChunkedBound(rows, rows.reduce(_chunk_first, None, None), normalize_y=True)
    start = time.perf_counter()
    expected = memory(kernel, Z, s2, False, jitters)
    seconds = [time.perf_counter() - start]
    one, one_peak = timed(client, lambda: chunked(kernel, Z, s2, False, jitters))
    two, two_peak = timed(client, lambda: chunked(kernel, Z, s2, True, jitters))
    gradients = [chunked(kernel, Z, s2, with_Z, jitters) for with_Z in (False, True)]
    scale = np.max(np.abs(expected.gradient))
    error = max(np.max(np.abs(g.gradient - expected.gradient)) / scale for g in gradients)
    return seconds + [one, two], [one_peak, two_peak], error


def sgpr_bound_rows(client, args):
    """One evaluation of the collapsed bound and its gradient, as ``fit`` with an
    optimizer makes many: in memory (NumPy), on the cluster in one pass (the sums
    and their derivatives per chunk), and on the cluster in the two passes that
    derivatives in the inducing locations take (the sums, the solve, then the
    gradient's sweep). The rows are persisted on the workers, so the cluster rows
    measure the passes' work, not generating the rows. The two passes also give
    the derivatives in ``Z`` (O(r m p) more per chunk)."""
    from sklunlearn._dask._rows import DaskRows

    n, d, m, chunk = args.sgpr_bound_n, args.sgpr_d, args.sgpr_m, args.sgpr_chunk_rows
    X, y = client.persist(list(lazy_gp_rows(n, d, chunk, seed=4)))
    Xm, ym = (np.asarray(a) for a in client.compute([X, y], sync=True))
    Z = Xm[np.random.RandomState(0).choice(n, m, replace=False)]
    out = []
    for name, kernel in [
        ("isotropic RBF", C(1.0) * RBF(1.0)),
        (f"ARD RBF ({d} length scales)", C(1.0) * RBF(np.ones(d))),
    ]:
        est = SparseGPRegressor(kernel=kernel, inducing_points=Z, normalize_y=True)
        rows = DaskRows(est, X, y, None, reset=True)
        _evaluations(client, rows, Xm[:2000], ym[:2000], Z, kernel)  # warm
        (memory, one, two), (one_peak, two_peak), error = _evaluations(
            client, rows, Xm, ym, Z, kernel
        )
        p = kernel.theta.size
        out += [
            [f"{name}, p'={p}: in memory (NumPy)", n, "", f"{memory:.2f} s", "1x", ""],
            [f"{name}: cluster, one pass", n, chunk, f"{one:.2f} s"]
            + [f"{one / memory:.2f}x", _mb(one_peak)],
            [f"{name}: cluster, two passes", n, chunk, f"{two:.2f} s"]
            + [f"{two / memory:.2f}x", _mb(two_peak)],
            [f"{name}: largest gradient difference (relative)", n, "", f"{error:.1e}"]
            + ["", ""],
        ]
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=20_000_000)
    parser.add_argument("--d", type=int, default=50)
    parser.add_argument("--chunk-rows", type=int, nargs="+", default=[250_000, 1_000_000])
    parser.add_argument("--memory-n", type=int, default=2_000_000)
    parser.add_argument("--logistic-n", type=int, default=5_000_000)
    parser.add_argument("--logistic-memory-n", type=int, default=500_000)
    parser.add_argument("--sgpr-n", type=int, default=2_000_000)
    parser.add_argument("--sgpr-d", type=int, default=8)
    parser.add_argument("--sgpr-m", type=int, default=200)
    parser.add_argument("--sgpr-chunk-rows", type=int, default=100_000)
    parser.add_argument("--sgpr-iterations", type=int, default=3)
    parser.add_argument("--sgpr-memory-n", type=int, default=200_000)
    parser.add_argument("--sgpr-bound-n", type=int, default=200_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--ledger", action="store_true")
    parser.add_argument(
        "--sections",
        nargs="+",
        choices=["linear", "memory", "logistic", "sgpr", "sgpr-bound"],
        default=["linear", "memory", "logistic", "sgpr"],
    )
    args = parser.parse_args()

    import distributed

    print(f"# dask LocalCluster: {args.workers} worker processes x 1 thread; d={args.d}")
    print(environment())
    headers = ["operation", "n", "rows per chunk", "time", "ratio", "peak per worker"]
    with (
        distributed.LocalCluster(
            n_workers=args.workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        # warm the workers' kernels and imports, untimed
        X, y = lazy_rows(1000, args.d, 500, seed=0)
        BayesianLinearRegression().fit(X, y).partial_unfit(X[:10], y[:10])
        if "linear" in args.sections:
            print("\n## BayesianLinearRegression\n")
            rows = linear_rows(client, args)
            print(table([row[:6] for row in rows], headers))
            print("\nper-chunk cost of the fit (time x workers / chunks):")
            for row in rows:
                if len(row) > 6 and row[6]:
                    print(f"- {row[2]} rows per chunk: {row[6]}")
        if "memory" in args.sections:
            print(f"\n## In memory against the cluster, n={args.memory_n}\n")
            print(table(memory_rows(client, args), headers))
        if "logistic" in args.sections:
            print("\n## BayesianLogisticRegression\n")
            print(table(logistic_rows(client, args), headers))
        if "sgpr" in args.sections:
            print(f"\n## SparseGPRegressor, d={args.sgpr_d}, m={args.sgpr_m}\n")
            print(table(sgpr_rows(client, args), headers))
        if "sgpr-bound" in args.sections:
            print(f"\n## SparseGPRegressor, one evaluation of the bound, m={args.sgpr_m}\n")
            print(table(sgpr_bound_rows(client, args), headers))
        size = len(pickle.dumps(LinearStatistics.empty(args.d)))
        print(f"\nreduction: one LinearStatistics of d={args.d} pickles to {size} bytes")


if __name__ == "__main__":
    main()
