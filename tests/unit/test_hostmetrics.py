"""The agent's host metrics as Satellite scrapes them: names, HELP/TYPE, values from a
fake psutil, and scrapes that survive broken paths and broken sources."""

from __future__ import annotations

import logging
import threading
import time
from collections import namedtuple
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import psutil
import pytest
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from orbiter.agent.hostmetrics import (
    HostCollector,
    disk_usage,
    parse_procs_blocked,
)

CpuTimes = namedtuple(
    "CpuTimes",
    "user nice system idle iowait irq softirq steal guest guest_nice",
)
Mem = namedtuple("Mem", "total available percent used free")
Swap = namedtuple("Swap", "total used free percent sin sout")
NetIO = namedtuple(
    "NetIO", "bytes_sent bytes_recv packets_sent packets_recv errin errout dropin dropout"
)
Statvfs = namedtuple(
    "Statvfs",
    "f_bsize f_frsize f_blocks f_bfree f_bavail f_files f_ffree f_favail f_flag f_namemax",
)
GiB = 2**30


class FakeSource:
    """The psutil functions HostCollector uses, with values a test picks."""

    def __init__(self) -> None:
        self.cpus: int | None = 8
        self.times = CpuTimes(100.0, 2.0, 30.0, 5000.0, 7.0, 0.5, 1.5, 0.25, 40.0, 3.0)
        self.load = (1.5, 2.5, 3.5)
        self.mem = Mem(16 * GiB, 3 * GiB, 81.25, 12 * GiB, 1 * GiB)
        self.swap = Swap(4 * GiB, 1 * GiB, 3 * GiB, 25.0, 0, 0)
        self.nics = {
            "eth0": NetIO(1000, 2000, 10, 20, 0, 0, 0, 0),
            "lo": NetIO(5, 5, 1, 1, 0, 0, 0, 0),
        }
        self.boot = 1_700_000_000.0
        self.statuses = ["running", "sleeping", psutil.STATUS_DISK_SLEEP, psutil.STATUS_DISK_SLEEP]
        self.broken: set[str] = set()

    def _maybe_fail(self, what: str) -> None:
        if what in self.broken:
            raise OSError(f"{what} is broken in this test")

    def cpu_count(self, logical: bool = True) -> int | None:
        self._maybe_fail("cpu_count")
        return self.cpus

    def cpu_times(self, percpu: bool = False) -> Any:
        return self.times

    def getloadavg(self) -> tuple[float, float, float]:
        self._maybe_fail("getloadavg")
        return self.load

    def virtual_memory(self) -> Any:
        return self.mem

    def swap_memory(self) -> Any:
        return self.swap

    def net_io_counters(self, pernic: bool = False, nowrap: bool = True) -> Any:
        assert pernic, "the collector wants per-interface counters"
        return self.nics

    def boot_time(self) -> float:
        return self.boot

    def process_iter(self, attrs: Any = None, ad_value: Any = None) -> Any:
        return iter(SimpleNamespace(info={"status": s}) for s in self.statuses)


def fs(
    total_blocks: int,
    free_blocks: int,
    avail_blocks: int,
    files: int = 1000,
    ffree: int = 600,
    frsize: int = 4096,
) -> Statvfs:
    return Statvfs(
        frsize, frsize, total_blocks, free_blocks, avail_blocks, files, ffree, ffree, 0, 255
    )


class FakeDisks:
    """statvfs over a dict; a missing path raises like the real one."""

    def __init__(self, table: dict[str, Statvfs]) -> None:
        self.table = table
        self.calls: list[str] = []

    def __call__(self, path: str) -> Statvfs:
        self.calls.append(path)
        try:
            return self.table[path]
        except KeyError:
            raise FileNotFoundError(2, "No such file or directory", path) from None


@pytest.fixture
def proc_stat(tmp_path: Path) -> Path:
    p = tmp_path / "stat"
    p.write_text("cpu  1 2 3 4\nprocs_running 3\nprocs_blocked 7\nsoftirq 0\n")
    return p


def scrape(collector: HostCollector) -> tuple[str, dict[str, Any]]:
    """The exposition text and its families parsed back, by family name."""
    registry = CollectorRegistry()
    registry.register(collector)
    text = generate_latest(registry).decode()
    return text, {f.name: f for f in text_string_to_metric_families(text)}


