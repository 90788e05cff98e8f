"""Cgroup file work against fake directory trees: v2 (which this machine cannot
test for real), detection of v1 and v2, leftovers and the log pump."""

from __future__ import annotations

import os
from pathlib import Path

from orbiter.agent.isolation import cgroups
from orbiter.agent.isolation.isolator import Isolator
from orbiter.agent.isolation.logs import LogPump
from orbiter.agent.isolation.policy import MIB, Limits, Mechanism
from orbiter.proto import messages_pb2 as pb


def fake_v2(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "cgroup.controllers").write_text("cpuset cpu io memory hugetlb pids rdma\n")
    (root / "cgroup.subtree_control").write_text("")
    return root


def test_a_unified_tree_with_memory_cpu_and_pids_is_v2(tmp_path):
    layout = cgroups.detect(fake_v2(tmp_path / "cg"))
    assert layout is not None and layout.version == 2


def test_a_unified_tree_without_pids_is_not_usable(tmp_path):
    root = fake_v2(tmp_path / "cg")
    (root / "cgroup.controllers").write_text("cpu memory\n")
    assert cgroups.detect(root) is None


def test_v1_needs_memory_cpu_and_pids_hierarchies(tmp_path):
    for controller in ("memory", "cpu"):
        (tmp_path / controller).mkdir()
        (tmp_path / controller / "tasks").write_text("")
    assert cgroups.detect(tmp_path) is None
    (tmp_path / "pids").mkdir()
    (tmp_path / "pids" / "tasks").write_text("")
    layout = cgroups.detect(tmp_path)
    assert layout is not None and layout.version == 1
    assert [name for name, _ in layout.roots] == ["memory", "cpu", "pids"]


def test_nothing_mounted_falls_back_to_rlimits(tmp_path):
    isolator = Isolator(True, "nobody", root=tmp_path, euid=0)
    assert isolator.mechanism == Mechanism.RLIMITS
    prepared = isolator.prepare("fw/t1", task_with(mem=32))
    assert prepared.cgroup is None
    assert (prepared.rlimit_as, prepared.rlimit_nproc) == (32 * MIB, 1024)


def task_with(**scalars: float) -> pb.TaskInfo:
    info = pb.TaskInfo(task_id="t1")
    for name, value in scalars.items():
        info.resources.add(name=name, type=pb.Resource.SCALAR, scalar=value)
    return info


def test_v2_task_cgroup_enables_controllers_down_the_path_and_writes_limits(tmp_path):
    root = fake_v2(tmp_path / "cg")
    isolator = Isolator(True, "nobody", pids_max=100, root=root, euid=0)
    isolator.agent_id = "A1"
    assert isolator.mechanism == Mechanism.CGROUPS_V2
    (root / "memory.swap.max").write_text("max\n")  # the kernel accounts swap
    prepared = isolator.prepare("fw/t1", task_with(cpus=0.25, mem=64))
    task_dir = root / "orbiter" / "A1" / "fw" / "t1"
    assert prepared.cgroup is not None and prepared.cgroup.paths() == [str(task_dir)]
    for parent in (root, root / "orbiter", root / "orbiter" / "A1", root / "orbiter" / "A1" / "fw"):
        assert (parent / "cgroup.subtree_control").read_text() == "+memory +cpu +pids"
    assert (task_dir / "memory.max").read_text() == str(64 * MIB)
    assert (task_dir / "cpu.max").read_text() == "25000 100000"
    assert (task_dir / "cpu.weight").read_text() == "10"
    assert (task_dir / "pids.max").read_text() == "100"


def test_v2_oom_kills_and_peak_come_from_memory_events_and_peak(tmp_path):
    root = fake_v2(tmp_path / "cg")
    cgroup = cgroups.TaskCgroup(cgroups.Layout(2, (("", root),)), "orbiter/A/fw/t")
    cgroup.create(Limits(mem_bytes=MIB))
    task_dir = root / "orbiter/A/fw/t"
    (task_dir / "memory.events").write_text("low 0\nhigh 0\nmax 5\noom 1\noom_kill 1\n")
    (task_dir / "memory.peak").write_text(f"{MIB}\n")
    (task_dir / "cpu.stat").write_text("usage_usec 2500000\nuser_usec 1\n")
    assert cgroup.oom_kills() == 1
    assert cgroup.memory_peak() == MIB
    assert cgroup.memory_limit() == MIB
    assert cgroup.cpu_usage_seconds() == 2.5


def test_v2_kill_writes_cgroup_kill(tmp_path):
    task_dir = tmp_path / "t"
    task_dir.mkdir()
    (task_dir / "cgroup.kill").write_text("")
    # A pid above any pid_max: listed (a fake file does not empty itself), never signalled.
    (task_dir / "cgroup.procs").write_text(f"{2**22 + 7}\n")
    assert not cgroups.kill_all([str(task_dir)], timeout=0.05)
    assert (task_dir / "cgroup.kill").read_text() == "1"


def test_an_empty_cgroup_needs_no_kill(tmp_path):
    task_dir = tmp_path / "t"
    task_dir.mkdir()
    (task_dir / "cgroup.kill").write_text("")
    (task_dir / "cgroup.procs").write_text("")
    assert cgroups.kill_all([str(task_dir)], timeout=0.05)
    assert (task_dir / "cgroup.kill").read_text() == ""


def test_leftovers_are_task_directories_under_the_agents(tmp_path):
    root = fake_v2(tmp_path / "cg")
    layout = cgroups.Layout(2, (("", root),))
    for rel in ("orbiter/A/fw/t1", "orbiter/A/fw/t2", "orbiter/A/executor:fw/e1", "orbiter/B/fw/x"):
        (root / rel).mkdir(parents=True)
    assert cgroups.leftovers(layout, "orbiter/A") == [
        "orbiter/A/executor:fw/e1",
        "orbiter/A/fw/t1",
        "orbiter/A/fw/t2",
    ]


def test_ids_cannot_climb_out_of_the_agents_directory(tmp_path):
    isolator = Isolator(True, "nobody", root=fake_v2(tmp_path / "cg"), euid=0)
    isolator.agent_id = "../.."
    relpath = isolator.relpath("../x/..")
    assert relpath == "orbiter/.._../_/x_.."
    assert ".." not in relpath.split("/")


def test_the_log_pump_keeps_two_caps_at_most_and_the_newest_in_stdout(tmp_path):
    read_fd, write_fd = os.pipe()
    pump = LogPump(read_fd, tmp_path / "stdout", cap=1000, owner=None)
    for i in range(50):
        pump.write(f"line {i:04d}\n".encode() * 20)  # 200 bytes each
    os.close(write_fd)
    pump.close()
    out, old = (tmp_path / "stdout").read_bytes(), (tmp_path / "stdout.1").read_bytes()
    assert len(out) <= 1000 and len(old) == 1000
    assert out.endswith(b"line 0049\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["stdout", "stdout.1"]
