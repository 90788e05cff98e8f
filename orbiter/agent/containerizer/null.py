"""A containerizer that runs nothing: tasks "run" until killed.

For scale tests and benchmarks of the master and agent, where thousands of
tasks must cost no more than a future each.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from pathlib import Path

from orbiter.proto import messages_pb2 as pb

from .base import KILLED_BY_REQUEST, Termination, refuse_unsupported_container


class NullContainer:
    __slots__ = ("_done", "pid", "task_id")

    def __init__(self, task_id: str, done: asyncio.Future[Termination]) -> None:
        self.task_id = task_id
        self.pid: int | None = None
        self._done = done

    async def wait(self) -> Termination:
        if self._done.done():
            return self._done.result()
        # Shielded so that a cancelled waiter does not cancel the task's outcome.
        return await asyncio.shield(self._done)

    async def kill(self, grace_period: float) -> None:
        if not self._done.done():
            self._done.set_result(KILLED_BY_REQUEST)


class NullContainerizer:
    """No process, no sandbox use: one asyncio.Future per task."""

    name = "null"

    async def launch(
        self, task: pb.TaskInfo, sandbox: Path, env: Mapping[str, str]
    ) -> NullContainer:
        refuse_unsupported_container(task)
        return NullContainer(task.task_id, asyncio.get_running_loop().create_future())
