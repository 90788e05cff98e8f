"""Every query of every shipped Grafana dashboard returns data from real back ends.

Grafana cannot be installed here, so the test does what Grafana would do for each panel
target, annotation and template variable (tests/grafana_panels.py expands `$agent`,
`$__interval`, `$__rate_interval`, `$__range`, `$timeFilter`... as Grafana does) and sends
the query to a real back end:

- PromQL goes both to the real Prometheus 2.42 (deploy/prometheus.yml, 1 s intervals)
  and to Satellite's Prometheus-compatible API at the master's HTTP address, both scraping
  the same live cluster: a master with Satellite and three agents, where a framework
  launches a task that fails and one that runs, an operator deactivates an agent, one
  agent's health check is critical, a test rule file makes an alert fire (Satellite acts
  on it: a policy decision) and another stay pending; three webhooks take, fail (503)
  and refuse (400) the notifications, the built-in notifier sends to a webhook, one
  Alertmanager takes alerts and another answers 503, and a remote-write receiver takes
  samples. Every query must return a non-NaN sample on both; the panels there to show
  those events must show a value above zero (MUST_BE_POSITIVE).
- InfluxQL goes to the real influxd 1.6 (Debian's `influxdb`) started in a temp dir,
  filled by the cluster's own archive (`satellite.archive.influxdb`).
- Elasticsearch cannot be installed here: tests/esserver.py, a small wire-compatible
  server, stands in for it. The cluster's own archive (`satellite.archive.elasticsearch`,
  in the master and in Satellite) sends it the events of the run above (the failed task,
  the deactivation, the alerts, Satellite's decision), and every panel's and
  annotation's Lucene query goes to it through the real elasticsearch-py client, as a
  query_string with the dashboard's time range: each must select some documents and,
  unless it asks for everything, not all of them; terms aggregations must group by
  fields the selected documents have. The stand-in evaluates the query_string subset
  the dashboards use (tests/grafana_panels.py); not exercised: Elasticsearch's own
  query parsing and analysis, the aggregations' results and Grafana's _msearch.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import shutil
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import web
from elasticsearch import Elasticsearch

import orbiter
from orbiter.agent.agent import Agent, AgentSettings
from orbiter.agent.checks import CheckSpec
from orbiter.config import load_config
from orbiter.framework import Scheduler, SchedulerDriver, task_info
from orbiter.master.server import MasterServer, MasterSettings
from orbiter.proto import messages_pb2 as pb
from orbiter.resources import Resources
from tests.conftest import free_port
from tests.esserver import EsServer
from tests.grafana_panels import (
    PanelQuery,
    TimeRange,
    all_queries,
    expand,
    has_data,
    max_value,
    prometheus_request,
)
from tests.influxserver import InfluxServer
from tests.proctools import async_poll_until, tail

ROOT = Path(__file__).resolve().parents[2]
SHIPPED_RULES = Path(orbiter.__file__).parent / "rules" / "default.rules.yml"
QUERIES = all_queries()
PROMQL = [q for q in QUERIES if q.source_type == "prometheus"]
INFLUXQL = [q for q in QUERIES if q.source_type == "influxdb"]
LUCENE = [q for q in QUERIES if q.source_type == "elasticsearch"]
# The test cluster's scrape interval. The provisioned data sources say timeInterval 15s,
# Satellite's default; a Grafana in front of this cluster would say 1s, and so does the
# test when it works out $__interval and $__rate_interval.
SCRAPE_S = 1
ANNOTATION_STEP_S = max(
    int(q.target.get("step", "1s").rstrip("s")) for q in PROMQL if q.panel.startswith("annotation")
)

# Two test rules beside the shipped ones: one fires as soon as an agent has failed a task
# (with action: deactivate, so Satellite's policy decides about that agent), one is
# pending for every agent for an hour.
TEST_RULES = """\
groups:
  - name: grafana-test
    rules:
      - alert: GrafanaTestTaskFailed
        expr: increase(orbiter_agent_tasks_failed_total[10m]) > 0
        labels: {severity: warning, action: deactivate}
        annotations: {summary: 'agent {{ $labels.agent }} failed a task'}
      - alert: GrafanaTestPending
        expr: orbiter_agent_info
        for: 1h
        labels: {severity: info}
