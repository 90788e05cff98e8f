"""The Docker containerizer's pure rules: what container a task gets, how its end reads,
and the agent's --containerizers flag. No daemon needed (tests/integration has those)."""

from __future__ import annotations

from pathlib import Path

import pytest

from orbiter.agent.containerizer import LaunchError, parse_containerizers
from orbiter.agent.containerizer.docker import (
    SANDBOX_MOUNT,
    PortBinding,
    _split_image,
    container_name,
    container_spec,
    docker_termination,
)
from orbiter.proto import messages_pb2 as pb
from orbiter.resources import Resources

ENV = {"ORBITER_TASK_ID": "t1", "ORBITER_FRAMEWORK_ID": "fw", "ORBITER_SANDBOX": "/host/sb"}


def task(
    command: str = "echo hi",
    resources: str = "cpus:0.5;mem:64",
    shell: bool = True,
    image: str = "busybox",
) -> pb.TaskInfo:
    info = pb.TaskInfo(task_id="t1")
    info.command.shell = shell
    info.command.value = command
    info.resources.extend(Resources.parse(resources).to_proto())
    info.container.type = pb.ContainerInfo.DOCKER
    info.container.docker.image = image
    return info


SANDBOX = Path("/w/sandboxes/fw/t1")


def spec_of(info: pb.TaskInfo) -> dict[str, object]:
    return container_spec(info, SANDBOX, ENV, "A1", "fw").create_kwargs()


def test_a_shell_task_runs_under_sh_c_in_the_sandbox_with_its_limits_and_labels():
    info = task()
    info.command.environment["X"] = "1"
    info.labels["team"] = "a"

    kwargs = spec_of(info)

    assert kwargs["entrypoint"] == ["/bin/sh", "-c"] and kwargs["command"] == ["echo hi"]
    assert kwargs["mem_limit"] == kwargs["memswap_limit"] == "64m"
    assert kwargs["nano_cpus"] == 500_000_000
    assert kwargs["pids_limit"] == 1024
    assert kwargs["log_config"] == {
        "type": "json-file", "config": {"max-size": str(10 * 1024 * 1024), "max-file": "2"}
    }  # fmt: skip
    assert kwargs["volumes"] == {str(SANDBOX): {"bind": SANDBOX_MOUNT, "mode": "rw"}}
    assert kwargs["working_dir"] == SANDBOX_MOUNT
    assert kwargs["environment"] == {
        "ORBITER_TASK_ID": "t1",
        "ORBITER_FRAMEWORK_ID": "fw",
        "ORBITER_SANDBOX": SANDBOX_MOUNT,
        "MESOS_SANDBOX": SANDBOX_MOUNT,
        "X": "1",
    }
    assert kwargs["labels"] == {
        "team": "a",
        "orbiter.task_id": "t1",
        "orbiter.framework_id": "fw",
        "orbiter.agent_id": "A1",
        "orbiter.sandbox": str(SANDBOX),
        "orbiter.work_dir": "/w",
    }
    assert kwargs["name"] == "orbiter-A1-fw-t1"


@pytest.mark.parametrize(
    ("value", "arguments", "entrypoint", "command"),
    [
        ("/bin/echo", ["echo", "a", "b"], ["/bin/echo"], ["a", "b"]),
        ("/bin/true", [], ["/bin/true"], []),
        ("", [], None, None),  # the image's own entrypoint and command
    ],
)
def test_a_task_without_shell_runs_its_argv_or_the_images_default(
    value, arguments, entrypoint, command
):
    info = task(value, shell=False)
    info.command.arguments.extend(arguments)

    kwargs = spec_of(info)

    assert kwargs.get("entrypoint") == entrypoint
    assert kwargs.get("command") == command


