"""Chaos: kill -9 masters, agents and the framework while short tasks run; check every task's end.

A real ZooKeeper, three masters elected through it, four agents (process
containerizer) and an SDK framework in its own process that launches short
tasks all the time. Every 5-20 s (seeded) one of them is killed with SIGKILL
and started again a moment later with the same ports, work dir or framework
id. The framework appends every status update it receives to a JSONL file,
so the harness can check across framework restarts that each task ended
once, with the exit status its command was meant to have, and how long the
cluster took to launch again after losing its leader.

    python bench/chaos.py                    # 10 minutes
    python bench/chaos.py --duration 60 --seed 7 --json out.json
    python bench/chaos.py --quick            # about a minute, fewer faults

Task ids carry the exit status their command is meant to have
(`g3-000042-x2` runs `sleep 0.5; exit 2`), so a FINISHED or FAILED update
that carries another exit status (or FINISHED for a non-zero one) is caught.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.client
import json
import os
import random
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))  # tests/zkserver.py

from _cluster import BenchError, free_ports
from proctools import tail

from orbiter.framework.driver import CallError, Scheduler, SchedulerDriver, task_info
from orbiter.proto import messages_pb2, scheduler_pb2
from orbiter.resources import Resources
from orbiter.taskstates import TERMINAL_STATES

pb = messages_pb2
TS = pb.TaskState
TERMINAL_NAMES = frozenset(TS.Name(s) for s in TERMINAL_STATES)
AGENTS = 4
MASTERS = 3
AGENT_RESOURCES = "cpus:2;mem:1024"
TASK_RESOURCES = "cpus:0.5;mem:32"
STOP_FILE = "stop-launching"
EXITED = re.compile(r"exited with status (-?\d+)")


# ====================================================================== the framework process


def _now() -> float:
    return time.time()  # wall clock: the harness and the framework compare times


class EventLog:
    """Append-only JSONL, one line per event; lines are whole, so a reader never sees half."""

    def __init__(self, path: Path) -> None:
        self.file = path.open("a", buffering=1)

    def write(self, **event: Any) -> None:
        event.setdefault("t", _now())
        self.file.write(json.dumps(event, separators=(",", ":")) + "\n")


def _status_event(status: pb.TaskStatus) -> dict[str, Any]:
    return {
        "task": status.task_id,
        "state": TS.Name(status.state),
        "reason": pb.TaskReason.Name(status.reason),
        "message": status.message,
        "exit_code": status.exit_code if status.HasField("exit_code") else None,
        "source": pb.TaskSource.Name(status.source),
        "agent": status.agent_id,
        "acked": bool(status.uuid),
        "uuid": status.uuid.hex()[:12],
    }


class ChaosScheduler(Scheduler):
    """Launches `sleep 0.5; exit N` tasks while fewer than `max_active` are active.

    What it must remember across a kill -9 (its framework id, the tasks it
    launched that have not ended, and with which agent) is rewritten to
    `framework.json` before each Accept and after each task's end, so the
    restarted process seeds `driver.active_tasks` and reconciles them.
    """

    def __init__(self, state_dir: Path, seed: int, max_active: int) -> None:
        self.dir = state_dir
        self.state_path = state_dir / "framework.json"
        self.events = EventLog(state_dir / "events.jsonl")
        state = self._load()
        self.framework_id: str = state.get("framework_id", "")
        self.active: dict[str, str] = state.get("active", {})
        self.generation: int = state.get("generation", 0) + 1
        self.rng = random.Random(seed * 1000 + self.generation)
        self.seq = 0
        self.max_active = max_active
        self.resources = Resources.parse(TASK_RESOURCES)
        self.per_task = {k: v for k, v in self.resources.quantities().items() if v > 0}
        self._sending: set[asyncio.Task[None]] = set()
        self._save()
        self.events.write(kind="start", gen=self.generation, active=len(self.active))

    def _load(self) -> dict[str, Any]:
        try:
            return json.loads(self.state_path.read_text())
        except FileNotFoundError:
            return {}

    def _save(self) -> None:
        tmp = self.state_path.with_suffix(".tmp")
        tmp.write_text(
            json.dumps(
                {"framework_id": self.framework_id, "generation": self.generation,
                 "active": self.active}
            )
        )  # fmt: skip
        os.replace(tmp, self.state_path)

    def subscribed(self, driver: SchedulerDriver, framework_id: str, master: pb.MasterInfo) -> None:
        self.events.write(
            kind="subscribed", gen=self.generation, framework_id=framework_id,
            master=master.grpc_address, active=sorted(self.active),
        )  # fmt: skip
        if framework_id != self.framework_id:
            self.framework_id = framework_id
            self._save()

    def _fits(self, offer: pb.Offer) -> int:
        available = Resources.from_proto(offer.resources).quantities()
        return min(int(available.get(k, 0.0) / v + 1e-9) for k, v in self.per_task.items())

    def offers(self, driver: SchedulerDriver, offers: list[pb.Offer]) -> None:
        launching = not (self.dir / STOP_FILE).exists()
        self.events.write(kind="offers", gen=self.generation, n=len(offers))
        launches: list[tuple[str, list[pb.TaskInfo]]] = []
        declines: list[str] = []
        for offer in offers:
            n = min(self._fits(offer), self.max_active - len(self.active)) if launching else 0
            if n <= 0:
                declines.append(offer.id)
                continue
            tasks = []
            for _ in range(n):
                self.seq += 1
                code = 0 if self.rng.random() < 0.75 else self.rng.choice([1, 2, 3, 7])
                task_id = f"g{self.generation}-{self.seq:06d}-x{code}"
                tasks.append(
                    task_info(task_id, f"sleep 0.5; exit {code}", self.resources.to_proto())
                )
                self.active[task_id] = offer.agent_id
                self.events.write(kind="launch", task=task_id, agent=offer.agent_id, expect=code)
            launches.append((offer.id, tasks))
        if launches:
            self._save()  # before the Accept: if we die mid-call, the restart reconciles them
        sender = asyncio.get_running_loop().create_task(
            self._send(driver, launches, declines, 1.0 if launching else 30.0)
        )
        self._sending.add(sender)
        sender.add_done_callback(self._sending.discard)

    async def _send(
        self,
        driver: SchedulerDriver,
        launches: list[tuple[str, list[pb.TaskInfo]]],
        declines: list[str],
        refuse: float,
    ) -> None:
        calls = [driver.launch([offer_id], tasks) for offer_id, tasks in launches]
        if declines:
            calls.append(driver.decline(declines, refuse_seconds=refuse))
        results = await asyncio.gather(*calls, return_exceptions=True)
        for (_, tasks), result in zip(launches, results, strict=False):
            if not isinstance(result, BaseException):
                continue
            refused = not (isinstance(result, CallError) and result.code.name == "UNAVAILABLE")
            for t in tasks:
                self.events.write(
                    kind="launch_error", task=t.task_id, refused=refused, error=str(result)
                )
                if refused:  # nothing was launched; UNAVAILABLE: maybe, reconciliation tells
                    self.active.pop(t.task_id, None)
            if refused:
                self._save()

    def status_update(self, driver: SchedulerDriver, status: pb.TaskStatus) -> None:
        self.events.write(kind="delivered", gen=self.generation, **_status_event(status))
        if status.state in TERMINAL_STATES and self.active.pop(status.task_id, None) is not None:
            self._save()  # before the driver acknowledges it

    def error(self, driver: SchedulerDriver, message: str) -> None:
        self.events.write(kind="error", gen=self.generation, message=message)


class RecordingDriver(SchedulerDriver):
    """The stock driver, recording every update the master sends before it filters any."""

    scheduler: ChaosScheduler

    async def _dispatch(self, event: scheduler_pb2.Event) -> None:
        if event.type == scheduler_pb2.Event.UPDATE:
            for status in event.update.statuses:
                self.scheduler.events.write(
                    kind="received", gen=self.scheduler.generation, **_status_event(status)
                )
        await super()._dispatch(event)


async def run_framework(args: argparse.Namespace) -> int:
    state_dir = Path(args.dir)
    scheduler = ChaosScheduler(state_dir, args.seed, args.max_active)
    info = pb.FrameworkInfo(
        id=scheduler.framework_id,
        name="chaos",
        failover_timeout=args.failover_timeout,
        # No PARTITION_AWARE: tasks on an agent that stays away end TASK_LOST.
    )
    driver = RecordingDriver(scheduler, info, args.master)
    driver.active_tasks.update(scheduler.active)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, driver.stop)
    fatal = await driver.run()
    scheduler.events.write(kind="stopped", gen=scheduler.generation, fatal=fatal)
    return 1 if fatal else 0


# ====================================================================== the harness


@dataclass
class Proc:
    """One process of the cluster that can be killed and started again the same way."""

    name: str
    args: list[str]
    log: Path
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("ORBITER_")}
        env["PYTHONUNBUFFERED"] = "1"
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                self.args, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                env=env,
            )  # fmt: skip

    def kill9(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, grace: float = 10.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(grace)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@dataclass
class Fault:
    at: float  # seconds since the start of the chaos phase
    wall: float  # time.time() of the kill
    kind: str  # master | agent | framework
    target: str
    was_leader: bool
    down_for: float
    agent_id: str = ""  # for an agent fault: the id its tasks carry


@dataclass
class Config:
    duration: float
    seed: int
    min_gap: float
    max_gap: float
    settle: float
    work_dir: Path
    max_active: int


class Cluster:
    def __init__(self, cfg: Config, zk_url: str) -> None:
        self.cfg = cfg
        py = sys.executable
        ports = free_ports(2 * MASTERS)
        self.exits = []
        self.masters: list[Proc] = []
        self.http: dict[str, str] = {}
        for i in range(MASTERS):
            name = f"master-{i}"
            d = cfg.work_dir / name
            d.mkdir(parents=True, exist_ok=True)
            self.http[name] = f"127.0.0.1:{ports[2 * i + 1]}"
            self.masters.append(Proc(name, [
                py, "-m", "orbiter.cli", "master", "--zk", zk_url,
                "--port", str(ports[2 * i]), "--http-port", str(ports[2 * i + 1]),
                "--work-dir", str(d / "state"), "--no-satellite",
                "--zk-session-timeout", "3s", "--agent-reregister-timeout", "15s",
                "--agent-timeout", "5",
            ], d / "master.log"))  # fmt: skip
        self.agents: list[Proc] = []
        for i in range(AGENTS):
            name = f"agent-{i}"
            d = cfg.work_dir / name
            d.mkdir(parents=True, exist_ok=True)
            self.agents.append(Proc(name, [
                py, "-m", "orbiter.cli", "agent", "--master", zk_url, "--work-dir", str(d),
                "--resources", AGENT_RESOURCES, "--containerizer", "process",
                "--hostname", f"chaos-{name}",
            ], d / "agent.log"))  # fmt: skip
        fw_dir = cfg.work_dir / "framework"
        fw_dir.mkdir(parents=True, exist_ok=True)
        self.framework_dir = fw_dir
        self.framework = Proc("framework", [
            py, str(Path(__file__).resolve()), "framework", "--master", zk_url,
            "--dir", str(fw_dir), "--seed", str(cfg.seed), "--max-active", str(cfg.max_active),
        ], fw_dir / "framework.log")  # fmt: skip

    exits: list[dict[str, Any]]

    def all(self) -> list[Proc]:
        return [*self.masters, *self.agents, self.framework]

    def health(self, name: str) -> dict[str, Any] | None:
        try:
            with urllib.request.urlopen(f"http://{self.http[name]}/health", timeout=1) as r:
                return json.loads(r.read())
        except (OSError, http.client.HTTPException, ValueError):
            return None

    def agent_id(self, name: str) -> str:
        """The id the leading master knows the agent `name` by ("" if no leader answers)."""
        leader = self.leader()
        if leader is None:
            return ""
        try:
            url = f"http://{self.http[leader]}/api/v1/agents"
            with urllib.request.urlopen(url, timeout=2) as r:
                agents = json.loads(r.read())["agents"]
        except (OSError, http.client.HTTPException, ValueError, KeyError):
            return ""
        return next((a["id"] for a in agents if a["hostname"] == f"chaos-{name}"), "")

    def leader(self) -> str | None:
        """The master that says it leads and acts (None during an election)."""
        for m in self.masters:
            if m.alive():
                h = self.health(m.name)
                if h and h.get("role") == "leader" and h.get("acting", True):
                    return m.name
        return None

    def wait_leader(self, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if (name := self.leader()) is not None:
                return name
            time.sleep(0.1)
        raise BenchError(f"no leading master after {timeout:g}s")

    def check_alive(self) -> None:
        for p in self.all():
            if not p.alive():
                assert p.proc is not None
                raise BenchError(f"{p.name} exited by itself with {p.proc.returncode}; see {p.log}")

    def revive(self, elapsed: float, say: Any) -> None:
        """Start again whatever exited by itself (a master that lost its ZooKeeper session
        exits by design), and note it: these are not injected faults."""
        for p in self.all():
            if p.alive():
                continue
            assert p.proc is not None
            last = tail(p.log, 3).splitlines()
            self.exits.append(
                {"at": round(elapsed, 2), "process": p.name, "status": p.proc.returncode,
                 "log": last}
            )  # fmt: skip
            say(f"{p.name} exited by itself with {p.proc.returncode}; starting it again: "
                f"{last[-1] if last else ''}")  # fmt: skip
            p.start()


def _read_events(path: Path) -> list[dict[str, Any]]:
    events = []
    try:
        text = path.read_text()
    except FileNotFoundError:
        return []
    for line in text.splitlines():
        with contextlib.suppress(ValueError):  # a line cut short by a kill -9
            events.append(json.loads(line))
    return events


def _open_tasks(events: list[dict[str, Any]]) -> tuple[int, int]:
    """(tasks launched, of which not yet given an end)."""
    launched: set[str] = set()
    ended: set[str] = set()
    for e in events:
        if e["kind"] == "launch":
            launched.add(e["task"])
        elif e["kind"] == "launch_error" and e["refused"]:
            launched.discard(e["task"])
        elif e["kind"] == "delivered" and e["state"] in TERMINAL_NAMES:
            ended.add(e["task"])
    return len(launched), len(launched - ended)


def run_chaos(cfg: Config) -> tuple[list[Fault], Cluster, float]:
    from zkserver import ZooKeeperServer

    rng = random.Random(cfg.seed)
    zk = ZooKeeperServer(cfg.work_dir / "zookeeper")
    zk.start()
    cluster = Cluster(cfg, zk.url("/orbiter"))
    events_path = cluster.framework_dir / "events.jsonl"
    faults: list[Fault] = []
    t0 = time.monotonic()

    def say(text: str) -> None:
        print(f"[{time.monotonic() - t0:6.1f}s] {text}", flush=True)

    try:
        # One master first: masters claiming an empty ZooKeeper path at the same moment
        # can refuse it as "owned by another system" (orbiter/zk.py claim_root).
        cluster.masters[0].start()
        say(f"ZooKeeper at {zk.address}; {MASTERS} masters starting")
        say(f"leader: {cluster.wait_leader(60)}")
        for m in cluster.masters[1:]:
            m.start()
        for a in cluster.agents:
            a.start()
        cluster.framework.start()
        while _open_tasks(_read_events(events_path))[0] == 0:
            if time.monotonic() - t0 > 90:
                raise BenchError(f"no task launched in 90s; see {cluster.framework.log}")
            cluster.check_alive()
            time.sleep(0.2)
        say(f"{AGENTS} agents and the framework up; tasks launching")
        start = time.monotonic()
        last_progress = start
        next_fault = start + rng.uniform(cfg.min_gap, cfg.max_gap)
        while (now := time.monotonic()) < start + cfg.duration:
            cluster.revive(time.monotonic() - t0, say)
            if now >= next_fault:
                faults.append(_inject(cluster, rng, first=not faults, elapsed=now - t0, say=say))
                next_fault = time.monotonic() + rng.uniform(cfg.min_gap, cfg.max_gap)
            elif now - last_progress >= 10:
                launched, open_ = _open_tasks(_read_events(events_path))
                say(f"{launched} tasks launched, {open_} not ended; leader {cluster.leader()}")
                last_progress = now
            time.sleep(0.1)
        (cluster.framework_dir / STOP_FILE).touch()
        say(f"chaos over after {len(faults)} faults; no more launches, settling "
            f"(up to {cfg.settle:g}s)")  # fmt: skip
        settle_start = time.monotonic()
        last_progress = settle_start
        while time.monotonic() - settle_start < cfg.settle:
            cluster.revive(time.monotonic() - t0, say)
            launched, open_ = _open_tasks(_read_events(events_path))
            if open_ == 0 and time.monotonic() - settle_start > 3:
                break
            if time.monotonic() - last_progress >= 5:
                say(f"settling: {open_} of {launched} tasks not ended yet")
                last_progress = time.monotonic()
            time.sleep(0.5)
        launched, open_ = _open_tasks(_read_events(events_path))
        say(f"settled: {launched} tasks launched, {open_} never ended")
        return faults, cluster, time.monotonic() - t0
    finally:
        for p in [cluster.framework, *cluster.agents, *cluster.masters]:
            p.stop()
        zk.stop()


def _inject(cluster: Cluster, rng: random.Random, first: bool, elapsed: float, say: Any) -> Fault:
    """Kill one process with SIGKILL and start it again a moment later."""
    leader = cluster.leader()
    kind = "master" if first else rng.choice(["master", "agent", "framework"])
    if kind == "master":
        # The first fault, and half of the master faults, take out the leader.
        if (first or rng.random() < 0.5) and leader is not None:
            victim = next(m for m in cluster.masters if m.name == leader)
        else:
            victim = rng.choice(cluster.masters)
        down = rng.uniform(1, 4)
    elif kind == "agent":
        victim = rng.choice(cluster.agents)
        down = rng.uniform(1, 8)  # sometimes longer than the master's 5 s agent timeout
    else:
        victim = cluster.framework
        down = rng.uniform(1, 4)
    was_leader = victim.name == leader
    agent_id = cluster.agent_id(victim.name) if kind == "agent" else ""
    wall = _now()
    victim.kill9()
    say(f"kill -9 {victim.name}{' (leader)' if was_leader else ''}; back in {down:.1f}s")
    time.sleep(down)
    victim.start()
    return Fault(
        round(elapsed, 2), wall, kind, victim.name, was_leader, round(down, 2), agent_id
    )


# ====================================================================== analysis


@dataclass
class Result:
    seed: int
    duration: float
    wall_seconds: float
    faults: list[dict[str, Any]]
    faults_by_kind: dict[str, int]
    leader_kills: int
    framework_restarts: int
    launched: int
    finished: int
    failed: int
    lost: int
    other_ends: int
    ends_by_reason: dict[str, int]
    failed_as_intended: int
    double_terminal: int
    exit_mismatch: int
    never_ended: int
    repeated_end_same_process: int
    repeated_end_after_restart: int
    conflicting_ends_received: int
    failover_seconds: list[float | None]
    failover_median: float | None
    failover_max: float | None
    failover_breakdown: list[dict[str, float | None]]
    held_update_seconds: list[float]
    held_update_median: float | None
    held_update_max: float | None
    failover_held_update_seconds: list[float]
    across_agent_restart: dict[str, int] = field(default_factory=dict)
    unplanned_exits: list[dict[str, Any]] = field(default_factory=list)
    violations: dict[str, list[str]] = field(default_factory=dict)
    histories: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    @property
    def correct(self) -> bool:
        return self.double_terminal == 0 and self.exit_mismatch == 0 and self.never_ended == 0


def _expected_exit(task_id: str) -> int:
    return int(task_id.rsplit("-x", 1)[1])


def _exit_code(e: dict[str, Any]) -> int | None:
    """The update's exit code, or the one its message names (reconciliation answers)."""
    if e["exit_code"] is not None:
        return int(e["exit_code"])
    said = EXITED.search(e["message"])
    return int(said.group(1)) if said else None


