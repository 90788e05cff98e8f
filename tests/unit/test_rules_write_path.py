"""A rule's output into storage: the bulk path must do exactly what the per-sample one did.

The oracle below is `evaluate_group`'s write path as it was before the bulk write
(label sets built, sorted and checked per sample, `append` per sample, staleness
markers from frozenset differences); the real thing runs against a TSDB, where
recording rules remember their outputs and the TSDB appends a rule's batch in
bulk, and must agree with it sample for sample, error for error.
"""

from __future__ import annotations

import contextlib
import struct
from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orbiter.satellite.rules import (
    STALE_NAN,
    GroupState,
    RecordingRule,
    RuleEvalError,
    RuleGroup,
    evaluate_group,
    evaluate_rule,
)
from orbiter.satellite.series import Labels
from orbiter.satellite.tsdb import TSDB, OutOfOrderSample

RETENTION_MS = 60_000


def L(name: str, **labels: str) -> Labels:
    return tuple(sorted({"__name__": name, **labels}.items()))


def fresh(lbls: Labels) -> Labels:
    """An equal label set that is another object (as the engine hands them back)."""
    return tuple(list(lbls))


class AppendOnly:
    """A storage with `append` only, so `_append_batch` falls back to it sample by sample."""

    def __init__(self, tsdb: TSDB) -> None:
        self.tsdb = tsdb

    def select(self, *args: Any) -> Any:
        return self.tsdb.select(*args)

    def append(self, labels: Labels, t_ms: int, value: float) -> None:
        self.tsdb.append(labels, t_ms, value)


def contents(tsdb: TSDB) -> dict[Labels, list[tuple[int, bytes]]]:
    """Every series with every sample held (chunks too), values as their exact bits."""
    out = {}
    for lbls, series in tsdb._by_labels.items():
        ts, vs = series.window(-(2**62), 2**62)
        out[lbls] = [(t, struct.pack("<d", v)) for t, v in zip(ts, vs, strict=True)]
    return out


# ---------------------------------------------------------------------------
# TSDB.append_batch


def test_append_batch_equals_appends_and_reports_refused_samples_in_place() -> None:
    bulk, single = TSDB(), TSDB()
    a, b, c = L("r", i="a"), L("r", i="b"), L("r", i="c")
    for db in (bulk, single):
        db.append(b, 2_000, 0.0)  # b already has a newer sample: refused below
    refused = bulk.append_batch("w", [a, b, c], [1.0, 2.0, 3.0], 1_000)
    one_by_one = []
    for i, (lbls, v) in enumerate(zip([a, b, c], [1.0, 2.0, 3.0], strict=True)):
        try:
            single.append(lbls, 1_000, v)
        except OutOfOrderSample as e:
            one_by_one.append((i, str(e)))
    expected = [(1, str(OutOfOrderSample(b, 1_000, 2_000)))]
    assert [(i, str(e)) for i, e in refused] == one_by_one == expected
    assert contents(bulk) == contents(single)
    assert sorted(contents(bulk)) == [a, b, c]


def _no_lookup(labels: Labels) -> Any:
    raise AssertionError(f"looked {labels} up: not the bulk path")


def test_append_batch_goes_in_bulk_while_the_writer_repeats_its_batch() -> None:
    db = TSDB()
    labels = [L("r", i=str(i)) for i in range(3)]
    assert db.append_batch("w", labels, [1.0] * 3, 1_000) == []
    db._series = _no_lookup  # type: ignore[method-assign]
    assert db.append_batch("w", [fresh(lb) for lb in labels], [2.0] * 3, 2_000) == []
    del db._series
    db.append(labels[0], 2_500, 5.0)  # another write to one series spoils the bulk path
    db._series = _no_lookup  # type: ignore[method-assign]
    with pytest.raises(AssertionError, match="not the bulk path"):
        db.append_batch("w", labels, [3.0] * 3, 3_000)
    del db._series
    assert db.append_batch("w", labels, [3.0] * 3, 3_000) == []
    one = struct.pack("<d", 1.0)
    two, three, five = (struct.pack("<d", v) for v in (2.0, 3.0, 5.0))
    assert contents(db) == {
        labels[0]: [(1_000, one), (2_000, two), (2_500, five), (3_000, three)],
        labels[1]: [(1_000, one), (2_000, two), (3_000, three)],
        labels[2]: [(1_000, one), (2_000, two), (3_000, three)],
    }


def test_append_batch_refused_in_bulk_position_falls_back_and_reports() -> None:
    db = TSDB()
    labels = [L("r", i=str(i)) for i in range(3)]
    db.append_batch("w", labels, [1.0] * 3, 1_000)
    refused = db.append_batch("w", labels, [2.0] * 3, 1_000)  # same time: all out of order
    assert [i for i, _ in refused] == [0, 1, 2]
    assert all(isinstance(e, OutOfOrderSample) for _, e in refused)
    assert db.append_batch("w", labels, [2.0] * 3, 2_000) == []
    assert all(len(samples) == 2 for samples in contents(db).values())


