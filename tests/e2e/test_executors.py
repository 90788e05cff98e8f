"""Frameworks' own executors on a real cluster: `orbiter master`, two `orbiter agent`
processes and examples/executor_framework.py as a process of its own.

The example launches its tasks on one agent, all in one executor (the same
file run with --executor), which counts to N in each task and reports every
step; the scheduler pings the executor and the executor answers. What the
tests read is what a user would: the scheduler's output, and the executor's
stdout in its sandbox on the agent.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from example_runs import RUN_TIMEOUT, ExampleRun, restart_agent, run_to_end
from hatools import get_json

if TYPE_CHECKING:
    from proctools import Processes

    from tests.conftest import AgentProcess, Cluster, MasterProcess

pytestmark = pytest.mark.slow

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "executor_framework.py"
Run = partial(ExampleRun, launched=r"launched 3 tasks in executor counter on agent (\S+)")


def run_example(cluster: Cluster, log: Path, *flags: str) -> ExampleRun:
    args = [sys.executable, str(EXAMPLE), "--master", cluster.master.address, "--tasks", "3"]
    return Run(*run_to_end([*args, *flags], log), cluster.agents)


@pytest.fixture(scope="module")
def counted(shared_cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> ExampleRun:
    """The example run once: 3 tasks, each counting to 4."""
    log = tmp_path_factory.mktemp("counter") / "scheduler.log"
    return run_example(shared_cluster, log, "--count", "4", "--step", "0.1")


def test_three_tasks_finish_in_one_executor_reporting_progress(counted: ExampleRun) -> None:
    assert counted.returncode == 0, counted.output
    assert "3/3 tasks finished" in counted.output
    for task in ("count-0", "count-1", "count-2"):
        progress = [m[1] for m in counted.lines(rf"{task} TASK_RUNNING: progress (\d)/4")]
        assert progress == ["0", "1", "2", "3", "4"], counted.output
        assert counted.lines(rf"{task} TASK_FINISHED: counted to 4"), counted.output

    # One executor process took all three tasks.
    assert len(counted.executor_sandboxes) == 1
    stdout = counted.executor_stdout()
    assert stdout.count("executor counter registered with agent") == 1, stdout
    assert sorted(re.findall(r"launching (\S+)", stdout)) == ["count-0", "count-1", "count-2"]


def test_the_executor_answers_the_schedulers_ping(counted: ExampleRun) -> None:
    assert counted.lines(r"sent ping to executor counter"), counted.output
    agent_id = counted.agent.agent_id
    pongs = counted.lines(
        rf"message from executor counter on agent {agent_id}: pong: (\d) tasks running"
    )
    assert len(pongs) == 1 and 1 <= int(pongs[0][1]) <= 3, counted.output
    assert "message from the scheduler: ping" in counted.executor_stdout()


def test_an_executor_left_without_tasks_is_shut_down(counted: ExampleRun, wait_until: Any) -> None:
    wait_until(
        lambda: "shutting down" in counted.executor_stdout(),
        timeout=20,
        what="the executor's SHUTDOWN (its stdout says 'shutting down')",
    )


def test_a_crashed_executor_fails_its_running_tasks(
    shared_cluster: Cluster, tmp_path: Path
) -> None:
    run = run_example(
        shared_cluster, tmp_path / "scheduler.log", "--count", "100", "--step", "0.1",
        "--crash-at", "1",
    )  # fmt: skip

    assert run.returncode == 1, run.output
    assert run.lines(r"count-\d TASK_RUNNING: progress 1/100"), run.output
    assert "exiting with status 3" in run.executor_stdout()
    for task in ("count-0", "count-1", "count-2"):
        [failed] = run.lines(rf"{task} TASK_FAILED: (.*)")
        assert "executor exited with status 3" in failed[1], run.output
    assert "0/3 tasks finished" in run.output
    agent_id = run.agent.agent_id
    assert run.lines(
        rf"executor counter on agent {agent_id} ended: executor exited with status 3"
    ), run.output
    # Its resources are free again: the master holds no executor on the agent.
    state = get_json(f"{shared_cluster.master.url}/api/v1/agents/{agent_id}")
    assert state["executors"] == [], state


def test_the_executor_goes_on_through_an_agent_restart(
    master: MasterProcess,
    agent_process: Callable[..., AgentProcess],
    processes: Processes,
    tmp_path: Path,
    wait_until: Any,
) -> None:
    """kill -9 the agent while the tasks count, start it again: the executor (held by
    the agent's task keeper) reconnects, hands back its updates, and every task finishes."""
    agent = agent_process(master)
    log = tmp_path / "scheduler.log"
    args = [sys.executable, str(EXAMPLE), "--master", master.address, "--tasks", "3"]
    scheduler = processes.start([*args, "--count", "30", "--step", "0.1"], log)
    wait_until(lambda: "progress 5/30" in log.read_text(), 30, "a task at progress 5/30")

    restart_agent(agent, master, processes)

    assert scheduler.wait(RUN_TIMEOUT) == 0, log.read_text()
    run = Run(0, log.read_text(), [agent])
    for task in ("count-0", "count-1", "count-2"):
        progress = [int(m[1]) for m in run.lines(rf"{task} TASK_RUNNING: progress (\d+)/30")]
        assert progress == list(range(31)), run.output  # none lost, none twice, in order
        assert run.lines(rf"{task} TASK_FINISHED: counted to 30"), run.output
    stdout = run.executor_stdout()
    assert stdout.count("registered with agent") == 2, stdout  # once, then once again
    assert f"re-registered with agent {agent.agent_id}, which restarted" in stdout
