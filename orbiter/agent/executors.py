"""Frameworks' own executors on an agent: started once per executor id, reused, watched.

A task that names an executor (TaskInfo.executor) is not run by the agent
itself: the agent starts the executor's command (through the task keeper, so
it outlives an agent restart) in its own sandbox, serves it the Executor API
(orbiter/proto/executor.proto) on `executor.sock` in the work dir, and hands
it the task once it has subscribed. The executor's status updates take the
agent's reliable path (checkpointed, retried until the scheduler acknowledges
them, then ACKNOWLEDGED goes back down). Framework messages pass both ways,
best effort, as in Mesos. Executors written for Mesos reach the same core over
Mesos's v1 executor HTTP API (mesos_executor.py); they get the MESOS_* variables
Mesos sets beside the ORBITER_* ones.

The agent ends an executor that exits with its tasks still running (they are
TASK_FAILED, "executor exited with status N"), one that does not subscribe in
time, and one left without tasks (SHUTDOWN, then a kill after a grace).
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import grpc

from orbiter.agent.containerizer.base import Container, LaunchError, Termination
from orbiter.grpcerrors import add_checked
from orbiter.mesos import executor_convert as mesos
from orbiter.proto import executor_pb2, executor_pb2_grpc
from orbiter.proto import messages_pb2 as pb
from orbiter.taskstates import KNOWN_STATES, TERMINAL_STATES

if TYPE_CHECKING:
    from orbiter.agent.agent import Agent, AgentTask

log = logging.getLogger("orbiter.agent.executors")

SOCKET = "executor.sock"
REGISTRATION_TIMEOUT = 30.0
IDLE_SHUTDOWN = 5.0
SHUTDOWN_GRACE = 3.0
MAX_MESSAGE = 4 * 1024 * 1024  # as the master's limit for the other direction
# What Mesos executors are told (MESOS_*): how long to look for a restarting agent.
RECOVERY_TIMEOUT = 15 * 60.0
SUBSCRIPTION_BACKOFF_MAX = 2.0
E = executor_pb2.ExecutorEvent


def executor_key(framework_id: str, executor_id: str) -> str:
    return f"executor:{framework_id}/{executor_id}"


@dataclass(eq=False)
class RunningExecutor:
    """One executor process of one framework on this agent."""

    framework_id: str
    info: pb.ExecutorInfo
    token: str
    sandbox: Path
    container: Container | None = None
    # Its event stream, once it has subscribed; events wait here until then.
    stream: asyncio.Queue[executor_pb2.ExecutorEvent | None] | None = None
    backlog: list[executor_pb2.ExecutorEvent] = field(default_factory=list)
    tasks: dict[str, AgentTask] = field(default_factory=dict)
    timer: asyncio.TimerHandle | None = None
    ended: bool = False
    # Taken back after an agent restart, not yet resubscribed.
    recovered: bool = False
    idle: asyncio.TimerHandle | None = None
    shutting_down: bool = False
    starting: asyncio.Future[None] | None = None

    @property
    def id(self) -> str:
        return self.info.executor_id

    def send(self, event: executor_pb2.ExecutorEvent) -> None:
        if self.stream is not None:
            self.stream.put_nowait(event)
        else:
            self.backlog.append(event)


class Executors:
    """The agent's executors, and the Executor API they call."""

    def __init__(self, agent: Agent) -> None:
        self.agent = agent
        # Absolute: the executor runs in its own sandbox.
        self.socket = agent.settings.work_dir.resolve() / SOCKET
        self.running: dict[tuple[str, str], RunningExecutor] = {}
        self._server: grpc.aio.Server | None = None
        self.registration_timeout = REGISTRATION_TIMEOUT
        self.idle_shutdown = IDLE_SHUTDOWN
        # What the master last said of each framework, for SUBSCRIBED.
        self.frameworks: dict[str, pb.FrameworkInfo] = {}

    @property
    def endpoint(self) -> str:
        return f"unix:{self.socket}"

    async def start(self) -> None:
        # Above MAX_MESSAGE, so an oversized message gets our answer, not gRPC's.
        server = grpc.aio.server(options=[("grpc.max_receive_message_length", 2 * MAX_MESSAGE)])
        add_checked(executor_pb2_grpc.add_ExecutorServicer_to_server, _Service(self), server)
        self.socket.unlink(missing_ok=True)
        if server.add_insecure_port(self.endpoint) == 0:
            raise OSError(f"cannot serve the Executor API on {self.socket}")
        await server.start()
        self.socket.chmod(0o600)
        self._server = server

    async def stop(self) -> None:
        if self._server is not None:
            await self._server.stop(grace=0.5)
        for executor in self.running.values():
            if executor.stream is not None:
                executor.stream.put_nowait(None)

    # ------------------------------------------------------------------ tasks

    async def launch(self, task: AgentTask) -> None:
        """Give the task to its executor, starting the executor first if it is not running."""
        info = task.info.executor
        key = (task.framework_id, info.executor_id)
        executor = self.running.get(key)
        if executor is None or executor.ended or executor.shutting_down:
            # Registered before the first await: the executor's other tasks find it.
            sandbox = self.agent.settings.work_dir / "executors" / task.framework_id
            executor = RunningExecutor(
                task.framework_id, info, secrets.token_hex(16), sandbox / info.executor_id
            )
            self.running[key] = executor
            executor.starting = asyncio.ensure_future(self._start_executor(executor))
        self._cancel_idle(executor)
        executor.tasks[task.info.task_id] = task
        if executor.starting is not None:
            try:
                await asyncio.shield(executor.starting)
            except LaunchError:
                executor.tasks.pop(task.info.task_id, None)
                raise
        if task.kill_requested or task.state in TERMINAL_STATES:
            executor.tasks.pop(task.info.task_id, None)  # killed while the executor started
            self._idle_check(executor)
            return
        executor.send(E(type=E.LAUNCH, launch=E.Launch(task=task.info)))

    async def _start_executor(self, executor: RunningExecutor) -> None:
        agent = self.agent
        framework_id, info, sandbox = executor.framework_id, executor.info, executor.sandbox
        await asyncio.to_thread(sandbox.mkdir, parents=True, exist_ok=True)
        await asyncio.to_thread(_checkpoint, executor)
        env = {
            "ORBITER_AGENT_ENDPOINT": self.endpoint,
            "ORBITER_AGENT_ID": agent.agent_id,
            "ORBITER_FRAMEWORK_ID": framework_id,
            "ORBITER_EXECUTOR_ID": info.executor_id,
            "ORBITER_EXECUTOR_TOKEN": executor.token,
            "ORBITER_SANDBOX": str(sandbox),
            # Mesos's variables too, so executors written for Mesos (pymesos) run as they
            # are, on the agent's Mesos v1 executor API (orbiter/agent/mesos_executor.py).
            **mesos.environment(
                endpoint=mesos.agent_endpoint(agent.settings.host, agent.http_port),
                agent_id=agent.agent_id,
                framework_id=framework_id,
                executor_id=info.executor_id,
                sandbox=str(sandbox.resolve()),
                token=executor.token,
                recovery_timeout=RECOVERY_TIMEOUT,
                subscription_backoff_max=SUBSCRIPTION_BACKOFF_MAX,
                shutdown_grace_period=SHUTDOWN_GRACE,
            ),
        }
        as_task = pb.TaskInfo(task_id=info.executor_id, command=info.command)
        try:
            executor.container = await agent.containerizer.launch(  # type: ignore[call-arg]
                as_task, sandbox, env, key=executor_key(framework_id, info.executor_id)
            )
        except LaunchError as e:
            executor.ended = True
            self.running.pop((framework_id, info.executor_id), None)
            raise LaunchError(f"executor {info.executor_id} could not start: {e}") from None
        log.info("executor %s of framework %s started", info.executor_id, framework_id)
        executor.timer = asyncio.get_running_loop().call_later(
            self.registration_timeout, self._registration_timed_out, executor
        )
        asyncio.get_running_loop().create_task(self._watch(executor, executor.container))

    def adopt(
        self,
        framework_id: str,
        info: pb.ExecutorInfo,
        token: str,
        sandbox: Path,
        container: Container,
    ) -> RunningExecutor:
        """After an agent restart: an executor the keeper still runs, waiting to resubscribe."""
        executor = RunningExecutor(framework_id, info, token, sandbox, container, recovered=True)
        self.running[(framework_id, info.executor_id)] = executor
        executor.timer = asyncio.get_running_loop().call_later(
            self.registration_timeout, self._registration_timed_out, executor
        )
        asyncio.get_running_loop().create_task(self._watch(executor, container))
        return executor

    async def _watch(self, executor: RunningExecutor, container: Container) -> None:
        termination = await container.wait()
        self._ended(executor, termination)

    def _ended(self, executor: RunningExecutor, termination: Termination) -> None:
        executor.ended = True
        self._cancel_timer(executor)
        self._cancel_idle(executor)
        key = (executor.framework_id, executor.id)
        succeeded = self.running.get(key) is not executor  # a successor started meanwhile
        if not succeeded:
            del self.running[key]
        if executor.stream is not None:
            executor.stream.put_nowait(None)
        how = (
            f"executor exited with status {termination.exit_code}"
            if termination.exit_code is not None
            else f"executor ended: {termination.message}"
        )
        log.info("executor %s of framework %s: %s", executor.id, executor.framework_id, how)
        if not succeeded:  # else the successor runs on the resources the master holds for it
            self.agent.executor_exited(
                executor.framework_id, executor.id, how, termination.exit_code
            )
        for task in executor.tasks.values():
            if task.state not in TERMINAL_STATES:
                self.agent._update(
                    task, pb.TASK_FAILED, f"{how} before the task ended",
                    pb.REASON_EXECUTOR_TERMINATED,
                )  # fmt: skip

    def _registration_timed_out(self, executor: RunningExecutor) -> None:
        executor.timer = None
        if executor.stream is not None or executor.ended:
            return
        log.warning("executor %s did not subscribe in time; killing it", executor.id)
        for task in executor.tasks.values():
            if task.state not in TERMINAL_STATES:
                self.agent._update(
                    task,
                    pb.TASK_FAILED,
                    f"executor {executor.id} did not connect to the agent within "
                    f"{self.registration_timeout:g}s",
                    pb.REASON_EXECUTOR_REGISTRATION_TIMEOUT,
                )
        self._kill(executor, 0.0)

    def kill_task(self, task: AgentTask, grace: float) -> bool:
        """Ask the task's executor to kill it; False if no executor will (the agent ends it)."""
        executor = self.running.get((task.framework_id, task.info.executor.executor_id))
        if executor is None or executor.stream is None:
            if executor is not None:
                # Not handed over yet: it never will be.
                task_id = task.info.task_id
                executor.tasks.pop(task_id, None)
                executor.backlog = [
                    e for e in executor.backlog if e.launch.task.task_id != task_id
                ]
                self._idle_check(executor)
            return False
        executor.send(E(type=E.KILL, kill=E.Kill(task_id=task.info.task_id, grace_period=grace)))
        return True

    def acknowledged(self, task: AgentTask, uuid: bytes) -> None:
        executor = self.running.get((task.framework_id, task.info.executor.executor_id))
        if executor is not None:
            ack = E.Acknowledged(task_id=task.info.task_id, uuid=uuid)
            executor.send(E(type=E.ACKNOWLEDGED, acknowledged=ack))
            if task.state in TERMINAL_STATES:
                executor.tasks.pop(task.info.task_id, None)
                self._idle_check(executor)

    def message(self, framework_id: str, executor_id: str, data: bytes) -> None:
        executor = self.running.get((framework_id, executor_id))
        if executor is None or executor.stream is None:
            log.warning(
                "message for executor %s of framework %s dropped: it is not running",
                executor_id, framework_id,
            )  # fmt: skip
            return
        executor.send(E(type=E.MESSAGE, message=E.Message(data=data)))

    def _idle_check(self, executor: RunningExecutor) -> None:
        """No task left: shut the executor down after a grace, unless one comes."""
        if any(t.state not in TERMINAL_STATES for t in executor.tasks.values()):
            return
        if executor.idle is None and not executor.ended and not executor.shutting_down:
            executor.idle = asyncio.get_running_loop().call_later(
                self.idle_shutdown, self._shutdown, executor
            )

    def _cancel_idle(self, executor: RunningExecutor) -> None:
        if executor.idle is not None:
            executor.idle.cancel()
            executor.idle = None

    def _shutdown(self, executor: RunningExecutor) -> None:
        executor.idle = None
        executor.shutting_down = True  # a task that comes now starts a new executor
        log.info("executor %s has no task left; shutting it down", executor.id)
        executor.send(E(type=E.SHUTDOWN, shutdown=E.Shutdown(grace_period=SHUTDOWN_GRACE)))
        # It may end on its own; what is left after the grace is killed.
        asyncio.get_running_loop().call_later(SHUTDOWN_GRACE, self._kill, executor, 1.0)

    def _kill(self, executor: RunningExecutor, grace: float) -> None:
        if executor.container is not None:
            asyncio.get_running_loop().create_task(executor.container.kill(grace))

    def _cancel_timer(self, executor: RunningExecutor) -> None:
        if executor.timer is not None:
            executor.timer.cancel()
            executor.timer = None

    # ------------------------------------------------------------------ calls

    def caller(self, caller: executor_pb2.ExecutorCaller) -> RunningExecutor:
        return self.find(caller.framework_id, caller.executor_id, caller.token)

    def find(self, framework_id: str, executor_id: str, token: str | None) -> RunningExecutor:
        """The executor a call names, if the caller holds its token.

        token None: the caller proved nothing, which only the Mesos wire allows, and
        only while the agent's authentication is off (Mesos's executors without
        --authenticate_http_executors; pymesos sends no token).
        """
        executor = self.running.get((framework_id, executor_id))
        if executor is None or (
            token is not None and not secrets.compare_digest(executor.token, token)
        ):
            raise Refused(
                grpc.StatusCode.PERMISSION_DENIED,
                f"no executor {executor_id!r} of framework {framework_id!r} "
                + ("with this token " if token is not None else "")
                + "runs here",
            )
        return executor

    def subscribed(
        self, executor: RunningExecutor, request: executor_pb2.ExecutorSubscribe
    ) -> asyncio.Queue[executor_pb2.ExecutorEvent | None]:
        if executor.stream is not None:
            executor.stream.put_nowait(None)  # an older stream of the same executor
        self._cancel_timer(executor)
        stream: asyncio.Queue[executor_pb2.ExecutorEvent | None] = asyncio.Queue()
        executor.stream = stream
        agent = self.agent
        sub = E.Subscribed(executor_info=executor.info)
        sub.framework_info.CopyFrom(self.frameworks.get(executor.framework_id, pb.FrameworkInfo()))
        sub.agent_info.CopyFrom(agent.info())
        stream.put_nowait(E(type=E.SUBSCRIBED, subscribed=sub))
        for event in executor.backlog:
            stream.put_nowait(event)
        executor.backlog.clear()
        for status in request.unacknowledged:
            task = executor.tasks.get(status.task_id)
            if task is not None and not agent.updates.holds(task.framework_id, status.uuid):
                try:
                    self.update(executor, status)
                except Refused as e:
                    log.warning("executor %s resent a refused update: %s", executor.id, e)
        if executor.recovered:
            # Back after an agent restart: what it no longer runs has ended unseen.
            running = {t.task_id for t in request.tasks}
            for task in executor.tasks.values():
                if task.state not in TERMINAL_STATES and task.info.task_id not in running:
                    agent._update(
                        task,
                        pb.TASK_FAILED,
                        "the executor came back after the agent restarted without the task",
                        pb.REASON_EXECUTOR_TERMINATED,
                    )
            executor.recovered = False
        self._idle_check(executor)
        log.info("executor %s of framework %s subscribed", executor.id, executor.framework_id)
        return stream

    def update(self, executor: RunningExecutor, status: pb.TaskStatus) -> None:
        task = executor.tasks.get(status.task_id)
        if task is None:
            raise Refused(
                grpc.StatusCode.NOT_FOUND,
                f"task {status.task_id!r} was not given to executor {executor.id}",
            )
        if status.state not in KNOWN_STATES or status.state == pb.TASK_STATE_UNSPECIFIED:
            raise Refused(grpc.StatusCode.INVALID_ARGUMENT, "status.state is not a task state")
        if len(status.uuid) != 16:
            raise Refused(
                grpc.StatusCode.INVALID_ARGUMENT, "status.uuid must be 16 bytes chosen by you"
            )
        if task.state in TERMINAL_STATES:
            if self.agent.updates.holds(task.framework_id, status.uuid):
                return  # a resend of an update we already have
            raise Refused(
                grpc.StatusCode.FAILED_PRECONDITION,
                f"task {status.task_id} already ended ({pb.TaskState.Name(task.state)}); a task "
                "ends once",
            )
        self.agent.executor_status(task, status)
        if status.state in TERMINAL_STATES:
            self._idle_check(executor)

    def framework_message(self, executor: RunningExecutor, data: bytes) -> None:
        """Bytes from the executor for its scheduler (best effort)."""
        if len(data) > MAX_MESSAGE:
            raise Refused(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"a message of {len(data)} bytes is over the {MAX_MESSAGE} byte "
                "limit; send large data through a shared store and a reference here",
            )
        self.agent.framework_message(executor, data)


