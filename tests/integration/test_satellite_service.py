"""Satellite's round, driven by hand with a fake cluster: group intervals, reloads that
resolve removed alerts, alerts that go out even when the master is away, and a policy
that only moves on when its action happened."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from orbiter.alerts.payload import Notification
from orbiter.satellite.policy import Action, AgentSnapshot, Outcome, PolicyConfig
from orbiter.satellite.scrape import Target
from orbiter.satellite.series import Matcher, MatchOp
from orbiter.satellite.service import Satellite, SatelliteConfig

T0 = 1_800_000_000.0


class FakeCluster:
    """Three agents; `act` records calls, or fails while `refuse` is set."""

    def __init__(self) -> None:
        self.snapshots = [
            AgentSnapshot("S1", "active", "", "connected"),
            AgentSnapshot("S2", "active", "", "connected"),
            AgentSnapshot("S3", "active", "", "connected"),
        ]
        self.acted: list[tuple[str, Action]] = []
        self.refuse = False
        self.away = False

    async def targets(self) -> list[Target]:
        return []

    async def silences(self) -> list[Any]:
        return []

    async def agents(self) -> list[AgentSnapshot]:
        if self.away:
            raise ConnectionError("master away")
        return self.snapshots

    async def act(self, agent_id: str, action: Action, reason: str) -> None:
        if self.refuse:
            raise RuntimeError("master says no")
        self.acted.append((agent_id, action))


class Recorder:
    name = "recorder"

    def __init__(self) -> None:
        self.got: list[Notification] = []

    async def send(self, batch: Sequence[Notification]) -> None:
        self.got.extend(batch)

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


async def satellite(tmp_path: Path, rules: str) -> tuple[Satellite, FakeCluster, Recorder]:
    path = tmp_path / "r.rules.yml"
    path.write_text(rules)
    cluster = FakeCluster()
    config = SatelliteConfig(
        rule_files=[str(path)],
        evaluation_interval=1.0,
        policy=PolicyConfig(max_unhealthy_fraction=0.5),  # 1 of the 3 agents may go out
    )
    sat = Satellite(config, cluster, tmp_path / "s")
    sat.work_dir.mkdir(parents=True)
    sat.load_rules()
    recorder = Recorder()
    sat.notifier.receivers = [recorder]  # type: ignore[attr-defined]
    return sat, cluster, recorder


def recorded_times(sat: Satellite, name: str) -> list[float]:
    (series,) = sat.tsdb.select([Matcher("__name__", MatchOp.EQUAL, name)], 0, 2**62)
    return [t / 1000 for t in series.timestamps]


async def test_each_group_runs_on_its_own_interval(tmp_path: Path) -> None:
    sat, _, _ = await satellite(
        tmp_path,
        """groups:
  - name: slow
    interval: 5s
    rules: [{record: slow_seen, expr: vector(1)}]
  - name: fast
    rules: [{record: fast_seen, expr: vector(1)}]
