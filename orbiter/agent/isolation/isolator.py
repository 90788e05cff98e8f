"""The agent's isolation: decides the mechanism once at start, then per task key
makes its cgroup (or rlimits), finds it again after a restart, and removes it."""

from __future__ import annotations

import contextlib
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

from orbiter.proto import messages_pb2 as pb

from . import cgroups
from .policy import DEFAULT_PIDS_MAX, Limits, Mechanism, Plan, decide, limits_of, rlimits

log = logging.getLogger("orbiter.agent.isolation")

_UNSAFE = re.compile(r"[^A-Za-z0-9_.:@=+-]")


@dataclass(frozen=True)
class Prepared:
    """What the keeper needs to start one task under its limits."""

    limits: Limits
    cgroup: cgroups.TaskCgroup | None
    rlimit_as: int | None = None
    rlimit_nproc: int | None = None


def _safe(part: str) -> str:
    """A path component from an id: no '/', no '..', nothing odd."""
    cleaned = _UNSAFE.sub("_", part) or "_"
    return "_" if cleaned in (".", "..") else cleaned


class Isolator:
    def __init__(
        self,
        enabled: bool = True,
        task_user: str = "nobody",
        pids_max: int | None = DEFAULT_PIDS_MAX,
        root: Path = cgroups.ROOT,
        euid: int | None = None,
    ) -> None:
        self.layout = cgroups.detect(root) if enabled else None
        self.task_user = task_user
        self.pids_max = pids_max
        self.plan: Plan = decide(
            enabled,
            None if self.layout is None else self.layout.version,
            self.layout is not None and self.layout.writable(),
            os.geteuid() if euid is None else euid,
            task_user,
        )
        self.agent_id = ""

    @property
    def mechanism(self) -> Mechanism:
        return self.plan.mechanism

    @property
    def uses_cgroups(self) -> bool:
        return self.plan.mechanism in (Mechanism.CGROUPS_V1, Mechanism.CGROUPS_V2)

    def announce(self) -> None:
        for note in self.plan.notes:
            log.info("isolation: %s", note)

    def _agent_relpath(self) -> str:
        return f"orbiter/{_safe(self.agent_id or 'unregistered')}"

    def relpath(self, key: str) -> str:
        return "/".join([self._agent_relpath(), *(_safe(p) for p in key.split("/", 1))])

    def cgroup(self, key: str) -> cgroups.TaskCgroup | None:
        if not self.uses_cgroups or self.layout is None:
            return None
        return cgroups.TaskCgroup(self.layout, self.relpath(key))

    def prepare(self, key: str, task: pb.TaskInfo) -> Prepared:
        """Make the task's cgroup with its limits (blocking file work: call in a thread)."""
        limits = limits_of(task.resources, self.pids_max)
        if self.plan.mechanism == Mechanism.OFF:
            return Prepared(Limits(), None)
        if self.plan.mechanism == Mechanism.RLIMITS:
            mem, nproc = rlimits(limits, self.plan.switch_users)
            return Prepared(limits, None, mem, nproc)
        cgroup = self.cgroup(key)
        assert cgroup is not None
        if cgroup.exists():  # a leftover of an earlier task with this key
            cgroup.remove()
        cgroup.create(limits)
        return Prepared(limits, cgroup)

    def limits(self, task: pb.TaskInfo) -> Limits:
        if self.plan.mechanism == Mechanism.OFF:
            return Limits()
        return limits_of(task.resources, self.pids_max)

    def tidy(self) -> None:
        """Remove this agent's empty framework directories and its own, if empty (an
        rmdir of a cgroup with children fails, so a running task's stays)."""
        if not self.uses_cgroups or self.layout is None:
            return
        for _, root in self.layout.roots:
            agent_dir = root / self._agent_relpath()
            for child in agent_dir.glob("*/"):
                with contextlib.suppress(OSError):
                    child.rmdir()
            with contextlib.suppress(OSError):
                agent_dir.rmdir()

    def remove_leftovers(self, keep: set[str]) -> list[str]:
        """Remove the task cgroups of this agent that no running task owns (blocking)."""
        if not self.uses_cgroups or self.layout is None:
            return []
        keep_paths = {self.relpath(k) for k in keep}
        removed = []
        for relpath in cgroups.leftovers(self.layout, self._agent_relpath()):
            if relpath not in keep_paths:
                cgroups.TaskCgroup(self.layout, relpath).remove()
                removed.append(relpath)
        return removed
