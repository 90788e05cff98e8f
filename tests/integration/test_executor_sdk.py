"""The executor SDK (`ExecutorDriver`) on its own, against a fake agent.

`FakeAgent` is a stand-in for the agent's side of the Executor service
(orbiter/proto/executor.proto), so the SDK can be tested alone: a grpc.aio
server on a Unix socket in tmp_path implementing the generated servicer. It
records every call, answers a subscription with SUBSCRIBED, then sends the
events a test pushes; "restarting" it is stopping the server and starting a
new one on the same socket. The real agent's side is tested end to end in
tests/e2e/test_executors.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import pytest

from orbiter.framework import (
    Executor,
    ExecutorDriver,
    NotUnderAgent,
    executor_info,
    task_info,
    update,
)
from orbiter.proto import executor_pb2, executor_pb2_grpc
from orbiter.proto import messages_pb2 as pb

Event = executor_pb2.ExecutorEvent
AsyncWait = Callable[..., Awaitable[Any]]

FRAMEWORK_ID = "fw-1"
EXECUTOR_ID = "counter"
TOKEN = "s3cret"
AGENT_ID = "agent-1"


class FakeAgent(executor_pb2_grpc.ExecutorServicer):
    """The agent's Executor service, reduced to recording calls and relaying pushed events."""

    def __init__(self, socket: Path) -> None:
        self.endpoint = f"unix:{socket}"
        self.subscriptions: list[executor_pb2.ExecutorSubscribe] = []
        self.updates: list[executor_pb2.ExecutorUpdate] = []
        self.messages: list[executor_pb2.ExecutorMessage] = []
        self._server: grpc.aio.Server | None = None
        self._stream: asyncio.Queue[Event | None] | None = None

    async def start(self) -> None:
        self._server = grpc.aio.server()
        executor_pb2_grpc.add_ExecutorServicer_to_server(self, self._server)
        self._server.add_insecure_port(self.endpoint)
        await self._server.start()

    async def stop(self) -> None:
        """Go away as a killed agent does: the executor's stream breaks."""
        assert self._server is not None
        self._stream = None
        await self._server.stop(grace=None)

    async def restart(self) -> None:
        await self.stop()
        await self.start()

    def push(self, event: Event) -> None:
        assert self._stream is not None, "no executor subscribed"
        self._stream.put_nowait(event)

    async def _check(self, caller: executor_pb2.ExecutorCaller, context: Any) -> None:
        expected = (FRAMEWORK_ID, EXECUTOR_ID, TOKEN)
        if (caller.framework_id, caller.executor_id, caller.token) != expected:
            await context.abort(grpc.StatusCode.PERMISSION_DENIED, "wrong token")

    async def Subscribe(
        self, request: executor_pb2.ExecutorSubscribe, context: Any
    ) -> AsyncIterator[Event]:
        await self._check(request.caller, context)
        self.subscriptions.append(request)
        stream = self._stream = asyncio.Queue()
        subscribed = Event(type=Event.SUBSCRIBED)
        subscribed.subscribed.executor_info.executor_id = EXECUTOR_ID
        subscribed.subscribed.framework_info.id = FRAMEWORK_ID
        subscribed.subscribed.agent_info.id = AGENT_ID
        yield subscribed
        while (event := await stream.get()) is not None:
            yield event

    async def Update(
        self, request: executor_pb2.ExecutorUpdate, context: Any
    ) -> executor_pb2.ExecutorReply:
        await self._check(request.caller, context)
        self.updates.append(request)
        return executor_pb2.ExecutorReply()

    async def Message(
        self, request: executor_pb2.ExecutorMessage, context: Any
    ) -> executor_pb2.ExecutorReply:
        await self._check(request.caller, context)
        self.messages.append(request)
        return executor_pb2.ExecutorReply()


@dataclass
class RecordingExecutor(Executor):
    """Records every callback as (name, arguments...)."""

    calls: list[tuple[Any, ...]] = field(default_factory=list)

    def named(self, name: str) -> list[tuple[Any, ...]]:
        return [c[1:] for c in self.calls if c[0] == name]

    def registered(
        self, driver: Any, executor_info: Any, framework_info: Any, agent_info: Any
    ) -> None:
        self.calls.append(("registered", executor_info, framework_info, agent_info))

    def reregistered(self, driver: Any, agent_info: pb.AgentInfo) -> None:
        self.calls.append(("reregistered", agent_info))

    def disconnected(self, driver: Any) -> None:
        self.calls.append(("disconnected",))

    def launch_task(self, driver: Any, task: pb.TaskInfo) -> None:
        self.calls.append(("launch_task", task))

    async def kill_task(self, driver: Any, task_id: str, grace_period: float) -> None:
        self.calls.append(("kill_task", task_id, grace_period))

    def acknowledged(self, driver: Any, task_id: str, uuid: bytes) -> None:
        self.calls.append(("acknowledged", task_id, uuid))

    async def framework_message(self, driver: Any, data: bytes) -> None:
        self.calls.append(("framework_message", data))

    async def shutdown(self, driver: Any) -> None:
        self.calls.append(("shutdown",))

    def error(self, driver: Any, message: str) -> None:
        self.calls.append(("error", message))


