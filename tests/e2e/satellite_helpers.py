"""Building blocks of the Satellite end-to-end tests: configured processes, a webhook sink,
an offer-recording framework.

tests/conftest.py starts masters and agents without a configuration file; Satellite's
tests need one (rules, 1 s intervals, checks, webhooks, policy), a standalone
`orbiter satellite`, and a cluster shared by a whole module. The classes here take any
process registry with `start(args, log)` and `orphan_groups` (conftest's `processes`
fixture, or `ProcessGroup` for module-scoped clusters), so every process a test starts is
stopped in teardown, even when the test fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

import yaml
from aiohttp import web
from proctools import Processes, poll_until, tail

from orbiter.framework import Scheduler, SchedulerDriver, task_info
from orbiter.proto import messages_pb2 as pb
from orbiter.resources import Resources

ORBITER = [sys.executable, "-m", "orbiter.cli"]
START_TIMEOUT = 20.0
STOP_TIMEOUT = 8.0
AGENT_TIMEOUT = 3.0
ALLOCATION_INTERVAL = 0.5
AGENT_RESOURCES = "cpus:1;mem:256;disk:100"
TASK_RESOURCES = Resources.parse("cpus:0.1;mem:32")

# Satellite's timing in every cluster here (seconds), and the rules' `for`.
SCRAPE_INTERVAL = 1.0
EVALUATION_INTERVAL = 1.0
CHECK_INTERVAL = 0.5
FOR_SECONDS = 1.0
COOLDOWN = 3.0

# What the agents' checks look at, in the agent's work dir (the checks' cwd).
FAULT = "fault"  # check `fault` critical -> CheckCritical (action: deactivate)
WARN = "warn"  # check `fault` warning -> CheckWarning (no action)
DRAIN = "drain"  # check `drain` critical -> DrainRequested (action: drain)
MARKERS = (FAULT, WARN, DRAIN)

T = TypeVar("T")


# ---------------------------------------------------------------------- plumbing


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class HttpFailed(OSError):
    """An HTTP call answered with an error status; the body says why."""

    def __init__(self, status: int, body: Any) -> None:
        super().__init__(f"HTTP {status}: {body}")
        self.status = status
        self.body = body


def call(method: str, url: str, body: Any = None, timeout: float = 5.0) -> Any:
    """One JSON call; an error status raises HttpFailed (an OSError, so polls retry it)."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(
        url, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            text = resp.read().decode()
            return json.loads(text) if text else None
    except urllib.error.HTTPError as e:
        text = e.read().decode(errors="replace")
        try:
            parsed: Any = json.loads(text)
        except ValueError:
            parsed = text
        raise HttpFailed(e.code, parsed) from None


class Registry(Protocol):
    """What the process classes need from a process registry (conftest's `Processes`)."""

    orphan_groups: set[int]

    def start(self, args: list[str], log: Path) -> subprocess.Popen[bytes]: ...


class ProcessGroup(Processes):
    """A process registry for module-scoped clusters (conftest's `processes` is per test)."""


# ---------------------------------------------------------------------- configuration


def rules() -> dict[str, Any]:
    """The rule file every cluster here loads (Prometheus rule format)."""
    summary = "check {{ $labels.check }} on {{ $labels.agent }} is {{ $value }}"
    for_ = f"{FOR_SECONDS:g}s"
    return {
        "groups": [
            {
                "name": "e2e",
                "rules": [
                    {
                        "alert": "CheckCritical",
                        "expr": 'orbiter_check_status{check="fault"} == 2',
                        "for": for_,
                        "labels": {"action": "deactivate", "severity": "critical"},
                        "annotations": {"summary": summary},
                    },
                    {
                        "alert": "DrainRequested",
                        "expr": 'orbiter_check_status{check="drain"} == 2',
                        "for": for_,
                        "labels": {"action": "drain"},
                        "annotations": {"summary": summary},
                    },
                    {
                        "alert": "CheckWarning",
                        "expr": 'orbiter_check_status{check="fault"} == 1',
                        "labels": {"severity": "warning"},
                        "annotations": {"summary": summary},
                    },
                    {
                        "alert": "AgentDown",
                        "expr": 'up{job="agent"} == 0',
                        "labels": {"severity": "critical"},
                        "annotations": {"summary": "agent {{ $labels.agent }} is not scraped"},
                    },
                ],
            }
        ]
    }


