"""Remote write into the real Prometheus 2.42 (Debian's `prometheus`, `make deps`), started
with `--web.enable-remote-write-receiver` on a free port in a temp dir, and into fake
receivers (aiohttp) that answer what Prometheus would not: 400, 503, 429.

What a user relies on: every sample written is queried back from Prometheus with its exact
labels, time and value; a receiver that is down loses nothing within the queue's bound; a
full queue counts exactly what it refused; a 4xx is dropped and counted, a 5xx retried.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import math
import shutil
import signal
import ssl
import struct
import subprocess
import time
import urllib.parse
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import cramjam
import pytest
from aiohttp import web
from prometheus_client import CollectorRegistry, generate_latest

from orbiter import __version__
from orbiter.proto import remote_write_pb2 as pb
from orbiter.satellite.remote_write import (
    BasicAuth,
    QueueConfig,
    RemoteWriteConfig,
    RemoteWriter,
    TLSConfig,
)
from orbiter.satellite.scrape import Scraper, Target
from orbiter.satellite.series import STALE_NAN_BITS, Labels, Matcher, MatchOp, labels_of
from orbiter.satellite.tsdb import TSDB
from tests.conftest import free_port, get_json
from tests.proctools import Processes, ProcessFailed, poll_until, tail

STALE = struct.unpack("<d", struct.pack("<Q", STALE_NAN_BITS))[0]
FAST = QueueConfig(batch_send_deadline=0.05, min_backoff=0.02, max_backoff=0.2)
Wait = Callable[..., Awaitable[Any]]


@pytest.fixture(scope="module")
def prometheus_binary() -> str:
    path = shutil.which("prometheus")
    if path is None:
        pytest.fail("prometheus not found: run `make deps` (Debian package prometheus)")
    return path


class Prometheus:
    """A Prometheus that only receives remote writes: no scrape config, its TSDB in a temp dir.

    `start` and `stop` may be called again: the port and the TSDB stay the same.
    """

    def __init__(self, binary: str, processes: Processes, tmp: Path) -> None:
        self.binary = binary
        self.processes = processes
        self.dir = tmp / "prometheus"
        self.dir.mkdir()
        (self.dir / "prometheus.yml").write_text("global:\n  scrape_interval: 1m\n")
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def write_url(self) -> str:
        return f"{self.url}/api/v1/write"

    def start(self) -> None:
        log = self.dir / "prometheus.log"
        self.proc = self.processes.start(
            [
                self.binary,
                f"--config.file={self.dir / 'prometheus.yml'}",
                f"--storage.tsdb.path={self.dir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--web.enable-remote-write-receiver",
            ],
            log,
        )
        proc = self.proc

        def ready() -> bool:
            if proc.poll() is not None:
                raise ProcessFailed(f"prometheus exited with {proc.returncode}:\n{tail(log)}")
            return get_json(f"{self.url}/api/v1/status/buildinfo")["status"] == "success"

        poll_until(ready, 30, f"prometheus at {self.url}")

    def stop(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(20)

    async def query(self, promql: str, **params: str) -> list[dict[str, Any]]:
        url = f"{self.url}/api/v1/query?" + urllib.parse.urlencode({"query": promql, **params})
        body = await asyncio.to_thread(get_json, url)
        assert body["status"] == "success", body
        return body["data"]["result"]

    async def query_range(self, promql: str, start: float, end: float) -> list[dict[str, Any]]:
        q = {"query": promql, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": "1"}
        body = await asyncio.to_thread(
            get_json, f"{self.url}/api/v1/query_range?" + urllib.parse.urlencode(q)
        )
        assert body["status"] == "success", body
        return body["data"]["result"]


@pytest.fixture
def prometheus(prometheus_binary: str, processes: Processes, tmp_path: Path) -> Prometheus:
    """A Prometheus receiver, not started yet."""
    return Prometheus(prometheus_binary, processes, tmp_path)


@contextlib.asynccontextmanager
async def running(writer: RemoteWriter) -> AsyncIterator[RemoteWriter]:
    await writer.start()
    try:
        yield writer
    finally:
        await writer.stop(flush_timeout=1.0)


def value(registry: CollectorRegistry, name: str, **labels: str) -> float:
    return registry.get_sample_value(f"orbiter_remote_write_{name}", labels) or 0.0


def now_ms() -> int:
    return int(time.time() * 1000)


def L(**kv: str) -> Labels:
    return labels_of(kv)


# ---------------------------------------------------------------------- the real Prometheus


async def test_every_sample_is_queried_back_with_its_labels_time_and_value(
    prometheus: Prometheus, async_wait_until: Wait, promtool: str
) -> None:
    await asyncio.to_thread(prometheus.start)
    registry = CollectorRegistry()
    config = RemoteWriteConfig(prometheus.write_url, name="prom", queue_config=FAST)
    up = L(__name__="up", job="agent", instance="10.0.0.1:5051", agent="a1")
    cpu = L(__name__="orbiter_cpu_seconds_total", job="agent", mode="user", tenant="ünï ✓")
    gone = L(__name__="orbiter_tasks_running", job="agent", framework="f1")
    t0 = (now_ms() // 1000 - 60) * 1000  # whole seconds: query_range steps land on samples
    values = [0.5, 1.0, 1e-9, 12345.678, -3.25]
    async with running(RemoteWriter(config, registry=registry)) as writer:
        for i, v in enumerate(values):
            scrape = [(up, 1.0), (cpu, v), (gone, float(i))]
            if i == len(values) - 1:
                scrape[2] = (gone, STALE)  # the series vanished: its staleness marker
            writer.offer(scrape, t0 + i * 1000)
        await async_wait_until(lambda: value(registry, "samples_sent_total", remote="prom") == 15)
    end = (t0 + 4000) / 1000
    cpu_range = await prometheus.query_range("orbiter_cpu_seconds_total", t0 / 1000, end)
    assert [(r["metric"], [(ts, float(v)) for ts, v in r["values"]]) for r in cpu_range] == [
        (dict(cpu), [(t0 / 1000 + i, v) for i, v in enumerate(values)])
    ]
    (up_now,) = await prometheus.query("up", time=str(end))
    assert up_now["metric"] == dict(up) and up_now["value"] == [end, "1"]
    # exact floats: Prometheus formats with Go's shortest representation
    assert (
        float(
            (await prometheus.query("orbiter_cpu_seconds_total", time=str(t0 / 1000 + 2)))[0][
                "value"
            ][1]
        )
        == 1e-9
    )
    # the staleness marker ends the series, exactly as a scraped one would
    before = await prometheus.query("orbiter_tasks_running", time=str(end - 1))
    assert [r["value"] for r in before] == [[end - 1, "3"]]
    assert await prometheus.query("orbiter_tasks_running", time=str(end)) == []
    assert value(registry, "highest_sent_timestamp_seconds", remote="prom") == end
    assert value(registry, "samples_pending", remote="prom") == 0
    assert value(registry, "failures_total", remote="prom") == 0
    assert value(registry, "sent_batch_duration_seconds_count", remote="prom") >= 1
    exposition = generate_latest(registry).decode()
    checked = subprocess.run(
        [promtool, "check", "metrics"], input=exposition, capture_output=True, text=True
    )
    assert (checked.returncode, checked.stdout + checked.stderr) == (0, "")


EXPOSITION = """# TYPE orbiter_host_load1 gauge
orbiter_host_load1 {load}
# TYPE orbiter_check_status gauge
orbiter_check_status{{check="disk",job="exposed"}} 2
# TYPE orbiter_requests_total counter
orbiter_requests_total{{code="200",path="/api/v1/query"}} {requests}
"""


async def test_a_scrapers_samples_reach_prometheus_as_satellite_stored_them(
    prometheus: Prometheus, async_wait_until: Wait
) -> None:
    """RemoteWriter as the Scraper's sink: Prometheus holds the very series, times and
    values that Satellite's TSDB holds, target labels and exported_ renames included."""
    state = {"load": 0.25, "requests": 1, "down": False}

    async def metrics(_: web.Request) -> web.Response:
        if state["down"]:
            return web.Response(status=503)
        return web.Response(text=EXPOSITION.format(**state))

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    await asyncio.to_thread(prometheus.start)
    t0 = now_ms() // 1000 - 60
    ticks = iter(range(t0, t0 + 1000, 15))
    tsdb = TSDB()
    scraper = Scraper(tsdb, interval=60, timeout=2, clock=lambda: float(next(ticks)))
    registry = CollectorRegistry()
    writer = RemoteWriter(
        RemoteWriteConfig(prometheus.write_url, name="prom", queue_config=FAST), registry
    )
    scraper.sinks.append(writer)
    target = Target(
        f"http://127.0.0.1:{port}/metrics",
        labels_of({"job": "agent", "instance": f"127.0.0.1:{port}", "agent": "S1"}),
    )
    await scraper.start()
    try:
        async with running(writer):
            scraper.sync([target])
            scrape_state = scraper.targets[target.url]
            assert scrape_state.task is not None
            scrape_state.task.cancel()  # scrapes by hand, at the clock's times
            for k in range(4):
                state["load"], state["requests"] = 0.25 * k, 10**k + 0.5
                await scraper.scrape(scrape_state)
            sent = lambda: value(registry, "samples_sent_total", remote="prom")  # noqa: E731
            await async_wait_until(lambda: sent() == 4 * 6, what="4 scrapes x 6 series")
            state["down"] = True  # the 5th scrape fails: the 3 exposed series go stale
            await scraper.scrape(scrape_state)
            await async_wait_until(lambda: sent() == 4 * 6 + 3 + 3, what="up etc. and markers")
    finally:
        await scraper.stop()
        await runner.cleanup()
    ended = await prometheus.query('{job="agent"}', time=str(t0 + 300))
    assert sorted(r["metric"]["__name__"] for r in ended) == [
        "scrape_duration_seconds", "scrape_samples_scraped", "up",
    ], "the failed target's exposed series did not end in Prometheus"  # fmt: skip
    raw = await prometheus.query('{job="agent"}[10m]', time=str(t0 + 300))
    in_prometheus = {
        tuple(sorted(r["metric"].items())): [(round(t * 1000), float(v)) for t, v in r["values"]]
        for r in raw
    }
    satellite = {  # range selectors hide staleness markers, in Prometheus as in Satellite
        labels: [(t, v) for t, v in zip(ts, vs, strict=True) if not math.isnan(v)]
        for labels, ts, vs in tsdb.select_windows(
            [Matcher("job", MatchOp.EQUAL, "agent")], 0, 2**62
        )
    }
    assert len(satellite) == 6
    assert in_prometheus == satellite
    (check,) = [dict(k) for k in in_prometheus if dict(k)["__name__"] == "orbiter_check_status"]
    assert check["exported_job"] == "exposed" and check["agent"] == "S1"


