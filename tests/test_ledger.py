"""Ledger: what was learned, checked against a dict keyed by the rows' bytes."""

import math
import pickle

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import sparse

from sklunlearn._numba import fingerprint as fp
from sklunlearn._numba import ledger_table
from sklunlearn.ledger import WEIGHT_RTOL, ForgetPlan, Ledger
from sklunlearn.linear_model import BayesianLinearRegression


def canonical_bytes(row, target):
    values = np.append(np.asarray(row, dtype=np.float64), target)
    values[values == 0.0] = 0.0
    return values.tobytes()


class ReferenceLedger:
    """The contract on a dict: canonical row bytes -> [weight, learned, rows, n]."""

    def __init__(self):
        self.entries = {}

    def add(self, X, y, weights):
        for row, target, w in zip(X, y, weights, strict=True):
            if w > 0:
                entry = self.entries.setdefault(
                    canonical_bytes(row, target), [0.0, 0.0, 0, 0]
                )
                entry[0] += w
                entry[1] += w
                entry[2] += 1
                entry[3] += 1

    def refused(self, X, y, weights):
        asked = {}
        for row, target, w in zip(X, y, weights, strict=True):
            if w > 0:
                key = canonical_bytes(row, target)
                asked[key] = asked.get(key, 0.0) + w
        return [
            i
            for i, (row, target, w) in enumerate(zip(X, y, weights, strict=True))
            if w > 0
            and (
                (key := canonical_bytes(row, target)) not in self.entries
                or asked[key] > self.entries[key][0] + WEIGHT_RTOL * self.entries[key][1]
            )
        ]

    def forget(self, X, y, weights):
        asked = {}
        for row, target, w in zip(X, y, weights, strict=True):
            if w > 0:
                key = canonical_bytes(row, target)
                asked[key] = asked.get(key, 0.0) + w
        for key, w in asked.items():
            weight, learned, rows, learned_rows = self.entries[key]
            left = weight - w
            if left <= WEIGHT_RTOL * learned:
                del self.entries[key]
            else:
                kept = math.ceil(
                    left / (learned / learned_rows) - WEIGHT_RTOL * learned_rows
                )
                self.entries[key] = [left, learned, min(rows, max(1, kept)), learned_rows]

    def contains(self, X, y):
        return [canonical_bytes(r, t) in self.entries for r, t in zip(X, y, strict=True)]


# A small alphabet of values, so that rows repeat; -0.0 and a value one ulp
# away from another are in it.
VALUES = [0.0, -0.0, 1.0, np.nextafter(1.0, 2.0), -2.5, 1e300]
WEIGHTS = [0.0, 0.1, 0.2, 0.3, 0.5, 1.0, 2.0]

batches = st.lists(
    st.tuples(
        st.tuples(st.sampled_from(VALUES), st.sampled_from(VALUES)),
        st.sampled_from([0.0, -0.0, 1.0]),
        st.sampled_from(WEIGHTS),
    ),
    min_size=0,
    max_size=8,
)


def as_arrays(batch, order):
    X = np.array([row for row, _, _ in batch], dtype=np.float64).reshape(len(batch), 2)
    y = np.array([target for _, target, _ in batch], dtype=np.float64)
    w = np.array([weight for _, _, weight in batch], dtype=np.float64)
    return np.asarray(X, order=order), y, w


def assert_same(ledger, reference, probe):
    X, y, _ = probe
    assert len(ledger) == len(reference.entries)
    assert ledger.n_rows == sum(e[2] for e in reference.entries.values())
    assert ledger.total_weight == pytest.approx(
        sum(e[0] for e in reference.entries.values()), rel=1e-12, abs=1e-12
    )
    assert ledger.contains(X, y).tolist() == reference.contains(X, y)


