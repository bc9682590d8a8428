"""Certified removal (Guo et al. 2020) on digits 3-vs-8, measured in one run.

Guo et al.'s MNIST settings: rows scaled to unit norm, no intercept,
``lambda = 1e-3`` per row (``alpha = 1e-3 * n``), ``sigma = 10``,
``epsilon = 1``, ``delta = 1e-4``; a stratified 75/25 split.

1. Removals supported before the budget runs out (single rows in random order,
   over seeds): by ``certificate_.residual_bound`` (what ``valid`` uses: Guo et
   al.'s terms plus the curvature drift of the stored precision), by its Newton
   part alone (Guo et al.'s accounting, which recomputes the Hessian), and
   until the stored precision first needs flooring.
   Also at ``lambda = 1e-2`` and ``1e-1`` (sigma = 10).
2. Test accuracy against ``removal_noise`` (sigma), mean over seeds.
3. The accumulated bounds against the true gradient residual of the perturbed
   objective on the remaining rows (``b`` recomputed from the seed).
4. Time per single-row removal against a refit on the remaining rows.

Run: ``python benchmarks/bench_certified.py`` from the repository root.
"""

import sys
import time
import warnings
from pathlib import Path

import numpy as np
from scipy.special import expit
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import normalize

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import environment, table  # noqa: E402

from sklunlearn.exceptions import UnlearningWarning  # noqa: E402
from sklunlearn.linear_model import BayesianLogisticRegression  # noqa: E402

SIGMA, EPSILON, DELTA, LAMBDA = 10.0, 1.0, 1e-4, 1e-3
SEEDS = range(5)
CHECKPOINTS = (1, 10, 25, 50, 75, 100)


def load():
    X, y = load_digits(return_X_y=True)
    keep = (y == 3) | (y == 8)
    X, y = normalize(X[keep]), (y[keep] == 8).astype(int)
    return train_test_split(X, y, test_size=0.25, stratify=y, random_state=0)


def estimator(n, sigma=SIGMA, seed=0, **kwargs):
    return BayesianLogisticRegression(
        alpha=LAMBDA * n,
        fit_intercept=False,
        removal_noise=sigma,
        removal_epsilon=EPSILON,
        removal_delta=DELTA,
        random_state=seed,
        **kwargs,
    )


def residual(X, y, theta, alpha, b):
    """``||grad (sum_i loss_i + alpha/2 ||theta||^2 + b' theta)||`` on the rows."""
    return float(np.linalg.norm(X.T @ (expit(X @ theta) - y) + alpha * theta + b))


def supported_removals(X, y, seed, lam):
    """Removals until validity, the full bound, the Newton part and the floor give out."""
    n = X.shape[0]
    est = estimator(n, seed=seed, ledger=False).set_params(alpha=lam * n).fit(X, y)
    budget = est.certificate_.budget
    full = newton = floored = valid = None
    order = np.random.RandomState(seed).permutation(n)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnlearningWarning)
        for count, i in enumerate(order[: n // 2], start=1):
            est.partial_unfit(X[i : i + 1], y[i : i + 1])
            certificate = est.certificate_
            if full is None and certificate.residual_bound > budget:
                full = count - 1
            if newton is None and certificate.newton_bound > budget:
                newton = count - 1
            if floored is None and "floored" in (certificate.reason or ""):
                floored = count - 1
            if valid is None and not certificate.valid:
                valid = count - 1
            if None not in (full, newton, floored, valid):
                break
    return valid, full, newton, floored


def _summary(column, cap):
    """Mean and range of counts; NaN means the count passed ``cap`` removals."""
    if np.isnan(column).all():
        return f"> {cap}", f"> {cap}"
    if np.isnan(column).any():
        return f"> {np.nanmin(column):.0f}", f"{np.nanmin(column):.0f}-> {cap}"
    return f"{np.mean(column):.1f}", f"{column.min():.0f}-{column.max():.0f}"


def accuracy_table(X, y, X_test, y_test):
    rows = []
    for sigma in (0.0, 0.1, 1.0, 10.0, 100.0):
        scores = [
            estimator(X.shape[0], sigma, seed).fit(X, y).score(X_test, y_test)
            for seed in SEEDS
        ]
        rows.append([f"{sigma:g}", f"{np.mean(scores):.4f}", f"{np.std(scores):.4f}"])
    return table(rows, ["sigma", "test accuracy (mean)", "std over 5 seeds"])


def bound_table(X, y):
    n, seed = X.shape[0], 0
    alpha = LAMBDA * n
    b = np.random.RandomState(seed).normal(0.0, SIGMA, size=(1, X.shape[1]))[0]
    est = estimator(n, seed=seed, ledger=False).fit(X, y)
    keep = np.ones(n, dtype=bool)
    rows = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnlearningWarning)
        for count, i in enumerate(np.random.RandomState(seed).permutation(n), start=1):
            est.partial_unfit(X[i : i + 1], y[i : i + 1])
            keep[i] = False
            if count in CHECKPOINTS:
                c = est.certificate_
                true = residual(X[keep], y[keep], est.coef_[0], alpha, b)
                rows.append(
                    [
                        count,
                        f"{true:.3g}",
                        f"{c.newton_bound:.3g}",
                        f"{c.residual_bound:.3g}",
                        f"{c.residual_bound / true:.3g}",
                        "floored" if "floored" in (c.reason or "") else "",
                    ]
                )
            if count == CHECKPOINTS[-1]:
                break
    headers = [
        "removals",
        "true residual",
        "Newton part",
        "residual_bound",
        "bound / true",
        "note",
    ]
    return table(rows, headers)


def timing_table(X, y):
    n = X.shape[0]
    est = estimator(n).fit(X, y)
    order = np.random.RandomState(0).permutation(n)[:30]
    forget, refit = [], []
    keep = np.ones(n, dtype=bool)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnlearningWarning)
        for i in order:
            start = time.perf_counter()
            est.partial_unfit(X[i : i + 1], y[i : i + 1])
            forget.append(time.perf_counter() - start)
            keep[i] = False
            start = time.perf_counter()
            estimator(n).fit(X[keep], y[keep])
            refit.append(time.perf_counter() - start)
    forget, refit = np.median(forget), np.median(refit)
    rows = [
        ["partial_unfit (one row, certificate included)", f"{1e3 * forget:.2f}", "1.0"],
        ["refit on the remaining rows", f"{1e3 * refit:.2f}", f"{refit / forget:.1f}"],
    ]
    return table(rows, ["step", "median ms (30 removals)", "ratio"])


def main():
    X, X_test, y, y_test = load()
    print(environment())
    print(f"digits 3-vs-8: {X.shape[0]} training rows, {X_test.shape[0]} test rows, d=64")
    est = estimator(X.shape[0]).fit(X, y)
    print(f"budget sigma*epsilon/c = {est.certificate_.budget:.4g}\n")
    rows = []
    for lam in (LAMBDA, 1e-2, 1e-1):
        counts = np.array([supported_removals(X, y, s, lam) for s in SEEDS], dtype=float)
        names = [
            "certificate_.valid",
            "residual_bound within budget",
            "Newton part alone within budget",
            "precision not floored",
        ]
        for name, column in zip(names, counts.T, strict=True):
            rows.append([f"{lam:g}", name, *_summary(column, X.shape[0] // 2)])
    headers = ["lambda per row", "removals supported by", "mean over 5 orders", "range"]
    print(table(rows, headers), "\n")
    print(accuracy_table(X, y, X_test, y_test), "\n")
    print(bound_table(X, y), "\n")
    print(timing_table(X, y))


if __name__ == "__main__":
    main()
