"""The Scheduler and AgentLink gRPC APIs against a real master and real agents, in-process.

A `MasterServer` and `Agent`s run on free ports in the test's event loop.
Frameworks speak through the generated stubs (`RawFramework`, to see every
event and every gRPC status as is) or through the SDK's `SchedulerDriver`.
Every refused call must name what was wrong and change nothing: each such test
compares the master's operator view before and after the call.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import grpc
import pytest

from orbiter.agent.agent import Agent, AgentSettings
from orbiter.framework import Scheduler, SchedulerDriver, task_info
from orbiter.master import views
from orbiter.master.server import MasterServer, MasterSettings
from orbiter.master.state import AgentStatus, FrameworkStatus, MasterConfig
from orbiter.proto import agent_pb2, agent_pb2_grpc, scheduler_pb2, scheduler_pb2_grpc
from orbiter.proto import messages_pb2 as pb
from orbiter.resources import Resources

Event = scheduler_pb2.Event
AsyncWait = Callable[..., Awaitable[Any]]

AGENT_RESOURCES = "cpus:2;mem:1024"
SMALL = "cpus:0.5;mem:64"
TIMEOUT = 10.0
FAST = MasterConfig(
    offer_timeout=30.0,
    agent_heartbeat_interval=1.0,
    agent_timeout=10.0,
    framework_heartbeat_interval=10.0,
    allocation_interval=0.1,
)


# ---------------------------------------------------------------------- cluster


class RawFramework:
    """A framework that speaks the Scheduler API through the generated stub.

    It records every event of its Subscribe stream, so tests can wait for an
    event and check what the master sent, and it leaves acknowledging to the test.
    """

    def __init__(self, channel: grpc.aio.Channel) -> None:
        self.stub = scheduler_pb2_grpc.SchedulerStub(channel)
        self.events: list[scheduler_pb2.Event] = []
        self.received_at: list[float] = []
        self.framework_id = ""
        self.stream_id = ""
        self._call: Any = None
        self._reader: asyncio.Task[None] | None = None

    @property
    def header(self) -> scheduler_pb2.CallHeader:
        return scheduler_pb2.CallHeader(framework_id=self.framework_id, stream_id=self.stream_id)

    async def subscribe(self, info: pb.FrameworkInfo) -> RawFramework:
        self._call = self.stub.Subscribe(scheduler_pb2.SubscribeRequest(framework_info=info))
        first = await asyncio.wait_for(self._call.read(), TIMEOUT)
        assert first.type == Event.SUBSCRIBED, first
        self.framework_id = first.subscribed.framework_id
        self.stream_id = first.subscribed.stream_id
        self.events.append(first)
        self.received_at.append(time.monotonic())
        self._reader = asyncio.create_task(self._read())
        return self

    async def _read(self) -> None:
        with contextlib.suppress(grpc.aio.AioRpcError, asyncio.CancelledError):
            while (event := await self._call.read()) is not grpc.aio.EOF:
                self.events.append(event)
                self.received_at.append(time.monotonic())

    async def close(self) -> None:
        if self._call is not None:
            self._call.cancel()
        if self._reader is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader

    def of_type(self, kind: int) -> list[scheduler_pb2.Event]:
        return [e for e in self.events if e.type == kind]

    def statuses(self, task_id: str | None = None) -> list[pb.TaskStatus]:
        return [
            s
            for e in self.of_type(Event.UPDATE)
            for s in e.update.statuses
            if task_id is None or s.task_id == task_id
        ]

    def outstanding_offers(self) -> list[pb.Offer]:
        rescinded = {e.rescind.offer_id for e in self.of_type(Event.RESCIND)}
        return [
            o for e in self.of_type(Event.OFFERS) for o in e.offers.offers if o.id not in rescinded
        ]

    async def accept(
        self, offer_ids: list[str], tasks: list[pb.TaskInfo], refuse_seconds: float | None = None
    ) -> scheduler_pb2.CallResponse:
        req = scheduler_pb2.AcceptRequest(header=self.header, offer_ids=offer_ids)
        op = req.operations.add(type=scheduler_pb2.Operation.LAUNCH)
        op.launch.task_infos.extend(tasks)
        if refuse_seconds is not None:
            req.filters.refuse_seconds = refuse_seconds
        return await self.stub.Accept(req)


@dataclass
class InProcessCluster:
    server: MasterServer
    tmp: Path
    channel: grpc.aio.Channel
    agents: list[Agent] = field(default_factory=list)
    frameworks: list[RawFramework] = field(default_factory=list)
    drivers: list[tuple[SchedulerDriver, asyncio.Task[str]]] = field(default_factory=list)

    @property
    def core(self) -> Any:
        return self.server.core

    @property
    def address(self) -> str:
        return self.server.info.grpc_address

    async def add_agent(
        self, resources: str = AGENT_RESOURCES, containerizer: str = "null", **settings: Any
    ) -> Agent:
        agent = Agent(
            AgentSettings(
                master=self.address,
                work_dir=self.tmp / f"agent-{len(self.agents)}",
                resources=Resources.parse(resources),
                containerizer=containerizer,
                **settings,
            )
        )
        self.agents.append(agent)
        await agent.start()
        await asyncio.wait_for(agent.registered.wait(), TIMEOUT)
        return agent

    async def framework(self, name: str = "raw", **info: Any) -> RawFramework:
        fw = RawFramework(self.channel)
        self.frameworks.append(fw)
        return await fw.subscribe(pb.FrameworkInfo(name=name, **info))

    async def driver(
        self, scheduler: Scheduler, name: str = "sdk", auto_acknowledge: bool = True
    ) -> SchedulerDriver:
        driver = SchedulerDriver(
            scheduler, pb.FrameworkInfo(name=name), self.address, auto_acknowledge
        )
        self.drivers.append((driver, asyncio.create_task(driver.run())))
        await asyncio.wait_for(driver.subscribed.wait(), TIMEOUT)
        return driver

    def snapshot(self) -> dict[str, Any]:
        """What an operator sees, less the clock: must not move when a call is refused."""
        view = views.state_view(self.core)
        for agent in view["agents"]:
            agent.pop("last_seen")
        return {
            "view": view,
            "offers": sorted(self.core.offers),
            "registry_version": self.core.registry_version,
        }



@contextlib.asynccontextmanager
async def in_process_cluster(
    tmp: Path, config: MasterConfig, port: int = 0
) -> AsyncIterator[InProcessCluster]:
    """A master in this loop; on the way out, every client the test added, then the master
    (`cluster.server`, which a test may have replaced by a restarted one)."""
    server = MasterServer(
        MasterSettings(port=port, http_port=0, work_dir=tmp / "master", config=config)
    )
    await server.start()
    cluster = InProcessCluster(server, tmp, grpc.aio.insecure_channel(server.info.grpc_address))
    try:
        yield cluster
    finally:
        try:
            # Clients first, so the server has no open streams to wait for.
            for driver, run in cluster.drivers:
                driver.stop()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await asyncio.wait_for(run, 5)
            for fw in cluster.frameworks:
                await fw.close()
            for agent in cluster.agents:
                await asyncio.wait_for(agent.stop(), 10)
            await cluster.channel.close()
        finally:
            await asyncio.wait_for(cluster.server.stop(), 10)


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[InProcessCluster]:
    """A master (fast allocation) and one agent with the null containerizer."""
    async with in_process_cluster(tmp_path, FAST) as c:
        await c.add_agent()
        yield c


@pytest.fixture
async def make_cluster(tmp_path: Path) -> AsyncIterator[Callable[..., Awaitable[InProcessCluster]]]:
    """Factory for a master with its own config and no agents yet."""
    stack = contextlib.AsyncExitStack()

    async def make(**config: Any) -> InProcessCluster:
        return await stack.enter_async_context(
            in_process_cluster(tmp_path, dataclasses.replace(FAST, **config))
        )

    async with stack:
        yield make


async def first_offer(fw: RawFramework, wait: AsyncWait) -> pb.Offer:
    offers = await wait(fw.outstanding_offers, TIMEOUT, "an offer")
    return offers[0]


async def running(fw: RawFramework, task_id: str, wait: AsyncWait) -> pb.TaskStatus:
    """Wait for the task's TASK_RUNNING (after which nothing about it changes by itself)."""
    statuses = await wait(
        lambda: [s for s in fw.statuses(task_id) if s.state == pb.TASK_RUNNING],
        TIMEOUT,
        f"{task_id} running",
    )
    return statuses[0]


