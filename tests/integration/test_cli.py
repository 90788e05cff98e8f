"""The `orbiter` command line: bad flags, tables and --json against a real cluster.

Most commands run in-process through `orbiter.cli.main` (fast, output through
capsys) against `orbiter master` / `orbiter agent` processes; one runs as a
process of its own to check the exit status a shell sees.
"""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from orbiter import cli
from orbiter.resources import InvalidResources, Resources

if TYPE_CHECKING:
    from tests.conftest import Cluster

ORBITER = [sys.executable, "-m", "orbiter.cli"]
NOWHERE = "127.0.0.1:1"  # nothing listens there: a command that gets that far fails


@dataclass
class Result:
    code: int
    out: str
    err: str


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> Result:
    """Run `orbiter ARGV...` in-process; argparse's exit(2) becomes a code like main's."""
    capsys.readouterr()
    try:
        code = cli.main(list(argv))
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 1
    captured = capsys.readouterr()
    return Result(code, captured.out, captured.err)


# ---------------------------------------------------------------------- bad flags

BAD_FLAGS = [
    # (argv, the flag named, the bad part named)
    (["agent", "--resources", "cpus:4;mem:lots"], "--resources", "mem:lots"),
    (["agent", "--resources", "cpus:4;mem"], "--resources", "'mem'"),
    (["agent", "--resources", "cpus:2;ports:[32000-31000]"], "--resources", "32000-31000"),
    (["agent", "--resources", "cpus:-1"], "--resources", "-1 is negative"),
    (["agent", "--resources", "cpus:1;cpus:2"], "--resources", "'cpus' given twice"),
    (["agent", "--resources", ""], "--resources", "no resources given"),
    (["agent", "--attributes", "rack"], "--attributes", "'rack'"),
    (["agent", "--attributes", "rack:r1;rack:r2"], "--attributes", "'rack' given twice"),
    (["agent", "--attributes", "rack r:1"], "--attributes", "'rack r'"),
    (["agent", "--master", "localhost"], "--master", "'localhost'"),
    (["agent", "--containerizers", "process,rkt"], "--containerizers", "'rkt'"),
    (["agent", "--containerizers", "process,null"], "--containerizers", "not both"),
    (["agent", "--http-port", "70000"], "--http-port", "'70000'"),
    (["master", "--port", "grpc"], "--port", "'grpc'"),
    (["master", "--agent-timeout", "0"], "--agent-timeout", "'0'"),
    (["master", "--offer-timeout", "soon"], "--offer-timeout", "'soon'"),
    (["master", "--allocation-interval", "-1"], "--allocation-interval", "'-1'"),
    (["up", "--agents", "0"], "--agents", "'0'"),
    (["up", "--resources", "gpus:x"], "--resources", "gpus:x"),
    (["execute", "--name", "x", "--command", "true", "--instances", "0"], "--instances", "'0'"),
    (["execute", "--name", "x", "--command", "true", "--env", "NOVALUE"], "--env", "'NOVALUE'"),
    (["execute", "--name", "x", "--command", "true", "--cpus", "-0.5"], "--cpus", "'-0.5'"),
    (["execute", "--command", "true"], "--name", "required"),
    (["tasks", "--master", "host:port"], "--master", "'host:port'"),
    (["cat", "--master", "127.0.0.1:99999", "t1"], "--master", "'127.0.0.1:99999'"),
]


@pytest.mark.parametrize(
    ("argv", "flag", "bad"), BAD_FLAGS, ids=[" ".join(a) for a, _, _ in BAD_FLAGS]
)
def test_a_bad_flag_exits_2_naming_the_flag_and_what_is_wrong_and_starts_nothing(
    argv: list[str],
    flag: str,
    bad: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def started(*args: Any, **kwargs: Any) -> None:
        raise AssertionError(f"`orbiter {' '.join(argv)}` started running despite the bad flag")

    monkeypatch.setattr(cli.asyncio, "run", started)
    work_dir = tmp_path / "work"
    extra = ["--work-dir", str(work_dir)] if argv[0] in ("agent", "master", "up") else []
    if argv[0] in ("agent", "execute", "tasks") and "--master" not in argv:
        extra += ["--master", NOWHERE]

    result = run(capsys, *argv, *extra)

    assert result.code == 2, result
    assert flag in result.err and bad in result.err, result.err
    assert result.out == ""
    assert not work_dir.exists()


TEXT = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
    max_size=30,
)


