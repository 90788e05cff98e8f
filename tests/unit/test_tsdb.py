"""The in-memory TSDB: selectors, windows, staleness, retention, and its index."""

from __future__ import annotations

import math
import re
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orbiter.satellite.exposition import ScrapeCache
from orbiter.satellite.series import (
    STALE_NAN_BITS,
    Labels,
    Matcher,
    MatchOp,
    Storage,
    labels_of,
)
from orbiter.satellite.tsdb import STALE_NAN, TSDB, AppendStats, OutOfOrderSample, is_stale_nan


def L(name: str, **labels: str) -> Labels:
    return labels_of({"__name__": name, **labels})


def M(name: str, op: str, value: str) -> Matcher:
    return Matcher(name, MatchOp(op), value)


@pytest.fixture
def db() -> TSDB:
    """Four series of `up` and one of `load`, one sample each at t=1000."""
    db = TSDB()
    for labels in (
        L("up", job="master", instance="m1"),
        L("up", job="agent", instance="a1"),
        L("up", job="agent", instance="a2", zone=""),
        L("up", job="agent", instance="a3", zone="b"),
        L("load", instance="a1"),
    ):
        db.append(labels, 1000, 1.0)
    return db


def test_tsdb_is_a_storage() -> None:
    storage: Storage = TSDB()
    assert list(storage.select([M("__name__", "=", "up")], 0, 10)) == []


SELECTORS = [
    ([M("__name__", "=", "up")], ["a1", "a2", "a3", "m1"]),
    ([M("__name__", "=", "up"), M("job", "=", "agent")], ["a1", "a2", "a3"]),
    ([M("__name__", "=", "up"), M("job", "!=", "agent")], ["m1"]),
    ([M("__name__", "=", "up"), M("instance", "=~", "a[12]")], ["a1", "a2"]),
    ([M("__name__", "=", "up"), M("instance", "!~", "a[12]")], ["a3", "m1"]),
    # Regexes are anchored at both ends: "a" matches no instance, "a|m" neither.
    ([M("__name__", "=", "up"), M("instance", "=~", "a")], []),
    ([M("__name__", "=", "up"), M("instance", "=~", "a|m")], []),
    ([M("__name__", "=", "up"), M("instance", "=~", "a.|m1")], ["a1", "a2", "a3", "m1"]),
    # A missing label is the empty value.
    ([M("__name__", "=", "up"), M("zone", "=", "")], ["a1", "a2", "m1"]),
    ([M("__name__", "=", "up"), M("zone", "!=", "")], ["a3"]),
    ([M("__name__", "=", "up"), M("zone", "!=", "b")], ["a1", "a2", "m1"]),
    ([M("__name__", "=", "up"), M("zone", "=~", "b|")], ["a1", "a2", "a3", "m1"]),
    ([M("__name__", "=", "up"), M("zone", "=~", ".+")], ["a3"]),
    ([M("__name__", "=", "up"), M("zone", "!~", ".*")], []),
    ([M("__name__", "=~", "up|load"), M("instance", "=", "a1")], ["a1", "a1"]),
    ([M("instance", "=", "a1")], ["a1", "a1"]),
    ([M("instance", "!=", "a1")], ["a2", "a3", "m1"]),
    ([M("__name__", "=", "nope")], []),
    ([M("nolabel", "=", "x")], []),
]


@pytest.mark.parametrize(("matchers", "instances"), SELECTORS)
def test_select_honours_every_kind_of_matcher(
    db: TSDB, matchers: list[Matcher], instances: list[str]
) -> None:
    found = list(db.select(matchers, 0, 2000))
    assert sorted(dict(s.labels)["instance"] for s in found) == instances


def test_select_returns_series_sorted_by_labels(db: TSDB) -> None:
    found = list(db.select([M("job", "=~", ".+")], 0, 2000))
    assert [s.labels for s in found] == sorted(s.labels for s in found)


def test_invalid_regex_is_a_clear_error(db: TSDB) -> None:
    with pytest.raises(ValueError, match="invalid regex"):
        list(db.select([M("job", "=~", "(")], 0, 2000))


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        (1000, 3000, [1000, 2000, 3000]),
        (1001, 2999, [2000]),
        (2000, 2000, [2000]),
        (0, 999, None),
        (3001, 9000, None),
    ],
)
def test_select_windows_include_both_ends(start: int, end: int, expected: list[int] | None) -> None:
    db = TSDB()
    for t in (1000, 2000, 3000):
        db.append(L("m"), t, t / 1000)
    found = list(db.select([M("__name__", "=", "m")], start, end))
    if expected is None:
        assert found == []
    else:
        (series,) = found
        assert list(series.timestamps) == expected
        assert list(series.values) == [t / 1000 for t in expected]


def test_append_rejects_a_sample_not_after_the_newest() -> None:
    db = TSDB()
    db.append(L("m"), 2000, 1.0)
    with pytest.raises(OutOfOrderSample, match="not after the newest one at 2000 ms"):
        db.append(L("m"), 2000, 2.0)
    with pytest.raises(OutOfOrderSample):
        db.append(L("m"), 1000, 2.0)


