"""Internals of the ``sklunlearn`` command line; :mod:`sklunlearn.cli` is its entry."""
