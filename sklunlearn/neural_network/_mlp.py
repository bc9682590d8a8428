"""A Bayesian neural network regressor that forgets (Rawat et al. 2022's example)."""

import copy
import inspect
import math
import warnings
from numbers import Integral, Real

import numpy as np
from scipy import linalg
from sklearn.base import BaseEstimator, RegressorMixin, _fit_context
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from .._caller import caller_stacklevel
from .._dask import is_dask_collection
from .._diagonal_posterior import DiagonalGaussianPosterior
from ..base import UnlearningMixin, UpdateOutcome, check_weights
from ..exceptions import NotPositiveDefiniteError
from ..linear_model._sufficient_statistics import (
    _remaining_rows,
    check_remaining_weight,
    round_off_warning,
)
from ..posterior import GaussianPosterior
from ..unlearning import (
    METHOD_NAMES,
    GaussianNoise,
    GaussianPrior,
    Model,
    get_method,
    variational_update,
)
from ..unlearning._diagonal import diagonal_divide_out
from ..unlearning._laplace import laplace_divide_out, site_terms
from ..unlearning._uib import uib_forget
from ..utils._blas import one_blas_thread
from ._last_layer import feature_statistics, features, output_posterior, relative_error
from ._predictor import ACTIVATIONS, MLPPredictor
from ._reparameterised import reparameterised_vi
from ._training import (
    StartingPoint,
    TrainingRows,
    glorot_weights,
    mackay_alpha,
    mackay_noise,
)
from ._variational_check import variational_step_check

__all__ = [
    "ALPHA_RANGE",
    "BayesianMLPRegressor",
    "MAX_GGN_WEIGHTS",
    "MODE_DISTANCE",
    "STEP_PRECISION_SHARE",
]

# A full-covariance posterior needs O(P^2) memory and O(P^3) per factorisation:
# over more weights than this, curvature='last_layer' is suggested.
MAX_GGN_WEIGHTS = 4000
# MacKay noise updates alternate with MAP fits at most this often; they stop
# once the noise precision changes by less than this relative amount.
_MAX_NOISE_ROUNDS = 10
_NOISE_RTOL = 1e-2
# A learned alpha moves the MAP further between rounds than the noise does, so its
# fixed point gets more rounds; one that has not settled by then warns.
_MAX_EVIDENCE_ROUNDS = 30
# With alpha learned, the first rounds' MAP fits get this many iterations, doubling
# each round, so that the evidence raises alpha before the network has fitted the
# noise (MacKay re-estimated the hyperparameters during training, not after it).
_EARLY_ITER = 10
# alpha=None keeps alpha in this range: beyond it the weights' precision and the
# network's Gauss-Newton curvature differ by more than float64 can factorise.
ALPHA_RANGE = (1e-8, 1e8)
# The Laplace divide-out's step is flagged when the forgotten rows held more than this
# share of the posterior's precision along it: there they outweighed the remaining rows
# and the prior together, so the result rests on the remaining rows' curvature at the
# new weights, which a forget cannot evaluate (benchmarks/README.md, "Bayesian network
# regressor"). Half is where the two sides weigh the same.
STEP_PRECISION_SHARE = 0.5
_STEP_SHARE_MESSAGE = (
    "The one-step Laplace divide-out moved the weights along a direction in which the "
    "forgotten rows held {:.0%} of the posterior's precision (threshold {:.0%}): there "
    "the remaining rows and the prior are less informative than the forgotten rows "
    "were, and the result depends on the remaining rows' curvature at the new weights, "
    "which a forget cannot evaluate. It may be no better than not forgetting. Fit again "
    "on the remaining rows; fewer hidden units or a larger alpha make this less likely."
)
# A fit whose weights are more than this many posterior standard deviations from the
# mode (the length of one Newton step in the posterior's metric) warns: the Laplace
# posterior, and every forget, is then off by more than its own spread. A smooth
# network's L-BFGS fit that reached its tolerance ends far inside it
# (docs/neural_network.md, "The pitfalls").
MODE_DISTANCE = 1.0
_OFF_MODE = (
    "The {} fit met its stopping rule {:.3g} posterior standard deviations from the "
    "mode of its objective (the length of one Newton step from its weights, which "
    "underestimates the distance far from the mode; threshold {:g}): the Laplace "
    "posterior and every forget assume the weights are at the mode, so both are off. "
    "Increase max_iter, lower tol, or use solver='lbfgs'."
)
# Fewer residual degrees of freedom than this (total weight minus the well-determined
# weights) do not determine a learned noise variance.
_MIN_NOISE_DEGREES = 1.0
_NOISE_UNDETERMINED = (
    "noise_variance_={:.3g} was learned from rows whose total sample weight W={:.3g} "
    "leaves W - gamma={:.3g} residual degrees of freedom (fewer than {:g}) after the "
    "gamma={:.3g} well-determined weights: the weighted likelihood counts W "
    "observations, too few to determine the noise, and the estimate is unreliable "
    "(W - gamma is raised to min(W, 1), which keeps it at most the weighted mean "
    "squared error). Pass a fixed noise_variance, or give sample weights that count "
    "rows (a weight of 1 per row)."
)
# A weight total this many units in the last place of the weights ever learned and
# forgotten (the round-off of their sums) counts as zero.
_WEIGHT_ROUND_OFF = 16.0
_NOT_FINITE = (
    "The fit did not stay within float64: {} NaN or infinite ({!r}). The targets or "
    "features are too large for the network's objective: standardise X and y (and undo "
    "the scaling of y on the predictions). Nothing was changed."
)
# The forgetting methods that take a diagonal posterior (curvature='diag').
DIAGONAL_METHODS = ("laplace", "lcodec")
# A learned noise variance is kept above this fraction of the targets' variance:
# a network that interpolates its rows would otherwise drive it to zero and its
# posterior precision beyond what float64 can factorise.
_MIN_NOISE_FRACTION = 1e-6
# Targets whose spread is within this many units in the last place of their mean are
# constant: their variance is round-off.
_ROUND_OFF_SPREAD = 1e3
# A learned noise precision beta is kept at or below this times alpha / W. The output
# bias's curvature is beta W exactly (its derivative is 1 on every row), so along a
# direction the rows do not determine the posterior precision alpha I + beta J'WJ has a
# condition number of at least beta W / alpha; Cholesky in float64 fails near 1 / eps
# (4.5e15), and other weights' curvature can exceed the bias's.
_MAX_PRECISION_RATIO = 1e12
_NOISE_AT_FLOOR = (
    "A learned noise variance is kept at least W / ({:g} alpha) = {:.3g} (W={:.3g} the "
    "total sample weight, alpha={:.3g}): less noise would make the rows' curvature "
    "J'WJ / noise_variance outweigh the prior precision alpha by more than the "
    "posterior's factorisation in float64 can hold. This fit's noise_variance_ "
    "({:.3g}) {}, so the predictive standard deviation overstates the targets' noise. "
    "Standardise y (mean {:.3g}, variance {:.3g}) before fitting and forgetting, and "
    "undo it on the predictions; or raise alpha."
)
_NOISE_PAST_FLOOR = (
    "The learned noise variance ({0:.3g}), which partial_fit keeps, is now below the "
    "floor a fit on all the rows learned would keep (W / ({3:g} alpha), W={1:.3g} the "
    "total sample weight, "
    "alpha={2:.3g}): the rows' curvature over the noise outweighs the prior by more "
    "than the posterior's factorisation in float64 can hold, and later updates may "
    "fail or lose accuracy. Fit on all the rows (which learns the noise within its "
    "floor), standardise y, or raise alpha."
)
_NOT_FACTORISABLE = (
    "The posterior precision alpha I + (the rows' curvature) / noise_variance could "
    "not be factorised in float64 ({}): the rows' curvature over the noise variance "
    "outweighs the prior precision alpha={:.3g} by more than float64 can hold, as "
    "targets on a scale far below the prior's (standard deviation {:.3g}) or a tiny "
    "noise_variance ({}) make it. Standardise y (and undo it on the predictions), or "
    "pass a larger noise_variance or alpha. Nothing was changed."
)
# A learned noise variance at least the targets' own: the fit predicts no better
# than their mean, usually because the prior holds the weights far below the
# scale the targets need.
_EXPLAINS_NOTHING = (
    "The fitted network explains none of the targets' variance: noise_variance_ "
    "({:.3g}) is at least their variance ({:.3g}), so it predicts them no better than "
    "their mean. The prior N(0, 1/alpha) on the weights (alpha={}) holds them far "
    "below the scale of targets with mean {:.3g} and standard deviation {:.3g}: "
    "standardise y before fitting and forgetting (and undo it on the predictions), "
    "or lower alpha. Otherwise the features do not predict the targets."
)


