"""In-memory time series database: what scrapes write and rules read.

Each series keeps its newest samples in an uncompressed head of two compact
arrays (`array('q')` for millisecond timestamps, `array('d')` for values),
trimmed from the front as samples fall out of retention. Series written
together at the same times (one target's scrape, one rule's output) share one
timestamps array, so their heads cost 8 bytes a sample and one append per
scrape for the times; a series written on its own has its own (16 bytes). Its
its older samples in immutable compressed chunks (delta-of-delta timestamps
and deltas of the values' bits, byte-shuffled and deflated; the idea of
Gorilla's and Prometheus's chunks): about 1 byte a sample. `gc` moves samples
from the head into chunks, off the ingest path; the head keeps enough that
rules reading the last ~20 minutes never decode a chunk. A label index
(name -> value -> postings list of series) answers selectors without scanning every
series, and the sorted matches of each selector are kept until a series of
that metric name comes or goes, so a rule evaluated every round does not
search and sort again. Staleness follows Prometheus: a series that a target stops exposing,
or every series of a target that goes down, gets the special stale NaN at
once, and the evaluator stops seeing it from that point on.

No clock is read here: times come in with the samples, and `gc(now_ms)` is
told what time it is.
"""

from __future__ import annotations

import re
import struct
import zlib
from array import array
from bisect import bisect_left, bisect_right
from collections import deque
from collections.abc import Hashable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from itertools import accumulate, repeat
from operator import and_, itemgetter, sub

from orbiter.satellite.exposition import CachedSeries
from orbiter.satellite.series import STALE_NAN_BITS, Labels, Matcher, MatchOp, Series

__all__ = ["STALE_NAN", "TSDB", "AppendStats", "OutOfOrderSample", "is_stale_nan"]

STALE_NAN: float = struct.unpack("<d", struct.pack("<Q", STALE_NAN_BITS))[0]
"""The staleness marker as a float; compare with `is_stale_nan`, never `==`."""

_MAX_SELECTIONS = 4096
"""Selectors whose sorted matches are remembered; past this the memory is simply cleared."""

_EAGER_POSTINGS = 64
"""Postings lists up to this long lose a removed series at once; longer ones lazily."""

_MIN_DEAD_POSTINGS = 100_000
"""Lazily kept removed entries that trigger a sweep (or one per live series, if more)."""

_TRIM_SLACK_DIVISOR = 16
"""A series is trimmed once its oldest sample is retention/16 past the cutoff: trimming is a
memmove, so it is batched, at the price of holding up to 1/16 more than retention."""


CHUNK_SAMPLES = 120
"""Samples `gc` moves from a series' head into one compressed chunk (30 min at 15 s)."""

HEAD_SAMPLES = 96
"""Samples a series' head keeps after `gc` compresses (24 min at 15 s): reads of the last
~20 minutes, what rules ask for, stay on the uncompressed arrays."""

COMPRESS_PER_GC = 8192
"""Series one `gc` compresses at most (~35 us each): series that were created together fill
their heads together, and this spreads their compression over rounds instead of one long gc."""

_CHUNK_HEADER = struct.Struct("<qqI")
"""A chunk starts with its first and last timestamp and its sample count, uncompressed."""

_ZLIB_LEVEL = 6
_U64 = 2**64 - 1
_NO_FLOOR = -(2**63)


def _encode_chunk(ts: array[int], vs: array[float]) -> bytes:
    """Samples as one chunk: header, then deflated byte planes of dod(ts) and delta(bits(vs)).

    The values' bits are differenced as integers mod 2**64 rather than XOR'd
    (Gorilla): a counter or a drifting gauge then differs by a small, steady
    integer, which deflates to 0.7 bytes a sample against XOR's 2.6 (bench
    series). Byte planes put the all-zero high bytes of every delta together.
    """
    deltas = array("q", ts[:1])
    deltas.extend(map(sub, ts[1:], ts))
    dods = array("q", deltas[:1])
    dods.extend(map(sub, deltas[1:], deltas))
    bits = array("Q")
    bits.frombytes(vs.tobytes())
    steps = array("Q", bits[:1])
    steps.extend(map(and_, map(sub, bits[1:], bits), repeat(_U64)))
    raw = dods.tobytes() + steps.tobytes()
    planes = b"".join([raw[i::8] for i in range(8)])
    header = _CHUNK_HEADER.pack(ts[0], ts[-1], len(ts))
    return header + zlib.compress(planes, _ZLIB_LEVEL, -15)


