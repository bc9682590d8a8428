"""scikit-learn's estimator checks on the network configurations that tests/test_mlp.py
('ggn', with alpha learned too) and tests/test_mlp_diagonal.py ('diag') leave out, in a
file of their own to keep each file's time in bounds. The forgetting method is not among
them: these checks do not forget."""

import warnings

from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.estimator_checks import parametrize_with_checks
from test_mlp import EXPECTED_FAILED_CHECKS

from sklunlearn.neural_network import BayesianMLPRegressor


# A fixed noise spares every fit the evidence's rounds of MAP fits.
@parametrize_with_checks(
    [
        BayesianMLPRegressor(
            hidden_layer_sizes=(3,), curvature="last_layer", noise_variance=1.0,
            max_iter=50, random_state=0,
        ),
        BayesianMLPRegressor(
            hidden_layer_sizes=(3,), inference="vi", noise_variance=1.0, max_iter=50,
            vi_max_iter=10, random_state=0,
        ),
        BayesianMLPRegressor(
            hidden_layer_sizes=(3,), curvature="diag", inference="vi", max_iter=50,
            vi_max_iter=50, random_state=0,
        ),
    ],
    expected_failed_checks=lambda estimator: EXPECTED_FAILED_CHECKS,
)  # fmt: skip
def test_sklearn_compatible(estimator, check):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        check(estimator)