def task(task_id: str, resources: str = SMALL, command: str = "sleep 60") -> pb.TaskInfo:
    return task_info(task_id, command, Resources.parse(resources).to_proto())


async def refused(call: Awaitable[Any]) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call
    return info.value


# ---------------------------------------------------------------------- bad input: offers


async def test_accept_with_an_unknown_offer_id_is_refused_and_changes_nothing(
    cluster: InProcessCluster, async_wait_until: AsyncWait
) -> None:
    fw = await cluster.framework()
    await first_offer(fw, async_wait_until)
    before = cluster.snapshot()

    error = await refused(fw.accept(["no-such-offer"], [task("t1")]))

    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "offer no-such-offer is unknown or no longer valid" in error.details()
    assert cluster.snapshot() == before


@pytest.mark.parametrize("how", ["accepted", "declined"])
async def test_an_offer_that_was_already_answered_is_refused_as_stale(
    cluster: InProcessCluster, async_wait_until: AsyncWait, how: str
) -> None:
    fw = await cluster.framework()
    offer = await first_offer(fw, async_wait_until)
    if how == "accepted":
        await fw.accept([offer.id], [task("t1")])
        await running(fw, "t1", async_wait_until)
    else:
        await fw.stub.Decline(scheduler_pb2.DeclineRequest(header=fw.header, offer_ids=[offer.id]))
    before = cluster.snapshot()

    error = await refused(fw.accept([offer.id], [task("t2")]))

    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert f"offer {offer.id} is unknown or no longer valid" in error.details()
    assert cluster.snapshot() == before
    assert "t2" not in cluster.core.frameworks[fw.framework_id].tasks


