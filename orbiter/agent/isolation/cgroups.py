"""Cgroup files: find the hierarchies, make a task's cgroup, start the task in it,
kill everything in it, read what happened, remove it.

v1 has one hierarchy per controller (memory, cpu, cpuacct, pids, freezer); a
task gets `orbiter/<agent id>/<key>` under each. v2 has one unified tree where
the task gets one directory with every controller enabled down to it.

Placement before exec, without a wrapper process: on v1 the spawning *thread*
moves itself into the task's cgroups (`tasks` takes a thread id), forks and
execs the task, which inherits them, and moves back; it costs a few writes and
keeps argv and the exit status exactly the task's. v2 does not let one thread
of a process into a domain cgroup, so there the keeper moves the new pid right
after the spawn: a child the task forks in its first instant could stay
outside (CLONE_INTO_CGROUP would close that gap; Python's subprocess cannot use it).
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from .policy import Limits, limit_writes

log = logging.getLogger("orbiter.agent.isolation")

ROOT = Path("/sys/fs/cgroup")
V1_CONTROLLERS = ("memory", "cpu", "cpuacct", "pids", "freezer")
V1_REQUIRED = ("memory", "cpu", "pids")
V2_REQUIRED = ("memory", "cpu", "pids")
T = TypeVar("T")


@dataclass(frozen=True)
class Layout:
    """Where the cgroup hierarchies are: v1 controller -> mount, or v2's one root ("")."""

    version: int
    roots: tuple[tuple[str, Path], ...]

    def root(self, controller: str) -> Path | None:
        for name, path in self.roots:
            if name == controller:
                return path
        return None

    def writable(self) -> bool:
        return all(os.access(path, os.W_OK) for _, path in self.roots)


def detect(base: Path = ROOT) -> Layout | None:
    """v2 if `base` is the unified tree with memory, cpu and pids; v1 if those three
    controllers have their own (or co-mounted) hierarchies under `base`; else None."""
    controllers_file = base / "cgroup.controllers"
    if controllers_file.exists():
        try:
            available = set(controllers_file.read_text().split())
        except OSError:
            return None
        if set(V2_REQUIRED) <= available:
            return Layout(2, (("", base),))
        return None
    roots: list[tuple[str, Path]] = []
    for controller in V1_CONTROLLERS:
        path = base / controller
        if (path / "tasks").exists():
            roots.append((controller, path.resolve()))
    found = {name for name, _ in roots}
    if not set(V1_REQUIRED) <= found:
        return None
    # cpu and cpuacct co-mounted: one directory, listed once for creation and placement.
    return Layout(1, tuple(roots))


def _write(path: Path, value: str) -> None:
    with open(path, "w") as f:
        f.write(value)


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except OSError:
        return None


