"""The task keeper: the parent of an agent's process tasks, and outliving the agent.

A task whose parent is the agent dies with it or, reparented to init, loses
its exit status. So the agent does not start tasks itself: it asks its keeper,
one small long-lived process per agent (containerd's shim, but one per agent:
a Python process per task would cost ~20 ms of CPU and ~10 MB each, more than
a launch). The keeper starts each task in its own session, reaps it, and holds
its exit status until the agent says it has recorded it. A restarted agent
reconnects to the same keeper (`keeper.sock` in its work dir), asks what it
holds, and takes its tasks back: those still running, and the real exit
status of those that ended while it was away.

The keeper does nothing on its own but reap: the agent decides. It exits when
told to retire and no task is left running, or when no agent is connected and
no task runs: after `IDLE_EXIT` seconds, or `UNCLAIMED_EXIT` if it still holds
ends the agent has not collected.

Run as `python -m orbiter.agent.keeper SOCKET`; the agent starts it.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import shutil
import signal
import struct
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from orbiter.agent.isolation import cgroups
from orbiter.agent.isolation.logs import LogPump
from orbiter.proto import agent_pb2

log = logging.getLogger("orbiter.keeper")

IDLE_EXIT = 30.0
# Ends it holds for an agent that is away: kept this long for it to come back.
UNCLAIMED_EXIT = 600.0
MAX_MESSAGE = 16 * 1024 * 1024
_PR_SET_CHILD_SUBREAPER = 36
_HEADER = struct.Struct(">I")


async def read_message(reader: asyncio.StreamReader, message: type) -> object | None:
    """One length-prefixed protobuf message, or None at the end of the stream."""
    try:
        header = await reader.readexactly(_HEADER.size)
    except asyncio.IncompleteReadError:
        return None
    (size,) = _HEADER.unpack(header)
    if size > MAX_MESSAGE:
        raise ValueError(f"a keeper message of {size} bytes is over the {MAX_MESSAGE} limit")
    body = await reader.readexactly(size)
    parsed = message()
    parsed.ParseFromString(body)
    return parsed


def frame(message: object) -> bytes:
    body = message.SerializeToString()  # type: ignore[attr-defined]
    return _HEADER.pack(len(body)) + body


@dataclass
class Kept:
    key: str
    popen: subprocess.Popen[bytes]
    start_time: float
    returncode: int | None = None
    pidfd: int | None = None
    cgroups: tuple[str, ...] = ()
    pumps: tuple[LogPump, ...] = ()

    def proto(self) -> agent_pb2.KeptTask:
        task = agent_pb2.KeptTask(key=self.key, pid=self.popen.pid, start_time=self.start_time)
        if self.returncode is not None:
            task.returncode = self.returncode
        return task


@dataclass
class Keeper:
    socket_path: Path
    tasks: dict[str, Kept] = field(default_factory=dict)
    retiring: bool = False
    _agent: asyncio.StreamWriter | None = None
    _starting: set[str] = field(default_factory=set)
    _launches: set[asyncio.Task[None]] = field(default_factory=set)
    _inflight: int = 0
    _idle_since: float = field(default_factory=time.monotonic)
    _done: asyncio.Event = field(default_factory=asyncio.Event)

    async def serve(self) -> None:
        _become_subreaper()
        with contextlib.suppress(FileNotFoundError):
            self.socket_path.unlink()
        server = await asyncio.start_unix_server(self._connected, path=str(self.socket_path))
        os.chmod(self.socket_path, 0o600)  # whoever can connect can run commands as us
        log.info("keeper %d serving %s", os.getpid(), self.socket_path)
        watchdog = asyncio.create_task(self._exit_when_idle())
        async with server:
            await self._done.wait()
        watchdog.cancel()
        with contextlib.suppress(FileNotFoundError):
            self.socket_path.unlink()
        log.info("keeper %d exits", os.getpid())

    async def _exit_when_idle(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            if not self._inflight:
                # A child being spawned is not in self.tasks yet: never reap one then.
                _reap_orphans({k.popen.pid for k in self.tasks.values()})
            running = any(k.returncode is None for k in self.tasks.values())
            if self.retiring and not running:
                self._done.set()  # the agent is done with us and its tasks
                return
            if running or self._agent is not None:
                self._idle_since = time.monotonic()
                continue
            # No agent and nothing running: wait for it a while if it has ends to collect.
            limit = UNCLAIMED_EXIT if self.tasks else IDLE_EXIT
            if time.monotonic() - self._idle_since > limit:
                if self.tasks:
                    log.warning("no agent came back for %d ended task(s); exiting", len(self.tasks))
                self._done.set()
                return

    async def _connected(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._agent is not None:
            # A restarted agent: the old connection is stale.
            self._agent.close()
        self._agent = writer
        try:
            while True:
                request = await read_message(reader, agent_pb2.KeeperRequest)
                if request is None:
                    break
                if request.WhichOneof("request") == "launch":  # type: ignore[attr-defined]
                    # fork/exec and opening the output files block: in a thread, so
                    # launches overlap and the loop keeps reaping meanwhile.
                    launch = asyncio.create_task(self._launch_and_reply(request, writer))  # type: ignore[arg-type]
                    self._launches.add(launch)
                    launch.add_done_callback(self._launches.discard)
                    continue
                reply = self._handle(request)  # type: ignore[arg-type]
                writer.write(frame(agent_pb2.KeeperEvent(reply=reply)))
        except (ConnectionError, ValueError) as e:
            log.warning("agent connection ended: %s", e)
        finally:
            if self._agent is writer:
                self._agent = None
            writer.close()

    def _handle(self, request: agent_pb2.KeeperRequest) -> agent_pb2.KeeperEvent.Reply:
        reply = agent_pb2.KeeperEvent.Reply(id=request.id)
        kind = request.WhichOneof("request")
        if kind == "hello":
            reply.tasks.extend(t.proto() for t in self.tasks.values())
        elif kind == "signal":
            kept = self.tasks.get(request.signal.key)
            if kept is None:
                reply.error = f"no task {request.signal.key}"
            elif kept.returncode is None:
                # The leader is not reaped yet, so its group id is still this task's.
                _signal_group(kept.popen.pid, request.signal.signal)
                _signal_cgroups(kept, request.signal.signal)
        elif kind == "forget":
            kept = self.tasks.get(request.forget.key)
            if kept is not None and kept.returncode is not None:
                del self.tasks[request.forget.key]
        elif kind == "retire":
            self.retiring = True
        else:
            reply.error = f"unknown request {kind!r}"
        return reply

    async def _launch_and_reply(
        self, request: agent_pb2.KeeperRequest, writer: asyncio.StreamWriter
    ) -> None:
        launch = request.launch
        reply = agent_pb2.KeeperEvent.Reply(id=request.id)
        if launch.key in self.tasks or launch.key in self._starting:
            reply.error = f"task {launch.key} is already running here"
        else:
            self._starting.add(launch.key)
            self._inflight += 1
            try:
                popen, pumps = await asyncio.to_thread(self._spawn, launch)
            except (OSError, ValueError) as e:
                reply.error = _launch_error(launch, e)
            else:
                for pump in pumps:
                    pump.start(asyncio.get_running_loop())
                kept = Kept(
                    launch.key, popen, time.time(), cgroups=tuple(launch.cgroups),
                    pumps=tuple(pumps),
                )  # fmt: skip
                self.tasks[launch.key] = kept
                try:
                    self._watch(kept)
                    reply.tasks.append(kept.proto())
                except OSError as e:  # never leave the agent waiting for an answer
                    del self.tasks[launch.key]
                    reply.error = f"started task {launch.key} but lost track of it: {e}"
                    log.error("%s", reply.error)
            finally:
                self._starting.discard(launch.key)
                self._inflight -= 1
        writer.write(frame(agent_pb2.KeeperEvent(reply=reply)))

    @staticmethod
    def _spawn(
        launch: agent_pb2.KeeperRequest.Launch,
    ) -> tuple[subprocess.Popen[bytes], list[LogPump]]:
        if launch.HasField("log_cap"):
            return _spawn_piped(launch)
        stdout = _open_output(launch.stdout, launch)
        try:
            stderr = _open_output(launch.stderr, launch)
            try:
                popen = cgroups.spawn_in(
                    list(launch.cgroups),
                    lambda: _popen(launch, stdout, stderr),
                    lambda p: p.pid,
                )
            finally:
                os.close(stderr)
        finally:
            os.close(stdout)
        return popen, []

    def _watch(self, kept: Kept) -> None:
        loop = asyncio.get_running_loop()
        kept.pidfd = os.pidfd_open(kept.popen.pid)
        loop.add_reader(kept.pidfd, self._exited, kept)

    def _exited(self, kept: Kept) -> None:
        loop = asyncio.get_running_loop()
        if kept.pidfd is not None:
            loop.remove_reader(kept.pidfd)
            os.close(kept.pidfd)
            kept.pidfd = None
        # The unreaped leader keeps the group id ours: clean up what it left behind.
        _signal_group(kept.popen.pid, signal.SIGKILL)
        # And whatever left the group but not the task's cgroup (the agent removes it).
        cgroups.signal_all(kept.cgroups, signal.SIGKILL)
        kept.returncode = kept.popen.wait()
        # What the task wrote last is still in its pipes: in the files before the exit is
        # reported, so whoever reads stdout after TASK_FINISHED reads all of it.
        for pump in kept.pumps:
            pump.drain(loop)
        if self._agent is not None:
            event = agent_pb2.KeeperEvent(exited=agent_pb2.KeeperEvent.Exited(task=kept.proto()))
            self._agent.write(frame(event))


def _spawn_piped(
    launch: agent_pb2.KeeperRequest.Launch,
) -> tuple[subprocess.Popen[bytes], list[LogPump]]:
    """Output through pipes that LogPumps copy into the capped, rotated files."""
    owner = (launch.uid, launch.gid) if launch.HasField("uid") else None
    pumps: list[LogPump] = []
    ends: list[int] = []
    try:
        for path in (launch.stdout, launch.stderr):
            read_fd, write_fd = os.pipe()
            ends.append(write_fd)
            try:
                pumps.append(LogPump(read_fd, Path(path), launch.log_cap, owner))
            except OSError:
                os.close(read_fd)
                raise
        popen = cgroups.spawn_in(
            list(launch.cgroups), lambda: _popen(launch, ends[0], ends[1]), lambda p: p.pid
        )
    except BaseException:
        for pump in pumps:
            pump.close()
        raise
    finally:
        for fd in ends:
            os.close(fd)
    return popen, pumps


def _popen(
    launch: agent_pb2.KeeperRequest.Launch, stdout: int, stderr: int
) -> subprocess.Popen[bytes]:
    executable, argv = _with_rlimits(launch)
    return subprocess.Popen(
        argv,
        executable=executable,
        stdin=subprocess.DEVNULL,
        stdout=stdout,
        stderr=stderr,
        cwd=launch.cwd,
        env=dict(launch.env),
        start_new_session=True,
        user=launch.uid if launch.HasField("uid") else None,
        group=launch.gid if launch.HasField("gid") else None,
        extra_groups=list(launch.groups) if launch.HasField("uid") else None,
    )


def _with_rlimits(launch: agent_pb2.KeeperRequest.Launch) -> tuple[str, list[str]]:
    """(executable, argv) that start the task under the fallback's rlimits.

    util-linux's prlimit sets them and execs the task, so they hold from its first
    instruction (setting them from here after the spawn races the task, and needs
    CAP_SYS_RESOURCE once it runs as another user). The task's argv[0] becomes its
    executable's path.
    """
    limits = []
    if launch.HasField("rlimit_as"):
        limits.append(f"--as={launch.rlimit_as}")
    if launch.HasField("rlimit_nproc"):
        limits.append(f"--nproc={launch.rlimit_nproc}")
    if not limits:
        return launch.executable, list(launch.argv)
    prlimit = shutil.which("prlimit") or "/usr/bin/prlimit"
    return prlimit, [prlimit, *limits, "--", launch.executable, *launch.argv[1:]]


def _signal_cgroups(kept: Kept, signum: int) -> None:
    """Every process in the task's cgroups: children that left its group (setsid) too."""
    if not kept.cgroups:
        return
    if signum == signal.SIGKILL:
        # Until the cgroup is empty, which may take rounds: off the loop.
        asyncio.get_running_loop().run_in_executor(None, cgroups.kill_all, list(kept.cgroups), 5.0)
    else:
        cgroups.signal_all(kept.cgroups, signum)


