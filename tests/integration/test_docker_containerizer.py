"""The Docker containerizer against a real dockerd, with the busybox image from tests/dockerd.py.

Each test launches tasks through `DockerContainerizer` as the agent does (a
TaskInfo, a sandbox in tmp_path, the agent's environment) and looks at what a
user would: the task's end, the sandbox's stdout/stderr, `docker inspect`, a
TCP connection to a published port.
"""

from __future__ import annotations

import asyncio
import json
import pwd
import socket
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import docker
import docker.errors
import pytest
from proctools import async_poll_until

from orbiter.agent import checkpoint
from orbiter.agent.agent import Agent, AgentSettings
from orbiter.agent.containerizer import LaunchError
from orbiter.agent.containerizer.docker import (
    LABEL_AGENT,
    SANDBOX_MOUNT,
    DockerContainerizer,
)
from orbiter.proto import messages_pb2 as pb
from orbiter.resources import Resources

IMAGE = "orbiter-test/busybox:latest"


def docker_task(
    command: str, task_id: str = "t1", resources: str = "cpus:0.5;mem:64", image: str = IMAGE
) -> pb.TaskInfo:
    task = pb.TaskInfo(task_id=task_id, name=task_id, kill_grace_period=1)
    task.command.shell = True
    task.command.value = command
    task.resources.extend(Resources.parse(resources).to_proto())
    task.container.type = pb.ContainerInfo.DOCKER
    task.container.docker.image = image
    return task


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def agent_id() -> str:
    """An agent id of the test's own, so its containers are found (and cleaned) by label."""
    return f"test-{uuid.uuid4().hex[:8]}"


@pytest.fixture
async def containerizer(docker_engine: Any, agent_id: str) -> AsyncIterator[DockerContainerizer]:
    c = await DockerContainerizer.connect(docker_engine.base_url)
    yield c
    docker_engine.remove_containers(f"{LABEL_AGENT}={agent_id}")
    c.close()


@pytest.fixture
def env(agent_id: str) -> dict[str, str]:
    return {
        "ORBITER_TASK_ID": "t1",
        "ORBITER_FRAMEWORK_ID": "fw1",
        "ORBITER_AGENT_ID": agent_id,
        "MESOS_TASK_ID": "t1",
    }


@pytest.fixture
def client(docker_engine: Any) -> Any:
    c = docker_engine.client()
    yield c
    c.close()


def sandbox_of(tmp_path: Path, name: str = "sandbox") -> Path:
    path = tmp_path / name
    path.mkdir()
    return path


async def test_a_task_runs_in_its_image_and_its_output_lands_in_the_sandbox(
    containerizer: DockerContainerizer, env: dict[str, str], tmp_path: Path
) -> None:
    sandbox = sandbox_of(tmp_path)
    task = docker_task(
        'echo "hello $GREETING from $ORBITER_TASK_ID in $PWD"; echo oops >&2; '
        'echo kept > "$MESOS_SANDBOX/file"'
    )
    task.command.environment["GREETING"] = "world"

    container = await containerizer.launch(task, sandbox, env)
    end = await container.wait()

    assert (end.state, end.exit_code, end.message) == (
        pb.TASK_FINISHED, 0, "Command exited with status 0"
    )  # fmt: skip
    assert (sandbox / "stdout").read_text() == f"hello world from t1 in {SANDBOX_MOUNT}\n"
    assert (sandbox / "stderr").read_text() == "oops\n"
    assert (sandbox / "file").read_text() == "kept\n"


