"""The built-in L-BFGS-B of the sparse GPs against the box's first step.

With every variable bounded on both sides, L-BFGS-B's first trial step is the
whole projected gradient; on a bound summed over thousands of rows it can land
on the corner of the hyperparameters' bounds (a constant predictor), where the
run stops. The references here are scipy's L-BFGS-B run as it was, within the
same bounds, passed as a callable ``optimizer``.
"""

import warnings

import numpy as np
import pytest
import scipy.optimize
from scipy.special import expit
from sklearn.exceptions import ConvergenceWarning
from sklearn.gaussian_process.kernels import RBF
from sklearn.gaussian_process.kernels import ConstantKernel as C

from sklunlearn.gaussian_process import SparseGPRegressor
from sklunlearn.gaussian_process._inducing import select_inducing_points
from sklunlearn.gaussian_process._sgpr import minimize_within_bounds

D = 8


def _plain_lbfgsb(obj_func, initial_theta, bounds):
    """scipy's L-BFGS-B within ``bounds`` on the objective as it is."""
    result = scipy.optimize.minimize(
        obj_func, initial_theta, method="L-BFGS-B", jac=True, bounds=bounds
    )
    return result.x, result.fun


def _benchmark_rows(n, seed, m):
    """benchmarks/bench_sparse_gp.py's synthetic rows and k-means inducing points."""
    rng = np.random.RandomState(seed)
    X = rng.uniform(-2, 2, size=(n, D))
    frequencies = rng.uniform(0.5, 1.5, size=D)
    y = np.sin(X * frequencies).sum(axis=1) / np.sqrt(D) + 0.1 * rng.randn(n)
    return X, y, select_inducing_points(X, np.ones(n), m, random_state=0)


