"""Executors written for Mesos, with the unmodified pymesos package from PyPI, run by
Orbiter's agents: `orbiter master`, `orbiter agent` processes and
examples/pymesos_executor.py (an Orbiter SDK scheduler whose executor is a
pymesos MesosExecutorDriver program) as processes of their own.

The executor speaks Mesos's v1 executor HTTP API on the agent
(/api/v1/executor), found through the MESOS_* variables the agent sets. What
the tests read is what a user would: the scheduler's output and the
executor's stdout in its sandbox.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from conftest import free_port
from example_runs import ORBITER, RUN_TIMEOUT, ExampleRun, example_env, restart_agent, run_to_end
from hatools import get_json
from proctools import Processes, poll_until

if TYPE_CHECKING:
    from tests.conftest import AgentProcess, Cluster, MasterProcess

pytestmark = pytest.mark.slow

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "pymesos_executor.py"
Run = partial(ExampleRun, launched=r"launched \d+ tasks in executor pycounter on (\S+)")


def run_example(cluster: Cluster, log: Path, *flags: str) -> ExampleRun:
    args = [sys.executable, str(EXAMPLE), "--master", cluster.master.address, *flags]
    return Run(*run_to_end(args, log), cluster.agents)


@pytest.fixture(scope="module")
def counted(shared_cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> ExampleRun:
    """3 tasks counting to 4 in one pymesos executor; the scheduler kills count-0."""
    log = tmp_path_factory.mktemp("pycounter") / "scheduler.log"
    return run_example(
        shared_cluster, log, "--tasks", "3", "--count", "4", "--step", "0.3", "--kill", "1"
    )


def test_a_pymesos_executor_runs_its_tasks_to_finished(counted: ExampleRun) -> None:
    assert counted.returncode == 0, counted.output
    assert "3/3 tasks ended as asked" in counted.output
    for task in ("count-1", "count-2"):
        progress = [m[1] for m in counted.lines(rf"{task} TASK_RUNNING: progress (\d)/4")]
        assert progress == ["0", "1", "2", "3", "4"], counted.output
        assert counted.lines(rf"{task} TASK_FINISHED: counted to 4"), counted.output
    stdout = counted.executor_stdout()
    assert stdout.count("executor pycounter registered with agent") == 1, stdout
    assert sorted(re.findall(r"launching (\S+)", stdout)) == ["count-0", "count-1", "count-2"]


def test_a_pymesos_executor_kills_the_task_the_scheduler_kills(counted: ExampleRun) -> None:
    assert counted.lines(r"asked to kill count-0"), counted.output
    assert counted.lines(r"count-0 TASK_KILLED: killed"), counted.output
    assert "killing count-0" in counted.executor_stdout()


def test_framework_messages_pass_both_ways(counted: ExampleRun) -> None:
    assert counted.lines(r"sent ping to executor pycounter"), counted.output
    pongs = counted.lines(
        rf"message from executor pycounter on agent {counted.agent.agent_id}: "
        r"pong: (\d) tasks running"
    )
    assert len(pongs) == 1 and 1 <= int(pongs[0][1]) <= 3, counted.output
    assert "message from the scheduler: ping" in counted.executor_stdout()


def test_a_pymesos_executor_left_without_tasks_is_shut_down(
    counted: ExampleRun, wait_until: Any
) -> None:
    wait_until(
        lambda: "shutting down" in counted.executor_stdout(),
        timeout=20,
        what="the executor's SHUTDOWN (its stdout says 'shutting down')",
    )


def test_a_pymesos_executor_goes_on_through_an_agent_restart(
    master: MasterProcess,
    agent_process: Callable[..., AgentProcess],
    processes: Processes,
    tmp_path: Path,
    wait_until: Any,
) -> None:
    """kill -9 the agent while the tasks count, start it again: pymesos reconnects (the
    agent said MESOS_CHECKPOINT=1), subscribes again, and every task finishes."""
    agent = agent_process(master)
    log = tmp_path / "scheduler.log"
    args = [sys.executable, str(EXAMPLE), "--master", master.address, "--tasks", "2"]
    scheduler = processes.start([*args, "--count", "40", "--step", "0.1"], log)
    wait_until(lambda: "progress 5/40" in log.read_text(), 30, "a task at progress 5/40")

    restart_agent(agent, master, processes)

    assert scheduler.wait(RUN_TIMEOUT) == 0, log.read_text()
    run = Run(0, log.read_text(), [agent])
    for task in ("count-0", "count-1"):
        progress = [int(m[1]) for m in run.lines(rf"{task} TASK_RUNNING: progress (\d+)/40")]
        # In order. Those it could not send while the agent was away it sent again; one
        # the agent took just before it was killed may arrive twice (at least once, as
        # in Mesos), and a non-terminal one it had not passed on yet may be missing (the
        # agent checkpoints terminal updates; pymesos resends nothing on resubscribing).
        assert progress == sorted(progress) and progress[-1] == 40, run.output
        assert run.lines(rf"{task} TASK_FINISHED: counted to 40"), run.output
    stdout = run.executor_stdout()
    assert stdout.count("executor pycounter registered with agent") == 1, stdout
    assert f"re-registered with agent {agent.agent_id}, which restarted" in stdout


def test_with_authentication_on_a_pymesos_executor_must_send_its_token(
    processes: Processes, tmp_path: Path
) -> None:
    """A master and agent on loopback with a credentials file: the plain pymesos driver
    (no token) is refused with 401 and its task fails; the example's TokenExecutorDriver,
    which sends MESOS_EXECUTOR_AUTHENTICATION_TOKEN, runs its task to the end."""
    tokens = {"alice": "alice-token-0123456789", "agent": "agent-token-0123456789"}
    credentials = tmp_path / "credentials.yml"
    credentials.write_text(
        "principals:\n" + "".join(f"  - {{name: {n}, token: {t}}}\n" for n, t in tokens.items())
    )
    (tmp_path / "agent.token").write_text(tokens["agent"])
    port, http_port = free_port(), free_port()
    processes.start(
        [*ORBITER, "master", "--port", str(port), "--http-port", str(http_port),
         "--work-dir", str(tmp_path / "master"), "--credentials", str(credentials)],
        tmp_path / "master.log",
    )  # fmt: skip
    master = f"127.0.0.1:{port}"
    poll_until(lambda: _health(f"http://127.0.0.1:{http_port}/health"), 20, "the master")
    work_dir = tmp_path / "agent"
    processes.start(
        [*ORBITER, "agent", "--master", master, "--work-dir", str(work_dir),
         "--credentials", str(credentials), "--token-file", str(tmp_path / "agent.token"),
         "--resources", "cpus:2;mem:1024;disk:1000"],
        tmp_path / "agent.log",
    )  # fmt: skip
    env = dict(example_env(), ORBITER_TOKEN=tokens["alice"])

    def example(*flags: str) -> tuple[int, str, str]:
        args = [sys.executable, str(EXAMPLE), "--master", master, "--tasks", "1", *flags]
        proc = subprocess.run(args, capture_output=True, text=True, env=env, timeout=RUN_TIMEOUT)
        [m] = re.findall(r"subscribed as framework (\S+)", proc.stdout)
        [sandbox] = (work_dir / "executors" / m).iterdir()
        executor_output = (sandbox / "stdout").read_text() + (sandbox / "stderr").read_text()
        return proc.returncode, proc.stdout, executor_output

    code, output, executor = example("--count", "2", "--step", "0.1", "--send-token")
    assert code == 0, output + executor
    assert "count-0 TASK_FINISHED: counted to 2" in output
    assert "1/1 tasks ended as asked; pong received" in output

    code, output, executor = example("--count", "2", "--step", "0.1")
    assert code == 1, output + executor
    assert re.search(r"count-0 TASK_FAILED: executor exited with status \d+", output), output
    assert "401" in executor and "MESOS_EXECUTOR_AUTHENTICATION_TOKEN" in executor, executor


def _health(url: str) -> bool:
    try:
        return get_json(url)["status"] == "ok"
    except OSError:
        return False
