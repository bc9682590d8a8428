"""BayesianMLPRegressor: forgetting against retraining, speed, and the 1-D figure.

Run: ``python benchmarks/bench_mlp.py`` (a few minutes; ``--speed``: only the
speed tables). Prints markdown tables
for benchmarks/README.md ("Bayesian network regressor") and saves
benchmarks/mlp_interval.png.

References: (a) the local retrain, on the remaining rows started from the
full-data weights, to convergence, with the same posterior approximation (so
a KL divergence between posteriors is meaningful); (b) retraining from scratch
over five seeds (the spread of predictive errors a new fit would have).
"""

import copy
import time
import warnings
from pathlib import Path

import numpy as np
from _common import best_time, environment, table
from sklearn.datasets import load_diabetes
from sklearn.exceptions import ConvergenceWarning
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from sklunlearn.exceptions import UnlearningWarning
from sklunlearn.metrics import predictive_kl
from sklunlearn.neural_network import BayesianMLPRegressor

HERE = Path(__file__).parent
TIGHT = {"max_iter": 3000, "tol": 1e-8}  # fits at the mode: the Laplace step assumes it
# Warnings every forget of a learned-noise fit gives once: not a sign of failure.
# The hidden layers' warning of 'last_layer' is not routine: it says the result
# may be no closer to a retrain, which moves the hidden layers too.
ROUTINE = ("noise_variance_ was learned",)


# ---------------------------------------------------------------- data
def diabetes(random_state=0):
    """Standardised diabetes, split 80/20 into training and held-out rows."""
    X, y = load_diabetes(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    y = (y - y.mean()) / y.std()
    order = np.random.RandomState(random_state).permutation(X.shape[0])
    train, test = order[: int(0.8 * X.shape[0])], order[int(0.8 * X.shape[0]) :]
    return X[train], y[train], X[test], y[test]


def one_dimensional(n=300, random_state=0):
    """``sin(2x) + x / 2`` with noise 0.1 on [-3, 3], and a held-out grid."""
    rng = np.random.RandomState(random_state)
    X = rng.uniform(-3, 3, (n, 1))
    y = np.sin(2 * X[:, 0]) + 0.5 * X[:, 0] + 0.1 * rng.randn(n)
    X_test = np.linspace(-3, 3, 200)[:, None]
    y_test = np.sin(2 * X_test[:, 0]) + 0.5 * X_test[:, 0] + 0.1 * rng.randn(200)
    return X, y, X_test, y_test


def forget_set(X, kind, fraction, seed):
    """Indices to forget: ``'random'``, or ``'clustered'`` (furthest along the first
    principal axis; for one feature, a contiguous interval of x)."""
    if kind == "clustered" and X.shape[1] == 1:
        return np.flatnonzero((X[:, 0] > 0.5) & (X[:, 0] < 1.5))
    n = X.shape[0]
    k = max(1, round(fraction * n))
    if kind == "random":
        return np.sort(np.random.RandomState(seed).choice(n, k, replace=False))
    centred = X - X.mean(axis=0)
    axis = np.linalg.svd(centred, full_matrices=False)[2][0]
    return np.sort(np.argsort(centred @ axis)[-k:])


# ---------------------------------------------------------------- experiments
def forget_with(est, method, X_f, y_f):
    """``(unlearned copy or None, seconds, warning texts)``; None when refused."""
    unlearned = copy.deepcopy(est).set_params(unlearning=method)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UnlearningWarning)
        start = time.perf_counter()
        try:
            unlearned.partial_unfit(X_f, y_f)
        except ValueError as exc:
            return None, time.perf_counter() - start, (str(exc),)
        seconds = time.perf_counter() - start
    texts = tuple(
        str(w.message)
        for w in caught
        if issubclass(w.category, UnlearningWarning)
        and not any(str(w.message).startswith(r) for r in ROUTINE)
    )
    return unlearned, seconds, texts


def rmse(est, X, y):
    return float(np.sqrt(np.mean((est.predict(X) - y) ** 2)))