@pytest.fixture
async def agent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeAgent]:
    """A fake agent, and the environment a real one gives the executors it starts."""
    fake = FakeAgent(tmp_path / "executor.sock")
    for name, value in {
        "ORBITER_AGENT_ENDPOINT": fake.endpoint,
        "ORBITER_FRAMEWORK_ID": FRAMEWORK_ID,
        "ORBITER_EXECUTOR_ID": EXECUTOR_ID,
        "ORBITER_EXECUTOR_TOKEN": TOKEN,
        "ORBITER_AGENT_ID": AGENT_ID,
        "ORBITER_SANDBOX": str(tmp_path / "sandbox"),
    }.items():
        monkeypatch.setenv(name, value)
    await fake.start()
    yield fake
    await fake.stop()


@dataclass
class Running:
    executor: RecordingExecutor
    driver: ExecutorDriver
    run: asyncio.Task[str]


@pytest.fixture
async def start_executor(agent: FakeAgent) -> AsyncIterator[Callable[..., Awaitable[Running]]]:
    """start_executor(recovery_timeout=...) -> a driver whose run() is under way."""
    started: list[Running] = []

    async def start(**kwargs: Any) -> Running:
        executor = RecordingExecutor()
        driver = ExecutorDriver(executor, **kwargs)
        running = Running(executor, driver, asyncio.create_task(driver.run()))
        started.append(running)
        return running

    yield start
    for running in started:
        running.driver.stop()
        await asyncio.wait_for(running.run, 5)


async def subscribed(
    agent: FakeAgent, running: Running, wait: AsyncWait, count: int = 1
) -> executor_pb2.ExecutorSubscribe:
    """Wait for the executor's `count`th subscription to be answered; return it."""
    await wait(lambda: len(agent.subscriptions) >= count, what=f"subscription {count}")
    await wait(running.driver.subscribed.is_set, what="SUBSCRIBED to reach the driver")
    return agent.subscriptions[count - 1]


def launch(task_id: str) -> Event:
    event = Event(type=Event.LAUNCH)
    event.launch.task.task_id = task_id
    event.launch.task.name = task_id
    return event


def acknowledged(status: pb.TaskStatus) -> Event:
    event = Event(type=Event.ACKNOWLEDGED)
    event.acknowledged.task_id = status.task_id
    event.acknowledged.uuid = status.uuid
    return event


def states(statuses: Any) -> list[tuple[str, str]]:
    return [(s.task_id, pb.TaskState.Name(s.state)) for s in statuses]


# ---------------------------------------------------------------------- tests


async def test_subscribes_with_the_ids_and_token_its_agent_gave_it(
    agent: FakeAgent, start_executor: Any, async_wait_until: AsyncWait
) -> None:
    running = await start_executor()
    request = await subscribed(agent, running, async_wait_until)

    assert request.caller == executor_pb2.ExecutorCaller(
        framework_id=FRAMEWORK_ID, executor_id=EXECUTOR_ID, token=TOKEN
    )
    assert not request.tasks and not request.unacknowledged
    await async_wait_until(lambda: running.executor.named("registered"))
    [(executor_info, framework_info, agent_info)] = running.executor.named("registered")
    assert (executor_info.executor_id, framework_info.id, agent_info.id) == (
        EXECUTOR_ID,
        FRAMEWORK_ID,
        AGENT_ID,
    )
    assert running.driver.sandbox.endswith("sandbox")


async def test_launch_and_kill_reach_the_executor(
    agent: FakeAgent, start_executor: Any, async_wait_until: AsyncWait
) -> None:
    running = await start_executor()
    await subscribed(agent, running, async_wait_until)

    agent.push(launch("t1"))
    kill = Event(type=Event.KILL)
    kill.kill.task_id, kill.kill.grace_period = "t1", 2.5
    agent.push(kill)

    await async_wait_until(lambda: running.executor.named("kill_task"))
    [(task,)] = running.executor.named("launch_task")
    assert task.task_id == "t1"
    assert running.executor.named("kill_task") == [("t1", 2.5)]
    assert list(running.driver.tasks) == ["t1"]


