"""The shell every archive sink shares: memory buffer → durable spool → far end.

`put` runs on the scrape path (or wherever events happen): it only appends to
an in-memory list and never blocks or raises; past `max_buffer` items the
new ones are dropped and counted (`buffer_full`). A writer task hands the
buffer to a thread every `flush_interval` (or sooner once `batch_size` items
wait) that encodes it into batches and appends them to the spool with one
fsync: from then on an item counts as accepted, and survives kill -9. A
sender task sends the spool's head batch and acknowledges it only once the
far end answered 2xx (or refused the data itself, counted as dropped);
connection errors, timeouts, 5xx and 429 are retried with exponential backoff
and jitter, forever, while the spool's bound and the backlog metrics tell the
operator. Nothing the far end does (garbage, hanging) escapes the sender loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from prometheus_client import CollectorRegistry, Counter, Gauge

from orbiter.alerts.notify import backoff_delay
from orbiter.metrics_registry import PerRegistry
from orbiter.satellite.archive.spool import Batch, BatchSpool

log = logging.getLogger("orbiter.archive")

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Delivery:
    """What the far end made of one batch: retry it, or `delivered` + `dropped` items."""

    retry: bool
    delivered: int = 0
    dropped: int = 0
    detail: str = ""


class Transport(Protocol):
    """One far end (InfluxDB, Elasticsearch): send a spooled batch, say what happened."""

    async def start(self) -> None: ...

    async def send(self, batch: Batch) -> Delivery: ...

    async def close(self) -> None: ...


Encoder = Callable[[list[Any], int], list[tuple[bytes, int]]]
"""(buffered items, seq the first batch will get) -> [(payload, items in it)]; runs in a thread."""


class ArchiveMetrics(PerRegistry):
    """The archive's metrics, once per registry, labelled by sink (influxdb, elasticsearch).

    Use `ArchiveMetrics.of(registry)`: an Archive rebuilt on a config reload then
    reuses the series of the one before (a registry refuses a second copy).
    """



    def __init__(self, registry: CollectorRegistry) -> None:
        self.backlog_bytes = Gauge(
            "orbiter_archive_backlog_bytes",
            "Bytes spooled on disk and not yet delivered to the sink.",
            ["sink"],
            registry=registry,
        )
        self.backlog_age = Gauge(
            "orbiter_archive_backlog_age_seconds",
            "Age of the oldest spooled entry not yet delivered to the sink (0 when none).",
            ["sink"],
            registry=registry,
        )
        self.sent = Counter(
            "orbiter_archive_sent_total",
            "Samples or events the sink accepted.",
            ["sink", "kind"],
            registry=registry,
        )
        self.dropped = Counter(
            "orbiter_archive_dropped_total",
            "Samples or events given up on, by reason (buffer_full, spool_full, spool_error, "
            "not_finite, rejected).",
            ["sink", "reason"],
            registry=registry,
        )
        self.failures = Counter(
            "orbiter_archive_failures_total",
            "Attempts to send a batch that failed and will be retried.",
            ["sink"],
            registry=registry,
        )


class Shipper(Generic[T]):
    """Buffer → spool → transport for one sink; `put` is the only call on the caller's path."""

    def __init__(
        self,
        sink: str,
        kind: str,
        spool: BatchSpool,
        transport: Transport,
        encode: Encoder,
        metrics: ArchiveMetrics,
        batch_size: int,
        flush_interval: float,
        max_buffer: int,
        send_timeout: float,
        min_backoff: float = 0.2,
        max_backoff: float = 30.0,
        rng: random.Random | None = None,
    ) -> None:
        self.sink = sink
        self.kind = kind
        self.spool = spool
        self.transport = transport
        self._encode = encode
        self.metrics = metrics
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self.max_buffer = max_buffer
        self.send_timeout = send_timeout
        self.min_backoff = min_backoff
        self.max_backoff = max_backoff
        self._rng = rng or random.Random()
        self._buffer: list[T] = []
        self._buffered = 0  # items in _buffer (an entry may hold many, e.g. one scrape)
        self._full = asyncio.Event()  # the buffer holds a batch: flush now
        self._spooled = asyncio.Event()  # new batches in the spool: send them
        self._stopping = asyncio.Event()
        # One flush at a time: batches must reach the spool in order, and the encoder's
        # ids depend on the spool's next seq.
        self._flushing = asyncio.Lock()
        self._tasks: list[asyncio.Task[None]] = []
        self.accepted = 0  # items written to the spool since start (acknowledged)
        self._dropped = metrics.dropped
        metrics.backlog_bytes.labels(sink).set_function(lambda: self.spool.pending_bytes)
        metrics.backlog_age.labels(sink).set_function(self._age)
        # Create every series at 0, so a rate() over them is defined from the start.
        metrics.sent.labels(sink, kind)
        metrics.failures.labels(sink)

    def _age(self) -> float:
        oldest = self.spool.oldest()
        return 0.0 if oldest is None else max(0.0, time.time() - oldest)

    def drop(self, reason: str, n: int) -> None:
        if n:
            self._dropped.labels(self.sink, reason).inc(n)

    # ------------------------------------------------------------------ caller's path

    def put(self, item: T, n: int) -> None:
        """Queue `item` (holding `n` samples or events); never blocks, never raises."""
        if self._buffered + n > self.max_buffer or self._stopping.is_set():
            self.drop("buffer_full", n)
            return
        self._buffer.append(item)
        self._buffered += n
        if self._buffered >= self.batch_size:
            self._full.set()

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        await self.transport.start()
        self._tasks = [
            asyncio.create_task(self._write_loop(), name=f"archive-{self.sink}-write"),
            asyncio.create_task(self._send_loop(), name=f"archive-{self.sink}-send"),
        ]
        if len(self.spool):
            self._spooled.set()

    async def stop(self) -> None:
        """Spool what is buffered, stop sending, close; undelivered batches wait on disk."""
        self._stopping.set()
        self._full.set()
        writer, sender = self._tasks or (None, None)
        if writer is not None:
            with contextlib.suppress(Exception):
                await writer
        if sender is not None:
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await sender
        self._tasks = []
        with contextlib.suppress(Exception):
            await self.transport.close()
        await asyncio.to_thread(self.spool.close)

    # ------------------------------------------------------------------ writer

    async def _write_loop(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._full.wait(), self.flush_interval)
            self._full.clear()
            await self.flush()
            if self._stopping.is_set():
                return

    async def flush(self) -> None:
        """Encode and spool everything buffered so far (one fsync)."""
        async with self._flushing:
            if not self._buffer:
                return
            items, n = self._buffer, self._buffered
            self._buffer, self._buffered = [], 0
            try:
                # A thread: encoding thousands of samples and fsync would stall the loop.
                written = await asyncio.to_thread(self._persist, items)
            except Exception:
                log.exception(
                    "archive %s: could not write to the spool %s", self.sink, self.spool.dir
                )
                self.drop("spool_error", n)
                return
            if written:
                self._spooled.set()

    def _persist(self, items: list[T]) -> int:
        batches = self._encode(items, self.spool.next_seq)
        written = self.spool.append(batches, time.time())
        kept = sum(count for _, count in batches[:written])
        self.accepted += kept
        self.drop("spool_full", sum(count for _, count in batches[written:]))
        if written < len(batches):
            log.warning(
                "archive %s: spool %s is full (%d bytes); dropping %d batches",
                self.sink,
                self.spool.dir,
                self.spool.max_bytes,
                len(batches) - written,
            )
        return written

    # ------------------------------------------------------------------ sender

    async def _send_loop(self) -> None:
        """Send batches until cancelled; nothing a sink or the disk does ends this loop."""
        failures = 0
        while True:
            try:
                failures = await self._send_head(failures)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("archive %s: the send loop hit an error; going on", self.sink)
                await asyncio.sleep(self.max_backoff)

    async def _send_head(self, failures: int) -> int:
        """Try the head batch once; the number of failures in a row after it."""
        try:
            batch = await asyncio.to_thread(self.spool.head)
        except OSError as e:
            # The segment cannot be read (removed, damaged disk): skip it, say so, go on.
            lost = await asyncio.to_thread(self.spool.skip_head)
            log.error("archive %s: lost a spooled batch of %d: %s", self.sink, lost, e)
            self.drop("spool_error", lost)
            return failures
        if batch is None:
            self._spooled.clear()
            if len(self.spool) == 0:
                await self._spooled.wait()
            return failures
        delivery = await self._attempt(batch)
        if delivery.retry:
            failures += 1
            self.metrics.failures.labels(self.sink).inc()
            delay = backoff_delay(
                failures - 1, self.min_backoff, self.max_backoff, self._rng.random()
            )
            log.warning(
                "archive %s: sending %d %s failed (%s); retrying in %.1fs",
                self.sink,
                batch.count,
                self.kind,
                delivery.detail,
                delay,
            )
            await asyncio.sleep(delay)
            return failures
        if delivery.dropped:
            log.error(
                "archive %s: the sink refused %d of %d %s: %s",
                self.sink,
                delivery.dropped,
                batch.count,
                self.kind,
                delivery.detail,
            )
            self.drop("rejected", delivery.dropped)
        self.metrics.sent.labels(self.sink, self.kind).inc(delivery.delivered)
        await asyncio.to_thread(self.spool.ack, batch.seq)
        return 0

    async def _attempt(self, batch: Batch) -> Delivery:
        try:
            return await asyncio.wait_for(self.transport.send(batch), self.send_timeout)
        except asyncio.CancelledError:
            raise
        except TimeoutError:
            return Delivery(retry=True, detail=f"no answer within {self.send_timeout:g}s")
        except Exception as e:  # whatever the far end did, the loop goes on
            return Delivery(retry=True, detail=f"{type(e).__name__}: {e}")

    def pending(self) -> Sequence[int]:
        """(buffered items, spooled batches) — for tests and the bench."""
        return self._buffered, len(self.spool)