def _open_output(path: str, launch: agent_pb2.KeeperRequest.Launch) -> int:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o644)
    if launch.HasField("uid"):
        os.fchown(fd, launch.uid, launch.gid)
    return fd


def _launch_error(launch: agent_pb2.KeeperRequest.Launch, e: Exception) -> str:
    from orbiter.agent.containerizer.process import Argv, _spawn_error

    if isinstance(e, OSError):
        argv = Argv(launch.executable, tuple(launch.argv))
        return str(_spawn_error(e, argv, dict(launch.env), Path(launch.cwd)))
    return f"cannot start task {launch.key}: {e}"


def _signal_group(pgid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)


def _become_subreaper() -> None:
    """Orphans of a task (daemons it forked) become ours, not init's, so they are reaped."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


def _reap_orphans(ours: set[int]) -> None:
    """Reap adopted orphans; our tasks are left to their Popen, which must see their status."""
    for child in psutil.Process().children():
        if child.pid not in ours:
            with contextlib.suppress(ChildProcessError, OSError):
                os.waitpid(child.pid, os.WNOHANG)


def main(argv: list[str] | None = None) -> int:
    args = argv if argv is not None else sys.argv[1:]
    if len(args) != 1:
        print("usage: python -m orbiter.agent.keeper SOCKET", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)-7s %(name)s: %(message)s"
    )
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C at the agent's terminal is not ours
    keeper = Keeper(Path(args[0]))
    asyncio.run(keeper.serve())
    return 0


if __name__ == "__main__":
    sys.exit(main())
