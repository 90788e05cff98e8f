"""The scheduler SDK: subclass `Scheduler`, hand it to a `SchedulerDriver`.

The driver subscribes, keeps the event stream alive (reconnecting with
backoff and failing over to the same framework id), watches the master's
heartbeats, calls your callbacks, and acknowledges status updates for you
after your `status_update` returns (one batched Acknowledge per event).

It also keeps the framework from waiting forever: it remembers the tasks it
launched, and after every (re)subscription asks the master for the state of
those not known to have ended (explicit reconciliation, as Mesos advises),
again with backoff until each is answered. A task's end reaches your
`status_update` once (with `auto_acknowledge=False`, an agent's resend of it
comes again, since you must acknowledge it). `master` may be
`host:port` or `zk://hosts/path`, in which case the driver follows whichever
master ZooKeeper names as leader.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections.abc import Iterable, Sequence
from typing import Any

import grpc

from orbiter.discovery import MasterLocator
from orbiter.proto import messages_pb2, scheduler_pb2, scheduler_pb2_grpc
from orbiter.security import channels
from orbiter.security import settings as security_settings
from orbiter.security.settings import SecuritySettings
from orbiter.streams import raise_if_failed
from orbiter.taskstates import TERMINAL_STATES

pb = messages_pb2
log = logging.getLogger("orbiter.framework")

MISSED_HEARTBEATS = 3
RECONCILE_FIRST_RETRY = 1.0
RECONCILE_MAX_RETRY = 30.0
ENDED_KEPT = 10_000


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
        """An agent was lost."""

    def executor_lost(
        self,
        driver: SchedulerDriver,
        agent_id: str,
        executor_id: str,
        status: int | None,
        message: str,
    ) -> Any:
        """One of the framework's executors ended (status: its exit status, -N for signal
        N, None if unknown); its tasks' ends come as status updates."""

    def error(self, driver: SchedulerDriver, message: str) -> Any:
        pass

    def disconnected(self, driver: SchedulerDriver) -> Any:
        pass

    def framework_message(
        self, driver: SchedulerDriver, agent_id: str, executor_id: str, data: bytes
    ) -> Any:
        """Bytes from one of the framework's executors (best effort)."""


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
    executor: pb.ExecutorInfo | None = None,
    volumes: Iterable[str] = (),
) -> pb.TaskInfo:
    """A TaskInfo for a plain command (what the built-in command executor runs).

    With `executor`, that executor runs the task and `command` must be "": a
    task has one or the other, as in Mesos. `volumes` are persistence ids of
    persistent volumes in the offers (or created earlier in the same Accept).
    """
    info = pb.TaskInfo(task_id=task_id, name=name or task_id, kill_grace_period=kill_grace_period)
    info.resources.extend(resources)
    for persistence_id in volumes:
        info.volumes.add(persistence_id=persistence_id)
    if executor is not None:
        if command:
            raise ValueError(f"task {task_id}: give a command or an executor, not both")
        info.executor.CopyFrom(executor)
        return info
    info.command.shell = shell
    info.command.value = command
    if environment:
        info.command.environment.update(environment)
    return info


def launch_op(*tasks: pb.TaskInfo) -> scheduler_pb2.Operation:
    op = scheduler_pb2.Operation(type=scheduler_pb2.Operation.LAUNCH)
    op.launch.task_infos.extend(tasks)
    return op


def reserve_op(
    resources: Iterable[pb.Resource], labels: dict[str, str] | None = None
) -> scheduler_pb2.Operation:
    """RESERVE: `resources` each carry the role to reserve for (the offer's role)."""
    op = scheduler_pb2.Operation(type=scheduler_pb2.Operation.RESERVE)
    op.reserve.resources.extend(resources)
    op.reserve.labels.update(labels or {})
    return op


def unreserve_op(resources: Iterable[pb.Resource]) -> scheduler_pb2.Operation:
    op = scheduler_pb2.Operation(type=scheduler_pb2.Operation.UNRESERVE)
    op.unreserve.resources.extend(resources)
    return op


def create_op(
    persistence_id: str, role: str, size: float, container_path: str
) -> scheduler_pb2.Operation:
    """CREATE a persistent volume of `size` MB of disk reserved for `role`."""
    op = scheduler_pb2.Operation(type=scheduler_pb2.Operation.CREATE)
    op.create.volumes.add(
        persistence_id=persistence_id, role=role, size=size, container_path=container_path
    )
    return op


