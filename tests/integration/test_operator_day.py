"""The operator's day against real processes: what advertised hosts others see, what
pin and unpin print, and Satellite's decision log showing operators' actions beside
its own (tagged by actor), with refused rules reloads and their reason."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from orbiter import cli
from orbiter.discovery import LeaderInfo, NoLeader, leader_once
from tests.conftest import ORBITER, AgentProcess, MasterProcess, free_port

if TYPE_CHECKING:
    from tests.conftest import Processes
    from tests.zkserver import ZooKeeperServer


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = cli.main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def start_master(processes: Processes, tmp_path: Path, *flags: str) -> MasterProcess:
    m = MasterProcess(
        processes, tmp_path / "master", free_port(), free_port(), list(flags),
        tmp_path / "master.log",
    )  # fmt: skip
    m.start()
    return m


def start_agent(processes: Processes, tmp_path: Path, master: MasterProcess) -> AgentProcess:
    work, log = tmp_path / "agent", tmp_path / "agent.log"
    args = [
        *ORBITER, "agent", "--master", master.address, "--work-dir", str(work),
        "--resources", "cpus:1;mem:256;disk:100", "--containerizer", "null",
        "--advertise-host", "localhost",
    ]  # fmt: skip
    agent = AgentProcess(master, processes, work, log, processes.start(args, log))
    agent.wait_registered()
    return agent


def _leader(zk: str) -> LeaderInfo | None:
    try:
        return leader_once(zk, 5.0)
    except NoLeader:
        return None  # the election is under way


def test_advertised_hosts_are_what_zookeeper_clients_and_the_master_see(
    processes: Processes, tmp_path: Path, zookeeper: ZooKeeperServer
) -> None:
    """Bound to 127.0.0.1, published as `localhost`: the name others are told to use."""
    zk = zookeeper.url()
    master = start_master(
        processes, tmp_path, "--zk", zk, "--advertise-host", "localhost", "--no-satellite"
    )
    leader = master.wait_for(lambda m: _leader(zk), 15.0, "the master to publish itself")
    assert (leader.grpc_address, leader.http_address) == (
        f"localhost:{master.port}",
        f"localhost:{master.http_port}",
    )
    assert cli.master_http(master.address) == f"localhost:{master.http_port}"
    agent = start_agent(processes, tmp_path, master)
    (seen,) = master.agents().values()
    assert seen["http_address"].startswith("localhost:")
    assert seen["id"] == agent.agent_id


def test_pin_and_unpin_print_what_they_did_and_the_decision_log_shows_operators(
    processes: Processes, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rules = tmp_path / "my.rules.yml"
    rules.write_text("groups: []\n")
    config = tmp_path / "orbiter.yml"
    config.write_text("satellite:\n  rule_files: [my.rules.yml]\n")
    master = start_master(processes, tmp_path, "--config", str(config))
    agent = start_agent(processes, tmp_path, master)
    a, at = agent.agent_id, ("--master", master.address)

    assert run(capsys, "deactivate", a, "--reason", "disk", *at)[1] == (
        f"agent {a}: deactivated by operator: disk\n"
    )
    code, out, _ = run(capsys, "pin", a, "--state", "active", "--for", "2h", "--reason", "k", *at)
    assert code == 0
    assert out.startswith(f"agent {a}: reactivated (was deactivated) and pinned active (")
    assert "Satellite will not deactivate or drain it until the pin expires: k" in out
    assert master.agents()[a]["maintenance"]["mode"] == "active"
    run(capsys, "pin", a, "--state", "inactive", "--for", "1h", "--reason", "swap", *at)
    assert run(capsys, "unpin", a, *at)[1] == (
        f"agent {a}: unpinned, stays deactivated by operator: `orbiter reactivate` puts it back\n"
    )
    assert run(capsys, "unpin", a, *at)[1] == f"agent {a}: was not pinned; nothing changed\n"

    code, _, err = run(capsys, "rules", "reload", *at)
    assert code == 0, err
    rules.write_text("groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: up ==\n")
    code, _, err = run(capsys, "rules", "reload", *at)
    assert code != 0 and "refused" in err

    def log() -> list[dict[str, str]]:
        code, out, err = run(capsys, "satellite", "events", "--json", *at)
        assert code == 0, err
        return json.loads(out)["events"]

    deadline = time.monotonic() + 10
    while sum(e["action"] == "rules reload" for e in log()) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    events = log()
    seen = [(e["actor"], e["action"], e["agent"], e["outcome"], e["principal"]) for e in events]
    assert seen == [
        ("operator", "deactivate", a, "done", ""),
        ("operator", "pin", a, "done", ""),
        ("operator", "pin", a, "done", ""),
        ("operator", "unpin", a, "done", ""),
        ("operator", "unpin", a, "done", ""),
        ("operator", "rules reload", "", "done", ""),
        ("operator", "rules reload", "", "refused", ""),
    ]
    assert "rule files refused; the old rules stay" in events[-1]["reason"]
    code, table, _ = run(capsys, "satellite", "events", *at)
    assert table.splitlines()[0].split()[:3] == ["TIME", "BY", "OUTCOME"]


def test_with_authentication_each_action_carries_its_principal_to_satellites_log(
    processes: Processes, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Tokens on loopback: the master logs alice's pin and bob's reload; the reload goes
    to the Satellite child on its private socket with bob's name forwarded."""
    creds = tmp_path / "credentials.yml"
    creds.write_text(
        "principals:\n  - {name: alice, token: alice-token-0123456789}\n"
        "  - {name: bob, token: bob-token-0123456789}\n"
        "  - {name: agent, token: agent-token-0123456789}\n"
    )
    tokens = {}
    for name in ("alice", "bob", "agent"):
        tokens[name] = tmp_path / f"{name}.token"
        tokens[name].write_text(f"{name}-token-0123456789\n")
    master = start_master(processes, tmp_path, "--credentials", str(creds))
    work, log = tmp_path / "agent", tmp_path / "agent.log"
    args = [
        *ORBITER, "agent", "--master", master.address, "--work-dir", str(work),
        "--resources", "cpus:1;mem:256;disk:100", "--containerizer", "null",
        "--token-file", str(tokens["agent"]),
    ]  # fmt: skip
    processes.start(args, log)  # registered below: its own API needs a principal too
    at = ("--master", master.address)

    def as_(who: str, *argv: str) -> tuple[int, str, str]:
        return run(capsys, *argv, *at, "--token-file", str(tokens[who]))

    def agents() -> list[dict[str, str]]:
        code, out, err = as_("alice", "agents", "--json")
        assert code == 0, err
        return json.loads(out)["agents"]

    deadline = time.monotonic() + 30
    while not agents() and time.monotonic() < deadline:
        time.sleep(0.2)
    (a,) = [x["id"] for x in agents()]
    code, out, err = as_("alice", "pin", a, "--state", "inactive", "--for", "1h", "--reason", "r")
    assert code == 0, err
    assert out == (
        f"agent {a}: deactivated and pinned inactive (1h left): Satellite will not reactivate "
        "it until the pin expires: r\n"
    )
    code, _, err = as_("bob", "rules", "reload")
    assert code == 0, err
    code, out, err = as_("alice", "satellite", "events", "--json")
    assert code == 0, err
    seen = [(e["actor"], e["action"], e["principal"]) for e in json.loads(out)["events"]]
    assert seen == [("operator", "pin", "alice"), ("operator", "rules reload", "bob")]
    assert "operator action pin on agent" in master.log.read_text()