@dataclass(frozen=True)
class TaskCgroup:
    """One task's cgroup: `relpath` under every root of `layout`."""

    layout: Layout
    relpath: str

    def dirs(self) -> dict[str, Path]:
        seen: dict[Path, str] = {}
        for controller, root in self.layout.roots:
            seen.setdefault(root / self.relpath, controller)
        return {controller: path for path, controller in seen.items()}

    def dir(self, controller: str) -> Path | None:
        """The directory for `controller` (v2: the one directory, whatever is asked)."""
        if self.layout.version == 2:
            return self.layout.roots[0][1] / self.relpath
        root = self.layout.root(controller)
        return None if root is None else root / self.relpath

    def paths(self) -> list[str]:
        return [str(p) for p in self.dirs().values()]

    def exists(self) -> bool:
        return any(p.is_dir() for p in self.dirs().values())

    def create(self, limits: Limits) -> None:
        """Make the directories and write the limits (OSError says which file failed)."""
        if self.layout.version == 2:
            self._enable_v2_controllers()
        for path in self.dirs().values():
            path.mkdir(parents=True, exist_ok=True)
        memory = self.dir("memory")
        memsw = memory is not None and (
            (memory / "memory.memsw.limit_in_bytes").exists()
            or (memory / "memory.swap.max").exists()
        )
        for controller, name, value in limit_writes(self.layout.version, limits, memsw):
            target = self.dir(controller)
            if target is None:
                continue
            try:
                _write(target / name, value)
            except OSError as e:
                message = f"cannot write {value} to {target / name}: {e.strerror}"
                raise OSError(e.errno, message) from None

    def _enable_v2_controllers(self) -> None:
        """Every ancestor of the task's directory hands memory, cpu and pids down."""
        root = self.layout.roots[0][1]
        enable = " ".join(f"+{c}" for c in V2_REQUIRED)
        current = root
        for part in Path(self.relpath).parts:
            control = current / "cgroup.subtree_control"
            enabled = set((_read(control) or "").split())
            if not set(V2_REQUIRED) <= enabled:
                _write(control, enable)
            current = current / part
            current.mkdir(exist_ok=True)

    def pids(self) -> set[int]:
        found: set[int] = set()
        for path in self.dirs().values():
            text = _read(path / "cgroup.procs")
            if text:
                found.update(int(line) for line in text.split())
        return found

    def signal(self, signum: int) -> None:
        signal_pids(self.pids(), signum)

    def kill(self, timeout: float = 5.0) -> bool:
        """SIGKILL everything in the cgroup until it is empty; True if it is."""
        return kill_all(self.paths(), timeout)

    def oom_kills(self) -> int:
        """How many processes the OOM killer ended in the cgroup (0 if unknown)."""
        memory = self.dir("memory")
        if memory is None:
            return 0
        name = "memory.oom_control" if self.layout.version == 1 else "memory.events"
        return _keyed(_read(memory / name) or "", "oom_kill")

    def memory_limit(self) -> int | None:
        memory = self.dir("memory")
        name = "memory.limit_in_bytes" if self.layout.version == 1 else "memory.max"
        text = (_read(memory / name) or "").strip() if memory else ""
        return int(text) if text.isdigit() else None

    def memory_peak(self) -> int | None:
        memory = self.dir("memory")
        name = "memory.max_usage_in_bytes" if self.layout.version == 1 else "memory.peak"
        text = (_read(memory / name) or "").strip() if memory else ""
        return int(text) if text.isdigit() else None

    def cpu_usage_seconds(self) -> float | None:
        """CPU time used by the cgroup so far (cpuacct.usage, or v2's cpu.stat usage_usec)."""
        if self.layout.version == 1:
            acct = self.dir("cpuacct")
            text = (_read(acct / "cpuacct.usage") or "").strip() if acct else ""
            return int(text) / 1e9 if text.isdigit() else None
        cpu = self.dir("")
        usage = _keyed(_read(cpu / "cpu.stat") or "", "usage_usec") if cpu else 0
        return usage / 1e6

    def remove(self, timeout: float = 5.0) -> bool:
        """Kill what is left and remove the directories; True if they are gone.

        Parents (the framework's directory) stay: removing them would race with a
        launch making its cgroup under them. An agent's start removes empty ones.
        """
        if not self.exists():
            return True
        self.kill(timeout)
        gone = True
        for path in self.dirs().values():
            gone = _rmdir(path, timeout) and gone
        return gone


def _keyed(text: str, key: str) -> int:
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] == key and parts[1].isdigit():
            return int(parts[1])
    return 0


def _rmdir(path: Path, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        try:
            path.rmdir()
            return True
        except FileNotFoundError:
            return True
        except OSError as e:
            if e.errno != errno.EBUSY or time.monotonic() > deadline:
                log.warning("cannot remove cgroup %s: %s", path, e)
                return False
        time.sleep(0.01)  # a dying process leaves the cgroup within milliseconds


def procs_of(dirs: Iterable[str]) -> set[int]:
    found: set[int] = set()
    for d in dirs:
        text = _read(Path(d) / "cgroup.procs")
        if text:
            found.update(int(line) for line in text.split())
    return found


def signal_pids(pids: Iterable[int], signum: int) -> None:
    me = os.getpid()  # a spawning thread of ours may linger in a task's cgroup
    for pid in pids:
        if pid == me:
            continue
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signum)


def signal_all(dirs: Iterable[str], signum: int) -> None:
    signal_pids(procs_of(dirs), signum)


