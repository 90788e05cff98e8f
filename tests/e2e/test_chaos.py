"""bench/chaos.py in its short mode: masters, agents and the framework killed with SIGKILL.

A real ZooKeeper, three masters, four agents and a framework process that
launches short tasks with known exit statuses; the script kills one of them
every 10-15 s (the leader first) and restarts it. The test reads the
script's JSON result: every task launched ended exactly once, with the exit
status its command was meant to have.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "chaos.py"
MIN_TASKS = 50


def test_every_task_ends_once_with_its_exit_status_through_kills(tmp_path: Path) -> None:
    result_path = tmp_path / "result.json"
    run = subprocess.run(
        [
            sys.executable, str(SCRIPT), "--quick", "--seed", "3",
            "--work-dir", str(tmp_path / "chaos"), "--json", str(result_path),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )  # fmt: skip
    output = f"exit status {run.returncode}\n{run.stdout}\n{run.stderr}"
    assert result_path.exists(), output
    result = json.loads(result_path.read_text())

    assert result["leader_kills"] >= 1, output
    assert result["launched"] >= MIN_TASKS, output
    assert result["double_terminal"] == 0, output
    assert result["exit_mismatch"] == 0, output
    assert result["never_ended"] == 0, output
    assert run.returncode == 0, output
