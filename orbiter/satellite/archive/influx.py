"""Scraped samples into InfluxDB, one line-protocol point per sample.

A sample `name{a="x",b="y"} 1.5 @ t` becomes `name,a=x,b=y value=1.5 <t ms>`:
measurement = the metric name, tags = the other labels, field `value`. NaN
and ±Inf (line protocol has no spelling for them) are skipped and counted as
dropped (`not_finite`), except Prometheus's staleness marker: the Scraper
offers it when a series ends; it is no sample and InfluxDB has no notion of
it, so it is skipped uncounted. `select` keeps only the matching series,
`downsample` at most one sample per series per interval.

v1 writes with aiohttp to `/write?db=&rp=&precision=ms`; v2 with
influxdb-client's async write API to `/api/v2/write?org=&bucket=&precision=ms`
(the async client, so writes stay on Satellite's one loop with no thread).
Answers: 2xx delivered; 5xx, 408, 429, and 401/403/404 (credentials or a
missing database: the operator's to fix, not the data's fault) retried; any
other 4xx means the batch itself is bad and it is dropped, counted — except
a v1 "partial write", where InfluxDB stored the rest and says how many it
dropped.
"""

from __future__ import annotations

import math
import re
import struct
from collections.abc import Callable, Sequence
from pathlib import Path

import aiohttp

from orbiter.satellite.archive.config import InfluxConfig, Selector
from orbiter.satellite.archive.shipper import ArchiveMetrics, Delivery, Shipper
from orbiter.satellite.archive.spool import Batch, BatchSpool
from orbiter.satellite.series import STALE_NAN_BITS, Labels

SINK = "influxdb"
_CACHE_LIMIT = 1 << 20
_PARTIAL = re.compile(r"dropped=(\d+)")
_RETRY_4XX = frozenset({401, 403, 404, 408, 429})

_MEASUREMENT_ESCAPES = str.maketrans({",": r"\,", " ": r"\ ", "\n": r"\n"})
_TAG_ESCAPES = str.maketrans({",": r"\,", "=": r"\=", " ": r"\ ", "\n": r"\n"})


def _is_stale(value: float) -> bool:
    return struct.unpack("<Q", struct.pack("<d", value))[0] == STALE_NAN_BITS


def series_key(labels: Labels) -> bytes | None:
    """`measurement,tag=value,...` plus the space before the field; None without a name."""
    name = ""
    tags = []
    for k, v in labels:
        if k == "__name__":
            name = v
        elif v:
            tags.append(f",{k.translate(_TAG_ESCAPES)}={v.translate(_TAG_ESCAPES)}")
    if not name:
        return None
    return (name.translate(_MEASUREMENT_ESCAPES) + "".join(tags) + " value=").encode()


def classify(status: int, body: str) -> Delivery | None:
    """What an InfluxDB answer means for a batch of `n`: None = all delivered (2xx)."""
    if 200 <= status < 300:
        return None
    if status >= 500 or status in _RETRY_4XX:
        return Delivery(retry=True, detail=f"HTTP {status}: {body[:200]}")
    return Delivery(retry=False, detail=f"HTTP {status}: {body[:300]}")


class LineEncoder:
    """Samples → line-protocol batches, with the selection and downsampling applied.

    Keeps per-series caches (its line prefix, whether `select` keeps it, the last
    downsampling slot): a series seen before costs a few dict lookups. Used only by
    the shipper's writer thread.
    """

    def __init__(
        self,
        select: Sequence[Selector] = (),
        downsample_s: float = 0.0,
        batch_size: int = 5000,
        on_drop: Callable[[str, int], None] = lambda reason, n: None,
    ) -> None:
        self.select = tuple(select)
        self.slot_ms = int(downsample_s * 1000)
        self.batch_size = batch_size
        self.on_drop = on_drop
        self._keys: dict[Labels, bytes | None] = {}
        self._slots: dict[Labels, int] = {}

    def _key(self, labels: Labels) -> bytes | None:
        key = self._keys.get(labels, b"")
        if key == b"":
            if len(self._keys) >= _CACHE_LIMIT:
                self._keys.clear()
            keep = not self.select or any(s.matches(labels) for s in self.select)
            key = self._keys[labels] = series_key(labels) if keep else None
        return key

    def lines(self, samples: Sequence[tuple[Labels, float]], t_ms: int) -> list[bytes]:
        out: list[bytes] = []
        append = out.append
        not_finite = 0
        isfinite = math.isfinite
        stamp = b" %d\n" % t_ms
        slot = t_ms // self.slot_ms if self.slot_ms else 0
        slots = self._slots
        for labels, value in samples:
            key = self._key(labels)
            if key is None:
                continue
            if not isfinite(value):
                if not _is_stale(value):
                    not_finite += 1
                continue
            if self.slot_ms:
                if slots.get(labels) == slot:
                    continue
                slots[labels] = slot
            append(key + repr(float(value)).encode() + stamp)
        if len(slots) > _CACHE_LIMIT:
            slots.clear()
        if not_finite:
            self.on_drop("not_finite", not_finite)
        return out

    def __call__(
        self, items: list[tuple[Sequence[tuple[Labels, float]], int]], first_seq: int
    ) -> list[tuple[bytes, int]]:
        lines: list[bytes] = []
        for samples, t_ms in items:
            lines.extend(self.lines(samples, t_ms))
        n = self.batch_size
        return [
            (b"".join(lines[i : i + n]), len(lines[i : i + n])) for i in range(0, len(lines), n)
        ]