def compare(data, hidden, curvature, methods, kind, fraction, seed):
    """One row per method: KL ratio, predictive KL, held-out RMSE, time, warnings."""
    X, y, X_test, y_test = data
    est = BayesianMLPRegressor(
        hidden_layer_sizes=hidden, curvature=curvature, random_state=seed, **TIGHT
    ).fit(X, y)
    forget = forget_set(X, kind, fraction, seed)
    keep = np.setdiff1d(np.arange(X.shape[0]), forget)
    start = time.perf_counter()
    local = est._local_retrain(X[keep], y[keep], **TIGHT)
    local_seconds = time.perf_counter() - start
    nothing = est.posterior_.kl_divergence(local.posterior_)
    rows = []
    for method in methods:
        unlearned, seconds, texts = forget_with(est, method, X[forget], y[forget])
        if unlearned is None:
            rows.append((method, np.nan, np.nan, np.nan, seconds, local_seconds, texts))
            continue
        rows.append(
            (
                unlearned.forget_report_.method,
                unlearned.posterior_.kl_divergence(local.posterior_) / nothing,
                predictive_kl(unlearned, local, X[forget]),
                rmse(unlearned, X_test, y_test),
                seconds,
                local_seconds,
                texts,
            )
        )
    return rows, predictive_kl(est, local, X[forget])


ALL_METHODS = (("ggn", ("laplace", "eubo", "rkl")), ("last_layer", ("laplace",)))


def experiment_table(name, data, hidden, seeds, sets, combos=ALL_METHODS):
    """Markdown rows: the median over seeds of each (set, curvature, method)."""
    lines = []
    for kind, fraction in sets:
        for curvature, methods in combos:
            runs = [
                compare(data, hidden, curvature, methods, kind, fraction, seed)
                for seed in (seeds if kind == "random" else seeds[:1])
            ]
            for i in range(len(methods)):
                cells = [run[0][i] for run in runs]
                ratios = np.array([c[1] for c in cells])
                refused = int(np.sum(np.isnan(ratios)))
                warned = sum(bool(c[6]) for c in cells)
                worse = np.nan_to_num(ratios, nan=0.0) > 1.0
                unwarned_worse = int(np.sum(worse & ~np.array([bool(c[6]) for c in cells])))
                label = f"{kind} {fraction:.0%}" if kind == "random" else "clustered 10%"
                if kind == "clustered" and data[0].shape[1] == 1:
                    label = "interval [0.5, 1.5]"
                lines.append(
                    [
                        name,
                        label,
                        curvature,
                        cells[0][0],
                        _fmt(np.nanmedian(ratios) if refused < len(cells) else np.nan),
                        _fmt(np.nanmedian([c[2] for c in cells])),
                        _fmt(np.nanmedian([run[1] for run in runs])),
                        _fmt(np.nanmedian([c[3] for c in cells])),
                        f"{1e3 * np.median([c[4] for c in cells]):.1f} ms",
                        f"{np.median([c[5] for c in cells]):.2f} s",
                        f"{warned}/{len(cells)}"
                        + (f" ({refused} refused)" if refused else ""),
                        ("**worse than nothing**" if np.any(worse) else "")
                        + (f", {unwarned_worse} unwarned" if unwarned_worse else ""),
                    ]
                )
            print(f"  {name} {kind} {fraction:.0%} {curvature} done", flush=True)
    return lines


def _fmt(value):
    return "refused" if not np.isfinite(value) else f"{value:.3g}"


def seed_spread(data, hidden, fraction=0.1):
    """Unlearned (ggn, 'laplace') RMSE on the forgotten and held-out rows against the
    range of five scratch retrains."""
    X, y, X_test, y_test = data
    est = BayesianMLPRegressor(hidden_layer_sizes=hidden, random_state=0, **TIGHT).fit(X, y)
    forget = forget_set(X, "random", fraction, 0)
    keep = np.setdiff1d(np.arange(X.shape[0]), forget)
    unlearned, _, _ = forget_with(est, "laplace", X[forget], y[forget])
    scratch = [
        BayesianMLPRegressor(hidden_layer_sizes=hidden, random_state=s, **TIGHT).fit(
            X[keep], y[keep]
        )
        for s in range(1, 6)
    ]
    rows = []
    for label, X_eval, y_eval in (
        ("forgotten", X[forget], y[forget]),
        ("held-out", X_test, y_test),
    ):
        spread = [rmse(s, X_eval, y_eval) for s in scratch]
        value = rmse(unlearned, X_eval, y_eval)
        inside = min(spread) <= value <= max(spread)
        rows.append(
            [
                label,
                f"{rmse(est, X_eval, y_eval):.3f}",
                f"{value:.3f}",
                f"{min(spread):.3f} - {max(spread):.3f}",
                "yes" if inside else "no",
            ]
        )
    return rows


