"""BayesianMLPRegressor's L-BFGS MAP fit against MLPRegressor's, per iteration.

Run: ``python benchmarks/bench_mlp_fit.py`` (a few minutes; ``--repeat N``: best
of N fits each, default 3; ``--n N``: rows, default 20000; ``--max-iter N``,
default 200). Prints a markdown table for benchmarks/README.md.

The three fits (``MLPRegressor(solver='lbfgs', activation='tanh')``,
``BayesianMLPRegressor(noise_variance=0.01)`` and the learned-noise default) run
on the same rows with one BLAS thread, interleaved so that a change of the
machine's load falls on all of them; each time is the best of the repeats, as
CPU time (``time.process_time``) and wall time. Per iteration divides a fit's
time by its ``n_iter_`` (the learned-noise default sums its MAP fits' iterations
over the evidence rounds, and its time includes those rounds' curvature).
"""

import argparse
import time
import warnings

import numpy as np
from _common import environment, table
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPRegressor
from threadpoolctl import threadpool_limits

from sklunlearn.neural_network import BayesianMLPRegressor

HIDDEN = (50,)


def data(n, random_state=0):
    """Eight standard normal features; ``sin(x_0) + x_1 x_2 / 2`` with noise 0.1."""
    rng = np.random.RandomState(random_state)
    X = rng.randn(n, 8)
    y = np.sin(X[:, 0]) + 0.5 * X[:, 1] * X[:, 2] + 0.1 * rng.randn(n)
    return X, y


def estimators(max_iter):
    """The fits compared, by name (the reference first)."""
    common = {"hidden_layer_sizes": HIDDEN, "max_iter": max_iter, "random_state": 0}
    return {
        "MLPRegressor(solver='lbfgs', activation='tanh')": lambda: MLPRegressor(
            solver="lbfgs", activation="tanh", **common
        ),
        "BayesianMLPRegressor(noise_variance=0.01)": lambda: BayesianMLPRegressor(
            noise_variance=0.01, **common
        ),
        "BayesianMLPRegressor() (learned noise)": lambda: BayesianMLPRegressor(**common),
    }


def timed_fit(make, X, y):
    """``(CPU seconds, wall seconds, n_iter_)`` of one fit."""
    estimator = make()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a budget of max_iter ends every fit here
        cpu, wall = time.process_time(), time.perf_counter()
        estimator.fit(X, y)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return cpu, wall, int(estimator.n_iter_)


def measure(n, max_iter, repeat):
    """Best-of-``repeat`` times of each fit, the fits interleaved within a repeat."""
    X, y = data(n)
    makers = estimators(max_iter)
    for make in makers.values():  # compiles the Numba kernels outside the timings
        timed_fit(make, X[:200], y[:200])
    results = {name: [] for name in makers}
    for _ in range(repeat):
        for name, make in makers.items():
            results[name].append(timed_fit(make, X, y))
    rows, reference = [], None
    for name, runs in results.items():
        cpu = min(run[0] for run in runs)
        wall = min(run[1] for run in runs)
        n_iter = runs[0][2]
        per_iteration = (cpu / n_iter, wall / n_iter)
        if reference is None:
            reference = (cpu, wall, *per_iteration)
        ratios = [
            mine / theirs
            for mine, theirs in zip((cpu, wall, *per_iteration), reference, strict=True)
        ]
        rows.append(
            [
                name,
                n_iter,
                f"{1e3 * per_iteration[0]:.1f}",
                f"{1e3 * per_iteration[1]:.1f}",
                f"{ratios[2]:.2f} / {ratios[3]:.2f}",
                f"{cpu:.2f}",
                f"{wall:.2f}",
                f"{ratios[0]:.2f} / {ratios[1]:.2f}",
            ]
        )
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20000)
    parser.add_argument("--max-iter", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    arguments = parser.parse_args()
    warnings.simplefilter("ignore", ConvergenceWarning)
    print(environment())
    print(
        f"\n### L-BFGS fit, tanh, hidden {HIDDEN}, n={arguments.n}, 8 features, "
        f"max_iter={arguments.max_iter}, one BLAS thread, best of {arguments.repeat}\n"
    )
    with threadpool_limits(limits=1, user_api="blas"):
        rows = measure(arguments.n, arguments.max_iter, arguments.repeat)
    print(
        table(
            rows,
            [
                "estimator",
                "n_iter_",
                "CPU ms / iteration",
                "wall ms / iteration",
                "ratio to MLPRegressor (CPU / wall)",
                "CPU s / fit",
                "wall s / fit",
                "fit ratio (CPU / wall)",
            ],
        )
    )


if __name__ == "__main__":
    main()
