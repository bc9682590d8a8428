"""The built-in L-BFGS-B of the sparse GPs against the box's first step.

With every variable bounded on both sides, L-BFGS-B's first trial step is the
whole projected gradient; on a bound summed over thousands of rows it can land
on the corner of the hyperparameters' bounds (a constant predictor), where the
run stops. The references here are scipy's L-BFGS-B run as it was, within the
same bounds and with the regressor's memory, passed as a callable ``optimizer``.
"""

import warnings

import numpy as np
import pytest
import scipy.optimize
from scipy.special import expit
from sklearn.datasets import load_breast_cancer
from sklearn.exceptions import ConvergenceWarning
from sklearn.gaussian_process.kernels import RBF
from sklearn.gaussian_process.kernels import ConstantKernel as C
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from sklunlearn.gaussian_process import SparseGPRegressor
from sklunlearn.gaussian_process._inducing import select_inducing_points
from sklunlearn.gaussian_process._sgpr import (
    _REGRESSION_MEMORY,
    _Interpolates,
    _softplus_lbfgsb,
    _warn_abnormal,
    minimize_within_bounds,
)

D = 8


def _plain_lbfgsb(obj_func, initial_theta, bounds):
    """scipy's L-BFGS-B within ``bounds`` on the objective as it is."""
    result = scipy.optimize.minimize(
        obj_func,
        initial_theta,
        method="L-BFGS-B",
        jac=True,
        bounds=bounds,
        options={"maxcor": _REGRESSION_MEMORY},
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
    # data on which plain L-BFGS-B stops on the corner of the bounds
    X, y, Z = _benchmark_rows(3500, 2, 200)
    old, old_warnings = _fit(X, y, Z, optimizer=_plain_lbfgsb)
    new, new_warnings = _fit(X, y, Z, verbose=1)
    # plain L-BFGS-B's end: every length scale and the signal variance at a bound
    np.testing.assert_allclose(old.kernel_.k2.length_scale, 1e5)
    assert old.kernel_.k1.constant_value == pytest.approx(1e-5)
    assert len(old_warnings) == D + 1
    assert old.log_marginal_likelihood_value_ < -3000
    assert not [w for w in new_warnings if "bound" in str(w.message)]
    # inside the bounds: a decade or more below the upper end of every length scale
    assert np.all(new.kernel_.k2.length_scale < 1e4)
    assert new.log_marginal_likelihood_value_ > old.log_marginal_likelihood_value_ + 5000
    # the bound reported is the bound at the hyperparameters returned (to the
    # round-off of a sum over 3,500 rows whose log-determinants nearly cancel,
    # with K_ZZ conditioned as the 1e-12 relative jitter allows, computed by two
    # routes: the fit's statistics solve row by row, the optimiser's bound blocked)
    theta = np.append(new.kernel_.theta, np.log(new.noise_variance_))
    np.testing.assert_allclose(
        new.log_marginal_likelihood(theta, X=X, y=y),
        new.log_marginal_likelihood_value_,
        rtol=5e-8,
    )
    _, gradient = new.log_marginal_likelihood(theta, eval_gradient=True, X=X, y=y)
    # Round-off decides whether L-BFGS-B's last line search fails there (ABNORMAL,
    # a ConvergenceWarning): the end is an optimum of the bound, a sum over 3,500
    # rows whose gradient at the start is in the thousands, either way.
    assert np.abs(gradient).max() < 0.1
    assert all("ABNORMAL" in str(w.message) for w in new_warnings)
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


def _softplus_reference(obj_func, initial_theta, bounds):
    """scipy's L-BFGS-B in the peers' coordinates, written out: each
    hyperparameter ``exp(theta) = lower + log(1 + e^x)``, the lower bound in the
    transform and the upper one L-BFGS-B's."""
    lower, upper = np.exp(bounds[:, 0]), np.exp(bounds[:, 1])

    def theta_of(x):
        return np.log(lower + np.logaddexp(0.0, x))

    def objective(x):
        value, gradient = obj_func(theta_of(x))
        return value, gradient * expit(x) / np.exp(theta_of(x))

    def x_of(softplus):
        return softplus + np.log(-np.expm1(-softplus))

    result = scipy.optimize.minimize(
        objective,
        x_of(np.exp(initial_theta) - lower),
        method="L-BFGS-B",
        jac=True,
        bounds=[(None, x_of(gap)) for gap in upper - lower],
        options={"maxcor": _REGRESSION_MEMORY},
    )
    return theta_of(result.x), result.fun


def _softplus_then_log(obj_func, initial_theta, bounds):
    """The softplus path alone, continued by plain L-BFGS-B in log coordinates."""
    end, _ = _softplus_reference(obj_func, initial_theta, bounds)
    return _plain_lbfgsb(obj_func, end, bounds)


def _both_paths_and_each_alone(n, seed, m):
    """The default fit of a draw, its log path alone and its softplus path alone
    (continued in log coordinates, as the default does with a softplus end).

    With one BLAS thread: the round-off of a matrix product depends on the
    number of threads, and so, over tens of iterations, does each path.
    """
    X, y, Z = _benchmark_rows(n, seed, m)
    with threadpool_limits(1):
        default, _ = _fit(X, y, Z)
        log, _ = _fit(X, y, Z, optimizer=_plain_lbfgsb)
        softplus, _ = _fit(X, y, Z, optimizer=_softplus_then_log)
    return default, log, softplus


def test_two_paths_keep_the_softplus_end_where_the_log_path_ends_lower():
    default, log, softplus = _both_paths_and_each_alone(3000, 5, 50)
    # another local optimum along each path: the softplus one 375 nats higher
    assert (
        softplus.log_marginal_likelihood_value_ > log.log_marginal_likelihood_value_ + 300
    )
    assert default.log_marginal_likelihood_value_ == pytest.approx(
        softplus.log_marginal_likelihood_value_, rel=1e-7
    )
    # the same optimum (a long length scale is nearly free there: compare predictions)
    X, _, _ = _benchmark_rows(3000, 5, 50)
    np.testing.assert_allclose(default.predict(X), softplus.predict(X), atol=1e-4)


def test_two_paths_keep_the_log_end_where_the_softplus_path_ends_lower():
    default, log, softplus = _both_paths_and_each_alone(1000, 1, 50)
    assert (
        log.log_marginal_likelihood_value_ > softplus.log_marginal_likelihood_value_ + 200
    )
    # nothing ends at a bound: the log path is the plain run, to round-off
    assert default.log_marginal_likelihood_value_ == pytest.approx(
        log.log_marginal_likelihood_value_, rel=1e-12
    )
    np.testing.assert_allclose(default.kernel_.theta, log.kernel_.theta, rtol=1e-10)
    np.testing.assert_allclose(default.noise_variance_, log.noise_variance_, rtol=1e-10)


def test_verbose_reports_both_paths_and_the_end_kept(capsys):
    X, y, Z = _benchmark_rows(3000, 5, 50)
    with threadpool_limits(1):
        fitted, _ = _fit(X, y, Z, verbose=1)
    lines = capsys.readouterr().out.splitlines()
    log = [line for line in lines if line.startswith("Log path ended at")]
    softplus = [line for line in lines if line.startswith("Softplus path ended at")]
    assert len(log) == len(softplus) == 1
    assert "second path: again from the start in softplus coordinates" in log[0]
    assert softplus[0].endswith("higher: continued in log coordinates within the bounds")
    log_bound, softplus_bound = (float(line.split()[4]) for line in (log[0], softplus[0]))
    assert softplus_bound > log_bound + 300
    # the continuation only gains
    assert fitted.log_marginal_likelihood_value_ >= softplus_bound - 1e-4
    # every evaluation is counted (two paths and the continuation), every
    # iteration printed
    log_evaluations, softplus_evaluations = (
        int(line.split()[6]) for line in (log[0], softplus[0])
    )
    assert int(lines[-1].split()[6]) > log_evaluations + softplus_evaluations
    iterations = [line for line in lines if line.startswith("Iteration")]
    assert int(lines[-1].split()[3]) == len(iterations)


def test_softplus_path_respects_the_bounds():
    # a quadratic in theta with its minimum above the first variable's upper
    # bound, below the second's lower bound, inside for the third; the fourth
    # (not positive, say an inducing location) is moved as it is
    target = np.array([3.0, -3.0, 0.5, -2.0])
    bounds = np.array([[-1.0, 1.0], [-1.0, 1.0], [-1.0, 1.0], [-np.inf, np.inf]])
    positive = np.array([True, True, True, False])

    def objective(theta):
        return float(np.sum((theta - target) ** 2)), 2.0 * (theta - target)

    evaluated = []

    def recorded(theta):
        evaluated.append(theta.copy())
        return objective(theta)

    iterates = []
    result = _softplus_lbfgsb(
        recorded, np.zeros(4), bounds, positive, callback=lambda r: iterates.append(r.x)
    )
    assert result.x[0] == pytest.approx(1.0, abs=1e-12)  # on the upper bound
    assert -1.0 < result.x[1] < -1.0 + 1e-4  # towards the lower one, inside
    np.testing.assert_allclose(result.x[2:], target[2:], atol=1e-5)
    assert result.fun == pytest.approx(objective(result.x)[0], rel=1e-12)
    # every evaluation and every iterate reported is within the bounds, in theta
    for theta in evaluated + iterates:
        assert np.all(theta[:3] >= -1.0) and np.all(theta[:3] <= 1.0 + 1e-12)
    assert len(iterates) == result.nit


def test_minimize_within_bounds_with_positive_runs_the_second_path():
    # two minima: the log path (whole gradient as its first step) lands near
    # one, the softplus path (unit first step) near the other
    objective, bounds = _plateau(1000.0), np.array([[-10.0, 10.0]])
    notes = []
    one = minimize_within_bounds(objective, np.zeros(1), bounds, 1.0)
    two = minimize_within_bounds(
        objective, np.zeros(1), bounds, 1.0, notify=notes.append, positive=np.ones(1, bool)
    )
    alone = _softplus_lbfgsb(objective, np.zeros(1), bounds, np.ones(1, bool))
    assert two.fun <= min(one.fun, alone.fun)
    assert two.nfev >= one.nfev + alone.nfev
    assert len(notes) >= 2


def test_auto_jitter_ends_as_high_as_an_absolute_one_in_any_unit():
    """jitter='auto' costs little at the large signal variance of nearly
    linear features, as the peers' absolute jitter does (a relative 1e-8 ends
    lower), and is the same model for targets in any unit (an absolute one is not)."""
    X, y, Z = _benchmark_rows(1000, 0, 50)
    jitters = {
        "auto": dict(jitter="auto"),
        "relative 1e-8 (the default)": dict(jitter=1e-8),
        "absolute 1e-8": dict(jitter=1e-8, relative_jitter=False),
    }
    bounds = {}
    with threadpool_limits(1):
        for scale in (1.0, 1e-3):
            for name, params in jitters.items():
                fitted, at_bounds = _fit(X, scale * y, Z, **params)
                assert not at_bounds
                bounds[scale, name] = fitted.log_marginal_likelihood_value_
    # in the benchmark's unit the absolute jitter's optimum, 0.2 nats above 1e-8's
    assert bounds[1.0, "auto"] >= bounds[1.0, "absolute 1e-8"] - 0.01
    assert bounds[1.0, "auto"] > bounds[1.0, "relative 1e-8 (the default)"] + 0.1
    # targets / 1000 without normalize_y: the absolute jitter ends 200 nats lower
    assert bounds[1e-3, "auto"] > bounds[1e-3, "relative 1e-8 (the default)"]
    assert bounds[1e-3, "auto"] > bounds[1e-3, "absolute 1e-8"] + 100


def test_two_paths_keep_a_higher_end_with_a_hyperparameter_at_its_upper_bound():
    # breast_cancer's second feature from the others, raw targets (mean about 19):
    # the log path ends at a constant predictor, the softplus path far higher with
    # the signal variance at its upper bound, which such targets need
    features = load_breast_cancer().data
    X = StandardScaler().fit_transform(np.delete(features, 1, axis=1))
    y = features[:, 1]
    kernel = C(1.0) * RBF(1.0)
    with threadpool_limits(1):
        fits = {
            name: SparseGPRegressor(
                kernel=kernel, inducing_points=20, random_state=0, optimizer=optimizer
            ).fit(X, y)
            for name, optimizer in [
                ("default", "fmin_l_bfgs_b"),
                ("log", _plain_lbfgsb),
                ("softplus", _softplus_then_log),
            ]
        }
    bound = {name: fit.log_marginal_likelihood_value_ for name, fit in fits.items()}
    assert bound["softplus"] > bound["log"] + 300
    assert fits["softplus"].kernel_.k1.constant_value == pytest.approx(1e5)
    assert fits["default"].kernel_.k1.constant_value == pytest.approx(1e5)
    assert bound["default"] == pytest.approx(bound["softplus"], rel=1e-7)
    assert fits["log"].score(X, y) < 0.01 < 0.8 < fits["default"].score(X, y)


def test_two_paths_refuse_a_higher_end_that_is_degenerate():
    # the plateau's two minima: the softplus path's end is the lower objective
    objective, bounds = _plateau(1000.0), np.array([[-10.0, 10.0]])
    positive = np.ones(1, bool)
    one = minimize_within_bounds(objective, np.zeros(1), bounds, 1.0)
    two = minimize_within_bounds(objective, np.zeros(1), bounds, 1.0, positive=positive)
    assert two.fun < one.fun - 0.1
    notes = []
    refused = minimize_within_bounds(
        objective,
        np.zeros(1),
        bounds,
        1.0,
        notify=notes.append,
        positive=positive,
        degenerate=lambda theta: bool(np.isclose(theta[0], two.x[0])),
    )
    np.testing.assert_allclose(refused.x, one.x)
    assert refused.fun == one.fun
    assert refused.nfev > one.nfev
    assert notes[-1].endswith("a degenerate end: keeping the log path's end")
    # the noise variance at its lower bound is SparseGPRegressor's degenerate end
    interpolates = _Interpolates(np.log(1e-8), 2)
    assert interpolates(np.array([0.3, 11.5, np.log(1e-8)]))
    assert not interpolates(np.array([0.3, np.log(1e-8), np.log(2e-8)]))


def test_a_failed_last_line_search_warns_where_it_stopped():
    # a gradient off by a term the value lacks: the line search finds no decrease,
    # with the second variable at its lower bound, its gradient pushing outwards
    def objective(x):
        value = (x[0] - 0.3) ** 2 + (x[1] + 1.0) ** 2 + 0.1 * x[0] ** 4
        gradient = [2.0 * (x[0] - 0.3) + 0.4 * x[0] ** 3 + 0.5, 2.0 * (x[1] + 1.0)]
        return float(value), np.array(gradient)

    bounds = np.array([[-1.0, 2.0], [0.0, 1.0]])
    result = scipy.optimize.minimize(
        objective, np.array([1.0, 0.0]), method="L-BFGS-B", jac=True, bounds=bounds
    )
    assert "ABNORMAL" in result.message and result.x[1] == 0.0
    with pytest.warns(ConvergenceWarning) as caught:
        _warn_abnormal(result, bounds)
    message = str(caught[0].message)
    assert "ABNORMAL" in message
    assert f"at log_marginal_likelihood_value_ {-result.fun:.10g}" in message
    # the free variable's gradient, not that of the one at its limit (2)
    assert f"entries up to {abs(result.jac[0]):.2g} where no limit is active" in message
    # no "bound" in the text: the at-bounds warnings are told apart by it
    assert "bound" not in message
    assert abs(result.jac[1]) > abs(result.jac[0])


def test_an_irrelevant_ard_feature_at_its_upper_bound_is_explained_as_such():
    """A length scale of an anisotropic kernel that grows to its upper bound is the
    fit finding the feature irrelevant; the warning says so, not only to scale the
    features (which the user has done)."""
    rng = np.random.RandomState(0)
    X = rng.randn(80, 2)
    y = np.sin(2 * X[:, 0]) + 0.1 * rng.randn(80)  # the second feature is noise
    kernel = C(1.0) * RBF(np.ones(2), length_scale_bounds=(1e-2, 1e2))
    estimator = SparseGPRegressor(kernel=kernel, inducing_points=20, random_state=0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        estimator.fit(X, y)
    messages = [str(w.message) for w in caught if "length_scale[1]" in str(w.message)]
    assert messages, [str(w.message) for w in caught]
    assert "the fit finds that feature irrelevant" in messages[0]
    assert not any("length_scale[0]" in str(w.message) for w in caught)
