"""The archive as one of the Scraper's sinks: what Satellite scrapes lands in a real influxd.

A target serves an agent-like exposition; Satellite's Scraper scrapes it with an
`Archive` in `scraper.sinks`, and the samples, with the target's labels as tags and
`up`, are read back from InfluxDB 1.6 with InfluxQL.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from influxserver import InfluxServer
from prometheus_client import CollectorRegistry

from orbiter.satellite.archive import Archive, ArchiveConfig, InfluxConfig, SpoolConfig
from orbiter.satellite.scrape import SampleSink, Scraper, Target
from orbiter.satellite.series import labels_of
from orbiter.satellite.tsdb import TSDB

BODY = """# TYPE orbiter_host_load1 gauge
orbiter_host_load1 0.5
# TYPE orbiter_check_status gauge
orbiter_check_status{check="disk"} 2
"""


@pytest.fixture
def influx(tmp_path: Path) -> Iterator[InfluxServer]:
    server = InfluxServer(tmp_path / "influx")
    server.start()
    yield server
    server.stop()


async def test_scraped_samples_are_archived_with_the_target_labels_as_tags(
    influx: InfluxServer, tmp_path: Path, async_wait_until: Callable[..., Awaitable[Any]]
) -> None:
    async def metrics(_: web.Request) -> web.Response:
        return web.Response(text=BODY, content_type="text/plain")

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    cfg = ArchiveConfig(
        influxdb=InfluxConfig(url=influx.url, database="orbiter", flush_interval=0.05),
        spool=SpoolConfig(max_bytes=8 << 20),
    )
    archive = Archive(cfg, tmp_path / "work", CollectorRegistry())
    sink: SampleSink = archive  # what Scraper.sinks holds
    await archive.start()
    scraper = Scraper(TSDB(), interval=60, timeout=2)
    scraper.sinks.append(sink)
    await scraper.start()
    target = Target(
        f"http://127.0.0.1:{port}/metrics",
        labels_of({"job": "orbiter-agent", "instance": f"127.0.0.1:{port}", "agent": "S1"}),
    )
    try:
        scraper.sync([target])
        state = scraper.targets[target.url]
        state.task.cancel()  # drive the scrape by hand
        await scraper.scrape(state)
        await async_wait_until(lambda: influx.count("orbiter_check_status") == 1, 10)
        assert influx.columns("orbiter_check_status") == [
            "time",
            "agent",
            "check",
            "instance",
            "job",
            "value",
        ]
        (row,) = influx.points("orbiter_check_status")
        assert row[1:] == ["S1", "disk", f"127.0.0.1:{port}", "orbiter-agent", 2]
        await async_wait_until(lambda: influx.count("up") == 1, 10)
        assert influx.points("up")[0][-1] == 1
        assert (tmp_path / "work" / "archive" / "influxdb").is_dir()
    finally:
        await scraper.stop()
        await archive.stop()
        await runner.cleanup()
