"""Shared fixtures: real Orbiter processes on free ports in temp dirs, and polling helpers.

`master` runs `orbiter master` as a process; `start_master` does the same with
chosen flags; `agent_process` starts `orbiter agent` processes against a master
and returns once the master lists them as connected. Every process these
fixtures start is stopped in teardown (SIGTERM, then SIGKILL), even when the
test fails, and so are the task process groups of agents a test killed with
SIGKILL (tasks run in sessions of their own and would outlive their agent).
On failure the teardown prints the tail of each process's log.

Waiting is polling with a deadline, never a bare sleep: the `wait_until` and
`async_wait_until` fixtures (and `MasterProcess.wait_for`, which polls the
operator HTTP API) check a condition again and again until it holds or the
deadline passes, and the failure says what was awaited and what was last seen.
Test modules get helpers through fixtures and the objects they return, not by
importing this file (several conftest.py files may share the module name).
"""

from __future__ import annotations

import asyncio
import json
import shutil
import signal
import socket
import subprocess
import sys
import urllib.parse
import urllib.request
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
from proctools import (
    STOP_TIMEOUT,
    PortInUse,
    Processes,
    ProcessFailed,
    async_poll_until,
    poll_until,
    tail,
)
from zkserver import ZooKeeperMissing, ZooKeeperServer

ORBITER = [sys.executable, "-m", "orbiter.cli"]
START_TIMEOUT = 20.0

T = TypeVar("T")


# ---------------------------------------------------------------------- helpers


@pytest.fixture(scope="session")
def promtool() -> str:
    """Debian's promtool (`make deps`). Never a skip: a test that compares with promtool
    and silently skipped would prove nothing."""
    path = shutil.which("promtool")
    if path is None:
        pytest.fail("promtool not found: run `make deps` (Debian package prometheus)")
    return path


def free_port(host: str = "127.0.0.1") -> int:
    """A port nobody listens on right now (the caller may still lose a race for it)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def get_json(url: str, timeout: float = 5.0) -> Any:
    """GET a JSON document; HTTP errors raise urllib.error.HTTPError (an OSError)."""
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        return json.load(resp)


def get_text(url: str, timeout: float = 5.0) -> str:
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        return resp.read().decode()


@pytest.fixture
def wait_until() -> Callable[..., Any]:
    """wait_until(check, timeout=10, what=None): poll until check() is truthy; return it."""
    return poll_until


@pytest.fixture
def async_wait_until() -> Callable[..., Awaitable[Any]]:
    """await async_wait_until(check, timeout=10, what=None): poll without blocking the loop."""
    return async_poll_until


# ---------------------------------------------------------------------- processes


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


def _stop_and_report(procs: Processes, failed: bool) -> None:
    procs.stop_all()
    if failed and procs.logs:
        print(procs.report())


@pytest.fixture
def processes(request: pytest.FixtureRequest) -> Iterator[Processes]:
    """The registry of the test's processes; stops them all at teardown."""
    procs = Processes()
    yield procs
    call = getattr(request.node, "report_call", None)
    _stop_and_report(procs, call is not None and call.failed)


