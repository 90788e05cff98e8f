"""Process tasks started and held by the agent's task keeper, so they outlive the agent.

The containerizer builds the same command, environment and user as the plain
process containerizer, then asks the keeper (orbiter/agent/keeper.py) to
start it. `KeeperClient` is the agent's one connection to its keeper: it
starts the keeper if none is running, matches replies to requests, and turns
the keeper's "exited" events into each container's `Termination`. A restarted
agent gets the same keeper back and, from `KeeperClient.start()`, every task
it holds: running ones become containers again, ended ones carry their real
exit status.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from orbiter.agent import volumes
from orbiter.agent.isolation import disk
from orbiter.agent.isolation.cgroups import TaskCgroup
from orbiter.agent.isolation.isolator import Isolator
from orbiter.agent.isolation.policy import Limits, disk_message, memory_message
from orbiter.agent.keeper import frame, read_message
from orbiter.proto import agent_pb2
from orbiter.proto import messages_pb2 as pb

from .base import GracefulKill, LaunchError, Termination
from .process import (
    command_argv,
    inherited_environment,
    refuse_unsupported_container,
    resolve_user,
    task_environment,
)

log = logging.getLogger(__name__)

SOCKET = "keeper.sock"
START_TIMEOUT = 10.0
DISK_WATCH_INTERVAL = 5.0
LOG_CAP = 10 * 1024 * 1024
MAX_SOCKET_PATH = 100  # sun_path holds 108 bytes


class KeeperGone(ConnectionError):
    """The keeper process died or closed the connection."""


def task_key(framework_id: str, task_id: str) -> str:
    return f"{framework_id}/{task_id}"


class KeeperClient:
    """The agent's connection to its task keeper (started here if none runs)."""

    def __init__(self, work_dir: Path) -> None:
        self.work_dir = work_dir
        self.socket = work_dir.resolve() / SOCKET  # absolute: it names the keeper in `ps`
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[agent_pb2.KeeperEvent.Reply]] = {}
        self._containers: dict[str, KeptContainer] = {}
        self._exits: dict[str, int] = {}  # ended before a container asked
        self._listener: asyncio.Task[None] | None = None
        self.spawned = False

    async def start(self) -> list[agent_pb2.KeptTask]:
        """Connect (starting a keeper if none answers); what the keeper holds."""
        if len(str(self.socket)) > MAX_SOCKET_PATH:
            raise OSError(
                f"the work dir {self.work_dir} is too long a path for the task keeper's "
                f"socket ({len(str(self.socket))} > {MAX_SOCKET_PATH} characters); "
                "use a shorter --work-dir"
            )
        try:
            await self._connect()
        except (FileNotFoundError, ConnectionRefusedError):
            await self._spawn()
        reply = await self.request(agent_pb2.KeeperRequest(hello=agent_pb2.KeeperRequest.Hello()))
        return list(reply.tasks)

    async def _connect(self) -> None:
        self._reader, self._writer = await asyncio.open_unix_connection(str(self.socket))
        self._listener = asyncio.create_task(self._listen(self._reader), name="keeper-events")

    async def _spawn(self) -> None:
        log_path = self.work_dir / "keeper.log"
        with open(log_path, "ab") as out:
            # Its own session: the agent's death, Ctrl-C or process group kill are not its.
            subprocess.Popen(
                # -P: the installed orbiter, never an `orbiter/` in the current directory.
                [sys.executable, "-P", "-m", "orbiter.agent.keeper", str(self.socket)],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=out,
                start_new_session=True,
                close_fds=True,
            )
        self.spawned = True
        loop = asyncio.get_running_loop()
        deadline = loop.time() + START_TIMEOUT
        while True:
            try:
                await self._connect()
                return
            except (FileNotFoundError, ConnectionRefusedError):
                if loop.time() > deadline:
                    raise OSError(
                        f"the task keeper did not start within {START_TIMEOUT:g}s; see {log_path}"
                    ) from None
                await asyncio.sleep(0.02)

    async def _listen(self, reader: asyncio.StreamReader) -> None:
        try:
            while True:
                event = await read_message(reader, agent_pb2.KeeperEvent)
                if event is None:
                    break
                if event.HasField("reply"):  # type: ignore[attr-defined]
                    future = self._pending.pop(event.reply.id, None)  # type: ignore[attr-defined]
                    if future is not None and not future.done():
                        future.set_result(event.reply)  # type: ignore[attr-defined]
                else:
                    self._on_exit(event.exited.task)  # type: ignore[attr-defined]
        except (ConnectionError, ValueError) as e:
            log.error("task keeper connection failed: %s", e)
        self._lost()

    def _lost(self) -> None:
        """The keeper is gone: its tasks' ends can no longer be known."""
        for future in self._pending.values():
            if not future.done():
                future.set_exception(KeeperGone("the task keeper went away"))
        self._pending.clear()
        for container in list(self._containers.values()):
            container.lost()
        self._containers.clear()
        self._writer = None

    def _on_exit(self, task: agent_pb2.KeptTask) -> None:
        container = self._containers.pop(task.key, None)
        if container is None:
            self._exits[task.key] = task.returncode
        else:
            container.exited(task.returncode)

    async def request(self, request: agent_pb2.KeeperRequest) -> agent_pb2.KeeperEvent.Reply:
        if self._writer is None:
            raise KeeperGone("not connected to the task keeper")
        request.id = next(self._ids)
        future: asyncio.Future[agent_pb2.KeeperEvent.Reply] = (
            asyncio.get_running_loop().create_future()
        )
        self._pending[request.id] = future
        self._writer.write(frame(request))
        return await future

    def adopt(
        self, task: agent_pb2.KeptTask, task_id: str, guard: Guard | None = None
    ) -> KeptContainer:
        """A container for a task the keeper still runs (after an agent restart)."""
        container = KeptContainer(task_id, task.key, task.pid, self, guard)
        self._watch(container)
        return container

    def _watch(self, container: KeptContainer) -> None:
        if container.key in self._exits:
            container.exited(self._exits.pop(container.key))
        else:
            self._containers[container.key] = container

    async def forget(self, key: str) -> None:
        with contextlib.suppress(KeeperGone):
            await self.request(
                agent_pb2.KeeperRequest(forget=agent_pb2.KeeperRequest.Forget(key=key))
            )

    async def signal(self, key: str, signum: int) -> None:
        with contextlib.suppress(KeeperGone):
            await self.request(
                agent_pb2.KeeperRequest(
                    signal=agent_pb2.KeeperRequest.Signal(key=key, signal=signum)
                )
            )

    async def close(self, retire: bool) -> None:
        """Disconnect; with `retire` the keeper exits once it holds no task."""
        if retire:
            with contextlib.suppress(KeeperGone, ConnectionError):
                await self.request(agent_pb2.KeeperRequest(retire=agent_pb2.KeeperRequest.Retire()))
        if self._writer is not None:
            self._writer.close()
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener


