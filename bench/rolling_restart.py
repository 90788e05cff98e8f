"""Rolling restart: kill -9 each agent in turn while short tasks run; do the tasks survive?

A master, four `orbiter agent` processes (process containerizer, so every task
is started and held by the agent's task keeper) and a framework in this
process that launches `sleep 1` tasks at a steady rate. After a lead-in, each
agent in turn is killed with SIGKILL, started again on the same work dir a
moment later (a rolling restart, as for an upgrade), and left to settle before
the next one. Then launching stops and every task is waited for.

Every task appends `<task id> <time>` to a file outside Orbiter just before it
exits, and its id says which exit status it exits with (`t00042-x3` runs
`sleep 1; ...; exit 3`; one task in five exits 3), so each reported end is
checked against what the task really did: FINISHED for 0, FAILED with the
exit code for 3, and nothing else (goal: no task lost, failed or misreported
because its agent restarted). For each restart the report also gives how long
the agent was away and the pause it caused in launches: the longest gap
between consecutive RUNNING updates from 2 s before the kill to 5 s after the
agent re-registered, beside the longest gap in the lead-in (no restart).

    python bench/rolling_restart.py               # 3 runs, about 3 minutes
    python bench/rolling_restart.py --quick       # 1 run at a lower rate, about 40 s
    python bench/rolling_restart.py --runs 1 --rate 20 --down 5 --work-dir /tmp/rr

Exit status 0 when every correctness figure is 0 in every run, 1 when one is
not (the report prints the history of up to five of the tasks concerned and
the logs are kept), 2 when the cluster could not be run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import math
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psutil
from tabulate import tabulate

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _cluster import BenchError, MasterProcess, _stop_process, _tail, free_ports

from orbiter.framework import CallError, Scheduler, SchedulerDriver, task_info
from orbiter.proto import messages_pb2, scheduler_pb2
from orbiter.resources import Resources
from orbiter.taskstates import TERMINAL_STATES

pb = messages_pb2
TS = pb.TaskState
TERMINAL_NAMES = frozenset(TS.Name(s) for s in TERMINAL_STATES)
AGENTS = 4
AGENT_RESOURCES = "cpus:16;mem:4096"  # 64 tasks each: launches never wait for room
TASK_RESOURCES = Resources.parse("cpus:0.25;mem:32")
FAILING_EXIT = 3  # every fifth task exits with it, to check that exit codes survive a restart
WINDOW_BEFORE, WINDOW_AFTER = 2.0, 5.0  # around each restart, for the launch pause


@dataclass(frozen=True)
class Config:
    rate: float  # tasks launched per second
    lead_in: float  # seconds of launching before the first restart
    gap: float  # seconds between an agent's return and the next kill (and after the last)
    down: float  # seconds between the kill and the start
    settle: float  # at most this long, after launching stops, for every task to end
    sleep: float = 1.0  # each task's `sleep`


FULL = Config(rate=10.0, lead_in=10.0, gap=10.0, down=1.0, settle=60.0)
QUICK = Config(rate=5.0, lead_in=5.0, gap=5.0, down=1.0, settle=30.0)


# ---------------------------------------------------------------------- the framework


def expected_exit(task_id: str) -> int:
    return int(task_id.rsplit("-x", 1)[1])


@dataclass
class TaskRecord:
    task_id: str
    agent: str
    launched: float  # time.time() when its Accept was sent
    refused: str = ""
    running: float | None = None  # the first RUNNING received
    end: dict[str, Any] | None = None  # the end delivered to status_update (once)
    history: list[dict[str, Any]] = field(default_factory=list)  # every update received


def _status(status: pb.TaskStatus) -> dict[str, Any]:
    return {
        "t": time.time(),
        "state": TS.Name(status.state),
        "reason": pb.TaskReason.Name(status.reason),
        "exit_code": status.exit_code if status.HasField("exit_code") else None,
        "source": pb.TaskSource.Name(status.source),
        "message": status.message,
    }


class SteadyScheduler(Scheduler):
    """Keeps the offers it gets and launches from them at `rate` tasks per second, each batch
    on the agent running the fewest of its tasks (with all of that agent's offers).

    Due launches are counted from the start, so after a pause (no offer fitted)
    the launches that are due go out together on the next offer.
    """

    def __init__(self, rate: float, sleep: float, ends_file: Path) -> None:
        self.rate = rate
        self.sleep = sleep
        self.ends_file = ends_file
        self.per_task = {k: v for k, v in TASK_RESOURCES.quantities().items() if v > 0}
        self.held: dict[str, pb.Offer] = {}
        self.tasks: dict[str, TaskRecord] = {}
        self.open_on: Counter[str] = Counter()  # agent id -> tasks launched there, not ended
        self.seq = 0
        self.refused = 0
        self.started: float | None = None
        self.launching = False
        self.subscribed_event = asyncio.Event()
        self.errors: list[str] = []
        self._sending: set[asyncio.Task[None]] = set()

    def subscribed(self, driver: SchedulerDriver, framework_id: str, master: pb.MasterInfo) -> None:
        self.subscribed_event.set()

    def _fits(self, offers: list[pb.Offer]) -> int:
        available: Counter[str] = Counter()
        for offer in offers:
            available.update(Resources.from_proto(offer.resources).quantities())
        return min(math.floor(available[k] / v + 1e-9) for k, v in self.per_task.items())

    def offers(self, driver: SchedulerDriver, offers: list[pb.Offer]) -> None:
        for offer in offers:
            self.held[offer.id] = offer
        self.pace(driver)

    def rescinded(self, driver: SchedulerDriver, offer_id: str) -> None:
        self.held.pop(offer_id, None)

    def _task(self, agent_id: str) -> pb.TaskInfo:
        self.seq += 1
        code = FAILING_EXIT if self.seq % 5 == 0 else 0
        task_id = f"t{self.seq:05d}-x{code}"
        command = (
            f'sleep {self.sleep:g}; echo "$ORBITER_TASK_ID $(date +%s.%N)" >> {self.ends_file}; '
            f"exit {code}"
        )
        self.tasks[task_id] = TaskRecord(task_id, agent_id, time.time())
        self.open_on[agent_id] += 1
        return task_info(task_id, command, TASK_RESOURCES.to_proto())

    def pace(self, driver: SchedulerDriver) -> None:
        """Launch what is due on the least busy agents that have room."""
        if not self.launching or self.started is None:
            return
        launched = self.seq - self.refused
        due = math.floor(self.rate * (time.monotonic() - self.started)) + 1 - launched
        by_agent: dict[str, list[pb.Offer]] = {}
        for offer in self.held.values():
            by_agent.setdefault(offer.agent_id, []).append(offer)
        while due > 0 and by_agent:
            agent_id = min(by_agent, key=lambda a: (self.open_on[a], -self._fits(by_agent[a])))
            offers = by_agent.pop(agent_id)
            n = min(due, self._fits(offers))
            if n == 0:
                continue
            for offer in offers:
                del self.held[offer.id]
            tasks = [self._task(agent_id) for _ in range(n)]
            self._spawn(self._launch(driver, [o.id for o in offers], tasks))
            due -= n

    async def _launch(
        self, driver: SchedulerDriver, offer_ids: list[str], tasks: list[pb.TaskInfo]
    ) -> None:
        try:
            # refuse_seconds 0: what is left of the offers comes back at once, not in 5 s.
            await driver.launch(offer_ids, tasks, refuse_seconds=0.0)
        except CallError as e:
            for t in tasks:  # not launched: the pacer makes up for them
                record = self.tasks[t.task_id]
                record.refused = str(e)
                self.open_on[record.agent] -= 1
            self.refused += len(tasks)

    def _spawn(self, coroutine: Any) -> None:
        job = asyncio.get_running_loop().create_task(coroutine)
        self._sending.add(job)
        job.add_done_callback(self._sending.discard)

    async def pacer(self, driver: SchedulerDriver) -> None:
        self.started = time.monotonic()
        self.launching = True
        while self.launching:
            self.pace(driver)
            await asyncio.sleep(0.5 / self.rate)

    def stop_launching(self, driver: SchedulerDriver) -> None:
        self.launching = False
        if self.held:
            self._spawn(driver.decline(list(self.held), refuse_seconds=3600.0))
            self.held.clear()

    def received(self, status: pb.TaskStatus) -> None:
        record = self.tasks.get(status.task_id)
        if record is not None:
            record.history.append(_status(status))

    def status_update(self, driver: SchedulerDriver, status: pb.TaskStatus) -> None:
        record = self.tasks.get(status.task_id)
        if record is None:
            return
        if status.state == TS.TASK_RUNNING and record.running is None:
            record.running = time.time()
        elif status.state in TERMINAL_STATES and record.end is None:
            record.end = _status(status)
            self.open_on[record.agent] -= 1

    def open_tasks(self) -> int:
        return sum(1 for r in self.tasks.values() if not r.refused and r.end is None)

    def error(self, driver: SchedulerDriver, message: str) -> None:
        self.errors.append(message)


class RecordingDriver(SchedulerDriver):
    """The stock driver, recording every update the master sends before the SDK filters any."""

    scheduler: SteadyScheduler

    async def _dispatch(self, event: scheduler_pb2.Event) -> None:
        if event.type == scheduler_pb2.Event.UPDATE:
            for status in event.update.statuses:
                self.scheduler.received(status)
        await super()._dispatch(event)


# ---------------------------------------------------------------------- the cluster


@dataclass
class AgentProc:
    """One `orbiter agent` process that can be killed and started again on its work dir."""

    name: str
    master: str
    work_dir: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def log(self) -> Path:
        return self.work_dir / "agent.log"

    def start(self) -> None:
        self.work_dir.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "orbiter.cli", "agent", "--master", self.master,
                 "--work-dir", str(self.work_dir), "--resources", AGENT_RESOURCES,
                 "--containerizer", "process", "--hostname", f"rr-{self.name}",
                 "--kill-tasks-on-stop"],
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None:
            _stop_process(self.proc, 20.0)

    def agent_id(self) -> str:
        return str(json.loads((self.work_dir / "agent.json").read_text())["agent_id"])

    def registered(self) -> bool:
        """The agent says it is registered with the master (its HTTP port is kept across runs)."""
        if self.proc is None or self.proc.poll() is not None:
            raise BenchError(f"{self.name} exited with {self.proc and self.proc.returncode}:\n"
                             f"{_tail(self.log)}")  # fmt: skip
        try:
            port = json.loads((self.work_dir / "agent.json").read_text())["http_port"]
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1) as r:
                return bool(json.loads(r.read()).get("registered"))
        except (OSError, ValueError, KeyError):
            return False


async def wait_registered(agent: AgentProc, timeout: float) -> float:
    """Seconds until the agent says it is registered."""
    started = time.monotonic()
    while not await asyncio.to_thread(agent.registered):
        if time.monotonic() - started > timeout:
            raise BenchError(f"{agent.name} did not register in {timeout:g}s:\n{_tail(agent.log)}")
        await asyncio.sleep(0.05)
    return time.monotonic() - started


def start_master(work_dir: Path) -> MasterProcess:
    """`orbiter master` with its default agent timeout (15 s), unlike bench/_cluster.py's."""
    work_dir.mkdir(parents=True, exist_ok=True)
    port, http_port = free_ports(2)
    log_path = work_dir / "master.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "orbiter.cli", "master", "--port", str(port),
             "--http-port", str(http_port), "--work-dir", str(work_dir / "state"),
             "--no-satellite"],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    master = MasterProcess(proc, f"127.0.0.1:{port}", f"127.0.0.1:{http_port}", log_path)
    try:
        master._wait_healthy(30.0)
    except BaseException:
        master.stop()
        raise
    return master


