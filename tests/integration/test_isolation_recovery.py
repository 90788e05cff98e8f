"""Cgroups across an agent restart, with real `orbiter master` and `orbiter agent`
processes: a task still running keeps its cgroup, the restarted agent kills the
whole cgroup (a `setsid` child too), and cgroups of tasks that are gone are removed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psutil
import pytest

from orbiter.agent.isolation import cgroups
from tests import needs
from tests.e2e.test_agent_restart import ORBITER, restart

MISSING = needs.root_and_cgroups_missing()
pytestmark = [pytest.mark.slow, needs.skip_outside_ci(MISSING)]


@pytest.fixture(autouse=True)
def _machine() -> None:
    needs.check(MISSING)





def task_cgroup(agent_id: str, task_id: str, controller: str = "memory") -> Path:
    layout = cgroups.detect()
    assert layout is not None
    root = layout.root(controller) if layout.version == 1 else layout.roots[0][1]
    (found,) = (root / "orbiter" / agent_id).glob(f"*/{task_id}")
    return found


def test_a_restarted_agent_kills_the_whole_cgroup_and_removes_leftovers(
    master: Any, agent_process: Any, processes: Any, tmp_path: Path, wait_until: Any
) -> None:
    agent = agent_process(master)
    log = tmp_path / "execute.log"
    execute = processes.start(
        [
            *ORBITER, "execute", "--master", master.address, "--name", "held",
            "--cpus", "0.2", "--mem", "48",
            "--command", "setsid sleep 1000 & echo $! > child.pid; sleep 1000",
        ],
        log,
    )  # fmt: skip
    wait_until(lambda: master.tasks(state="TASK_RUNNING"), 15, "the task RUNNING")
    (pid,) = [t["pid"] for t in agent.state()["tasks"]]
    sandbox = next(agent.work_dir.glob("sandboxes/*/held-0"))
    child = int(wait_until(lambda: (sandbox / "child.pid").read_text().strip(), 10, "child.pid"))
    memory_dir = task_cgroup(agent.agent_id, "held-0")
    assert (memory_dir / "memory.limit_in_bytes").read_text().strip() == str(48 * 1024 * 1024)
    assert "tasks are held to their resources with cgroups" in agent.log.read_text()
    assert {pid, child} <= {int(p) for p in (memory_dir / "cgroup.procs").read_text().split()}
    # A cgroup no running task owns: left by a task that ended while no agent ran.
    stray = memory_dir.parent / "gone-0"
    stray.mkdir()

    agent.proc.kill()
    agent.proc.wait(10)
    restart(agent)
    wait_until(
        lambda: [t["state"] for t in agent.state()["tasks"]] == ["TASK_RUNNING"],
        15,
        "the restarted agent to hold the task as RUNNING",
    )
    assert not stray.exists(), "the leftover cgroup is removed at start"
    assert memory_dir.exists(), "the running task keeps its cgroup"
    assert psutil.pid_exists(child)

    execute.send_signal(2)  # Ctrl-C: execute kills its task
    assert execute.wait(30) == 130
    assert "held-0: TASK_KILLED" in log.read_text()
    wait_until(lambda: not psutil.pid_exists(pid), 10, "the task gone")
    wait_until(lambda: not psutil.pid_exists(child), 10, "its setsid child gone too")
    wait_until(lambda: not memory_dir.exists(), 10, "its cgroup removed")


def test_a_task_over_its_mem_is_reported_failed_with_the_memory_limit(
    master: Any, agent_process: Any, processes: Any, tmp_path: Path
) -> None:
    agent_process(master)
    log = tmp_path / "execute.log"
    execute = processes.start(
        [
            *ORBITER, "execute", "--master", master.address, "--name", "hog", "--mem", "32",
            "--command", "head -c 300M /dev/zero | tail -n 1 | wc -c",
        ],
        log,
    )  # fmt: skip
    assert execute.wait(30) == 1, log.read_text()
    out = log.read_text()
    assert "hog-0: TASK_FAILED" in out
    assert "Memory limit exceeded" in out and "32 MiB" in out
