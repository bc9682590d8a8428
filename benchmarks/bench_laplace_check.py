"""The one-step Laplace divide-out's self-check against retraining.

Every forget here is compared with the posterior retrained on the remaining
rows (same hyperparameters): its KL ratio is KL(forgotten || retrained) /
KL(full || retrained). A *miss* is a result no better than doing nothing
(ratio >= 1) without a warning; a *false alarm* is a warning on a result at
least twice as close as doing nothing (ratio < 0.5). The check's two measures
(:func:`~sklunlearn.unlearning._checks.linearisation_check`) are recorded for
every step, whatever its size (the bounds that skip the check are switched
off here), so that each decision rule below is scored on the same forgets:

- ``before``: steps moving the mean less than 0.1 posterior standard
  deviations not checked, else mean > 1 or covariance > 0.02;
- the same with every step checked;
- the adopted rule: mean > 1 or covariance > 0.08 min(1, move), ``move`` the
  mean's move in posterior standard deviations, or the step's Newton decrement
  (its length in the forgotten posterior's standard deviations) above 2;
- the same without the decrement, and other decrement levels;
- alternatives: other fixed covariance thresholds, a lower mean threshold,
  the covariance measure weighted by the move (``x min(1, move)``) or per
  unit move (``/ min(1, move)``, the adopted family).

A rule is scored on the same recorded measures; the overshoot warning (a
floored precision) counts as a warning under every rule.

The forgets: ``BayesianLogisticRegression()`` on eight data variants x six
seeds x (1%, 10%, 30% random, 10% nearest one row); the weak-prior clustered
deletions of breast_cancer the thresholds were set on; ``SparseGPClassifier``
on standardised banknote with large-amplitude kernels. Rules are chosen on
breast_cancer and banknote (``choice``) and reported separately on digits
3-vs-8, wine, iris and a sparse GP with another kernel, inducing points and
rows (``held out``).

Run: ``OPENBLAS_NUM_THREADS=1 python benchmarks/bench_laplace_check.py`` from
the repository root (a few minutes).
"""

import copy
import sys
import warnings
from pathlib import Path

import numpy as np
from sklearn.datasets import load_breast_cancer, load_digits, load_iris, load_wine
from sklearn.gaussian_process.kernels import RBF
from sklearn.gaussian_process.kernels import ConstantKernel as C
from sklearn.preprocessing import StandardScaler

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import environment, table  # noqa: E402

from sklunlearn.datasets import load_banknote  # noqa: E402
from sklunlearn.gaussian_process import SparseGPClassifier  # noqa: E402
from sklunlearn.linear_model import BayesianLogisticRegression  # noqa: E402
from sklunlearn.unlearning import _laplace  # noqa: E402
from sklunlearn.unlearning._checks import (  # noqa: E402
    COVARIANCE_PER_MOVE,
    MEAN_RELINEARISATION,
    NEWTON_DECREMENT,
)

HELD_OUT = ("digits38", "wine", "iris", "SGPC")
_OVERSHOOT = "removed more curvature"


def _variants():
    """The tester's eight data variants: name, X, y."""
    Xb, yb = load_breast_cancer(return_X_y=True)
    Xn, yn = load_banknote(return_X_y=True)
    Xd, yd = load_digits(return_X_y=True)
    three_eight = (yd == 3) | (yd == 8)
    Xd, yd = Xd[three_eight], yd[three_eight]
    scaled = StandardScaler().fit_transform
    return [
        ("breast_cancer raw", Xb, yb),
        ("breast_cancer std", scaled(Xb), yb),
        ("banknote raw", Xn, yn),
        ("banknote std", scaled(Xn), yn),
        ("digits38 raw", Xd, yd),
        ("digits38 std", scaled(Xd), yd),
        ("wine raw", *load_wine(return_X_y=True)),
        ("iris raw", *load_iris(return_X_y=True)),
    ]


def _nearest(X, centre, k):
    return np.sort(np.argsort(((X - centre) ** 2).sum(axis=1))[:k])