def _exit_wrong(e: dict[str, Any]) -> bool:
    """A FINISHED/FAILED update that contradicts the exit status the command was meant to have."""
    expect = _expected_exit(e["task"])
    code = _exit_code(e)
    if e["state"] == "TASK_FINISHED":
        return expect != 0 or (code is not None and code != 0)
    if e["state"] == "TASK_FAILED" and code is not None:
        return code != expect
    return False


def _median(xs: list[float]) -> float | None:
    return round(statistics.median(xs), 2) if xs else None


def analyse(
    cfg: Config,
    faults: list[Fault],
    events: list[dict[str, Any]],
    wall: float,
    exits: list[dict[str, Any]],
) -> Result:
    launched: dict[str, dict[str, Any]] = {}
    for e in events:
        if e["kind"] == "launch":
            launched[e["task"]] = e
        elif e["kind"] == "launch_error" and e["refused"]:
            launched.pop(e["task"], None)
    by_task: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for e in events:
        if "task" in e:
            by_task[e["task"]].append(e)

    ends: dict[str, list[dict[str, Any]]] = defaultdict(list)  # delivered ends, in order
    received_ends: dict[str, set[str]] = defaultdict(set)
    mismatched: set[str] = set()
    for e in events:
        if e["kind"] not in ("delivered", "received"):
            continue
        if e["state"] in ("TASK_FINISHED", "TASK_FAILED") and _exit_wrong(e):
            mismatched.add(e["task"])
        if e["state"] not in TERMINAL_NAMES:
            continue
        if e["kind"] == "delivered":
            ends[e["task"]].append(e)
        else:
            received_ends[e["task"]].add(e["state"])

    double = sorted(t for t, es in ends.items() if len({e["state"] for e in es}) > 1)
    # The same end again: in the same framework process the SDK should have kept it back;
    # in a restarted one it is expected (the end had not been acknowledged when it was killed).
    same_process: list[str] = []
    after_restart = 0
    for t, es in ends.items():
        if t in double or len(es) < 2:
            continue
        gens = [e["gen"] for e in es]
        if len(set(gens)) < len(gens):
            same_process.append(t)
        else:
            after_restart += len(es) - 1
    conflicting_received = sorted(t for t, s in received_ends.items() if len(s) > 1)
    never = sorted(t for t in launched if not ends.get(t))
    first_end = {t: es[0] for t, es in ends.items() if t in launched}
    # The true reason: the agent's own update of that end, if one came, not a reconciliation answer.
    first_end = {
        t: next(
            (
                r
                for r in by_task[t]
                if r["kind"] == "received"
                and r["state"] == e["state"]
                and r["reason"] != "REASON_RECONCILIATION"
            ),
            e,
        )
        for t, e in first_end.items()
    }
    reasons: Counter[str] = Counter()
    for e in first_end.values():
        why = e["reason"].removeprefix("REASON_")
        if e["state"] == "TASK_FAILED" and e["reason"] == "REASON_COMMAND_EXITED":
            why = f"COMMAND_EXITED {e['exit_code']}"
        reasons[f"{e['state'].removeprefix('TASK_')} {why}"] += 1
    states = Counter(e["state"] for e in first_end.values())
    failed_as_intended = sum(
        1
        for t, e in first_end.items()
        if e["state"] == "TASK_FAILED" and e["exit_code"] == _expected_exit(t) != 0
    )

    # Failover: leader killed -> first RUNNING of a task launched after the kill.
    running = sorted(
        (e["t"], e["task"])
        for e in events
        if e["kind"] == "delivered" and e["state"] == "TASK_RUNNING"
    )
    failovers: list[float | None] = []
    breakdown: list[dict[str, float | None]] = []
    for f in faults:
        if not f.was_leader:
            continue
        first = next(
            (
                t
                for t, task in running
                if t > f.wall and launched.get(task, {}).get("t", 0) > f.wall
            ),
            None,
        )
        failovers.append(None if first is None else round(first - f.wall, 2))
        sub = next((e["t"] for e in events if e["kind"] == "subscribed" and e["t"] > f.wall), None)
        offer = next(
            (e["t"] for e in events if e["kind"] == "offers" and e["t"] > (sub or f.wall)), None
        )
        breakdown.append(
            {
                "at": f.at,
                "resubscribed": None if sub is None else round(sub - f.wall, 2),
                "first_offer": None if offer is None else round(offer - f.wall, 2),
                "first_running": failovers[-1],
            }
        )

    # Resubscription -> last held terminal update delivered. A held update is the end of a
    # task the framework had open when it subscribed, delivered with no RUNNING before it.
    held_restart: list[float] = []
    held_failover: list[float] = []
    subs = [e for e in events if e["kind"] == "subscribed"]
    gens_seen: set[int] = set()
    for i, s in enumerate(subs):
        until = subs[i + 1]["t"] if i + 1 < len(subs) else float("inf")
        open_ = set(s["active"])
        last = None
        seen_first: set[str] = set()
        for e in events:
            if e["kind"] != "delivered" or not (s["t"] <= e["t"] < until) or e["task"] not in open_:
                continue
            if e["task"] in seen_first:
                continue
            seen_first.add(e["task"])
            if e["state"] in TERMINAL_NAMES:
                last = e["t"]
        restart = s["gen"] not in gens_seen
        gens_seen.add(s["gen"])
        if last is not None:
            (held_restart if restart else held_failover).append(round(last - s["t"], 2))

    violations = {
        "double_terminal": double,
        "exit_mismatch": sorted(mismatched),
        "never_ended": never,
        "conflicting_ends_received": conflicting_received,
        "end_delivered_twice_same_process": sorted(same_process),
    }
    histories = {
        t: by_task[t]
        for t in dict.fromkeys(
            double + sorted(mismatched) + never + conflicting_received + sorted(same_process)[:5]
        )
    }
    across = _across_agent_restarts(faults, events, launched, first_end, mismatched)
    kinds = Counter(f.kind for f in faults)
    return Result(
        seed=cfg.seed,
        duration=cfg.duration,
        wall_seconds=round(wall, 1),
        faults=[asdict(f) for f in faults],
        faults_by_kind=dict(kinds),
        leader_kills=sum(f.was_leader for f in faults),
        framework_restarts=kinds.get("framework", 0),
        launched=len(launched),
        finished=states.get("TASK_FINISHED", 0),
        failed=states.get("TASK_FAILED", 0),
        lost=states.get("TASK_LOST", 0),
        other_ends=sum(
            v for k, v in states.items() if k not in ("TASK_FINISHED", "TASK_FAILED", "TASK_LOST")
        ),
        ends_by_reason=dict(reasons.most_common()),
        failed_as_intended=failed_as_intended,
        double_terminal=len(double),
        exit_mismatch=len(mismatched),
        never_ended=len(never),
        repeated_end_same_process=len(same_process),
        repeated_end_after_restart=after_restart,
        conflicting_ends_received=len(conflicting_received),
        failover_seconds=failovers,
        failover_median=_median([x for x in failovers if x is not None]),
        failover_max=max((x for x in failovers if x is not None), default=None),
        failover_breakdown=breakdown,
        held_update_seconds=held_restart,
        held_update_median=_median(held_restart),
        held_update_max=max(held_restart, default=None),
        failover_held_update_seconds=held_failover,
        across_agent_restart=dict(across),
        unplanned_exits=exits,
        violations=violations,
        histories=histories,
    )