def samples(families: dict[str, Any]) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for f in families.values()
        for s in f.samples
    }


def value(families: dict[str, Any], name: str, **labels: str) -> float:
    return samples(families)[(name, tuple(sorted(labels.items())))]


AGREED_SAMPLE_NAMES = {
    "orbiter_host_cpus",
    "orbiter_host_cpu_seconds_total",
    "orbiter_host_load1",
    "orbiter_host_load5",
    "orbiter_host_load15",
    "orbiter_host_memory_total_bytes",
    "orbiter_host_memory_available_bytes",
    "orbiter_host_swap_total_bytes",
    "orbiter_host_swap_used_bytes",
    "orbiter_host_disk_total_bytes",
    "orbiter_host_disk_used_bytes",
    "orbiter_host_disk_free_bytes",
    "orbiter_host_disk_inodes",
    "orbiter_host_disk_inodes_free",
    "orbiter_host_disk_errors_total",
    "orbiter_host_processes_blocked",
    "orbiter_host_network_receive_bytes_total",
    "orbiter_host_network_transmit_bytes_total",
    "orbiter_host_boot_time_seconds",
}


def test_exports_the_agreed_names_each_with_help_and_type(proc_stat: Path) -> None:
    disks = FakeDisks({"/work": fs(1000, 400, 300)})
    text, families = scrape(HostCollector(["/work"], FakeSource(), disks, proc_stat))

    assert {s.name for f in families.values() for s in f.samples} == AGREED_SAMPLE_NAMES
    for family in families.values():
        assert family.type in ("gauge", "counter"), family.name
        assert family.documentation, family.name
    # In the text format, counters' HELP and TYPE lines carry the _total name too.
    helped = {line.split()[2] for line in text.splitlines() if line.startswith("# HELP ")}
    typed = {line.split()[2] for line in text.splitlines() if line.startswith("# TYPE ")}
    sample_names = {line.split("{")[0].split()[0] for line in text.splitlines() if line[:1] != "#"}
    assert sample_names <= helped
    assert sample_names <= typed


def test_names_follow_orbiter_subsystem_what_unit_convention(proc_stat: Path) -> None:
    disks = FakeDisks({"/work": fs(1000, 400, 300)})
    _, families = scrape(HostCollector(["/work"], FakeSource(), disks, proc_stat))
    for f in families.values():
        assert f.name.startswith("orbiter_host_"), f.name
        if f.type == "counter":
            assert all(s.name == f.name + "_total" for s in f.samples), f.name


def test_fake_source_values_appear_with_their_labels(proc_stat: Path) -> None:
    src = FakeSource()
    disks = FakeDisks({"/work": fs(1000, 400, 300, files=5000, ffree=1234)})
    _, m = scrape(HostCollector(["/work"], src, disks, proc_stat))

    assert value(m, "orbiter_host_cpus") == 8
    assert value(m, "orbiter_host_cpu_seconds_total", mode="user") == 100.0
    assert value(m, "orbiter_host_cpu_seconds_total", mode="iowait") == 7.0
    assert value(m, "orbiter_host_cpu_seconds_total", mode="steal") == 0.25
    assert [value(m, f"orbiter_host_load{n}") for n in (1, 5, 15)] == [1.5, 2.5, 3.5]
    assert value(m, "orbiter_host_memory_total_bytes") == 16 * GiB
    assert value(m, "orbiter_host_memory_available_bytes") == 3 * GiB
    assert value(m, "orbiter_host_swap_total_bytes") == 4 * GiB
    assert value(m, "orbiter_host_swap_used_bytes") == 1 * GiB
    assert value(m, "orbiter_host_disk_total_bytes", path="/work") == 1000 * 4096
    assert value(m, "orbiter_host_disk_used_bytes", path="/work") == 600 * 4096
    assert value(m, "orbiter_host_disk_free_bytes", path="/work") == 300 * 4096
    assert value(m, "orbiter_host_disk_inodes", path="/work") == 5000
    assert value(m, "orbiter_host_disk_inodes_free", path="/work") == 1234
    assert value(m, "orbiter_host_processes_blocked") == 7
    assert value(m, "orbiter_host_network_receive_bytes_total", interface="eth0") == 2000
    assert value(m, "orbiter_host_network_transmit_bytes_total", interface="eth0") == 1000
    assert value(m, "orbiter_host_network_receive_bytes_total", interface="lo") == 5
    assert value(m, "orbiter_host_boot_time_seconds") == 1_700_000_000.0


