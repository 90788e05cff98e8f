"""The scheduler SDK: subclass `Scheduler`, hand it to a `SchedulerDriver`.

The driver subscribes, keeps the event stream alive (reconnecting with
backoff and failing over to the same framework id), watches the master's
heartbeats, calls your callbacks, and acknowledges status updates for you
after your `status_update` returns (one batched Acknowledge per event).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections.abc import Iterable, Sequence
from typing import Any

import grpc

from orbiter.proto import messages_pb2, scheduler_pb2, scheduler_pb2_grpc

pb = messages_pb2
log = logging.getLogger("orbiter.framework")

MISSED_HEARTBEATS = 3


class CallError(Exception):
    """The master refused a call; `code` is the gRPC status, the message says why."""

    def __init__(self, call: str, code: grpc.StatusCode, message: str) -> None:
        super().__init__(f"{call} refused ({code.name}): {message}")
        self.code = code
        self.details = message


class Scheduler:
    """Override what you need; callbacks may be plain or async functions."""

    def subscribed(self, driver: SchedulerDriver, framework_id: str, master: pb.MasterInfo) -> Any:
        pass

    def offers(self, driver: SchedulerDriver, offers: list[pb.Offer]) -> Any:
        pass

    def rescinded(self, driver: SchedulerDriver, offer_id: str) -> Any:
        pass

    def status_update(self, driver: SchedulerDriver, status: pb.TaskStatus) -> Any:
        pass

    def failure(self, driver: SchedulerDriver, agent_id: str, message: str) -> Any:
        pass

    def error(self, driver: SchedulerDriver, message: str) -> Any:
        pass

    def disconnected(self, driver: SchedulerDriver) -> Any:
        pass


async def _maybe_await(value: Any) -> None:
    if inspect.isawaitable(value):
        await value


def task_info(
    task_id: str,
    command: str,
    resources: Iterable[pb.Resource],
    name: str = "",
    shell: bool = True,
    environment: dict[str, str] | None = None,
    kill_grace_period: float = 0.0,
) -> pb.TaskInfo:
    """A TaskInfo for a plain command (what the built-in command executor runs)."""
    info = pb.TaskInfo(task_id=task_id, name=name or task_id, kill_grace_period=kill_grace_period)
    info.resources.extend(resources)
    info.command.shell = shell
    info.command.value = command
    if environment:
        info.command.environment.update(environment)
    return info


class SchedulerDriver:
    def __init__(
        self,
        scheduler: Scheduler,
        framework: pb.FrameworkInfo,
        master: str = "127.0.0.1:5050",
        auto_acknowledge: bool = True,
    ) -> None:
        self.scheduler = scheduler
        self.framework = pb.FrameworkInfo()
        self.framework.CopyFrom(framework)
        self.master = master
        self.auto_acknowledge = auto_acknowledge
        self.framework_id = framework.id
        self.stream_id = ""
        self.master_info = pb.MasterInfo()
        self.subscribed = asyncio.Event()
        self._channel: grpc.aio.Channel | None = None
        self._stub: scheduler_pb2_grpc.SchedulerStub | None = None
        self._stopping = False
        self._fatal: str = ""

    @property
    def header(self) -> scheduler_pb2.CallHeader:
        return scheduler_pb2.CallHeader(framework_id=self.framework_id, stream_id=self.stream_id)

    # ------------------------------------------------------------------ running

    async def run(self) -> str:
        """Run until stop() or a fatal error; returns the fatal error text or ''."""
        self._channel = grpc.aio.insecure_channel(
            self.master,
            options=[("grpc.max_receive_message_length", 64 * 1024 * 1024)],
        )
        self._stub = scheduler_pb2_grpc.SchedulerStub(self._channel)
        backoff = 0.2
        try:
            while not self._stopping:
                try:
                    await self._session()
                    backoff = 0.2
                except grpc.aio.AioRpcError as e:
                    if e.code() in (
                        grpc.StatusCode.INVALID_ARGUMENT,
                        grpc.StatusCode.NOT_FOUND,
                        grpc.StatusCode.FAILED_PRECONDITION,
                    ):
                        self._fatal = e.details() or e.code().name
                        await _maybe_await(self.scheduler.error(self, self._fatal))
                        return self._fatal
                    if not self._stopping:
                        log.warning("lost the master at %s: %s", self.master, e.details())
                if self._stopping:
                    break
                if self.subscribed.is_set():
                    self.subscribed.clear()
                    await _maybe_await(self.scheduler.disconnected(self))
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
        finally:
            await self._channel.close()
        return self._fatal

    def stop(self) -> None:
        """End run(); the framework stays registered until its failover timeout."""
        self._stopping = True
        if self._call is not None:
            self._call.cancel()

    _call: Any = None

    async def _session(self) -> None:
        assert self._stub is not None
        self.framework.id = self.framework_id
        call = self._stub.Subscribe(scheduler_pb2.SubscribeRequest(framework_info=self.framework))
        self._call = call
        timeout: float | None = None
        try:
            while True:
                try:
                    async with asyncio.timeout(timeout):  # not wait_for: it can swallow a cancel
                        event = await call.read()
                except TimeoutError:
                    log.warning("no heartbeat from the master for %.0fs; reconnecting", timeout)
                    call.cancel()
                    return
                if event is grpc.aio.EOF:
                    await call
                    return
                if event.type == scheduler_pb2.Event.SUBSCRIBED:
                    sub = event.subscribed
                    self.framework_id = sub.framework_id
                    self.stream_id = sub.stream_id
                    self.master_info.CopyFrom(sub.master_info)
                    timeout = sub.heartbeat_interval_seconds * MISSED_HEARTBEATS
                    self.subscribed.set()
                    await _maybe_await(
                        self.scheduler.subscribed(self, sub.framework_id, sub.master_info)
                    )
                else:
                    await self._dispatch(event)
        except asyncio.CancelledError:
            if not self._stopping:
                raise
        finally:
            self._call = None

    async def _dispatch(self, event: scheduler_pb2.Event) -> None:
        E = scheduler_pb2.Event
        s = self.scheduler
        if event.type == E.OFFERS:
            await _maybe_await(s.offers(self, list(event.offers.offers)))
        elif event.type == E.RESCIND:
            await _maybe_await(s.rescinded(self, event.rescind.offer_id))
        elif event.type == E.UPDATE:
            acks = []
            for status in event.update.statuses:
                await _maybe_await(s.status_update(self, status))
                if status.uuid:
                    acks.append(
                        scheduler_pb2.Acknowledgement(
                            agent_id=status.agent_id, task_id=status.task_id, uuid=status.uuid
                        )
                    )
            if acks and self.auto_acknowledge:
                with contextlib.suppress(CallError):
                    await self.acknowledge(acks)
        elif event.type == E.FAILURE:
            await _maybe_await(s.failure(self, event.failure.agent_id, event.failure.message))
        elif event.type == E.ERROR and not self._stopping:
            await _maybe_await(s.error(self, event.error.message))

    # ------------------------------------------------------------------ calls

    async def _unary(self, name: str, request: Any) -> None:
        assert self._stub is not None, "call run() first"
        try:
            await getattr(self._stub, name)(request)
        except grpc.aio.AioRpcError as e:
            raise CallError(name, e.code(), e.details() or "") from None

    async def accept(
        self,
        offer_ids: Sequence[str],
        operations: Sequence[scheduler_pb2.Operation],
        refuse_seconds: float | None = None,
    ) -> None:
        req = scheduler_pb2.AcceptRequest(header=self.header, offer_ids=list(offer_ids))
        req.operations.extend(operations)
        if refuse_seconds is not None:
            req.filters.refuse_seconds = refuse_seconds
        await self._unary("Accept", req)

    async def launch(
        self,
        offer_ids: Sequence[str],
        tasks: Sequence[pb.TaskInfo],
        refuse_seconds: float | None = None,
    ) -> None:
        op = scheduler_pb2.Operation(type=scheduler_pb2.Operation.LAUNCH)
        op.launch.task_infos.extend(tasks)
        await self.accept(offer_ids, [op], refuse_seconds)

    async def decline(self, offer_ids: Sequence[str], refuse_seconds: float | None = None) -> None:
        req = scheduler_pb2.DeclineRequest(header=self.header, offer_ids=list(offer_ids))
        if refuse_seconds is not None:
            req.filters.refuse_seconds = refuse_seconds
        await self._unary("Decline", req)

    async def revive(self, roles: Sequence[str] = ()) -> None:
        await self._unary("Revive", scheduler_pb2.ReviveRequest(header=self.header, roles=roles))

    async def suppress(self, roles: Sequence[str] = ()) -> None:
        await self._unary(
            "Suppress", scheduler_pb2.SuppressRequest(header=self.header, roles=roles)
        )

    async def kill(
        self, task_id: str, agent_id: str = "", grace_period: float | None = None
    ) -> None:
        req = scheduler_pb2.KillRequest(header=self.header, task_id=task_id, agent_id=agent_id)
        if grace_period is not None:
            req.grace_period = grace_period
        await self._unary("Kill", req)

    async def acknowledge(self, acks: Sequence[scheduler_pb2.Acknowledgement]) -> None:
        req = scheduler_pb2.AcknowledgeRequest(header=self.header)
        req.acknowledgements.extend(acks)
        await self._unary("Acknowledge", req)

    async def reconcile(self, tasks: Sequence[tuple[str, str]] = ()) -> None:
        """Ask for the latest state of (task_id, agent_id) pairs, or of every task if none."""
        req = scheduler_pb2.ReconcileRequest(header=self.header)
        for task_id, agent_id in tasks:
            req.tasks.add(task_id=task_id, agent_id=agent_id)
        await self._unary("Reconcile", req)

    async def teardown(self) -> None:
        """End the framework: the master kills its tasks and forgets it."""
        self._stopping = True
        try:
            await self._unary("Teardown", scheduler_pb2.TeardownRequest(header=self.header))
        finally:
            self.stop()
