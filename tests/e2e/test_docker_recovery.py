"""Docker tasks end to end: `orbiter execute --docker-image`, `orbiter cat`, and an agent
killed with SIGKILL that takes its containers back by label.

Real `orbiter master` and `orbiter agent --containerizers process,docker`
processes, a real dockerd (tests/dockerd.py) and the busybox test image made
by `docker import`; the agent reaches the daemon through DOCKER_HOST.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import docker.errors
import pytest

pytestmark = pytest.mark.slow

ORBITER = [sys.executable, "-m", "orbiter.cli"]
IMAGE = "orbiter-test/busybox:latest"
RESOURCES = "cpus:2;mem:1024;disk:1000"


@pytest.fixture
def docker_agent(
    docker_engine: Any, agent_process: Any, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[[Any], Any]]:
    """docker_agent(master) -> a registered agent running process and docker tasks."""
    monkeypatch.setenv("DOCKER_HOST", docker_engine.base_url)  # what the agent inherits
    started: list[Any] = []

    def start(master: Any) -> Any:
        agent = agent_process(master, RESOURCES, containerizer="process,docker")
        started.append(agent)
        return agent

    yield start
    for agent in started:
        if agent.agent_id:
            docker_engine.remove_containers(f"orbiter.agent_id={agent.agent_id}")


def restart(agent: Any) -> subprocess.Popen[bytes]:
    """`orbiter agent` again on the same work dir: same id, same flags."""
    args = [
        *ORBITER, "agent", "--master", agent.master.address, "--work-dir", str(agent.work_dir),
        "--resources", RESOURCES, "--containerizers", "process,docker",
    ]  # fmt: skip
    agent.proc = agent.processes.start(args, agent.log)
    return agent.proc


def execute(processes: Any, master: Any, log: Path, name: str, command: str) -> Any:
    return processes.start(
        [*ORBITER, "execute", "--master", master.address, "--name", name,
         "--docker-image", IMAGE, "--command", command],
        log,
    )  # fmt: skip


def containers(engine: Any, label: str) -> list[Any]:
    client = engine.client()
    try:
        return client.containers.list(all=True, filters={"label": label})
    finally:
        client.close()


def test_execute_with_a_docker_image_runs_there_and_orbiter_cat_shows_its_output(
    master: Any, docker_agent: Any, processes: Any, tmp_path: Path
) -> None:
    agent = docker_agent(master)
    assert "containerizers process,docker" in agent.log.read_text()
    assert agent.state()["containerizers"] == ["process", "docker"]
    log = tmp_path / "execute.log"

    run = execute(
        processes, master, log, "hello",
        'echo "hello from $ORBITER_TASK_ID in $(cat /etc/passwd | head -c 4)"; echo warn >&2',
    )  # fmt: skip

    assert run.wait(60) == 0, log.read_text()
    assert "hello-0: TASK_FINISHED" in log.read_text()
    cat = [*ORBITER, "cat", "--master", master.address, "hello-0"]
    out = subprocess.run(cat, capture_output=True, text=True, timeout=30, check=True).stdout
    assert out == "hello from hello-0 in root\n"  # the image's /etc/passwd, not the host's
    err = subprocess.run([*cat, "stderr"], capture_output=True, text=True, timeout=30, check=True)
    assert err.stdout == "warn\n"


def test_a_docker_task_over_its_memory_fails_with_the_memory_reason_beside_a_plain_task(
    master: Any, docker_agent: Any, processes: Any, tmp_path: Path, wait_until: Any
) -> None:
    docker_agent(master)
    oom_log, plain_log = tmp_path / "oom.log", tmp_path / "plain.log"

    oom = processes.start(
        [*ORBITER, "execute", "--master", master.address, "--name", "hog", "--mem", "32",
         "--docker-image", IMAGE, "--command", "head -c 300m /dev/zero | tail"],
        oom_log,
    )  # fmt: skip
    plain = processes.start(
        [*ORBITER, "execute", "--master", master.address, "--name", "plain",
         "--command", "echo on the host"],
        plain_log,
    )  # fmt: skip

    assert plain.wait(60) == 0, plain_log.read_text()
    assert oom.wait(60) == 137, oom_log.read_text()  # what the OOM-killed shell exited with
    assert "hog-0: TASK_FAILED (Memory limit exceeded" in oom_log.read_text()
    (task,) = [t for t in master.tasks() if t["id"] == "hog-0"]
    assert "REASON_CONTAINER_LIMITATION_MEMORY" in str(task), task


def test_a_killed_agent_takes_its_containers_back_by_label(
    master: Any,
    docker_agent: Any,
    docker_engine: Any,
    processes: Any,
    tmp_path: Path,
    wait_until: Any,
) -> None:
    agent = docker_agent(master)
    long_log, short_log = tmp_path / "long.log", tmp_path / "short.log"
    long_run = execute(processes, master, long_log, "long", "echo up; sleep 60")
    short_run = execute(processes, master, short_log, "short", "sleep 3; echo done; exit 5")
    wait_until(lambda: len(master.tasks(state="TASK_RUNNING")) == 2, 30, "both tasks RUNNING")
    # A container labelled as this agent's whose task nobody knows.
    client = docker_engine.client()
    stray = client.containers.run(
        IMAGE, ["sleep", "60"], detach=True,
        labels={"orbiter.agent_id": agent.agent_id, "orbiter.framework_id": "gone",
                "orbiter.task_id": "stray"},
    )  # fmt: skip
    client.close()

    agent.proc.kill()  # kill -9: the containers live on under dockerd
    agent.proc.wait(10)
    assert len(containers(docker_engine, "orbiter.task_id=short-0")) == 1
    wait_until(
        lambda: containers(docker_engine, "orbiter.task_id=short-0")[0].status == "exited",
        30,
        "the short task's container to end while the agent is away",
    )
    assert [c.status for c in containers(docker_engine, "orbiter.task_id=long-0")] == ["running"]
    restart(agent)

    # The one that ended while the agent was away: its real exit status and whole output.
    assert short_run.wait(30) == 5, short_log.read_text()
    assert "short-0: TASK_FAILED (Command exited with status 5)" in short_log.read_text()
    assert (next(agent.work_dir.glob("sandboxes/*/short-0")) / "stdout").read_text() == "done\n"
    # The stray container is removed; the running one is held again, and can be killed.
    wait_until(
        lambda: not containers(docker_engine, "orbiter.task_id=stray"), 30, "the stray removed"
    )
    wait_until(
        lambda: [t["state"] for t in agent.state()["tasks"]] == ["TASK_RUNNING"],
        15,
        "the restarted agent to hold the long task as RUNNING",
    )
    long_run.send_signal(2)  # Ctrl-C: execute kills its tasks before it exits
    assert long_run.wait(30) == 130, long_log.read_text()
    assert "long-0: TASK_KILLED" in long_log.read_text()
    wait_until(
        lambda: not containers(docker_engine, "orbiter.task_id=long-0"), 15, "long-0 removed"
    )
    assert (next(agent.work_dir.glob("sandboxes/*/long-0")) / "stdout").read_text() == "up\n"
    with pytest.raises(docker.errors.NotFound):
        docker_engine.client().containers.get(stray.id)


def test_a_missing_image_that_cannot_be_pulled_fails_the_task_naming_the_image(
    master: Any, docker_agent: Any, processes: Any, tmp_path: Path
) -> None:
    docker_agent(master)
    log = tmp_path / "execute.log"
    run = processes.start(
        [*ORBITER, "execute", "--master", master.address, "--name", "nope",
         "--docker-image", "orbiter-test/missing:1", "--command", "true"],
        log,
    )  # fmt: skip

    assert run.wait(90) == 1, log.read_text()
    assert (
        "nope-0: TASK_FAILED (launch failed: image 'orbiter-test/missing:1' is not on this "
        "agent and pulling it failed: "
    ) in log.read_text()


def test_an_agent_whose_dockerd_does_not_answer_says_so_and_fails_docker_tasks(
    master: Any,
    agent_process: Any,
    processes: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-docker.sock")
    agent = agent_process(master, RESOURCES, containerizer="process,docker")
    text = agent.log.read_text()
    assert "containerizers process\n" in text
    assert agent.state()["containerizers"] == ["process"]
    assert "docker containerizer off: dockerd does not answer at unix://" in text
    log = tmp_path / "execute.log"

    run = execute(processes, master, log, "d", "true")

    assert run.wait(60) == 1, log.read_text()
    assert "d-0: TASK_FAILED (launch failed: " in log.read_text()
    assert "the docker containerizer is not available on this agent" in log.read_text()


def test_a_stopped_agent_leaves_its_containers_running_for_the_next_run(
    master: Any, docker_agent: Any, docker_engine: Any, processes: Any, tmp_path: Path
) -> None:
    """SIGTERM (systemctl restart, an upgrade) is a restart, not a drain, for Docker too."""
    agent = docker_agent(master)
    log = tmp_path / "execute.log"
    run = execute(processes, master, log, "up", "sleep 3; echo survived")
    master.wait_for(lambda m: m.tasks(state="TASK_RUNNING"), 30, "the task RUNNING")

    agent.proc.terminate()
    assert agent.proc.wait(15) == 0
    assert [c.status for c in containers(docker_engine, "orbiter.task_id=up-0")] == ["running"]
    restart(agent)

    assert run.wait(30) == 0, log.read_text()
    assert "up-0: TASK_FINISHED" in log.read_text()
    assert (next(agent.work_dir.glob("sandboxes/*/up-0")) / "stdout").read_text() == "survived\n"
