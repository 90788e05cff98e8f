"""The event archive through the real elasticsearch-py 9 client.

Elasticsearch itself is not installable on this machine, so these tests run
against tests/esserver.py: a small wire-compatible stand-in (the product header,
compatible-with=9 content types, bulk with per-item results honouring `_id`,
index templates, search/count). What is tested is our use of the REAL client
(AsyncElasticsearch, helpers.async_streaming_bulk) and the spool behind it, not
Elasticsearch.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from elasticsearch import AsyncElasticsearch
from esserver import COMPAT, EsServer
from prometheus_client import CollectorRegistry

from orbiter.satellite.archive import ArchiveEvent, ArchiveMetrics, ElasticConfig, ElasticSink

Wait = Callable[..., Awaitable[Any]]
DAY = 1_764_489_600.0  # 2025-11-30T08:00:00Z


@pytest.fixture
async def es() -> AsyncIterator[EsServer]:
    server = EsServer()
    await server.start()
    yield server
    await server.stop()


def make_sink(es: EsServer, spool: Path, **cfg: Any) -> tuple[ElasticSink, CollectorRegistry]:
    registry = CollectorRegistry()
    config = ElasticConfig(hosts=(es.url,), flush_interval=0.05, timeout=1.0, **cfg)
    sink = ElasticSink(config, spool, 16 << 20, ArchiveMetrics(registry))
    sink.shipper.max_backoff = 0.3
    return sink, registry


def metric(registry: CollectorRegistry, name: str, **labels: str) -> float:
    return registry.get_sample_value(name, {"sink": "elasticsearch", **labels}) or 0.0


def sent(registry: CollectorRegistry) -> float:
    return metric(registry, "orbiter_archive_sent_total", kind="events")


def event(i: int, t: float = DAY) -> ArchiveEvent:
    return ArchiveEvent(
        time=t + i,
        kind="task_status",
        message=f"task t{i} is TASK_RUNNING",
        agent_id="a1",
        framework_id="f1",
        task_id=f"t{i}",
        state="TASK_RUNNING",
        labels={"zone": "z1"},
    )


async def test_events_land_in_daily_indices_with_the_template_and_are_searchable(
    es: EsServer, tmp_path: Path, async_wait_until: Wait
) -> None:
    sink, registry = make_sink(es, tmp_path / "spool")
    await sink.start()
    sink.offer_event(event(0, DAY - 9 * 3600))  # the day before, in UTC
    sink.offer_event(event(1))
    sink.offer_event(
        ArchiveEvent(
            time=DAY + 60,
            kind="alert",
            message="OrbiterAgentDown firing",
            alertname="OrbiterAgentDown",
            severity="critical",
            agent_id="a1",
        )
    )
    await async_wait_until(lambda: sent(registry) == 3, 10, "3 events sent")
    assert sorted(es.indices) == ["orbiter-events-2025.11.29", "orbiter-events-2025.11.30"]
    template = es.templates["orbiter-events"]
    assert template["index_patterns"] == ["orbiter-events-*"]
    assert template["template"]["mappings"]["properties"]["@timestamp"] == {"type": "date"}
    assert COMPAT in es.content_types  # the v9 client's compatible-with headers
    client = AsyncElasticsearch(es.url)
    try:
        # What a Grafana annotation query asks: alerts in a time window.
        found = await client.search(
            index="orbiter-events-*",
            query={
                "bool": {
                    "filter": [
                        {"term": {"kind": "alert"}},
                        {
                            "range": {
                                "@timestamp": {
                                    "gte": int(DAY * 1000),
                                    "lte": int(DAY * 1000) + 120_000,
                                    "format": "epoch_millis",
                                }
                            }
                        },
                    ]
                }
            },
        )
        hits = found["hits"]["hits"]
        assert [h["_source"]["alertname"] for h in hits] == ["OrbiterAgentDown"]
        assert hits[0]["_source"]["@timestamp"] == "2025-11-30T08:01:00.000Z"
        assert (await client.count(index="orbiter-events-2025.11.30"))["count"] == 2
    finally:
        await client.close()
    await sink.stop()


@pytest.mark.slow
@pytest.mark.parametrize("fault", ["down", "unavailable", "garbage", "hang", "reject"])
async def test_every_event_offered_during_an_outage_arrives_exactly_once(
    fault: str, es: EsServer, tmp_path: Path, async_wait_until: Wait
) -> None:
    sink, registry = make_sink(es, tmp_path / "spool", batch_size=20)
    await sink.start()
    n = 0

    async def offer_until(check: Callable[[], bool], what: str) -> None:
        nonlocal n

        def step() -> bool:
            nonlocal n
            sink.offer_event(event(n))
            n += 1
            return check()

        await async_wait_until(step, 30, what)

    await offer_until(lambda: sent(registry) > 0, "the first events sent")
    if fault == "down":
        await es.stop()
    else:
        es.fault = fault
    failures = metric(registry, "orbiter_archive_failures_total")
    await offer_until(
        lambda: metric(registry, "orbiter_archive_failures_total") >= failures + 3,
        f"three failed attempts while the server is {fault}",
    )
    assert metric(registry, "orbiter_archive_backlog_bytes") > 0
    if fault == "down":
        await es.start()
    else:
        es.fault = ""
    await offer_until(lambda: n % 50 == 0, "more events after the outage")
    await async_wait_until(lambda: sent(registry) == n, 30, f"all {n} events sent")
    docs = es.documents("orbiter-events-*")
    assert len(docs) == n  # a re-sent batch lands on the same _ids: no duplicates
    assert sorted(d["task_id"] for d in docs) == sorted(f"t{i}" for i in range(n))
    assert metric(registry, "orbiter_archive_dropped_total", reason="rejected") == 0
    await sink.stop()


async def test_a_restarted_sink_resends_its_spool_without_duplicating_documents(
    es: EsServer, tmp_path: Path, async_wait_until: Wait
) -> None:
    sink, registry = make_sink(es, tmp_path / "spool")
    await sink.start()
    for i in range(10):
        sink.offer_event(event(i))
    await async_wait_until(lambda: sent(registry) == 10, 10)
    await sink.stop()
    # As if the acknowledgement of the last batch was lost in a crash: send it again.
    spool_files = sorted((tmp_path / "spool").glob("seg-*.log"))
    assert spool_files == []  # delivered segments are gone
    sink, registry = make_sink(es, tmp_path / "spool")
    sink.shipper.spool.append(
        sink.shipper._encode([event(i) for i in range(10)], sink.shipper.spool.next_seq - 1),
        time.time(),
    )
    await sink.start()
    await async_wait_until(lambda: sent(registry) == 10, 10, "the re-sent batch counted")
    assert len(es.documents()) == 10
    await sink.stop()


async def test_a_refused_index_template_is_logged_and_events_still_flow(
    es: EsServer, tmp_path: Path, async_wait_until: Wait, caplog: pytest.LogCaptureFixture
) -> None:
    es.fault = "template"
    sink, registry = make_sink(es, tmp_path / "spool")
    await sink.start()
    sink.offer_event(event(0))
    await async_wait_until(lambda: sent(registry) == 1, 10)
    assert es.templates == {}
    assert "index template orbiter-events was refused (HTTP 400" in caplog.text
    await sink.stop()


WRITER = textwrap.dedent(
    """
    import asyncio, sys
    from pathlib import Path
    from prometheus_client import CollectorRegistry
    from orbiter.satellite.archive import ArchiveEvent, ArchiveMetrics, ElasticConfig, ElasticSink

    url, spool, mode = sys.argv[1:4]

    async def main():
        cfg = ElasticConfig(hosts=(url,), flush_interval=0.02, batch_size=50, timeout=2)
        sink = ElasticSink(cfg, Path(spool), 16 << 20, ArchiveMetrics(CollectorRegistry()))
        sink.shipper.max_backoff = 0.2
        await sink.start()
        i = 0
        while mode == "write":
            sink.offer_event(ArchiveEvent(1764489600.0 + i, "task_status", f"t{i} running",
                                          task_id=f"t{i}", state="TASK_RUNNING"))
            i += 1
            if i % 20 == 0:
                await sink.flush()
                print("accepted", sink.shipper.accepted, flush=True)
        await asyncio.Event().wait()

    asyncio.run(main())
    """
)


@pytest.mark.slow
async def test_after_kill_9_mid_delivery_the_replay_neither_loses_nor_duplicates_events(
    es: EsServer, tmp_path: Path, async_wait_until: Wait
) -> None:
    spool = tmp_path / "spool"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, es.url, str(spool), "write"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
        text=True,
    )
    accepted = 0
    try:

        def read_accepted() -> bool:
            nonlocal accepted
            assert writer.stdout is not None
            line = writer.stdout.readline()
            if line.startswith("accepted"):
                accepted = int(line.split()[1])
            return accepted >= 3000 and len(es.documents()) > 0

        # The server takes events all along: the kill lands while batches are in flight.
        await async_wait_until(lambda: asyncio.to_thread(read_accepted), 60, "3000 accepted")
        writer.send_signal(signal.SIGKILL)
        writer.wait(10)
    finally:
        if writer.poll() is None:
            writer.kill()
    replayer = subprocess.Popen(
        [sys.executable, "-c", WRITER, es.url, str(spool), "replay"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    try:
        await async_wait_until(
            lambda: len(es.documents()) >= accepted,
            60,
            f"the {accepted} acknowledged events in the index",
        )
        # Quiet for a moment: the replay has nothing more to send.
        await async_wait_until(lambda: _drained(spool), 30, "the spool drained")
        ids = [d["task_id"] for d in es.documents()]
        assert len(ids) == len(set(ids))  # nothing twice
        assert {f"t{i}" for i in range(accepted)} <= set(ids)  # nothing acknowledged lost
    finally:
        replayer.send_signal(signal.SIGKILL)
        replayer.wait(10)


def _drained(spool: Path) -> bool:
    """No undelivered batch is left in the spool directory (all segments deleted)."""
    return not list(spool.glob("seg-*.log"))