"""

# Panels that are there to show what the test made happen: they must show it, not zeros.
MUST_BE_POSITIVE = {
    "cluster.json:Agents out of service:A",  # the operator's deactivation (and Satellite's)
    "cluster.json:Tasks running:A",
    "cluster.json:Task failures per second:A",
    "cluster.json:Task failures per second:B",  # the failed task was a failed launch
    "agents.json:Health checks:A",  # one agent's check is critical (2)
    "satellite.json:Alerts firing:A",
    "satellite.json:Alerts pending:A",
    "satellite.json:Decisions by outcome:A",
    "satellite.json:Notifications by receiver:A",  # the webhook that answers 200
    "satellite.json:Notifications by receiver:B",  # the one that answers 503
    "satellite.json:Notifications by receiver:C",  # the one that answers 400
    "satellite.json:Built-in notifier:A",
    "satellite.json:Alertmanagers:A",  # the Alertmanager at /
    "satellite.json:Alertmanagers:B",  # the one at /down, which answers 503
    "satellite.json:Remote write:A",
}

# Panels whose series may differ between Prometheus and Satellite, and why.
FLEETING = {
    "agents.json:Tasks by state:A": "the failed task is TASK_FAILED on its agent only until "
    "the framework acknowledges the update: one of the two may never scrape that state",
}



# ---------------------------------------------------------------------- results


@dataclass
class Answer:
    status: int
    body: dict[str, Any]
    request: str

    def describe(self) -> str:
        return f"{self.request} -> HTTP {self.status}: {json.dumps(self.body)[:600]}"


@dataclass
class Live:
    """What every back end answered, by query id; gathered once for the module."""

    prometheus: dict[str, Answer] = field(default_factory=dict)
    satellite: dict[str, Answer] = field(default_factory=dict)
    influx: dict[str, Answer] = field(default_factory=dict)
    elastic: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    """Each Lucene query's hits (the documents), and under "" every document in range."""


def _call(base: str, path: str, form: dict[str, str], get: bool = False) -> Answer:
    """A form POST, as Grafana's Prometheus (httpMethod POST) and InfluxDB sources send
    queries; a GET for label values, which Prometheus serves only to GET."""
    encoded = urllib.parse.urlencode(form)
    url, data = (f"{base}{path}?{encoded}", None) if get else (f"{base}{path}", encoded.encode())
    request = f"{'GET' if get else 'POST'} {path} {form}"
    try:
        with urllib.request.urlopen(url, data=data, timeout=20) as resp:
            return Answer(resp.status, json.load(resp), request)
    except urllib.error.HTTPError as e:
        text = e.read().decode(errors="replace")
        try:
            return Answer(e.code, json.loads(text), request)
        except ValueError:
            return Answer(e.code, {"text": text}, request)


# ---------------------------------------------------------------------- the cluster


class TwoTasks(Scheduler):
    """Launches, on its first offer, a task whose launch fails and one that runs."""

    def __init__(self) -> None:
        self.launched = False
        self.statuses: list[pb.TaskStatus] = []

    async def offers(self, driver: SchedulerDriver, offers: list[pb.Offer]) -> None:
        if self.launched:
            await driver.decline([o.id for o in offers], refuse_seconds=3600)
            return
        self.launched = True
        small = Resources.parse("cpus:0.25;mem:32").to_proto()
        failing = task_info("grafana-fails", "true", small)
        # The null containerizer refuses a DOCKER container: TASK_FAILED, launch failed.
        failing.container.type = pb.ContainerInfo.DOCKER
        failing.container.docker.image = "busybox"
        running = task_info("grafana-runs", "sleep 3600", small)
        await driver.launch([offers[0].id], [failing, running])
        await driver.decline([o.id for o in offers[1:]], refuse_seconds=3600)

    def status_update(self, driver: SchedulerDriver, status: pb.TaskStatus) -> None:
        self.statuses.append(status)

    def reached(self, task_id: str, state: int) -> pb.TaskStatus | None:
        return next((s for s in self.statuses if s.task_id == task_id and s.state == state), None)


