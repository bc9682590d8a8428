"""Sparse Gaussian processes that forget: regression and binary classification."""

from ._bound import SparseStatistics
from ._sgpc import SparseGPClassifier
from ._sgpr import SparseGPRegressor

__all__ = ["SparseGPClassifier", "SparseGPRegressor", "SparseStatistics"]