def _across_agent_restarts(
    faults: list[Fault],
    events: list[dict[str, Any]],
    launched: dict[str, dict[str, Any]],
    first_end: dict[str, dict[str, Any]],
    mismatched: set[str],
) -> Counter[str]:
    """Tasks that were RUNNING on an agent when it was killed and ended after: how their
    ends were told (the point of the task keeper: by their real exit, not LOST)."""
    running_at: dict[str, float] = {}
    for e in events:
        if e["kind"] == "delivered" and e["state"] == "TASK_RUNNING":
            running_at.setdefault(e["task"], e["t"])
    out: Counter[str] = Counter()
    for f in faults:
        if f.kind != "agent" or not f.agent_id:
            continue
        for task, end in first_end.items():
            started = running_at.get(task)
            on_agent = launched.get(task, {}).get("agent") == f.agent_id
            if not on_agent or started is None or not (started < f.wall < end["t"]):
                continue
            if end["state"] in ("TASK_FINISHED", "TASK_FAILED"):
                out["wrong exit" if task in mismatched else "real exit"] += 1
            else:
                out[end["state"].removeprefix("TASK_").lower()] += 1
    return out


def _fmt(x: float | None, unit: str = "s") -> str:
    return "-" if x is None else f"{x:.2f} {unit}"


