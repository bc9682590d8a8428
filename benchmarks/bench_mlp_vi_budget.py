"""BayesianMLPRegressor(inference='vi'): the variational fit's iteration budget and draws.

Run: ``python benchmarks/bench_mlp_vi_budget.py [n_seeds] [n_kl_seeds]`` from the
repository root (defaults 3 and 2; tens of minutes on a shared 2-core machine).
Prints the tables of benchmarks/README.md, "Variational network fits".

**Convergence and time.** Default fits (every parameter at its default but
``hidden_layer_sizes``, ``curvature``, ``inference='vi'``, ``random_state`` and
``vi_n_samples``) on three data sets, each seed one initialisation and one set of
draws. Each variational fit runs with an unbounded budget (``vi_max_iter`` =
``UNBOUNDED``); L-BFGS-B's path (``'diag'``) and the fixed point's (``'ggn'``)
do not depend on the budget, so a fit that needs ``k`` iterations converges
under every budget of at least ``k`` and gives the same posterior. Its variational
iterations are its ``n_iter_`` less that of the Laplace fit with the same seed
(the same MAP); times are wall times of the whole fit (MAP included), the
Laplace fit's measured just before it.

**Forgetting.** KL ratio = KL(unlearned || local retrain) / KL(full || local
retrain), the definition of ``bench_mlp.py``: the local retrain is the remaining
rows' fit started from the fitted weights with the same posterior approximation
and draws, to convergence (``max_iter=3000, tol=1e-6``, an unbounded
``vi_max_iter``), the forget the default ``partial_unfit`` (``'diag'``: the
diagonal divide-out). Below 1 is better than doing nothing. Candidates: the
budget the variational fit shared with the MAP before it had its own
(``vi_max_iter=200``, ``max_iter``'s default; fits stop there) and the default
``vi_max_iter`` with 32 and 128 draws; ``'diag'`` only, as ``'ggn'``'s fixed
point uses no draws and converges in a few iterations.

Data, X and y standardised: diabetes (scikit-learn, 442 rows, 10 features);
banknote (the package's copy of the UCI set: the wavelet curtosis regressed on
variance, skewness and entropy, 600 rows drawn with seed 0); 1-D (``sin(2x) +
x / 2`` with noise 0.1, 300 rows on [-3, 3], as ``bench_mlp.py``).
"""

import copy
import sys
import time
import warnings

import numpy as np
from _common import environment, table
from sklearn.datasets import load_diabetes
from sklearn.exceptions import ConvergenceWarning
from sklearn.preprocessing import StandardScaler

from sklunlearn.datasets import load_banknote
from sklunlearn.exceptions import UnlearningWarning
from sklunlearn.neural_network import BayesianMLPRegressor

HIDDEN = ((5,), (10,), (20,))
KL_HIDDEN = ((5,), (10,))
DRAWS = {"diag": (32, 128), "ggn": (32,)}
BUDGETS = (200, 500, 1000, 2000, 5000, 10_000)
UNBOUNDED = 100_000
FRACTIONS = (0.01, 0.1)
REFERENCE = {"max_iter": 3000, "tol": 1e-6, "vi_max_iter": UNBOUNDED}
DEFAULT_BUDGET = BayesianMLPRegressor().vi_max_iter


# ---------------------------------------------------------------- data
def standardised(X, y):
    return StandardScaler().fit_transform(X), (y - y.mean()) / y.std()


def diabetes():
    return standardised(*load_diabetes(return_X_y=True))


def banknote():
    X, _ = load_banknote(return_X_y=True)
    X = X[np.random.RandomState(0).choice(X.shape[0], 600, replace=False)]
    return standardised(X[:, [0, 1, 3]], X[:, 2])


def one_dimensional(n=300):
    rng = np.random.RandomState(0)
    X = rng.uniform(-3, 3, (n, 1))
    return standardised(X, np.sin(2 * X[:, 0]) + 0.5 * X[:, 0] + 0.1 * rng.randn(n))


DATA = {"diabetes": diabetes, "banknote": banknote, "1-D": one_dimensional}


# ---------------------------------------------------------------- fits
def timed_fit(X, y, **params):
    """``(fitted estimator, seconds, ConvergenceWarning texts)``."""
    est = BayesianMLPRegressor(**params)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        start = time.perf_counter()
        est.fit(X, y)
        seconds = time.perf_counter() - start
    texts = [str(w.message) for w in caught if issubclass(w.category, ConvergenceWarning)]
    return est, seconds, texts


def convergence_runs(X, y, hidden, curvature, seed):
    """Per number of draws: the unbounded fit, its variational iterations, its time,
    the Laplace fit's time, and whether the MAP converged."""
    common = {"hidden_layer_sizes": hidden, "curvature": curvature, "random_state": seed}
    laplace, laplace_seconds, texts = timed_fit(X, y, **common)
    runs = {}
    for draws in DRAWS[curvature]:
        est, seconds, _ = timed_fit(
            X, y, inference="vi", vi_n_samples=draws, vi_max_iter=UNBOUNDED, **common
        )
        runs[draws] = {
            "est": est,
            "vi_iter": est.n_iter_ - laplace.n_iter_,
            "seconds": seconds,
            "laplace_seconds": laplace_seconds,
            "map_converged": not texts,
        }
    return runs


