"""The `orbiter` command as a user runs it, as a process against real masters and agents:
kill, cat --follow, execute's summary, JSON lines and --follow, why a task is not
placed, Ctrl-C, drain --wait, --json on actions, and --master given an HTTP port."""

from __future__ import annotations

import contextlib
import http.client
import json
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tests.conftest import Cluster

ORBITER = [sys.executable, "-m", "orbiter.cli"]


def orbiter(*argv: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*ORBITER, *argv], capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
    )


def background(processes: Any, tmp_path: Path, name: str, *argv: str) -> tuple[Any, Path]:
    """`orbiter ARGV...` running on its own; its stdout and stderr go to the log."""
    log = tmp_path / f"{name}.log"
    return processes.start([*ORBITER, *argv], log), log


def task_state(master: Any, task_id: str, framework_id: str | None = None) -> str | None:
    tasks = [
        t for t in master.tasks()
        if t["id"] == task_id and (framework_id is None or t["framework_id"] == framework_id)
    ]  # fmt: skip
    return max(tasks, key=lambda t: t["updated"] or 0.0)["state"] if tasks else None


def test_kill_ends_a_running_task_and_the_framework_sees_it_killed(
    shared_cluster: Cluster, processes: Any, tmp_path: Path, wait_until: Any
) -> None:
    master = shared_cluster.master
    proc, log = background(
        processes, tmp_path, "execute", "execute", "--master", master.address,
        "--name", "to-kill", "--command", "sleep 300",
    )  # fmt: skip
    wait_until(lambda: task_state(master, "to-kill-0") == "TASK_RUNNING", 20, "task running")

    killed = orbiter("kill", "to-kill-0", "--master", master.address, "--wait", "--json")

    assert killed.returncode == 0, killed.stderr
    task = json.loads(killed.stdout)
    assert (task["id"], task["state"]) == ("to-kill-0", "TASK_KILLED")
    assert proc.wait(20) != 0
    output = log.read_text()
    assert "to-kill-0: TASK_KILLED" in output and "1 KILLED" in output

    again = orbiter("kill", "to-kill-0", "--master", master.address)
    assert again.returncode == 2 and "has ended already (TASK_KILLED)" in again.stderr


def test_cat_follow_prints_the_output_as_it_comes_and_stops_when_the_task_ends(
    shared_cluster: Cluster, processes: Any, tmp_path: Path, wait_until: Any
) -> None:
    master = shared_cluster.master
    command = "echo first; sleep 2; echo second; sleep 1; echo third"
    background(
        processes, tmp_path, "execute", "execute", "--master", master.address,
        "--name", "to-follow", "--command", command,
    )  # fmt: skip
    wait_until(lambda: task_state(master, "to-follow-0") == "TASK_RUNNING", 20, "task running")

    started = time.monotonic()
    followed = orbiter("cat", "to-follow-0", "--follow", "--master", master.address, timeout=30)

    assert followed.returncode == 0, followed.stderr
    assert followed.stdout == "first\nsecond\nthird\n"
    assert time.monotonic() - started >= 1.0, "it followed the task, not a finished file"
    assert task_state(master, "to-follow-0") == "TASK_FINISHED"


def test_execute_json_lines_end_in_a_summary_that_points_at_the_failed_tasks_stderr(
    shared_cluster: Cluster,
) -> None:
    master = shared_cluster.master.address

    ran = orbiter(
        "execute", "--master", master, "--name", "json-fail", "--instances", "2",
        "--command", "echo boom >&2; exit 4", "--json",
    )  # fmt: skip

    assert ran.returncode == 1, ran.stderr
    events = [json.loads(line) for line in ran.stdout.splitlines()]
    assert events[0]["event"] == "subscribed"
    states = [(e["task_id"], e["state"]) for e in events if e["event"] == "state"]
    assert ("json-fail-0", "TASK_FAILED") in states and ("json-fail-1", "TASK_FAILED") in states
    summary = events[-1]
    assert summary["event"] == "summary"
    assert (summary["states"], summary["exit_status"]) == ({"TASK_FAILED": 2}, 1)
    failed = summary["failed"][0]
    assert failed["exit_code"] == 4
    stderr = orbiter(*failed["stderr"].split()[1:])
    assert stderr.stdout == "boom\n", stderr.stderr
    as_json = orbiter(*failed["stderr"].split()[1:], "--json")
    assert json.loads(as_json.stdout)["text"] == "boom\n", as_json.stderr


def test_execute_prints_a_summary_by_final_state_and_follow_prints_the_output(
    shared_cluster: Cluster,
) -> None:
    master = shared_cluster.master.address

    ran = orbiter(
        "execute", "--master", master, "--name", "followed", "--follow",
        "--command", "echo out-1; echo err-1 >&2; echo out-2",
    )  # fmt: skip

    assert ran.returncode == 0, ran.stderr
    assert ran.stdout == "out-1\nout-2\n", "stdout is the task's own"
    assert "err-1\n" in ran.stderr
    assert "followed: 1/1 finished in" in ran.stderr and "(1 FINISHED); exit status 0" in ran.stderr


