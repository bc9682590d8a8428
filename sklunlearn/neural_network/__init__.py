"""Bayesian neural networks that forget.

:class:`BayesianMLPRegressor` is a fully connected network with a Gaussian
prior over its weights and a Laplace (or Gaussian variational) posterior;
:class:`MLPPredictor` is the network as a predictor of the forgetting core
(:mod:`sklunlearn.unlearning`), for methods that work on any predictor.
"""

from ._mlp import ALPHA_RANGE, MAX_GGN_WEIGHTS, BayesianMLPRegressor
from ._predictor import MLPPredictor

__all__ = ["ALPHA_RANGE", "MAX_GGN_WEIGHTS", "BayesianMLPRegressor", "MLPPredictor"]
