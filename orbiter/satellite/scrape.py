"""Scrape every target's /metrics into the TSDB, as Prometheus's scrape loop does.

Each target gets its own loop on the shared asyncio loop, started and
stopped as targets come and go. A successful scrape appends every sample
with the target's labels added (job, instance, agent) and marks series that
vanished stale; a failed one marks all the target's series stale. Either way
`up`, `scrape_duration_seconds` and `scrape_samples_scraped` are recorded.

Every sample recorded is also offered to the scraper's `sinks` (remote write,
the archive): each gets the scrape's samples with their final labels and time.
`offer` must only queue (it runs on the scrape's path); a sink ships on its own.
A series a sink had and no longer gets (it vanished, or its target is down) is
offered once more with Prometheus's staleness marker, so a remote store sees it end.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import aiohttp

from orbiter.httpconfig import TLSConfig, ssl_context
from orbiter.satellite.exposition import CachedSeries, ExpositionError, ScrapeCache
from orbiter.satellite.series import Labels, labels_of
from orbiter.satellite.tsdb import STALE_NAN, TSDB

log = logging.getLogger("orbiter.satellite")


class SampleSink(Protocol):
    """Where scraped samples go besides the TSDB (remote write, the archive).

    `samples` are (labels with `__name__`, value) at `t_ms`; a scrape that failed
    offers only its `up` series. `offer` is called on the scrape path, so it must
    only queue: never block, never raise (a full queue counts a drop instead).
    """

    def offer(self, samples: Sequence[tuple[Labels, float]], t_ms: int) -> None: ...


@dataclass(frozen=True)
class Target:
    """Something to scrape: its URL and the labels every sample of it gets.

    A static scrape job may give its own interval and timeout (0: the scraper's),
    headers (auth) and TLS settings.
    """

    url: str
    labels: Labels
    interval: float = 0.0
    timeout: float = 0.0
    headers: tuple[tuple[str, str], ...] = ()
    tls: TLSConfig | None = None

    @property
    def instance(self) -> str:
        return dict(self.labels).get("instance", self.url)


class _WithTargetLabels:
    """A scraped series with the target's labels merged in; the TSDB keeps its ref here."""

    __slots__ = ("labels", "ref")

    def __init__(self, labels: Labels) -> None:
        self.labels = labels
        self.ref: object | None = None


@dataclass
class _TargetState:
    target: Target
    cache: ScrapeCache = field(default_factory=ScrapeCache)
    merged: dict[CachedSeries, _WithTargetLabels] = field(default_factory=dict)
    task: asyncio.Task[None] | None = None
    last_error: str = ""
    last_scrape: float = 0.0
    last_duration: float = 0.0
    up: bool = False
    samples: int = 0
    offered: frozenset[Labels] = frozenset()
    """The label sets sinks got last time, to send staleness markers for those that go."""


def stale_markers(before: frozenset[Labels], now: Sequence[Labels]) -> list[tuple[Labels, float]]:
    """Series a sink had last scrape and not this one get Prometheus's staleness marker."""
    gone = before.difference(now)
    return [(labels, STALE_NAN) for labels in sorted(gone)]


def merge_labels(series: Labels, target: Labels) -> Labels:
    """Target labels win over the exposed ones, as with Prometheus's honor_labels: false.

    An exposed label a target label overrides is kept as `exported_<name>` (with more
    `exported_` prefixes while that name is taken, shortest names renamed first), as
    Prometheus does, so both store the very same series for one exposition.
    """
    names = {k for k, _ in target}
    kept = [kv for kv in series if kv[0] not in names]
    conflicts = sorted((kv for kv in series if kv[0] in names), key=lambda kv: len(kv[0]))
    if conflicts:
        exposed = {k for k, _ in series}
        taken: set[str] = set()
        for name, value in conflicts:
            new = "exported_" + name
            while new in exposed or new in names or new in taken:
                new = "exported_" + new
            taken.add(new)
            kept.append((new, value))
    return tuple(sorted([*kept, *target]))


def with_target_labels(
    rows: Iterable[tuple[CachedSeries, float, int | None]],
    merged: dict[CachedSeries, _WithTargetLabels],
    target: Labels,
) -> list[tuple[_WithTargetLabels, float, int | None]]:
    """A scrape's rows with the target's labels merged into each series, for append_scrape.

    `merged` remembers each series' merged labels (and the TSDB's ref) between scrapes.
    """
    out = []
    append = out.append
    for series, value, stamp in rows:
        ref = merged.get(series)
        if ref is None:
            ref = merged[series] = _WithTargetLabels(merge_labels(series.labels, target))
        append((ref, value, stamp))
    return out


_ssl_context = functools.lru_cache(maxsize=64)(ssl_context)
"""A job's TLS context, built once (it reads the CA and key files)."""


class Scraper:
    def __init__(
        self,
        tsdb: TSDB,
        interval: float,
        timeout: float,
        on_scrape: Callable[[], Awaitable[None]] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._clock = clock
        self.tsdb = tsdb
        self.interval = interval
        self.timeout = timeout
        self.targets: dict[str, _TargetState] = {}
        self._session: aiohttp.ClientSession | None = None
        self._on_scrape = on_scrape
        self.sinks: list[SampleSink] = []

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=self.timeout),
            headers={"Accept": "text/plain;version=0.0.4"},
        )

    async def stop(self) -> None:
        for state in self.targets.values():
            if state.task is not None:
                state.task.cancel()
        for state in self.targets.values():
            if state.task is not None:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await state.task
        self.targets.clear()
        if self._session is not None:
            await self._session.close()

    def sync(self, targets: Sequence[Target]) -> None:
        """Follow the cluster: start loops for new targets, stop those that left."""
        wanted = {t.url: t for t in targets}
        for url in list(self.targets):
            if url not in wanted or wanted[url] != self.targets[url].target:
                state = self.targets.pop(url)
                if state.task is not None:
                    state.task.cancel()
                self.tsdb.mark_target_down(url, int(time.time() * 1000))
        for url, target in wanted.items():
            state = self.targets.get(url)
            if state is not None and state.task is not None and state.task.done():
                del self.targets[url]  # its loop ended unexpectedly: start it again
            if url not in self.targets:
                state = _TargetState(target)
                self.targets[url] = state
                state.task = asyncio.create_task(self._loop(state), name=f"scrape {url}")

    async def _loop(self, state: _TargetState) -> None:
        interval = state.target.interval or self.interval
        # Spread targets over the interval so scrapes do not all land at once.
        offset = (hash(state.target.url) % 1000) / 1000 * interval
        await asyncio.sleep(offset)
        while True:
            started = time.monotonic()
            try:
                await self.scrape(state)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("scrape loop of %s", state.target.url)
            await asyncio.sleep(max(0.0, interval - (time.monotonic() - started)))

    async def scrape(self, state: _TargetState) -> None:
        """One scrape of one target, recorded in the TSDB."""
        assert self._session is not None
        target = state.target
        t_ms = int(self._clock() * 1000)
        started = time.perf_counter()
        text = ""
        extra: dict[str, object] = {}
        if target.timeout:
            extra["timeout"] = aiohttp.ClientTimeout(total=target.timeout)
        if target.headers:
            extra["headers"] = dict(target.headers)
        if target.tls is not None:
            ctx = _ssl_context(target.tls)
            if ctx is not None:
                extra["ssl"] = ctx
        try:
            async with self._session.get(target.url, **extra) as resp:  # type: ignore[arg-type]
                if resp.status != 200:
                    raise ConnectionError(f"HTTP {resp.status}")
                text = await resp.text()
            rows = state.cache.parse_into(text)
        except asyncio.CancelledError:
            raise
        except Exception as e:  # any failure is a failed scrape: up=0, never a dead loop
            if not isinstance(
                e, aiohttp.ClientError | TimeoutError | ConnectionError | ExpositionError
            ):
                log.warning("scrape of %s failed: %r", target.url, e)
            out = []
            state.up = False
            state.last_error = str(e) or type(e).__name__
            self.tsdb.mark_target_down(target.url, t_ms)
            samples = 0
        else:
            merged = state.merged
            out = with_target_labels(rows, merged, target.labels)
            if len(merged) > 2 * len(rows) + 100:  # series churned: keep only the live ones
                state.merged = {series: merged[series] for series, _, _ in rows}
            self.tsdb.append_scrape(target.url, out, t_ms)
            state.up = True
            state.last_error = ""
            samples = len(rows)
        duration = time.perf_counter() - started
        state.last_scrape = self._clock()
        state.last_duration = duration
        state.samples = samples
        base = dict(target.labels)
        own = [
            (labels_of({**base, "__name__": name}), value)
            for name, value in (
                ("up", 1.0 if state.up else 0.0),
                ("scrape_duration_seconds", duration),
                ("scrape_samples_scraped", float(samples)),
            )
        ]
        for labels, value in own:
            with contextlib.suppress(ValueError):
                self.tsdb.append(labels, t_ms, value)
        if self.sinks:
            offered = [(ref.labels, value) for ref, value, _ in out] if state.up else []
            offered.extend(own)
            names = [labels for labels, _ in offered]
            offered.extend(stale_markers(state.offered, names))
            state.offered = frozenset(names)
            for sink in self.sinks:
                try:
                    sink.offer(offered, t_ms)
                except Exception:  # a sink's bug must not stop the scrape loop
                    log.exception("sample sink %r refused a scrape of %s", sink, target.url)
        if self._on_scrape is not None:
            await self._on_scrape()

    def status(self) -> list[dict[str, object]]:
        return [
            {
                "url": s.target.url,
                "labels": dict(s.target.labels),
                "up": s.up if s.last_scrape else None,
                "last_scrape": s.last_scrape or None,
                "last_duration_seconds": s.last_duration,
                "samples": s.samples,
                "last_error": s.last_error,
            }
            for s in self.targets.values()
        ]
