"""A real cluster: `orbiter master` and two `orbiter agent` processes, driven from outside.

Tasks go in through `orbiter execute` (a process of its own) and through the
scheduler SDK (a small Scheduler subclass running in the test's event loop);
outputs come back from the agents' sandboxes over /files/read and
`orbiter cat`. Faults are real: an agent killed with SIGKILL, a master killed
with SIGKILL and started again on the same work dir.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pytest

from orbiter.framework import Scheduler, SchedulerDriver, task_info
from orbiter.proto import master_pb2
from orbiter.proto import messages_pb2 as pb
from orbiter.resources import Resources

if TYPE_CHECKING:
    from tests.conftest import AgentProcess, Cluster, MasterProcess

pytestmark = pytest.mark.slow

ORBITER = [sys.executable, "-m", "orbiter.cli"]
AsyncWait = Callable[..., Awaitable[Any]]
# Each agent holds 40 tasks of cpus:0.1, so 50 tasks need both of them.
AGENT_RESOURCES = "cpus:4;mem:4096;disk:1000"
TASK_RESOURCES = Resources.parse("cpus:0.1;mem:32")
TIMEOUT = 30.0


@pytest.fixture
def cluster(shared_cluster: Cluster) -> tuple[MasterProcess, list[AgentProcess]]:
    """The module's master and two agents; tests here look only at their own frameworks."""
    assert shared_cluster.agents[0].state()["resources"]["text"] == AGENT_RESOURCES
    return shared_cluster.master, shared_cluster.agents


def two_agents(
    master: MasterProcess, agent_process: Callable[..., AgentProcess]
) -> list[AgentProcess]:
    """Two agents started side by side (each takes a second of CPU to start)."""
    agents = [agent_process(master, AGENT_RESOURCES, wait=False) for _ in range(2)]
    for agent in agents:
        agent.wait_registered()
    return agents


# ---------------------------------------------------------------------- the SDK side


