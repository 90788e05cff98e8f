"""The data behind the web UI's pages, pure: the overview's summary, a task's state
history, and Satellite's policy budget."""

from __future__ import annotations

import pytest

from orbiter.master import views
from orbiter.master.effects import Effect, SendToFramework
from orbiter.master.state import TASK_HISTORY_KEPT, Master, MasterConfig
from orbiter.proto import agent_pb2, messages_pb2, scheduler_pb2
from orbiter.resources import Resources
from orbiter.satellite.policy import (
    Action,
    ActionRecord,
    AgentSnapshot,
    PolicyConfig,
    PolicyState,
    Tracked,
    budget,
)

pb = messages_pb2
TS = pb.TaskState


def register(m: Master, link: int) -> str:
    msg = agent_pb2.AgentMessage.Register()
    msg.info.hostname = f"h{link}"
    msg.info.http_address = f"h{link}:1"
    msg.info.resources.extend(Resources.parse("cpus:4;mem:1024").to_proto())
    agent_id, _ = m.agent_register(link, msg, 0.0)
    return agent_id


def offers(effects: list[Effect]) -> list[pb.Offer]:
    return [
        o
        for e in effects
        if isinstance(e, SendToFramework) and e.event.type == scheduler_pb2.Event.OFFERS
        for o in e.event.offers.offers
    ]


def cluster(agents: int = 3) -> tuple[Master, list[str], str]:
    """`agents` agents; one framework running task t1 (cpus:1;mem:64) on the first."""
    m = Master(pb.MasterInfo(id="cccccccc0000", hostname="m1"), MasterConfig(), 0.0)
    ids = [register(m, i + 1) for i in range(agents)]
    fw_id, stream, _ = m.subscribe(pb.FrameworkInfo(name="fw"), 0.0)
    header = scheduler_pb2.CallHeader(framework_id=fw_id, stream_id=stream)
    offer = next(o for o in offers(m.allocate(0.5)) if o.agent_id == ids[0])
    task = pb.TaskInfo(task_id="t1", name="t1")
    task.resources.extend(Resources.parse("cpus:1;mem:64").to_proto())
    task.command.value = "sleep 100"
    op = scheduler_pb2.Operation(type=scheduler_pb2.Operation.LAUNCH)
    op.launch.task_infos.append(task)
    m.accept(header, [offer.id], [op], scheduler_pb2.Filters(refuse_seconds=0), 1.0)
    return m, ids, fw_id


def update(m: Master, fw_id: str, agent_id: str, state: int, now: float, message: str = "") -> None:
    status = pb.TaskStatus(
        task_id="t1",
        agent_id=agent_id,
        state=state,
        source=pb.SOURCE_AGENT,
        message=message,
        timestamp=now,
        uuid=bytes([state]) * 8 + int(now).to_bytes(8, "big"),
    )
    m.status_updates(agent_id, 1, [agent_pb2.StatusUpdate(framework_id=fw_id, status=status)], now)


def test_the_summary_counts_agents_by_state_and_resources_by_kind() -> None:
    m, ids, _ = cluster()
    m.deactivate(ids[1], "operator", "bad disk", 2.0)
    m.drain(ids[2], 30.0, "operator", "kernel upgrade", 2.0)
    s = views.summary_view(m)
    # The drained agent ran nothing, so it is drained at once.
    assert s["agents"] == {
        "active": 1, "deactivated": 1, "draining": 0, "drained": 1, "unreachable": 0, "gone": 0,
    }  # fmt: skip
    cpus = s["resources"]["cpus"]
    assert (cpus["total"], cpus["used"]) == (12.0, 1.0)
    assert cpus["idle"] == cpus["total"] - cpus["used"] - cpus["offered"]
    assert s["tasks"] == {"TASK_STAGING": 1}
    assert s["frameworks"] == {"connected": 1}
    assert s["master"]["hostname"] == "m1"


