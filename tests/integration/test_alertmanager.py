"""Satellite's Alertmanager client against the real Alertmanager 0.25 (Debian's package).

An alert fired in Satellite appears in Alertmanager's v2 API with the external labels,
the firing time as startsAt, a generatorURL that opens the expression and Prometheus's
fingerprint; it stays active for several times its endsAt horizon because Satellite
re-sends it; when Satellite resolves it, Alertmanager's own webhook says so; and an
Alertmanager that was down gets the alert again when it comes back.
"""

from __future__ import annotations

import asyncio
import time
import urllib.parse
from pathlib import Path
from typing import Any

from orbiter.alerts.alertmanager import AlertmanagerSet
from orbiter.alerts.payload import fingerprint
from orbiter.satellite.series import labels_of
from orbiter.satellite.service import Satellite, SatelliteConfig
from tests.alertmanagerserver import AlertmanagerServer
from tests.conftest import free_port
from tests.integration.test_satellite_service import FakeCluster
from tests.proctools import async_poll_until
from tests.webhooks import recording_webhook

RULES = """groups:
  - name: g
    rules:
      - alert: TestValueHigh
        expr: test_value > 0
        labels: {severity: page}
        annotations: {summary: "value is {{ $value }}"}
"""
NULL_ROUTE = {"route": {"receiver": "null"}, "receivers": [{"name": "null"}]}




def _set(sat: Satellite, value: float) -> None:
    sat.tsdb.append(labels_of({"__name__": "test_value"}), round(time.time() * 1000), value)


def _parse(t: str) -> float:
    import datetime as dt

    return dt.datetime.fromisoformat(t.replace("Z", "+00:00")).timestamp()


async def test_alerts_reach_alertmanager_stay_active_and_resolve(tmp_path: Path) -> None:
    runner, hook_url, hooked = await recording_webhook()
    am = AlertmanagerServer(
        tmp_path / "am",
        free_port(),
        {
            "route": {
                "receiver": "hook",
                "group_by": ["alertname"],
                "group_wait": "1s",
                "group_interval": "1s",
                "repeat_interval": "1h",
            },
            "receivers": [{"name": "hook", "webhook_configs": [{"url": hook_url}]}],
        },
    )
    am.start()
    sat = None
    try:
        rules = tmp_path / "r.rules.yml"
        rules.write_text(RULES)
        config = SatelliteConfig(
            rule_files=[str(rules)],
            evaluation_interval=1.0,
            external_labels={"cluster": "test"},
            external_url="http://orbiter.example:5051",
            alertmanagers=[AlertmanagerSet(static_targets=(am.address,), timeout=2.0)],
            resend_delay=1.0,
        )
        sat = Satellite(config, FakeCluster(), tmp_path / "s")
        _set(sat, 3.0)
        await sat.start()

        def firing_in_am() -> list[dict[str, Any]]:
            return [a for a in am.alerts() if a["labels"].get("alertname") == "TestValueHigh"]

        (alert,) = await async_poll_until(
            lambda: asyncio.to_thread(firing_in_am), 20, "the alert in Alertmanager"
        )
        labels = {"alertname": "TestValueHigh", "severity": "page", "cluster": "test"}
        assert alert["labels"] == labels
        assert alert["fingerprint"] == fingerprint(labels)
        assert alert["annotations"] == {"summary": "value is 3"}
        assert alert["status"]["state"] == "active"
        (mine,) = [a for s in sat.group_states.values() for r in s.alerts for a in r.values()]
        assert mine.fired_at_ms is not None
        assert abs(_parse(alert["startsAt"]) - mine.fired_at_ms / 1000) < 0.002
        url = urllib.parse.urlparse(alert["generatorURL"])
        assert (url.netloc, url.path) == ("orbiter.example:5051", "/graph")
        assert urllib.parse.parse_qs(url.query)["g0.expr"] == ["test_value > 0"]
        # endsAt is 4 s ahead (4 x max(resend_delay, interval)); it stays active for 3x that
        # only because Satellite keeps sending it.
        assert 2.0 < _parse(alert["endsAt"]) - time.time() <= 4.5
        deadline = time.monotonic() + 12.0
        while time.monotonic() < deadline:
            still = await asyncio.to_thread(firing_in_am)
            assert [a["status"]["state"] for a in still] == ["active"], still
            await asyncio.sleep(0.5)
        assert sat.alertmanager is not None
        sent = sat.registry.get_sample_value(
            "orbiter_alertmanager_notifications_sent_total",
            {"alertmanager": f"http://{am.address}/api/v2/alerts"},
        )
        assert sent is not None and sent >= 10

        await async_poll_until(
            lambda: any(m["status"] == "firing" for m in hooked), 10, "Alertmanager's webhook"
        )
        _set(sat, 0.0)

        def resolved() -> list[dict[str, Any]]:
            return [m for m in hooked if m["status"] == "resolved"]

        (message,) = await async_poll_until(resolved, 15, "the resolved message from AM")
        (gone,) = message["alerts"]
        assert gone["labels"] == labels and gone["status"] == "resolved"
        assert _parse(gone["endsAt"]) <= time.time()
        assert await asyncio.to_thread(firing_in_am) == []
    finally:
        if sat is not None:
            await sat.stop()
        am.stop()
        await runner.cleanup()


