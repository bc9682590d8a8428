"""Can L-CODEC's choice of hidden units beat chance on a network? Blocks and selections.

``bench_lcodec_mlp.py`` finds that L-CODEC's block step beats a random block of
the same size in only some forget sets. On the same network and data
(``bench_lcodec_mlp.make_data``, ``hidden_layer_sizes=(200, 100)``,
``curvature='diag'``, noise variance fixed at 0.01), for 1% random and 1%
clustered forget sets over 8 seeds, this script measures the residual of
``bench_lcodec_mlp.py`` (the remaining rows' gradient in the objective whose
mode the fitted weights are; no retrain is needed, so no predictive KL) after
the diagonal block step (``diagonal_block_step``, with its step length) on
chosen units against as many units drawn at random (mean over the draws).

Room: the residual of doing nothing, of the step on the output layer alone
(the parameters in no candidate group), on 10 random units and the output
layer, and of the full diagonal step.

Compositions (the units the package's L-CODEC selects, 3 random draws):

- ``units + output layer``: the package's block (``_lcodec._block``);
- ``units + output bias``: the units' incoming weights and biases only, as the
  issue's candidates are, plus the output bias;
- ``units in and out``: the units' incoming and outgoing weights, plus the
  output bias.

Selections (the package's composition, 5 random draws), FOCI
(``_lcodec.foci``, as the package screens) on copies drawn here:

- the candidate quantity per hidden unit: its activation ``a`` (the package's),
  its pre-activation ``z``, its contribution to the output ``z df/dz`` (the
  group's ``theta_g' df/dtheta_g``, as ``x_j w_j`` is a linear model's) or
  ``a df/da`` (``a_j w_j`` for the last hidden layer);
- the response: the copy's loss (the package's) or its signed residual;
- the copies: each a perturbed copy of one row (the package's) or of the whole
  set at once with the quantities and loss averaged over its rows (Mehta et
  al.'s code);
- the perturbation scale and number of copies;
- two references that are not FOCI, of L-CODEC's size: the units of largest
  diagonal Newton decrement ``sum_g g^2 / p``, and greedy forward selection on
  the step's own predicted residual ``||g + t H_r d||`` (the quantity its step
  length minimises, ``bench_lcodec_mlp.greedy_predicted``).

Run: ``python benchmarks/bench_lcodec_mlp_blocks.py [n_train] [max_iter]``
(defaults 2,000 rows, 200 L-BFGS iterations).
"""

import copy
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import environment, table  # noqa: E402
from bench_lcodec_mlp import (  # noqa: E402
    NOISE,
    forget_sets,
    greedy_predicted,
    make_data,
    objective_gradient,
    step_images,
    with_posterior,
)

from sklunlearn.neural_network import BayesianMLPRegressor  # noqa: E402
from sklunlearn.unlearning._diagonal import diagonal_block_step  # noqa: E402
from sklunlearn.unlearning._lcodec import SCREENED_CANDIDATES, foci  # noqa: E402

SEEDS = range(8)
N_RANDOM = 3
N_RANDOM_SELECTIONS = 5
COMPOSITIONS = ("units + output layer", "units + output bias", "units in and out")
# name: (copies, quantity, response, scale, number of copies)
SELECTIONS = {
    "activation, loss (package)": ("rows", "activation", "loss", 0.1, 1000),
    "pre-activation, loss": ("rows", "pre-activation", "loss", 0.1, 1000),
    "z df/dz, loss": ("rows", "z df/dz", "loss", 0.1, 1000),
    "a df/da, loss": ("rows", "a df/da", "loss", 0.1, 1000),
    "activation, signed residual": ("rows", "activation", "residual", 0.1, 1000),
    "z df/dz, signed residual": ("rows", "z df/dz", "residual", 0.1, 1000),
    "set copies, activation, loss": ("set", "activation", "loss", 0.1, 1000),
    "set copies, pre-activation, loss": ("set", "pre-activation", "loss", 0.1, 1000),
    "activation, loss, scale 0.03": ("rows", "activation", "loss", 0.03, 1000),
    "activation, loss, scale 0.3": ("rows", "activation", "loss", 0.3, 1000),
    "activation, loss, scale 1": ("rows", "activation", "loss", 1.0, 1000),
    "activation, loss, 300 copies": ("rows", "activation", "loss", 0.1, 300),
    "activation, loss, 3000 copies": ("rows", "activation", "loss", 0.1, 3000),
}
REFERENCES = ("Newton decrement (not FOCI)", "greedy predicted residual (not FOCI)")


