"""The ``fit``, ``forget``, ``inspect`` and ``audit`` commands."""

import contextlib
import datetime
import json
import os
import signal
import sys
import time
import warnings

import numpy as np

from .. import __version__
from ._files import (
    PICKLE_SUFFIXES,
    SKOPS_SUFFIXES,
    WRITTEN,
    CommandError,
    dump_model,
    estimator_class,
    flush_folder,
    load_model,
    locked,
    one_line,
    parse_param,
    read_table,
    real_target,
    refuse_overlaps,
    same_file,
    sha256,
    writable_path,
    write_beside,
)
from ._progress import Progress

MODEL_SUFFIXES = SKOPS_SUFFIXES + PICKLE_SUFFIXES


def _make_estimator(name, params):
    """The estimator ``name`` with the ``--param NAME=VALUE`` settings."""
    estimator = estimator_class(name)()
    settings = dict(parse_param(text) for text in params or ())
    try:
        estimator.set_params(**settings)
        # Checked here, before the data is read, so a refusal names --param, not DATA.
        estimator._validate_params()
    except (ValueError, TypeError) as exc:
        raise CommandError(f"--param: {one_line(exc)}") from None
    return estimator


def _run(step, message, refusal, *, quiet):
    """``step()`` with a progress indicator; refusals as one-line errors prefixed
    with ``refusal``, and each warning as one line on stderr."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            with Progress(message, quiet=quiet):
                result = step()
        except (ValueError, TypeError) as exc:
            raise CommandError(f"{refusal}: {one_line(exc)}") from None
    for warning in caught:
        print(f"warning: {one_line(warning.message)}", file=sys.stderr)
    return result


def _learn(estimator, X, y, what, *, quiet=False):
    """``estimator.fit(X, y)`` with its refusals as one-line errors."""
    message = f"fitting {type(estimator).__name__} on {len(X)} rows"
    return _run(lambda: estimator.fit(X, y), message, what, quiet=quiet)


def _reason(exc):
    """What an OSError says, without the file name the message adds anyway."""
    return exc.strerror or one_line(exc)


class _Staged:
    """Files written beside their destinations, then renamed into place together.

    :meth:`commit` renames them in the order they were added; leaving the
    ``with`` block (an error, Ctrl-C, SIGTERM) removes any that were not renamed.
    """

    def __init__(self):
        self._files = []
        self._temporaries = []

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        for temporary in self._temporaries:
            temporary.unlink(missing_ok=True)

    def add(self, destination, write):
        """Write a file for ``destination`` with ``write(file)``; return that file."""
        try:
            temporary = write_beside(destination, write, self._temporaries.append)
        except OSError as exc:
            raise CommandError(f"cannot write {destination}: {_reason(exc)}") from None
        self._files.append((temporary, destination))
        return temporary

    def commit(self):
        """Rename the files into place; a failure names the files already in place."""
        written = []
        # Ctrl-C or SIGTERM waits for the renames: both files are written, or neither.
        with _signals_deferred():
            for temporary, destination in self._files:
                target = real_target(destination)  # a symlink stays one
                try:
                    os.replace(temporary, target)
                except OSError as exc:
                    raise CommandError(
                        f"cannot write {destination}: {_reason(exc)}"
                        + "".join(f"; {path} was written" for path in written)
                        + ("" if written else "; nothing was written")
                    ) from None
                written.append(destination)
                WRITTEN.append(str(destination))
                flush_folder(target.parent)


@contextlib.contextmanager
def _signals_deferred():
    """Block SIGINT and SIGTERM in the block; they are delivered when it ends (POSIX)."""
    if not hasattr(signal, "pthread_sigmask"):
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _model_writer(estimator, destination):
    """``write(file)`` for :meth:`_Staged.add`: the model in ``destination``'s format."""
    return lambda file: dump_model(estimator, file, destination.suffix)


def fit(args):
    """``sklunlearn fit ESTIMATOR DATA --target COLUMN --output MODEL``."""
    output = _fit_destination(args)
    estimator = _make_estimator(args.estimator, args.param)
    X, y = read_table(args.data, args.target)
    start = time.perf_counter()
    _learn(estimator, X, y, args.data, quiet=args.quiet)
    seconds = time.perf_counter() - start
    # Locked only while written, so that it never lands in the middle of a forget of it.
    written = False
    while not written:
        with locked([output]) as locks, _Staged() as staged:
            output = _fit_destination(args)  # again: another command may have written it
            staged.add(output, _model_writer(estimator, output))
            with locks.renaming() as unchanged:
                # Otherwise a new --output was created meanwhile: it is locked next time.
                if unchanged:
                    staged.commit()
                    written = True
    print(
        f"fitted {type(estimator).__name__} on {estimator.n_samples_seen_} rows of "
        f"{args.data} in {seconds:.2f} s; saved to {output}"
    )
    return 0