@dataclass
class Restart:
    agent: str
    agent_id: str
    killed: float  # time.time()
    started: float
    back: float  # the restarted agent said it is registered


@dataclass
class RunData:
    config: Config
    started: float  # time.time() when launching began
    restarts: list[Restart]
    tasks: list[TaskRecord]
    true_ends: dict[str, float]  # task id -> when it exited (from its own line)
    unended_after_settle: int
    leftover_processes: list[str]
    framework_errors: list[str]


async def run_cluster(cfg: Config, work: Path, say: Any) -> RunData:
    ends_file = work / "ends.log"
    ends_file.touch()
    master = start_master(work / "master")
    agents = [
        AgentProc(f"agent-{i}", master.grpc_address, work / f"agent-{i}") for i in range(AGENTS)
    ]
    driver: RecordingDriver | None = None
    runner: asyncio.Task[str] | None = None
    try:
        for agent in agents:
            agent.start()
        for agent in agents:
            await wait_registered(agent, 60.0)
        scheduler = SteadyScheduler(cfg.rate, cfg.sleep, ends_file)
        framework = pb.FrameworkInfo(name="rolling-restart", failover_timeout=60.0)
        driver = RecordingDriver(scheduler, framework, master.grpc_address)
        runner = asyncio.create_task(driver.run())
        async with asyncio.timeout(30):
            await scheduler.subscribed_event.wait()
        pacer = asyncio.create_task(scheduler.pacer(driver))
        launch_start = time.time()
        await asyncio.sleep(cfg.lead_in)
        restarts = []
        for agent in agents:
            agent_id = agent.agent_id()
            killed = time.time()
            agent.kill9()
            await asyncio.sleep(cfg.down)
            started = time.time()
            agent.start()
            await wait_registered(agent, 60.0)
            restart = Restart(agent.name, agent_id, killed, started, time.time())
            restarts.append(restart)
            say(f"{agent.name} killed at {killed - launch_start:5.1f}s, back after "
                f"{restart.back - killed:.2f}s; {len(scheduler.tasks)} tasks launched, "
                f"{scheduler.open_tasks()} open")  # fmt: skip
            if runner.done():
                raise BenchError(f"the framework stopped: {runner.result() or 'lost the master'}")
            await asyncio.sleep(cfg.gap)
        scheduler.stop_launching(driver)
        await pacer
        deadline = time.monotonic() + cfg.settle
        while scheduler.open_tasks() and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        unended = scheduler.open_tasks()
        say(f"launching stopped: {len(scheduler.tasks)} tasks launched, {unended} not ended")
    finally:
        if driver is not None:
            driver.stop()
        if runner is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(runner, 5)
        for agent in agents:
            await asyncio.to_thread(agent.stop)
        await asyncio.to_thread(master.stop)
    leftovers = await asyncio.to_thread(kill_leftovers, work)
    return RunData(
        cfg, launch_start, restarts, list(scheduler.tasks.values()), read_ends(ends_file),
        unended, leftovers, scheduler.errors,
    )  # fmt: skip