@contextlib.asynccontextmanager
async def _cluster(tmp: Path, config: Path) -> AsyncIterator[tuple[MasterServer, list[Agent]]]:
    """A master with Satellite (its own process) and three agents; agent 0 has a health
    check that passes, agent 1 one that is critical."""
    settings = MasterSettings(port=0, http_port=0, work_dir=tmp / "m")
    settings.satellite = load_config(config).satellite
    settings.config_path = str(config)
    master = MasterServer(settings)
    await master.start()
    checks = [
        [CheckSpec("grafana-ok", "true", interval=1, timeout=1)],
        [CheckSpec("grafana-critical", "exit 2", interval=1, timeout=1)],
        [],
    ]
    agents: list[Agent] = []
    try:
        for i, agent_checks in enumerate(checks):
            agent = Agent(
                AgentSettings(
                    master=master.info.grpc_address,
                    work_dir=tmp / f"a{i}",
                    resources=Resources.parse("cpus:1;mem:256"),
                    containerizer="null",
                    checks=agent_checks,
                )
            )
            await agent.start()
            agents.append(agent)
        for agent in agents:
            await asyncio.wait_for(agent.registered.wait(), 10)
        yield master, agents
    finally:
        for agent in agents:
            await agent.stop()
        await master.stop()


@dataclass
class Receivers:
    """Where Satellite sends alerts and samples in the test, all on one local server."""

    base: str
    webhooks: list[str]  # takes them (200), is down (503: retried), refuses them (400)
    received: list[Any] = field(default_factory=list)
    alertmanager_posts: int = 0
    remote_writes: int = 0


