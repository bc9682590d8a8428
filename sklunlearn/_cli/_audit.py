"""The ``audit`` command: fit, forget, retrain, and measure how close forgetting came."""

import copy
import time
import warnings

import numpy as np

from ..exceptions import UnlearningWarning
from ..model_selection import retraining_clone
from ._commands import _learn, _make_estimator, _rows_like_the_model
from ._files import CommandError, one_line, read_table, save_figure
from ._progress import Progress

# Row numbers listed in a refusal before "...".
MAX_ROWS_SHOWN = 10


def _without(X, y, X_rows, y_rows, path):
    """Mask of the rows of ``(X, y)`` kept when one occurrence of each row of
    ``(X_rows, y_rows)`` is removed; the target is compared as it is (labels may be
    strings), the numeric features as float64."""
    keep = np.ones(len(X), dtype=bool)
    positions = {}
    for index, row in enumerate(_keyed(X, y)):
        positions.setdefault(row, []).append(index)
    for number, row in enumerate(_keyed(X_rows, y_rows)):
        if not positions.get(row):
            raise CommandError(
                f"{path}: data row {number + 1} is not a row of the data (or is repeated "
                "more often than there)"
            )
        keep[positions[row].pop()] = False
    return keep


def _keyed(X, y):
    """Each row of ``(X, y)`` as a hashable tuple: its features, then its target."""
    features = map(tuple, X.to_numpy(dtype=np.float64))
    return (
        features_row + (target,) for features_row, target in zip(features, y, strict=True)
    )


def _same_columns(frame, reference, path, reference_path):
    """``frame`` with the columns of ``reference`` in its order, or a refusal."""
    if sorted(map(str, frame.columns)) != sorted(map(str, reference.columns)):
        raise CommandError(f"{path}: its columns differ from those of {reference_path}")
    return frame[list(reference.columns)]


def _split(args):
    """Training rows, forget mask, and unseen rows for the membership-inference test."""
    X, y = read_table(args.data, args.target)
    X_forget, y_forget = read_table(args.forget, args.target)
    X_forget = _same_columns(X_forget, X, args.forget, args.data)
    forgotten = ~_without(X, y, X_forget, y_forget, args.forget)
    _check_rows_kept(args, forgotten)
    if args.unseen is not None:
        X_unseen, y_unseen = read_table(args.unseen, args.target)
        X_unseen = _same_columns(X_unseen, X, args.unseen, args.data)
        return X, y, forgotten, X_unseen, y_unseen
    rng = np.random.RandomState(args.seed)
    candidates = np.flatnonzero(~forgotten)
    # With two candidates or more and holdout < 1, one is held out and one is kept.
    held = rng.choice(
        candidates, size=max(1, int(args.holdout * candidates.size)), replace=False
    )
    train = np.ones(len(X), dtype=bool)
    train[held] = False
    return X[train], y[train], forgotten[train], X.iloc[held], y.iloc[held]


def _check_rows_kept(args, forgotten):
    """Refuse a DATA without the rows of it not forgotten that the audit needs: one to
    retrain on, and without ``--unseen`` another to hold out as unseen."""
    kept = int(np.count_nonzero(~forgotten))
    needed = 1 if args.unseen is not None else 2
    uses = "to retrain on"
    if args.unseen is None:
        uses = "one to retrain on and one to hold out as unseen (or give --unseen)"
    if kept < needed:
        raise CommandError(
            f"{args.forget} holds {forgotten.size - kept} of the {forgotten.size} rows of "
            f"{args.data}, leaving {kept}; the audit needs at least {needed} rows of DATA "
            f"not in --forget: {uses}"
        )


def audit(args):
    """``sklunlearn audit ESTIMATOR DATA --target COLUMN --forget ROWS``."""
    X, y, forgotten, X_unseen, y_unseen = _split(args)
    estimator = _make_estimator(args.estimator, args.param)
    start = time.perf_counter()
    full = _learn(estimator, X, y, args.data, quiet=args.quiet)
    fit_seconds = time.perf_counter() - start
    unseen_checked = args.unseen is None or _check_unseen(
        full, X_unseen, y_unseen, args.unseen
    )
    unlearned = copy.deepcopy(full)
    X_forget, y_forget = X[forgotten], y[forgotten]
    rows = _rows_like_the_model(full, X_forget, args.forget)
    with warnings.catch_warnings():
        # Audited here, not warned: the figures below measure what is left.
        warnings.simplefilter("ignore", UnlearningWarning)
        start = time.perf_counter()
        try:
            with Progress(f"forgetting {len(y_forget)} rows", quiet=args.quiet):
                unlearned.partial_unfit(rows, y_forget)
        except (ValueError, TypeError) as exc:
            raise CommandError(
                f"refused to forget the rows of {args.forget}: {one_line(exc)}"
            ) from None
        forget_seconds = time.perf_counter() - start
    start = time.perf_counter()
    retrained = _learn(
        retraining_clone(full), X[~forgotten], y[~forgotten], args.data, quiet=args.quiet
    )
    retrain_seconds = time.perf_counter() - start
    seconds = (fit_seconds, forget_seconds, retrain_seconds)
    try:
        auc, kl = _measure(
            full, unlearned, retrained, X_forget, y_forget, X_unseen, y_unseen
        )
    except (ValueError, TypeError) as exc:
        raise CommandError(f"{args.unseen or args.data}: {one_line(exc)}") from None
    unseen = _describe_unseen(args, len(X_unseen), unseen_checked)
    _print_audit(full, unlearned, forgotten, X, unseen, auc, kl, seconds)
    if args.plot:
        _plot(auc, args.plot)
        print(f"plot written to {args.plot}")
    return 0


