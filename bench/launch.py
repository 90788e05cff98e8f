"""End-to-end task launch throughput and the master's memory.

Scenarios (full size; `--quick` in brackets), each the median of 3 runs on a
fresh cluster (a new master process and a new agent-pool process per run):

- null:    10,000 [1,000] tasks over 100 [10] agents with the null
           containerizer; tasks per second from the first Accept until every
           task is RUNNING and its acknowledgement has been taken by the master.
           Aim: >= 1,000 tasks/s.
- process: 500 [100] `true` tasks over 4 [2] agents with the process
           containerizer; tasks per second to every RUNNING acknowledged and
           to every FINISHED acknowledged. Aim: >= 100 tasks/s.
- memory:  1,000 [100] null agents, 10,000 [1,000] running tasks; the master's
           RSS before the agents, after they registered, and with every task
           running; MiB per 10,000 tasks. Aim: < 50 MiB per 10,000 tasks.
           The launch rate over this many agents is printed too.

Then one more null run (and one over the memory scenario's agents) with
py-spy sampling the master and the agent pool, and the top functions by
self and by inclusive time. Every agent is sized so the tasks fill it exactly,
so no leftover offers muddy the count.

Run: python bench/launch.py [--quick] [--runs N] [--no-profile] [--json PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tabulate import tabulate

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _cluster import (
    AgentPool,
    BenchError,
    CpuMeter,
    LaunchResult,
    MasterProcess,
    keeper_pids,
    launch,
)

from orbiter.resources import Resources

TASK = "cpus:1;mem:32"
NULL_AIM = 1000.0
PROCESS_AIM = 100.0
MEMORY_AIM_MIB = 50.0


@dataclass(frozen=True)
class Sizes:
    null_tasks: int
    null_agents: int
    process_tasks: int
    process_agents: int
    memory_agents: int
    memory_tasks: int


FULL = Sizes(10_000, 100, 500, 4, 1_000, 10_000)
QUICK = Sizes(1_000, 10, 100, 2, 100, 1_000)


def agent_resources(tasks_per_agent: int) -> str:
    """An agent that holds exactly `tasks_per_agent` bench tasks."""
    return f"cpus:{tasks_per_agent};mem:{32 * tasks_per_agent}"


@dataclass
class RunRecord:
    """One run of one scenario: the launch, CPU seconds per process, master counters."""

    launch: LaunchResult
    cpu: dict[str, float]
    master_counters: dict[str, float]
    register_seconds: float
    agent_start_seconds: float
    registration_counters: dict[str, float]
    rss_mib: dict[str, float] = field(default_factory=dict)


def _counter_delta(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    keep = (
        "orbiter_master_allocation_runs_total",
        "orbiter_master_agent_messages_sent_total",
        "orbiter_master_registry_writes_total",
    )
    return {k.removeprefix("orbiter_master_"): after.get(k, 0) - before.get(k, 0) for k in keep}


class Profiler:
    """py-spy recording one process into collapsed stacks (one line per stack: frames count)."""

    def __init__(self, pid: int, out: Path, rate: int = 250) -> None:
        self.out = out
        self.proc = subprocess.Popen(
            ["py-spy", "record", "--pid", str(pid), "--rate", str(rate), "--format", "raw",
             "--function", "--nonblocking", "--output", str(out)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        time.sleep(0.5)  # py-spy attaches asynchronously; give it time to take its first sample
        if self.proc.poll() is not None:
            raise BenchError(f"py-spy failed: {self.proc.stderr.read().decode()[-500:]}")

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


def _short(frame: str) -> str:
    """`fn (/long/path/site-packages/pkg/mod.py:12)` -> `fn (pkg/mod.py:12)`."""
    name, _, where = frame.partition(" (")
    where = where.rstrip(")")
    for marker in ("site-packages/", "/work/main/", "lib/python3.11/"):
        if marker in where:
            where = where.split(marker, 1)[1]
            break
    return f"{name} ({where})" if where else name


@dataclass
class ProfileSummary:
    samples: int
    self_top: list[tuple[str, float]]
    inclusive_top: list[tuple[str, float]]


def summarize_profile(path: Path, top: int = 15) -> ProfileSummary:
    """Self and inclusive shares of the sampled (non-idle) time, by function."""
    self_counts: Counter[str] = Counter()
    incl_counts: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        frames = [_short(f) for f in stack.split(";") if f]
        if not frames:
            self_counts["(no Python frame)"] += count
            continue
        self_counts[frames[-1]] += count
        for frame in set(frames):
            incl_counts[frame] += count
    total = max(total, 1)
    return ProfileSummary(
        total,
        [(f, 100.0 * n / total) for f, n in self_counts.most_common(top)],
        [(f, 100.0 * n / total) for f, n in incl_counts.most_common(top)],
    )


def one_run(
    root: Path,
    agents: int,
    tasks: int,
    containerizer: str,
    command: str,
    until_finished: bool = False,
    measure_memory: bool = False,
    profile_dir: Path | None = None,
    agent_dir: Path | None = None,
    satellite: bool = False,
) -> tuple[RunRecord, dict[str, ProfileSummary]]:
    """A fresh master and agent pool, one framework launch, then everything stopped."""
    per_agent = -(-tasks // agents)
    work = Path(tempfile.mkdtemp(prefix="run-", dir=root))
    rss: dict[str, float] = {}
    pool_dir = Path(tempfile.mkdtemp(prefix="agents-", dir=agent_dir or work))
    master = MasterProcess.start(work / "master", satellite=satellite)
    pool: AgentPool | None = None
    profilers: dict[str, Profiler] = {}
    try:
        if measure_memory:
            time.sleep(1.0)  # let start-up allocations settle before the baseline reading
            rss["before_agents"] = master.rss_mib()
        before = master.counters()
        pool = AgentPool.start(
            master.grpc_address, agents, agent_resources(per_agent), containerizer,
            pool_dir, timeout=300,
        )
        registration_counters = _counter_delta(before, master.counters())
        connected = master.connected_agents()
        if connected != agents:
            raise BenchError(
                f"the pool says {agents} agents registered, the master has {connected}"
            )
        if measure_memory:
            time.sleep(1.0)
            rss["after_agents"] = master.rss_mib()
        if profile_dir is not None:
            profilers = {
                name: Profiler(pid, profile_dir / f"{name}.collapsed.txt")
                for name, pid in (("master", master.pid), ("agents", pool.pid))
            }
        cpu = CpuMeter({
            "master": [master.pid],
            "agents": [pool.pid],
            "keepers": keeper_pids(pool_dir),
            "framework": [os.getpid()],
        })
        before = master.counters()
        cpu.start()
        running_probe: Callable[[], None] | None = None
        if measure_memory:
            def running_probe() -> None:
                rss["tasks_running"] = master.rss_mib()
        result = asyncio.run(
            launch(
                master.grpc_address,
                tasks,
                Resources.parse(TASK),
                command=command,
                until_finished=until_finished,
                timeout=300,
                while_running=running_probe,
            )
        )
        cpu.stop()
        for profiler in profilers.values():
            profiler.stop()
        counters = _counter_delta(before, master.counters())
        record = RunRecord(result, cpu.used, counters, pool.register_seconds, pool.start_seconds,
                           registration_counters, rss)
        summaries = {name: summarize_profile(p.out) for name, p in profilers.items()}
        return record, summaries
    finally:
        for profiler in profilers.values():
            if profiler.proc.poll() is None:
                profiler.stop()
        if pool is not None:
            pool.stop()
        master.stop()
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(pool_dir, ignore_errors=True)


# ---------------------------------------------------------------------- reporting


@dataclass
class Row:
    scenario: str
    values: list[float]
    unit: str
    aim: str
    met: bool | None

    @property
    def median(self) -> float:
        return statistics.median(self.values)


def _fmt(v: float) -> str:
    return f"{v:,.0f}" if abs(v) >= 100 else f"{v:,.1f}"


def _ratio(row: Row, aim: float, higher_is_better: bool) -> str:
    r = row.median / aim if higher_is_better else aim / max(row.median, 1e-9)
    return f"{r:.2f}x"


def print_details(title: str, records: list[RunRecord]) -> None:
    print(f"\n{title}")
    rows = []
    for i, r in enumerate(records, 1):
        lr = r.launch
        rows.append([
            i,
            f"{lr.running_rate:,.0f}",
            f"{lr.to_running:.2f}",
            "" if lr.to_finished is None else f"{lr.to_finished:.2f}",
            f"{lr.accepts_returned:.2f}",
            f"{lr.first_running:.2f}",
            f"{lr.running_seen:.2f}",
            lr.accepts,
            lr.offer_events,
            lr.update_events,
            lr.ack_calls,
            " ".join(f"{k}={v:.2f}" for k, v in r.cpu.items()),
            " ".join(f"{k.split('_')[0]}={v:.0f}" for k, v in r.master_counters.items()),
            f"{r.register_seconds:.2f} ({r.agent_start_seconds:.2f})",
            f"{r.registration_counters['registry_writes_total']:.0f}",
        ])
    print(tabulate(rows, headers=[
        "run", "tasks/s", "to RUNNING s", "to FINISHED s", "accepts back s", "1st RUNNING s",
        "all RUNNING seen s", "accepts", "offer ev",
        "update ev", "ack calls", "CPU s during launch", "master counters",
        "register s (start s)", "registry writes",
    ]))


def print_profile(title: str, summaries: dict[str, ProfileSummary]) -> None:
    for name, s in summaries.items():
        print(f"\n{title}: {name} process, {s.samples} non-idle samples at 250 Hz")
        rows = [
            [f"{a[1]:5.1f}%", a[0], f"{b[1]:5.1f}%", b[0]]
            for a, b in zip(s.self_top, s.inclusive_top, strict=False)
        ]
        print(tabulate(rows, headers=["self", "function", "inclusive", "function"]))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="small sizes, for a CI smoke run")
    p.add_argument("--runs", type=int, default=3, help="runs per scenario (median reported)")
    p.add_argument("--no-profile", action="store_true", help="skip the py-spy runs")
    p.add_argument("--profile-dir", default="", help="where py-spy's collapsed stacks go "
                   "(default $TMPDIR/orbiter-bench-profiles)")
    p.add_argument("--json", default="", help="also write the figures to this file")
    p.add_argument("--satellite", action="store_true", help="run the master with its built-in "
                   "Satellite (default: --no-satellite; scraping every agent is a load of its own)")
    p.add_argument("--agent-work-dir", default="", help="parent of the agents' work dirs "
                   "(sandboxes); default: the system temp dir, next to the master's")
    p.add_argument("--only", choices=["null", "process", "memory"], action="append",
                   help="run only these scenarios (repeatable)")
    args = p.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    only = set(args.only or ["null", "process", "memory"])
    profile = not args.no_profile and shutil.which("py-spy") is not None
    if not args.no_profile and not profile:
        print("py-spy not found (pip install py-spy): skipping the profile runs")
    root = Path(tempfile.mkdtemp(prefix="orbiter-bench-launch-"))
    profile_root = Path(args.profile_dir or Path(tempfile.gettempdir()) / "orbiter-bench-profiles")
    agent_dir = Path(args.agent_work_dir) if args.agent_work_dir else None

    def run(*a: object, **kw: object) -> tuple[RunRecord, dict[str, ProfileSummary]]:
        return one_run(  # type: ignore[arg-type]
            root, *a, agent_dir=agent_dir, satellite=args.satellite, **kw
        )

    started = time.monotonic()
    print(f"master {'with' if args.satellite else 'without'} its built-in Satellite; "
          f"agent work dirs under {agent_dir or tempfile.gettempdir()}", flush=True)
    table: list[Row] = []
    out: dict[str, object] = {"sizes": asdict(sizes)}
    try:
        if "null" in only:
            label = f"null: {sizes.null_tasks:,} tasks / {sizes.null_agents} agents"
            print(f"{label} ...", flush=True)
            records = [
                run(sizes.null_agents, sizes.null_tasks, "null", "sleep 3600")[0]
                for _ in range(args.runs)
            ]
            print_details(label, records)
            rates = [r.launch.running_rate for r in records]
            table.append(Row(f"{label}, to RUNNING+ack", rates, "tasks/s", f">= {NULL_AIM:,.0f}",
                             statistics.median(rates) >= NULL_AIM))
            out["null"] = [asdict(r) for r in records]
        if "process" in only:
            label = f"process: {sizes.process_tasks} `true` tasks / {sizes.process_agents} agents"
            print(f"\n{label} ...", flush=True)
            records = [
                run(sizes.process_agents, sizes.process_tasks, "process", "true",
                    until_finished=True)[0]
                for _ in range(args.runs)
            ]
            print_details(label, records)
            running = [r.launch.running_rate for r in records]
            finished = [r.launch.finished_rate or 0.0 for r in records]
            table.append(Row(f"{label}, to RUNNING+ack", running, "tasks/s",
                             f">= {PROCESS_AIM:,.0f}", statistics.median(running) >= PROCESS_AIM))
            table.append(Row(f"{label}, to FINISHED+ack", finished, "tasks/s",
                             f">= {PROCESS_AIM:,.0f}", statistics.median(finished) >= PROCESS_AIM))
            out["process"] = [asdict(r) for r in records]
        if "memory" in only:
            label = f"memory: {sizes.memory_agents:,} null agents, {sizes.memory_tasks:,} tasks"
            print(f"\n{label} ...", flush=True)
            records = [
                run(sizes.memory_agents, sizes.memory_tasks, "null", "sleep 3600",
                    measure_memory=True)[0]
                for _ in range(args.runs)
            ]
            print_details(label, records)
            stages = ("before_agents", "after_agents", "tasks_running")
            print(tabulate(
                [[i, *(f"{r.rss_mib[k]:.1f}" for k in stages)] for i, r in enumerate(records, 1)],
                headers=["run", "RSS before agents MiB", "after agents MiB", "tasks running MiB"],
            ))
            scale = 10_000 / sizes.memory_tasks
            per_10k = [(r.rss_mib["tasks_running"] - r.rss_mib["after_agents"]) * scale
                       for r in records]
            per_agent_kib = [
                (r.rss_mib["after_agents"] - r.rss_mib["before_agents"]) * 1024
                / sizes.memory_agents
                for r in records
            ]
            for key in stages:
                table.append(Row(f"master RSS, {key.replace('_', ' ')}",
                                 [r.rss_mib[key] for r in records], "MiB", "", None))
            table.append(Row("master RSS per agent", per_agent_kib, "KiB", "", None))
            met = statistics.median(per_10k) < MEMORY_AIM_MIB
            table.append(Row("master RSS per 10,000 running tasks", per_10k, "MiB",
                             f"< {MEMORY_AIM_MIB:.0f}", met))
            table.append(Row(f"{label}: launch, to RUNNING+ack",
                             [r.launch.running_rate for r in records], "tasks/s", "", None))
            table.append(Row(f"{label}: agents registering", [r.register_seconds for r in records],
                             "s", "", None))
            out["memory"] = [asdict(r) for r in records]
        if profile:
            profile_runs = []
            if "null" in only:
                profile_runs.append(("null", sizes.null_agents, sizes.null_tasks))
            if "memory" in only:
                profile_runs.append(("memory", sizes.memory_agents, sizes.memory_tasks))
            for name, agents, tasks in profile_runs:
                pdir = profile_root / name
                pdir.mkdir(parents=True, exist_ok=True)
                title = f"profile, {tasks:,} null tasks / {agents:,} agents"
                print(f"\n{title} ...", flush=True)
                record, summaries = run(agents, tasks, "null", "sleep 3600", profile_dir=pdir)
                print(f"(profiled run: {record.launch.running_rate:,.0f} tasks/s, "
                      f"CPU s {record.cpu}; collapsed stacks in {pdir})")
                print_profile(title, summaries)
                out[f"profile_{name}"] = {k: asdict(v) for k, v in summaries.items()}
    except BenchError as e:
        print(f"benchmark failed: {e}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(root, ignore_errors=True)

    print(f"\nSummary (median of {args.runs} runs; {time.monotonic() - started:.0f}s in all; "
          f"Satellite {'on' if args.satellite else 'off'})")
    rows = []
    for row in table:
        ratio = ""
        if row.met is not None:
            aim = float(row.aim.split()[-1].replace(",", ""))
            ratio = _ratio(row, aim, row.aim.startswith(">="))
        rows.append([
            row.scenario,
            f"{_fmt(row.median)} {row.unit}",
            ", ".join(_fmt(v) for v in row.values),
            row.aim,
            ratio,
            "" if row.met is None else ("yes" if row.met else "NO"),
        ])
    print(tabulate(rows, headers=["scenario", "median", "runs", "aim", "vs aim", "met?"]))
    if args.json:
        out["summary"] = [asdict(r) | {"median": r.median} for r in table]
        Path(args.json).write_text(json.dumps(out, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
