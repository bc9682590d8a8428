"""VBU's banknote experiment with Bayesian logistic regression, reproduced.

Nguyen, Low & Jaillet (2020), "Variational Bayesian Unlearning", Sec. 5:
banknote authentication data shuffled with seed 0, the last 412 rows erased
(|D_r| = 960), prior N(0, 100^2 I) on the 4 weights and the bias
(``alpha=1e-4``), raw features. For each full-data inference ('vi', as in
the paper, and 'laplace') and each unlearning_lambda in
{0, 1e-9, 1e-5, 1e-3, 0.1, 0.5}: the mean predictive
KL(unlearned || retrained) over the erased rows and over the remaining rows,
for 'eubo', 'rkl', 'laplace' (which has no lambda) and doing nothing, and
KL(q_unlearned || q_retrained) between the Gaussian posteriors.

    python benchmarks/bench_vbu_banknote.py [--plot PATH]

Writes the table to stdout and the figure to ``benchmarks/vbu_banknote.png``.
"""

import argparse
import copy
import time
import warnings
from pathlib import Path

import numpy as np

from sklunlearn.datasets import vbu_banknote_split
from sklunlearn.exceptions import UnlearningWarning
from sklunlearn.linear_model import BayesianLogisticRegression
from sklunlearn.metrics import predictive_kl

LAMBDAS = (0.0, 1e-9, 1e-5, 1e-3, 0.1, 0.5)
METHODS = ("eubo", "rkl", "laplace")
INFERENCES = ("vi", "laplace")
ALPHA = 1e-4  # prior N(0, 100^2 I)


def run():
    """Rows (inference, method, lambda, kl_erased, kl_remaining, seconds, warned, mass,
    posterior_kl)."""
    X, y, erased = vbu_banknote_split()
    rows = []
    for inference in INFERENCES:
        params = dict(alpha=ALPHA, inference=inference, random_state=0, n_samples=2000)
        full = BayesianLogisticRegression(**params).fit(X, y)
        retrained = BayesianLogisticRegression(**params).fit(X[~erased], y[~erased])
        rows.append(
            (
                inference,
                "do nothing",
                np.nan,
                predictive_kl(full, retrained, X[erased]),
                predictive_kl(full, retrained, X[~erased]),
                0.0,
                False,
                np.nan,
                full.posterior_.kl_divergence(retrained.posterior_),
            )
        )
        for method in METHODS:
            for lambda_ in LAMBDAS if method != "laplace" else (0.0,):
                model = copy.deepcopy(full).set_params(
                    unlearning=method, unlearning_lambda=lambda_
                )
                start = time.perf_counter()
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always", UnlearningWarning)
                    model.partial_unfit(X[erased], y[erased])
                seconds = time.perf_counter() - start
                rows.append(
                    (
                        inference,
                        method,
                        lambda_,
                        predictive_kl(model, retrained, X[erased]),
                        predictive_kl(model, retrained, X[~erased]),
                        seconds,
                        bool(caught),
                        model.unlearning_region_mass_,
                        model.posterior_.kl_divergence(retrained.posterior_),
                    )
                )
    return rows


def format_rows(rows):
    lines = [
        "| inference | method | lambda | region mass | KL erased | KL remaining "
        "| posterior KL | time | warned |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for inference, method, lambda_, erased, remaining, seconds, warned, mass, post in rows:
        lam = "-" if np.isnan(lambda_) else f"{lambda_:g}"
        mass = "-" if np.isnan(mass) else f"{mass:.3g}"
        lines.append(
            f"| {inference} | {method} | {lam} | {mass} | {erased:.3g} | {remaining:.3g} | "
            f"{post:.3g} | {1e3 * seconds:.0f} ms | {'yes' if warned else ''} |"
        )
    return "\n".join(lines)


def plot(rows, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(11, 7), sharex=True)
    positions = np.arange(len(LAMBDAS))
    for col, inference in enumerate(INFERENCES):
        subset = [r for r in rows if r[0] == inference]
        nothing = next(r for r in subset if r[1] == "do nothing")
        laplace = next(r for r in subset if r[1] == "laplace")
        for row, (index, where) in enumerate([(3, "erased"), (4, "remaining")]):
            ax = axes[row, col]
            for method, marker in [("eubo", "o"), ("rkl", "s")]:
                values = [
                    next(r for r in subset if r[1] == method and r[2] == lam)[index]
                    for lam in LAMBDAS
                ]
                ax.plot(positions, values, marker=marker, label=method)
            ax.axhline(laplace[index], color="C2", linestyle="--", label="laplace")
            ax.axhline(nothing[index], color="k", linestyle=":", label="do nothing")
            ax.set_yscale("log")
            ax.set_title(f"inference={inference!r}: mean KL on {where} rows", fontsize=9)
            ax.set_xticks(positions, [f"{lam:g}" for lam in LAMBDAS])
            if row == 1:
                ax.set_xlabel("unlearning_lambda")
            if col == 0:
                ax.set_ylabel("KL(unlearned || retrained), nats")
    axes[0, 0].legend(fontsize=8)
    fig.suptitle(
        "VBU banknote: erase 412 of 1372 rows, logistic regression, prior N(0, 100^2 I)"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--plot", default=str(Path(__file__).resolve().parent / "vbu_banknote.png")
    )
    arguments = parser.parse_args()
    results = run()
    print(format_rows(results))
    plot(results, arguments.plot)
