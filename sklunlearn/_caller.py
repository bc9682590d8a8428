"""Where a warning points: the user's call, not this package's internals."""

import os
import sys

import sklearn.base
import sklearn.pipeline
import sklearn.utils._param_validation

__all__ = ["caller_stacklevel"]

# Frames a warning skips: this package's own, scikit-learn's method wrappers
# (``_fit_context``, ``fit_transform``, ``validate_params``) and the Pipeline our
# pipelines extend, so that it names the line of user code that made the call,
# however deep the pipeline that forwarded it.
_INTERNAL_FILES = (os.path.dirname(os.path.abspath(__file__)) + os.sep,)
_WRAPPER_FILES = tuple(
    os.path.abspath(module.__file__)
    for module in (sklearn.base, sklearn.pipeline, sklearn.utils._param_validation)
)


def caller_stacklevel():
    """The ``stacklevel`` that makes a warning issued by the calling function name
    the first frame outside this package and scikit-learn's method wrappers."""
    frame, level = sys._getframe(1), 1
    while frame.f_back is not None:
        path = os.path.abspath(frame.f_code.co_filename)
        if not (path.startswith(_INTERNAL_FILES) or path in _WRAPPER_FILES):
            break
        frame, level = frame.f_back, level + 1
    return level
