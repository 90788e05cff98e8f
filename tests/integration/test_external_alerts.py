"""Alerts from outside: the real Alertmanager 0.25 (Debian's) sends its webhook to the master,
Satellite (in its own process) takes an alert with `action: deactivate` and `agent` through
its safety policy, deactivates the agent with the alert's name in the audit trail, and
reactivates it once Alertmanager says the alert resolved. A body that is not Alertmanager's
is refused with what is wrong and changes nothing."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from orbiter.agent.agent import Agent
from tests.alertmanagerserver import AlertmanagerServer
from tests.conftest import free_port, get_json
from tests.proctools import async_poll_until
from tests.smallcluster import master_and_agents


def _rfc3339(t: dt.datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _post(url: str, body: Any) -> tuple[int, Any]:
    req = urllib.request.Request(
        url, json.dumps(body).encode(), {"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            text = resp.read()
            return resp.status, json.loads(text) if text else None
    except urllib.error.HTTPError as e:
        return e.code, json.load(e)


async def test_alertmanager_webhook_alerts_act_through_the_policy(tmp_path: Path) -> None:
    config = tmp_path / "orbiter.yml"
    config.write_text(
        "satellite:\n  evaluation_interval: 1s\n  scrape_interval: 1s\n"
        "  policy: {max_unhealthy_fraction: 0.5, cooldown: 1s}\n"
    )
    async with master_and_agents(tmp_path, agents=2, config=config) as (master, agents):
        http = master.info.http_address
        status, body = await asyncio.to_thread(
            _post, f"http://{http}/api/v1/satellite/alertmanager", {"alerts": "nope"}
        )
        assert status == 400 and "expected a JSON object with an alerts list" in body["error"]
        await _drive(tmp_path, http, agents[0])


async def _drive(tmp_path: Path, http: str, victim: Agent) -> None:
    am = AlertmanagerServer(
        tmp_path / "am",
        free_port(),
        {
            "route": {"receiver": "orbiter", "group_wait": "1s", "group_interval": "1s"},
            "receivers": [
                {
                    "name": "orbiter",
                    "webhook_configs": [
                        {"url": f"http://{http}/api/v1/satellite/alertmanager"}
                    ],
                }
            ],
        },
    )
    am.start()
    try:
        agent_id = victim.agent_id
        labels = {"alertname": "DiskSmart", "agent": agent_id, "action": "deactivate"}
        now = dt.datetime.now(dt.UTC)
        am.post("/api/v2/alerts", [{
            "labels": labels, "annotations": {"summary": "SMART says the disk is dying"},
            "startsAt": _rfc3339(now), "endsAt": _rfc3339(now + dt.timedelta(hours=1)),
        }])  # fmt: skip

        def mode() -> str:
            return get_json(f"http://{http}/api/v1/agents/{agent_id}")["maintenance"]["mode"]

        await async_poll_until(
            lambda: asyncio.to_thread(lambda: mode() == "deactivated"), 30, "the deactivation"
        )
        agent = await asyncio.to_thread(get_json, f"http://{http}/api/v1/agents/{agent_id}")
        assert agent["maintenance"]["by"] == "satellite"
        events = (await asyncio.to_thread(get_json, f"http://{http}/api/v1/satellite/events"))[
            "events"
        ]
        (taken,) = [e for e in events if e["outcome"] == "taken" and e["agent"] == agent_id]
        assert taken["rule"] == "DiskSmart" and taken["action"] == "deactivate"
        assert "SMART says the disk is dying" in taken["reason"]
        shown = (await asyncio.to_thread(get_json, f"http://{http}/api/v1/alerts"))["data"][
            "alerts"
        ]
        assert labels in [a["labels"] for a in shown]

        later = dt.datetime.now(dt.UTC)
        am.post("/api/v2/alerts", [{
            "labels": labels, "startsAt": _rfc3339(now), "endsAt": _rfc3339(later),
        }])  # fmt: skip
        await async_poll_until(
            lambda: asyncio.to_thread(lambda: mode() == "active"), 30, "the reactivation"
        )
        shown = (await asyncio.to_thread(get_json, f"http://{http}/api/v1/alerts"))["data"][
            "alerts"
        ]
        assert labels not in [a["labels"] for a in shown]
    finally:
        am.stop()
