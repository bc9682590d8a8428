"""scikit-learn's estimator checks on BayesianLogisticRegression.

Its tags declare sparse input, so the sparse-matrix and sparse-array checks
run too; there are no expected failures.
"""

from sklearn.utils.estimator_checks import parametrize_with_checks

from sklunlearn.linear_model import BayesianLogisticRegression


@parametrize_with_checks(
    [
        BayesianLogisticRegression(),
        BayesianLogisticRegression(fit_intercept=False, alpha=0.5),
        BayesianLogisticRegression(n_jobs=2),
    ]
)
def test_sklearn_compatible(estimator, check):
    check(estimator)
