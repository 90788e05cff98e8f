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


# -- repeated scrapes -------------------------------------------------------------


def test_repeated_scrapes_of_the_same_series_append_every_sample() -> None:
    db = TSDB()
    cache = ScrapeCache()
    for i in range(5):
        stats = db.append_scrape(
            "t1", cache.parse_into(f'm{{x="1"}} {i}\nm{{x="2"}} -{i}\n'), i * 1000
        )
        assert stats == AppendStats(appended=2, out_of_order=0, marked_stale=0)
    assert samples_of(db, L("m", x="1")) == [(i * 1000, float(i)) for i in range(5)]
    assert samples_of(db, L("m", x="2")) == [(i * 1000, -float(i)) for i in range(5)]


def test_a_series_written_ahead_of_a_repeated_scrape_counts_as_out_of_order() -> None:
    db = TSDB()
    rows = [(L("m", x="1"), 1.0, None), (L("m", x="2"), 1.0, None)]
    db.append_scrape("t1", rows, 1000)
    db.append_scrape("t1", rows, 2000)
    db.append(L("m", x="2"), 5000, 9.0)
    assert db.append_scrape("t1", rows, 3000) == AppendStats(1, 1, 0)
    assert samples_of(db, L("m", x="1"))[-1] == (3000, 1.0)
    assert samples_of(db, L("m", x="2"))[-1] == (5000, 9.0)


def test_a_series_twice_in_every_scrape_is_out_of_order_every_time() -> None:
    db = TSDB()
    for t_ms in (1000, 2000, 3000):
        stats = db.append_scrape("t1", [(L("m"), 1.0, None), (L("m"), 2.0, None)], t_ms)
        assert stats == AppendStats(appended=1, out_of_order=1, marked_stale=0)
    assert samples_of(db, L("m")) == [(1000, 1.0), (2000, 1.0), (3000, 1.0)]


def test_repeated_scrapes_keep_to_retention() -> None:
    db = TSDB(retention_ms=60_000)
    cache = ScrapeCache()
    for i in range(1000):
        db.append_scrape("t1", cache.parse_into(f"a {i}\nb {i}\n"), i * 1000)
    assert db.sample_count <= 2 * (60 * (1 + 1 / 16) + 2)
    for name in ("a", "b"):
        (series,) = db.select([M("__name__", "=", name)], 0, 10**9)
        assert series.timestamps[-1] == 999_000
        assert series.timestamps[0] >= 999_000 - 60_000 * (1 + 1 / 16)


def test_a_series_removed_between_repeated_scrapes_is_created_again() -> None:
    db = TSDB(retention_ms=60_000)
    cache = ScrapeCache()
    db.append_scrape("t1", cache.parse_into("m 1\n"), 0)
    db.append_scrape("t1", cache.parse_into("m 2\n"), 15_000)
    assert db.gc(now_ms=200_000) == 1
    db.append_scrape("t1", cache.parse_into("m 3\n"), 200_000)
    assert samples_of(db, L("m")) == [(200_000, 3.0)]


def test_two_targets_exposing_one_series_keep_it_in_order() -> None:
    db = TSDB()
    for t_ms in (1000, 2000, 3000):
        assert db.append_scrape("t1", [(L("m"), t_ms / 1000, None)], t_ms) == AppendStats(1, 0, 0)
        assert db.append_scrape("t2", [(L("m"), -1.0, None)], t_ms) == AppendStats(0, 1, 0)
    assert samples_of(db, L("m")) == [(1000, 1.0), (2000, 2.0), (3000, 3.0)]


def test_a_staleness_marker_from_another_target_keeps_a_repeated_scrape_in_order() -> None:
    db = TSDB()
    db.append_scrape("t2", [(L("m"), 1.0, None)], 500)
    db.append_scrape("t1", [(L("m"), 1.0, None)], 1000)
    assert db.append_scrape("t2", [], 2000) == AppendStats(0, 0, 1)
    assert db.append_scrape("t1", [(L("m"), 2.0, None)], 2000) == AppendStats(0, 1, 0)
    assert samples_of(db, L("m")) == [(500, 1.0), (1000, 1.0), (2000, "stale")]


