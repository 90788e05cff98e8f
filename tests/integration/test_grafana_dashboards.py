"""Shipped Grafana dashboards must parse and query only metrics Orbiter exports.

Grafana itself cannot be installed here; these tests check what Grafana would
load: valid dashboard JSON, valid PromQL (promql-parser) and metric names that
a real master and agent expose on /metrics.
"""

from __future__ import annotations

import asyncio
import json
import urllib.request
from pathlib import Path

import promql_parser
import pytest

from tests.smallcluster import master_and_agents

DASHBOARDS = sorted((Path(__file__).resolve().parents[2] / "grafana" / "dashboards").glob("*.json"))


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
    names = set()
    for line in text.splitlines():
        if line and not line.startswith("#"):
            names.add(line.split("{")[0].split(" ")[0])
    return names


def test_there_are_dashboards() -> None:
    assert DASHBOARDS, "grafana/dashboards/*.json is empty"


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_dashboard_is_valid_json_with_unique_panel_ids(path: Path) -> None:
    dash = json.loads(path.read_text())
    assert dash["uid"] and dash["title"]
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids))


async def test_every_dashboard_query_parses_and_uses_exported_metrics(tmp_path: Path) -> None:
    exported: set[str] = set()
    async with master_and_agents(tmp_path) as (master, (agent,)):
        for address in (master.info.http_address, agent.http_address):
            body = await asyncio.to_thread(
                lambda a=address: urllib.request.urlopen(f"http://{a}/metrics").read().decode()
            )
            exported |= _exported_names(body)
    for path in DASHBOARDS:
        for panel in json.loads(path.read_text())["panels"]:
            for target in panel["targets"]:
                names = _metric_names(promql_parser.parse(target["expr"]), set())
                assert names, f"{path.name} panel {panel['title']!r}: no metric in {target['expr']}"
                missing = names - exported
                assert not missing, f"{path.name} panel {panel['title']!r} queries {missing}"
