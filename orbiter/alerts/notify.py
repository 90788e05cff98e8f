"""Sending alerts out: receivers and the notifier that fans out to them.

`Notifier.notify` hands each batch of firing and resolved alerts to every
receiver. A `Receiver` is anything with a `name` and an async `send`; that
protocol is the seam where routing, silences, a real Alertmanager, email
and Slack plug in later. Two receivers exist today:

- `LogReceiver` writes one line per alert to the `orbiter.alerts` logger.
- `WebhookReceiver` POSTs Alertmanager's webhook payload (version 4, see
  `payload.py`). `send` returns once the batch is in the receiver's on-disk
  spool (`spool.py`); a background task delivers batches in order, retrying
  with exponential backoff and jitter on connection errors, timeouts, 5xx,
  408 and 429, and dropping (with an error in the log) on any other answer
  that is not 2xx, since sending a request the far end refuses again cannot
  help and would block every alert behind it. A batch leaves the spool only
  once the far end answered 2xx (or it was dropped), so delivery is at least
  once: a crash after the POST and before the acknowledgement sends that
  batch again after the restart.

Metrics, per receiver (in the registry given, or a new one):
`orbiter_alerts_notifications_sent_total` (alerts the far end accepted),
`orbiter_alerts_notifications_failed_total` (delivery attempts that failed,
one per POST whatever the batch size; each was retried or dropped),
`orbiter_alerts_notifications_dropped_total` (alerts given up on after a
client error) and `orbiter_alerts_queue_length` (alerts in the spool).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
from collections.abc import Iterable, Mapping, Sequence
from enum import Enum
from pathlib import Path
from typing import Any, Protocol, runtime_checkable
from urllib.parse import quote

import aiohttp
from prometheus_client import CollectorRegistry, Counter, Gauge

from orbiter import __version__
from orbiter.alerts.payload import Notification, format_labels, format_time, webhook_payload
from orbiter.alerts.spool import COMPACT_BYTES, Spool
from orbiter.errors import Code, OrbiterError
from orbiter.metrics_registry import PerRegistry

log = logging.getLogger("orbiter.alerts")

USER_AGENT = f"Orbiter/{__version__}"


class NotifyFailed(OrbiterError):
    """Some receivers could not take a batch (their spool could not be written, say).

    The others have it; the caller may send the batch again (receivers may
    then see it twice, never zero times).
    """

    code = Code.UNAVAILABLE

    def __init__(self, failures: Mapping[str, BaseException]) -> None:
        self.failures = dict(failures)
        detail = "; ".join(f"{name}: {err!r}" for name, err in self.failures.items())
        super().__init__(f"alerts not accepted by {len(self.failures)} receiver(s): {detail}")


# ---------------------------------------------------------------------- protocol


@runtime_checkable
class Receiver(Protocol):
    """Where notifications go. `send` returns once the receiver has taken the batch
    (for a durable receiver: once it is on disk), not once it reached its destination."""

    name: str

    async def send(self, batch: Sequence[Notification]) -> None: ...


@runtime_checkable
class BackgroundReceiver(Receiver, Protocol):
    """A receiver with a delivery task of its own, started and stopped by the Notifier."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


# ---------------------------------------------------------------------- pure decisions


class Outcome(Enum):
    DELIVERED = "delivered"
    RETRY = "retry"
    DROP = "drop"


def classify(status: int) -> Outcome:
    """What an HTTP answer means for a batch: 2xx done; 5xx, 408, 429 again later; else drop."""
    if 200 <= status < 300:
        return Outcome.DELIVERED
    if status >= 500 or status in (408, 429):
        return Outcome.RETRY
    return Outcome.DROP


def backoff_delay(attempt: int, min_backoff: float, max_backoff: float, jitter: float) -> float:
    """Seconds to wait before retry `attempt` (0 for the first retry).

    Doubles from `min_backoff` up to `max_backoff`; `jitter` in [0, 1) takes
    up to half off, so receivers that failed together do not retry together.
    """
    base = min(max_backoff, min_backoff * 2.0 ** min(attempt, 62))
    return base * (1.0 - 0.5 * jitter)


def retry_after(header: str | None, max_backoff: float) -> float | None:
    """A `Retry-After` given in seconds, capped at `max_backoff`; None if absent or a date."""
    if not header:
        return None
    try:
        seconds = float(header)
    except ValueError:
        return None
    return min(max(seconds, 0.0), max_backoff)


def update_active(
    active: Mapping[str, Notification], batch: Iterable[Notification]
) -> dict[str, Notification]:
    """Active alerts by fingerprint after `batch`: firing ones in (latest wins), resolved out."""
    out = dict(active)
    for n in batch:
        if n.status == "firing":
            out[n.fingerprint] = n
        else:
            out.pop(n.fingerprint, None)
    return out


