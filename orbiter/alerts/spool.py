"""A durable FIFO queue of JSON values in one append-only file.

Why: principle 3, "nothing acknowledged is ever lost". A receiver says "got
it" for an alert only once it is here, and it leaves only when the far end
took it, so a receiver that is down for hours, or a Satellite killed with
`kill -9`, loses nothing.

The file is JSON lines. `{"seq": 7, "data": ...}` adds an entry,
`{"ack": 7}` removes it; both are appended, written in one `write` and
fsynced before the call returns. Opening the file replays it. A crash can
only tear the last line (appends are sequential), so a last line without
its newline or that does not parse is cut off: it was never acknowledged
to anyone. A bad line in the middle (damage, not a crash) is skipped with a
warning so that the rest still flows. When nothing is pending the file is
truncated; when it grows past `compact_bytes` and is mostly dead lines it
is rewritten with the pending entries only (temp file, fsync, rename, fsync of the directory), so
a crash leaves the old file or the new one, never half of one.

One process, one object per file: an exclusive `flock` on a sibling
`.lock` file refuses a second user (a `kill -9` releases it). The class is
synchronous and thread-safe; asyncio callers run its methods in a thread
because fsync blocks.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import threading
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orbiter.errors import Code, OrbiterError

log = logging.getLogger("orbiter.alerts")

COMPACT_BYTES = 1 << 20


class SpoolLocked(OrbiterError):
    """Another process (or another object in this one) has the spool open."""

    code = Code.FAILED_PRECONDITION


class SpoolClosed(OrbiterError):
    """The spool was closed (its receiver stopped); nothing was written."""

    code = Code.FAILED_PRECONDITION


@dataclass(frozen=True, slots=True)
class Entry:
    seq: int
    data: Any


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _line(record: dict[str, Any]) -> bytes:
    return json.dumps(record, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"


class Spool:
    """Append, look at the head, acknowledge; every change is on disk when the call returns."""

    def __init__(self, path: Path, compact_bytes: int = COMPACT_BYTES) -> None:
        self.path = Path(path)
        self.compact_bytes = compact_bytes
        self._mutex = threading.Lock()
        self._entries: deque[Entry] = deque()
        self._line_bytes: dict[int, int] = {}  # seq -> length of its line, for compaction
        self._size = 0
        self._next_seq = 0
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock_fd = os.open(
            self.path.with_name(self.path.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o644
        )
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._lock_fd)
            raise SpoolLocked(
                f"spool {self.path} is in use by another receiver; give each receiver "
                "its own spool directory and run one Satellite per directory"
            ) from None
        try:
            self._fd = self._open_and_replay()
        except BaseException:
            os.close(self._lock_fd)
            raise

    # ------------------------------------------------------------------ open

    def _open_and_replay(self) -> int:
        existed = self.path.exists()
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            if not existed:
                _fsync_dir(self.path.parent)
            return self._replay(fd)
        except BaseException:
            os.close(fd)
            raise

    def _replay(self, fd: int) -> int:
        with os.fdopen(os.dup(fd), "rb") as f:
            content = f.read()
        pending: dict[int, tuple[Any, int]] = {}
        good_end = 0
        offset = 0
        for raw in content.split(b"\n")[:-1]:
            end = offset + len(raw) + 1
            record = self._parse(raw)
            if record is None:
                if end == len(content):
                    break  # a crash between write and fsync; cut it off below
                log.warning("spool %s: skipping a damaged line at byte %d", self.path, offset)
            elif "seq" in record:
                pending[record["seq"]] = (record["data"], end - offset)
                self._next_seq = max(self._next_seq, record["seq"] + 1)
            else:
                pending.pop(record["ack"], None)
            good_end = end
            offset = end
        if good_end < len(content):
            log.warning(
                "spool %s: dropping %d bytes of a torn last line (a write cut short by a crash)",
                self.path,
                len(content) - good_end,
            )
            os.ftruncate(fd, good_end)
            os.fsync(fd)
        for seq, (data, length) in sorted(pending.items()):
            self._entries.append(Entry(seq, data))
            self._line_bytes[seq] = length
        self._size = good_end
        return fd

    @staticmethod
    def _parse(raw: bytes) -> dict[str, Any] | None:
        try:
            record = json.loads(raw)
        except ValueError:
            return None
        if isinstance(record, dict):
            if isinstance(record.get("seq"), int) and "data" in record:
                return record
            if isinstance(record.get("ack"), int):
                return record
        return None

    # ------------------------------------------------------------------ queue

    def append(self, data: Any) -> int:
        """Add `data` (any JSON value) at the tail; durable on return. Returns its sequence."""
        with self._mutex:
            self._check_open()
            seq = self._next_seq
            line = _line({"seq": seq, "data": data})
            self._append_line(line)
            self._next_seq += 1
            self._entries.append(Entry(seq, data))
            self._line_bytes[seq] = len(line)
            return seq

    def _check_open(self) -> None:
        if self._fd < 0:
            raise SpoolClosed(f"spool {self.path} is closed; open it again to change it")

    def head(self) -> Entry | None:
        with self._mutex:
            return self._entries[0] if self._entries else None

    def entries(self) -> list[Entry]:
        with self._mutex:
            return list(self._entries)

    def ack(self, seq: int) -> None:
        """Remove entry `seq` (normally the head); durable on return. Unknown seqs: no-op."""
        with self._mutex:
            self._check_open()
            if not any(e.seq == seq for e in self._entries):
                return
            self._entries = deque(e for e in self._entries if e.seq != seq)
            del self._line_bytes[seq]
            if not self._entries:
                os.ftruncate(self._fd, 0)
                os.fsync(self._fd)
                self._size = 0
                return
            self._append_line(_line({"ack": seq}))
            # Rewrite only when most of the file is dead, so each rewrite pays for itself.
            if self._size > self.compact_bytes and self._size > 2 * sum(self._line_bytes.values()):
                self._compact()

    def _append_line(self, line: bytes) -> None:
        try:
            _write_all(self._fd, line)
            os.fsync(self._fd)
        except OSError:
            # A disk full mid-line must not leave half a line for the next append to
            # glue itself onto: cut back to the last whole line, then report.
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, self._size)
            raise
        self._size += len(line)

    def _compact(self) -> None:
        tmp = self.path.with_name(self.path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o644)
        content = b"".join(_line({"seq": e.seq, "data": e.data}) for e in self._entries)
        try:
            _write_all(fd, content)
            os.fsync(fd)
        except BaseException:
            os.close(fd)
            raise
        os.replace(tmp, self.path)
        _fsync_dir(self.path.parent)
        os.close(self._fd)
        self._fd = fd
        self._size = len(content)

    def __len__(self) -> int:
        with self._mutex:
            return len(self._entries)

    def __iter__(self) -> Iterator[Entry]:
        return iter(self.entries())

    def close(self) -> None:
        """Release the file and the lock; the spool can then be opened again."""
        with self._mutex:
            if self._fd < 0:
                return
            os.close(self._fd)
            self._fd = -1
            with contextlib.suppress(OSError):
                fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            os.close(self._lock_fd)
