"""Satellite's durable state: the document, the file store, and a successor that resumes.

A "failover" here is a second Satellite built on the same store after the first
one's last write, evaluated with a fake clock: what a new leader on another machine
does with the document the old one left.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from orbiter.alerts.payload import Notification
from orbiter.blobstore import FileBlobStore
from orbiter.errors import RegistryConflict
from orbiter.satellite.durable_state import (
    Event,
    SatelliteState,
    SavedAlert,
    SavedGroup,
    StateDocumentInvalid,
    decode,
    encode,
    restored_active_at,
)
from orbiter.satellite.policy import (
    SATELLITE,
    Action,
    ActionRecord,
    AgentSnapshot,
    PolicyConfig,
    PolicyState,
    Tracked,
)
from orbiter.satellite.rules import AlertState
from orbiter.satellite.scrape import Target, _TargetState
from orbiter.satellite.series import labels_of
from orbiter.satellite.service import Satellite, SatelliteConfig

T0 = 1_800_000_000.0
S = 1000
M = 60 * S

# ---------------------------------------------------------------------------
# The document


def test_the_document_round_trips() -> None:
    alert = SavedAlert(
        labels_of({"alertname": "Sick", "agent": "S1"}),
        (("summary", "S1 is sick"),),
        AlertState.FIRING,
        math.nan,
        int(T0 * 1000),
        int(T0 * 1000) + 60 * S,
        int(T0 * 1000) + 90 * S,
    )
    state = SatelliteState(
        PolicyState(
            history=(ActionRecord(T0, "S1", Action.DEACTIVATE),),
            tracked={"S1": Tracked("Sick", None)},
            reported={("S2", Action.DRAIN): ("Full", "fraction")},
            frozen=True,
        ),
        (Event(T0, "Sick", "S1", "deactivate", "taken", "Sick firing; budget: ..."),),
        (SavedGroup("r.yml", "g", int(T0 * 1000) + 95 * S, {("Sick", 0): (alert,)}),),
        T0 + 95,
        "host-a:1",
    )
    again = decode(encode(state))
    assert replace(again, groups=()) == replace(state, groups=())
    (group,) = again.groups
    (restored,) = group.rules[("Sick", 0)]
    assert math.isnan(restored.value)
    assert replace(restored, value=0.0) == replace(alert, value=0.0)
    assert json.loads(encode(state))["format"] == 1


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"{", "not JSON"),
        (b'{"format": 1}', "not a Satellite state document"),
        (
            b'{"format": 99, "kind": "orbiter-satellite-state"}',
            "format 99 .*; this one reads format 1",
        ),
        (
            b'{"format": 1, "kind": "orbiter-satellite-state", "events": [{"time": 1}]}',
            "malformed document: KeyError",
        ),
    ],
)
def test_a_document_that_cannot_be_read_says_why(data: bytes, message: str) -> None:
    with pytest.raises(StateDocumentInvalid, match=message):
        decode(data)


def saved(active_at_s: float, state: AlertState = AlertState.PENDING) -> SavedAlert:
    return SavedAlert((("alertname", "A"),), (), state, 1.0, int(active_at_s * S))


GRACE = 10 * M


@pytest.mark.parametrize(
    ("name", "active_at", "for_ms", "evaluated_at", "t", "expected"),
    [
        # A failover: the clock kept running through the gap.
        ("failover keeps active_at", 0, 1 * M, 40, 60, 0),
        ("a gap just inside the grace period", 0, 1 * M, 40, 40 + 600, 0),
        # Longer outages follow Prometheus's RestoreForState.
        ("long outage, for shorter than the grace: starts over", 0, 1 * M, 40, 1000, None),
        ("long outage, had already fired: unchanged", 0, 15 * M, 1000, 2000, 0),
        ("long outage, would fire within the grace: at its end", 0, 15 * M, 600, 1300, 1300 - 300),
        ("long outage, far from firing: the time down does not count", 0, 30 * M, 60, 1000, 940),
    ],
)
def test_restored_active_at(
    name: str, active_at: float, for_ms: int, evaluated_at: float, t: float, expected: float | None
) -> None:
    got = restored_active_at(saved(active_at), for_ms, int(evaluated_at * S), int(t * S), GRACE)
    assert got == (None if expected is None else int(expected * S))


# ---------------------------------------------------------------------------
# FileBlobStore


def test_file_blob_store_keeps_a_fenced_document(tmp_path: Path) -> None:
    path = tmp_path / "d" / "state.json"
    first = FileBlobStore(path)
    assert first.load() is None
    first.store(b'{"a": 1}')
    first.store(b'{"a": 2}')
    assert path.read_bytes().splitlines() == [b"orbiter-blob v1 version=2", b'{"a": 2}']
    second = FileBlobStore(path)
    assert second.load() == b'{"a": 2}'
    second.store(b'{"a": 3}')
    with pytest.raises(RegistryConflict, match="written by another writer"):
        first.store(b'{"a": 4}')
    assert FileBlobStore(path).load() == b'{"a": 3}'
    assert sorted(p.name for p in path.parent.iterdir()) == [".state.json.lock", "state.json"]


def test_file_blob_store_refuses_a_file_it_did_not_write(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    path.write_text('{"format": 1}')
    with pytest.raises(RegistryConflict, match=r"is not an Orbiter document.*move it away"):
        FileBlobStore(path).load()


# ---------------------------------------------------------------------------
# A successor resumes


class Cluster:
    """Three agents; `act` applies the action as the master would."""

    def __init__(self) -> None:
        self.agents_by_id = {i: AgentSnapshot(i, "active", "", "connected") for i in SNAPSHOT_IDS}
        self.acted: list[tuple[str, Action]] = []

    async def targets(self) -> list[Target]:
        return []

    async def silences(self) -> list[Any]:
        return []

    async def agents(self) -> list[AgentSnapshot]:
        return list(self.agents_by_id.values())

    async def act(self, agent_id: str, action: Action, reason: str) -> None:
        self.acted.append((agent_id, action))
        a = self.agents_by_id[agent_id]
        if action is Action.REACTIVATE:
            self.agents_by_id[agent_id] = replace(a, maintenance="active", taken_out_by="")
        else:
            mode = "deactivated" if action is Action.DEACTIVATE else "draining"
            self.agents_by_id[agent_id] = replace(a, maintenance=mode, taken_out_by=SATELLITE)


SNAPSHOT_IDS = ("S1", "S2", "S3")


class Recorder:
    name = "recorder"

    def __init__(self) -> None:
        self.got: list[Notification] = []

    async def send(self, batch: Sequence[Notification]) -> None:
        self.got.extend(batch)

    def seen(self) -> list[tuple[str, str]]:
        return [(n.alertname, n.status) for n in self.got]


class CountingStore(FileBlobStore):
    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.writes = 0

    def store(self, data: bytes) -> None:
        self.writes += 1
        super().store(data)


RULES = """groups:
  - name: g
    rules:
      - alert: Slow
        expr: sick == 1
        for: 1m
      - alert: Sick
        expr: vector(1)
        labels: {agent: S1, action: deactivate}
        annotations: {summary: S1 is sick}
