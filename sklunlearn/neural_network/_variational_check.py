"""The self-check of the Laplace divide-out from a Gaussian variational posterior.

A Gaussian variational posterior's precision holds the rows' curvature averaged
under it, ``alpha I + sum_i E_q[c_i] J_i J_i'``, and the divide-out of
``inference='vi'`` removes the rows' expected gradient and curvature
(:func:`~sklunlearn.unlearning.site_terms`). Its step is checked as the Laplace
one is (:func:`~sklunlearn.unlearning._checks.linearisation_check`), with the
rows re-evaluated under the new posterior ``q_r = N(m_r, P^-1)`` instead of at
its mean: the expected quantities of the new posterior against those of the old.
"""

from dataclasses import dataclass, replace

from ..unlearning._checks import linearisation_check
from ..unlearning._model import Model

__all__ = ["variational_step_check"]

_VARIATIONAL_STEP = "The one-step Laplace divide-out of the variational posterior"
_VARIATIONAL_ADVICE = (
    "The forgotten rows' expected gradient and curvature under the new posterior "
    "differ from what the step assumed; the result may be worse than not forgetting. "
    "Fit again on the remaining rows."
)


@dataclass(frozen=True)
class _ExpectedModel(Model):
    """A model whose ``terms`` at ``theta`` average the rows under ``N(theta, S)``.

    ``spread`` is the posterior whose covariance ``S`` the averages use; only
    its covariance matters, the mean is replaced by ``theta``.
    """

    spread: object = None

    def terms(self, X, y, weights, theta, *, with_value=True, vectors=None):
        """:class:`LikelihoodTerms` of the rows averaged under ``N(theta, S)``.

        Each row's ``f`` has the predictor's linearised moments, so the averages
        are the likelihood's one-dimensional expectations; the products use the
        Jacobian at ``theta`` (as :meth:`Model.expected_terms`). With ``vectors``
        the curvature is only applied to them, ``O(n p s)``.
        """
        mean, variance = self.predictor.moments(X, self.spread.with_mean(theta))
        value, gradient, curvature = self.likelihood.expected_terms(mean, variance, y)
        return self._summed(X, theta, weights, value, gradient, curvature, vectors)


def variational_step_check(model, X, y, weights, before, after, terms, record, union=None):
    """Re-evaluate the forgotten rows under the divided-out variational posterior.

    ``after`` is the divide-out from ``before`` of the rows' expected terms
    ``terms`` (under ``before``). :func:`linearisation_check` compares them with
    the rows' expected gradient and curvature under ``after``,
    ``E_{q_r}[g_i] J_i(m_r)`` and ``E_{q_r}[c_i] J_i(m_r)' J_i(m_r)``, over the
    step's own Newton decrement and KL, at the thresholds of the Laplace
    check: where the expectations do not move as the linearisation predicts,
    the step is no better supported than a Laplace step that fails it. The
    bounds that settle small Laplace steps (:func:`linearisation_bounds`) need
    a predictor linear in its weights, which a network is not.

    Parameters
    ----------
    model : Model
        The network's model.
    X, y, weights : ndarrays
        The forgotten rows, targets and weights.
    before, after : GaussianPosterior
        The variational posterior and its divide-out.
    terms : LikelihoodTerms
        The rows' expected terms under ``before``.
    record : LaplaceDiagnostics
        The divide-out's diagnostics.
    union : LikelihoodTerms or None, default=None
        The expected terms under ``before`` of every row divided out, when
        earlier requests' rows were divided out with these; None: ``terms``.

    Returns
    -------
    record : LaplaceDiagnostics
        ``record`` with the check's two measures and, when either exceeds its
        threshold, its warning added.
    """
    if not record.move > 0.0:
        return record
    expected = _ExpectedModel(model.predictor, model.likelihood, model.prior, after)
    mean_error, covariance_error, message = linearisation_check(
        expected, X, y, weights, before, after, terms, union,
        step=_VARIATIONAL_STEP, advice=_VARIATIONAL_ADVICE,
    )  # fmt: skip
    warnings = record.warnings if message is None else (*record.warnings, message)
    return replace(
        record,
        warnings=warnings,
        mean_relinearisation=mean_error,
        covariance_relinearisation=covariance_error,
    )
