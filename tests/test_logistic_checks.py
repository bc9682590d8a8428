"""scikit-learn's estimator checks on BayesianLogisticRegression."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from sklunlearn.linear_model import BayesianLogisticRegression


@parametrize_with_checks(
    [
        BayesianLogisticRegression(),
        BayesianLogisticRegression(fit_intercept=False, alpha=0.5),
    ]
)
def test_sklearn_compatible(estimator, check):
    check(estimator)
