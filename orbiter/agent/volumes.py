"""Persistent volumes on the agent: directories under the work dir that outlive tasks.

A volume lives at `<work dir>/volumes/<role>/<persistence id>`. The master is the
source of truth for which volumes exist: after every registration and every
CREATE or DESTROY it sends the whole list, which the agent checkpoints in
`<work dir>/volumes.json`. A volume in the previous list and not in the new one
was destroyed: its data is removed (the master destroys only volumes no task
uses). A directory found that neither list names is left alone and reported at
registration, so a master that lost track of it cannot make the agent delete data.

Tasks see a volume at its container path. The process containerizer links it into
the sandbox with a symlink (`<sandbox>/<container path>` -> the volume): a bind
mount needs CAP_SYS_ADMIN, and an agent running as an ordinary user must manage
too. The link is relative (`../../../volumes/<role>/<id>`), so it resolves within
the work dir whatever the directories above it allow; the task's working
directory is its sandbox, so relative container paths resolve; and
the sandbox's disk watch does not follow links, so a volume's data never counts
against the task's `disk` (it is the volume's own reserved disk). Docker tasks get
a bind mount at the container path (relative paths are under the sandbox mount).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from orbiter.proto import messages_pb2 as pb

log = logging.getLogger(__name__)

CHECKPOINT = "volumes.json"


def host_dir(work_dir: Path, role: str, persistence_id: str) -> Path:
    return work_dir / "volumes" / (role or "*") / persistence_id


def work_dir_of(sandbox: Path) -> Path:
    """Sandboxes are <work dir>/sandboxes/<framework>/<task>."""
    return sandbox.parents[2]


@dataclass(frozen=True, slots=True)
class Mount:
    host: Path
    container_path: str


def mounts(task: pb.TaskInfo, sandbox: Path) -> list[Mount]:
    """Where each of the task's volumes is on this host, and where the task sees it."""
    if not task.volumes:
        return []
    work_dir = work_dir_of(sandbox)
    return [
        Mount(host_dir(work_dir, v.role, v.persistence_id), v.container_path) for v in task.volumes
    ]


def link_into_sandbox(task: pb.TaskInfo, sandbox: Path, owner: tuple[int, int] | None) -> None:
    """For process tasks: make each volume (owned by the task's user at its top, like
    the sandbox) and link it at its container path. Blocking: call in a thread."""
    for m in mounts(task, sandbox):
        if m.container_path.startswith("/"):
            raise OSError(f"volume path {m.container_path!r} is absolute: only Docker tasks")
        prepare(m.host, owner)
        link = sandbox / m.container_path
        link.parent.mkdir(parents=True, exist_ok=True)
        # Relative: resolved from the sandbox down the work dir, so the task's user needs
        # no access to the directories above the work dir (often closed, like /tmp/x 0700).
        target = os.path.relpath(m.host, link.parent)
        if link.is_symlink() and os.readlink(link) == target:
            continue
        if link.is_symlink() or link.exists():
            raise OSError(f"{link} exists in the sandbox: cannot put the volume there")
        link.symlink_to(target, target_is_directory=True)


def prepare(path: Path, owner: tuple[int, int] | None) -> None:
    path.mkdir(parents=True, exist_ok=True)
    if owner is not None:
        os.chown(path, *owner)


class VolumeStore:
    """The agent's checkpointed list of volumes; blocking methods: call in a thread."""

    def __init__(self, work_dir: Path) -> None:
        self.work_dir = work_dir
        self.path = work_dir / CHECKPOINT

    def listed(self) -> list[pb.Volume]:
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return []
        except (OSError, ValueError) as e:
            log.error("cannot read %s (%s): treating it as empty", self.path, e)
            return []
        return [pb.Volume(**item) for item in data.get("volumes", [])]

    def held(self) -> list[pb.Volume]:
        """Volumes to report at registration: those listed, and directories found."""
        out = {v.persistence_id: v for v in self.listed()}
        root = self.work_dir / "volumes"
        if root.is_dir():
            for role_dir in sorted(root.iterdir()):
                if not role_dir.is_dir():
                    continue
                for vol in sorted(role_dir.iterdir()):
                    if vol.is_dir() and vol.name not in out:
                        role = "" if role_dir.name == "*" else role_dir.name
                        out[vol.name] = pb.Volume(persistence_id=vol.name, role=role)
        return list(out.values())

    def update(self, volumes: list[pb.Volume], in_use: frozenset[str] = frozenset()) -> list[str]:
        """Keep exactly `volumes`: make the new, remove the data of those dropped since
        the last list; returns the persistence ids removed. A dropped volume that a task
        here still uses (the master thought otherwise) keeps its data and stays listed
        until a later list finds it unused."""
        before = {v.persistence_id: v for v in self.listed()}
        now = {v.persistence_id: v for v in volumes}
        kept = [v for pid, v in before.items() if pid not in now and pid in in_use]
        for v in kept:
            log.warning("volume %s was destroyed but a task here uses it: kept for now", v)
        for v in volumes:
            host_dir(self.work_dir, v.role, v.persistence_id).mkdir(parents=True, exist_ok=True)
        self._write([*volumes, *kept])
        removed = []
        for pid, v in before.items():
            if pid not in now and pid not in in_use:
                path = host_dir(self.work_dir, v.role, pid)
                log.info("removing destroyed volume %s at %s", pid, path)
                shutil.rmtree(path, ignore_errors=True)
                removed.append(pid)
        return removed

    def _write(self, volumes: list[pb.Volume]) -> None:
        data = {
            "volumes": [
                {
                    "persistence_id": v.persistence_id,
                    "role": v.role,
                    "size": v.size,
                    "container_path": v.container_path,
                    "principal": v.principal,
                }
                for v in volumes
            ]
        }
        tmp = self.path.with_suffix(".tmp")
        with open(tmp, "w") as f:
            json.dump(data, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