@settings(max_examples=60, deadline=None)
@given(resources=st.one_of(TEXT, st.lists(TEXT, max_size=4).map(";".join)))
def test_any_resources_text_the_parser_refuses_makes_agent_exit_2_with_its_message(
    resources: str,
) -> None:
    try:
        Resources.parse(resources)
    except InvalidResources as e:
        problem = str(e)
    else:
        assume(False)
    err = io.StringIO()
    with (
        pytest.MonkeyPatch.context() as mp,
        contextlib.redirect_stderr(err),
        contextlib.redirect_stdout(io.StringIO()),
    ):
        mp.setattr(cli.asyncio, "run", lambda *a, **k: pytest.fail("the agent started"))
        code = cli.main(["agent", "--master", NOWHERE, f"--resources={resources}"])
    assert code == 2
    assert f"--resources: {problem}" in err.getvalue()


def test_an_unknown_command_exits_2_naming_it(capsys: pytest.CaptureFixture[str]) -> None:
    result = run(capsys, "frobnicate")
    assert result.code == 2
    assert "'frobnicate'" in result.err


def test_an_agent_with_malformed_resources_exits_2_and_never_reaches_the_master(
    shared_cluster: Cluster, tmp_path: Path
) -> None:
    master = shared_cluster.master
    before = master.agents()
    work_dir = tmp_path / "agent"

    argv = ["agent", "--master", master.address, "--work-dir", str(work_dir)]
    proc = subprocess.run(
        [*ORBITER, *argv, "--resources", "cpus:4;mem:8G"],
        capture_output=True,
        text=True,
        timeout=30,
    )

    assert proc.returncode == 2, proc.stderr
    assert "--resources" in proc.stderr and "mem:8G" in proc.stderr
    assert not work_dir.exists()
    assert master.agents().keys() == before.keys()


# ---------------------------------------------------------------------- clients


def test_agents_prints_a_table_with_a_row_per_agent(
    shared_cluster: Cluster, capsys: pytest.CaptureFixture[str]
) -> None:
    result = run(capsys, "agents", "--master", shared_cluster.master.address)

    assert result.code == 0, result.err
    header, rule, *rows = result.out.splitlines()
    assert header.split()[:2] == ["ID", "HOST"] and "RESOURCES" in header
    assert set(rule) <= {"-", " "}
    assert sorted(row.split()[0] for row in rows) == sorted(
        a.agent_id for a in shared_cluster.agents
    )
    for row in rows:
        assert "connected" in row.split() and "cpus:4;mem:4096;disk:1000" in row


def test_agents_json_is_the_operator_api_document(
    shared_cluster: Cluster, capsys: pytest.CaptureFixture[str]
) -> None:
    result = run(capsys, "agents", "--master", shared_cluster.master.address, "--json")

    assert result.code == 0, result.err
    printed = {a["id"]: a for a in json.loads(result.out)["agents"]}
    served = shared_cluster.master.agents()
    assert printed.keys() == served.keys()
    for agent_id, agent in printed.items():
        assert agent.keys() == served[agent_id].keys()
        stable = ("hostname", "http_address", "status", "resources", "registered_time")
        assert {k: agent[k] for k in stable} == {k: served[agent_id][k] for k in stable}


