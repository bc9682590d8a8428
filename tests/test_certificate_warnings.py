"""The request that voids a valid removal certificate says so, once, whatever the reason.

docs/certified_removal.md promises an UnlearningWarning when a forget breaks
the guarantee: a method the certificate does not cover, a floored precision,
the budget, or a ``partial_fit``. The warning is the certificate's reason,
and a forget's is also in ``forget_report_.warnings``.
"""

import copy
import pickle
import warnings

import pytest
from sklearn.datasets import load_breast_cancer, load_digits
from sklearn.gaussian_process.kernels import RBF
from sklearn.gaussian_process.kernels import ConstantKernel as C
from sklearn.preprocessing import StandardScaler, normalize

from sklunlearn.exceptions import UnlearningWarning
from sklunlearn.gaussian_process import SparseGPClassifier
from sklunlearn.linear_model import BayesianLogisticRegression
from sklunlearn.unlearning import certificate_constant

RESTORE = "refit from the remaining rows to restore the guarantee"


@pytest.fixture(scope="module")
def digits_3_8():
    """Digits 3 and 8, rows scaled to unit norm (Guo et al.'s ||x|| <= 1)."""
    X, y = load_digits(return_X_y=True)
    keep = (y == 3) | (y == 8)
    return normalize(X[keep]), (y[keep] == 8).astype(int)


def _logistic(**params):
    options = dict(alpha=5.0, fit_intercept=False, removal_noise=1.0, random_state=0)
    return BayesianLogisticRegression(**{**options, **params})


def _call(method, *args):
    """Call ``method``; the UnlearningWarnings issued and their file names."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        method(*args)
    caught = [w for w in caught if issubclass(w.category, UnlearningWarning)]
    return [str(w.message) for w in caught], [w.filename for w in caught]


def _voided(messages):
    return [message for message in messages if RESTORE in message]


def _check_voided_once(est, messages, match):
    """The forget warned once with the certificate's reason, which the report carries."""
    certificate = est.certificate_
    assert not certificate.valid and match in certificate.reason
    assert _voided(messages) == [certificate.reason]
    assert list(est.forget_report_.warnings).count(certificate.reason) == 1
    assert est.forget_report_.diagnostics.certificate == certificate


@pytest.mark.parametrize("method", ["eubo", "rkl", "uib"])
def test_a_method_the_certificate_does_not_cover(digits_3_8, method):
    X, y = digits_3_8
    est = _logistic(removal_epsilon=1e6, unlearning=method).fit(X[:300], y[:300])
    assert est.certificate_.valid
    messages, _ = _call(est.partial_unfit, X[:2], y[:2])
    _check_voided_once(est, messages, f"unlearning={method!r}")
    # Already void: the next forget does not repeat it.
    messages, _ = _call(est.partial_unfit, X[2:4], y[2:4])
    assert _voided(messages) == [] and _voided(est.forget_report_.warnings) == []
    assert not est.certificate_.valid


def test_sparse_gp_classifier_warns_too():
    X, y = load_breast_cancer(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    est = SparseGPClassifier(
        kernel=C(1.0) * RBF(5.0),
        inducing_points=X[::20],
        removal_noise=1.0,
        removal_epsilon=1e6,
        unlearning="eubo",
        random_state=0,
    ).fit(X, y)
    assert est.certificate_.valid
    messages, _ = _call(est.partial_unfit, X[1:6], y[1:6])
    _check_voided_once(est, messages, "unlearning='eubo'")


def test_a_floored_precision(digits_3_8):
    # Without the ledger, rows that were never learned can be "forgotten": their
    # curvature is not in the posterior, so the precision falls below the prior.
    X, y = digits_3_8
    est = _logistic(removal_epsilon=1e6, ledger=False).fit(X[:100], y[:100])
    assert est.certificate_.valid
    messages, _ = _call(est.partial_unfit, X[200:205], y[200:205])
    assert est.forget_report_.diagnostics.clipped_eigenvalue < 0.0
    _check_voided_once(est, messages, "floored")


def test_the_budget_keeps_its_text(digits_3_8):
    X, y = digits_3_8
    est = _logistic(removal_epsilon=1.0).fit(X[:300], y[:300])
    start = est.certificate_.residual_bound
    after = copy.deepcopy(est).partial_unfit(X[:2], y[:2]).certificate_.residual_bound
    assert after > start
    # A budget halfway between the bound before and after this forget.
    budget = 0.5 * (start + after)
    est.set_params(removal_epsilon=budget * certificate_constant(1e-4) / est.removal_noise)
    assert est.certificate_.valid  # computed at the fit, within the budget
    messages, _ = _call(est.partial_unfit, X[:2], y[:2])
    _check_voided_once(est, messages, "exceeds the budget")
    assert est.certificate_.reason.startswith("The accumulated residual bound")
    messages, _ = _call(est.partial_unfit, X[2:4], y[2:4])
    assert _voided(messages) == []


def test_covered_forgets_within_the_budget_do_not_warn(digits_3_8):
    X, y = digits_3_8
    for method in ("laplace", "lcodec"):
        est = _logistic(removal_epsilon=1e6, unlearning=method).fit(X[:300], y[:300])
        messages, _ = _call(est.partial_unfit, X[:2], y[:2])
        assert est.certificate_.valid
        assert _voided(messages) == [] and _voided(est.forget_report_.warnings) == []


def test_a_certificate_that_was_never_valid_is_not_warned_about(digits_3_8):
    X, y = digits_3_8
    est = _logistic(removal_noise=0.0, unlearning="eubo").fit(X[:300], y[:300])
    assert not est.certificate_.valid  # no noise: no epsilon is certified
    messages, _ = _call(est.partial_unfit, X[:2], y[:2])
    assert _voided(messages) == []
    messages, _ = _call(est.partial_fit, X[300:310], y[300:310])
    assert messages == []


def test_partial_fit_after_removals(digits_3_8):
    X, y = digits_3_8
    est = _logistic(removal_epsilon=1e6).fit(X[:300], y[:300])
    est.partial_unfit(X[:2], y[:2])
    assert est.certificate_.valid
    messages, files = _call(est.partial_fit, X[300:310], y[300:310])
    assert not est.certificate_.valid and "partial_fit" in est.certificate_.reason
    assert messages == [est.certificate_.reason] and RESTORE in messages[0]
    assert files == [__file__]  # points at the caller
    messages, _ = _call(est.partial_fit, X[310:320], y[310:320])
    assert messages == []


def test_a_partial_fit_refused_by_its_warning_leaves_the_estimator_as_it_was(digits_3_8):
    X, y = digits_3_8
    est = _logistic(removal_epsilon=1e6).fit(X[:300], y[:300])
    est.partial_unfit(X[:2], y[:2])
    before = pickle.dumps({k: v for k, v in vars(est).items() if k != "_lock"})
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnlearningWarning)
        with pytest.raises(UnlearningWarning, match="partial_fit"):
            est.partial_fit(X[300:310], y[300:310])
    assert pickle.dumps({k: v for k, v in vars(est).items() if k != "_lock"}) == before
    assert est.certificate_.valid
