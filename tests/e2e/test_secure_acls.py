"""ACLs end to end, as an operator sets them up: `orbiter master` and `orbiter agent` with
one config file (TLS, a credentials file, `security.acls`), and the CLI as three
principals: `web` (a framework owner), `ops` (operators) and `bob` (anyone else with
a token). Each refused call shows the message its caller gets and changes nothing.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import free_port
from proctools import Processes, poll_until

ORBITER = [sys.executable, "-m", "orbiter.cli"]
PRINCIPALS = ("web", "ops", "bob", "agent")

CONFIG = """\
security:
  tls_cert: pki/master.pem
  tls_key: pki/master.key
  tls_ca: pki/ca.pem
  credentials: pki/credentials.yml
  acls:
    register_frameworks:
      - {principals: [web], roles: [web]}
    run_tasks:
      - {principals: [web], users: [nobody]}
    teardown_frameworks:
      - {principals: [ops], framework_principals: ["*"]}
    read_sandboxes:
      - {principals: [ops], framework_principals: ["*"]}
    maintain_agents:
      - {principals: [ops], agents: ["*"]}
    register_agents:
      - {principals: [agent], agents: ["*"]}
    reload_rules:
      - {principals: [ops]}
    manage_silences:
      - {principals: [ops]}
"""


def run(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*ORBITER, *args], capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def cluster(processes: Processes, tmp_path: Path) -> dict[str, list[str]]:
    """A master (with its Satellite) and an agent; returns each principal's client flags."""
    pki = tmp_path / "pki"
    assert run("certs", "init", "--dir", str(pki)).returncode == 0
    for name in ("master", "agent"):
        assert run("certs", "issue", name, "--dir", str(pki)).returncode == 0
    (pki / "credentials.yml").write_text(
        "principals:\n"
        + "".join(f"  - {{name: {n}, token: {n}-token-0123456789}}\n" for n in PRINCIPALS)
    )
    for name in PRINCIPALS:
        (pki / f"{name}.token").write_text(f"{name}-token-0123456789\n")
    config = tmp_path / "orbiter.yml"
    config.write_text(CONFIG)
    port, http_port = free_port(), free_port()
    processes.start(
        [*ORBITER, "master", "--config", str(config), "--port", str(port),
         "--http-port", str(http_port), "--work-dir", str(tmp_path / "master")],
        tmp_path / "master.log",
    )  # fmt: skip
    master = ["--master", f"127.0.0.1:{port}", "--tls-ca", str(pki / "ca.pem")]
    clients = {n: [*master, "--token-file", str(pki / f"{n}.token")] for n in PRINCIPALS}

    def master_up() -> bool:
        return run("agents", *clients["ops"], "--json").returncode == 0

    poll_until(master_up, 30, "the master's API")
    processes.start(
        [*ORBITER, "agent", "--config", str(config), *master, "--work-dir", str(tmp_path / "a"),
         "--tls-cert", str(pki / "agent.pem"), "--tls-key", str(pki / "agent.key"),
         "--token-file", str(pki / "agent.token")],
        tmp_path / "agent.log",
    )  # fmt: skip

    def registered() -> bool:
        out = run("agents", *clients["ops"], "--json")
        return [a["status"] for a in json.loads(out.stdout)["agents"]] == ["connected"]

    poll_until(registered, 30, "the agent registered")
    return clients


def said(p: subprocess.CompletedProcess[str]) -> str:
    return p.stdout + p.stderr


