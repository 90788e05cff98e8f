"""Process tasks held to their resources by real cgroups (v1 here), through the real
task keeper: memory (OOM reason), CPU quota, pids, whole-cgroup kill, disk, log cap,
and the default task user. Needs root and writable cgroup hierarchies, as CI has."""

from __future__ import annotations

import asyncio
import contextlib
import os
import pwd
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from orbiter.agent.containerizer.kept import KeeperClient, KeptContainer, KeptContainerizer
from orbiter.agent.isolation import cgroups
from orbiter.agent.isolation.isolator import Isolator
from orbiter.agent.isolation.policy import MIB, Mechanism
from orbiter.proto import messages_pb2 as pb
from tests import needs
from tests.proctools import async_poll_until

TIMEOUT = 20.0
# tail keeps the last lines, and /dev/zero has no newline: it holds all it read.
HOG = "head -c {mib}M /dev/zero | tail -n 1 | wc -c"
LAYOUT = cgroups.detect()
MISSING = needs.root_and_cgroups_missing()
pytestmark = needs.skip_outside_ci(MISSING)


@pytest.fixture(autouse=True)
def _machine() -> None:
    needs.check(MISSING)


def task(line: str, task_id: str = "t1", user: str = "", **scalars: float) -> pb.TaskInfo:
    info = pb.TaskInfo(
        task_id=task_id, name=task_id, command=pb.CommandInfo(shell=True, value=line, user=user)
    )
    for name, value in scalars.items():
        info.resources.add(name=name, type=pb.Resource.SCALAR, scalar=value)
    return info


class Rig:
    def __init__(self, containerizer: KeptContainerizer, base: Path) -> None:
        self.containerizer = containerizer
        self.base = base

    async def launch(self, info: pb.TaskInfo) -> tuple[KeptContainer, Path]:
        sandbox = self.base / "sandboxes" / info.task_id
        sandbox.mkdir(parents=True)
        env = {"ORBITER_FRAMEWORK_ID": "fw", "ORBITER_TASK_ID": info.task_id}
        container = await self.containerizer.launch(info, sandbox, env)
        return container, sandbox


async def make_rig(base: Path, **kwargs: object) -> tuple[Rig, KeeperClient, Isolator]:
    client = KeeperClient(base)
    await client.start()
    isolator = Isolator(True, "nobody", pids_max=int(kwargs.pop("pids_max", 64)))  # type: ignore[call-overload]
    isolator.agent_id = f"test-{uuid.uuid4().hex[:8]}"
    containerizer = KeptContainerizer(client, isolator=isolator, **kwargs)  # type: ignore[arg-type]
    return Rig(containerizer, base), client, isolator


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    made, client, isolator = await make_rig(tmp_path, disk_watch_interval=0.2, log_cap=MIB)
    yield made
    await client.close(retire=True)
    _remove_agent_cgroups(isolator)


def _remove_agent_cgroups(isolator: Isolator) -> None:
    """What the test left (a cgroup the agent was still removing is gone either way)."""
    with contextlib.suppress(FileNotFoundError):
        isolator.remove_leftovers(set())
    for _, root in isolator.layout.roots:  # type: ignore[union-attr]
        agent_dir = root / "orbiter" / isolator.agent_id
        for child in sorted(agent_dir.glob("*/"), reverse=True):
            with contextlib.suppress(FileNotFoundError):
                child.rmdir()
        with contextlib.suppress(FileNotFoundError):
            agent_dir.rmdir()


async def finished(container: KeptContainer) -> pb.TaskStatus:
    termination = await asyncio.wait_for(container.wait(), TIMEOUT)
    return termination


def test_this_machine_isolates_with_cgroups() -> None:
    assert Isolator(True, "nobody").mechanism in (Mechanism.CGROUPS_V1, Mechanism.CGROUPS_V2)


async def test_a_memory_hog_over_its_mem_is_failed_with_the_memory_limit_reason(rig: Rig) -> None:
    container, _ = await rig.launch(task(HOG.format(mib=300), mem=32))
    termination = await finished(container)
    assert termination.state == pb.TASK_FAILED
    assert termination.reason == pb.REASON_CONTAINER_LIMITATION_MEMORY
    assert "memory limit" in termination.message.lower()
    assert "32 MiB" in termination.message
    assert "peak usage" in termination.message


