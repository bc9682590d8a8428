"""Keyed 128-bit row fingerprints.

Fingerprint
-----------
A row ``x`` (``d`` float64 values) and its target ``t`` are read as ``m = d + 1``
64-bit words ``w_j``: their IEEE-754 bit patterns, with -0.0 mapped to +0.0
first (rows equal as numbers are equal as words). Each word is split into its
32-bit halves ``a_j`` (low) and ``b_j`` (high). Four lanes ``L = 0..3`` each
compute the NH hash of UMAC (Black, Halevi, Krawczyk, Krovetz & Rogaway,
"UMAC: fast and secure message authentication", CRYPTO 1999, Sec. 4)::

    NH_L = sum_j ((a_j + A[L, j]) mod 2^32) * ((b_j + B[L, j]) mod 2^32)  mod 2^64

with 32-bit key words ``A``, ``B``, and the four 64-bit results are folded into
the fingerprint ``(hi, lo)`` by the SplitMix64 output function ``mix``
(Steele, Lea & Flood, OOPSLA 2014; a bijection of 64-bit words with full
avalanche) under two more key words ``F``::

    hi = mix(mix(NH_0 ^ F_0) + NH_1),   lo = mix(mix(NH_2 ^ F_1) + NH_3)

All key words are SplitMix64 expansions of a 128-bit secret key
(``expand_key``).

What it guarantees. NH is 2^-32-almost-universal for equal-length inputs
(UMAC, Theorem 4.2): for two distinct rows fixed before the key is drawn,
one lane collides with probability at most 2^-32, and the four lanes, with
independent key words, all collide with probability at most 2^-128. The final
fold to 128 bits is a heuristic keyed mixing (a lane pair that differs in one
lane always gives different output, one that differs in both collides with
probability about 2^-64 per half). So: two distinct rows share a fingerprint
with probability about 2^-128 (a ledger of ``n`` rows about ``n^2 2^-129``),
for any data chosen without knowledge of the key; the bound treats the
expanded key words as uniform. It is not a cryptographic MAC: NH is linear
enough that someone who learns fingerprints of chosen rows, or the key, can
construct collisions.

The per-word terms are summed, so their order does not matter: one kernel
walks a C-ordered array row by row, another an F-ordered one column by
column (vectorised across rows), with identical results. Both use 32 x 32 ->
64-bit multiplications only, which vectorise on AVX2.

The table that counts fingerprints is ``sklunlearn._numba.ledger_table``.
"""

import os
from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple

import numba
import numpy as np

from ._config import jit

STATUS_OK = 0
STATUS_NOT_FINITE = 2

_SIGN_BIT = np.uint64(0x8000000000000000)
_EXPONENT = np.uint64(0x7FF0000000000000)
_LOW_32 = np.uint64(0xFFFFFFFF)
_SHIFT_32 = np.uint64(32)
_GOLDEN_GAMMA = np.uint64(0x9E3779B97F4A7C15)
_MIX_1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX_2 = np.uint64(0x94D049BB133111EB)
_SHIFT_30 = np.uint64(30)
_SHIFT_27 = np.uint64(27)
_SHIFT_31 = np.uint64(31)

# NH lanes; each contributes at most 2^-32 to the collision probability.
N_LANES = 4

# Rows per block of the column-walking kernel: 4 lanes of 512 accumulators
# (16 KiB) stay in L1 while a column block streams through.
BLOCK_ROWS = 512

# Fingerprinting fewer words than this runs in the calling thread: starting
# threads would cost more than it saves.
PARALLEL_MIN_WORDS = 1 << 20


class FingerprintKey(NamedTuple):
    """Key words expanded from a 128-bit secret key.

    Attributes
    ----------
    low : ndarray of shape (N_LANES, m), uint64
        ``A[L, j]``, added to the low halves of the words (values below 2^32).
    high : ndarray of shape (N_LANES, m), uint64
        ``B[L, j]``, added to the high halves (values below 2^32).
    fold : ndarray of shape (2,), uint64
        ``F_0, F_1`` of the final fold.
    """

    low: np.ndarray
    high: np.ndarray
    fold: np.ndarray


def _splitmix64(seed, count):
    """``count`` SplitMix64 outputs from ``seed`` (NumPy arrays wrap modulo 2^64)."""
    state = np.uint64(seed) + np.arange(1, count + 1, dtype=np.uint64) * _GOLDEN_GAMMA
    state = (state ^ (state >> _SHIFT_30)) * _MIX_1
    state = (state ^ (state >> _SHIFT_27)) * _MIX_2
    return state ^ (state >> _SHIFT_31)