def kill_leftovers(work: Path, grace: float = 10.0) -> list[str]:
    """Processes of this run still alive once every agent has stopped with its tasks: keepers
    (a stopped agent retires its keeper, which then exits) and tasks. They are killed."""
    deadline = time.monotonic() + grace
    while True:
        left = []
        for proc in psutil.process_iter(["pid", "cmdline"]):
            with contextlib.suppress(psutil.Error, TypeError):
                if proc.pid != os.getpid() and str(work) in " ".join(proc.info["cmdline"] or ()):
                    left.append(proc)
        if not left or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    for proc in left:
        with contextlib.suppress(psutil.Error):
            proc.send_signal(signal.SIGKILL)
    return [f"{p.pid} {' '.join(p.info['cmdline'] or ())[:120]}" for p in left]


def read_ends(path: Path) -> dict[str, float]:
    ends = {}
    for line in path.read_text().splitlines():
        words = line.split()
        if len(words) == 2:
            ends[words[0]] = float(words[1])
    return ends


# ---------------------------------------------------------------------- analysis


@dataclass
class RestartFigures:
    agent: str
    down_s: float  # kill -> started again
    back_s: float  # kill -> registered again
    running_at_kill: int  # tasks alive on it when it was killed
    ended_while_away: int  # of which: their command ended before the agent was back
    survived: int  # of those running at kill: ended as they really did
    in_flight: int  # launched to it but not yet RUNNING when it was killed
    longest_gap_s: float | None  # between consecutive RUNNING updates, around the restart


