"""The TSDB's compressed chunks: reads are the same with them as without, for any window."""

from __future__ import annotations

import math
import struct
from array import array

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orbiter.satellite import tsdb
from orbiter.satellite.series import Labels
from orbiter.satellite.tsdb import (
    CHUNK_SAMPLES,
    HEAD_SAMPLES,
    STALE_NAN,
    TSDB,
    OutOfOrderSample,
    _decode_chunk,
    _encode_chunk,
)
from tests.unit.test_tsdb import _POOL, L, M, _bits, _Key, _ModelTSDB, ingest_steps

UNCHUNKED = 10**9
"""A chunk size no test reaches: a TSDB that keeps every sample in its head, as before chunks."""


def bits(values: array[float]) -> list[int]:
    return list(array("Q", values.tobytes()))


def windows(db: TSDB, start_ms: int, end_ms: int) -> list[tuple[Labels, list[int], list[int]]]:
    return [
        (labels, list(ts), bits(vs))
        for labels, ts, vs in db.select_windows([M("__name__", "=", "m")], start_ms, end_ms)
    ]


def latest(db: TSDB, start_ms: int, end_ms: int) -> list[tuple[Labels, int, int]]:
    return [
        (labels, t, struct.unpack("<Q", struct.pack("<d", v))[0])
        for labels, t, v in zip(
            *db.select_latest([M("__name__", "=", "m")], start_ms, end_ms), strict=True
        )
    ]


def chunk_count(db: TSDB) -> int:
    return sum(len(s.chunks) for s in db._by_labels.values())


# -- encoding --------------------------------------------------------------------

_ODD_VALUES = [
    STALE_NAN,
    math.nan,
    struct.unpack("<d", struct.pack("<Q", 0x7FF0_0000_0000_0001))[0],  # a signalling NaN
    struct.unpack("<d", struct.pack("<Q", 0xFFF8_0000_0000_0000))[0],  # a negative NaN
    -0.0,
    0.0,
    math.inf,
    -math.inf,
    5e-324,
    1.7976931348623157e308,
]


@pytest.mark.parametrize(
    "timestamps",
    [
        [0],
        [-(2**40), 0, 2**40],
        [1000, 16_000, 31_000, 46_000, 61_000],
        [1, 2, 3, 1_000_000, 1_000_001],
    ],
)
def test_a_chunk_gives_back_every_timestamp_and_every_value_bit(timestamps: list[int]) -> None:
    ts = array("q", timestamps)
    vs = array("d", (_ODD_VALUES * len(ts))[: len(ts)])
    got_ts, got_vs = _decode_chunk(_encode_chunk(ts, vs))
    assert got_ts == ts
    assert bits(got_vs) == bits(vs)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.integers(-(2**40), 2**40), min_size=1, max_size=300, unique=True),
    st.lists(st.integers(0, 2**64 - 1), min_size=300, max_size=300),
)
def test_any_samples_survive_a_chunk_bit_for_bit(stamps: list[int], value_bits: list[int]) -> None:
    ts = array("q", sorted(stamps))
    vs = array("d")
    vs.frombytes(array("Q", value_bits[: len(ts)]).tobytes())
    got_ts, got_vs = _decode_chunk(_encode_chunk(ts, vs))
    assert got_ts == ts
    assert bits(got_vs) == bits(vs)


def test_an_hour_of_a_counter_costs_at_most_a_byte_and_a_half_a_sample_in_chunks() -> None:
    db = TSDB()
    value = 0.0
    for i in range(240):
        value += [3.0, 7.0, 2.0, 5.0][i % 4]
        db.append(L("m", kind="counter"), i * 15_000, value)
        db.append(L("m", kind="gauge"), i * 15_000, round(0.25 + (i % 7) * 0.125, 3))
        db.append(L("m", kind="up"), i * 15_000, 1.0)
    db.gc(240 * 15_000)
    for series in db._by_labels.values():
        (chunk,) = series.chunks
        assert len(chunk) / CHUNK_SAMPLES <= 1.5, series.labels


