"""Launch throughput through a framework's own executor, beside the agent's command executor.

Scenarios (full size; `--quick` in brackets), each the median of 3 runs on a
fresh cluster (a new master process and new agents per run), process
containerizer (so every task and executor goes through the agent's task keeper):

- command:       400 [100] `true` tasks, run by the agent's built-in command executor;
- executor x100: 400 [100] tasks, 100 per executor: 4 [1] executor processes;
- executor x10:  400 [100] tasks, 10 per executor: 40 [10] executor processes;
- executor x1:   100 [50] tasks, each in an executor of its own: 100 [50] executor
                 processes (fewer tasks: a Python executor costs ~40 MB while it lives).

4 [1] agents, sized so that every group (an executor and its tasks) fits at
once. The executor is this file run as `executors.py executor`: an SDK
`Executor` that reports each task RUNNING, then FINISHED, as soon as it is
given (it imports only the SDK, as a real Python executor would). Figures:
tasks per second from the first Accept to every RUNNING, and to every
FINISHED, acknowledged to the master, each scenario's ratio to the command
executor, and the CPU every process spent per task: master, agents, framework,
and the task keepers with what they reaped (tasks and executors, measured once
the idle executors have been shut down).

Run: python bench/executors.py [--quick] [--runs N] [--agent-processes] [--json PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from orbiter.framework import Executor, ExecutorDriver, update
from orbiter.proto import messages_pb2 as pb

# ---------------------------------------------------------------------- the executor


class InstantExecutor(Executor):
    """Reports each task RUNNING, then FINISHED, as soon as the agent gives it."""

    def __init__(self) -> None:
        self.jobs: set[asyncio.Task[None]] = set()

    def launch_task(self, driver: ExecutorDriver, task: pb.TaskInfo) -> None:
        # Not awaited: the next LAUNCH event need not wait for this task's two calls.
        job = asyncio.get_running_loop().create_task(self._run(driver, task.task_id))
        self.jobs.add(job)
        job.add_done_callback(self.jobs.discard)

    async def _run(self, driver: ExecutorDriver, task_id: str) -> None:
        await driver.send_status_update(update(task_id, pb.TASK_RUNNING))
        await driver.send_status_update(update(task_id, pb.TASK_FINISHED))


async def run_executor() -> int:
    return 1 if await ExecutorDriver(InstantExecutor()).run() else 0


if __name__ == "__main__" and sys.argv[1:2] == ["executor"]:
    # The executor process stops here: it pays only for the SDK, not for the harness below.
    sys.exit(asyncio.run(run_executor()))

# ---------------------------------------------------------------------- the harness

import contextlib  # noqa: E402
import itertools  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import shlex  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections import deque  # noqa: E402
from dataclasses import asdict, dataclass, field  # noqa: E402
from pathlib import Path  # noqa: E402

import psutil  # noqa: E402
from tabulate import tabulate  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _cluster import (  # noqa: E402
    AckTimingDriver,
    AgentPool,
    BenchError,
    BenchScheduler,
    MasterProcess,
    _stop_process,
    _tail,
)

from orbiter.framework import (  # noqa: E402
    executor_info,
    task_info,
)
from orbiter.resources import Resources  # noqa: E402

TS = pb.TaskState
TASK = Resources.parse("cpus:1;mem:32")
EXECUTOR = Resources.parse("cpus:1;mem:32")
COMMAND = "command"


@dataclass(frozen=True)
class Scenario:
    tasks: int
    per_executor: int  # 0: the agent's command executor runs each task

    @property
    def name(self) -> str:
        return COMMAND if not self.per_executor else f"executor x{self.per_executor}"

    @property
    def executors(self) -> int:
        return self.tasks // self.per_executor if self.per_executor else 0

    @property
    def group_size(self) -> int:
        return self.per_executor or 1

    @property
    def group_need(self) -> Resources:
        """What one executor and its tasks (or one command task) take from an offer."""
        need = EXECUTOR if self.per_executor else Resources.empty()
        for _ in range(self.group_size):
            need = need + TASK
        return need


FULL = (Scenario(400, 0), Scenario(400, 100), Scenario(400, 10), Scenario(100, 1))
QUICK = (Scenario(100, 0), Scenario(100, 100), Scenario(100, 10), Scenario(50, 1))
FULL_AGENTS, QUICK_AGENTS = 4, 1


def executor_command() -> str:
    return shlex.join([sys.executable, str(Path(__file__).resolve()), "executor"])


def build_groups(scenario: Scenario) -> list[list[pb.TaskInfo]]:
    """Each group goes whole into one Accept: an executor with its tasks, or one command task."""
    resources = TASK.to_proto()
    if not scenario.per_executor:
        return [[task_info(f"cmd-{i}", "true", resources)] for i in range(scenario.tasks)]
    command = executor_command()
    groups = []
    for e in range(scenario.executors):
        executor = executor_info(f"ex-{e}", command, EXECUTOR.to_proto())
        groups.append([
            task_info(f"ex-{e}-task-{t}", "", resources, executor=executor)
            for t in range(scenario.per_executor)
        ])  # fmt: skip
    return groups


# ---------------------------------------------------------------------- the framework


@dataclass
class Launch:
    """One launch, timed from the first Accept (seconds)."""

    tasks: int
    to_running: float  # every RUNNING acknowledged
    to_finished: float  # every FINISHED acknowledged
    first_running: float
    accepts: int
    update_events: int

    @property
    def running_rate(self) -> float:
        return self.tasks / self.to_running

    @property
    def finished_rate(self) -> float:
        return self.tasks / self.to_finished


class GroupScheduler(BenchScheduler):
    """BenchScheduler whose unit is a group of tasks sharing one executor: a group goes
    whole into one offer, with the executor's resources (`need` covers both)."""

    def __init__(self, groups: list[list[pb.TaskInfo]], need: Resources) -> None:
        super().__init__(sum(len(g) for g in groups), need, command="")
        self.pending: deque[list[pb.TaskInfo]] = deque(groups)  # type: ignore[assignment]
        self.launched: set[str] = set()

    def _take(self, n: int) -> list[pb.TaskInfo]:
        tasks = [t for _ in range(n) for t in self.pending.popleft()]
        self.launched.update(t.task_id for t in tasks)
        return tasks


