"""A sandbox's disk usage, watched against the task's `disk`.

(stdout and stderr are capped as they are written: orbiter/agent/isolation/logs.py.)
"""

from __future__ import annotations

import os
from pathlib import Path


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