def destroy_op(persistence_id: str) -> scheduler_pb2.Operation:
    op = scheduler_pb2.Operation(type=scheduler_pb2.Operation.DESTROY)
    op.destroy.volumes.add(persistence_id=persistence_id)
    return op


def executor_info(
    executor_id: str,
    command: str,
    resources: Iterable[pb.Resource],
    name: str = "",
    shell: bool = True,
    environment: dict[str, str] | None = None,
) -> pb.ExecutorInfo:
    """An ExecutorInfo: the agent runs `command` once per executor id and gives it the tasks
    that name it (see orbiter/framework/executor.py for the executor's side)."""
    info = pb.ExecutorInfo(executor_id=executor_id, name=name or executor_id)
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
        security: SecuritySettings | None = None,
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
        self.locator = MasterLocator(master)
        self.security = security or security_settings.current()
        # task id -> agent id of every launched task not known to have ended.
        self.active_tasks: dict[str, str] = {}
        self._ended: dict[str, int] = {}  # task id -> its end, to deliver it once
        self._offer_agents: dict[str, str] = {}
        self._unanswered: set[str] = set()

    @property
    def header(self) -> scheduler_pb2.CallHeader:
        return scheduler_pb2.CallHeader(framework_id=self.framework_id, stream_id=self.stream_id)

    # ------------------------------------------------------------------ running

    def _dial(self, address: str) -> None:
        self._channel = channels.aio_channel(
            address,
            self.security,
            options=[("grpc.max_receive_message_length", 64 * 1024 * 1024)],
        )
        self._stub = scheduler_pb2_grpc.SchedulerStub(self._channel)
        self._dialed = address

    _dialed = ""

    async def run(self) -> str:
        """Run until stop() or a fatal error; returns the fatal error text or ''."""
        await self.locator.start()
        self._dial(await self.locator.address())
        backoff = 0.2
        try:
            while not self._stopping:
                try:
                    address = await self.locator.address()
                    if address != self._dialed:
                        assert self._channel is not None
                        await self._channel.close()
                        self._dial(address)
                    await self._session()
                    backoff = 0.2
                except grpc.aio.AioRpcError as e:
                    if e.code() in (
                        grpc.StatusCode.INVALID_ARGUMENT,
                        grpc.StatusCode.NOT_FOUND,
                        grpc.StatusCode.FAILED_PRECONDITION,
                        grpc.StatusCode.PERMISSION_DENIED,
                        grpc.StatusCode.UNAUTHENTICATED,
                    ):
                        self._fatal = e.details() or e.code().name
                        await _maybe_await(self.scheduler.error(self, self._fatal))
                        return self._fatal
                    if not self._stopping:
                        log.warning("lost the master at %s: %s", self.master, e.details())
                if self._stopping:
                    break
                if self.subscribed.is_set():
                    backoff = 0.2  # it was a working stream: try again soon
                    self.subscribed.clear()
                    await _maybe_await(self.scheduler.disconnected(self))
                await self.locator.pause(backoff)
                backoff = min(backoff * 2, 5.0)
        finally:
            if self._channel is not None:
                await self._channel.close()
            await self.locator.close()
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
        reconciler: asyncio.Task[None] | None = None
        # Cancelling a read would cancel the whole call, so a leader change is noticed
        # by a watcher that ends the call, not by polling with timeouts.
        watcher = asyncio.create_task(self._end_on_leader_change(call, self.locator.changed))
        try:
            while True:
                try:
                    async with asyncio.timeout(timeout):  # not wait_for: it can swallow a cancel
                        event = await call.read()
                except TimeoutError:
                    log.warning("no heartbeat from the master for %.0fs; reconnecting", timeout)
                    call.cancel()
                    return
                except asyncio.CancelledError:
                    if watcher.done() and not self._stopping:
                        return  # the watcher ended the call: resubscribe to the new leader
                    raise
                if event is grpc.aio.EOF:
                    await raise_if_failed(call)
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
                    if reconciler is not None:
                        reconciler.cancel()
                    reconciler = asyncio.create_task(self._reconcile_until_answered())
                else:
                    await self._dispatch(event)
        except asyncio.CancelledError:
            if not self._stopping:
                raise
        finally:
            self._call = None
            watcher.cancel()
            if reconciler is not None:
                reconciler.cancel()

    async def _end_on_leader_change(self, call: Any, changed: asyncio.Event) -> None:
        await changed.wait()
        log.info("the leading master changed; resubscribing")
        call.cancel()

    async def _reconcile_until_answered(self) -> None:
        """Ask for every task not known to have ended until the master has answered each.

        The master says nothing of tasks on agents that may still come back
        (after a failover), and a partition-aware framework's unreachable tasks
        have no end yet; those are asked again with backoff (up to 30 s) until
        the master gives one.
        """
        delay = RECONCILE_FIRST_RETRY
        self._unanswered = set(self.active_tasks)
        while self._unanswered and not self._stopping:
            pairs = [(t, self.active_tasks[t]) for t in self._unanswered if t in self.active_tasks]
            if not pairs:
                return
            try:
                await self.reconcile(pairs)
            except CallError as e:
                if e.code != grpc.StatusCode.UNAVAILABLE:
                    log.warning("reconciliation refused: %s", e)
                    return
                # A leader paused by a ZooKeeper blip, or a failover: ask again later.
            await asyncio.sleep(delay)
            delay = min(delay * 2, RECONCILE_MAX_RETRY)

    def _track(self, status: pb.TaskStatus) -> bool:
        """Note what the update says of the task; False if it repeats an end already delivered."""
        task_id = status.task_id
        if status.state != pb.TASK_UNREACHABLE:
            # Unreachable is not an answer: the task ends, or comes back, later.
            self._unanswered.discard(task_id)
        ended = self._ended.get(task_id)
        if ended is not None and status.uuid and status.state == ended:
            # The agent resending the end. With auto_acknowledge the driver acknowledges
            # it anyway; without, the scheduler must see it to acknowledge it.
            return not self.auto_acknowledge
        if ended is not None:
            if ended != status.state:
                log.error(
                    "task %s: master reported %s after %s; not delivered",
                    task_id,
                    pb.TaskState.Name(status.state),
                    pb.TaskState.Name(ended),
                )
            return False
        if status.state in TERMINAL_STATES:
            self.active_tasks.pop(task_id, None)
            self._ended[task_id] = status.state
            if len(self._ended) > ENDED_KEPT:
                del self._ended[next(iter(self._ended))]
        elif task_id in self.active_tasks and status.agent_id:
            self.active_tasks[task_id] = status.agent_id
        return True

    async def _dispatch(self, event: scheduler_pb2.Event) -> None:
        E = scheduler_pb2.Event
        s = self.scheduler
        if event.type == E.OFFERS:
            for offer in event.offers.offers:
                self._offer_agents[offer.id] = offer.agent_id
            await _maybe_await(s.offers(self, list(event.offers.offers)))
        elif event.type == E.RESCIND:
            self._offer_agents.pop(event.rescind.offer_id, None)
            await _maybe_await(s.rescinded(self, event.rescind.offer_id))
        elif event.type == E.UPDATE:
            acks = []
            for status in event.update.statuses:
                if self._track(status):
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
        elif event.type == E.FAILURE and event.failure.executor_id:
            f = event.failure
            status = f.status if f.HasField("status") else None
            await _maybe_await(
                s.executor_lost(self, f.agent_id, f.executor_id, status, f.message)
            )
        elif event.type == E.FAILURE:
            await _maybe_await(s.failure(self, event.failure.agent_id, event.failure.message))
        elif event.type == E.MESSAGE:
            m = event.message
            await _maybe_await(s.framework_message(self, m.agent_id, m.executor_id, m.data))
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
        agent_id = next((self._offer_agents[o] for o in offer_ids if o in self._offer_agents), "")
        launched = [
            t.task_id
            for op in operations
            if op.type == scheduler_pb2.Operation.LAUNCH
            for t in op.launch.task_infos
        ]
        for task_id in launched:
            # Tracked before the call: if the master dies mid-call, reconciliation asks.
            self.active_tasks[task_id] = agent_id
            self._ended.pop(task_id, None)
        for offer_id in offer_ids:
            self._offer_agents.pop(offer_id, None)
        try:
            await self._unary("Accept", req)
        except CallError as e:
            if e.code != grpc.StatusCode.UNAVAILABLE:
                for task_id in launched:  # refused: nothing was launched
                    self.active_tasks.pop(task_id, None)
            raise

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

    async def message(self, agent_id: str, executor_id: str, data: bytes) -> None:
        """Send bytes to one of the framework's executors; best effort, as in Mesos."""
        req = scheduler_pb2.MessageRequest(
            header=self.header, agent_id=agent_id, executor_id=executor_id, data=data
        )
        await self._unary("Message", req)

    async def teardown(self) -> None:
        """End the framework: the master kills its tasks and forgets it."""
        self._stopping = True
        try:
            await self._unary("Teardown", scheduler_pb2.TeardownRequest(header=self.header))
        finally:
            self.stop()
