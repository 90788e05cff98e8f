"""Pure decisions: which isolation mechanism an agent uses and what a task is held to.

No file is read here: `decide` takes what detection found and the agent's uid,
so every combination is a table row in tests/unit/test_isolation_policy.py.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass

from orbiter.proto import messages_pb2 as pb

MIB = 1024 * 1024
CFS_PERIOD_US = 100_000
MIN_CFS_QUOTA_US = 1_000  # the kernel refuses less
DEFAULT_PIDS_MAX = 1024


class Mechanism(enum.Enum):
    CGROUPS_V1 = "cgroups v1"
    CGROUPS_V2 = "cgroups v2"
    RLIMITS = "rlimits"
    OFF = "off"


@dataclass(frozen=True)
class Plan:
    """What the agent enforces, and the sentences it logs at start about it."""

    mechanism: Mechanism
    switch_users: bool
    notes: tuple[str, ...]


def decide(
    enabled: bool,
    cgroup_version: int | None,
    cgroups_writable: bool,
    euid: int,
    task_user: str,
) -> Plan:
    """Cgroups when asked for, mounted and writable (root); else rlimits; `--no-isolation`: off."""
    notes: list[str] = []
    switch_users = euid == 0
    if not switch_users:
        notes.append(
            f"the agent runs as uid {euid}, not root: tasks run as the agent's own user, "
            f"not as {task_user!r}, and command.user other than that user is refused"
        )
    if not enabled:
        notes.append(
            "isolation is off (--no-isolation): no memory, CPU, pids or disk limit is enforced; "
            "a task's children that leave its process group survive its kill"
        )
        return Plan(Mechanism.OFF, switch_users, tuple(notes))
    if cgroup_version in (1, 2) and cgroups_writable and euid == 0:
        mechanism = Mechanism.CGROUPS_V1 if cgroup_version == 1 else Mechanism.CGROUPS_V2
        notes.append(
            f"tasks are held to their resources with {mechanism.value}: memory, CPU shares "
            "and quota, pids; a kill kills the task's whole cgroup"
        )
        return Plan(mechanism, switch_users, tuple(notes))
    why = (
        "no cgroup hierarchy with memory, cpu and pids is mounted"
        if cgroup_version is None
        else "the agent is not root"
        if euid != 0
        else "the cgroup hierarchy is not writable"
    )
    nproc = (
        "and processes per user (RLIMIT_NPROC, shared by every task of that user)"
        if switch_users
        else "(not RLIMIT_NPROC: it would count every process of the agent's own user)"
    )
    notes.append(
        f"cgroups are not available ({why}): limits fall back to rlimits. Enforced: memory as "
        f"address space (RLIMIT_AS, which also counts mapped but unused memory) {nproc}. "
        "Not enforced: CPU shares and quota, memory as resident usage with the OOM reason, "
        "and killing children that leave the task's process group"
    )
    return Plan(Mechanism.RLIMITS, switch_users, tuple(notes))


@dataclass(frozen=True)
class Limits:
    """One task's limits, from its resources; None is unlimited."""

    mem_bytes: int | None = None
    cpus: float | None = None
    pids_max: int | None = None
    disk_bytes: int | None = None


def limits_of(resources: Iterable[pb.Resource], pids_max: int | None) -> Limits:
    """The scalar `mem` and `disk` (MiB) and `cpus` a task was given (summed over roles)."""
    scalars: dict[str, float] = {}
    for r in resources:
        if r.type == pb.Resource.SCALAR:
            scalars[r.name] = scalars.get(r.name, 0.0) + r.scalar
    mem = scalars.get("mem")
    disk = scalars.get("disk")
    cpus = scalars.get("cpus")
    return Limits(
        mem_bytes=int(mem * MIB) if mem else None,
        cpus=cpus if cpus else None,
        pids_max=pids_max,
        disk_bytes=int(disk * MIB) if disk else None,
    )


def cpu_shares(cpus: float) -> int:
    return max(2, round(1024 * cpus))


def cfs_quota_us(cpus: float, period_us: int = CFS_PERIOD_US) -> int:
    return max(MIN_CFS_QUOTA_US, round(cpus * period_us))


def cpu_weight(cpus: float) -> int:
    """v2's cpu.weight for the v1 shares of `cpus` (the conversion systemd and runc use)."""
    return max(1, min(10000, 1 + ((cpu_shares(cpus) - 2) * 9999) // 262142))


def limit_writes(version: int, limits: Limits, memsw: bool) -> list[tuple[str, str, str]]:
    """(controller, file, value) to write into a new task cgroup, in order.

    v1 also caps memory+swap at the memory limit when the kernel accounts swap
    (`memsw`), so a task cannot page out past its `mem`; v2 sets memory.swap.max 0.
    """
    writes: list[tuple[str, str, str]] = []
    if version == 1:
        if limits.mem_bytes is not None:
            writes.append(("memory", "memory.limit_in_bytes", str(limits.mem_bytes)))
            if memsw:
                writes.append(("memory", "memory.memsw.limit_in_bytes", str(limits.mem_bytes)))
        if limits.cpus is not None:
            writes.append(("cpu", "cpu.shares", str(cpu_shares(limits.cpus))))
            writes.append(("cpu", "cpu.cfs_period_us", str(CFS_PERIOD_US)))
            writes.append(("cpu", "cpu.cfs_quota_us", str(cfs_quota_us(limits.cpus))))
        if limits.pids_max is not None:
            writes.append(("pids", "pids.max", str(limits.pids_max)))
        return writes
    if limits.mem_bytes is not None:
        writes.append(("", "memory.max", str(limits.mem_bytes)))
        if memsw:
            writes.append(("", "memory.swap.max", "0"))
    if limits.cpus is not None:
        writes.append(("", "cpu.weight", str(cpu_weight(limits.cpus))))
        writes.append(("", "cpu.max", f"{cfs_quota_us(limits.cpus)} {CFS_PERIOD_US}"))
    if limits.pids_max is not None:
        writes.append(("", "pids.max", str(limits.pids_max)))
    return writes


def rlimits(limits: Limits, switch_users: bool) -> tuple[int | None, int | None]:
    """(RLIMIT_AS, RLIMIT_NPROC) for the fallback; NPROC only for a task user of its own."""
    return limits.mem_bytes, limits.pids_max if switch_users else None


def memory_message(limit: int | None, peak: int | None) -> str:
    limit_text = f"{limit / MIB:g} MiB" if limit else "its limit"
    peak_text = f" (peak usage {peak / MIB:.1f} MiB)" if peak else ""
    return (
        f"Memory limit exceeded: the task's cgroup reached its memory limit of {limit_text}"
        f"{peak_text}, and the kernel's OOM killer ended it; give the task more `mem`"
    )


def disk_message(limit: int, used: int) -> str:
    return (
        f"Disk limit exceeded: the sandbox uses {used / MIB:.1f} MiB, over the task's disk "
        f"limit of {limit / MIB:g} MiB; the task was killed. Give it more `disk` or write less"
    )