def expand_key(key, n_words):
    """Key words for rows of ``n_words`` words from a 128-bit key.

    Parameters
    ----------
    key : ndarray of shape (2,), uint64
        The secret key.
    n_words : int
        Words per row (features + 1 for the target).

    Returns
    -------
    key : FingerprintKey
    """
    n_halves = N_LANES * n_words
    # Two independent streams, one per key word; every output word feeds
    # two 32-bit key words.
    stream = np.concatenate(
        [_splitmix64(key[0], n_halves // 2 + 1), _splitmix64(key[1], n_halves // 2 + 1)]
    )
    halves = np.concatenate([stream & _LOW_32, stream >> _SHIFT_32])
    low = halves[:n_halves].reshape(N_LANES, n_words)
    high = halves[n_halves : 2 * n_halves].reshape(N_LANES, n_words)
    fold = halves[-2:] | (halves[-4:-2] << _SHIFT_32)
    return FingerprintKey(
        np.ascontiguousarray(low), np.ascontiguousarray(high), np.ascontiguousarray(fold)
    )


@jit
def _mix(x):
    """SplitMix64 output function (Stafford's Mix13): a bijection with full avalanche."""
    x = (x ^ (x >> _SHIFT_30)) * _MIX_1
    x = (x ^ (x >> _SHIFT_27)) * _MIX_2
    return x ^ (x >> _SHIFT_31)


@jit
def _canonical_word(word):
    """``word`` with -0.0 mapped to +0.0."""
    if word == _SIGN_BIT:
        return np.uint64(0)
    return word


@jit
def _is_not_finite(word):
    """Whether the float64 with bit pattern ``word`` is NaN or infinite."""
    return (word & _EXPONENT) == _EXPONENT


@jit
def _nh_term(word, low_key, high_key):
    """One NH product: ``((a + A) mod 2^32) * ((b + B) mod 2^32)``, exact in 64 bits."""
    a = ((word & _LOW_32) + low_key) & _LOW_32
    b = ((word >> _SHIFT_32) + high_key) & _LOW_32
    return a * b


@jit
def _fold(nh_0, nh_1, nh_2, nh_3, fold):
    """The 128-bit fingerprint ``(hi, lo)`` of four NH lanes."""
    return _mix(_mix(nh_0 ^ fold[0]) + nh_1), _mix(_mix(nh_2 ^ fold[1]) + nh_3)


@jit
def _nh_lanes(word, low, high, j):
    """The four lanes' NH terms of ``word`` at word position ``j``."""
    return (
        _nh_term(word, low[0, j], high[0, j]),
        _nh_term(word, low[1, j], high[1, j]),
        _nh_term(word, low[2, j], high[2, j]),
        _nh_term(word, low[3, j], high[3, j]),
    )


@jit
def _fingerprint_rows_kernel(words, target_words, low, high, fold, out, start, stop):
    """Fingerprints of rows ``start:stop`` of a C-ordered ``words`` (n, d) into ``out``.

    Returns STATUS_NOT_FINITE when a word is NaN or infinite. The target's
    word is added after the loop over the row, which then has no branch and
    vectorises.
    """
    d = words.shape[1]
    for i in range(start, stop):
        nh_0 = nh_1 = nh_2 = nh_3 = np.uint64(0)
        not_finite = False
        for j in range(d):
            word = _canonical_word(words[i, j])
            not_finite |= _is_not_finite(word)
            nh_0 += _nh_term(word, low[0, j], high[0, j])
            nh_1 += _nh_term(word, low[1, j], high[1, j])
            nh_2 += _nh_term(word, low[2, j], high[2, j])
            nh_3 += _nh_term(word, low[3, j], high[3, j])
        target = _canonical_word(target_words[i])
        if not_finite or _is_not_finite(target):
            return STATUS_NOT_FINITE
        term_0, term_1, term_2, term_3 = _nh_lanes(target, low, high, d)
        out[i, 0], out[i, 1] = _fold(
            nh_0 + term_0, nh_1 + term_1, nh_2 + term_2, nh_3 + term_3, fold
        )
    return STATUS_OK


@jit
def _add_column(column, low, high, j, lanes):
    """``lanes[L, i] += NH term of column[i]`` at word position ``j``.

    Returns whether a word was NaN or infinite.
    """
    not_finite = False
    for i in range(column.shape[0]):
        word = _canonical_word(column[i])
        not_finite |= _is_not_finite(word)
        for lane in range(N_LANES):
            lanes[lane, i] += _nh_term(word, low[lane, j], high[lane, j])
    return not_finite


@jit
def _fingerprint_columns_kernel(words_t, target_words, low, high, fold, out, start, stop):
    """As ``_fingerprint_rows_kernel`` for an F-ordered array, passed transposed (d, n).

    Walks blocks of BLOCK_ROWS rows column by column, so every read is
    contiguous and the loop over rows vectorises.
    """
    d = words_t.shape[0]
    lanes = np.empty((N_LANES, BLOCK_ROWS), dtype=np.uint64)
    for block_start in range(start, stop, BLOCK_ROWS):
        block_stop = min(stop, block_start + BLOCK_ROWS)
        lanes[:] = 0
        not_finite = False
        for j in range(d):
            column = words_t[j, block_start:block_stop]
            not_finite |= _add_column(column, low, high, j, lanes)
        column = target_words[block_start:block_stop]
        not_finite |= _add_column(column, low, high, d, lanes)
        if not_finite:
            return STATUS_NOT_FINITE
        for i in range(block_stop - block_start):
            out[block_start + i, 0], out[block_start + i, 1] = _fold(
                lanes[0, i], lanes[1, i], lanes[2, i], lanes[3, i], fold
            )
    return STATUS_OK


def _n_threads(n_words):
    """Threads to fingerprint ``n_words`` words: Numba's thread count, capped at 8."""
    if n_words < PARALLEL_MIN_WORDS:
        return 1
    return max(1, min(8, numba.config.NUMBA_NUM_THREADS, os.cpu_count() or 1))


def fingerprint_rows(X, y, key):
    """Keyed 128-bit fingerprints of the rows of ``X`` with targets ``y``.

    Large inputs are split into row ranges fingerprinted in parallel threads
    (the kernels release the GIL); the result does not depend on the split.

    Parameters
    ----------
    X : ndarray of shape (n, d), float64, C- or F-contiguous
        Rows, finite.
    y : ndarray of shape (n,), float64, contiguous
        Targets, finite.
    key : FingerprintKey
        From ``expand_key(secret, d + 1)``.

    Returns
    -------
    fingerprints : ndarray of shape (n, 2), uint64
        ``(hi, lo)`` per row.

    Raises
    ------
    ValueError
        When ``X`` or ``y`` holds NaN or infinity, or shapes do not match.
    TypeError
        When a dtype or layout is not the one documented.
    """
    _check_rows(X, y, key)
    n, d = X.shape
    fingerprints = np.empty((n, 2), dtype=np.uint64)
    if X.flags.c_contiguous:
        kernel, words = _fingerprint_rows_kernel, X.view(np.uint64)
    else:
        kernel, words = _fingerprint_columns_kernel, X.T.view(np.uint64)
    target_words = y.view(np.uint64)

    def run(start, stop):
        return kernel(words, target_words, *key, fingerprints, start, stop)

    n_threads = _n_threads(n * (d + 1))
    if n_threads == 1:
        statuses = [run(0, n)]
    else:
        bounds = np.linspace(0, n, n_threads + 1).astype(np.int64)
        with ThreadPoolExecutor(n_threads) as executor:
            statuses = list(executor.map(run, bounds[:-1], bounds[1:]))
    if max(statuses, default=STATUS_OK) == STATUS_NOT_FINITE:
        raise ValueError("Cannot fingerprint rows holding NaN or infinity.")
    return fingerprints


def _check_array(array, dtype, ndim, name):
    """TypeError unless ``array`` is a contiguous ndarray of ``dtype`` and ``ndim``."""
    if not (isinstance(array, np.ndarray) and array.dtype == dtype and array.ndim == ndim):
        raise TypeError(f"{name} must be a {ndim}-D {np.dtype(dtype).name} numpy array.")
    if not (array.flags.c_contiguous or array.flags.f_contiguous):
        raise TypeError(f"{name} must be C- or F-contiguous.")


def _check_rows(X, y, key):
    """TypeError or ValueError unless ``X``, ``y`` and ``key`` fit ``fingerprint_rows``."""
    _check_array(X, np.float64, 2, "X")
    _check_array(y, np.float64, 1, "y")
    for name, words in zip(key._fields, key, strict=True):
        _check_array(words, np.uint64, 1 if name == "fold" else 2, f"key.{name}")
    n, d = X.shape
    if (
        y.shape != (n,)
        or key.low.shape != (N_LANES, d + 1)
        or key.high.shape != key.low.shape
    ):
        raise ValueError(
            f"Shapes do not match: X {X.shape}, y {y.shape}, key words "
            f"{key.low.shape} (expected y ({n},) and key words ({N_LANES}, {d + 1}))."
        )
