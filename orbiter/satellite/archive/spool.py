"""A bounded, durable FIFO of opaque batches in segment files, for the archive's sinks.

Why not orbiter/alerts/spool.py: that spool keeps every pending entry in memory
and JSON-encodes each one, which suits a few alerts but not 256 MiB of
line protocol backed up behind a dead InfluxDB. Here the data stays on disk
and memory holds one small index tuple per batch (thousands of samples).

Layout: `<dir>/seg-<first seq>.log` files of records

    header: seq u64, count u32, length u32, spooled_at f64, crc32 u32  (little endian)
    payload: `length` bytes

appended with one `write` each and one fsync per `append` call (a whole
flush of batches), then acknowledged to the caller. `acked` holds the last
delivered seq (written to a temp file, fsynced, renamed). A crash can lose
the newest rename, so a batch may be sent twice after one; both sinks make
a re-send harmless (InfluxDB overwrites the same point, Elasticsearch sees the
same `_id`). Opening replays the segments: a record whose checksum fails at
the end of the last segment is a write torn by a crash and is cut off; one
elsewhere is damage, logged, and the rest of that segment skipped. A segment
whose records are all delivered is deleted.

Bounded: `append` refuses batches that would take the files past `max_bytes`
and says how many it took; the caller counts the rest as dropped. One
process per directory (flock on `lock`). Synchronous and thread-safe:
asyncio callers run it in a thread, because fsync blocks.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import struct
import threading
import zlib
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from orbiter.alerts.spool import SpoolLocked

log = logging.getLogger("orbiter.archive")

_HEADER = struct.Struct("<QIIdI")
SEGMENT_BYTES = 8 << 20

__all__ = ["Batch", "BatchSpool", "SpoolLocked"]


@dataclass(frozen=True, slots=True)
class Batch:
    """One spooled batch: `count` samples or events encoded in `payload`."""

    seq: int
    count: int
    spooled_at: float
    payload: bytes


def _crc(seq: int, count: int, length: int, spooled_at: float, payload: bytes) -> int:
    return zlib.crc32(payload, zlib.crc32(struct.pack("<QIId", seq, count, length, spooled_at)))


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _segment_name(seq: int) -> str:
    return f"seg-{seq:020d}.log"


class BatchSpool:
    """append(batches) → head() → ack(seq), oldest first; everything survives kill -9."""

    def __init__(self, directory: Path, max_bytes: int, segment_bytes: int = SEGMENT_BYTES) -> None:
        self.dir = Path(directory)
        self.max_bytes = max_bytes
        self.segment_bytes = segment_bytes
        self._mutex = threading.Lock()
        # (seq, segment path, offset of the header, record length, count, spooled_at)
        self._index: deque[tuple[int, Path, int, int, int, float]] = deque()
        self._segments: dict[Path, int] = {}  # segment -> bytes on disk, oldest first
        self._pending_bytes = 0
        self._acked = -1
        self._next_seq = 0
        self._fd = -1  # the segment being appended to
        self._tail: Path | None = None
        self.dir.mkdir(parents=True, exist_ok=True)
        self._lock_fd = os.open(self.dir / "lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._lock_fd)
            raise SpoolLocked(
                f"archive spool {self.dir} is in use by another process; give each "
                "Satellite its own spool directory"
            ) from None
        try:
            self._replay()
        except BaseException:
            os.close(self._lock_fd)
            raise

    # ------------------------------------------------------------------ open

    def _replay(self) -> None:
        with contextlib.suppress(FileNotFoundError, ValueError):
            self._acked = int((self.dir / "acked").read_text().strip())
        self._next_seq = self._acked + 1
        segments = sorted(self.dir.glob("seg-*.log"))
        for i, seg in enumerate(segments):
            self._replay_segment(seg, last=i == len(segments) - 1)
        used = {entry[1] for entry in self._index}
        for seg in [s for s in self._segments if s not in used]:
            self._delete(seg)

    def _replay_segment(self, seg: Path, last: bool) -> None:
        content = seg.read_bytes()
        pos = 0
        while pos < len(content):
            record = self._parse(content, pos)
            if record is None:
                if last:
                    log.warning(
                        "archive spool %s: cutting off %d bytes of a record torn by a crash",
                        seg,
                        len(content) - pos,
                    )
                    with open(seg, "r+b") as f:
                        f.truncate(pos)
                        os.fsync(f.fileno())
                    content = content[:pos]
                else:
                    log.warning(
                        "archive spool %s: damaged record at byte %d; skipping the rest of "
                        "this segment (%d bytes)",
                        seg,
                        pos,
                        len(content) - pos,
                    )
                break
            seq, count, length, spooled_at = record
            size = _HEADER.size + length
            if seq > self._acked:
                self._index.append((seq, seg, pos, size, count, spooled_at))
                self._pending_bytes += size
            self._next_seq = max(self._next_seq, seq + 1)
            pos += size
        self._segments[seg] = len(content)

    @staticmethod
    def _parse(content: bytes, pos: int) -> tuple[int, int, int, float] | None:
        if pos + _HEADER.size > len(content):
            return None
        seq, count, length, spooled_at, crc = _HEADER.unpack_from(content, pos)
        start = pos + _HEADER.size
        if start + length > len(content):
            return None
        if _crc(seq, count, length, spooled_at, content[start : start + length]) != crc:
            return None
        return seq, count, length, spooled_at

    # ------------------------------------------------------------------ queue

    def append(self, batches: Sequence[tuple[bytes, int]], now: float) -> int:
        """Write (payload, count) batches in order and fsync once; how many fitted.

        Batches past `max_bytes` are not written (the caller counts them dropped). An
        OSError (disk full) cuts the segment back to its last whole record and raises.
        """
        with self._mutex:
            if self._lock_fd < 0:
                raise OSError(f"archive spool {self.dir} is closed")
            written = 0
            dirty: set[int] = set()
            try:
                for payload, count in batches:
                    size = _HEADER.size + len(payload)
                    if self.disk_bytes + size > self.max_bytes:
                        break
                    fd = self._tail_fd(size)
                    dirty.add(fd)
                    assert self._tail is not None
                    offset = self._segments[self._tail]
                    seq = self._next_seq
                    crc = _crc(seq, count, len(payload), now, payload)
                    record = _HEADER.pack(seq, count, len(payload), now, crc) + payload
                    self._write(fd, record, offset)
                    self._segments[self._tail] = offset + size
                    self._index.append((seq, self._tail, offset, size, count, now))
                    self._pending_bytes += size
                    self._next_seq += 1
                    written += 1
            finally:
                for fd in dirty:
                    os.fsync(fd)
            return written

    def _tail_fd(self, size: int) -> int:
        assert self._lock_fd >= 0
        if self._tail is not None and self._fd < 0:
            self._fd = os.open(self._tail, os.O_WRONLY | os.O_APPEND)
        if self._tail is None or (
            self._segments[self._tail] > 0
            and self._segments[self._tail] + size > self.segment_bytes
        ):
            if self._fd >= 0:
                os.fsync(self._fd)
                os.close(self._fd)
            self._tail = self.dir / _segment_name(self._next_seq)
            self._fd = os.open(self._tail, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            self._segments[self._tail] = 0
            _fsync_dir(self.dir)
        return self._fd

    def _write(self, fd: int, record: bytes, offset: int) -> None:
        try:
            view = memoryview(record)
            while view:
                view = view[os.write(fd, view) :]
        except OSError:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, offset)
            raise

    def head(self) -> Batch | None:
        """The oldest undelivered batch, read from disk."""
        with self._mutex:
            if not self._index:
                return None
            seq, seg, offset, size, count, spooled_at = self._index[0]
        with open(seg, "rb") as f:
            f.seek(offset + _HEADER.size)
            payload = f.read(size - _HEADER.size)
        return Batch(seq, count, spooled_at, payload)

    def skip_head(self) -> int:
        """Give up on the head batch (its record cannot be read); how many items it held."""
        with self._mutex:
            if not self._index:
                return 0
            seq, count = self._index[0][0], self._index[0][4]
        self.ack(seq)
        return count

    def ack(self, seq: int) -> None:
        """The head batch `seq` was delivered (or given up on): forget it for good."""
        with self._mutex:
            if not self._index or self._index[0][0] != seq:
                return
            _, seg, _, size, _, _ = self._index.popleft()
            self._pending_bytes -= size
            self._acked = seq
            tmp = self.dir / "acked.tmp"
            with open(tmp, "w") as f:
                f.write(f"{seq}\n")
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.dir / "acked")
            still_used = self._index and self._index[0][1] == seg
            if not still_used and seg != self._tail:
                self._delete(seg)
            elif not self._index and seg == self._tail:
                # Everything delivered: start the next append on a fresh segment.
                if self._fd >= 0:
                    os.close(self._fd)
                    self._fd = -1
                self._tail = None
                self._delete(seg)

    def _delete(self, seg: Path) -> None:
        with contextlib.suppress(FileNotFoundError):
            seg.unlink()
        self._segments.pop(seg, None)

    # ------------------------------------------------------------------ state

    @property
    def disk_bytes(self) -> int:
        """Bytes of segment files on disk (what `max_bytes` bounds)."""
        return sum(self._segments.values())

    @property
    def next_seq(self) -> int:
        """The seq the next appended batch gets (only the single writer may rely on it)."""
        return self._next_seq

    @property
    def pending_bytes(self) -> int:
        """Bytes of the batches not yet delivered."""
        return self._pending_bytes

    def pending(self) -> tuple[int, int, float | None]:
        """(batches, items, spooled_at of the oldest) not yet delivered."""
        with self._mutex:
            items = sum(entry[4] for entry in self._index)
            return len(self._index), items, self._index[0][5] if self._index else None

    def oldest(self) -> float | None:
        with self._mutex:
            return self._index[0][5] if self._index else None

    def __len__(self) -> int:
        return len(self._index)

    def close(self) -> None:
        with self._mutex:
            if self._lock_fd < 0:
                return
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1
            with contextlib.suppress(OSError):
                fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            os.close(self._lock_fd)
            self._lock_fd = -1
