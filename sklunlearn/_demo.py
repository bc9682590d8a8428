"""The ``sklunlearn demo`` job: forget, retrain, compare, on bundled real data.

Each scenario fits an estimator on all rows, forgets a random 10% and a
clustered 10% (the rows furthest along the first principal axis: the most
extreme, hardest to forget), retrains from scratch on the remaining rows and
compares the two.
"""

import copy
import time
import warnings
from typing import NamedTuple

import numpy as np
from sklearn.datasets import load_diabetes
from sklearn.preprocessing import StandardScaler

from ._cli._files import save_figure
from .exceptions import UnlearningWarning
from .metrics import posterior_kl

__all__ = ["DemoResult", "forget_masks", "compare", "run_demo", "format_table", "plot"]


class DemoResult(NamedTuple):
    """One row of the demo table.

    Fields: ``model`` and ``data`` names, ``forget_set`` description,
    ``n_train`` rows learned, ``n_forget`` rows forgotten, ``forget_seconds``
    (time of ``partial_unfit``), ``retrain_seconds`` (time of ``fit`` on the
    remaining rows), ``kl`` = KL(unlearned || retrained) between the
    posteriors, ``kl_do_nothing`` = KL(full || retrained), and
    ``max_prediction_difference`` (largest absolute difference between the two
    models' predictions, mean or probability, over all rows) and ``warnings``
    (texts of the UnlearningWarnings the forget issued).
    """

    model: str
    data: str
    forget_set: str
    n_train: int
    n_forget: int
    forget_seconds: float
    retrain_seconds: float
    kl: float
    kl_do_nothing: float
    max_prediction_difference: float
    warnings: tuple = ()


def forget_masks(X, fraction=0.1, random_state=0):
    """Boolean masks of a random and a clustered forget set of ``fraction`` of the rows.

    The clustered set holds the rows with the largest projection on the first
    principal axis of the standardised features.
    """
    n = X.shape[0]
    k = max(1, int(round(fraction * n)))
    rng = np.random.RandomState(random_state)
    random_mask = np.zeros(n, dtype=bool)
    random_mask[rng.choice(n, size=k, replace=False)] = True
    Z = StandardScaler().fit_transform(X)
    axis = np.linalg.svd(Z, full_matrices=False)[2][0]
    projection = Z @ axis
    if np.abs(projection.max()) < np.abs(projection.min()):
        projection = -projection
    clustered_mask = np.zeros(n, dtype=bool)
    clustered_mask[np.argsort(projection)[-k:]] = True
    pct = f"{100 * fraction:.0f}%"
    return {f"random {pct}": random_mask, f"clustered {pct}": clustered_mask}


def _predictions(estimator, X):
    if hasattr(estimator, "predict_proba"):
        return estimator.predict_proba(X)
    return estimator.predict(X)


def compare(model, data, make_estimator, X, y, mask, forget_set, retrain=None):
    """Fit on all rows, forget ``mask``, retrain on ``~mask``, and measure.

    ``retrain(full, X, y)`` retrains instead of fitting ``make_estimator()``
    from scratch (a network: from the full fit's weights, so that the
    posteriors are comparable).
    """
    full = make_estimator().fit(X, y)
    # Kernels compile or load from the cache on first use: a throwaway forget keeps
    # that out of the timed one, as the full fit does for the timed retrain.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        copy.deepcopy(full).partial_unfit(X[mask], y[mask])
    unlearned = copy.deepcopy(full)
    with warnings.catch_warnings(record=True) as caught:
        # Shown in the table's "warned" column rather than printed mid-table.
        warnings.simplefilter("always", UnlearningWarning)
        start = time.perf_counter()
        unlearned.partial_unfit(X[mask], y[mask])
        forget_seconds = time.perf_counter() - start
    for warning in caught:
        if not issubclass(warning.category, UnlearningWarning):
            warnings.warn_explicit(
                warning.message, warning.category, warning.filename, warning.lineno
            )
    start = time.perf_counter()
    if retrain is None:
        retrained = make_estimator().fit(X[~mask], y[~mask])
    else:
        retrained = retrain(full, X[~mask], y[~mask])
    retrain_seconds = time.perf_counter() - start
    difference = np.max(np.abs(_predictions(unlearned, X) - _predictions(retrained, X)))
    return DemoResult(
        model,
        data,
        forget_set,
        X.shape[0],
        int(mask.sum()),
        forget_seconds,
        retrain_seconds,
        posterior_kl(unlearned, retrained),
        posterior_kl(full, retrained),
        float(difference),
        tuple(str(w.message) for w in caught if issubclass(w.category, UnlearningWarning)),
    )


