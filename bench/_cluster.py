"""Benchmark plumbing: a master process, an agent-pool process, a framework in this one.

The master runs as `orbiter master` in its own process, so its resident memory
can be read and a sampling profiler can watch it without counting the agents'
or the framework's work. All agents share one helper process (this file, run
as a script: `python bench/_cluster.py agents ...`), so a thousand agents cost
one interpreter. The framework is a `SchedulerDriver` in the caller's loop that
packs every offer with as many tasks as fit (one Accept per offer) and times
the launch from the first Accept to the moment every task's RUNNING (or
FINISHED) update has been acknowledged to the master.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.client
import json
import math
import os
import select
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import psutil
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.parser import text_string_to_metric_families

from orbiter.framework.driver import CallError, Scheduler, SchedulerDriver, task_info
from orbiter.proto import messages_pb2, scheduler_pb2
from orbiter.resources import Resources

pb = messages_pb2
TS = pb.TaskState
MIB = 1024 * 1024
BAD_STATES = frozenset(
    {TS.TASK_FAILED, TS.TASK_ERROR, TS.TASK_LOST, TS.TASK_DROPPED, TS.TASK_GONE, TS.TASK_KILLED}
)


class BenchError(Exception):
    """A benchmark step failed; the message says which and where its log is."""


def free_ports(n: int) -> list[int]:
    """`n` distinct free ports (all held open together, so none is handed out twice)."""
    with contextlib.ExitStack() as stack:
        socks = [stack.enter_context(socket.socket()) for _ in range(n)]
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _stop_process(proc: subprocess.Popen[bytes], grace: float) -> None:
    """SIGTERM, then SIGKILL after `grace` seconds: only this one process."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


# ---------------------------------------------------------------------- master


