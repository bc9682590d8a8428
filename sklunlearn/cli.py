"""Command line: ``sklunlearn demo [--plot FILE.png] [--seed N]``."""

import argparse
import sys
import time


def _demo(args):
    from . import _demo

    start = time.perf_counter()
    results = _demo.run_demo(random_state=args.seed)
    print(
        "sklunlearn demo: fit on all rows, forget 10% with partial_unfit, retrain from\n"
        "scratch on the other 90%, and compare (KL between posteriors; the\n"
        "'KL(full||ret)' column is what doing nothing would leave).\n"
    )
    print(_demo.format_table(results))
    print(
        "\nThese data sets are small, so the times above are mostly per-call overhead;\n"
        "forgetting k rows takes time independent of the n rows learned, retraining\n"
        "grows with n: at n=200,000 benchmarks/README.md measures forgetting several\n"
        "hundred times faster than refitting BayesianRidge."
    )
    if args.plot:
        _demo.plot(results, args.plot)
        print(f"\nplot written to {args.plot}")
    print(f"\ntotal time {time.perf_counter() - start:.1f} s (Numba compilation included)")
    return 0


def main(argv=None):
    """Entry point of the ``sklunlearn`` console script."""
    parser = argparse.ArgumentParser(
        prog="sklunlearn",
        description="Bayesian estimators that forget training data.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser(
        "demo", help="forget 10%% of real data sets and compare with retraining"
    )
    demo.add_argument("--plot", metavar="FILE.png", help="also draw the results")
    demo.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    demo.set_defaults(handler=_demo)
    args = parser.parse_args(argv)
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