async def launch(master: str, scenario: Scenario, timeout: float) -> Launch:
    """Subscribe, launch every group, wait until each task's FINISHED is acknowledged."""
    scheduler = GroupScheduler(build_groups(scenario), scenario.group_need)
    framework = pb.FrameworkInfo(name=f"bench-{scenario.name.replace(' ', '-')}")
    driver = AckTimingDriver(scheduler, framework, master)
    runner = asyncio.create_task(driver.run())
    waiters = [
        asyncio.create_task(scheduler.all_finished.wait()),
        asyncio.create_task(scheduler.failed.wait()),
    ]
    try:
        done, _ = await asyncio.wait(
            [runner, *waiters], timeout=timeout, return_when=asyncio.FIRST_COMPLETED
        )
        if scheduler.failures:
            raise BenchError(f"{len(scheduler.failures)} failures, first: {scheduler.failures[0]}")
        if runner in done:
            raise BenchError(f"the driver stopped: {runner.result() or 'lost the master'}")
        if not done:
            missing = sorted(scheduler.launched - scheduler.finished_acked)
            raise BenchError(
                f"timed out after {timeout:g}s: {len(scheduler.pending)} groups not launched, "
                f"{len(scheduler.running_acked)} RUNNING and {len(scheduler.finished_acked)} "
                "FINISHED "
                f"acknowledged of {scheduler.count}; not finished: {', '.join(missing[:5])}"
            )
    finally:
        for waiter in waiters:
            waiter.cancel()
        driver.stop()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await asyncio.wait_for(runner, 5)
    t0 = scheduler.first_accept
    assert t0 is not None and scheduler.t_finished is not None
    return Launch(
        tasks=scheduler.count,
        to_running=(scheduler.t_running or scheduler.t_finished) - t0,
        to_finished=scheduler.t_finished - t0,
        first_running=(scheduler.t_first_running or t0) - t0,
        accepts=scheduler.accepts,
        update_events=scheduler.update_events,
    )


