"""BayesianLogisticRegression: partial_unfit against refitting, measured in one run.

1. n=200,000, d=50, forget 1% (2,000 rows): partial_unfit with 'laplace',
   'eubo' (lambda=0, quadrature) and 'rkl' against refitting scikit-learn's
   LogisticRegression and our own estimator on the remaining rows.
2. Time of partial_unfit('laplace') against n at a fixed k=2,000 forgotten rows.
3. The fused row-block Numba kernel against NumPy's ``X.T @ (w[:, None] * X)``.
4. Accuracy: KL(unlearned || retrained) / KL(full || retrained) for each method
   on breast_cancer and banknote (standardised), forgetting 1%, 10%, 30% of the
   rows at random (median and worst over draws) and clustered (the rows
   furthest along the first principal axis).
5. The floor of the 150x goal: the bare flop cost of the forget (the rows'
   Hessian and one factorisation) plus scikit-learn's validation of the call,
   timed interleaved with the refit it is compared with.

Run: ``python benchmarks/bench_logistic.py [speed] [kl] [floor]`` from the
repository root.
"""

import copy
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler
from sklearn.utils.validation import check_is_fitted, validate_data

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import best_time, environment, fresh_copy, table  # noqa: E402
from scipy.linalg import cho_factor  # noqa: E402

from sklunlearn._demo import forget_masks  # noqa: E402
from sklunlearn._numba import logistic_terms  # noqa: E402
from sklunlearn.datasets import load_banknote  # noqa: E402
from sklunlearn.exceptions import UnlearningWarning  # noqa: E402
from sklunlearn.linear_model import BayesianLogisticRegression  # noqa: E402

# Successive deletion requests timed per method in the speed table.
REQUESTS = 30


def make_data(n, d, random_state=0):
    rng = np.random.RandomState(random_state)
    X = rng.randn(n, d)
    coef = rng.randn(d) / np.sqrt(d)
    y = (X @ coef + 0.5 + rng.logistic(size=n) > 0).astype(int)
    return X, y


def speed_table(n=200_000, d=50, k=2_000):
    X, y = make_data(n, d)
    forget = np.zeros(n, dtype=bool)
    forget[np.random.RandomState(1).choice(n, k, replace=False)] = True
    X_f, y_f, X_r, y_r = X[forget], y[forget], X[~forget], y[~forget]
    laplace = BayesianLogisticRegression(random_state=0).fit(X, y)
    # The two sides of the 150x goal are timed interleaved, so that both meet the
    # same load on a shared machine: each round is one refit and 20 first calls.
    sklearn_refit, laplace_first = interleaved_best(
        [
            (lambda: _timed(LogisticRegression(C=1.0, max_iter=1000).fit, X_r, y_r), 1),
            (lambda: _first_call(laplace, X_f, y_f), 20),
        ],
        rounds=5,
    )
    own_refit = best_time(lambda: BayesianLogisticRegression().fit(X_r, y_r), repeat=2)
    vi_refit = best_time(
        lambda: BayesianLogisticRegression(inference="vi").fit(X_r, y_r), repeat=1
    )
    rows = [
        ["refit sklearn LogisticRegression (lbfgs)", f"{sklearn_refit:.3f} s", "1x"],
        [
            "refit BayesianLogisticRegression (laplace)",
            f"{own_refit:.3f} s",
            f"{sklearn_refit / own_refit:.1f}x",
        ],
        [
            "refit BayesianLogisticRegression (vi)",
            f"{vi_refit:.3f} s",
            f"{sklearn_refit / vi_refit:.1f}x",
        ],
    ]
    rows = [row + ["-"] * 3 for row in rows]
    for inference, method in [
        ("laplace", "laplace"),
        ("vi", "laplace"),
        ("laplace", "eubo"),
        ("vi", "eubo"),
        ("laplace", "rkl"),
    ]:
        if (inference, method) == ("laplace", "laplace"):
            est = laplace
        else:
            est = BayesianLogisticRegression(
                inference=inference, unlearning=method, random_state=0
            ).fit(X, y)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # A millisecond call needs many repeats to get past the noise of a
            # shared machine (timeit's practice): best of 100 first calls on
            # fresh copies (interleaved with the refit above for the first
            # row), and best and median of successive requests.
            first = (
                laplace_first
                if est is laplace
                else best_time(
                    lambda e: e.partial_unfit(X_f, y_f),
                    repeat=100 if method == "laplace" else 10,
                    setup=fresh_copy(est),
                )
            )
            best, median = service_times(est, X, y, forget, k)
            unlearned = fresh_copy(est)()
            unlearned.partial_unfit(X_f, y_f)
        retrained = BayesianLogisticRegression(inference=inference).fit(X_r, y_r)
        ratio = unlearned.posterior_.kl_divergence(
            retrained.posterior_
        ) / est.posterior_.kl_divergence(retrained.posterior_)
        rows.append(
            [
                f"partial_unfit inference={inference!r} unlearning={method!r}",
                f"{1e3 * first:.2f} ms",
                f"{sklearn_refit / first:.0f}x",
                f"{1e3 * best:.2f} ms ({1e3 * median:.2f})",
                f"{sklearn_refit / best:.0f}x ({sklearn_refit / median:.0f}x)",
                f"{ratio:.3g}",
            ]
        )
    print(f"\nn={n}, d={d}, forget k={k} random rows (1%)\n")
    print(
        table(
            rows,
            [
                "operation",
                "first call on a copy",
                "speed-up",
                f"{REQUESTS - 1} successive requests: best (median)",
                "speed-up",
                "KL(unlearned||retrained) / KL(full||retrained)",
            ],
        )
    )


