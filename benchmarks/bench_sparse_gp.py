"""SparseGPRegressor against GPy's SparseGPRegression and GPflow's SGPR, and forgetting.

For n = 5,000 and 50,000 synthetic rows, d = 8 features, the same 200 k-means
inducing points (kept fixed), an ARD RBF kernel and the same start (signal
variance 1, length scales 1, noise variance 1), L-BFGS-B for all three:

- one collapsed bound + gradient evaluation (median of interleaved rounds),
- the full hyperparameter optimisation, its final bound and held-out R^2 (ours
  with its defaults: ``jitter='auto'``, and L-BFGS-B with 30 curvature pairs
  along two paths from the start, log and softplus coordinates, keeping the
  better end, each path's end printed; ours also with GPy's absolute jitter,
  ``relative_jitter=False, jitter=1e-8``, with the relative ``jitter=1e-8`` and
  scipy's 10 pairs (the defaults before), with scipy's 10 pairs alone, and each
  path alone, :class:`OnePath`; ``--no-variants`` skips these),
- the bound of the three at the same hyperparameters and the same absolute
  jitter on K_ZZ (the start, and GPflow's optimum),
- ``partial_unfit`` of 1% of the rows against each library's refit on the
  remaining rows at the fitted hyperparameters (interleaved rounds).

The peers are never dependencies of sklunlearn: they live in a virtual
environment of their own (``$SKLUNLEARN_PEERS_VENV``, default
``/tmp/sklunlearn-peers``; created with ``pip install GPy gpflow
tensorflow-cpu`` when missing) and run in a subprocess of it that this script
drives over a pipe, so that every figure of a table comes from one run. BLAS,
OpenMP and TensorFlow are limited to one thread everywhere.

    python benchmarks/bench_sparse_gp.py [--sizes 5000 50000] [--no-peers]

``--draws 0 1 2`` instead fits ours only on those draws of the data
(``make_data(n, d, random_state=seed)``) for every size, from the same start:
the defaults against the defaults before (the relative ``jitter=1e-8`` and
scipy's 10 curvature pairs), final bound, evaluations, seconds,
hyperparameters left at bounds and held-out R^2.
"""

import argparse
import contextlib
import copy
import io
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

ONE_THREAD = {
    name: "1"
    for name in (
        "OMP_NUM_THREADS",
        "OPENBLAS_NUM_THREADS",
        "MKL_NUM_THREADS",
        "TF_NUM_INTRAOP_THREADS",
        "TF_NUM_INTEROP_THREADS",
    )
}
PEERS = ("GPy", "GPflow")
D, M, FORGET = 8, 200, 0.01


def make_data(n, d, random_state=0):
    rng = np.random.RandomState(random_state)
    X = rng.uniform(-2, 2, size=(n, d))
    frequencies = rng.uniform(0.5, 1.5, size=d)
    y = np.sin(X * frequencies).sum(axis=1) / np.sqrt(d) + 0.1 * rng.randn(n)
    return X, y