# -- gc moves samples into chunks, reads do not see the difference --------------


def test_gc_compresses_the_oldest_samples_of_a_long_head_only() -> None:
    db = TSDB()
    last = CHUNK_SAMPLES + HEAD_SAMPLES - 1
    for i in range(last):
        db.append(L("m"), i * 15_000, float(i))
    db.gc(last * 15_000)
    assert chunk_count(db) == 0
    db.append(L("m"), last * 15_000, 1.0)
    db.gc(last * 15_000)
    (series,) = db._by_labels.values()
    assert len(series.chunks) == 1 and len(series.ts) == HEAD_SAMPLES
    assert db.sample_count == CHUNK_SAMPLES + HEAD_SAMPLES


def test_one_gc_compresses_at_most_its_budget_and_the_next_gc_goes_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(tsdb, "COMPRESS_PER_GC", 2)
    db = TSDB(chunk_samples=2, head_samples=1)
    for x in range(3):
        for i in range(3):
            db.append(L("m", x=str(x)), i * 1000, float(i))
    db.gc(2000)
    assert chunk_count(db) == 2
    db.gc(2000)
    assert chunk_count(db) == 3


def test_a_window_across_chunk_boundaries_reads_as_without_chunks() -> None:
    chunked, plain = TSDB(chunk_samples=4, head_samples=3), TSDB(chunk_samples=UNCHUNKED)
    for i in range(30):
        for db in (chunked, plain):
            db.append(L("m"), i * 1000, STALE_NAN if i % 5 == 4 else float(i))
            db.gc(i * 1000)
    assert chunk_count(chunked) == 6
    for start, end in [(0, 10**9), (2500, 9000), (3000, 4000), (3999, 4000), (26_000, 29_000),
                       (12_000, 12_000), (12_500, 12_700), (-5, -1), (40_000, 50_000)]:  # fmt: skip
        assert windows(chunked, start, end) == windows(plain, start, end), (start, end)
        assert latest(chunked, start, end) == latest(plain, start, end), (start, end)


def test_an_instant_read_before_the_head_finds_the_newest_sample_in_a_chunk() -> None:
    db = TSDB(chunk_samples=4, head_samples=3)
    for i in range(10):
        db.append(L("m"), i * 1000, float(i))
    db.gc(9000)
    assert latest(db, 0, 2500) == [(L("m"), 2000, bits(array("d", [2.0]))[0])]


def test_retention_cuts_inside_a_chunk_without_showing_what_it_cut() -> None:
    db = TSDB(retention_ms=20_000, chunk_samples=8, head_samples=4)
    for i in range(12):
        db.append(L("m"), i * 1000, float(i))
    db.gc(20_000)
    db.gc(24_000)  # cutoff 4 s: inside the chunk holding 0..7 s
    (series,) = db._by_labels.values()
    assert len(series.chunks) == 1
    assert windows(db, -(10**9), 10**9)[0][1] == list(range(4000, 12_000, 1000))
    assert latest(db, 0, 3999) == []
    assert db.sample_count == 8
    db.gc(29_000)  # cutoff 9 s: the chunk's newest is 7 s, so the chunk goes
    assert not series.chunks
    assert windows(db, -(10**9), 10**9)[0][1] == [9000, 10_000, 11_000]


def test_ingest_trims_inside_a_chunk_when_it_would_have_trimmed_without_chunks() -> None:
    chunked = TSDB(retention_ms=20_000, chunk_samples=8, head_samples=4)
    plain = TSDB(retention_ms=20_000, chunk_samples=UNCHUNKED)
    for db in (chunked, plain):
        for i in range(12):
            db.append(L("m"), i * 1000, float(i))
        db.gc(11_000)
        db.gc(23_300)  # cutoff 3.3 s, inside the chunk; the oldest sample left is at 4 s
    assert chunk_count(chunked) == 1
    for t in range(12_000, 40_000, 500):  # the ingest path trims once the oldest is 1.25 s late
        for db in (chunked, plain):
            db.append(L("m"), t, float(t))
        assert windows(chunked, -(10**9), 10**9) == windows(plain, -(10**9), 10**9), t
        assert chunked.sample_count == plain.sample_count