async def test_a_receiver_that_is_down_loses_nothing_within_the_queues_bound(
    prometheus: Prometheus, async_wait_until: Wait
) -> None:
    registry = CollectorRegistry()
    config = RemoteWriteConfig(
        prometheus.write_url,
        name="prom",
        queue_config=QueueConfig(
            capacity=1000,
            max_samples_per_send=50,
            batch_send_deadline=0.05,
            min_backoff=0.02,
            max_backoff=0.3,
        ),
    )
    series = [L(__name__="orbiter_queue_test", i=str(i)) for i in range(100)]
    t0 = (now_ms() // 1000 - 120) * 1000
    sent = lambda: value(registry, "samples_sent_total", remote="prom")  # noqa: E731
    async with running(RemoteWriter(config, registry=registry)) as writer:
        # not started yet: every batch fails and is retried; 5 scrapes = 500 samples queued
        for k in range(5):
            writer.offer([(s, float(k * 1000 + i)) for i, s in enumerate(series)], t0 + k * 1000)
        await async_wait_until(lambda: value(registry, "failures_total", remote="prom") >= 3)
        assert writer.pending == 500 and sent() == 0
        await asyncio.to_thread(prometheus.start)
        await async_wait_until(lambda: sent() == 500, timeout=30, what="500 samples sent")
        # stopped for a while: 5 more scrapes wait, then arrive after the restart
        await asyncio.to_thread(prometheus.stop)
        failures = value(registry, "failures_total", remote="prom")
        for k in range(5, 10):
            writer.offer([(s, float(k * 1000 + i)) for i, s in enumerate(series)], t0 + k * 1000)
        await async_wait_until(lambda: value(registry, "failures_total", remote="prom") > failures)
        await asyncio.to_thread(prometheus.start)
        await async_wait_until(lambda: sent() == 1000, timeout=30, what="1000 samples sent")
    assert value(registry, "samples_dropped_total", remote="prom", reason="queue_full") == 0
    got = await prometheus.query_range("orbiter_queue_test", t0 / 1000, t0 / 1000 + 9)
    assert len(got) == 100
    for r in got:
        i = int(r["metric"]["i"])
        assert r["values"] == [[t0 / 1000 + k, str(k * 1000 + i)] for k in range(10)]


async def test_an_overfull_queue_counts_exactly_the_samples_it_dropped(
    prometheus: Prometheus, async_wait_until: Wait
) -> None:
    registry = CollectorRegistry()
    config = RemoteWriteConfig(
        prometheus.write_url,
        name="prom",
        queue_config=QueueConfig(
            capacity=250,
            max_samples_per_send=100,
            batch_send_deadline=0.05,
            min_backoff=0.02,
            max_backoff=0.3,
        ),
    )
    series = [L(__name__="orbiter_overfull", i=str(i)) for i in range(40)]
    t0 = (now_ms() // 1000 - 60) * 1000
    async with running(RemoteWriter(config, registry=registry)) as writer:
        for k in range(10):  # 400 samples offered to a queue of 250 while nobody listens
            writer.offer([(s, float(k)) for s in series], t0 + k * 1000)
        assert writer.pending == 250
        assert value(registry, "samples_dropped_total", remote="prom", reason="queue_full") == 150
        await asyncio.to_thread(prometheus.start)
        await async_wait_until(
            lambda: value(registry, "samples_sent_total", remote="prom") == 250, timeout=30
        )
    # the oldest 250 arrived: 6 whole scrapes and the first 10 series of the 7th
    counts = await prometheus.query(
        "count_over_time(orbiter_overfull[1m])", time=str(t0 / 1000 + 9)
    )
    by_series = {int(r["metric"]["i"]): int(r["value"][1]) for r in counts}
    assert by_series == {i: 7 if i < 10 else 6 for i in range(40)}
    assert value(registry, "samples_dropped_total", remote="prom", reason="queue_full") == 150


# ---------------------------------------------------------------------- fake receivers


class FakeReceiver:
    """Answers each POST with the next status of `answers` (the last one for ever).

    While `hang` is set, it reads each request and answers nothing until `release`
    (the writer has timed out by then: what it answers is not recorded).
    """

    def __init__(self, answers: list[int], headers: dict[str, str] | None = None) -> None:
        self.answers = answers
        self.headers = headers or {}
        self.requests: list[tuple[dict[str, str], pb.WriteRequest]] = []
        self.accepted: list[pb.WriteRequest] = []
        self.hang = False
        self.hung = 0
        self.released = asyncio.Event()

    def release(self) -> None:
        self.hang = False
        self.released.set()

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        if self.hang:
            self.hung += 1
            await self.released.wait()
            return web.Response(status=503)
        decoded = pb.WriteRequest.FromString(bytes(cramjam.snappy.decompress_raw(body)))
        self.requests.append((dict(request.headers), decoded))
        status = self.answers[min(len(self.requests), len(self.answers)) - 1]
        if status < 300:
            self.accepted.append(decoded)
        return web.Response(status=status, headers=self.headers if status >= 300 else None)


@pytest.fixture
async def fake() -> AsyncIterator[Callable[..., Awaitable[tuple[FakeReceiver, str]]]]:
    runners: list[web.AppRunner] = []
    receivers: list[FakeReceiver] = []

    async def serve(answers: list[int], **kw: Any) -> tuple[FakeReceiver, str]:
        receiver = FakeReceiver(answers, **kw)
        receivers.append(receiver)
        app = web.Application()
        app.router.add_post("/api/v1/write", receiver.handle)
        runner = web.AppRunner(app)
        await runner.setup()
        runners.append(runner)
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        return receiver, f"http://127.0.0.1:{port}/api/v1/write"

    yield serve
    for receiver in receivers:
        receiver.release()  # else cleanup waits for hung handlers
    for runner in runners:
        await runner.cleanup()


def samples_of(requests: list[pb.WriteRequest]) -> list[tuple[str, int, float]]:
    return [
        (dict((lb.name, lb.value) for lb in ts.labels)["i"], s.timestamp, s.value)
        for req in requests
        for ts in req.timeseries
        for s in ts.samples
    ]


async def test_a_client_error_drops_the_batch_counts_it_and_sends_the_next(
    fake: Callable[..., Awaitable[tuple[FakeReceiver, str]]], async_wait_until: Wait
) -> None:
    receiver, url = await fake([400, 200])
    registry = CollectorRegistry()
    config = RemoteWriteConfig(url, name="fake", queue_config=FAST)
    series = [L(__name__="m", i=str(i)) for i in range(3)]
    async with running(RemoteWriter(config, registry=registry)) as writer:
        writer.offer([(s, 1.0) for s in series], 1000)
        await async_wait_until(
            lambda: value(registry, "samples_dropped_total", remote="fake", reason="rejected") == 3
        )
        writer.offer([(s, 2.0) for s in series], 2000)
        await async_wait_until(lambda: value(registry, "samples_sent_total", remote="fake") == 3)
    assert len(receiver.requests) == 2  # the refused batch was not sent again
    assert samples_of(receiver.accepted) == [(str(i), 2000, 2.0) for i in range(3)]
    assert value(registry, "failures_total", remote="fake") == 1


@pytest.mark.parametrize(
    ("answers", "retry_429", "delivered"),
    [
        ([503, 503, 500, 204], True, True),
        ([429, 200], True, True),
        ([429, 200], False, False),
    ],
)
async def test_server_errors_are_retried_until_delivered(
    fake: Callable[..., Awaitable[tuple[FakeReceiver, str]]],
    async_wait_until: Wait,
    answers: list[int],
    retry_429: bool,
    delivered: bool,
) -> None:
    receiver, url = await fake(answers, headers={"Retry-After": "0"})
    registry = CollectorRegistry()
    queue = QueueConfig(
        batch_send_deadline=0.05, min_backoff=0.02, max_backoff=0.2, retry_on_http_429=retry_429
    )
    config = RemoteWriteConfig(
        url, name="fake", headers=(("X-Scope-OrgID", "team-a"),), queue_config=queue
    )
    scrape = [(L(__name__="m", i=str(i)), float(i)) for i in range(5)]
    stale = [(L(__name__="m", i="0"), STALE)]
    async with running(RemoteWriter(config, registry=registry)) as writer:
        writer.offer(scrape, 1000)
        writer.offer(stale, 2000)
        outcome = "samples_sent_total" if delivered else "samples_dropped_total"
        labels = {"remote": "fake"} if delivered else {"remote": "fake", "reason": "rejected"}
        await async_wait_until(lambda: value(registry, outcome, **labels) == 6)
    attempts = len(answers) if delivered else 1
    assert len(receiver.requests) == attempts
    assert value(registry, "failures_total", remote="fake") == (attempts - 1 if delivered else 1)
    for headers, request in receiver.requests:
        assert headers["Content-Encoding"] == "snappy"
        assert headers["Content-Type"] == "application/x-protobuf"
        assert headers["X-Prometheus-Remote-Write-Version"] == "0.1.0"
        assert headers["User-Agent"] == f"Orbiter/{__version__}"
        assert headers["X-Scope-OrgID"] == "team-a"
        assert request == receiver.requests[0][1]  # the very same batch each time
    if delivered:
        got = samples_of(receiver.accepted)
        assert got[0] == ("0", 1000, 0.0) and got[1][:2] == ("0", 2000)
        assert got[2:] == [(str(i), 1000, float(i)) for i in range(1, 5)]
        (series0,) = [ts for ts in receiver.accepted[0].timeseries if ts.labels[1].value == "0"]
        assert [s.timestamp for s in series0.samples] == [1000, 2000]
        (marker,) = [s.value for s in series0.samples if math.isnan(s.value)]
        assert struct.unpack("<Q", struct.pack("<d", marker))[0] == STALE_NAN_BITS


async def test_a_receiver_that_hangs_times_out_and_the_scrape_path_never_waits(
    fake: Callable[..., Awaitable[tuple[FakeReceiver, str]]], async_wait_until: Wait
) -> None:
    receiver, url = await fake([204])
    receiver.hang = True
    registry = CollectorRegistry()
    queue = QueueConfig(
        capacity=100, max_samples_per_send=10, batch_send_deadline=0.01, max_backoff=0.05
    )
    config = RemoteWriteConfig(url, name="slow", remote_timeout=0.2, queue_config=queue)
    scrape = [(L(__name__="m", i=str(i)), float(i)) for i in range(10)]
    async with running(RemoteWriter(config, registry=registry)) as writer:
        writer.offer(scrape, 0)
        await async_wait_until(lambda: value(registry, "failures_total", remote="slow") >= 2)
        began = time.perf_counter()
        for t in range(1, 20):  # 190 more offered to a queue of 100 holding 10: 90 fit
            writer.offer(scrape, t * 1000)
        assert time.perf_counter() - began < 0.05
        assert value(registry, "samples_dropped_total", remote="slow", reason="queue_full") == 100
        assert receiver.hung >= 2 and receiver.requests == []
        receiver.release()
        await async_wait_until(
            lambda: value(registry, "samples_sent_total", remote="slow") == 100, timeout=20
        )
    assert value(registry, "sent_batch_duration_seconds_bucket", remote="slow", le="0.25") >= 2
    assert [t for i, t, _ in samples_of(receiver.accepted) if i == "0"] == [
        t * 1000 for t in range(10)
    ]


async def test_basic_auth_is_sent_with_the_password_file_read_at_each_request(
    fake: Callable[..., Awaitable[tuple[FakeReceiver, str]]],
    async_wait_until: Wait,
    tmp_path: Path,
) -> None:
    receiver, url = await fake([204])
    password = tmp_path / "pw"
    password.write_text("first\n")
    config = RemoteWriteConfig(
        url, basic_auth=BasicAuth("orbiter", password_file=str(password)), queue_config=FAST
    )
    async with running(RemoteWriter(config)) as writer:
        writer.offer([(L(__name__="m", i="1"), 1.0)], 1000)
        await async_wait_until(lambda: len(receiver.requests) == 1)
        password.write_text("second")
        writer.offer([(L(__name__="m", i="1"), 1.0)], 2000)
        await async_wait_until(lambda: len(receiver.requests) == 2)
    assert [h["Authorization"] for h, _ in receiver.requests] == [
        "Basic " + base64.b64encode(b"orbiter:first").decode(),
        "Basic " + base64.b64encode(b"orbiter:second").decode(),
    ]


async def test_stop_flushes_what_is_queued_and_counts_what_it_could_not_send(
    fake: Callable[..., Awaitable[tuple[FakeReceiver, str]]],
) -> None:
    receiver, url = await fake([204])
    registry = CollectorRegistry()
    slow = QueueConfig(batch_send_deadline=60)  # only stop makes it send
    writer = RemoteWriter(RemoteWriteConfig(url, name="ok", queue_config=slow), registry=registry)
    await writer.start()
    writer.offer([(L(__name__="m", i="1"), 1.0)], 1000)
    await writer.stop(flush_timeout=5)
    assert len(receiver.requests) == 1 and value(registry, "samples_sent_total", remote="ok") == 1

    down = f"http://127.0.0.1:{free_port()}/api/v1/write"
    writer = RemoteWriter(
        RemoteWriteConfig(down, name="down", queue_config=FAST), registry=registry
    )
    await writer.start()
    writer.offer([(L(__name__="m", i=str(i)), 1.0) for i in range(7)], 1000)
    began = time.monotonic()
    await writer.stop(flush_timeout=0.5)
    assert time.monotonic() - began < 3
    assert value(registry, "samples_dropped_total", remote="down", reason="shutdown") == 7
    assert value(registry, "samples_pending", remote="down") == 0


def _certificates(tmp: Path) -> dict[str, Path]:
    """A CA, a server certificate for rw.test and a client certificate, made with openssl."""

    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=tmp, check=True, capture_output=True)

    key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    run(
        "req",
        "-x509",
        *key,
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "1",
        "-subj",
        "/CN=orbiter test CA",
    )
    for name, cn in (("server", "rw.test"), ("client", "orbiter")):
        (tmp / f"{name}.ext").write_text(
            "subjectAltName=DNS:rw.test\n" if name == "server" else "extendedKeyUsage=clientAuth\n"
        )
        run("req", *key, "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={cn}")
        run(
            "x509",
            "-req",
            "-in",
            f"{name}.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            f"{name}.pem",
            "-days",
            "1",
            "-extfile",
            f"{name}.ext",
        )
    return {p.stem + p.suffix: p for p in tmp.iterdir()}


async def test_tls_with_a_client_certificate_and_server_name(
    tmp_path: Path, async_wait_until: Wait
) -> None:
    certs = _certificates(tmp_path)
    server_ssl = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=certs["ca.pem"])
    server_ssl.load_cert_chain(certs["server.pem"], certs["server.key"])
    server_ssl.verify_mode = ssl.CERT_REQUIRED  # no client certificate, no connection
    receiver = FakeReceiver([204])
    app = web.Application()
    app.router.add_post("/api/v1/write", receiver.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port, ssl_context=server_ssl).start()
    url = f"https://127.0.0.1:{port}/api/v1/write"
    registry = CollectorRegistry()
    try:
        tls = TLSConfig(
            ca_file=str(certs["ca.pem"]),
            cert_file=str(certs["client.pem"]),
            key_file=str(certs["client.key"]),
            server_name="rw.test",
        )
        config = RemoteWriteConfig(url, name="tls", tls_config=tls, queue_config=FAST)
        async with running(RemoteWriter(config, registry=registry)) as writer:
            writer.offer([(L(__name__="m", i="1"), 1.0)], 1000)
            await async_wait_until(lambda: value(registry, "samples_sent_total", remote="tls"))
        assert samples_of(receiver.accepted) == [("1", 1000, 1.0)]
        # the certificate is for rw.test, not 127.0.0.1: without server_name it is refused
        wrong = RemoteWriteConfig(
            url, name="wrong", tls_config=replace(tls, server_name=""), queue_config=FAST
        )
        async with running(RemoteWriter(wrong, registry=registry)) as writer:
            writer.offer([(L(__name__="m", i="1"), 2.0)], 2000)
            await async_wait_until(lambda: value(registry, "failures_total", remote="wrong") >= 2)
            assert value(registry, "samples_sent_total", remote="wrong") == 0
        assert len(receiver.requests) == 1
    finally:
        await runner.cleanup()