async def test_a_task_naming_no_user_runs_as_the_agents_task_user_not_the_images(
    docker_engine: Any, env: dict[str, str], agent_id: str, tmp_path: Path
) -> None:
    """The image's user is root here; a root agent with isolation on gives its task user
    (nobody's uid:gid) instead, and the task still writes its sandbox. A named user wins."""
    nobody = pwd.getpwnam("nobody")
    c = await DockerContainerizer.connect(
        docker_engine.base_url, default_user=(nobody.pw_uid, nobody.pw_gid)
    )
    try:
        sandbox = sandbox_of(tmp_path)
        task = docker_task('id -u; id -g; echo kept > "$MESOS_SANDBOX/file"')
        end = await (await c.launch(task, sandbox, env)).wait()
        assert end.state == pb.TASK_FINISHED, end.message
        assert (sandbox / "stdout").read_text() == f"{nobody.pw_uid}\n{nobody.pw_gid}\n"
        assert (sandbox / "file").stat().st_uid == nobody.pw_uid

        named = docker_task("id -u", task_id="t2")
        named.command.user = "0"
        sandbox2 = sandbox_of(tmp_path, "named")
        end = await (await c.launch(named, sandbox2, {**env, "ORBITER_TASK_ID": "t2"})).wait()
        assert end.state == pb.TASK_FINISHED, end.message
        assert (sandbox2 / "stdout").read_text() == "0\n"
    finally:
        docker_engine.remove_containers(f"{LABEL_AGENT}={agent_id}")
        c.close()


async def test_an_exit_status_is_reported_and_the_container_removed(
    containerizer: DockerContainerizer, env: dict[str, str], tmp_path: Path, client: Any
) -> None:
    container = await containerizer.launch(docker_task("exit 3"), sandbox_of(tmp_path), env)
    end = await container.wait()

    assert (end.state, end.reason, end.exit_code) == (pb.TASK_FAILED, pb.REASON_COMMAND_EXITED, 3)
    assert end.message == "Command exited with status 3"
    with pytest.raises(docker.errors.NotFound):
        client.containers.get(container.id)


async def test_limits_labels_and_sandbox_are_what_docker_runs_with_and_kill_removes_it(
    containerizer: DockerContainerizer,
    env: dict[str, str],
    tmp_path: Path,
    client: Any,
    agent_id: str,
) -> None:
    sandbox = sandbox_of(tmp_path)
    container = await containerizer.launch(
        docker_task("sleep 60", resources="cpus:0.25;mem:48"), sandbox, env
    )
    attrs = client.api.inspect_container(container.id)
    host = attrs["HostConfig"]

    assert host["Memory"] == 48 * 1024 * 1024
    assert host["MemorySwap"] == 48 * 1024 * 1024
    assert host["NanoCpus"] == 250_000_000
    assert host["PidsLimit"] == 1024
    assert host["LogConfig"] == {
        "Type": "json-file", "Config": {"max-size": str(10 * 1024 * 1024), "max-file": "2"}
    }  # fmt: skip
    assert attrs["Config"]["Labels"]["orbiter.task_id"] == "t1"
    assert attrs["Config"]["Labels"]["orbiter.framework_id"] == "fw1"
    assert attrs["Config"]["Labels"]["orbiter.agent_id"] == agent_id
    assert attrs["Name"] == f"/orbiter-{agent_id}-fw1-t1"
    assert attrs["Config"]["WorkingDir"] == SANDBOX_MOUNT
    assert {(m["Source"], m["Destination"]) for m in attrs["Mounts"]} == {
        (str(sandbox), SANDBOX_MOUNT)
    }
    assert attrs["State"]["Running"]

    await container.kill(1.0)
    end = await container.wait()

    assert (end.state, end.reason) == (pb.TASK_KILLED, pb.REASON_TASK_KILLED)
    assert end.message == "Task killed with SIGTERM"  # tini passes it on; sleep dies of it
    with pytest.raises(docker.errors.NotFound):
        client.containers.get(container.id)