@pytest.mark.parametrize(
    ("tasks", "culprit", "asked"),
    [
        pytest.param([task("big", "cpus:3;mem:64")], "big", "cpus:3;mem:64", id="one-too-big"),
        pytest.param(
            [task("a", "cpus:1.5;mem:64"), task("b", "cpus:1.5;mem:64")],
            "b",
            "cpus:1.5;mem:64",
            id="each-fits-alone-not-together",
        ),
        pytest.param([task("gpu", "cpus:0.5;gpus:1")], "gpu", "gpus:1", id="resource-not-offered"),
        pytest.param([task("odd", "cpus:0.5;fpgas:2")], "odd", "fpgas:2", id="custom-resource"),
    ],
)
async def test_accept_asking_for_more_than_the_offer_holds_is_refused_and_the_offer_stays(
    cluster: InProcessCluster,
    async_wait_until: AsyncWait,
    tasks: list[pb.TaskInfo],
    culprit: str,
    asked: str,
) -> None:
    fw = await cluster.framework()
    offer = await first_offer(fw, async_wait_until)
    before = cluster.snapshot()

    error = await refused(fw.accept([offer.id], tasks))

    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert f"task {culprit}" in error.details()
    assert asked in error.details()
    assert offer.agent_id in error.details()
    assert cluster.snapshot() == before
    # The offer is still good for what it does hold.
    await fw.accept([offer.id], [task("fits")])
    assert set(cluster.core.frameworks[fw.framework_id].tasks) == {"fits"}


async def test_accept_of_an_offer_made_to_another_framework_is_refused(
    cluster: InProcessCluster, async_wait_until: AsyncWait
) -> None:
    owner = await cluster.framework("owner")
    offer = await first_offer(owner, async_wait_until)
    thief = await cluster.framework("thief")
    before = cluster.snapshot()

    error = await refused(thief.accept([offer.id], [task("stolen")]))

    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert f"offer {offer.id} was made to another framework" in error.details()
    assert cluster.snapshot() == before


# ---------------------------------------------------------------------- bad input: tasks


async def test_a_task_id_used_twice_in_one_call_is_refused(
    cluster: InProcessCluster, async_wait_until: AsyncWait
) -> None:
    fw = await cluster.framework()
    offer = await first_offer(fw, async_wait_until)
    before = cluster.snapshot()

    error = await refused(fw.accept([offer.id], [task("twin"), task("twin")]))

    assert error.code() == grpc.StatusCode.ALREADY_EXISTS
    assert "task twin: task id is used twice in this call" in error.details()
    assert cluster.snapshot() == before


async def test_a_task_id_the_framework_already_has_is_refused(
    cluster: InProcessCluster, async_wait_until: AsyncWait
) -> None:
    fw = await cluster.framework()
    offer = await first_offer(fw, async_wait_until)
    await fw.accept([offer.id], [task("only-once")], refuse_seconds=0)
    await running(fw, "only-once", async_wait_until)
    second = await async_wait_until(
        lambda: [o for o in fw.outstanding_offers() if o.id != offer.id],
        TIMEOUT,
        "the rest of the agent offered again",
    )
    before = cluster.snapshot()

    error = await refused(fw.accept([second[0].id], [task("only-once")]))

    assert error.code() == grpc.StatusCode.ALREADY_EXISTS
    assert "task only-once: the framework already has a task with this id" in error.details()
    assert cluster.snapshot() == before


@pytest.mark.parametrize(
    ("info", "complaint"),
    [
        (task("bad id!"), "task id 'bad id!' is invalid"),
        (task("no-command", command=""), "command.value is empty"),
        (task("nothing", "disk:10"), "a task needs some cpus or mem"),
    ],
    ids=["bad-id", "no-command", "no-cpus-or-mem"],
)
async def test_a_malformed_task_is_refused_with_what_is_wrong(
    cluster: InProcessCluster, async_wait_until: AsyncWait, info: pb.TaskInfo, complaint: str
) -> None:
    fw = await cluster.framework()
    offer = await first_offer(fw, async_wait_until)
    before = cluster.snapshot()

    error = await refused(fw.accept([offer.id], [info]))

    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert complaint in error.details()
    assert cluster.snapshot() == before


