"""The sample archive against a real InfluxDB 1.6 (Debian's influxd, started per test).

v1 writes go straight to influxd's /write. influxd 1.6 has no /api/v2/write, so for
v2 a small proxy here (aiohttp) stands where InfluxDB 2 would: it checks
influxdb-client's `Authorization: Token` header and forwards `/api/v2/write?org=&bucket=`
to `/write?db=<bucket>` of the real server, so what influxdb-client wrote is read
back with InfluxQL from the real database. The proxy also plays outages (503) and
records the order batches arrive in.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from influxserver import InfluxServer
from prometheus_client import CollectorRegistry

from orbiter.satellite.archive import ArchiveMetrics, InfluxConfig, InfluxSink
from orbiter.satellite.archive.config import parse_selector

T0 = 1_764_489_600_000  # 2025-11-30T08:00:00Z, ms
TOKEN = "test-token"
Wait = Callable[..., Awaitable[Any]]


@pytest.fixture
def influx(tmp_path: Path) -> Iterator[InfluxServer]:
    server = InfluxServer(tmp_path / "influx")
    server.start()
    yield server
    server.stop()


@dataclass
class Proxy:
    """InfluxDB 2's write endpoint in front of an InfluxDB 1 (and v1's, for fault tests)."""

    influx: InfluxServer
    fault: int = 0  # answer this status instead of forwarding
    first_times: list[int] = field(default_factory=list)  # first timestamp of each batch
    auth_seen: list[str] = field(default_factory=list)
    url: str = ""
    _runner: web.AppRunner | None = None
    _session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        app = web.Application(client_max_size=1 << 28)
        app.router.add_post("/api/v2/write", self._v2)
        app.router.add_post("/write", self._v1)
        self._session = aiohttp.ClientSession()
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        assert self._runner is not None and self._session is not None
        await self._runner.cleanup()
        await self._session.close()

    async def _v2(self, request: web.Request) -> web.Response:
        auth = request.headers.get("Authorization", "")
        self.auth_seen.append(auth)
        if auth != f"Token {TOKEN}":
            return web.json_response({"code": "unauthorized", "message": "bad token"}, status=401)
        q = request.query
        if q.get("precision") != "ms" or not q.get("org"):
            return web.json_response({"code": "invalid", "message": f"query {dict(q)}"}, status=400)
        return await self._forward(request, {"db": q["bucket"], "precision": "ms"})

    async def _v1(self, request: web.Request) -> web.Response:
        return await self._forward(request, dict(request.query))

    async def _forward(self, request: web.Request, params: dict[str, str]) -> web.Response:
        if self.fault:
            return web.Response(status=self.fault, text="proxy says no")
        body = await request.read()
        assert self._session is not None
        async with self._session.post(f"{self.influx.url}/write", params=params, data=body) as r:
            text = await r.text()
            if r.status == 204 and body:
                self.first_times.append(int(body.split(b"\n", 1)[0].rsplit(b" ", 1)[1]))
            return web.Response(status=r.status, text=text)


@pytest.fixture
async def proxy(influx: InfluxServer) -> AsyncIterator[Proxy]:
    p = Proxy(influx)
    await p.start()
    yield p
    await p.stop()


def sink_for(cfg: InfluxConfig, spool: Path) -> tuple[InfluxSink, CollectorRegistry]:
    registry = CollectorRegistry()
    return InfluxSink(cfg, spool, 64 << 20, ArchiveMetrics(registry)), registry


def metric(registry: CollectorRegistry, name: str, **labels: str) -> float:
    return registry.get_sample_value(name, {"sink": "influxdb", **labels}) or 0.0


def scrape(i: int, series: int = 10) -> list[tuple[tuple[tuple[str, str], ...], float]]:
    """One scrape's samples: `orbiter_test{series="s<k>",job="agent"}` = i."""
    return [
        ((("__name__", "orbiter_test"), ("job", "agent"), ("series", f"s{k}")), float(i))
        for k in range(series)
    ]