def test_append_batch_naming_a_series_twice_never_goes_in_bulk() -> None:
    db = TSDB()
    a = L("r", i="a")
    for t in (1_000, 2_000):
        refused = db.append_batch("w", [a, a], [t + 1.0, t + 2.0], t)
        assert [(i, str(e)) for i, e in refused] == [(1, str(OutOfOrderSample(a, t, t)))]
    assert contents(db) == {
        a: [(1_000, struct.pack("<d", 1_001.0)), (2_000, struct.pack("<d", 2_001.0))]
    }


def test_gc_forgets_the_last_batch_of_a_writer_whose_series_are_gone() -> None:
    db = TSDB(retention_ms=RETENTION_MS)
    db.append_batch("gone", [L("r", i="1")], [1.0], 0)
    db.append_batch("kept", [L("r", i="2")], [1.0], 5 * RETENTION_MS)
    assert db.gc(5 * RETENTION_MS) == 1
    assert list(db._last_scrapes) == ["kept"]  # nothing left holding the removed series


# ---------------------------------------------------------------------------
# The oracle: the write path as it was, one sample at a time.


def oracle_round(
    rules: Sequence[RecordingRule],
    previous: list[frozenset[Labels]],
    storage: TSDB,
    t_ms: int,
    results: Sequence[list[tuple[Labels, float]]],
    limit: int,
) -> tuple[list[frozenset[Labels]], list[tuple[str, str]]]:
    failures: list[tuple[str, str]] = []
    nxt: list[frozenset[Labels]] = []
    for rule, prev, result in zip(rules, previous, results, strict=True):
        try:
            out, seen = [], set()
            for lbls, v in result:
                d = dict(lbls)
                d["__name__"] = rule.name
                for k, lv in rule.labels:
                    if lv == "":
                        d.pop(k, None)
                    else:
                        d[k] = lv
                key = tuple(sorted(d.items()))
                if key in seen:
                    raise RuleEvalError(
                        "vector contains metrics with the same labelset after applying rule labels"
                    )
                seen.add(key)
                out.append((key, v))
            if limit > 0 and len(out) > limit:
                raise RuleEvalError(f"exceeded limit of {limit} with {len(out)} series")
        except RuleEvalError as e:
            failures.append((rule.name, str(e)))
            nxt.append(prev)
            continue
        written = set()
        for key, v in out:
            try:
                storage.append(key, t_ms, v)
            except ValueError as e:
                failures.append((rule.name, str(e)))
                continue
            written.add(key)
        for key in prev - written:
            with contextlib.suppress(ValueError):
                storage.append(key, t_ms, STALE_NAN)
        nxt.append(frozenset(written))
    return nxt, failures


# ---------------------------------------------------------------------------
# The real thing against the oracle, over random rounds.

POOL = [L(m, a=a, b=b) for m in ("x", "y") for a in ("1", "2") for b in ("1", "2")]

RULES = (
    RecordingRule("r0", "q0"),
    RecordingRule("r1", "q1", (("a", ""), ("env", "prod"))),  # drops `a`: collisions
    RecordingRule("r2", "q2", (("b", "9"),)),
)

_result = st.lists(st.sampled_from(range(len(POOL))), unique=True, max_size=5)
_round = st.fixed_dictionaries(
    {
        "results": st.tuples(_result, _result, _result),
        "copies": st.sampled_from(["none", "all", "odd"]),  # which are new equal objects
        "step": st.sampled_from([15_000, 15_000, 15_000, 1, 0, -5]),
        "poke": st.none() | st.tuples(st.integers(0, 50), st.sampled_from([0, 10, 15_000])),
        "gc": st.none() | st.sampled_from([0, RETENTION_MS + 1, 10 * RETENTION_MS]),
        "value": st.sampled_from([1.0, 2.5, float("nan"), STALE_NAN]),
    }
)


def copied(lbls: Labels, position: int, which: str) -> Labels:
    return fresh(lbls) if which == "all" or (which == "odd" and position % 2) else lbls


