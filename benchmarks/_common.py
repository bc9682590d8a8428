"""Helpers shared by the benchmark scripts (timing, tables, environment)."""

import copy
import platform
import time

import numpy as np


def run_times(function, repeat, setup=None):
    """Wall times of ``repeat`` calls of ``function()`` (or ``function(setup())``)."""
    times = []
    for _ in range(repeat):
        argument = setup() if setup is not None else None
        start = time.perf_counter()
        function(argument) if setup is not None else function()
        times.append(time.perf_counter() - start)
    return np.array(times)


def best_time(function, repeat=5, setup=None):
    """Best wall time of ``function(setup())`` over ``repeat`` runs (seconds)."""
    return float(run_times(function, repeat, setup).min())


def fresh_copy(estimator):
    """A setup function returning a deep copy, so each timed forget starts equal."""
    return lambda: copy.deepcopy(estimator)


def environment():
    """One line describing the machine and library versions."""
    import numba
    import scipy
    import sklearn

    try:
        from threadpoolctl import threadpool_info

        blas = ", ".join(
            f"{i['internal_api']} {i.get('version')} ({i['num_threads']} threads)"
            for i in threadpool_info()
            if i["user_api"] == "blas"
        )
    except ImportError:
        blas = "unknown BLAS"
    return (
        f"python {platform.python_version()}, numpy {np.__version__}, scipy "
        f"{scipy.__version__}, scikit-learn {sklearn.__version__}, numba "
        f"{numba.__version__}, {blas}, {platform.machine()}"
    )


def table(rows, headers):
    """A GitHub markdown table."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)
