"""The agent's persistent volumes on disk: the master's list is kept, a volume dropped from
it loses its data, a directory neither list named is left alone and reported."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from orbiter.agent.volumes import VolumeStore, link_into_sandbox
from orbiter.proto import messages_pb2 as pb


def vol(pid: str, role: str = "db", path: str = "data") -> pb.Volume:
    return pb.Volume(persistence_id=pid, role=role, size=100, container_path=path, principal="p")


def test_the_list_is_kept_and_a_volume_dropped_from_it_loses_its_data(tmp_path: Path) -> None:
    store = VolumeStore(tmp_path)
    store.update([vol("v1"), vol("v2")])
    (tmp_path / "volumes" / "db" / "v1" / "f").write_text("x")
    assert [v.persistence_id for v in VolumeStore(tmp_path).listed()] == ["v1", "v2"]

    assert store.update([vol("v2")]) == ["v1"]

    assert not (tmp_path / "volumes" / "db" / "v1").exists()
    assert (tmp_path / "volumes" / "db" / "v2").is_dir()


def test_a_directory_no_list_named_is_left_alone_and_reported(tmp_path: Path) -> None:
    stray = tmp_path / "volumes" / "db" / "stray"
    stray.mkdir(parents=True)
    store = VolumeStore(tmp_path)
    store.update([vol("v1")])
    assert sorted(v.persistence_id for v in store.held()) == ["stray", "v1"]
    store.update([])
    assert stray.is_dir()


def test_a_process_task_sees_its_volume_through_a_relative_link(tmp_path: Path) -> None:
    sandbox = tmp_path / "sandboxes" / "F1" / "t1"
    sandbox.mkdir(parents=True)
    task = pb.TaskInfo(task_id="t1")
    task.volumes.append(vol("v1", path="state/data"))

    link_into_sandbox(task, sandbox, None)
    link_into_sandbox(task, sandbox, None)  # a relaunch finds it in place

    link = sandbox / "state" / "data"
    assert not os.readlink(link).startswith("/")
    (link / "f").write_text("kept")
    assert (tmp_path / "volumes" / "db" / "v1" / "f").read_text() == "kept"


def test_a_volume_is_not_put_over_a_file_of_the_sandbox(tmp_path: Path) -> None:
    sandbox = tmp_path / "sandboxes" / "F1" / "t1"
    sandbox.mkdir(parents=True)
    (sandbox / "data").write_text("mine")
    task = pb.TaskInfo(task_id="t1")
    task.volumes.append(vol("v1"))
    with pytest.raises(OSError, match="exists in the sandbox"):
        link_into_sandbox(task, sandbox, None)


def test_a_destroyed_volume_a_task_still_uses_keeps_its_data_until_it_is_unused(
    tmp_path: Path,
) -> None:
    store = VolumeStore(tmp_path)
    store.update([vol("v1")])
    assert store.update([], in_use=frozenset({"v1"})) == []
    assert (tmp_path / "volumes" / "db" / "v1").is_dir()
    assert store.update([]) == ["v1"]
    assert not (tmp_path / "volumes" / "db" / "v1").exists()
