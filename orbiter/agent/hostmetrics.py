"""Host metrics for the agent's /metrics, read from psutil when Satellite scrapes.

Reading at scrape time (a Collector, not gauges updated by a timer) means every
sample is as fresh as the scrape and nothing runs between scrapes. Each section
(cpu, load, memory, ...) is read on its own: one that fails is left out of that
scrape, counted in `orbiter_host_collect_errors_total{section}` and logged once,
and the rest is still exported.

Disk paths are read with `os.statvfs` in a worker thread with a deadline,
because the agent renders /metrics on its event loop and a hung NFS mount would
otherwise hang the whole agent; a path that is missing, unreadable or hung is
skipped and counted in `orbiter_host_disk_errors_total{path}`.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import psutil
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)

DEFAULT_DISK_PATHS: tuple[str, ...] = ("/tmp",)
PROC_STAT = Path("/proc/stat")
DISK_TIMEOUT = 2.0
# psutil (like /proc/stat) counts guest time inside user and nice too; node_exporter
# leaves these out of node_cpu_seconds_total so the modes sum to wall time, and so do we.
_CPU_MODES_EXCLUDED = frozenset({"guest", "guest_nice"})

StatvfsFn = Callable[[str], Any]
# What a section of the collector reads: (family name, label values, value).
_Sample = tuple[str, list[str], float]


class HostSource(Protocol):
    """The psutil functions the collector uses; the psutil module itself is one."""

    def cpu_count(self, logical: bool = ...) -> int | None: ...
    def cpu_times(self, percpu: bool = ...) -> Any: ...
    def getloadavg(self) -> tuple[float, float, float]: ...
    def virtual_memory(self) -> Any: ...
    def swap_memory(self) -> Any: ...
    def net_io_counters(self, pernic: bool = ..., nowrap: bool = ...) -> Any: ...
    def boot_time(self) -> float: ...
    def process_iter(self, attrs: Any = ..., ad_value: Any = ...) -> Iterator[Any]: ...


# ---------------------------------------------------------------------- pure parts


@dataclass(frozen=True)
class DiskUsage:
    """One filesystem as `df` shows it: `free` is what unprivileged users can still use."""

    total: int
    used: int
    free: int
    inodes_total: int
    inodes_free: int


def disk_usage(st: Any) -> DiskUsage:
    """A statvfs result in bytes, with psutil.disk_usage's (and df's) arithmetic."""
    return DiskUsage(
        total=st.f_blocks * st.f_frsize,
        used=(st.f_blocks - st.f_bfree) * st.f_frsize,
        free=st.f_bavail * st.f_frsize,
        inodes_total=st.f_files,
        inodes_free=st.f_ffree,
    )


def parse_procs_blocked(proc_stat: str) -> int | None:
    """The `procs_blocked` line of /proc/stat, or None when it has none."""
    for line in proc_stat.splitlines():
        key, _, value = line.partition(" ")
        if key == "procs_blocked":
            return int(value.strip())
    return None


def unique_paths(paths: Iterable[str | os.PathLike[str]]) -> tuple[str, ...]:
    """Paths as label values, first occurrence kept, so a repeated path is one series."""
    return tuple(dict.fromkeys(os.fspath(p) for p in paths))


# ---------------------------------------------------------------------- statvfs with a deadline


class _Call:
    def __init__(self, fn: StatvfsFn, path: str) -> None:
        self.value: Any = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(
            target=self._run, args=(fn, path), name=f"statvfs:{path}", daemon=True
        )

    def _run(self, fn: StatvfsFn, path: str) -> None:
        try:
            self.value = fn(path)
        except BaseException as e:  # handed to the scraping thread, which decides
            self.error = e


class DiskHung(TimeoutError):
    """statvfs did not answer in time: typically a hung network mount."""


class _DiskReader:
    """statvfs on many paths in parallel threads, waiting at most `timeout` in all.

    A call still stuck from an earlier scrape is not started again, so a hung
    mount costs one blocked thread, not one per scrape.
    """

    def __init__(self, statvfs: StatvfsFn, timeout: float) -> None:
        self._statvfs = statvfs
        self._timeout = timeout
        self._stuck: dict[str, _Call] = {}

    def read(self, paths: Sequence[str]) -> dict[str, Any]:
        """path -> statvfs result or the exception that reading it raised."""
        calls: dict[str, _Call] = {}
        results: dict[str, Any] = {}
        for path in paths:
            stuck = self._stuck.get(path)
            if stuck is not None and stuck.thread.is_alive():
                results[path] = DiskHung(
                    f"statvfs({path!r}) still has not answered since an earlier scrape "
                    "(hung mount?)"
                )
                continue
            self._stuck.pop(path, None)
            call = calls[path] = _Call(self._statvfs, path)
            call.thread.start()
        deadline = time.monotonic() + self._timeout
        for path, call in calls.items():
            call.thread.join(max(0.0, deadline - time.monotonic()))
            if call.thread.is_alive():
                self._stuck[path] = call
                results[path] = DiskHung(
                    f"statvfs({path!r}) did not answer within {self._timeout:g}s (hung mount?)"
                )
            elif call.error is not None:
                results[path] = call.error
            else:
                results[path] = call.value
        return {p: results[p] for p in paths}


# ---------------------------------------------------------------------- the collector


class HostCollector(Collector):
    """orbiter_host_* metrics: cpu, load, memory, swap, disk per path, blocked
    processes, network per interface, boot time.

    `source` is psutil unless a test gives a fake with the same functions;
    `statvfs` and `proc_stat` are injectable for the same reason.
    """

    def __init__(
        self,
        paths: Iterable[str | os.PathLike[str]] = DEFAULT_DISK_PATHS,
        source: HostSource | Any = psutil,
        statvfs: StatvfsFn = os.statvfs,
        proc_stat: Path = PROC_STAT,
        disk_timeout: float = DISK_TIMEOUT,
    ) -> None:
        self.paths = unique_paths(paths)
        self._source = source
        self._disks = _DiskReader(statvfs, disk_timeout)
        self._proc_stat = proc_stat
        self._lock = threading.Lock()  # scrapes may come from several threads
        self._disk_errors: dict[str, int] = dict.fromkeys(self.paths, 0)
        self._disk_failing: set[str] = set()
        self._section_errors: dict[str, int] = {}
        self._sections_failing: set[str] = set()

    def describe(self) -> Iterator[Metric]:
        """The family names, so registering two HostCollectors in one registry fails."""
        for name, (kind, help_text, labels) in _FAMILIES.items():
            yield _family(kind, name, help_text, labels)

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            families = {
                name: _family(kind, name, help_text, labels)
                for name, (kind, help_text, labels) in _FAMILIES.items()
            }
            for section, read in self._sections():
                try:
                    samples = read()
                except Exception as e:  # one broken source must not break the scrape
                    self._section_failed(section, e)
                    continue
                self._section_ok(section)
                for name, labels, value in samples:
                    families[name].add_metric(labels, value)
            for section, count in sorted(self._section_errors.items()):
                families["orbiter_host_collect_errors"].add_metric([section], count)
            for path in self.paths:
                families["orbiter_host_disk_errors"].add_metric([path], self._disk_errors[path])
        yield from families.values()

    def _sections(self) -> list[tuple[str, Callable[[], list[_Sample]]]]:
        return [
            ("cpu", self._cpu),
            ("load", self._load),
            ("memory", self._memory),
            ("swap", self._swap),
            ("disk", self._disk),
            ("processes", self._processes),
            ("network", self._network),
            ("boot_time", self._boot_time),
        ]

    def _cpu(self) -> list[_Sample]:
        out: list[_Sample] = []
        count = self._source.cpu_count()
        if count is not None:
            out.append(("orbiter_host_cpus", [], count))
        times: Mapping[str, float] = self._source.cpu_times()._asdict()
        for mode, seconds in times.items():
            if mode not in _CPU_MODES_EXCLUDED:
                out.append(("orbiter_host_cpu_seconds", [mode], seconds))
        return out

    def _load(self) -> list[_Sample]:
        load1, load5, load15 = self._source.getloadavg()
        return [
            ("orbiter_host_load1", [], load1),
            ("orbiter_host_load5", [], load5),
            ("orbiter_host_load15", [], load15),
        ]

    def _memory(self) -> list[_Sample]:
        mem = self._source.virtual_memory()
        return [
            ("orbiter_host_memory_total_bytes", [], mem.total),
            ("orbiter_host_memory_available_bytes", [], mem.available),
        ]

    def _swap(self) -> list[_Sample]:
        swap = self._source.swap_memory()
        return [
            ("orbiter_host_swap_total_bytes", [], swap.total),
            ("orbiter_host_swap_used_bytes", [], swap.used),
        ]

    def _disk(self) -> list[_Sample]:
        out: list[_Sample] = []
        for path, result in self._disks.read(self.paths).items():
            if isinstance(result, BaseException):
                self._disk_failed(path, result)
                continue
            self._disk_ok(path)
            usage = disk_usage(result)
            out += [
                ("orbiter_host_disk_total_bytes", [path], usage.total),
                ("orbiter_host_disk_used_bytes", [path], usage.used),
                ("orbiter_host_disk_free_bytes", [path], usage.free),
                ("orbiter_host_disk_inodes", [path], usage.inodes_total),
                ("orbiter_host_disk_inodes_free", [path], usage.inodes_free),
            ]
        return out

    def _processes(self) -> list[_Sample]:
        return [("orbiter_host_processes_blocked", [], self._blocked())]

    def _blocked(self) -> int:
        """/proc/stat's procs_blocked where there is one (one small read); otherwise
        every process's status through psutil, which costs a read per process."""
        try:
            blocked = parse_procs_blocked(self._proc_stat.read_text())
        except OSError:
            blocked = None
        if blocked is not None:
            return blocked
        return sum(
            1
            for p in self._source.process_iter(["status"])
            if p.info.get("status") == psutil.STATUS_DISK_SLEEP
        )

    def _network(self) -> list[_Sample]:
        out: list[_Sample] = []
        for nic, io in sorted(self._source.net_io_counters(pernic=True).items()):
            out.append(("orbiter_host_network_receive_bytes", [nic], io.bytes_recv))
            out.append(("orbiter_host_network_transmit_bytes", [nic], io.bytes_sent))
        return out

    def _boot_time(self) -> list[_Sample]:
        return [("orbiter_host_boot_time_seconds", [], self._source.boot_time())]

    # -- failures: counted every time, logged once per episode

    def _disk_failed(self, path: str, error: BaseException) -> None:
        self._disk_errors[path] += 1
        if path not in self._disk_failing:
            self._disk_failing.add(path)
            log.warning(
                "cannot read disk usage of %s: %s; its orbiter_host_disk_* metrics are left "
                "out until it can be read (counted in orbiter_host_disk_errors_total)",
                path,
                error,
            )

    def _disk_ok(self, path: str) -> None:
        if path in self._disk_failing:
            self._disk_failing.discard(path)
            log.info("disk usage of %s can be read again", path)

    def _section_failed(self, section: str, error: BaseException) -> None:
        self._section_errors[section] = self._section_errors.get(section, 0) + 1
        if section not in self._sections_failing:
            self._sections_failing.add(section)
            log.warning("cannot read host %s metrics: %r; left out of /metrics", section, error)

    def _section_ok(self, section: str) -> None:
        if section in self._sections_failing:
            self._sections_failing.discard(section)
            log.info("host %s metrics can be read again", section)