class Refused(Exception):
    """A call the agent will not take; `code` says why, for either wire."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _checkpoint(executor: RunningExecutor) -> None:
    """What a restarted agent needs to take the executor back: its info and token."""
    record = {"info": executor.info.SerializeToString().hex(), "token": executor.token}
    (executor.sandbox / ".orbiter-executor.json").write_text(json.dumps(record))


def read_checkpoint(sandbox: Path) -> tuple[pb.ExecutorInfo, str] | None:
    try:
        record = json.loads((sandbox / ".orbiter-executor.json").read_text())
        info = pb.ExecutorInfo()
        info.ParseFromString(bytes.fromhex(record["info"]))
        return info, str(record["token"])
    except (OSError, ValueError, KeyError):
        return None


class _Service(executor_pb2_grpc.ExecutorServicer):
    def __init__(self, executors: Executors) -> None:
        self.executors = executors

    async def _call(self, context: grpc.aio.ServicerContext, fn: Callable[[], None]) -> None:
        try:
            fn()
        except Refused as e:
            await context.abort(e.code, e.message)

    async def Subscribe(self, request, context):
        try:
            executor = self.executors.caller(request.caller)
            stream = self.executors.subscribed(executor, request)
        except Refused as e:
            await context.abort(e.code, e.message)
            return
        while True:
            event = await stream.get()
            if event is None:
                return
            yield event

    async def Update(self, request, context):
        def act() -> None:
            executor = self.executors.caller(request.caller)
            self.executors.update(executor, request.status)

        await self._call(context, act)
        return executor_pb2.ExecutorReply()

    async def Message(self, request, context):
        def act() -> None:
            executor = self.executors.caller(request.caller)
            self.executors.framework_message(executor, request.data)

        await self._call(context, act)
        return executor_pb2.ExecutorReply()