def _fit_destination(args):
    """The model file ``fit`` writes, checked."""
    output = writable_path(args.output, MODEL_SUFFIXES, option="--output")
    refuse_overlaps([("--output", output)], [("DATA", args.data)])
    return output


def _rows_like_the_model(estimator, X, path):
    """The columns of ``X`` in the order the model was fitted with, or a refusal."""
    names = getattr(estimator, "feature_names_in_", None)
    if names is None:
        return X.to_numpy(dtype=np.float64)
    expected, given = [str(n) for n in names], [str(c) for c in X.columns]
    missing = [n for n in expected if n not in given]
    extra = [c for c in given if c not in expected]
    if missing or extra:
        raise CommandError(
            f"{path}: the model was fitted on columns {', '.join(expected)}; "
            f"missing: {', '.join(missing) or 'none'}; "
            f"unexpected: {', '.join(extra) or 'none'}"
        )
    return X[list(names)]


def _forget_rows(estimator, X, y, path, *, quiet=False):
    """``estimator.partial_unfit(X, y)``; refusals raise CommandError, warnings print."""
    refusal = f"refused to forget the rows of {path}"
    _run(lambda: estimator.partial_unfit(X, y), f"forgetting {len(y)} rows", refusal,
         quiet=quiet)  # fmt: skip


def _destinations(args):
    """The model and report files ``forget`` writes, checked before any work."""
    output = writable_path(args.output, MODEL_SUFFIXES, option="--output")
    report = None if args.report is None else writable_path(args.report, option="--report")
    # Rewriting the model in place is documented; overwriting any other input is not.
    refuse_overlaps(
        [("--output", output), ("--report", report)],
        [("MODEL", args.model), ("ROWS", args.rows)],
        allowed={("--output", "MODEL")},
    )
    return output, report


def _forget_record(args, estimator, output, model_file, hash_before, replaced):
    """The ``--report`` of a forget, whose model is written in ``model_file`` and
    replaces a file of SHA-256 ``replaced`` at ``output`` (None: a new file)."""
    report = estimator.forget_report_
    checked = getattr(estimator, "ledger_", None) is not None
    return {
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(
            timespec="seconds"
        ),
        "sklunlearn_version": __version__,
        "estimator": type(estimator).__name__,
        "model_before": {"path": str(args.model), "sha256": hash_before},
        "model_after": {"path": str(output), "sha256": sha256(model_file)},
        # The file --output held before (MODEL itself, in place), or None: a new
        # file; an audit log can then tell which model a forget overwrote.
        "output_replaced": None
        if replaced is None
        else {"path": str(output), "sha256": replaced},
        "rows_file": {"path": str(args.rows), "sha256": sha256(args.rows)},
        "n_rows": report.n_rows,
        "weight": report.weight,
        "n_samples_seen_after": int(estimator.n_samples_seen_),
        # False: the model keeps no ledger, so a row never learned or a retried
        # request was forgotten all the same (--unchecked).
        "checked_against_ledger": checked,
        "forget_report": report.to_dict(),
    }


CHANGED_MESSAGE = (
    "the model file changed while this request was served; nothing was written; retry"
)


def _check_ledger(estimator, args):
    """Refuse a model without a ledger unless ``--unchecked``; else warn on stderr."""
    if getattr(estimator, "ledger_", None) is not None:
        return
    if not args.unchecked:
        raise CommandError(
            f"{args.model}: the model keeps no ledger (fitted with ledger=False), so "
            "this request cannot be checked against the rows it learned: rows never "
            "learned, or a retried request, would be forgotten all the same; refit "
            "with the ledger, or pass --unchecked to forget without the check"
        )
    print(
        f"warning: {args.model} keeps no ledger: the rows of {args.rows} were not "
        "checked to be rows it learned and did not forget yet (--unchecked)",
        file=sys.stderr,
    )