# ---------------------------------------------------------------------- bad input: caller


def _calls(header: scheduler_pb2.CallHeader) -> dict[str, Any]:
    ack = scheduler_pb2.Acknowledgement(agent_id="a", task_id="t", uuid=b"0" * 16)
    return {
        "Accept": scheduler_pb2.AcceptRequest(header=header, offer_ids=["o"]),
        "Decline": scheduler_pb2.DeclineRequest(header=header, offer_ids=["o"]),
        "Revive": scheduler_pb2.ReviveRequest(header=header),
        "Suppress": scheduler_pb2.SuppressRequest(header=header),
        "Kill": scheduler_pb2.KillRequest(header=header, task_id="t"),
        "Acknowledge": scheduler_pb2.AcknowledgeRequest(header=header, acknowledgements=[ack]),
        "Reconcile": scheduler_pb2.ReconcileRequest(header=header),
        "Teardown": scheduler_pb2.TeardownRequest(header=header),
    }


CALLS = list(_calls(scheduler_pb2.CallHeader()))


@pytest.mark.parametrize("method", CALLS)
async def test_a_call_with_a_wrong_stream_id_is_refused_and_changes_nothing(
    cluster: InProcessCluster, async_wait_until: AsyncWait, method: str
) -> None:
    fw = await cluster.framework()
    await first_offer(fw, async_wait_until)
    header = scheduler_pb2.CallHeader(framework_id=fw.framework_id, stream_id="forged-stream")
    before = cluster.snapshot()

    error = await refused(getattr(fw.stub, method)(_calls(header)[method]))

    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "stream id forged-stream is not framework" in error.details()
    assert cluster.snapshot() == before
    assert cluster.core.frameworks[fw.framework_id].status is FrameworkStatus.CONNECTED


async def test_the_old_stream_id_is_refused_after_the_framework_resubscribes(
    cluster: InProcessCluster,
) -> None:
    old = await cluster.framework()
    new = await cluster.framework(id=old.framework_id)
    assert new.framework_id == old.framework_id and new.stream_id != old.stream_id

    error = await refused(old.stub.Revive(scheduler_pb2.ReviveRequest(header=old.header)))

    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert f"stream id {old.stream_id} is not framework" in error.details()
    await new.stub.Revive(scheduler_pb2.ReviveRequest(header=new.header))


@pytest.mark.parametrize("method", CALLS)
async def test_a_call_from_an_unknown_framework_is_refused(
    cluster: InProcessCluster, method: str
) -> None:
    stub = scheduler_pb2_grpc.SchedulerStub(cluster.channel)
    header = scheduler_pb2.CallHeader(framework_id="nobody", stream_id="x")
    before = cluster.snapshot()

    error = await refused(getattr(stub, method)(_calls(header)[method]))

    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert "framework nobody is not subscribed" in error.details()
    assert cluster.snapshot() == before


async def test_an_acknowledgement_without_a_proper_uuid_is_refused(
    cluster: InProcessCluster, async_wait_until: AsyncWait
) -> None:
    fw = await cluster.framework()
    await first_offer(fw, async_wait_until)  # the allocator has nothing left to change
    ack = scheduler_pb2.Acknowledgement(agent_id="a", task_id="t1", uuid=b"short")
    before = cluster.snapshot()

    request = scheduler_pb2.AcknowledgeRequest(header=fw.header, acknowledgements=[ack])

    error = await refused(fw.stub.Acknowledge(request))

    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "acknowledgement 0 (task 't1'): uuid must be the 16 bytes" in error.details()
    assert cluster.snapshot() == before


async def test_killing_an_unknown_task_answers_task_unknown(
    cluster: InProcessCluster, async_wait_until: AsyncWait
) -> None:
    fw = await cluster.framework()
    await fw.stub.Kill(scheduler_pb2.KillRequest(header=fw.header, task_id="ghost"))
    (status,) = await async_wait_until(lambda: fw.statuses("ghost"), TIMEOUT, "an update")
    assert (status.state, status.reason) == (pb.TASK_UNKNOWN, pb.REASON_TASK_UNKNOWN)


# ---------------------------------------------------------------------- bad input: agents


def register(http_address: str, agent_id: str = "", resources: str = "cpus:1;mem:128") -> Any:
    msg = agent_pb2.AgentMessage()
    info = msg.register.info
    info.id = agent_id
    info.hostname = "impostor"
    info.http_address = http_address
    info.resources.extend(Resources.parse(resources).to_proto())
    return msg


async def raw_register(channel: grpc.aio.Channel, msg: Any) -> grpc.aio.AioRpcError:
    """Open an AgentLink, send Register, and return the status the master ends it with."""
    call = agent_pb2_grpc.AgentLinkStub(channel).Connect()
    await call.write(msg)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        reply = await asyncio.wait_for(call.read(), TIMEOUT)
        if reply is grpc.aio.EOF:
            await call
        pytest.fail(f"the master answered {reply} instead of refusing")
    return info.value


