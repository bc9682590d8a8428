"""VBU's sparse GP classification experiment on the moon data, reproduced.

Nguyen, Low & Jaillet (2020), "Variational Bayesian Unlearning", sparse GP
classifier on the synthetic moon data:

- ``make_moons(100, noise=0.2, random_state=0)`` for training;
- 20 inducing inputs ``make_moons(20, noise=0.2, random_state=0)``, fixed;
- fixed squared-exponential ARD kernel, signal variance 4.7432, inverse
  squared length scales 2.4232 and 1.8230;
- q(u|D) fitted by Gaussian variational inference (``inference='vi'``);
- erase the 20 points with the largest first coordinate;
- for unlearning_lambda in {0.5, 0.1, 1e-3, 1e-5, 1e-9, 0}: the mean
  predictive KL(unlearned || retrained) over the erased and over the
  remaining points, for 'eubo', 'rkl', 'laplace' (which has no lambda) and
  doing nothing (the full model).

    python benchmarks/bench_vbu_moons.py [--plot PATH]

Writes the table to stdout and the figure to ``benchmarks/vbu_moons.png``.
"""

import argparse
import copy
import time
import warnings
from pathlib import Path

import numpy as np
from sklearn.datasets import make_moons
from sklearn.gaussian_process.kernels import RBF
from sklearn.gaussian_process.kernels import ConstantKernel as C

from sklunlearn.exceptions import UnlearningWarning
from sklunlearn.gaussian_process import SparseGPClassifier
from sklunlearn.metrics import predictive_kl

LAMBDAS = (0.5, 0.1, 1e-3, 1e-5, 1e-9, 0.0)
METHODS = ("eubo", "rkl", "laplace")


def vbu_moons():
    """Data, inducing inputs, kernel and erased mask of the experiment."""
    X, y = make_moons(100, noise=0.2, random_state=0)
    Z = make_moons(20, noise=0.2, random_state=0)[0]
    inverse_squared_length_scales = np.array([2.4232, 1.8230])
    kernel = C(4.7432, constant_value_bounds="fixed") * RBF(
        1.0 / np.sqrt(inverse_squared_length_scales), length_scale_bounds="fixed"
    )
    erased = np.zeros(len(y), dtype=bool)
    erased[np.argsort(X[:, 0])[-20:]] = True
    return X, y, Z, kernel, erased


def run(random_state=0):
    X, y, Z, kernel, erased = vbu_moons()

    def model(**params):
        return SparseGPClassifier(
            kernel=kernel,
            inducing_points=Z,
            inference="vi",
            random_state=random_state,
            **params,
        )

    full = model().fit(X, y)
    retrained = model().fit(X[~erased], y[~erased])

    def kls(estimator):
        return (
            predictive_kl(estimator, retrained, X[erased]),
            predictive_kl(estimator, retrained, X[~erased]),
        )

    rows = [("do nothing", None, *kls(full), 0.0)]
    unlearned = {}
    for method in METHODS:
        for lam in LAMBDAS if method != "laplace" else (None,):
            est = copy.deepcopy(full).set_params(
                unlearning=method, unlearning_lambda=lam or 0.0
            )
            start = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UnlearningWarning)
                est.partial_unfit(X[erased], y[erased])
            seconds = time.perf_counter() - start
            rows.append((method, lam, *kls(est), seconds))
            unlearned[(method, lam)] = est
    return rows, (X, y, Z, erased, full, retrained, unlearned)


def format_table(rows):
    header = (
        f"{'method':<11} {'lambda':>8} {'KL erased':>11} {'KL remaining':>13} "
        f"{'seconds':>8}"
    )
    lines = [header, "-" * len(header)]
    for method, lam, kl_erased, kl_remaining, seconds in rows:
        lam_text = "-" if lam is None else f"{lam:g}"
        lines.append(
            f"{method:<11} {lam_text:>8} {kl_erased:>11.4g} "
            f"{kl_remaining:>13.4g} {seconds:>8.3f}"
        )
    return "\n".join(lines)


def plot(rows, models, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    X, y, Z, erased, full, retrained, unlearned = models
    fig, axes = plt.subplots(1, 5, figsize=(22, 4.2))
    positions = np.arange(len(LAMBDAS))
    labels = [f"{lam:g}" for lam in LAMBDAS]
    nothing = rows[0]
    for ax, column, title in (
        (axes[0], 2, "erased points"),
        (axes[1], 3, "remaining points"),
    ):
        for method, marker in (("eubo", "o"), ("rkl", "s")):
            values = [r[column] for r in rows if r[0] == method]
            ax.plot(positions, values, marker=marker, label=method.upper())
        laplace = [r[column] for r in rows if r[0] == "laplace"][0]
        ax.axhline(laplace, color="tab:green", linestyle="--", label="Laplace")
        ax.axhline(nothing[column], color="gray", linestyle=":", label="do nothing")
        ax.set_yscale("log")
        ax.set_xticks(positions, labels)
        ax.set_xlabel("unlearning_lambda")
        ax.set_ylabel("mean KL(unlearned || retrained)")
        ax.set_title(f"predictive KL, {title}")
        ax.legend(fontsize=8)

    grid = np.linspace(X.min(0) - 0.5, X.max(0) + 0.5, 120)
    xx, yy = np.meshgrid(grid[:, 0], grid[:, 1])
    points = np.column_stack([xx.ravel(), yy.ravel()])
    best_lambda = min((r for r in rows if r[0] == "eubo"), key=lambda r: r[2])[1]
    panels = (
        (full, "full data"),
        (retrained, "retrained on remaining"),
        (unlearned[("eubo", best_lambda)], f"EUBO, lambda={best_lambda:g}"),
    )
    for ax, (estimator, title) in zip(axes[2:], panels, strict=True):
        proba = estimator.predict_proba(points)[:, 1].reshape(xx.shape)
        ax.contourf(xx, yy, proba, levels=np.linspace(0, 1, 11), cmap="RdBu_r", alpha=0.6)
        ax.contour(xx, yy, proba, levels=[0.5], colors="k")
        ax.scatter(*X[~erased].T, c=y[~erased], cmap="RdBu_r", edgecolors="k", s=18)
        ax.scatter(
            *X[erased].T,
            c=y[erased],
            cmap="RdBu_r",
            marker="X",
            edgecolors="k",
            s=50,
            label="erased",
        )
        ax.scatter(*Z.T, marker="^", c="gold", edgecolors="k", s=40, label="inducing")
        ax.set_title(f"p(y=1|x): {title}")
        ax.legend(fontsize=7, loc="lower left")
    fig.suptitle("VBU moon experiment: sparse GP classifier, 20 points erased")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plot", default=str(Path(__file__).with_name("vbu_moons.png")))
    args = parser.parse_args()
    rows, models = run()
    print(format_table(rows))
    plot(rows, models, args.plot)
    print(f"figure written to {args.plot}")