def _linear_regression_diabetes(random_state):
    from .linear_model import BayesianLinearRegression

    X, y = load_diabetes(return_X_y=True)
    return [
        compare(
            "BayesianLinearRegression",
            "diabetes",
            BayesianLinearRegression,
            X,
            y,
            mask,
            name,
        )
        for name, mask in forget_masks(X, 0.1, random_state).items()
    ]


def _logistic_regression_breast_cancer(random_state):
    """Bayesian logistic regression on breast_cancer, one-step Laplace divide-out."""
    from sklearn.datasets import load_breast_cancer

    from .linear_model import BayesianLogisticRegression

    X, y = load_breast_cancer(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    return [
        compare(
            "BayesianLogisticRegression",
            "breast_cancer",
            BayesianLogisticRegression,
            X,
            y,
            mask,
            name,
        )
        for name, mask in forget_masks(X, 0.1, random_state).items()
    ]


def _sparse_gp_regression_diabetes(random_state):
    """SGPR at hyperparameters and inducing points learned once on all rows.

    Forgetting is exact at fixed hyperparameters, so the retrained model uses
    the same ones (they still reflect the forgotten rows: see the docs).
    """
    from functools import partial

    from .gaussian_process import SparseGPRegressor

    X, y = load_diabetes(return_X_y=True)
    X = X / X.std(axis=0)
    learned = SparseGPRegressor(
        inducing_points=30, normalize_y=True, random_state=random_state
    ).fit(X, y)
    make = partial(
        SparseGPRegressor,
        kernel=learned.kernel_,
        inducing_points=learned.inducing_points_,
        noise_variance=learned.noise_variance_,
        optimizer=None,
        normalize_y=True,
    )
    return [
        compare("SparseGPRegressor", "diabetes", make, X, y, mask, name)
        for name, mask in forget_masks(X, 0.1, random_state).items()
    ]


def _sparse_gp_classification_banknote(random_state):
    """VBU's sparse GP classifier, Laplace forgetting, fixed kernel and inducing points."""
    from functools import partial

    from sklearn.gaussian_process.kernels import RBF
    from sklearn.gaussian_process.kernels import ConstantKernel as C

    from .datasets import load_banknote
    from .gaussian_process import SparseGPClassifier

    X, y = load_banknote(return_X_y=True)
    X = (X - X.mean(axis=0)) / X.std(axis=0)
    kernel = C(2.0, "fixed") * RBF(1.5, "fixed")
    Z = (
        SparseGPClassifier(kernel=kernel, inducing_points=30, random_state=random_state)
        .fit(X, y)
        .inducing_points_
    )
    make = partial(SparseGPClassifier, kernel=kernel, inducing_points=Z)
    return [
        compare("SparseGPClassifier", "banknote", make, X, y, mask, name)
        for name, mask in forget_masks(X, 0.1, random_state).items()
    ]


def _network_regression_diabetes(random_state):
    """BayesianMLPRegressor (GGN Laplace, 'laplace' forgetting) on diabetes.

    A network retrained from scratch lands in another mode, so the retrained
    model is the local retrain: the remaining rows, from the full fit's
    weights, to convergence (KL between the posteriors is then meaningful).
    """
    from functools import partial

    from .neural_network import BayesianMLPRegressor

    X, y = load_diabetes(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    y = (y - y.mean()) / y.std()
    make = partial(
        BayesianMLPRegressor,
        hidden_layer_sizes=(5,),
        random_state=random_state,
        max_iter=3000,
        tol=1e-8,
    )

    def retrain(full, X_remaining, y_remaining):
        return full._local_retrain(X_remaining, y_remaining)

    return [
        compare("BayesianMLPRegressor", "diabetes", make, X, y, mask, name, retrain)
        for name, mask in forget_masks(X, 0.1, random_state).items()
    ]


# Each scenario takes a random_state and returns a list of DemoResult.
SCENARIOS = [
    _linear_regression_diabetes,
    _logistic_regression_breast_cancer,
    _sparse_gp_regression_diabetes,
    _sparse_gp_classification_banknote,
    _network_regression_diabetes,
]


def run_demo(random_state=0):
    """Run every scenario and return the list of :class:`DemoResult`."""
    results = []
    for scenario in SCENARIOS:
        results.extend(scenario(random_state))
    return results


def format_table(results):
    """Render results as a fixed-width text table.

    Columns: rows forgotten, wall times of forgetting and retraining, their
    ratio, the two KL divergences in nats, the largest prediction difference,
    and whether the forget warned.
    """
    header = (
        f"{'model':<28} {'data':<14} {'forget set':<14} {'forgotten':>9} {'forget':>9} "
        f"{'retrain':>9} {'speed-up':>9} {'KL(unl||ret)':>13} {'KL(full||ret)':>14} "
        f"{'max |pred diff|':>16} {'warned':>6}"
    )
    units = (
        f"{'':<28} {'':<14} {'':<14} {'rows':>9} {'':>9} {'':>9} {'':>9} "
        f"{'nats':>13} {'nats':>14}"
    )
    lines = [header, units, "-" * len(header)]
    for r in results:
        speedup = r.retrain_seconds / max(r.forget_seconds, 1e-12)
        lines.append(
            f"{r.model:<28} {r.data:<14} {r.forget_set:<14} {r.n_forget:>9} "
            f"{1e3 * r.forget_seconds:>7.2f}ms {1e3 * r.retrain_seconds:>7.2f}ms "
            f"{speedup:>8.1f}x {r.kl:>13.3g} {r.kl_do_nothing:>14.3g} "
            f"{r.max_prediction_difference:>16.3g} {'yes' if r.warnings else '':>6}"
        )
    return "\n".join(lines)


def plot(results, path):
    """Bar charts of time and KL per scenario, saved to ``path`` (needs matplotlib)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ImportError(
            "--plot needs matplotlib: pip install 'sklunlearn[plot]'"
        ) from exc
    labels = [f"{r.model}\n{r.data}, {r.forget_set}" for r in results]
    positions = np.arange(len(results))
    fig, (ax_time, ax_kl) = plt.subplots(1, 2, figsize=(12, 1.2 + 0.6 * len(results)))
    width = 0.4
    ax_time.barh(
        positions - width / 2,
        [r.forget_seconds for r in results],
        width,
        label="partial_unfit",
    )
    ax_time.barh(
        positions + width / 2,
        [r.retrain_seconds for r in results],
        width,
        label="retrain from scratch",
    )
    ax_time.set_xscale("log")
    ax_time.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax_time.invert_yaxis()
    ax_time.set_xlabel("seconds")
    ax_time.set_yticks(positions, labels, fontsize=7)
    ax_time.legend(fontsize=7)
    floor = 1e-16
    ax_kl.barh(
        positions - width / 2,
        [max(r.kl, floor) for r in results],
        width,
        label="KL(unlearned || retrained)",
    )
    ax_kl.barh(
        positions + width / 2,
        [max(r.kl_do_nothing, floor) for r in results],
        width,
        label="KL(full || retrained): doing nothing",
    )
    ax_kl.set_xscale("log")
    ax_kl.invert_yaxis()
    ax_kl.set_xlabel("nats")
    ax_kl.set_yticks(positions, [""] * len(results))
    ax_kl.legend(fontsize=7)
    fig.suptitle("sklunlearn demo: forgetting vs retraining from scratch")
    fig.tight_layout()
    try:
        save_figure(fig, path)
    finally:
        plt.close(fig)
