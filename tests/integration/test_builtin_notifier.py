"""The built-in notifier inside Satellite, configured with an Alertmanager-format file
(`satellite.notifier_config`): alerts fired by Satellite's rules are routed, grouped and
sent as Alertmanager would (critical ones to a webhook grouped by agent, the rest by email
over a real SMTP server, aiosmtpd), a silence from the registry mutes one, a resolution is
sent, and a bad routing file stops the start with its file and line."""

from __future__ import annotations

import email
import email.policy
import time
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from orbiter.alerts import silences
from orbiter.config import ConfigError, load_config
from orbiter.satellite.series import labels_of
from orbiter.satellite.service import Satellite
from tests.conftest import free_port
from tests.integration.test_alertmanager import SilencingCluster
from tests.proctools import async_poll_until
from tests.webhooks import recording_webhook

RULES = """groups:
  - name: g
    rules:
      - alert: DiskDying
        expr: disk_errors > 0
        labels: {severity: critical}
        annotations: {summary: "{{ $labels.agent }} has {{ $value }} disk errors"}
      - alert: LoadHigh
        expr: load > 4
        labels: {severity: warning}
"""


def routing(hook: str, smtp_port: int) -> str:
    return f"""global:
  smtp_smarthost: 127.0.0.1:{smtp_port}
  smtp_from: orbiter@example.com
  smtp_require_tls: false
route:
  receiver: mail
  group_by: [alertname]
  group_wait: 200ms
  group_interval: 500ms
  repeat_interval: 1h
  routes:
    - matchers: ['severity="critical"']
      receiver: pager
      group_by: [agent]
receivers:
  - name: pager
    webhook_configs: [{{url: "{hook}"}}]
  - name: mail
    email_configs: [{{to: ops@example.com}}]
"""


class Mailbox:
    def __init__(self) -> None:
        self.messages: list[email.message.EmailMessage] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.messages.append(msg)  # type: ignore[arg-type]
        return "250 OK"




def _set(sat: Satellite, name: str, value: float, **labels: str) -> None:
    sat.tsdb.append(labels_of({"__name__": name, **labels}), round(time.time() * 1000), value)


async def test_satellite_routes_groups_silences_and_resolves_like_alertmanager(
    tmp_path: Path,
) -> None:
    runner, hook, hooked = await recording_webhook()
    box = Mailbox()
    smtp = Controller(box, hostname="127.0.0.1", port=free_port())
    smtp.start()
    (tmp_path / "r.rules.yml").write_text(RULES)
    (tmp_path / "alertmanager.yml").write_text(routing(hook, smtp.port))
    (tmp_path / "orbiter.yml").write_text(
        "satellite:\n  rule_files: [r.rules.yml]\n  evaluation_interval: 1s\n"
        "  notifier_config: alertmanager.yml\n  external_url: http://orbiter.example\n"
    )
    config = load_config(tmp_path / "orbiter.yml").satellite
    cluster = SilencingCluster()
    now = time.time()
    quiet = [silences.MatcherSpec("agent", "S3")]
    cluster.current = [
        silences.new_silence("s1", quiet, now, now + 600, "alice", "S3 is being replaced", now)
    ]
    sat = Satellite(config, cluster, tmp_path / "s")
    for agent in ("S1", "S2", "S3"):
        _set(sat, "disk_errors", 2.0, agent=agent)
    _set(sat, "load", 9.0, agent="S1")
    await sat.start()
    try:
        def pages() -> dict[str, dict[str, Any]]:
            return {m["groupLabels"]["agent"]: m for m in hooked}

        await async_poll_until(lambda: len(pages()) >= 2, 15, "a page per agent")
        by_agent = pages()
        assert set(by_agent) == {"S1", "S2"}, "S3 is silenced"
        page = by_agent["S1"]
        assert page["receiver"] == "pager" and page["status"] == "firing"
        assert page["groupKey"] == '{}/{severity="critical"}:{agent="S1"}'
        (alert,) = page["alerts"]
        assert alert["labels"] == {"alertname": "DiskDying", "agent": "S1", "severity": "critical"}
        assert alert["annotations"] == {"summary": "S1 has 2 disk errors"}
        assert alert["generatorURL"].startswith("http://orbiter.example/graph?g0.expr=")
        assert page["externalURL"] == "http://orbiter.example"

        (mail,) = await async_poll_until(lambda: box.messages, 15, "the warning by email")
        assert mail["To"] == "ops@example.com"
        assert mail["Subject"].startswith("[FIRING:1] LoadHigh")

        _set(sat, "disk_errors", 0.0, agent="S1")

        def resolved() -> list[dict[str, Any]]:
            return [m for m in hooked if m["status"] == "resolved"]

        (done,) = await async_poll_until(resolved, 15, "S1's page resolved")
        assert done["groupLabels"] == {"agent": "S1"}
        assert [a["status"] for a in done["alerts"]] == ["resolved"]
        assert len([m for m in hooked if m["groupLabels"] == {"agent": "S2"}]) == 1, (
            "an unchanged group is not sent again before repeat_interval"
        )
    finally:
        await sat.stop()
        smtp.stop()
        await runner.cleanup()


def test_a_bad_routing_file_stops_the_start_with_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "alertmanager.yml").write_text(
        "route:\n  receiver: nobody\nreceivers:\n  - name: somebody\n"
    )
    (tmp_path / "orbiter.yml").write_text("satellite:\n  notifier_config: alertmanager.yml\n")
    with pytest.raises(ConfigError) as e:
        load_config(tmp_path / "orbiter.yml")
    text = str(e.value)
    assert text.startswith(f"{tmp_path / 'orbiter.yml'}:2: satellite.notifier_config:")
    assert "alertmanager.yml:2" in text and "nobody" in text, text