def _timed(function, *args):
    """Wall time of ``function(*args)``."""
    start = time.perf_counter()
    function(*args)
    return time.perf_counter() - start


def _first_call(est, X_f, y_f):
    """Time of ``partial_unfit`` on a fresh copy of ``est`` (the copy not timed)."""
    copied = copy.deepcopy(est)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _timed(copied.partial_unfit, X_f, y_f)


def interleaved_best(calls, rounds):
    """Best of each ``(timing, repeats)`` over ``rounds`` interleaved rounds.

    ``timing()`` returns the time of one call.
    """
    best = [np.inf] * len(calls)
    for _ in range(rounds):
        for i, (timing, repeats) in enumerate(calls):
            best[i] = min([best[i], *(timing() for _ in range(repeats))])
    return best


def service_times(est, X, y, forget, k, requests=REQUESTS):
    """Best and median time of successive deletion requests of ``k`` rows each.

    One copy of ``est`` forgets ``requests`` disjoint batches of ``k`` rows, as
    a deletion service would. The first request (the benchmark's ``forget``
    rows) is left out of the statistics: on a fresh copy it also validates the
    estimator's parameters, which later requests skip while the parameters
    are unchanged (the first-call column times it).
    """
    rng = np.random.RandomState(2)
    others = rng.permutation(np.flatnonzero(~forget))[: k * (requests - 1)]
    batches = [np.flatnonzero(forget)] + np.split(others, requests - 1)
    est = fresh_copy(est)()
    times = []
    for rows in batches:
        X_f, y_f = X[rows], y[rows]
        start = time.perf_counter()
        est.partial_unfit(X_f, y_f)
        times.append(time.perf_counter() - start)
    return min(times[1:]), float(np.median(times[1:]))


def scaling_table(k=2_000, d=50, sizes=(20_000, 50_000, 100_000, 200_000)):
    rows = []
    for n in sizes:
        X, y = make_data(n, d)
        est = BayesianLogisticRegression().fit(X, y)
        X_f, y_f, X_r, y_r = X[:k], y[:k], X[k:], y[k:]
        seconds = best_time(
            lambda e, X_f=X_f, y_f=y_f: e.partial_unfit(X_f, y_f),
            repeat=5,
            setup=fresh_copy(est),
        )
        refit = best_time(
            lambda X_r=X_r, y_r=y_r: BayesianLogisticRegression().fit(X_r, y_r), repeat=1
        )
        rows.append(
            [
                n,
                f"{1e3 * seconds:.1f} ms",
                f"{1e3 * refit:.0f} ms",
                f"{refit / seconds:.0f}x",
            ]
        )
    print(f"\npartial_unfit('laplace') of k={k} rows against n (d={d})\n")
    print(table(rows, ["n", "partial_unfit", "own refit", "ratio"]))


def kernel_table(n=200_000, d=51):
    X, y = make_data(n, d)
    y = y.astype(float)
    w = np.ones(n)
    theta = np.random.RandomState(2).randn(d) / np.sqrt(d)
    logistic_terms(X[:10], y[:10], w[:10], theta)  # compile

    def numpy_terms():
        p = 1.0 / (1.0 + np.exp(-(X @ theta)))
        return X.T @ (w * (y - p)), X.T @ ((w * p * (1 - p))[:, None] * X)

    fused = best_time(lambda: logistic_terms(X, y, w, theta), repeat=5)
    plain = best_time(numpy_terms, repeat=5)
    gram_only = best_time(lambda: X.T @ (w[:, None] * X), repeat=5)
    rows = [
        ["fused Numba kernel (value, gradient, Hessian)", f"{1e3 * fused:.1f} ms", "1x"],
        [
            "NumPy gradient + X.T @ (s[:, None] * X)",
            f"{1e3 * plain:.1f} ms",
            f"{plain / fused:.2f}x",
        ],
        [
            "NumPy X.T @ (w[:, None] * X) alone",
            f"{1e3 * gram_only:.1f} ms",
            f"{gram_only / fused:.2f}x",
        ],
    ]
    print(f"\nLogistic gradient and Hessian, n={n}, d={d} (kernel: no n x d temporary)\n")
    print(table(rows, ["computation", "time", "time / fused"]))


KL_METHODS = [
    dict(inference="laplace", unlearning="laplace"),
    dict(inference="vi", unlearning="laplace"),
    dict(inference="vi", unlearning="eubo"),
    dict(inference="vi", unlearning="eubo", unlearning_lambda=1e-9),
    dict(inference="laplace", unlearning="rkl"),
]


