"""Which parameters should L-CODEC's block hold on a network? Three compositions.

``bench_lcodec_mlp.py`` finds that L-CODEC's block step beats a random block of
the same size in only some forget sets. Its block is the selected hidden
units' incoming weights and biases plus every parameter in no candidate group
(the output layer). This script asks whether another composition lets FOCI's
choice of units matter more, on the same network and data
(``bench_lcodec_mlp.make_data``, ``hidden_layer_sizes=(200, 100)``,
``curvature='diag'``, noise variance fixed at 0.01):

- ``units + output layer``: the package's block (``_lcodec._block``);
- ``units + output bias``: the units' incoming weights and biases only, as the
  issue's candidates are, plus the output bias;
- ``units in and out``: the units' incoming and outgoing weights, plus the
  output bias.

For each, the diagonal block step (``diagonal_block_step``, with its step
length) on the units L-CODEC selected and on as many units drawn at random
(mean over 3 draws), for 1% random and 1% clustered forget sets over 8 seeds.
Measured: the residual of ``bench_lcodec_mlp.py`` (the remaining rows'
gradient in the objective whose mode the fitted weights are); no retrain is
needed, so no predictive KL.

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
    make_data,
    objective_gradient,
    with_posterior,
)

from sklunlearn.neural_network import BayesianMLPRegressor  # noqa: E402
from sklunlearn.unlearning._diagonal import diagonal_block_step  # noqa: E402

SEEDS = range(8)
N_RANDOM = 3
COMPOSITIONS = ("units + output layer", "units + output bias", "units in and out")


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


def main():
    n_train = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    max_iter = int(sys.argv[2]) if len(sys.argv) > 2 else 200
    X, y = make_data(n_train)
    est = BayesianMLPRegressor(
        hidden_layer_sizes=(200, 100), curvature="diag", noise_variance=NOISE**2,
        max_iter=max_iter, tol=1e-6, random_state=0, ledger=False,
    )  # fmt: skip
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # an unconverged fit: see bench_lcodec_mlp.py
        est.fit(X, y)
    tilt = objective_gradient(est, X, y)
    posterior, model = est.posterior_, est.model_
    predictor, n_weights = model.predictor, posterior.n_features
    groups = predictor.candidate_indices(posterior.mean)
    print(
        f"{n_train} rows, {n_weights} weights, {len(groups)} candidate units; "
        f"fit {time.perf_counter() - start:.1f} s"
    )
    print(environment())
    results = {composition: [] for composition in COMPOSITIONS}
    for seed in SEEDS:
        for forget in forget_sets(X, seed).values():
            keep = np.setdiff1d(np.arange(n_train), forget)
            Xf, yf, weights = X[forget], y[forget], np.ones(forget.size)
            lcodec = copy.deepcopy(est).set_params(unlearning="lcodec", random_state=seed)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                lcodec.partial_unfit(Xf, yf)
            selected = lcodec.forget_report_.diagnostics.selected
            rng = np.random.RandomState(seed)
            draws = [
                rng.choice(len(groups), len(selected), replace=False)
                for _ in range(N_RANDOM)
            ]

            def residual(units, composition, Xf=Xf, yf=yf, weights=weights, keep=keep):
                indices = block(predictor, groups, units, composition, n_weights)
                step = diagonal_block_step(posterior, model, Xf, yf, weights, indices)
                moved = with_posterior(est, step.posterior)
                gradient = objective_gradient(moved, X[keep], y[keep]) - tilt
                return float(np.linalg.norm(gradient))

            for composition in COMPOSITIONS:
                chosen = residual(selected, composition)
                random = np.mean([residual(units, composition) for units in draws])
                results[composition].append((chosen, random))
    rows = []
    for composition, pairs in results.items():
        pairs = np.array(pairs)
        ratio = pairs[:, 0] / pairs[:, 1]
        rows.append(
            (
                composition,
                f"{int((ratio < 1).sum())} of {len(ratio)}",
                f"{np.median(ratio):.3f}",
                f"{ratio.min():.3f} - {ratio.max():.3f}",
            )
        )
    headers = ("block", "L-CODEC below random", "median ratio", "range")
    print(f"\nresidual, L-CODEC's units / random units ({len(SEEDS)} seeds x 2 kinds)")
    print(table(rows, headers))


if __name__ == "__main__":
    main()
