"""Forgetting patterns: 'laplace', 'eubo', 'rkl', 'uib', doing nothing; against retraining.

Settings (issue 14), every one measured through ``partial_unfit`` of the
estimator, with the UnlearningWarnings it raised:

- ``bc-clustered``: BayesianLogisticRegression on standardised breast_cancer,
  ``alpha`` in {0.01, 0.02, 0.03}, the 30/40/50% of rows nearest a random row;
- ``sgpc-amplitude``: SparseGPClassifier on standardised banknote with the
  large-amplitude kernel ``100 * RBF(1)``, 50 inducing points (rows never
  forgotten), 10% of rows at random;
- ``sequential``: ten requests of 3% one after another, against one request
  of their union (30%), breast_cancer, ``alpha`` 1 and 0.03;
- ``injection``: a column that is zero except on a random 5% group, where it
  is +-3 by the label; forget the group (breast_cancer and banknote, both
  estimators): the remaining fraction of the injected effect, 1 doing nothing
  and 0 retrained (BLR: the column's weight, 0 retrained; SGPC: the group's
  mean logit signed by the predicted class, over the full model's excess);
- ``subgroup``: forget every row whose attribute is in its top 30%
  (breast_cancer 'mean radius', ``alpha=0.03``; banknote 'variance'): KL
  ratio, held-out accuracy, correlation of the held-out predicted
  probability with the attribute (before, after, retrained).

- ``sweep``: 'uib' with several ``(unlearning_beta, unlearning_stages,
  share_exponent)`` on more draws of bc-clustered and sgpc-amplitude,
  subgroups by every attribute, random 30% deletions and feature injection:
  the trade-off the defaults are chosen from;
- ``held-out``: clustered 30-50% deletions from data sets the defaults were
  not chosen on (wine, digits pairs), 'uib' at the previous and the current
  defaults.

The KL ratio is ``KL(forgotten || retrained) / KL(full || retrained)``
(doing nothing is 1). "silent" counts results worse than doing nothing
without an UnlearningWarning. Also the cost of the 'laplace' self-check (it
runs when the step moves the mean by 0.1 posterior standard deviations or
more) next to the whole divide-out, interleaved.

``--network`` prints only the network table: 'laplace' and 'uib' on
BayesianMLPRegressor against the local retrain of ``bench_mlp.py``.

    python benchmarks/bench_uib.py [--plot PATH] [--network]
"""

import argparse
import copy
import inspect
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from sklearn.datasets import load_breast_cancer, load_digits, load_wine
from sklearn.decomposition import PCA
from sklearn.gaussian_process.kernels import RBF
from sklearn.gaussian_process.kernels import ConstantKernel as C
from sklearn.preprocessing import StandardScaler

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import environment, table  # noqa: E402

from sklunlearn.datasets import load_banknote  # noqa: E402
from sklunlearn.exceptions import UnlearningWarning  # noqa: E402
from sklunlearn.gaussian_process import SparseGPClassifier  # noqa: E402
from sklunlearn.linear_model import BayesianLogisticRegression  # noqa: E402
from sklunlearn.unlearning import _laplace as laplace_module  # noqa: E402
from sklunlearn.unlearning import (  # noqa: E402
    forgotten_fraction,
    get_method,
    laplace_divide_out,
    uib_forget,
)

METHODS = ("laplace", "eubo", "rkl", "uib")
KERNEL = C(100.0) * RBF(1.0)


def breast_cancer():
    X, y = load_breast_cancer(return_X_y=True)
    return StandardScaler().fit_transform(X), y


def banknote():
    X, y = load_banknote(return_X_y=True)
    return StandardScaler().fit_transform(X), y


def posterior(est):
    return (
        est.whitened_posterior_ if hasattr(est, "whitened_posterior_") else est.posterior_
    )


def forget(est, X, y):
    """A forgotten copy of ``est`` and whether it raised an UnlearningWarning."""
    est = copy.deepcopy(est)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        est.partial_unfit(X, y)
    return est, any(w.category is UnlearningWarning for w in caught)