def print_report(r: Result, faults: list[Fault]) -> None:
    rows: list[tuple[str, str, str]] = [
        ("faults injected", ", ".join(f"{k} {v}" for k, v in sorted(r.faults_by_kind.items())), ""),
        ("leader kills", str(r.leader_kills), ">= 1"),
        ("tasks launched", str(r.launched), ""),
        ("  finished", str(r.finished), ""),
        ("  failed", f"{r.failed} ({r.failed_as_intended} exited non-zero as meant)", ""),
        ("  lost", str(r.lost), ""),
        ("  other ends", str(r.other_ends), ""),
    ]
    rows += [(f"    {k}", str(v), "") for k, v in r.ends_by_reason.items()]
    rows += [
        ("processes that exited by themselves", str(len(r.unplanned_exits)), "0"),
        ("tasks given two different ends", str(r.double_terminal), "0"),
        ("tasks with a wrong exit status", str(r.exit_mismatch), "0"),
        ("tasks never ended", str(r.never_ended), "0"),
        (
            "tasks running through an agent kill -9",
            ", ".join(f"{k} {v}" for k, v in sorted(r.across_agent_restart.items())) or "none",
            "all 'real exit' when back in --agent-timeout",
        ),
        (
            "same end delivered twice to one framework process",
            str(r.repeated_end_same_process),
            "0",
        ),
        ("  (same end again after a framework restart)", str(r.repeated_end_after_restart), ""),
        (
            "  (different ends sent by the master, SDK kept one)",
            str(r.conflicting_ends_received),
            "0",
        ),
        ("failover: leader kill -> first new RUNNING, median", _fmt(r.failover_median), "<= 5 s"),
        (
            "  max",
            f"{_fmt(r.failover_max)} over {sum(x is not None for x in r.failover_seconds)}"
            f" of {len(r.failover_seconds)} kills",
            "",
        ),
        (
            "framework restart -> last held end delivered, median",
            _fmt(r.held_update_median),
            "<= 2 s",
        ),
        ("  max", f"{_fmt(r.held_update_max)} over {len(r.held_update_seconds)} restarts", ""),
        (
            "  (after a master failover: median / max)",
            f"{_fmt(_median(r.failover_held_update_seconds))} / "
            f"{_fmt(max(r.failover_held_update_seconds, default=None))}",
            "",
        ),
    ]
    w = max(len(a) for a, _, _ in rows)
    print(f"\nchaos, seed {r.seed}, {r.duration:g}s of faults ({r.wall_seconds:g}s in all)")
    print(f"{'':{w}}  {'figure':<28} aim")
    for a, b, c in rows:
        print(f"{a:<{w}}  {b:<28} {c}")
    print(
        "leader kills: seconds from the kill to the framework resubscribed, first offer, "
        "first new RUNNING"
    )
    for b in r.failover_breakdown:
        print(
            f"  at {b['at']:6.1f}s: "
            + ", ".join(_fmt(b[k]) for k in ("resubscribed", "first_offer", "first_running"))
        )
    for x in r.unplanned_exits:
        print(f"exited by itself at {x['at']:g}s: {x['process']} with {x['status']}: "
              + " / ".join(x["log"]))  # fmt: skip
    for kind, tasks in r.violations.items():
        if not tasks:
            continue
        print(f"\n{kind}: {len(tasks)} task(s)")
        for t in tasks[:5]:
            print(f"  {t}:")
            for e in r.histories.get(t, []):
                print("    " + _history_line(e, faults))


