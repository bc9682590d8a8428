"""The unlearning checks: every estimator of the package passes them, broken ones fail."""

import numpy as np
import pytest
from _reference import self_check_warnings
from _unlearning_toys import (
    AcceptsUnfittedToy,
    ClaimsExactToy,
    NonAtomicToy,
    RelearnsClassesToy,
    ToyUnlearningClassifier,
    WeightIgnoringToy,
)
from sklearn.datasets import load_breast_cancer
from sklearn.gaussian_process.kernels import RBF
from sklearn.preprocessing import FunctionTransformer, StandardScaler

from sklunlearn.gaussian_process import SparseGPClassifier, SparseGPRegressor
from sklunlearn.linear_model import BayesianLinearRegression, BayesianLogisticRegression
from sklunlearn.pipeline import make_unlearning_pipeline
from sklunlearn.utils.estimator_checks import (
    check_forget_equals_refit,
    check_forget_improves_on_doing_nothing,
    check_partial_fit_partial_unfit_identity,
    check_partial_unfit_keeps_fitted_metadata,
    check_partial_unfit_not_fitted,
    check_rejected_calls_leave_state_unchanged,
    check_unlearning_estimator,
    check_weighted_forgetting,
    check_zero_weight_forgetting_is_no_op,
    is_exact_unlearner,
    parametrize_with_unlearning_checks,
    yield_unlearning_checks,
)


class ExactSparseGPRegressor(SparseGPRegressor):
    """SparseGPRegressor declaring the exactness its docstring documents for fixed
    inducing points, kernel and noise."""

    _unlearning_is_exact = True


# SparseGPRegressor does not declare _unlearning_is_exact yet; the subclass
# above declares what its docstring promises, so that the exact checks run on it.
INDUCING_POINTS = np.random.RandomState(5).randn(8, 3)


def _package_estimators():
    """Every estimator of the package, as users build them."""
    return [
        BayesianLinearRegression(),
        BayesianLinearRegression(fit_intercept=False),
        BayesianLogisticRegression(),
        BayesianLogisticRegression(unlearning="eubo"),
        BayesianLogisticRegression(unlearning="eubo", unlearning_lambda=0.1),
        BayesianLogisticRegression(unlearning="rkl", random_state=0),
        ExactSparseGPRegressor(
            kernel=RBF(1.5),
            inducing_points=INDUCING_POINTS,
            noise_variance=0.3,
            optimizer=None,
            normalize_y=True,
        ),
        # inducing points chosen from the rows: a refit picks other ones
        SparseGPRegressor(inducing_points=8, optimizer=None, random_state=0),
        SparseGPClassifier(kernel=RBF(1.5), inducing_points=INDUCING_POINTS),
        SparseGPClassifier(
            kernel=RBF(1.5), inducing_points=INDUCING_POINTS, unlearning="eubo"
        ),
        SparseGPClassifier(
            kernel=RBF(1.5),
            inducing_points=INDUCING_POINTS,
            unlearning="rkl",
            random_state=0,
        ),
        SparseGPClassifier(inducing_points=8, random_state=0),
    ]


def _expected_failed_checks(estimator):
    # Known failures go here, {check name: reason}; they are strict xfails.
    # (unlearning='rkl' failed check_zero_weight_forgetting_is_no_op until
    # bab1397 made zero-weight forgetting a no-op.)
    params = estimator.get_params()
    if params.get("unlearning") == "eubo" and params.get("unlearning_lambda", 0.0) > 0:
        return {
            "check_forget_honours_weights": (
                "the adjusted likelihood (Nguyen et al. 2020) divides out the forgotten "
                "rows' likelihood only where q(theta|D) > lambda max q: it forgets less "
                "than the requested weight by design"
            )
        }
    return {}


@parametrize_with_unlearning_checks(
    _package_estimators(), expected_failed_checks=_expected_failed_checks
)
def test_package_estimators(estimator, check):
    check(estimator)


@parametrize_with_unlearning_checks(
    [
        ToyUnlearningClassifier(),
        ToyUnlearningClassifier(forget_fraction=1.0),
        make_unlearning_pipeline(FunctionTransformer(), BayesianLinearRegression()),
        # approximate: the scaler keeps the forgotten rows' statistics
        make_unlearning_pipeline(StandardScaler(), BayesianLinearRegression()),
    ]
)
@pytest.mark.filterwarnings("ignore::sklunlearn.exceptions.UnlearningWarning")
def test_toy_and_pipeline_pass(estimator, check):
    check(estimator)


# Broken: partial_unfit forgets nothing (declared approximate).
DOES_NOTHING = ToyUnlearningClassifier(forget_fraction=0.0)