async def test_samples_are_written_as_measurement_tags_and_value_and_read_back(
    influx: InfluxServer, tmp_path: Path, async_wait_until: Wait
) -> None:
    cfg = InfluxConfig(url=influx.url, database="orbiter", flush_interval=0.05)
    sink, registry = sink_for(cfg, tmp_path / "spool")
    await sink.start()
    sink.offer(
        [
            ((("__name__", "up"), ("instance", "10.0.0.1:5051"), ("job", "agent")), 1.0),
            ((("__name__", "orbiter_disk bytes"), ("path", "/var lib,x")), 123.5),
            ((("__name__", "stale"),), float("nan")),
        ],
        T0,
    )
    await async_wait_until(lambda: influx.count("up") == 1, 10, "up in InfluxDB")
    assert influx.columns("up") == ["time", "instance", "job", "value"]
    assert influx.points("up") == [[T0, "10.0.0.1:5051", "agent", 1]]
    assert influx.points("orbiter_disk bytes") == [[T0, "/var lib,x", 123.5]]
    await async_wait_until(lambda: metric(registry, "orbiter_archive_sent_total", kind="samples"))
    assert metric(registry, "orbiter_archive_sent_total", kind="samples") == 2
    assert metric(registry, "orbiter_archive_dropped_total", reason="not_finite") == 1
    await sink.stop()


async def test_select_and_downsample_decide_what_is_archived(
    influx: InfluxServer, tmp_path: Path, async_wait_until: Wait
) -> None:
    cfg = InfluxConfig(
        url=influx.url,
        database="orbiter",
        flush_interval=0.05,
        downsample=60.0,
        select=(parse_selector('{__name__="orbiter_test",series=~"s[01]"}'),),
    )
    sink, _ = sink_for(cfg, tmp_path / "spool")
    await sink.start()
    for i in range(8):  # 2 minutes of 15s scrapes
        sink.offer([*scrape(i), ((("__name__", "other"),), 1.0)], T0 + i * 15_000)
    await sink.flush()
    await async_wait_until(lambda: influx.count("orbiter_test") == 4, 10)
    rows = influx.points("orbiter_test")
    assert sorted((r[0], r[2]) for r in rows) == [
        (T0, "s0"),
        (T0, "s1"),
        (T0 + 60_000, "s0"),
        (T0 + 60_000, "s1"),
    ]
    assert influx.count("other") == 0
    await sink.stop()


async def test_v2_writes_through_influxdb_client_with_the_token(
    proxy: Proxy, influx: InfluxServer, tmp_path: Path, async_wait_until: Wait
) -> None:
    cfg = InfluxConfig(
        url=proxy.url,
        version=2,
        org="orbiter",
        bucket="orbiter",
        token=TOKEN,
        flush_interval=0.05,
    )
    sink, registry = sink_for(cfg, tmp_path / "spool")
    await sink.start()
    for i in range(3):
        sink.offer(scrape(i), T0 + i * 15_000)
    await async_wait_until(lambda: influx.count("orbiter_test") == 30, 10, "30 points via v2")
    assert set(proxy.auth_seen) == {f"Token {TOKEN}"}
    await async_wait_until(
        lambda: metric(registry, "orbiter_archive_sent_total", kind="samples") == 30, 10
    )
    await sink.stop()


async def test_a_wrong_v2_token_is_retried_not_dropped(
    proxy: Proxy, influx: InfluxServer, tmp_path: Path, async_wait_until: Wait
) -> None:
    cfg = InfluxConfig(
        url=proxy.url,
        version=2,
        org="orbiter",
        bucket="orbiter",
        token="wrong",
        flush_interval=0.05,
    )
    sink, registry = sink_for(cfg, tmp_path / "spool")
    await sink.start()
    sink.offer(scrape(0), T0)
    await async_wait_until(lambda: metric(registry, "orbiter_archive_failures_total") >= 2, 10)
    assert metric(registry, "orbiter_archive_dropped_total", reason="rejected") == 0
    assert metric(registry, "orbiter_archive_backlog_bytes") > 0
    await sink.stop()


