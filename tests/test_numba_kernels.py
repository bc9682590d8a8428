import ast
import os
import subprocess
import sys

import numba
import numpy as np
import pytest
from _reference import rank_k_update, upper_cholesky
from conftest import random_spd

from sklunlearn._numba import CholeskyUpdateError, _config, cholesky_rank_k_update


@pytest.mark.parametrize("d", [1, 2, 7, 30])
@pytest.mark.parametrize("k", [1, 5])
def test_rank_k_update_matches_numpy(rng, d, k):
    A = random_spd(rng, d)
    X = rng.randn(k, d)
    w = rng.uniform(0.1, 2.0, size=k)
    R = upper_cholesky(A)
    R_new = cholesky_rank_k_update(R, X, w, 1.0)
    np.testing.assert_allclose(R_new.T @ R_new, rank_k_update(A, X, w, 1.0), rtol=1e-10)
    np.testing.assert_allclose(np.tril(R_new, -1), 0.0)
    np.testing.assert_array_equal(R, upper_cholesky(A))  # input untouched


@pytest.mark.parametrize("d", [1, 3, 25])
def test_downdate_inverts_update(rng, d):
    A = random_spd(rng, d)
    X = rng.randn(4, d)
    R = upper_cholesky(A)
    R_up = cholesky_rank_k_update(R, X, None, 1.0)
    R_back = cholesky_rank_k_update(R_up, X, None, -1.0)
    np.testing.assert_allclose(R_back, R, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(
        R_back,
        upper_cholesky(rank_k_update(R_up.T @ R_up, X, np.ones(4), -1)),
        rtol=1e-9,
        atol=1e-12,
    )


def test_downdate_losing_definiteness_raises(rng):
    R = upper_cholesky(np.eye(3))
    with pytest.raises(CholeskyUpdateError, match="not positive definite"):
        cholesky_rank_k_update(R, np.array([[2.0, 0.0, 0.0]]), None, -1.0)
    np.testing.assert_array_equal(R, np.eye(3))


def test_zero_weight_row_is_ignored(rng):
    A = random_spd(rng, 4)
    R = upper_cholesky(A)
    R_new = cholesky_rank_k_update(R, rng.randn(2, 4) * 1e3, np.zeros(2), -1.0)
    np.testing.assert_array_equal(R_new, R)


def test_non_finite_input_reports(rng):
    R = upper_cholesky(np.eye(2))
    with pytest.raises(CholeskyUpdateError, match="non-finite"):
        cholesky_rank_k_update(R, np.array([[np.nan, 1.0]]), None, 1.0)


@pytest.mark.parametrize(
    "R, X, message",
    [
        (np.eye(2, dtype=np.float32), np.ones((1, 2)), "float64"),
        (np.ones((2, 3)), np.ones((1, 2)), "square"),
        (np.asfortranarray(np.triu(np.ones((3, 3)))), np.ones((1, 3)), "C-contiguous"),
        (np.eye(2), np.ones((1, 3)), "shape"),
    ],
)
def test_wrapper_checks_inputs(R, X, message):
    with pytest.raises((TypeError, ValueError), match=message):
        cholesky_rank_k_update(R, X)


def test_wrapper_rejects_negative_weights_and_bad_sign():
    with pytest.raises(ValueError, match="non-negative"):
        cholesky_rank_k_update(np.eye(2), np.ones((1, 2)), np.array([-1.0]))
    with pytest.raises(ValueError, match="sign"):
        cholesky_rank_k_update(np.eye(2), np.ones((1, 2)), None, 2.0)


def test_fastmath_keeps_nan_and_inf_semantics():
    assert "nnan" not in _config.FASTMATH and "ninf" not in _config.FASTMATH


def test_jit_falls_back_without_cache(monkeypatch):
    """With no writable cache directory Numba refuses cache=True: we must still compile."""
    real_jit = numba.jit

    def refusing_jit(*args, cache=False, **kwargs):
        if cache:
            raise RuntimeError("cannot cache function 'f': no locator available for file")
        return real_jit(*args, cache=cache, **kwargs)

    monkeypatch.setattr(_config.numba, "jit", refusing_jit)

    def add_one(x):
        return x + 1.0

    compiled = _config.jit(add_one)
    assert compiled(1.0) == 2.0


def test_import_does_not_compile():
    """Importing every public module leaves every kernel of the package uncompiled."""
    code = (
        "import importlib, pkgutil\n"
        "from numba.core.registry import CPUDispatcher\n"
        "import sklunlearn, sklunlearn._numba\n"
        "for name in ['datasets', 'gaussian_process', 'linear_model', 'metrics',\n"
        "             'model_selection', 'pipeline', 'posterior', 'unlearning', 'cli']:\n"
        "    importlib.import_module('sklunlearn.' + name)\n"
        "kernels = {}\n"
        "for info in pkgutil.iter_modules(sklunlearn._numba.__path__):\n"
        "    module = importlib.import_module('sklunlearn._numba.' + info.name)\n"
        "    for attribute, value in vars(module).items():\n"
        "        if isinstance(value, CPUDispatcher):\n"
        "            kernels[info.name + '.' + attribute] = len(value.signatures)\n"
        "print(sorted(kernels.items()))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_DISABLE_JIT"}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    kernels = ast.literal_eval(out.stdout)
    names = [name for name, _ in kernels]
    assert "cholesky._cholesky_rank_one_kernel" in names
    assert "glm._logistic_terms_kernel" in names
    assert all(count == 0 for _, count in kernels), kernels


def test_package_works_when_no_cache_location_is_writable(tmp_path):
    """A real read-only situation: every place Numba could cache to is blocked.

    (Tests run as root on CI, so permissions cannot block writes; a *file* named
    __pycache__ blocks the in-tree cache directory, and /dev/null/... blocks the
    user-provided and user-wide ones.)
    """
    import shutil

    import sklunlearn

    copy = tmp_path / "sklunlearn"
    shutil.copytree(
        os.path.dirname(sklunlearn.__file__),
        copy,
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    for folder in [copy, *[p for p in copy.rglob("*") if p.is_dir()]]:
        (folder / "__pycache__").write_text("blocks the cache directory")
    code = (
        "import numpy as np, sklunlearn\n"
        f"assert sklunlearn.__file__.startswith({str(tmp_path)!r})\n"
        "from sklunlearn._numba import cholesky\n"
        "from sklunlearn.posterior import GaussianPosterior\n"
        "p = GaussianPosterior.from_precision(np.zeros(40), np.eye(40))\n"
        "p = p.rank_update(np.ones((1, 40)))\n"
        "kernel = cholesky._cholesky_rank_one_kernel\n"
        "print(type(kernel._cache).__name__, round(p.precision[0, 0], 9))"
    )
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_DISABLE_JIT"}
    env.update(
        PYTHONPATH=str(tmp_path),
        NUMBA_CACHE_DIR="/dev/null/numba",
        HOME="/dev/null",
        XDG_CACHE_HOME="/dev/null/cache",
        PYTHONDONTWRITEBYTECODE="1",
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        check=True,
    )
    assert out.stdout.split() == ["NullCache", "2.0"]
