"""Runs of an example framework (examples/*.py) as a process of its own, read the way
a user would: the scheduler's output and the executor's stdout in its sandbox.

Shared by test_executors.py (Orbiter SDK executor) and test_pymesos_executor.py
(pymesos executor), whose examples print the same lines.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from proctools import Processes

    from tests.conftest import AgentProcess, MasterProcess

ORBITER = [sys.executable, "-m", "orbiter.cli"]
RUN_TIMEOUT = 90.0


def example_env() -> dict[str, str]:
    """This environment without ORBITER_* and MESOS_* settings, so the example sees only
    what its flags and the agent give it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ORBITER_", "MESOS_"))}
    env["PYTHONUNBUFFERED"] = "1"
    return env


@dataclass
class ExampleRun:
    """One run of an example framework, to its end. `launched` is the pattern of the line
    that names the agent its executor runs on (group 1: the agent id)."""

    returncode: int
    output: str
    agents: list[AgentProcess]
    launched: str

    def lines(self, pattern: str) -> list[re.Match[str]]:
        return [m for line in self.output.splitlines() if (m := re.fullmatch(pattern, line))]

    @property
    def framework_id(self) -> str:
        [m] = self.lines(r"subscribed as framework (\S+)")
        return m[1]

    @property
    def agent(self) -> AgentProcess:
        [m] = self.lines(self.launched)
        [agent] = [a for a in self.agents if a.agent_id == m[1]]
        return agent

    @property
    def executor_sandboxes(self) -> list[Path]:
        return list((self.agent.work_dir / "executors" / self.framework_id).iterdir())

    def executor_stdout(self) -> str:
        [sandbox] = self.executor_sandboxes
        return (sandbox / "stdout").read_text()


def run_to_end(args: list[str], log: Path) -> tuple[int, str]:
    """Run an example until it exits (at most RUN_TIMEOUT); its return code and output."""
    with log.open("w") as out:
        try:
            proc = subprocess.run(
                args, stdout=out, stderr=subprocess.STDOUT, env=example_env(),
                timeout=RUN_TIMEOUT,
            )  # fmt: skip
        except subprocess.TimeoutExpired:
            pytest.fail(f"the example did not end in {RUN_TIMEOUT:g}s:\n{log.read_text()}")
    return proc.returncode, log.read_text()


def restart_agent(agent: AgentProcess, master: MasterProcess, processes: Processes) -> None:
    """kill -9 the agent and start it again on the same work dir."""
    agent.proc.kill()
    agent.proc.wait(10)
    restart = [
        *ORBITER, "agent", "--master", master.address, "--work-dir", str(agent.work_dir),
        "--resources", "cpus:2;mem:1024;disk:1000",
    ]  # fmt: skip
    agent.proc = processes.start(restart, agent.log)