# ---------------------------------------------------------------------- agents


@dataclass
class AgentProcesses:
    """`orbiter agent` processes, one per agent: each with its own event loop and keeper."""

    procs: list[subprocess.Popen[bytes]]
    logs: list[Path]

    @classmethod
    def start(
        cls, master: MasterProcess, count: int, resources: str, work_dir: Path, timeout: float
    ) -> AgentProcesses:
        procs, logs = [], []
        for i in range(count):
            d = work_dir / f"agent-{i}"
            d.mkdir(parents=True, exist_ok=True)
            logs.append(d / "agent.log")
            with logs[-1].open("wb") as log:
                procs.append(subprocess.Popen(
                    [sys.executable, "-m", "orbiter.cli", "agent", "--master", master.grpc_address,
                     "--work-dir", str(d), "--resources", resources, "--containerizer", "process",
                     "--hostname", f"bench-agent-{i}", "--kill-tasks-on-stop"],
                    stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                ))  # fmt: skip
        agents = cls(procs, logs)
        deadline = time.monotonic() + timeout
        while master.connected_agents() < count:
            for proc, log_path in zip(procs, logs, strict=True):
                if proc.poll() is not None:
                    agents.stop()
                    raise BenchError(f"an agent exited with {proc.returncode}:\n{_tail(log_path)}")
            if time.monotonic() > deadline:
                agents.stop()
                raise BenchError(f"{count} agents did not register in {timeout:g}s")
            time.sleep(0.1)
        return agents

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.procs]

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()  # with --kill-tasks-on-stop: it ends its tasks and executors
        for proc in self.procs:
            _stop_process(proc, 20.0)


def keepers_of(agent_pids: list[int]) -> list[psutil.Process]:
    """The agents' task keepers (each agent starts its own as a child)."""
    found = []
    for pid in agent_pids:
        for child in psutil.Process(pid).children():
            with contextlib.suppress(psutil.Error):
                if "orbiter.agent.keeper" in child.cmdline():
                    found.append(child)
    return found


def stop_keepers(keepers: list[psutil.Process], timeout: float = 10.0) -> list[int]:
    """Keepers still running `timeout` s after their agents stopped with their tasks (told to
    retire, they should exit): killed, and their pids returned."""
    _, alive = psutil.wait_procs(keepers, timeout=timeout)
    for keeper in alive:
        with contextlib.suppress(psutil.Error):
            keeper.kill()
    return [k.pid for k in alive]


def _cpu(proc: psutil.Process, reaped_children: bool = False) -> float:
    t = proc.cpu_times()
    own = t.user + t.system
    return own + (t.children_user + t.children_system if reaped_children else 0.0)