async def test_garbage_lines_are_dropped_and_counted_not_retried(
    influx: InfluxServer, tmp_path: Path, async_wait_until: Wait
) -> None:
    cfg = InfluxConfig(url=influx.url, database="orbiter", flush_interval=0.05)
    sink, registry = sink_for(cfg, tmp_path / "spool")
    await sink.start()
    # InfluxDB refuses a tag key named `time`: a partial write, the rest is stored.
    sink.offer([((("__name__", "bad"), ("time", "x")), 1.0), ((("__name__", "good"),), 2.0)], T0)
    await async_wait_until(
        lambda: metric(registry, "orbiter_archive_dropped_total", reason="rejected") == 1, 10
    )
    assert influx.count("good") == 1
    assert metric(registry, "orbiter_archive_sent_total", kind="samples") == 1
    await sink.stop()


@pytest.mark.slow
@pytest.mark.parametrize("outage", ["influxd killed", "proxy answers 503"])
async def test_every_sample_offered_during_an_outage_arrives_exactly_once(
    outage: str, influx: InfluxServer, proxy: Proxy, tmp_path: Path, async_wait_until: Wait
) -> None:
    url = influx.url if outage == "influxd killed" else proxy.url
    cfg = InfluxConfig(url=url, database="orbiter", flush_interval=0.05, batch_size=50, timeout=2)
    sink, registry = sink_for(cfg, tmp_path / "spool")
    sink.shipper.max_backoff = 0.5
    await sink.start()
    i = 0

    async def offer_until(check: Callable[[], bool]) -> None:
        nonlocal i

        async def step() -> bool:
            nonlocal i
            sink.offer(scrape(i), T0 + i * 1000)
            i += 1
            return check() and i % 10 == 0

        await async_wait_until(step, 30, f"{outage}: offering until the phase is over")

    await offer_until(lambda: metric(registry, "orbiter_archive_sent_total", kind="samples") > 0)
    if outage == "influxd killed":
        influx.kill()
    else:
        proxy.fault = 503
    await offer_until(lambda: metric(registry, "orbiter_archive_failures_total") >= 3)
    assert metric(registry, "orbiter_archive_backlog_bytes") > 0
    if outage == "influxd killed":
        await asyncio.to_thread(influx.start)
    else:
        proxy.fault = 0
    await offer_until(lambda: True)
    total = i * 10
    await async_wait_until(
        lambda: metric(registry, "orbiter_archive_sent_total", kind="samples") == total,
        60,
        f"all {total} samples sent after the outage",
    )
    assert influx.count("orbiter_test") == total  # one point per (series, time): exactly once
    assert metric(registry, "orbiter_archive_dropped_total", reason="spool_full") == 0
    await async_wait_until(lambda: metric(registry, "orbiter_archive_backlog_bytes") == 0, 10)
    if outage == "proxy answers 503":
        assert proxy.first_times == sorted(proxy.first_times)  # replayed in order
    await sink.stop()


WRITER = textwrap.dedent(
    """
    import asyncio, sys
    from pathlib import Path
    from prometheus_client import CollectorRegistry
    from orbiter.satellite.archive import ArchiveMetrics, InfluxConfig, InfluxSink

    url, spool, mode = sys.argv[1:4]
    T0 = 1_764_489_600_000

    async def main():
        cfg = InfluxConfig(url=url, database="orbiter", flush_interval=0.02, batch_size=100)
        sink = InfluxSink(cfg, Path(spool), 64 << 20, ArchiveMetrics(CollectorRegistry()))
        sink.shipper.max_backoff = 0.2
        await sink.start()
        i = 0
        while mode == "write":
            sink.offer([((("__name__", "orbiter_kill"), ("series", f"s{k}")), float(i))
                        for k in range(10)], T0 + i * 1000)
            i += 1
            if i % 20 == 0:
                await sink.flush()
                print("accepted", sink.shipper.accepted, flush=True)
        await asyncio.Event().wait()

    asyncio.run(main())
    """
)


