"""Static scrape jobs (`satellite.scrape_configs`, Prometheus's syntax) beside the cluster's
own targets: a target on its own path, with params and basic auth, is scraped on its job's
interval with `job`, `instance` and its group's labels; one that is down is `up` 0; and
every mistake in the section is refused with its file and line."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from aiohttp import web

from orbiter.config import ConfigError, load_config
from orbiter.satellite.series import Matcher, MatchOp
from orbiter.satellite.service import Satellite
from tests.conftest import free_port
from tests.integration.test_satellite_service import FakeCluster
from tests.proctools import async_poll_until


async def _exporter() -> tuple[web.AppRunner, int, list[dict[str, str]]]:
    seen: list[dict[str, str]] = []

    async def metrics(request: web.Request) -> web.Response:
        seen.append(dict(request.query))
        if request.headers.get("Authorization") != "Basic " + base64.b64encode(b"u:p").decode():
            return web.Response(status=401)
        return web.Response(
            text='# TYPE zk_outstanding gauge\nzk_outstanding{job="inner"} 7\n',
            content_type="text/plain",
        )

    app = web.Application()
    app.router.add_get("/custom", metrics)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, port, seen


async def test_static_jobs_are_scraped_with_their_labels_path_params_and_auth(
    tmp_path: Path,
) -> None:
    runner, port, seen = await _exporter()
    down = free_port()
    (tmp_path / "orbiter.yml").write_text(f"""satellite:
  scrape_interval: 1s
  scrape_configs:
    - job_name: zookeeper
      scrape_interval: 500ms
      metrics_path: /custom
      params: {{module: [zk]}}
      basic_auth: {{username: u, password: p}}
      static_configs:
        - targets: ["127.0.0.1:{port}"]
          labels: {{env: prod}}
        - targets: ["127.0.0.1:{down}"]
""")
    config = load_config(tmp_path / "orbiter.yml").satellite
    sat = Satellite(config, FakeCluster(), tmp_path / "s")
    await sat.start()
    try:
        def series(name: str) -> dict[tuple[tuple[str, str], ...], float]:
            found = sat.tsdb.select([Matcher("__name__", MatchOp.EQUAL, name)], 0, 2**62)
            return {s.labels: s.values[-1] for s in found}

        await async_poll_until(lambda: len(series("up")) == 2, 10, "both targets scraped")
        up = {dict(lb)["instance"]: v for lb, v in series("up").items()}
        assert up == {f"127.0.0.1:{port}": 1.0, f"127.0.0.1:{down}": 0.0}
        ((labels, value),) = series("zk_outstanding").items()
        assert dict(labels) == {
            "__name__": "zk_outstanding", "job": "zookeeper", "exported_job": "inner",
            "instance": f"127.0.0.1:{port}", "env": "prod",
        }  # fmt: skip
        assert value == 7.0
        assert seen[0] == {"module": "zk"}
        await async_poll_until(lambda: len(seen) >= 4, 5, "scrapes every 500ms, not every 1s")
    finally:
        await sat.stop()
        await runner.cleanup()


@pytest.mark.parametrize(
    ("body", "line", "why"),
    [
        ("  scrape_configs: {}\n", 2, "must be a list of scrape jobs"),
        ("  scrape_configs:\n    - static_configs: []\n", 3, "needs a job_name"),
        ("  scrape_configs:\n    - {job_name: agent, static_configs: []}\n", 3,
         "is the cluster's own job"),
        ("  scrape_configs:\n    - {job_name: a, static_configs: []}\n"
         "    - {job_name: a, static_configs: []}\n", 4, "'a' is used twice"),
        ("  scrape_configs:\n    - {job_name: a}\n", 3, "needs static_configs"),
        ("  scrape_configs:\n    - {job_name: a, relabel_configs: []}\n", 3,
         "unknown key satellite.scrape_configs[0].relabel_configs"),
        ("  scrape_configs:\n    - job_name: a\n      static_configs: [{targets: [x]}]\n", 4,
         "'x' is not host:port"),
        ("  scrape_configs:\n    - job_name: a\n      scrape_timeout: 20s\n"
         "      static_configs: []\n", 3, "scrape_timeout must not exceed scrape_interval"),
        ("  scrape_configs:\n    - job_name: a\n      metrics_path: metrics\n"
         "      static_configs: []\n", 4, "metrics_path must start with /"),
        ("  scrape_configs:\n    - job_name: a\n      static_configs:\n"
         "        - {targets: ['h:1'], labels: {__x: y}}\n", 5, "not a label name"),
        ("  scrape_configs:\n    - {job_name: a, honor_labels: true, static_configs: []}\n", 3,
         "only false is supported"),
    ],
)  # fmt: skip
def test_bad_scrape_configs_say_where_and_what(
    tmp_path: Path, body: str, line: int, why: str
) -> None:
    (tmp_path / "orbiter.yml").write_text("satellite:\n" + body)
    with pytest.raises(ConfigError) as e:
        load_config(tmp_path / "orbiter.yml")
    assert f"orbiter.yml:{line}:" in str(e.value) and why in str(e.value), str(e.value)
