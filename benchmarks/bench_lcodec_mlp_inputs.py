"""Does FOCI's choice of hidden units beat chance when the inputs have more dimensions?

The hypothesis tested. L-CODEC's perturbed copies ``x + s eps`` of the
forgotten rows vary only along the ``d`` input dimensions, so about ``d``
generic hidden units' activations locally determine a copy (and with it its
loss); once FOCI holds such a set, every other unit is conditionally
independent of the loss and FOCI stops. Predictions: (1) FOCI selects at most
about ``d`` units; (2) the first pick beats a random unit, the later ones do
not; (3) with more inputs the selection has more room and may beat random.

Settings, each a ``BayesianMLPRegressor(hidden_layer_sizes=(200, 100),
curvature='diag')`` (tanh, noise variance fixed) fitted once by L-BFGS:

- synthetic, ``d`` in {8, 32, 64} standard normal features: the target of
  ``bench_lcodec_mlp.make_data`` (it uses the first six), the other features
  pure noise the target does not depend on (``d = 8`` is ``make_data`` itself);
  noise variance fixed at its true 0.01;
- digits (scikit-learn's ``load_digits``, 1,797 8x8 images): the centre pixel
  (row 4, column 4) predicted from the other 63, all standardised on the
  training rows (pixel imputation: a real regression with many correlated
  inputs); noise variance fixed at the mean squared residual of least squares
  on the training rows.

Per setting, seeds x (1% random, 1% clustered) forget sets
(``bench_lcodec_mlp.forget_sets``), the residual of ``bench_lcodec_mlp.py``
(the remaining rows' gradient in the objective whose mode the fitted weights
are) after the diagonal block step (``bench_lcodec_mlp_blocks.ForgetSet``: the
units' incoming weights and the output layer, as the package's block), as
ratios to random units (below 1: better than chance):

- ``all picks``: the units the package's L-CODEC selects against as many random
  units (mean of 5 draws);
- ``first pick``: the first selected unit alone against a random single unit
  (mean of 20 draws);
- ``later picks, given the first``: all selected units against the first pick
  plus as many random others as FOCI picked after it (mean of 5 draws; sets
  where FOCI selects one unit are left out).

The mechanism, on copies drawn here as the package draws them (1,000 per set,
scale 0.1, activations and loss, FOCI screened as the package screens): the
number of units FOCI selects, and the Azadkia-Chatterjee coefficient
``T_n(loss, units)`` of the selected units, of as many random units (mean of 3
draws), of all 300 units and of the copies' inputs (the loss is an exact
function of those: their ``T_n`` is how much dependence 1,000 copies can show).
If the hypothesis holds, FOCI stops once the selected units' ``T_n`` reaches
the inputs', and as many random units reach about as high. Also the share of
the copies' loss variance that lies between the rows copied (the rest is the
perturbation's, within a row) and the fraction of copies whose nearest
neighbour in input space is a copy of the same row.

Last, on digits, the issue's full comparison (``bench_lcodec_mlp.forget_all``:
L-CODEC, random subset, full step, doing nothing, local retrain; residual,
predictive KL against the local retrain, time, held-out RMSE) over 3 seeds.

Run: ``python benchmarks/bench_lcodec_mlp_inputs.py [n_train] [max_iter] [n_seeds]
[digits_iter]`` from the repository root (defaults 2,000 synthetic rows, 200
L-BFGS iterations per synthetic fit and for each local retrain, 8 seeds, 1,000
iterations for the digits fit, which uses 1,400 of its rows for training: a
fit nearer its mode makes the local retrain a truer reference).
"""

import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import environment, table  # noqa: E402
from bench_lcodec_mlp import (  # noqa: E402
    NOISE,
    beats_random,
    forget_sets,
    make_data,
    objective_gradient,
    one_set,
    report,
)
from bench_lcodec_mlp_blocks import (  # noqa: E402
    ForgetSet,
    package_selection,
    summary,
    unit_quantities,
)
from sklearn.datasets import load_digits  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402

from sklunlearn._numba.foci import nearest_neighbours  # noqa: E402
from sklunlearn.neural_network import BayesianMLPRegressor  # noqa: E402
from sklunlearn.unlearning._lcodec import (  # noqa: E402
    SCREENED_CANDIDATES,
    conditional_dependence,
    foci,
)