@settings(max_examples=300, deadline=None)
@given(st.lists(_round, min_size=1, max_size=12), st.sampled_from([0, 0, 3]))
def test_group_writes_match_the_per_sample_oracle(rounds: list[dict], limit: int) -> None:
    rules = tuple(RecordingRule(r.name, r.expr, r.labels) for r in RULES)  # fresh memos
    group = RuleGroup("g", "f.yml", rules, limit=limit)
    real, model, plain = TSDB(RETENTION_MS), TSDB(RETENTION_MS), TSDB(RETENTION_MS)
    state = plain_state = GroupState.initial(group)
    previous: list[frozenset[Labels]] = [frozenset()] * len(rules)
    t_ms = 100_000
    for k, r in enumerate(rounds):
        t_ms += r["step"]
        results = [
            [(copied(POOL[i], j, r["copies"]), r["value"] + k) for j, i in enumerate(picks)]
            for picks in r["results"]
        ]
        by_expr = {rule.expr: res for rule, res in zip(rules, results, strict=True)}
        query = by_expr.get  # (expr, t_ms): the rule's result this round

        got = evaluate_group(group, state, real, t_ms, query)  # type: ignore[arg-type]
        fallback = evaluate_group(group, plain_state, AppendOnly(plain), t_ms, query)  # type: ignore[arg-type]
        previous, want = oracle_round(rules, previous, model, t_ms, results, limit)

        for res in (got, fallback):
            assert [(f.rule.name, f.error) for f in res.failures] == want
            assert res.state.previous == tuple(previous)
            assert all(isinstance(p, frozenset) for p in res.state.previous)
        assert contents(real) == contents(model) == contents(plain)
        state, plain_state = got.state, fallback.state

        if r["poke"] is not None:  # someone else writes one of the series: spoils bulk
            n, dt = r["poke"]
            names = sorted(real._by_labels)
            if names:
                lbls = names[n % len(names)]
                for db in (real, model, plain):
                    with contextlib.suppress(OutOfOrderSample):
                        db.append(lbls, t_ms + dt, 7.0)
        if r["gc"] is not None:  # may remove every series; the next round recreates them
            removed = {db.gc(t_ms + r["gc"]) for db in (real, model, plain)}
            assert len(removed) == 1
        assert contents(real) == contents(model) == contents(plain)


# ---------------------------------------------------------------------------
# The recording rule's memory of its outputs


def query_returning(result: list[tuple[Labels, float]]) -> Any:
    return lambda expr, t: result


def test_equal_inputs_in_new_objects_give_the_remembered_outputs() -> None:
    rule = RecordingRule("r", "x", (("env", "prod"),))
    first = evaluate_rule(rule, {}, query_returning([(L("x", i="1"), 1.0)]), 0)
    second = evaluate_rule(rule, {}, query_returning([(fresh(L("x", i="1")), 2.0)]), 15_000)
    assert second.samples == ((L("r", env="prod", i="1"), 15_000, 2.0),)
    assert second.labels[0] is first.labels[0]
    third = evaluate_rule(rule, {}, query_returning([(L("x", i="2"), 3.0)]), 30_000)
    assert third.samples == ((L("r", env="prod", i="2"), 30_000, 3.0),)
    other = evaluate_rule(RecordingRule("q", "x"), {}, query_returning([(L("x", i="2"), 3.0)]), 0)
    assert other.samples == ((L("q", i="2"), 0, 3.0),)


def test_series_coming_and_going_keep_the_outputs_of_the_others() -> None:
    rule = RecordingRule("r", "x", (("env", "prod"),))
    a, b, c = L("x", i="1"), L("x", i="2"), L("x", i="3")
    first = evaluate_rule(rule, {}, query_returning([(a, 1.0), (b, 2.0)]), 0)
    second = evaluate_rule(rule, {}, query_returning([(c, 3.0), (a, 1.0)]), 15_000)
    assert second.samples == (
        (L("r", env="prod", i="3"), 15_000, 3.0),
        (L("r", env="prod", i="1"), 15_000, 1.0),
    )
    assert second.labels[1] is first.labels[0]
    clash = L("y", i="3")  # another name: the same output as c's once renamed
    with pytest.raises(RuleEvalError, match="same labelset after applying rule labels"):
        evaluate_rule(rule, {}, query_returning([(c, 3.0), (a, 1.0), (clash, 0.0)]), 30_000)


def test_a_collision_is_refused_even_right_after_a_remembered_round() -> None:
    rule = RecordingRule("r", "x")
    ok = [(L("x", i="1"), 1.0)]
    evaluate_rule(rule, {}, query_returning(ok), 0)
    clash = [(L("x", i="1"), 1.0), (L("y", i="1"), 2.0)]
    with pytest.raises(RuleEvalError, match="same labelset after applying rule labels"):
        evaluate_rule(rule, {}, query_returning(clash), 15_000)
    with pytest.raises(RuleEvalError, match="exceeded limit of 1 with 2 series"):
        evaluate_rule(rule, {}, query_returning([*ok, (L("x", i="2"), 2.0)]), 15_000, limit=1)
    again = evaluate_rule(rule, {}, query_returning(ok), 30_000)
    assert again.samples == ((L("r", i="1"), 30_000, 1.0),)


def test_output_series_removed_by_gc_is_written_again() -> None:
    db = TSDB(retention_ms=RETENTION_MS)
    group = RuleGroup("g", "f.yml", (RecordingRule("r", "x"),))
    inputs = [(L("x", i="1"), 1.0)]
    first = evaluate_group(group, GroupState.initial(group), db, 0, query_returning(inputs))
    assert db.gc(10 * RETENTION_MS) == 1 and len(db) == 0
    t = 10 * RETENTION_MS + 1
    second = evaluate_group(group, first.state, db, t, query_returning(inputs))
    third = evaluate_group(group, second.state, db, t + 15_000, query_returning(inputs))
    assert (second.failures, third.failures) == ((), ())
    one = struct.pack("<d", 1.0)
    assert contents(db) == {L("r", i="1"): [(t, one), (t + 15_000, one)]}
    assert third.state.previous == (frozenset({L("r", i="1")}),)
