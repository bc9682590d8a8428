"""The fingerprint and table kernels against plain Python references.

Runs with and without ``NUMBA_DISABLE_JIT=1``; under it the kernels run as
Python on NumPy scalars, whose wrapping uint64 arithmetic warns.
"""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sklunlearn._numba import fingerprint as fp
from sklunlearn._numba import ledger_table as lt

pytestmark = pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")

MASK_64 = (1 << 64) - 1
MASK_32 = (1 << 32) - 1


def reference_mix(x):
    """SplitMix64 output function on Python ints."""
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & MASK_64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & MASK_64
    return x ^ (x >> 31)


def reference_fingerprint(row, target, key):
    """NH over the row's canonical bytes in four lanes, folded to 128 bits."""
    values = np.append(np.asarray(row, dtype=np.float64), target)
    values[values == 0.0] = 0.0  # -0.0 -> +0.0
    words = [int(w) for w in values.view(np.uint64)]
    lanes = []
    for lane in range(fp.N_LANES):
        total = 0
        for j, word in enumerate(words):
            a = ((word & MASK_32) + int(key.low[lane, j])) & MASK_32
            b = ((word >> 32) + int(key.high[lane, j])) & MASK_32
            total = (total + a * b) & MASK_64
        lanes.append(total)
    fold = [int(f) for f in key.fold]
    hi = reference_mix((reference_mix(lanes[0] ^ fold[0]) + lanes[1]) & MASK_64)
    lo = reference_mix((reference_mix(lanes[2] ^ fold[1]) + lanes[3]) & MASK_64)
    return hi, lo


def random_key(seed, n_words):
    words = np.random.default_rng(seed).integers(0, 2**63, size=2, dtype=np.uint64)
    return fp.expand_key(words, n_words)