@dataclass
class RunFigures:
    launched: int
    refused: int
    launch_rate: float
    ends: dict[str, int]
    running_at_kill: int
    survived: int
    lost_or_failed: int  # ended otherwise than the task really did (goal 0)
    misreported: int  # reported an exit the task did not have (goal 0)
    never_ended: int  # (goal 0)
    conflicting_ends: int  # two different ends received (goal 0)
    leftover_processes: int  # (goal 0)
    baseline_gap_s: float | None
    restarts: list[RestartFigures]
    report_delay_median_s: float | None  # true end -> end delivered, tasks not across a restart
    report_delay_across_median_s: float | None  # the same, tasks alive at a kill of their agent
    report_delay_across_max_s: float | None
    problems: dict[str, list[str]] = field(default_factory=dict)

    @property
    def correct(self) -> bool:
        return not (
            self.lost_or_failed or self.misreported or self.never_ended
            or self.conflicting_ends or self.leftover_processes
        )  # fmt: skip


def _true_end_matches(record: TaskRecord, true_end: float | None) -> bool:
    """The delivered end says what the task really did."""
    end = record.end
    if end is None:
        return False
    expect = expected_exit(record.task_id)
    if true_end is None:
        return False  # it never completed its command, so no end can be its own
    if expect == 0:
        return end["state"] == "TASK_FINISHED" and end["exit_code"] in (0, None)
    return end["state"] == "TASK_FAILED" and end["exit_code"] == expect


