"""A restarted agent takes back what its previous run left in the sandboxes: it resends
unacknowledged terminal updates, and kills and reports the tasks it cannot reattach to."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import psutil
import pytest

from orbiter.agent import checkpoint
from orbiter.agent.agent import Agent, AgentSettings
from orbiter.proto import messages_pb2 as pb
from orbiter.resources import Resources

FW = "F1"


def task_info(task_id: str) -> pb.TaskInfo:
    info = pb.TaskInfo(task_id=task_id, name=task_id)
    info.resources.extend(Resources.parse("cpus:0.1;mem:32").to_proto())
    info.command.shell = True
    info.command.value = "sleep 300"
    return info


def left_running(sandbox: Path) -> subprocess.Popen[bytes]:
    """A task process as the previous agent run left it: own session, cwd the sandbox."""
    return subprocess.Popen(["sleep", "300"], cwd=sandbox, start_new_session=True)


def gone(proc: subprocess.Popen[bytes], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return True
        time.sleep(0.02)
    return False


def queued(agent: Agent) -> dict[str, pb.TaskStatus]:
    return {status.task_id: status for _, status in agent.updates.pending()}


@pytest.fixture
def work_dir(tmp_path: Path) -> Path:
    return tmp_path / "agent"


async def start_agent(work_dir: Path) -> Agent:
    agent = Agent(
        AgentSettings(
            master="127.0.0.1:9",  # nobody there: recovery happens before the link
            work_dir=work_dir,
            resources=Resources.parse("cpus:1;mem:256"),
            watch_paths=[],
        )
    )
    await agent.start()
    return agent


@pytest.mark.parametrize("pid_known", [True, False], ids=["with-pid", "died-before-pid"])
async def test_a_task_left_running_is_killed_and_reported_failed(
    work_dir: Path, pid_known: bool
) -> None:
    sandbox = work_dir / "sandboxes" / FW / "t1"
    sandbox.mkdir(parents=True)
    proc = left_running(sandbox)
    try:
        checkpoint.write(sandbox, FW, task_info("t1"), proc.pid if pid_known else None)
        agent = await start_agent(work_dir)
        try:
            assert gone(proc), "the leftover task process is still running"
            status = queued(agent)["t1"]
            assert status.state == pb.TASK_FAILED
            assert status.reason == pb.REASON_AGENT_RESTARTED
            assert (FW, "t1") in agent.tasks
        finally:
            await agent.stop()
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


async def test_an_unacknowledged_terminal_update_is_sent_again_with_its_uuid(
    work_dir: Path,
) -> None:
    sandbox = work_dir / "sandboxes" / FW / "t2"
    sandbox.mkdir(parents=True)
    finished = pb.TaskStatus(
        task_id="t2", state=pb.TASK_FINISHED, uuid=b"u" * 16, message="Command exited with status 0"
    )
    checkpoint.write(sandbox, FW, task_info("t2"), 4242, finished)
    agent = await start_agent(work_dir)
    try:
        status = queued(agent)["t2"]
        assert (status.state, status.uuid) == (pb.TASK_FINISHED, b"u" * 16)
    finally:
        await agent.stop()


async def test_a_process_elsewhere_with_the_same_pid_number_is_not_touched(work_dir: Path) -> None:
    sandbox = work_dir / "sandboxes" / FW / "t3"
    sandbox.mkdir(parents=True)
    bystander = subprocess.Popen(["sleep", "300"], cwd=work_dir.parent, start_new_session=True)
    try:
        checkpoint.write(sandbox, FW, task_info("t3"), bystander.pid)  # pid reused by another
        agent = await start_agent(work_dir)
        try:
            assert queued(agent)["t3"].state == pb.TASK_FAILED
            assert psutil.Process(bystander.pid).status() != psutil.STATUS_ZOMBIE
            assert bystander.poll() is None
        finally:
            await agent.stop()
    finally:
        bystander.kill()
        bystander.wait()