def _decode_chunk(chunk: bytes) -> tuple[array[int], array[float]]:
    """A chunk's samples back, every value's bits exactly as appended (staleness NaNs too)."""
    planes = zlib.decompress(memoryview(chunk)[_CHUNK_HEADER.size :], -15)
    raw = bytearray(len(planes))
    width = len(planes) // 8
    for i in range(8):
        raw[i::8] = planes[i * width : (i + 1) * width]
    n = len(raw) // 16
    dods = array("q")
    dods.frombytes(raw[: n * 8])
    steps = array("Q")
    steps.frombytes(raw[n * 8 :])
    ts = array("q", accumulate(accumulate(dods)))
    vs = array("d")
    vs.frombytes(array("Q", map(and_, accumulate(steps), repeat(_U64))).tobytes())
    return ts, vs


def is_stale_nan(value: float) -> bool:
    """Whether value is Prometheus's staleness marker (a NaN with one exact bit pattern)."""
    return value != value and struct.pack("<d", value) == struct.pack("<Q", STALE_NAN_BITS)


class OutOfOrderSample(ValueError):
    """A sample at or before the newest one of its series; Prometheus rejects these too."""

    def __init__(self, labels: Labels, t_ms: int, newest_ms: int) -> None:
        self.labels = labels
        self.t_ms = t_ms
        self.newest_ms = newest_ms
        super().__init__(
            f"sample at {t_ms} ms for {dict(labels)} is not after the newest one at"
            f" {newest_ms} ms; samples of a series must be appended in time order"
        )


@dataclass(frozen=True, slots=True)
class AppendStats:
    """What one scrape's append did (the scrape loop turns these into its own metrics)."""

    appended: int
    out_of_order: int
    marked_stale: int