# ---------------------------------------------------------------------- metrics


class AlertMetrics(PerRegistry):
    """The notification metrics of one registry, shared by every receiver that uses it."""


    def __init__(self, registry: CollectorRegistry) -> None:
        self.sent = Counter(
            "orbiter_alerts_notifications_sent",
            "Alerts a receiver delivered (the far end answered 2xx)",
            ["receiver"],
            registry=registry,
        )
        self.failed = Counter(
            "orbiter_alerts_notifications_failed",
            "Delivery attempts that failed, one per request; each is retried or dropped",
            ["receiver"],
            registry=registry,
        )
        self.dropped = Counter(
            "orbiter_alerts_notifications_dropped",
            "Alerts given up on because the far end refused them with a client error",
            ["receiver"],
            registry=registry,
        )
        self.queue_length = Gauge(
            "orbiter_alerts_queue_length",
            "Alerts waiting in a receiver's spool",
            ["receiver"],
            registry=registry,
        )



# ---------------------------------------------------------------------- receivers


class LogReceiver:
    """One log line per alert: the record of last resort, and what `journalctl` shows."""

    def __init__(self, name: str = "log", logger: logging.Logger = log) -> None:
        self.name = name
        self.logger = logger

    async def send(self, batch: Sequence[Notification]) -> None:
        for n in batch:
            level = logging.WARNING if n.status == "firing" else logging.INFO
            ends = f" ends_at={format_time(n.ends_at)}" if n.ends_at is not None else ""
            self.logger.log(
                level,
                "alert %s %s %s fingerprint=%s starts_at=%s%s annotations=%s",
                n.status,
                n.alertname,
                format_labels(n.labels),
                n.fingerprint,
                format_time(n.starts_at),
                ends,
                format_labels(n.annotations),
            )


def _queued(spool: Spool) -> int:
    return sum(len(e.data) for e in spool.entries())


