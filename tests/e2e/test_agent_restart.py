"""Work outlives its agent: kill -9 an agent with tasks running, restart it, nothing is lost.

Real `orbiter master` and `orbiter agent` processes; `orbiter execute` as the
framework. The agent's tasks are held by its task keeper
(orbiter/agent/keeper.py), so a restarted agent takes them back: those still
running finish FINISHED with their whole output, and one that ended while the
agent was down is reported with its real exit status.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import psutil
import pytest

pytestmark = pytest.mark.slow

ORBITER = [sys.executable, "-m", "orbiter.cli"]


def restart(agent: Any) -> subprocess.Popen[bytes]:
    """Start `orbiter agent` again on the same work dir (same id, same keeper)."""
    args = [
        *ORBITER, "agent", "--master", agent.master.address, "--work-dir", str(agent.work_dir),
        "--resources", "cpus:2;mem:1024;disk:1000",
    ]  # fmt: skip
    agent.proc = agent.processes.start(args, agent.log)
    return agent.proc


def keepers(work_dir: Path) -> list[psutil.Process]:
    socket = str(work_dir / "keeper.sock")
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = proc.info["cmdline"] or []
        if "orbiter.agent.keeper" in cmdline and socket in cmdline:
            found.append(proc)
    return found


def test_a_killed_agent_takes_its_running_tasks_back_and_each_ends_truthfully(
    master: Any, agent_process: Any, processes: Any, tmp_path: Path, wait_until: Any
) -> None:
    agent = agent_process(master)
    log = tmp_path / "execute.log"
    execute = processes.start(
        [
            *ORBITER,
            "execute",
            "--master",
            master.address,
            "--name",
            "w",
            "--instances",
            "3",
            "--command",
            'sleep 3; echo "done $ORBITER_TASK_ID"; '
            'if [ "$ORBITER_TASK_ID" = w-2 ]; then exit 7; fi',
        ],
        log,
    )
    wait_until(lambda: len(master.tasks(state="TASK_RUNNING")) == 3, 15, "three tasks RUNNING")
    task_pids = {t["pid"] for t in agent.state()["tasks"]}
    (keeper,) = keepers(agent.work_dir)

    agent.proc.kill()  # kill -9: no goodbye
    agent.proc.wait(10)
    # The tasks and their keeper live on without the agent.
    assert all(psutil.pid_exists(pid) for pid in task_pids)
    assert keeper.is_running()
    # They end while the agent is away; it comes back only after that.
    wait_until(lambda: not any(psutil.pid_exists(p) for p in task_pids), 15, "tasks to end")
    restart(agent)

    assert execute.wait(30) == 1, log.read_text()  # one of its tasks failed
    out = log.read_text()
    assert "w-0: TASK_FINISHED" in out and "w-1: TASK_FINISHED" in out
    assert "w-2: TASK_FAILED (Command exited with status 7)" in out
    assert "restarted" not in out
    for i in range(3):
        sandbox = next(agent.work_dir.glob(f"sandboxes/*/w-{i}"))
        assert (sandbox / "stdout").read_text() == f"done w-{i}\n"
    assert keepers(agent.work_dir) == [keeper], "the same keeper serves the restarted agent"


def test_a_task_still_running_after_the_restart_can_be_killed_by_the_new_agent(
    master: Any, agent_process: Any, processes: Any, tmp_path: Path, wait_until: Any
) -> None:
    agent = agent_process(master)
    log = tmp_path / "execute.log"
    execute = processes.start(
        [
            *ORBITER,
            "execute",
            "--master",
            master.address,
            "--name",
            "long",
            "--command",
            "sleep 60",
        ],
        log,
    )
    wait_until(lambda: master.tasks(state="TASK_RUNNING"), 15, "the task RUNNING")
    (pid,) = [t["pid"] for t in agent.state()["tasks"]]

    agent.proc.kill()
    agent.proc.wait(10)
    restart(agent)
    wait_until(
        lambda: [t["state"] for t in agent.state()["tasks"]] == ["TASK_RUNNING"],
        15,
        "the restarted agent to hold the task as RUNNING",
    )
    assert psutil.pid_exists(pid)

    execute.send_signal(2)  # Ctrl-C: execute kills its tasks before it exits
    assert execute.wait(30) == 130
    wait_until(lambda: not psutil.pid_exists(pid), 10, "the task process to be gone")
    assert "long-0: TASK_KILLED" in log.read_text()


def test_a_stopped_agent_leaves_its_tasks_running_for_the_next_run(
    master: Any, agent_process: Any, processes: Any, tmp_path: Path, wait_until: Any
) -> None:
    """SIGTERM (systemctl restart, an upgrade) is a restart, not a drain."""
    agent = agent_process(master)
    log = tmp_path / "execute.log"
    execute = processes.start(
        [*ORBITER, "execute", "--master", master.address, "--name", "up",
         "--command", "sleep 3; echo survived"],
        log,
    )  # fmt: skip
    wait_until(lambda: master.tasks(state="TASK_RUNNING"), 15, "the task RUNNING")
    (pid,) = [t["pid"] for t in agent.state()["tasks"]]

    agent.proc.terminate()
    assert agent.proc.wait(15) == 0
    assert psutil.pid_exists(pid), "the task outlives the agent's stop"
    restart(agent)

    assert execute.wait(30) == 0, log.read_text()
    assert "up-0: TASK_FINISHED" in log.read_text()
    sandbox = next(agent.work_dir.glob("sandboxes/*/up-0"))
    assert (sandbox / "stdout").read_text() == "survived\n"
