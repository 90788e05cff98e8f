"""Satellite's state in ZooKeeper: what a new leader's Satellite finds there.

Two Satellites, each with its own ZooKeeper session and writer id (two masters
on two machines), share `/orbiter/satellite` through `ZkBlobStore`, as
`MasterServer` wires it with `--zk`. The first evaluates and acts, then "dies";
the second, built on the same znode, resumes a pending `for` where the first
left it, does not repeat the action, and fences the first. A real ZooKeeper
(tests/zkserver.py); the clock is passed to `evaluate`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from kazoo.client import KazooClient

from orbiter.satellite.policy import SATELLITE, Action, AgentSnapshot, PolicyConfig
from orbiter.satellite.rules import AlertState
from orbiter.satellite.scrape import Target
from orbiter.satellite.series import labels_of
from orbiter.satellite.service import Satellite, SatelliteConfig
from orbiter.zk import claim_root, connect, parse_zk_url
from orbiter.zkstore import ZkBlobStore

T0 = 1_800_000_000.0
PATH = "/orbiter/satellite"
RULES = """groups:
  - name: g
    rules:
      - alert: Slow
        expr: sick == 1
        for: 1m
      - alert: Sick
        expr: vector(1)
        labels: {agent: S1, action: deactivate}
"""


class Cluster:
    """Two agents; `act` applies an action as the master would, and remembers it."""

    def __init__(self) -> None:
        self.agents_by_id = {i: AgentSnapshot(i, "active", "", "connected") for i in ("S1", "S2")}
        self.acted: list[tuple[str, Action]] = []

    async def targets(self) -> list[Target]:
        return []

    async def silences(self) -> list[Any]:
        return []

    async def agents(self) -> list[AgentSnapshot]:
        return list(self.agents_by_id.values())

    async def act(self, agent_id: str, action: Action, reason: str) -> None:
        self.acted.append((agent_id, action))
        mode = "deactivated" if action is Action.DEACTIVATE else "active"
        self.agents_by_id[agent_id] = replace(
            self.agents_by_id[agent_id], maintenance=mode, taken_out_by=SATELLITE
        )


@pytest.fixture
def sessions(zookeeper) -> Iterator[list[KazooClient]]:  # type: ignore[no-untyped-def]
    address = parse_zk_url(zookeeper.url())
    clients = [connect(address, session_timeout=5.0) for _ in range(2)]
    claim_root(clients[0], address.path)
    yield clients
    for client in clients:
        client.stop()
        client.close()


async def satellite(
    tmp_path: Path, client: KazooClient, writer: str, cluster: Cluster
) -> Satellite:
    rules = tmp_path / "r.rules.yml"
    rules.write_text(RULES)
    config = SatelliteConfig(
        rule_files=[str(rules)],
        evaluation_interval=1.0,
        policy=PolicyConfig(max_unhealthy_fraction=0.5, cooldown_seconds=600),
    )
    sat = Satellite(config, cluster, tmp_path / writer, store=ZkBlobStore(client, PATH, writer))
    sat.work_dir.mkdir(parents=True, exist_ok=True)
    await sat.restore()
    sat.load_rules()
    return sat


async def evaluate(sat: Satellite, *times: float) -> None:
    for t in times:
        sat.tsdb.append(labels_of({"__name__": "sick", "instance": "i1"}), int(t * 1000), 1.0)
        await sat.evaluate(t)


def slow(sat: Satellite) -> list[tuple[AlertState, float]]:
    return [
        (a.state, a.active_at_ms / 1000)
        for alerts in sat.group_states[(sat.groups[0].file, "g")].alerts
        for a in alerts.values()
        if a.labels[0] == ("alertname", "Slow")
    ]


async def test_a_new_leaders_satellite_resumes_from_zookeeper_and_fences_the_old_one(
    tmp_path: Path, sessions: list[KazooClient]
) -> None:
    cluster = Cluster()
    old = await satellite(tmp_path, sessions[0], "master-a", cluster)
    await evaluate(old, T0, T0 + 20, T0 + 40)
    assert slow(old) == [(AlertState.PENDING, T0)]
    assert cluster.acted == [("S1", Action.DEACTIVATE)]

    new = await satellite(tmp_path, sessions[1], "master-b", cluster)
    await evaluate(new, T0 + 60)

    assert slow(new) == [(AlertState.FIRING, T0)], "fires 20s after the failover, not 60s"
    assert cluster.acted == [("S1", Action.DEACTIVATE)], "the action is not taken twice"
    assert [(e.agent, e.action, e.outcome) for e in new.events] == [("S1", "deactivate", "taken")]
    # The old leader's Satellite, still running somewhere, may no longer act or write.
    await evaluate(old, T0 + 61)
    assert old.fenced and "another" in old.fenced
    assert cluster.acted == [("S1", Action.DEACTIVATE)]