def outgoing(predictor, unit):
    """Indices of a hidden unit's outgoing weights (units numbered as the groups)."""
    for layer, n_units in enumerate(predictor.layer_sizes[1:-1]):
        if unit < n_units:
            start, _, _ = predictor.offsets[layer + 1]
            fan_out = predictor.layer_sizes[layer + 2]
            return start + unit * fan_out + np.arange(fan_out)
        unit -= n_units
    raise IndexError(unit)


def block(predictor, groups, units, composition, n_weights):
    """The sorted parameter indices of one composition's block."""
    chosen = np.zeros(n_weights, dtype=bool)
    for unit in units:
        chosen[groups[unit]] = True
        if composition == "units in and out":
            chosen[outgoing(predictor, unit)] = True
    if composition == "units + output layer":
        grouped = np.zeros(n_weights, dtype=bool)
        for indices in groups:
            grouped[indices] = True
        chosen |= ~grouped
    else:
        chosen[n_weights - 1] = True  # the output bias
    return np.flatnonzero(chosen)


def unit_quantities(predictor, theta, X, y):
    """Per row, every hidden unit's candidate quantities, and the loss and residual."""
    inputs, f = predictor.forward(X, theta)
    deltas = predictor.backward(inputs, theta, np.ones(X.shape[0]))[:-1]  # df/dz
    coefs, intercepts = predictor.unpack(theta)
    a = np.hstack(inputs[1:])
    z = np.hstack(
        [
            h @ W + b
            for h, W, b in zip(inputs[:-1], coefs[:-1], intercepts[:-1], strict=True)
        ]
    )
    dz = np.hstack(deltas)
    da = dz / np.maximum(1.0 - a * a, 1e-12)  # df/da = df/dz / tanh'(z)
    residual = f - y
    quantities = {
        "activation": a,
        "pre-activation": z,
        "z df/dz": z * dz,
        "a df/da": a * da,
    }
    return quantities, {"loss": 0.5 * residual**2, "residual": residual}


def perturbed(predictor, theta, Xf, yf, copies, scale, n_copies, rng):
    """Candidate quantities and responses of perturbed copies (see the docstring)."""
    if copies == "rows":
        source = np.arange(n_copies) % Xf.shape[0]
        noise = scale * rng.standard_normal((n_copies, Xf.shape[1]))
        return unit_quantities(predictor, theta, Xf[source] + noise, yf[source])
    parts = []
    for start in range(0, n_copies, 100):  # whole-set copies in chunks, to bound memory
        count = min(100, n_copies - start)
        noise = scale * rng.standard_normal((count, *Xf.shape))
        rows = (Xf + noise).reshape(-1, Xf.shape[1])
        quantities, responses = unit_quantities(predictor, theta, rows, np.tile(yf, count))
        parts.append(
            (
                {
                    k: v.reshape(count, Xf.shape[0], -1).mean(axis=1)
                    for k, v in quantities.items()
                },
                {k: v.reshape(count, -1).mean(axis=1) for k, v in responses.items()},
            )
        )
    return tuple(
        {k: np.concatenate([p[i][k] for p in parts]) for k in parts[0][i]} for i in (0, 1)
    )


def fit(n_train, max_iter):
    """The fitted network on ``make_data(n_train)``, and the data."""
    X, y = make_data(n_train)
    est = BayesianMLPRegressor(
        hidden_layer_sizes=(200, 100), curvature="diag", noise_variance=NOISE**2,
        max_iter=max_iter, tol=1e-6, random_state=0, ledger=False,
    )  # fmt: skip
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # an unconverged fit: see bench_lcodec_mlp.py
        est.fit(X, y)
    return est, X, y, time.perf_counter() - start


class ForgetSet:
    """One forget set: the residual of a block step on chosen units, and random ones."""

    def __init__(self, est, X, y, forget, seed, tilt):
        self.est, self.X, self.y, self.seed, self.tilt = est, X, y, seed, tilt
        self.keep = np.setdiff1d(np.arange(X.shape[0]), forget)
        self.Xf, self.yf = X[forget], y[forget]
        self.predictor = est.model_.predictor
        self.groups = self.predictor.candidate_indices(est.posterior_.mean)
        self.n_weights = est.posterior_.n_features
        self._random = {}

    def residual(self, units, composition="units + output layer"):
        indices = block(self.predictor, self.groups, units, composition, self.n_weights)
        posterior, model = self.est.posterior_, self.est.model_
        weights = np.ones(self.Xf.shape[0])
        step = diagonal_block_step(posterior, model, self.Xf, self.yf, weights, indices)
        moved = with_posterior(self.est, step.posterior)
        gradient = objective_gradient(moved, self.X[self.keep], self.y[self.keep])
        return float(np.linalg.norm(gradient - self.tilt))

    def nothing(self):
        gradient = objective_gradient(self.est, self.X[self.keep], self.y[self.keep])
        return float(np.linalg.norm(gradient - self.tilt))

    def random(self, size, composition="units + output layer", draws=N_RANDOM_SELECTIONS):
        """Mean residual over ``draws`` random sets of ``size`` units (cached)."""
        key = (size, composition, draws)
        if key not in self._random:
            rng = np.random.RandomState(1000 + self.seed)
            units = [
                rng.choice(len(self.groups), size, replace=False) for _ in range(draws)
            ]
            self._random[key] = np.mean([self.residual(u, composition) for u in units])
        return self._random[key]