@dataclass
class Cpu:
    """CPU seconds per part of the cluster over one launch. The keepers' share includes the
    tasks and executors they reaped, read once every executor had exited."""

    pids: dict[str, list[int]]
    keepers: list[psutil.Process]
    before: dict[str, float] = field(default_factory=dict)
    used: dict[str, float] = field(default_factory=dict)

    def _read(self) -> dict[str, float]:
        out = {name: sum(_cpu(psutil.Process(p)) for p in pids) for name, pids in self.pids.items()}
        out["keepers+tasks"] = sum(_cpu(k, reaped_children=True) for k in self.keepers)
        return out

    def start(self) -> None:
        self.before = self._read()

    def stop(self) -> None:
        after = self._read()
        self.used = {k: after[k] - self.before[k] for k in after}

    def wait_for_reaped(self, timeout: float) -> float:
        """Wait until the keepers have no live child (the idle executors were shut down)."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if not any(k.children() for k in self.keepers):
                break
            time.sleep(0.1)
        return time.monotonic() - started


@dataclass
class RunRecord:
    launch: Launch
    cpu: dict[str, float]
    executors_started: int
    reaped_after: float  # seconds after the last FINISHED until every executor had exited
    keepers_left: list[int]  # task keepers still running once their agents had stopped

    @property
    def cpu_ms_per_task(self) -> float:
        return 1000 * sum(self.cpu.values()) / self.launch.tasks


def one_run(
    root: Path, scenario: Scenario, agents: int, agent_processes: bool, timeout: float
) -> RunRecord:
    """A fresh master and agents, one framework launch, then everything stopped."""
    work = Path(tempfile.mkdtemp(prefix="run-", dir=root))
    groups = -(-scenario.tasks // scenario.group_size)
    per_agent = -(-groups // agents)
    resources = Resources.empty()
    for _ in range(per_agent):
        resources = resources + scenario.group_need
    master = MasterProcess.start(work / "master")
    pool: AgentPool | AgentProcesses | None = None
    keepers: list[psutil.Process] = []
    try:
        if agent_processes:
            pool = AgentProcesses.start(master, agents, resources.format(), work / "agents", 120)
            agent_pids = pool.pids
        else:
            pool = AgentPool.start(
                master.grpc_address, agents, resources.format(), "process", work / "agents", 120
            )
            agent_pids = [pool.pid]
        keepers = keepers_of(agent_pids)
        cpu = Cpu(
            {"master": [master.pid], "agents": agent_pids, "framework": [os.getpid()]}, keepers
        )
        if len(cpu.keepers) != agents:
            raise BenchError(f"found {len(cpu.keepers)} task keepers for {agents} agents")
        cpu.start()
        result = asyncio.run(launch(master.grpc_address, scenario, timeout))
        reaped = cpu.wait_for_reaped(30.0)
        cpu.stop()
        started = sum(1 for _ in (work / "agents").glob("*/executors/*/*"))
        record = RunRecord(result, cpu.used, started, reaped, [])
    except BenchError as e:
        raise BenchError(f"{e}\n{logged_errors(work)}(logs and work dirs kept in {work})") from None
    finally:
        if pool is not None:
            pool.stop()
        master.stop()
        left = stop_keepers(keepers)
    record.keepers_left = left
    shutil.rmtree(work, ignore_errors=True)
    return record


def logged_errors(work: Path, most: int = 3) -> str:
    """The first ERROR lines of each log under `work`, each with its exception's last line."""
    out = []
    for log_path in sorted(work.rglob("*.log")):
        lines = log_path.read_text(errors="replace").splitlines()
        errors = [i for i, line in enumerate(lines) if " ERROR " in line]
        for i in errors[:most]:
            block = list(itertools.takewhile(lambda x: not x[:1].isdigit(), lines[i + 1 : i + 60]))
            last = next((x for x in reversed(block) if not x.startswith(" ")), "")
            out.append(f"{log_path.relative_to(work)}: {lines[i]} ... {last}\n")
        if len(errors) > most:
            out.append(f"{log_path.relative_to(work)}: ... {len(errors) - most} more ERROR lines\n")
    return "".join(out)


# ---------------------------------------------------------------------- reporting


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _fmt(v: float) -> str:
    return f"{v:,.0f}" if abs(v) >= 100 else f"{v:,.1f}"