_GAUGE, _COUNTER = "gauge", "counter"

# name -> (type, help, label names). Counter names are given without `_total`:
# prometheus_client appends it to the sample name.
_FAMILIES: dict[str, tuple[str, str, list[str]]] = {
    "orbiter_host_cpus": (_GAUGE, "Logical CPUs of the host", []),
    "orbiter_host_cpu_seconds": (
        _COUNTER,
        "Seconds the host's CPUs spent in each mode since boot (guest time is in user/nice)",
        ["mode"],
    ),
    "orbiter_host_load1": (_GAUGE, "1-minute load average", []),
    "orbiter_host_load5": (_GAUGE, "5-minute load average", []),
    "orbiter_host_load15": (_GAUGE, "15-minute load average", []),
    "orbiter_host_memory_total_bytes": (_GAUGE, "Physical memory of the host", []),
    "orbiter_host_memory_available_bytes": (
        _GAUGE,
        "Memory that can be given to processes without swapping (MemAvailable)",
        [],
    ),
    "orbiter_host_swap_total_bytes": (_GAUGE, "Swap space of the host", []),
    "orbiter_host_swap_used_bytes": (_GAUGE, "Swap space in use", []),
    "orbiter_host_disk_total_bytes": (_GAUGE, "Size of the filesystem holding path", ["path"]),
    "orbiter_host_disk_used_bytes": (_GAUGE, "Bytes used on the filesystem holding path", ["path"]),
    "orbiter_host_disk_free_bytes": (
        _GAUGE,
        "Bytes unprivileged users can still write on the filesystem holding path",
        ["path"],
    ),
    "orbiter_host_disk_inodes": (
        _GAUGE,
        "Inodes of the filesystem holding path (0 where the filesystem has no fixed count)",
        ["path"],
    ),
    "orbiter_host_disk_inodes_free": (
        _GAUGE,
        "Free inodes of the filesystem holding path",
        ["path"],
    ),
    "orbiter_host_disk_errors": (
        _COUNTER,
        "Scrapes in which path could not be read (missing, unreadable or hung); "
        "its other disk metrics are absent from those scrapes",
        ["path"],
    ),
    "orbiter_host_processes_blocked": (
        _GAUGE,
        "Processes blocked in uninterruptible sleep (D state) waiting for I/O "
        "(/proc/stat procs_blocked on Linux)",
        [],
    ),
    "orbiter_host_network_receive_bytes": (
        _COUNTER,
        "Bytes received on interface",
        ["interface"],
    ),
    "orbiter_host_network_transmit_bytes": (
        _COUNTER,
        "Bytes sent on interface",
        ["interface"],
    ),
    "orbiter_host_boot_time_seconds": (_GAUGE, "When the host booted, in Unix time", []),
    "orbiter_host_collect_errors": (
        _COUNTER,
        "Scrapes in which a section of host metrics could not be read and was left out",
        ["section"],
    ),
}


def _family(kind: str, name: str, help_text: str, labels: list[str]) -> Metric:
    if kind == _COUNTER:
        return CounterMetricFamily(name, help_text, labels=labels)
    return GaugeMetricFamily(name, help_text, labels=labels)