async def test_updates_are_resent_on_resubscription_until_acknowledged(
    agent: FakeAgent, start_executor: Any, async_wait_until: AsyncWait
) -> None:
    """Through two agent restarts, the executor says what it still runs and what the
    scheduler has not acknowledged yet; an acknowledged end removes its task."""
    running = await start_executor()
    driver = running.driver
    await subscribed(agent, running, async_wait_until)
    agent.push(launch("t1"))
    agent.push(launch("t2"))
    await async_wait_until(lambda: len(driver.tasks) == 2)

    sent = [
        await driver.send_status_update(update("t1", pb.TASK_RUNNING, "progress 1/2")),
        await driver.send_status_update(update("t2", pb.TASK_RUNNING)),
        await driver.send_status_update(update("t1", pb.TASK_FINISHED)),
    ]

    received = [u.status for u in agent.updates]
    assert received == sent
    assert all(len(s.uuid) == 16 for s in received)
    assert len({s.uuid for s in received}) == 3
    assert {(s.source, s.agent_id) for s in received} == {(pb.SOURCE_EXECUTOR, AGENT_ID)}
    assert all(s.timestamp > 0 for s in received)
    assert received[0].message == "progress 1/2"

    agent.push(acknowledged(sent[0]))
    await async_wait_until(lambda: running.executor.named("acknowledged"))
    assert running.executor.named("acknowledged") == [("t1", sent[0].uuid)]

    await agent.restart()
    request = await subscribed(agent, running, async_wait_until, count=2)
    assert list(request.unacknowledged) == sent[1:]  # in the order sent
    assert [t.task_id for t in request.tasks] == ["t1", "t2"]  # t1's end is not acknowledged
    await async_wait_until(lambda: running.executor.named("reregistered"))
    assert ("disconnected",) in running.executor.calls

    agent.push(acknowledged(sent[2]))
    await async_wait_until(lambda: "t1" not in driver.tasks)
    await agent.restart()
    request = await subscribed(agent, running, async_wait_until, count=3)
    assert [t.task_id for t in request.tasks] == ["t2"]
    assert states(request.unacknowledged) == [("t2", "TASK_RUNNING")]


async def test_an_update_sent_while_the_agent_is_away_goes_with_the_next_subscription(
    agent: FakeAgent, start_executor: Any, async_wait_until: AsyncWait
) -> None:
    running = await start_executor()
    await subscribed(agent, running, async_wait_until)
    agent.push(launch("t1"))
    await async_wait_until(lambda: running.driver.tasks)

    await agent.stop()
    await async_wait_until(lambda: running.executor.named("disconnected"))
    sent = await running.driver.send_status_update(update("t1", pb.TASK_FAILED, "oops"))
    assert agent.updates == []

    await agent.start()
    request = await subscribed(agent, running, async_wait_until, count=2)
    assert list(request.unacknowledged) == [sent]
    assert [t.task_id for t in request.tasks] == ["t1"]


async def test_messages_go_both_ways(
    agent: FakeAgent, start_executor: Any, async_wait_until: AsyncWait
) -> None:
    running = await start_executor()
    await subscribed(agent, running, async_wait_until)

    message = Event(type=Event.MESSAGE)
    message.message.data = b"ping"
    agent.push(message)
    await async_wait_until(lambda: running.executor.named("framework_message"))
    await running.driver.send_framework_message(b"pong: 0 tasks running")

    assert running.executor.named("framework_message") == [(b"ping",)]
    assert [m.data for m in agent.messages] == [b"pong: 0 tasks running"]
    assert agent.messages[0].caller.token == TOKEN


async def test_shutdown_calls_shutdown_then_ends_run(
    agent: FakeAgent, start_executor: Any, async_wait_until: AsyncWait
) -> None:
    running = await start_executor()
    await subscribed(agent, running, async_wait_until)

    shutdown = Event(type=Event.SHUTDOWN)
    shutdown.shutdown.grace_period = 3.0
    agent.push(shutdown)

    assert await asyncio.wait_for(running.run, 5) == ""
    assert running.executor.named("shutdown") == [()]
    assert running.driver.shutdown_grace_period == 3.0


async def test_run_gives_up_when_the_agent_stays_away_past_the_recovery_timeout(
    agent: FakeAgent, start_executor: Any, async_wait_until: AsyncWait
) -> None:
    running = await start_executor(recovery_timeout=0.5)
    await subscribed(agent, running, async_wait_until)

    await agent.stop()

    reason = await asyncio.wait_for(running.run, 5)
    assert reason == f"no agent at {agent.endpoint} for 0.5s; giving up"
    assert running.executor.named("error") == [(reason,)]


async def test_a_refused_subscription_ends_run_with_the_agents_reason(
    agent: FakeAgent, start_executor: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ORBITER_EXECUTOR_TOKEN", "forged")
    running = await start_executor()

    reason = await asyncio.wait_for(running.run, 5)

    assert reason == "the agent refused this executor: wrong token"
    assert running.executor.named("error") == [(reason,)]
    assert agent.subscriptions == []


REQUIRED = [
    "ORBITER_AGENT_ENDPOINT",
    "ORBITER_FRAMEWORK_ID",
    "ORBITER_EXECUTOR_ID",
    "ORBITER_EXECUTOR_TOKEN",
]


@pytest.mark.parametrize("variable", REQUIRED)
def test_outside_an_agent_the_driver_names_the_missing_variable(
    variable: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in REQUIRED:
        monkeypatch.setenv(name, "x")
    monkeypatch.delenv(variable)

    with pytest.raises(NotUnderAgent, match=f"^{variable} is not set: an executor runs under"):
        ExecutorDriver(Executor())


def test_a_task_for_an_executor_has_no_command_of_its_own() -> None:
    counter = executor_info("counter", "python counter.py --executor", [])

    task = task_info("t1", "", [], executor=counter)

    assert task.executor == counter and not task.HasField("command")
    with pytest.raises(ValueError, match="a command or an executor, not both"):
        task_info("t1", "echo hi", [], executor=counter)
