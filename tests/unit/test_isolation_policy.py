"""The pure isolation decisions: which mechanism, which limits, which files get which values."""

from __future__ import annotations

import pytest

from orbiter.agent.isolation.policy import (
    MIB,
    Limits,
    Mechanism,
    cfs_quota_us,
    cpu_shares,
    cpu_weight,
    decide,
    limit_writes,
    limits_of,
    memory_message,
    rlimits,
)
from orbiter.proto import messages_pb2 as pb


@pytest.mark.parametrize(
    ("enabled", "version", "writable", "euid", "mechanism", "switch"),
    [
        (True, 1, True, 0, Mechanism.CGROUPS_V1, True),
        (True, 2, True, 0, Mechanism.CGROUPS_V2, True),
        (True, 1, False, 0, Mechanism.RLIMITS, True),
        (True, None, False, 0, Mechanism.RLIMITS, True),
        (True, 1, True, 1000, Mechanism.RLIMITS, False),
        (True, None, False, 1000, Mechanism.RLIMITS, False),
        (False, 1, True, 0, Mechanism.OFF, True),
        (False, None, False, 1000, Mechanism.OFF, False),
    ],
)
def test_mechanism_follows_what_the_host_allows(
    enabled, version, writable, euid, mechanism, switch
):
    plan = decide(enabled, version, writable, euid, "nobody")
    assert plan.mechanism == mechanism
    assert plan.switch_users == switch


def test_the_rlimits_fallback_says_what_is_not_enforced():
    notes = " ".join(decide(True, None, False, 0, "nobody").notes)
    assert "fall back to rlimits" in notes
    assert "RLIMIT_AS" in notes and "RLIMIT_NPROC" in notes
    assert "Not enforced: CPU shares and quota" in notes
    assert "no cgroup hierarchy" in notes


def test_a_non_root_agent_sets_no_nproc_limit_which_would_count_its_own_processes():
    notes = " ".join(decide(True, None, False, 1000, "nobody").notes)
    assert "not RLIMIT_NPROC" in notes
    assert rlimits(Limits(mem_bytes=MIB, pids_max=10), switch_users=False) == (MIB, None)
    assert rlimits(Limits(mem_bytes=MIB, pids_max=10), switch_users=True) == (MIB, 10)


def test_a_non_root_agent_says_tasks_run_as_its_own_user():
    notes = " ".join(decide(True, 1, True, 1000, "nobody").notes)
    assert "not root" in notes and "agent's own user" in notes


def test_turning_isolation_off_says_so():
    assert "isolation is off" in " ".join(decide(False, 1, True, 0, "nobody").notes)


def resources(**scalars: float) -> list[pb.Resource]:
    return [pb.Resource(name=n, type=pb.Resource.SCALAR, scalar=v) for n, v in scalars.items()]


def test_limits_come_from_the_tasks_scalars():
    limits = limits_of(resources(cpus=0.5, mem=128, disk=10), 1024)
    assert limits == Limits(mem_bytes=128 * MIB, cpus=0.5, pids_max=1024, disk_bytes=10 * MIB)


def test_scalars_of_several_roles_add_up_and_absent_ones_are_unlimited():
    rs = [*resources(mem=64), pb.Resource(name="mem", type=pb.Resource.SCALAR, scalar=32, role="r")]
    assert limits_of(rs, None) == Limits(mem_bytes=96 * MIB)


@pytest.mark.parametrize(
    ("cpus", "shares", "quota", "weight"),
    [
        (0.1, 102, 10_000, 4),
        (1.0, 1024, 100_000, 39),
        (2.5, 2560, 250_000, 98),
        (0.001, 2, 1000, 1),
    ],
)
def test_cpu_numbers(cpus, shares, quota, weight):
    assert cpu_shares(cpus) == shares
    assert cfs_quota_us(cpus) == quota
    assert cpu_weight(cpus) == weight


def test_v1_writes_memory_then_memsw_then_cpu_then_pids():
    writes = limit_writes(1, Limits(mem_bytes=32 * MIB, cpus=0.1, pids_max=64), memsw=True)
    assert writes == [
        ("memory", "memory.limit_in_bytes", str(32 * MIB)),
        ("memory", "memory.memsw.limit_in_bytes", str(32 * MIB)),
        ("cpu", "cpu.shares", "102"),
        ("cpu", "cpu.cfs_period_us", "100000"),
        ("cpu", "cpu.cfs_quota_us", "10000"),
        ("pids", "pids.max", "64"),
    ]


def test_v2_writes_into_one_directory():
    writes = limit_writes(2, Limits(mem_bytes=32 * MIB, cpus=0.1, pids_max=64), memsw=True)
    assert writes == [
        ("", "memory.max", str(32 * MIB)),
        ("", "memory.swap.max", "0"),
        ("", "cpu.weight", "4"),
        ("", "cpu.max", "10000 100000"),
        ("", "pids.max", "64"),
    ]


def test_no_limits_no_writes():
    assert limit_writes(1, Limits(), memsw=True) == []
    assert limit_writes(2, Limits(), memsw=False) == []


def test_the_memory_message_names_limit_and_peak():
    message = memory_message(32 * MIB, 33 * MIB)
    assert "memory limit of 32 MiB" in message and "peak usage 33.0 MiB" in message
