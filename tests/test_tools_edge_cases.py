"""Edge cases of the tools: UnlearningAudit's forget set, predictive_kl's weights, the
unlearning checks on list and diagonal posteriors and on pipelines."""

import re

import numpy as np
import pytest
from _unlearning_toys import ToyUnlearningClassifier
from scipy.special import expit
from sklearn.preprocessing import FunctionTransformer
from sklearn.utils.validation import check_is_fitted, validate_data

from sklunlearn.linear_model import BayesianLinearRegression
from sklunlearn.metrics import predictive_kl
from sklunlearn.model_selection import UnlearningAudit
from sklunlearn.pipeline import make_unlearning_pipeline
from sklunlearn.posterior import DiagonalGaussianPosterior
from sklunlearn.utils.estimator_checks import (
    check_forget_equals_refit,
    check_forget_report,
    check_ledger_refuses_rows_not_learned,
    check_unlearning_estimator,
    yield_unlearning_checks,
)


@pytest.fixture
def regression_data():
    rng = np.random.RandomState(0)
    X = rng.randn(40, 3)
    return X, X @ [1.0, -2.0, 0.5] + 0.3 * rng.randn(40)


# ------------------------------------------------ UnlearningAudit's forget set
@pytest.mark.parametrize(
    "chosen, message",
    [
        ([], "forget set has 0 of 40 rows"),
        (np.array([], dtype=np.int64), "forget set has 0 of 40 rows"),
        ([3, 40], r"indices \[40\] outside \[0, 40\)"),
        ([5000], r"indices \[5000\] outside"),
        ([-1], r"indices \[-1\] outside"),
        ([2, -40], r"indices \[-40\] outside"),
    ],
)
def test_audit_rejects_empty_and_out_of_range_indices(regression_data, chosen, message):
    X, y = regression_data
    audit = UnlearningAudit(BayesianLinearRegression(), forget_size=lambda X, y: chosen)
    with pytest.raises(ValueError, match=message):
        audit.fit(X, y)
    assert not hasattr(audit, "forget_mask_")


def test_audit_forgets_exactly_the_indices_returned(regression_data):
    X, y = regression_data
    rows = [0, 7, 39, 7]
    audit = UnlearningAudit(BayesianLinearRegression(), forget_size=lambda X, y: rows)
    audit.fit(X, y)
    assert np.array_equal(np.flatnonzero(audit.forget_mask_), [0, 7, 39])
    keep = np.setdiff1d(np.arange(40), rows)
    retrained = BayesianLinearRegression().fit(X[keep], y[keep])
    np.testing.assert_allclose(audit.retrained_estimator_.coef_, retrained.coef_)


def test_audit_docstring_example_tunes_only_unlearning_parameters():
    """The score must not choose model hyperparameters; the example must not invite it."""
    doc = UnlearningAudit.__doc__
    tuned = re.findall(r"estimator__(\w+)", doc.split("Examples")[1])
    assert tuned and all(name.startswith("unlearning") for name in tuned), tuned
    assert "must not be\n    used to choose the model's own hyperparameters" in doc


# ------------------------------------------------------ predictive_kl's weights
@pytest.fixture
def two_regressors(regression_data):
    X, y = regression_data
    full = BayesianLinearRegression().fit(X, y)
    retrained = BayesianLinearRegression().fit(X[10:], y[10:])
    return full, retrained, X


@pytest.mark.parametrize(
    "make_weights",
    [
        lambda n: -np.ones(n),
        lambda n: np.r_[np.ones(n - 1), -1.0],
        lambda n: np.zeros(n),
        lambda n: np.r_[np.ones(n - 1), np.nan],
        lambda n: np.r_[np.ones(n - 1), np.inf],
    ],
    ids=["negative", "one-negative", "all-zero", "nan", "inf"],
)
def test_predictive_kl_rejects_bad_weights(two_regressors, make_weights):
    full, retrained, X = two_regressors
    with pytest.raises(ValueError):
        predictive_kl(full, retrained, X, sample_weight=make_weights(X.shape[0]))


def test_predictive_kl_with_zero_weights_is_mean_over_the_others(two_regressors):
    full, retrained, X = two_regressors
    weights = np.r_[np.zeros(15), np.full(25, 2.0)]
    assert predictive_kl(full, retrained, X, sample_weight=weights) == pytest.approx(
        predictive_kl(full, retrained, X[15:]), rel=1e-12
    )


# ------------------------------- unlearning checks: list and diagonal posteriors
class ExposedPosteriorToy(ToyUnlearningClassifier):
    """Exact toy whose ``posterior_`` is a one-vs-rest list or a diagonal posterior.

    Predictions always use the current posterior (``current_``); with
    ``stale=True`` the exposed ``posterior_`` keeps the first fit's, a defect
    only a comparison of ``posterior_`` can see.
    """

    def __init__(self, *, form="list", stale=False, forget_fraction=1.0):
        super().__init__(forget_fraction=forget_fraction)
        self.form = form
        self.stale = stale

    def _change(self, X, y, sample_weight, sign, reset):
        exposed = getattr(self, "posterior_", None)
        super()._change(X, y, sample_weight, sign, reset)
        self.current_ = self.posterior_
        if reset or not self.stale:
            current = self.current_
            if self.form == "list":
                exposed = [current]
            else:
                exposed = DiagonalGaussianPosterior(
                    current.mean, np.diag(current.precision)
                )
        self.posterior_ = exposed
        return self

    def predict_proba(self, X):
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=np.float64)
        p = expit(np.hstack([X, np.ones((X.shape[0], 1))]) @ self.current_.mean)
        return np.column_stack([1.0 - p, p])


@pytest.mark.parametrize("form", ["list", "diagonal"])
def test_forget_equals_refit_compares_list_and_diagonal_posteriors(form):
    broken = ExposedPosteriorToy(form=form, stale=True)
    with pytest.raises(AssertionError, match=r"posterior_(\[0\])?\.mean differs"):
        check_forget_equals_refit("ExposedPosteriorToy", broken)
    # the same estimator with an up-to-date posterior_ passes every check
    check_unlearning_estimator(ExposedPosteriorToy(form=form))


# --------------------------------- unlearning checks: a pipeline's ledger checks
@pytest.mark.filterwarnings("ignore::sklunlearn.exceptions.UnlearningWarning")
def test_pipeline_ledger_checks_run():
    pipe = make_unlearning_pipeline(FunctionTransformer(), BayesianLinearRegression())
    checks = list(yield_unlearning_checks(pipe))
    assert check_ledger_refuses_rows_not_learned in checks
    assert check_forget_report in checks
    check_ledger_refuses_rows_not_learned("UnlearningPipeline", pipe)
    check_forget_report("UnlearningPipeline", pipe)
    without = make_unlearning_pipeline(
        FunctionTransformer(), BayesianLinearRegression(ledger=False)
    )
    assert check_ledger_refuses_rows_not_learned not in list(
        yield_unlearning_checks(without)
    )