def test_a_series_emptied_by_an_old_timestamp_takes_the_next_repeated_scrape() -> None:
    db = TSDB(retention_ms=60_000)
    rows = [(L("m"), 1.0, None)]
    db.append_scrape("t1", rows, 0)
    db.append_scrape("t1", rows, 15_000)
    # Another target's sample at 30 s, appended at 100 s, is past retention at once.
    db.append_scrape("t2", [(L("m"), 2.0, 30_000)], 100_000)
    assert db.append_scrape("t1", rows, 115_000) == AppendStats(1, 0, 0)
    assert samples_of(db, L("m")) == [(115_000, 1.0)]


class _Key:
    """A row key the way the scraper makes them: labels plus a ref the TSDB may keep."""

    def __init__(self, labels: Labels) -> None:
        self.labels = labels
        self.ref: object | None = None


class _ModelTSDB:
    """append_scrape and friends as documented, one sample at a time: what TSDB must agree with."""

    def __init__(self, retention_ms: int) -> None:
        self.retention_ms = retention_ms
        self.samples: dict[Labels, list[tuple[int, float]]] = {}
        self.targets: dict[str, set[Labels]] = {}

    def _add(self, labels: Labels, t_ms: int, value: float, now_ms: int) -> bool:
        held = self.samples.setdefault(labels, [])
        if held and held[-1][0] >= t_ms:
            return False
        held.append((t_ms, value))
        cutoff = now_ms - self.retention_ms
        if held[0][0] < cutoff - self.retention_ms // 16:
            held[:] = [s for s in held if s[0] >= cutoff]
        return True

    def append(self, labels: Labels, t_ms: int, value: float) -> None:
        if not self._add(labels, t_ms, value, t_ms):
            raise OutOfOrderSample(labels, t_ms, self.samples[labels][-1][0])

    def append_scrape(self, target: str, rows: list, t_ms: int) -> AppendStats:
        current: set[Labels] = set()
        out_of_order = 0
        for key, value, stamp in rows:
            labels = key if isinstance(key, tuple) else key.labels
            if stamp is None:
                current.add(labels)
            if not self._add(labels, t_ms if stamp is None else stamp, value, t_ms):
                out_of_order += 1
        previous = self.targets.get(target, set())
        self.targets[target] = current
        return AppendStats(
            len(rows) - out_of_order, out_of_order, self._stale(previous - current, t_ms)
        )

    def mark_target_down(self, target: str, t_ms: int) -> int:
        return self._stale(self.targets.pop(target, set()), t_ms)

    def _stale(self, vanished: set[Labels], t_ms: int) -> int:
        marked = 0
        for labels in vanished:
            held = self.samples[labels]
            if (held and held[-1][0] >= t_ms) or (held and is_stale_nan(held[-1][1])):
                continue
            held.append((t_ms, STALE_NAN))
            marked += 1
        return marked

    def gc(self, now_ms: int) -> int:
        cutoff = now_ms - self.retention_ms
        doomed = [lb for lb, held in self.samples.items() if not held or held[-1][0] < cutoff]
        for labels in doomed:
            del self.samples[labels]
            for exposed in self.targets.values():
                exposed.discard(labels)
        for held in self.samples.values():
            held[:] = [s for s in held if s[0] >= cutoff]
        return len(doomed)

    def everything(self) -> dict[Labels, list[tuple[int, object]]]:
        return {lb: [(t, _bits(v)) for t, v in held] for lb, held in self.samples.items() if held}


def _bits(v: float) -> object:
    return "stale" if is_stale_nan(v) else ("NaN" if math.isnan(v) else v)


_POOL = [L("m", x=str(i)) for i in range(4)]
_STAMP = st.one_of(st.none(), st.none(), st.integers(-100_000, 10_000))