@pytest.mark.slow
async def test_after_kill_9_the_spool_replays_in_order_and_nothing_acknowledged_is_lost(
    influx: InfluxServer, proxy: Proxy, tmp_path: Path, async_wait_until: Wait
) -> None:
    spool = tmp_path / "spool"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proxy.fault = 503  # the sink cannot deliver: everything accepted waits in the spool
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, proxy.url, str(spool), "write"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
        text=True,
    )
    try:
        accepted = 0

        def read_accepted() -> bool:
            nonlocal accepted
            assert writer.stdout is not None
            line = writer.stdout.readline()
            if line.startswith("accepted"):
                accepted = int(line.split()[1])
            return accepted >= 5000

        await async_wait_until(lambda: asyncio.to_thread(read_accepted), 60, "5000 accepted")
        writer.send_signal(signal.SIGKILL)  # mid-stream: it keeps offering until now
        writer.wait(10)
    finally:
        if writer.poll() is None:
            writer.kill()
    proxy.fault = 0
    replayer = subprocess.Popen(
        [sys.executable, "-c", WRITER, proxy.url, str(spool), "replay"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    try:
        scrapes = accepted // 10
        await async_wait_until(
            lambda: influx.count("orbiter_kill") >= accepted,
            60,
            f"the {accepted} acknowledged samples replayed into InfluxDB",
        )
        rows = influx.points("orbiter_kill", "WHERE \"series\" = 's3'")
        times = [r[0] for r in rows]
        assert times[:scrapes] == [T0 + i * 1000 for i in range(scrapes)]  # none lost
        assert [r[2] for r in rows[:scrapes]] == [float(i) for i in range(scrapes)]
        assert proxy.first_times == sorted(proxy.first_times)  # in the order spooled
    finally:
        replayer.send_signal(signal.SIGKILL)
        replayer.wait(10)


@pytest.mark.slow
async def test_an_outage_longer_than_the_spool_holds_drops_new_samples_and_counts_every_one(
    influx: InfluxServer, tmp_path: Path, async_wait_until: Wait
) -> None:
    cfg = InfluxConfig(url=influx.url, database="orbiter", flush_interval=0.02, batch_size=100)
    registry = CollectorRegistry()
    sink = InfluxSink(cfg, tmp_path / "spool", 64 << 10, ArchiveMetrics(registry))
    sink.shipper.max_backoff = 0.3
    await sink.start()
    influx.kill()
    i = 0

    def offer_until_full() -> bool:
        nonlocal i
        sink.offer(scrape(i), T0 + i * 1000)
        i += 1
        return metric(registry, "orbiter_archive_dropped_total", reason="spool_full") > 0

    await async_wait_until(offer_until_full, 30, "the 64 KiB spool to fill up")
    for _ in range(20):  # still offered, still dropped and counted
        sink.offer(scrape(i), T0 + i * 1000)
        i += 1
    await sink.flush()
    await asyncio.to_thread(influx.start)
    offered = i * 10

    def accounted() -> bool:
        sent = metric(registry, "orbiter_archive_sent_total", kind="samples")
        dropped = metric(registry, "orbiter_archive_dropped_total", reason="spool_full")
        return sent + dropped == offered

    await async_wait_until(accounted, 30, f"each of the {offered} samples sent or dropped")
    sent = metric(registry, "orbiter_archive_sent_total", kind="samples")
    assert 0 < sent < offered
    assert influx.count("orbiter_test") == sent  # what was counted sent is there, once
    await sink.stop()