def _misreported(record: TaskRecord, true_end: float | None) -> bool:
    """An end that claims an exit status the task did not exit with."""
    end = record.end
    if end is None:
        return False
    claims_exit = end["state"] == "TASK_FINISHED" or end["exit_code"] is not None
    if not claims_exit:
        return False  # LOST, KILLED, FAILED without a status: no claim about the command
    return not _true_end_matches(record, true_end)


def longest_gap(times: list[float], start: float, end: float) -> float | None:
    """The longest gap between consecutive times in [start, end], counting from the last
    time before `start`."""
    before = [t for t in times if t < start]
    inside = [t for t in times if start <= t <= end]
    points = ([before[-1]] if before else []) + inside
    if len(points) < 2:
        return None
    return max(b - a for a, b in itertools.pairwise(points))


def _median(xs: list[float]) -> float | None:
    return statistics.median(xs) if xs else None


def analyse(data: RunData) -> RunFigures:
    launched = [r for r in data.tasks if not r.refused]
    running_times = sorted(r.running for r in launched if r.running is not None)
    problems: dict[str, list[str]] = {
        "lost or failed": [], "misreported": [], "never ended": [], "conflicting ends": [],
    }  # fmt: skip
    for r in launched:
        true_end = data.true_ends.get(r.task_id)
        if r.end is None:
            problems["never ended"].append(r.task_id)
        elif not _true_end_matches(r, true_end):
            problems["lost or failed"].append(r.task_id)
        if _misreported(r, true_end):
            problems["misreported"].append(r.task_id)
        terminal = {h["state"] for h in r.history if h["state"] in TERMINAL_NAMES}
        if len(terminal) > 1:
            problems["conflicting ends"].append(r.task_id)
    across: set[str] = set()
    restarts = []
    for rs in data.restarts:
        on_agent = [r for r in launched if r.agent == rs.agent_id]
        alive = [
            r for r in on_agent
            if r.running is not None and r.running <= rs.killed
            and data.true_ends.get(r.task_id, math.inf) > rs.killed
        ]  # fmt: skip
        across.update(r.task_id for r in alive)
        in_flight = [
            r for r in on_agent
            if r.launched <= rs.killed and (r.running is None or r.running > rs.killed)
        ]  # fmt: skip
        restarts.append(RestartFigures(
            agent=rs.agent,
            down_s=rs.started - rs.killed,
            back_s=rs.back - rs.killed,
            running_at_kill=len(alive),
            ended_while_away=sum(
                1 for r in alive if data.true_ends.get(r.task_id, math.inf) < rs.back
            ),
            survived=sum(1 for r in alive if _true_end_matches(r, data.true_ends.get(r.task_id))),
            in_flight=len(in_flight),
            longest_gap_s=longest_gap(
                running_times, rs.killed - WINDOW_BEFORE, rs.back + WINDOW_AFTER
            ),
        ))  # fmt: skip
    first_kill = data.restarts[0].killed if data.restarts else math.inf
    baseline = longest_gap(
        running_times, data.started + WINDOW_BEFORE, min(first_kill - WINDOW_BEFORE, math.inf)
    )
    delays: dict[bool, list[float]] = {True: [], False: []}
    for r in launched:
        true_end = data.true_ends.get(r.task_id)
        if r.end is not None and true_end is not None:
            delays[r.task_id in across].append(r.end["t"] - true_end)
    ends = Counter(
        f"{r.end['state'].removeprefix('TASK_')} {r.end['reason'].removeprefix('REASON_')}"
        + (f" exit {r.end['exit_code']}" if r.end["exit_code"] is not None else "")
        for r in launched if r.end is not None
    )  # fmt: skip
    launch_times = [r.launched for r in launched]
    span = max(launch_times) - min(launch_times) if len(launch_times) > 1 else 0.0
    return RunFigures(
        launched=len(launched),
        refused=len(data.tasks) - len(launched),
        launch_rate=(len(launched) - 1) / span if span else 0.0,
        ends=dict(sorted(ends.items())),
        running_at_kill=len(across),
        survived=sum(f.survived for f in restarts),
        lost_or_failed=len(problems["lost or failed"]),
        misreported=len(problems["misreported"]),
        never_ended=len(problems["never ended"]),
        conflicting_ends=len(problems["conflicting ends"]),
        leftover_processes=len(data.leftover_processes),
        baseline_gap_s=baseline,
        restarts=restarts,
        report_delay_median_s=_median(delays[False]),
        report_delay_across_median_s=_median(delays[True]),
        report_delay_across_max_s=max(delays[True], default=None),
        problems={k: v for k, v in problems.items() if v},
    )


