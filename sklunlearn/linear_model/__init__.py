"""Linear models that forget: Bayesian linear and logistic regression."""

from ._bayesian_linear import BayesianLinearRegression
from ._logistic import BayesianLogisticRegression
from ._sufficient_statistics import CompensatedStatistics, LinearStatistics, RoundOff

__all__ = [
    "BayesianLinearRegression",
    "BayesianLogisticRegression",
    "CompensatedStatistics",
    "LinearStatistics",
    "RoundOff",
]