def test_guest_time_is_not_a_mode_because_user_and_nice_already_hold_it(proc_stat: Path) -> None:
    disks = FakeDisks({})
    _, m = scrape(HostCollector([], FakeSource(), disks, proc_stat))
    modes = {s.labels["mode"] for s in m["orbiter_host_cpu_seconds"].samples}
    assert modes == {"user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal"}


def test_a_disk_95_percent_full_crosses_the_default_rules_90_percent_threshold(
    proc_stat: Path,
) -> None:
    disks = FakeDisks({"/var/lib/orbiter": fs(10_000, 500, 300), "/tmp": fs(10_000, 9_000, 8_000)})
    _, m = scrape(HostCollector(["/var/lib/orbiter", "/tmp"], FakeSource(), disks, proc_stat))

    def used_share(path: str) -> float:
        used = value(m, "orbiter_host_disk_used_bytes", path=path)
        return used / value(m, "orbiter_host_disk_total_bytes", path=path)

    # the expression of alerts/default.rules.yml's OrbiterAgentDiskFull
    assert used_share("/var/lib/orbiter") == pytest.approx(0.95)
    assert used_share("/var/lib/orbiter") > 0.90
    assert used_share("/tmp") < 0.90


def test_default_paths_include_tmp() -> None:
    assert HostCollector().paths == ("/tmp",)


def test_a_path_listed_twice_is_one_series(proc_stat: Path) -> None:
    disks = FakeDisks({"/work": fs(100, 50, 40)})
    _, m = scrape(HostCollector(["/work", Path("/work")], FakeSource(), disks, proc_stat))
    assert len(m["orbiter_host_disk_total_bytes"].samples) == 1


def test_a_missing_path_is_skipped_counted_and_logged_once(
    proc_stat: Path, caplog: pytest.LogCaptureFixture
) -> None:
    disks = FakeDisks({"/work": fs(100, 50, 40)})
    collector = HostCollector(["/work", "/gone"], FakeSource(), disks, proc_stat)
    with caplog.at_level(logging.WARNING, logger="orbiter.agent.hostmetrics"):
        scrape(collector)
        _, m = scrape(collector)

    assert value(m, "orbiter_host_disk_errors_total", path="/gone") == 2
    assert value(m, "orbiter_host_disk_errors_total", path="/work") == 0
    assert ("orbiter_host_disk_total_bytes", (("path", "/gone"),)) not in samples(m)
    assert value(m, "orbiter_host_disk_total_bytes", path="/work") == 100 * 4096
    assert value(m, "orbiter_host_load1") == 1.5  # the rest of the scrape is intact
    warnings = [r for r in caplog.records if "/gone" in r.getMessage()]
    assert len(warnings) == 1


def test_a_path_that_comes_back_is_exported_again(proc_stat: Path) -> None:
    disks = FakeDisks({})
    collector = HostCollector(["/mnt/data"], FakeSource(), disks, proc_stat)
    _, m = scrape(collector)
    assert ("orbiter_host_disk_free_bytes", (("path", "/mnt/data"),)) not in samples(m)

    disks.table["/mnt/data"] = fs(100, 50, 40)
    _, m = scrape(collector)
    assert value(m, "orbiter_host_disk_free_bytes", path="/mnt/data") == 40 * 4096
    assert value(m, "orbiter_host_disk_errors_total", path="/mnt/data") == 1