def _fit(X, y, Z, **params):
    """The benchmark's start: signal variance, length scales and noise 1."""
    estimator = SparseGPRegressor(
        kernel=C(1.0) * RBF(np.ones(D)), inducing_points=Z, noise_variance=1.0, **params
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        estimator.fit(X, y)
    at_bounds = [w for w in caught if issubclass(w.category, ConvergenceWarning)]
    return estimator, at_bounds


def _plateau(scale):
    """``scale * h`` on [-10, 10]: h has its minimum -1 near 1 and a flat
    plateau at -0.5 towards 10, the box's side that the gradient at 0 points at."""

    def objective(x):
        near = np.exp(-((x - 1.0) ** 2))
        far = expit(4.0 * (x - 6.0))
        value = -near - 0.5 * far
        gradient = 2.0 * (x - 1.0) * near - 2.0 * far * (1.0 - far)
        return scale * float(value[0]), scale * gradient

    return objective


def test_first_step_on_the_plateau_is_run_again_from_the_start():
    objective, bounds, start = _plateau(1000.0), np.array([[-10.0, 10.0]]), np.zeros(1)
    # the cause: the whole gradient (736) as the first step, projected on the box
    plain = scipy.optimize.minimize(
        objective, start, method="L-BFGS-B", jac=True, bounds=bounds
    )
    assert plain.x[0] == 10.0
    messages = []
    result = minimize_within_bounds(
        objective, start, bounds, 1000.0, notify=messages.append
    )
    assert result.x[0] == pytest.approx(1.0, abs=1e-4)
    assert result.fun == pytest.approx(-1000.0, rel=1e-8)
    assert result.nfev > plain.nfev
    assert len(messages) == 1 and "objective / 1000" in messages[0]
    # a run that starts at a bound it ends at is not repeated, nor one of
    # order one (its first step is of order one already)
    assert minimize_within_bounds(objective, bounds[:, 1], bounds, 1000.0).nfev == 1
    small = minimize_within_bounds(
        _plateau(1.0), start, bounds, 1.0, notify=messages.append
    )
    assert small.x[0] == pytest.approx(1.0, abs=1e-4)
    assert len(messages) == 1


def test_default_fit_leaves_the_corner_of_the_bounds(capsys):
    # the benchmark's data seed 2 at 3,500 rows: the smallest of those tried
    # where the old optimiser stops on the corner
    X, y, Z = _benchmark_rows(3500, 2, 200)
    old, old_warnings = _fit(X, y, Z, optimizer=_plain_lbfgsb)
    new, new_warnings = _fit(X, y, Z, verbose=1)
    # the old end: every length scale at 1e5, the signal variance at 1e-5
    np.testing.assert_allclose(old.kernel_.k2.length_scale, 1e5)
    assert old.kernel_.k1.constant_value == pytest.approx(1e-5)
    assert len(old_warnings) == D + 1
    assert old.log_marginal_likelihood_value_ < -3000
    assert new_warnings == []
    assert np.all(new.kernel_.k2.length_scale < 1e3)
    assert new.log_marginal_likelihood_value_ > old.log_marginal_likelihood_value_ + 5000
    # the bound reported is the bound at the hyperparameters returned
    theta = np.append(new.kernel_.theta, np.log(new.noise_variance_))
    np.testing.assert_allclose(
        new.log_marginal_likelihood(theta, X=X, y=y),
        new.log_marginal_likelihood_value_,
        rtol=1e-10,
    )
    assert new.score(X, y) > 0.8 > old.score(X, y) + 0.5
    # verbose: the repetition announced, the iterations of every run counted
    lines = capsys.readouterr().out.splitlines()
    notices = [line for line in lines if line.startswith("L-BFGS-B ended at bounds of")]
    assert len(notices) == 1
    iterations = [line for line in lines if line.startswith("Iteration")]
    assert lines[-1].startswith("L-BFGS-B stopped after")
    assert int(lines[-1].split()[3]) == len(iterations)
    assert int(iterations[-1].split()[1].rstrip(",")) == len(iterations)


def test_optimum_unchanged_where_the_old_optimiser_was_fine():
    # no hyperparameter ends at a bound: the same run, to round-off
    X, y, Z = _benchmark_rows(3000, 1, 50)
    old, _ = _fit(X, y, Z, optimizer=_plain_lbfgsb)
    new, _ = _fit(X, y, Z)
    assert new.log_marginal_likelihood_value_ == pytest.approx(
        old.log_marginal_likelihood_value_, rel=1e-12
    )
    np.testing.assert_allclose(new.kernel_.theta, old.kernel_.theta, rtol=1e-10)
    np.testing.assert_allclose(new.noise_variance_, old.noise_variance_, rtol=1e-10)


def _recorded_scales(monkeypatch, module):
    """The ``scale`` each fit hands to :func:`minimize_within_bounds`."""
    scales = []

    def recording(objective, initial, bounds, scale, **options):
        scales.append(scale)
        return minimize_within_bounds(objective, initial, bounds, scale, **options)

    monkeypatch.setattr(module, "minimize_within_bounds", recording)
    return scales


@pytest.mark.parametrize("factor", [0.25, 3.0])
def test_repeated_run_divides_by_the_total_row_weight(monkeypatch, factor):
    # a weighted bound sums w_i times each row's terms: its gradient, and so the
    # first step the retry is there to tame, grows with the total weight
    import sklunlearn.gaussian_process._sgpc as sgpc
    import sklunlearn.gaussian_process._sgpr as sgpr
    from sklunlearn.gaussian_process import SparseGPClassifier

    rng = np.random.RandomState(0)
    X = rng.randn(60, 2)
    y = X[:, 0] + 0.1 * rng.randn(60)
    weights = factor * rng.uniform(0.5, 1.5, 60)
    scales = _recorded_scales(monkeypatch, sgpr)
    SparseGPRegressor(inducing_points=X[:8]).fit(X, y, sample_weight=weights)
    assert scales == [pytest.approx(weights.sum(), rel=1e-12)]
    scales = _recorded_scales(monkeypatch, sgpc)
    SparseGPClassifier(inducing_points=X[:8], optimizer="fmin_l_bfgs_b").fit(
        X, y > 0, sample_weight=weights
    )
    assert scales == [pytest.approx(weights.sum(), rel=1e-12)]
