"""Tasks as plain processes: own session and process group, output in the sandbox.

Launching uses subprocess.Popen (vfork + exec in C, so it costs well under a
millisecond of the event loop), and reaping uses a pidfd watched by the event
loop: no thread and no SIGCHLD handler per child. When the leader exits we
SIGKILL what is left of its process group *before* reaping it, so the group id
cannot have been reused by then and orphans do not outlive the task.
Processes that leave the group themselves (setsid) escape this; cgroups will
catch those once the agent uses them.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import pwd
import signal
import subprocess
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from orbiter.proto import messages_pb2 as pb

from .base import (
    GracefulKill,
    LaunchError,
    refuse_unsupported_container,
)

log = logging.getLogger(__name__)

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_AGENT_ONLY_PREFIXES = ("ORBITER_", "MESOS_")


@dataclass(frozen=True)
class RunAs:
    """The user a task runs as when it is not the agent's own user."""

    name: str
    uid: int
    gid: int
    groups: tuple[int, ...]
    home: str


@dataclass(frozen=True)
class Argv:
    executable: str
    args: tuple[str, ...]


def command_argv(command: pb.CommandInfo) -> Argv:
    """Mesos semantics: shell runs `value` under /bin/sh -c; otherwise `value` is
    the executable and `arguments` the whole argv (argv[0] included)."""
    if not command.value:
        raise LaunchError(
            "task has no command: set command.value (a command line with shell=true, "
            "or an executable with its argv in command.arguments)"
        )
    if command.shell:
        return Argv("/bin/sh", ("/bin/sh", "-c", command.value))
    return Argv(command.value, tuple(command.arguments) or (command.value,))


def inherited_environment(agent_env: Mapping[str, str]) -> dict[str, str]:
    """What a task inherits from the agent: everything but the agent's own settings,
    which would otherwise be mistaken for the task's (Mesos passes the agent's
    environment to executors too)."""
    return {k: v for k, v in agent_env.items() if not k.startswith(_AGENT_ONLY_PREFIXES)}


def task_environment(
    inherited: Mapping[str, str],
    agent_env: Mapping[str, str],
    command_env: Mapping[str, str],
    run_as: RunAs | None,
) -> dict[str, str]:
    """Layered environment: inherited < user identity < agent-provided < task's own."""
    result = dict(inherited)
    result.setdefault("PATH", DEFAULT_PATH)
    if run_as is not None:
        result.update(HOME=run_as.home, USER=run_as.name, LOGNAME=run_as.name)
    result.update(agent_env)
    result.update(command_env)
    return result


def resolve_user(requested: str, current_uid: int) -> RunAs | None:
    """Which user to switch to; None means the agent's own user."""
    if not requested:
        return None
    try:
        entry = pwd.getpwnam(requested)
    except KeyError:
        raise LaunchError(
            f"user {requested!r} does not exist on this agent; create it or change command.user"
        ) from None
    if entry.pw_uid == current_uid:
        return None
    if current_uid != 0:
        raise LaunchError(
            f"cannot run the task as user {requested!r}: the agent runs as uid {current_uid}, "
            "and only an agent running as root can switch users; "
            "leave command.user empty or run the agent as root"
        )
    groups = tuple(os.getgrouplist(entry.pw_name, entry.pw_gid))
    return RunAs(entry.pw_name, entry.pw_uid, entry.pw_gid, groups, entry.pw_dir)


def _spawn_error(exc: OSError, argv: Argv, env: Mapping[str, str], sandbox: Path) -> LaunchError:
    """Turn Popen's exec failure into a message that names what to fix."""
    name = argv.executable
    if exc.filename is not None and os.fsdecode(exc.filename) == str(sandbox):
        return LaunchError(f"cannot enter the sandbox {str(sandbox)!r}: {exc.strerror}")
    if isinstance(exc, FileNotFoundError):
        if os.sep in name:
            return LaunchError(f"executable {name!r} does not exist")
        return LaunchError(
            f"executable {name!r} not found in PATH ({env.get('PATH', '')}); "
            "give its full path or fix PATH in command.environment"
        )
    if isinstance(exc, PermissionError):
        return LaunchError(f"executable {name!r} is not executable (permission denied)")
    if exc.errno == errno.ENOEXEC:
        return LaunchError(f"executable {name!r} has an unknown format; a script needs a #! line")
    return LaunchError(f"cannot start {name!r}: {exc.strerror or exc}")


def _open_output(path: Path, run_as: RunAs | None) -> int:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o644)
    if run_as is not None:
        os.fchown(fd, run_as.uid, run_as.gid)
    return fd