def test_a_series_with_chunks_is_removed_once_nothing_is_left_in_retention() -> None:
    db = TSDB(retention_ms=10_000, chunk_samples=2, head_samples=1)
    for i in range(5):
        db.append(L("m"), i * 1000, float(i))
    db.gc(4000)
    assert chunk_count(db) == 1
    assert db.gc(4000 + 10_001) == 1
    assert len(db) == 0 and windows(db, -(10**9), 10**9) == []


def test_sizes_below_one_sample_are_refused() -> None:
    with pytest.raises(ValueError, match="at least one sample"):
        TSDB(chunk_samples=0)
    with pytest.raises(ValueError, match="at least one sample"):
        TSDB(head_samples=0)


# -- property: chunked, unchunked and the one-sample-at-a-time model agree --------

_WINDOW = st.tuples(st.integers(-250_000, 20_000), st.integers(-1000, 250_000))


@settings(max_examples=300, deadline=None)
@given(ingest_steps(), st.floats(allow_nan=True), st.data())
def test_reads_with_chunks_are_the_reads_without_them(
    steps: list[tuple], value: float, data: st.DataObject
) -> None:
    chunked = TSDB(retention_ms=60_000, chunk_samples=3, head_samples=2)
    plain = TSDB(retention_ms=60_000, chunk_samples=UNCHUNKED)
    model = _ModelTSDB(retention_ms=60_000)
    keys: dict[tuple[int, int], _Key] = {}

    def own_key(db: TSDB, key: object) -> object:
        """Each TSDB its own row keys, so each keeps its refs and takes the bulk path."""
        if not isinstance(key, _Key):
            return key
        return keys.setdefault((id(db), id(key)), _Key(key.labels))

    clock = 100_000
    for kind, advance, arg in steps:
        clock += advance
        value += 1.0
        if kind == "scrape":
            target, keyed = arg
            rows = [(key, value, None if stamp is None else clock + stamp) for key, stamp in keyed]
            stats = [
                db.append_scrape(target, [(own_key(db, k), v, t) for k, v, t in rows], clock)
                for db in (chunked, plain)
            ]
            assert stats[0] == stats[1] == model.append_scrape(target, rows, clock)
        elif kind == "append":
            try:
                model.append(arg, clock, value)
            except OutOfOrderSample:
                for db in (chunked, plain):
                    with pytest.raises(OutOfOrderSample):
                        db.append(arg, clock, value)
            else:
                chunked.append(arg, clock, value)
                plain.append(arg, clock, value)
        elif kind == "down":
            assert chunked.mark_target_down(arg, clock) == plain.mark_target_down(arg, clock)
            model.mark_target_down(arg, clock)
        if kind == "gc" or data.draw(st.booleans()):
            assert chunked.gc(clock) == plain.gc(clock) == model.gc(clock)
        everything = {
            s.labels: [(t, _bits(v)) for t, v in zip(s.timestamps, s.values, strict=True)]
            for s in chunked.select([M("__name__", "=", "m")], -(10**12), 10**12)
        }
        assert everything == model.everything()
        assert chunked.sample_count == plain.sample_count
        assert len(chunked) == len(plain)
        for back, span in data.draw(st.lists(_WINDOW, max_size=3)):
            start, end = clock + back, clock + back + span
            assert windows(chunked, start, end) == windows(plain, start, end)
            assert latest(chunked, start, end) == latest(plain, start, end)
    assert set(chunked._by_labels) <= set(_POOL)
