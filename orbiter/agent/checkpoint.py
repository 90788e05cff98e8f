"""What a restarted agent needs to know about its tasks, kept in their sandboxes.

Each process task's sandbox holds `.orbiter-task.pb` (a TaskCheckpoint): the
task, its pid and, once it ended, the terminal status (with its uuid) until
the framework has acknowledged it. Written to a temp file and renamed, so a
`kill -9` of the agent leaves the old record or the new one, never half of
one. No fsync: this guards against the agent process dying, not the machine.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from orbiter.proto import agent_pb2, messages_pb2

FILE = ".orbiter-task.pb"


def write(
    sandbox: Path,
    framework_id: str,
    task: messages_pb2.TaskInfo,
    pid: int | None,
    terminal: messages_pb2.TaskStatus | None = None,
) -> None:
    record = agent_pb2.TaskCheckpoint(framework_id=framework_id, task=task, pid=pid or 0)
    if terminal is not None:
        record.terminal.CopyFrom(terminal)
    tmp = sandbox / (FILE + ".tmp")
    tmp.write_bytes(record.SerializeToString())
    os.replace(tmp, sandbox / FILE)


def remove(sandbox: Path) -> None:
    (sandbox / FILE).unlink(missing_ok=True)


def scan(sandboxes: Path) -> Iterator[tuple[Path, agent_pb2.TaskCheckpoint]]:
    """Every checkpointed task under `sandboxes/<framework>/<task>/`, with its sandbox."""
    for path in sorted(sandboxes.glob(f"*/*/{FILE}")):
        record = agent_pb2.TaskCheckpoint()
        try:
            record.ParseFromString(path.read_bytes())
        except Exception:  # a DecodeError: the file is not ours or damaged; leave it be
            continue
        yield path.parent, record


FRAMEWORKS = "frameworks"


def write_framework(work_dir: Path, info: messages_pb2.FrameworkInfo) -> None:
    """Keep the framework's info (its principal owns its sandboxes) beside the sandboxes,
    for as long as they are: a finished task's sandbox is still read through /files."""
    folder = work_dir / FRAMEWORKS
    folder.mkdir(exist_ok=True)
    path = folder / f"{info.id}.pb"
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(info.SerializeToString())
    os.replace(tmp, path)


def read_framework(work_dir: Path, framework_id: str) -> messages_pb2.FrameworkInfo | None:
    """The info kept by write_framework, or None (unknown, or from before it was kept)."""
    info = messages_pb2.FrameworkInfo()
    try:
        info.ParseFromString((work_dir / FRAMEWORKS / f"{framework_id}.pb").read_bytes())
    except (OSError, ValueError):
        return None
    except Exception:  # a DecodeError: damaged; the sandbox then has no known owner
        return None
    return info
