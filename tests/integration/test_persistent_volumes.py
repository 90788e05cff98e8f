"""Dynamic reservations and persistent volumes end to end (issue 13): a real master and a
real agent in-process, a framework through the SDK's `SchedulerDriver`.

The framework (role `db`) reserves, creates a volume and launches a task that writes
into it in one Accept; the task ends, the volume comes back in an offer with the same
persistence id, and a second task reads the file. The agent restarts: the volume is
still on its disk and offered again. DESTROY removes the data.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from orbiter import cli
from orbiter.agent.agent import Agent, AgentSettings
from orbiter.framework import Scheduler, SchedulerDriver, task_info
from orbiter.framework.driver import CallError, create_op, destroy_op, launch_op, reserve_op
from orbiter.master.server import MasterServer
from orbiter.proto import messages_pb2 as pb
from orbiter.resources import Resources
from tests.integration.test_scheduler_api import FAST, TIMEOUT, InProcessCluster, in_process_cluster

AsyncWait = Callable[..., Awaitable[Any]]
AGENT_RESOURCES = "cpus:2;mem:1024;disk:1000"
RESERVED = "cpus(db):0.5;mem(db):64;disk(db):100"
TASK = "cpus(db):0.25;mem(db):32"


class Recorder(Scheduler):
    """Keeps the offers it has not answered and every status."""

    def __init__(self) -> None:
        self.offered: dict[str, pb.Offer] = {}
        self.statuses: list[pb.TaskStatus] = []

    def offers(self, driver: SchedulerDriver, offers: list[pb.Offer]) -> None:
        for offer in offers:
            self.offered[offer.id] = offer

    def rescinded(self, driver: SchedulerDriver, offer_id: str) -> None:
        self.offered.pop(offer_id, None)

    def status_update(self, driver: SchedulerDriver, status: pb.TaskStatus) -> None:
        self.statuses.append(status)

    def ended(self, task_id: str) -> pb.TaskStatus | None:
        done = (pb.TASK_FINISHED, pb.TASK_FAILED, pb.TASK_KILLED, pb.TASK_LOST, pb.TASK_ERROR)
        return next((s for s in self.statuses if s.task_id == task_id and s.state in done), None)

    def take(self, with_volume: str = "") -> pb.Offer | None:
        for offer_id, offer in list(self.offered.items()):
            if not with_volume or any(v.persistence_id == with_volume for v in offer.volumes):
                return self.offered.pop(offer_id)
        return None


@contextlib.asynccontextmanager
async def db_framework(
    cluster: InProcessCluster,
) -> AsyncIterator[tuple[SchedulerDriver, Recorder]]:
    recorder = Recorder()
    driver = SchedulerDriver(
        recorder, pb.FrameworkInfo(name="db", roles=["db"], failover_timeout=60), cluster.address
    )
    cluster.drivers.append((driver, asyncio.create_task(driver.run())))
    await asyncio.wait_for(driver.subscribed.wait(), TIMEOUT)
    yield driver, recorder


def agent_settings(cluster: InProcessCluster, **kw: Any) -> AgentSettings:
    return AgentSettings(
        master=cluster.address,
        work_dir=cluster.tmp / "agent-0",
        resources=Resources.parse(AGENT_RESOURCES),
        watch_paths=[],
        **kw,
    )


async def start_agent(cluster: InProcessCluster, **kw: Any) -> Agent:
    agent = Agent(agent_settings(cluster, **kw))
    cluster.agents.append(agent)
    await agent.start()
    await asyncio.wait_for(agent.registered.wait(), TIMEOUT)
    return agent


async def run_to_end(
    driver: SchedulerDriver,
    recorder: Recorder,
    wait: AsyncWait,
    offer: pb.Offer,
    task: pb.TaskInfo,
    *before: Any,
) -> pb.TaskStatus:
    await driver.accept([offer.id], [*before, launch_op(task)], refuse_seconds=0)
    status = await wait(lambda: recorder.ended(task.task_id), TIMEOUT, f"{task.task_id} to end")
    return status


def reserve_and_create(container_path: str = "data", **labels: str) -> list[Any]:
    """RESERVE the RESERVED resources for `db` and CREATE volume v1 (100 MB) on them."""
    return [
        reserve_op(Resources.parse(RESERVED).to_proto(), labels),
        create_op("v1", "db", 100, container_path),
    ]


def volume_task(task_id: str, command: str, **kw: Any) -> pb.TaskInfo:
    return task_info(task_id, command, Resources.parse(TASK).to_proto(), volumes=["v1"], **kw)


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[InProcessCluster]:
    async with in_process_cluster(tmp_path, FAST) as c:
        yield c


async def test_a_volume_outlives_its_task_and_the_agent_and_is_offered_back(
    cluster: InProcessCluster, async_wait_until: AsyncWait
) -> None:
    agent = await start_agent(cluster)
    async with db_framework(cluster) as (driver, recorder):
        offer = await async_wait_until(recorder.take, TIMEOUT, "a first offer")
        wrote = await run_to_end(
            driver,
            recorder,
            async_wait_until,
            offer,
            volume_task("writer", "echo kept > data/f.txt && test -L data"),
            *reserve_and_create(owner="db-team"),
        )
        assert wrote.state == pb.TASK_FINISHED, wrote.message
        on_disk = cluster.tmp / "agent-0" / "volumes" / "db" / "v1" / "f.txt"
        assert on_disk.read_text() == "kept\n"

        offer = await async_wait_until(lambda: recorder.take("v1"), TIMEOUT, "v1 offered back")
        (volume,) = offer.volumes
        assert (volume.role, volume.size, volume.container_path) == ("db", 100, "data")
        assert [dict(r.labels) for r in offer.reservations] == [{"owner": "db-team"}]
        read = await run_to_end(
            driver,
            recorder,
            async_wait_until,
            offer,
            volume_task("reader", "grep -qx kept data/f.txt"),
        )
        assert read.state == pb.TASK_FINISHED, read.message

        # The agent restarts (its tasks' keeper and work dir stay): the volume is still there.
        await asyncio.wait_for(agent.stop(kill_tasks=False), 10)
        cluster.agents.remove(agent)
        recorder.offered.clear()
        agent = await start_agent(cluster)
        assert on_disk.read_text() == "kept\n"
        offer = await async_wait_until(lambda: recorder.take("v1"), TIMEOUT, "v1 after restart")
        again = await run_to_end(
            driver,
            recorder,
            async_wait_until,
            offer,
            volume_task("again", "grep -qx kept data/f.txt"),
        )
        assert again.state == pb.TASK_FINISHED, again.message

        # DESTROY: the data goes; the disk goes back to the role's reservation.
        offer = await async_wait_until(lambda: recorder.take("v1"), TIMEOUT, "v1 to destroy")
        await driver.accept([offer.id], [destroy_op("v1")], refuse_seconds=0)
        await async_wait_until(lambda: not on_disk.parent.exists(), TIMEOUT, "the data removed")
        (view,) = cluster.core.agents.values()
        assert not view.volumes
        assert view.total.get("disk", "db") == 100


def docker_volume_task(task_id: str, command: str) -> pb.TaskInfo:
    task = volume_task(task_id, command)
    task.container.type = pb.ContainerInfo.DOCKER
    task.container.docker.image = "orbiter-test/busybox:latest"
    return task


async def test_a_docker_task_sees_the_volume_at_its_container_path(
    cluster: InProcessCluster, async_wait_until: AsyncWait, docker_engine: Any
) -> None:
    """Against the real dockerd of tests/dockerd.py: the volume is a bind mount at /data."""
    from orbiter.agent.containerizer.docker import LABEL_AGENT

    agent = await start_agent(cluster, docker=True, docker_host=docker_engine.base_url)
    try:
        async with db_framework(cluster) as (driver, recorder):
            offer = await async_wait_until(recorder.take, TIMEOUT, "a first offer")
            wrote = await run_to_end(
                driver,
                recorder,
                async_wait_until,
                offer,
                docker_volume_task("writer", "echo from-docker > /data/f.txt"),
                *reserve_and_create("/data"),
            )
            assert wrote.state == pb.TASK_FINISHED, wrote.message
            on_disk = cluster.tmp / "agent-0" / "volumes" / "db" / "v1" / "f.txt"
            assert on_disk.read_text() == "from-docker\n"

            offer = await async_wait_until(lambda: recorder.take("v1"), TIMEOUT, "v1 offered")
            read = await run_to_end(
                driver,
                recorder,
                async_wait_until,
                offer,
                docker_volume_task("reader", "grep -qx from-docker /data/f.txt"),
            )
            assert read.state == pb.TASK_FINISHED, read.message
    finally:
        docker_engine.remove_containers(f"{LABEL_AGENT}={agent.agent_id}")


async def test_a_process_task_cannot_take_a_volume_with_an_absolute_path(
    cluster: InProcessCluster, async_wait_until: AsyncWait
) -> None:
    await start_agent(cluster)
    async with db_framework(cluster) as (driver, recorder):
        offer = await async_wait_until(recorder.take, TIMEOUT, "a first offer")
        with pytest.raises(CallError, match="absolute, which only DOCKER tasks can mount"):
            await driver.accept(
                [offer.id],
                [
                    *reserve_and_create("/data"),
                    launch_op(volume_task("t1", "true")),
                ],
            )
        (agent,) = cluster.core.agents.values()
        assert not agent.reservations and not agent.volumes


async def test_an_operator_reserves_and_unreserves_with_the_cli(
    cluster: InProcessCluster, async_wait_until: AsyncWait, capsys: pytest.CaptureFixture[str]
) -> None:
    agent = await start_agent(cluster)
    master = cluster.address

    def orbiter(*argv: str) -> tuple[int, str, str]:
        capsys.readouterr()
        code = cli.main([*argv, "--master", master])
        out, err = capsys.readouterr()
        return code, out, err

    code, out, _ = await asyncio.to_thread(
        orbiter, "reserve", agent.agent_id, "cpus:1;mem:128", "--role", "db", "--label", "team=a"
    )
    assert code == 0, out
    assert f"agent {agent.agent_id}: reserved cpus:1;mem:128 for db" in out
    async with db_framework(cluster) as (_, recorder):
        offer = await async_wait_until(recorder.take, TIMEOUT, "an offer")
        offered = Resources.from_proto(offer.resources)
        assert offered.reserved("db") == Resources.parse("cpus(db):1;mem(db):128")
        assert [dict(r.labels) for r in offer.reservations] == [{"team": "a"}]

    code, _, err = await asyncio.to_thread(orbiter, "unreserve", agent.agent_id, "cpus(db):2")
    assert code != 0, err
    assert "cpus(db):2 is not dynamically reserved on this agent" in err
    code, out, _ = await asyncio.to_thread(
        orbiter, "unreserve", agent.agent_id, "cpus:1;mem:128", "--role", "db", "--json"
    )
    assert code == 0
    assert json.loads(out)["reservations"] == []
    assert cluster.core.agents[agent.agent_id].total == Resources.parse(AGENT_RESOURCES)


async def test_reservations_and_volumes_survive_a_master_restart(
    tmp_path: Path, async_wait_until: AsyncWait
) -> None:
    """The master restarts on the same port and work dir (its file registry): the agent and
    the framework come back, and the volume is offered again with its data."""
    from tests.conftest import free_port

    async with in_process_cluster(tmp_path, FAST, port=free_port()) as cluster:
        agent = await start_agent(cluster)
        async with db_framework(cluster) as (driver, recorder):
            offer = await async_wait_until(recorder.take, TIMEOUT, "a first offer")
            wrote = await run_to_end(
                driver,
                recorder,
                async_wait_until,
                offer,
                volume_task("writer", "echo before-restart > data/f.txt"),
                *reserve_and_create(owner="db-team"),
            )
            assert wrote.state == pb.TASK_FINISHED, wrote.message

            settings = cluster.server.settings
            await asyncio.wait_for(cluster.server.stop(), 10)
            recorder.offered.clear()
            cluster.server = MasterServer(settings)
            await cluster.server.start()

            (record,) = cluster.core.agents.values()  # known from the registry at once
            assert [v.persistence_id for v in record.volumes.values()] == ["v1"]
            assert record.reservations[0].labels == (("owner", "db-team"),)
            offer = await async_wait_until(lambda: recorder.take("v1"), 30, "v1 after restart")
            assert Resources.from_proto(offer.resources).reserved("db")
            read = await run_to_end(
                driver,
                recorder,
                async_wait_until,
                offer,
                volume_task("reader", "grep -qx before-restart data/f.txt"),
            )
            assert read.state == pb.TASK_FINISHED, read.message
            assert agent.agent_id == record.id
