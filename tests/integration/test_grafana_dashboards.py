"""Shipped Grafana dashboards and provisioning: what Grafana would load, checked without it.

Grafana itself cannot be installed here. These tests check that every dashboard is valid
JSON in a current schema, that every panel, annotation and variable names a provisioned
data source by uid and type, that PromQL parses (promql-parser) and InfluxQL measurements
and PromQL metrics are ones Orbiter exports, and that Elasticsearch queries use only the
archive's event fields. tests/integration/test_grafana_panels.py runs every query
against real data.
"""

from __future__ import annotations

import asyncio
import re
import urllib.request
from pathlib import Path

import promql_parser
import pytest
import yaml

from tests.grafana_panels import (
    DASHBOARD_DIR,
    EVENT_FIELDS,
    EVENT_KEYWORDS,
    PanelQuery,
    TimeRange,
    all_queries,
    dashboards,
    expand,
    lucene_filter,
    panels,
    provisioned_datasources,
)
from tests.proctools import async_poll_until
from tests.smallcluster import master_and_agents

DASHBOARDS = dashboards()
QUERIES = all_queries()
EXPECTED = {"cluster.json", "agents.json", "satellite.json", "history.json"}
# Series Satellite and Prometheus make themselves rather than scrape.
SYNTHETIC = {
    "ALERTS",
    "ALERTS_FOR_STATE",
    "up",
    "scrape_duration_seconds",
    "scrape_samples_scraped",
}
# Exported only by an agent with operator checks configured (agents.json's health
# checks); test_grafana_panels.py runs agents that have some.
CHECK_METRICS = {
    "orbiter_check_status",
    "orbiter_check_duration_seconds",
    "orbiter_check_last_run_timestamp_seconds",
    "orbiter_check_runs_total",
}
SAMPLE_RANGE = TimeRange(1_700_000_000_000, 1_700_003_600_000, min_interval_ms=15_000)
SAMPLE_VARS = {"agent": ["a-S1", "b-S2"]}


def _of(kind: str) -> list[PanelQuery]:
    return [q for q in QUERIES if q.source_type == kind]


def _metric_names(node: object, out: set[str]) -> set[str]:
    if isinstance(node, promql_parser.VectorSelector) and node.name:
        out.add(node.name)
    for attr in ("expr", "lhs", "rhs", "vector_selector", "param"):
        child = getattr(node, attr, None)
        if child is not None:
            _metric_names(child, out)
    for child in getattr(node, "args", None) or []:
        _metric_names(child, out)
    return out


def _exported_names(text: str) -> set[str]:
    """Sample names, and for a family declared without samples yet (a labelled counter
    nobody has incremented) the names its samples will have."""
    names = set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ", 3)
            names.add(name)
            if kind == "counter":  # declared as `x_total` or `x`, by prometheus-client version
                names.add(f"{name.removesuffix('_total')}_total")
            if kind in ("histogram", "summary"):
                names |= {f"{name}_bucket", f"{name}_sum", f"{name}_count"}
        elif line and not line.startswith("#"):
            names.add(line.split("{")[0].split(" ")[0])
    return names


def test_the_four_dashboards_are_shipped() -> None:
    assert {name for name, _ in DASHBOARDS} == EXPECTED


@pytest.mark.parametrize(("name", "dash"), DASHBOARDS, ids=[n for n, _ in DASHBOARDS])
def test_dashboard_is_current_json_with_unique_ids_and_no_overlapping_panels(
    name: str, dash: dict
) -> None:
    assert dash["uid"].startswith("orbiter-") and dash["title"]
    assert dash["schemaVersion"] >= 37
    ids = [p["id"] for p in dash["panels"]] + [
        p["id"] for row in dash["panels"] for p in row.get("panels", [])
    ]
    assert len(ids) == len(set(ids))
    cells: dict[tuple[int, int], str] = {}
    for p in dash["panels"]:
        g = p["gridPos"]
        assert g["x"] + g["w"] <= 24, p["title"]
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                assert (x, y) not in cells, f"{p['title']!r} overlaps {cells[(x, y)]!r}"
                cells[(x, y)] = p["title"]
    for panel in panels(dash):
        assert panel["targets"], f"{name}: {panel['title']!r} has no query"
        assert len({t["refId"] for t in panel["targets"]}) == len(panel["targets"])