def print_details(scenario: Scenario, agents: int, records: list[RunRecord]) -> None:
    rows = []
    for i, r in enumerate(records, 1):
        lr = r.launch
        rows.append([
            i, f"{lr.running_rate:,.0f}", f"{lr.finished_rate:,.0f}", f"{lr.to_running:.2f}",
            f"{lr.to_finished:.2f}", f"{lr.first_running:.2f}", r.executors_started, lr.accepts,
            lr.update_events, " ".join(f"{k}={v:.2f}" for k, v in r.cpu.items()),
            f"{r.cpu_ms_per_task:.1f}", f"{r.reaped_after:.1f}",
        ])  # fmt: skip
    print(f"\n{scenario.name}: {scenario.tasks} tasks / {_n(agents, 'agent')}")
    print(tabulate(rows, headers=[
        "run", "RUNNING tasks/s", "FINISHED tasks/s", "to RUNNING s", "to FINISHED s",
        "1st RUNNING s", "executors", "accepts", "update ev", "CPU s", "CPU ms/task",
        "executors gone s",
    ]))  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="small sizes, one agent (a smoke run)")
    p.add_argument("--runs", type=int, default=3, help="runs per scenario (median reported)")
    p.add_argument("--agent-processes", action="store_true",
                   help="one `orbiter agent` process per agent (default: all agents in one "
                   "helper process, as bench/launch.py runs them)")  # fmt: skip
    p.add_argument("--only", action="append", metavar="SCENARIO",
                   help="run only these: command, x1, x10, x100 (repeatable)")  # fmt: skip
    p.add_argument("--timeout", type=float, default=120.0, help="seconds per launch")
    p.add_argument("--json", default="", help="also write the figures to this file")
    args = p.parse_args(argv)
    agents = QUICK_AGENTS if args.quick else FULL_AGENTS
    scenarios = [
        s for s in (QUICK if args.quick else FULL)
        if not args.only or s.name.removeprefix("executor ") in args.only
    ]  # fmt: skip
    root = Path(tempfile.mkdtemp(prefix="orbiter-bench-executors-"))
    started = time.monotonic()
    how = "one process per agent" if args.agent_processes else "agents in one helper process"
    print(f"process containerizer through the task keeper; {_n(agents, 'agent')}, {how}",
          flush=True)  # fmt: skip
    results: dict[str, list[RunRecord]] = {}
    try:
        for scenario in scenarios:
            print(f"{scenario.name}: {scenario.tasks} tasks ...", flush=True)
            records = [
                one_run(root, scenario, agents, args.agent_processes, args.timeout)
                for _ in range(args.runs)
            ]
            print_details(scenario, agents, records)
            for r in records:
                if r.keepers_left:
                    print(f"task keepers {r.keepers_left} outlived their stopped agents; killed")
            results[scenario.name] = records
    except BenchError as e:
        print(f"benchmark failed: {e}", file=sys.stderr)
        return 1
    shutil.rmtree(root, ignore_errors=True)

    def median(name: str, figure: str) -> float:
        return statistics.median(getattr(r.launch, figure) for r in results[name])

    print(f"\nSummary (median of {args.runs} runs; {time.monotonic() - started:.0f}s in all; "
          f"{_n(agents, 'agent')}, {how})")  # fmt: skip
    rows = []
    for scenario in scenarios:
        records = results[scenario.name]
        finished = [r.launch.finished_rate for r in records]
        ratio = ""
        if COMMAND in results:
            ratio = f"{statistics.median(finished) / median(COMMAND, 'finished_rate'):.2f}x"
        rows.append([
            f"{scenario.name}: {scenario.tasks} tasks, {_n(scenario.executors, 'executor')}",
            f"{_fmt(statistics.median(finished))} tasks/s",
            ", ".join(_fmt(v) for v in finished),
            ratio,
            f"{_fmt(median(scenario.name, 'running_rate'))} tasks/s",
            f"{statistics.median(r.cpu_ms_per_task for r in records):.1f}",
        ])  # fmt: skip
    print(tabulate(rows, headers=[
        "scenario", "to FINISHED+ack, median", "runs", "vs command", "to RUNNING+ack",
        "CPU ms/task",
    ]))  # fmt: skip
    if args.json:
        out = {
            name: [asdict(r) | {"cpu_ms_per_task": r.cpu_ms_per_task} for r in records]
            for name, records in results.items()
        }
        Path(args.json).write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