@pytest.mark.parametrize("new_id", ["", "some-other-id"], ids=["new-agent", "other-id"])
async def test_an_agent_with_another_id_at_a_connected_agents_address_is_refused(
    cluster: InProcessCluster, new_id: str
) -> None:
    (agent,) = cluster.agents
    before = cluster.snapshot()

    error = await raw_register(cluster.channel, register(agent.http_address, new_id))

    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert (
        f"another agent ({agent.agent_id}) is registered and connected at {agent.http_address}"
        in error.details()
    )
    assert cluster.snapshot() == before
    assert cluster.core.agents[agent.agent_id].status is AgentStatus.CONNECTED
    assert agent.registered.is_set()


async def test_an_agent_registering_invalid_resources_is_refused(
    cluster: InProcessCluster,
) -> None:
    msg = register("127.0.0.1:1")
    msg.register.info.resources.add(name="cpus", type=pb.Resource.SCALAR, scalar=-1)
    before = cluster.snapshot()

    error = await raw_register(cluster.channel, msg)

    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "agent resources are invalid" in error.details()
    assert cluster.snapshot() == before


async def test_the_first_message_on_an_agent_link_must_be_register(
    cluster: InProcessCluster,
) -> None:
    msg = agent_pb2.AgentMessage(heartbeat=agent_pb2.AgentMessage.Heartbeat())
    before = cluster.snapshot()

    error = await raw_register(cluster.channel, msg)

    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "the first message on a link must be Register" in error.details()
    assert cluster.snapshot() == before


# ---------------------------------------------------------------------- delivery


@dataclass
class Recorder(Scheduler):
    """Records what the driver hands it; acknowledges nothing by itself."""

    offers_seen: list[pb.Offer] = field(default_factory=list)
    updates: list[pb.TaskStatus] = field(default_factory=list)

    def offers(self, driver: SchedulerDriver, offers: list[pb.Offer]) -> None:
        self.offers_seen.extend(offers)

    def status_update(self, driver: SchedulerDriver, status: pb.TaskStatus) -> None:
        self.updates.append(status)

    def of(self, task_id: str, state: int | None = None) -> list[pb.TaskStatus]:
        return [
            s
            for s in self.updates
            if s.task_id == task_id and (state is None or s.state == state)
        ]


def on_agent(agent: Agent, task_id: str) -> Any:
    """The agent's record of a task, or None once it has forgotten it."""
    return next((t for t in agent.tasks.values() if t.info.task_id == task_id), None)


def ack_of(status: pb.TaskStatus) -> scheduler_pb2.Acknowledgement:
    return scheduler_pb2.Acknowledgement(
        agent_id=status.agent_id, task_id=status.task_id, uuid=status.uuid
    )


RETRY = 0.1


async def test_status_updates_are_resent_until_acknowledged_and_then_stop(
    make_cluster: Callable[..., Awaitable[InProcessCluster]], async_wait_until: AsyncWait
) -> None:
    c = await make_cluster()
    agent = await c.add_agent(containerizer="process", status_retry_min=RETRY)
    recorder = Recorder()
    driver = await c.driver(recorder, auto_acknowledge=False)
    offer = await async_wait_until(lambda: recorder.offers_seen, TIMEOUT, "an offer")
    await driver.launch([offer[0].id], [task("once", command="exit 0")])

    # RUNNING comes again and again, always with the same uuid, while nobody acknowledges it.
    running = await async_wait_until(
        lambda: len(recorder.of("once", pb.TASK_RUNNING)) >= 3 and recorder.of("once"),
        TIMEOUT,
        "RUNNING delivered three times",
    )
    assert {s.uuid for s in running} == {running[0].uuid}
    # The task has finished on the agent, but FINISHED waits behind the unacknowledged RUNNING.
    assert on_agent(agent, "once").state == pb.TASK_FINISHED
    assert recorder.of("once", pb.TASK_FINISHED) == []

    await driver.acknowledge([ack_of(running[0])])
    finished = await async_wait_until(
        lambda: len(recorder.of("once", pb.TASK_FINISHED)) >= 2
        and recorder.of("once", pb.TASK_FINISHED),
        TIMEOUT,
        "FINISHED delivered (and resent)",
    )
    assert len({s.uuid for s in finished}) == 1 and finished[0].uuid != running[0].uuid

    await driver.acknowledge([ack_of(finished[0])])
    await async_wait_until(
        lambda: on_agent(agent, "once") is None and len(agent.updates) == 0,
        TIMEOUT,
        "the agent to forget the acknowledged task",
    )
    assert "once" not in c.core.frameworks[driver.framework_id].tasks
    delivered = len(recorder.updates)
    # Nothing is left to resend: over several retry intervals no update arrives again.
    deadline = time.monotonic() + 5 * RETRY
    while time.monotonic() < deadline:
        assert len(recorder.updates) == delivered
        await asyncio.sleep(RETRY / 4)