# ---------------------------------------------------------------------- reporting


def _s(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}"


def print_run(n: int, data: RunData, f: RunFigures) -> None:
    print(f"\nrun {n}: {f.launched} tasks launched ({f.launch_rate:.1f}/s; {f.refused} Accepts "
          f"refused), ends: " + ", ".join(f"{k} x{v}" for k, v in f.ends.items()))  # fmt: skip
    rows = [
        [r.agent, _s(r.down_s), _s(r.back_s), r.running_at_kill, r.ended_while_away, r.survived,
         r.in_flight, _s(r.longest_gap_s)]
        for r in f.restarts
    ]  # fmt: skip
    print(tabulate(rows, headers=[
        "restart", "down s", "back s", "tasks running at kill", "of which ended while away",
        "ended truly", "launched, not yet RUNNING", "longest RUNNING gap s",
    ]))  # fmt: skip
    print(f"lead-in (no restart): longest RUNNING gap {_s(f.baseline_gap_s)} s")
    print(f"true end -> end delivered: median {_s(f.report_delay_median_s)} s; for tasks alive "
          f"at a kill of their agent: median {_s(f.report_delay_across_median_s)} s, "
          f"max {_s(f.report_delay_across_max_s)} s")  # fmt: skip
    for name in data.leftover_processes:
        print(f"left running after the agents stopped (killed): {name}")
    for err in data.framework_errors:
        print(f"error from the master: {err}")
    by_id = {r.task_id: r for r in data.tasks}
    for kind, ids in f.problems.items():
        print(f"\n{kind}: {len(ids)} task(s)")
        for task_id in ids[:5]:
            print_history(by_id[task_id], data)


def print_history(r: TaskRecord, data: RunData) -> None:
    def at(t: float) -> str:
        return f"{t - data.started:7.2f}s"

    agent = next((rs.agent for rs in data.restarts if rs.agent_id == r.agent), r.agent)
    true_end = data.true_ends.get(r.task_id)
    print(f"  {r.task_id} on {agent}: launched at {at(r.launched)}, exit meant "
          f"{expected_exit(r.task_id)}, its command "
          + (f"ended at {at(true_end)}" if true_end else "never ended"))  # fmt: skip
    for rs in data.restarts:
        if rs.agent_id == r.agent:
            print(f"    {agent} killed at {at(rs.killed)}, back at {at(rs.back)}")
    for h in r.history:
        print(f"    {at(h['t'])} received {h['state']} {h['reason']} exit={h['exit_code']} "
              f"{h['source']} {h['message']!r}")  # fmt: skip
    if r.end is not None:
        print(f"    delivered end: {r.end['state']} at {at(r.end['t'])}")