def _describe_unseen(args, n_rows, checked):
    """Which rows the membership-inference test takes as unseen, for the report."""
    if args.unseen is None:
        source = f"held out of {args.data}"
    elif checked:
        source = f"from {args.unseen}, none of them learned"
    else:
        source = (
            f"from {args.unseen}; the model keeps no ledger, so they could not be "
            "checked to be rows it never learned"
        )
    return f"{n_rows} unseen rows for the membership-inference test ({source})"


def _check_unseen(model, X_unseen, y_unseen, path):
    """Refuse unseen rows that ``model`` learned; False when it keeps no ledger.

    An unseen row that was learned (forgotten later or not) is on both sides of
    the membership-inference test, which then measures nothing.
    """
    ledger = getattr(model, "ledger_", None)
    if ledger is None:
        return False
    rows = _rows_like_the_model(model, X_unseen, path)
    try:
        # The rows as the estimator's ledger took them (class indices for labels).
        X, _, y_key = model._validate_rows(rows, y_unseen, reset=False)
    except (ValueError, TypeError) as exc:
        raise CommandError(f"{path}: {one_line(exc)}") from None
    learned = np.flatnonzero(ledger.contains(np.asarray(X, dtype=np.float64), y_key))
    if learned.size:
        shown = ", ".join(str(i + 1) for i in learned[:MAX_ROWS_SHOWN])
        more = ", ..." if learned.size > MAX_ROWS_SHOWN else ""
        raise CommandError(
            f"{path}: {learned.size} of its {len(y_unseen)} rows were learned by the "
            f"model (its rows {shown}{more}, counting from the first after its header)"
            "; --unseen must hold rows it never learned"
        )
    return True


def _measure(full, unlearned, retrained, X_forget, y_forget, X_unseen, y_unseen):
    """Membership-inference AUCs of the three models, and KLs of two to the third."""
    from ..metrics import membership_inference_auc, posterior_kl, predictive_kl

    models = {"forgotten": unlearned, "retrained": retrained, "not forgotten": full}
    with warnings.catch_warnings():
        auc = {
            name: membership_inference_auc(model, X_forget, y_forget, X_unseen, y_unseen)
            for name, model in models.items()
        }
        kl = {
            name: (
                posterior_kl(model, retrained),
                predictive_kl(model, retrained, X_forget),
            )
            for name, model in models.items()
            if model is not retrained
        }
    return auc, kl


def _print_audit(full, unlearned, forgotten, X, unseen, auc, kl, seconds):
    """The audit's report on stdout; ``unseen`` says which rows the attack compares."""
    fit_seconds, forget_seconds, retrain_seconds = seconds
    print(
        f"{type(full).__name__}: learned {len(X)} rows, forgot {int(forgotten.sum())} "
        f"({unlearned.forget_report_.method}), {unseen}"
    )
    print(f"  time: fit {fit_seconds:.3f} s, forget {forget_seconds:.3f} s, "
          f"retrain {retrain_seconds:.3f} s")  # fmt: skip
    for name, (posterior, predictive) in kl.items():
        print(
            f"  {name} vs retrained: posterior KL {posterior:.3g} nats, "
            f"predictive KL on the forgotten rows {predictive:.3g} nats"
        )
    print(
        "  membership-inference AUC on the forgotten rows (0.5: indistinguishable from "
        "unseen rows): " + ", ".join(f"{name} {value:.3f}" for name, value in auc.items())
    )


def _plot(auc, path):
    """Bar chart of the membership-inference AUC of the three models."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 2.5))
    ax.barh(list(auc), list(auc.values()))
    ax.axvline(0.5, color="black", linewidth=0.8)
    ax.set_xlabel("membership-inference AUC on the forgotten rows")
    fig.tight_layout()
    try:
        save_figure(fig, path)
    finally:
        plt.close(fig)