@dataclass
class MasterProcess:
    """An `orbiter master` process and its operator API."""

    processes: Processes
    work_dir: Path
    port: int
    http_port: int
    flags: list[str]
    log: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        """The gRPC address (what --master takes)."""
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def registry_path(self) -> Path:
        return self.work_dir / "registry.pb"

    def args(self) -> list[str]:
        return [
            *ORBITER, "master", "--port", str(self.port), "--http-port", str(self.http_port),
            "--work-dir", str(self.work_dir), *self.flags,
        ]  # fmt: skip

    def start(self) -> None:
        """Start the process and return once its operator API answers."""
        proc = self.proc = self.processes.start(self.args(), self.log)

        def ready() -> bool:
            if proc.poll() is not None:
                log = tail(self.log)
                kind = PortInUse if "in use" in log else ProcessFailed
                raise kind(f"master exited with {proc.returncode} before it was ready:\n{log}")
            return get_json(f"{self.url}/health", timeout=1.0)["status"] == "ok"

        poll_until(ready, START_TIMEOUT, f"master at {self.address} to answer /health")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)
        self.proc.wait(STOP_TIMEOUT)

    def get(self, path: str, **query: str) -> Any:
        url = f"{self.url}{path}"
        if query:
            url += "?" + urllib.parse.urlencode(query)
        return get_json(url)

    async def aget(self, path: str, **query: str) -> Any:
        """`get` from an async test, in a thread so the test's event loop keeps running."""
        return await asyncio.to_thread(self.get, path, **query)

    def wait_for(
        self, check: Callable[[MasterProcess], T], timeout: float = 10.0, what: str | None = None
    ) -> T:
        """Poll the operator API through `check(master)` until it returns something truthy."""
        return poll_until(lambda: check(self), timeout, what)

    async def async_wait_for(
        self, check: Callable[[MasterProcess], T], timeout: float = 10.0, what: str | None = None
    ) -> T:
        """`wait_for` from an async test: each check runs in a thread."""
        return await async_poll_until(lambda: asyncio.to_thread(check, self), timeout, what)

    def agents(self) -> dict[str, dict[str, Any]]:
        """The operator API's agents by id."""
        return {a["id"]: a for a in self.get("/api/v1/agents")["agents"]}

    def frameworks(self) -> dict[str, dict[str, Any]]:
        return {f["id"]: f for f in self.get("/api/v1/frameworks")["frameworks"]}

    def tasks(self, **query: str) -> list[dict[str, Any]]:
        return self.get("/api/v1/tasks", **query)["tasks"]


def master_factory(processes: Processes, base: Path) -> Callable[..., MasterProcess]:
    """start(agent_timeout=..., offer_timeout=..., ...) -> a running master under `base`."""
    count = 0

    def start(
        agent_timeout: float = 5.0,
        offer_timeout: float = 30.0,
        allocation_interval: float = 0.2,
        framework_heartbeat_interval: float = 15.0,
    ) -> MasterProcess:
        nonlocal count
        count += 1
        flags = [
            "--agent-timeout", str(agent_timeout),
            "--offer-timeout", str(offer_timeout),
            "--allocation-interval", str(allocation_interval),
            "--framework-heartbeat-interval", str(framework_heartbeat_interval),
        ]  # fmt: skip
        for attempt in range(3):
            master = MasterProcess(
                processes,
                base / f"master-{count}",
                free_port(),
                free_port(),
                flags,
                base / f"master-{count}.log",
            )
            try:
                master.start()
                return master
            except PortInUse:
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    return start


@pytest.fixture
def start_master(processes: Processes, tmp_path: Path) -> Callable[..., MasterProcess]:
    """Factory: start_master(agent_timeout=..., offer_timeout=..., ...) -> a running master."""
    return master_factory(processes, tmp_path)


@pytest.fixture
def master(start_master: Callable[..., MasterProcess]) -> MasterProcess:
    """A running `orbiter master` process on free ports, its work dir in tmp_path."""
    return start_master()


@dataclass
class AgentProcess:
    """An `orbiter agent` process that has registered with `master`."""

    master: MasterProcess
    processes: Processes
    work_dir: Path
    log: Path
    proc: subprocess.Popen[bytes]
    agent_id: str = ""
    http_address: str = ""

    @property
    def url(self) -> str:
        return f"http://{self.http_address}"

    def meta(self) -> dict[str, Any]:
        """What the agent keeps in its work dir: its id and HTTP port."""
        return json.loads((self.work_dir / "agent.json").read_text())

    def state(self) -> dict[str, Any]:
        return get_json(f"{self.url}/state")

    def read_file(self, task_id: str, framework_id: str, path: str = "stdout") -> str:
        query = urllib.parse.urlencode(
            {"task_id": task_id, "framework_id": framework_id, "path": path}
        )
        return get_text(f"{self.url}/files/read?{query}")

    def wait_registered(self, timeout: float = START_TIMEOUT) -> None:
        """Return once the master lists this agent as connected; learn its id and address."""

        def registered() -> bool:
            if self.proc.poll() is not None:
                raise ProcessFailed(
                    f"agent exited with {self.proc.returncode} before registering:\n"
                    f"{tail(self.log)}"
                )
            try:
                agent_id = self.meta().get("agent_id")
            except (FileNotFoundError, ValueError):
                return False
            listed = self.master.agents().get(agent_id) if agent_id else None
            if listed is None or listed["status"] != "connected":
                return False
            self.agent_id = agent_id
            self.http_address = listed["http_address"]
            return True

        poll_until(registered, timeout, f"agent in {self.work_dir} to register")

    def sigkill(self) -> None:
        """Kill the agent with SIGKILL; its tasks live on and are killed at teardown."""
        for task in self.state()["tasks"]:
            if task["pid"]:
                self.processes.orphan_groups.add(task["pid"])
        self.proc.kill()
        self.proc.wait(STOP_TIMEOUT)