def test_provisioning_names_the_three_data_sources_and_the_dashboards_folder() -> None:
    sources = provisioned_datasources()
    assert {uid: ds["type"] for uid, ds in sources.items()} == {
        "orbiter": "prometheus",
        "orbiter-influxdb": "influxdb",
        "orbiter-events": "elasticsearch",
    }
    assert sources["orbiter"]["url"].endswith(":5051")  # the master's HTTP port
    assert sources["orbiter-influxdb"]["jsonData"]["dbName"] == "orbiter"
    es = sources["orbiter-events"]["jsonData"]
    assert (es["index"], es["timeField"]) == ("orbiter-events-*", "@timestamp")
    provider = yaml.safe_load(
        (DASHBOARD_DIR.parent / "provisioning" / "dashboards" / "orbiter.yml").read_text()
    )
    (p,) = provider["providers"]
    assert p["type"] == "file" and p["options"]["path"]


@pytest.mark.parametrize("q", QUERIES, ids=lambda q: q.id)
def test_every_query_goes_to_a_provisioned_data_source_of_its_type(q: PanelQuery) -> None:
    sources = provisioned_datasources()
    assert q.source_uid in sources, q.id
    assert sources[q.source_uid]["type"] == q.source_type, q.id


async def test_every_promql_query_parses_and_uses_exported_metrics(tmp_path: Path) -> None:
    # Every way of sending alerts and samples configured, so that their metrics exist;
    # nothing listens at port 9.
    (tmp_path / "notifier.yml").write_text(
        "route: {receiver: hook}\n"
        "receivers: [{name: hook, webhook_configs: [{url: 'http://127.0.0.1:9/x'}]}]\n"
    )
    config = tmp_path / "orbiter.yml"
    config.write_text(
        "satellite:\n"
        "  scrape_interval: 1s\n"
        "  webhooks: [http://127.0.0.1:9/x]\n"
        "  notifier_config: notifier.yml\n"
        "  alertmanagers: [{static_configs: [{targets: ['127.0.0.1:9']}]}]\n"
        "  remote_write: [{url: 'http://127.0.0.1:9/write'}]\n"
    )
    exported: set[str] = set()
    async with master_and_agents(tmp_path, config=config) as (master, (agent,)):

        def fetch(address: str) -> str:
            return urllib.request.urlopen(f"http://{address}/metrics").read().decode()

        def with_satellite() -> str:
            # The master appends Satellite's metrics once the child has sent them.
            body = fetch(master.info.http_address)
            return body if "orbiter_satellite_" in body else ""

        body = await async_poll_until(
            lambda: asyncio.to_thread(with_satellite),
            timeout=20,
            what="Satellite's metrics on the master's /metrics",
            interval=0.1,
        )
        exported |= _exported_names(body)
        exported |= _exported_names(await asyncio.to_thread(fetch, agent.http_address))
    known = exported | SYNTHETIC | CHECK_METRICS
    for q in _of("prometheus"):
        if q.panel.startswith("variable: "):
            selector = re.fullmatch(r"label_values\((.+),\s*\w+\)", q.text)
            assert selector, q.id
            expr = selector.group(1)
        else:
            expr = expand(q.text, SAMPLE_RANGE, SAMPLE_VARS)
        names = _metric_names(promql_parser.parse(expr), set())
        assert names, f"{q.id}: no metric in {expr}"
        assert not names - known, f"{q.id} queries {names - known}"
    for q in _of("influxdb"):
        measurements = set(re.findall(r'FROM "([^"]+)"', q.text))
        assert measurements, f"{q.id}: no measurement in {q.text}"
        assert not measurements - known, f"{q.id} reads {measurements - known}"