DIMENSIONS = (8, 32, 64)
N_DIGITS_TRAIN = 1400
CENTRE_PIXEL = 4 * 8 + 4
N_DRAWS = 5
N_SINGLE = 20
N_DEPENDENCE_DRAWS = 3
N_COPIES, SCALE = 1000, 0.1  # the package's defaults
N_FULL_SEEDS = 3
CHECKS = ("all picks", "first pick", "later picks, given the first")


def synthetic(n, d):
    """``make_data(n)`` with ``d - 8`` extra standard normal features the target ignores."""
    X, y = make_data(n)
    extra = np.random.RandomState(1).randn(n, d - X.shape[1])
    return np.hstack([X, extra]), y


def digits():
    """Training and held-out rows: the centre pixel from the other 63, standardised."""
    pixels = load_digits().data
    order = np.random.RandomState(0).permutation(pixels.shape[0])
    pixels = pixels[order]
    X, y = np.delete(pixels, CENTRE_PIXEL, axis=1), pixels[:, CENTRE_PIXEL]
    train = slice(0, N_DIGITS_TRAIN)
    centre, spread = X[train].mean(axis=0), X[train].std(axis=0)
    X = (X - centre) / np.where(spread > 0, spread, 1.0)  # constant pixels stay 0
    y = (y - y[train].mean()) / y[train].std()
    return X[train], y[train], X[N_DIGITS_TRAIN:], y[N_DIGITS_TRAIN:]


def least_squares_noise(X, y):
    """Mean squared residual of least squares with an intercept on the rows."""
    design = np.hstack([X, np.ones((X.shape[0], 1))])
    coef = np.linalg.lstsq(design, y, rcond=None)[0]
    return float(np.mean((y - design @ coef) ** 2))


def fit_network(X, y, noise_variance, max_iter):
    """The fitted network (22,001+ weights, diagonal posterior) and its fit time."""
    est = BayesianMLPRegressor(
        hidden_layer_sizes=(200, 100), curvature="diag", noise_variance=noise_variance,
        max_iter=max_iter, tol=1e-6, random_state=0, ledger=False,
    )  # fmt: skip
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # see bench_lcodec_mlp.py
        est.fit(X, y)
    return est, time.perf_counter() - start


def pick_ratios(fs, selected):
    """The three ratios of :data:`CHECKS` for one set (NaN where not defined)."""
    all_picks = fs.residual(selected) / fs.random(len(selected), draws=N_DRAWS)
    first = fs.residual(selected[:1]) / fs.random(1, draws=N_SINGLE)
    if len(selected) < 2:
        return all_picks, first, np.nan
    rng = np.random.RandomState(2000 + fs.seed)
    others = np.setdiff1d(np.arange(len(fs.groups)), selected[:1])
    given_first = [
        fs.residual(
            np.append(selected[:1], rng.choice(others, len(selected) - 1, replace=False))
        )
        for _ in range(N_DRAWS)
    ]
    return all_picks, first, fs.residual(selected) / np.mean(given_first)


def dependence(fs, theta):
    """FOCI on copies drawn here: units selected, ``T_n`` of them and of references.

    The references: as many random units, all units, and the copies' inputs
    (of which the loss is an exact function). Also the share of the loss's
    variance between the rows copied (the rest is the perturbation's), and
    how many copies have a copy of the same row as their nearest neighbour.
    """
    rng = np.random.default_rng(fs.seed)
    source = np.arange(N_COPIES) % fs.Xf.shape[0]
    inputs = fs.Xf[source] + SCALE * rng.standard_normal((N_COPIES, fs.Xf.shape[1]))
    quantities, responses = unit_quantities(fs.predictor, theta, inputs, fs.yf[source])
    activations, loss = quantities["activation"], responses["loss"]
    row_means = np.bincount(source, loss) / np.bincount(source)
    between_rows = np.var(row_means[source]) / np.var(loss)
    same_row = np.mean(source[nearest_neighbours(inputs)] == source)
    units, _ = foci(loss, activations, screen=SCREENED_CANDIDATES)
    if not units:
        return 0, np.nan, np.nan, np.nan, np.nan, between_rows, same_row
    draws = np.random.RandomState(3000 + fs.seed)
    random_units = [
        draws.choice(activations.shape[1], len(units), replace=False)
        for _ in range(N_DEPENDENCE_DRAWS)
    ]
    return (
        len(units),
        conditional_dependence(loss, activations[:, units]),
        np.mean([conditional_dependence(loss, activations[:, r]) for r in random_units]),
        conditional_dependence(loss, activations),
        conditional_dependence(loss, inputs),
        between_rows,
        same_row,
    )


