"""sklunlearn: scikit-learn compatible Bayesian estimators that forget training data."""

__version__ = "0.1.0.dev0"

from .base import ForgetReport

__all__ = [
    "ForgetReport",
    "datasets",
    "exceptions",
    "gaussian_process",
    "linear_model",
    "metrics",
    "model_selection",
    "neural_network",
    "pipeline",
    "posterior",
    "unlearning",
    "utils",
]