def test_execute_that_cannot_be_placed_says_why_and_ctrl_c_exits_at_once(
    shared_cluster: Cluster, processes: Any, tmp_path: Path, wait_until: Any
) -> None:
    master = shared_cluster.master.address
    proc, log = background(
        processes, tmp_path, "execute", "execute", "--master", master, "--name", "huge",
        "--command", "true", "--mem", "10000000", "--placement-timeout", "1s",
    )  # fmt: skip

    wait_until(lambda: "not placed" in log.read_text(), 20, "execute to say why")
    assert "no agent offers mem 10,000,000; the largest has 4,096" in log.read_text()

    proc.send_signal(signal.SIGINT)
    started = time.monotonic()
    assert proc.wait(10) == 130
    assert time.monotonic() - started < 5
    assert "1 WAITING" in log.read_text()


def test_every_agent_deactivated_is_named_as_the_reason(
    master: Any, agent_process: Any, processes: Any, tmp_path: Path, wait_until: Any
) -> None:
    agent = agent_process(master)
    off = orbiter("deactivate", agent.agent_id, "--reason", "test", "--master", master.address)
    assert off.returncode == 0, off.stderr

    proc, log = background(
        processes, tmp_path, "execute", "execute", "--master", master.address, "--name", "idle",
        "--command", "true", "--placement-timeout", "1s",
    )  # fmt: skip

    wait_until(lambda: "not placed" in log.read_text(), 20, "execute to say why")
    assert "every agent is deactivated" in log.read_text()
    proc.send_signal(signal.SIGINT)
    assert proc.wait(10) == 130


def test_drain_wait_shows_the_tasks_left_until_the_agent_is_drained(
    master: Any, agent_process: Any, processes: Any, tmp_path: Path, wait_until: Any
) -> None:
    agent = agent_process(master)
    background(
        processes, tmp_path, "execute", "execute", "--master", master.address,
        "--name", "drained", "--instances", "2", "--command", "sleep 300",
    )  # fmt: skip
    wait_until(lambda: len(master.tasks(state="TASK_RUNNING")) == 2, 20, "two tasks running")

    drained = orbiter(
        "drain", agent.agent_id, "--reason", "test", "--grace", "1s", "--wait",
        "--master", master.address,
    )  # fmt: skip

    assert drained.returncode == 0, drained.stderr
    lines = drained.stdout.splitlines()
    assert lines[0] == f"agent {agent.agent_id}: draining, 2 task(s) left"
    assert lines[-1] == f"agent {agent.agent_id}: drained, 0 task(s) left"
    assert master.agents()[agent.agent_id]["maintenance"]["mode"] == "drained"


def test_every_action_prints_json_with_json(master: Any, agent_process: Any) -> None:
    agent = agent_process(master)
    at = ["--master", master.address, "--json"]

    for argv, mode in [
        (["deactivate", agent.agent_id, "--reason", "r"], "deactivated"),
        (["reactivate", agent.agent_id], "active"),
        (["pin", agent.agent_id, "--state", "active", "--for", "1h", "--reason", "r"], "active"),
        (["unpin", agent.agent_id], "active"),
    ]:
        done = orbiter(*argv, *at)
        assert done.returncode == 0, done.stderr
        printed = json.loads(done.stdout)
        assert (printed["id"], printed["maintenance"]["mode"]) == (agent.agent_id, mode), argv

    added = orbiter("silence", "add", "alertname=X", "--comment", "c", *at)
    assert added.returncode == 0, added.stderr
    silence_id = json.loads(added.stdout)["silenceID"]
    expired = orbiter("silence", "expire", silence_id, *at)
    assert json.loads(expired.stdout) == {"expired": [silence_id]}

    reloaded = orbiter("rules", "reload", *at)
    assert reloaded.returncode == 0, reloaded.stderr
    assert json.loads(reloaded.stdout)["rules"] > 0

    removed = orbiter("agents", "remove", agent.agent_id, "--reason", "gone", *at)
    assert removed.returncode == 0, removed.stderr
    assert json.loads(removed.stdout)["status"] == "gone"


def test_master_given_its_http_port_names_the_grpc_port_and_logs_no_traceback(
    master: Any,
) -> None:
    http_address = f"127.0.0.1:{master.http_port}"

    wrong = orbiter("agents", "--master", http_address)

    assert wrong.returncode == 2
    assert (
        f"{http_address} is the master's HTTP port; its gRPC port is {master.port}, "
        f"use --master {master.address}"
    ) in wrong.stderr
    # And HTTP/1.1 spoken to the gRPC port.
    with contextlib.suppress(OSError, http.client.HTTPException):  # gRPC answers HTTP/2
        urllib.request.urlopen(f"http://{master.address}/", timeout=5)
    assert orbiter("agents", "--master", master.address).returncode == 0  # still serving
    log = master.log.read_text()
    assert "Traceback" not in log
    assert "a gRPC client dialled this HTTP port" in log


def test_tasks_state_takes_the_tables_names_in_any_case(shared_cluster: Cluster) -> None:
    master = shared_cluster.master
    done = orbiter(
        "execute", "--master", master.address, "--name", "state-names", "--command", "true"
    )
    assert done.returncode == 0, done.stderr

    for state in ["FINISHED", "finished", "TASK_FINISHED", "task_finished"]:
        listed = orbiter("tasks", "--state", state, "--json", "--master", master.address)

        assert listed.returncode == 0, listed.stderr
        tasks = json.loads(listed.stdout)["tasks"]
        assert "state-names-0" in {t["id"] for t in tasks}, state
        assert {t["state"] for t in tasks} == {"TASK_FINISHED"}, state