@st.composite
def ingest_steps(draw: st.DrawFn) -> list[tuple]:
    """Mostly repeated scrapes of two targets, with now and then anything else the TSDB takes."""
    keys = {labels: _Key(labels) for labels in _POOL}
    rows_of = {
        target: [(keys[lb], None) for lb in draw(st.lists(st.sampled_from(_POOL), max_size=4))]
        for target in ("t1", "t2")
    }
    steps: list[tuple] = []
    for _ in range(draw(st.integers(1, 25))):
        step = draw(st.integers(0, 0 if draw(st.booleans()) else 8))
        advance = draw(st.sampled_from([0, 1000, 15_000, 15_000, 70_000]))
        target = draw(st.sampled_from(["t1", "t2"]))
        if step == 4:
            rows_of[target] = [(key, draw(_STAMP)) for key, _ in rows_of[target]]
        if step == 5:
            rows_of[target] = [
                (draw(st.sampled_from([keys[lb], lb])), draw(_STAMP))
                for lb in draw(st.lists(st.sampled_from(_POOL), max_size=5))
            ]
        if step == 6:
            steps.append(("append", advance, draw(st.sampled_from(_POOL))))
        elif step == 7:
            steps.append(("down", advance, target))
        elif step == 8:
            steps.append(("gc", advance, None))
        else:
            steps.append(("scrape", advance, (target, list(rows_of[target]))))
    return steps


@settings(max_examples=300, deadline=None)
@given(ingest_steps(), st.floats(allow_nan=True))
def test_ingestion_agrees_with_appending_one_sample_at_a_time(
    steps: list[tuple], value: float
) -> None:
    db, model = TSDB(retention_ms=60_000), _ModelTSDB(retention_ms=60_000)
    clock = 100_000
    for kind, advance, arg in steps:
        clock += advance
        value += 1.0
        if kind == "scrape":
            target, keyed = arg
            rows = [(key, value, None if stamp is None else clock + stamp) for key, stamp in keyed]
            assert db.append_scrape(target, rows, clock) == model.append_scrape(target, rows, clock)
        elif kind == "append":
            try:
                model.append(arg, clock, value)
            except OutOfOrderSample:
                with pytest.raises(OutOfOrderSample):
                    db.append(arg, clock, value)
            else:
                db.append(arg, clock, value)
        elif kind == "down":
            assert db.mark_target_down(arg, clock) == model.mark_target_down(arg, clock)
        else:
            assert db.gc(clock) == model.gc(clock)
        stored = {
            s.labels: [(t, _bits(v)) for t, v in zip(s.timestamps, s.values, strict=True)]
            for s in db.select([M("__name__", "=", "m")], -(10**12), 10**12)
        }
        assert stored == model.everything()


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


def test_select_columns_hands_out_one_labels_list_until_the_selection_changes(db: TSDB) -> None:
    """The evaluator keeps what it derives per list; the list must change when the answer does."""
    up = [M("__name__", "=", "up")]
    first, times, values = db.select_columns(up, 0, 2000)
    assert [list(v) for v in values] == [[1.0]] * 4 and len(times) == 4
    assert db.select_columns(up, 0, 2000)[0] is first
    db.append(L("up", job="agent", instance="a9"), 1500, 2.0)  # a series comes
    second = db.select_columns(up, 0, 2000)[0]
    assert second is not first and len(second) == 5
    only_new = db.select_columns(up, 1200, 2000)  # four have no sample in the window
    assert only_new[0] == [L("up", job="agent", instance="a9")] and only_new[0] is not second
    assert [list(v) for v in only_new[2]] == [[2.0]]


