"""The null containerizer, and the termination rules every containerizer shares."""

import asyncio
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orbiter.agent.containerizer import (
    Container,
    Containerizer,
    LaunchError,
    NullContainerizer,
    Termination,
)
from orbiter.agent.containerizer.base import exit_termination, kill_termination
from orbiter.proto import messages_pb2 as pb

KILLED = Termination(pb.TASK_KILLED, pb.REASON_TASK_KILLED, "Task killed", None)


def task(task_id: str = "t1", container_type: int | None = None) -> pb.TaskInfo:
    info = pb.TaskInfo(task_id=task_id, name=task_id)
    if container_type is not None:
        info.container.type = container_type
    return info


async def launch(task_id: str = "t1") -> Container:
    return await NullContainerizer().launch(task(task_id), Path("/nonexistent"), {})


async def test_null_container_has_the_task_id_and_no_pid():
    container = await launch("web-1")

    assert container.task_id == "web-1"
    assert container.pid is None
    assert isinstance(container, Container)
    assert isinstance(NullContainerizer(), Containerizer)


async def test_null_task_keeps_running_until_killed():
    container = await launch()
    waiter = asyncio.ensure_future(container.wait())
    for _ in range(5):
        await asyncio.sleep(0)

    assert not waiter.done()
    await container.kill(grace_period=10)
    assert await asyncio.wait_for(waiter, 1) == KILLED


async def test_null_kill_is_immediate_and_idempotent():
    container = await launch()

    await container.kill(grace_period=30)
    await container.kill(grace_period=0)

    assert await container.wait() == KILLED


async def test_every_waiter_gets_the_same_termination():
    container = await launch()
    waiters = [asyncio.ensure_future(container.wait()) for _ in range(3)]

    await container.kill(grace_period=1)
    results = await asyncio.gather(*waiters)

    assert all(result is results[0] for result in results)
    assert await container.wait() is results[0]


async def test_a_cancelled_waiter_does_not_cancel_the_task():
    container = await launch()
    impatient = asyncio.ensure_future(container.wait())
    patient = asyncio.ensure_future(container.wait())
    await asyncio.sleep(0)

    impatient.cancel()
    await container.kill(grace_period=1)

    assert await asyncio.wait_for(patient, 1) == KILLED
    assert impatient.cancelled()


async def test_ten_thousand_null_tasks_start_no_asyncio_tasks_and_all_die_on_kill():
    cz = NullContainerizer()
    tasks_before = len(asyncio.all_tasks())

    containers = [await cz.launch(task(f"t{i}"), Path("/nonexistent"), {}) for i in range(10_000)]
    assert len(asyncio.all_tasks()) == tasks_before

    for container in containers:
        await container.kill(grace_period=0)
    results = [await container.wait() for container in containers]

    assert results == [KILLED] * 10_000
    assert {c.task_id for c in containers} == {f"t{i}" for i in range(10_000)}


async def test_null_containerizer_refuses_docker_tasks():
    with pytest.raises(LaunchError, match="docker containerizer is not available"):
        await NullContainerizer().launch(
            task(container_type=pb.ContainerInfo.DOCKER), Path("."), {}
        )


async def test_null_containerizer_accepts_an_explicit_mesos_container():
    container = await NullContainerizer().launch(
        task(container_type=pb.ContainerInfo.MESOS), Path("."), {}
    )
    assert container.task_id == "t1"


# Shared termination rules (orbiter/agent/containerizer/base.py)


FAILED, EXITED, SIGNALED = pb.TASK_FAILED, pb.REASON_COMMAND_EXITED, pb.REASON_COMMAND_SIGNALED


@pytest.mark.parametrize(
    ("returncode", "expected"),
    [
        (0, (pb.TASK_FINISHED, EXITED, "Command exited with status 0", 0)),
        (3, (FAILED, EXITED, "Command exited with status 3", 3)),
        (-11, (FAILED, SIGNALED, "Command terminated by signal SIGSEGV", None)),
        (-9, (FAILED, SIGNALED, "Command terminated by signal SIGKILL", None)),
        (-99, (FAILED, SIGNALED, "Command terminated by signal 99", None)),
    ],
)
def test_exit_status_becomes_a_termination(returncode, expected):
    assert exit_termination(returncode) == Termination(*expected)


@given(st.integers(min_value=1, max_value=255))
def test_any_nonzero_exit_fails_and_names_its_status(status):
    result = exit_termination(status)

    assert (result.state, result.reason, result.exit_code) == (
        pb.TASK_FAILED,
        pb.REASON_COMMAND_EXITED,
        status,
    )
    assert result.message.endswith(f"status {status}")


@pytest.mark.parametrize(
    ("returncode", "sigkill_after", "message", "exit_code"),
    [
        (-15, None, "Task killed with SIGTERM", None),
        (0, None, "Task killed with SIGTERM", 0),
        (-9, 2.0, "Task killed with SIGKILL after 2 s grace", None),
        (-9, 0.5, "Task killed with SIGKILL after 0.5 s grace", None),
    ],
)
def test_a_requested_kill_is_task_killed_however_the_command_ended(
    returncode, sigkill_after, message, exit_code
):
    assert kill_termination(returncode, sigkill_after) == Termination(
        pb.TASK_KILLED, pb.REASON_TASK_KILLED, message, exit_code
    )
