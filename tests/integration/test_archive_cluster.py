"""The archive on a running cluster: the master and its Satellite process configured with
`satellite.archive` send every scraped sample to the real InfluxDB (Debian's influxd 1.6)
and the events of both processes to Elasticsearch: a task's status updates and an
operator's deactivation from the master, an alert and Satellite's decision from Satellite.

Elasticsearch cannot be installed here: tests/esserver.py, a small wire-compatible server,
stands in for it and the real elasticsearch-py client talks to it."""

from __future__ import annotations

import asyncio
import json
import urllib.request
from pathlib import Path
from typing import Any

from orbiter.framework.execute import ExecuteSpec, execute
from tests.esserver import EsServer
from tests.influxserver import InfluxServer
from tests.proctools import async_poll_until
from tests.smallcluster import master_and_agents

RULES = """groups:
  - name: archive
    rules:
      - alert: ArchiveProbe
        expr: vector(1)
        labels: {severity: info}
        annotations: {summary: "the archive sees alerts"}
"""


def _post(url: str, body: Any) -> Any:
    req = urllib.request.Request(
        url, json.dumps(body).encode(), {"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.load(resp)


async def test_samples_reach_influxdb_and_events_reach_elasticsearch(tmp_path: Path) -> None:
    influx = InfluxServer(tmp_path / "influx")
    await asyncio.to_thread(influx.start)
    es = EsServer()
    await es.start()
    (tmp_path / "r.rules.yml").write_text(RULES)
    (tmp_path / "orbiter.yml").write_text(f"""satellite:
  rule_files: [r.rules.yml]
  scrape_interval: 1s
  evaluation_interval: 1s
  archive:
    influxdb: {{url: "{influx.url}", version: 1, database: orbiter, flush_interval: 200ms}}
    elasticsearch: {{hosts: ["{es.url}"], flush_interval: 200ms}}
""")
    runner: asyncio.Task[int] | None = None
    try:
        async with master_and_agents(tmp_path, agents=1, config=tmp_path / "orbiter.yml") as (
            master,
            agents,
        ):
            http = master.info.http_address
            probe = ExecuteSpec("probe", "sleep 1000")
            runner = asyncio.create_task(
                execute(probe, master.info.grpc_address, out=lambda _: None)
            )

            def events(kind: str) -> list[dict[str, Any]]:
                return [d for d in es.documents("orbiter-events-*") if d["kind"] == kind]

            (task,) = await async_poll_until(
                lambda: [e for e in events("task_status") if e["state"] == "TASK_RUNNING"],
                20, "the task's RUNNING update in Elasticsearch",
            )  # fmt: skip
            assert task["task_id"] == "probe-0" and task["agent_id"] == agents[0].agent_id
            assert task["framework_id"] and task["@timestamp"].endswith("Z")

            agent_id = agents[0].agent_id
            await asyncio.to_thread(
                _post, f"http://{http}/api/v1/agents/{agent_id}/deactivate",
                {"reason": "disk swap"},
            )  # fmt: skip
            (done,) = await async_poll_until(
                lambda: events("maintenance"), 20, "the deactivation in Elasticsearch"
            )
            assert done["agent_id"] == agent_id and done["principal"] == "operator"
            assert "disk swap" in done["message"]

            (alert,) = await async_poll_until(
                lambda: events("alert"), 20, "the alert in Elasticsearch"
            )
            assert alert["alertname"] == "ArchiveProbe" and alert["state"] == "firing"
            assert alert["severity"] == "info" and alert["labels"]["severity"] == "info"

            def archived() -> int:
                return influx.count("up")

            await async_poll_until(lambda: asyncio.to_thread(archived), 20, "samples in InfluxDB")
            def jobs() -> set[str]:
                job = influx.columns("up").index("job")  # columns grow as tags appear
                return {row[job] for row in influx.points("up")}

            await async_poll_until(
                lambda: asyncio.to_thread(lambda: jobs() == {"agent", "master"}), 10,
                "both jobs' up series in InfluxDB",
            )  # fmt: skip
            assert influx.count("orbiter_host_memory_total_bytes") > 0
            template = es.templates
            assert any("orbiter-events-*" in json.dumps(t) for t in template.values())
    finally:
        if runner is not None:
            runner.cancel()
        await es.stop()
        await asyncio.to_thread(influx.stop)