def _signal_group(pgid: int, signum: int) -> None:
    try:
        os.killpg(pgid, signum)
    except ProcessLookupError:
        pass
    except PermissionError:
        log.warning("not allowed to send %s to process group %d", signum, pgid)


class ProcessContainer(GracefulKill):
    """One task's process group. The leader's pid is also the group and session id."""

    def __init__(self, task_id: str, popen: subprocess.Popen[bytes]) -> None:
        super().__init__()
        self.task_id = task_id
        self.pid: int | None = popen.pid
        self._popen = popen
        self._pidfd: int | None = None
        self._watch_exit()

    def _watch_exit(self) -> None:
        pid = self._popen.pid
        try:
            self._pidfd = os.pidfd_open(pid)
        except (AttributeError, OSError):
            # No pidfd (kernel < 5.3 or not Linux): a blocking waiter thread per
            # child is the fallback; it only peeks (WNOWAIT) so that reaping, and
            # the group cleanup before it, still happen on the loop.
            threading.Thread(target=self._wait_in_thread, name=f"reap-{pid}", daemon=True).start()
            return
        self._loop.add_reader(self._pidfd, self._on_exit)

    def _wait_in_thread(self) -> None:
        with contextlib.suppress(ChildProcessError):
            os.waitid(os.P_PID, self._popen.pid, os.WEXITED | os.WNOWAIT)
        with contextlib.suppress(RuntimeError):  # loop closed while the task ran
            self._loop.call_soon_threadsafe(self._on_exit)

    def _exited(self) -> bool:
        """Has the leader exited (it may still await reaping)?"""
        if self._done.done():
            return True
        try:
            info = os.waitid(os.P_PID, self._popen.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            return True
        return info is not None

    def _on_exit(self) -> None:
        if self._done.done():
            return
        if self._pidfd is not None:
            self._loop.remove_reader(self._pidfd)
            os.close(self._pidfd)
            self._pidfd = None
        self._cancel_escalation()
        # The unreaped leader keeps the group id ours, so this cannot hit a stranger.
        _signal_group(self._popen.pid, signal.SIGKILL)
        self._end(self._popen.wait())

    async def _send(self, signum: int) -> None:
        if not self._done.done():
            _signal_group(self._popen.pid, signum)

    def _ended_unnoticed(self) -> bool:
        if self._exited():
            self._on_exit()
            return True
        return False


class ProcessContainerizer:
    """Runs each task's command as a process in its own session under its sandbox."""

    name = "process"

    def __init__(self, agent_env: Mapping[str, str] | None = None) -> None:
        """`agent_env` is what tasks inherit (PATH, LANG, ...); default: this process's
        environment without its ORBITER_*/MESOS_* settings."""
        self._inherited = inherited_environment(os.environ if agent_env is None else agent_env)

    async def launch(
        self, task: pb.TaskInfo, sandbox: Path, env: Mapping[str, str]
    ) -> ProcessContainer:
        refuse_unsupported_container(task)
        argv = command_argv(task.command)
        run_as = resolve_user(task.command.user, os.geteuid())
        environment = task_environment(self._inherited, env, dict(task.command.environment), run_as)
        # File creation and fork/exec block for milliseconds on a busy disk: off the loop.
        popen = await asyncio.to_thread(self._spawn, task, argv, run_as, environment, sandbox)
        return ProcessContainer(task.task_id, popen)

    @staticmethod
    def _spawn(
        task: pb.TaskInfo,
        argv: Argv,
        run_as: RunAs | None,
        environment: dict[str, str],
        sandbox: Path,
    ) -> subprocess.Popen[bytes]:
        if not sandbox.is_dir():
            raise LaunchError(f"sandbox {str(sandbox)!r} is not a directory")
        if run_as is not None:
            os.chown(sandbox, run_as.uid, run_as.gid)
        stdout = _open_output(sandbox / "stdout", run_as)
        try:
            stderr = _open_output(sandbox / "stderr", run_as)
            try:
                popen = subprocess.Popen(
                    argv.args,
                    executable=argv.executable,
                    stdin=subprocess.DEVNULL,
                    stdout=stdout,
                    stderr=stderr,
                    cwd=sandbox,
                    env=environment,
                    start_new_session=True,
                    user=None if run_as is None else run_as.uid,
                    group=None if run_as is None else run_as.gid,
                    extra_groups=None if run_as is None else list(run_as.groups),
                )
            finally:
                os.close(stderr)
        except OSError as exc:
            raise _spawn_error(exc, argv, environment, sandbox) from exc
        except ValueError as exc:  # e.g. '=' or NUL in an environment variable
            raise LaunchError(f"cannot start task {task.task_id!r}: {exc}") from exc
        finally:
            os.close(stdout)
        return popen