@given(
    st.lists(
        st.tuples(st.sampled_from(["add", "forget"]), batches, st.sampled_from("CF")),
        max_size=12,
    )
)
def test_ledger_matches_dict_reference(steps):
    ledger = Ledger(n_features=2)
    reference = ReferenceLedger()
    for op, batch, order in steps:
        X, y, w = as_arrays(batch, order)
        if op == "add":
            ledger.add(X, y, w)
            reference.add(X, y, w)
        else:
            refused = reference.refused(X, y, w)
            before = pickle.dumps(ledger)
            if refused:
                with pytest.raises(ValueError, match="Cannot forget") as error:
                    ledger.plan_forget(X, y, w)
                assert f"Cannot forget {len(refused)} of" in str(error.value)
                assert pickle.dumps(ledger) == before
            else:
                plan = ledger.plan_forget(X, y, w)
                assert pickle.dumps(ledger) == before
                ledger.apply(plan)
                reference.forget(X, y, w)
        assert_same(ledger, reference, as_arrays(batch, "C"))


def test_fractional_weights_that_add_up_empty_the_entry():
    X = np.array([[1.0, 2.0]])
    y = np.array([0.0])
    ledger = Ledger(2)
    ledger.add(X, y, np.array([0.3]))
    ledger.apply(ledger.plan_forget(X, y, np.array([0.1])))
    assert ledger.n_rows == 1 and len(ledger) == 1
    ledger.apply(ledger.plan_forget(X, y, np.array([0.2])))
    assert len(ledger) == 0 and ledger.n_rows == 0 and ledger.total_weight == 0.0
    assert not ledger.contains(X, y)[0]


def test_row_forgotten_in_halves_stays_counted_until_its_weight_is_gone():
    X = np.arange(6.0).reshape(3, 2)
    y = np.zeros(3)
    ledger = Ledger(2)
    ledger.add(X, y, np.ones(3))
    ledger.add(X[:1], y[:1], np.ones(1))  # row 0 learned twice
    assert ledger.n_rows == 4 and len(ledger) == 3
    half = np.array([0.5])
    ledger.apply(ledger.plan_forget(X[1:2], y[1:2], half))
    assert ledger.n_rows == 4
    ledger.apply(ledger.plan_forget(X[1:2], y[1:2], half))
    assert ledger.n_rows == 3 and len(ledger) == 2
    ledger.apply(ledger.plan_forget(X[:1], y[:1], np.ones(1)))
    assert ledger.n_rows == 2 and ledger.contains(X, y).tolist() == [True, False, True]


def test_forgotten_repeats_leave_nothing_in_either_table():
    X = np.array([[1.0, 2.0], [3.0, 4.0]])
    y = np.zeros(2)
    ledger = Ledger(2)
    ledger.add(X[[0, 0, 0, 1]], y[[0, 0, 0, 1]])
    assert len(ledger) == 2 and ledger.n_rows == 4
    ledger.apply(ledger.plan_forget(X[[0, 0]], y[:2], np.array([1.0, 1.5])))
    assert ledger.n_rows == 2 and ledger.total_weight == 1.5
    ledger.apply(ledger.plan_forget(X, y, np.array([0.5, 1.0])))
    assert len(ledger) == 0 and ledger.n_rows == 0
    assert not ledger._table.view(np.uint8).any()
    assert not ledger._counts.view(np.uint8).any()


@pytest.fixture
def learned():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((30, 3))
    y = rng.integers(0, 2, size=30).astype(np.float64)
    ledger = Ledger(3)
    ledger.add(X, y, np.ones(30))
    return ledger, X, y


def refuse(ledger, X, y, w, *fragments):
    before = pickle.dumps(ledger)
    with pytest.raises(ValueError, match="Cannot forget") as error:
        ledger.plan_forget(X, y, w)
    message = str(error.value)
    assert message.endswith("Nothing was changed.")
    for fragment in fragments:
        assert fragment in message
    assert pickle.dumps(ledger) == before
    return message


def test_refuses_never_learned(learned):
    ledger, X, y = learned
    Xf = np.vstack([X[:2], X[2:3] + 1e-12, X[3:4]])
    message = refuse(
        ledger,
        Xf,
        y[:4],
        np.ones(4),
        "Cannot forget 1 of the 4 rows",
        "never learned",
        "position 2)",
    )
    assert "positions" not in message
    # the same rows with another target were never learned either
    refuse(
        ledger, X[:3], 1.0 - y[:3], np.ones(3), "3 rows never learned", "positions 0, 1, 2"
    )


