"""One process per work dir: a second `orbiter up` (or `agent`) on a work dir in use
is refused at once, naming the holder's pid and the lock file, and the first
keeps serving; once the holder is gone, even by SIGKILL, the work dir is free."""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from tests.conftest import AgentProcess, MasterProcess

pytestmark = pytest.mark.slow

ORBITER = [sys.executable, "-m", "orbiter.cli"]
REFUSED_WITHIN = 15.0  # seconds: imports and argument checks, nothing more


def health(http: str) -> str:
    with urllib.request.urlopen(f"http://{http}/health", timeout=2) as resp:
        return json.load(resp)["status"]


def refused(args: list[str], holder: int, lock: Path) -> None:
    """Run a second process on a work dir in use; it must fail fast, naming pid and lock file."""
    started = time.monotonic()
    result = subprocess.run(args, capture_output=True, text=True, timeout=60)
    elapsed = time.monotonic() - started
    assert result.returncode != 0, result.stdout + result.stderr
    assert elapsed < REFUSED_WITHIN, f"refusal took {elapsed:.1f}s"
    assert f"in use by pid {holder}" in result.stderr, result.stderr
    assert f"(lock file {lock})" in result.stderr, result.stderr
    assert "stop that process or pick another --work-dir" in result.stderr


def up_args(work: Path) -> list[str]:
    return [*ORBITER, "up", "--work-dir", str(work), "--port", "0", "--http-port", "0"]


def start_up(processes: Any, wait_until: Any, work: Path, log: Path) -> tuple[Any, str]:
    """`orbiter up` on `work`, once it says it is up; with its operator HTTP address."""
    proc = processes.start(up_args(work), log)

    def ready() -> str | None:
        if proc.poll() is not None:
            raise AssertionError(f"orbiter up exited with {proc.returncode}:\n{log.read_text()}")
        found = re.search(r"master HTTP\s+http://([\d.]+:\d+)/", log.read_text())
        return found.group(1) if found and "Ctrl-C stops" in log.read_text() else None

    return proc, wait_until(ready, 30, f"orbiter up on {work} to be up")


def test_a_second_up_on_a_work_dir_in_use_is_refused_and_the_first_keeps_serving(
    tmp_path: Path, processes: Any, wait_until: Any
) -> None:
    work = tmp_path / "cluster"
    first, http = start_up(processes, wait_until, work, tmp_path / "first.log")

    refused(up_args(work), first.pid, work / ".lock")
    # Its parts' dirs are held too: a lone master or agent pointed inside is refused.
    refused(
        [*ORBITER, "master", "--work-dir", str(work / "master"), "--port", "0", "--http-port", "0"],
        first.pid,
        work / "master" / ".lock",
    )
    refused(
        [*ORBITER, "agent", "--master", "127.0.0.1:1", "--work-dir", str(work / "agent-0")],
        first.pid,
        work / "agent-0" / ".lock",
    )

    assert first.poll() is None and health(http) == "ok"
    assert (work / ".lock").read_text().strip() == str(first.pid)


def test_after_kill_9_of_the_holder_a_new_up_starts_on_its_work_dir(
    tmp_path: Path, processes: Any, wait_until: Any
) -> None:
    work = tmp_path / "cluster"
    first, _ = start_up(processes, wait_until, work, tmp_path / "first.log")
    first.kill()
    first.wait(10)

    second, http = start_up(processes, wait_until, work, tmp_path / "second.log")
    assert health(http) == "ok"
    assert (work / ".lock").read_text().strip() == str(second.pid)


def test_a_second_agent_on_a_work_dir_in_use_is_refused_until_the_first_dies(
    master: MasterProcess, agent_process: Any, processes: Any, tmp_path: Path
) -> None:
    first: AgentProcess = agent_process(master)
    args = [
        *ORBITER, "agent", "--master", master.address, "--work-dir", str(first.work_dir),
        "--resources", "cpus:1;mem:256;disk:100",
    ]  # fmt: skip

    refused(args, first.proc.pid, first.work_dir / ".lock")
    assert first.proc.poll() is None
    assert master.agents()[first.agent_id]["status"] == "connected"

    first.sigkill()
    master.wait_for(
        lambda m: m.agents()[first.agent_id]["status"] != "connected", 20, "the kill noticed"
    )
    log = tmp_path / "again.log"
    again = dataclasses.replace(first, proc=processes.start(args, log), log=log)
    again.wait_registered()
    assert again.agent_id == first.agent_id  # the same agent, recovered from its work dir