def test_an_agent_removed_for_good_is_gone_and_its_resources_are_not_counted() -> None:
    m, ids, _ = cluster(2)
    m.remove_agent(ids[1], "operator", "dead disk", 3.0)
    s = views.summary_view(m)
    assert s["agents"]["gone"] == 1 and s["agents"]["active"] == 1
    assert s["resources"]["cpus"]["total"] == 4.0


def test_a_task_keeps_the_updates_that_changed_its_state_with_their_reasons() -> None:
    m, ids, fw_id = cluster(1)
    update(m, fw_id, ids[0], TS.TASK_STARTING, 2.0)
    update(m, fw_id, ids[0], TS.TASK_RUNNING, 3.0)
    update(m, fw_id, ids[0], TS.TASK_RUNNING, 4.0, "a resend: not a change")
    update(m, fw_id, ids[0], TS.TASK_FAILED, 5.0, "exit 3")
    (task,) = views.tasks_view(m, task_id="t1")
    assert [(h["state"], h["time"], h["message"]) for h in task["history"]] == [
        ("TASK_STARTING", 2.0, ""),
        ("TASK_RUNNING", 3.0, ""),
        ("TASK_FAILED", 5.0, "exit 3"),
    ]
    assert task["history"][0]["source"] == "agent"
    assert "history" not in views.tasks_view(m)[0]  # lists stay small


def test_a_long_history_keeps_the_first_updates_and_the_newest() -> None:
    m, ids, fw_id = cluster(1)
    states = [TS.TASK_STARTING, TS.TASK_RUNNING] * TASK_HISTORY_KEPT
    for i, state in enumerate(states):
        update(m, fw_id, ids[0], state, 10.0 + i)
    (task,) = views.tasks_view(m, task_id="t1")
    times = [h["time"] for h in task["history"]]
    assert len(times) == TASK_HISTORY_KEPT
    assert times[0] == 10.0 and times[-1] == 10.0 + len(states) - 1
    assert times == sorted(times)


NOW = 1_700_000_000.0


def agents(out: int, total: int, gone: int = 0) -> list[AgentSnapshot]:
    snaps = [AgentSnapshot(f"a{i}", "active", "") for i in range(total - out)]
    snaps += [AgentSnapshot(f"o{i}", "deactivated", "satellite") for i in range(out)]
    snaps += [AgentSnapshot(f"g{i}", "active", "", status="gone") for i in range(gone)]
    return snaps


@pytest.mark.parametrize(
    ("fraction", "snapshot", "allowed", "used", "room"),
    [
        (0.3, agents(0, 10), 3, 0, 3),
        (0.3, agents(1, 10), 3, 1, 2),
        (0.3, agents(4, 10), 3, 4, 0),  # over the limit: no room, never negative
        (0.5, agents(1, 4, gone=4), 2, 1, 1),  # gone agents are not counted
        (0.0, agents(0, 3), 0, 0, 0),
    ],
)
def test_the_budget_counts_what_the_policy_counts(
    fraction: float, snapshot: list[AgentSnapshot], allowed: int, used: int, room: int
) -> None:
    b = budget(PolicyConfig(max_unhealthy_fraction=fraction), PolicyState(), snapshot, NOW)
    assert (b.allowed, len(b.out), b.room) == (allowed, used, room)
    assert b.total == len([a for a in snapshot if a.status != "gone"])


def test_the_budget_counts_take_outs_in_the_window_and_who_satellite_has_out() -> None:
    config = PolicyConfig(window_seconds=600)
    state = PolicyState(
        history=(
            ActionRecord(NOW - 700, "o0", Action.DEACTIVATE),  # outside the window
            ActionRecord(NOW - 100, "o0", Action.DRAIN),
            ActionRecord(NOW - 50, "a1", Action.REACTIVATE),  # reactivations are free
        ),
        tracked={"o0": Tracked("NodeUnhealthy", None)},
    )
    b = budget(config, state, agents(1, 5), NOW)
    assert b.actions_in_window == 1
    assert b.satellite_out == ("o0",)
    assert b.out == ("o0",)