def compare(make, X, y, forget_rows, remain):
    """{method: (kl ratio, warned, forgotten estimator)} and the full/retrained fits."""
    full = make().fit(X, y)
    retrained = make().fit(X[remain], y[remain])
    target = posterior(retrained)
    nothing = posterior(full).kl_divergence(target)
    out = {"nothing": (1.0, False, full)}
    for method in METHODS:
        est, warned = forget(
            full.set_params(unlearning=method), X[forget_rows], y[forget_rows]
        )
        out[method] = (posterior(est).kl_divergence(target) / nothing, warned, est)
    full.set_params(unlearning="laplace")
    return out, full, retrained


def clustered(X, fraction, seed):
    centre = X[np.random.default_rng(seed).integers(X.shape[0])]
    order = np.argsort(((X - centre) ** 2).sum(axis=1))
    k = int(fraction * X.shape[0])
    return np.sort(order[:k]), np.sort(order[k:])


def clustered_draws(seeds_per_cell=1):
    """bc-clustered: (make, X, y, forgotten rows, remaining rows) per draw.

    Each (alpha, fraction) cell ``c`` (0-8) is drawn with the random centres
    ``c, c + 9, ...``: one seed per cell is the failure-settings table.
    """
    X, y = breast_cancer()
    cells = [(a, f) for a in (0.01, 0.02, 0.03) for f in (0.3, 0.4, 0.5)]
    for k in range(seeds_per_cell):
        for cell, (alpha, fraction) in enumerate(cells):
            forget_rows, remain = clustered(X, fraction, cell + len(cells) * k)
            yield (
                lambda a=alpha: BayesianLogisticRegression(alpha=a, random_state=0),
                X,
                y,
                forget_rows,
                remain,
            )


