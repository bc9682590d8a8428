"""Command line: ``sklunlearn {fit,forget,inspect,audit,demo}`` or ``python -m sklunlearn``.

Bad input (a missing file or column, NaN, a model file that is not one of
ours, a refused forget) is one line on stderr and exit code 2, with nothing
written. A reader of stdout that leaves early (``| head -1``) ends the
command quietly with exit code 1, as for other Unix tools. Ctrl-C (SIGINT) and
SIGTERM end it with one line saying what was written, and exit code 130 or 143
(128 plus the signal's number, as a shell reports it).

This module imports only the standard library and the light parts of the
command line: the commands, and scikit-learn with them, are imported inside
:func:`main`, once Ctrl-C and SIGTERM are handled.
"""

import argparse
import os
import signal
import sys
import threading
import time

from . import __version__
from ._cli._files import (
    ESTIMATORS,
    WRITTEN,
    CommandError,
    refuse_overlaps,
    writable_path,
)
from ._cli._progress import Progress

FORGET_DESCRIPTION = """\
Forget the rows of ROWS from MODEL and write the result to --output, which may
be MODEL itself (an in-place forget). Forgets of one model file take turns
(an advisory lock on the file, on POSIX systems), so concurrent requests on one
model are all applied. A row the model's ledger says was never learned,
or was already forgotten, is refused; a model fitted with ledger=False cannot be
checked and is refused unless --unchecked is given.

exit codes: 0 forgotten and written; 2 refused or failed, nothing written
(unless the error says which file was); 130 Ctrl-C, 143 SIGTERM."""


class _Parser(argparse.ArgumentParser):
    """argparse with its usage errors as one line (``--help`` shows the usage)."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {' '.join(message.split())}\n")


def _non_negative_int(text):
    """An argparse type: an integer >= 0 (NumPy seeds are)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} is negative (seeds are >= 0)")
    return value


def _fraction(text):
    """An argparse type: a number strictly between 0 and 1."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"{value} is not between 0 and 1")
    return value


def _plot_destination(path, inputs=()):
    """Refuse ``--plot`` before any work: matplotlib missing, no folder to write to, a
    file the command reads, or an extension matplotlib cannot write."""
    if path is None:
        return
    path = writable_path(path, option="--plot")
    refuse_overlaps([("--plot", path)], inputs)
    try:
        import matplotlib.figure
    except ImportError:
        raise CommandError(
            "--plot needs matplotlib: pip install 'sklunlearn[plot]'"
        ) from None
    formats = matplotlib.figure.Figure().canvas.get_supported_filetypes()
    # matplotlib reads the format from the extension, and appends its default to a
    # name without one: the file written would not be the file named.
    if path.suffix[1:].lower() not in formats:
        raise CommandError(
            f"{path}: a plot file ends with the extension of a format matplotlib "
            f"writes: {', '.join('.' + name for name in sorted(formats))}"
        )


# The commands import NumPy and scikit-learn: only once main handles the signals.
def _fit(args):
    from ._cli import _commands

    return _commands.fit(args)


def _forget(args):
    from ._cli import _commands

    return _commands.forget(args)


def _inspect(args):
    from ._cli import _commands

    return _commands.inspect(args)


def _audit(args):
    from ._cli._audit import audit

    inputs = [("DATA", args.data), ("--forget", args.forget), ("--unseen", args.unseen)]
    _plot_destination(args.plot, inputs)
    return audit(args)


def _demo(args):
    from . import _demo

    _plot_destination(args.plot)
    start = time.perf_counter()
    with Progress("running the demo", quiet=args.quiet):
        results = _demo.run_demo(random_state=args.seed)
    print(
        "sklunlearn demo: fit on all rows, forget 10% with partial_unfit, retrain from\n"
        "scratch on the other 90%, and compare (KL between posteriors; the\n"
        "'KL(full||ret)' column is what doing nothing would leave).\n"
    )
    print(_demo.format_table(results))
    print(
        "\nrows: rows forgotten; forget and retrain: wall time; KL columns in nats;\n"
        "max |pred diff|: largest difference of predicted mean or probability;\n"
        "warned: the forget issued an UnlearningWarning (forget_report_.warnings).\n"
        "These data sets are small, so the times above are mostly per-call overhead:\n"
        "forgetting k rows takes time independent of the n rows learned, while\n"
        "retraining grows with n, so the speed-up grows with the data."
    )
    if args.plot:
        _demo.plot(results, args.plot)
        print(f"\nplot written to {args.plot}")
    print(f"\ntotal time {time.perf_counter() - start:.1f} s (Numba compilation included)")
    return 0


class _Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C so that the files staged so far are removed."""


def _terminate(signum, frame):
    raise _Terminated


def _add_data_arguments(parser, data_help):
    parser.add_argument("data", metavar="DATA", help=data_help)
    parser.add_argument(
        "--target", required=True, metavar="COLUMN", help="the column holding the target"
    )


