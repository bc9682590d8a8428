"""SparseGPRegressor and SparseGPClassifier against scikit-learn's exact GPs on small data.

Issue 16: on diabetes (442 rows) ``SparseGPRegressor.fit`` was slower than
scikit-learn's exact ``GaussianProcessRegressor``. Both fit their kernel by
L-BFGS-B from the same start (isotropic and ARD RBF times a constant, plus
noise: a ``WhiteKernel`` for scikit-learn, ``noise_variance`` for ours),
``normalize_y=True``; the classifiers on standardised banknote (1,372 rows,
``GaussianProcessClassifier`` against ``SparseGPClassifier`` with its kernel
learned). Each pair is timed interleaved, best of 5, with the BLAS threads the
process has (the default), and again with BLAS limited to one thread
(``threadpoolctl``), so that the table shows what a user gets either way.

    python benchmarks/bench_sparse_gp_small.py
"""

import sys
import time
import warnings
from contextlib import nullcontext
from pathlib import Path

import numpy as np
from sklearn.datasets import load_diabetes
from sklearn.gaussian_process import GaussianProcessClassifier, GaussianProcessRegressor
from sklearn.gaussian_process.kernels import RBF, WhiteKernel
from sklearn.gaussian_process.kernels import ConstantKernel as C
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import environment, table  # noqa: E402

from sklunlearn.datasets import load_banknote  # noqa: E402
from sklunlearn.gaussian_process import SparseGPClassifier, SparseGPRegressor  # noqa: E402


def cases():
    X, y = load_diabetes(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    Xb, yb = load_banknote(return_X_y=True)
    Xb = StandardScaler().fit_transform(Xb)
    for name, scales in (("isotropic", 1.0), ("ARD", np.ones(X.shape[1]))):
        yield (
            f"diabetes, {name}",
            X,
            y,
            lambda s=scales: GaussianProcessRegressor(
                C() * RBF(s) + WhiteKernel(), normalize_y=True
            ),
            lambda s=scales: SparseGPRegressor(
                kernel=C() * RBF(s), normalize_y=True, random_state=0
            ),
            lambda est: est.log_marginal_likelihood_value_,
        )
    yield (
        "banknote, classifier",
        Xb,
        yb,
        lambda: GaussianProcessClassifier(C() * RBF(1.0), random_state=0),
        lambda: SparseGPClassifier(
            kernel=C() * RBF(1.0), optimizer="fmin_l_bfgs_b", random_state=0
        ),
        lambda est: est.score(Xb, yb),
    )


def timed_fit(make, X, y):
    """``(seconds, fitted estimator)`` of one fit of ``make()``."""
    start = time.perf_counter()
    est = make().fit(X, y)
    return time.perf_counter() - start, est


def main(rounds=5):
    print(environment())
    rows = []
    for name, X, y, make_sklearn, make_ours, quality in cases():
        for threads in ("default", 1):
            limit = threadpool_limits(1, "blas") if threads == 1 else nullcontext()
            sk_times, our_times = [], []
            with limit, warnings.catch_warnings():
                warnings.simplefilter("ignore")
                for _ in range(rounds):  # interleaved, so both meet the same load
                    t, sk = timed_fit(make_sklearn, X, y)
                    sk_times.append(t)
                    t, ours = timed_fit(make_ours, X, y)
                    our_times.append(t)
            sk_t, our_t = min(sk_times), min(our_times)
            rows.append(
                (
                    name,
                    threads,
                    f"{sk_t:.3f}",
                    f"{our_t:.3f}",
                    f"{sk_t / our_t:.2f}x",
                    f"{quality(sk):.4g} / {quality(ours):.4g}",
                )
            )
    header = (
        "data, kernel",
        "BLAS threads",
        "scikit-learn fit (s)",
        "sklunlearn fit (s)",
        "scikit-learn / ours",
        "evidence or accuracy (sklearn / ours)",
    )
    print(table(rows, header))


if __name__ == "__main__":
    main()