# ---------------------------------------------------------------- speed
def speed():
    """partial_unfit vs local and scratch retrains at n = 20,000 (one interleaved run).

    Two noise settings side by side: fixed at the true variance 0.01 (a scratch
    retrain is one MAP fit with MLPRegressor's defaults, 200 L-BFGS iterations and
    tol 1e-4) and the default learned noise (a scratch retrain alternates MAP fits
    with MacKay's noise updates). The local retrain keeps the fitted noise.
    """
    rng = np.random.RandomState(0)
    X = rng.randn(20_000, 8)
    y = np.sin(X[:, 0]) + 0.5 * X[:, 1] * X[:, 2] + 0.1 * rng.randn(20_000)
    forget = rng.choice(20_000, 200, replace=False)
    keep = np.setdiff1d(np.arange(20_000), forget)
    settings = (
        ("ggn", 0.01, {}),
        ("ggn", None, {}),
        # the last layer's forget does not depend on how far its fit went
        ("last_layer", 0.01, {"curvature": "last_layer", "max_iter": 20}),
    )
    rows, fixed = [], None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for curvature, noise, extra in settings:
            params = {"noise_variance": noise, **extra}
            est = BayesianMLPRegressor(random_state=0, **params).fit(X, y)
            fixed = est if fixed is None else fixed
            seconds = best_time(
                lambda e: _quiet(e.partial_unfit, X[forget], y[forget]),
                repeat=5,
                setup=lambda m=est: copy.deepcopy(m),
            )
            if curvature == "last_layer":  # the same retrains as the fixed-noise 'ggn'
                local, scratch = rows[0][-2:]
            else:
                start = time.perf_counter()
                est._local_retrain(X[keep], y[keep])
                local = time.perf_counter() - start
                start = time.perf_counter()
                BayesianMLPRegressor(random_state=1, **params).fit(X[keep], y[keep])
                scratch = time.perf_counter() - start
            rows.append([curvature, noise, seconds, local, scratch])
    table_rows = [
        [
            curvature,
            "learned" if noise is None else f"fixed {noise}",
            f"{1e3 * seconds:.1f} ms",
            f"{local:.1f} s",
            f"{scratch:.1f} s",
            f"{local / seconds:.0f}x",
            f"{scratch / seconds:.0f}x",
        ]
        for curvature, noise, seconds, local, scratch in rows
    ]
    return table_rows, fixed


def _quiet(function, *args):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnlearningWarning)
        return function(*args)


def gauss_newton_speed(est):
    """The row-block GGN (Jacobian blocks + BLAS syrk) vs NumPy's ``J.T @ J``.

    Interleaved, with BLAS on one thread on both sides and with its default threads.
    """
    rng = np.random.RandomState(1)
    X = rng.randn(20_000, 8)
    predictor, theta = est.model_.predictor, est.posterior_.mean
    c = np.ones(X.shape[0])
    J = predictor.jacobian(X, theta)
    reference = J.T @ J
    error = np.max(np.abs(predictor.gauss_newton(X, theta, c) - reference))
    rows = []
    for label, limits in (("1", 1), ("default", None)):
        kernel, numpy, build = [], [], []
        with threadpool_limits(limits=limits, user_api="blas"):
            for _ in range(5):  # interleaved
                kernel.append(best_time(lambda: predictor.gauss_newton(X, theta, c), 1))
                numpy.append(best_time(lambda: J.T @ J, repeat=1))
                build.append(best_time(lambda: predictor.jacobian(X, theta), repeat=1))
        rows.append(
            [
                f"{X.shape[0]} x {predictor.n_weights}",
                label,
                f"{1e3 * min(kernel):.0f} ms",
                f"{1e3 * min(numpy):.0f} ms",
                f"{1e3 * min(build):.0f} ms",
                f"{min(numpy) / min(kernel):.2f}x",
                f"{(min(numpy) + min(build)) / min(kernel):.2f}x",
                f"{J.nbytes / 2**20:.0f} MiB",
                f"{error / np.max(np.abs(reference)):.1e}",
            ]
        )
    return rows


