"""Whole Mesos frameworks, unmodified pymesos on both sides, on Orbiter's processes.

examples/pymesos_framework.py is a pymesos MesosSchedulerDriver whose tasks run in its
own pymesos MesosExecutorDriver (started by a real agent, speaking Mesos's v1 executor
API); examples/pymesos_volume.py reserves resources, creates a persistent volume and
uses it from two tasks through Mesos's RESERVE, CREATE, LAUNCH, DESTROY and UNRESERVE.
Each runs in a process of its own (pymesos interrupts the main thread when its I/O
thread fails); the tests read what a user would: the framework's output, the
executor's stdout in its sandbox and the master's operator API.
"""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import Cluster

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
RUN_TIMEOUT = 120.0


@dataclass
class Run:
    returncode: int
    output: str

    def has(self, pattern: str) -> bool:
        return any(re.fullmatch(pattern, line) for line in self.output.splitlines())

    def matches(self, pattern: str) -> list[re.Match[str]]:
        return [m for line in self.output.splitlines() if (m := re.fullmatch(pattern, line))]


def run(example: str, cluster: Cluster, *flags: str) -> Run:
    master = cluster.master.url.removeprefix("http://")
    try:
        done = subprocess.run(
            [sys.executable, str(ROOT / "examples" / example), "--master", master, *flags],
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT,
        )
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"{example} did not end in {RUN_TIMEOUT:g}s:\n{e.stdout}{e.stderr}")
    return Run(done.returncode, done.stdout + done.stderr)


@pytest.fixture(scope="module")
def framework(shared_cluster: Cluster) -> Run:
    return run("pymesos_framework.py", shared_cluster, "--tasks", "2", "--count", "3")


def test_tasks_run_in_the_frameworks_own_executor_to_finished(framework: Run) -> None:
    assert framework.returncode == 0, framework.output
    for task in ("count-0", "count-1"):
        progress = [m[1] for m in framework.matches(rf"{task} TASK_RUNNING: progress (\d)/3")]
        assert progress == ["0", "1", "2", "3"], framework.output
        assert framework.has(rf"{task} TASK_FINISHED: counted to 3"), framework.output


def test_framework_messages_pass_both_ways_before_and_after_failover(framework: Run) -> None:
    pongs = framework.matches(r"message from executor pyworker: pong: running (.*)")
    assert [m[1] for m in pongs][-1] == "hold", framework.output
    assert len(pongs) == 2, framework.output


def test_reconciliation_answers_for_the_running_task(framework: Run) -> None:
    assert framework.matches(r"reconciled hold: (\S+)")[0][1] == "TASK_RUNNING", framework.output


def test_a_second_driver_takes_the_framework_over_and_its_task_runs_on(
    framework: Run, shared_cluster: Cluster
) -> None:
    [first] = framework.matches(r"subscribed as framework (\S+)")
    [again] = framework.matches(r"subscribed again as framework (\S+)")
    assert again[1] == first[1]
    lines = framework.output.splitlines()
    failover = lines.index("stopped the first driver (failover)")
    assert "hold TASK_KILLED: killed" in lines[failover:], framework.output
    assert not any(line.startswith("hold TASK_") for line in lines[failover:] if "KILL" not in line)
    tasks = {t["id"]: t for t in shared_cluster.master.tasks(framework_id=first[1])}
    assert tasks["hold"]["state"] == "TASK_KILLED"
    assert {tasks[t]["state"] for t in ("count-0", "count-1")} == {"TASK_FINISHED"}


def test_a_kill_reaches_the_executor(framework: Run, shared_cluster: Cluster) -> None:
    [fw] = framework.matches(r"subscribed as framework (\S+)")
    sandboxes = [
        sandbox
        for agent in shared_cluster.agents
        for sandbox in (agent.work_dir / "executors" / fw[1]).glob("*")
    ]
    [sandbox] = sandboxes
    stdout = (sandbox / "stdout").read_text()
    assert "killing hold" in stdout
    assert stdout.count("executor registered with agent") == 1, stdout


def test_a_volume_is_reserved_created_used_by_two_tasks_and_given_back(
    shared_cluster: Cluster,
) -> None:
    volume = run("pymesos_volume.py", shared_cluster, "--size", "100")
    assert volume.returncode == 0, volume.output
    [reserved] = volume.matches(r"reserved, created vol-1 and launched writer on (\S+)")
    assert volume.has("writer TASK_FINISHED.*"), volume.output
    assert volume.has("offer shows vol-1: 100 MB of disk reserved for db at data"), volume.output
    assert volume.has("reader TASK_FINISHED.*"), volume.output
    assert volume.has("destroyed vol-1 and unreserved what was reserved"), volume.output
    assert volume.has("an offer shows nothing reserved by this framework"), volume.output
    agent = shared_cluster.master.get(f"/api/v1/agents/{reserved[1]}")
    assert agent["reservations"] == [] and agent["volumes"] == [], agent
    [reader] = [t for t in shared_cluster.master.tasks() if t["id"] == "reader"]
    assert reader["state"] == "TASK_FINISHED"