def package_selection(est, forget_set):
    """The units the package's L-CODEC selects for the set."""
    lcodec = copy.deepcopy(est).set_params(
        unlearning="lcodec", random_state=forget_set.seed
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lcodec.partial_unfit(forget_set.Xf, forget_set.yf)
    return np.array(lcodec.forget_report_.diagnostics.selected, dtype=int)


def measure_set(est, forget_set, results):
    """Append one set's ratios (chosen / random) to ``results``; return its room."""
    fs, theta = forget_set, est.posterior_.mean
    selected = package_selection(est, fs)
    for composition in COMPOSITIONS:
        chosen = fs.residual(selected, composition)
        results[composition].append(
            chosen / fs.random(len(selected), composition, N_RANDOM)
        )
    copies = {}
    for name, (kind, quantity, response, scale, n_copies) in SELECTIONS.items():
        if (kind, scale, n_copies) not in copies:
            rng = np.random.default_rng(fs.seed)
            copies[kind, scale, n_copies] = perturbed(
                fs.predictor, theta, fs.Xf, fs.yf, kind, scale, n_copies, rng
            )
        quantities, responses = copies[kind, scale, n_copies]
        units, _ = foci(
            responses[response], quantities[quantity], screen=SCREENED_CANDIDATES
        )
        results[name].append(fs.residual(units) / fs.random(len(units)))
    gradient, start, images, decrement = step_images(
        est, fs.Xf, fs.yf, fs.groups, fs.n_weights
    )
    size = max(len(selected), 1)
    references = (
        np.argsort(-decrement)[:size],
        greedy_predicted(gradient, start, images, size),
    )
    for name, units in zip(REFERENCES, references, strict=True):
        results[name].append(fs.residual(units) / fs.random(size))
    every = np.arange(len(fs.groups))
    return fs.nothing(), fs.residual([]), fs.random(10), fs.residual(every)


def summary(results):
    """Rows of win counts, median ratios and ranges."""
    rows = []
    for name, ratios in results.items():
        ratios = np.array(ratios)
        rows.append(
            (
                name,
                f"{int((ratios < 1).sum())} of {len(ratios)}",
                f"{np.median(ratios):.3f}",
                f"{ratios.min():.3f} - {ratios.max():.3f}",
            )
        )
    return rows


def main():
    n_train = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    max_iter = int(sys.argv[2]) if len(sys.argv) > 2 else 200
    est, X, y, seconds = fit(n_train, max_iter)
    tilt = objective_gradient(est, X, y)
    n_groups = len(est.model_.predictor.candidate_indices(est.posterior_.mean))
    print(
        f"{n_train} rows, {est.posterior_.n_features} weights, {n_groups} candidate "
        f"units; fit {seconds:.1f} s"
    )
    print(environment())
    results = {name: [] for name in (*COMPOSITIONS, *SELECTIONS, *REFERENCES)}
    room = {"random": [], "clustered": []}
    start = time.perf_counter()
    for seed in SEEDS:
        for kind, forget in forget_sets(X, seed).items():
            forget_set = ForgetSet(est, X, y, forget, seed, tilt)
            room[kind].append(measure_set(est, forget_set, results))
    print(f"measured in {time.perf_counter() - start:.0f} s")
    headers = ("nothing", "output layer alone", "10 random units + output", "full step")
    rows = [(kind, *(f"{v:.1f}" for v in np.mean(r, axis=0))) for kind, r in room.items()]
    print(f"\nresidual, mean over {len(SEEDS)} sets")
    print(table(rows, ("forget set", *headers)))
    headers = ("block", "below random", "median ratio", "range")
    print(f"\nresidual, L-CODEC's units / random units ({len(SEEDS)} seeds x 2 kinds)")
    print(table(summary({c: results[c] for c in COMPOSITIONS}), headers))
    print("\nresidual, selected units / as many random units, package composition")
    others = {name: results[name] for name in (*SELECTIONS, *REFERENCES)}
    print(table(summary(others), ("selection", *headers[1:])))


if __name__ == "__main__":
    main()
