"""The archive's metrics pass the real `promtool check metrics` and carry the documented labels."""

from __future__ import annotations

import subprocess
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest

from orbiter.satellite.archive import Archive, ArchiveConfig, ElasticConfig, InfluxConfig


async def test_archive_metrics_pass_promtool_check_metrics(tmp_path: Path, promtool: str) -> None:
    registry = CollectorRegistry()
    cfg = ArchiveConfig(
        influxdb=InfluxConfig(url="http://127.0.0.1:1", database="d"),
        elasticsearch=ElasticConfig(hosts=("http://127.0.0.1:1",)),
    )
    archive = Archive(cfg, tmp_path, registry)
    archive.metrics.dropped.labels("influxdb", "not_finite").inc(2)
    body = generate_latest(registry).decode()
    checked = subprocess.run(
        [promtool, "check", "metrics"], input=body, capture_output=True, text=True, check=False
    )
    assert (checked.returncode, checked.stdout + checked.stderr) == (0, "")
    for line in (
        'orbiter_archive_backlog_bytes{sink="influxdb"} 0.0',
        'orbiter_archive_backlog_age_seconds{sink="elasticsearch"} 0.0',
        'orbiter_archive_sent_total{kind="samples",sink="influxdb"} 0.0',
        'orbiter_archive_sent_total{kind="events",sink="elasticsearch"} 0.0',
        'orbiter_archive_dropped_total{reason="not_finite",sink="influxdb"} 2.0',
        'orbiter_archive_failures_total{sink="elasticsearch"} 0.0',
    ):
        assert line in body
    assert (tmp_path / "archive" / "influxdb").is_dir()
    assert (tmp_path / "archive" / "elasticsearch").is_dir()
    await archive.stop()  # never started: stop still releases the spools


async def test_an_archive_rebuilt_on_the_same_registry_reuses_its_metrics(tmp_path: Path) -> None:
    registry = CollectorRegistry()
    cfg = ArchiveConfig(influxdb=InfluxConfig(url="http://127.0.0.1:1", database="d"))
    first = Archive(cfg, tmp_path, registry)
    await first.stop()
    second = Archive(cfg, tmp_path, registry)  # a config reload: no "Duplicated timeseries"
    assert second.metrics is first.metrics
    await second.stop()
