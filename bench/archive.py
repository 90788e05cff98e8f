"""The archive's throughput: samples into the real InfluxDB, events through the bulk path,
and how fast a spool backed up by an outage drains.

Prints (each the median of 3 runs, wall clock on a shared 2-core machine):

- samples/s from `InfluxSink.offer` to InfluxDB having answered 204 for all of them,
  into a real influxd 1.6 (Debian's, started here on free ports in a temp dir, as
  tests/influxserver.py does): once for series InfluxDB has not seen (its index grows),
  once more for the same series 15 s later; and the cost of `offer` on the scrape path;
- events/s from `ElasticSink.offer_event` through elasticsearch-py's async bulk helper
  to tests/esserver.py in a process of its own. Elasticsearch itself is not installable
  here: this measures our side and the real client, not Elasticsearch;
- spool replay: a 5-minute outage at 1,000 targets x 300 series every 15 s is 6M
  samples. Scaled down by --outage-fraction (default 1/10: 600k samples), the spool is
  filled while nothing is sent (the fill rate is printed too), then the sink starts and
  the time until the backlog is empty gives the replay rate;
- the spool alone: our segment spool beside orbiter/alerts/spool.py (JSON lines, every
  entry in memory) appending the same 5,000-line batches with one fsync each.

Run: python bench/archive.py [--samples 300000] [--events 20000] [--outage-fraction 0.1]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from prometheus_client import CollectorRegistry

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # the test servers: one way to start them

from influxserver import InfluxServer, free_port  # noqa: E402
from proctools import poll_until  # noqa: E402

from orbiter.alerts.spool import Spool  # noqa: E402
from orbiter.satellite.archive import (  # noqa: E402
    ArchiveEvent,
    ArchiveMetrics,
    ElasticConfig,
    ElasticSink,
    InfluxConfig,
    InfluxSink,
)
from orbiter.satellite.archive.influx import LineEncoder  # noqa: E402
from orbiter.satellite.archive.spool import BatchSpool  # noqa: E402

RUNS = 3
SERIES_PER_TARGET = 300
T0 = 1_764_489_600_000


def target_samples(target: int, value: float) -> list[tuple[tuple[tuple[str, str], ...], float]]:
    """One agent-like scrape: 300 series over a few metric names, with target labels."""
    out = []
    for k in range(SERIES_PER_TARGET):
        labels = (
            ("__name__", f"orbiter_agent_task_metric_{k % 12}"),
            ("agent", f"agent-{target:04d}"),
            ("instance", f"10.0.{target // 250}.{target % 250}:5051"),
            ("job", "orbiter-agent"),
            ("task_id", f"task-{k // 12}"),
        )
        out.append((labels, value + k))
    return out


async def wait(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


def sent(registry: CollectorRegistry, sink: str, kind: str) -> float:
    return (
        registry.get_sample_value("orbiter_archive_sent_total", {"sink": sink, "kind": kind}) or 0
    )


async def influx_run(influx: InfluxServer, scrapes: list[tuple[list, int]], tmp: Path) -> tuple:
    """(samples/s for new series, samples/s for known series, us per offer)."""
    influx.query('DROP DATABASE "orbiter"', method="POST")
    influx.query('CREATE DATABASE "orbiter"', method="POST")
    registry = CollectorRegistry()
    cfg = InfluxConfig(url=influx.url, database="orbiter", flush_interval=0.2, batch_size=5000)
    sink = InfluxSink(cfg, tmp, 1 << 30, ArchiveMetrics(registry))
    await sink.start()
    per_pass = sum(len(s) for s, _ in scrapes)
    rates = []
    offer_time = 0.0
    for interval in range(2):  # the first pass creates the series, the second appends
        start = time.perf_counter()
        for samples, t_ms in scrapes:
            t = time.perf_counter()
            sink.offer(samples, t_ms + interval * 15_000)
            offer_time += time.perf_counter() - t
            await asyncio.sleep(0)  # scrapes arrive one by one on the loop
        want = per_pass * (interval + 1)
        await wait(lambda w=want: sent(registry, "influxdb", "samples") >= w, 600, "sent")
        rates.append(per_pass / (time.perf_counter() - start))
    await sink.stop()
    return rates[0], rates[1], offer_time / (2 * len(scrapes)) * 1e6


async def replay_run(influx: InfluxServer, scrapes: list[tuple[list, int]], tmp: Path) -> tuple:
    influx.query('DROP DATABASE "orbiter"', method="POST")
    influx.query('CREATE DATABASE "orbiter"', method="POST")
    registry = CollectorRegistry()
    cfg = InfluxConfig(url=influx.url, database="orbiter", flush_interval=0.2, batch_size=5000)
    sink = InfluxSink(cfg, tmp, 1 << 31, ArchiveMetrics(registry), max_buffer=10_000_000)
    total = sum(len(s) for s, _ in scrapes)
    start = time.perf_counter()
    for samples, t_ms in scrapes:  # the outage: accepted into the spool, nothing sent
        sink.offer(samples, t_ms)
        if sink.shipper.pending()[0] >= 100_000:
            await sink.flush()
    await sink.flush()
    fill = total / (time.perf_counter() - start)
    backlog = sink.shipper.spool.pending_bytes
    start = time.perf_counter()
    await sink.start()  # the sink is back
    await wait(lambda: sent(registry, "influxdb", "samples") >= total, 1200, "replay")
    replay = total / (time.perf_counter() - start)
    await sink.stop()
    return fill, replay, backlog


async def events_run(url: str, n: int, tmp: Path) -> float:
    registry = CollectorRegistry()
    cfg = ElasticConfig(
        hosts=(url,), flush_interval=0.2, batch_size=500, index_prefix=f"bench-{tmp.name}"
    )
    sink = ElasticSink(cfg, tmp, 1 << 30, ArchiveMetrics(registry), max_buffer=10 * n)
    await sink.start()
    now = time.time()
    events = [
        ArchiveEvent(
            now + i * 1e-3,
            "task_status",
            f"task t{i} is TASK_RUNNING",
            agent_id=f"a{i % 1000}",
            framework_id="f1",
            task_id=f"t{i}",
            state="TASK_RUNNING",
            labels={"zone": "z1"},
        )
        for i in range(n)
    ]
    start = time.perf_counter()
    for e in events:
        sink.offer_event(e)
    await wait(lambda: sent(registry, "elasticsearch", "events") >= n, 600, "events sent")
    rate = n / (time.perf_counter() - start)
    await sink.stop()
    return rate


def spool_compare(tmp: Path, batches: int = 40) -> tuple[float, float]:
    """MB/s appending 5,000-line batches (one fsync each): segment spool, alerts spool."""
    enc = LineEncoder(batch_size=5000)
    payloads = enc([(target_samples(t, 1.0), T0) for t in range(17)], 0)[:1] * batches
    size = sum(len(p) for p, _ in payloads) / 1e6
    seg = BatchSpool(tmp / "seg", 1 << 31)
    t = time.perf_counter()
    for p in payloads:
        seg.append([p], time.time())
    seg_rate = size / (time.perf_counter() - t)
    seg.close()
    alerts = Spool(tmp / "alerts" / "spool.jsonl")
    t = time.perf_counter()
    for p, _ in payloads:
        alerts.append(p.decode())
    alerts_rate = size / (time.perf_counter() - t)
    alerts.close()
    return seg_rate, alerts_rate


def median(xs: list[float]) -> float:
    return statistics.median(xs)


async def main(args: argparse.Namespace) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="bench-archive-"))
    influx = InfluxServer(tmp / "influx")
    influx.start()
    port = free_port()
    es = subprocess.Popen(
        [sys.executable, str(ROOT / "tests" / "esserver.py"), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        targets = max(1, args.samples // SERIES_PER_TARGET)
        scrapes = [(target_samples(t, 1.0), T0 + t) for t in range(targets)]
        print(f"# samples into influxd 1.6: {targets} scrapes x {SERIES_PER_TARGET} series")
        runs = [await influx_run(influx, scrapes, tmp / f"influx-{i}") for i in range(RUNS)]
        print(f"samples/s, new series        : {median([r[0] for r in runs]):>10,.0f}")
        print(f"samples/s, known series      : {median([r[1] for r in runs]):>10,.0f}")
        print(f"offer() per 300-sample scrape: {median([r[2] for r in runs]):>10,.1f} us")

        poll_until(lambda: es.poll() is None and _up(port), 20, "the test ES server")
        url = f"http://127.0.0.1:{port}"
        print(
            f"# {args.events} events through the bulk path to tests/esserver.py "
            "(a stand-in: Elasticsearch is not installable here)"
        )
        rates = [await events_run(url, args.events, tmp / f"es-{i}") for i in range(RUNS)]
        print(f"events/s (bulk, test server) : {median(rates):>10,.0f}")

        outage = int(6_000_000 * args.outage_fraction)
        scrapes_per_interval = 1000
        intervals = max(1, outage // (scrapes_per_interval * SERIES_PER_TARGET))
        scrapes = [
            (target_samples(t, float(k)), T0 + k * 15_000)
            for k in range(intervals)
            for t in range(scrapes_per_interval)
        ]
        total = len(scrapes) * SERIES_PER_TARGET
        print(
            f"# outage replay: {total:,} samples ({total / 6e6:.2g} of the 6M a "
            "5-minute outage at 1,000 x 300 / 15s makes)"
        )
        runs = [await replay_run(influx, scrapes, tmp / f"replay-{i}") for i in range(RUNS)]
        print(f"spool fill (samples/s)       : {median([r[0] for r in runs]):>10,.0f}")
        print(f"spool replay (samples/s)     : {median([r[1] for r in runs]):>10,.0f}")
        print(f"spooled bytes per sample     : {median([r[2] for r in runs]) / total:>10,.1f}")

        cmp = [spool_compare(tmp / f"cmp-{i}") for i in range(RUNS)]
        print("# appending 5,000-line batches, one fsync each")
        print(f"segment spool (MB/s)         : {median([c[0] for c in cmp]):>10,.1f}")
        print(f"alerts JSON spool (MB/s)     : {median([c[1] for c in cmp]):>10,.1f}")
    finally:
        es.terminate()
        es.wait(10)
        influx.stop()


def _up(port: int) -> bool:
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1) as resp:
        return resp.status == 200


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=300_000)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--outage-fraction", type=float, default=0.1)
    asyncio.run(main(parser.parse_args()))
