"""A damaged Numba cache falls back to compiling with one warning (issue 11).

Every case has a kernel module of its own, in a source directory of its own,
so that it has its own cache files and its own cache directory (the warning
is issued once per directory and process). Three processes serve all cases:
one compiles and writes every cache, one loads them after each case's
damage, and one checks that the damaged entries were rewritten. They load
``sklunlearn/_numba/_config.py`` alone, as module ``numba_config``: importing
the package would triple each process's start-up.
"""

import importlib.util
import json
import os
import pathlib
import subprocess
import sys
import textwrap

import pytest

KERNEL_MODULE = textwrap.dedent(
    """
    from numba_config import jit


    @jit
    def weighted_sum(x, w):
        total = 0.0
        for i in range(x.shape[0]):
            total += x[i] * w[i]
        return total
    """
)

# Calls the kernel of every module named on the command line, each with its
# own record of warnings; prints one JSON object keyed by module.
CALL = textwrap.dedent(
    """
    import importlib, importlib.util, json, sys, warnings
    import numpy as np

    spec = importlib.util.spec_from_file_location("numba_config", sys.argv[1])
    config = sys.modules["numba_config"] = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(config)

    results = {}
    for name in sys.argv[2:]:
        module = importlib.import_module(name)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            value = module.weighted_sum(np.arange(4.0), np.full(4, 0.5))
        results[name] = {
            "value": value,
            "hits": sum(module.weighted_sum.stats.cache_hits.values()),
            "warnings": [
                [issubclass(w.category, config.NumbaCacheWarning),
                 issubclass(w.category, RuntimeWarning), str(w.message)]
                for w in caught
            ],
        }
    print(json.dumps(results))
    """
)


def _truncate(path):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 3])


def _garbage(path):
    path.write_bytes(b"\x93 this is not a pickle \x00\xff" * 7)


def _flip_middle(path):
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 64] = b"\xa5" * 64
    path.write_bytes(bytes(data))


# case id -> (suffix of the damaged cache file, damage); "intact" is not damaged.
CASES = {
    "truncated-index": (".nbi", _truncate),
    "garbage-index": (".nbi", _garbage),
    "garbage-data": (".nbc", _garbage),
    "truncated-data": (".nbc", _truncate),
    "flipped-data": (".nbc", _flip_middle),
    "intact": (None, None),
}
CONFIG = (
    pathlib.Path(importlib.util.find_spec("sklunlearn").origin).parent / "_numba/_config.py"
)
QUIET_LOAD = {"value": 3.0, "hits": 1, "warnings": []}


def _module_name(case):
    return "damaged_cache_" + case.replace("-", "_")


def _run(source_dirs, cache_dir, cases):
    """Call the kernels of ``cases`` in one fresh process; results by case."""
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_DISABLE_JIT"}
    env.update(
        NUMBA_CACHE_DIR=str(cache_dir),
        PYTHONPATH=os.pathsep.join([*map(str, source_dirs), env.get("PYTHONPATH", "")]),
        PYTHONDONTWRITEBYTECODE="1",
    )
    out = subprocess.run(
        [sys.executable, "-c", CALL, str(CONFIG), *map(_module_name, cases)],
        capture_output=True,
        text=True,
        env=env,
        cwd=cache_dir.parent,
        check=True,
    )
    results = json.loads(out.stdout.strip().splitlines()[-1])
    return {case: results[_module_name(case)] for case in cases}


def _cache_files(cache_dir, case, suffix):
    return sorted(cache_dir.rglob(f"*{_module_name(case)}*weighted_sum*{suffix}"))


@pytest.fixture(scope="module")
def damaged(tmp_path_factory):
    """Per case: the damaged file, and the results of the damaged and the next load."""
    root = tmp_path_factory.mktemp("numba_cache")
    cache_dir = root / "numba cache"
    source_dirs = []
    for case in CASES:
        source_dir = root / "sources" / case
        source_dir.mkdir(parents=True)
        (source_dir / f"{_module_name(case)}.py").write_text(KERNEL_MODULE)
        source_dirs.append(source_dir)
    compiled = _run(source_dirs, cache_dir, CASES)
    assert all(r == {"value": 3.0, "hits": 0, "warnings": []} for r in compiled.values())
    damaged_files = {}
    for case, (suffix, damage) in CASES.items():
        if damage is not None:
            files = _cache_files(cache_dir, case, suffix)
            assert len(files) == 1, files
            damage(files[0])
            damaged_files[case] = files[0]
    after_damage = _run(source_dirs, cache_dir, CASES)
    next_load = _run(source_dirs, cache_dir, CASES)
    return damaged_files, after_damage, next_load


def test_intact_cache_loads_quietly(damaged):
    _, after_damage, next_load = damaged
    assert after_damage["intact"] == next_load["intact"] == QUIET_LOAD


@pytest.mark.parametrize(
    "case", ["truncated-index", "garbage-index", "garbage-data", "truncated-data"]
)
def test_damaged_cache_compiles_with_one_warning(damaged, case):
    damaged_files, after_damage, next_load = damaged
    out = after_damage[case]
    assert out["value"] == 3.0
    assert out["hits"] == 0  # compiled, not loaded
    assert len(out["warnings"]) == 1, out["warnings"]
    is_ours, is_runtime, message = out["warnings"][0]
    assert is_ours and is_runtime
    assert str(damaged_files[case].parent) in message
    # The damaged entry was rewritten: the next process loads it quietly.
    assert next_load[case] == QUIET_LOAD


def test_flipped_bytes_in_the_data_file_compile_or_load(damaged):
    """Damage that still unpickles is beyond detection; damage that does not is caught."""
    _, after_damage, _ = damaged
    out = after_damage["flipped-data"]
    assert out["value"] == 3.0
    assert len(out["warnings"]) <= 1
