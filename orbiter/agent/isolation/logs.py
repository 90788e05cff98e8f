"""A task's stdout/stderr with a size cap: the keeper pumps the task's pipe into
`stdout`, and when it would grow past the cap renames it to `stdout.1` (the
previous `.1` goes) and starts a fresh `stdout`. At most two caps per stream stay
on disk however fast the task writes, and `stdout` is always the newest output,
which is what `orbiter cat` and the agent's /files read.

This is Mesos's logrotate container logger, but inside the keeper's event loop
instead of a process per task: a pipe costs a file descriptor and a reader, not
~20 ms of Python start-up. A task that writes faster than the keeper copies is
slowed by the pipe, never its output dropped. Splits fall on byte boundaries.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from pathlib import Path

READ_SIZE = 1 << 16


class LogPump:
    def __init__(self, read_fd: int, path: Path, cap: int, owner: tuple[int, int] | None) -> None:
        self.fd = read_fd
        self.path = path
        self.cap = max(1, cap)
        self.owner = owner
        os.set_blocking(read_fd, False)
        self._out = self._open()
        self.size = os.fstat(self._out).st_size
        self.closed = False

    def _open(self) -> int:
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o644)
        if self.owner is not None:
            os.fchown(fd, *self.owner)
        return fd

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        loop.add_reader(self.fd, self._readable, loop)

    def _readable(self, loop: asyncio.AbstractEventLoop) -> None:
        try:
            data = os.read(self.fd, READ_SIZE)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            loop.remove_reader(self.fd)
            self.close()
            return
        self.write(data)

    def drain(self, loop: asyncio.AbstractEventLoop) -> None:
        """Copy what is in the pipe now; at its end (every writer gone) stop and close."""
        while not self.closed:
            try:
                data = os.read(self.fd, READ_SIZE)
            except BlockingIOError:
                return  # a writer is still alive (escaped the task): the reader goes on
            except OSError:
                data = b""
            if not data:
                loop.remove_reader(self.fd)
                self.close()
                return
            self.write(data)

    def write(self, data: bytes) -> None:
        """Append `data`, rotating whenever the file would pass the cap."""
        view = memoryview(data)
        while view:
            room = self.cap - self.size
            if room <= 0:
                self.rotate()
                room = self.cap
            chunk = view[:room]
            written = os.write(self._out, chunk)
            self.size += written
            view = view[written:]

    def rotate(self) -> None:
        os.replace(self.path, self.path.with_name(self.path.name + ".1"))
        os.close(self._out)
        self._out = self._open()
        self.size = 0

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        with contextlib.suppress(OSError):
            os.close(self.fd)
        with contextlib.suppress(OSError):
            os.close(self._out)
