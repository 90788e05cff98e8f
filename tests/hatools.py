"""Several `orbiter master --zk` processes on one ZooKeeper, an agent following the
leader, and the CLI pointed at zk://: what tests/e2e/test_ha.py drives.

Unlike conftest's MasterProcess, a master here may start as a standby, so
`start()` waits for /health to answer, not for the master to lead; the leader
is whichever master's /health says so (`HaCluster.wait_leader`).
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from proctools import STOP_TIMEOUT, PortInUse, Processes, ProcessFailed, poll_until, tail
from zkserver import ZooKeeperServer

ORBITER = [sys.executable, "-m", "orbiter.cli"]
ROOT = Path(__file__).resolve().parents[1]
START_TIMEOUT = 20.0
CLI_TIMEOUT = 30.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get_json(url: str, timeout: float = 2.0) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        return json.load(resp)


def clean_env() -> dict[str, str]:
    """This environment without the caller's ORBITER_* settings (a master, a zk address)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("ORBITER_")}


def orbiter(*args: str, timeout: float = CLI_TIMEOUT) -> subprocess.CompletedProcess[str]:
    """Run one `orbiter` command to its end, as a user at a shell would."""
    return subprocess.run(
        [*ORBITER, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        env=clean_env(),
        stdin=subprocess.DEVNULL,
    )


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: str


def http_get_no_redirect(url_host: str, path: str) -> Response:
    """A GET whose redirect is returned, not followed (urllib would follow a 307)."""
    host, _, port = url_host.partition(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=5)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return Response(resp.status, dict(resp.getheaders()), resp.read().decode())
    finally:
        conn.close()


@dataclass
class ZkMaster:
    """One `orbiter master --zk URL` process: a standby or the leader."""

    processes: Processes
    zk_url: str
    work_dir: Path
    log: Path
    flags: list[str]
    port: int = 0
    http_port: int = 0
    proc: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        """The gRPC address (what --master takes)."""
        return f"127.0.0.1:{self.port}"

    @property
    def http_address(self) -> str:
        return f"127.0.0.1:{self.http_port}"

    @property
    def url(self) -> str:
        return f"http://{self.http_address}"

    def args(self) -> list[str]:
        return [
            *ORBITER, "master", "--zk", self.zk_url, "--port", str(self.port),
            "--http-port", str(self.http_port), "--work-dir", str(self.work_dir), *self.flags,
        ]  # fmt: skip

    def launch(self) -> None:
        """Start the process on fresh free ports; `wait_ready()` waits for it."""
        self.port, self.http_port = free_port(), free_port()
        self.proc = self.processes.start(self.args(), self.log)

    def wait_ready(self, timeout: float = START_TIMEOUT) -> None:
        """Return once /health answers (as a standby or as the leader)."""
        proc = self.proc
        assert proc is not None

        def ready() -> bool:
            if proc.poll() is not None:
                log = tail(self.log)
                kind = PortInUse if "in use" in log else ProcessFailed
                raise kind(f"master exited with {proc.returncode} before it was ready:\n{log}")
            return self.health()["status"] == "ok"

        poll_until(ready, timeout, f"master at {self.address} to answer /health")

    def health(self) -> dict[str, Any]:
        return get_json(f"{self.url}/health", timeout=1.0)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def get(self, path: str) -> Any:
        return get_json(f"{self.url}{path}")

    def agents(self) -> dict[str, dict[str, Any]]:
        return {a["id"]: a for a in self.get("/api/v1/agents")["agents"]}

    def tasks(self) -> dict[str, dict[str, Any]]:
        return {t["id"]: t for t in self.get("/api/v1/tasks")["tasks"]}

    def frameworks(self) -> dict[str, dict[str, Any]]:
        return {f["id"]: f for f in self.get("/api/v1/frameworks")["frameworks"]}

    def kill(self) -> None:
        """SIGKILL: no resignation, its ZooKeeper session has to expire."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(STOP_TIMEOUT)

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@dataclass
class HaAgent:
    """An `orbiter agent --master zk://...` process."""

    processes: Processes
    work_dir: Path
    log: Path
    proc: subprocess.Popen[bytes]

    @property
    def agent_id(self) -> str:
        try:
            return str(json.loads((self.work_dir / "agent.json").read_text())["agent_id"])
        except (FileNotFoundError, ValueError, KeyError):
            return ""

    def state(self, master: ZkMaster) -> dict[str, Any]:
        """The agent's own /state, found through the master's listing of it."""
        address = master.agents()[self.agent_id]["http_address"]
        return get_json(f"http://{address}/state")

    def sigkill(self, master: ZkMaster) -> None:
        """SIGKILL the agent; its tasks (own process groups) live on until teardown kills them."""
        for task in self.state(master)["tasks"]:
            if task["pid"]:
                self.processes.orphan_groups.add(task["pid"])
        self.proc.kill()
        self.proc.wait(STOP_TIMEOUT)


@dataclass
class HaCluster:
    """ZooKeeper, the masters campaigning on it, agents and CLI runs of one test."""

    zookeeper: ZooKeeperServer
    processes: Processes
    base: Path
    masters: list[ZkMaster] = field(default_factory=list)
    agents: list[HaAgent] = field(default_factory=list)

    @property
    def zk_url(self) -> str:
        return self.zookeeper.url("/orbiter")

    def start_masters(
        self,
        count: int,
        zk_session_timeout: str = "3s",
        agent_reregister_timeout: str = "15s",
        agent_timeout: float = 5.0,
    ) -> list[ZkMaster]:
        """Start `count` masters; return once each answers /health.

        The first claims the zk:// path alone; the rest start side by side once it
        answers. (Started all at once on a fresh path, a master can find the path
        claimed by another between two reads and refuse it as another system's:
        see test_a_path_claimed_by_another_master_meanwhile_is_accepted.)
        """
        flags = [
            "--zk-session-timeout", zk_session_timeout,
            "--agent-reregister-timeout", agent_reregister_timeout,
            "--agent-timeout", str(agent_timeout),
            "--allocation-interval", "0.2",
            "--no-satellite",
        ]  # fmt: skip
        started = []
        for _ in range(count):
            n = len(self.masters) + 1
            master = ZkMaster(
                self.processes, self.zk_url, self.base / f"master-{n}",
                self.base / f"master-{n}.log", flags,
            )  # fmt: skip
            self.masters.append(master)
            started.append(master)
        first_claim = not any(m.proc for m in self.masters)
        batches = [started[:1], started[1:]] if first_claim else [started]
        for batch in batches:
            for master in batch:
                master.launch()
            for master in batch:
                for attempt in range(3):
                    try:
                        master.wait_ready()
                        break
                    except PortInUse:
                        if attempt == 2:
                            raise
                        master.launch()
        return started

    def roles(self) -> dict[int, dict[str, Any]]:
        """/health of every live master that answers, by its index in `masters`."""
        seen = {}
        for i, master in enumerate(self.masters):
            if not master.alive():
                continue
            try:
                seen[i] = master.health()
            except OSError:
                continue
        return seen

    def leaders(self) -> list[ZkMaster]:
        return [self.masters[i] for i, h in self.roles().items() if h["role"] == "leader"]

    def wait_leader(self, timeout: float = 15.0) -> ZkMaster:
        """The one master whose /health says role leader, once exactly one does."""

        def one_leader() -> ZkMaster | None:
            leaders = self.leaders()
            return leaders[0] if len(leaders) == 1 else None

        return poll_until(one_leader, timeout, "exactly one master to say role leader")

    def start_agent(self, resources: str = "cpus:2;mem:1024;disk:1000") -> HaAgent:
        n = len(self.agents) + 1
        work_dir = self.base / f"agent-{n}"
        log = self.base / f"agent-{n}.log"
        args = [
            *ORBITER, "agent", "--master", self.zk_url, "--work-dir", str(work_dir),
            "--resources", resources, "--containerizer", "process",
        ]  # fmt: skip
        agent = HaAgent(self.processes, work_dir, log, self.processes.start(args, log))
        self.agents.append(agent)
        return agent

    def wait_connected(
        self, agent: HaAgent, leader: ZkMaster, timeout: float = START_TIMEOUT
    ) -> dict[str, Any]:
        """The leader's listing of `agent`, once it says connected."""

        def connected() -> dict[str, Any] | None:
            if agent.proc.poll() is not None:
                raise ProcessFailed(
                    f"agent exited with {agent.proc.returncode}:\n{tail(agent.log)}"
                )
            listed = leader.agents().get(agent.agent_id) if agent.agent_id else None
            return listed if listed and listed["status"] == "connected" else None

        return poll_until(connected, timeout, f"agent in {agent.work_dir} connected to the leader")

    def start_execute(self, name: str, *args: str) -> CliProcess:
        """`orbiter execute --master zk://... --name NAME ARGS...` in the background."""
        log = self.base / f"execute-{name}.log"
        argv = [*ORBITER, "execute", "--master", self.zk_url, "--name", name, *args]
        return CliProcess(log, self.processes.start(argv, log))


@dataclass
class CliProcess:
    """A CLI command running in the background, its stdout and stderr in `log`."""

    log: Path
    proc: subprocess.Popen[bytes]

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_output(self, text: str, timeout: float = 20.0) -> str:
        def printed() -> str | None:
            out = self.output()
            if text in out:
                return out
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"exited with {self.proc.returncode} before printing {text!r}:\n{out}"
                )
            return None

        return poll_until(printed, timeout, f"{text!r} in {self.log.name}")

    def wait_exit(self, timeout: float) -> int:
        """The exit status, once the process has exited (fails after `timeout`)."""
        deadline = time.monotonic() + timeout
        try:
            return self.proc.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"still running after {timeout:g}s; its output:\n{self.output()}"
            ) from None
