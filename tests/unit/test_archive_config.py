"""satellite.archive configuration: what is accepted, and every mistake as file:line: what."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import yaml

from orbiter.satellite.archive.config import (
    DEFAULT_SPOOL_BYTES,
    ArchiveConfig,
    parse_archive,
    parse_size,
)
from orbiter.yamlreader import ConfigError, YamlReader


def parse(text: str, base: Path = Path("/etc/orbiter")) -> ArchiveConfig:
    node = yaml.compose(textwrap.dedent(text))
    return parse_archive(YamlReader("orbiter.yml"), node, base)


def test_a_full_v1_and_elasticsearch_configuration_is_read() -> None:
    cfg = parse(
        """
        influxdb:
          url: http://influx:8086/
          database: orbiter
          retention_policy: month
          username: u
          password: p
          timeout: 5s
          select: [up, '{__name__=~"orbiter_.*",job="agent"}']
          downsample: 1m
          batch_size: 1000
          flush_interval: 500ms
        elasticsearch:
          hosts: [http://es1:9200, https://es2:9200]
          index_prefix: cluster-events
          api_key: abc
          timeout: 3s
        spool:
          max_bytes: 64MiB
          directory: spool
        """
    )
    assert cfg.influxdb is not None and cfg.elasticsearch is not None
    i = cfg.influxdb
    assert (i.url, i.version, i.database, i.retention_policy) == (
        "http://influx:8086",
        1,
        "orbiter",
        "month",
    )
    assert (i.timeout, i.downsample, i.batch_size, i.flush_interval) == (5.0, 60.0, 1000, 0.5)
    assert [s.text for s in i.select] == ["up", '{__name__=~"orbiter_.*",job="agent"}']
    assert i.select[1].matches((("__name__", "orbiter_x"), ("job", "agent")))
    assert not i.select[1].matches((("__name__", "orbiter_x"), ("job", "master")))
    e = cfg.elasticsearch
    assert e.hosts == ("http://es1:9200", "https://es2:9200")
    assert (e.index_prefix, e.api_key, e.timeout) == ("cluster-events", "abc", 3.0)
    assert cfg.spool.max_bytes == 64 << 20
    assert cfg.spool.path(Path("/work")) == Path("/etc/orbiter/spool")


def test_defaults_select_everything_and_spool_under_the_work_dir() -> None:
    cfg = parse(
        """
        influxdb: {url: http://i:8086, version: 2, org: o, bucket: b, token: t}
        """
    )
    assert cfg.influxdb is not None and cfg.elasticsearch is None
    assert cfg.influxdb.select == () and cfg.influxdb.downsample == 0.0
    assert cfg.spool.max_bytes == DEFAULT_SPOOL_BYTES
    assert cfg.spool.path(Path("/w")) == Path("/w/archive")
    assert parse("elasticsearch: {hosts: [http://e:9200]}").elasticsearch.index_prefix == (  # type: ignore[union-attr]
        "orbiter-events"
    )


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("influx: {}", "archive.influx; did you mean satellite.archive.influxdb?"),
        ("influxdb: {database: d}", "orbiter.yml:2: satellite.archive.influxdb needs url"),
        (
            "influxdb: {url: 'ftp://x', database: d}",
            "orbiter.yml:2: satellite.archive.influxdb.url: 'ftp://x' is not an http(s) URL",
        ),
        ("influxdb: {url: 'http://x'}", "influxdb version 1 needs database"),
        (
            "influxdb:\n  url: http://x\n  version: 3",
            "orbiter.yml:4: satellite.archive.influxdb.version must be 1 or 2, got 3",
        ),
        (
            "influxdb:\n  url: http://x\n  version: 2\n  org: o\n  bucket: b",
            "influxdb version 2 needs token",
        ),
        (
            "influxdb:\n  url: http://x\n  version: 2\n  org: o\n  bucket: b\n  token: t\n"
            "  database: d",
            "orbiter.yml:8: satellite.archive.influxdb.database is not used with version 2",
        ),
        (
            "influxdb:\n  url: http://x\n  database: d\n  token: t",
            "orbiter.yml:5: satellite.archive.influxdb.token is not used with version 1",
        ),
        (
            "influxdb: {url: 'http://x', database: d, username: u}",
            "give username and password together",
        ),
        (
            "influxdb:\n  url: http://x\n  database: d\n  select: some",
            "orbiter.yml:5: satellite.archive.influxdb.select must be `all` or a list",
        ),
        (
            "influxdb:\n  url: http://x\n  database: d\n  select:\n    - up\n    - rate(up[5m])",
            "orbiter.yml:7: satellite.archive.influxdb.select[1]: 'rate(up[5m])' must be a "
            "plain series selector",
        ),
        (
            "influxdb:\n  url: http://x\n  database: d\n  select: ['{job=~\"(\"}']",
            "orbiter.yml:5: satellite.archive.influxdb.select[0]:",
        ),
        (
            "influxdb:\n  url: http://x\n  database: d\n  select: ['up{']",
            "is not a PromQL selector",
        ),
        (
            "influxdb:\n  url: http://x\n  database: d\n  downsample: often",
            "orbiter.yml:5: satellite.archive.influxdb.downsample: 'often' is not a duration",
        ),
        (
            "influxdb:\n  url: http://x\n  database: d\n  batch_size: 0",
            "orbiter.yml:5: satellite.archive.influxdb.batch_size must be at least 1, got 0",
        ),
        (
            "influxdb:\n  url: http://x\n  database: d\n  timeout: 0s",
            "orbiter.yml:5: satellite.archive.influxdb.timeout must be longer than 0s",
        ),
        ("elasticsearch: {}", "orbiter.yml:2: satellite.archive.elasticsearch needs hosts"),
        (
            "elasticsearch:\n  hosts: http://e:9200",
            "orbiter.yml:3: satellite.archive.elasticsearch.hosts must be a non-empty list",
        ),
        (
            "elasticsearch:\n  hosts: [http://e, es2:9200]",
            "orbiter.yml:3: satellite.archive.elasticsearch.hosts[1]: 'es2:9200' is not an",
        ),
        (
            "elasticsearch:\n  hosts: [http://e]\n  index_prefix: Events",
            "orbiter.yml:4: satellite.archive.elasticsearch.index_prefix must be lowercase",
        ),
        (
            "elasticsearch:\n  hosts: [http://e]\n  username: u\n  password: p\n  api_key: k",
            "orbiter.yml:6: satellite.archive.elasticsearch: give either api_key or",
        ),
        (
            "elasticsearch:\n  hosts: [http://e]\n  shards: 3",
            "orbiter.yml:4: unknown key satellite.archive.elasticsearch.shards",
        ),
        (
            "spool:\n  max_bytes: lots",
            "orbiter.yml:3: satellite.archive.spool.max_bytes: 'lots' is not a size",
        ),
        (
            "spool:\n  max_bytes: 1000",
            "orbiter.yml:3: satellite.archive.spool.max_bytes must be at least 1MiB, got 1000",
        ),
        ("spool:\n  dir: x", "orbiter.yml:3: unknown key satellite.archive.spool.dir"),
        ("- influxdb", "orbiter.yml:2: satellite.archive must be a mapping of"),
    ],
)
def test_a_bad_archive_configuration_names_the_file_line_and_what_was_expected(
    text: str, error: str
) -> None:
    with pytest.raises(ConfigError) as e:
        parse("\n" + text)
    assert error in str(e.value)


@pytest.mark.parametrize(
    ("text", "size"),
    [("1048576", 1 << 20), ("256MiB", 256 << 20), ("1GB", 10**9), ("1.5KiB", 1536)],
)
def test_sizes_are_bytes_or_a_number_with_a_unit(text: str, size: int) -> None:
    assert parse_size(text) == size