class Guard:
    """What holds one task to its limits from the agent's side: its cgroup (whose OOM
    kills become the task's reason, and which is removed once the task ended) and a
    periodic look at its sandbox's disk usage (the keeper caps its logs)."""

    def __init__(
        self,
        cgroup: TaskCgroup | None,
        limits: Limits,
        sandbox: Path | None,
        interval: float = DISK_WATCH_INTERVAL,
    ) -> None:
        self.cgroup = cgroup
        self.limits = limits
        self.sandbox = sandbox
        self.interval = interval
        self.limitation: Termination | None = None
        self._watcher: asyncio.Task[None] | None = None

    def start(self, container: KeptContainer) -> None:
        if self.sandbox is not None and self.limits.disk_bytes is not None:
            self._watcher = asyncio.get_running_loop().create_task(
                self._watch(container), name=f"sandbox-watch-{container.task_id}"
            )

    async def _watch(self, container: KeptContainer) -> None:
        assert self.sandbox is not None
        while True:
            await asyncio.sleep(self.interval)
            # Walking a sandbox's tree: in a thread.
            used = await asyncio.to_thread(disk.usage, self.sandbox)
            limit = self.limits.disk_bytes
            if limit is not None and disk.over_limit(used, limit):
                self.limitation = Termination(
                    pb.TASK_FAILED,
                    pb.REASON_CONTAINER_LIMITATION_DISK,
                    disk_message(limit, used),
                    None,
                )
                log.warning("task %s: %s", container.task_id, self.limitation.message)
                await container.kill(0)
                return

    def ended(self, killing: bool) -> Termination | None:
        """The limit the task ran into, if it did (checked as it ends)."""
        if self._watcher is not None:
            self._watcher.cancel()
        if self.limitation is not None:
            return self.limitation
        if self.cgroup is not None and not killing and self.cgroup.oom_kills() > 0:
            return Termination(
                pb.TASK_FAILED,
                pb.REASON_CONTAINER_LIMITATION_MEMORY,
                memory_message(self.cgroup.memory_limit(), self.cgroup.memory_peak()),
                None,
            )
        return None

    async def release(self) -> None:
        if self.cgroup is not None:
            # Killing the rest and rmdir may wait on dying processes: in a thread.
            await asyncio.to_thread(self.cgroup.remove)


class KeptContainer(GracefulKill):
    """A task the keeper runs: same kill semantics as a plain process container."""

    def __init__(
        self, task_id: str, key: str, pid: int, client: KeeperClient, guard: Guard | None = None
    ) -> None:
        super().__init__()
        self.task_id = task_id
        self.key = key
        self.pid: int | None = pid
        self._client = client
        self.guard = guard
        if guard is not None:
            guard.start(self)

    def exited(self, returncode: int) -> None:
        if self._done.done():
            return
        limitation = self.guard.ended(self._killing) if self.guard is not None else None
        if limitation is not None:
            self._cancel_escalation()
            self._done.set_result(limitation)
        else:
            self._end(returncode)
        if self.guard is not None:
            self._loop.create_task(self.guard.release())

    def lost(self) -> None:
        if self.guard is not None:
            self.guard.ended(True)
            self._loop.create_task(self.guard.release())
        if not self._done.done():
            self._done.set_result(
                Termination(
                    pb.TASK_FAILED,
                    pb.REASON_AGENT_RESTARTED,
                    "the task keeper died, so the task's end cannot be known; it was killed",
                    None,
                )
            )
            if self.pid:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(self.pid, signal.SIGKILL)

    async def _send(self, signum: int) -> None:
        await self._client.signal(self.key, signum)