def write_config(
    directory: Path,
    fleet_marker: Path,
    webhooks: Iterable[str] = (),
    max_unhealthy_fraction: float = 0.5,
) -> Path:
    """Write orbiter.yml and rules.yml into `directory`; returns the orbiter.yml path.

    `fleet_marker` is a file that makes the `fault` check critical on every agent at
    once (a rule that matches the whole fleet).
    """
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "rules.yml").write_text(yaml.safe_dump(rules(), sort_keys=False))
    fault = (
        f"if [ -e {FAULT} ] || [ -e '{fleet_marker}' ]; then exit 2; fi; "
        f"if [ -e {WARN} ]; then exit 1; fi"
    )
    interval = f"{int(CHECK_INTERVAL * 1000)}ms"
    config: dict[str, Any] = {
        "satellite": {
            "rule_files": ["rules.yml"],
            "scrape_interval": f"{SCRAPE_INTERVAL:g}s",
            "scrape_timeout": f"{SCRAPE_INTERVAL:g}s",
            "evaluation_interval": f"{EVALUATION_INTERVAL:g}s",
            "policy": {
                "cooldown": f"{COOLDOWN:g}s",
                "max_unhealthy_fraction": max_unhealthy_fraction,
                # The tests' own take-outs must not run into the rate or flap limits.
                "max_actions_per_window": 1000,
                "flap_limit": 1000,
                "min_active_agents": 1,
            },
        },
        "agent": {
            "checks": [
                {"name": "fault", "command": fault, "interval": interval, "timeout": interval},
                {
                    "name": "drain",
                    "command": f"test ! -e {DRAIN} || exit 2",
                    "interval": interval,
                    "timeout": interval,
                },
            ]
        },
    }
    if webhooks:
        config["satellite"]["webhooks"] = list(webhooks)
    path = directory / "orbiter.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


# ---------------------------------------------------------------------- processes


class PortTaken(RuntimeError):
    """Another process took a port between picking it and listening on it."""


@dataclass
class Master:
    """An `orbiter master` started with a config file (Satellite inside unless told not to)."""

    procs: Registry
    work_dir: Path
    config: Path
    log: Path
    satellite: bool = True
    extra: tuple[str, ...] = ()  # more `orbiter master` flags
    port: int = field(default_factory=free_port)
    http_port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def args(self) -> list[str]:
        return [
            *ORBITER, "master", "--config", str(self.config), "--work-dir", str(self.work_dir),
            "--port", str(self.port), "--http-port", str(self.http_port),
            "--agent-timeout", str(AGENT_TIMEOUT),
            "--allocation-interval", str(ALLOCATION_INTERVAL),
            *([] if self.satellite else ["--no-satellite"]),
            *self.extra,
        ]  # fmt: skip

    def start(self) -> None:
        """Start it and return once /health answers."""
        proc = self.proc = self.procs.start(self.args(), self.log)

        def ready() -> bool:
            if proc.poll() is not None:
                text = tail(self.log)
                kind = PortTaken if "in use" in text else RuntimeError
                raise kind(f"master exited with {proc.returncode}:\n{text}")
            return call("GET", f"{self.url}/health", timeout=1.0)["status"] == "ok"

        poll_until(ready, START_TIMEOUT, f"master {self.address} to answer /health")

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(STOP_TIMEOUT)

    def get(self, path: str) -> Any:
        return call("GET", f"{self.url}{path}")

    def post(self, path: str, body: Any = None) -> Any:
        return call("POST", f"{self.url}{path}", {} if body is None else body)

    def delete(self, path: str) -> Any:
        return call("DELETE", f"{self.url}{path}")

    def agents(self) -> dict[str, dict[str, Any]]:
        return {a["id"]: a for a in self.get("/api/v1/agents")["agents"]}

    def agent(self, agent_id: str) -> dict[str, Any]:
        return self.get(f"/api/v1/agents/{agent_id}")

    def alerts(self) -> list[dict[str, Any]]:
        return self.get("/api/v1/alerts")["data"]["alerts"]

    def events(self) -> list[dict[str, Any]]:
        """Satellite's own decisions (the log also lists operators' actions beside them)."""
        events = self.get("/api/v1/satellite/events?limit=1000")["events"]
        return [e for e in events if e.get("actor", "satellite") == "satellite"]

    def targets(self) -> list[dict[str, Any]]:
        return self.get("/api/v1/satellite/targets")["targets"]

    def metric(self, name: str) -> float:
        """The sum of a metric's samples on the master's /metrics (0 if absent)."""
        with urllib.request.urlopen(f"{self.url}/metrics", timeout=5) as resp:
            text = resp.read().decode()
        pattern = re.compile(rf"^{re.escape(name)}(?:{{[^}}]*}})? (\S+)$", re.M)
        return sum(float(v) for v in pattern.findall(text))

    def evaluations(self) -> int:
        """How many evaluation rounds Satellite in this master has run."""
        return int(self.metric("orbiter_satellite_evaluation_duration_seconds_count"))


