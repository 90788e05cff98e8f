"""The archive: samples into InfluxDB, cluster events into Elasticsearch.

Both go through a durable on-disk spool per sink (see `spool`), so an outage
of either, or Satellite killed with kill -9, loses nothing that was accepted;
when a spool is full, new data is dropped and counted. Nothing here ever
blocks or raises on the caller's path: `Archive.offer` (a scrape's samples,
a `SampleSink`) and `Archive.offer_event` only queue.

    archive = Archive(cfg, work_dir, registry)   # cfg from parse_archive
    await archive.start()
    scraper.sinks.append(archive)
    archive.offer_event(ArchiveEvent(time.time(), "alert", "OrbiterAgentDown firing", ...))
    await archive.stop()

Spools: `<spool dir>/influxdb` and `<spool dir>/elasticsearch`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from prometheus_client import CollectorRegistry

from orbiter.satellite.archive.config import (
    ArchiveConfig,
    ElasticConfig,
    InfluxConfig,
    SpoolConfig,
    parse_archive,
)
from orbiter.satellite.archive.elastic import ElasticSink
from orbiter.satellite.archive.events import ArchiveEvent, InvalidEvent
from orbiter.satellite.archive.influx import InfluxSink
from orbiter.satellite.archive.shipper import ArchiveMetrics
from orbiter.satellite.series import Labels

__all__ = [
    "Archive",
    "ArchiveConfig",
    "ArchiveEvent",
    "ArchiveMetrics",
    "ElasticConfig",
    "ElasticSink",
    "InfluxConfig",
    "InfluxSink",
    "InvalidEvent",
    "SpoolConfig",
    "parse_archive",
]


class Archive:
    """Both sinks behind one object; a sink not configured is simply absent."""

    def __init__(self, cfg: ArchiveConfig, work_dir: Path, registry: CollectorRegistry) -> None:
        self.cfg = cfg
        self.metrics = ArchiveMetrics.of(registry)
        spool_dir = cfg.spool.path(work_dir)
        self.influx = (
            InfluxSink(cfg.influxdb, spool_dir / "influxdb", cfg.spool.max_bytes, self.metrics)
            if cfg.influxdb is not None
            else None
        )
        self.elastic = (
            ElasticSink(
                cfg.elasticsearch, spool_dir / "elasticsearch", cfg.spool.max_bytes, self.metrics
            )
            if cfg.elasticsearch is not None
            else None
        )

    def offer(self, samples: Sequence[tuple[Labels, float]], t_ms: int) -> None:
        if self.influx is not None:
            self.influx.offer(samples, t_ms)

    def offer_event(self, event: ArchiveEvent) -> None:
        if self.elastic is not None:
            self.elastic.offer_event(event)

    async def start(self) -> None:
        for sink in (self.influx, self.elastic):
            if sink is not None:
                await sink.start()

    async def stop(self) -> None:
        for sink in (self.influx, self.elastic):
            if sink is not None:
                await sink.stop()