def _kl_ratio(full, params, X, y, mask):
    unlearned = copy.deepcopy(full)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UnlearningWarning)
        unlearned.partial_unfit(X[mask], y[mask])
    retrained = BayesianLogisticRegression(**params).fit(X[~mask], y[~mask])
    nothing = full.posterior_.kl_divergence(retrained.posterior_)
    return unlearned.posterior_.kl_divergence(retrained.posterior_) / nothing, bool(caught)


def floor_table(n=200_000, d=50, k=2_000):
    """What no implementation of the forget can go below, against the refit.

    The bare cost is the forgotten rows' Hessian ``X_f' diag(w) X_f`` (with the
    intercept column) and one Cholesky factorisation of the ``(d + 1)``-square
    precision; the validation is what scikit-learn's own estimators run on such a
    call (``check_is_fitted``, parameter validation, ``validate_data`` of the rows
    and labels). Neither counts the forget's own work, the ledger or the step.
    """
    X, y = make_data(n, d)
    forget = np.zeros(n, dtype=bool)
    forget[np.random.RandomState(1).choice(n, k, replace=False)] = True
    X_f, y_f, X_r, y_r = X[forget], y[forget], X[~forget], y[~forget]
    est = BayesianLogisticRegression(random_state=0).fit(X, y)
    design = np.hstack([X_f, np.ones((k, 1))])
    precision = est.posterior_.precision

    def bare():
        start = time.perf_counter()
        w = 0.25 * np.ones(k)
        hessian = (design * w[:, None]).T @ design
        cho_factor(precision - hessian)
        return time.perf_counter() - start

    def validation():
        start = time.perf_counter()
        check_is_fitted(est)
        est._validate_params()
        validate_data(est, X_f, y_f, reset=False)
        return time.perf_counter() - start

    refit, bare_s, validation_s, forget_s = interleaved_best(
        [
            (lambda: _timed(LogisticRegression(C=1.0, max_iter=1000).fit, X_r, y_r), 1),
            (bare, 20),
            (validation, 20),
            (lambda: _first_call(est, X_f, y_f), 20),
        ],
        rounds=5,
    )
    floor = bare_s + validation_s
    rows = [
        ["refit sklearn LogisticRegression (lbfgs)", f"{refit:.3f} s", "1x"],
        ["bare cost (Hessian of the rows + one Cholesky)", f"{1e3 * bare_s:.3f} ms", "-"],
        ["scikit-learn's validation of the call", f"{1e3 * validation_s:.3f} ms", "-"],
        [
            "floor: bare + validation",
            f"{1e3 * floor:.3f} ms",
            f"{refit / floor:.0f}x",
        ],
        [
            "partial_unfit('laplace'), first call on a copy",
            f"{1e3 * forget_s:.3f} ms",
            f"{refit / forget_s:.0f}x",
        ],
        ["150x the refit would need", f"{1e3 * refit / 150:.3f} ms", "150x"],
    ]
    print(f"\nThe floor of the 150x goal: n={n}, d={d}, k={k} (best of 5 rounds)\n")
    print(table(rows, ["part", "time", "refit / time"]))


def kl_table(n_draws=5):
    datasets = {"breast_cancer": load_breast_cancer, "banknote": load_banknote}
    rows = []
    for name, loader in datasets.items():
        X, y = loader(return_X_y=True)
        X = StandardScaler().fit_transform(X)
        for method in KL_METHODS:
            params = dict(method, random_state=0)
            full = BayesianLogisticRegression(**params).fit(X, y)
            label = ", ".join(f"{k}={v!r}" for k, v in method.items())
            for fraction in (0.01, 0.1, 0.3):
                pct = f"{100 * fraction:.0f}%"
                key = f"random {pct}"
                masks = [forget_masks(X, fraction, s)[key] for s in range(n_draws)]
                random = [_kl_ratio(full, params, X, y, mask) for mask in masks]
                clustered = _kl_ratio(
                    full, params, X, y, forget_masks(X, fraction, 0)[f"clustered {pct}"]
                )
                ratios = np.array([r for r, _ in random])
                warned = sum(w for _, w in random)
                rows.append(
                    [
                        name,
                        label,
                        pct,
                        f"{np.median(ratios):.3g}",
                        f"{ratios.max():.3g}",
                        f"{warned}/{n_draws}",
                        f"{clustered[0]:.3g}",
                        "yes" if clustered[1] else "",
                    ]
                )
    print(f"\nKL(unlearned || retrained) / KL(full || retrained), {n_draws} random draws\n")
    print(
        table(
            rows,
            [
                "data",
                "method",
                "forget",
                "random median",
                "random worst",
                "random warned",
                "clustered",
                "clustered warned",
            ],
        )
    )


if __name__ == "__main__":
    sections = set(sys.argv[1:]) or {"speed", "kl", "floor"}
    print(environment())
    if "speed" in sections:
        kernel_table()
        speed_table()
        scaling_table()
    if "kl" in sections:
        kl_table()
    if "floor" in sections:
        floor_table()
