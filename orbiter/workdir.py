"""One process per work dir: a lock taken before anything is written or bound.

Two masters (or agents) on one work dir would both write the same registry
file and hand out the same ids. The lock is `flock` on `<work dir>/.lock`, so
the kernel releases it when its holder dies, even by SIGKILL: there is never a
stale lock to clean up by hand. The holder's pid is written into the file only
to name it in the refusal. The file is never removed: unlinking a lock file
lets a third process lock a fresh file while the second still holds the old one.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path
from types import TracebackType

from orbiter.errors import Code, OrbiterError

LOCK_FILE = ".lock"


class WorkDirBusy(OrbiterError):
    """Another live process holds the work dir."""

    code = Code.FAILED_PRECONDITION


class WorkDirUnusable(OrbiterError):
    """The work dir or its lock file cannot be created or opened."""

    code = Code.FAILED_PRECONDITION


class WorkDirLock:
    """An exclusive, non-blocking lock on a work dir, held until `release` or process exit."""

    def __init__(self, work_dir: Path) -> None:
        self.work_dir = Path(work_dir)
        self.path = self.work_dir / LOCK_FILE
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> WorkDirLock:
        """Take the lock (creating the work dir) or raise WorkDirBusy naming the holder."""
        try:
            self.work_dir.mkdir(parents=True, exist_ok=True)
            # os.open's descriptors are not inherited by children (PEP 446), so tasks
            # and checks the agent starts never keep the lock alive after it dies.
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise WorkDirUnusable(
                f"cannot use work dir {self.work_dir} (lock file {self.path}): {e.strerror}; "
                "pick a --work-dir this user can write to"
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            os.close(fd)
            raise WorkDirBusy(
                f"work dir {self.work_dir} is in use by {holder} (lock file {self.path}); "
                "stop that process or pick another --work-dir"
            ) from None
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        """Let the work dir go (closing the descriptor drops the flock)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> WorkDirLock:
        return self.acquire()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


def _holder(fd: int) -> str:
    """'pid N' from the lock file, or a vaguer name if the holder has not written it yet."""
    with contextlib.suppress(OSError, ValueError):
        return f"pid {int(os.pread(fd, 32, 0).decode().strip())}"
    return "another process"