async def test_the_sdk_acknowledges_for_the_scheduler_by_default(
    make_cluster: Callable[..., Awaitable[InProcessCluster]], async_wait_until: AsyncWait
) -> None:
    c = await make_cluster()
    agent = await c.add_agent(containerizer="process", status_retry_min=RETRY)
    recorder = Recorder()
    driver = await c.driver(recorder)
    offer = await async_wait_until(lambda: recorder.offers_seen, TIMEOUT, "an offer")
    await driver.launch([offer[0].id], [task("auto", command="exit 0")])

    await async_wait_until(
        lambda: on_agent(agent, "auto") is None and recorder.of("auto", pb.TASK_FINISHED),
        TIMEOUT,
        "the task to finish and be forgotten",
    )
    assert [s.state for s in recorder.of("auto")] == [pb.TASK_RUNNING, pb.TASK_FINISHED]


# ---------------------------------------------------------------------- reconciliation


async def _two_running_tasks(
    cluster: InProcessCluster, wait: AsyncWait, **info: Any
) -> tuple[RawFramework, str]:
    fw = await cluster.framework(**info)
    offer = await first_offer(fw, wait)
    await fw.accept([offer.id], [task("r1"), task("r2")])
    await wait(
        lambda: len([s for s in fw.statuses() if s.state == pb.TASK_RUNNING]) == 2,
        TIMEOUT,
        "both tasks running",
    )
    return fw, offer.agent_id


async def test_implicit_reconciliation_reports_every_task_of_the_framework(
    cluster: InProcessCluster, async_wait_until: AsyncWait
) -> None:
    fw, agent_id = await _two_running_tasks(cluster, async_wait_until)
    seen = len(fw.of_type(Event.UPDATE))

    await fw.stub.Reconcile(scheduler_pb2.ReconcileRequest(header=fw.header))

    (event,) = await async_wait_until(
        lambda: fw.of_type(Event.UPDATE)[seen:], TIMEOUT, "the reconciliation update"
    )
    statuses = sorted(event.update.statuses, key=lambda s: s.task_id)
    assert [(s.task_id, s.state, s.agent_id) for s in statuses] == [
        ("r1", pb.TASK_RUNNING, agent_id),
        ("r2", pb.TASK_RUNNING, agent_id),
    ]
    assert {s.reason for s in statuses} == {pb.REASON_RECONCILIATION}
    assert {s.source for s in statuses} == {pb.SOURCE_MASTER}
    assert {s.uuid for s in statuses} == {b""}  # nothing to acknowledge


@pytest.mark.parametrize(
    ("partition_aware", "not_on_agent"),
    [(False, pb.TASK_LOST), (True, pb.TASK_GONE)],
    ids=["plain", "partition-aware"],
)
async def test_explicit_reconciliation_reports_known_and_unknown_tasks(
    cluster: InProcessCluster, async_wait_until: AsyncWait, partition_aware: bool, not_on_agent: int
) -> None:
    capabilities = [pb.PARTITION_AWARE] if partition_aware else []
    fw, agent_id = await _two_running_tasks(cluster, async_wait_until, capabilities=capabilities)
    seen = len(fw.of_type(Event.UPDATE))
    req = scheduler_pb2.ReconcileRequest(header=fw.header)
    req.tasks.add(task_id="r1", agent_id=agent_id)
    req.tasks.add(task_id="never-launched", agent_id=agent_id)
    req.tasks.add(task_id="elsewhere", agent_id="no-such-agent")

    await fw.stub.Reconcile(req)

    (event,) = await async_wait_until(
        lambda: fw.of_type(Event.UPDATE)[seen:], TIMEOUT, "the reconciliation update"
    )
    states = {s.task_id: s.state for s in event.update.statuses}
    assert states == {
        "r1": pb.TASK_RUNNING,
        "never-launched": not_on_agent,
        "elsewhere": pb.TASK_UNKNOWN,
    }


async def test_reconciling_a_task_without_an_id_is_refused(
    cluster: InProcessCluster,
) -> None:
    fw = await cluster.framework()
    req = scheduler_pb2.ReconcileRequest(header=fw.header)
    req.tasks.add(task_id="", agent_id="x")

    error = await refused(fw.stub.Reconcile(req))

    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "empty task_id" in error.details()
    assert fw.of_type(Event.UPDATE) == []


# ---------------------------------------------------------------------- timers


