"""Benchmark: the cost of the ledger of learned rows (issue 11).

Measured side by side in one run:

- ``Ledger.add`` of n=200,000 rows x d=100 against the fit it rides on,
  ``BayesianLinearRegression().fit(X, y)``: the ratio (fit + ledger) / fit,
  target at most 1.25; for C- and F-ordered X;
- ``plan_forget`` + ``apply`` of 2,000 rows into a ledger of 200,000 rows at
  d=50 against the goal of at most 0.5 ms together.

Every figure is printed as best / median of its runs.

Run: ``python benchmarks/bench_ledger.py`` (and with ``OPENBLAS_NUM_THREADS=1``
for one-BLAS-thread figures; the fingerprinting threads follow
``NUMBA_NUM_THREADS``).
"""

import argparse
import time

import numpy as np
from _common import environment, run_times, table

from sklunlearn._numba import fingerprint
from sklunlearn.ledger import Ledger
from sklunlearn.linear_model import BayesianLinearRegression, BayesianLogisticRegression

FORGET_GOAL = 0.5e-3  # seconds, issue 11


def best_median(times, scale=1e3, unit="ms", digits=1):
    """``best / median`` of ``times`` as text."""
    return (
        f"{scale * times.min():.{digits}f} / {scale * np.median(times):.{digits}f} {unit}"
    )


def add_figures(n, d, order, repeat):
    """Rows of the (fit + ledger) / fit table for one memory order.

    Fit, fingerprints and ``Ledger.add`` are timed in turn within each
    repetition, so that a change of machine load hits all three alike.
    """
    rng = np.random.default_rng(0)
    X = np.asarray(rng.standard_normal((n, d)), order=order)
    y = rng.standard_normal(n)
    weights = np.ones(n)
    Ledger(d).add(np.asarray(X[:10], order=order), y[:10])  # compile, untimed
    key = Ledger(d)._key
    steps = {
        "fit": lambda: BayesianLinearRegression().fit(X, y),
        "fingerprints": lambda: fingerprint.fingerprint_rows(X, y, key),
        "add": lambda: Ledger(d).add(X, y, weights),
    }
    times = {name: [] for name in steps}
    for _ in range(repeat):
        for name, step in steps.items():
            times[name].append(run_times(step, 1)[0])
    fit, hashing, add = (np.array(times[name]) for name in steps)
    median_fit = np.median(fit)
    return [
        [f"fit ({order}-ordered X)", best_median(fit), "1"],
        [
            "  fingerprints alone",
            best_median(hashing),
            f"{np.median(hashing) / median_fit:.3f}",
        ],
        [
            "  Ledger.add (fingerprints + table)",
            best_median(add),
            f"{np.median(add) / median_fit:.3f}",
        ],
        [
            "  (fit + Ledger.add) / fit",
            "",
            f"**{(median_fit + np.median(add)) / median_fit:.3f}** "
            f"(best {(fit.min() + add.min()) / fit.min():.3f})",
        ],
    ]


def forget_figures(n, d, k, n_requests):
    """Rows of the plan_forget + apply table: successive requests on one ledger.

    Each request forgets ``k`` rows not forgotten before, as a deletion
    service would; the first request on a fresh ``copy()`` is timed too (its
    table has just been copied, so it starts out of cache).
    """
    rng = np.random.default_rng(1)
    X = rng.standard_normal((n, d))
    y = rng.integers(0, 2, size=n).astype(np.float64)
    ledger = Ledger(d)
    ledger.add(X, y)
    order = rng.permutation(n)
    requests = [order[i * k : (i + 1) * k] for i in range(n_requests + 1)]
    weights = np.ones(k)
    warm = ledger.copy()
    warm.apply(warm.plan_forget(X[requests[-1]], y[requests[-1]], weights))  # compile
    plan_times, both_times = [], []
    for rows in requests[:-1]:
        X_forget, y_forget = X[rows], y[rows]
        start = time.perf_counter()
        plan = ledger.plan_forget(X_forget, y_forget, weights)
        planned = time.perf_counter()
        ledger.apply(plan)
        both_times.append(time.perf_counter() - start)
        plan_times.append(planned - start)
    plan_times, both_times = np.array(plan_times), np.array(both_times)
    fresh = run_times(
        lambda copy: copy.apply(copy.plan_forget(X[order[:k]], y[order[:k]], weights)),
        repeat=7,
        setup=warm.copy,
    )
    return [
        ["plan_forget", best_median(plan_times, digits=3), ""],
        [
            f"plan_forget + apply, {n_requests} successive requests",
            best_median(both_times, digits=3),
            f"**{np.median(both_times) / FORGET_GOAL:.2f}** "
            f"(best {both_times.min() / FORGET_GOAL:.2f})",
        ],
        [
            "plan_forget + apply, first on a fresh copy()",
            best_median(fresh, digits=3),
            f"{np.median(fresh) / FORGET_GOAL:.2f}",
        ],
    ]


def estimator_figures(n, d, k, n_requests):
    """What the ledger adds to ``partial_unfit`` itself: with and without, interleaved.

    Two estimators fitted on the same rows, one with ``ledger=True`` and one
    with ``ledger=False``, forget the same successive requests of ``k`` rows
    in turn, so that both see the same machine load.
    """
    rng = np.random.default_rng(2)
    X = rng.standard_normal((n, d))
    signal = X @ rng.standard_normal(d)
    rows = []
    for estimator, y in (
        (BayesianLinearRegression, signal + rng.standard_normal(n)),
        (BayesianLogisticRegression, (signal + rng.logistic(size=n) > 0).astype(int)),
    ):
        fitted = {ledger: estimator(ledger=ledger).fit(X, y) for ledger in (False, True)}
        times = {False: [], True: []}
        for i in range(n_requests):
            forget = slice(i * k, (i + 1) * k)
            for ledger, model in fitted.items():
                start = time.perf_counter()
                model.partial_unfit(X[forget], y[forget])
                times[ledger].append(time.perf_counter() - start)
        without, with_ = np.array(times[False]), np.array(times[True])
        added = np.median(with_) - np.median(without)
        rows.append(
            [
                f"{estimator.__name__}.partial_unfit, ledger=False / True",
                f"{best_median(without, digits=3)} / {best_median(with_, digits=3)}",
                f"+{added * 1e3:.3f} ms: **{added / FORGET_GOAL:.2f}**",
            ]
        )
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200_000)
    parser.add_argument("--d", type=int, default=100)
    parser.add_argument("--d-forget", type=int, default=50)
    parser.add_argument("--k", type=int, default=2_000)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--requests", type=int, default=40)
    args = parser.parse_args()
    print(f"# Ledger: add n={args.n}, d={args.d}; forget k={args.k} at d={args.d_forget}")
    print(environment())
    print(f"fingerprint threads: {fingerprint._n_threads(args.n * (args.d + 1))}")
    rows = add_figures(args.n, args.d, "C", args.repeat)
    rows += add_figures(args.n, args.d, "F", args.repeat)
    print(table(rows, ["operation", "time (best / median)", "/ fit (median)"]))
    print()
    rows = forget_figures(args.n, args.d_forget, args.k, n_requests=args.requests)
    print(table(rows, ["operation", "time (best / median)", "/ 0.5 ms (median)"]))
    print()
    rows = estimator_figures(args.n, args.d_forget, args.k, n_requests=args.requests)
    print(table(rows, ["operation", "time (best / median)", "added (median) / 0.5 ms"]))


if __name__ == "__main__":
    main()
