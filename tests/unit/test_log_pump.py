"""The keeper copies task output from pipes; at a task's exit it drains them first, so the
files hold everything before TASK_FINISHED is reported (CI once read a report mid-line)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from orbiter.agent.isolation.logs import LogPump
from tests.proctools import async_poll_until


async def test_drain_copies_what_is_left_and_closes_at_the_end_of_the_pipe(tmp_path: Path) -> None:
    read_fd, write_fd = os.pipe()
    pump = LogPump(read_fd, tmp_path / "stdout", cap=1 << 20, owner=None)
    loop = asyncio.get_running_loop()
    pump.start(loop)  # the reader is registered, but the loop never runs it before drain
    os.write(write_fd, b"x" * 50_000 + b"END\n")
    os.close(write_fd)
    pump.drain(loop)
    assert (tmp_path / "stdout").read_bytes() == b"x" * 50_000 + b"END\n"
    assert pump.closed


async def test_drain_with_a_writer_still_alive_copies_what_is_there_and_keeps_reading(
    tmp_path: Path,
) -> None:
    read_fd, write_fd = os.pipe()
    pump = LogPump(read_fd, tmp_path / "stdout", cap=1 << 20, owner=None)
    loop = asyncio.get_running_loop()
    pump.start(loop)
    os.write(write_fd, b"first\n")
    pump.drain(loop)
    assert (tmp_path / "stdout").read_bytes() == b"first\n" and not pump.closed
    os.write(write_fd, b"later\n")
    os.close(write_fd)
    await async_poll_until(lambda: pump.closed, 5, "the reader to take the rest")
    assert (tmp_path / "stdout").read_bytes() == b"first\nlater\n" and pump.closed