class KeptContainerizer:
    """Runs each task's command through the task keeper, in its own session and sandbox."""

    name = "process"

    def __init__(
        self,
        client: KeeperClient,
        agent_env: Mapping[str, str] | None = None,
        isolator: Isolator | None = None,
        log_cap: int | None = LOG_CAP,
        disk_watch_interval: float = DISK_WATCH_INTERVAL,
    ) -> None:
        self.client = client
        self._inherited = inherited_environment(os.environ if agent_env is None else agent_env)
        # None: no limits, tasks run as command.user or the agent's user (as before).
        self.isolator = isolator
        self.log_cap = log_cap
        self.disk_watch_interval = disk_watch_interval

    def task_user(self, task: pb.TaskInfo, key: str) -> str:
        """command.user, else the agent's default task user (root agents only).

        The master has checked command.user against security.acls.run_tasks (root only
        where a rule names it). Executors that name no user run as the agent's user: they
        reach the agent's executor socket in its work dir, and their interpreter must be
        one the task user can run (a Python under /root is not).
        """
        if task.command.user:
            return task.command.user
        isolator = self.isolator
        if isolator is None or not isolator.plan.switch_users or key.startswith("executor:"):
            return ""
        return isolator.task_user

    def guard(self, key: str, task: pb.TaskInfo, sandbox: Path | None) -> Guard:
        """For a task taken back after a restart: its cgroup found again by its path."""
        isolator = self.isolator
        cgroup = isolator.cgroup(key) if isolator is not None else None
        limits = isolator.limits(task) if isolator is not None else Limits()
        return Guard(cgroup, limits, sandbox, self.disk_watch_interval)

    async def launch(
        self, task: pb.TaskInfo, sandbox: Path, env: Mapping[str, str], key: str = ""
    ) -> KeptContainer:
        refuse_unsupported_container(task)
        argv = command_argv(task.command)
        key = key or task_key(env.get("ORBITER_FRAMEWORK_ID", ""), task.task_id)
        run_as = resolve_user(self.task_user(task, key), os.geteuid())
        environment = task_environment(self._inherited, env, dict(task.command.environment), run_as)
        guard = Guard(None, Limits(), sandbox, self.disk_watch_interval)
        prepared = None
        if self.isolator is not None:
            try:
                # Directory and file writes under /sys/fs/cgroup: in a thread.
                prepared = await asyncio.to_thread(self.isolator.prepare, key, task)
            except OSError as e:
                raise LaunchError(f"cannot set up the task's cgroup: {e}") from None
            guard = Guard(prepared.cgroup, prepared.limits, sandbox, self.disk_watch_interval)
        if run_as is not None and sandbox != Path("/"):
            # The task's user writes its sandbox, which stays its working directory.
            await asyncio.to_thread(os.chown, sandbox, run_as.uid, run_as.gid)
        if task.volumes:
            owner = (run_as.uid, run_as.gid) if run_as is not None else None
            try:
                await asyncio.to_thread(volumes.link_into_sandbox, task, sandbox, owner)
            except OSError as e:
                await guard.release()
                raise LaunchError(f"cannot put its persistent volumes in place: {e}") from None
        launch = agent_pb2.KeeperRequest.Launch(
            key=key,
            executable=argv.executable,
            argv=list(argv.args),
            env=environment,
            cwd=str(sandbox),
            stdout=str(sandbox / "stdout"),
            stderr=str(sandbox / "stderr"),
        )
        if run_as is not None:
            launch.uid, launch.gid = run_as.uid, run_as.gid
            launch.groups.extend(run_as.groups)
        if guard.cgroup is not None:
            launch.cgroups.extend(guard.cgroup.paths())
        if self.log_cap:
            launch.log_cap = self.log_cap
        if prepared is not None and prepared.rlimit_as is not None:
            launch.rlimit_as = prepared.rlimit_as
        if prepared is not None and prepared.rlimit_nproc is not None:
            launch.rlimit_nproc = prepared.rlimit_nproc
        try:
            reply = await self.client.request(agent_pb2.KeeperRequest(launch=launch))
        except KeeperGone as e:
            await guard.release()
            raise LaunchError(f"the task keeper is gone ({e}); the agent restarts it") from None
        if reply.error:
            await guard.release()
            raise LaunchError(reply.error)
        container = KeptContainer(task.task_id, key, reply.tasks[0].pid, self.client, guard)
        self.client._watch(container)
        return container