def study(name, est, X, y, n_seeds):
    """Per forget set: ratios, package's units selected, and the dependence check."""
    tilt = objective_gradient(est, X, y)
    theta = est.posterior_.mean
    ratios, selected_counts, checks = [], [], []
    for seed in range(n_seeds):
        for forget in forget_sets(X, seed).values():
            fs = ForgetSet(est, X, y, forget, seed, tilt)
            selected = package_selection(est, fs)
            selected_counts.append(len(selected))
            ratios.append(pick_ratios(fs, selected))
            checks.append(dependence(fs, theta))
    ratios, checks = np.array(ratios), np.array(checks)
    ratio_rows = summary(
        {
            f"{name}: {check}": column[~np.isnan(column)]
            for check, column in zip(CHECKS, ratios.T, strict=True)
        }
    )
    counts = np.array(selected_counts)
    selection_row = (
        name,
        X.shape[1],
        est.posterior_.n_features,
        f"{np.median(counts):g} ({counts.min()} - {counts.max()})",
        f"{np.median(checks[:, 0]):g} ({checks[:, 0].min():g} - {checks[:, 0].max():g})",
        *(f"{np.nanmean(column):.3f}" for column in checks[:, 1:].T),
    )
    return ratio_rows, selection_row


def full_comparison(est, X, y, X_test, y_test, retrain_iter):
    """The issue's comparison (``bench_lcodec_mlp``) on these rows, per forget-set kind."""
    tilt = objective_gradient(est, X, y)
    n_weights = est.posterior_.n_features
    for kind in ("random", "clustered"):
        totals, sizes, wins, ratios = {}, [], [], []
        for seed in range(N_FULL_SEEDS):
            data = (X, y, X_test, y_test)
            rows, size = one_set(est, data, kind, seed, retrain_iter, tilt)
            sizes.append(size)
            for method, row in rows.items():
                totals.setdefault(method, []).append(row)
            random = rows["random subset"]
            ratios.append(
                f"{rows['lcodec'][1] / random[1]:.3f}, {rows['lcodec'][2] / random[2]:.4f}"
            )
            wins.append(beats_random(rows))
        report(kind, totals, sizes, wins, n_weights)
        print(f"L-CODEC / random subset (residual, pred. KL) per seed: {ratios}")


def main():
    n_train = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    max_iter = int(sys.argv[2]) if len(sys.argv) > 2 else 200
    n_seeds = int(sys.argv[3]) if len(sys.argv) > 3 else 8
    digits_iter = int(sys.argv[4]) if len(sys.argv) > 4 else 1000
    print(environment())
    start = time.perf_counter()
    ratio_rows, selection_rows = [], []
    for d in DIMENSIONS:
        X, y = synthetic(n_train, d)
        est, seconds = fit_network(X, y, NOISE**2, max_iter)
        print(f"synthetic d = {d}: {n_train} rows, fit {seconds:.1f} s")
        ratios, selection = study(f"synthetic, d = {d}", est, X, y, n_seeds)
        ratio_rows += ratios
        selection_rows.append(selection)
    X, y, X_test, y_test = digits()
    noise = least_squares_noise(X, y)
    est, seconds = fit_network(X, y, noise, digits_iter)
    gradient = np.linalg.norm(objective_gradient(est, X, y))
    print(
        f"digits: {X.shape[0]} rows, noise variance {noise:.3f}, fit {seconds:.1f} s, "
        f"{est.n_iter_} iterations, final gradient norm {gradient:.3g}"
    )
    ratios, selection = study("digits, centre pixel", est, X, y, n_seeds)
    ratio_rows += ratios
    selection_rows.append(selection)
    print(f"studies in {time.perf_counter() - start:.0f} s")
    print(f"\nunits FOCI selects ({n_seeds} seeds x 2 kinds of forget set)")
    headers = (
        "setting",
        "d",
        "weights",
        "units selected (package)",
        "units selected (copies here)",
        "T_n(loss, selected)",
        "T_n(loss, as many random)",
        "T_n(loss, all units)",
        "T_n(loss, copies' inputs)",
        "loss variance between rows",
        "nearest copy of the same row",
    )
    print(table(selection_rows, headers))
    print("\nresidual, selected units / random units")
    print(table(ratio_rows, ("setting: check", "below random", "median ratio", "range")))
    print(f"\ndigits, the issue's comparison ({N_FULL_SEEDS} seeds)")
    full_comparison(est, X, y, X_test, y_test, max_iter)


if __name__ == "__main__":
    main()