async def test_a_task_within_its_mem_finishes(rig: Rig) -> None:
    container, _ = await rig.launch(task(HOG.format(mib=8), mem=64))
    termination = await finished(container)
    assert termination.state == pb.TASK_FINISHED, termination.message


async def test_cpu_shares_and_quota_in_the_tasks_cgroup_follow_cpus(rig: Rig) -> None:
    container, _ = await rig.launch(task("sleep 30", cpus=0.25, mem=16))
    cgroup = container.guard.cgroup  # type: ignore[union-attr]
    assert cgroup is not None and container.pid in cgroup.pids()
    if cgroup.layout.version == 1:
        cpu = cgroup.dir("cpu")
        assert (cpu / "cpu.cfs_quota_us").read_text().strip() == "25000"
        assert (cpu / "cpu.cfs_period_us").read_text().strip() == "100000"
        assert (cpu / "cpu.shares").read_text().strip() == "256"
        memory = cgroup.dir("memory")
        assert (memory / "memory.limit_in_bytes").read_text().strip() == str(16 * MIB)
        assert (cgroup.dir("pids") / "pids.max").read_text().strip() == "64"
    else:
        assert (cgroup.dir("") / "cpu.max").read_text().strip() == "25000 100000"
    await container.kill(0)
    await finished(container)
    await async_poll_until(lambda: not cgroup.exists(), TIMEOUT, "the cgroup removed")


async def test_a_cpu_burner_given_a_tenth_of_a_cpu_gets_about_a_tenth(rig: Rig) -> None:
    container, _ = await rig.launch(task("while :; do :; done", cpus=0.1, mem=16))
    cgroup = container.guard.cgroup  # type: ignore[union-attr]
    await asyncio.sleep(0.5)  # past the first period
    start_usage, start = cgroup.cpu_usage_seconds(), time.monotonic()
    await asyncio.sleep(2.0)  # the measurement window itself, not a wait for an event
    used = (cgroup.cpu_usage_seconds() - start_usage) / (time.monotonic() - start)
    await container.kill(0)
    await finished(container)
    # Unthrottled, a burner uses ~1.0 CPU-s/s; the quota holds it near 0.1.
    assert 0.03 < used < 0.3, f"{used:.3f} CPU-seconds per second"


async def test_a_fork_bomb_is_capped_by_pids_max(rig: Rig) -> None:
    # The subshell forks until it cannot (and then dies of it); the task goes on.
    bomb = (
        "(i=0; while [ $i -lt 300 ]; do sleep 60 & i=$((i+1)); done) 2> bomb.err; "
        "echo spawned; sleep 60"
    )
    container, sandbox = await rig.launch(task(bomb, mem=64))
    cgroup = container.guard.cgroup  # type: ignore[union-attr]
    await async_poll_until(
        lambda: "spawned" in (sandbox / "stdout").read_text(), TIMEOUT, "the loop to end"
    )
    assert 50 < len(cgroup.pids()) <= 64
    assert "fork" in (sandbox / "bomb.err").read_text().lower()
    pids = cgroup.pids()
    await container.kill(0)
    await finished(container)
    await async_poll_until(lambda: not any(_alive(p) for p in pids), TIMEOUT, "all killed")


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[-1][0] != "Z"
    except FileNotFoundError:
        return False


async def test_setsid_and_double_forked_children_die_with_the_task(rig: Rig) -> None:
    line = (
        "setsid sleep 1000 & echo $! > escaped.pid; "
        "(setsid sh -c 'echo $$ > double.pid; exec sleep 1000' &); "
        "sleep 1000"
    )
    container, sandbox = await rig.launch(task(line, mem=32))
    escaped = int(await async_poll_until(lambda: (sandbox / "escaped.pid").read_text().strip()))
    double = int(await async_poll_until(lambda: (sandbox / "double.pid").read_text().strip()))
    assert os.getsid(escaped) != os.getsid(container.pid)  # they left the task's session
    assert os.getsid(double) != os.getsid(container.pid)
    await container.kill(0.5)
    termination = await finished(container)
    assert termination.state == pb.TASK_KILLED
    await async_poll_until(
        lambda: not _alive(escaped) and not _alive(double), TIMEOUT, "the escaped children dead"
    )