def start_master(
    procs: Registry,
    base: Path,
    config: Path,
    name: str = "master",
    satellite: bool = True,
    extra: tuple[str, ...] = (),
) -> Master:
    """A running master under `base`, on free ports (tried again if a port was taken)."""
    for attempt in range(3):
        master = Master(procs, base / name, config, base / f"{name}.log", satellite, extra)
        try:
            master.start()
            return master
        except PortTaken:
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


@dataclass
class Agent:
    """An `orbiter agent` with the config's checks; its work dir holds the check markers."""

    master: Master
    procs: Registry
    work_dir: Path
    config: Path
    log: Path
    proc: subprocess.Popen[bytes] | None = None
    agent_id: str = ""

    def start(self) -> None:
        args = [
            *ORBITER, "agent", "--master", self.master.address, "--config", str(self.config),
            "--work-dir", str(self.work_dir), "--resources", AGENT_RESOURCES,
        ]  # fmt: skip
        self.proc = self.procs.start(args, self.log)

    def wait_registered(self) -> None:
        """Return once the master lists this agent as connected; learn its id."""

        def registered() -> bool:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"agent exited with {self.proc.returncode}:\n{tail(self.log)}")
            try:
                agent_id = json.loads((self.work_dir / "agent.json").read_text())["agent_id"]
            except (FileNotFoundError, ValueError, KeyError):
                return False
            listed = self.master.agents().get(agent_id)
            if listed is None or listed["status"] != "connected":
                return False
            self.agent_id = agent_id
            return True

        poll_until(registered, START_TIMEOUT, f"agent in {self.work_dir} to register")

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def sigkill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(STOP_TIMEOUT)

    def mark(self, marker: str) -> None:
        """Make a check see `marker` (FAULT, WARN or DRAIN) from its next run on."""
        (self.work_dir / marker).touch()

    def unmark(self, marker: str) -> None:
        (self.work_dir / marker).unlink(missing_ok=True)


def start_agents(master: Master, procs: Registry, base: Path, config: Path, n: int) -> list[Agent]:
    """`n` registered agents, started side by side (each takes a second of CPU to start)."""
    agents = []
    for i in range(n):
        agent = Agent(master, procs, base / f"agent-{i}", config, base / f"agent-{i}.log")
        agent.start()
        agents.append(agent)
    for agent in agents:
        agent.wait_registered()
    return agents


@dataclass
class StandaloneSatellite:
    """`orbiter satellite --master ...`: Satellite in a process of its own."""

    procs: Registry
    master: Master
    work_dir: Path
    config: Path
    log: Path
    http_port: int = field(default_factory=free_port)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.http_port}"

    def start(self) -> None:
        args = [
            *ORBITER, "satellite", "--master", self.master.address, "--config", str(self.config),
            "--work-dir", str(self.work_dir), "--http-port", str(self.http_port),
        ]  # fmt: skip
        proc = self.procs.start(args, self.log)

        def ready() -> Any:
            if proc.poll() is not None:
                raise RuntimeError(f"satellite exited with {proc.returncode}:\n{tail(self.log)}")
            return self.get("/api/v1/satellite/targets")

        poll_until(ready, START_TIMEOUT, f"satellite on {self.address} to answer")

    def get(self, path: str) -> Any:
        return call("GET", f"http://{self.address}{path}")