def _covariance_trace(posterior):
    """``tr(Sigma)``: ``sum_j 1 / p_j`` for a diagonal posterior, else ``||R^-1||_F^2``."""
    if isinstance(posterior, DiagonalGaussianPosterior):
        return float(posterior.variance.sum())
    inverse = linalg.solve_triangular(
        posterior.precision_cholesky, np.eye(posterior.n_features), lower=False
    )
    return float(np.sum(inverse * inverse))


class BayesianMLPRegressor(UnlearningMixin, RegressorMixin, BaseEstimator):
    """Bayesian multi-layer perceptron regressor that can forget training rows.

    The network's weights ``theta`` have the prior ``N(0, alpha^-1 I)`` and
    the targets Gaussian noise, ``y ~ N(f(x; theta), noise_variance)``. The
    weights are trained to their MAP (L-BFGS or Adam); the posterior is the
    Laplace approximation at the MAP with the generalised Gauss-Newton (GGN)
    curvature over all weights (``curvature='ggn'``; its diagonal only,
    ``'diag'``, for networks too large for a full covariance), or over the
    output layer only with the hidden features fixed
    (``curvature='last_layer'``). :meth:`partial_unfit` forgets rows: exactly
    for the output layer of ``'last_layer'`` (sufficient statistics of the
    features), approximately with a registered forgetting method for
    ``'ggn'`` and ``'diag'``.

    Parameters
    ----------
    hidden_layer_sizes : array-like of shape (n_layers - 2,), default=(50,)
        Units of each hidden layer.
    activation : {'tanh', 'relu', 'logistic', 'identity'}, default='tanh'
        Activation of the hidden layers; the output is linear.
    solver : {'lbfgs', 'adam'}, default='lbfgs'
        MAP optimiser: L-BFGS-B (:func:`scipy.optimize.minimize`) on the
        flat weight vector with analytic gradients, or Adam on minibatches.
    batch_size : int or 'auto', default='auto'
        Minibatch size of Adam (``'auto'``: ``min(200, n_samples)``). A larger
        one is clipped to ``n_samples`` with a warning, as MLPRegressor does.
    learning_rate_init : float, default=1e-3
        Step size of Adam.
    max_iter : int, default=200
        Maximum L-BFGS iterations or Adam epochs per MAP fit, and the
        iteration budget passed to the forgetting method. The variational fit
        of ``inference='vi'`` has its own, ``vi_max_iter``.
    tol : float, default=1e-4
        L-BFGS: largest gradient entry of the per-row objective at which it
        stops (or at a relative decrease below ``min(2.2e-9, 1e-4 tol)``).
        Adam: the per-row objective must improve by ``tol`` within 10 epochs.
        The variational fit of ``'diag'`` stops at the same bound on the
        ELBO's gradient divided by the total sample weight. Also passed to the
        forgetting method. The per-row objective is ``loss_``'s, MLPRegressor's
        divided by the noise variance, so the same ``tol`` is ``1 /
        noise_variance`` times stricter than MLPRegressor's.
    random_state : int, RandomState instance or None, default=None
        Seed of the initial weights, Adam's minibatches, the forgetting
        methods' Monte Carlo draws and the draws of the diagonal variational
        fit (for which None means 0).
    alpha : float or None, default=1.0
        Precision of the Gaussian prior of every weight and bias. The MAP
        minimises ``sum_i (y_i - f_i)^2 / 2 + alpha noise_variance ||theta||^2
        / 2``, which is :class:`~sklearn.neural_network.MLPRegressor`'s
        objective (times ``n``) with its ``alpha`` equal to ``alpha *
        noise_variance`` (MLPRegressor does not penalise the biases). None
        learns it by maximising the Laplace evidence, with the noise when
        that is learned too: MAP fits alternate with MacKay's fixed point
        ``alpha = gamma / ||theta||^2`` from 1.0, kept within ``ALPHA_RANGE``
        (``curvature='ggn'`` only: the update needs the full-covariance
        posterior over every weight).
    noise_variance : float or None, default=None
        Variance of the Gaussian noise. None learns it by maximising the
        Laplace evidence (MacKay's fixed point, alternated with MAP fits),
        kept at least ``1e-6`` times the targets' variance and at least ``W /
        (1e12 alpha)`` (``W`` the total sample weight), below which the
        posterior precision outgrows float64 against the prior; a fit that
        reaches the latter (targets that vary far less than the prior's scale)
        warns.
    inference : {'laplace', 'vi'}, default='laplace'
        Laplace approximation at the MAP, or a Gaussian variational posterior
        started from it. With ``curvature='ggn'`` the variational posterior
        has a full covariance and is the forgetting core's deterministic
        natural-gradient fixed point with linearised expectations (see
        :func:`sklunlearn.unlearning.variational_update`). With ``'diag'`` it
        is a diagonal Gaussian fitted by L-BFGS-B on the ELBO sampled with
        reparameterised gradients over ``vi_n_samples`` draws fixed by
        ``random_state`` (see
        :func:`~sklunlearn.neural_network._reparameterised.reparameterised_vi`).
        With ``curvature='last_layer'`` both give the exact conjugate
        posterior. A learned noise variance is learned by the Laplace fit and
        kept fixed by the variational one.
    curvature : {'ggn', 'diag', 'last_layer'}, default='ggn'
        ``'ggn'``: full-covariance posterior over all weights (at most
        ``MAX_GGN_WEIGHTS`` of them). ``'diag'``: the same Laplace posterior
        with only the diagonal of its precision, ``alpha + sum_i w_i J_ij^2 /
        noise_variance`` (accumulated in row blocks; no limit on the weights
        beyond memory, ``O(p)``), or with ``inference='vi'`` the mean-field
        variational posterior started from it. ``'last_layer'``: posterior
        over the output layer given the hidden features, which stay at their
        MAP.
    unlearning : str, default='laplace'
        Forgetting method of :meth:`partial_unfit` with ``curvature='ggn'``:
        ``'laplace'``, ``'eubo'``, ``'rkl'``, or any name registered with
        :func:`sklunlearn.unlearning.register_method`. With ``'diag'``:
        ``'laplace'`` (the diagonal divide-out,
        :func:`~sklunlearn.unlearning._diagonal.diagonal_divide_out`) or
        ``'lcodec'``; any other is refused, as it needs a full covariance. Not
        used by ``'last_layer'``, whose forgetting is exact.
    unlearning_lambda : float, default=0.0
        VBU's adjusted-likelihood threshold in ``[0, 1)`` ('eubo', 'rkl').
    n_samples : int, default=1000
        Monte Carlo samples ('rkl'; 'eubo' with ``unlearning_lambda > 0``).
    unlearning_beta : float, default=1.0
        Weight of the information-bottleneck term of methods that have one
        (``'uib'``). Lower than the classifiers' 3: on a network the larger
        weight left a forget worse than doing nothing without a warning
        (benchmarks/README.md, "'uib' on a network").
    unlearning_stages : int, default=4
        Stages of methods that forget in steps.
    lcodec_n_perturbations : int, default=1000
        Perturbed copies of the forgotten rows of L-CODEC's parameter
        selection.
    lcodec_scale : float, default=0.1
        Standard deviation of L-CODEC's perturbations.
    lcodec_max_features : int or None, default=None
        Cap on the hidden units L-CODEC selects (None: no cap).
    vi_n_samples : int, default=32
        Draws of the weights whose average is the expected log-likelihood of
        the variational fit (``curvature='diag'`` with ``inference='vi'``
        only). The draws are made once per fit from ``random_state`` (0 when
        None), so the same fit gives the same posterior; more draws give an
        optimum closer to the exact ELBO's and less dependent on the seed, at
        a cost linear in their number.
    vi_max_iter : int, default=10000
        Maximum iterations of the variational fit of ``inference='vi'``
        (L-BFGS-B iterations with ``curvature='diag'``, fixed-point iterations
        with ``'ggn'``), after the MAP fit that ``max_iter`` bounds. A fit that
        stops at it gives a :class:`~sklearn.exceptions.ConvergenceWarning`.
        Not used by ``inference='laplace'`` nor by ``'last_layer'``.
    verbose : int, default=0
        Print the loss of each L-BFGS iteration or Adam epoch of the MAP
        fits, as :class:`~sklearn.neural_network.MLPRegressor` does.
    ledger : bool, default=True
        Keep keyed fingerprints of the rows learned (never the rows) in
        ``ledger_`` and refuse to forget rows that were never learned.

    Attributes
    ----------
    coefs_ : list of ndarray
        Weight matrices of the layers (posterior mean), as MLPRegressor's.
    intercepts_ : list of ndarray
        Bias vectors of the layers (posterior mean).
    n_layers_ : int
        Number of layers, input and output included: ``len(hidden_layer_sizes)
        + 2``, as MLPRegressor's.
    n_outputs_ : int
        Number of outputs: always 1 (``y`` is one-dimensional).
    out_activation_ : str
        Activation of the output layer: always ``'identity'``.
    posterior_ : GaussianPosterior or DiagonalGaussianPosterior
        ``'ggn'``: over all weights, in the order of ``coefs_[0]`` (row-major),
        ``intercepts_[0]``, ``coefs_[1]``, ... ``'diag'``: a
        :class:`~sklunlearn.posterior.DiagonalGaussianPosterior` over the
        same weights in the same order (``precision`` is a vector).
        ``'last_layer'``: over ``[coefs_[-1][:, 0], intercepts_[-1][0]]``.
    noise_variance_ : float
        Noise variance (learned at fit when ``noise_variance`` is None, then
        kept by :meth:`partial_fit` and :meth:`partial_unfit`).
    alpha_ : float
        Prior precision of the weights: ``alpha``, or the one learned at fit
        when ``alpha`` is None (then kept by :meth:`partial_fit` and
        :meth:`partial_unfit`).
    n_iter_ : int
        Iterations of the last MAP fit or forgetting method. A fit that learns
        ``noise_variance`` or ``alpha`` sums its MAP fits' iterations over the
        evidence rounds, and ``inference='vi'`` adds the variational fit's:
        unlike MLPRegressor's, it can exceed ``max_iter``.
    loss_ : float
        The minimised objective: negative log joint without constants,
        divided by the total sample weight. That is MLPRegressor's ``loss_``
        divided by ``noise_variance_`` (with its ``alpha`` equal to ``alpha *
        noise_variance_``, and the biases penalised too).
    mode_distance_ : float
        How far the last :meth:`fit` or :meth:`partial_fit` ended from the mode
        its Laplace posterior assumes, in posterior standard deviations: the
        Newton decrement ``sqrt(g' Lambda^-1 g)``, ``g`` the gradient of the
        negative log joint at the fitted weights and ``Lambda`` the Laplace
        precision (its diagonal with ``'diag'``). Beyond ``MODE_DISTANCE`` (one
        standard deviation) a :class:`~sklearn.exceptions.ConvergenceWarning`
        says so, except after an L-BFGS fit of ``activation='relu'`` that met
        its stopping rule: at the kinks of a ReLU network's objective the
        gradient does not vanish at the mode, and the decrement overstates the
        distance. Far from the mode it understates it. NaN with
        ``curvature='last_layer'``, whose output-layer posterior is solved at
        its mode given the hidden features.
    model_ : Model
        The network's :class:`~sklunlearn.unlearning.Model` over all weights
        (:class:`MLPPredictor`, GaussianNoise, the prior).
    n_samples_seen_ : int
        Number of rows with weight left. With the ledger, exact (a row
        forgotten in halves stays counted until its weight is gone); without
        it, rows learned minus rows forgotten (with a positive weight), never
        below one while weight remains: without the ledger the estimator
        cannot tell a row forgotten in part from one forgotten in full, and it
        refuses a forget on the total weight learned instead.
    forget_report_ : ForgetReport
        What the last :meth:`partial_unfit` did.
    ledger_ : Ledger
        Fingerprints of the rows learned (``ledger=True`` only).
    n_features_in_ : int
        Number of features seen during :term:`fit`.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of features seen during :term:`fit`, when ``X`` has string
        feature names.

    See Also
    --------
    sklearn.neural_network.MLPRegressor : The MAP network without a posterior.
    sklunlearn.linear_model.BayesianLinearRegression : Exact forgetting of a
        linear model.

    Notes
    -----
    Forgetting with ``curvature='last_layer'`` is exact for the output layer
    but the hidden layers (and a learned ``noise_variance_``) still carry the
    forgotten rows: the first forget of a fitted instance says so with an
    :class:`~sklunlearn.exceptions.UnlearningWarning`. With ``'ggn'`` the
    methods are approximate and report their own pitfalls (a floored
    precision; a Laplace step whose rows' gradient and curvature, re-evaluated
    at the new mean, are far from their linearisation; a Laplace step along
    which the forgotten rows held more than ``STEP_PRECISION_SHARE`` of the
    posterior's precision, where the result rests on the remaining rows'
    curvature at the new weights; a runaway EUBO). From the variational
    posterior of ``inference='vi'`` the Laplace step is checked the same way,
    with the rows' gradient and curvature averaged under the old and the new
    posterior.

    With ``'diag'`` the Newton step of the divide-out uses the diagonal
    curvature, which ignores how the weights couple and overshoots; the step
    is shortened to minimise the remaining rows' predicted gradient, their
    curvature along it estimated from the forgotten rows (see
    :func:`~sklunlearn.unlearning._diagonal.diagonal_block_step`). MacKay's
    noise update uses ``gamma = p - alpha sum_j 1 / precision_j``. From the
    variational posterior of ``inference='vi'`` the same divide-out removes the
    rows' Gauss-Newton curvature, which can exceed the expected Hessian the
    variational precision holds: the floor at the prior then warns.

    Rows in a dask array or dataframe are learned on the cluster without
    reaching the client: each evaluation of the objective and its gradient
    is one pass over the chunks (L-BFGS-B runs on the client over the
    weights), and so is each curvature and noise update. Training on them
    needs ``solver='lbfgs'`` and ``inference='laplace'``. A forget request's
    rows are gathered to the client and forgotten as in memory (see "Scaling
    out on dask" in the documentation).

    References
    ----------
    A. Rawat, J. Requeima, W. Bruinsma, R. Turner, Challenges and Pitfalls of
    Bayesian Unlearning, ICML workshop, 2022.

    D. J. C. MacKay, A practical Bayesian framework for backpropagation
    networks, Neural Computation 4(3), 1992.

    Examples
    --------
    >>> import numpy as np
    >>> from sklunlearn.neural_network import BayesianMLPRegressor
    >>> rng = np.random.RandomState(0)
    >>> X = rng.uniform(-2, 2, (200, 1))
    >>> y = np.sin(2 * X[:, 0]) + 0.1 * rng.randn(200)
    >>> est = BayesianMLPRegressor(hidden_layer_sizes=(10,), random_state=0).fit(X, y)
    >>> mean, std = est.predict(X[:3], return_std=True)
    >>> _ = est.partial_unfit(X[:5], y[:5])
    >>> est.n_samples_seen_
    195
    """

    _parameter_constraints: dict = {
        "hidden_layer_sizes": ["array-like", Interval(Integral, 1, None, closed="left")],
        "activation": [StrOptions(set(ACTIVATIONS))],
        "solver": [StrOptions({"lbfgs", "adam"})],
        "batch_size": [StrOptions({"auto"}), Interval(Integral, 1, None, closed="left")],
        "learning_rate_init": [Interval(Real, 0, None, closed="neither")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="neither")],
        "random_state": ["random_state"],
        "alpha": [None, Interval(Real, 0, None, closed="neither")],
        "noise_variance": [None, Interval(Real, 0, None, closed="neither")],
        "inference": [StrOptions({"laplace", "vi"})],
        "curvature": [StrOptions({"ggn", "diag", "last_layer"})],
        # The registry's live set of names: methods registered later are accepted.
        "unlearning": [StrOptions(METHOD_NAMES)],
        "unlearning_lambda": [Interval(Real, 0, 1, closed="left")],
        "n_samples": [Interval(Integral, 2, None, closed="left")],
        "unlearning_beta": [Interval(Real, 0, None, closed="left")],
        "unlearning_stages": [Interval(Integral, 1, None, closed="left")],
        "lcodec_n_perturbations": [Interval(Integral, 2, None, closed="left")],
        "lcodec_scale": [Interval(Real, 0, None, closed="neither")],
        "lcodec_max_features": [None, Interval(Integral, 1, None, closed="left")],
        "vi_n_samples": [Interval(Integral, 1, None, closed="left")],
        "vi_max_iter": [Interval(Integral, 1, None, closed="left")],
        "verbose": ["verbose"],
        "ledger": ["boolean"],
    }

    _model_parameters = (
        "hidden_layer_sizes",
        "activation",
        "alpha",
        "noise_variance",
        "inference",
        "curvature",
    )

    def __init__(
        self,
        *,
        hidden_layer_sizes=(50,),
        activation="tanh",
        solver="lbfgs",
        batch_size="auto",
        learning_rate_init=1e-3,
        max_iter=200,
        tol=1e-4,
        random_state=None,
        alpha=1.0,
        noise_variance=None,
        inference="laplace",
        curvature="ggn",
        unlearning="laplace",
        unlearning_lambda=0.0,
        n_samples=1000,
        unlearning_beta=1.0,
        unlearning_stages=4,
        lcodec_n_perturbations=1000,
        lcodec_scale=0.1,
        lcodec_max_features=None,
        vi_n_samples=32,
        vi_max_iter=10000,
        verbose=0,
        ledger=True,
    ):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.batch_size = batch_size
        self.learning_rate_init = learning_rate_init
        self.max_iter = max_iter
        self.tol = tol
        self.random_state = random_state
        self.alpha = alpha
        self.noise_variance = noise_variance
        self.inference = inference
        self.curvature = curvature
        self.unlearning = unlearning
        self.unlearning_lambda = unlearning_lambda
        self.n_samples = n_samples
        self.unlearning_beta = unlearning_beta
        self.unlearning_stages = unlearning_stages
        self.lcodec_n_perturbations = lcodec_n_perturbations
        self.lcodec_scale = lcodec_scale
        self.lcodec_max_features = lcodec_max_features
        self.vi_n_samples = vi_n_samples
        self.vi_max_iter = vi_max_iter
        self.verbose = verbose
        self.ledger = ledger

    # ------------------------------------------------------------ public API
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Train the network and its posterior on ``X, y`` from the prior.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), or dask collection
            Training data; a dask array or dataframe stays on its cluster.
        y : array-like of shape (n_samples,)
            Targets.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights; a weight of 2 counts as the row twice.

        Returns
        -------
        self : object
            Fitted estimator.
        """
        self.__dict__.pop("_pending_warnings", None)
        return self._learn(X, y, sample_weight, reset=True)._issue_warnings()

    def partial_fit(self, X, y, sample_weight=None):
        """Add rows: train further with the current posterior as the prior.

        With ``curvature='last_layer'`` the hidden layers stay fixed and the
        rows' feature statistics are added (exact); with ``'ggn'`` the MAP of
        the rows under the current posterior is found from its mean and the
        rows' curvature added there (online Laplace; ``'diag'`` adds its
        diagonal to the precision vector). Fits if not fitted yet.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), or dask collection
        y : array-like of shape (n_samples,)
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        self : object
        """
        self._validate_params_again()
        self.__dict__.pop("_pending_warnings", None)
        reset = "posterior_" not in self.__dict__
        return self._learn(X, y, sample_weight, reset=reset)._issue_warnings()

    def partial_unfit(self, X, y, sample_weight=None):
        """Forget rows: exactly for ``'last_layer'``, with ``unlearning`` otherwise.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), or dask collection
            Rows to forget, as they were learned. A dask array or dataframe
            is validated and fingerprinted chunk by chunk on the workers,
            then gathered to the client: a deletion request must fit in its
            memory.
        y : array-like of shape (n_samples,)
            Their targets.
        sample_weight : array-like of shape (n_samples,), default=None
            Weight to forget per row (ones by default).

        Returns
        -------
        self : object

        Raises
        ------
        ValueError
            With ``curvature='diag'`` and an ``unlearning`` method other than
            ``'laplace'`` or ``'lcodec'``; nothing is changed.

        Warns
        -----
        UnlearningWarning
            When the method's checks find the result likely worse than not
            forgetting (they miss some such results: docs/neural_network.md,
            "The pitfalls, and how they are reported"), and on the
            first forget of a fit with ``'last_layer'`` (the hidden layers
            still carry the rows) or a learned ``noise_variance_``.
        """
        return self._forget(X, y, sample_weight)

    @property
    def alpha_(self):
        """The prior precision the fit used (see the Attributes)."""
        check_is_fitted(self, "posterior_")
        return self._alpha

    def predict(self, X, return_std=False):
        """Posterior-mean network output, and the linearised predictive std.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), or dask collection
            A dask array or dataframe gives lazy dask arrays, chunked like
            its rows and computed on the workers.
        return_std : bool, default=False
            Also return ``sqrt(J Sigma J' + noise_variance_)``, ``J`` the
            Jacobian of the output in the weights the posterior covers
            (``'diag'``: ``sum_j J_j^2 / precision_j + noise_variance_``, per
            row block).

        Returns
        -------
        y_mean : ndarray of shape (n_samples,)
        y_std : ndarray of shape (n_samples,)
            Only with ``return_std=True``.
        """
        check_is_fitted(self, "posterior_")
        if is_dask_collection(X):  # lazy dask arrays, chunked like X's rows
            from .._dask import predict_rows

            return predict_rows(self, X, "predict", return_std=return_std)
        X = validate_data(self, X, reset=False, dtype=np.float64)
        predictor, theta = self.model_.predictor, self._theta
        if not return_std:
            return predictor.value(X, theta)
        if self.curvature == "last_layer":
            mean = predictor.value(X, theta)
            variance = self.posterior_.predictive_variance(features(predictor, X, theta))
        else:
            mean, variance = predictor.moments(X, self.posterior_)
        return mean, np.sqrt(variance + self.noise_variance_)

    # ------------------------------------------------------------ hooks
    def _validate_rows(self, X, y, *, reset):
        X, y = validate_data(self, X, y, reset=reset, dtype=np.float64, y_numeric=True)
        return X, y, y

    def _posterior_list(self):
        return [self.posterior_]

    def _update(self, X, y, weights, *, sign, reset):
        if sign > 0:
            return self._learn_rows(TrainingRows(X, y, weights), reset)
        # Rows of zero weight hold nothing to forget: a method must not see them, as
        # its floor or parameter selection would act on the posterior all the same.
        weighted = weights > 0
        X, y, weights = X[weighted], y[weighted], weights[weighted]
        n_rows = X.shape[0]
        forgotten = float(weights.sum())
        learned, gross = self._weight_seen
        if not self.ledger:
            # The ledger refuses rows never learned; without it only the weight can.
            tolerance = _WEIGHT_ROUND_OFF * np.finfo(float).eps * (gross + forgotten)
            check_remaining_weight(learned, forgotten, self.n_samples_seen_, tolerance)
        try:
            # A forget's products and factorisations are of at most MAX_GGN_WEIGHTS
            # weights and few rows: one BLAS thread loses little on an idle machine,
            # and threads that wait on each other on a busy one cost many times more.
            with one_blas_thread():
                if self.curvature == "last_layer":
                    outcome = self._forget_exactly(X, y, weights)
                else:
                    outcome = self._forget_approximately(X, y, weights)
        except (FloatingPointError, NotPositiveDefiniteError, linalg.LinAlgError) as exc:
            raise ValueError(
                f"The update is not finite ({exc}): standardise X and y and keep the "
                "weights moderate. Nothing was changed."
            ) from exc
        self._weight_seen = (learned - forgotten, gross + forgotten)
        self.n_samples_seen_ = _remaining_rows(
            self.n_samples_seen_, n_rows, -1, learned - forgotten
        )
        return outcome

    def _update_dask(self, rows, *, sign, reset):
        """:meth:`_update` for rows on a dask cluster (:class:`sklunlearn._dask.DaskRows`).

        Learning reads the rows through passes over the chunks; a forget
        request's rows are gathered here (see :mod:`sklunlearn._dask._mlp`).
        """
        from .._dask._mlp import mlp_update

        return mlp_update(self, rows, sign=sign, reset=reset)

    # ------------------------------------------------------------ learning
    def _learn_rows(self, rows, reset):
        """Fit (``reset``) or add the rows (a :class:`TrainingRows` or its dask twin)."""
        self._check_batch_size(rows, reset)
        # Overflow on the way is refused below, by the finiteness of the result.
        try:
            with np.errstate(over="ignore", invalid="ignore"):
                if reset:
                    self._start(rows)
                else:
                    self._add(rows)
        except (OverflowError, ZeroDivisionError, FloatingPointError) as exc:
            raise ValueError(_NOT_FINITE.format("a step went", str(exc))) from exc
        except (NotPositiveDefiniteError, linalg.LinAlgError) as exc:
            # alpha I plus a positive semi-definite curvature is positive definite: only
            # round-off, from a curvature far larger than alpha, fails to factorise it.
            _, variance = rows.target_moments()
            raise ValueError(
                _NOT_FACTORISABLE.format(
                    exc, self._alpha, np.sqrt(variance), self.noise_variance
                )
            ) from exc
        self._check_finite_fit()
        weight = rows.weight
        if reset:
            self.n_samples_seen_ = rows.n_rows
            self._weight_seen = (weight, weight)
        else:
            self.n_samples_seen_ += rows.n_rows
            learned, gross = self._weight_seen
            self._weight_seen = (learned + weight, gross + weight)
            self._check_noise_floor_after_learning()
        return UpdateOutcome(self.inference, False, n_iter=self.n_iter_)

    def _check_noise_floor_after_learning(self):
        """Warn when rows learned by ``partial_fit`` pass the learned noise's floor.

        ``fit`` keeps a learned noise precision at most ``_MAX_PRECISION_RATIO alpha
        / W``; ``partial_fit`` keeps the noise and adds weight, so the rows learned
        since can take the precision past what float64 holds against the prior.
        """
        if self.noise_variance is not None:
            return
        beta = self.model_.likelihood.noise_precision
        total = self._weight_seen[0]
        if total > 0 and beta > _MAX_PRECISION_RATIO * self._alpha / total:
            self._warn_later(
                _NOISE_PAST_FLOOR.format(
                    self.noise_variance_, total, self._alpha, _MAX_PRECISION_RATIO
                ),
                UserWarning,
            )

    def _check_batch_size(self, rows, reset):
        """Warn, as MLPRegressor does, that Adam clips a ``batch_size`` above the rows.

        Only when a MAP fit runs: ``partial_fit`` of ``'last_layer'`` has none. Rows on
        a dask cluster are refused with Adam before they get here.
        """
        if self.solver != "adam" or self.batch_size == "auto":
            return
        if not reset and self.curvature == "last_layer":
            return
        n_rows = rows.X.shape[0]
        if self.batch_size > n_rows:
            self._warn_later(
                f"Got `batch_size`={self.batch_size} larger than the sample size "
                f"({n_rows}). It is going to be clipped.",
                UserWarning,
            )

    def _check_finite_fit(self):
        """Refuse a fit whose objective, noise, weights or posterior are not finite."""
        posterior = self.posterior_
        values = {
            "loss_": self.loss_,
            "noise_variance_": self.noise_variance_,
            "the weights": self._theta,
            "posterior_.mean": posterior.mean,
        }
        # A full posterior's constructor refuses a non-finite factor, and forming its
        # precision here would cost O(P^3); a diagonal one's is a vector.
        if isinstance(posterior, DiagonalGaussianPosterior):
            values["posterior_.precision"] = posterior.precision
        bad = [name for name, value in values.items() if not np.all(np.isfinite(value))]
        if bad:
            raise ValueError(_NOT_FINITE.format(f"{', '.join(bad)} ended", self.loss_))

    def _start(self, rows):
        """Train from the prior: the predictor, the initial weights, then :meth:`_train`."""
        sizes = np.atleast_1d(np.asarray(self.hidden_layer_sizes))
        if sizes.ndim != 1 or not all(int(s) == s and s >= 1 for s in sizes.tolist()):
            raise ValueError(
                f"hidden_layer_sizes must hold positive integers, got "
                f"{self.hidden_layer_sizes!r}."
            )
        predictor = MLPPredictor((rows.n_features, *map(int, sizes), 1), self.activation)
        if self.curvature == "ggn" and predictor.n_weights > MAX_GGN_WEIGHTS:
            raise ValueError(
                f"curvature='ggn' keeps a full {predictor.n_weights} x "
                f"{predictor.n_weights} posterior precision, beyond the "
                f"{MAX_GGN_WEIGHTS} weights it is meant for. Use "
                "curvature='diag' or 'last_layer', or fewer hidden units."
            )
        if self.alpha is None and self.curvature != "ggn":
            raise ValueError(
                "alpha=None learns the prior precision from the full-covariance "
                "posterior over every weight (curvature='ggn'). 'last_layer' covers the "
                "output layer only, and 'diag' understates the posterior variances, "
                "which sends MacKay's update for alpha out of range. Pass a float alpha."
            )
        # MLPRegressor's structural attributes; the targets here are one-dimensional.
        self.n_layers_ = len(predictor.layer_sizes)
        self.n_outputs_ = 1
        self.out_activation_ = "identity"
        rng = check_random_state(self.random_state)
        theta = glorot_weights(predictor, self.activation, rng)
        self._alpha = 1.0 if self.alpha is None else float(self.alpha)
        self._warned_about_leftovers = False
        beta = self._initial_noise_precision(rows)
        learn_noise = beta if self.noise_variance is None else 0.0
        undetermined = self._train(
            predictor, rows, theta, beta, learn_noise, rng, learn_alpha=self.alpha is None
        )
        # An undetermined noise, or one at its floor, has its own warning: a prior that
        # holds the weights below the targets' scale is not the cause.
        if learn_noise and self.noise_variance_ * learn_noise >= 1.0 and not undetermined:
            mean, variance = rows.target_moments()
            self._warn_later(
                _EXPLAINS_NOTHING.format(
                    self.noise_variance_, variance, self._alpha, mean, np.sqrt(variance)
                ),
                UserWarning,
            )

    def _train(self, predictor, rows, theta, beta, learn_noise, rng, learn_alpha=False):
        """MAP from ``theta`` under the prior, then the posterior and fitted attributes.

        ``learn_noise``: 0 keeps the noise precision ``beta``; otherwise the
        inverse variance of the targets, and the MAP alternates with MacKay's
        noise update from ``beta`` (both capped at ``learn_noise /
        _MIN_NOISE_FRACTION`` and at :meth:`_max_noise_precision`).
        ``learn_alpha``: the MAP alternates with MacKay's update of the prior
        precision ``self._alpha`` too, from short MAP fits (``_EARLY_ITER``); the
        fixed point counts as settled only after a MAP fit that converged or had
        the whole ``max_iter``. Returns whether the learned noise was warned
        about as undetermined by the rows or as held at its floor.
        """
        rounds = _MAX_EVIDENCE_ROUNDS if learn_alpha else _MAX_NOISE_ROUNDS
        n_iter, posterior, settled, degrees = 0, None, True, (np.inf, 0.0)
        if learn_noise:
            beta = min(beta, self._max_noise_precision(rows))
        for round_ in range(rounds):
            prior = StartingPoint(np.zeros(predictor.n_weights), self._alpha)
            budget = min(self.max_iter, _EARLY_ITER * 2**round_) if learn_alpha else None
            result = self._map(predictor, rows, beta, prior, theta, rng, budget)
            theta, n_iter = result.theta, n_iter + result.n_iter
            if not (learn_noise or learn_alpha):
                break
            # the posterior at (theta, beta, alpha) is the fitted one when both are kept
            new_beta, new_alpha, posterior, gamma = self._evidence_update(
                predictor, rows, theta, beta
            )
            degrees = (rows.weight - gamma, gamma)
            new_alpha = new_alpha if learn_alpha else self._alpha
            new_beta = (
                min(
                    new_beta,
                    learn_noise / _MIN_NOISE_FRACTION,
                    self._max_noise_precision(rows, new_alpha),
                )
                if learn_noise
                else beta
            )
            settled = (
                (budget is None or budget >= self.max_iter or result.converged)
                and abs(new_beta / beta - 1.0) < _NOISE_RTOL
                and abs(new_alpha / self._alpha - 1.0) < _NOISE_RTOL
            )
            if settled or round_ == rounds - 1:
                break
            beta, self._alpha, posterior = new_beta, new_alpha, None
        if learn_alpha:
            self._warn_about_alpha(settled, rounds, beta)
        self.model_ = Model(
            predictor, GaussianNoise(beta), self._prior(predictor.n_weights)
        )
        self.noise_variance_ = 1.0 / beta
        undetermined = bool(learn_noise) and (
            self._warn_about_noise(*degrees)
            or self._warn_about_noise_floor(rows, beta, learn_noise)
        )
        if self.curvature == "last_layer":
            self._set_fit(result, n_iter, result.converged)
            self._statistics, _ = rows.curvature(predictor, theta, beta, kind="last_layer")
            self._set_posterior(
                output_posterior(self._statistics, self._alpha, beta), theta
            )
            return undetermined
        if posterior is None:
            curvature, _ = rows.curvature(predictor, theta, beta, kind=self.curvature)
            posterior = self._laplace(theta, self._plus_prior(curvature))
        self._set_fit(result, n_iter, result.converged, posterior, rows.weight)
        self._set_posterior(self._refined(posterior, rows), theta)
        return undetermined

    def _max_noise_precision(self, rows, alpha=None):
        """The largest learned noise precision, ``_MAX_PRECISION_RATIO alpha / W``."""
        alpha = self._alpha if alpha is None else alpha
        return _MAX_PRECISION_RATIO * alpha / rows.weight

    def _warn_about_noise_floor(self, rows, beta, learn_noise):
        """The warning of a learned noise that reached its floor; whether it was given.

        Reached: the fit ended at it, or the targets' own variance (``1 /
        learn_noise``) is below it, so the fit started at it and no noise the evidence
        could ask for is as small as the targets' spread.
        """
        cap = self._max_noise_precision(rows)
        if beta < cap and learn_noise < cap:
            return False
        mean, variance = rows.target_moments()
        reason = (
            "is at that floor"
            if beta >= cap
            else "cannot come down to the targets' variance, which is below the floor"
        )
        self._warn_later(
            _NOISE_AT_FLOOR.format(
                _MAX_PRECISION_RATIO,
                1.0 / cap,
                rows.weight,
                self._alpha,
                1.0 / beta,
                reason,
                mean,
                variance,
            ),
            UserWarning,
        )
        return True

    def _warn_about_alpha(self, settled, rounds, beta):
        """The warning of a learned ``alpha`` at an end of its range, or unsettled."""
        if self._alpha in ALPHA_RANGE:
            self._warn_later(
                f"The evidence sends alpha to the end of its range, alpha_={self._alpha:g} "
                f"(alpha=None keeps it within [{ALPHA_RANGE[0]:g}, {ALPHA_RANGE[1]:g}]): "
                + (
                    "the rows determine almost none of the weights, and the network "
                    "predicts little more than their mean. Check that the features "
                    "predict the targets, or pass a float alpha."
                    if self._alpha == ALPHA_RANGE[1]
                    else "the prior holds almost nothing. Standardise X and y, or pass "
                    "a float alpha."
                ),
                UserWarning,
            )
        elif not settled:
            self._warn_later(
                f"The evidence's fixed point for alpha did not settle in {rounds} "
                f"rounds of MAP fits (alpha_={self._alpha:.4g}, "
                f"noise_variance_={1.0 / beta:.4g}): the MAP moves between modes as the "
                "prior changes. Pass a float alpha near alpha_ to fix it.",
                ConvergenceWarning,
            )

    def _local_retrain(
        self,
        X,
        y,
        sample_weight=None,
        *,
        max_iter=None,
        tol=None,
        vi_max_iter=None,
        relearn_noise=False,
    ):
        """A copy retrained on ``X, y`` from this fit's weights: the local reference.

        Same prior, noise variance and posterior approximation; the MAP starts
        at the current weights, so it converges to the mode near them (the
        reference that KL divergences to a forgotten posterior are measured
        against). Without a ledger. ``max_iter``, ``tol`` and ``vi_max_iter``
        replace the estimator's own (None keeps it). ``relearn_noise=True`` (with
        ``noise_variance=None``) alternates the MAP with MacKay's noise update
        from the fitted noise, as a fit does: the reference for asking how much
        of a forget's error is the noise it keeps.
        """
        check_is_fitted(self, "posterior_")
        new = copy.deepcopy(self)
        new.__dict__.pop("ledger_", None)
        new.__dict__.pop("forget_report_", None)
        new.__dict__.pop("_warned_forgets", None)
        new.ledger = False
        new.max_iter = self.max_iter if max_iter is None else max_iter
        new.tol = self.tol if tol is None else tol
        new.vi_max_iter = self.vi_max_iter if vi_max_iter is None else vi_max_iter
        X, y, _ = new._validate_rows(X, y, reset=False)
        weights = check_weights(sample_weight, X)
        beta = self.model_.likelihood.noise_precision
        rng = check_random_state(self.random_state)
        rows = TrainingRows(X, y, weights)
        learn_noise = 0.0
        if relearn_noise and self.noise_variance is None:
            learn_noise = new._initial_noise_precision(rows)
        new._train(self.model_.predictor, rows, self._theta, beta, learn_noise, rng)
        new.n_samples_seen_ = int(np.count_nonzero(weights))
        new._weight_seen = (float(weights.sum()),) * 2
        return new._issue_warnings()

    def _add(self, rows):
        """``partial_fit``: the current posterior is the prior of the new rows."""
        predictor, beta = self.model_.predictor, self.model_.likelihood.noise_precision
        theta = self._theta
        if self.curvature == "last_layer":
            statistics, _ = rows.curvature(predictor, theta, beta, kind="last_layer")
            self._statistics = self._statistics + statistics
            self._set_posterior(
                output_posterior(self._statistics, self._alpha, beta), theta
            )
            self.n_iter_, self.mode_distance_ = 0, math.nan
            return
        posterior = self.posterior_
        prior = StartingPoint(posterior.mean, np.array(posterior.precision))
        rng = check_random_state(self.random_state)
        result = self._map(predictor, rows, beta, prior, theta, rng)
        curvature, _ = rows.curvature(predictor, result.theta, beta, kind=self.curvature)
        laplace = self._laplace(result.theta, posterior.precision + curvature)
        self._set_fit(result, result.n_iter, result.converged, laplace, rows.weight)
        self._set_posterior(self._refined(laplace, rows, posterior), result.theta)

    def _map(self, predictor, rows, beta, prior, theta, rng, max_iter=None):
        options = {
            "max_iter": self.max_iter if max_iter is None else max_iter,
            "tol": self.tol,
            "batch_size": self.batch_size,
            "learning_rate_init": self.learning_rate_init,
            "verbose": self.verbose,
        }
        return rows.minimise(
            predictor, beta, prior, theta, solver=self.solver, options=options, rng=rng
        )

    def _refined(self, laplace, rows, prior=None):
        """The Laplace posterior at the MAP, or the variational one started from it.

        ``prior``: the posterior the rows are added to (the prior when None).
        ``'diag'``: the diagonal Gaussian of the reparameterised fit; otherwise the
        core's natural-gradient fixed point with linearised expectations.
        """
        if self.inference == "laplace":
            return laplace
        if self.curvature == "diag":
            result = self._reparameterised_fit(laplace, rows, prior)
        else:
            if prior is None:
                prior = self.model_.prior.posterior()
            result = variational_update(
                prior, self.model_, rows.X, rows.y, rows.weights, sign=1.0,
                max_iter=self.vi_max_iter, tol=self.tol, start=laplace,
            )  # fmt: skip
        if not result.converged:
            self._warn_later(
                f"The variational fit did not converge in vi_max_iter={self.vi_max_iter} "
                "iterations (the optimum was not reached); increase vi_max_iter."
            )
        self.n_iter_ += result.n_iter
        return result.posterior

    def _reparameterised_fit(self, laplace, rows, prior=None):
        """:func:`reparameterised_vi` (diagonal) from the diagonal Laplace posterior.

        The draws come from ``random_state`` (0 when None), so one fit gives one
        posterior. ``tol`` bounds the per-row objective's gradient, as for the
        MAP: the ELBO sums over the rows, so its gradient is held to ``tol W``.
        """
        if prior is None:
            p = laplace.n_features
            prior = DiagonalGaussianPosterior(np.zeros(p), np.full(p, self._alpha))
        seed = 0 if self.random_state is None else self.random_state
        return reparameterised_vi(
            prior, self.model_, rows.X, rows.y, rows.weights, start=laplace,
            covariance="diagonal", n_samples=self.vi_n_samples, random_state=seed,
            max_iter=self.vi_max_iter, tol=self.tol * rows.weight,
        )  # fmt: skip

    def _initial_noise_precision(self, rows):
        if self.noise_variance is not None:
            return 1.0 / float(self.noise_variance)
        if rows.n_rows < 2:
            raise ValueError(
                "noise_variance=None learns the noise from the residuals, which needs "
                "more than 1 sample (n_samples=1 with a non-zero weight). Pass "
                "noise_variance, or more rows."
            )
        mean, variance = rows.target_moments()
        if not np.isfinite(variance):
            raise ValueError(_NOT_FINITE.format("the targets' variance is", variance))
        # Constant targets leave a round-off variance, whose inverse would start the
        # noise precision beyond what the posterior's factorisation can hold.
        if (
            variance <= (_ROUND_OFF_SPREAD * np.finfo(float).eps * mean) ** 2
            or not variance
        ):
            return 1.0
        return 1.0 / variance

    def _evidence_update(self, predictor, rows, theta, beta):
        """MacKay's noise and prior precisions given the MAP ``theta`` at precision
        ``beta`` and ``self._alpha``, the posterior they were computed from, and
        ``gamma``, the number of well-determined weights."""
        curvature, squared_error = rows.curvature(
            predictor, theta, beta, kind=self.curvature, with_error=True
        )
        if self.curvature == "last_layer":
            posterior = output_posterior(curvature, self._alpha, beta)
        else:
            posterior = self._laplace(theta, self._plus_prior(curvature))
        # gamma = p - alpha tr(Sigma), the well-determined parameters (MacKay 1992)
        gamma = posterior.n_features - self._alpha * _covariance_trace(posterior)
        return (
            mackay_noise(squared_error, rows.weight, gamma),
            float(np.clip(mackay_alpha(theta, gamma), *ALPHA_RANGE)),
            posterior,
            gamma,
        )

    def _prior(self, n_weights):
        """``N(0, alpha^-1 I)`` over the weights."""
        return GaussianPrior(self._alpha, n_weights)

    def _plus_prior(self, curvature):
        """``alpha I + curvature`` (a (p, p) matrix, modified in place, or a diagonal)."""
        if curvature.ndim == 1:
            return curvature + self._alpha
        curvature.flat[:: curvature.shape[0] + 1] += self._alpha
        return curvature

    def _laplace(self, theta, precision):
        """``N(theta, precision^-1)``: diagonal for ``curvature='diag'``, else full."""
        if self.curvature == "diag":
            return DiagonalGaussianPosterior(theta, precision)
        return GaussianPosterior.from_precision(theta, precision)

    def _set_fit(self, result, n_iter, converged, laplace=None, weight=None):
        """Record a MAP fit; warn when it stopped early or away from the mode.

        ``laplace``: the Laplace posterior at ``result.theta`` (None for
        ``'last_layer'``), ``weight`` the rows' total weight ``W``, which turns
        the gradient of ``E / W`` into that of ``E``.
        """
        self.n_iter_ = int(n_iter)
        self.loss_ = float(result.loss)
        distance = math.nan
        if laplace is not None and result.gradient is not None:
            gradient = weight * np.asarray(result.gradient, dtype=np.float64)
            # Newton decrement: the Newton step -Lambda^-1 g is sqrt(g' Lambda^-1 g)
            # standard deviations long in the posterior's metric (Boyd &
            # Vandenberghe 2004, sec. 9.5.1).
            distance = float(np.sqrt(laplace.predictive_variance(gradient[None, :])[0]))
        self.mode_distance_ = distance
        if not converged:
            self._warn_later(
                f"{self.solver} did not converge in max_iter={self.max_iter} "
                "iterations: the weights are not at the MAP, so the Laplace posterior "
                "and forgetting from it are off. Increase max_iter."
                + (
                    f" They are {distance:.3g} posterior standard deviations from it "
                    "(one Newton step)."
                    if np.isfinite(distance)
                    else ""
                )
            )
        elif distance > MODE_DISTANCE and not (
            # ReLU's objective has kinks, where a converged L-BFGS stops with a
            # one-sided gradient that does not vanish: the decrement overstates.
            self.activation == "relu" and self.solver == "lbfgs"
        ):
            self._warn_later(_OFF_MODE.format(self.solver, distance, MODE_DISTANCE))

    def _warn_about_noise(self, degrees, gamma):
        """The warning of a learned noise that the rows' total weight cannot determine;
        whether it was given."""
        if not degrees < _MIN_NOISE_DEGREES:
            return False
        self._warn_later(
            _NOISE_UNDETERMINED.format(
                self.noise_variance_, degrees + gamma, degrees, _MIN_NOISE_DEGREES, gamma
            ),
            UserWarning,
        )
        return True

    def _warn_later(self, message, category=ConvergenceWarning):
        """Queue a warning, issued by the public method once it returns."""
        self.__dict__.setdefault("_pending_warnings", []).append((message, category))

    def _issue_warnings(self):
        for message, category in self.__dict__.pop("_pending_warnings", []):
            warnings.warn(message, category, stacklevel=caller_stacklevel())
        return self

    def _set_posterior(self, posterior, theta):
        """Assign ``posterior_`` and the weights (its mean where it covers them)."""
        theta = np.array(theta, dtype=np.float64)
        # Pending requests are divided out of the posterior they started from; a
        # learn or a step of another method starts from the new one.
        self.__dict__.pop("_pending_forgets", None)
        self.__dict__.pop("_pending_method", None)
        if self.curvature == "last_layer":
            theta[self.model_.predictor.output_slice()] = posterior.mean
        else:
            theta = posterior.mean.copy()
        self._theta = theta
        self.posterior_ = posterior
        coefs, intercepts = self.model_.predictor.unpack(theta)
        self.coefs_ = [coef.copy() for coef in coefs]
        self.intercepts_ = [intercept.copy() for intercept in intercepts]

    # ------------------------------------------------------------ forgetting
    def _forget_exactly(self, X, y, weights):
        """Subtract the rows' feature statistics and re-solve the output layer."""
        predictor, beta = self.model_.predictor, self.model_.likelihood.noise_precision
        theta = self._theta
        forgotten = feature_statistics(predictor, X, y, weights, theta)
        self._statistics = self._statistics.merge(forgotten, sign=-1.0)
        self._set_posterior(output_posterior(self._statistics, self._alpha, beta), theta)
        self.n_iter_ = 0
        error = relative_error(self._statistics, self._alpha, beta)
        refit_error = relative_error(self._statistics, self._alpha, beta, refit=True)
        advice = "fit again on the remaining rows."
        round_off = round_off_warning(error, refit_error, advice)
        messages = [round_off, self._leftover_message()]
        # The output layer's update is exact, but the hidden layers were trained on
        # these rows too, so the model is not a refit's (as the sparse GP's learned
        # hyperparameters make its forget inexact).
        return UpdateOutcome(
            "exact",
            False,
            error,
            None,
            tuple(message for message in messages if message is not None),
            0,
        )

    def _forget_approximately(self, X, y, weights):
        """Forget with the registered method named by ``unlearning``."""
        method = get_method(self.unlearning)
        options = self._method_options(method)
        function = method.function
        if self.curvature == "diag":
            function = self._diagonal_method(method)
            options = {} if function is diagonal_divide_out else options
        if not weights.shape[0]:  # only rows of zero weight: nothing changes
            self.n_iter_ = 0
            return UpdateOutcome(method.name, False, n_iter=0)
        before, previous = self.posterior_, None
        union = self._divides_out_union(function)
        if union:
            # Requests one after another are divided out of the posterior before the
            # first of them as their union, at its mean: a new step from a moved mean
            # would remove curvature the posterior no longer holds there.
            key = (method.name, sorted(options.items()))
            if self.__dict__.get("_pending_method") == key:
                before, previous = self.__dict__.get("_pending_forgets", (before, None))
            # else: re-dividing the earlier requests under another method or parameter
            # would undo part of their forget, so start from the posterior held.
            inference = self.inference
            options["terms"] = site_terms(before, self.model_, X, y, weights, inference)
            options["previous"] = previous
        variational_step = self._checks_variational_step(function)
        if variational_step and not union:  # the rows' expected terms, shared below
            options["terms"] = site_terms(before, self.model_, X, y, weights, "vi")
        try:
            # Runaway iterates overflow on their way to the method's finiteness
            # check, whose ValueError is turned into the refusal below.
            with np.errstate(over="ignore", invalid="ignore"):
                new, record = function(before, self.model_, X, y, weights, **options)
        except ValueError as exc:
            # A method whose iterates leave the finite numbers ran away from
            # q(theta|D) (catastrophic unlearning): refuse rather than store it.
            raise ValueError(
                f"unlearning={method.name!r} failed on these rows ({exc}); its iterates "
                "likely ran away from the fitted posterior (catastrophic unlearning). "
                "Use unlearning='laplace', or fit again on the remaining rows. Nothing "
                "was changed."
            ) from exc
        terms = options.get("terms")
        summed = terms if previous is None else previous + terms
        if variational_step:
            record = variational_step_check(
                self.model_, X, y, weights, before, new, terms, record, union=summed
            )
        self._set_posterior(new, new.mean)
        if union:  # _set_posterior dropped the previous state
            self._pending_forgets, self._pending_method = (before, summed), key
        self.n_iter_ = int(getattr(record, "n_iter", 1))
        share = self._step_share_message(function, before, new)
        messages = (*record.warnings, share, self._leftover_message())
        return UpdateOutcome(
            method.name,
            False,
            getattr(record, "kl_estimate", None),
            record,
            tuple(message for message in messages if message is not None),
            self.n_iter_,
        )

    def _divides_out_union(self, function):
        """Whether the forget divides the union of the pending requests out of their
        anchor, the posterior before the first of them (as the classifiers do,
        docs/logistic_regression.md): the Laplace divide-out and ``'uib'`` of a
        full-covariance posterior, whose steps take the rows' terms at a mean."""
        return self.curvature == "ggn" and function in (laplace_divide_out, uib_forget)

    def _checks_variational_step(self, function):
        """Whether the forget is the Laplace divide-out of a full-covariance variational
        posterior, whose step the method itself does not check (its rows' terms are
        expectations under the posterior): the estimator checks it with them."""
        return (
            function is laplace_divide_out
            and self.curvature == "ggn"
            and self.inference == "vi"
        )

    def _step_share_message(self, function, before, after):
        """The warning that the divide-out stepped where the forgotten rows held most
        of the precision, or None.

        With ``delta`` the step, ``Lambda`` the precision before the forget and ``P``
        after it, ``share = 1 - delta' P delta / delta' Lambda delta``: the forgotten
        rows' curvature along the step over the posterior's, ``delta' H delta /
        delta' Lambda delta``, when the prior's floor did not raise ``P``. In one
        dimension the divide-out's step is the full posterior's Newton step divided
        by ``1 - share``, as a leave-one-out residual is the residual divided by one
        minus the row's leverage (Cook & Weisberg 1982): past one half the rows
        removed weigh more along the step than the remaining rows and the prior.
        Two products with the stored triangular factors, ``O(p^2)``, and no rows.
        Only the Laplace divide-out of a full-covariance posterior is checked; from
        a variational one (``inference='vi'``) ``Lambda`` and ``P`` hold the rows'
        expected curvature, and so does the share.
        """
        if function is not laplace_divide_out or self.curvature != "ggn":
            return None
        moved = before.mahalanobis(after.mean) ** 2
        if not moved > 0.0:
            return None
        share = 1.0 - after.mahalanobis(before.mean) ** 2 / moved
        if not share > STEP_PRECISION_SHARE:
            return None
        return _STEP_SHARE_MESSAGE.format(share, STEP_PRECISION_SHARE)

    def _diagonal_method(self, method):
        """The function that forgets from a diagonal posterior, or a refusal.

        ``'laplace'`` is the diagonal divide-out; ``'lcodec'`` takes a diagonal
        posterior as it is. Every other method works on a full covariance.
        """
        if method.name == "laplace":
            return diagonal_divide_out
        if method.name in DIAGONAL_METHODS:
            return method.function
        raise ValueError(
            f"unlearning={method.name!r} needs a full-covariance posterior; "
            "curvature='diag' keeps only its diagonal. Use unlearning='laplace' (the "
            "diagonal divide-out) or 'lcodec', or fit with curvature='ggn'. Nothing "
            "was changed."
        )

    def _method_options(self, method):
        """The method's parameters this estimator has; the method's defaults for the rest.

        A parameter the network has no use for (``removal_noise``: no certified
        removal here) keeps the method's default; one without a default is refused.
        """
        signature = inspect.signature(method.function).parameters
        missing = [
            name
            for name in method.parameters
            if not hasattr(self, name)
            and (
                name not in signature or signature[name].default is inspect.Parameter.empty
            )
        ]
        if missing:
            raise ValueError(
                f"unlearning={method.name!r} needs parameter(s) {missing} which "
                f"{type(self).__name__} does not have. Choose another unlearning "
                "method. Nothing was changed."
            )
        return {
            name: getattr(self, name) for name in method.parameters if hasattr(self, name)
        }

    def _leftover_message(self):
        """The once-per-fit warning that parts of the model still carry the rows."""
        if self._warned_about_leftovers:
            return None
        parts = []
        if self.curvature == "last_layer":
            parts.append("The hidden layers' weights (kept at their MAP)")
        if self.alpha is None:
            parts.append("alpha_")
        if self.noise_variance is None:
            parts.append("noise_variance_")
        if not parts:
            return None
        self._warned_about_leftovers = True
        # The hidden layers' weights are plural on their own.
        plural = len(parts) > 1 or self.curvature == "last_layer"
        verb, carry = ("were", "carry") if plural else ("was", "carries")
        return (
            f"{' and '.join(parts)} {verb} learned from data that included the "
            f"forgotten rows and still {carry} information about them ("
            + (
                "the output layer's posterior does not: it was forgotten exactly"
                if self.curvature == "last_layer"
                else "posterior_ was updated"
            )
            + "). Fit again on the remaining rows to remove it entirely."
        )