def kill_all(dirs: Iterable[str], timeout: float = 5.0) -> bool:
    """SIGKILL every process in the cgroups until none is left (a fork between the
    read and the kill is caught by the next round; v2's cgroup.kill does it at once;
    on v1 the freezer stops forks while we kill when the task is in it)."""
    dirs = [d for d in dirs if os.path.isdir(d)]
    if not procs_of(dirs):
        return True  # the usual case once a task ended: nothing to freeze or kill
    for d in dirs:
        kill_file = Path(d) / "cgroup.kill"
        if kill_file.exists():
            with contextlib.suppress(OSError):
                _write(kill_file, "1")
    freezer = next((Path(d) for d in dirs if (Path(d) / "freezer.state").exists()), None)
    if freezer is not None:
        with contextlib.suppress(OSError):
            _write(freezer / "freezer.state", "FROZEN")
    deadline = time.monotonic() + timeout
    try:
        while True:
            pids = procs_of(dirs)
            if not pids:
                return True
            signal_pids(pids, signal.SIGKILL)
            if freezer is not None:
                # SIGKILL is delivered once the frozen tasks thaw.
                with contextlib.suppress(OSError):
                    _write(freezer / "freezer.state", "THAWED")
            if time.monotonic() > deadline:
                log.warning("processes %s are still in cgroup %s", sorted(pids), dirs)
                return False
            time.sleep(0.005)
    finally:
        if freezer is not None:
            with contextlib.suppress(OSError):
                _write(freezer / "freezer.state", "THAWED")


# ---------------------------------------------------------------- placement


def spawn_in(dirs: list[str], spawn: Callable[[], T], pid_of: Callable[[T], int]) -> T:
    """Run `spawn` (a fork + exec) so that the new process starts in `dirs`.

    On v1 a throwaway thread moves itself in and spawns: it ends there rather
    than moving back, since each move write-locks the kernel's cgroup
    threadgroup lock (which every fork on the host takes for reading).
    """
    if not dirs:
        return spawn()
    v1 = [Path(d) for d in dirs if (Path(d) / "tasks").exists()]
    v2 = [Path(d) for d in dirs if not (Path(d) / "tasks").exists()]
    result = _in_thread(v1, spawn) if v1 else spawn()
    pid = pid_of(result)
    for d in v2:
        _write(d / "cgroup.procs", str(pid))
    return result


def _in_thread(v1: list[Path], spawn: Callable[[], T]) -> T:
    outcome: list[T] = []
    failure: list[BaseException] = []
    tids: list[str] = []

    def run() -> None:
        try:
            tid = str(threading.get_native_id())
            tids.append(tid)
            for d in v1:
                _write(d / "tasks", tid)
            outcome.append(spawn())
        except BaseException as e:  # handed to the caller's thread
            failure.append(e)

    thread = threading.Thread(target=run, name="spawn-in-cgroup", daemon=True)
    thread.start()
    thread.join()
    # join() returns before the kernel thread is gone: until it is, our process is
    # listed in the task's cgroup.procs, and a kill of the cgroup would hit us.
    _wait_left(v1, tids[0] if tids else "")
    if failure:
        raise failure[0]
    return outcome[0]


def _wait_left(dirs: list[Path], tid: str, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    for d in dirs:
        while tid and tid in (_read(d / "tasks") or "").split():
            if time.monotonic() > deadline:
                log.error("spawning thread %s is still in cgroup %s", tid, d)
                return
            time.sleep(0.0002)


def leftovers(layout: Layout, agent_relpath: str) -> list[str]:
    """Relative paths of task cgroups under `agent_relpath` (keys may hold one '/')."""
    found: set[str] = set()
    for _, root in layout.roots:
        base = root / agent_relpath
        if not base.is_dir():
            continue
        for first in base.iterdir():
            if not first.is_dir():
                continue
            children = [c for c in first.iterdir() if c.is_dir()]
            if children:
                found.update(f"{agent_relpath}/{first.name}/{c.name}" for c in children)
            else:
                found.add(f"{agent_relpath}/{first.name}")
    return sorted(found)
