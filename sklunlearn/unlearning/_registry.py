"""The registry of forgetting methods: a name, a function, the parameters it reads."""

import inspect
from typing import NamedTuple

__all__ = ["ForgettingMethod", "METHOD_NAMES", "get_method", "register_method"]

_METHODS = {}
# The registered names. Estimators pass this very set to ``StrOptions`` in
# their ``_parameter_constraints``, which keeps a reference to it, so a method
# registered after import is accepted by ``set_params`` and ``GridSearchCV``.
METHOD_NAMES = set()


class ForgettingMethod(NamedTuple):
    """A registered forgetting method.

    Attributes
    ----------
    name : str
        The value of an estimator's ``unlearning`` parameter that selects it.
    function : callable
        ``function(posterior, model, X, y, weights, **parameters)`` returning
        ``(new_posterior, diagnostics)``.
    parameters : tuple of str
        Names of the estimator parameters the function takes as keywords.
    """

    name: str
    function: object
    parameters: tuple


def register_method(name, method, *, parameters=None, replace=False):
    """Register a forgetting method under ``name``.

    Parameters
    ----------
    name : str
        Value of the estimators' ``unlearning`` parameter that selects it.
    method : callable
        ``method(posterior, model, X, y, weights, **parameters)``:
        ``posterior`` is the stored :class:`~sklunlearn.posterior.GaussianPosterior`
        ``q(theta|D)``; ``model`` a :class:`~sklunlearn.unlearning.Model`
        (predictor, likelihood, prior); ``X``, ``y``, ``weights`` the rows to
        forget as the predictor and the likelihood take them. It returns
        ``(new_posterior, diagnostics)``, ``diagnostics`` a record such as
        :class:`~sklunlearn.unlearning.Diagnostics` (its ``warnings`` are
        issued as UnlearningWarnings by the estimator). It must not modify
        its arguments.
    parameters : tuple of str, default=None
        Estimator parameters passed to ``method`` as keywords (among
        ``inference``, ``unlearning_lambda``, ``n_samples``, ``random_state``,
        ``max_iter``, ``tol``). None takes the keyword-only parameters of
        ``method``'s signature.
    replace : bool, default=False
        Allow replacing a method registered under the same name.

    Returns
    -------
    method : callable
        ``method`` itself, so that this can decorate a function.

    Examples
    --------
    >>> from sklunlearn.unlearning import Diagnostics, register_method
    >>> def do_nothing(posterior, model, X, y, weights):
    ...     return posterior, Diagnostics(move=0.0)
    >>> _ = register_method("do-nothing", do_nothing)
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"A method's name must be a non-empty string, got {name!r}.")
    if not callable(method):
        raise TypeError(f"method must be callable, got {type(method).__name__}.")
    if name in _METHODS and not replace:
        raise ValueError(
            f"A forgetting method named {name!r} is already registered; pass "
            "replace=True to replace it."
        )
    if parameters is None:
        parameters = tuple(
            parameter.name
            for parameter in inspect.signature(method).parameters.values()
            if parameter.kind is inspect.Parameter.KEYWORD_ONLY
        )
    _METHODS[name] = ForgettingMethod(name, method, tuple(parameters))
    METHOD_NAMES.add(name)
    return method


def get_method(name):
    """The :class:`ForgettingMethod` registered under ``name``.

    Parameters
    ----------
    name : str
        A registered name (an estimator's ``unlearning`` value).

    Returns
    -------
    method : ForgettingMethod
        Its name, function and the estimator parameters it reads.

    Raises
    ------
    ValueError
        If no method is registered under ``name``; the message lists those
        that are.
    """
    try:
        return _METHODS[name]
    except KeyError:
        raise ValueError(
            f"Unknown forgetting method {name!r}; registered: {sorted(_METHODS)}."
        ) from None