def _json(c: list[str], *args: str) -> dict:
    out = run(*args, *c, "--json")
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_acls_decide_who_registers_runs_reads_maintains_and_tears_down(
    cluster: dict[str, list[str]],
) -> None:
    web, ops, bob = cluster["web"], cluster["ops"], cluster["bob"]

    # Frameworks register only in the roles their principal may use.
    done = run("execute", *web, "--name", "ok", "--role", "web", "--command", "echo hi")
    assert done.returncode == 0 and "TASK_FINISHED" in done.stdout, done.stderr
    refused = run("execute", *bob, "--name", "bobs", "--role", "web", "--command", "true")
    assert refused.returncode == 2
    assert (
        "'bob' may not register a framework in role 'web': no rule in "
        "security.acls.register_frameworks allows it (to allow it: "
        "{principals: [bob], roles: [web]})" in said(refused)
    )
    refused = run("execute", *web, "--name", "dflt", "--command", "true")
    assert "'web' may not register a framework in role '*'" in said(refused)
    # ... and run tasks only as the users it may, root never unless named.
    for user in ("root", "postgres"):
        refused = run(
            "execute", *web, "--name", f"as-{user}", "--role", "web", "--user", user,
            "--command", "true",
        )  # fmt: skip
        assert refused.returncode == 1
        assert (
            f"task as-{user}-0: 'web' may not run tasks as user '{user}': no rule in "
            "security.acls.run_tasks allows it" in said(refused)
        )
    tasks = _json(ops, "tasks")["tasks"]
    assert [t["id"] for t in tasks] == ["ok-0"]  # nothing launched for the refused ones

    # Sandboxes: the owner and ops read them, bob does not.
    assert run("cat", "ok-0", *web).stdout == "hi\n"
    assert run("cat", "ok-0", *ops).stdout == "hi\n"
    refused = run("cat", "ok-0", *bob)
    assert refused.returncode == 2 and refused.stdout == ""
    assert (
        "'bob' may not read sandboxes of frameworks of principal 'web': no rule in "
        "security.acls.read_sandboxes allows it" in said(refused)
    )

    # Maintenance: ops may, bob may not; `by` is the principal's.
    agent_id = _json(ops, "agents")["agents"][0]["id"]
    refused = run("deactivate", agent_id, "--reason", "mine now", *bob)
    assert refused.returncode == 2
    assert f"'bob' may not deactivate, drain, reactivate, pin or remove agent '{agent_id}'" in (
        said(refused)
    )
    assert _json(ops, "agents")["agents"][0]["maintenance"]["mode"] == "active"
    assert run("deactivate", agent_id, "--reason", "kernel update", *ops).returncode == 0
    agent = _json(ops, "agents")["agents"][0]
    assert agent["maintenance"]["mode"] == "deactivated"
    assert agent["maintenance"]["principal"] == "ops"
    assert run("reactivate", agent_id, *ops).returncode == 0

    # Rules and silences: ops only.
    refused = run("rules", "reload", *bob)
    assert refused.returncode == 2 and "'bob' may not reload rules" in said(refused)
    assert run("rules", "reload", *ops).returncode == 0
    refused = run("silence", "add", "alertname=X", "--for", "1h", "--comment", "c", *bob)
    assert refused.returncode == 2 and "'bob' may not add or expire silences" in said(refused)
    assert _json(ops, "silence", "list") == []

    # Teardown: another principal's framework only where a rule allows (ops), not bob.
    long = subprocess.Popen(
        [*ORBITER, "execute", *web, "--name", "long", "--role", "web", "--command", "sleep 60"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        running = poll_until(
            lambda: [t for t in _json(ops, "tasks")["tasks"]
                     if t["id"] == "long-0" and t["state"] == "TASK_RUNNING"],
            30, "the long task running",
        )  # fmt: skip
        fw_id = running[0]["framework_id"]
        refused = run("frameworks", "teardown", fw_id, "--reason", "x", *bob)
        assert refused.returncode == 2
        assert "'bob' may not tear down frameworks of principal 'web'" in said(refused)
        assert run("frameworks", "teardown", fw_id, "--reason", "moving", *ops).returncode == 0
        out, err = long.communicate(timeout=30)
        assert "torn down by ops: moving" in out + err
        poll_until(
            lambda: [t for t in _json(ops, "tasks")["tasks"]
                     if t["id"] == "long-0" and t["state"] == "TASK_KILLED"],
            30, "the torn-down framework's task killed",
        )  # fmt: skip
    finally:
        long.kill()
        long.wait()