@dataclass
class BatchScheduler(Scheduler):
    """Launches the given tasks on the first offers that fit and records every update.

    `only_agent`, when set, keeps the tasks on that agent (other offers are declined).
    """

    commands: dict[str, str]
    only_agent: str = ""
    pending: list[str] = field(default_factory=list)
    updates: dict[str, list[pb.TaskStatus]] = field(default_factory=dict)
    failures: list[tuple[str, str]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.pending = list(self.commands)

    async def offers(self, driver: SchedulerDriver, offers: list[pb.Offer]) -> None:
        for offer in offers:
            available = Resources.from_proto(offer.resources)
            batch = []
            if not self.only_agent or offer.agent_id == self.only_agent:
                while self.pending and available.contains(TASK_RESOURCES):
                    available = available - TASK_RESOURCES
                    task_id = self.pending.pop(0)
                    batch.append(
                        task_info(task_id, self.commands[task_id], TASK_RESOURCES.to_proto())
                    )
            if batch:
                await driver.launch([offer.id], batch)
            else:
                await driver.decline([offer.id], refuse_seconds=1.0)

    def status_update(self, driver: SchedulerDriver, status: pb.TaskStatus) -> None:
        self.updates.setdefault(status.task_id, []).append(status)

    def failure(self, driver: SchedulerDriver, agent_id: str, message: str) -> None:
        self.failures.append((agent_id, message))

    def error(self, driver: SchedulerDriver, message: str) -> None:
        self.errors.append(message)

    def last(self, task_id: str) -> pb.TaskStatus | None:
        statuses = self.updates.get(task_id)
        return statuses[-1] if statuses else None

    def in_state(self, state: int, task_ids: Iterable[str] | None = None) -> list[str]:
        ids = self.commands if task_ids is None else task_ids
        return [t for t in ids if (s := self.last(t)) is not None and s.state == state]


@contextlib.asynccontextmanager
async def running(
    scheduler: Scheduler, master: MasterProcess, name: str, failover_timeout: float = 0.0
) -> AsyncIterator[SchedulerDriver]:
    """A subscribed SchedulerDriver; stopped (not torn down) on the way out."""
    framework = pb.FrameworkInfo(name=name, failover_timeout=failover_timeout)
    driver = SchedulerDriver(scheduler, framework, master.address)
    run = asyncio.create_task(driver.run())
    try:
        await asyncio.wait_for(driver.subscribed.wait(), TIMEOUT)
        yield driver
    finally:
        driver.stop()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await asyncio.wait_for(run, 10)


def agents_by_id(agents: list[AgentProcess]) -> dict[str, AgentProcess]:
    return {a.agent_id: a for a in agents}


# ---------------------------------------------------------------------- tests


def test_execute_runs_50_instances_on_two_agents_and_their_outputs_are_in_the_sandboxes(
    cluster: tuple[MasterProcess, list[AgentProcess]],
) -> None:
    master, agents = cluster
    argv = [
        *ORBITER, "execute", "--master", master.address, "--name", "echo",
        "--instances", "50", "--command", 'echo "out of $ORBITER_TASK_ID"',
    ]  # fmt: skip
    result = subprocess.run(
        argv,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "50/50 finished" in result.stdout
    subscribed = re.search(r"subscribed as framework (\S+) ", result.stdout)
    assert subscribed is not None, result.stdout

    tasks = {t["id"]: t for t in master.tasks(framework_id=subscribed[1])}
    assert sorted(tasks) == sorted(f"echo-{i}" for i in range(50))
    assert {t["state"] for t in tasks.values()} == {"TASK_FINISHED"}
    assert {t["exit_code"] for t in tasks.values()} == {0}
    assert {t["agent_id"] for t in tasks.values()} == {a.agent_id for a in agents}

    by_id = agents_by_id(agents)
    for task_id, task in tasks.items():
        out = by_id[task["agent_id"]].read_file(task_id, task["framework_id"])
        assert out == f"out of {task_id}\n"

    cat = subprocess.run(
        [*ORBITER, "cat", "--master", master.address, "echo-17"],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert (cat.returncode, cat.stdout) == (0, "out of echo-17\n"), cat.stderr


async def test_sdk_scheduler_runs_50_tasks_and_reads_their_outputs_from_the_sandboxes(
    cluster: tuple[MasterProcess, list[AgentProcess]], async_wait_until: AsyncWait
) -> None:
    master, agents = cluster
    commands = {f"sdk-{i}": "echo sdk says $ORBITER_TASK_ID; echo to stderr >&2" for i in range(50)}
    scheduler = BatchScheduler(commands)
    async with running(scheduler, master, "sdk-batch") as driver:
        await async_wait_until(
            lambda: len(scheduler.in_state(pb.TASK_FINISHED)) == 50,
            TIMEOUT,
            "50 SDK tasks to finish",
        )
        framework_id = driver.framework_id
    assert scheduler.errors == []

    for task_id, statuses in scheduler.updates.items():
        states = [s.state for s in statuses]
        assert states == [pb.TASK_RUNNING, pb.TASK_FINISHED], (task_id, states)
        assert statuses[-1].exit_code == 0

    tasks = await master.aget("/api/v1/tasks", framework_id=framework_id)
    assert sorted(t["id"] for t in tasks["tasks"]) == sorted(commands)
    assert {t["agent_id"] for t in tasks["tasks"]} == {a.agent_id for a in agents}
    by_id = agents_by_id(agents)
    for task in tasks["tasks"]:
        agent = by_id[task["agent_id"]]
        stdout = await asyncio.to_thread(agent.read_file, task["id"], framework_id)
        stderr = await asyncio.to_thread(agent.read_file, task["id"], framework_id, "stderr")
        assert (stdout, stderr) == (f"sdk says {task['id']}\n", "to stderr\n")


async def test_sdk_kill_mid_run_ends_the_task_killed_with_how_it_was_stopped(
    cluster: tuple[MasterProcess, list[AgentProcess]], async_wait_until: AsyncWait
) -> None:
    master, _ = cluster
    # The second task ignores SIGTERM, so only the SIGKILL after the grace period stops it.
    scheduler = BatchScheduler({"polite": "sleep 30", "stubborn": "trap '' TERM; sleep 30"})
    async with running(scheduler, master, "killer") as driver:
        await async_wait_until(
            lambda: len(scheduler.in_state(pb.TASK_RUNNING)) == 2, TIMEOUT, "both tasks running"
        )
        started = time.monotonic()
        await driver.kill("polite", scheduler.last("polite").agent_id)
        await driver.kill("stubborn", scheduler.last("stubborn").agent_id, grace_period=0.5)
        await async_wait_until(
            lambda: len(scheduler.in_state(pb.TASK_KILLED)) == 2, TIMEOUT, "both tasks killed"
        )
        elapsed = time.monotonic() - started

    polite, stubborn = scheduler.last("polite"), scheduler.last("stubborn")
    assert (polite.reason, polite.message) == (pb.REASON_TASK_KILLED, "Task killed with SIGTERM")
    assert (stubborn.reason, stubborn.message) == (
        pb.REASON_TASK_KILLED,
        "Task killed with SIGKILL after 0.5 s grace",
    )
    assert elapsed >= 0.5
    for task_id in ("polite", "stubborn"):
        states = [s.state for s in scheduler.updates[task_id]]
        assert states == [pb.TASK_RUNNING, pb.TASK_KILLING, pb.TASK_KILLED], (task_id, states)
    killed = await master.aget(
        "/api/v1/tasks", state="TASK_KILLED", framework_id=driver.framework_id
    )
    listed = {t["id"]: t for t in killed["tasks"]}
    assert listed["stubborn"]["message"] == "Task killed with SIGKILL after 0.5 s grace"
    assert listed["polite"]["reason"] == "REASON_TASK_KILLED"


async def test_agent_killed_with_sigkill_has_its_tasks_lost_after_the_agent_timeout(
    start_master: Callable[..., MasterProcess],
    agent_process: Callable[..., AgentProcess],
    async_wait_until: AsyncWait,
) -> None:
    agent_timeout = 2.0
    master = start_master(agent_timeout=agent_timeout)
    survivor, victim = two_agents(master, agent_process)
    scheduler = BatchScheduler(
        {"doomed-1": "sleep 60", "doomed-2": "sleep 60"}, only_agent=victim.agent_id
    )
    async with running(scheduler, master, "loses-an-agent"):
        await async_wait_until(
            lambda: len(scheduler.in_state(pb.TASK_RUNNING)) == 2, TIMEOUT, "tasks running"
        )
        killed_at = time.monotonic()
        await asyncio.to_thread(victim.sigkill)
        await async_wait_until(
            lambda: len(scheduler.in_state(pb.TASK_LOST)) == 2,
            agent_timeout + TIMEOUT,
            "TASK_LOST for both tasks",
        )
        lost_after = time.monotonic() - killed_at
        await async_wait_until(lambda: scheduler.failures, TIMEOUT, "a FAILURE event")

    assert lost_after >= agent_timeout
    for task_id in ("doomed-1", "doomed-2"):
        status = scheduler.last(task_id)
        assert status.reason == pb.REASON_AGENT_DISCONNECTED
        assert status.source == pb.SOURCE_MASTER
        assert victim.agent_id in status.message and "unreachable" in status.message
    assert scheduler.failures[0][0] == victim.agent_id

    agents = await asyncio.to_thread(master.agents)
    assert agents[victim.agent_id]["status"] == "unreachable"
    assert agents[survivor.agent_id]["status"] == "connected"
    lost = (await master.aget("/api/v1/tasks", state="TASK_LOST"))["tasks"]
    assert sorted(t["id"] for t in lost) == ["doomed-1", "doomed-2"]
    assert {t["reason"] for t in lost} == {"REASON_AGENT_DISCONNECTED"}


async def test_master_restart_keeps_agents_and_frameworks_and_the_agents_reregister(
    start_master: Callable[..., MasterProcess],
    agent_process: Callable[..., AgentProcess],
    async_wait_until: AsyncWait,
) -> None:
    master = start_master()
    agents = two_agents(master, agent_process)
    agent_ids = {a.agent_id for a in agents}
    scheduler = BatchScheduler({"survivor": "sleep 60"})
    async with running(scheduler, master, "outlives-the-master", failover_timeout=300) as driver:
        await async_wait_until(
            lambda: scheduler.in_state(pb.TASK_RUNNING), TIMEOUT, "the task running"
        )
        framework_id = driver.framework_id
        task_agent = scheduler.last("survivor").agent_id

        await asyncio.to_thread(master.stop, signal.SIGKILL)  # only what is on disk survives
        registry = master_pb2.Registry.FromString(master.registry_path.read_bytes())
        assert {r.info.id for r in registry.agents} == agent_ids
        assert [r.info.id for r in registry.frameworks] == [framework_id]

        await asyncio.to_thread(master.start)
        new_master_id = (await master.aget("/health"))["master_id"]
        assert set(await asyncio.to_thread(master.agents)) == agent_ids
        assert list(await asyncio.to_thread(master.frameworks)) == [framework_id]

        def everyone_back(m: MasterProcess) -> bool:
            agents_now, frameworks_now = m.agents(), m.frameworks()
            return (
                set(agents_now) == agent_ids
                and {a["status"] for a in agents_now.values()} == {"connected"}
                and [f["status"] for f in frameworks_now.values()] == ["connected"]
                # ... and the driver has read its SUBSCRIBED (calls carry the new stream id).
                and driver.master_info.id == new_master_id
                and driver.framework_id == framework_id
            )

        await master.async_wait_for(everyone_back, TIMEOUT, "agents and framework to reconnect")
        tasks = await asyncio.to_thread(master.tasks)
        assert [(t["id"], t["state"], t["agent_id"]) for t in tasks] == [
            ("survivor", "TASK_RUNNING", task_agent)
        ]

        # The new master can act on what it recovered.
        await driver.kill("survivor", task_agent)
        await async_wait_until(
            lambda: scheduler.in_state(pb.TASK_KILLED), TIMEOUT, "the task killed"
        )
    assert (await master.aget("/state"))["master"]["grpc_address"] == master.address


def test_a_master_stopped_with_sigterm_starts_again_on_the_same_port_at_once(
    master: MasterProcess, agent_process: Callable[..., AgentProcess]
) -> None:
    agent = agent_process(master, AGENT_RESOURCES)

    master.stop(signal.SIGTERM)
    master.start()

    master.wait_for(
        lambda m: m.agents().get(agent.agent_id, {}).get("status") == "connected",
        TIMEOUT,
        "the agent to re-register",
    )