def cli(*args: str, master: Master | None = None, satellite: str = "") -> Any:
    """Run `orbiter ARGS --json` and return its decoded output; a non-zero exit fails."""
    argv = [*ORBITER, *args, "--json"]
    if master is not None:
        argv += ["--master", master.address]
    if satellite:
        argv += ["--satellite", satellite]
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORBITER_")}
    done = subprocess.run(argv, capture_output=True, text=True, timeout=30, env=env)
    assert done.returncode == 0, f"{' '.join(args)} exited {done.returncode}: {done.stderr}"
    return json.loads(done.stdout)


# ---------------------------------------------------------------------- webhook sink


class WebhookSink:
    """An Alertmanager-style webhook receiver: aiohttp on a loop of its own, in a thread.

    It can go down (`stop`: the port refuses connections) and come back (`start`) on the
    same port; every payload it accepted is kept in `payloads`.
    """

    def __init__(self) -> None:
        self.port = free_port()
        self.payloads: list[dict[str, Any]] = []
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def _run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(10)

    async def _hook(self, request: web.Request) -> web.Response:
        self.payloads.append(await request.json())
        return web.Response(text="ok")

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_post("/hook", self._hook)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", self.port, reuse_address=True).start()
        self._runner = runner

    async def _stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    @property
    def up(self) -> bool:
        return self._runner is not None

    def start(self) -> None:
        if not self.up:
            self._run(self._start())

    def stop(self) -> None:
        self._run(self._stop())

    def close(self) -> None:
        self.stop()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()

    def alerts(self, alertname: str, agent: str) -> list[dict[str, Any]]:
        """Every alert of that name and agent received, in arrival order."""
        return [
            a
            for p in list(self.payloads)
            for a in p["alerts"]
            if a["labels"].get("alertname") == alertname and a["labels"].get("agent") == agent
        ]


# ---------------------------------------------------------------------- a framework


@dataclass
class OfferRecorder(Scheduler):
    """Records the agent of every offer and every status; launches `tasks` where asked.

    `tasks` maps a task id to (agent id, command). Offers it cannot use are declined for
    a short time only, so every active agent keeps being offered.
    """

    tasks: dict[str, tuple[str, str]]
    offers_seen: list[tuple[float, str]] = field(default_factory=list)
    statuses: list[pb.TaskStatus] = field(default_factory=list)
    pending: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.pending = list(self.tasks)

    async def offers(self, driver: SchedulerDriver, offers: list[pb.Offer]) -> None:
        for offer in offers:
            self.offers_seen.append((time.monotonic(), offer.agent_id))
            available = Resources.from_proto(offer.resources)
            batch = []
            for task_id in list(self.pending):
                agent_id, command = self.tasks[task_id]
                if agent_id == offer.agent_id and available.contains(TASK_RESOURCES):
                    available = available - TASK_RESOURCES
                    self.pending.remove(task_id)
                    batch.append(task_info(task_id, command, TASK_RESOURCES.to_proto()))
            if batch:
                await driver.launch([offer.id], batch, refuse_seconds=0.2)
            else:
                await driver.decline([offer.id], refuse_seconds=0.2)

    def status_update(self, driver: SchedulerDriver, status: pb.TaskStatus) -> None:
        self.statuses.append(status)

    def last(self, task_id: str) -> pb.TaskStatus | None:
        mine = [s for s in list(self.statuses) if s.task_id == task_id]
        return mine[-1] if mine else None

    def state_of(self, task_id: str) -> int | None:
        status = self.last(task_id)
        return status.state if status is not None else None

    def offered(self, agent_id: str, after: float) -> int:
        """Offers for `agent_id` received after the monotonic time `after`."""
        return sum(1 for t, a in list(self.offers_seen) if a == agent_id and t > after)


@contextlib.asynccontextmanager
async def framework(
    scheduler: Scheduler, master: Master, name: str
) -> AsyncIterator[SchedulerDriver]:
    """A subscribed framework; torn down on the way out, so the master kills its tasks."""
    driver = SchedulerDriver(scheduler, pb.FrameworkInfo(name=name), master.address)
    run = asyncio.create_task(driver.run())
    try:
        await asyncio.wait_for(driver.subscribed.wait(), START_TIMEOUT)
        yield driver
    finally:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(driver.teardown(), 5)
        driver.stop()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await asyncio.wait_for(run, 10)