def agent_factory(processes: Processes, base: Path) -> Callable[..., AgentProcess]:
    """start(master, resources=..., attributes=..., wait=True) -> an agent under `base`."""
    count = 0

    def start(
        master: MasterProcess,
        resources: str = "cpus:2;mem:1024;disk:1000",
        attributes: str = "",
        containerizer: str = "process",
        wait: bool = True,
    ) -> AgentProcess:
        nonlocal count
        count += 1
        work_dir = base / f"agent-{count}"
        log = base / f"agent-{count}.log"
        args = [
            *ORBITER, "agent", "--master", master.address, "--work-dir", str(work_dir),
            "--resources", resources, "--containerizer", containerizer,
        ]  # fmt: skip
        if attributes:
            args += ["--attributes", attributes]
        agent = AgentProcess(master, processes, work_dir, log, processes.start(args, log))
        if wait:
            agent.wait_registered()
        return agent

    return start


@pytest.fixture
def agent_process(processes: Processes, tmp_path: Path) -> Callable[..., AgentProcess]:
    """Factory: agent_process(master, resources=..., attributes=...) -> a registered agent.

    With wait=False it returns at once; call `wait_registered()` later (to start
    several agents side by side: each takes about a second of CPU to start).
    """
    return agent_factory(processes, tmp_path)


@dataclass
class Cluster:
    master: MasterProcess
    agents: list[AgentProcess]


SHARED_AGENT_RESOURCES = "cpus:4;mem:4096;disk:1000"


@pytest.fixture(scope="module")
def shared_cluster(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cluster]:
    """A master and two agents (cpus:4;mem:4096 each) shared by the tests of one module.

    For tests that only add frameworks and tasks of their own and look only at
    those (starting three processes costs seconds on two cores). Tests that
    kill or restart processes start their own with `start_master`/`agent_process`.
    """
    procs = Processes()
    failed_before = request.session.testsfailed
    try:
        base = tmp_path_factory.mktemp("cluster")
        master = master_factory(procs, base)()
        start_agent = agent_factory(procs, base)
        agents = [start_agent(master, SHARED_AGENT_RESOURCES, wait=False) for _ in range(2)]
        for agent in agents:
            agent.wait_registered()
        yield Cluster(master, agents)
    finally:
        _stop_and_report(procs, request.session.testsfailed > failed_before)


# ---------------------------------------------------------------------- zookeeper


@pytest.fixture
def zookeeper(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ZooKeeperServer]:
    """A running standalone ZooKeeper on a free port, its data and log in tmp_path.

    `stop()` and `start()` it to take the ensemble away under a test and bring it
    back (same port, same data). Without ZooKeeper installed the test fails, never
    skips: `make deps` installs it.
    """
    server = ZooKeeperServer(tmp_path / "zookeeper")
    try:
        server.start()
    except ZooKeeperMissing as e:
        pytest.fail(f"{e}: run `make deps` (Debian package zookeeperd)")
    yield server
    server.stop()
    call = getattr(request.node, "report_call", None)
    if call is not None and call.failed:
        print(f"----- {server.log} -----\n{tail(server.log)}")


# ---------------------------------------------------------------------- docker


@pytest.fixture(scope="session")
def docker_engine() -> Iterator[Any]:
    """A Docker engine with the busybox test image: the system dockerd if it answers,
    else one started here (and stopped at the end of the session). See tests/dockerd.py.
    Without dockerd installed the test fails, never skips."""
    from dockerd import DockerEngine

    engine = DockerEngine()
    engine.start()
    try:
        engine.ensure_image()
        yield engine
    finally:
        engine.stop()