@pytest.mark.parametrize("q", _of("elasticsearch"), ids=lambda q: q.id)
def test_every_elasticsearch_query_uses_only_the_archives_event_fields(q: PanelQuery) -> None:
    lucene_filter(q.text, [])  # parses, and names only fields of the schema
    target = q.target
    if q.panel.startswith("annotation: "):
        assert target["timeField"] == "@timestamp"
        assert {target["textField"], target["tagsField"]} <= EVENT_FIELDS
        return
    assert target["timeField"] == "@timestamp"
    for agg in target["bucketAggs"]:
        if agg["type"] == "terms":
            assert agg["field"] in EVENT_KEYWORDS, agg
        else:
            assert (agg["type"], agg["field"]) == ("date_histogram", "@timestamp"), agg


# ---------------------------------------------------------------------- the helpers' own cases

DOCS = [
    {"kind": "task_status", "state": "TASK_FAILED", "agent_id": "a-S1", "message": "launch failed"},
    {"kind": "task_status", "state": "TASK_RUNNING", "agent_id": "a-S2", "message": "running"},
    {"kind": "decision", "action": "deactivate", "outcome": "refused", "message": "budget"},
    {"kind": "alert", "alertname": "X", "labels": {"agent": "a-S1"}, "message": "X firing"},
]


@pytest.mark.parametrize(
    ("query", "kinds"),
    [
        ("*", ["task_status", "task_status", "decision", "alert"]),
        ("", ["task_status", "task_status", "decision", "alert"]),
        ("kind:decision", ["decision"]),
        ('kind:"decision"', ["decision"]),
        ("kind:task_status AND state:(TASK_FAILED OR TASK_LOST)", ["task_status"]),
        ("kind:task_status AND NOT state:TASK_FAILED", ["task_status"]),
        ("kind:task_status AND -state:TASK_RUNNING", ["task_status"]),
        ("state:TASK_*", ["task_status", "task_status"]),
        ("outcome:*", ["decision"]),
        ("labels.agent:a-S1", ["alert"]),
        ("kind:decision OR kind:alert", ["decision", "alert"]),
        ("(kind:decision OR kind:alert) AND message:budget", ["decision"]),
        ("firing", ["alert"]),
        ("kind:agent", []),
    ],
)
def test_lucene_evaluator_selects_as_query_string_does(query: str, kinds: list[str]) -> None:
    assert [d["kind"] for d in lucene_filter(query, DOCS)] == kinds


@pytest.mark.parametrize("query", ["kinds:decision", "state:(A OR B", "host.name:x"])
def test_lucene_evaluator_refuses_unknown_fields_and_broken_queries(query: str) -> None:
    with pytest.raises(ValueError):
        lucene_filter(query, DOCS)


@pytest.mark.parametrize(
    ("from_ms", "to_ms", "min_ms", "interval", "rate_interval"),
    [
        (0, 3_600_000, 15_000, "15s", "1m"),  # 1h: 3.6 s rounds to 5 s, under the scrape
        (0, 6 * 3_600_000, 15_000, "20s", "1m"),  # 6h: 21.6 s rounds to 20 s
        (0, 7 * 86_400_000, 15_000, "10m", "615s"),  # 7d: 604.8 s rounds to 10m
        (0, 60_000, 1_000, "1s", "4s"),
    ],
)
def test_intervals_follow_grafana(
    from_ms: int, to_ms: int, min_ms: int, interval: str, rate_interval: str
) -> None:
    got = TimeRange(from_ms, to_ms, min_interval_ms=min_ms).builtins()
    assert (got["__interval"], got["__rate_interval"]) == (interval, rate_interval)


def test_variables_expand_as_grafana_writes_them() -> None:
    tr = TimeRange(1_000, 61_000, min_interval_ms=1_000)
    one = expand('x{agent=~"$agent"}[$__rate_interval] $__interval_ms', tr, {"agent": ["a.1"]})
    assert one == r'x{agent=~"a\.1"}[4s] 1000'
    many = expand("/^$agent$/ AND $timeFilter [$__range]", tr, {"agent": ["a", "b"]})
    assert many == "/^(a|b)$/ AND time >= 1000ms and time <= 61000ms [60s]"
