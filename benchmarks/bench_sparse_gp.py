"""SparseGPRegressor: partial_unfit vs refitting, and vs scikit-learn's exact GP.

n = 50,000 rows, d = 8 features, m = 200 inducing points, forget 1% (500 rows),
at fixed hyperparameters (the exact-forgetting contract). Every time in one
table is measured in the same run, with BLAS limited to one thread so that the
ratios do not depend on what else the machine is doing.

    python benchmarks/bench_sparse_gp.py
"""

import copy
import time
import warnings

import numpy as np
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.gaussian_process.kernels import RBF
from sklearn.gaussian_process.kernels import ConstantKernel as C
from threadpoolctl import threadpool_limits

from sklunlearn.exceptions import UnlearningWarning
from sklunlearn.gaussian_process import SparseGPRegressor


def median_seconds(function, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def make_data(n, d, random_state=0):
    rng = np.random.RandomState(random_state)
    X = rng.uniform(-2, 2, size=(n, d))
    frequencies = rng.uniform(0.5, 1.5, size=d)
    y = np.sin(X * frequencies).sum(axis=1) / np.sqrt(d) + 0.1 * rng.randn(n)
    return X, y


def forgetting_table(n=50_000, d=8, m=200, fraction=0.01):
    X, y = make_data(n, d)
    kernel = C(1.0) * RBF(np.full(d, 1.5))
    forget = np.zeros(n, dtype=bool)
    forget[np.random.RandomState(1).choice(n, size=int(fraction * n), replace=False)] = True

    start = time.perf_counter()
    est = SparseGPRegressor(kernel=kernel, inducing_points=m, random_state=0).fit(X, y)
    optimised_fit = time.perf_counter() - start
    fixed = dict(
        kernel=est.kernel_,
        inducing_points=est.inducing_points_,
        noise_variance=est.noise_variance_,
        optimizer=None,
    )

    def unfit():
        copy.deepcopy(est).partial_unfit(X[forget], y[forget])

    def refit():
        SparseGPRegressor(**fixed).fit(X[~forget], y[~forget])

    def deepcopy_only():
        copy.deepcopy(est)

    unfit_seconds = median_seconds(unfit, 9) - median_seconds(deepcopy_only, 9)
    refit_seconds = median_seconds(refit, 3)

    unlearned = copy.deepcopy(est).partial_unfit(X[forget], y[forget])
    retrained = SparseGPRegressor(**fixed).fit(X[~forget], y[~forget])
    X_test = make_data(2000, d, random_state=2)[0]
    mean_u, std_u = unlearned.predict(X_test, return_std=True)
    mean_r, std_r = retrained.predict(X_test, return_std=True)

    evaluation = est._objective(X, y, np.ones(n), est.inducing_points_, est.kernel_)
    theta = np.append(est.kernel_.theta, np.log(est.noise_variance_))
    gradient_seconds = median_seconds(lambda: evaluation(theta), 1)

    rows = [
        ("fit, hyperparameters optimised (L-BFGS-B)", optimised_fit),
        ("one bound + gradient evaluation", gradient_seconds),
        ("refit on remaining rows, fixed hyperparameters", refit_seconds),
        (f"partial_unfit of {forget.sum()} rows", unfit_seconds),
    ]
    print(
        f"SparseGPRegressor, n={n}, d={d}, m={m}, forget {forget.sum()} rows "
        f"({100 * fraction:g}%), 1 BLAS thread"
    )
    print(f"{'operation':<50} {'seconds':>10}")
    for name, seconds in rows:
        print(f"{name:<50} {seconds:>10.4f}")
    print(f"speed-up of partial_unfit over refit: {refit_seconds / unfit_seconds:.0f}x")
    print(
        f"R^2 of the full model on held-out rows: "
        f"{est.score(X_test, make_data(2000, d, random_state=2)[1]):.3f}"
    )
    print(
        f"max |mean difference| unlearned vs retrained: {np.abs(mean_u - mean_r).max():.2e}"
    )
    print(
        f"max |std difference|  unlearned vs retrained: {np.abs(std_u - std_r).max():.2e}"
    )
    print(
        f"KL(q_unlearned(u) || q_retrained(u)): "
        f"{unlearned.posterior_.kl_divergence(retrained.posterior_):.2e}"
    )
    print(
        "forget_report_.estimated_error (estimated relative round-off): "
        f"{unlearned.forget_report_.estimated_error:.1e}"
    )
    return refit_seconds / unfit_seconds


def peer_table(n=4000, d=8, m=200, fraction=0.01):
    """Where the exact GP is still affordable: scikit-learn's GPR vs ours."""
    X, y = make_data(n, d)
    kernel = C(1.0) * RBF(np.full(d, 1.5))
    k = int(fraction * n)
    est = SparseGPRegressor(
        kernel=kernel,
        inducing_points=m,
        noise_variance=0.01,
        optimizer=None,
        random_state=0,
    ).fit(X, y)
    rows = [
        (
            "sklearn GaussianProcessRegressor.fit (exact, fixed)",
            median_seconds(
                lambda: GaussianProcessRegressor(kernel, alpha=0.01, optimizer=None).fit(
                    X[k:], y[k:]
                ),
                3,
            ),
        ),
        (
            "SparseGPRegressor.fit (m=200, fixed)",
            median_seconds(
                lambda: SparseGPRegressor(
                    kernel=kernel,
                    inducing_points=est.inducing_points_,
                    noise_variance=0.01,
                    optimizer=None,
                ).fit(X[k:], y[k:]),
                3,
            ),
        ),
        (
            f"SparseGPRegressor.partial_unfit of {k} rows",
            median_seconds(lambda: copy.deepcopy(est).partial_unfit(X[:k], y[:k]), 9)
            - median_seconds(lambda: copy.deepcopy(est), 9),
        ),
    ]
    print(
        f"\nPeer comparison, n={n}, d={d} (the exact GP needs O(n^2) memory, "
        "so not at n=50,000)"
    )
    print(f"{'operation':<55} {'seconds':>10}")
    for name, seconds in rows:
        print(f"{name:<55} {seconds:>10.4f}")


if __name__ == "__main__":
    warnings.simplefilter("ignore", UnlearningWarning)
    with threadpool_limits(1):
        forgetting_table()
        peer_table()