def test_each_offered_port_is_published_as_itself_unless_mapped():
    info = task(resources="cpus:1;mem:32;ports:[31000-31002]")
    info.container.docker.port_mappings.add(host_port=31001, container_port=80)
    info.container.docker.port_mappings.add(host_port=31002, protocol="udp")

    spec = container_spec(info, Path("/sb"), ENV, "A1", "fw")

    assert spec.ports == (
        PortBinding(31000, 31000),
        PortBinding(31001, 80),
        PortBinding(31002, 31002, "udp"),
    )
    published = spec.create_kwargs()["ports"]
    assert published == {"31000/tcp": 31000, "80/tcp": 31001, "31002/udp": 31002}


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda t: t.container.docker.ClearField("image"), "names no image"),
        (lambda t: t.command.ClearField("value"), "has no command"),
        (lambda t: t.container.docker.port_mappings.add(host_port=9), "host port 9"),
        (
            lambda t: t.container.docker.port_mappings.add(host_port=9, protocol="sctp"),
            "'sctp' is not tcp/udp",
        ),
    ],
)
def test_a_task_docker_cannot_run_is_a_launch_error_saying_what_to_fix(mutate, message):
    info = task()
    mutate(info)
    with pytest.raises(LaunchError, match=message):
        container_spec(info, Path("/sb"), ENV, "A1", "fw")


def test_no_limits_without_resources_and_dockers_minimum_memory():
    assert "mem_limit" not in spec_of(task(resources="disk:10"))
    assert "nano_cpus" not in spec_of(task(resources="disk:10"))
    assert spec_of(task(resources="mem:1"))["mem_limit"] == "6m"


def test_container_names_keep_only_what_docker_allows():
    assert container_name("A 1", "fw/x", "t:1") == "orbiter-A_1-fw_x-t_1"
    assert len(container_name("a", "b", "t" * 500)) == 200


@pytest.mark.parametrize(
    ("exit_code", "oom", "killing", "grace", "state", "reason", "message"),
    [
        (0, False, False, None, pb.TASK_FINISHED, pb.REASON_COMMAND_EXITED, "status 0"),
        (3, False, False, None, pb.TASK_FAILED, pb.REASON_COMMAND_EXITED, "status 3"),
        (
            137, True, False, None,
            pb.TASK_FAILED, pb.REASON_CONTAINER_LIMITATION_MEMORY, "Memory limit exceeded",
        ),
        (143, False, True, 3.0, pb.TASK_KILLED, pb.REASON_TASK_KILLED, "with SIGTERM"),
        (137, False, True, 3.0, pb.TASK_KILLED, pb.REASON_TASK_KILLED, "SIGKILL after 3 s"),
        (137, True, True, 3.0, pb.TASK_KILLED, pb.REASON_TASK_KILLED, "SIGKILL after 3 s"),
    ],
)  # fmt: skip
def test_a_containers_end_reads_as_the_tasks(
    exit_code, oom, killing, grace, state, reason, message
):
    end = docker_termination(exit_code, oom, killing, grace, 32)
    assert (end.state, end.reason) == (state, reason)
    assert message in end.message


def test_the_oom_message_names_the_limit():
    end = docker_termination(137, True, False, None, 32)
    assert "32 MiB" in end.message and end.exit_code == 137


@pytest.mark.parametrize(
    ("image", "split"),
    [
        ("busybox", ("busybox", "latest")),
        ("busybox:1.36", ("busybox", "1.36")),
        ("registry:5000/team/app", ("registry:5000/team/app", "latest")),
        ("registry:5000/team/app:v2", ("registry:5000/team/app", "v2")),
        ("app@sha256:abc", ("app@sha256:abc", "")),
    ],
)
def test_images_are_pulled_by_their_tag_or_latest(image, split):
    assert _split_image(image) == split


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("process", ("process",)),
        ("process,docker", ("process", "docker")),
        ("docker", ("process", "docker")),
        ("null,docker", ("null", "docker")),
        ("null", ("null",)),
    ],
)
def test_containerizers_flag(text, names):
    assert parse_containerizers(text) == names


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("process,rkt", "unknown containerizer 'rkt'"),
        ("process,null", "not both"),
        ("docker,docker", "named twice"),
    ],
)
def test_containerizers_flag_refuses(text, message):
    with pytest.raises(ValueError, match=message):
        parse_containerizers(text)
