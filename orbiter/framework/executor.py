"""The executor SDK: subclass `Executor`, hand it to an `ExecutorDriver`.

A framework's executor is a process an agent starts (`ExecutorInfo.command`,
in a sandbox of its own) to run that framework's tasks its own way, as in
Mesos. The agent says where to connect and who the executor is through its
environment; the driver subscribes to the agent's Executor service
(orbiter/proto/executor.proto), calls your callbacks for its events and
sends your status updates and messages.

Updates are reliable: the driver keeps each one until the agent says the
scheduler acknowledged it. When the agent goes away (it restarts), the driver
reconnects with backoff and resubscribes with the tasks it still runs and the
updates not yet acknowledged, so the new agent takes them back. If the agent
stays away longer than `recovery_timeout`, run() gives up and the executor
should exit, as Mesos's executors do.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
import uuid
from typing import Any

import grpc

from orbiter.framework.driver import CallError, _maybe_await
from orbiter.proto import executor_pb2, executor_pb2_grpc, messages_pb2
from orbiter.streams import raise_if_failed
from orbiter.taskstates import TERMINAL_STATES

pb = messages_pb2
Event = executor_pb2.ExecutorEvent
log = logging.getLogger("orbiter.executor")

ENDPOINT = "ORBITER_AGENT_ENDPOINT"
FRAMEWORK_ID = "ORBITER_FRAMEWORK_ID"
EXECUTOR_ID = "ORBITER_EXECUTOR_ID"
TOKEN = "ORBITER_EXECUTOR_TOKEN"
AGENT_ID = "ORBITER_AGENT_ID"
SANDBOX = "ORBITER_SANDBOX"

RECOVERY_TIMEOUT = 60.0
FIRST_BACKOFF = 0.1
MAX_BACKOFF = 2.0
# The agent refused the executor or the call: asking again would not help.
REFUSED = frozenset(
    {
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.UNAUTHENTICATED,
        grpc.StatusCode.FAILED_PRECONDITION,
    }
)


class NotUnderAgent(RuntimeError):
    """A variable the agent sets for its executors is missing: the process was started by hand."""


class Executor:
    """Override what you need; callbacks may be plain or async functions.

    They run one at a time, in the order of the agent's events: start long
    work (a task's loop, a process) as an asyncio task rather than awaiting it.
    """

    def registered(
        self,
        driver: ExecutorDriver,
        executor_info: pb.ExecutorInfo,
        framework_info: pb.FrameworkInfo,
        agent_info: pb.AgentInfo,
    ) -> Any:
        pass

    def reregistered(self, driver: ExecutorDriver, agent_info: pb.AgentInfo) -> Any:
        """Subscribed again, to a restarted agent."""

    def disconnected(self, driver: ExecutorDriver) -> Any:
        """The agent went away; the driver is reconnecting (tasks keep running)."""

    def launch_task(self, driver: ExecutorDriver, task: pb.TaskInfo) -> Any:
        pass

    def kill_task(self, driver: ExecutorDriver, task_id: str, grace_period: float) -> Any:
        pass

    def acknowledged(self, driver: ExecutorDriver, task_id: str, uuid: bytes) -> Any:
        """The scheduler acknowledged the update with this uuid."""

    def framework_message(self, driver: ExecutorDriver, data: bytes) -> Any:
        pass

    def shutdown(self, driver: ExecutorDriver) -> Any:
        """End your tasks: the agent kills the executor after `driver.shutdown_grace_period`."""

    def error(self, driver: ExecutorDriver, message: str) -> Any:
        """A fatal error (refused by the agent, or the agent never came back); run() ends."""


def update(task_id: str, state: int, message: str = "") -> pb.TaskStatus:
    """A TaskStatus for `send_status_update`, which fills in uuid, source and timestamp."""
    return pb.TaskStatus(task_id=task_id, state=state, message=message)  # type: ignore[arg-type]


def _env(name: str) -> str:
    value = os.environ.get(name, "")
    if not value:
        raise NotUnderAgent(
            f"{name} is not set: an executor runs under an Orbiter agent, which sets it "
            "(name this program in a framework's ExecutorInfo.command)"
        )
    return value


class ExecutorDriver:
    """Connects an `Executor` to the agent that started this process."""

    def __init__(
        self,
        executor: Executor,
        endpoint: str | None = None,
        recovery_timeout: float = RECOVERY_TIMEOUT,
    ) -> None:
        self.executor = executor
        self.endpoint = endpoint or _env(ENDPOINT)
        self.framework_id = _env(FRAMEWORK_ID)
        self.executor_id = _env(EXECUTOR_ID)
        self.caller = executor_pb2.ExecutorCaller(
            framework_id=self.framework_id, executor_id=self.executor_id, token=_env(TOKEN)
        )
        self.agent_id = os.environ.get(AGENT_ID, "")
        self.sandbox = os.environ.get(SANDBOX, "")
        self.recovery_timeout = recovery_timeout
        self.executor_info = pb.ExecutorInfo()
        self.framework_info = pb.FrameworkInfo()
        self.agent_info = pb.AgentInfo()
        self.shutdown_grace_period = 0.0
        # task id -> task, from its launch until the agent acknowledged its end.
        self.tasks: dict[str, pb.TaskInfo] = {}
        # uuid -> update, in the order sent, until the agent says it was acknowledged.
        self.unacknowledged: dict[bytes, pb.TaskStatus] = {}
        self.subscribed = asyncio.Event()
        self._stub: executor_pb2_grpc.ExecutorStub | None = None
        self._call: Any = None
        self._stopping = False
        self._wake = asyncio.Event()
        self._fatal = ""
        self._ever_subscribed = False

    # ------------------------------------------------------------------ running

    async def run(self) -> str:
        """Run until SHUTDOWN, stop() or a fatal error; returns the error's text, or ''."""
        options = [  # reconnect to a restarted agent within our own backoff, not grpc's 2 min
            ("grpc.initial_reconnect_backoff_ms", 100),
            ("grpc.max_reconnect_backoff_ms", int(MAX_BACKOFF * 1000)),
        ]
        backoff = FIRST_BACKOFF
        away_since = time.monotonic()
        async with grpc.aio.insecure_channel(self.endpoint, options=options) as channel:
            self._stub = executor_pb2_grpc.ExecutorStub(channel)
            while not self._stopping:
                try:
                    await self._session()
                except grpc.aio.AioRpcError as e:
                    reason = e.details() or e.code().name
                    if e.code() in REFUSED:
                        await self._fail(f"the agent refused this executor: {reason}")
                    elif not self._stopping:
                        log.warning("lost the agent at %s: %s", self.endpoint, reason)
                if self._stopping:
                    break
                if self.subscribed.is_set():
                    self.subscribed.clear()
                    away_since = time.monotonic()
                    backoff = FIRST_BACKOFF
                    await _maybe_await(self.executor.disconnected(self))
                if time.monotonic() - away_since >= self.recovery_timeout:
                    await self._fail(
                        f"no agent at {self.endpoint} for {self.recovery_timeout:g}s; giving up"
                    )
                    break
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(backoff):
                        await self._wake.wait()
                backoff = min(backoff * 2, MAX_BACKOFF)
            self._stub = None
        return self._fatal

    def stop(self) -> None:
        """End run(); the agent fails the tasks left when the executor's process exits."""
        self._stopping = True
        self._wake.set()
        if self._call is not None:
            self._call.cancel()

    async def _fail(self, message: str) -> None:
        self._fatal = message
        self._stopping = True
        await _maybe_await(self.executor.error(self, message))

    async def _session(self) -> None:
        assert self._stub is not None
        request = executor_pb2.ExecutorSubscribe(
            caller=self.caller,
            tasks=list(self.tasks.values()),
            unacknowledged=list(self.unacknowledged.values()),
        )
        in_request = set(self.unacknowledged)
        call = self._call = self._stub.Subscribe(request)
        try:
            while not self._stopping:
                event = await call.read()
                if event is grpc.aio.EOF:
                    await raise_if_failed(call)
                    return
                await self._dispatch(event)
                if event.type == Event.SUBSCRIBED:
                    # Updates sent after the request was made went nowhere yet.
                    late = [s for u, s in self.unacknowledged.items() if u not in in_request]
                    for status in late:
                        await self._update(status)
        except asyncio.CancelledError:
            if not self._stopping:
                raise
        finally:
            self._call = None

    async def _dispatch(self, event: executor_pb2.ExecutorEvent) -> None:
        x = self.executor
        if event.type == Event.SUBSCRIBED:
            sub = event.subscribed
            self.executor_info.CopyFrom(sub.executor_info)
            self.framework_info.CopyFrom(sub.framework_info)
            self.agent_info.CopyFrom(sub.agent_info)
            self.agent_id = sub.agent_info.id or self.agent_id
            self.subscribed.set()
            if self._ever_subscribed:
                await _maybe_await(x.reregistered(self, sub.agent_info))
            else:
                self._ever_subscribed = True
                await _maybe_await(
                    x.registered(self, sub.executor_info, sub.framework_info, sub.agent_info)
                )
        elif event.type == Event.LAUNCH:
            self.tasks[event.launch.task.task_id] = event.launch.task
            await _maybe_await(x.launch_task(self, event.launch.task))
        elif event.type == Event.KILL:
            await _maybe_await(x.kill_task(self, event.kill.task_id, event.kill.grace_period))
        elif event.type == Event.ACKNOWLEDGED:
            ack = event.acknowledged
            status = self.unacknowledged.pop(ack.uuid, None)
            if status is not None and status.state in TERMINAL_STATES:
                self.tasks.pop(status.task_id, None)
            await _maybe_await(x.acknowledged(self, ack.task_id, ack.uuid))
        elif event.type == Event.MESSAGE:
            await _maybe_await(x.framework_message(self, event.message.data))
        elif event.type == Event.SHUTDOWN:
            self.shutdown_grace_period = event.shutdown.grace_period
            await _maybe_await(x.shutdown(self))
            self.stop()
        elif event.type == Event.ERROR:
            await self._fail(event.error.message)

    # ------------------------------------------------------------------ calls

    async def _unary(self, name: str, request: Any) -> bool:
        """Make the call if subscribed; False if the agent is away, CallError if it refuses."""
        if self._stub is None or not self.subscribed.is_set():
            return False
        try:
            await getattr(self._stub, name)(request)
        except grpc.aio.AioRpcError as e:
            if e.code() in REFUSED:
                raise CallError(name, e.code(), e.details() or "") from None
            log.info("%s not delivered: %s", name, e.details() or e.code().name)
            return False
        return True

    async def _update(self, status: pb.TaskStatus) -> None:
        request = executor_pb2.ExecutorUpdate(caller=self.caller, status=status)
        try:
            await self._unary("Update", request)
        except CallError:
            self.unacknowledged.pop(status.uuid, None)
            raise

    async def send_status_update(self, status: pb.TaskStatus) -> pb.TaskStatus:
        """Send a task's new state; returns it as sent (with its uuid).

        It is kept until acknowledged: while the agent is away it waits, and it
        goes with the next subscription. CallError: the agent refused it.
        """
        sent = pb.TaskStatus()
        sent.CopyFrom(status)
        sent.uuid = sent.uuid or uuid.uuid4().bytes
        sent.source = pb.SOURCE_EXECUTOR
        sent.timestamp = sent.timestamp or time.time()
        sent.agent_id = sent.agent_id or self.agent_id
        self.unacknowledged[sent.uuid] = sent
        await self._update(sent)
        return sent

    async def send_framework_message(self, data: bytes) -> None:
        """Send bytes to the scheduler; best effort: dropped while the agent is away."""
        request = executor_pb2.ExecutorMessage(caller=self.caller, data=data)
        if not await self._unary("Message", request):
            log.warning("a framework message (%d bytes) was dropped: the agent is away", len(data))
