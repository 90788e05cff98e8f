"""deploy/prometheus.yml: a stock Prometheus 2.42 scrapes a cluster and runs the shipped rules.

The real Prometheus (Debian's `prometheus`; `make deps`) reads the shipped file, with only
the master's address, the rule file's absolute path and 1 s intervals changed: it must find
the master and agent through the master's http_sd, label the agent's series with its id,
evaluate every shipped rule without an error (no many-to-many matching, no missing label),
and store an exposed label that a target label overrides exactly as Satellite does
(`merge_labels`), so both hold the same series.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import web

import orbiter
from orbiter.agent.agent import Agent
from orbiter.master.server import MasterServer
from orbiter.satellite.scrape import merge_labels
from orbiter.satellite.series import labels_of
from tests.conftest import free_port, get_json
from tests.smallcluster import master_and_agents

ROOT = Path(__file__).resolve().parents[2]
SHIPPED_RULES = Path(orbiter.__file__).parent / "rules" / "default.rules.yml"
CONFLICT = 'orbiter_conflict{job="j",exported_job="e",instance="i",x="1"} 1\n'


@pytest.fixture(scope="module")
def prometheus_binary() -> str:
    path = shutil.which("prometheus")
    if path is None:
        pytest.fail("prometheus not found: run `make deps` (Debian package prometheus)")
    return path


async def _conflict_metrics(_: web.Request) -> web.Response:
    return web.Response(text=CONFLICT)


async def _serve_conflict() -> tuple[web.AppRunner, str]:
    app = web.Application()
    app.router.add_get("/metrics", _conflict_metrics)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, f"127.0.0.1:{port}"


def _config(master_http: str, conflict: str) -> dict[str, Any]:
    config = yaml.safe_load((ROOT / "deploy" / "prometheus.yml").read_text())
    config["global"] = {"scrape_interval": "1s", "evaluation_interval": "1s"}
    config["rule_files"] = [str(SHIPPED_RULES)]
    (job,) = config["scrape_configs"]
    (sd,) = job["http_sd_configs"]
    sd["url"] = sd["url"].replace("127.0.0.1:5051", master_http)
    sd["refresh_interval"] = "1s"
    config["scrape_configs"].append(
        {"job_name": "conflict", "static_configs": [{"targets": [conflict]}]}
    )
    return config


async def _until(check: Any, what: str, timeout: float = 40.0) -> Any:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    last: Any = None
    while loop.time() < deadline:
        try:
            last = await asyncio.to_thread(check)
        except OSError as e:  # not listening yet
            last = e
        if last and not isinstance(last, Exception):
            return last
        await asyncio.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}; last: {last!r}")


async def test_stock_prometheus_discovers_the_cluster_and_every_shipped_rule_is_healthy(
    tmp_path: Path, prometheus_binary: str
) -> None:
    # Two agents: without an agent label on their series, `on (agent)` in the shipped
    # rules would match many-to-many and the rule would fail. The master runs Satellite
    # too, scraping the same master and agents, for the query API comparison.
    config = tmp_path / "orbiter.yml"
    config.write_text(
        "satellite:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        f"  rule_files: [{SHIPPED_RULES}]\n"
    )
    async with master_and_agents(tmp_path, agents=2, config=config) as (master, agents):
        runner, conflict = await _serve_conflict()
        try:
            await _check_prometheus(tmp_path, prometheus_binary, master, agents, conflict)
        finally:
            await runner.cleanup()


def _api(url: str, form: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
    """(HTTP status, JSON body) of a GET, or a form-encoded POST as Grafana sends."""
    data = urllib.parse.urlencode(form).encode() if form is not None else None
    try:
        with urllib.request.urlopen(url, data=data, timeout=10) as resp:
            return resp.status, json.load(resp)
    except urllib.error.HTTPError as e:
        return e.code, json.load(e)


async def _aapi(url: str, form: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
    """_api off the event loop: the master answering it runs on this very loop."""
    return await asyncio.to_thread(_api, url, form)


def _by_metric(result: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        json.dumps(r["metric"], sort_keys=True): r.get("value", r.get("values")) for r in result
    }


async def _compare_query_apis(prometheus: str, satellite: str) -> None:
    """The same queries against Prometheus's API and the master's (Satellite's): the same
    shapes, series and values, for what does not depend on when each scraped."""
    cluster = 'job=~"agent|master"'
    await _until(
        lambda: (
            _api(f"{satellite}/api/v1/query?query=up")[1]["data"]["result"]
            and len(_api(f"{satellite}/api/v1/query?query=up")[1]["data"]["result"]) == 3
        ),
        "Satellite scraping the master and both agents",
    )
    await asyncio.sleep(3)  # a few seconds of history on both sides for the range query
    now = int(time.time()) - 1
    queries = [
        f"up{{{cluster}}}",
        f"count by (job) (up{{{cluster}}})",
        "orbiter_agent_info",
        "sum by (resource) (orbiter_agent_resources_capacity)",
        "scalar(count(orbiter_agent_info)) * 2",
        'label_replace(vector(1), "x", "y", "", "")',
    ]
    for expr in queries:
        got = {}
        for name, base in (("prometheus", prometheus), ("satellite", satellite)):
            status, body = await _aapi(
                f"{base}/api/v1/query?" + urllib.parse.urlencode({"query": expr, "time": str(now)})
            )
            assert status == 200 and body["status"] == "success", (name, expr, body)
            got[name] = body["data"]
            posted = await _aapi(f"{base}/api/v1/query", {"query": expr, "time": str(now)})
            assert posted == (status, body), (name, expr, "POST differs from GET")
        p, s = got["prometheus"], got["satellite"]
        assert p["resultType"] == s["resultType"], expr
        assert p["result"], expr  # something to compare
        if p["resultType"] == "vector":
            assert _by_metric(s["result"]) == _by_metric(p["result"]), expr
        else:
            assert s["result"] == p["result"], expr
    ranged = {}
    for name, base in (("prometheus", prometheus), ("satellite", satellite)):
        status, body = await _aapi(
            f"{base}/api/v1/query_range?"
            + urllib.parse.urlencode(
                {
                    "query": f"count by (job) (up{{{cluster}}})",
                    "start": str(now - 2),
                    "end": str(now),
                    "step": "1s",
                }
            )
        )
        assert status == 200, (name, body)
        ranged[name] = _by_metric(body["data"]["result"])
    assert ranged["satellite"] == ranged["prometheus"]
    assert sorted(len(v) for v in ranged["prometheus"].values()) == [3, 3]  # two jobs, 3 steps
    series = {
        name: (await _aapi(f"{base}/api/v1/series?match[]=orbiter_agent_info"))[1]["data"]
        for name, base in (("prometheus", prometheus), ("satellite", satellite))
    }
    assert sorted(map(json.dumps, series["satellite"])) == sorted(
        map(json.dumps, series["prometheus"])
    )
    jobs = {
        name: set((await _aapi(f"{base}/api/v1/label/job/values"))[1]["data"])
        for name, base in (("prometheus", prometheus), ("satellite", satellite))
    }
    assert jobs["satellite"] == {"agent", "master"} <= jobs["prometheus"]
    for base in (prometheus, satellite):
        status, body = await _aapi(f"{base}/api/v1/query?query=sum(")
        assert (status, body["status"], body["errorType"]) == (400, "error", "bad_data"), body
        status, body = await _aapi(f"{base}/api/v1/query_range?query=up&start=10&end=5&step=1")
        assert (status, body["errorType"]) == (400, "bad_data"), body


def _rfc3339(text: str) -> float:
    import datetime as dt

    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")[:26].rstrip(".")).timestamp()


_SAME_RULE_FIELDS = ("name", "query", "type", "health", "labels", "annotations", "duration")


async def _compare_rule_apis(prometheus: str, satellite: str) -> None:
    """/api/v1/rules and /api/v1/alerts: Prometheus's shape, field for field."""
    got = {}
    for name, base in (("prometheus", prometheus), ("satellite", satellite)):
        status, body = await _aapi(f"{base}/api/v1/rules")
        assert status == 200 and body["status"] == "success", (name, body)
        got[name] = body["data"]["groups"]
    p_groups = {g["name"]: g for g in got["prometheus"]}
    s_groups = {g["name"]: g for g in got["satellite"]}
    assert s_groups.keys() == p_groups.keys()
    for gname, p in p_groups.items():
        s = s_groups[gname]
        assert s.keys() == p.keys(), gname
        assert (s["file"], s["limit"]) == (p["file"], p["limit"])
        assert _rfc3339(s["lastEvaluation"]) > time.time() - 60
        assert [r["name"] for r in s["rules"]] == [r["name"] for r in p["rules"]]
        for sr, pr in zip(s["rules"], p["rules"], strict=True):
            assert sr.keys() == pr.keys(), (sr, pr)
            for field in _SAME_RULE_FIELDS:
                assert sr.get(field) == pr.get(field), (field, sr, pr)
            assert sr["evaluationTime"] >= 0
            assert _rfc3339(sr["lastEvaluation"]) > time.time() - 60
    for kind, expected in (("record", set()), ("alert", {"alerting"})):  # no recording rule
        filtered = {}
        for name, base in (("prometheus", prometheus), ("satellite", satellite)):
            _, body = await _aapi(f"{base}/api/v1/rules?type={kind}")
            filtered[name] = [[r["type"] for r in g["rules"]] for g in body["data"]["groups"]]
        assert filtered["satellite"] == filtered["prometheus"]
        assert {t for g in filtered["satellite"] for t in g} == expected
    for base in (prometheus, satellite):
        status, body = await _aapi(f"{base}/api/v1/rules?type=nonsense")
        assert (status, body["errorType"]) == (400, "bad_data"), body
        assert body["error"] == 'invalid parameter "type": not supported value "nonsense"'
    alerts = {}
    for name, base in (("prometheus", prometheus), ("satellite", satellite)):
        _, body = await _aapi(f"{base}/api/v1/alerts")
        alerts[name] = sorted(
            (json.dumps(a["labels"], sort_keys=True), a["state"], sorted(a))
            for a in body["data"]["alerts"]
        )
    assert alerts["satellite"] == alerts["prometheus"]


async def _check_prometheus(
    tmp_path: Path, prometheus_binary: str, master: MasterServer, agents: list[Agent], conflict: str
) -> None:
    agent = agents[0]
    prom = None
    try:
        cfg = tmp_path / "prometheus.yml"
        cfg.write_text(yaml.safe_dump(_config(master.info.http_address, conflict)))
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        prom = subprocess.Popen(
            [
                prometheus_binary,
                f"--config.file={cfg}",
                f"--storage.tsdb.path={tmp_path / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=(tmp_path / "prometheus.log").open("w"),
        )

        def query(expr: str) -> list[dict[str, Any]]:
            url = f"{base}/api/v1/query?query={urllib.parse.quote(expr)}"
            return get_json(url)["data"]["result"]

        def targets_up() -> list[dict[str, Any]]:
            active = get_json(f"{base}/api/v1/targets")["data"]["activeTargets"]
            return active if len(active) == 4 and all(t["health"] == "up" for t in active) else []

        targets = await _until(targets_up, "master, agents and exporter scraped")

        def rules_evaluated() -> list[dict[str, Any]]:
            groups = get_json(f"{base}/api/v1/rules")["data"]["groups"]
            rules = [r for g in groups for r in g["rules"]]
            done = all(not r["lastEvaluation"].startswith("0001") for r in rules)
            return rules if rules and done and query("orbiter_conflict") else []

        await asyncio.sleep(2.5)  # two evaluations after the first scrapes, not before them
        rules = await _until(rules_evaluated, "every shipped rule evaluated")
        shipped = yaml.safe_load(SHIPPED_RULES.read_text())
        assert len(rules) == sum(len(g["rules"]) for g in shipped["groups"]) >= 10
        unhealthy = {r["name"]: r.get("lastError") for r in rules if r["health"] != "ok"}
        assert unhealthy == {}

        by_job: dict[str, list[dict[str, str]]] = {}
        for t in targets:
            by_job.setdefault(t["labels"]["job"], []).append(t["labels"])
        assert sorted(lb["agent"] for lb in by_job["agent"]) == sorted(a.agent_id for a in agents)
        assert by_job["master"][0]["instance"] == master.info.http_address

        (up,) = query(f'up{{agent="{agent.agent_id}"}}')
        assert up["metric"]["job"] == "agent" and up["value"][1] == "1"
        infos = query("orbiter_agent_info")
        assert sorted(i["metric"]["agent_id"] for i in infos) == sorted(a.agent_id for a in agents)
        assert all(i["metric"]["agent_id"] == i["metric"]["agent"] for i in infos)
        assert {i["metric"]["version"] for i in infos} == {orbiter.__version__}

        (stored,) = query("orbiter_conflict")
        exposed = labels_of(
            {
                "__name__": "orbiter_conflict",
                "job": "j",
                "exported_job": "e",
                "instance": "i",
                "x": "1",
            }
        )
        target = labels_of({"job": "conflict", "instance": conflict})
        assert stored["metric"] == dict(merge_labels(exposed, target))

        await _compare_query_apis(base, f"http://{master.info.http_address}")
        await _compare_rule_apis(base, f"http://{master.info.http_address}")
    finally:
        if prom is not None:
            prom.terminate()
            prom.wait(10)