"""


async def satellite(
    tmp_path: Path, cluster: Cluster | None = None, name: str = "a", rules: str = RULES
) -> tuple[Satellite, Recorder]:
    """A Satellite on the shared store tmp_path/state.json, as a master on host `name` builds it."""
    rule_file = tmp_path / "r.rules.yml"
    rule_file.write_text(rules)
    config = SatelliteConfig(
        rule_files=[str(rule_file)],
        evaluation_interval=1.0,
        policy=PolicyConfig(max_unhealthy_fraction=0.5, cooldown_seconds=600),
    )
    sat = Satellite(
        config, cluster or Cluster(), tmp_path / name, store=CountingStore(tmp_path / "state.json")
    )
    sat.work_dir.mkdir(parents=True, exist_ok=True)
    await sat.restore()
    sat.load_rules()
    recorder = Recorder()
    sat.notifier.receivers = [recorder]  # type: ignore[attr-defined]
    return sat, recorder


def sick(sat: Satellite, t: float, value: float = 1.0) -> None:
    """The metric the Slow rule watches, as a scrape would have put it in the TSDB."""
    sat.tsdb.append(labels_of({"__name__": "sick", "instance": "i1"}), int(t * S), value)


async def run(sat: Satellite, *times: float, value: float = 1.0) -> None:
    for t in times:
        sick(sat, t, value)
        await sat.evaluate(t)


def slow(sat: Satellite) -> list[tuple[AlertState, float]]:
    return [
        (a.state, a.active_at_ms / S)
        for alerts in sat.group_states[(sat.groups[0].file, "g")].alerts
        for a in alerts.values()
        if a.labels[0] == ("alertname", "Slow")
    ]


async def test_a_pending_for_resumes_where_the_old_leader_left_it(tmp_path: Path) -> None:
    old, _ = await satellite(tmp_path)
    await run(old, T0, T0 + 20, T0 + 40)
    assert slow(old) == [(AlertState.PENDING, T0)]

    new, recorder = await satellite(tmp_path, name="b")
    await run(new, T0 + 60)
    assert slow(new) == [(AlertState.FIRING, T0)]  # 20s after the failover, not 60s
    assert ("Slow", "firing") in recorder.seen()


async def test_without_the_document_the_for_starts_over(tmp_path: Path) -> None:
    old, _ = await satellite(tmp_path)
    await run(old, T0, T0 + 40)
    (tmp_path / "state.json").unlink()
    new, _ = await satellite(tmp_path, name="b")
    await run(new, T0 + 60)
    assert slow(new) == [(AlertState.PENDING, T0 + 60)]


async def test_a_restored_pending_alert_no_longer_active_is_dropped(tmp_path: Path) -> None:
    old, _ = await satellite(tmp_path)
    await run(old, T0, T0 + 40)
    new, recorder = await satellite(tmp_path, name="b")
    await run(new, T0 + 60, value=0.0)
    assert slow(new) == []
    await run(new, T0 + 70)
    assert slow(new) == [(AlertState.PENDING, T0 + 70)]
    assert ("Slow", "firing") not in recorder.seen()


async def test_restored_alerts_wait_until_every_target_was_scraped(tmp_path: Path) -> None:
    old, _ = await satellite(tmp_path)
    await run(old, T0, T0 + 40)
    new, _ = await satellite(tmp_path, name="b")
    target = _TargetState(Target("http://agent:5052/metrics", labels_of({"instance": "agent"})))
    new.scraper.targets[target.target.url] = target
    new._started = time.monotonic()
    await run(new, T0 + 60)
    assert slow(new) == [(AlertState.PENDING, T0 + 60)]  # judged on no data: not restored yet
    target.last_scrape = T0 + 61
    await run(new, T0 + 62)
    assert slow(new) == [(AlertState.FIRING, T0)]


async def test_an_action_taken_before_a_failover_is_not_repeated(tmp_path: Path) -> None:
    cluster = Cluster()
    old, _ = await satellite(tmp_path, cluster)
    await run(old, T0)
    assert cluster.acted == [("S1", Action.DEACTIVATE)]

    new, recorder = await satellite(tmp_path, cluster, name="b")
    assert [(e.agent, e.action, e.outcome) for e in new.events] == [("S1", "deactivate", "taken")]
    assert [r.agent_id for r in new.policy_state.history] == ["S1"]
    await run(new, T0 + 15, T0 + 30)
    assert cluster.acted == [("S1", Action.DEACTIVATE)]
    assert len(new.events) == 1
    assert ("Sick", "firing") not in recorder.seen()  # still firing: not announced twice


async def test_a_firing_alert_that_stopped_during_the_failover_is_sent_resolved(
    tmp_path: Path,
) -> None:
    rules = "groups:\n  - name: g\n    rules:\n      - {alert: Hot, expr: sick == 1}\n"
    old, _ = await satellite(tmp_path, rules=rules)
    await run(old, T0)
    new, recorder = await satellite(tmp_path, name="b", rules=rules)
    await run(new, T0 + 15, value=0.0)
    assert recorder.seen() == [("Hot", "resolved")]


async def test_keep_firing_for_counts_from_before_the_failover(tmp_path: Path) -> None:
    rules = (
        "groups:\n  - name: g\n    rules:\n"
        "      - {alert: Hot, expr: sick == 1, keep_firing_for: 1m}\n"
    )
    old, _ = await satellite(tmp_path, rules=rules)
    await run(old, T0)
    await run(old, T0 + 15, value=0.0)  # stopped: kept firing from here for a minute
    new, recorder = await satellite(tmp_path, name="b", rules=rules)
    await run(new, T0 + 30, T0 + 74, value=0.0)
    assert recorder.seen() == []
    await run(new, T0 + 75, value=0.0)
    assert recorder.seen() == [("Hot", "resolved")]


async def test_a_second_writer_makes_the_first_stop_acting(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cluster = Cluster()
    quiet = "groups:\n  - name: g\n    rules:\n      - {alert: Slow, expr: sick == 1, for: 1m}\n"
    old, _ = await satellite(tmp_path, cluster, rules=quiet)
    await run(old, T0)
    new, _ = await satellite(tmp_path, cluster, name="b", rules=quiet)
    await run(new, T0 + 15)  # the new leader writes the state

    (tmp_path / "r.rules.yml").write_text(RULES)  # now S1 should be taken out
    old.load_rules()
    with caplog.at_level(logging.CRITICAL, logger="orbiter.satellite"):
        await run(old, T0 + 20)
    assert old.fenced and "written by another writer" in old.fenced
    assert "another Satellite wrote the state" in caplog.text
    await run(old, T0 + 30, T0 + 40)
    assert cluster.acted == []
    assert list(old.events) == []

    new.load_rules()
    await run(new, T0 + 45)
    assert cluster.acted == [("S1", Action.DEACTIVATE)]


async def test_a_deposed_satellite_cannot_write_after_its_successor_started(
    tmp_path: Path,
) -> None:
    old, _ = await satellite(tmp_path)
    await satellite(tmp_path, name="b")  # claims the state at start, before its first round
    await run(old, T0)
    assert old.fenced
    assert old.events == deque()


async def test_the_state_is_written_when_it_changes_and_once_a_minute(tmp_path: Path) -> None:
    quiet = "groups:\n  - name: g\n    rules:\n      - {alert: Slow, expr: sick == 1, for: 1h}\n"
    sat, _ = await satellite(tmp_path, rules=quiet)
    store = sat.store
    assert isinstance(store, CountingStore)
    assert store.writes == 1  # claimed at start
    await run(sat, T0)
    assert store.writes == 2  # the alert went pending
    await run(sat, T0 + 15, T0 + 30, T0 + 45)
    assert store.writes == 2
    await run(sat, T0 + 60)
    assert store.writes == 3  # the heartbeat: a successor can tell how long nobody watched
    await run(sat, T0 + 75, value=0.0)
    assert store.writes == 4  # the alert went away


async def test_an_upgrade_reads_policy_json_and_events_jsonl_once(tmp_path: Path) -> None:
    work = tmp_path / "a"
    work.mkdir()
    policy = PolicyState(history=(ActionRecord(T0, "S2", Action.DRAIN),))
    (work / "policy.json").write_text(json.dumps(policy.to_dict()))
    event = Event(T0, "Full", "S2", "drain", "taken", "Full firing")
    (work / "events.jsonl").write_text(json.dumps(event.__dict__) + "\n")

    sat, _ = await satellite(tmp_path)
    assert sat.policy_state == policy
    assert list(sat.events) == [event]
    assert sorted(p.name for p in work.iterdir()) == [
        "events.jsonl.migrated",
        "policy.json.migrated",
    ]
    again = decode(FileBlobStore(tmp_path / "state.json").load() or b"")
    assert (again.policy, again.events) == (policy, (event,))

    other, _ = await satellite(tmp_path, name="b")
    assert other.policy_state == policy
    assert list(other.events) == [event]