class InfluxV1Transport:
    """POST /write of InfluxDB 1.x (also what 2.x serves for 1.x clients)."""

    def __init__(self, cfg: InfluxConfig) -> None:
        self.cfg = cfg
        self.params = {"db": cfg.database, "precision": "ms"}
        if cfg.retention_policy:
            self.params["rp"] = cfg.retention_policy
        self.auth = aiohttp.BasicAuth(cfg.username, cfg.password) if cfg.username else None
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=self.cfg.timeout), auth=self.auth
        )

    async def send(self, batch: Batch) -> Delivery:
        assert self._session is not None
        async with self._session.post(
            f"{self.cfg.url}/write", params=self.params, data=batch.payload
        ) as resp:
            body = await resp.text(errors="replace")
            outcome = classify(resp.status, body)
        if outcome is None:
            return Delivery(retry=False, delivered=batch.count)
        if not outcome.retry and "partial write" in body:
            m = _PARTIAL.search(body)
            dropped = min(int(m.group(1)), batch.count) if m else batch.count
            return Delivery(False, batch.count - dropped, dropped, outcome.detail)
        if not outcome.retry:
            return Delivery(False, 0, batch.count, outcome.detail)
        return outcome

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


class InfluxV2Transport:
    """influxdb-client's async write API: /api/v2/write with `Authorization: Token`."""

    def __init__(self, cfg: InfluxConfig) -> None:
        self.cfg = cfg
        self._client = None
        self._write = None

    async def start(self) -> None:
        # The async client rather than the sync one in a thread: its writes run on
        # Satellite's one loop, like the v1 path, with no thread per sink. Imported
        # here because only v2 users need the library.
        from influxdb_client.client.influxdb_client_async import InfluxDBClientAsync

        self._client = InfluxDBClientAsync(
            url=self.cfg.url,
            token=self.cfg.token,
            org=self.cfg.org,
            timeout=int(self.cfg.timeout * 1000),
        )
        self._write = self._client.write_api()

    async def send(self, batch: Batch) -> Delivery:
        from influxdb_client.client.write_api import WritePrecision
        from influxdb_client.rest import ApiException

        assert self._write is not None
        try:
            await self._write.write(
                bucket=self.cfg.bucket,
                org=self.cfg.org,
                record=batch.payload,
                write_precision=WritePrecision.MS,
            )
        except ApiException as e:
            outcome = classify(e.status or 0, str(e.body or e.reason or ""))
            if outcome is None:
                return Delivery(retry=False, delivered=batch.count)
            if not outcome.retry:
                return Delivery(False, 0, batch.count, outcome.detail)
            return outcome
        return Delivery(retry=False, delivered=batch.count)

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()


class InfluxSink:
    """A `SampleSink` archiving samples in InfluxDB through a durable spool.

    `offer` only queues (see Shipper); `start()` / `stop()` run and end the loops.
    """

    def __init__(
        self,
        cfg: InfluxConfig,
        spool_dir: Path,
        max_bytes: int,
        metrics: ArchiveMetrics,
        max_buffer: int = 500_000,
    ) -> None:
        self.cfg = cfg
        self.metrics = metrics
        spool = BatchSpool(Path(spool_dir), max_bytes)
        transport = InfluxV1Transport(cfg) if cfg.version == 1 else InfluxV2Transport(cfg)
        self.encoder = LineEncoder(
            cfg.select,
            cfg.downsample,
            cfg.batch_size,
            on_drop=lambda reason, n: self.shipper.drop(reason, n),
        )
        self.shipper: Shipper[tuple[Sequence[tuple[Labels, float]], int]] = Shipper(
            SINK,
            "samples",
            spool,
            transport,
            self.encoder,
            metrics,
            batch_size=cfg.batch_size,
            flush_interval=cfg.flush_interval,
            max_buffer=max_buffer,
            send_timeout=cfg.timeout + 5.0,
        )

    def offer(self, samples: Sequence[tuple[Labels, float]], t_ms: int) -> None:
        if samples:
            self.shipper.put((samples, t_ms), len(samples))

    async def start(self) -> None:
        await self.shipper.start()

    async def stop(self) -> None:
        await self.shipper.stop()

    async def flush(self) -> None:
        """Spool what is buffered now (tests, shutdown)."""
        await self.shipper.flush()
