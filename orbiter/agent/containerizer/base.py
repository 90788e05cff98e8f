"""What every containerizer promises the agent, and the pure rules they share.

The agent launches a task through a `Containerizer`, gets a `Container` back,
and learns how it ended from `Container.wait()` as a `Termination`. How an exit
status becomes a task state lives here, as plain functions, so that every
containerizer reports the same thing for the same event.
"""

from __future__ import annotations

import asyncio
import signal
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

from orbiter.proto import messages_pb2 as pb


@dataclass(frozen=True)
class Termination:
    """How a task's container ended: the facts behind its terminal status update."""

    state: int  # pb.TaskState: TASK_FINISHED, TASK_FAILED or TASK_KILLED
    reason: int  # pb.TaskReason
    message: str
    exit_code: int | None


class LaunchError(Exception):
    """The task could not be started; the message says what to fix in the TaskInfo or host."""


@runtime_checkable
class Container(Protocol):
    """A launched task. `wait` may be awaited by several callers; `kill` is idempotent."""

    task_id: str
    pid: int | None

    async def wait(self) -> Termination: ...

    async def kill(self, grace_period: float) -> None: ...


@runtime_checkable
class Containerizer(Protocol):
    name: str

    async def launch(
        self, task: pb.TaskInfo, sandbox: Path, env: Mapping[str, str]
    ) -> Container: ...


class GracefulKill(ABC):
    """SIGTERM, then SIGKILL after the grace period: the kill both process containers share.

    The SIGKILL is a loop timer rather than part of `kill`, so it fires even if the
    caller is cancelled; a second kill with a shorter grace brings it forward.
    Subclasses say how a signal reaches the task (`_send`), may notice an exit the
    loop has not heard of yet (`_ended_unnoticed`), and set `_done` when it ends.
    """

    def __init__(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._done: asyncio.Future[Termination] = self._loop.create_future()
        self._killing = False
        self._sigkill_after: float | None = None  # the grace that ran out, if it did
        self._kill_deadline: float | None = None
        self._escalation: asyncio.TimerHandle | None = None

    @abstractmethod
    async def _send(self, signum: int) -> None:
        """Deliver signum to the task (every container says how)."""

    def _ended_unnoticed(self) -> bool:
        """True if the task is over (its outcome is then set or about to be)."""
        return self._done.done()

    def _cancel_escalation(self) -> None:
        if self._escalation is not None:
            self._escalation.cancel()
            self._escalation = None

    def _end(self, returncode: int) -> None:
        """The task exited with `returncode`: its Termination, killed or not."""
        self._cancel_escalation()
        if self._killing:
            self._done.set_result(kill_termination(returncode, self._sigkill_after))
        else:
            self._done.set_result(exit_termination(returncode))

    async def wait(self) -> Termination:
        # Shielded so that a cancelled waiter does not cancel the task's outcome.
        return await asyncio.shield(self._done)

    async def kill(self, grace_period: float) -> None:
        if self._ended_unnoticed():
            await self.wait()
            return
        grace_period = max(0.0, grace_period)
        deadline = self._loop.time() + grace_period
        if not self._killing:
            self._killing = True
            if grace_period > 0:
                await self._send(signal.SIGTERM)
        if self._kill_deadline is None or deadline < self._kill_deadline:
            self._kill_deadline = deadline
            self._cancel_escalation()
            self._escalation = self._loop.call_at(deadline, self._escalate, grace_period)
        await self.wait()

    def _escalate(self, grace_period: float) -> None:
        self._escalation = None
        if self._done.done():
            return
        self._sigkill_after = grace_period
        self._loop.create_task(self._send(signal.SIGKILL))


KILLED_BY_REQUEST = Termination(pb.TASK_KILLED, pb.REASON_TASK_KILLED, "Task killed", None)


def refuse_unsupported_container(task: pb.TaskInfo) -> None:
    """Docker tasks need the docker containerizer; a plain one refuses them."""
    if task.HasField("container") and task.container.type == pb.ContainerInfo.DOCKER:
        raise LaunchError(
            f"task {task.task_id!r} asks for a DOCKER container, but the docker containerizer "
            "is not available on this agent (start it with `--containerizers process,docker` "
            "and a dockerd that answers), or launch it as a plain process"
        )


def signal_name(signum: int) -> str:
    """SIGSEGV for 11; the bare number for signals Python has no name for."""
    try:
        return signal.Signals(signum).name
    except ValueError:
        return str(signum)


def exit_termination(returncode: int) -> Termination:
    """Termination of a command that ended on its own (nobody asked to kill it).

    `returncode` follows subprocess: >= 0 is an exit status, -N death by signal N.
    """
    if returncode == 0:
        return Termination(
            pb.TASK_FINISHED, pb.REASON_COMMAND_EXITED, "Command exited with status 0", 0
        )
    if returncode > 0:
        return Termination(
            pb.TASK_FAILED,
            pb.REASON_COMMAND_EXITED,
            f"Command exited with status {returncode}",
            returncode,
        )
    return Termination(
        pb.TASK_FAILED,
        pb.REASON_COMMAND_SIGNALED,
        f"Command terminated by signal {signal_name(-returncode)}",
        None,
    )


def kill_termination(returncode: int, sigkill_after: float | None) -> Termination:
    """Termination of a command we asked to stop, however it then ended.

    `sigkill_after` is the grace period after which SIGKILL was sent, or None
    if SIGTERM alone was enough.
    """
    if sigkill_after is None:
        message = "Task killed with SIGTERM"
    else:
        message = f"Task killed with SIGKILL after {sigkill_after:g} s grace"
    exit_code = returncode if returncode >= 0 else None
    return Termination(pb.TASK_KILLED, pb.REASON_TASK_KILLED, message, exit_code)