# -- staleness -------------------------------------------------------------------


def samples_of(db: TSDB, labels: Labels) -> list[tuple[int, float | str]]:
    matchers = [M(name, "=", value) for name, value in labels]
    (series,) = [s for s in db.select(matchers, 0, 10**12) if s.labels == labels]
    return [
        (t, "stale" if is_stale_nan(v) else v)
        for t, v in zip(series.timestamps, series.values, strict=True)
    ]


def test_series_missing_from_a_scrape_becomes_stale_at_that_scrape() -> None:
    db = TSDB()
    a, b = L("m", x="a"), L("m", x="b")
    db.append_scrape("t1", [(a, 1.0, None), (b, 1.0, None)], 1000)
    stats = db.append_scrape("t1", [(a, 2.0, None)], 2000)
    assert stats == AppendStats(appended=1, out_of_order=0, marked_stale=1)
    assert samples_of(db, b) == [(1000, 1.0), (2000, "stale")]
    assert samples_of(db, a) == [(1000, 1.0), (2000, 2.0)]


def test_stale_series_gets_one_marker_and_comes_back_when_exposed_again() -> None:
    db = TSDB()
    a, b = L("m", x="a"), L("m", x="b")
    db.append_scrape("t1", [(a, 1.0, None), (b, 1.0, None)], 1000)
    db.append_scrape("t1", [(a, 1.0, None)], 2000)
    db.append_scrape("t1", [(a, 1.0, None)], 3000)
    db.append_scrape("t1", [(a, 1.0, None), (b, 5.0, None)], 4000)
    assert samples_of(db, b) == [(1000, 1.0), (2000, "stale"), (4000, 5.0)]


def test_target_down_marks_all_its_series_stale_and_no_other_target_s() -> None:
    db = TSDB()
    a, b, other = L("m", x="a"), L("m", x="b"), L("m", x="other")
    db.append_scrape("t1", [(a, 1.0, None), (b, 1.0, None)], 1000)
    db.append_scrape("t2", [(other, 1.0, None)], 1000)
    assert db.mark_target_down("t1", 1500) == 2
    assert samples_of(db, a)[-1] == (1500, "stale")
    assert samples_of(db, b)[-1] == (1500, "stale")
    assert samples_of(db, other) == [(1000, 1.0)]
    assert db.mark_target_down("t1", 1600) == 0


def test_series_with_explicit_timestamps_are_not_marked_stale() -> None:
    db = TSDB()
    stamped, plain = L("m", x="stamped"), L("m", x="plain")
    db.append_scrape("t1", [(stamped, 1.0, 900), (plain, 1.0, None)], 1000)
    db.append_scrape("t1", [], 2000)
    assert samples_of(db, stamped) == [(900, 1.0)]
    assert samples_of(db, plain)[-1] == (2000, "stale")


def test_out_of_order_scrape_samples_are_counted_not_raised() -> None:
    db = TSDB()
    db.append_scrape("t1", [(L("m"), 1.0, 5000)], 1000)
    stats = db.append_scrape("t1", [(L("m"), 2.0, 4000), (L("n"), 1.0, None)], 2000)
    assert stats == AppendStats(appended=1, out_of_order=1, marked_stale=0)


def test_stale_marker_keeps_its_exact_nan_bits() -> None:
    db = TSDB()
    db.append(L("m"), 1000, STALE_NAN)
    db.append(L("m"), 2000, math.nan)
    (series,) = db.select([M("__name__", "=", "m")], 0, 3000)
    bits = [struct.unpack("<Q", struct.pack("<d", v))[0] for v in series.values]
    assert bits[0] == STALE_NAN_BITS
    assert is_stale_nan(series.values[0]) and not is_stale_nan(series.values[1])


# -- retention -------------------------------------------------------------------


def test_retention_bounds_the_samples_a_series_holds() -> None:
    db = TSDB(retention_ms=60_000)
    for i in range(1000):
        db.append(L("m"), i * 1000, float(i))
    assert db.sample_count <= 60 * (1 + 1 / 16) + 2
    (series,) = db.select([M("__name__", "=", "m")], 0, 10**9)
    assert series.timestamps[-1] == 999_000
    assert series.timestamps[0] >= 999_000 - 60_000 * (1 + 1 / 16)


def test_gc_trims_to_retention_exactly() -> None:
    db = TSDB(retention_ms=60_000)
    for i in range(100):
        db.append(L("m"), i * 1000, float(i))
    db.gc(now_ms=99_000)
    (series,) = db.select([M("__name__", "=", "m")], 0, 10**9)
    assert list(series.timestamps) == [t * 1000 for t in range(39, 100)]