def test_removed_series_leave_long_postings_lists_lazily_and_are_never_selected(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Long postings lists keep removed series until a sweep; no read may see them meanwhile."""
    import orbiter.satellite.tsdb as tsdb_module

    monkeypatch.setattr(tsdb_module, "_MIN_DEAD_POSTINGS", 250)
    db = TSDB(retention_ms=1000)
    for i in range(100):  # job="a" gets a long list; each `i` value a list of one
        db.append(L("m", job="a", i=str(i)), 0, 1.0)
    for i in range(100, 200):
        db.append(L("m", job="a", i=str(i)), 5000, 1.0)
    assert db.gc(5000) == 100  # the first hundred fall out of retention
    # One lazily kept entry in each long list (job="a", __name__="m") per removed series.
    assert db._dead_postings == 200 and len(db._index["job"]["a"]) == 200
    assert db.label_values("i") == sorted(str(i) for i in range(100, 200))
    selected = db.select_windows([M("job", "=", "a")], 0, 6000)
    assert [dict(labels)["i"] for labels, _, _ in selected] == sorted(
        str(i) for i in range(100, 200)
    )
    db.append(L("m", job="a", i="0"), 6000, 2.0)  # the same labels again: a new series
    assert [list(v) for lbl, _, v in db.select_windows([M("i", "=", "0")], 0, 7000)] == [[2.0]]
    for i in range(300, 400):
        db.append(L("m", job="a", i=str(i)), 20_000, 1.0)
    assert db.gc(20_000) == 101  # past the threshold on the way: the lists were swept
    assert len(db._index["job"]["a"]) == 100 + db._dead_postings // 2 < 100 + 101 + 100
    assert db.label_values("job") == ["a"]
    assert len(db.select_windows([M("job", "=", "a")], 0, 30_000)) == 100


def test_series_of_one_target_share_their_timestamps_and_part_when_written_alone() -> None:
    """One target's series are written at the same times: one array holds them for all."""
    db = TSDB(retention_ms=60_000)
    a, b, c = L("m", x="a"), L("m", x="b"), L("m", x="c")
    for t in (1000, 2000, 3000):
        db.append_scrape("t", [(a, float(t), None), (b, -float(t), None)], t)
    sa, sb = db._by_labels[a], db._by_labels[b]
    assert sa.ts is sb.ts and list(sa.ts) == [1000, 2000, 3000]
    for t in (4000, 5000):  # c appears: a new layout, shared again, c holding fewer times
        db.append_scrape("t", [(a, float(t), None), (b, -float(t), None), (c, 0.5, None)], t)
    sc = db._by_labels[c]
    assert sa.ts is sb.ts is sc.ts
    assert [list(t) for _, t, _ in db.select_windows([M("x", "=", "c")], 0, 10_000)] == [
        [4000, 5000]
    ]
    db.append(b, 5500, 7.0)  # b written alone: it gets its own times, a and c keep theirs
    assert sb.ts is not sa.ts and list(sb.ts) == [1000, 2000, 3000, 4000, 5000, 5500]
    db.append_scrape("t", [(a, 6000.0, None), (b, -6000.0, None), (c, 0.5, None)], 6000)
    got = {
        dict(lb)["x"]: (list(t), list(v))
        for lb, t, v in db.select_windows([M("__name__", "=", "m")], 0, 10_000)
    }
    assert got == {
        "a": ([1000, 2000, 3000, 4000, 5000, 6000], [1e3, 2e3, 3e3, 4e3, 5e3, 6e3]),
        "b": (
            [1000, 2000, 3000, 4000, 5000, 5500, 6000],
            [-1e3, -2e3, -3e3, -4e3, -5e3, 7.0, -6e3],
        ),
        "c": ([4000, 5000, 6000], [0.5, 0.5, 0.5]),
    }
    for t in range(7000, 70_000, 1000):  # a and c only, in one layout: shared again
        db.append_scrape("t", [(a, float(t), None), (c, 0.5, None)], t)
    db.gc(69_000)  # retention cuts the heads; the shared times follow the longest head
    assert sa.ts is sc.ts and len(sa.ts) == len(sa.vs) == len(sc.vs)
    assert sa.ts[0] == 9000
    assert list(db.select_windows([M("x", "=", "a")], 0, 9000)[0][1]) == [9000]