""",
    )
    for dt in range(7):
        await sat.evaluate(T0 + dt)
    assert recorded_times(sat, "fast_seen") == [T0 + dt for dt in range(7)]
    assert recorded_times(sat, "slow_seen") == [T0, T0 + 5]


async def test_a_reload_that_drops_a_firing_alert_sends_it_resolved(tmp_path: Path) -> None:
    sat, _, recorder = await satellite(
        tmp_path, "groups:\n  - name: g\n    rules: [{alert: Always, expr: vector(1)}]\n"
    )
    await sat.evaluate(T0)
    assert [(n.alertname, n.status) for n in recorder.got] == [("Always", "firing")]
    (tmp_path / "r.rules.yml").write_text("groups:\n  - name: g\n    rules: []\n")
    sat.load_rules()
    await sat.evaluate(T0 + 1)
    assert [(n.alertname, n.status) for n in recorder.got][1:] == [("Always", "resolved")]
    assert recorder.got[1].ends_at is not None


async def test_a_reload_keeps_the_state_of_rules_that_stay(tmp_path: Path) -> None:
    rule = "{alert: Slow, expr: vector(1), for: 2s}"
    sat, _, recorder = await satellite(tmp_path, f"groups:\n  - name: g\n    rules: [{rule}]\n")
    await sat.evaluate(T0)
    (tmp_path / "r.rules.yml").write_text(
        f"groups:\n  - name: g\n    rules: [{{record: r, expr: vector(2)}}, {rule}]\n"
    )
    sat.load_rules()
    await sat.evaluate(T0 + 2)  # pending since T0, so it fires now rather than starting over
    assert [(n.alertname, n.status) for n in recorder.got] == [("Slow", "firing")]


async def test_alerts_go_out_even_when_the_master_is_away(tmp_path: Path) -> None:
    sat, cluster, recorder = await satellite(
        tmp_path,
        "groups:\n  - name: g\n    rules:\n"
        "      - {alert: Sick, expr: vector(1), labels: {agent: S1, action: deactivate}}\n",
    )
    cluster.away = True
    await sat.evaluate(T0)
    assert [(n.alertname, n.status) for n in recorder.got] == [("Sick", "firing")]
    assert not cluster.acted
    cluster.away = False
    await sat.evaluate(T0 + 1)
    assert cluster.acted == [("S1", Action.DEACTIVATE)]


async def test_the_policy_moves_on_only_when_its_action_happened(tmp_path: Path) -> None:
    sat, cluster, _ = await satellite(
        tmp_path,
        "groups:\n  - name: g\n    rules:\n"
        "      - {alert: Sick, expr: vector(1), labels: {agent: S1, action: deactivate}}\n",
    )
    cluster.refuse = True
    await sat.evaluate(T0)
    assert [e.outcome for e in sat.events] == [Outcome.REFUSED.value]
    assert "master says no" in sat.events[-1].reason
    assert not sat.policy_state.history  # nothing recorded as done
    cluster.refuse = False
    await sat.evaluate(T0 + 1)
    assert cluster.acted == [("S1", Action.DEACTIVATE)]
    assert [r.agent_id for r in sat.policy_state.history] == ["S1"]


async def test_retention_is_the_configured_history_or_what_the_rules_read(tmp_path: Path) -> None:
    sat, _, _ = await satellite(
        tmp_path, "groups:\n  - name: g\n    rules: [{record: r, expr: 'rate(x[15m])'}]\n"
    )
    assert sat.tsdb.retention_ms == 3_600_000  # the default hour covers 15m + 5m of lookback
    sat.config.retention = 0.0
    sat.load_rules()
    assert sat.tsdb.retention_ms == 20 * 60_000  # the rules' own need, whatever is configured
    sat.config.retention = 7200.0
    sat.load_rules()
    assert sat.tsdb.retention_ms == 7_200_000


async def test_remote_write_from_the_config_file_gets_every_scrape(tmp_path: Path) -> None:
    from orbiter.config import load_config

    (tmp_path / "orbiter.yml").write_text(
        "satellite:\n  remote_write:\n    - {url: 'http://127.0.0.1:1/api/v1/write', name: lake}\n"
    )
    config = load_config(tmp_path / "orbiter.yml").satellite
    sat = Satellite(config, FakeCluster(), tmp_path / "s")
    (writer,) = sat.remote_writers
    assert writer in sat.scraper.sinks and writer.config.name == "lake"


async def test_a_cluster_alert_resolves_with_the_time_it_started(tmp_path: Path) -> None:
    every_agent = " or ".join(
        f'label_replace(vector(1), "agent", "{a}", "", "")' for a in ("S1", "S2", "S3")
    )
    sat, _, recorder = await satellite(
        tmp_path,
        "groups:\n  - name: g\n    rules:\n      - alert: AllBad\n"
        f"        expr: '{every_agent}'\n        labels: {{action: deactivate}}\n",
    )
    await sat.evaluate(T0)
    (freeze,) = [n for n in recorder.got if n.alertname == "SatellitePanicFreeze"]
    assert freeze.status == "firing" and freeze.starts_at == T0
    (tmp_path / "r.rules.yml").write_text("groups:\n  - name: g\n    rules: []\n")
    sat.load_rules()
    await sat.evaluate(T0 + 30)
    (lifted,) = [
        n for n in recorder.got if n.alertname == "SatellitePanicFreeze" and n.status == "resolved"
    ]
    assert (lifted.starts_at, lifted.ends_at) == (T0, T0 + 30)


async def test_a_master_it_cannot_reach_is_said_once_and_rules_still_run(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """No traceback a second for a master that is down or whose certificate does not
    fit: one line when it starts, one when it ends, and evaluation goes on meanwhile."""
    sat, cluster, _ = await satellite(
        tmp_path, "groups:\n  - name: g\n    rules: [{record: seen, expr: vector(1)}]\n"
    )
    failing = True

    async def targets() -> list[Target]:
        if failing:
            raise aiohttp.ClientConnectionError("certificate is not valid for 'vm'")
        return []

    cluster.targets = targets  # type: ignore[method-assign]
    caplog.set_level(logging.INFO, logger="orbiter.satellite")
    run = asyncio.create_task(sat._run())

    async def until(check: Any, what: str) -> None:
        deadline = time.monotonic() + 15
        while not check():
            assert time.monotonic() < deadline, what
            await asyncio.sleep(0.05)

    try:
        await until(lambda: sat.last_evaluation > 0, "an evaluation")
        first = sat.last_evaluation
        await until(lambda: sat.last_evaluation > first, "a second evaluation")
        failing = False
        await until(lambda: "again" in caplog.text, "the master reachable again")
    finally:
        run.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await run
    said = [r.getMessage() for r in caplog.records if "targets from the master" in r.getMessage()]
    assert said == [
        "Satellite cannot read the cluster's targets from the master: certificate is not "
        "valid for 'vm'; retrying every second",
        "Satellite reads the cluster's targets from the master again",
    ]
    assert "satellite round failed" not in caplog.text