def print_summary(cfg: Config, figures: list[RunFigures], wall: float) -> None:
    def med(values: list[float | None]) -> str:
        known = [v for v in values if v is not None]
        return _s(statistics.median(known)) if known else "-"

    def runs(values: list[Any]) -> str:
        return ", ".join(_s(v) if isinstance(v, float) else str(v) for v in values)

    gaps = [r.longest_gap_s for f in figures for r in f.restarts]
    backs = [r.back_s for f in figures for r in f.restarts]
    rows = [
        ("tasks launched", med([float(f.launched) for f in figures]),
         runs([f.launched for f in figures]), ""),
        ("launch rate, tasks/s", med([f.launch_rate for f in figures]),
         runs([round(f.launch_rate, 1) for f in figures]), f"{cfg.rate:g}"),
        ("tasks alive on an agent when it was killed", med([float(f.running_at_kill)
         for f in figures]), runs([f.running_at_kill for f in figures]), ""),
        ("  of which ended as they really did", med([float(f.survived) for f in figures]),
         runs([f.survived for f in figures]), "all"),
        ("tasks lost or failed (not as they really ended)", med([float(f.lost_or_failed)
         for f in figures]), runs([f.lost_or_failed for f in figures]), "0"),
        ("tasks misreported (an exit they did not have)", med([float(f.misreported)
         for f in figures]), runs([f.misreported for f in figures]), "0"),
        ("tasks never ended", med([float(f.never_ended) for f in figures]),
         runs([f.never_ended for f in figures]), "0"),
        ("tasks given two different ends", med([float(f.conflicting_ends) for f in figures]),
         runs([f.conflicting_ends for f in figures]), "0"),
        ("processes left after the agents stopped", med([float(f.leftover_processes)
         for f in figures]), runs([f.leftover_processes for f in figures]), "0"),
        ("agent away (kill -> registered again), s", med(backs), f"max {_s(max(backs))}", ""),
        ("longest RUNNING gap around a restart, s", med(gaps),
         f"max {_s(max((g for g in gaps if g is not None), default=None))}", ""),
        ("longest RUNNING gap in the lead-in, s", med([f.baseline_gap_s for f in figures]),
         runs([f.baseline_gap_s for f in figures]), ""),
        ("true end -> delivered, s", med([f.report_delay_median_s for f in figures]),
         runs([f.report_delay_median_s for f in figures]), ""),
        ("  for tasks alive at a kill, s", med([f.report_delay_across_median_s
         for f in figures]), "max " + _s(max((f.report_delay_across_max_s or 0.0)
         for f in figures)), ""),
    ]  # fmt: skip
    print(f"\nSummary (median of {len(figures)} run(s); {wall:.0f}s in all; {AGENTS} agents, "
          f"{cfg.rate:g} tasks/s, each agent killed once and back after {cfg.down:g}s)")
    print(tabulate(rows, headers=["figure", "median", "runs", "aim"]))


# ---------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="one run at 5 tasks/s, shorter waits")
    p.add_argument("--runs", type=int, help="runs (median reported; default 3, 1 with --quick)")
    p.add_argument("--rate", type=float, help="tasks launched per second")
    p.add_argument("--down", type=float, help="seconds between an agent's kill and its start")
    p.add_argument("--gap", type=float, help="seconds after an agent is back before the next kill")
    p.add_argument("--sleep", type=float, help="seconds each task sleeps (default 1)")
    p.add_argument("--work-dir", help="keep logs and state here (default: a temp dir, removed "
                   "unless a run is not correct)")  # fmt: skip
    p.add_argument("--json", help="also write the figures to this file")
    args = p.parse_args(argv)
    cfg = QUICK if args.quick else FULL
    overrides = {k: getattr(args, k) for k in ("rate", "down", "gap", "sleep") if getattr(args, k)}
    cfg = Config(**{**asdict(cfg), **overrides})
    runs = args.runs or (1 if args.quick else 3)
    root = Path(args.work_dir or tempfile.mkdtemp(prefix="orbiter-bench-rolling-"))
    root.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    all_figures: list[RunFigures] = []
    out: list[dict[str, Any]] = []

    def say(line: str) -> None:
        print(f"  [{time.monotonic() - started:6.1f}s] {line}", flush=True)

    print(f"{AGENTS} agents, `sleep {cfg.sleep:g}` tasks at {cfg.rate:g}/s; {cfg.lead_in:g}s "
          f"lead-in, then each agent killed (-9), started {cfg.down:g}s later, {cfg.gap:g}s to "
          "settle", flush=True)  # fmt: skip
    for n in range(1, runs + 1):
        work = root / f"run-{n}"
        work.mkdir(parents=True, exist_ok=True)
        try:
            data = asyncio.run(run_cluster(cfg, work, say))
        except (BenchError, TimeoutError) as e:
            print(f"run {n} failed: {e or 'timed out'}\n(logs kept in {work})", file=sys.stderr)
            return 2
        figures = analyse(data)
        print_run(n, data, figures)
        all_figures.append(figures)
        out.append(asdict(figures))
        if figures.correct and not args.work_dir:
            shutil.rmtree(work, ignore_errors=True)
        elif not figures.correct:
            print(f"(logs kept in {work})")
    print_summary(cfg, all_figures, time.monotonic() - started)
    if args.json:
        Path(args.json).write_text(json.dumps({"config": asdict(cfg), "runs": out}, indent=1))
    correct = all(f.correct for f in all_figures)
    if correct and not args.work_dir:
        shutil.rmtree(root, ignore_errors=True)
    return 0 if correct else 1


if __name__ == "__main__":
    sys.exit(main())