# ---------------------------------------------------------------- figure
def interval_figure(path):
    """Predictive bands: full fit, after forgetting an interval, local retrain."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    X, y, _, _ = one_dimensional()
    forget = forget_set(X, "clustered", None, 0)
    keep = np.setdiff1d(np.arange(X.shape[0]), forget)
    grid = np.linspace(-3.2, 3.2, 400)[:, None]
    fig, axes = plt.subplots(1, 2, figsize=(12, 4), sharey=True)
    for ax, curvature in zip(axes, ("ggn", "last_layer"), strict=True):
        est = BayesianMLPRegressor(
            hidden_layer_sizes=(20,), curvature=curvature, random_state=0, **TIGHT
        ).fit(X, y)
        unlearned, _, _ = forget_with(est, "laplace", X[forget], y[forget])
        local = est._local_retrain(X[keep], y[keep], **TIGHT)
        ax.axvspan(0.5, 1.5, color="0.9", label="forgotten interval")
        ax.plot(X[keep, 0], y[keep], ".", color="0.6", ms=3)
        ax.plot(X[forget, 0], y[forget], "x", color="0.6", ms=3)
        for model, label, colour in (
            (est, "before", "C0"),
            (unlearned, "after forgetting", "C3"),
            (local, "retrained (local)", "C2"),
        ):
            mean, std = model.predict(grid, return_std=True)
            ax.plot(grid[:, 0], mean, color=colour, label=label)
            ax.fill_between(
                grid[:, 0], mean - 2 * std, mean + 2 * std, color=colour, alpha=0.15
            )
        ax.set_title(f"curvature='{curvature}'")
        ax.set_xlabel("x")
    axes[0].set_ylabel("y (mean and 2 std)")
    axes[0].legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(speed_only=False):
    print(environment())
    print("\n### Speed (n = 20,000, 8 features, hidden (50,), forget 1%)\n", flush=True)
    rows, est = speed()
    print(
        table(
            rows,
            [
                "curvature",
                "noise",
                "partial_unfit",
                "local retrain",
                "scratch retrain",
                "local / forget",
                "scratch / forget",
            ],
        )  # fmt: skip
    )
    print("\n### Gauss-Newton accumulation\n")
    print(
        table(
            gauss_newton_speed(est),
            [
                "rows x weights",
                "BLAS threads",
                "gauss_newton",
                "NumPy J.T @ J",
                "building J",
                "vs J.T @ J alone",
                "vs building J + J.T @ J",
                "J (not built)",
                "max rel. diff",
            ],
        )  # fmt: skip
    )
    if speed_only:
        return
    headers = [
        "data", "forget set", "curvature", "method", "KL ratio", "pred. KL forgotten",
        "(nothing)", "held-out RMSE", "forget", "local retrain", "warned", "",
    ]  # fmt: skip
    sets = [("random", 0.01), ("random", 0.1), ("random", 0.3), ("clustered", 0.1)]
    print("\n### Forgetting against the local retrain\n", flush=True)
    lines = experiment_table("diabetes (5,)", diabetes(), (5,), (0, 1, 2), sets)
    lines += experiment_table("1-D (20,)", one_dimensional(), (20,), (0, 1, 2), sets)
    print(table(lines, headers))
    print("\n### Wider network on diabetes (ggn, 'laplace')\n", flush=True)
    wide = experiment_table(
        "diabetes (20,)",
        diabetes(),
        (20,),
        (0, 1, 2),
        [("random", 0.01), ("random", 0.1)],
        (("ggn", ("laplace",)),),
    )
    print(table(wide, headers))
    print("\n### Scratch retrains over five seeds (diabetes (5,), 10% random)\n")
    print(
        table(
            seed_spread(diabetes(), (5,)),
            ["rows", "full fit RMSE", "unlearned RMSE", "scratch range", "inside"],
        )
    )
    interval_figure(HERE / "mlp_interval.png")
    print(f"\nsaved {HERE / 'mlp_interval.png'}")


if __name__ == "__main__":
    import sys

    main(speed_only="--speed" in sys.argv[1:])