def amplitude_draws(n_draws=5):
    """sgpc-amplitude: (make, X, y, forgotten rows, remaining rows) per draw."""
    X, y = banknote()
    for seed in range(n_draws):
        rng = np.random.default_rng(seed)
        chosen = rng.choice(X.shape[0], 50, replace=False)
        pool = np.setdiff1d(np.arange(X.shape[0]), chosen)
        forget_rows = np.sort(rng.choice(pool, X.shape[0] // 10, replace=False))
        remain = np.setdiff1d(np.arange(X.shape[0]), forget_rows)
        yield (
            lambda Z=X[chosen]: SparseGPClassifier(
                kernel=KERNEL, inducing_points=Z, random_state=0
            ),
            X,
            y,
            forget_rows,
            remain,
        )


def subgroup_draw(X, y, column=0):
    """Training rows (25% held out) and the top 30% of ``column`` among them."""
    held_out = np.random.default_rng(0).random(X.shape[0]) < 0.25
    Xt, yt = X[~held_out], y[~held_out]
    group = np.flatnonzero(Xt[:, column] > np.quantile(Xt[:, column], 0.7))
    remain = np.setdiff1d(np.arange(Xt.shape[0]), group)
    return Xt, yt, group, remain, X[held_out], y[held_out]


def subgroup_breast_cancer():
    """The subgroup setting's estimator on breast_cancer (weak prior)."""
    return BayesianLogisticRegression(alpha=0.03, random_state=0)


def failure_settings():
    """{setting: [per-draw {method: (ratio, warned)}]} for the two failure settings."""
    draws = {"bc-clustered": clustered_draws(), "sgpc-amplitude": amplitude_draws()}
    return {
        setting: [compare(*draw)[0] for draw in generator]
        for setting, generator in draws.items()
    }


# (unlearning_beta, unlearning_stages, share_exponent) swept; beta and stages act
# through rho alone; share_exponent inf is one bottleneck weight for every direction
# (the previous defaults were (2, 4, inf)).
SWEEP = (
    (2.0, 4, np.inf),
    (3.0, 4, np.inf),
    (2.0, 4, 10.0),
    (3.0, 4, 6.0),
    (3.0, 4, 8.0),
    (3.0, 4, 10.0),
    (3.0, 4, 12.0),
    (2.5, 4, 12.0),
    (4.0, 5, 8.0),
    (3.5, 4, 8.0),
)
# Medians over the first draws of a setting: the small tables' draw sets.
SUBSETS = (
    ("bc-clustered", 9, "bc-clustered table (9)"),
    ("subgroup bc", 1, "subgroup bc 'mean radius'"),
    ("random 30% bc", 5, "random 30% bc sequential (5)"),
)


def sweep_settings():
    """{setting: draws} of the sweep: more draws than the tables with every method.

    bc-clustered with four centres per cell (36 draws, the first nine are the
    failure-settings table's), sgpc-amplitude with 10 draws, subgroup removal
    by each of the ten 'mean' attributes of breast_cancer (``alpha=0.03``) and
    the four of banknote, 20 random 30% deletions from breast_cancer
    (``alpha=0.03``; the union of the sequential requests) and feature
    injection (BLR) on both data sets.
    """
    settings = {
        "bc-clustered": list(clustered_draws(seeds_per_cell=4)),
        "sgpc-amplitude": list(amplitude_draws(n_draws=10)),
    }
    for name, (X, y), make, columns in (
        ("subgroup bc", breast_cancer(), subgroup_breast_cancer, range(10)),
        ("subgroup banknote", banknote(), BayesianLogisticRegression, range(4)),
    ):
        settings[name] = [(make, *subgroup_draw(X, y, column)[:4]) for column in columns]
    # The union of the sequential requests (pending requests forget exactly it).
    X, y = breast_cancer()
    settings["random 30% bc"] = []
    for seed in range(20):
        forget_rows = np.random.default_rng(seed).permutation(X.shape[0])[
            : int(0.3 * len(y))
        ]
        remain = np.setdiff1d(np.arange(X.shape[0]), forget_rows)
        settings["random 30% bc"].append(
            (subgroup_breast_cancer, X, y, forget_rows, remain)
        )
    settings["injection"] = []
    for X, y in (breast_cancer(), banknote()):
        Xi, group, remain = injected(X, y)
        settings["injection"].append((BayesianLogisticRegression, Xi, y, group, remain))
    return settings


def sweep():
    """Rows (beta, stages, p, rho, median KL ratio per setting and per small draw set,
    worst median, largest draw).

    'uib' applied to the stored posterior of each draw (as ``partial_unfit``
    does for one request) for each (beta, stages, share_exponent) of
    ``SWEEP``: the trade-off the defaults are chosen from.
    """
    fits = {
        setting: [
            (make().fit(X, y), make().fit(X[rest], y[rest]), X[rows], y[rows])
            for make, X, y, rows, rest in draws
        ]
        for setting, draws in sweep_settings().items()
    }
    rows = []
    for beta, stages, exponent in SWEEP:
        ratios = {
            setting: [uib_ratio(*fit, beta, stages, exponent)[0] for fit in draws]
            for setting, draws in fits.items()
        }
        medians = [np.median(r) for r in ratios.values()]
        medians += [np.median(ratios[setting][:n]) for setting, n, _ in SUBSETS]
        rows.append(
            (
                beta,
                stages,
                f"{exponent:g}",
                f"{forgotten_fraction(beta, stages):.3f}",
                *(f"{m:.3f}" for m in medians),
                f"{max(medians):.3f}",
                f"{max(max(r) for r in ratios.values()):.3g}",
            )
        )
    names = tuple(f"{name} ({len(draws)})" for name, draws in fits.items())
    return rows, names + tuple(name for _, _, name in SUBSETS)


def held_out_draws():
    """{data: draws}: clustered 30-50% deletions, alpha 0.01-0.1, from data sets the
    defaults were not chosen on (wine class 0 against the rest; digits pairs, PCA to
    20 dimensions)."""
    X, y = load_wine(return_X_y=True)
    data = {"wine": (StandardScaler().fit_transform(X), (y == 0).astype(int))}
    X, y = load_digits(return_X_y=True)
    for a, b in ((3, 8), (4, 9), (1, 7), (5, 6)):
        pair = (y == a) | (y == b)
        Xp = PCA(20, random_state=0).fit_transform(X[pair])
        data[f"digits {a}-{b}"] = (
            StandardScaler().fit_transform(Xp),
            (y[pair] == b).astype(int),
        )
    cells = [(a, f) for a in (0.01, 0.03, 0.1) for f in (0.3, 0.4, 0.5)]
    draws = {}
    for name, (X, y) in data.items():
        draws[name] = []
        for cell, (alpha, fraction) in enumerate(cells):
            forget_rows, remain = clustered(X, fraction, cell)
            make = BayesianLogisticRegression(alpha=alpha, random_state=0)
            draws[name].append(
                (
                    make.fit(X, y),
                    BayesianLogisticRegression(alpha=alpha).fit(X[remain], y[remain]),
                    X[forget_rows],
                    y[forget_rows],
                )
            )
    return draws


def held_out():
    """Rows (data, defaults, median KL ratio, largest, warned, silently worse than doing
    nothing): 'uib' at the previous
    defaults (2, 4, inf) and the current ones (uib_forget's), on held-out data."""
    current = inspect.signature(uib_forget).parameters
    settings = {
        "previous (2, 4, inf)": (2.0, 4, np.inf),
        "current": tuple(
            current[name].default
            for name in ("unlearning_beta", "unlearning_stages", "share_exponent")
        ),
    }
    rows = []
    for name, draws in held_out_draws().items():
        for label, params in settings.items():
            results = [uib_ratio(*fit, *params) for fit in draws]
            rows.append((name, label, *_ratio_summary(results)))
    return rows


def _ratio_summary(results):
    """(median, largest, warned, silent) of ``(KL ratio, warned)`` pairs."""
    ratios, warned = np.array(results, dtype=float).T
    return (
        f"{np.median(ratios):.3f}",
        f"{max(ratios):.3g}",
        f"{int(warned.sum())}/{len(ratios)}",
        int(np.sum((ratios > 1.0) & (warned == 0))),
    )


def uib_ratio(full, retrained, X, y, beta, stages, exponent):
    """KL ratio of 'uib' with (beta, stages, share_exponent) from ``full``'s stored
    posterior, and whether it warned."""
    target = (y == full.classes_[1]).astype(np.float64)
    new, record = uib_forget(
        posterior(full),
        full.model_,
        X,
        target,
        np.ones(len(y)),
        inference=full.inference,
        unlearning_beta=beta,
        unlearning_stages=stages,
        share_exponent=exponent,
    )
    reference = posterior(retrained)
    ratio = new.kl_divergence(reference) / posterior(full).kl_divergence(reference)
    return ratio, bool(record.warnings)


def sequential():
    """Rows (alpha, method, median KL ratio sequential/union, pending off/on, and
    the sequential result's KL over doing nothing's)."""
    X, y = breast_cancer()
    rows = []
    for alpha in (1.0, 0.03):
        for method in ("laplace", "uib"):
            stored, step_by_step, over_nothing = [], [], []
            for seed in range(5):
                rng = np.random.default_rng(seed)
                forget_rows = rng.permutation(X.shape[0])[: int(0.3 * X.shape[0])]
                remain = np.setdiff1d(np.arange(X.shape[0]), forget_rows)
                target = BayesianLogisticRegression(alpha=alpha).fit(X[remain], y[remain])
                full = BayesianLogisticRegression(alpha=alpha, unlearning=method).fit(X, y)
                union, _ = forget(full, X[forget_rows], y[forget_rows])
                est, current = copy.deepcopy(full), full.posterior_
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", UnlearningWarning)
                    for part in np.array_split(forget_rows, 10):
                        est.partial_unfit(X[part], y[part])
                        # Without pending requests: each divide-out from the last result.
                        current = one_request(full, current, X[part], y[part])
                kl_union = union.posterior_.kl_divergence(target.posterior_)
                stored.append(est.posterior_.kl_divergence(target.posterior_) / kl_union)
                step_by_step.append(current.kl_divergence(target.posterior_) / kl_union)
                over_nothing.append(
                    est.posterior_.kl_divergence(target.posterior_)
                    / full.posterior_.kl_divergence(target.posterior_)
                )
            rows.append(
                (
                    alpha,
                    method,
                    f"{np.median(step_by_step):.3g}",
                    f"{np.median(stored):.2f}",
                    f"{np.median(over_nothing):.3g}",
                )
            )
    return rows


def one_request(est, posterior_, X, y):
    """The estimator's method applied to ``posterior_`` alone (no pending state)."""
    method = get_method(est.unlearning)
    options = {name: getattr(est, name) for name in method.parameters}
    target = (y == est.classes_[1]).astype(np.float64)
    return method.function(posterior_, est.model_, X, target, np.ones(len(y)), **options)[0]


def injected(X, y, seed=0):
    rng = np.random.default_rng(seed)
    group = np.sort(rng.choice(X.shape[0], int(0.05 * X.shape[0]), replace=False))
    column = np.zeros(X.shape[0])
    column[group] = np.where(y[group] == 1, 3.0, -3.0)
    return np.column_stack([X, column]), group, np.setdiff1d(np.arange(X.shape[0]), group)


def injection():
    """Rows (data, estimator, method, remaining fraction, KL ratio, warned)."""
    rows = []
    for name, (X, y) in (("breast_cancer", breast_cancer()), ("banknote", banknote())):
        X, group, remain = injected(X, y)
        rng = np.random.default_rng(1)
        Z = X[rng.choice(remain, 50, replace=False)]
        makers = {
            "BLR": lambda: BayesianLogisticRegression(random_state=0),
            "SGPC": lambda Z=Z: SparseGPClassifier(inducing_points=Z, random_state=0),
        }
        for estimator, make in makers.items():
            out, full, retrained = compare(make, X, y, group, remain)
            probe = _injected_direction(full, X, group)
            # Remaining fraction of the effect: 1 doing nothing, 0 retrained.
            base = probe(retrained) if estimator == "SGPC" else 0.0
            before = probe(full) - base
            for method in ("nothing", *METHODS):
                ratio, warned, est = out[method]
                rows.append(
                    (
                        name,
                        estimator,
                        method,
                        f"{(probe(est) - base) / before:.3f}",
                        f"{ratio:.3g}",
                        "yes" if warned else "",
                    )
                )
    return rows


def _injected_direction(full, X, group):
    """The injected weight (BLR), or the group's signed logit (SGPC, whose kernel
    mixes the column with the others: compare with the retrained model's)."""
    if isinstance(full, BayesianLogisticRegression):
        return lambda est: est.coef_[0, -1]
    sign = np.where(full.predict(X[group]) == full.classes_[1], 1.0, -1.0)
    return lambda est: np.mean(sign * est.decision_function(X[group], moderated=False))


def subgroup():
    """Rows (data, method, KL ratio, accuracy, correlation before/after/retrained)."""
    rows = []
    settings = (
        ("breast_cancer", breast_cancer(), subgroup_breast_cancer),
        ("banknote", banknote(), lambda: BayesianLogisticRegression(random_state=0)),
    )
    for name, (X, y), make in settings:
        Xt, yt, group, remain, Xh, yh = subgroup_draw(X, y)
        out, full, retrained = compare(make, Xt, yt, group, remain)

        def correlation(est, Xh=Xh):
            return np.corrcoef(est.predict_proba(Xh)[:, 1], Xh[:, 0])[0, 1]

        for method in ("nothing", *METHODS):
            ratio, warned, est = out[method]
            rows.append(
                (
                    name,
                    method,
                    f"{ratio:.3g}",
                    "yes" if warned else "",
                    f"{est.score(Xh, yh):.3f}",
                    f"{correlation(full):.3f}",
                    f"{correlation(est):.3f}",
                    f"{correlation(retrained):.3f}",
                )
            )
    return rows


def check_cost():
    """Rows (d, k, move, ms of the divide-out with and without the self-check).

    The check is switched off by replacing the divide-out's
    ``linearisation_bounds`` with one that neither bounds nor checks; the two are
    timed interleaved (best of 15).
    """
    rows = []
    for d, k in ((10, 1), (50, 10), (50, 10_000), (400, 10), (400, 100)):
        rng = np.random.RandomState(0)
        X = rng.randn(20_000, d)
        y = (X @ rng.randn(d) / np.sqrt(d) + rng.logistic(size=20_000) > 0).astype(int)
        est = BayesianLogisticRegression().fit(X, y)
        Xf, yf, w = X[:k], y[:k].astype(float), np.ones(k)
        moved = laplace_divide_out(est.posterior_, est.model_, Xf, yf, w)[1].move
        checked = laplace_module.linearisation_bounds
        times = {True: [], False: []}
        try:
            for _ in range(15):
                for check, spent in times.items():
                    laplace_module.linearisation_bounds = (
                        checked if check else lambda *args: (np.nan, np.nan, None)
                    )
                    start = time.perf_counter()
                    laplace_divide_out(est.posterior_, est.model_, Xf, yf, w)
                    spent.append(time.perf_counter() - start)
        finally:
            laplace_module.linearisation_bounds = checked
        on, off = min(times[True]), min(times[False])
        rows.append(
            (
                d + 1,
                k,
                f"{moved:.3g}",
                f"{on * 1e3:.3f}",
                f"{off * 1e3:.3f}",
                f"{on / off:.2f}",
            )
        )
    return rows


def uib_cost():
    """Rows (d, rows, ms of 'uib' and of 'laplace', ratio): interleaved, best of 9."""
    rows = []
    for d, k in ((50, 100), (400, 100)):
        rng = np.random.RandomState(0)
        X = rng.randn(20_000, d)
        y = (X @ rng.randn(d) / np.sqrt(d) + rng.logistic(size=20_000) > 0).astype(int)
        est = BayesianLogisticRegression().fit(X, y)
        args = (est.posterior_, est.model_, X[:k], y[:k].astype(float), np.ones(k))
        times = {uib_forget: [], laplace_divide_out: []}
        for _ in range(9):
            for method, spent in times.items():
                start = time.perf_counter()
                method(*args)
                spent.append(time.perf_counter() - start)
        uib, laplace = min(times[uib_forget]), min(times[laplace_divide_out])
        rows.append(
            (d + 1, k, f"{uib * 1e3:.2f}", f"{laplace * 1e3:.2f}", f"{uib / laplace:.1f}")
        )
    return rows


def summary(results):
    """Rows (setting, method, median ratio, max ratio, warned, silently worse)."""
    rows = []
    for setting, draws in results.items():
        for method in ("nothing", *METHODS):
            ratios = np.array([draw[method][0] for draw in draws])
            warned = np.array([draw[method][1] for draw in draws])
            silent = int(np.sum((ratios > 1.0) & ~warned))
            rows.append(
                (
                    setting,
                    method,
                    f"{np.median(ratios):.3g}",
                    f"{ratios.max():.3g}",
                    f"{warned.sum()}/{len(draws)}",
                    silent,
                )
            )
    return rows


def plot(results, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(results), figsize=(5 * len(results), 4), sharey=True)
    for ax, (setting, draws) in zip(axes, results.items(), strict=True):
        names = ("nothing", *METHODS)
        for i, method in enumerate(names):
            ratios = [draw[method][0] for draw in draws]
            warned = [draw[method][1] for draw in draws]
            for ratio, flag in zip(ratios, warned, strict=True):
                ax.scatter(i, ratio, marker="x" if flag else "o", color=f"C{i}")
        ax.axhline(1.0, color="grey", lw=0.8, ls="--")
        ax.set_xticks(range(len(names)), names)
        ax.set_yscale("log")
        ax.set_title(setting)
    axes[0].set_ylabel("KL(forgotten || retrained) / KL(full || retrained)")
    fig.suptitle("x: raised an UnlearningWarning")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def network():
    """Rows (data, forget set, method, median KL ratio, largest, warned, silent) for
    BayesianMLPRegressor (``curvature='ggn'``) against the local retrain, the network
    benchmark's reference (``bench_mlp.py``): 'laplace' and 'uib' at the network's
    default ``unlearning_beta`` (1) and at the classifiers' (3)."""
    import bench_mlp

    from sklunlearn.neural_network import BayesianMLPRegressor

    methods = {
        "laplace": {"unlearning": "laplace"},
        "uib (beta 1)": {"unlearning": "uib", "unlearning_beta": 1.0},
        "uib (beta 3)": {"unlearning": "uib", "unlearning_beta": 3.0},
    }
    data = {
        "diabetes (5,)": (bench_mlp.diabetes(), (5,)),
        "1-D (20,)": (bench_mlp.one_dimensional(), (20,)),
    }
    sets = [("random", 0.01), ("random", 0.1), ("random", 0.3), ("clustered", 0.1)]
    rows = []
    for name, ((X, y, _, _), hidden) in data.items():
        for kind, fraction in sets:
            found = {label: [] for label in methods}
            for seed in (0,) if kind == "clustered" else (0, 1, 2):
                est = BayesianMLPRegressor(
                    hidden_layer_sizes=hidden, random_state=seed, **bench_mlp.TIGHT
                ).fit(X, y)
                forget_rows = bench_mlp.forget_set(X, kind, fraction, seed)
                keep = np.setdiff1d(np.arange(X.shape[0]), forget_rows)
                local, _ = bench_mlp.local_reference(est, X[keep], y[keep])
                nothing = est.posterior_.kl_divergence(local.posterior_)
                for label, params in methods.items():
                    # Warnings other than the routine learned-noise one, as bench_mlp.
                    forgotten, _, texts = bench_mlp.forget_with(
                        est.set_params(**params),
                        params["unlearning"],
                        X[forget_rows],
                        y[forget_rows],
                    )
                    ratio = forgotten.posterior_.kl_divergence(local.posterior_) / nothing
                    found[label].append((ratio, bool(texts)))
            for label, results in found.items():
                rows.append(
                    (name, f"{kind} {fraction:.0%}", label, *_ratio_summary(results))
                )
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--plot", default=str(Path(__file__).with_name("uib.png")))
    parser.add_argument(
        "--network", action="store_true", help="only the network table ('uib' on a BNN)"
    )
    args = parser.parse_args()
    print(environment())
    if args.network:
        print("\nNetwork: KL ratio to the local retrain (median over seeds)")
        header = ("data", "forget set", "method", "median", "largest", "warned", "silent")
        print(table(network(), header))
        return
    results = failure_settings()
    print("\nFailure settings (KL ratio; 1 = doing nothing)")
    print(
        table(summary(results), ("setting", "method", "median", "max", "warned", "silent"))
    )
    sweep_rows, names = sweep()
    print("\n'uib' defaults: median KL ratio per setting for (beta, stages, p)")
    print(
        table(
            sweep_rows,
            ("beta", "stages", "p", "rho", *names, "worst median", "largest"),
        )
    )
    print("\nHeld out: clustered 30-50% deletions, alpha 0.01-0.1 (9 draws each)")
    print(
        table(
            held_out(),
            ("data", "'uib' defaults", "median", "largest", "warned", "silent"),
        )
    )
    print("\nSequential: ten 3% requests, KL over one 30% request's (median of 5)")
    print(
        table(
            sequential(),
            ("alpha", "method", "step by step", "pending requests", "KL over nothing"),
        )
    )
    print("\nFeature injection (remaining fraction of the injected effect)")
    print(
        table(
            injection(),
            ("data", "estimator", "method", "remaining", "KL ratio", "warned"),
        )
    )
    print("\nSubgroup removal (top 30% of one attribute)")
    print(
        table(
            subgroup(),
            (
                "data",
                "method",
                "KL ratio",
                "warned",
                "accuracy",
                "corr before",
                "corr after",
                "corr retrained",
            ),
        )
    )
    print("\nCost of the 'laplace' self-check (best of 15, interleaved)")
    print(
        table(
            check_cost(),
            ("d", "rows", "move", "with check ms", "without ms", "ratio"),
        )
    )
    print("\nCost of 'uib' next to 'laplace' (best of 9, interleaved)")
    print(table(uib_cost(), ("d", "rows", "uib ms", "laplace ms", "ratio")))
    plot(results, args.plot)


if __name__ == "__main__":
    main()
