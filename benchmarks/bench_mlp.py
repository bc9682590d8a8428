"""BayesianMLPRegressor: forgetting against retraining, speed, and the 1-D figure.

Run: ``python benchmarks/bench_mlp.py`` (a few minutes; ``--speed``: only the
speed tables; ``--ggn-only``: only the Gauss-Newton table; ``--evidence-only``: only
the table of ``alpha=1`` against a learned ``alpha``). Prints markdown tables
for benchmarks/README.md ("Bayesian network regressor") and saves
benchmarks/mlp_interval.png.

References: (a) the local retrain, on the remaining rows started from the
full-data weights, to convergence, with the same posterior approximation (so
a KL divergence between posteriors is meaningful); (b) retraining from scratch
over five seeds (the spread of predictive errors a new fit would have).
"""

import copy
import os
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
from sklunlearn.posterior import GaussianPosterior

HERE = Path(__file__).parent
TIGHT = {"max_iter": 3000, "tol": 1e-8}  # fits at the mode: the Laplace step assumes it
# Warnings every forget of a learned-noise fit gives once: not a sign of failure.
# The hidden layers' warning of 'last_layer' is not routine: it says the result
# may be no closer to a retrain, which moves the hidden layers too.
ROUTINE = ("noise_variance_ was learned", "alpha_ and noise_variance_ were learned")


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


