"""The agent process: keeps one link to the master, runs tasks, reports status.

It dials the master (never the other way round), registers with its
resources and the tasks it runs, and then reads run/kill/ack messages while
a sender loop batches heartbeats and status updates. If the link drops it
reconnects with backoff and re-registers with the same id, which it keeps in
its work dir along with its HTTP port.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import pwd
import signal
import socket
import time
from collections import Counter, deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import grpc
import psutil

import orbiter
from orbiter.agent import checkpoint
from orbiter.agent.checks import CheckRunner, CheckSpec
from orbiter.agent.containerizer import is_docker_task
from orbiter.agent.containerizer.base import Container, Containerizer, LaunchError, Termination
from orbiter.agent.containerizer.kept import (
    Guard,
    KeeperClient,
    KeptContainer,
    KeptContainerizer,
    task_key,
)
from orbiter.agent.containerizer.null import NullContainerizer
from orbiter.agent.executors import Executors, RunningExecutor, executor_key, read_checkpoint
from orbiter.agent.host import detect_resources
from orbiter.agent.hostmetrics import HostCollector
from orbiter.agent.http_api import AgentHttp
from orbiter.agent.isolation.isolator import Isolator
from orbiter.agent.metrics import AgentMetrics
from orbiter.agent.status_updates import StatusUpdateManager
from orbiter.agent.volumes import VolumeStore
from orbiter.attributes import to_proto as attributes_to_proto
from orbiter.discovery import MasterLocator
from orbiter.looplag import LoopLag
from orbiter.proto import agent_pb2, agent_pb2_grpc, messages_pb2
from orbiter.resources import Resources
from orbiter.security import channels
from orbiter.security import settings as security_settings
from orbiter.security.settings import SecuritySettings
from orbiter.streams import raise_if_failed
from orbiter.taskstates import TERMINAL_STATES

if TYPE_CHECKING:  # the docker SDK is imported only by agents that run Docker
    from docker.models.containers import Container as DockerSdkContainer

    from orbiter.agent.containerizer.docker import DockerContainerizer

pb = messages_pb2
TS = pb.TaskState
log = logging.getLogger("orbiter.agent")

TERMINAL = TERMINAL_STATES
DEFAULT_KILL_GRACE = 3.0
SEND_BATCH_SECONDS = 0.005


class AgentRefused(Exception):
    """The master refused or removed this agent; restarting as is will not help."""


@dataclass
class AgentSettings:
    master: str = "127.0.0.1:5050"
    work_dir: Path = field(default_factory=lambda: Path(".orbiter/agent"))
    resources: Resources | None = None
    attributes: dict[str, str] = field(default_factory=dict)
    containerizer: str = "process"
    # Also run tasks whose container is DOCKER (if dockerd answers at start).
    docker: bool = False
    docker_host: str = ""  # default: DOCKER_HOST, else the standard socket
    host: str = "127.0.0.1"
    http_port: int = 0
    hostname: str = ""
    advertise_host: str = ""
    status_retry_min: float = 10.0
    # Disk usage of these paths (and the work dir) is exported for Satellite.
    watch_paths: list[str] = field(default_factory=lambda: ["/tmp"])
    checks: list[CheckSpec] = field(default_factory=list)
    # Isolation of process tasks (orbiter/agent/isolation): cgroups where available.
    isolation: bool = True
    task_user: str = "nobody"
    pids_max: int = 1024
    log_cap_bytes: int = 10 * 1024 * 1024
    disk_watch_interval: float = 5.0
    # TLS and authentication (None: the process's, set by the CLI from its flags).
    security: SecuritySettings | None = None


@dataclass(slots=True)
class AgentTask:
    framework_id: str
    info: pb.TaskInfo
    state: int = TS.TASK_STAGING
    container: Container | None = None
    sandbox: Path | None = None
    kill_reason: int = 0
    kill_requested: bool = False
    launched_at: float = 0.0


class Agent:
    def __init__(self, settings: AgentSettings) -> None:
        self.settings = settings
        self.security = settings.security or security_settings.current()
        # Process tasks are started and held by the task keeper, so they outlive us.
        self.keeper: KeeperClient | None = None
        self.isolator: Isolator | None = None
        self.containerizer: Containerizer
        if settings.containerizer == "null":
            self.containerizer = NullContainerizer()
        else:
            self.keeper = KeeperClient(settings.work_dir)
            self.isolator = Isolator(settings.isolation, settings.task_user, settings.pids_max)
            self.containerizer = KeptContainerizer(
                self.keeper,
                isolator=self.isolator,
                log_cap=settings.log_cap_bytes,
                disk_watch_interval=settings.disk_watch_interval,
            )
        self.docker: DockerContainerizer | None = None  # set by start() if dockerd answers
        self.executors = Executors(self)
        # Keyed by (framework id, task id): task ids are unique only within a framework.
        self.tasks: dict[tuple[str, str], AgentTask] = {}
        self.updates = StatusUpdateManager(retry_min=settings.status_retry_min)
        self.agent_id = ""
        self.resources = settings.resources or Resources.empty()
        self.metrics = AgentMetrics(self)
        self.lag = LoopLag("agent", self.metrics.registry)
        self.metrics.registry.register(
            HostCollector(paths=[str(settings.work_dir), *settings.watch_paths])
        )
        self.checks = CheckRunner(settings.checks, cwd=settings.work_dir)
        self.metrics.registry.register(self.checks.collector())
        self.registered = asyncio.Event()
        self.stopped = asyncio.Event()
        self.refused: str = ""
        # Executors' framework messages for the master (best effort: dropped when away).
        self._messages: deque[agent_pb2.AgentMessage] = deque(maxlen=1000)
        self._wake = asyncio.Event()
        self._run_task: asyncio.Task[None] | None = None
        self._http = AgentHttp(self)
        self.http_address = ""
        self.master_info = pb.MasterInfo()
        # The leading master: settings.master itself, or whoever ZooKeeper names.
        self.locator = MasterLocator(settings.master)
        self.started = time.time()
        self.counts: Counter[str] = Counter()
        # One thread, so checkpoint writes and removals land in the order they were asked.
        self._disk = ThreadPoolExecutor(max_workers=1, thread_name_prefix="agent-checkpoint")
        self.volumes = VolumeStore(settings.work_dir)

    def _on_disk(self, fn: Callable[..., object], *args: object) -> asyncio.Future[object]:
        """Run a checkpoint write off the loop, in order with every other one."""
        return asyncio.get_running_loop().run_in_executor(self._disk, fn, *args)

    async def written(self) -> None:
        """Every checkpoint write asked for so far is on disk."""
        await self._on_disk(lambda: None)

    @property
    def http_port(self) -> int:
        """The port the agent's HTTP server listens on."""
        return self._port

    def _forget_kept(self, key: str) -> None:
        """Let the keeper drop a task's exit status, after every checkpoint write so far."""
        keeper = self.keeper
        assert keeper is not None
        written = self._on_disk(lambda: None)

        async def forget() -> None:
            await written
            await keeper.forget(key)

        asyncio.get_running_loop().create_task(forget())

    # ------------------------------------------------------------------ lifecycle

    @property
    def _meta_path(self) -> Path:
        return self.settings.work_dir / "agent.json"

    def _load_meta(self) -> dict[str, object]:
        try:
            return json.loads(self._meta_path.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as e:
            raise AgentRefused(
                f"{self._meta_path} is unreadable ({e}); move it away to register as a new agent"
            ) from None

    def _save_meta(self) -> None:
        tmp = self._meta_path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"agent_id": self.agent_id, "http_port": self._port}))
        os.replace(tmp, self._meta_path)

    async def start(self) -> None:
        s = self.settings
        s.work_dir.mkdir(parents=True, exist_ok=True)
        (s.work_dir / "sandboxes").mkdir(exist_ok=True)
        meta = self._load_meta()
        self.agent_id = str(meta.get("agent_id", ""))
        if self.isolator is not None:
            self.isolator.agent_id = self.agent_id
            self.isolator.announce()
        if s.resources is None:
            self.resources = detect_resources(s.work_dir)
        port = s.http_port or int(meta.get("http_port", 0) or 0)
        try:
            self._port = await self._http.start(s.host, port)
        except OSError:
            if s.http_port:
                raise
            self._port = await self._http.start(s.host, 0)  # the old port is taken now
        advertise = s.advertise_host or (
            s.host if s.host not in ("0.0.0.0", "::") else socket.gethostname()
        )
        self.http_address = f"{advertise}:{self._port}"
        self._save_meta()
        kept = await self.keeper.start() if self.keeper is not None else []
        if self.keeper is not None:
            await self.executors.start()
        containers: dict[tuple[str, str], DockerSdkContainer] = {}
        if s.docker:
            await self._start_docker()
            if self.docker is not None:
                containers = await self.docker.find(self.agent_id)
        self._recover({t.key: t for t in kept}, containers)
        if self.isolator is not None:
            # Cgroups of tasks that ended while we were away (or were never started).
            running = {c.key for c in self._kept_containers()}
            removed = await asyncio.to_thread(self.isolator.remove_leftovers, running)
            if removed:
                log.info("removed %d leftover task cgroup(s)", len(removed))
        await self.locator.start()
        await self.checks.start()
        self.lag.start()  # last: a start that fails above leaves no timer behind
        self._run_task = asyncio.create_task(self._run(), name="agent-link")

    async def _start_docker(self) -> None:
        from orbiter.agent.containerizer.docker import DockerContainerizer, DockerUnavailable

        try:
            self.docker = await DockerContainerizer.connect(
                self.settings.docker_host,
                self.settings.log_cap_bytes,
                self.settings.pids_max,
                self._docker_user(),
            )
        except DockerUnavailable as e:
            log.warning("docker containerizer off: %s; DOCKER tasks will fail to launch", e)
            return
        log.info(
            "docker containerizer on: dockerd %s at %s", self.docker.version, self.docker.base_url
        )

    def _docker_user(self) -> tuple[int, int] | None:
        """Docker tasks that name no user run as the agent's task user, as process tasks do
        (a root agent with isolation on); else as their image's user."""
        isolator = self.isolator
        if isolator is None or not isolator.plan.switch_users:
            return None
        try:
            entry = pwd.getpwnam(isolator.task_user)
        except KeyError:  # the isolator refuses such a user at start; belt and braces
            return None
        return entry.pw_uid, entry.pw_gid

    @property
    def containerizers(self) -> list[str]:
        """What this agent runs tasks with (docker only if dockerd answered at start)."""
        return [self.settings.containerizer] + (["docker"] if self.docker is not None else [])

    def _recover(
        self,
        kept: dict[str, agent_pb2.KeptTask],
        containers: dict[tuple[str, str], DockerSdkContainer] | None = None,
    ) -> None:
        """Take back the tasks a previous run of this agent left in its sandboxes.

        A task that ended but whose end was not acknowledged is reported again
        (same uuid). A task the keeper still holds is taken back: running, or
        with the real exit status it ended with while the agent was away. Only
        a task the keeper does not know (it died too, or never started it) is
        killed and reported failed, as Mesos does when it cannot recover an
        executor.
        """
        assert self.keeper is not None or not kept
        containers = dict(containers or {})
        for sandbox, record in checkpoint.scan(self.settings.work_dir / "sandboxes"):
            task = AgentTask(record.framework_id, record.task, sandbox=sandbox)
            self.tasks[(record.framework_id, record.task.task_id)] = task
            key = task_key(record.framework_id, record.task.task_id)
            held = kept.pop(key, None)
            if is_docker_task(record.task):
                found = containers.pop((record.framework_id, record.task.task_id), None)
                self._recover_docker(task, record, found)
                continue
            if record.HasField("terminal"):
                task.state = record.terminal.state
                self.updates.add(record.framework_id, record.terminal)
                if held is not None:
                    self._forget_kept(key)
                continue
            if record.task.HasField("executor"):
                executor = self._recovered_executor(record.framework_id, record.task, kept)
                if executor is not None:
                    task.state = TS.TASK_RUNNING  # the executor says more when it is back
                    executor.tasks[record.task.task_id] = task
                    continue
                self._update(
                    task,
                    TS.TASK_FAILED,
                    "the agent restarted and the task's executor was no longer running",
                    pb.REASON_EXECUTOR_TERMINATED,
                )
                continue
            if held is not None and self.keeper is not None:
                task.state = TS.TASK_RUNNING  # reported before the restart
                guard = self._guard(key, record.task, sandbox)
                task.container = self.keeper.adopt(held, record.task.task_id, guard)
                if held.HasField("returncode"):
                    task.container.exited(held.returncode)
                asyncio.get_running_loop().create_task(self._follow(task, task.container))
                continue
            _kill_leftover(record.pid, sandbox)
            self._update(
                task,
                TS.TASK_FAILED,
                "the agent restarted and its task keeper did not hold the task; it was killed",
                pb.REASON_AGENT_RESTARTED,
            )
        for key in list(kept):
            if key.startswith("executor:") and self.keeper is not None:
                # An executor with no task left here: taken back, then shut down idle.
                framework_id, _, executor_id = key.removeprefix("executor:").partition("/")
                info = pb.TaskInfo(executor=pb.ExecutorInfo(executor_id=executor_id))
                executor = self._recovered_executor(framework_id, info, kept)
                if executor is not None:
                    self.executors._idle_check(executor)
        for key in kept:  # held for a task whose sandbox is gone: nobody can report it
            log.warning("task keeper holds %s, which has no sandbox here; ending it", key)
            assert self.keeper is not None
            asyncio.get_running_loop().create_task(self.keeper.signal(key, signal.SIGKILL))
            self._forget_kept(key)
        for (framework_id, task_id), container in containers.items():
            # Labelled ours, but no task here owns it: the master cannot know it either.
            log.warning(
                "container %s (task %s of framework %s) has no task here; removing it",
                container.short_id, task_id, framework_id,
            )  # fmt: skip
            assert self.docker is not None
            asyncio.get_running_loop().create_task(self.docker.remove(container))
        if self.tasks:
            log.info("recovered %d task(s) from %s", len(self.tasks), self.settings.work_dir)

    def _recover_docker(
        self,
        task: AgentTask,
        record: agent_pb2.TaskCheckpoint,
        found: DockerSdkContainer | None,
    ) -> None:
        """A DOCKER task after a restart: its container, found by label, is followed again
        (running, or with the exit status it ended with while the agent was away)."""
        if record.HasField("terminal"):
            task.state = record.terminal.state
            self.updates.add(record.framework_id, record.terminal)
            if found is not None and self.docker is not None:
                asyncio.get_running_loop().create_task(self.docker.remove(found))
            return
        if found is not None and found.status == "created" and self.docker is not None:
            # The agent died between creating and starting it: the command never ran.
            asyncio.get_running_loop().create_task(self.docker.remove(found))
            found = None
        if found is None or self.docker is None:
            why = (
                "it runs no docker containerizer now (see its log)"
                if self.docker is None
                else "the task's container was gone"
            )
            self._update(
                task,
                TS.TASK_FAILED,
                f"the agent restarted and {why}; the task's end cannot be known",
                pb.REASON_AGENT_RESTARTED,
            )
            return
        assert task.sandbox is not None
        task.state = TS.TASK_RUNNING  # reported before the restart
        task.container = self.docker.adopt(record.task, found, task.sandbox)
        asyncio.get_running_loop().create_task(self._follow(task, task.container))

    def _recovered_executor(
        self, framework_id: str, task: pb.TaskInfo, kept: dict[str, agent_pb2.KeptTask]
    ) -> RunningExecutor | None:
        """The task's executor after a restart: taken back from the keeper, once."""
        executor_id = task.executor.executor_id
        running = self.executors.running.get((framework_id, executor_id))
        if running is not None:
            return running
        held = kept.pop(executor_key(framework_id, executor_id), None)
        sandbox = self.settings.work_dir / "executors" / framework_id / executor_id
        record = read_checkpoint(sandbox)
        if held is None or record is None or self.keeper is None or held.HasField("returncode"):
            return None
        info, token = record
        guard = self._guard(executor_key(framework_id, executor_id), pb.TaskInfo(), None)
        container = self.keeper.adopt(held, executor_id, guard)
        return self.executors.adopt(framework_id, info, token, sandbox, container)

    def _guard(self, key: str, task: pb.TaskInfo, sandbox: Path | None) -> Guard | None:
        if isinstance(self.containerizer, KeptContainerizer):
            return self.containerizer.guard(key, task, sandbox)
        return None

    def _kept_containers(self) -> list[KeptContainer]:
        containers = [t.container for t in self.tasks.values()]
        containers += [e.container for e in self.executors.running.values()]
        return [c for c in containers if isinstance(c, KeptContainer) and not c._done.done()]

    async def stop(self, kill_tasks: bool = True) -> None:
        if self._run_task is not None:
            self._run_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._run_task
        await self.locator.close()
        if kill_tasks:
            await asyncio.gather(
                *(t.container.kill(0.5) for t in self.tasks.values() if t.container is not None),
                return_exceptions=True,
            )
        if kill_tasks:
            await asyncio.gather(
                *(e.container.kill(0.5) for e in self.executors.running.values() if e.container),
                return_exceptions=True,
            )
        await self.executors.stop()
        await self.checks.stop()
        await asyncio.to_thread(self._disk.shutdown, wait=True)
        if self.keeper is not None:
            # Killing its tasks, we are done with the keeper; otherwise it keeps them.
            await self.keeper.close(retire=kill_tasks)
        if self.isolator is not None:
            await asyncio.to_thread(self.isolator.tidy)
        await self._http.stop()
        await self.lag.stop()
        self.stopped.set()

    # ------------------------------------------------------------------ the link

    def info(self) -> pb.AgentInfo:
        info = pb.AgentInfo(
            id=self.agent_id,
            hostname=self.settings.hostname or socket.gethostname(),
            http_address=self.http_address,
            version=orbiter.__version__,
        )
        info.resources.extend(self.resources.to_proto())
        info.attributes.extend(attributes_to_proto(self.settings.attributes))
        return info

    def _register_message(self, volumes: list[pb.Volume]) -> agent_pb2.AgentMessage:
        msg = agent_pb2.AgentMessage()
        msg.register.volumes.extend(volumes)
        msg.register.info.CopyFrom(self.info())
        for task in self.tasks.values():
            msg.register.tasks.add(framework_id=task.framework_id, task=task.info, state=task.state)
        for executor in self.executors.running.values():
            msg.register.executors.add(framework_id=executor.framework_id, executor=executor.info)
        return msg

    async def _run(self) -> None:
        backoff = 0.2
        while True:
            try:
                await self._follow_leader()
                backoff = 0.2
            except AgentRefused as e:
                self.refused = str(e)
                log.error("master refused this agent: %s", e)
                self.stopped.set()
                return
            except grpc.aio.AioRpcError as e:
                if e.code() in (
                    grpc.StatusCode.FAILED_PRECONDITION,
                    grpc.StatusCode.INVALID_ARGUMENT,
                    grpc.StatusCode.PERMISSION_DENIED,
                    grpc.StatusCode.UNAUTHENTICATED,
                ):
                    self.refused = e.details() or str(e.code())
                    log.error("master refused this agent: %s", self.refused)
                    self.stopped.set()
                    return
                log.warning("link to master %s lost: %s", self.locator.current(), e.details())
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("link to master failed")
            if self.registered.is_set():
                backoff = 0.2  # it was a working link: try again soon, not after minutes
            self.registered.clear()
            self.metrics.registered.set(0)
            await self.locator.pause(backoff)
            backoff = min(backoff * 2, 5.0)

    async def _follow_leader(self) -> None:
        """One session with the current leader, cut short when ZooKeeper names another."""
        master = await self.locator.address()
        changed = self.locator.changed
        if self.locator.current() != master:
            return  # replaced while we looked
        session = asyncio.create_task(self._session(master))
        watch = asyncio.create_task(changed.wait())
        try:
            await asyncio.wait({session, watch}, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            session.cancel()
            raise
        finally:
            watch.cancel()
        if not session.done():
            log.info("leading master changed; reconnecting to %s", self.locator.current())
            session.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await session
            return
        session.result()

    async def _session(self, master: str) -> None:
        async with channels.aio_channel(
            master,
            self.security,
            options=[
                ("grpc.max_receive_message_length", 64 * 1024 * 1024),
                ("grpc.max_send_message_length", 64 * 1024 * 1024),
            ],
        ) as channel:
            stub = agent_pb2_grpc.AgentLinkStub(channel)
            call = stub.Connect()
            # Volumes held (a small file and a directory listing): in order with checkpoints.
            volumes = await self._on_disk(self.volumes.held)
            await call.write(self._register_message(volumes))  # type: ignore[arg-type]
            first = await call.read()
            if first is grpc.aio.EOF:
                await raise_if_failed(call)  # the status the master aborted with
                raise ConnectionError("master closed the link before answering Register")
            if first.HasField("shutdown"):
                raise AgentRefused(first.shutdown.message)
            if not first.HasField("registered"):
                raise ConnectionError(f"expected Registered, got {first.WhichOneof('message')}")
            reg = first.registered
            if reg.agent_id != self.agent_id:
                self.agent_id = reg.agent_id
                self._save_meta()
            if self.isolator is not None:
                self.isolator.agent_id = self.agent_id
            self.master_info.CopyFrom(reg.master_info)
            log.info("registered with master %s as agent %s", master, self.agent_id)
            self.registered.set()
            self.metrics.registered.set(1)
            self.updates.resend_all()
            self._wake.set()
            sender = asyncio.create_task(self._send_loop(call, reg.heartbeat_interval_seconds))
            try:
                while True:
                    msg = await call.read()
                    if msg is grpc.aio.EOF:
                        break
                    self._handle(msg)
            finally:
                sender.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await sender
            await raise_if_failed(call)

    async def _send_loop(self, call: grpc.aio.StreamStreamCall, heartbeat: float) -> None:
        last_sent = time.monotonic()
        heartbeat_msg = agent_pb2.AgentMessage(heartbeat=agent_pb2.AgentMessage.Heartbeat())
        while True:
            now = time.time()
            retry = self.updates.next_retry()
            timeout = heartbeat - (time.monotonic() - last_sent)
            if retry is not None:
                timeout = min(timeout, max(retry - now, 0.0))
            if timeout > 0:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(timeout):  # not wait_for: see server.py
                        await self._wake.wait()
                # A burst of task events lands together: one message for all of them.
                await asyncio.sleep(SEND_BATCH_SECONDS)
            self._wake.clear()
            while self._messages:
                await call.write(self._messages.popleft())
                last_sent = time.monotonic()
            due = self.updates.due(time.time())
            if due:
                msg = agent_pb2.AgentMessage()
                msg.status_updates.updates.extend(due)
                await call.write(msg)
                last_sent = time.monotonic()
            elif time.monotonic() - last_sent >= heartbeat:
                await call.write(heartbeat_msg)
                last_sent = time.monotonic()

    def _handle(self, msg: agent_pb2.MasterMessage) -> None:
        kind = msg.WhichOneof("message")
        if kind == "run_tasks":
            run = msg.run_tasks
            known = self.executors.frameworks.get(run.framework_id)
            self.executors.frameworks[run.framework_id] = run.framework
            # Its principal owns the sandboxes (/files ACLs): written when first seen
            # by this run of the agent or changed, not on every launch.
            if run.framework.id and known != run.framework:
                self._on_disk(checkpoint.write_framework, self.settings.work_dir, run.framework)
            for info in run.tasks:
                self._launch(run.framework_id, info)
        elif kind == "kill_tasks":
            for kill in msg.kill_tasks.kills:
                self._kill(kill)
        elif kind == "status_acks":
            for ack in msg.status_acks.acks:
                key = (ack.framework_id, ack.task_id)
                acked = self.updates.acknowledge(ack.framework_id, ack.task_id, ack.uuid)
                owner = self.tasks.get(key)
                if acked is not None and owner is not None and owner.info.HasField("executor"):
                    self.executors.acknowledged(owner, ack.uuid)
                if acked is not None and acked.state in TERMINAL:
                    task = self.tasks.get(key)
                    if (
                        task is not None
                        and task.state in TERMINAL
                        and not self.updates.unacknowledged(*key)
                    ):
                        del self.tasks[key]
                        if task.sandbox is not None:
                            self._on_disk(checkpoint.remove, task.sandbox)
            self._wake.set()
        elif kind == "framework_message":
            m = msg.framework_message
            self.executors.message(m.framework_id, m.executor_id, m.data)
        elif kind == "resend_updates":
            self.updates.resend_framework(msg.resend_updates.framework_id)
            self._wake.set()
        elif kind == "volumes":
            in_use = frozenset(
                v.persistence_id
                for t in self.tasks.values()
                if t.state not in TERMINAL
                for v in t.info.volumes
            )
            self._on_disk(self.volumes.update, list(msg.volumes.volumes), in_use)
        elif kind == "shutdown":
            raise AgentRefused(msg.shutdown.message)

    # ------------------------------------------------------------------ tasks

    def _update(
        self,
        task: AgentTask,
        state: int,
        message: str = "",
        reason: int = 0,
        exit_code: int | None = None,
    ) -> None:
        task.state = state
        status = pb.TaskStatus(
            task_id=task.info.task_id,
            state=state,
            message=message,
            reason=reason,
            source=pb.SOURCE_AGENT if state != TS.TASK_RUNNING else pb.SOURCE_EXECUTOR,
            agent_id=self.agent_id,
            timestamp=time.time(),
        )
        if exit_code is not None:
            status.exit_code = exit_code
        self._record(task, status)

    def executor_status(self, task: AgentTask, status: pb.TaskStatus) -> None:
        """An executor's update for its task: reliable from here on, like the agent's own."""
        update = pb.TaskStatus()
        update.CopyFrom(status)
        update.agent_id = self.agent_id
        update.source = pb.SOURCE_EXECUTOR
        update.timestamp = update.timestamp or time.time()
        task.state = update.state
        self._record(task, update)

    def framework_message(self, executor: RunningExecutor, data: bytes) -> None:
        if not self.registered.is_set():
            log.warning("message from executor %s dropped: no master", executor.id)
            return
        msg = agent_pb2.AgentMessage()
        msg.framework_message.framework_id = executor.framework_id
        msg.framework_message.executor_id = executor.id
        msg.framework_message.data = data
        self._messages.append(msg)
        self._wake.set()

    def executor_exited(
        self, framework_id: str, executor_id: str, how: str, status: int | None
    ) -> None:
        """Tell the master an executor's resources are free (if the link is down, the
        next registration, which lists the executors still running, says so)."""
        if not self.registered.is_set():
            return
        msg = agent_pb2.AgentMessage()
        msg.executor_exited.framework_id = framework_id
        msg.executor_exited.executor_id = executor_id
        msg.executor_exited.message = how
        if status is not None:
            msg.executor_exited.status = status
        self._messages.append(msg)
        self._wake.set()

    def _record(self, task: AgentTask, status: pb.TaskStatus) -> None:
        state = status.state
        self.updates.add(task.framework_id, status)
        if state in TERMINAL and task.sandbox is not None:
            self._on_disk(
                checkpoint.write, task.sandbox, task.framework_id, task.info, None, status
            )
            if (
                self.keeper is not None
                and task.container is not None
                and not is_docker_task(task.info)
            ):
                # Once the end is on disk, the keeper need not hold it any more.
                self._forget_kept(task_key(task.framework_id, task.info.task_id))
        self.counts[pb.TaskState.Name(state)] += 1
        self.metrics.count_transition(state)
        self._wake.set()

    def _launch(self, framework_id: str, info: pb.TaskInfo) -> None:
        if (framework_id, info.task_id) in self.tasks:
            log.warning("task %s is already on this agent; launch ignored", info.task_id)
            return
        task = AgentTask(framework_id, info, launched_at=time.time())
        self.tasks[(framework_id, info.task_id)] = task
        self.metrics.launches.inc()
        asyncio.get_running_loop().create_task(self._start(task))

    def sandbox_of(self, framework_id: str, task_id: str) -> Path:
        return self.settings.work_dir / "sandboxes" / framework_id / task_id

    async def _start(self, task: AgentTask) -> None:
        tid = task.info.task_id
        docker = is_docker_task(task.info) and self.docker is not None
        null = self.settings.containerizer == "null" and not docker
        sandbox = None if null else self.sandbox_of(task.framework_id, tid)
        env = {
            "ORBITER_TASK_ID": tid,
            "ORBITER_FRAMEWORK_ID": task.framework_id,
            "ORBITER_AGENT_ID": self.agent_id,
            "MESOS_TASK_ID": tid,
        }
        try:
            if sandbox is not None:
                await asyncio.to_thread(sandbox.mkdir, parents=True, exist_ok=True)
                # Known before it runs, so a restarted agent finds it even if we die mid-launch.
                await asyncio.get_running_loop().run_in_executor(
                    self._disk, checkpoint.write, sandbox, task.framework_id, task.info, None
                )
                env["ORBITER_SANDBOX"] = env["MESOS_SANDBOX"] = str(sandbox)
            task.sandbox = sandbox
            if task.info.volumes:
                if sandbox is None:
                    raise LaunchError("this agent runs the null containerizer: it has no volumes")
                # After the master's volume list (sent first) is on disk.
                await self._on_disk(lambda: None)
            if task.info.HasField("executor"):
                if self.keeper is None:
                    raise LaunchError(
                        "this agent runs the null containerizer: it runs no executors"
                    )
                await self.executors.launch(task)
                return  # the executor reports the task's states
            containerizer: Containerizer = self.containerizer
            if docker:
                assert self.docker is not None
                containerizer = self.docker
            container = await containerizer.launch(task.info, sandbox or Path("/"), env)
        except (LaunchError, OSError) as e:
            self.metrics.launch_failures.inc()
            self._update(
                task, TS.TASK_FAILED, f"launch failed: {e}", pb.REASON_CONTAINER_LAUNCH_FAILED
            )
            executor_id = task.info.executor.executor_id
            if executor_id and (task.framework_id, executor_id) not in self.executors.running:
                # The master charged an executor that never ran: free it.
                self.executor_exited(task.framework_id, executor_id, f"launch failed: {e}", None)
            return
        task.container = container
        if sandbox is not None:
            self._on_disk(checkpoint.write, sandbox, task.framework_id, task.info, container.pid)
        if task.kill_requested:
            await container.kill(0)
        else:
            self._update(task, TS.TASK_RUNNING)
        await self._follow(task, container)

    async def _follow(self, task: AgentTask, container: Container) -> None:
        termination = await container.wait()
        self._terminated(task, termination)

    def _terminated(self, task: AgentTask, t: Termination) -> None:
        reason, message = t.reason, t.message
        if t.state == TS.TASK_KILLED and task.kill_reason:
            reason = task.kill_reason
            if reason == pb.REASON_AGENT_DRAINING:
                message = f"{message} (the agent is draining)"
        self._update(task, t.state, message, reason, t.exit_code)

    def _kill(self, kill: agent_pb2.MasterMessage.KillTask) -> None:
        task = self.tasks.get((kill.framework_id, kill.task_id))
        if task is None:
            status = pb.TaskStatus(
                task_id=kill.task_id,
                state=TS.TASK_LOST,
                source=pb.SOURCE_AGENT,
                reason=pb.REASON_TASK_UNKNOWN,
                agent_id=self.agent_id,
                timestamp=time.time(),
                message="the agent has no such task",
            )
            self.updates.add(kill.framework_id, status)
            self._wake.set()
            return
        if task.state in TERMINAL:
            return
        task.kill_reason = kill.reason or pb.REASON_TASK_KILLED
        task.kill_requested = True
        if kill.HasField("grace_period"):
            grace = kill.grace_period  # 0 means now
        else:
            grace = task.info.kill_grace_period or DEFAULT_KILL_GRACE
        if task.info.HasField("executor"):
            if not self.executors.kill_task(task, grace):
                self._update(
                    task, TS.TASK_KILLED, "killed before its executor took it", task.kill_reason
                )
            return
        if task.container is not None:
            if task.state == TS.TASK_RUNNING:
                self._update(task, TS.TASK_KILLING, "kill requested")
            asyncio.get_running_loop().create_task(task.container.kill(grace))

    # ------------------------------------------------------------------ views

    def used(self) -> Resources:
        total = Resources.empty()
        for task in self.tasks.values():
            if task.state not in TERMINAL:
                total = total + Resources.from_proto(task.info.resources)
        return total

    def state_counts(self) -> Counter[str]:
        return Counter(pb.TaskState.Name(t.state) for t in self.tasks.values())


def _kill_leftover(pid: int, sandbox: Path) -> None:
    """Kill the process group of a task the previous agent run started, if it is still ours.

    Without a pid (the agent died between checkpointing and starting the task) the
    task's processes are found by their working directory, the sandbox.
    """
    home = sandbox.resolve()
    if pid > 0:
        candidates = [pid]
    else:
        candidates = []
        for proc in psutil.process_iter(["cwd"]):
            with contextlib.suppress(psutil.Error, TypeError):
                if proc.info["cwd"] and Path(proc.info["cwd"]) == home:
                    candidates.append(proc.pid)
    for candidate in candidates:
        try:
            proc = psutil.Process(candidate)
            if Path(proc.cwd()) != home:
                continue  # the pid was reused by something else
            os.killpg(os.getpgid(candidate), signal.SIGKILL)
        except (psutil.Error, ProcessLookupError, PermissionError):
            pass