async def test_an_unanswered_offer_is_rescinded_after_the_offer_timeout(
    make_cluster: Callable[..., Awaitable[InProcessCluster]], async_wait_until: AsyncWait
) -> None:
    offer_timeout = 0.5
    c = await make_cluster(offer_timeout=offer_timeout)
    await c.add_agent()
    subscribed_at = time.monotonic()  # the offer is made after this
    fw = await c.framework()
    offer = await first_offer(fw, async_wait_until)

    rescind = await async_wait_until(
        lambda: fw.of_type(Event.RESCIND), TIMEOUT, "the offer to be rescinded"
    )

    assert rescind[0].rescind.offer_id == offer.id
    rescinded_at = fw.received_at[fw.events.index(rescind[0])]
    assert rescinded_at - subscribed_at >= offer_timeout
    assert offer.id not in c.core.offers
    error = await refused(fw.accept([offer.id], [task("late")]))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    # The resources come back in a new offer.
    again = await async_wait_until(fw.outstanding_offers, TIMEOUT, "a new offer")
    assert again[0].id != offer.id and again[0].agent_id == offer.agent_id


async def test_an_idle_framework_stream_gets_heartbeats(
    make_cluster: Callable[..., Awaitable[InProcessCluster]], async_wait_until: AsyncWait
) -> None:
    c = await make_cluster(framework_heartbeat_interval=0.2)
    fw = await c.framework()
    assert fw.events[0].subscribed.heartbeat_interval_seconds == pytest.approx(0.2)

    await async_wait_until(
        lambda: len(fw.of_type(Event.HEARTBEAT)) >= 3, TIMEOUT, "three heartbeats"
    )


async def test_agent_heartbeats_keep_it_connected_and_a_silent_link_becomes_unreachable(
    make_cluster: Callable[..., Awaitable[InProcessCluster]], async_wait_until: AsyncWait
) -> None:
    agent_timeout = 1.0
    c = await make_cluster(agent_timeout=agent_timeout, agent_heartbeat_interval=0.1)
    agent = await c.add_agent()
    # A link that registers and then says nothing more.
    call = agent_pb2_grpc.AgentLinkStub(c.channel).Connect()
    await call.write(register("127.0.0.1:9"))
    reply = await asyncio.wait_for(call.read(), TIMEOUT)
    silent_id = reply.registered.agent_id
    assert reply.registered.heartbeat_interval_seconds == pytest.approx(0.1)
    started = time.monotonic()

    await async_wait_until(
        lambda: c.core.agents[silent_id].status is AgentStatus.UNREACHABLE,
        TIMEOUT,
        "the silent agent to become unreachable",
    )

    assert time.monotonic() - started >= agent_timeout
    assert c.core.agents[agent.agent_id].status is AgentStatus.CONNECTED
    assert time.time() - c.core.agents[agent.agent_id].last_seen < agent_timeout
    call.cancel()


# ---------------------------------------------------------------------- executors

BAD_EXECUTOR = """
import asyncio, os, uuid, grpc
from orbiter.proto import executor_pb2 as ex, executor_pb2_grpc, messages_pb2 as pb

def code_of(call):
    async def run():
        try:
            await call
            return "OK"
        except grpc.aio.AioRpcError as e:
            return e.code().name
    return run()

async def main():
    env = os.environ
    caller = ex.ExecutorCaller(framework_id=env["ORBITER_FRAMEWORK_ID"],
                               executor_id=env["ORBITER_EXECUTOR_ID"],
                               token=env["ORBITER_EXECUTOR_TOKEN"])
    wrong = ex.ExecutorCaller(framework_id=caller.framework_id, executor_id=caller.executor_id,
                              token="not-the-token")
    other = ex.ExecutorCaller(framework_id="another-framework", executor_id=caller.executor_id,
                              token=caller.token)
    def status(task_id, state, uid=None):
        return pb.TaskStatus(task_id=task_id, state=state, uuid=uid or uuid.uuid4().bytes)
    async with grpc.aio.insecure_channel(env["ORBITER_AGENT_ENDPOINT"]) as channel:
        stub = executor_pb2_grpc.ExecutorStub(channel)
        async def report(name, call):
            print(name, await code_of(call), flush=True)
        async for event in stub.Subscribe(ex.ExecutorSubscribe(caller=caller)):
            if event.type != ex.ExecutorEvent.LAUNCH:
                continue
            t = event.launch.task.task_id
            up = lambda c, s: stub.Update(ex.ExecutorUpdate(caller=c, status=s))
            await report("wrong-token", up(wrong, status(t, pb.TASK_RUNNING)))
            await report("other-framework", up(other, status(t, pb.TASK_RUNNING)))
            await report("not-given", up(caller, status("nope", pb.TASK_RUNNING)))
            await report("short-uuid", up(caller, status(t, pb.TASK_RUNNING, b"abc")))
            await report("finished", up(caller, status(t, pb.TASK_FINISHED)))
            await report("second-end", up(caller, status(t, pb.TASK_FAILED)))
            big = ex.ExecutorMessage(caller=caller, data=b"x" * (4 * 1024 * 1024 + 1))
            await report("big-message", stub.Message(big))
            return

asyncio.run(main())
"""