class _MemSeries:
    """One series' label set and samples; identity-hashed so the index can hold it in sets.

    `owner` is the TSDB holding it, None once removed: a scrape cache's ref is
    only trusted if it still points at a live series of this very TSDB.
    `bulk` is the one target's last scrape allowed to append to it in bulk;
    any other write to the series spoils that first (`spoil_bulk`).
    `chunks` hold samples older than the head (`ts`, `vs`), oldest first; while
    there are any the head is not empty. Chunk samples before `floor_ms` have
    been trimmed (a chunk is immutable, so they are skipped on read).

    The head's timestamps are the last `len(vs)` of `ts`. A series writes its
    own `ts` unless its bulk writer shares one array among all its series
    (they are written at the same times: one scrape, one rule evaluation):
    then `ts is bulk.shared`, which may hold older times than this series, and
    only `vs` is trimmed and compressed here. Detached from the writer, a series
    gets its own copy back first (`spoil_bulk`), before any other write.
    """

    __slots__ = ("bulk", "chunks", "floor_ms", "labels", "owner", "ts", "vs")

    def __init__(self, labels: Labels, owner: TSDB) -> None:
        self.labels = labels
        self.ts = array("q")
        self.vs = array("d")
        self.owner: TSDB | None = owner
        self.bulk: _LastScrape | None = None
        self.chunks: tuple[bytes, ...] = ()
        self.floor_ms = _NO_FLOOR

    def spoil_bulk(self) -> None:
        """Written other than by its bulk writer: that one must go sample by sample again."""
        if self.bulk is not None:
            self.bulk.spoiled = True
            self.detach()

    def detach(self) -> None:
        """Leave the bulk writer, with a timestamps array of its own if it shared one."""
        if self.bulk is not None and self.ts is self.bulk.shared:
            self.ts = self.ts[len(self.ts) - len(self.vs) :]
        self.bulk = None

    def _shares_ts(self) -> bool:
        return self.bulk is not None and self.ts is self.bulk.shared

    def trim(self, cutoff_ms: int) -> None:
        chunks = self.chunks
        if chunks:
            if _chunk_last(chunks[0]) < cutoff_ms:
                self.chunks = tuple(c for c in chunks if _chunk_last(c) >= cutoff_ms)
            self.floor_ms = max(self.floor_ms, cutoff_ms)
        ts = self.ts
        off = len(ts) - len(self.vs)
        i = bisect_left(ts, cutoff_ms, off) - off
        if i:
            if not self._shares_ts():
                del ts[:i]
            del self.vs[:i]

    def oldest_bound(self) -> int:
        """At most the oldest timestamp the series holds, without decoding anything."""
        if self.chunks:
            return max(self.floor_ms, _chunk_first(self.chunks[0]))
        return self.ts[len(self.ts) - len(self.vs)]

    def holds_older_than(self, t_ms: int) -> bool:
        """Whether any sample held is before t_ms (the head is not empty).

        Decodes only when trimmed inside the oldest chunk and the trim's cutoff
        is before t_ms; the oldest sample left then becomes the floor, so the
        next call with a t_ms up to it decodes nothing.
        """
        if self.ts[len(self.ts) - len(self.vs)] < t_ms:
            return True
        if not self.chunks or self.floor_ms >= t_ms:
            return False
        first = _chunk_first(self.chunks[0])
        if first >= self.floor_ms:
            return first < t_ms
        ts = _decode_chunk(self.chunks[0])[0]
        self.floor_ms = ts[bisect_left(ts, self.floor_ms)]
        return self.floor_ms < t_ms

    def sample_count(self) -> int:
        """Samples held, not counting those trimmed from inside the oldest chunk."""
        n = len(self.vs)
        for chunk in self.chunks:
            n += _CHUNK_HEADER.unpack_from(chunk)[2]
        if self.chunks and _chunk_first(self.chunks[0]) < self.floor_ms:
            n -= bisect_left(_decode_chunk(self.chunks[0])[0], self.floor_ms)
        return n

    def compress(self, n: int) -> None:
        """Move the oldest n head samples into a new chunk."""
        ts, vs = self.ts, self.vs
        off = len(ts) - len(vs)
        self.chunks += (_encode_chunk(ts[off : off + n], vs[:n]),)
        if not self._shares_ts():
            del ts[:n]
        del vs[:n]

    def window(self, start_ms: int, end_ms: int) -> tuple[array[int], array[float]]:
        """Samples in [start_ms, end_ms] from the chunks that overlap it and the head."""
        start_ms = max(start_ms, self.floor_ms)
        out_ts, out_vs = array("q"), array("d")
        for chunk in self.chunks:
            first, last, _ = _CHUNK_HEADER.unpack_from(chunk)
            if last < start_ms or first > end_ms:
                continue
            ts, vs = _decode_chunk(chunk)
            lo, hi = bisect_left(ts, start_ms), bisect_right(ts, end_ms)
            out_ts += ts[lo:hi]
            out_vs += vs[lo:hi]
        ts = self.ts
        off = len(ts) - len(self.vs)
        lo, hi = bisect_left(ts, start_ms, off), bisect_right(ts, end_ms, off)
        out_ts += ts[lo:hi]
        out_vs += self.vs[lo - off : hi - off]
        return out_ts, out_vs

    def is_stale(self) -> bool:
        return bool(self.vs) and is_stale_nan(self.vs[-1])


def _chunk_first(chunk: bytes) -> int:
    return _CHUNK_HEADER.unpack_from(chunk)[0]


def _chunk_last(chunk: bytes) -> int:
    return _CHUNK_HEADER.unpack_from(chunk)[1]


_consume = deque(maxlen=0).extend
"""Run an iterator to its end at C speed, keeping nothing (itertools' `consume` recipe)."""