def _history_line(e: dict[str, Any], faults: list[Fault]) -> str:
    when = time.strftime("%H:%M:%S", time.localtime(e["t"])) + f".{int(e['t'] * 1000) % 1000:03d}"
    recent = [f for f in faults if f.wall <= e["t"]]
    fault = f" [last fault: {recent[-1].target} at {recent[-1].at:g}s]" if recent else ""
    if e["kind"] in ("delivered", "received"):
        return (
            f"{when} {e['kind']:<9} gen {e['gen']} {e['state']} {e['reason']} "
            f"exit={e['exit_code']} {e['source']} uuid={e.get('uuid') or '-'} "
            f"{e['message']!r}{fault}"
        )
    rest = {k: v for k, v in e.items() if k not in ("t", "kind", "task")}
    return f"{when} {e['kind']:<9} {rest}{fault}"


# ====================================================================== main


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("mode", nargs="?", choices=["framework"], help=argparse.SUPPRESS)
    p.add_argument("--duration", type=float, default=600.0, help="seconds of faults (default 600)")
    p.add_argument("--quick", action="store_true", help="about a minute with fewer faults")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--min-gap", type=float, default=5.0, help="seconds between faults, at least")
    p.add_argument("--max-gap", type=float, default=20.0, help="seconds between faults, at most")
    p.add_argument("--settle", type=float, default=60.0, help="at most this long for ends after")
    p.add_argument("--max-active", type=int, default=12, help="tasks the framework keeps open")
    p.add_argument("--work-dir", help="keep logs and state here (default: a temp dir, removed)")
    p.add_argument("--json", help="write the result here as JSON")
    p.add_argument("--analyse", metavar="WORK_DIR", help="only analyse a kept --work-dir again")
    # The framework process (started by the harness): where it keeps its state.
    p.add_argument("--master", help=argparse.SUPPRESS)
    p.add_argument("--dir", help=argparse.SUPPRESS)
    p.add_argument("--failover-timeout", type=float, default=60.0, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.mode == "framework":
        import logging

        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
        return asyncio.run(run_framework(args))

    if args.analyse:
        saved = json.loads((Path(args.analyse) / "run.json").read_text())
        cfg = Config(**{**saved["config"], "work_dir": Path(args.analyse)})
        faults = [Fault(**f) for f in saved["faults"]]
        events = _read_events(Path(args.analyse) / "framework" / "events.jsonl")
        result = analyse(cfg, faults, events, saved["wall"], saved.get("exits", []))
        print_report(result, faults)
        if args.json:
            Path(args.json).write_text(json.dumps(asdict(result), indent=1))
        return 0 if result.correct else 1
    if args.quick:
        args.duration, args.min_gap, args.max_gap = 45.0, 10.0, 15.0
    with contextlib.ExitStack() as stack:
        if args.work_dir:
            work_dir = Path(args.work_dir)
            work_dir.mkdir(parents=True, exist_ok=True)
        else:
            work_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="chaos-")))
        cfg = Config(
            args.duration, args.seed, args.min_gap, args.max_gap, args.settle, work_dir,
            args.max_active,
        )  # fmt: skip
        try:
            faults, cluster, wall = run_chaos(cfg)
        except BenchError as e:
            print(f"chaos failed: {e}", file=sys.stderr)
            if not args.work_dir:
                _keep(work_dir)
            return 2
        events = _read_events(cluster.framework_dir / "events.jsonl")
        (work_dir / "run.json").write_text(
            json.dumps(
                {
                    "config": {**asdict(cfg), "work_dir": str(work_dir)},
                    "faults": [asdict(f) for f in faults],
                    "wall": wall,
                    "exits": cluster.exits,
                }
            )
        )
        result = analyse(cfg, faults, events, wall, cluster.exits)
        print_report(result, faults)
        if args.json:
            Path(args.json).write_text(json.dumps(asdict(result), indent=1))
        if not result.correct and not args.work_dir:
            print(f"logs kept in {_keep(work_dir)}")
    return 0 if result.correct else 1


def _keep(work_dir: Path) -> Path:
    """Copy a temp work dir's logs and framework files somewhere that outlives it."""
    import shutil

    dest = Path(tempfile.mkdtemp(prefix="chaos-kept-"))
    for path in filter(Path.exists, _logs(work_dir)):
        target = dest / path.relative_to(work_dir)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)
    return dest


def _logs(work_dir: Path) -> Iterator[Path]:
    yield from work_dir.glob("*/*.log")
    yield from work_dir.glob("framework/*.json*")
    yield work_dir / "run.json"


if __name__ == "__main__":
    sys.exit(main())