class WebhookReceiver:
    """Alertmanager-format webhook behind a durable queue (see the module docstring).

    `spool_dir` belongs to this receiver (one file per receiver name in it);
    it is opened, and replayed, when the object is made. Call `start()` in
    the event loop to begin delivery and `stop()` to end it; what was not
    delivered stays in the spool for the next start.
    """

    def __init__(
        self,
        name: str,
        url: str,
        spool_dir: Path,
        timeout: float = 10.0,
        max_backoff: float = 60.0,
        *,
        min_backoff: float = 0.5,
        registry: CollectorRegistry | None = None,
        external_url: str = "",
        max_alerts: int = 0,
        compact_bytes: int = COMPACT_BYTES,
        rng: random.Random | None = None,
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise OrbiterError(f"webhook {name}: url {url!r} must start with http:// or https://")
        if not 0 < min_backoff <= max_backoff:
            raise OrbiterError(
                f"webhook {name}: need 0 < min_backoff ({min_backoff}) <= max_backoff "
                f"({max_backoff})"
            )
        self.name = name
        self.url = url
        self.timeout = timeout
        self.min_backoff = min_backoff
        self.max_backoff = max_backoff
        self.external_url = external_url
        self.max_alerts = max_alerts
        self._rng = rng or random.Random()
        self.spool = Spool(Path(spool_dir) / f"{quote(name, safe='')}.jsonl", compact_bytes)
        self.registry = registry or CollectorRegistry()
        self.metrics = AlertMetrics.of(self.registry)
        spool = self.spool
        self.metrics.queue_length.labels(receiver=name).set_function(lambda: _queued(spool))
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._session: aiohttp.ClientSession | None = None

    def queue_length(self) -> int:
        """Alerts in the spool, not yet delivered."""
        return _queued(self.spool)

    async def enqueue(self, notifications: Sequence[Notification]) -> None:
        """Put a batch in the spool; returns once it is on disk (fsynced)."""
        if not notifications:
            return
        records = [n.to_record() for n in notifications]
        await asyncio.to_thread(self.spool.append, records)  # fsync blocks
        self._wakeup.set()

    send = enqueue

    async def start(self) -> None:
        if self._task is not None:
            return
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=self.timeout),
            headers={"User-Agent": USER_AGENT},
        )
        self._task = asyncio.create_task(self._run(), name=f"webhook {self.name}")

    async def stop(self) -> None:
        """Stop delivering and release the spool; a batch in flight stays queued."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._session is not None:
            await self._session.close()
            self._session = None
        self.spool.close()

    async def _run(self) -> None:
        failures = 0
        while True:
            entry = self.spool.head()
            if entry is None:
                self._wakeup.clear()
                if self.spool.head() is None:
                    await self._wakeup.wait()
                continue
            try:
                await self._handle(entry.seq, entry.data)
                await asyncio.to_thread(self.spool.ack, entry.seq)  # fsync blocks
                failures = 0
            except Exception:  # the disk, say; the batch stays queued and is tried again
                log.exception("webhook %s: delivery loop failed on batch %d", self.name, entry.seq)
                await asyncio.sleep(
                    backoff_delay(failures, self.min_backoff, self.max_backoff, self._rng.random())
                )
                failures += 1

    async def _handle(self, seq: int, records: Any) -> None:
        try:
            batch = [Notification.from_record(r) for r in records]
            if not batch:
                raise ValueError("empty batch")
        except Exception as e:  # an entry no longer readable must not block the queue
            log.error("webhook %s: dropping unreadable spool entry %d: %s", self.name, seq, e)
            self.metrics.dropped.labels(receiver=self.name).inc()
            return
        await self._deliver(seq, batch)

    async def _deliver(self, seq: int, batch: list[Notification]) -> None:
        body = json.dumps(
            webhook_payload(
                self.name, batch, external_url=self.external_url, max_alerts=self.max_alerts
            )
        ).encode()
        attempt = 0
        while True:
            outcome, detail, wait = await self._post(body)
            if outcome is Outcome.DELIVERED:
                self.metrics.sent.labels(receiver=self.name).inc(len(batch))
                if attempt:
                    log.info(
                        "webhook %s: delivered batch %d after %d failed attempt(s)",
                        self.name,
                        seq,
                        attempt,
                    )
                return
            self.metrics.failed.labels(receiver=self.name).inc()
            if outcome is Outcome.DROP:
                self.metrics.dropped.labels(receiver=self.name).inc(len(batch))
                log.error(
                    "webhook %s: %s refused %d alert(s) (%s) with %s; dropped them, since "
                    "sending again cannot help: check the receiver's URL and what it accepts",
                    self.name,
                    self.url,
                    len(batch),
                    ", ".join(n.alertname for n in batch),
                    detail,
                )
                return
            delay = backoff_delay(attempt, self.min_backoff, self.max_backoff, self._rng.random())
            if wait is not None:
                delay = max(delay, wait)
            log.warning(
                "webhook %s: POST %s failed (%s); attempt %d, retrying in %.2fs",
                self.name,
                self.url,
                detail,
                attempt + 1,
                delay,
            )
            attempt += 1
            await asyncio.sleep(delay)

    async def _post(self, body: bytes) -> tuple[Outcome, str, float | None]:
        assert self._session is not None
        try:
            async with self._session.post(
                self.url, data=body, headers={"Content-Type": "application/json"}
            ) as resp:
                await resp.read()
                return (
                    classify(resp.status),
                    f"HTTP {resp.status}",
                    retry_after(resp.headers.get("Retry-After"), self.max_backoff),
                )
        except (aiohttp.ClientError, TimeoutError, OSError) as e:
            return Outcome.RETRY, repr(e), None


# ---------------------------------------------------------------------- notifier


class Notifier:
    """Fans each batch out to every receiver, and knows which alerts are active."""

    def __init__(self, receivers: Sequence[Receiver]) -> None:
        names = [r.name for r in receivers]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise OrbiterError(f"receiver names must be unique; repeated: {', '.join(duplicates)}")
        self.receivers = list(receivers)
        self._active: dict[str, Notification] = {}

    async def start(self) -> None:
        for r in self.receivers:
            if isinstance(r, BackgroundReceiver):
                await r.start()

    async def stop(self) -> None:
        for r in self.receivers:
            if isinstance(r, BackgroundReceiver):
                await r.stop()

    async def notify(self, notifications: Sequence[Notification]) -> None:
        """Give the batch to every receiver at once; returns when all have taken it.

        Raises NotifyFailed naming the receivers that could not take it; the
        others have it regardless.
        """
        if not notifications:
            return
        self._active = update_active(self._active, notifications)
        results = await asyncio.gather(
            *(r.send(notifications) for r in self.receivers), return_exceptions=True
        )
        failures = {
            r.name: e
            for r, e in zip(self.receivers, results, strict=True)
            if isinstance(e, BaseException)
        }
        if failures:
            raise NotifyFailed(failures)

    def active(self) -> list[Notification]:
        """Firing alerts not yet resolved, oldest first: what `orbiter alerts` lists."""
        return sorted(self._active.values(), key=lambda n: (n.starts_at, n.fingerprint))