@dataclass
class MasterProcess:
    """`orbiter master` on free ports, with its log in its work dir."""

    proc: subprocess.Popen[bytes]
    grpc_address: str
    http_address: str
    log_path: Path

    @classmethod
    def start(
        cls,
        work_dir: Path,
        satellite: bool = False,
        timeout: float = 30.0,
        extra_args: Sequence[str] = (),
    ) -> MasterProcess:
        """`satellite=False` runs the master without its Satellite, whose scraping of every
        agent is a load of its own (bench/satellite.py and bench/master_lag.py measure it)."""
        work_dir.mkdir(parents=True, exist_ok=True)
        port, http_port = free_ports(2)
        log_path = work_dir / "master.log"
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "orbiter.cli",
                    "master",
                    "--port",
                    str(port),
                    "--http-port",
                    str(http_port),
                    "--work-dir",
                    str(work_dir / "state"),
                    "--agent-timeout",
                    "60",
                    *([] if satellite else ["--no-satellite"]),
                    *extra_args,
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        master = cls(proc, f"127.0.0.1:{port}", f"127.0.0.1:{http_port}", log_path)
        try:
            master._wait_healthy(timeout)
        except BaseException:
            master.stop()
            raise
        return master

    def _wait_healthy(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise BenchError(
                    f"the master exited with {self.proc.returncode}:\n{_tail(self.log_path)}"
                )
            try:
                with urllib.request.urlopen(f"http://{self.http_address}/health", timeout=1):
                    return
            except (OSError, http.client.HTTPException):
                pass
            if time.monotonic() > deadline:
                raise BenchError(f"the master did not answer /health in {timeout:g}s")
            time.sleep(0.05)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def rss_mib(self) -> float:
        return psutil.Process(self.pid).memory_info().rss / MIB

    def get(self, path: str) -> bytes:
        with urllib.request.urlopen(f"http://{self.http_address}{path}", timeout=30) as r:
            return r.read()

    def counters(self) -> dict[str, float]:
        """The master's own counters (allocation runs, registry writes, agent messages)."""
        text = self.get("/metrics").decode()
        out: dict[str, float] = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name.endswith("_total") or sample.name.endswith("_count"):
                    out[sample.name] = sample.value
        return out

    def connected_agents(self) -> int:
        agents = json.loads(self.get("/api/v1/agents"))["agents"]
        return sum(1 for a in agents if a.get("status") == "connected")

    def stop(self) -> None:
        _stop_process(self.proc, 10.0)


# ---------------------------------------------------------------------- agents


@dataclass
class AgentPool:
    """N agents in one helper process; ready once every one of them has registered."""

    proc: subprocess.Popen[bytes]
    count: int
    register_seconds: float  # first agent started -> every agent registered
    start_seconds: float  # of which: starting the agents one after another (HTTP, work dir)
    log_path: Path

    @classmethod
    def start(
        cls,
        master: str,
        count: int,
        resources: str,
        containerizer: str,
        work_dir: Path,
        timeout: float = 120.0,
        extra_series: int = 0,
    ) -> AgentPool:
        work_dir.mkdir(parents=True, exist_ok=True)
        log_path = work_dir / "agents.log"
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(
                [
                    sys.executable,
                    str(Path(__file__).resolve()),
                    "agents",
                    "--master",
                    master,
                    "--count",
                    str(count),
                    "--resources",
                    resources,
                    "--containerizer",
                    containerizer,
                    "--work-dir",
                    str(work_dir),
                    "--timeout",
                    str(timeout),
                    "--extra-series",
                    str(extra_series),
                ],
                stdout=subprocess.PIPE,
                stderr=log,
                stdin=subprocess.DEVNULL,
            )
        assert proc.stdout is not None
        deadline = time.monotonic() + timeout + 10
        line = b""
        while not line.endswith(b"\n"):
            left = deadline - time.monotonic()
            ready, _, _ = select.select([proc.stdout], [], [], max(left, 0))
            if not ready:
                _stop_process(proc, 5)
                raise BenchError(
                    f"{count} agents did not register in {timeout:g}s:\n{_tail(log_path)}"
                )
            chunk = os.read(proc.stdout.fileno(), 4096)
            if not chunk:
                proc.wait(5)
                raise BenchError(
                    f"the agent pool exited with {proc.returncode}:\n{_tail(log_path)}"
                )
            line += chunk
        words = line.decode().split()
        if words[:1] != ["ready"]:
            _stop_process(proc, 5)
            raise BenchError(f"the agent pool said {line!r}:\n{_tail(log_path)}")
        return cls(proc, count, float(words[2]), float(words[3]), log_path)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stop(self) -> None:
        _stop_process(self.proc, 20.0)


async def _run_pool(args: argparse.Namespace) -> int:
    """The helper process: start the agents, say `ready N SECONDS`, run until SIGTERM."""
    from orbiter.agent.agent import Agent, AgentSettings

    work_dir = Path(args.work_dir)
    resources = Resources.parse(args.resources)
    agents = [
        Agent(
            AgentSettings(
                master=args.master,
                work_dir=work_dir / f"agent-{i}",
                resources=resources,
                containerizer=args.containerizer,
                http_port=0,
                hostname=f"bench-agent-{i}",
            )
        )
        for i in range(args.count)
    ]
    for agent in agents:
        if args.extra_series:
            agent.metrics.registry.register(_ExtraSeries(args.extra_series))
    started = time.perf_counter()
    for agent in agents:
        await agent.start()
    start_loop = time.perf_counter() - started
    registered = asyncio.gather(*(a.registered.wait() for a in agents))
    try:
        await asyncio.wait_for(registered, args.timeout)
    except TimeoutError:
        refused = [a.refused for a in agents if a.refused]
        print(
            f"failed: {sum(a.registered.is_set() for a in agents)}/{len(agents)} registered; "
            f"refusals: {refused[:3]}",
            flush=True,
        )
        return 1
    print(f"ready {len(agents)} {time.perf_counter() - started:.3f} {start_loop:.3f}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    kill = args.containerizer != "null"
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(
            asyncio.gather(*(a.stop(kill_tasks=kill) for a in agents), return_exceptions=True), 15
        )
    return 0


# ---------------------------------------------------------------------- framework


@dataclass
class LaunchResult:
    tasks: int
    to_running: float  # seconds, first Accept -> every RUNNING acknowledged
    to_finished: float | None  # seconds, first Accept -> every FINISHED acknowledged
    running_seen: float  # seconds, first Accept -> every RUNNING received (before its ack)
    first_running: float  # seconds, first Accept -> first RUNNING received
    accepts_returned: float  # seconds, first Accept -> the first offer wave's Accepts all answered
    accepts: int
    update_events: int
    ack_calls: int
    offer_events: int

    @property
    def running_rate(self) -> float:
        return self.tasks / self.to_running

    @property
    def finished_rate(self) -> float | None:
        return None if self.to_finished is None else self.tasks / self.to_finished


class BenchScheduler(Scheduler):
    """Packs each offer with as many units (identical tasks; see `_take`) as fit, one Accept
    per offer, and times every RUNNING and FINISHED acknowledgement."""

    def __init__(
        self, count: int, per_task: Resources, command: str, prefix: str = "bench"
    ) -> None:
        self.count = count
        self.per_task = per_task
        self.per_task_proto = per_task.to_proto()
        self.per_task_q = {k: v for k, v in per_task.quantities().items() if v > 0}
        self.command = command
        self.pending: deque[str] = deque(f"{prefix}-{i}" for i in range(count))
        self.state_by_uuid: dict[bytes, int] = {}
        self.running_seen: set[str] = set()
        self.running_acked: set[str] = set()
        self.finished_acked: set[str] = set()
        self.first_accept: float | None = None
        self.t_running_seen: float | None = None
        self.t_first_running: float | None = None
        self.t_accepts_returned: float | None = None
        self.t_running: float | None = None
        self.t_finished: float | None = None
        self.all_running = asyncio.Event()
        self.all_finished = asyncio.Event()
        self.failed = asyncio.Event()
        self.failures: list[str] = []
        self.accepts = 0
        self.offer_events = 0
        self.update_events = 0
        self.ack_calls = 0
        self._sending: set[asyncio.Task[None]] = set()

    def _fits(self, offer: pb.Offer) -> int:
        available = Resources.from_proto(offer.resources).quantities()
        return min(
            (math.floor(available.get(k, 0.0) / v + 1e-9) for k, v in self.per_task_q.items()),
            default=0,
        )

    def offers(self, driver: SchedulerDriver, offers: list[pb.Offer]) -> None:
        """Plan every offer now; send the Accepts concurrently without blocking the event stream."""
        self.offer_events += 1
        launches: list[tuple[str, list[pb.TaskInfo]]] = []
        declines: list[str] = []
        for offer in offers:
            n = min(self._fits(offer), len(self.pending))
            if n == 0:
                declines.append(offer.id)
                continue
            launches.append((offer.id, self._take(n)))
        sender = asyncio.get_running_loop().create_task(self._send(driver, launches, declines))
        self._sending.add(sender)
        sender.add_done_callback(self._sending.discard)

    def _take(self, n: int) -> list[pb.TaskInfo]:
        """The next `n` units to launch (here, one task each)."""
        return [
            task_info(self.pending.popleft(), self.command, self.per_task_proto)
            for _ in range(n)
        ]

    async def _send(
        self,
        driver: SchedulerDriver,
        launches: list[tuple[str, list[pb.TaskInfo]]],
        declines: list[str],
    ) -> None:
        if launches and self.first_accept is None:
            self.first_accept = time.perf_counter()
        self.accepts += len(launches)
        refuse = 3600.0 if not self.pending else None
        calls = [driver.launch([offer_id], tasks) for offer_id, tasks in launches]
        if declines:
            calls.append(driver.decline(declines, refuse_seconds=refuse))
        for result in await asyncio.gather(*calls, return_exceptions=True):
            if isinstance(result, BaseException):
                self._fail(f"launch call failed: {result}")
        if launches and self.t_accepts_returned is None:
            self.t_accepts_returned = time.perf_counter()
        if not self.pending:
            with contextlib.suppress(CallError):
                await driver.suppress()

    def _fail(self, why: str) -> None:
        self.failures.append(why)
        self.failed.set()

    def status_update(self, driver: SchedulerDriver, status: pb.TaskStatus) -> None:
        if status.uuid:
            self.state_by_uuid[status.uuid] = status.state
        if status.state == TS.TASK_RUNNING:
            if self.t_first_running is None:
                self.t_first_running = time.perf_counter()
            self.running_seen.add(status.task_id)
            if len(self.running_seen) == self.count and self.t_running_seen is None:
                self.t_running_seen = time.perf_counter()
        elif status.state in BAD_STATES:
            self._fail(f"task {status.task_id}: {TS.Name(status.state)} {status.message}")

    def acknowledged(self, acks: Sequence[scheduler_pb2.Acknowledgement]) -> None:
        """Called once the master has taken a batch of acknowledgements."""
        self.ack_calls += 1
        for ack in acks:
            state = self.state_by_uuid.pop(ack.uuid, None)
            if state == TS.TASK_RUNNING:
                self.running_acked.add(ack.task_id)
            elif state == TS.TASK_FINISHED:
                self.finished_acked.add(ack.task_id)
        now = time.perf_counter()
        if self.t_running is None and len(self.running_acked) == self.count:
            self.t_running = now
            self.all_running.set()
        if self.t_finished is None and len(self.finished_acked) == self.count:
            self.t_finished = now
            self.all_finished.set()

    def error(self, driver: SchedulerDriver, message: str) -> None:
        self._fail(f"error from the master: {message}")


class AckTimingDriver(SchedulerDriver):
    """The stock driver, telling the scheduler when each acknowledgement batch was taken.

    Any scheduler with `update_events` and `acknowledged(acks)` will do (bench/executors.py's too).
    """

    scheduler: BenchScheduler

    async def _dispatch(self, event: scheduler_pb2.Event) -> None:
        if event.type == scheduler_pb2.Event.UPDATE:
            self.scheduler.update_events += 1
        await super()._dispatch(event)

    async def acknowledge(self, acks: Sequence[scheduler_pb2.Acknowledgement]) -> None:
        await super().acknowledge(acks)
        self.scheduler.acknowledged(acks)


async def launch(
    master: str,
    count: int,
    per_task: Resources,
    command: str = "sleep 3600",
    until_finished: bool = False,
    timeout: float = 300.0,
    while_running: Callable[[], None] | None = None,
) -> LaunchResult:
    """Subscribe a framework, launch `count` tasks, wait until all are RUNNING (or FINISHED)
    and acknowledged. `while_running` is called before the framework disconnects."""
    scheduler = BenchScheduler(count, per_task, command)
    framework = pb.FrameworkInfo(name="bench-launch", failover_timeout=0)
    driver = AckTimingDriver(scheduler, framework, master)
    runner = asyncio.create_task(driver.run())
    target = scheduler.all_finished if until_finished else scheduler.all_running
    waiters = [asyncio.create_task(target.wait()), asyncio.create_task(scheduler.failed.wait())]
    try:
        done, _ = await asyncio.wait(
            [runner, *waiters], timeout=timeout, return_when=asyncio.FIRST_COMPLETED
        )
        if scheduler.failures:
            raise BenchError(f"{len(scheduler.failures)} failures, first: {scheduler.failures[0]}")
        if runner in done:
            raise BenchError(f"the driver stopped: {runner.result() or 'lost the master'}")
        if not done:
            raise BenchError(
                f"timed out after {timeout:g}s: {len(scheduler.pending)} not launched, "
                f"{len(scheduler.running_seen)} RUNNING seen, {len(scheduler.running_acked)} "
                f"RUNNING acked, {len(scheduler.finished_acked)} FINISHED acked of {count}"
            )
        if while_running is not None:
            while_running()
    finally:
        for waiter in waiters:
            waiter.cancel()
        driver.stop()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await asyncio.wait_for(runner, 5)
    assert scheduler.first_accept is not None and scheduler.t_running is not None
    t0 = scheduler.first_accept
    return LaunchResult(
        tasks=count,
        to_running=scheduler.t_running - t0,
        to_finished=None if scheduler.t_finished is None else scheduler.t_finished - t0,
        running_seen=(scheduler.t_running_seen or scheduler.t_running) - t0,
        first_running=(scheduler.t_first_running or t0) - t0,
        accepts_returned=(scheduler.t_accepts_returned or t0) - t0,
        accepts=scheduler.accepts,
        update_events=scheduler.update_events,
        ack_calls=scheduler.ack_calls,
        offer_events=scheduler.offer_events,
    )


class _ExtraSeries:
    """`n` more series on an agent's /metrics, values moving between scrapes, so Satellite
    scrapes and evaluates what a busier host exports (the issue's 300 series a target)."""

    def __init__(self, n: int) -> None:
        self.n = n

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "bench_extra_gauge", "A moving value, for scale", labels=["device", "kind"]
        )
        now = time.time()
        for i in range(self.n):
            family.add_metric([f"d{i // 10}", f"k{i % 10}"], (now * (i + 1)) % 1000)
        yield family


# ---------------------------------------------------------------------- CPU accounting


@dataclass
class CpuMeter:
    """CPU seconds each named group of processes spends between start() and stop()."""

    pids: dict[str, list[int]]
    _before: dict[str, float] = field(default_factory=dict)
    used: dict[str, float] = field(default_factory=dict)

    @staticmethod
    def _cpu(pids: list[int]) -> float:
        times = [psutil.Process(pid).cpu_times() for pid in pids]
        return sum(t.user + t.system for t in times)

    def start(self) -> None:
        self._before = {name: self._cpu(pids) for name, pids in self.pids.items()}

    def stop(self) -> None:
        self.used = {name: self._cpu(pids) - self._before[name] for name, pids in self.pids.items()}


def keeper_pids(work_dir: Path) -> list[int]:
    """The task keepers of agents under `work_dir`: they fork the tasks, so their CPU counts."""
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = proc.info["cmdline"] or []
        if "orbiter.agent.keeper" in cmdline and any(str(work_dir) in a for a in cmdline):
            found.append(proc.pid)
    return found


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="bench helper: run N agents in one process")
    sub = p.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("agents")
    a.add_argument("--master", required=True)
    a.add_argument("--count", type=int, required=True)
    a.add_argument("--resources", required=True)
    a.add_argument("--containerizer", choices=["null", "process"], default="null")
    a.add_argument("--extra-series", type=int, default=0, help="more gauges on each /metrics")
    a.add_argument("--work-dir", required=True)
    a.add_argument("--timeout", type=float, default=120.0)
    args = p.parse_args(argv)
    return asyncio.run(_run_pool(args))


if __name__ == "__main__":
    sys.exit(main())
