"""Maintenance in the master's state machine: deactivate, drain, reactivate, pins,
who owns a decision, and frameworks that get time to come back after a master restart."""

from __future__ import annotations

import pytest

from orbiter.errors import OrbiterError
from orbiter.master.effects import Effect, PersistRegistry, SendToAgent, SendToFramework
from orbiter.master.state import Master, MasterConfig
from orbiter.proto import agent_pb2, master_pb2, messages_pb2, scheduler_pb2
from orbiter.resources import Resources

pb = messages_pb2
CONFIG = MasterConfig(offer_timeout=30.0, agent_timeout=15.0)


def master() -> Master:
    return Master(pb.MasterInfo(id="bbbbbbbb0000"), CONFIG, 0.0)


def register(m: Master, address: str, link: int, now: float = 0.0) -> str:
    msg = agent_pb2.AgentMessage.Register()
    msg.info.hostname = "h"
    msg.info.http_address = address
    msg.info.resources.extend(Resources.parse("cpus:4;mem:1024").to_proto())
    agent_id, _ = m.agent_register(link, msg, now)
    return agent_id


def subscribe(m: Master, failover: float = 0.0) -> tuple[str, scheduler_pb2.CallHeader]:
    fw_id, stream, _ = m.subscribe(pb.FrameworkInfo(name="fw", failover_timeout=failover), 0.0)
    return fw_id, scheduler_pb2.CallHeader(framework_id=fw_id, stream_id=stream)


def offers(effects: list[Effect]) -> list[pb.Offer]:
    return [
        o
        for e in effects
        if isinstance(e, SendToFramework) and e.event.type == scheduler_pb2.Event.OFFERS
        for o in e.event.offers.offers
    ]


def launch(m: Master, header: scheduler_pb2.CallHeader, offer: pb.Offer, task_id: str) -> None:
    task = pb.TaskInfo(task_id=task_id, name=task_id)
    task.resources.extend(Resources.parse("cpus:1;mem:64").to_proto())
    task.command.value = "sleep 100"
    op = scheduler_pb2.Operation(type=scheduler_pb2.Operation.LAUNCH)
    op.launch.task_infos.append(task)
    m.accept(header, [offer.id], [op], scheduler_pb2.Filters(refuse_seconds=0), 1.0)


def cluster() -> tuple[Master, str, str, scheduler_pb2.CallHeader]:
    """One agent running task t1 for one framework."""
    m = master()
    agent_id = register(m, "h:1", 1)
    fw_id, header = subscribe(m)
    (offer,) = offers(m.allocate(0.5))
    launch(m, header, offer, "t1")
    return m, agent_id, fw_id, header


def test_deactivate_rescinds_offers_persists_and_stops_offers_but_keeps_tasks() -> None:
    m, agent_id, _, _ = cluster()
    assert offers(m.allocate(2.0))  # the rest of the agent is on offer
    effects = m.deactivate(agent_id, "operator", "bad disk", 3.0)
    kinds = [type(e) for e in effects]
    assert SendToFramework in kinds and PersistRegistry in kinds  # rescind + persist
    assert not m.offers and not offers(m.allocate(4.0))
    assert m.agents[agent_id].tasks  # running tasks keep running
    record = m.registry().agents[0].maintenance
    assert (record.mode, record.by, record.reason) == (
        master_pb2.DEACTIVATED,
        "operator",
        "bad disk",
    )


def test_drain_kills_every_task_for_draining_and_ends_drained_when_they_are_gone() -> None:
    m, agent_id, fw_id, _ = cluster()
    effects = m.drain(agent_id, 7.0, "satellite", "disk full", 2.0)
    (kill,) = [e.message.kill_tasks for e in effects if isinstance(e, SendToAgent)]
    assert [(k.task_id, k.reason, k.grace_period) for k in kill.kills] == [
        ("t1", pb.REASON_AGENT_DRAINING, 7.0)
    ]
    assert m.agents[agent_id].mode == master_pb2.DRAINING
    update = agent_pb2.StatusUpdate(framework_id=fw_id)
    update.status.task_id = "t1"
    update.status.state = pb.TASK_KILLED
    update.status.reason = pb.REASON_AGENT_DRAINING
    update.status.uuid = b"u" * 16
    m.status_updates(agent_id, 1, [update], 3.0)
    assert m.agents[agent_id].mode == master_pb2.DRAINED