def test_expand_key_matches_splitmix64():
    key = fp.expand_key(np.array([7, 11], dtype=np.uint64), 3)
    outputs = [
        reference_mix((seed + k * 0x9E3779B97F4A7C15) & MASK_64)
        for seed in (7, 11)
        for k in range(1, 4 * 3 // 2 + 2)
    ]
    halves = [o & MASK_32 for o in outputs] + [o >> 32 for o in outputs]
    assert key.low.ravel().tolist() == halves[:12]
    assert key.high.ravel().tolist() == halves[12:24]
    assert key.fold.tolist() == [
        halves[-2] | (halves[-4] << 32),
        halves[-1] | (halves[-3] << 32),
    ]
    assert key.low.max() < 2**32 and key.high.max() < 2**32


@pytest.mark.parametrize("order", ["C", "F"])
@pytest.mark.parametrize("n, d", [(1, 1), (7, 3), (600, 2), (5, 0)])
def test_fingerprint_matches_reference(order, n, d):
    rng = np.random.default_rng(n + d)
    X = np.asarray(rng.standard_normal((n, d)), order=order)
    if n * d:
        X.flat[::3] = -0.0
    y = rng.integers(0, 3, size=n).astype(np.float64)
    key = random_key(d, d + 1)
    got = fp.fingerprint_rows(X, y, key)
    expected = [reference_fingerprint(X[i], y[i], key) for i in range(min(n, 40))]
    assert [tuple(int(v) for v in row) for row in got[: len(expected)]] == expected
    # C and F order walk the words differently and must agree everywhere.
    other = np.asarray(X, order="F" if order == "C" else "C")
    np.testing.assert_array_equal(fp.fingerprint_rows(other, y, key), got)


def test_fingerprint_threads_split_rows_without_changing_result(monkeypatch):
    rng = np.random.default_rng(3)
    X = rng.standard_normal((1001, 4))
    y = rng.standard_normal(1001)
    key = random_key(1, 5)
    single = fp.fingerprint_rows(X, y, key)
    monkeypatch.setattr(fp, "PARALLEL_MIN_WORDS", 1)
    monkeypatch.setattr(fp, "_n_threads", lambda n_words: 3)
    np.testing.assert_array_equal(fp.fingerprint_rows(X, y, key), single)
    np.testing.assert_array_equal(fp.fingerprint_rows(np.asfortranarray(X), y, key), single)


def test_fingerprint_canonical_zero_and_one_ulp():
    key = random_key(5, 3)
    X = np.array([[0.0, 1.0], [-0.0, 1.0], [0.0, np.nextafter(1.0, 2.0)]])
    y = np.array([1.0, 1.0, 1.0])
    got = fp.fingerprint_rows(X, y, key)
    assert tuple(got[0]) == tuple(got[1])
    assert tuple(got[0]) != tuple(got[2])
    y_minus = np.array([-0.0, 0.0, 5.0])
    got = fp.fingerprint_rows(np.zeros((3, 2)), y_minus, key)
    assert tuple(got[0]) == tuple(got[1]) != tuple(got[2])


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("where", ["X", "y"])
@pytest.mark.parametrize("order", ["C", "F"])
def test_fingerprint_refuses_non_finite(bad, where, order):
    X = np.ones((4, 3), order=order)
    y = np.ones(4)
    (X if where == "X" else y)[2] = bad
    with pytest.raises(ValueError, match="NaN or infinity"):
        fp.fingerprint_rows(X, y, random_key(0, 4))


def test_fingerprint_wrapper_checks_inputs():
    key = random_key(0, 3)
    with pytest.raises(TypeError, match="float64"):
        fp.fingerprint_rows(np.ones((2, 2), dtype=np.float32), np.ones(2), key)
    with pytest.raises(TypeError, match="contiguous"):
        fp.fingerprint_rows(np.ones((2, 4))[:, ::2], np.ones(2), key)
    with pytest.raises(ValueError, match="Shapes"):
        fp.fingerprint_rows(np.ones((2, 3)), np.ones(2), key)


# Fingerprints whose low bits collide on purpose, so that a small table's
# probe runs are long and wrap around its end.
def crafted(hi, home):
    return np.array([[hi, home]], dtype=np.uint64)


operations = st.lists(
    st.tuples(
        st.sampled_from(["add", "forget"]),
        st.integers(0, 11),  # which fingerprint (hi)
        st.sampled_from([13, 14, 15, 0, 1]),  # its home slot in a 16-slot table
        st.sampled_from([0.0, 0.5, 1.0, 2.0]),
    ),
    max_size=60,
)


def check_table_against(tables, totals, reference):
    """Every reference entry is found with its values, and nothing else is stored."""
    entries, counts = tables
    stored = {
        (int(e["hi"]), int(e["lo"])): (
            e["weight"],
            e["learned"],
            e["rows"],
            e["learned_rows"],
        )
        for e in lt.table_entries(entries, counts)
    }
    assert stored.keys() == reference.keys()
    for key, (weight, learned, rows, learned_rows) in reference.items():
        assert lt.table_contains(entries, np.array([key], dtype=np.uint64))[0]
        got = stored[key]
        assert got[0] == pytest.approx(weight) and got[1] == pytest.approx(learned)
        assert (got[2], got[3]) == (rows, learned_rows)
    for table in tables:  # empty slots are zero
        assert not np.any(table[table["weight"] == 0].view(np.uint8))
    assert totals[0]["entries"] == len(reference)
    assert totals[0]["counted"] == sum(v[3] > 1 for v in reference.values())
    assert totals[0]["counted"] == (counts["weight"] != 0).sum()
    assert totals[0]["rows"] == sum(v[2] for v in reference.values())


@given(operations)
def test_table_kernels_match_dict(ops):
    tables = (lt.new_table(16), lt.new_table(16))
    totals = np.zeros(1, dtype=lt.TOTALS)
    reference = {}
    for op, hi, home, weight in ops:
        key = (hi, home)
        fingerprint = crafted(hi, home)
        weights = np.array([weight])
        if op == "add":
            if weight > 0 and key not in reference and len(reference) >= 8:
                continue  # the caller keeps the load at most MAX_LOAD
            lt.table_add(*tables, fingerprint, weights, totals)
            if weight > 0:
                w, learned, rows, learned_rows = reference.get(key, (0.0, 0.0, 0, 0))
                reference[key] = (w + weight, learned + weight, rows + 1, learned_rows + 1)
        else:
            groups, refusals = lt.table_plan(tables[0], fingerprint, weights, 1e-9)
            if weight == 0:
                assert refusals[0] == 0 and len(groups) == 0
            elif key not in reference:
                assert refusals[0] == lt.REFUSED_NOT_LEARNED
            elif weight > reference[key][0] + 1e-9 * reference[key][1]:
                assert refusals[0] == lt.REFUSED_OVER_WEIGHT
            else:
                assert refusals[0] == 0
                lt.table_apply(*tables, groups, 1e-9, totals)
                w, learned, rows, learned_rows = reference[key]
                left = w - weight
                if left <= 1e-9 * learned:
                    del reference[key]
                else:
                    kept = int(
                        np.ceil(left / (learned / learned_rows) - 1e-9 * learned_rows)
                    )
                    reference[key] = (left, learned, min(rows, max(1, kept)), learned_rows)
        check_table_against(tables, totals, reference)


def test_plan_groups_repeats_and_reports_each_reason():
    table = lt.new_table(16)
    totals = np.zeros(1, dtype=lt.TOTALS)
    learned = np.array([[1, 1], [2, 2], [3, 3]], dtype=np.uint64)
    lt.table_add(table, lt.new_table(16), learned, np.array([1.0, 1.0, 2.0]), totals)
    before = table.copy()
    request = np.array(
        [[1, 1], [9, 9], [2, 2], [2, 2], [3, 3], [3, 3], [4, 4]], dtype=np.uint64
    )
    weights = np.array([0.5, 1.0, 1.0, 1.0, 1.0, 0.5, 0.0])
    groups, refusals = lt.table_plan(table, request, weights, 1e-9)
    np.testing.assert_array_equal(table, before)
    assert refusals.tolist() == [0, 1, 3, 3, 0, 0, 0]
    assert [(int(g["hi"]), g["weight"], g["largest"], int(g["rows"])) for g in groups] == [
        (1, 0.5, 0.5, 1),
        (9, 1.0, 1.0, 1),
        (2, 2.0, 1.0, 2),
        (3, 1.5, 1.0, 2),
    ]
    _, refusals = lt.table_plan(
        table, np.array([[1, 1]], dtype=np.uint64), np.array([3.0]), 0
    )
    assert refusals.tolist() == [lt.REFUSED_OVER_WEIGHT]


def test_rehash_and_merge_keep_every_entry():
    rng = np.random.default_rng(0)
    fingerprints = rng.integers(0, 2**63, size=(300, 2), dtype=np.uint64)
    weights = rng.uniform(0.1, 2.0, size=300)
    tables = (lt.new_table(lt.capacity_for(300)), lt.new_table(lt.capacity_for(300)))
    totals = np.zeros(1, dtype=lt.TOTALS)
    lt.table_add(*tables, fingerprints, weights, totals)
    lt.table_add(*tables, fingerprints[:10], weights[:10], totals)  # repeats: counts
    grown = (lt.rehash(tables[0], 4 * tables[0].shape[0]), lt.rehash(tables[1], 64))
    merged = (lt.new_table(lt.capacity_for(300)), lt.new_table(lt.capacity_for(300)))
    merged_totals = np.zeros(1, dtype=lt.TOTALS)
    lt.table_merge(*merged, merged_totals, *tables)
    lt.table_merge(*merged, merged_totals, *tables)  # same entries: weights double
    assert merged_totals[0].tolist()[:3] == (300, 300, 620)
    assert merged_totals[0]["weight"] == pytest.approx(2 * totals[0]["weight"], rel=1e-14)
    expected = 2 * weights
    expected[:10] *= 2
    for t in (grown, merged):
        assert lt.table_contains(t[0], fingerprints).all()
        listed = lt.table_entries(*t)
        assert listed.size == 300
        by_key = {(int(e["hi"]), int(e["lo"])): e for e in listed}
        found = [by_key[tuple(map(int, f))] for f in fingerprints]
        scale = 1 if t is grown else 2
        np.testing.assert_allclose([e["weight"] for e in found], scale * expected / 2)
        assert [e["learned_rows"] for e in found] == [scale * 2] * 10 + [scale] * 290


def test_table_wrappers_check_inputs():
    with pytest.raises(TypeError, match="power-of-two"):
        lt.table_contains(lt.new_table(12), np.zeros((1, 2), dtype=np.uint64))
    with pytest.raises(TypeError, match="uint64"):
        lt.table_contains(lt.new_table(16), np.zeros((1, 2)))
    with pytest.raises(ValueError, match="weights"):
        lt.table_plan(lt.new_table(16), np.zeros((2, 2), dtype=np.uint64), np.ones(3), 0)
    for bad in (-1.0, np.nan, np.inf):
        with pytest.raises(ValueError, match="finite and non-negative"):
            lt.check_weights(np.array([1.0, bad]))
    lt.check_weights(np.array([0.0, 1e300]))
