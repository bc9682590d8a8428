"""Utilities for estimator authors: :mod:`sklunlearn.utils.estimator_checks`."""

__all__ = ["estimator_checks"]