class _LastScrape:
    """A target's last scrape as append_scrape wrote it (or a writer's last batch as
    append_batch did): lets the next one go in bulk.

    It takes its series' `bulk` slot, and any other write to one of them (a
    single append, another target's scrape, a staleness marker, removal)
    spoils it. So while it is not spoiled, no series' newest sample is past
    `newest_ms` and no array is empty. `oldest_ms` is at most the oldest
    timestamp any of them holds (series shrink only at the front), so while
    it is inside retention no series needs a trim check.
    """

    __slots__ = (
        "keys",
        "newest_ms",
        "oldest_ms",
        "series",
        "shared",
        "spoiled",
        "timestamps",
        "values",
    )

    def __init__(self, keys: tuple[object, ...], series: list[_MemSeries]) -> None:
        self.keys = keys
        self.series = series
        self.shared: array[int] | None = None
        self.spoiled = False
        for s in series:
            s.spoil_bulk()
            s.bulk = self
        self.timestamps = [s.ts for s in series]
        self.values = [s.vs for s in series]
        self.newest_ms = max(map(itemgetter(-1), self.timestamps))
        self.oldest_ms = min(s.oldest_bound() for s in series)
        self._share()

    def _share(self) -> None:
        """One timestamps array for all the series, if their heads' times agree (the usual
        case: each was written at every one of the writer's times since it appeared): 8
        bytes a sample and an array a series less, and one append a scrape instead of one
        per series. A series that appeared later simply holds fewer of the times."""
        longest = max(self.timestamps, key=len)
        n = len(longest)
        if all(ts == longest[n - len(ts) :] for ts in self.timestamps):
            self.shared = longest
            self.timestamps = []  # (the series' own arrays go)
            for s in self.series:
                s.ts = longest

    def trim_shared(self) -> None:
        """Drop the shared times that no series' head reaches back to any more."""
        shared = self.shared
        if shared is not None:
            keep = max((len(s.vs) for s in self.series if s.ts is shared), default=0)
            if keep < len(shared):
                del shared[: len(shared) - keep]

    def release(self) -> None:
        """No longer the target's last scrape: give its series' `bulk` slots back."""
        self.spoiled = True
        for s in self.series:
            if s.bulk is self:
                s.detach()


@lru_cache(maxsize=1024)
def _compiled(pattern: str) -> re.Pattern[str]:
    """A matcher regex, fully anchored; `.` matches newlines, as in Prometheus 3."""
    try:
        return re.compile(f"(?:{pattern})", re.DOTALL)
    except re.error as e:
        raise ValueError(f"invalid regex {pattern!r} in label matcher: {e}") from None


def _matches(m: Matcher, value: str) -> bool:
    op = m.op
    if op is MatchOp.EQUAL:
        return value == m.value
    if op is MatchOp.NOT_EQUAL:
        return value != m.value
    hit = _compiled(m.value).fullmatch(value) is not None
    return hit if op is MatchOp.REGEX else not hit