async def test_output_over_the_cap_is_rotated_in_the_sandbox(
    docker_engine: Any, env: dict[str, str], tmp_path: Path, agent_id: str
) -> None:
    sandbox = sandbox_of(tmp_path)
    small = await DockerContainerizer.connect(docker_engine.base_url, log_cap_bytes=100_000)
    try:
        container = await small.launch(
            # 35 x 10 kB, paced: the copy follows dockerd's log as it is written
            docker_task(
                "sleep 0.5; for i in $(seq 35); do yes 0123456789012345678 | head -c 10000; "
                "sleep 0.02; done"
            ),
            sandbox,
            env,
        )
        end = await container.wait()
    finally:
        small.close()

    assert end.state == pb.TASK_FINISHED
    current, rotated = (sandbox / "stdout").stat().st_size, (sandbox / "stdout.1").stat().st_size
    assert 0 < current <= 100_000 and 0 < rotated <= 100_000
    assert (sandbox / "stdout").read_text().startswith("0123456789")


async def test_a_task_that_ignores_sigterm_is_killed_with_sigkill_after_its_grace(
    containerizer: DockerContainerizer, env: dict[str, str], tmp_path: Path
) -> None:
    sandbox = sandbox_of(tmp_path)
    container = await containerizer.launch(
        docker_task("trap '' TERM; echo ready; sleep 60; echo not-reached"), sandbox, env
    )
    await async_poll_until(lambda: (sandbox / "stdout").read_text() == "ready\n", 15, "ready")

    await container.kill(1.0)
    end = await container.wait()

    assert (end.state, end.message) == (pb.TASK_KILLED, "Task killed with SIGKILL after 1 s grace")


async def test_a_task_over_its_memory_is_failed_with_the_memory_reason(
    containerizer: DockerContainerizer, env: dict[str, str], tmp_path: Path
) -> None:
    container = await containerizer.launch(
        docker_task("head -c 300m /dev/zero | tail", resources="cpus:0.5;mem:32"),
        sandbox_of(tmp_path),
        env,
    )
    end = await container.wait()

    assert (end.state, end.reason) == (pb.TASK_FAILED, pb.REASON_CONTAINER_LIMITATION_MEMORY)
    assert "Memory limit exceeded" in end.message and "32 MiB" in end.message


async def test_offered_ports_are_published_to_the_same_port_or_as_mapped(
    containerizer: DockerContainerizer, env: dict[str, str], tmp_path: Path
) -> None:
    same, mapped = free_port(), free_port()
    task = docker_task(
        f"nc -l -p {same} -e echo same-port & nc -l -p 8080 -e echo mapped & wait",
        resources=f"cpus:0.5;mem:64;ports:[{same}-{same},{mapped}-{mapped}]",
    )
    task.container.docker.port_mappings.add(host_port=mapped, container_port=8080)
    container = await containerizer.launch(task, sandbox_of(tmp_path), env)

    def answer(port: int) -> bytes:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            return s.recv(100)

    async def answers(port: int, expected: bytes) -> bool:
        try:
            return await asyncio.to_thread(answer, port) == expected
        except OSError:
            return False

    await async_poll_until(lambda: answers(same, b"same-port\n"), 15, f"port {same}")
    await async_poll_until(lambda: answers(mapped, b"mapped\n"), 15, f"port {mapped} -> 8080")
    await container.kill(0)
    assert (await container.wait()).state == pb.TASK_KILLED


async def test_a_missing_image_that_cannot_be_pulled_is_a_launch_error_naming_it(
    containerizer: DockerContainerizer, env: dict[str, str], tmp_path: Path
) -> None:
    image = "orbiter-test/no-such-image:1"
    with pytest.raises(LaunchError, match=r"image 'orbiter-test/no-such-image:1' is not on"):
        await containerizer.launch(docker_task("true", image=image), sandbox_of(tmp_path), env)