async def test_a_setsid_child_left_behind_dies_when_the_task_exits(rig: Rig) -> None:
    container, sandbox = await rig.launch(task("setsid sleep 1000 & echo $! > c.pid", mem=32))
    termination = await finished(container)
    assert termination.state == pb.TASK_FINISHED
    child = int((sandbox / "c.pid").read_text())
    await async_poll_until(lambda: not _alive(child), TIMEOUT, "the orphan dead")
    cgroup = container.guard.cgroup  # type: ignore[union-attr]
    await async_poll_until(lambda: not cgroup.exists(), TIMEOUT, "the cgroup removed")


async def test_a_sandbox_over_its_disk_is_killed_with_the_disk_reason(rig: Rig) -> None:
    line = "head -c 5000000 /dev/zero > blob; sleep 100"
    container, _ = await rig.launch(task(line, mem=32, disk=1))
    termination = await finished(container)
    assert termination.state == pb.TASK_FAILED
    assert termination.reason == pb.REASON_CONTAINER_LIMITATION_DISK
    assert "disk limit of 1 MiB" in termination.message


async def test_output_is_rotated_at_the_cap_keeping_stdout_and_stdout_1(rig: Rig) -> None:
    # 200 MiB of output as fast as the task can write it; the cap is 1 MiB.
    line = "head -c 209715200 /dev/zero; echo; echo last line"
    container, sandbox = await rig.launch(task(line, mem=64))
    termination = await finished(container)
    assert termination.state == pb.TASK_FINISHED
    await async_poll_until(
        lambda: (sandbox / "stdout").read_bytes().endswith(b"last line\n"), TIMEOUT, "the tail"
    )
    assert (sandbox / "stdout").stat().st_size <= MIB
    assert (sandbox / "stdout.1").stat().st_size == MIB
    assert not (sandbox / "stdout.2").exists()
    assert sum(p.stat().st_size for p in sandbox.iterdir()) <= 2 * MIB + 4096


async def test_a_task_naming_no_user_runs_as_nobody_in_its_writable_sandbox(rig: Rig) -> None:
    container, sandbox = await rig.launch(task("id -u; pwd; echo hi > own-file", mem=16))
    termination = await finished(container)
    assert termination.state == pb.TASK_FINISHED, (sandbox / "stderr").read_text()
    uid, cwd = (sandbox / "stdout").read_text().split()
    assert int(uid) == pwd.getpwnam("nobody").pw_uid
    assert Path(cwd) == sandbox
    assert (sandbox / "own-file").stat().st_uid == int(uid)


async def test_a_task_naming_root_runs_as_root(rig: Rig) -> None:
    container, sandbox = await rig.launch(task("id -u", user="root", mem=16))
    await finished(container)
    assert (sandbox / "stdout").read_text().strip() == "0"


async def test_without_isolation_nothing_is_limited(tmp_path: Path) -> None:
    client = KeeperClient(tmp_path)
    await client.start()
    try:
        containerizer = KeptContainerizer(client, isolator=Isolator(False, "nobody"))
        sandbox = tmp_path / "s"
        sandbox.mkdir()
        container = await containerizer.launch(task(HOG.format(mib=100), mem=16), sandbox, {})
        assert container.guard is not None and container.guard.cgroup is None
        termination = await finished(container)
        assert termination.state == pb.TASK_FINISHED
    finally:
        await client.close(retire=True)


async def test_without_cgroups_the_task_gets_rlimits_instead(tmp_path: Path) -> None:
    client = KeeperClient(tmp_path)
    await client.start()
    try:
        # Nothing mounted under this root: the agent falls back to rlimits.
        isolator = Isolator(True, "nobody", pids_max=77, root=tmp_path / "no-cgroups")
        assert isolator.mechanism == Mechanism.RLIMITS
        containerizer = KeptContainerizer(client, isolator=isolator)
        sandbox = tmp_path / "s"
        sandbox.mkdir()
        container = await containerizer.launch(task("ulimit -v; ulimit -p", mem=32), sandbox, {})
        termination = await finished(container)
        assert termination.state == pb.TASK_FINISHED, (sandbox / "stderr").read_text()
        assert (sandbox / "stdout").read_text().split() == [str(32 * 1024), "77"]
    finally:
        await client.close(retire=True)