def convergence_table(runs):
    """One row per (data, hidden, curvature, draws) over the seeds."""
    lines = []
    for (name, hidden, curvature, draws), cases in runs.items():
        iters = np.array([case["vi_iter"] for case in cases])
        seconds = np.array([case["seconds"] for case in cases])
        ratio = seconds / np.array([case["laplace_seconds"] for case in cases])
        lines.append(
            [
                name,
                str(hidden),
                curvature,
                draws if curvature == "diag" else "-",
                f"{sum(case['map_converged'] for case in cases)}/{len(cases)}",
                f"{int(np.median(iters))} ({iters.min()}-{iters.max()})",
                *(f"{np.sum(iters <= budget)}/{len(cases)}" for budget in BUDGETS),
                f"{np.median(seconds):.2f} s",
                f"{np.median(ratio):.1f}x",
            ]
        )
    return lines


# ---------------------------------------------------------------- forgetting
def forget_ratio(est, reference, X_f, y_f):
    """``(KL ratio, warned)`` of the default forget of ``X_f, y_f`` from ``est``."""
    unlearned = copy.deepcopy(est)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UnlearningWarning)
        unlearned.partial_unfit(X_f, y_f)
    nothing = est.posterior_.kl_divergence(reference.posterior_)
    ratio = unlearned.posterior_.kl_divergence(reference.posterior_) / nothing
    warned = any(
        issubclass(w.category, UnlearningWarning)
        and not str(w.message).startswith("noise_variance_ was learned")
        for w in caught
    )
    return ratio, warned


def candidates(case, X, y, hidden, seed):
    """``{label: (fitted estimator, draws)}``: the old shared budget and the default."""
    found = {}
    for budget, draws in ((200, 32), (DEFAULT_BUDGET, 32), (DEFAULT_BUDGET, 128)):
        run = case[draws]
        est = run["est"]
        if run["vi_iter"] > budget:  # stops at the budget: another posterior
            est, _, _ = timed_fit(
                X, y, hidden_layer_sizes=hidden, curvature="diag", inference="vi",
                vi_n_samples=draws, vi_max_iter=budget, random_state=seed,
            )  # fmt: skip
        found[f"vi_max_iter={budget}, vi_n_samples={draws}"] = (est, draws)
    return found


def forgetting_rows(X, y, hidden, seed, case):
    """``{(label, fraction): (ratio, warned)}`` for one fitted seed."""
    results, fitted = {}, candidates(case, X, y, hidden, seed)
    for fraction in FRACTIONS:
        rng = np.random.RandomState(1000 + seed)
        forget = rng.choice(X.shape[0], max(1, round(fraction * X.shape[0])), False)
        keep = np.setdiff1d(np.arange(X.shape[0]), forget)
        references = {}
        for label, (est, draws) in fitted.items():
            if draws not in references:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", ConvergenceWarning)
                    converged = case[draws]["est"]
                    references[draws] = converged._local_retrain(
                        X[keep], y[keep], **REFERENCE
                    )
            results[label, fraction] = forget_ratio(
                est, references[draws], X[forget], y[forget]
            )
    return results


def forgetting_table(results):
    """Median / max KL ratio and warned forgets over seeds, per candidate."""
    lines = []
    for (name, hidden, label, fraction), cells in results.items():
        ratios = np.array([cell[0] for cell in cells])
        lines.append(
            [
                name,
                str(hidden),
                label,
                f"random {fraction:.0%}",
                f"{np.median(ratios):.3f} / {ratios.max():.3f}",
                f"{sum(cell[1] for cell in cells)}/{len(cells)}",
            ]
        )
    return lines


def main(n_seeds=3, n_kl_seeds=2):
    print(environment())
    print(f"vi_max_iter default: {DEFAULT_BUDGET}", flush=True)
    runs, forgets = {}, {}
    for name, load in DATA.items():
        X, y = load()
        for hidden in HIDDEN:
            for curvature in DRAWS:
                for seed in range(n_seeds):
                    case = convergence_runs(X, y, hidden, curvature, seed)
                    for draws, run in case.items():
                        runs.setdefault((name, hidden, curvature, draws), []).append(run)
                    if curvature == "diag" and hidden in KL_HIDDEN and seed < n_kl_seeds:
                        for key, cell in forgetting_rows(X, y, hidden, seed, case).items():
                            forgets.setdefault((name, hidden, *key), []).append(cell)
                print(f"  {name} {hidden} {curvature} done", flush=True)
    print()
    headers = [
        "data", "hidden", "curvature", "vi_n_samples", "MAP converged (max_iter=200)",
        "VI iterations, median (range)",
        *(f"converged, vi_max_iter={budget}" for budget in BUDGETS),
        "fit time (median)", "VI fit / Laplace fit",
    ]  # fmt: skip
    print(table(convergence_table(runs), headers))
    print()
    headers = ["data", "hidden", "candidate", "forget", "KL ratio (median / max)", "warned"]
    print(table(forgetting_table(forgets), headers))


if __name__ == "__main__":
    main(*(int(arg) for arg in sys.argv[1:3]))
