"""The sandbox's disk usage and the size cap of its stdout and stderr.

The task writes its output straight to `stdout`/`stderr` (opened O_APPEND, no
pipe through the agent, so output costs the agent nothing). Rotation is
therefore copy-and-truncate, as logrotate's `copytruncate`: the last `cap`
bytes go to `stdout.1`, then `stdout` is truncated and the task's next write
lands at its new end. Output written between the copy and the truncate is lost;
at most about two caps stay on disk per stream (`stdout.1` plus what is written
between two checks).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

LOG_STREAMS = ("stdout", "stderr")


def usage(path: Path) -> int:
    """Bytes allocated under `path` (as du: blocks, hard links counted once)."""
    total = 0
    seen: set[tuple[int, int]] = set()
    stack = [str(path)]
    while stack:
        current = stack.pop()
        try:
            entries = os.scandir(current)
        except OSError:
            continue
        with entries:
            for entry in entries:
                try:
                    st = entry.stat(follow_symlinks=False)
                except OSError:
                    continue
                if entry.is_dir(follow_symlinks=False):
                    stack.append(entry.path)
                if (st.st_dev, st.st_ino) in seen:
                    continue
                seen.add((st.st_dev, st.st_ino))
                total += st.st_blocks * 512
    return total


def over_limit(used: int, limit: int | None) -> bool:
    return limit is not None and used > limit


def rotate(path: Path, cap: int) -> bool:
    """If `path` is over `cap` bytes: its last `cap` bytes become `path.1`, and it is
    truncated. True if it rotated."""
    try:
        size = path.stat().st_size
    except OSError:
        return False
    if size <= cap:
        return False
    rotated = path.with_name(path.name + ".1")
    tmp = path.with_name(path.name + ".1.tmp")
    with open(path, "rb") as src, open(tmp, "wb") as dst:
        src.seek(max(0, size - cap))
        remaining = cap
        while remaining > 0:
            chunk = src.read(min(remaining, 1 << 20))
            if not chunk:
                break
            dst.write(chunk)
            remaining -= len(chunk)
    with contextlib.suppress(OSError):
        st = path.stat()
        os.chown(tmp, st.st_uid, st.st_gid)
    os.replace(tmp, rotated)
    os.truncate(path, 0)
    return True


def rotate_logs(sandbox: Path, cap: int | None) -> int:
    """Rotate the sandbox's stdout and stderr; how many rotated."""
    if cap is None or cap <= 0:
        return 0
    return sum(rotate(sandbox / name, cap) for name in LOG_STREAMS)