def forget(args):
    """``sklunlearn forget MODEL ROWS --target COLUMN --output MODEL [--report FILE]``."""
    output, report_path = _destinations(args)
    forgotten = None  # (hash of the model loaded, the estimator forgotten from it)
    written = False
    while not written:
        # Concurrent forgets of one model file take turns, from the read to the rename:
        # otherwise each would write the model less its own rows only, and the last
        # wins. Existing destinations are locked as long; a new one's folder only
        # around the renames, so that forgets of other models there do not wait.
        with locked([args.model, output, report_path]) as locks:
            # Checked again once locked: a command that held the lock may have written
            # a destination meanwhile, which this one then sees (and replaces, saying so).
            output, report_path = _destinations(args)
            in_place = same_file(output, args.model)
            replaced = None if in_place else _hash_or_none(output)
            if forgotten is None or _hash_or_none(args.model) != forgotten[0]:
                forgotten = _forget_model(args)
            hash_before, estimator = forgotten
            if in_place:
                replaced = hash_before
            written = _write_forgotten(
                args, locks, estimator, output, report_path, hash_before, replaced
            )
            # Not written: a new destination was created while this forget ran; it is
            # locked next time and replaced, and the model forgotten is kept unless the
            # model file changed too.
    report = estimator.forget_report_
    print(
        f"forgot {report.n_rows} rows (weight {report.weight:g}, method {report.method}, "
        f"exact={report.exact}); {estimator.n_samples_seen_} rows left; saved to {output}"
        + ("" if replaced is None or in_place else ", replacing the file there")
        + ("" if report_path is None else f"; report written to {report_path}")
    )
    return 0


def _forget_model(args):
    """``(hash, estimator)``: the model file's SHA-256 and its model less the rows."""
    estimator, hash_before = load_model(args.model, digest=True)
    _check_ledger(estimator, args)
    X, y = read_table(args.rows, args.target)
    rows = _rows_like_the_model(estimator, X, args.rows)
    _forget_rows(estimator, rows, y, args.rows, quiet=args.quiet)
    return hash_before, estimator


def _write_forgotten(args, locks, estimator, output, report_path, hash_before, replaced):
    """Write the model and the report of a forget; False if a new destination was
    created meanwhile, in which case nothing is written."""
    in_place = same_file(output, args.model)
    # Both files are written beside their targets first, so a failure writes nothing;
    # the model is renamed first, so a report never describes a model not written.
    with _Staged() as staged:
        model_file = staged.add(output, _model_writer(estimator, output))
        if report_path is not None:
            record = _forget_record(
                args, estimator, output, model_file, hash_before, replaced
            )
            text = json.dumps(record, indent=2)
            staged.add(report_path, lambda file: file.write_text(text + "\n"))
        # A writer that does not take the lock (or no lock, on Windows) is caught
        # here; only the short time to the rename is left unguarded.
        if in_place and _hash_or_none(args.model) != hash_before:
            raise CommandError(CHANGED_MESSAGE)
        with locks.renaming() as unchanged:
            if unchanged:
                staged.commit()
            return unchanged


def _hash_or_none(path):
    """SHA-256 of the file at ``path``, or None if it cannot be read any more."""
    try:
        return sha256(path)
    except OSError:
        return None


def _plain(value):
    """A parameter value as JSON: itself when JSON accepts it, else its repr."""
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return repr(value)
    return value


def describe(estimator):
    """What ``sklunlearn inspect`` shows, as a dict of plain values."""
    ledger = getattr(estimator, "ledger_", None)
    report = getattr(estimator, "forget_report_", None)
    certificate = getattr(estimator, "certificate_", None)
    names = getattr(estimator, "feature_names_in_", None)
    return {
        "estimator": f"{type(estimator).__module__}.{type(estimator).__name__}",
        "parameters": {
            key: _plain(value) for key, value in estimator.get_params(deep=False).items()
        },
        "n_samples_seen": getattr(estimator, "n_samples_seen_", None),
        "ledger": None
        if ledger is None
        else {
            "distinct_rows": len(ledger),
            "rows": ledger.n_rows,
            "total_weight": ledger.total_weight,
        },
        "feature_names": None if names is None else [str(n) for n in names],
        "last_forget_report": None if report is None else report.to_dict(),
        "certificate": None
        if certificate is None
        else (
            certificate.to_dict() if hasattr(certificate, "to_dict") else repr(certificate)
        ),
    }


def inspect(args):
    """``sklunlearn inspect MODEL [--json]``."""
    estimator, digest = load_model(args.model, digest=True)
    description = describe(estimator)
    if args.json:
        print(json.dumps(description, indent=2))
        return 0
    print(f"model          {args.model} (sha256 {digest})")
    for key, value in description.items():
        if isinstance(value, dict):
            print(f"{key}:")
            for name, item in value.items():
                shown = json.dumps(item) if isinstance(item, dict | list) else item
                print(f"  {name:<24} {shown}")
        else:
            print(f"{key:<14} {value if value is not None else '(none)'}")
    return 0