def executor_task(task_id: str, executor_id: str, command: str, shell: bool) -> pb.TaskInfo:
    """A task run by the framework's executor `executor_id` (started with `command`)."""
    t = task(task_id, command="")
    t.ClearField("command")
    t.executor.executor_id = executor_id
    t.executor.command.shell = shell
    t.executor.command.value = command
    return t


def _report(out: Path) -> dict[str, str] | None:
    """The executor's `call STATUS` lines once its last one is written. Its stdout is copied
    from a pipe, so a read may end in the middle of a line: only whole lines count."""
    whole = out.read_text().rpartition("\n")[0].splitlines()
    said = dict(line.split(maxsplit=1) for line in whole if len(line.split()) == 2)
    return said if "big-message" in said else None


async def test_an_executor_s_bad_calls_are_refused_and_change_nothing(
    make_cluster: Callable[..., Awaitable[InProcessCluster]], async_wait_until: AsyncWait
) -> None:
    c = await make_cluster()
    agent = await c.add_agent(containerizer="process")
    script = c.tmp / "bad_executor.py"
    script.write_text(BAD_EXECUTOR)
    recorder = Recorder()
    driver = await c.driver(recorder)
    offer = await async_wait_until(lambda: recorder.offers_seen, TIMEOUT, "an offer")
    t = executor_task("x1", "bad", f"{sys.executable} {script}", shell=True)

    await driver.launch([offer[0].id], [t])

    await async_wait_until(lambda: recorder.of("x1", pb.TASK_FINISHED), TIMEOUT, "x1 FINISHED")
    out = next(agent.settings.work_dir.glob("executors/*/bad/stdout"))
    said = await async_wait_until(lambda: _report(out), TIMEOUT, "the executor's report")
    assert said == {
        "wrong-token": "PERMISSION_DENIED",
        "other-framework": "PERMISSION_DENIED",
        "not-given": "NOT_FOUND",
        "short-uuid": "INVALID_ARGUMENT",
        "finished": "OK",
        "second-end": "FAILED_PRECONDITION",
        "big-message": "INVALID_ARGUMENT",
    }
    assert [pb.TaskState.Name(s.state) for s in recorder.of("x1")] == ["TASK_FINISHED"]


async def test_an_executor_that_cannot_start_fails_its_task_and_frees_its_resources(
    make_cluster: Callable[..., Awaitable[InProcessCluster]], async_wait_until: AsyncWait
) -> None:
    c = await make_cluster()
    agent = await c.add_agent(containerizer="process")
    recorder = Recorder()
    driver = await c.driver(recorder)
    offer = await async_wait_until(lambda: recorder.offers_seen, TIMEOUT, "an offer")
    t = executor_task("x1", "missing", "/no/such/executor", shell=False)
    t.executor.resources.extend(Resources.parse("cpus:0.5;mem:64").to_proto())

    await driver.launch([offer[0].id], [t])

    (failed,) = await async_wait_until(
        lambda: recorder.of("x1", pb.TASK_FAILED), TIMEOUT, "x1 FAILED"
    )
    assert "executor missing could not start" in failed.message, failed.message
    assert "/no/such/executor" in failed.message, failed.message
    # The master charged the executor at launch; the agent's word frees it again.
    master_agent = c.core.agents[agent.agent_id]
    await async_wait_until(
        lambda: not master_agent.executors and master_agent.used.is_empty(),
        TIMEOUT,
        "the executor's resources freed",
    )


async def test_http_sd_lists_the_master_and_each_agent_for_prometheus(
    make_cluster: Callable[..., Awaitable[InProcessCluster]],
) -> None:
    c = await make_cluster()
    agent = await c.add_agent(attributes={"rack": "r1", "gpu-model": "a100"})
    url = f"http://{c.server.info.http_address}/api/v1/http_sd"
    async with aiohttp.ClientSession() as session, session.get(url) as resp:
        assert resp.status == 200
        groups = await resp.json()

    master, agent_group = groups
    assert master == {"targets": [c.server.info.http_address], "labels": {"job": "master"}}
    assert agent_group["targets"] == [agent.http_address]
    assert agent_group["labels"] == {
        "job": "agent",
        "agent": agent.agent_id,
        "__meta_orbiter_hostname": agent.info().hostname,
        "__meta_orbiter_status": "connected",
        "__meta_orbiter_maintenance": "active",
        "__meta_orbiter_attribute_rack": "r1",
        "__meta_orbiter_attribute_gpu_model": "a100",
    }