@pytest.mark.parametrize("as_sparse", [False, True])
def test_refusal_hints_at_float32_rows_given_as_float64(as_sparse):
    rng = np.random.default_rng(0)
    decimals = np.round(rng.normal(size=(20, 3)), 3)  # a CSV's values: not float32
    decimals[:, 0] = 0.0
    y = np.round(rng.normal(size=20), 3)
    as_float32 = decimals.astype(np.float32).astype(np.float64)
    X = sparse.csr_matrix(decimals) if as_sparse else decimals
    hint = "Rounded to float32 they are rows that were learned"
    for y_learned, what in ((y, "pass X as float32"), (y.astype(np.float32), "X and y")):
        ledger = Ledger(3)
        ledger.add(as_float32, np.asarray(y_learned, dtype=np.float64))
        message = refuse(ledger, X[:4], y[:4], None, "4 rows never learned", hint, what)
        assert message.count(hint) == 1
        # one row that no rounding explains: no hint for the others either
        other = (
            sparse.vstack([X[:3], X[3:4] * 2])
            if as_sparse
            else np.vstack([X[:3], X[3:4] * 2])
        )
        assert hint not in refuse(ledger, other, y[:4], None, "4 rows never learned")
        # given as learned, they are forgotten
        rounded = np.asarray(y_learned[:4], dtype=np.float64)
        ledger.apply(ledger.plan_forget(as_float32[:4], rounded))
        assert not ledger.contains(as_float32[:4], rounded).any()


def test_a_float32_fit_refuses_float64_copies_with_the_hint():
    rng = np.random.default_rng(1)
    X = np.round(rng.normal(size=(40, 3)), 3)
    y = np.round(X @ [1.0, 2.0, 3.0] + rng.normal(size=40), 3)
    est = BayesianLinearRegression().fit(X.astype(np.float32), y.astype(np.float32))
    with pytest.raises(ValueError, match="pass X and y as float32"):
        est.partial_unfit(X[:5], y[:5])
    est.partial_unfit(X[:5].astype(np.float32), y[:5].astype(np.float32))
    refit = BayesianLinearRegression().fit(
        X[5:].astype(np.float32), y[5:].astype(np.float32)
    )
    np.testing.assert_allclose(est.coef_, refit.coef_, rtol=1e-4)


def test_refuses_already_forgotten(learned):
    ledger, X, y = learned
    ledger.apply(ledger.plan_forget(X[:5], y[:5], np.ones(5)))
    refuse(ledger, X[3:7], y[3:7], np.ones(4), "Cannot forget 2 of", "positions 0, 1")


def test_refuses_over_weight_and_in_request_repeats(learned):
    ledger, X, y = learned
    refuse(
        ledger, X[:2], y[:2], np.array([1.0, 1.5]), "more weight than is left", "position 1"
    )
    repeated = np.vstack([X[:1], X[:1]])
    refuse(ledger, repeated, np.repeat(y[:1], 2), np.ones(2), "listed more than once")
    refuse(
        ledger, repeated, np.repeat(y[:1], 2), np.array([0.5, 0.5 + 1e-6]), "more than once"
    )
    ledger.apply(ledger.plan_forget(repeated, np.repeat(y[:1], 2), np.array([0.5, 0.5])))
    assert not ledger.contains(X[:1], y[:1])[0]


def test_message_lists_at_most_ten_positions(learned):
    ledger, X, y = learned
    message = refuse(ledger, X + 1.0, y, np.ones(30), "Cannot forget 30 of the 30 rows")
    assert "positions 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, ...)" in message


def test_zero_weight_rows_are_accepted_and_change_nothing(learned):
    ledger, X, y = learned
    before = pickle.dumps(ledger)
    plan = ledger.plan_forget(np.vstack([X[:2], X[:2] + 5.0]), np.zeros(4), np.zeros(4))
    assert plan.n_rows == 0 and plan.weight == 0.0
    ledger.apply(plan)
    assert len(ledger) == 30 and ledger.n_rows == 30 and ledger.total_weight == 30.0
    ledger.add(X[:3] + 7.0, y[:3], np.zeros(3))
    assert len(ledger) == 30 and not ledger.contains(X[:3] + 7.0, y[:3]).any()
    assert pickle.loads(before).contains(X, y).all()