def test_execute_exits_with_the_tasks_status_and_tasks_frameworks_cat_show_it(
    shared_cluster: Cluster, capsys: pytest.CaptureFixture[str]
) -> None:
    master = shared_cluster.master.address

    result = run(
        capsys, "execute", "--master", master, "--name", "cli-fail",
        "--command", "echo to out; echo to err >&2; exit 3",
    )  # fmt: skip

    assert result.code == 3, result.out + result.err
    assert "cli-fail-0: TASK_FAILED" in result.out

    tasks = run(capsys, "tasks", "--master", master, "--state", "TASK_FAILED", "--json")
    (task,) = [t for t in json.loads(tasks.out)["tasks"] if t["id"] == "cli-fail-0"]
    assert (task["exit_code"], task["reason"]) == (3, "REASON_COMMAND_EXITED")

    table = run(capsys, "tasks", "--master", master, "--framework", task["framework_id"])
    header, _, *rows = table.out.splitlines()
    assert header.split()[:2] == ["ID", "STATE"]
    assert [row.split()[:2] for row in rows] == [["cli-fail-0", "FAILED"]]

    frameworks = run(capsys, "frameworks", "--master", master)
    (row,) = [r for r in frameworks.out.splitlines() if r.startswith(task["framework_id"])]
    assert "orbiter-execute cli-fail" in row and "completed" in row.split()

    assert run(capsys, "cat", "--master", master, "cli-fail-0").out == "to out\n"
    assert run(capsys, "cat", "--master", master, "cli-fail-0", "stderr").out == "to err\n"


def test_an_empty_listing_prints_none(
    shared_cluster: Cluster, capsys: pytest.CaptureFixture[str]
) -> None:
    master = shared_cluster.master.address
    result = run(capsys, "tasks", "--master", master, "--framework", "no-such-framework")
    assert (result.code, result.out) == (0, "(none)\n")
    as_json = run(capsys, "tasks", "--master", master, "--framework", "x", "--json")
    assert json.loads(as_json.out) == {"tasks": []}


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["tasks", "--state", "SLEEPING"], "'SLEEPING' is not a task state"),
        (["cat", "no-such-task"], "no task 'no-such-task'"),
        (["frameworks"], None),
    ],
    ids=["unknown-state", "unknown-task", "no-error"],
)
def test_a_request_the_master_refuses_exits_2_with_its_message(
    shared_cluster: Cluster,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    message: str | None,
) -> None:
    result = run(capsys, *argv, "--master", shared_cluster.master.address)
    if message is None:
        assert (result.code, result.err) == (0, "")
    else:
        assert result.code == 2 and message in result.err, result
        assert result.out == ""


@pytest.mark.parametrize("command", ["agents", "frameworks", "tasks", "cat t1"])
def test_a_client_command_without_a_master_exits_2_naming_the_address(
    capsys: pytest.CaptureFixture[str], command: str
) -> None:
    result = run(capsys, *command.split(), "--master", NOWHERE)

    assert result.code == 2
    assert f"cannot reach the master at {NOWHERE}" in result.err
    assert result.out == ""


def test_agents_remove_takes_an_agent_out_for_good_and_events_say_so(
    master: Any, agent_process: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    agent = agent_process(master)
    address = master.address

    no_reason = run(capsys, "agents", "remove", agent.agent_id, "--master", address)
    assert no_reason.code == 2 and "--reason is required" in no_reason.err
    assert master.agents()[agent.agent_id]["status"] == "connected", "refused: nothing changed"

    removed = run(
        capsys, "agents", "remove", agent.agent_id, "--reason", "disk died", "--master", address
    )

    assert removed.code == 0, removed.err
    assert f"agent {agent.agent_id} removed" in removed.out
    assert master.agents()[agent.agent_id]["status"] == "gone"
    # Told to shut down, the agent process exits and may not come back under that id.
    agent.proc.wait(10)
    assert "removed" in agent.log.read_text()
    again = run(capsys, "agents", "remove", agent.agent_id, "--reason", "x", "--master", address)
    assert again.code == 2 and "was removed" in again.err

    events = run(capsys, "events", "--master", address, "--json")
    kinds = [(e["kind"], e["agent_id"]) for e in json.loads(events.out)["events"]]
    assert kinds == [("agent_registered", agent.agent_id), ("agent_removed", agent.agent_id)]
    table = run(capsys, "events", "--master", address)
    assert "agent_removed" in table.out and "by operator: disk died" in table.out
