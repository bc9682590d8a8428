"""Where a warning points: the user's call, not this package's internals."""

import os
import sys

import joblib
import sklearn

__all__ = ["caller_stacklevel"]

# Frames a warning skips: this package's own, and scikit-learn's and joblib's (method
# wrappers such as ``_fit_context``, the Pipeline our pipelines extend, GridSearchCV,
# cross-validation and their workers), so that it names the line of user code that
# made the call, however deep the meta-estimator that made it.
_SKIPPED = tuple(
    os.path.dirname(os.path.abspath(module.__file__)) + os.sep
    for module in (sys.modules[__package__], sklearn, joblib)
)


def caller_stacklevel():
    """The ``stacklevel`` that makes a warning issued by the calling function name
    the first frame outside this package, scikit-learn and joblib."""
    frame, level = sys._getframe(1), 1
    while frame.f_back is not None:
        if not os.path.abspath(frame.f_code.co_filename).startswith(_SKIPPED):
            break
        frame, level = frame.f_back, level + 1
    return level