def _parser():
    parser = _Parser(
        prog="sklunlearn",
        description="Bayesian estimators that forget training data.",
    )
    parser.add_argument("--version", action="version", version=f"sklunlearn {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    # Every command takes --quiet: no progress indicator on stderr.
    common = _Parser(add_help=False)
    common.add_argument(
        "--quiet",
        action="store_true",
        help="no progress indicator (it shows on a terminal for steps over a few seconds)",
    )

    fit = commands.add_parser(
        "fit", parents=[common], help="fit an estimator on a CSV or Parquet file"
    )
    fit.add_argument("estimator", metavar="ESTIMATOR", help=", ".join(ESTIMATORS))
    _add_data_arguments(fit, "CSV (or Parquet, with pyarrow) file of the rows to learn")
    fit.add_argument(
        "--param",
        action="append",
        metavar="NAME=VALUE",
        help="estimator parameter; VALUE is a Python literal or a string (repeatable)",
    )
    fit.add_argument(
        "--output",
        required=True,
        metavar="MODEL",
        help="model file: .skops, or .joblib/.pkl",
    )
    fit.set_defaults(handler=_fit)

    forget = commands.add_parser(
        "forget",
        parents=[common],
        help="forget the rows of a file",
        description=FORGET_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    forget.add_argument("model", metavar="MODEL", help="model file to forget from")
    forget.add_argument(
        "rows", metavar="ROWS", help="CSV or Parquet file of the rows to forget"
    )
    forget.add_argument(
        "--target", required=True, metavar="COLUMN", help="the column holding the target"
    )
    forget.add_argument(
        "--output",
        required=True,
        metavar="MODEL",
        help="model file to write (MODEL itself to forget in place)",
    )
    forget.add_argument(
        "--report",
        metavar="REPORT.json",
        help="write the forget report (hashes of the files, rows and weight forgotten)",
    )
    forget.add_argument(
        "--unchecked",
        action="store_true",
        help="forget from a model fitted with ledger=False, whose rows cannot be "
        "checked: a row never learned or a retried request is forgotten all the same",
    )
    forget.set_defaults(handler=_forget)

    inspect = commands.add_parser("inspect", parents=[common], help="describe a model file")
    inspect.add_argument("model", metavar="MODEL", help="model file to describe")
    inspect.add_argument("--json", action="store_true", help="print JSON")
    inspect.set_defaults(handler=_inspect)

    audit = commands.add_parser(
        "audit",
        parents=[common],
        help="fit, forget, retrain, and measure how close forgetting came",
    )
    audit.add_argument("estimator", metavar="ESTIMATOR", help=", ".join(ESTIMATORS))
    _add_data_arguments(audit, "file of the rows to learn")
    audit.add_argument(
        "--forget", required=True, metavar="ROWS", help="file of rows of DATA to forget"
    )
    audit.add_argument(
        "--param",
        action="append",
        metavar="NAME=VALUE",
        help="estimator parameter; VALUE is a Python literal or a string (repeatable)",
    )
    audit.add_argument(
        "--unseen",
        metavar="FILE",
        help="rows never learned, for the membership-inference test "
        "(default: hold out --holdout of the rows of DATA not forgotten)",
    )
    audit.add_argument(
        "--holdout",
        type=_fraction,
        default=0.2,
        metavar="FRACTION",
        help="without --unseen, the fraction of the rows of DATA not forgotten that "
        "are held out as unseen (between 0 and 1, default 0.2)",
    )
    audit.add_argument("--seed", type=_non_negative_int, default=0, help="for the holdout")
    audit.add_argument("--plot", metavar="FILE.png", help="draw the AUCs")
    audit.set_defaults(handler=_audit)

    demo = commands.add_parser(
        "demo",
        parents=[common],
        help="forget 10%% of real data sets and compare with retraining",
    )
    demo.add_argument("--plot", metavar="FILE.png", help="also draw the results")
    demo.add_argument(
        "--seed", type=_non_negative_int, default=0, help="random seed (default 0)"
    )
    demo.set_defaults(handler=_demo)
    return parser


def main(argv=None):
    """Entry point of the ``sklunlearn`` console script; returns the exit code."""
    # First of all, so that a signal during the imports below is one line too.
    previous = _handle_sigterm()
    prog = "sklunlearn"
    WRITTEN.clear()
    try:
        args = _parser().parse_args(argv)
        prog = f"sklunlearn {args.command}"
        code = args.handler(args)  # imports the command's modules
        sys.stdout.flush()  # a reader that left raises here, not at interpreter exit
        return code
    except CommandError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        _discard_stdout()
        return 1
    except KeyboardInterrupt as exc:
        terminated = isinstance(exc, _Terminated)
        written = "; ".join(f"{path} was written" for path in WRITTEN)
        print(
            f"{prog}: {'terminated' if terminated else 'interrupted'}"
            f"; {written or 'nothing was written'}",
            file=sys.stderr,
        )
        return 128 + (signal.SIGTERM if terminated else signal.SIGINT)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _handle_sigterm():
    """Make SIGTERM raise :class:`_Terminated`; return the handler it replaced.

    Only where Python can install one (the main thread), and not when SIGTERM is
    ignored (``nohup``-like launchers); None when nothing was installed.
    """
    if threading.current_thread() is not threading.main_thread():
        return None
    previous = signal.getsignal(signal.SIGTERM)
    if previous is not signal.SIG_DFL:
        return None
    signal.signal(signal.SIGTERM, _terminate)
    return previous


def _discard_stdout():
    """Point stdout at the null device once its reader left (``| head``).

    Python flushes stdout again at exit, which would raise once more; the
    Python documentation's "Note on SIGPIPE" (module signal) recommends this.
    """
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


if __name__ == "__main__":
    sys.exit(main())