def test_apply_deletes_the_fingerprint(learned):
    ledger, X, y = learned
    (gone,) = fp.fingerprint_rows(X[4:5], y[4:5], ledger._key)
    stored = ledger._table[ledger._table["weight"] != 0]
    assert ((stored["hi"] == gone[0]) & (stored["lo"] == gone[1])).sum() == 1
    ledger.apply(ledger.plan_forget(X[4:5], y[4:5], np.ones(1)))
    assert len(ledger) == 29
    table = ledger._table
    assert not ((table["hi"] == gone[0]) & (table["lo"] == gone[1])).any()
    assert not np.any(table[table["weight"] == 0].view(np.uint8))  # free slots hold nothing
    assert ledger.contains(X, y).sum() == 29


def test_stale_or_foreign_plan_is_refused(learned):
    ledger, X, y = learned
    plan = ledger.plan_forget(X[:1], y[:1], np.ones(1))
    other = ledger.copy()
    other.add(X[:1], y[:1], np.ones(1))
    with pytest.raises(ValueError, match="not made on this ledger"):
        other.apply(plan)
    ledger.apply(plan)
    with pytest.raises(ValueError, match="not made on this ledger"):
        ledger.apply(plan)
    assert isinstance(plan, ForgetPlan) and plan.n_rows == 1


def test_instances_have_different_keys():
    X = np.arange(12.0).reshape(4, 3)
    y = np.ones(4)
    a, b = Ledger(3), Ledger(3)
    a.add(X, y)
    b.add(X, y)
    stored_a = set(map(tuple, a._table[a._table["weight"] != 0][["hi", "lo"]].tolist()))
    stored_b = set(map(tuple, b._table[b._table["weight"] != 0][["hi", "lo"]].tolist()))
    assert len(stored_a) == len(stored_b) == 4 and not stored_a & stored_b
    assert not np.array_equal(a._secret, b._secret)


def test_pickle_round_trip_and_independent_copy(learned):
    ledger, X, y = learned
    restored = pickle.loads(pickle.dumps(ledger))
    copy = ledger.copy()
    assert restored.contains(X, y).all() and len(restored) == 30
    restored.apply(restored.plan_forget(X[:10], y[:10], np.ones(10)))
    copy.add(X[:10] + 1.0, y[:10])
    assert len(restored) == 20 and len(copy) == 40 and len(ledger) == 30
    assert ledger.contains(X, y).all() and not ledger.contains(X[:10] + 1.0, y[:10]).any()


def test_growth_through_many_adds():
    rng = np.random.default_rng(1)
    ledger = Ledger(4)
    chunks = [rng.standard_normal((500, 4)) for _ in range(20)]
    for i, chunk in enumerate(chunks):
        ledger.add(chunk, np.full(500, float(i % 3)))
    assert len(ledger) == ledger.n_rows == 10_000 and ledger.total_weight == 10_000.0
    assert ledger._table.shape[0] * ledger_table.MAX_LOAD >= 10_000
    for i, chunk in enumerate(chunks):
        assert ledger.contains(chunk, np.full(500, float(i % 3))).all()
        assert not ledger.contains(chunk, np.full(500, float(i % 3) + 0.5)).any()


def test_merge_adds_a_copy_and_refuses_another_key(learned):
    ledger, X, y = learned
    chunk = ledger.copy()
    chunk.apply(chunk.plan_forget(X, y, np.ones(30)))
    chunk.add(X[:5], y[:5])
    chunk.add(X[:5] + 1.0, y[:5])
    ledger.merge(chunk)
    assert len(ledger) == 35 and ledger.n_rows == 40 and ledger.total_weight == 40.0
    ledger.apply(ledger.plan_forget(np.vstack([X[:5], X[:5]]), np.tile(y[:5], 2), None))
    assert len(ledger) == 30
    with pytest.raises(ValueError, match="same key"):
        ledger.merge(Ledger(3))


def test_input_checks(learned):
    ledger, X, y = learned
    with pytest.raises(ValueError, match="shape"):
        ledger.add(X[:, :2], y)
    with pytest.raises(ValueError, match="non-negative"):
        ledger.add(X, y, -np.ones(30))
    with pytest.raises(ValueError, match="NaN"):
        ledger.add(np.full((1, 3), np.nan), y[:1])
    assert len(ledger) == 30