def test_a_hung_mount_delays_a_scrape_by_the_disk_timeout_only_and_is_not_retried_while_hung(
    proc_stat: Path,
) -> None:
    release = threading.Event()
    calls: list[str] = []

    def statvfs(path: str) -> Statvfs:
        calls.append(path)
        if path == "/nfs":
            release.wait(10)
        return fs(100, 50, 40)

    collector = HostCollector(["/nfs", "/work"], FakeSource(), statvfs, proc_stat, disk_timeout=0.1)
    try:
        t0 = time.monotonic()
        _, m = scrape(collector)
        assert time.monotonic() - t0 < 5
        assert value(m, "orbiter_host_disk_errors_total", path="/nfs") == 1
        assert value(m, "orbiter_host_disk_free_bytes", path="/work") == 40 * 4096

        _, m = scrape(collector)
        assert calls.count("/nfs") == 1, "a hung statvfs must not pile up threads"
        assert value(m, "orbiter_host_disk_errors_total", path="/nfs") == 2
    finally:
        release.set()

    def answered() -> dict[Any, float]:
        return samples(scrape(collector)[1])

    deadline = time.monotonic() + 5
    while ("orbiter_host_disk_free_bytes", (("path", "/nfs"),)) not in (got := answered()):
        assert time.monotonic() < deadline, "the mount answered but the collector never used it"
        time.sleep(0.02)
    assert got[("orbiter_host_disk_free_bytes", (("path", "/nfs"),))] == 40 * 4096


def test_a_broken_source_function_drops_its_section_only_and_is_counted(proc_stat: Path) -> None:
    src = FakeSource()
    src.broken.add("getloadavg")
    collector = HostCollector([], src, FakeDisks({}), proc_stat)
    scrape(collector)
    text, m = scrape(collector)

    assert "\norbiter_host_load1 " not in text
    assert "# TYPE orbiter_host_load1 gauge" in text  # still described
    assert value(m, "orbiter_host_collect_errors_total", section="load") == 2
    assert value(m, "orbiter_host_memory_total_bytes") == 16 * GiB


def test_blocked_processes_fall_back_to_psutil_statuses_without_proc_stat(tmp_path: Path) -> None:
    src = FakeSource()
    _, m = scrape(HostCollector([], src, FakeDisks({}), tmp_path / "no-such-stat"))
    assert value(m, "orbiter_host_processes_blocked") == src.statuses.count(
        psutil.STATUS_DISK_SLEEP
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("cpu 1 2\nprocs_running 2\nprocs_blocked 0\n", 0),
        ("procs_blocked 12\n", 12),
        ("procs_blocked_extra 4\nprocs_blocked 3", 3),
        ("cpu 1 2\n", None),
        ("", None),
    ],
)
def test_parse_procs_blocked(text: str, expected: int | None) -> None:
    assert parse_procs_blocked(text) == expected


@given(
    frsize=st.sampled_from([512, 1024, 4096, 65536]),
    blocks=st.integers(0, 2**40),
    data=st.data(),
)
def test_disk_usage_never_reports_more_than_the_disk(frsize: int, blocks: int, data: Any) -> None:
    bfree = data.draw(st.integers(0, blocks))
    bavail = data.draw(st.integers(0, bfree))
    usage = disk_usage(fs(blocks, bfree, bavail, frsize=frsize))
    assert 0 <= usage.used <= usage.total
    assert 0 <= usage.free <= usage.total
    assert usage.used + usage.free <= usage.total


def test_two_host_collectors_in_one_registry_are_refused() -> None:
    registry = CollectorRegistry()
    registry.register(HostCollector([], FakeSource(), FakeDisks({})))
    with pytest.raises(ValueError, match="Duplicated"):
        registry.register(HostCollector([], FakeSource(), FakeDisks({})))


def test_real_psutil_scrape_of_this_host(tmp_path: Path) -> None:
    """The default source (psutil, os.statvfs, /proc/stat) on the machine running the test."""
    _, m = scrape(HostCollector([tmp_path, "/no/such/dir"]))
    assert value(m, "orbiter_host_cpus") >= 1
    assert (
        0
        < value(m, "orbiter_host_memory_available_bytes")
        <= value(m, "orbiter_host_memory_total_bytes")
    )
    total = value(m, "orbiter_host_disk_total_bytes", path=str(tmp_path))
    assert 0 < value(m, "orbiter_host_disk_used_bytes", path=str(tmp_path)) <= total
    assert value(m, "orbiter_host_disk_errors_total", path="/no/such/dir") == 1
    assert 0 < value(m, "orbiter_host_boot_time_seconds") < time.time()
    assert value(m, "orbiter_host_processes_blocked") >= 0
    assert sum(s.value for s in m["orbiter_host_cpu_seconds"].samples) > 0
