"""An operator kills a task by id (`orbiter kill`): the master finds its framework and
agent, sends the kill, and refuses what it cannot do, changing nothing."""

from __future__ import annotations

import pytest

from orbiter.errors import Code, OrbiterError
from orbiter.master.effects import SendToAgent
from orbiter.proto import messages_pb2
from tests.unit.test_master_maintenance import cluster, launch, offers, subscribe

pb = messages_pb2


def test_an_operator_kill_sends_the_kill_to_the_tasks_agent_for_its_framework() -> None:
    m, agent_id, fw_id, _ = cluster()

    task, effects = m.operator_kill("t1", "", 5.0)

    assert (task.id, task.framework_id) == ("t1", fw_id)
    (send,) = effects
    assert isinstance(send, SendToAgent) and send.agent_id == agent_id
    (kill,) = send.message.kill_tasks.kills
    assert (kill.task_id, kill.framework_id, kill.grace_period) == ("t1", fw_id, 5.0)
    assert kill.reason == pb.REASON_TASK_KILLED


def test_without_a_grace_the_tasks_own_applies() -> None:
    m, _, _, _ = cluster()
    _, (send,) = m.operator_kill("t1", "", None)
    assert not send.message.kill_tasks.kills[0].HasField("grace_period")


def test_two_live_tasks_of_one_id_need_the_framework_named() -> None:
    m, _, first, _ = cluster()
    second, header = subscribe(m)
    (offer,) = offers(m.allocate(5.0))
    launch(m, header, offer, "t1")

    with pytest.raises(OrbiterError) as refused:
        m.operator_kill("t1", "", None)
    assert refused.value.code is Code.FAILED_PRECONDITION
    assert first in str(refused.value) and second in str(refused.value)

    task, effects = m.operator_kill("t1", second, None)
    assert task.framework_id == second and effects


@pytest.mark.parametrize(
    ("task_id", "framework_id", "grace", "code", "message"),
    [
        ("nope", "", None, Code.NOT_FOUND, "no live task 'nope'"),
        ("t1", "other-fw", None, Code.NOT_FOUND, "of framework 'other-fw'"),
        ("", "", None, Code.INVALID_ARGUMENT, "task_id is empty"),
        ("t1", "", -1.0, Code.INVALID_ARGUMENT, "grace must be between 0"),
        ("t1", "", float("nan"), Code.INVALID_ARGUMENT, "grace must be between 0"),
    ],
)
def test_a_kill_the_master_cannot_do_is_refused_and_sends_nothing(
    task_id: str, framework_id: str, grace: float | None, code: Code, message: str
) -> None:
    m, _, _, _ = cluster()
    with pytest.raises(OrbiterError) as refused:
        m.operator_kill(task_id, framework_id, grace)
    assert refused.value.code is code and message in str(refused.value)
    assert not m.frameworks[next(iter(m.frameworks))].tasks["t1"].kill_pending


def test_a_task_that_has_ended_is_refused_naming_its_final_state() -> None:
    m, _, fw_id, _ = cluster()
    fw = m.frameworks[fw_id]
    task = fw.tasks.pop("t1")
    task.state = pb.TASK_FINISHED
    fw.completed.append(task)

    with pytest.raises(OrbiterError) as refused:
        m.operator_kill("t1", "", None)

    assert refused.value.code is Code.FAILED_PRECONDITION
    assert "'t1' has ended already (TASK_FINISHED)" in str(refused.value)