def test_gc_removes_series_with_nothing_left_in_retention_and_their_index_entries() -> None:
    db = TSDB(retention_ms=60_000)
    db.append_scrape("t1", [(L("m", x="gone"), 1.0, None), (L("m", x="kept"), 1.0, None)], 0)
    db.append_scrape("t1", [(L("m", x="kept"), 1.0, None)], 15_000)
    db.append_scrape("t1", [(L("m", x="kept"), 1.0, None)], 80_000)
    # "gone" went stale at 15 s; at 80 s that marker is past the 60 s retention.
    assert db.gc(now_ms=80_000) == 1
    assert len(db) == 1
    assert db.label_values("x") == ["kept"]
    assert list(db.select([M("x", "=", "gone")], 0, 10**9)) == []


def test_retention_can_be_raised_when_rules_load() -> None:
    db = TSDB(retention_ms=60_000)
    db.retention_ms = 600_000
    for i in range(100):
        db.append(L("m"), i * 1000, float(i))
    db.gc(now_ms=99_000)
    assert db.sample_count == 100
    with pytest.raises(ValueError, match="retention must be positive"):
        db.retention_ms = 0


def test_scrape_cache_ref_survives_the_series_being_removed_and_recreated() -> None:
    db = TSDB(retention_ms=60_000)
    cache = ScrapeCache()
    db.append_scrape("t1", cache.parse_into('m{x="1"} 1\n'), 0)
    db.mark_target_down("t1", 15_000)
    db.gc(now_ms=200_000)
    assert len(db) == 0
    db.append_scrape("t1", cache.parse_into('m{x="1"} 7\n'), 200_000)
    assert samples_of(db, L("m", x="1")) == [(200_000, 7.0)]


def test_one_scrape_cache_can_feed_two_tsdbs_without_mixing_their_series() -> None:
    first, second = TSDB(), TSDB()
    rows = ScrapeCache().parse_into("m 1\n")
    first.append_scrape("t", rows, 1000)
    second.append_scrape("t", rows, 2000)
    assert samples_of(first, L("m")) == [(1000, 1.0)]
    assert samples_of(second, L("m")) == [(2000, 1.0)]


def test_scrape_cache_rows_ingest_like_label_rows() -> None:
    text = '# TYPE m gauge\nm{x="1"} 1\nm{x="2"} 2\nn 3 500\n'
    via_cache, via_labels = TSDB(), TSDB()
    cache = ScrapeCache()
    via_cache.append_scrape("t", cache.parse_into(text), 1000)
    via_cache.append_scrape("t", cache.parse_into(text.replace(" 500", " 600")), 2000)
    for t_ms, body in ((1000, text), (2000, text.replace(" 500", " 600"))):
        rows = [(e.labels, v, t) for e, v, t in ScrapeCache().parse_into(body)]
        via_labels.append_scrape("t", rows, t_ms)
    everything = [M("__name__", "=~", ".+")]
    assert list(via_cache.select(everything, 0, 5000)) == list(
        via_labels.select(everything, 0, 5000)
    )
    assert samples_of(via_cache, L("n")) == [(500, 3.0), (600, 3.0)]


# -- the index agrees with a scan ------------------------------------------------

_NAMES = st.sampled_from(["__name__", "job", "instance", "zone"])
_VALUES = st.sampled_from(["", "a", "b", "ab", "a.b", "up", "x\ny"])
_PATTERNS = st.sampled_from(["", "a", "a|b", "a.*", ".*", ".+", "a.b", "(up|ab)", "x.y", "[ab]+"])


@st.composite
def matchers(draw: st.DrawFn) -> Matcher:
    op = draw(st.sampled_from(list(MatchOp)))
    value = draw(_PATTERNS if op in (MatchOp.REGEX, MatchOp.NOT_REGEX) else _VALUES)
    return Matcher(draw(_NAMES), op, value)


def scan_matches(labels: Labels, m: Matcher) -> bool:
    """The definition: a missing label is "", regexes fully anchored, '.' matches newline."""
    value = dict(labels).get(m.name, "")
    if m.op is MatchOp.EQUAL:
        return value == m.value
    if m.op is MatchOp.NOT_EQUAL:
        return value != m.value
    hit = re.fullmatch(m.value, value, re.DOTALL) is not None
    return hit if m.op is MatchOp.REGEX else not hit


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.dictionaries(_NAMES, _VALUES, max_size=4), max_size=12),
    st.lists(matchers(), min_size=1, max_size=3),
    st.booleans(),
)
def test_index_lookup_agrees_with_scanning_every_series(
    label_sets: list[dict[str, str]], selector: list[Matcher], gc_some: bool
) -> None:
    db = TSDB(retention_ms=10_000)
    stored = sorted({labels_of(d) for d in label_sets})
    for i, labels in enumerate(stored):
        db.append(labels, 1000 if gc_some and i % 2 else 20_000, 1.0)
    if gc_some:
        db.gc(now_ms=20_000)
        stored = [labels for i, labels in enumerate(stored) if not i % 2]
    expected = [lb for lb in stored if all(scan_matches(lb, m) for m in selector)]
    assert [s.labels for s in db.select(selector, 0, 10**9)] == expected