@contextlib.asynccontextmanager
async def _receivers() -> AsyncIterator[Receivers]:
    """Webhooks, an Alertmanager that takes alerts at / and one that fails at /down, and a
    remote-write receiver."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    out = Receivers(base, [f"{base}/{p}" for p in ("ok", "down", "refuse")])

    async def ok(request: web.Request) -> web.Response:
        out.received.append(await request.json())
        return web.Response(text="ok")

    async def down(_: web.Request) -> web.Response:
        return web.Response(status=503, text="down for maintenance")

    async def refuse(_: web.Request) -> web.Response:
        return web.Response(status=400, text="not for me")

    async def alertmanager(request: web.Request) -> web.Response:
        await request.read()
        out.alertmanager_posts += 1
        return web.Response(text="")

    async def remote_write(request: web.Request) -> web.Response:
        await request.read()
        out.remote_writes += 1
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/ok", ok)
    app.router.add_post("/down", down)
    app.router.add_post("/refuse", refuse)
    app.router.add_post("/api/v2/alerts", alertmanager)
    app.router.add_post("/down/api/v2/alerts", down)
    app.router.add_post("/write", remote_write)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield out
    finally:
        await runner.cleanup()


@contextlib.contextmanager
def _prometheus(tmp: Path, binary: str, master_http: str, rules: Path) -> Iterator[str]:
    """The real Prometheus on deploy/prometheus.yml, with only the master's address, the
    rule files and the intervals changed (as tests/integration/test_prometheus_deploy.py)."""
    config = yaml.safe_load((ROOT / "deploy" / "prometheus.yml").read_text())
    config["global"] = {"scrape_interval": f"{SCRAPE_S}s", "evaluation_interval": "1s"}
    config["rule_files"] = [str(SHIPPED_RULES), str(rules)]
    (job,) = config["scrape_configs"]
    (sd,) = job["http_sd_configs"]
    sd["url"] = sd["url"].replace("127.0.0.1:5051", master_http)
    sd["refresh_interval"] = "1s"
    path = tmp / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    port = free_port()
    log = tmp / "prometheus.log"
    proc = subprocess.Popen(
        [
            binary,
            f"--config.file={path}",
            f"--storage.tsdb.path={tmp / 'prometheus-data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=log.open("w"),
    )
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


# ---------------------------------------------------------------------- InfluxDB


@contextlib.contextmanager
def _influx_newer_than(base: str, t_ms: int) -> bool:
    q = f'SELECT last("value") FROM "up" WHERE time > {t_ms}ms'
    return _influx_has_data(_call(base, "/query", {"db": "orbiter", "q": q}))


def _influx_has_data(answer: Answer) -> bool:
    if answer.status != 200:
        return False
    (result,) = answer.body["results"]
    if "error" in result:
        return False
    return any(
        v is not None for s in result.get("series", []) for row in s["values"] for v in row[1:]
    )


# ---------------------------------------------------------------------- making it happen


def _query(base: str, expr: str) -> list[dict[str, Any]]:
    answer = _call(base, "/api/v1/query", {"query": expr})
    if answer.status == 503:  # Prometheus still opening its TSDB
        return []
    assert answer.status == 200, answer.describe()
    return answer.body["data"]["result"]


async def _on_both(bases: Sequence[str], expr: str, what: str = "", timeout: float = 60) -> None:
    """Wait until `expr` has a result on every back end."""
    for base in bases:
        await async_poll_until(
            lambda b=base: asyncio.to_thread(_query, b, expr),
            timeout=timeout,
            what=f"{what} ({expr} at {base})",
            interval=0.5,
        )


def _deactivate(master_http: str, agent_id: str) -> int:
    req = urllib.request.Request(
        f"http://{master_http}/api/v1/agents/{agent_id}/deactivate",
        data=json.dumps({"reason": "grafana dashboards test"}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        return resp.status


async def _gather(tmp: Path, prometheus_bin: str) -> Live:
    rules = tmp / "grafana-test.rules.yml"
    rules.write_text(TEST_RULES)
    live = Live()
    async with contextlib.AsyncExitStack() as stack:
        rx = await stack.enter_async_context(_receivers())
        address = rx.base.removeprefix("http://")
        (tmp / "notifier.yml").write_text(
            yaml.safe_dump(
                {
                    "route": {"receiver": "grafana", "group_wait": "1s", "group_interval": "1s"},
                    "receivers": [
                        {"name": "grafana", "webhook_configs": [{"url": f"{rx.base}/ok"}]}
                    ],
                }
            )
        )
        influx_server = InfluxServer(tmp / "influxdb")
        await asyncio.to_thread(influx_server.start)
        stack.callback(influx_server.stop)
        influx = influx_server.url
        es = EsServer()
        await es.start()
        stack.push_async_callback(es.stop)
        config = tmp / "orbiter.yml"
        config.write_text(
            yaml.safe_dump(
                {
                    "satellite": {
                        "scrape_interval": f"{SCRAPE_S}s",
                        "evaluation_interval": "1s",
                        "rule_files": [str(SHIPPED_RULES), str(rules)],
                        "webhooks": rx.webhooks,
                        "notifier_config": "notifier.yml",
                        "alertmanagers": [
                            {"static_configs": [{"targets": [address]}]},
                            {"static_configs": [{"targets": [address]}], "path_prefix": "/down"},
                        ],
                        "resend_delay": "1s",
                        "remote_write": [
                            {
                                "url": f"{rx.base}/write",
                                "name": "grafana",
                                "queue_config": {"batch_send_deadline": "1s"},
                            }
                        ],
                        # Room for the operator's deactivation and Satellite's own.
                        "policy": {"max_unhealthy_fraction": 0.7},
                        "archive": {
                            "influxdb": {
                                "url": influx,
                                "version": 1,
                                "database": "orbiter",
                                "flush_interval": "500ms",
                            },
                            "elasticsearch": {"hosts": [es.url], "flush_interval": "200ms"},
                        },
                    }
                }
            )
        )
        t0 = time.time()
        master, agents = await stack.enter_async_context(_cluster(tmp, config))
        master_http = master.info.http_address
        satellite = f"http://{master_http}"
        prometheus = stack.enter_context(_prometheus(tmp, prometheus_bin, master_http, rules))
        bases = (prometheus, satellite)
        # Every agent scraped before the task fails: a counter first seen at 1 has no increase.
        try:
            await _on_both(bases, 'count(up{job="agent"} == 1) == 3', "every agent scraped")
        except AssertionError as e:
            raise AssertionError(f"{e}\nprometheus.log:\n{tail(tmp / 'prometheus.log')}") from None

        scheduler = TwoTasks()
        driver = SchedulerDriver(
            scheduler, pb.FrameworkInfo(name="grafana"), master.info.grpc_address
        )
        run = asyncio.create_task(driver.run())
        stack.push_async_callback(_stop_driver, driver, run)
        failed = await async_poll_until(
            lambda: scheduler.reached("grafana-fails", pb.TASK_FAILED), 20, "the task to fail"
        )
        await async_poll_until(
            lambda: scheduler.reached("grafana-runs", pb.TASK_RUNNING), 20, "the task to run"
        )
        other = next(a.agent_id for a in agents if a.agent_id != failed.agent_id)
        assert await asyncio.to_thread(_deactivate, master_http, other) == 200

        await _on_both(bases, 'ALERTS{alertname="GrafanaTestTaskFailed",alertstate="firing"}')
        firing_since = time.time()
        await _on_both(bases, 'ALERTS{alertname="GrafanaTestPending",alertstate="pending"}')
        await _on_both(bases, 'orbiter_master_agents_maintenance{mode="deactivated"} > 0')
        await _on_both(bases, "orbiter_satellite_decisions_total > 0", "a policy decision")
        for outcome in ("sent", "failed", "dropped"):
            expr = f"orbiter_alerts_notifications_{outcome}_total > 0"
            await _on_both(bases, expr, f"a notification {outcome}")
        await _on_both(bases, 'orbiter_check_status{check="grafana-critical"} == 2')
        await _on_both(bases, 'orbiter_satellite_alerts{state="firing"} > 0')
        for expr in (
            "orbiter_notifier_notifications_total > 0",
            "orbiter_alertmanager_notifications_sent_total > 0",
            "orbiter_alertmanager_notifications_errors_total > 0",
            "orbiter_remote_write_samples_sent_total > 0",
        ):
            await _on_both(bases, expr)
        assert rx.received and rx.alertmanager_posts and rx.remote_writes
        # A rate window (4 scrapes) of samples after all that, on both sides.
        after = time.time() + 4 * SCRAPE_S
        await _on_both(bases, f'timestamp(up{{job="master"}}) > {after:.3f}', "4 more scrapes")

        # An annotation's range query has its own step, and Grafana aligns the range's end
        # down to it: the alert must be firing at a step before the end.
        await async_poll_until(
            lambda: time.time() // ANNOTATION_STEP_S * ANNOTATION_STEP_S > firing_since,
            timeout=ANNOTATION_STEP_S + 5,
            what="an annotation step while the alert fires",
            interval=0.2,
        )
        tr = TimeRange(int(t0 * 1000), int(time.time() * 1000), min_interval_ms=SCRAPE_S * 1000)
        for base, out in ((prometheus, live.prometheus), (satellite, live.satellite)):
            await asyncio.to_thread(_run_promql, base, tr, out)

        # The archive ships in the background: wait until it has written past the range.
        await async_poll_until(
            lambda: asyncio.to_thread(_influx_newer_than, influx, tr.to_ms),
            timeout=30,
            what="the archive writing past the time range into InfluxDB",
            interval=0.5,
        )
        await asyncio.to_thread(_run_influxql, influx, tr, live.influx)

        def archived_events() -> bool:
            docs = es.documents("orbiter-events-*")
            kinds = {d["kind"] for d in docs}
            failed = any(d.get("state") == "TASK_FAILED" for d in docs)
            return failed and {"task_status", "agent", "maintenance", "alert", "decision"} <= kinds

        await async_poll_until(archived_events, 30, "every kind of event in Elasticsearch")
        tr = TimeRange(int(t0 * 1000), int(time.time() * 1000), min_interval_ms=SCRAPE_S * 1000)
        await asyncio.to_thread(_run_lucene, es.url, tr, live.elastic)
    return live


def _run_lucene(base: str, tr: TimeRange, out: dict[str, list[dict[str, Any]]]) -> None:
    """Each Lucene query in the range, as Grafana filters it, through the real client."""
    client = Elasticsearch(base)
    try:
        for qid, text in [("", "*"), *((q.id, q.text) for q in LUCENE)]:
            window = {"gte": tr.from_ms, "lte": tr.to_ms, "format": "epoch_millis"}
            query = {"query_string": {"query": text or "*"}}
            found = client.search(
                index="orbiter-events-*",
                query={"bool": {"filter": [query, {"range": {"@timestamp": window}}]}},
                size=10_000,
            )
            out[qid] = [hit["_source"] for hit in found["hits"]["hits"]]
    finally:
        client.close()


async def _stop_driver(driver: SchedulerDriver, run: asyncio.Task[str]) -> None:
    driver.stop()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await asyncio.wait_for(run, 5)


def _run_promql(base: str, tr: TimeRange, out: dict[str, Answer]) -> None:
    """Every PromQL query, with `$agent` set to "All" of what the back end itself lists."""
    variables: dict[str, list[str]] = {}
    for q in PROMQL:
        if q.panel.startswith("variable: "):
            path, form = prometheus_request(q, tr, {})
            out[q.id] = answer = _call(base, path, form, get=True)
            variables[q.target["name"]] = answer.body.get("data") or ["no-such-agent"]
    for q in PROMQL:
        if not q.panel.startswith("variable: "):
            path, form = prometheus_request(q, tr, variables)
            out[q.id] = _call(base, path, form)


def _run_influxql(base: str, tr: TimeRange, out: dict[str, Answer]) -> None:
    variables: dict[str, list[str]] = {}
    for q in INFLUXQL:
        if q.panel.startswith("variable: "):
            out[q.id] = answer = _call(base, "/query", {"db": "orbiter", "q": q.text})
            (result,) = answer.body["results"]
            values = [row[1] for s in result.get("series", []) for row in s["values"]]
            variables[q.target["name"]] = values or ["no-such-agent"]
    for q in INFLUXQL:
        if not q.panel.startswith("variable: "):
            text = expand(q.text, tr, variables)
            out[q.id] = _call(base, "/query", {"db": "orbiter", "q": text, "epoch": "ms"})


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Live:
    prometheus_bin = shutil.which("prometheus")
    if prometheus_bin is None:
        pytest.fail("prometheus not found: run `make deps` (Debian package prometheus)")
    influxd_bin = shutil.which("influxd")
    if influxd_bin is None:
        pytest.fail("influxd not found: run `make deps` (Debian package influxdb)")
    # The master, agents and framework run on this loop; the queries go from threads.
    return asyncio.run(_gather(tmp_path_factory.mktemp("grafana"), prometheus_bin))


# ---------------------------------------------------------------------- the tests


@pytest.mark.parametrize("backend", ["prometheus", "satellite"])
@pytest.mark.parametrize("q", PROMQL, ids=lambda q: q.id)
def test_promql_panel_returns_data(live: Live, q: PanelQuery, backend: str) -> None:
    answer = getattr(live, backend)[q.id]
    assert answer.status == 200 and answer.body["status"] == "success", answer.describe()
    assert has_data(answer.body["data"]), f"no data: {answer.describe()}"
    if q.id in MUST_BE_POSITIVE:
        assert max_value(answer.body["data"]) > 0, f"only zeros: {answer.describe()}"


def _series(answer: Answer) -> list[str]:
    data = answer.body["data"]
    if isinstance(data, list):  # label values
        return sorted(data)
    return sorted(json.dumps(r["metric"], sort_keys=True) for r in data["result"])


@pytest.mark.parametrize("q", PROMQL, ids=lambda q: q.id)
def test_promql_panel_draws_the_same_series_from_satellite_as_from_prometheus(
    live: Live, q: PanelQuery
) -> None:
    """The same legend entries whichever data source Grafana uses (values differ: the two
    scrape at different moments), but for series that last less than a scrape or two."""
    satellite, prometheus = _series(live.satellite[q.id]), _series(live.prometheus[q.id])
    if q.id in FLEETING:
        assert set(satellite) & set(prometheus), FLEETING[q.id]
    else:
        assert satellite == prometheus


def _legend_labels(q: PanelQuery) -> set[str]:
    """Labels a target's legend or an annotation's title shows (an annotation's text and
    tags may name labels only some alerts have, such as `agent`)."""
    text = q.target.get("legendFormat", "") + q.target.get("titleFormat", "")
    return set(re.findall(r"\{\{\s*(\w+)\s*\}\}", text))


@pytest.mark.parametrize("backend", ["prometheus", "satellite"])
@pytest.mark.parametrize("q", [q for q in PROMQL if _legend_labels(q)], ids=lambda q: q.id)
def test_every_label_a_legend_shows_is_on_every_series(
    live: Live, q: PanelQuery, backend: str
) -> None:
    """A legend `{{agent}}` on a series without `agent` would read as a blank."""
    wanted = _legend_labels(q)
    for series in getattr(live, backend)[q.id].body["data"]["result"]:
        assert wanted <= set(series["metric"]), (wanted, series["metric"])


def test_must_be_positive_names_panels_that_exist() -> None:
    assert not MUST_BE_POSITIVE - {q.id for q in PROMQL}


def test_the_agent_variable_lists_every_agent_on_both(live: Live) -> None:
    (var,) = [q for q in PROMQL if q.panel == "variable: agent"]
    listed = {b: sorted(getattr(live, b)[var.id].body["data"]) for b in ("prometheus", "satellite")}
    assert len(listed["satellite"]) == 3 and listed["prometheus"] == listed["satellite"]


@pytest.mark.parametrize("q", INFLUXQL, ids=lambda q: q.id)
def test_influxql_panel_returns_data(live: Live, q: PanelQuery) -> None:
    answer = live.influx[q.id]
    assert _influx_has_data(answer), answer.describe()


def test_the_history_agent_variable_lists_every_agent(live: Live) -> None:
    (var,) = [q for q in INFLUXQL if q.panel == "variable: agent"]
    (result,) = live.influx[var.id].body["results"]
    assert len([row[1] for s in result["series"] for row in s["values"]]) == 3


@pytest.mark.parametrize("q", LUCENE, ids=lambda q: q.id)
def test_elasticsearch_query_selects_archived_events(live: Live, q: PanelQuery) -> None:
    everything = live.elastic[""]
    selected = live.elastic[q.id]
    assert selected, f"{q.id}: {q.text!r} selects no event of {len(everything)}"
    if q.text.strip() not in ("", "*"):
        assert len(selected) < len(everything), f"{q.id}: {q.text!r} selects every event"
    for agg in q.target.get("bucketAggs", []):
        if agg["type"] == "terms":
            assert any(agg["field"] in d for d in selected), (q.id, agg["field"])