def local_reference(est, X, y):
    """``(local retrain, converged)``: a reference that stops at ``max_iter`` is
    continued from where it stopped with ten times the budget, never loosened."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        local = est._local_retrain(X, y, **TIGHT)
        if caught:
            caught.clear()
            local = local._local_retrain(X, y, max_iter=10 * TIGHT["max_iter"], tol=1e-8)
    return local, not caught


def kl_parts(q, reference):
    """``(mean part, covariance part)`` of ``KL(q || reference)``: the mean part is
    ``(m_q - m_r)' P_r (m_q - m_r) / 2``, the rest is the covariance's."""
    mean = 0.5 * reference.mahalanobis(q.mean) ** 2
    return mean, q.kl_divergence(reference) - mean


def compare(data, hidden, curvature, methods, kind, fraction, seed, settings=None):
    """One row per method: KL ratio and its mean part, predictive KL, held-out RMSE,
    times, warnings; and the reference's predictive KL and convergence.
    ``settings``: further parameters of the estimator (e.g. ``alpha``)."""
    X, y, X_test, y_test = data
    est = BayesianMLPRegressor(
        hidden_layer_sizes=hidden,
        curvature=curvature,
        random_state=seed,
        **TIGHT,
        **(settings or {}),
    ).fit(X, y)
    forget = forget_set(X, kind, fraction, seed)
    keep = np.setdiff1d(np.arange(X.shape[0]), forget)
    start = time.perf_counter()
    local, converged = local_reference(est, X[keep], y[keep])
    local_seconds = time.perf_counter() - start
    nothing = est.posterior_.kl_divergence(local.posterior_)
    rows = []
    for method in methods:
        unlearned, seconds, texts = forget_with(est, method, X[forget], y[forget])
        if unlearned is None:
            missing = (np.nan, np.nan, np.nan)
            rows.append((method, *missing, seconds, local_seconds, texts, np.nan))
            continue
        mean_part, _ = kl_parts(unlearned.posterior_, local.posterior_)
        rows.append(
            (
                unlearned.forget_report_.method,
                unlearned.posterior_.kl_divergence(local.posterior_) / nothing,
                predictive_kl(unlearned, local, X[forget]),
                rmse(unlearned, X_test, y_test),
                seconds,
                local_seconds,
                texts,
                mean_part / nothing,
            )
        )
    return rows, predictive_kl(est, local, X[forget]), converged


ALL_METHODS = (("ggn", ("laplace", "eubo", "rkl")), ("last_layer", ("laplace",)))


def experiment_table(name, data, hidden, seeds, sets, combos=ALL_METHODS, settings=None):
    """Markdown rows: the median over seeds of each (set, curvature, method)."""
    lines = []
    for kind, fraction in sets:
        for curvature, methods in combos:
            runs = [
                compare(data, hidden, curvature, methods, kind, fraction, seed, settings)
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
                        _fmt(_median(ratios)),
                        _fmt(_median([c[7] for c in cells]))
                        if refused < len(cells)
                        else "",
                        _fmt(_median([c[2] for c in cells])),
                        _fmt(_median([run[1] for run in runs])),
                        _fmt(_median([c[3] for c in cells])),
                        f"{1e3 * np.median([c[4] for c in cells]):.1f} ms",
                        f"{np.median([c[5] for c in cells]):.2f} s",
                        f"{warned}/{len(cells)}"
                        + (f" ({refused} refused)" if refused else ""),
                        f"{sum(run[2] for run in runs)}/{len(runs)}",
                        ("**worse than nothing**" if np.any(worse) else "")
                        + (f", {unwarned_worse} unwarned" if unwarned_worse else ""),
                    ]
                )
            print(f"  {name} {kind} {fraction:.0%} {curvature} done", flush=True)
    return lines


def _median(values):
    """The median of the values that are not NaN (refused forgets); NaN if none."""
    values = np.asarray(values, dtype=np.float64)
    kept = values[~np.isnan(values)]
    return float(np.median(kept)) if kept.size else np.nan


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


def diagnosis(data, hidden, fractions=(0.01, 0.1), seeds=(0, 1, 2)):
    """Where the default forget's KL to the local retrain comes from, per seed.

    The KL split into its mean and covariance parts (the mean part is what a
    perfect covariance would leave); the covariance part that the remaining
    rows' GGN at the unlearned mean would have (a forget cannot compute it: it
    needs those rows); the Newton step against the retrain's move (cosine and
    length in the reference's precision); the noise precision of a reference
    that re-learns the noise, and the ratio against it; and whether the
    reference is one mode (a retrain started from the unlearned mean lands on
    it).
    """
    X, y, _, _ = data
    rows = []
    for fraction in fractions:
        for seed in seeds:
            est = BayesianMLPRegressor(
                hidden_layer_sizes=hidden, random_state=seed, **TIGHT
            ).fit(X, y)
            forget = forget_set(X, "random", fraction, seed)
            keep = np.setdiff1d(np.arange(X.shape[0]), forget)
            local, converged = local_reference(est, X[keep], y[keep])
            unlearned, _, texts = forget_with(est, "laplace", X[forget], y[forget])
            cells = _diagnose(est, unlearned, local.posterior_, X[keep], y[keep])
            rows.append(
                [f"random {fraction:.0%}", seed, *cells[:-1]]
                + [cells[-1] + ("" if converged else " (max_iter)")]
                + ["yes" if texts else "no"]
            )
    return rows


def _diagnose(est, unlearned, reference, X_keep, y_keep):
    """The cells of one :func:`diagnosis` row, from the fit, its forget and the
    reference posterior (``X_keep, y_keep``: the remaining rows)."""
    before, after = est.posterior_, unlearned.posterior_
    nothing = before.kl_divergence(reference)
    mean_part, covariance_part = kl_parts(after, reference)
    beta = 1.0 / est.noise_variance_
    gauss_newton = est.model_.predictor.gauss_newton(
        X_keep, after.mean, np.full(y_keep.size, beta)
    )
    gauss_newton.flat[:: after.mean.size + 1] += est.alpha
    seen = GaussianPosterior.from_precision(after.mean, gauss_newton)
    step, move = after.mean - before.mean, reference.mean - before.mean
    step_norm = np.sqrt(step @ reference.precision @ step)
    move_norm = np.sqrt(move @ reference.precision @ move)
    noisy = est._local_retrain(X_keep, y_keep, relearn_noise=True, **TIGHT)
    noisy_ratio = after.kl_divergence(noisy.posterior_) / before.kl_divergence(
        noisy.posterior_
    )
    restart = unlearned._local_retrain(X_keep, y_keep, **TIGHT)
    return [
        f"{nothing:.3g}",
        f"{(mean_part + covariance_part) / nothing:.3f}",
        f"{mean_part / nothing:.3f}",
        f"{covariance_part / nothing:.3f}",
        f"{kl_parts(seen, reference)[1] / nothing:.3f}",
        f"{step @ reference.precision @ move / (step_norm * move_norm):.2f}",
        f"{step_norm / move_norm:.2f}",
        f"{beta:.3f} / {1.0 / noisy.noise_variance_:.3f}",
        f"{noisy_ratio:.3f}",
        f"{restart.posterior_.kl_divergence(reference) / nothing:.1e}",
    ]


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


def _cpu_and_wall(function):
    """``(CPU seconds of this process, all threads; wall seconds)`` of one call.

    CPU time counts the work done, which other users of the machine barely
    change; wall time also counts the wait for a core, and the overlap of the
    Jacobian fill with BLAS that only a free core allows.
    """
    cpu, wall = time.process_time(), time.perf_counter()
    function()
    return time.process_time() - cpu, time.perf_counter() - wall


GGN_REPEATS = 11


def gauss_newton_speed(est):
    """The row-block GGN against NumPy on a precomputed ``J``, interleaved.

    Two NumPy references on the same rows: ``(J * c[:, None]).T @ J`` (what
    ``J' diag(c) J`` reads as, a general product) and ``J.T @ J`` (a symmetric
    rank-k update with half its flops: the issue's reference, timed only; its
    value ignores ``c``). Neither counts the building of ``J`` (shown apart);
    ``gauss_newton`` builds its Jacobian blocks inside its own time. BLAS on one
    thread on both sides, then on two; the best of :data:`GGN_REPEATS` of CPU
    time (all threads of the process) and of wall time, and the median over the
    interleaved rounds of ``J.T @ J``'s CPU time over ``gauss_newton``'s (a
    round's two runs share the machine's load of the moment).
    """
    rng = np.random.RandomState(1)
    X = rng.randn(20_000, 8)
    predictor, theta = est.model_.predictor, est.posterior_.mean
    c = rng.uniform(0.5, 2.0, X.shape[0])  # per-row curvature, as a classifier's
    J = predictor.jacobian(X, theta)
    reference = (J * c[:, None]).T @ J
    error = np.max(np.abs(predictor.gauss_newton(X, theta, c) - reference))
    rows = []
    for limits in (1, 2):
        runs = {"ggn": [], "syrk": [], "general": [], "build": []}
        with threadpool_limits(limits=limits, user_api="blas"):
            for _ in range(GGN_REPEATS):  # interleaved
                runs["ggn"].append(
                    _cpu_and_wall(lambda: predictor.gauss_newton(X, theta, c))
                )
                runs["syrk"].append(_cpu_and_wall(lambda: J.T @ J))
                runs["general"].append(_cpu_and_wall(lambda: (J * c[:, None]).T @ J))
                runs["build"].append(_cpu_and_wall(lambda: predictor.jacobian(X, theta)))
        best = {name: np.min(times, axis=0) for name, times in runs.items()}
        (g_cpu, g_wall), (s_cpu, s_wall) = best["ggn"], best["syrk"]
        paired = np.median(np.array(runs["syrk"])[:, 0] / np.array(runs["ggn"])[:, 0])
        rows.append(
            [
                f"{X.shape[0]} x {predictor.n_weights}",
                str(limits),
                *(
                    f"{1e3 * best[name][0]:.0f} / {1e3 * best[name][1]:.0f} ms"
                    for name in ("ggn", "syrk", "general", "build")
                ),
                f"{s_cpu / g_cpu:.2f}x / {s_wall / g_wall:.2f}x",
                f"{paired:.2f}x",
                f"{(s_cpu + best['build'][0]) / g_cpu:.2f}x",
                f"{best['general'][0] / g_cpu:.2f}x",
                f"{J.nbytes / 2**20:.0f} MiB",
                f"{error / np.max(np.abs(reference)):.1e}",
            ]
        )
    return rows


GGN_HEADERS = [
    "rows x weights",
    "BLAS threads",
    "gauss_newton (CPU / wall)",
    "J.T @ J",
    "(J * c).T @ J",
    "building J",
    "vs J.T @ J (CPU / wall)",
    "vs J.T @ J, median of rounds (CPU)",
    "CPU vs building J + J.T @ J",
    "CPU vs (J * c).T @ J",
    "J (never built)",
    "max rel. diff",
]


def ggn_estimator():
    """A network of the speed table's shape, briefly trained (the GGN's cost does not
    depend on how far the fit went)."""
    rng = np.random.RandomState(0)
    X = rng.randn(20_000, 8)
    y = np.sin(X[:, 0]) + 0.5 * X[:, 1] * X[:, 2] + 0.1 * rng.randn(20_000)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return BayesianMLPRegressor(noise_variance=0.01, max_iter=20, random_state=0).fit(
            X, y
        )


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


def evidence_table(headers):
    """The forgetting table's rows for the default ``alpha=1`` against ``alpha=None``
    (learned by the evidence), on diabetes with (5,) and the default (50,) units."""
    lines = []
    sets = [("random", 0.01), ("random", 0.1)]
    for hidden in [(5,), (50,)]:
        for alpha in [1.0, None]:
            name = f"diabetes {hidden}, alpha={alpha}"
            lines += experiment_table(
                name, diabetes(), hidden, (0, 1, 2), sets, (("ggn", ("laplace",)),),
                {"alpha": alpha},
            )  # fmt: skip
    learned = [
        BayesianMLPRegressor(hidden_layer_sizes=h, alpha=None, random_state=s, **TIGHT)
        .fit(*diabetes()[:2])
        .alpha_
        for h in [(5,), (50,)]
        for s in (0, 1, 2)
    ]
    print(table(lines, headers))
    print("\nalpha_ learned, (5,) seeds 0-2 then (50,) seeds 0-2:", np.round(learned, 2))


FORGET_HEADERS = [
    "data", "forget set", "curvature", "method", "KL ratio", "its mean part",
    "pred. KL forgotten", "(nothing)", "held-out RMSE", "forget", "local retrain",
    "warned", "ref. converged", "",
]  # fmt: skip


def main(speed_only=False, ggn_only=False, evidence_only=False):
    print(environment())
    if evidence_only:
        print("\n### The prior precision: alpha=1 against learned (alpha=None)\n")
        evidence_table(FORGET_HEADERS)
        return
    if ggn_only:
        print(f"\n### Gauss-Newton accumulation (load average {os.getloadavg()[0]:.1f})\n")
        print(table(gauss_newton_speed(ggn_estimator()), GGN_HEADERS))
        return
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
    print(f"\n### Gauss-Newton accumulation (load average {os.getloadavg()[0]:.1f})\n")
    print(table(gauss_newton_speed(est), GGN_HEADERS))
    if speed_only:
        return
    headers = FORGET_HEADERS
    print("\n### The prior precision: alpha=1 against learned (alpha=None)\n", flush=True)
    evidence_table(headers)
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
    print("\n### Diagnosis (diabetes (5,), ggn, 'laplace')\n", flush=True)
    print(
        table(
            diagnosis(diabetes(), (5,)),
            [
                "forget set",
                "seed",
                "KL(full \\|\\| ref.)",
                "KL ratio",
                "mean part",
                "cov. part",
                "cov. part, remaining rows' GGN",
                "cos(step, move)",
                "step / move",
                "noise precision: fit / re-learned",
                "KL ratio vs re-learned noise",
                "restart from unlearned",
                "warned",
            ],
        )  # fmt: skip
    )
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

    main(
        speed_only="--speed" in sys.argv[1:],
        ggn_only="--ggn-only" in sys.argv[1:],
        evidence_only="--evidence-only" in sys.argv[1:],
    )