def median_seconds(function, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def r2(y, prediction):
    return float(1 - np.sum((y - prediction) ** 2) / np.sum((y - y.mean()) ** 2))


# ------------------------------------------------------------------ the peers
class _GPflow:
    def __init__(self, data):
        import gpflow
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(1)
        tf.config.threading.set_inter_op_parallelism_threads(1)
        self.gpflow, self.tf, self.data = gpflow, tf, data

    def model(self, variance, lengthscales, noise, rows=None):
        gpflow, data = self.gpflow, self.data
        X, y = (
            (data["X"], data["y"]) if rows is None else (data["X"][rows], data["y"][rows])
        )
        kernel = gpflow.kernels.SquaredExponential(
            variance=variance, lengthscales=lengthscales
        )
        model = gpflow.models.SGPR(
            (X, y[:, None]),
            kernel,
            inducing_variable=data["Z"].copy(),
            noise_variance=noise,
        )
        gpflow.set_trainable(model.inducing_variable, False)
        return model

    def evaluate(self, variance, lengthscales, noise, jitter, repeats):
        tf = self.tf
        self.gpflow.config.set_default_jitter(jitter)
        model = self.model(variance, lengthscales, noise)

        @tf.function
        def loss_and_gradient():
            with tf.GradientTape() as tape:
                loss = model.training_loss()
            return loss, tape.gradient(loss, model.trainable_variables)

        loss_and_gradient()  # trace once, as the optimiser does
        seconds = median_seconds(loss_and_gradient, repeats)
        bound = float(model.elbo())
        self.gpflow.config.set_default_jitter(1e-6)
        return {"seconds": seconds, "bound": bound}

    def optimise(self):
        model = self.model(1.0, np.ones(D), 1.0)
        start = time.perf_counter()
        result = self.gpflow.optimizers.Scipy().minimize(
            model.training_loss, model.trainable_variables, options={"maxiter": 15000}
        )
        seconds = time.perf_counter() - start
        return {
            "seconds": seconds,
            "bound": float(model.elbo()),
            "evaluations": int(result.nfev),
            "r2": r2(
                self.data["y_test"], model.predict_f(self.data["X_test"])[0].numpy()[:, 0]
            ),
            "variance": float(model.kernel.variance.numpy()),
            "lengthscales": model.kernel.lengthscales.numpy().tolist(),
            "noise": float(model.likelihood.variance.numpy()),
        }

    def refit(self, variance, lengthscales, noise, repeats):
        rows = ~self.data["forget"]
        X_test = self.data["X_test"][:1]

        def refit():
            model = self.model(variance, lengthscales, noise, rows)
            model.elbo()
            model.predict_f(X_test)

        return {"seconds": median_seconds(refit, repeats)}


class _GPy:
    def __init__(self, data):
        import GPy

        self.GPy, self.data = GPy, data

    def model(self, variance, lengthscales, noise, rows=None, jitter=None):
        GPy, data = self.GPy, self.data
        X, y = (
            (data["X"], data["y"]) if rows is None else (data["X"][rows], data["y"][rows])
        )
        kernel = GPy.kern.RBF(D, variance=variance, lengthscale=lengthscales, ARD=True)
        model = GPy.models.SparseGPRegression(
            X, y[:, None], kernel=kernel, Z=data["Z"].copy()
        )
        model.inducing_inputs.fix()
        model.Gaussian_noise.variance = noise
        if jitter is not None:
            model.inference_method.const_jitter = jitter
            model.parameters_changed()
        return model

    def evaluate(self, variance, lengthscales, noise, jitter, repeats):
        model = self.model(variance, lengthscales, noise, jitter=jitter)
        x = model.optimizer_array.copy()
        seconds = median_seconds(lambda: model._objective_grads(x), repeats)
        return {"seconds": seconds, "bound": float(np.ravel(model.log_likelihood())[0])}

    def optimise(self):
        model = self.model(1.0, np.ones(D), 1.0)
        start = time.perf_counter()
        model.optimize("lbfgsb", max_iters=15000)
        seconds = time.perf_counter() - start
        return {
            "seconds": seconds,
            "bound": float(np.ravel(model.log_likelihood())[0]),
            "evaluations": int(model.optimization_runs[-1].funct_eval),
            "r2": r2(self.data["y_test"], model.predict(self.data["X_test"])[0][:, 0]),
            "variance": float(model.kern.variance.values[0]),
            "lengthscales": model.kern.lengthscale.values.tolist(),
            "noise": float(model.Gaussian_noise.variance.values[0]),
        }

    def refit(self, variance, lengthscales, noise, repeats):
        rows = ~self.data["forget"]
        return {
            "seconds": median_seconds(
                lambda: self.model(variance, lengthscales, noise, rows), repeats
            )
        }


def serve():
    """The peer side: JSON requests on stdin, one JSON answer per line on stdout."""
    answer = sys.stdout
    sys.stdout = sys.stderr  # the libraries' own prints must not reach the pipe
    libraries = {}
    for line in sys.stdin:
        request = json.loads(line)
        operation = request.pop("operation")
        try:
            if operation == "load":
                data = dict(np.load(request["path"]))
                libraries, missing = {}, []
                for name, cls in (("GPy", _GPy), ("GPflow", _GPflow)):
                    try:
                        libraries[name] = cls(data)
                    except Exception as error:  # reported; the other peer still runs
                        missing.append(f"{name}: {type(error).__name__}: {error}")
                reply = {"available": sorted(libraries), "missing": missing}
            else:
                library = libraries[request.pop("library")]
                reply = getattr(library, operation)(**request)
        except Exception as error:
            reply = {"error": f"{type(error).__name__}: {error}"}
        answer.write(json.dumps(reply) + "\n")
        answer.flush()


class PeerProcess:
    """The peers' environment, driven from this process."""

    def __init__(self, venv):
        python = Path(venv) / "bin" / "python"
        if not python.exists():
            print(f"creating {venv} with GPy, gpflow and tensorflow-cpu (takes minutes)")
            subprocess.run([sys.executable, "-m", "venv", venv], check=True)
            subprocess.run(
                [
                    str(python),
                    "-m",
                    "pip",
                    "install",
                    "-q",
                    "GPy",
                    "gpflow",
                    "tensorflow-cpu",
                ],
                check=True,
            )
        environment = {**os.environ, **ONE_THREAD, "TF_CPP_MIN_LOG_LEVEL": "3"}
        self.process = subprocess.Popen(
            [str(python), __file__, "--serve"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=environment,
        )

    def ask(self, operation, **request):
        self.process.stdin.write(json.dumps({"operation": operation, **request}) + "\n")
        self.process.stdin.flush()
        reply = json.loads(self.process.stdout.readline())
        if "error" in reply:
            raise RuntimeError(reply["error"])
        return reply

    def close(self):
        self.process.stdin.close()
        self.process.wait()


# ------------------------------------------------------------------ our side
def _ours(n, directory, random_state=0):
    """The rows (saved in ``directory`` for the peers unless None) and ours."""
    from sklearn.gaussian_process.kernels import RBF
    from sklearn.gaussian_process.kernels import ConstantKernel as C

    from sklunlearn.gaussian_process import SparseGPRegressor
    from sklunlearn.gaussian_process._inducing import select_inducing_points

    X, y = make_data(n, D, random_state=random_state)
    X_test, y_test = make_data(2000, D, random_state=2)
    Z = select_inducing_points(X, np.ones(n), M, random_state=0)
    forget = np.zeros(n, dtype=bool)
    forget[np.random.RandomState(1).choice(n, size=int(FORGET * n), replace=False)] = True
    path = None
    if directory is not None:
        path = os.path.join(directory, f"data{n}.npz")
        np.savez(path, X=X, y=y, Z=Z, X_test=X_test, y_test=y_test, forget=forget)

    def estimator(variance=1.0, lengthscales=(1.0,) * D, noise=1.0, **params):
        return SparseGPRegressor(
            kernel=C(variance) * RBF(np.asarray(lengthscales, dtype=float)),
            inducing_points=Z,
            noise_variance=noise,
            **params,
        )

    return X, y, X_test, y_test, Z, forget, path, estimator


def _our_evaluation(estimator, X, y, Z, variance, lengthscales, noise, absolute_jitter):
    """Our bound + gradient as a function, with the peers' absolute jitter."""
    est = estimator(variance, lengthscales, noise, jitter=absolute_jitter / variance)
    kernel = est.kernel
    objective = est._objective(X, y, np.ones(len(y)), Z, kernel, jitters=(est.jitter,))
    theta = np.append(kernel.theta, np.log(noise))
    return lambda: objective(theta)


class OnePath:
    """One path of the built-in optimiser alone, as an ``optimizer`` of
    SparseGPRegressor: ``"log"`` (log coordinates within the kernel's bounds,
    with the repetition of :func:`minimize_within_bounds` when the run ends on
    bounds it did not start at: the default before the two paths) or
    ``"softplus"`` (the peers' coordinates, ``_softplus_lbfgsb``: each positive
    hyperparameter ``v = lower + softplus(x)``, its lower bound in the
    transform, only the upper one L-BFGS-B's), or ``"both"`` (the built-in
    optimiser's two paths), each keeping ``memory`` curvature pairs (the
    built-in optimiser's 30 when None). ``evaluations`` counts the bound
    evaluations of the last run.
    """

    def __init__(self, path, scale, memory=None):
        self.path, self.scale, self.memory, self.evaluations = path, scale, memory, 0

    def __call__(self, obj_func, initial_theta, bounds):
        from sklunlearn.gaussian_process._sgpr import (
            _REGRESSION_MEMORY,
            _Interpolates,
            _softplus_lbfgsb,
            minimize_within_bounds,
        )

        memory = _REGRESSION_MEMORY if self.memory is None else self.memory
        positive = np.ones(initial_theta.size, dtype=bool)
        if self.path == "softplus":
            result = _softplus_lbfgsb(
                obj_func, initial_theta, bounds, positive, memory=memory
            )
        else:
            result = minimize_within_bounds(
                obj_func,
                initial_theta,
                bounds,
                self.scale,
                positive=positive if self.path == "both" else None,
                memory=memory,
                # the noise variance, last, at its lower bound: as the built-in's
                degenerate=_Interpolates(bounds[-1, 0], initial_theta.size - 1),
            )
        self.evaluations = result.nfev
        return result.x, result.fun


def draws(sizes, seeds):
    """Final bounds of ours from the benchmark's start over draws of the data:
    the defaults (each path's end read from the verbose output) against the
    defaults before (``jitter=1e-8`` relative, scipy's 10 curvature pairs:
    :class:`OnePath`, with the current choice between the two paths' ends),
    timed one after the other."""
    from sklearn.exceptions import ConvergenceWarning

    print(
        "| rows (data seed) | defaults before: bound, evaluations, s | "
        "log path / softplus path ends (evaluations) | default now: bound, "
        "evaluations, s | at bounds | held-out R^2 before / now |"
    )
    print("|---|---|---|---|---|---|")
    start = dict(variance=1.0, lengthscales=np.ones(D).tolist(), noise=1.0)
    for n in sizes:
        for seed in seeds:
            X, y, X_test, y_test, _, _, _, estimator = _ours(n, None, random_state=seed)
            before = _our_optimisation(
                estimator,
                X,
                y,
                X_test,
                y_test,
                start,
                jitter=1e-8,
                optimizer=OnePath("both", n, memory=10),
            )[1]["sklunlearn"]
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", ConvergenceWarning)
                _, now = _our_optimisation(estimator, X, y, X_test, y_test, start)
            now = now["sklunlearn"]
            at_bounds = sum(issubclass(w.category, ConvergenceWarning) for w in caught)
            paths = " / ".join(
                f"{bound:,.2f} ({evaluations}{', stopped' * (how == 'stopped')})"
                for bound, evaluations, how in now["paths"]
            )
            print(
                f"| {n:,} ({seed}) | {before['bound']:,.2f}, {before['evaluations']}, "
                f"{before['seconds']:.1f} | {paths} | {now['bound']:,.2f}, "
                f"{now['evaluations']}, {now['seconds']:.1f} | {at_bounds} | "
                f"{before['r2']:.4f} / {now['r2']:.4f} |",
                flush=True,
            )


def _hyperparameters(fitted):
    return {
        "variance": float(fitted.kernel_.k1.constant_value),
        "lengthscales": np.atleast_1d(fitted.kernel_.k2.length_scale).tolist(),
        "noise": float(fitted.noise_variance_),
    }


def compare(n, peers, directory, rounds, with_variants=True):
    X, y, X_test, y_test, Z, forget, path, estimator = _ours(n, directory)
    loaded = peers.ask("load", path=path) if peers else {"available": [], "missing": []}
    available = loaded["available"]
    for reason in loaded["missing"]:
        print(f"peer unavailable: {reason}")
    print(f"\nn={n:,}, d={D}, m={M} fixed k-means inducing points, ARD RBF, 1 thread")
    start = dict(variance=1.0, lengthscales=np.ones(D).tolist(), noise=1.0)

    # one bound + gradient evaluation, interleaved rounds
    ours = _our_evaluation(estimator, X, y, Z, **start, absolute_jitter=1e-6)
    ours()  # compiles the Numba kernels
    times = {name: [] for name in ["sklunlearn", *available]}
    for _ in range(rounds):
        times["sklunlearn"].append(median_seconds(ours, 1))
        for name in available:
            reply = peers.ask("evaluate", library=name, **start, jitter=1e-6, repeats=1)
            times[name].append(reply["seconds"])
    evaluation = {name: float(np.median(t)) for name, t in times.items()}

    # full optimisation from the same start
    fitted, runs = _our_optimisation(estimator, X, y, X_test, y_test, start)
    variants = (
        {
            "relative_jitter=False, jitter=1e-8 (GPy's jitter; both paths)": dict(
                jitter=1e-8, relative_jitter=False
            ),
            "jitter=1e-8 and 10 curvature pairs (the defaults before)": dict(
                jitter=1e-8, optimizer=OnePath("both", n, memory=10)
            ),
            "10 curvature pairs (scipy's; both paths)": dict(
                optimizer=OnePath("both", n, memory=10)
            ),
            "the log path alone (OnePath('log'))": dict(optimizer=OnePath("log", n)),
            "the softplus path alone (the peers' coordinates; OnePath('softplus'))": dict(
                optimizer=OnePath("softplus", n)
            ),
        }
        if with_variants
        else {}
    )
    extra = {
        label: _our_optimisation(estimator, X, y, X_test, y_test, start, **params)
        for label, params in variants.items()
    }
    for name in available:
        runs[name] = peers.ask("optimise", library=name)

    # the same bound at the same hyperparameters and absolute jitter
    points = {"start": start}
    if "GPflow" in runs:
        optimum = runs["GPflow"]
        points["GPflow's optimum"] = {
            key: optimum[key] for key in ("variance", "lengthscales", "noise")
        }
    # every library's optimum in one metric, GPflow's (absolute jitter 1e-6)
    optima = {"sklunlearn": _hyperparameters(fitted)}
    for name in available:
        optima[name] = {
            key: runs[name][key] for key in ("variance", "lengthscales", "noise")
        }
    for name, point in optima.items():
        bound = _our_evaluation(estimator, X, y, Z, **point, absolute_jitter=1e-6)
        runs[name]["common"] = -bound()[0]
    agreement = {}
    for label, point in points.items():
        bound = -_our_evaluation(estimator, X, y, Z, **point, absolute_jitter=1e-6)()[0]
        agreement[label] = {"sklunlearn": bound}
        for name in available:
            reply = peers.ask("evaluate", library=name, **point, jitter=1e-6, repeats=1)
            agreement[label][name] = reply["bound"]

    unfit_seconds, refits = _forget_against_refits(
        fitted, X, y, Z, forget, peers, available, 2 * rounds - 1
    )
    _print_table(n, evaluation, runs, agreement, unfit_seconds, refits, forget.sum())
    paths = " / ".join(
        f"{b:.2f} ({e}{', stopped' * (how == 'stopped')})"
        for b, e, how in runs["sklunlearn"]["paths"]
    )
    print(f"sklunlearn's two paths, log / softplus: final bound (evaluations) {paths}")
    for label, (fitted_other, run) in extra.items():
        run = run["sklunlearn"]
        point = _hyperparameters(fitted_other)
        bound = -_our_evaluation(estimator, X, y, Z, **point, absolute_jitter=1e-6)()[0]
        print(
            f"sklunlearn with {label}: {run['seconds']:.3f} s, {run['evaluations']} "
            f"evaluations, final bound {run['bound']:.2f} (own jitter), {bound:.2f} at "
            f"jitter 1e-6, held-out R^2 {run['r2']:.4f}"
        )


def _forget_against_refits(fitted, X, y, Z, forget, peers, available, rounds):
    """Seconds of ``partial_unfit`` of the ``forget`` rows and of each library's
    refit on the others at the fitted hyperparameters, in interleaved rounds.

    Each ``partial_unfit`` runs on a copy made outside the timing. Returns
    ``(unfit, refits)``, each ``{"median": ..., "fastest": ...}`` over the
    rounds (the fastest round is the one least disturbed by other jobs); the
    refits' values are dicts by library.
    """
    from sklunlearn.gaussian_process import SparseGPRegressor

    fixed = dict(
        kernel=fitted.kernel_,
        inducing_points=Z,
        noise_variance=fitted.noise_variance_,
        optimizer=None,
    )
    X_forget, y_forget, X_kept, y_kept = X[forget], y[forget], X[~forget], y[~forget]
    times = {name: [] for name in ["unfit", "sklunlearn", *available]}
    for _ in range(rounds):
        for name in available:
            reply = peers.ask("refit", library=name, **_hyperparameters(fitted), repeats=1)
            times[name].append(reply["seconds"])
        # Our refit between the peers' and partial_unfit: the peers' thread pools
        # may still spin for a while after answering.
        times["sklunlearn"].append(
            median_seconds(lambda: SparseGPRegressor(**fixed).fit(X_kept, y_kept), 1)
        )
        twin = copy.deepcopy(fitted)
        began = time.perf_counter()
        twin.partial_unfit(X_forget, y_forget)
        times["unfit"].append(time.perf_counter() - began)
    unfit = times.pop("unfit")
    refits = {
        statistic: {name: float(reduce(t)) for name, t in times.items()}
        for statistic, reduce in (("median", np.median), ("fastest", np.min))
    }
    return {"median": float(np.median(unfit)), "fastest": float(np.min(unfit))}, refits


def _our_optimisation(estimator, X, y, X_test, y_test, start, **params):
    """Our fit from ``start``: the estimator and its row of the table."""
    progress = io.StringIO()
    optimizer = params.get("optimizer")
    began = time.perf_counter()
    with contextlib.redirect_stdout(progress):
        fitted = estimator(**start, verbose=int(optimizer is None), **params).fit(X, y)
    seconds = time.perf_counter() - began
    lines = progress.getvalue().splitlines()
    paths = []
    if optimizer is None:
        # "L-BFGS-B stopped after <iterations> iterations and <evaluations> evaluations: .."
        evaluations = int(lines[-1].split()[6])
        # "<Log|Softplus> path <ended|stopped> at <bound> after <evaluations> .."
        paths = [
            (float(words[4]), int(words[6]), words[2])
            for words in (line.split() for line in lines)
            if words[1:2] == ["path"] and words[2] in ("ended", "stopped")
        ]
    else:
        evaluations = optimizer.evaluations
    row = {
        "seconds": seconds,
        "bound": fitted.log_marginal_likelihood_value_,
        "r2": r2(y_test, fitted.predict(X_test)),
        "evaluations": evaluations,
        "paths": paths,
    }
    return fitted, {"sklunlearn": row}


def _print_table(n, evaluation, runs, agreement, unfit_seconds, refits, n_forget):
    names = list(evaluation)
    print("| | " + " | ".join([*names, *(f"{p} / ours" for p in names[1:])]) + " |")
    print("|---" * (2 * len(names)) + "|")

    def row(label, values, ratio=True, fmt="{:.3f}"):
        cells = [fmt.format(v) if v is not None else "-" for v in values]
        ratios = [f"{v / values[0]:.2f}x" if ratio else "" for v in values[1:]]
        print(f"| {label} | " + " | ".join(cells + ratios) + " |")

    row("one bound + gradient (s)", [evaluation[k] for k in names])
    row("full optimisation (s)", [runs[k]["seconds"] for k in names])
    row("bound evaluations", [runs[k]["evaluations"] for k in names], False, "{}")
    row("final bound (own jitter)", [runs[k]["bound"] for k in names], False, "{:.2f}")
    row(
        "final bound, all at jitter 1e-6",
        [runs[k]["common"] for k in names],
        False,
        "{:.2f}",
    )
    row("held-out R^2", [runs[k]["r2"] for k in names], False, "{:.4f}")
    for label, bounds in agreement.items():
        row(f"bound at {label}, jitter 1e-6", [bounds[k] for k in names], False, "{:.6f}")
        worst = max(abs(bounds[k] / bounds["sklunlearn"] - 1) for k in names)
        print(
            f"|   largest relative difference | {worst:.1e} |" + " |" * (2 * len(names) - 2)
        )
    for statistic in ("median", "fastest"):
        row(
            f"refit on {n - n_forget:,} rows, fixed hyperparameters (s, {statistic})",
            [refits[statistic][k] for k in names],
        )
        unfit = unfit_seconds[statistic]
        print(
            f"partial_unfit of {n_forget} rows ({statistic}): {unfit:.4f} s; refit / "
            "partial_unfit: "
            + ", ".join(f"{k} {refits[statistic][k] / unfit:.0f}x" for k in names)
        )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[5000, 50000])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--no-peers", action="store_true", help="sklunlearn only")
    parser.add_argument(
        "--no-variants", action="store_true", help="our defaults only, no other settings"
    )
    parser.add_argument(
        "--draws", type=int, nargs="+", help="ours only, on these data seeds"
    )
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.serve:
        serve()
        return
    os.environ.update(ONE_THREAD)
    from threadpoolctl import threadpool_limits

    from sklunlearn.exceptions import UnlearningWarning

    warnings.simplefilter("ignore", UnlearningWarning)
    if arguments.draws:
        with threadpool_limits(1):
            draws(arguments.sizes, arguments.draws)
        return
    venv = os.environ.get("SKLUNLEARN_PEERS_VENV", "/tmp/sklunlearn-peers")
    peers = None
    try:
        if not arguments.no_peers:
            peers = PeerProcess(venv)
    except (OSError, subprocess.CalledProcessError) as error:
        print(f"peers unavailable ({error}); sklunlearn only")
    try:
        with threadpool_limits(1), tempfile.TemporaryDirectory() as directory:
            for n in arguments.sizes:
                compare(n, peers, directory, arguments.rounds, not arguments.no_variants)
    finally:
        if peers is not None:
            peers.close()


if __name__ == "__main__":
    main()