class TSDB:
    """In-memory storage for Satellite; implements the `Storage` protocol the evaluator reads.

    `retention_ms` must cover the longest range any loaded rule uses (plus
    the lookback); raise it when rules load. Call `gc(now_ms)` now and then to
    drop samples past retention and series with nothing left in it.
    """

    def __init__(
        self,
        retention_ms: int = 3_600_000,
        *,
        chunk_samples: int = CHUNK_SAMPLES,
        head_samples: int = HEAD_SAMPLES,
    ) -> None:
        if chunk_samples < 1 or head_samples < 1:
            raise ValueError(
                f"chunks and the head need at least one sample, got {chunk_samples}"
                f" and {head_samples}"
            )
        self._retention_ms = 0
        self.retention_ms = retention_ms
        self._chunk_samples = chunk_samples
        self._compress_at = chunk_samples + head_samples
        self._by_labels: dict[Labels, _MemSeries] = {}
        # Postings: label name -> value -> the series carrying it, as lists (a list slot is
        # 8 bytes where a set entry costs 30-60, and most values have one series). A
        # removed series leaves long lists lazily: readers skip series whose owner is not
        # this TSDB, and `_compact_postings` sweeps them once there are many.
        self._index: dict[str, dict[str, list[_MemSeries]]] = {}
        self._dead_postings = 0
        # Per target, the series of its last scrape in scrape order (a list: the next
        # scrape of the same series compares equal at C speed, and only a changed scrape
        # pays for set arithmetic). Removed series may linger here; staleness skips them.
        self._targets: dict[str, list[_MemSeries]] = {}
        # Per target (its URL) or batch writer (a rule's key): its last write, if bulk-able.
        self._last_scrapes: dict[Hashable, _LastScrape] = {}
        # Selector -> (generation it was computed at, matching series sorted by labels).
        # A generation counts series created or removed: per metric name for selectors
        # that pin `__name__`, over all series for the others.
        self._selections: dict[
            tuple[Matcher, ...], tuple[int, tuple[list[Labels], list[_MemSeries]]]
        ] = {}
        self._generation = 0
        self._name_generation: dict[str, int] = {}

    @property
    def retention_ms(self) -> int:
        return self._retention_ms

    @retention_ms.setter
    def retention_ms(self, value: int) -> None:
        if value <= 0:
            raise ValueError(f"retention must be positive, got {value} ms")
        self._retention_ms = value

    def __len__(self) -> int:
        return len(self._by_labels)

    @property
    def sample_count(self) -> int:
        """Samples held; decodes chunks trimmed inside, so for tests and benches, not rounds."""
        return sum(s.sample_count() for s in self._by_labels.values())

    # -- writing ---------------------------------------------------------------

    def _series(self, labels: Labels) -> _MemSeries:
        series = self._by_labels.get(labels)
        if series is None:
            series = _MemSeries(labels, self)
            self._by_labels[labels] = series
            index = self._index
            for name, value in labels:
                index.setdefault(name, {}).setdefault(value, []).append(series)
            self._changed(labels)
        return series

    def _changed(self, labels: Labels) -> None:
        """A series with these labels came or went: selections that could hold it are stale."""
        self._generation += 1
        for name, value in labels:
            if name == "__name__":
                self._name_generation[value] = self._name_generation.get(value, 0) + 1
                break

    def append(self, labels: Labels, t_ms: int, value: float) -> None:
        """Append one sample; raises OutOfOrderSample if t_ms is not after the series' newest."""
        self._append(self._series(labels), t_ms, value)

    def _append(self, series: _MemSeries, t_ms: int, value: float) -> None:
        if series.vs and series.ts[-1] >= t_ms:
            raise OutOfOrderSample(series.labels, t_ms, series.ts[-1])
        series.spoil_bulk()
        ts = series.ts  # (its own now)
        ts.append(t_ms)
        series.vs.append(value)
        cutoff = t_ms - self._retention_ms
        trim_below = cutoff - self._retention_ms // _TRIM_SLACK_DIVISOR
        if ts[0] < trim_below or (series.chunks and series.holds_older_than(trim_below)):
            series.trim(cutoff)

    def append_scrape(
        self,
        target: str,
        samples: Sequence[tuple[CachedSeries | Labels, float, int | None]],
        t_ms: int,
    ) -> AppendStats:
        """Append one successful scrape of target and mark its vanished series stale.

        Rows come from `ScrapeCache.parse_into` (the fast way: the cache entry
        keeps this TSDB's series object in `ref`) or carry a plain label set.
        A sample without its own timestamp is stored at t_ms. As in Prometheus,
        series exposed with explicit timestamps are not tracked for staleness.
        Out-of-order samples are dropped and counted, not raised: one bad line
        must not lose the rest of the scrape. A scrape with the same keys in
        the same order as the target's last one, none timestamped and all
        newer than what their series hold (the usual case), is appended with
        a few whole-list operations instead of a loop per sample.
        """
        if samples:
            keys, values, stamps = zip(*samples, strict=True)
            last = self._last_scrapes.get(target)
            if (
                last is not None
                and not last.spoiled
                and last.newest_ms < t_ms
                and keys == last.keys
                and stamps.count(None) == len(stamps)
            ):
                self._append_again(last, values, t_ms)
                return AppendStats(len(values), 0, self._track(target, last.series, t_ms))
        current: list[_MemSeries] = []
        track = current.append
        cutoff = t_ms - self._retention_ms
        trim_below = cutoff - self._retention_ms // _TRIM_SLACK_DIVISOR
        lookup = self._series
        me = self
        out_of_order = 0
        for key, value, stamp in samples:
            try:
                series = key.ref  # type: ignore[union-attr]
            except AttributeError:
                series = lookup(key)  # type: ignore[arg-type]
            else:
                if series is None or series.owner is not me:
                    series = key.ref = lookup(key.labels)  # type: ignore[union-attr]
            if stamp is None:
                stamp = t_ms
                track(series)
            if series.vs and series.ts[-1] >= stamp:
                out_of_order += 1
                continue
            if series.bulk is not None:
                series.spoil_bulk()
            ts = series.ts  # (its own now)
            ts.append(stamp)
            series.vs.append(value)
            if ts[0] < trim_below or (series.chunks and series.holds_older_than(trim_below)):
                series.trim(cutoff)
        self._forget_last_scrape(target)
        if samples and len(current) == len(samples) and len(set(current)) == len(current):
            self._last_scrapes[target] = _LastScrape(keys, current)
        marked = self._track(target, current, t_ms)
        return AppendStats(len(samples) - out_of_order, out_of_order, marked)

    def append_batch(
        self,
        writer: Hashable,
        labels: Sequence[Labels],
        values: Sequence[float],
        t_ms: int,
    ) -> list[tuple[int, OutOfOrderSample]]:
        """Append `values[i]` to the series `labels[i]`, all at t_ms: one rule's output.

        As `append` sample by sample, except that a refused sample is returned as
        (its index, the error) rather than raised, so the rest still go in. A
        rule writes the same series in the same order every round, like a target's
        scrape: `writer` names that stream, and a batch with the same label sets as
        the writer's last one (all written) goes in with `append_scrape`'s
        whole-list appends instead of a series lookup per sample. Staleness is the
        caller's business here: nothing is marked stale.
        """
        keys = tuple(labels)
        last = self._last_scrapes.get(writer)
        if last is not None and not last.spoiled and last.newest_ms < t_ms and keys == last.keys:
            self._append_again(last, values, t_ms)
            return []
        self._forget_last_scrape(writer)
        refused: list[tuple[int, OutOfOrderSample]] = []
        current = list(map(self._series, keys))
        for i, (series, value) in enumerate(zip(current, values, strict=True)):
            try:
                self._append(series, t_ms, value)
            except OutOfOrderSample as e:
                refused.append((i, e))
        if current and not refused:  # (so no series twice: its second sample is refused)
            self._last_scrapes[writer] = _LastScrape(keys, current)
        return refused

    def _append_again(self, last: _LastScrape, values: Sequence[float], t_ms: int) -> None:
        """The same series as the writer's last batch, all in order: whole-list appends.

        The timestamp goes in as its 8 machine bytes: `frombytes` copies them,
        where `append` would convert the int again for every series (2x slower).
        """
        if last.shared is not None:
            last.shared.append(t_ms)
        else:
            stamp = array("q", (t_ms,)).tobytes()
            _consume(map(array.frombytes, last.timestamps, repeat(stamp)))
        _consume(map(array.append, last.values, values))
        last.newest_ms = t_ms
        cutoff = t_ms - self._retention_ms
        trim_below = cutoff - self._retention_ms // _TRIM_SLACK_DIVISOR
        if last.oldest_ms < trim_below:
            for series in last.series:
                if series.holds_older_than(trim_below):
                    series.trim(cutoff)
            last.oldest_ms = min(s.oldest_bound() for s in last.series)

    def _track(self, target: str, current: list[_MemSeries], t_ms: int) -> int:
        """Remember the series target exposed; mark those it exposed last time and not now."""
        previous = self._targets.get(target)
        self._targets[target] = current
        if previous and previous != current:  # list equality: identity first, at C speed
            return self._mark_stale(set(previous).difference(current), t_ms)
        return 0

    def _forget_last_scrape(self, target: Hashable) -> None:
        last = self._last_scrapes.pop(target, None)
        if last is not None:
            last.release()

    def mark_target_down(self, target: str, t_ms: int) -> int:
        """A failed scrape: every series the target last exposed becomes stale now."""
        self._forget_last_scrape(target)
        return self._mark_stale(set(self._targets.pop(target, ())), t_ms)

    def _mark_stale(self, vanished: Iterable[_MemSeries], t_ms: int) -> int:
        marked = 0
        for series in vanished:
            if series.owner is not self or (series.vs and series.ts[-1] >= t_ms):
                continue
            if series.is_stale():
                continue
            series.spoil_bulk()
            series.ts.append(t_ms)
            series.vs.append(STALE_NAN)
            marked += 1
        return marked

    def gc(self, now_ms: int) -> int:
        """Drop samples older than retention and series left with none; returns series removed.

        A series with nothing newer than the cutoff (a stale one that has aged
        out, or one nobody writes any more) is removed with its index entries,
        so memory follows the active series, not every series ever seen. A
        series whose head has grown to `head_samples + chunk_samples` has its
        oldest `chunk_samples` compressed into a chunk, up to COMPRESS_PER_GC
        series a call; the rest wait for the next.
        """
        cutoff = now_ms - self._retention_ms
        compress_at = self._compress_at
        budget = COMPRESS_PER_GC
        doomed = []
        for series in self._by_labels.values():
            ts, vs = series.ts, series.vs
            if not vs or ts[-1] < cutoff:
                doomed.append(series)
                continue
            if ts[len(ts) - len(vs)] < cutoff or (series.chunks and series.oldest_bound() < cutoff):
                series.trim(cutoff)
            if len(vs) >= compress_at and budget:
                series.compress(self._chunk_samples)
                budget -= 1
        for series in doomed:
            self._remove(series)
        for last in self._last_scrapes.values():
            last.trim_shared()
        if doomed:  # a writer that is gone (a rule reloaded away) left its spoiled last write
            for key in [k for k, last in self._last_scrapes.items() if last.spoiled]:
                self._forget_last_scrape(key)
        return len(doomed)

    def _remove(self, series: _MemSeries) -> None:
        series.owner = None
        series.spoil_bulk()
        del self._by_labels[series.labels]
        for name, value in series.labels:
            values = self._index[name]
            members = values[value]
            if len(members) <= _EAGER_POSTINGS:
                members.remove(series)
                if not members:
                    del values[value]
                    if not values:
                        del self._index[name]
            else:
                self._dead_postings += 1
        if self._dead_postings > max(_MIN_DEAD_POSTINGS, len(self._by_labels)):
            self._compact_postings()
        self._changed(series.labels)

    def _compact_postings(self) -> None:
        """Drop removed series from every postings list (amortised over many removals)."""
        for name, values in list(self._index.items()):
            for value, members in list(values.items()):
                live = [s for s in members if s.owner is self]
                if live:
                    values[value] = live
                else:
                    del values[value]
            if not values:
                del self._index[name]
        self._dead_postings = 0

    # -- reading ---------------------------------------------------------------

    def select(self, matchers: Sequence[Matcher], start_ms: int, end_ms: int) -> Iterator[Series]:
        """Every series matching all matchers, with its samples in [start_ms, end_ms], by labels.

        A missing label counts as the empty value, so `a=""` matches series
        without `a` and `a!="x"` matches them too, as in Prometheus. Series with
        no sample in the window are left out.
        """
        for labels, ts, vs in self.select_windows(matchers, start_ms, end_ms):
            yield Series(labels, ts, vs)

    def select_windows(
        self, matchers: Sequence[Matcher], start_ms: int, end_ms: int
    ) -> list[tuple[Labels, array[int], array[float]]]:
        """`select` as (labels, timestamps, values) tuples, for tests and small reads."""
        return list(zip(*self.select_columns(matchers, start_ms, end_ms), strict=True))

    def select_columns(
        self, matchers: Sequence[Matcher], start_ms: int, end_ms: int
    ) -> tuple[list[Labels], list[array[int]], list[array[float]]]:
        """`select` as three parallel lists: labels, timestamps, values (what the evaluator reads).

        The arrays are copies of the window, so appends during evaluation cannot
        change what a query already read. When every matching series has samples
        in the window (the usual case), the labels list is the same object each
        call until a series of the selection comes or goes, so the evaluator can
        remember what it derives from it per list, not per series.
        """
        labels_all, found = self._selection(matchers)
        times: list[array[int]] = []
        values: list[array[float]] = []
        put_t, put_v = times.append, values.append
        missing: list[int] = []
        shared_ts = shared_lo = shared_hi = shared_slice = None
        for i, series in enumerate(found):
            ts, vs = series.ts, series.vs
            n = len(ts)
            off = n - len(vs)
            if vs and ts[off] > start_ms and series.chunks:
                window = series.window(start_ms, end_ms)
                if window[0]:
                    put_t(window[0])
                    put_v(window[1])
                else:
                    missing.append(i)
                continue
            hi = n if vs and ts[-1] <= end_ms else bisect_right(ts, end_ms, off)
            lo = off if vs and ts[off] >= start_ms else bisect_left(ts, start_ms, off, hi)
            if lo < hi:
                # Series sharing their times (one target's) are next to each other in a
                # selection sorted by labels: one slice of their times serves them all.
                if ts is not shared_ts or lo != shared_lo or hi != shared_hi:
                    shared_ts, shared_lo, shared_hi, shared_slice = ts, lo, hi, ts[lo:hi]
                put_t(shared_slice)
                put_v(vs[lo - off : hi - off])
            else:
                missing.append(i)
        return _without(labels_all, missing), times, values

    def select_latest(
        self, matchers: Sequence[Matcher], start_ms: int, end_ms: int
    ) -> tuple[list[Labels], list[int], list[float]]:
        """Per matching series, its newest sample in [start_ms, end_ms], as columns.

        What an instant selector reads: (labels, timestamps, values) lists, one
        entry a series; staleness markers are returned like any sample. Series
        with no sample in the window are left out, as in `select`; when none is,
        the labels list is the selection's own (see `select_columns`).
        """
        labels_all, found = self._selection(matchers)
        times: list[int] = []
        values: list[float] = []
        put_t, put_v = times.append, values.append
        missing: list[int] = []
        for i, series in enumerate(found):
            ts, vs = series.ts, series.vs
            n = len(ts)
            off = n - len(vs)
            if vs and ts[-1] <= end_ms:
                j = n - 1
            else:
                j = bisect_right(ts, end_ms, off) - 1
                if j < off:
                    old_ts, old_vs = series.window(start_ms, end_ms) if series.chunks else ((), ())
                    if old_ts:  # a window ending before the head: its newest is in chunks
                        put_t(old_ts[-1])
                        put_v(old_vs[-1])
                    else:
                        missing.append(i)
                    continue
            t = ts[j]
            if t >= start_ms:
                put_t(t)
                put_v(vs[j - off])
            else:
                missing.append(i)
        return _without(labels_all, missing), times, values

    def _selection(self, matchers: Sequence[Matcher]) -> tuple[list[Labels], list[_MemSeries]]:
        """The series matching all matchers sorted by labels, and their labels, remembered."""
        key = tuple(matchers)
        generation = self._generation
        for m in key:
            if m.name == "__name__" and m.op is MatchOp.EQUAL and m.value:
                generation = self._name_generation.get(m.value, 0)
                break
        cached = self._selections.get(key)
        if cached is not None and cached[0] == generation:
            return cached[1]
        found = sorted(self._matching(key), key=_labels_of)
        if len(self._selections) >= _MAX_SELECTIONS:
            self._selections.clear()
        selection = ([s.labels for s in found], found)
        self._selections[key] = (generation, selection)
        return selection

    def label_names(self) -> list[str]:
        """Names any stored series carries, sorted."""
        return sorted(
            name
            for name, values in self._index.items()
            if any(s.owner is self for members in values.values() for s in members)
        )

    def label_values(self, name: str) -> list[str]:
        """Values label `name` has on any stored series, sorted."""
        return sorted(
            v
            for v, members in self._index.get(name, {}).items()
            if any(s.owner is self for s in members)
        )

    def _matching(self, matchers: Sequence[Matcher]) -> set[_MemSeries]:
        """Series matching all matchers, found through the index (no scan of all series)."""
        narrowing: list[list[_MemSeries] | set[_MemSeries]] = []
        excluding: list[list[_MemSeries]] = []
        for m in matchers:
            values = self._index.get(m.name, {})
            if m.op is MatchOp.EQUAL and m.value != "":
                narrowing.append(values.get(m.value, []))
            elif m.op is MatchOp.NOT_EQUAL and m.value != "":
                excluding.append(values.get(m.value, []))
            elif _matches(m, ""):
                excluding.extend(s for v, s in values.items() if not _matches(m, v))
            else:
                narrowing.append(_union(s for v, s in values.items() if _matches(m, v)))
        if narrowing:
            narrowing.sort(key=len)
            result = set(narrowing[0])
            for members in narrowing[1:]:
                if not result:
                    break
                result.intersection_update(members)
        else:
            result = set(self._by_labels.values())
        for members in excluding:
            if not result:
                break
            result.difference_update(members)
        if self._dead_postings:
            result = {s for s in result if s.owner is self}
        return result


def _without(labels: list[Labels], missing: list[int]) -> list[Labels]:
    """The selection's own labels list when no series is missing (the usual case, and the
    list the evaluator recognises), else a new one without the missing ones."""
    if not missing:
        return labels
    gone = set(missing)
    return [lset for i, lset in enumerate(labels) if i not in gone]


def _union(lists: Iterable[list[_MemSeries]]) -> set[_MemSeries]:
    out: set[_MemSeries] = set()
    for members in lists:
        out.update(members)
    return out


def _labels_of(series: _MemSeries) -> Labels:
    return series.labels