def cases():
    """(data, setting, estimator, X, y, forgotten rows)."""
    for name, X, y in _variants():
        n = len(y)
        for seed in range(6):
            rng = np.random.RandomState(200 + seed)
            for fraction in (0.01, 0.1, 0.3, "knn"):
                if fraction == "knn":
                    forget = _nearest(X, X[rng.randint(n)], int(0.1 * n))
                else:
                    forget = rng.choice(n, max(1, int(fraction * n)), replace=False)
                setting = f"alpha=1 {fraction}"
                yield name, setting, BayesianLogisticRegression(), X, y, np.sort(forget)
    X, y = load_breast_cancer(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    for alpha in (0.01, 0.03, 0.1):
        for fraction in (0.1, 0.3, 0.5):
            for seed in range(3):
                centre = X[np.random.default_rng(seed).integers(len(y))]
                forget = _nearest(X, centre, int(fraction * len(y)))
                setting = f"alpha={alpha} knn {fraction}"
                yield (
                    "breast_cancer std",
                    setting,
                    BayesianLogisticRegression(alpha=alpha),
                    X,
                    y,
                    forget,
                )
        forget = _nearest(X, X[136], 56)
        setting = f"alpha={alpha} knn row 136"
        yield (
            "breast_cancer std",
            setting,
            BayesianLogisticRegression(alpha=alpha),
            X,
            y,
            forget,
        )
    X, y = load_banknote(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    for kernel, label in (
        (C(193.0**2) * RBF(3.55), "C(193^2)RBF(3.55)"),
        (C(100.0) * RBF(1.0), "C(100)RBF(1)"),
    ):
        for seed in range(6):
            rng = np.random.RandomState(seed)
            chosen = rng.choice(len(y), 50, replace=False)
            inducing = X[chosen] + 0.01
            for fraction in (0.01, 0.1):
                forget = np.sort(
                    rng.choice(len(y), max(1, int(fraction * len(y))), replace=False)
                )
                estimator = SparseGPClassifier(kernel=kernel, inducing_points=inducing)
                yield "banknote std", f"SGPC {label} {fraction}", estimator, X, y, forget
    # Held out: another large-amplitude kernel, other inducing points and rows.
    kernel = C(50.0**2) * RBF(2.0)
    for seed in range(6, 12):
        rng = np.random.RandomState(seed)
        inducing = X[rng.choice(len(y), 40, replace=False)] + 0.01
        for fraction in (0.01, 0.1, 0.3):
            forget = np.sort(rng.choice(len(y), int(fraction * len(y)), replace=False))
            estimator = SparseGPClassifier(kernel=kernel, inducing_points=inducing)
            yield "SGPC held out", f"C(50^2)RBF(2) {fraction}", estimator, X, y, forget


def _posteriors(est):
    found = getattr(est, "whitened_posterior_", None)
    found = est.posterior_ if found is None else found
    return found if isinstance(found, list) else [found]


def _kl(a, b):
    return sum(
        p.kl_divergence(q) for p, q in zip(_posteriors(a), _posteriors(b), strict=True)
    )


class _Recorder:
    """Runs the check on every step (no bounds, no skip) and keeps its measures."""

    def __init__(self):
        self.check = _laplace.linearisation_check
        self.calls = []

    def __call__(self, model, X, y, weights, before, after, terms, union=None, **kw):
        found = self.check(model, X, y, weights, before, after, terms, union, **kw)
        delta = after.mean - before.mean
        self.calls.append(
            {
                "mean": found[0],
                "covariance": found[1],
                "move": float(np.sqrt(max(delta @ before.precision @ delta, 0.0))),
                "step_kl": float(before.kl_divergence(after)),
                "decrement": float(after.mahalanobis(before.mean)),
            }
        )
        return found

    def __enter__(self):
        _laplace.linearisation_check = self
        self.bounds = _laplace.linearisation_bounds
        _laplace.linearisation_bounds = lambda *args, **kwargs: None
        return self

    def __exit__(self, *exc):
        _laplace.linearisation_check = self.check
        _laplace.linearisation_bounds = self.bounds


def measure(estimator, X, y, forget):
    """KL ratio against retraining and the check's measures (worst class)."""
    keep = np.setdiff1d(np.arange(len(y)), forget)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        full = copy.deepcopy(estimator).fit(X, y)
        retrained = copy.deepcopy(estimator).fit(X[keep], y[keep])
        forgotten = copy.deepcopy(full)
        with _Recorder() as recorder:
            forgotten.partial_unfit(X[forget], y[forget])
    calls = recorder.calls
    return {
        "ratio": _kl(forgotten, retrained) / _kl(full, retrained),
        "nothing": _kl(full, retrained),
        "overshoot": any(_OVERSHOOT in m for m in forgotten.forget_report_.warnings),
        "mean": max(c["mean"] for c in calls),
        "covariance": max(c["covariance"] for c in calls),
        "move": max(c["move"] for c in calls),
        "step_kl": max(c["step_kl"] for c in calls),
        "decrement": max(c["decrement"] for c in calls),
        "weighted": max(c["covariance"] * min(1.0, c["move"]) for c in calls),
        "per_move": max(c["covariance"] / min(1.0, c["move"]) for c in calls),
        "d": int(forgotten.n_features_in_),
        "k": len(forget),
    }


def _rule(
    mean=1.0, covariance=0.02, measure="covariance", smallest_move=0.0, decrement=np.inf
):
    def warns(r):
        checked = r["move"] >= smallest_move
        judged = r["mean"] > mean or r[measure] > covariance or r["decrement"] > decrement
        return r["overshoot"] or (checked and judged)

    return warns


ADOPTED = (
    f"cov > {COVARIANCE_PER_MOVE:g} min(1, move) or decrement > {NEWTON_DECREMENT:g} "
    "(adopted)"
)
RULES = {
    "before: cov > 0.02, moves < 0.1 not checked": _rule(smallest_move=0.1),
    "cov > 0.02, every move checked": _rule(),
    ADOPTED: _rule(
        MEAN_RELINEARISATION, COVARIANCE_PER_MOVE, "per_move", decrement=NEWTON_DECREMENT
    ),
    "cov > 0.08 min(1, move), no decrement": _rule(
        MEAN_RELINEARISATION, COVARIANCE_PER_MOVE, "per_move"
    ),
    "cov > 0.08 min(1, move) or decrement > 1.5": _rule(
        MEAN_RELINEARISATION, COVARIANCE_PER_MOVE, "per_move", decrement=1.5
    ),
    "cov > 0.08 min(1, move) or decrement > 2.5": _rule(
        MEAN_RELINEARISATION, COVARIANCE_PER_MOVE, "per_move", decrement=2.5
    ),
    "cov > 0.03": _rule(covariance=0.03),
    "cov > 0.05": _rule(covariance=0.05),
    "cov > 0.1": _rule(covariance=0.1),
    "mean > 0.5 or cov > 0.02": _rule(mean=0.5),
    "mean > 0.04 or cov > 0.05": _rule(mean=0.04, covariance=0.05),
    "cov x min(1, move) > 0.02": _rule(measure="weighted"),
    "cov x min(1, move) > 0.01": _rule(covariance=0.01, measure="weighted"),
    "cov > 0.05 min(1, move)": _rule(covariance=0.05, measure="per_move"),
    "cov > 0.1 min(1, move)": _rule(covariance=0.1, measure="per_move"),
    "cov > 0.2 min(1, move)": _rule(covariance=0.2, measure="per_move"),
}


def score(records, rule):
    misses = sum(1 for r in records if r["ratio"] >= 1.0 and not rule(r))
    alarms = sum(1 for r in records if r["ratio"] < 0.5 and rule(r))
    warned = sum(1 for r in records if rule(r))
    return misses, alarms, warned


def main():
    print(environment())
    records = []
    for data, setting, estimator, X, y, forget in cases():
        found = measure(estimator, X, y, forget)
        found.update(data=data, setting=setting)
        records.append(found)
    held = [r for r in records if r["data"].split()[0] in HELD_OUT]
    chosen = [r for r in records if r["data"].split()[0] not in HELD_OUT]
    worse = sum(r["ratio"] >= 1.0 for r in records)
    good = sum(r["ratio"] < 0.5 for r in records)
    print(
        f"{len(records)} forgets ({len(chosen)} choice, {len(held)} held out); "
        f"{worse} no better than doing nothing, {good} at ratio < 0.5"
    )
    rows = []
    for name, rule in RULES.items():
        rows.append((name, *score(chosen, rule), *score(held, rule)))
    print(
        table(
            rows,
            (
                "rule",
                "misses (choice)",
                "false alarms (choice)",
                "warned (choice)",
                "misses (held out)",
                "false alarms (held out)",
                "warned (held out)",
            ),
        )
    )
    print("\nForgets no better than doing nothing:")
    worst = [r for r in records if r["ratio"] >= 1.0]
    print(
        table(
            [
                (
                    r["data"],
                    r["setting"],
                    f"{r['ratio']:.3g}",
                    f"{r['move']:.3g}",
                    f"{r['mean']:.3g}",
                    f"{r['covariance']:.3g}",
                    "yes" if RULES[ADOPTED](r) else "no",
                )
                for r in worst
            ],
            (
                "data",
                "setting",
                "KL ratio",
                "move",
                "mean",
                "covariance",
                "warns (adopted)",
            ),
        )
    )
    return records


class _Unchecked:
    """Switches the check off, as the skip of moves below 0.1 deviations did."""

    def __enter__(self):
        self.bounds = _laplace.linearisation_bounds
        _laplace.linearisation_bounds = lambda *args: (np.nan, np.nan, None)

    def __exit__(self, *exc):
        _laplace.linearisation_bounds = self.bounds


def _speed_cases():
    """(label, fitted estimator, rows, targets) of small forgets."""
    from sklunlearn.neural_network import BayesianMLPRegressor

    for d in (10, 50, 100, 400):
        n = 20_000 + 5 * d
        rng = np.random.RandomState(0)
        X = rng.randn(n, d)
        y = (X @ rng.randn(d) / np.sqrt(d) + rng.logistic(size=n) > 0).astype(int)
        est = BayesianLogisticRegression().fit(X, y)
        for k in (1, 10):
            yield f"BayesianLogisticRegression d={d + 1}", est, X[:k], y[:k]
    X, y = load_banknote(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    Z = X[np.random.RandomState(0).choice(len(y), 50, replace=False)] + 0.01
    for kernel, label in ((C(193.0**2) * RBF(3.55), "C(193^2)"), (RBF(1.0), "RBF(1)")):
        est = SparseGPClassifier(kernel=kernel, inducing_points=Z).fit(X, y)
        for k in (1, 10):
            yield f"SparseGPClassifier {label}, 50 inducing", est, X[:k], y[:k]
    rng = np.random.RandomState(0)
    X = rng.uniform(-3, 3, (300, 1))
    y = np.sin(2 * X[:, 0]) + 0.1 * rng.randn(300)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = BayesianMLPRegressor(hidden_layer_sizes=(20,), random_state=0).fit(X, y)
    for k in (1, 10):
        yield "BayesianMLPRegressor (20,)", est, X[:k], y[:k]


def speed(rounds=15):
    """Forget time with every step checked over the check switched off (best of rounds).

    A forget whose move is at least 0.1 was checked before too; the ratio
    matters for the others, which the skip did not check.
    """
    import time

    rows = []
    for label, est, X, y in _speed_cases():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            probe = copy.deepcopy(est)
            probe.partial_unfit(X, y)
        moved = probe.forget_report_.moved
        times = {True: [], False: []}
        for _ in range(rounds):
            for checked, spent in times.items():
                copied = copy.deepcopy(est)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    if checked:
                        start = time.perf_counter()
                        copied.partial_unfit(X, y)
                    else:
                        with _Unchecked():
                            start = time.perf_counter()
                            copied.partial_unfit(X, y)
                    spent.append(time.perf_counter() - start)
        on, off = min(times[True]), min(times[False])
        skipped = "yes" if moved < 0.1 else "no"
        rows.append(
            (
                label,
                len(X),
                f"{moved:.3g}",
                skipped,
                f"{1e3 * off:.3g}",
                f"{1e3 * on:.3g}",
                f"{on / off:.2f}",
            )
        )
    print(
        table(
            rows,
            (
                "estimator",
                "k",
                "move",
                "skipped before",
                "check off ms",
                "checked ms",
                "ratio",
            ),
        )
    )


if __name__ == "__main__":
    main()
    print("\nForget time, every step checked against the check switched off:")
    speed()
