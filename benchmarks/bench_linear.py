"""Benchmark: BayesianLinearRegression.partial_unfit vs refitting (issue 2).

n=200,000 rows, d=100 features, forget 1% (k=2,000 rows). Measured side by
side in one run:

- ``partial_unfit`` on a fitted model;
- our own refit on the remaining rows, and scikit-learn's ``BayesianRidge``
  refit on the remaining rows (the peer);
- the bare cost of the work partial_unfit cannot avoid: ``X_F.T @ X_F`` plus
  one d x d eigendecomposition;
- peak memory allocated by ``partial_unfit`` (tracemalloc) against k*d + d^2;
- the import time of sklunlearn over scikit-learn + numba, and the first
  Numba-using call in a fresh process with a cold and with a warm cache;
- ``compensated=True`` (double-double statistics) against the float64 default:
  the cost of ``fit`` and ``partial_unfit`` side by side, and the accuracy of
  forgetting issue 11's typo rows (200 rows with noise 0.1 plus one row with
  y = 1e8, or a feature = 1e8) against a refit on the 200 rows.

Run: ``python benchmarks/bench_linear.py [--n 200000] [--d 100]``.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import tracemalloc
import warnings

import numpy as np
from _common import best_time, environment, fresh_copy, table
from sklearn.linear_model import BayesianRidge

from sklunlearn.linear_model import BayesianLinearRegression


def import_seconds(modules, repeat=7):
    code = (
        "import time; t = time.perf_counter(); "
        + "; ".join(f"import {m}" for m in modules)
        + "; print(time.perf_counter() - t)"
    )
    runs = [
        float(
            subprocess.run(
                [sys.executable, "-c", code], capture_output=True, text=True, check=True
            ).stdout
        )
        for _ in range(repeat)
    ]
    return float(np.median(runs))


FIRST_CALL = """
import time
import numpy as np
t = time.perf_counter()
from sklunlearn.linear_model import BayesianLinearRegression
from sklunlearn.posterior import GaussianPosterior
rng = np.random.RandomState(0)
X = rng.randn(500, 20); y = rng.randn(500)
t0 = time.perf_counter()
est = BayesianLinearRegression().fit(X, y).partial_unfit(X[:5], y[:5])
t1 = time.perf_counter()
# the rank-one Numba kernels (GaussianPosterior up/downdates)
est.posterior_.copy().rank_downdate(X[:1])
t2 = time.perf_counter()
print(t1 - t0, t2 - t1)
"""


def first_call_seconds(cache_dir):
    env = dict(os.environ, NUMBA_CACHE_DIR=cache_dir)
    out = subprocess.run(
        [sys.executable, "-c", FIRST_CALL],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    ).stdout.split()
    return float(out[0]), float(out[1])


def typo_accuracy(where, compensated, seed=0):
    """Relative errors of alpha_ and the predictive std after forgetting a typo row."""
    rng = np.random.RandomState(seed)
    X = rng.randn(200, 3)
    y = X @ [1.0, 2.0, 3.0] + 0.1 * rng.randn(200)
    X_typo, y_typo = np.vstack([X, rng.randn(1, 3)]), np.r_[y, 0.5]
    if where == "y":
        y_typo[-1] = 1e8
    else:
        X_typo[-1, 0] = 1e8
    est = BayesianLinearRegression(compensated=compensated).fit(X_typo, y_typo)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        est.partial_unfit(X_typo[-1:], y_typo[-1:])
    refit = BayesianLinearRegression().fit(X, y)
    std = est.predict(X, return_std=True)[1]
    ref_std = refit.predict(X, return_std=True)[1]
    return (
        abs(est.alpha_ / refit.alpha_ - 1),
        float(np.max(np.abs(std / ref_std - 1))),
        est.forget_report_.estimated_error,
        len(caught),
    )


def compensated_comparison(X, y, X_F, y_F):
    """Rows of the cost table: float64 against double-double statistics."""
    rows = []
    for compensated in (False, True):
        model = BayesianLinearRegression(compensated=compensated)
        fitted = model.fit(X, y)
        t_fit = best_time(lambda m=model: m.fit(X, y), repeat=2)
        t_unfit = best_time(
            lambda est: est.partial_unfit(X_F, y_F), repeat=5, setup=fresh_copy(fitted)
        )
        t_one = best_time(
            lambda est: est.partial_unfit(X_F[:1], y_F[:1]),
            repeat=9,
            setup=fresh_copy(fitted),
        )
        rows.append([compensated, t_fit, t_unfit, t_one])
    base = rows[0]
    return [
        [
            f"compensated={flag}",
            f"{t_fit:.2f} s ({t_fit / base[1]:.1f}x)",
            f"{1e3 * t_unfit:.1f} ms ({t_unfit / base[2]:.1f}x)",
            f"{1e3 * t_one:.2f} ms ({t_one / base[3]:.1f}x)",
        ]
        for flag, t_fit, t_unfit, t_one in rows
    ]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200_000)
    parser.add_argument("--d", type=int, default=100)
    parser.add_argument("--forget", type=float, default=0.01)
    args = parser.parse_args()
    n, d = args.n, args.d
    k = int(args.forget * n)

    rng = np.random.RandomState(0)
    X = rng.randn(n, d) @ rng.randn(d, d) * 0.3 + rng.randn(d)
    y = X @ rng.randn(d) + rng.randn(n)
    forget = rng.choice(n, size=k, replace=False)
    keep = np.setdiff1d(np.arange(n), forget)
    X_F, y_F = X[forget], y[forget]
    X_R, y_R = X[keep], y[keep]

    fitted = BayesianLinearRegression().fit(X, y)
    t_unfit = best_time(
        lambda est: est.partial_unfit(X_F, y_F), repeat=9, setup=fresh_copy(fitted)
    )
    t_refit = best_time(lambda: BayesianLinearRegression().fit(X_R, y_R), repeat=3)
    t_ridge = best_time(lambda: BayesianRidge().fit(X_R, y_R), repeat=3)
    gram = X_F.T @ X_F
    t_bare = best_time(lambda: X_F.T @ X_F, repeat=9) + best_time(
        lambda: np.linalg.eigh(gram), repeat=9
    )

    # Correctness in the same run: the forgotten model equals BayesianRidge on D_r.
    unlearned = fresh_copy(fitted)().partial_unfit(X_F, y_F)
    peer = BayesianRidge().fit(X_R, y_R)
    coef_error = np.max(np.abs(unlearned.coef_ - peer.coef_)) / np.max(np.abs(peer.coef_))

    estimator = fresh_copy(fitted)()
    tracemalloc.start()
    estimator.partial_unfit(X_F, y_F)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    floats = k * d + d * d

    base_import = import_seconds(["sklearn", "numba"])
    full_import = import_seconds(
        [
            "sklearn",
            "numba",
            "sklunlearn",
            "sklunlearn.linear_model",
            "sklunlearn.posterior",
        ]
    )
    with tempfile.TemporaryDirectory() as cache:
        cold = first_call_seconds(cache)
        warm = first_call_seconds(cache)

    print(f"# BayesianLinearRegression: n={n}, d={d}, forget {k} rows ({args.forget:.0%})")
    print(environment())
    print()
    rows = [
        ["partial_unfit", f"{1e3 * t_unfit:.2f} ms", "1x"],
        [
            "bare cost: X_F.T @ X_F + eigh(d x d)",
            f"{1e3 * t_bare:.2f} ms",
            f"partial_unfit / bare = {t_unfit / t_bare:.2f}",
        ],
        [
            "refit BayesianLinearRegression on D_r",
            f"{1e3 * t_refit:.1f} ms",
            f"{t_refit / t_unfit:.0f}x slower",
        ],
        [
            "refit sklearn BayesianRidge on D_r",
            f"{1e3 * t_ridge:.1f} ms",
            f"{t_ridge / t_unfit:.0f}x slower",
        ],
    ]
    print(table(rows, ["operation", "time (best of runs)", "ratio"]))
    print()
    print(
        f"max relative coef difference, forgotten vs BayesianRidge on D_r: {coef_error:.1e}"
    )
    print(
        f"peak memory allocated by partial_unfit: {peak / 2**20:.2f} MiB = "
        f"{peak / (8 * floats):.2f} x (k*d + d^2) float64"
    )
    print(
        f"import sklearn+numba: {base_import:.3f} s; + sklunlearn: {full_import:.3f} s "
        f"(adds {full_import - base_import:.3f} s)"
    )
    print(
        f"first fit+partial_unfit in a fresh process: cold cache {cold[0]:.3f} s, warm "
        f"{warm[0]:.3f} s; first Numba rank-one downdate: cold {cold[1]:.3f} s "
        f"(compilation), warm {warm[1]:.3f} s (loaded from cache)"
    )
    print()
    print("compensated=True (double-double statistics) against float64:")
    print()
    headers = [
        "statistics",
        "fit (n rows)",
        f"partial_unfit ({k} rows)",
        "partial_unfit (1 row)",
    ]
    print(table(compensated_comparison(X, y, X_F, y_F), headers))
    print()
    rows = []
    for where in ("y", "x"):
        for compensated in (False, True):
            alpha, std, estimate, warned = typo_accuracy(where, compensated)
            rows.append(
                [
                    f"{where} = 1e8",
                    compensated,
                    f"{alpha:.1e}",
                    f"{std:.1e}",
                    f"{estimate:.1e}",
                    warned,
                ]
            )
    headers = [
        "typo row",
        "compensated",
        "alpha_ rel. error",
        "predictive std rel. error",
        "estimated_error",
        "warnings",
    ]
    print(table(rows, headers))


if __name__ == "__main__":
    main()