async def test_an_alertmanager_that_was_down_gets_the_alert_when_it_is_back(
    tmp_path: Path,
) -> None:
    am = AlertmanagerServer(
        tmp_path / "am",
        free_port(),
        NULL_ROUTE,
    )
    rules = tmp_path / "r.rules.yml"
    rules.write_text(RULES)
    config = SatelliteConfig(
        rule_files=[str(rules)],
        evaluation_interval=1.0,
        alertmanagers=[AlertmanagerSet(static_targets=(am.address,), timeout=1.0)],
        resend_delay=1.0,
    )
    sat = Satellite(config, FakeCluster(), tmp_path / "s")
    _set(sat, 1.0)
    await sat.start()
    try:
        target = {"alertmanager": f"http://{am.address}/api/v2/alerts"}

        def errors() -> float:
            return sat.registry.get_sample_value(
                "orbiter_alertmanager_notifications_errors_total", target
            ) or 0.0

        await async_poll_until(lambda: errors() >= 2, 15, "failed posts to a stopped AM")
        assert sat.last_evaluation > 0 and sat.evaluated is not None  # the loop goes on
        await asyncio.to_thread(am.start)
        (alert,) = await async_poll_until(
            lambda: asyncio.to_thread(am.alerts), 15, "the alert after Alertmanager came back"
        )
        assert alert["labels"]["alertname"] == "TestValueHigh"
    finally:
        await sat.stop()
        am.stop()


class SilencingCluster(FakeCluster):
    def __init__(self) -> None:
        super().__init__()
        self.current: list[Any] = []

    async def silences(self) -> list[Any]:
        return list(self.current)


async def test_silences_are_mirrored_to_alertmanager_and_expired_there(tmp_path: Path) -> None:
    from orbiter.alerts import silences

    am = AlertmanagerServer(tmp_path / "am", free_port(), NULL_ROUTE)
    am.start()
    rules = tmp_path / "r.rules.yml"
    rules.write_text(RULES)
    cluster = SilencingCluster()
    config = SatelliteConfig(
        rule_files=[str(rules)],
        evaluation_interval=1.0,
        alertmanagers=[AlertmanagerSet(static_targets=(am.address,), timeout=2.0)],
        resend_delay=1.0,
    )
    sat = Satellite(config, cluster, tmp_path / "s")
    _set(sat, 1.0)
    # Someone else's silence in the same Alertmanager: mirroring must leave it alone.
    theirs = am.post("/api/v2/silences", {
        "matchers": [{"name": "team", "value": "db", "isRegex": False, "isEqual": True}],
        "startsAt": "2026-01-01T00:00:00Z", "endsAt": "2099-01-01T00:00:00Z",
        "createdBy": "dba", "comment": "not Orbiter's"})["silenceID"]  # fmt: skip
    now = time.time()
    mine = silences.new_silence(
        "orb-1", [silences.MatcherSpec("alertname", "TestValueHigh")], now, now + 3600,
        "alice", "rack 4", now,
    )  # fmt: skip
    cluster.current = [mine]
    await sat.start()
    try:
        def mirrored() -> list[dict[str, Any]]:
            return [s for s in am.get("/api/v2/silences")
                    if s["comment"] == "rack 4 [orbiter:orb-1]" and
                    s["status"]["state"] == "active"]  # fmt: skip

        (copy,) = await async_poll_until(lambda: asyncio.to_thread(mirrored), 15, "the mirror")
        assert copy["createdBy"] == "alice"
        assert copy["matchers"] == [
            {"name": "alertname", "value": "TestValueHigh", "isRegex": False, "isEqual": True}
        ]

        def suppressed() -> bool:
            return [a["status"]["state"] for a in am.alerts()] == ["suppressed"]

        await async_poll_until(lambda: asyncio.to_thread(suppressed), 15, "AM to mute the alert")
        assert sat.muted({"alertname": "TestValueHigh"}) and not sat.muted({"alertname": "X"})

        ended = type(mine)()
        ended.CopyFrom(mine)
        ended.ends_at = ended.updated_at = time.time()
        cluster.current = [ended]

        def expired_there() -> bool:
            states = {s["id"]: s["status"]["state"] for s in am.get("/api/v2/silences")}
            return states.get(copy["id"]) == "expired" and states[theirs] == "active"

        await async_poll_until(lambda: asyncio.to_thread(expired_there), 15, "the mirror expired")
        assert len(am.get("/api/v2/silences")) == 2  # nothing posted twice
    finally:
        await sat.stop()
        am.stop()
