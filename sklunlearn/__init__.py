"""sklunlearn: scikit-learn compatible Bayesian estimators that forget training data."""

import importlib

__version__ = "0.1.0.dev0"

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


def __getattr__(name):
    """``ForgetReport`` and the submodules, imported when first used (PEP 562).

    ``import sklunlearn`` then costs nothing but this file: the command line
    handles Ctrl-C before scikit-learn is imported, and ``__version__`` is cheap.
    """
    if name == "ForgetReport":
        from .base import ForgetReport

        globals()[name] = ForgetReport
        return ForgetReport
    if not name.startswith("__"):
        # Any submodule, as an eager package gave those its own imports loaded
        # (``sklunlearn.base`` after ``import sklunlearn``).
        try:
            return importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"{__name__}.{name}":
                raise
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