@pytest.mark.parametrize(
    "estimator, failing_check",
    [
        (ClaimsExactToy(), check_forget_equals_refit),
        (ClaimsExactToy(), check_partial_fit_partial_unfit_identity),
        (ClaimsExactToy(), check_weighted_forgetting),
        (DOES_NOTHING, check_forget_improves_on_doing_nothing),
        (DOES_NOTHING, check_partial_fit_partial_unfit_identity),
        (DOES_NOTHING, check_weighted_forgetting),
        (NonAtomicToy(), check_rejected_calls_leave_state_unchanged),
        (NonAtomicToy(), check_partial_unfit_not_fitted),
        (WeightIgnoringToy(), check_weighted_forgetting),
        (WeightIgnoringToy(), check_zero_weight_forgetting_is_no_op),
        (WeightIgnoringToy(), check_rejected_calls_leave_state_unchanged),
        (AcceptsUnfittedToy(), check_partial_unfit_not_fitted),
        (RelearnsClassesToy(), check_partial_unfit_keeps_fitted_metadata),
    ],
    ids=lambda value: getattr(value, "__name__", type(value).__name__),
)
def test_broken_estimators_are_caught(estimator, failing_check):
    with pytest.raises(AssertionError):
        failing_check(type(estimator).__name__, estimator)
    with pytest.raises(AssertionError):
        check_unlearning_estimator(estimator)


def test_exactness_declaration():
    assert is_exact_unlearner(BayesianLinearRegression())
    assert not is_exact_unlearner(BayesianLogisticRegression())
    # a property: exactness may depend on the parameters
    assert is_exact_unlearner(ToyUnlearningClassifier(forget_fraction=1.0))
    assert not is_exact_unlearner(ToyUnlearningClassifier(forget_fraction=0.5))
    exact_checks = list(yield_unlearning_checks(BayesianLinearRegression()))
    approximate_checks = list(yield_unlearning_checks(ToyUnlearningClassifier()))
    assert check_forget_equals_refit in exact_checks
    assert check_forget_equals_refit not in approximate_checks
    assert check_forget_improves_on_doing_nothing in approximate_checks
    # pipelines: exact when every earlier step is stateless and the last is exact
    assert is_exact_unlearner(
        make_unlearning_pipeline(FunctionTransformer(), BayesianLinearRegression())
    )
    assert not is_exact_unlearner(
        make_unlearning_pipeline(StandardScaler(), BayesianLinearRegression())
    )
    assert not is_exact_unlearner(
        make_unlearning_pipeline(FunctionTransformer(), BayesianLogisticRegression())
    )


def test_expected_failures_are_strict_xfails():
    decorator = parametrize_with_unlearning_checks(
        [ClaimsExactToy()],
        expected_failed_checks=lambda est: {
            "check_forget_equals_refit": "forgets 90% of each row"
        },
    )
    params = decorator.args[1]
    marked = [p for p in params if p.marks]
    assert len(marked) == 1
    assert "check_forget_equals_refit" in marked[0].id
    (mark,) = marked[0].marks
    assert mark.name == "xfail" and mark.kwargs["strict"] is True
    assert mark.kwargs["reason"] == "forgets 90% of each row"


# ----------------------------------------------- the self-check's warning text
def test_laplace_self_check_warning_starts_with_the_steps_name():
    """Half of breast_cancer nearest one row, weak prior: the step is worse than doing
    nothing (against the retrain here), and its warning says which step it is."""
    X, y = load_breast_cancer(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    centre = X[np.random.default_rng(0).integers(X.shape[0])]
    order = np.argsort(((X - centre) ** 2).sum(axis=1))
    forget, remain = np.sort(order[: X.shape[0] // 2]), np.sort(order[X.shape[0] // 2 :])
    est = BayesianLogisticRegression(alpha=0.01).fit(X, y)
    full = est.posterior_
    retrained = BayesianLogisticRegression(alpha=0.01).fit(X[remain], y[remain])
    (message,) = self_check_warnings(est, X[forget], y[forget])
    ratio = est.posterior_.kl_divergence(retrained.posterior_) / full.kl_divergence(
        retrained.posterior_
    )
    assert ratio > 1.0
    assert message.startswith(
        "The one-step Laplace divide-out is not supported by the forgotten rows' likelihood"
    ), message


def test_uib_self_check_warning_on_a_network_starts_with_the_steps_name():
    from sklunlearn.neural_network import BayesianMLPRegressor

    rng = np.random.RandomState(0)
    X = rng.uniform(-3, 3, (300, 1))
    y = np.sin(2 * X[:, 0]) + 0.5 * X[:, 0] + 0.1 * rng.randn(300)
    est = BayesianMLPRegressor(
        hidden_layer_sizes=(20,),
        random_state=0,
        max_iter=3000,
        tol=1e-8,
        unlearning="uib",
    ).fit(X, y)
    forget = np.sort(rng.choice(len(X), 30, replace=False))
    messages = self_check_warnings(est, X[forget], y[forget])
    assert messages, "the 'uib' step on this network is re-evaluated and warns"
    assert messages[0].startswith(
        "The 'uib' step on a model nonlinear in its parameters is not supported"
    ), messages[0]
