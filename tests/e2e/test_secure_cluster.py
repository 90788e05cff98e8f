"""A whole cluster as processes with mutual TLS and tokens: `orbiter master` (with its
Satellite process), `orbiter agent`, `orbiter execute` and the client commands.

Certificates come from `orbiter certs`; the agent and alice also send tokens
from a credentials file. Every wire is TLS: the Satellite process scrapes the
agent's /metrics over https with the master's certificate and reads the
master's API as the `satellite` principal.
"""

from __future__ import annotations

import json
import ssl
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from conftest import free_port
from proctools import Processes, poll_until

ORBITER = [sys.executable, "-m", "orbiter.cli"]
TOKENS = {"alice": "alice-token-0123456789", "agent": "agent-token-0123456789"}


def run(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*ORBITER, *args], capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def pki(tmp_path: Path) -> Path:
    d = tmp_path / "pki"
    assert run("certs", "init", "--dir", str(d)).returncode == 0
    for name in ("master", "agent", "alice"):
        assert run("certs", "issue", name, "--dir", str(d)).returncode == 0
    (d / "credentials.yml").write_text(
        "principals:\n" + "".join(f"  - {{name: {n}, token: {t}}}\n" for n, t in TOKENS.items())
    )
    for name, token in TOKENS.items():
        (d / f"{name}.token").write_text(token + "\n")
    return d


def tls(pki: Path, name: str) -> list[str]:
    return ["--tls-cert", str(pki / f"{name}.pem"), "--tls-key", str(pki / f"{name}.key"),
            "--tls-ca", str(pki / "ca.pem")]  # fmt: skip


def https_json(pki: Path, url: str, name: str = "alice") -> Any:
    ctx = ssl.create_default_context(cafile=str(pki / "ca.pem"))
    ctx.load_cert_chain(pki / f"{name}.pem", pki / f"{name}.key")
    with urllib.request.urlopen(url, timeout=5, context=ctx) as resp:
        return json.load(resp)


def test_a_cluster_runs_with_mutual_tls_and_tokens_end_to_end(
    processes: Processes, tmp_path: Path, pki: Path
) -> None:
    port, http_port = free_port(), free_port()
    server = ["--credentials", str(pki / "credentials.yml"), "--require-client-cert"]
    processes.start(
        [*ORBITER, "master", "--port", str(port), "--http-port", str(http_port),
         "--work-dir", str(tmp_path / "master"), *tls(pki, "master"), *server],
        tmp_path / "master.log",
    )  # fmt: skip
    master = f"127.0.0.1:{port}"
    api = f"https://127.0.0.1:{http_port}"
    poll_until(lambda: _answers(pki, f"{api}/health"), 20, "the master's HTTPS API")
    processes.start(
        [*ORBITER, "agent", "--master", master, "--work-dir", str(tmp_path / "agent"),
         *tls(pki, "agent"), *server, "--token-file", str(pki / "agent.token")],
        tmp_path / "agent.log",
    )  # fmt: skip
    agents = poll_until(
        lambda: [a for a in https_json(pki, f"{api}/api/v1/agents")["agents"]
                 if a["status"] == "connected"],
        20, "the agent registered",
    )  # fmt: skip
    assert agents[0]["principal"] == "agent"
    client = ["--master", master, *tls(pki, "alice")]

    done = run("execute", *client, "--name", "hello", "--command", "echo hello-over-tls")

    assert done.returncode == 0, done.stderr
    assert "TASK_FINISHED" in done.stdout
    frameworks = https_json(pki, f"{api}/api/v1/frameworks")["frameworks"]
    assert [f["principal"] for f in frameworks] == ["alice"]
    cat = run("cat", "hello-0", *client)
    assert cat.stdout == "hello-over-tls\n", cat.stderr
    # Bearer token instead of a certificate for the operator API (the CA still verifies
    # the master); mutual TLS is required here, so the certificate comes along.
    listed = run("agents", *client, "--token-file", str(pki / "alice.token"), "--json")
    assert json.loads(listed.stdout)["agents"][0]["id"] == agents[0]["id"]

    # Satellite's own process scrapes the agent over https and reads the master's API.
    def targets_up() -> bool:
        out = run("satellite", "targets", *client, "--json")
        return out.returncode == 0 and all(t["up"] for t in json.loads(out.stdout)["targets"])

    poll_until(targets_up, 40, "Satellite's targets scraped over https")
    out = json.loads(run("satellite", "targets", *client, "--json").stdout)
    assert {t["url"].split(":")[0] for t in out["targets"]} == {"https"}
    assert len(out["targets"]) == 2

    # Plaintext and anonymous clients get nowhere.
    plain = run("agents", "--master", master)
    assert plain.returncode == 2 and "a master with TLS needs --tls-ca" in plain.stderr
    anonymous = run("agents", "--master", master, "--tls-ca", str(pki / "ca.pem"))
    assert anonymous.returncode == 2


def _answers(pki: Path, url: str) -> bool:
    try:
        return https_json(pki, url)["status"] == "ok"
    except OSError:
        return False


def test_orbiter_up_with_tls_and_credentials_runs_a_task_for_a_token_holder(
    processes: Processes, tmp_path: Path, pki: Path
) -> None:
    """`orbiter up`'s own agents authenticate with a token the master made for them; a
    client with only the CA and a token (no certificate) runs a task."""
    port, http_port = free_port(), free_port()
    processes.start(
        [*ORBITER, "up", "--port", str(port), "--http-port", str(http_port), "--no-satellite",
         "--work-dir", str(tmp_path / "up"), *tls(pki, "master"),
         "--credentials", str(pki / "credentials.yml")],
        tmp_path / "up.log",
    )  # fmt: skip
    master = f"127.0.0.1:{port}"
    client = ["--master", master, "--tls-ca", str(pki / "ca.pem"),
              "--token-file", str(pki / "alice.token")]  # fmt: skip

    def connected() -> bool:
        out = run("agents", *client, "--json")
        return out.returncode == 0 and [a["status"] for a in json.loads(out.stdout)["agents"]] == [
            "connected"
        ]

    poll_until(connected, 20, "orbiter up's agent registered")
    done = run("execute", *client, "--name", "hi", "--command", "echo hi")
    assert done.returncode == 0 and "TASK_FINISHED" in done.stdout, done.stderr
    assert "refused" not in (tmp_path / "up.log").read_text()