async def test_a_restarted_agent_finds_its_containers_by_label_and_follows_them(
    docker_engine: Any,
    containerizer: DockerContainerizer,
    env: dict[str, str],
    tmp_path: Path,
    agent_id: str,
    client: Any,
) -> None:
    sandbox = sandbox_of(tmp_path)
    task = docker_task("echo before; sleep 60")
    first = await containerizer.launch(task, sandbox, env)

    # A new containerizer, as a restarted agent has: it knows only the agent id.
    again = await DockerContainerizer.connect(docker_engine.base_url)
    try:
        found = await again.find(agent_id)
        assert list(found) == [("fw1", "t1")]
        (sandbox / "stdout").write_text("")  # what the dead agent had copied does not matter
        adopted = again.adopt(task, found[("fw1", "t1")], sandbox)
        assert adopted.id == first.id
        await adopted.kill(0)
        end = await adopted.wait()
    finally:
        again.close()

    assert end.state == pb.TASK_KILLED
    assert (sandbox / "stdout").read_text() == "before\n"
    await first.wait()  # (the first run's watcher, which a dead agent would not have, too)
    with pytest.raises(docker.errors.NotFound):
        client.containers.get(first.id)


async def test_an_agent_restarted_on_its_work_dir_sorts_out_its_containers_by_label(
    docker_engine: Any, containerizer: DockerContainerizer, agent_id: str, tmp_path: Path,
    client: Any, async_wait_until: Any,
) -> None:  # fmt: skip
    """Running: taken back. Created but never started (the agent died mid-launch), or
    gone: reported failed. Labelled ours but no task here: removed."""
    work_dir = tmp_path / "agent"
    work_dir.mkdir()
    (work_dir / "agent.json").write_text(json.dumps({"agent_id": agent_id, "http_port": 0}))

    def sandbox(task_id: str) -> Path:
        path = work_dir / "sandboxes" / "fw1" / task_id
        path.mkdir(parents=True)
        return path

    env = {"ORBITER_FRAMEWORK_ID": "fw1", "ORBITER_AGENT_ID": agent_id}
    running = docker_task("echo hi; sleep 60", "running")
    left = await containerizer.launch(running, sandbox("running"), env)
    checkpoint.write(sandbox_path(work_dir, "running"), "fw1", running, left.pid)
    created = docker_task("echo never", "created")
    checkpoint.write(sandbox("created"), "fw1", created, None)
    labels = {LABEL_AGENT: agent_id, "orbiter.framework_id": "fw1", "orbiter.task_id": "created"}
    half = client.containers.create(IMAGE, ["true"], labels=labels)
    checkpoint.write(sandbox("gone"), "fw1", docker_task("true", "gone"), None)
    stray = client.containers.run(
        IMAGE, ["sleep", "60"], detach=True,
        labels={LABEL_AGENT: agent_id, "orbiter.framework_id": "x", "orbiter.task_id": "y"},
    )  # fmt: skip

    agent = Agent(
        AgentSettings(
            master="127.0.0.1:9",  # nobody there: recovery happens before the link
            work_dir=work_dir,
            resources=Resources.parse("cpus:1;mem:256"),
            watch_paths=[],
            docker=True,
            docker_host=docker_engine.base_url,
        )
    )
    await agent.start()
    try:
        assert agent.containerizers == ["process", "docker"]
        states = {tid: t.state for (_, tid), t in agent.tasks.items()}
        assert states == {
            "running": pb.TASK_RUNNING,
            "created": pb.TASK_FAILED,
            "gone": pb.TASK_FAILED,
        }
        queued = {s.task_id: s for _, s in agent.updates.pending()}
        assert "the task's container was gone" in queued["gone"].message
        assert queued["created"].reason == pb.REASON_AGENT_RESTARTED

        def removed(container_id: str) -> bool:
            try:
                client.containers.get(container_id)
            except docker.errors.NotFound:
                return True
            return False

        await async_wait_until(lambda: removed(stray.id) and removed(half.id), 15, "removed")
        assert client.containers.get(left.id).status == "running"
        stdout = sandbox_path(work_dir, "running") / "stdout"
        await async_wait_until(lambda: stdout.read_text() == "hi\n", 10, "the output copied")
    finally:
        await agent.stop(kill_tasks=True)
    await left.wait()  # (the first run's watcher, which a dead agent would not have, too)
    assert removed(left.id), "the agent's stop killed and removed the container it took back"


def sandbox_path(work_dir: Path, task_id: str) -> Path:
    return work_dir / "sandboxes" / "fw1" / task_id