def test_reactivate_puts_the_agent_back_on_offer() -> None:
    m, agent_id, _, _ = cluster()
    m.deactivate(agent_id, "satellite", "check critical", 2.0)
    m.reactivate(agent_id, "satellite", "healthy again", 3.0)
    assert m.agents[agent_id].mode == master_pb2.ACTIVE
    assert [o.agent_id for o in offers(m.allocate(4.0))] == [agent_id]


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda m, a: m.deactivate("nope", "operator", "x", 1.0), "no agent 'nope'"),
        (lambda m, a: m.deactivate(a, "operator", " ", 1.0), "a reason is required"),
        (lambda m, a: m.deactivate(a, "robot", "x", 1.0), "by must be 'operator' or 'satellite'"),
        (lambda m, a: m.drain(a, -1.0, "operator", "x", 1.0), "grace must be between"),
        (lambda m, a: m.set_pin(a, "maybe", 10.0, "x", 1.0), "pin state must be"),
        (lambda m, a: m.set_pin(a, "active", 0.5, "x", 1.0), "a pin must last a positive time"),
    ],
)
def test_bad_maintenance_requests_are_refused_and_change_nothing(call, message) -> None:
    m, agent_id, _, _ = cluster()
    before = m.registry().SerializeToString()
    with pytest.raises(OrbiterError, match=message):
        call(m, agent_id)
    assert m.registry().SerializeToString() == before


def test_deactivating_a_draining_agent_is_refused() -> None:
    m, agent_id, _, _ = cluster()
    m.drain(agent_id, 1.0, "operator", "move", 1.0)
    with pytest.raises(OrbiterError, match="reactivate it first"):
        m.deactivate(agent_id, "operator", "x", 2.0)


@pytest.mark.parametrize("first", ["deactivate", "drain"])
def test_an_operator_repeating_satellites_action_takes_it_over(first: str) -> None:
    m, agent_id, _, _ = cluster()
    act = getattr(m, first)
    args = (agent_id, 1.0) if first == "drain" else (agent_id,)
    act(*args, "satellite", "rule fired", 2.0)
    effects = act(*args, "operator", "keep it out", 3.0)
    assert any(isinstance(e, PersistRegistry) for e in effects)
    record = m.agents[agent_id].maintenance
    assert (record.by, record.reason) == ("operator", "keep it out")
    # Satellite repeating itself later does not take it back.
    assert act(*args, "satellite", "rule fired", 4.0) == []
    assert m.agents[agent_id].maintenance.by == "operator"


def test_an_inactive_pin_takes_the_agent_out_and_an_expired_pin_is_dropped() -> None:
    m, agent_id, _, _ = cluster()
    m.set_pin(agent_id, "inactive", 100.0, "hardware swap", 1.0)
    agent = m.agents[agent_id]
    assert agent.mode == master_pb2.DEACTIVATED and agent.maintenance.by == "operator"
    assert m.registry().agents[0].pin.state == "inactive"
    m.tick(101.0)
    assert agent.pin is None and not m.registry().agents[0].HasField("pin")


def test_after_a_restart_a_framework_gets_the_agent_timeout_to_come_back() -> None:
    m, _, fw_id, _ = cluster()
    restarted = Master(pb.MasterInfo(id="cccccccc0000"), CONFIG, 100.0)
    restarted.recover(m.registry(), 100.0)
    restarted.tick(100.0 + CONFIG.agent_timeout / 2)
    assert restarted.frameworks[fw_id].status.value == "disconnected"  # failover 0, still kept
    restarted.subscribe(pb.FrameworkInfo(id=fw_id, name="fw"), 108.0)
    assert restarted.frameworks[fw_id].status.value == "connected"


def test_after_a_restart_a_framework_that_never_comes_back_is_removed() -> None:
    m, _, fw_id, _ = cluster()
    restarted = Master(pb.MasterInfo(id="cccccccc0000"), CONFIG, 100.0)
    restarted.recover(m.registry(), 100.0)
    restarted.tick(100.0 + CONFIG.agent_timeout + 1)
    assert restarted.frameworks[fw_id].status.value == "completed"
