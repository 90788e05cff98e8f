"""Satellite end to end: real master, agent and satellite processes, faults made on disk.

Agents run two checks every 0.5 s in their work dir: `fault` (critical while a file
`fault` or the fleet-wide marker exists, warning while `warn` exists) and `drain`
(critical while `drain` exists). Satellite scrapes every second, evaluates every second
and acts on the rules of `satellite_helpers.rules()`: CheckCritical (deactivate),
DrainRequested (drain), CheckWarning and AgentDown (no action). Everything is observed
the way an operator would: the operator HTTP API, the `orbiter` CLI, a webhook
receiver, and a framework written with the scheduler SDK.

Most tests share one cluster of five agents (starting processes costs seconds on two
cores); each starts from a healed cluster (no markers, no pins, every agent connected
and active, no test alert left) and uses its own agent. Tests that kill the master or
run Satellite on its own start their own processes.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from satellite_helpers import (
    COOLDOWN,
    DRAIN,
    EVALUATION_INTERVAL,
    FAULT,
    FOR_SECONDS,
    MARKERS,
    SCRAPE_INTERVAL,
    WARN,
    Agent,
    HttpFailed,
    Master,
    OfferRecorder,
    ProcessGroup,
    StandaloneSatellite,
    WebhookSink,
    cli,
    framework,
    poll_until,
    start_agents,
    start_master,
    write_config,
)

from orbiter.proto import messages_pb2 as pb

pytestmark = pytest.mark.slow

AsyncWait = Callable[..., Awaitable[Any]]
Wait = Callable[..., Any]
FLEET_SIZE = 5
MAX_UNHEALTHY_FRACTION = 0.5
TIMEOUT = 20.0
TEST_ALERTS = {"CheckCritical", "DrainRequested", "CheckWarning", "AgentDown"}
CLUSTER_ALERTS = {"SatellitePanicFreeze", "SatelliteAgentFlapping"}
# An offer already on its way when the master deactivated the agent is rescinded, not
# "made from then on": offers that reach the framework this soon after are not counted.
IN_FLIGHT = 0.2


# ---------------------------------------------------------------------- the shared fleet


@dataclass
class Fleet:
    master: Master
    agents: list[Agent]
    sink: WebhookSink
    fleet_marker: Path

    @property
    def ids(self) -> list[str]:
        return [a.agent_id for a in self.agents]

    def heal(self) -> None:
        """Undo whatever a test left: markers, pins, dead agents, agents out of service."""
        self.sink.start()
        self.fleet_marker.unlink(missing_ok=True)
        for agent in self.agents:
            for marker in MARKERS:
                agent.unmark(marker)
            if not agent.alive:
                agent.start()
        for agent in self.agents:
            agent.wait_registered()
        for agent_id, a in self.master.agents().items():
            if a["pin"] is not None:
                self.master.delete(f"/api/v1/agents/{agent_id}/pin")

        def quiet() -> bool:
            names = {a["labels"]["alertname"] for a in self.master.alerts()}
            return not names & (TEST_ALERTS | CLUSTER_ALERTS)

        poll_until(quiet, TIMEOUT, "the test alerts to resolve")
        for agent_id, a in self.master.agents().items():
            if a["maintenance"]["mode"] != "active":
                self.master.post(
                    f"/api/v1/agents/{agent_id}/reactivate", {"reason": "e2e: clean slate"}
                )

        def healthy() -> bool:
            agents = self.master.agents()
            return all(
                agents[i]["status"] == "connected"
                and agents[i]["maintenance"]["mode"] == "active"
                and agents[i]["pin"] is None
                for i in self.ids
            )

        poll_until(healthy, TIMEOUT, "every agent connected, active and unpinned")


@pytest.fixture(scope="module")
def fleet(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Fleet]:
    """A master with Satellite inside, five agents and a webhook sink, for this module."""
    procs = ProcessGroup()
    sink = WebhookSink()
    failed_before = request.session.testsfailed
    try:
        sink.start()
        base = tmp_path_factory.mktemp("satellite")
        marker = base / "fleet-fault"
        config = write_config(base / "conf", marker, [sink.url], MAX_UNHEALTHY_FRACTION)
        master = start_master(procs, base, config)
        agents = start_agents(master, procs, base, config, FLEET_SIZE)
        yield Fleet(master, agents, sink, marker)
    finally:
        procs.stop_all()
        sink.close()
        if procs.hung:
            print("\nignored SIGTERM, killed:\n" + "\n".join(procs.hung))
        if request.session.testsfailed > failed_before or procs.hung:
            print(procs.report())


@pytest.fixture
def cluster(fleet: Fleet) -> Fleet:
    """The shared fleet, healed: each test starts from the same clean state."""
    fleet.heal()
    return fleet


def in_thread(check: Callable[[], Any]) -> Callable[[], Awaitable[Any]]:
    """A check for `async_wait_until` that calls the HTTP API without blocking the loop."""
    return lambda: asyncio.to_thread(check)


def mode(master: Master, agent_id: str) -> dict[str, Any]:
    return master.agent(agent_id)["maintenance"]


def mode_is(master: Master, agent_id: str, wanted: str) -> Callable[[], Any]:
    def check() -> dict[str, Any] | None:
        m = mode(master, agent_id)
        return m if m["mode"] == wanted else None

    return check


def alerts_named(master: Master, name: str, agent_id: str) -> list[dict[str, Any]]:
    return [
        a
        for a in master.alerts()
        if a["labels"].get("alertname") == name and a["labels"].get("agent") == agent_id
    ]


def events_since(master: Master, since: float, agent_id: str = "") -> list[dict[str, Any]]:
    return [
        e
        for e in master.events()
        if e["time"] >= since and (not agent_id or e["agent"] == agent_id)
    ]


def wait_evaluations(master: Master, wait_until: Wait, n: int) -> None:
    """Let Satellite run `n` more evaluation rounds (a condition, not a sleep)."""
    start = master.evaluations()
    wait_until(
        lambda: master.evaluations() >= start + n,
        n * EVALUATION_INTERVAL + TIMEOUT,
        f"{n} more evaluations",
    )


# ---------------------------------------------------------------------- 6. master restart
# Tests 6 and 8 start processes of their own; they come first, before the fleet starts.


def test_master_restart_keeps_every_maintenance_state_and_pin(
    processes: Any, tmp_path: Path, wait_until: Wait
) -> None:
    config = write_config(tmp_path / "conf", tmp_path / "fleet-fault")
    master = start_master(processes, tmp_path, config)
    by_operator, by_satellite = start_agents(master, processes, tmp_path, config, 2)

    by_satellite.mark(FAULT)
    wait_until(mode_is(master, by_satellite.agent_id, "deactivated"), TIMEOUT, "deactivation")
    master.post(f"/api/v1/agents/{by_operator.agent_id}/deactivate", {"reason": "e2e: disk swap"})
    master.post(
        f"/api/v1/agents/{by_satellite.agent_id}/pin",
        {"state": "inactive", "for_seconds": 600, "reason": "e2e: investigate"},
    )
    master.post(
        f"/api/v1/agents/{by_operator.agent_id}/pin",
        {"state": "active", "for_seconds": 600, "reason": "e2e: back after the swap"},
    )

    def kept() -> dict[str, tuple[Any, Any]]:
        return {i: (a["maintenance"], a["pin"]) for i, a in master.agents().items()}

    before = kept()
    # Pinning active puts the operator's deactivated agent back in service (see "Pins").
    assert before[by_operator.agent_id][0]["by"] == "operator"
    assert before[by_operator.agent_id][0]["mode"] == "active"
    assert before[by_operator.agent_id][0]["reason"] == "pinned active: e2e: back after the swap"
    assert before[by_satellite.agent_id][0]["by"] == "satellite"
    assert before[by_satellite.agent_id][0]["reason"].startswith("CheckCritical firing")
    assert before[by_satellite.agent_id][1]["state"] == "inactive"
    assert before[by_operator.agent_id][1]["state"] == "active"
    taken = [e for e in master.events() if e["outcome"] == "taken"]

    master.kill9()
    master.start()
    assert kept() == before

    def reconnected() -> bool:
        return {a["status"] for a in master.agents().values()} == {"connected"}

    wait_until(reconnected, TIMEOUT, "both agents to reregister")
    wait_evaluations(master, wait_until, 3)
    assert kept() == before
    assert [e for e in master.events() if e["outcome"] == "taken"] == taken


# ---------------------------------------------------------------------- 8. standalone


def test_standalone_satellite_acts_through_the_operator_api(
    processes: Any, tmp_path: Path, wait_until: Wait
) -> None:
    config = write_config(tmp_path / "conf", tmp_path / "fleet-fault")
    master = start_master(processes, tmp_path, config, satellite=False)
    victim, bystander = start_agents(master, processes, tmp_path, config, 2)
    satellite = StandaloneSatellite(
        processes, master, tmp_path / "satellite", config, tmp_path / "satellite.log"
    )
    satellite.start()
    with pytest.raises(HttpFailed) as no_satellite:
        master.get("/api/v1/alerts")
    assert no_satellite.value.status == 404

    victim.mark(FAULT)
    m = wait_until(mode_is(master, victim.agent_id, "deactivated"), TIMEOUT, "deactivation")
    assert m["by"] == "satellite"
    assert m["reason"].startswith("CheckCritical firing")
    assert mode(master, bystander.agent_id)["mode"] == "active"

    alerts = cli("alerts", master=master, satellite=satellite.address)["alerts"]
    assert [
        (a["labels"]["alertname"], a["labels"]["agent"], a["labels"]["action"], a["state"])
        for a in alerts
    ] == [("CheckCritical", victim.agent_id, "deactivate", "firing")]
    events = cli("satellite", "events", master=master, satellite=satellite.address)["events"]
    assert [(e["agent"], e["action"], e["outcome"]) for e in events] == [
        (victim.agent_id, "deactivate", "taken")
    ]
    assert events[0]["reason"] == m["reason"]


# ---------------------------------------------------------------------- 1. deactivate
# Tests 1-5 and 7 share the fleet.


async def test_failing_check_deactivates_the_agent_in_time_stops_its_offers_and_cooldown_brings_it_back(  # noqa: E501
    cluster: Fleet, async_wait_until: AsyncWait, capsys: pytest.CaptureFixture[str]
) -> None:
    master, target = cluster.master, cluster.agents[0]
    others = [a.agent_id for a in cluster.agents[1:]]
    scheduler = OfferRecorder({"keeps-running": (target.agent_id, "sleep 300")})
    async with framework(scheduler, master, "offer-recorder"):
        await async_wait_until(
            lambda: scheduler.state_of("keeps-running") == pb.TASK_RUNNING, TIMEOUT, "task running"
        )

        faulted = time.monotonic()
        target.mark(FAULT)
        m = await async_wait_until(
            in_thread(mode_is(master, target.agent_id, "deactivated")), TIMEOUT, "deactivation"
        )
        seen = time.monotonic()
        latency = seen - faulted
        bound = SCRAPE_INTERVAL + FOR_SECONDS + EVALUATION_INTERVAL + 1.0
        with capsys.disabled():
            print(
                f"\ndetection latency: fault file -> deactivated in the API: {latency:.2f}s"
                f" (bound {bound:g}s)"
            )
        assert m["by"] == "satellite"
        assert m["reason"].startswith("CheckCritical firing (check fault on ")
        assert latency <= bound

        # The framework goes on being offered the other agents, never this one.
        await async_wait_until(
            lambda: all(scheduler.offered(a, seen) >= 3 for a in others),
            TIMEOUT,
            "three offers of every other agent since the deactivation",
        )
        assert scheduler.offered(target.agent_id, seen + IN_FLIGHT) == 0
        assert scheduler.state_of("keeps-running") == pb.TASK_RUNNING
        tasks = await asyncio.to_thread(master.get, "/api/v1/tasks?agent_id=" + target.agent_id)
        assert [(t["id"], t["state"]) for t in tasks["tasks"]] == [
            ("keeps-running", "TASK_RUNNING")
        ]

        cleared_at = time.time()
        cleared = time.monotonic()
        target.unmark(FAULT)
        back = await async_wait_until(
            in_thread(mode_is(master, target.agent_id, "active")),
            COOLDOWN + TIMEOUT,
            "reactivation",
        )
        assert back["by"] == "satellite"
        assert f"(cool-down {COOLDOWN:g}s); Satellite took it out" in back["reason"]
        assert back["since"] - cleared_at >= COOLDOWN
        await async_wait_until(
            lambda: scheduler.offered(target.agent_id, cleared), TIMEOUT, "offers of it again"
        )
        assert scheduler.state_of("keeps-running") == pb.TASK_RUNNING

    events = events_since(master, cleared_at - 60, target.agent_id)
    assert [(e["action"], e["outcome"], e["rule"]) for e in events] == [
        ("deactivate", "taken", "CheckCritical"),
        ("reactivate", "taken", "CheckCritical"),
    ]


# ---------------------------------------------------------------------- 2. drain


async def test_drain_rule_kills_the_tasks_for_draining_and_the_agent_ends_drained(
    cluster: Fleet, async_wait_until: AsyncWait
) -> None:
    master, target = cluster.master, cluster.agents[1]
    tasks = {f"drained-{i}": (target.agent_id, "sleep 300") for i in (1, 2)}
    scheduler = OfferRecorder(tasks)
    async with framework(scheduler, master, "drain-victim"):
        await async_wait_until(
            lambda: all(scheduler.state_of(t) == pb.TASK_RUNNING for t in tasks),
            TIMEOUT,
            "both tasks running",
        )
        started = time.time()
        target.mark(DRAIN)
        await async_wait_until(
            lambda: all(scheduler.state_of(t) == pb.TASK_KILLED for t in tasks),
            TIMEOUT,
            "both tasks killed",
        )
        for task_id in tasks:
            status = scheduler.last(task_id)
            assert status is not None
            assert status.reason == pb.REASON_AGENT_DRAINING
            assert status.agent_id == target.agent_id

        m = await async_wait_until(
            in_thread(mode_is(master, target.agent_id, "drained")), TIMEOUT, "drained"
        )
        assert m["by"] == "satellite"
        assert m["reason"].startswith("DrainRequested firing")
        listed = await asyncio.to_thread(master.get, "/api/v1/tasks?agent_id=" + target.agent_id)
        assert sorted((t["id"], t["state"], t["reason"]) for t in listed["tasks"]) == [
            (t, "TASK_KILLED", "REASON_AGENT_DRAINING") for t in sorted(tasks)
        ]
    events = await asyncio.to_thread(events_since, master, started, target.agent_id)
    assert [(e["action"], e["outcome"], e["rule"]) for e in events] == [
        ("drain", "taken", "DrainRequested")
    ]


# ---------------------------------------------------------------------- 3. panic freeze


def test_rule_firing_for_every_agent_takes_out_at_most_the_allowed_share_and_freezes(
    cluster: Fleet, wait_until: Wait
) -> None:
    master, ids = cluster.master, cluster.ids
    allowed = math.floor(MAX_UNHEALTHY_FRACTION * len(ids))
    out_seen: list[int] = []

    def out_of_service() -> set[str]:
        agents = master.agents()
        out = {i for i in ids if agents[i]["maintenance"]["mode"] != "active"}
        out_seen.append(len(out))
        return out

    started = time.time()
    cluster.fleet_marker.touch()

    def frozen_with_every_agent_accounted_for() -> Any:
        out = out_of_service()
        refused = {
            e["agent"]
            for e in events_since(master, started)
            if e["outcome"] == "refused" and e["reason"].startswith("panic freeze: ")
        }
        freeze = [a for a in master.alerts() if a["labels"]["alertname"] == "SatellitePanicFreeze"]
        return freeze and out | refused == set(ids) and (freeze[0], out, refused)

    freeze, out, refused = wait_until(
        frozen_with_every_agent_accounted_for, TIMEOUT, "the panic freeze, every agent refused"
    )
    # It holds: more evaluations, no more take-outs.
    start = master.evaluations()
    wait_until(
        lambda: out_of_service() is not None and master.evaluations() >= start + 3,
        TIMEOUT,
        "three more evaluations",
    )
    assert max(out_seen) <= allowed
    assert out_of_service() == out
    assert not out & refused
    agents = master.agents()
    assert all(agents[i]["maintenance"]["by"] == "satellite" for i in out)
    events = events_since(master, started)
    taken = [e for e in events if e["outcome"] == "taken"]
    assert sorted(e["agent"] for e in taken) == sorted(out)
    assert {(e["action"], e["rule"]) for e in events} <= {("deactivate", "CheckCritical")}
    assert freeze["state"] == "firing"
    assert freeze["labels"]["source"] == "satellite"
    assert freeze["annotations"]["summary"].startswith("panic freeze: ")
    assert (
        f"({allowed} of {len(ids)} agents may be out at 50%" in (freeze["annotations"]["summary"])
    )

    cluster.fleet_marker.unlink()
    wait_until(
        lambda: not [a for a in master.alerts() if a["labels"]["alertname"] in CLUSTER_ALERTS],
        TIMEOUT,
        "the freeze to lift",
    )


# ---------------------------------------------------------------------- 4. up == 0


def test_agent_killed_with_sigkill_is_noticed_through_up(cluster: Fleet, wait_until: Wait) -> None:
    master, victim = cluster.master, cluster.agents[4]
    victim.sigkill()
    firing = wait_until(
        lambda: [
            a for a in alerts_named(master, "AgentDown", victim.agent_id) if a["state"] == "firing"
        ],
        TIMEOUT,
        "AgentDown firing for the killed agent",
    )
    assert firing[0]["labels"]["job"] == "agent"
    down = {
        a["labels"]["agent"] for a in master.alerts() if a["labels"]["alertname"] == "AgentDown"
    }
    assert down == {victim.agent_id}

    targets = cli("satellite", "targets", master=master)["targets"]
    by_agent = {t["labels"].get("agent", ""): t for t in targets}
    assert by_agent[victim.agent_id]["up"] is False
    assert by_agent[victim.agent_id]["last_error"]
    assert all(by_agent[a]["up"] is True for a in cluster.ids if a != victim.agent_id)

    # Back on the same work dir, it is scraped again and the alert resolves.
    victim.start()
    victim.wait_registered()
    wait_until(
        lambda: not alerts_named(master, "AgentDown", victim.agent_id),
        TIMEOUT,
        "AgentDown to resolve",
    )


# ---------------------------------------------------------------------- 5. pins


def test_pin_beats_automation_both_ways(cluster: Fleet, wait_until: Wait) -> None:
    master, target = cluster.master, cluster.agents[2]
    pin_url = f"/api/v1/agents/{target.agent_id}/pin"
    started = time.time()

    master.post(pin_url, {"state": "active", "for_seconds": 120, "reason": "e2e: hands off"})
    target.mark(FAULT)
    refused = wait_until(
        lambda: [
            e
            for e in events_since(master, started, target.agent_id)
            if e["outcome"] == "refused" and e["action"] == "deactivate"
        ],
        TIMEOUT,
        "the deactivation refused",
    )
    assert refused[0]["reason"].startswith("pinned active by operator (")
    assert ": e2e: hands off; budget: " in refused[0]["reason"]
    wait_evaluations(master, wait_until, 2)
    assert mode(master, target.agent_id)["mode"] == "active"
    assert [e["outcome"] for e in events_since(master, started, target.agent_id)] == ["refused"]

    # Unpinned, the alert still firing takes it out.
    master.delete(pin_url)
    wait_until(mode_is(master, target.agent_id, "deactivated"), TIMEOUT, "deactivation")

    # Pinned inactive, it stays out after the fault clears and the cool-down passes.
    master.post(pin_url, {"state": "inactive", "for_seconds": 120, "reason": "e2e: keep out"})
    cleared = time.time()
    target.unmark(FAULT)
    held = wait_until(
        lambda: [
            e
            for e in events_since(master, cleared, target.agent_id)
            if e["outcome"] == "refused" and e["action"] == "reactivate"
        ],
        COOLDOWN + TIMEOUT,
        "the reactivation refused",
    )
    assert held[0]["reason"].startswith("pinned inactive by operator (")
    assert ": e2e: keep out; budget: " in held[0]["reason"]
    assert held[0]["time"] - cleared >= COOLDOWN
    wait_evaluations(master, wait_until, 2)
    m = mode(master, target.agent_id)
    assert (m["mode"], m["by"]) == ("deactivated", "satellite")

    # The pin was all that held it: without it, Satellite brings it back.
    master.delete(pin_url)
    m = wait_until(mode_is(master, target.agent_id, "active"), TIMEOUT, "reactivation")
    assert m["by"] == "satellite"


# ---------------------------------------------------------------------- 7. webhook outage


def test_webhook_receiver_down_for_a_while_gets_every_alert_once_when_back(
    cluster: Fleet, wait_until: Wait
) -> None:
    master, agent, sink = cluster.master, cluster.agents[3], cluster.sink
    failed = "orbiter_alerts_notifications_failed_total"
    failed_before = master.metric(failed)
    sink.stop()
    try:
        agent.mark(WARN)
        wait_until(
            lambda: [
                a
                for a in alerts_named(master, "CheckWarning", agent.agent_id)
                if a["state"] == "firing"
            ],
            TIMEOUT,
            "CheckWarning firing",
        )
        agent.unmark(WARN)
        wait_until(
            lambda: not alerts_named(master, "CheckWarning", agent.agent_id),
            TIMEOUT,
            "CheckWarning resolved",
        )
        wait_until(lambda: master.metric(failed) > failed_before, TIMEOUT, "a failed delivery")
        assert sink.alerts("CheckWarning", agent.agent_id) == []
    finally:
        sink.start()

    wait_until(
        lambda: (
            len(sink.alerts("CheckWarning", agent.agent_id)) >= 2
            and master.metric("orbiter_alerts_queue_length") == 0
        ),
        90.0,  # the webhook retries with backoff; the outage was a few seconds
        "both notifications delivered and the spool empty",
    )
    got = sink.alerts("CheckWarning", agent.agent_id)
    assert [a["status"] for a in got] == ["firing", "resolved"]
    firing, resolved = got
    assert firing["fingerprint"] == resolved["fingerprint"]
    assert firing["startsAt"] == resolved["startsAt"]
    assert resolved["endsAt"] > resolved["startsAt"]
    assert firing["labels"]["severity"] == "warning"
    assert firing["annotations"]["summary"] == f"check fault on {agent.agent_id} is 1"
    payloads = [p for p in sink.payloads if any(a in p["alerts"] for a in got)]
    assert {p["version"] for p in payloads} == {"4"}
    assert [p["status"] for p in payloads] == ["firing", "resolved"]
