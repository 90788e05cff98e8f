"""The process containerizer with real processes, each task in its own tmp_path sandbox."""

import asyncio
import contextlib
import os
import pwd
import time
from collections.abc import Mapping
from pathlib import Path

import pytest

from orbiter.agent.containerizer import LaunchError, ProcessContainerizer, Termination
from orbiter.agent.containerizer.process import resolve_user
from orbiter.proto import messages_pb2 as pb
from tests import needs

TIMEOUT = 10.0
ENV = {"ORBITER_TASK_ID": "t1", "MESOS_TASK_ID": "t1"}


def shell(line: str, task_id: str = "t1", **env: str) -> pb.TaskInfo:
    command = pb.CommandInfo(shell=True, value=line, environment=env)
    return pb.TaskInfo(task_id=task_id, name=task_id, command=command)


def argv(value: str, *arguments: str, user: str = "") -> pb.TaskInfo:
    command = pb.CommandInfo(shell=False, value=value, arguments=arguments, user=user)
    return pb.TaskInfo(task_id="t1", name="t1", command=command)


async def run(
    task: pb.TaskInfo,
    sandbox: Path,
    env: Mapping[str, str] = ENV,
    containerizer: ProcessContainerizer | None = None,
) -> Termination:
    container = await (containerizer or ProcessContainerizer()).launch(task, sandbox, env)
    return await asyncio.wait_for(container.wait(), TIMEOUT)


async def read_fifo(path: Path, timeout: float = TIMEOUT) -> str:
    """Wait for a task to write a line into the FIFO at `path` (made before the launch)."""
    if not path.exists():
        os.mkfifo(path)
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    loop = asyncio.get_running_loop()
    readable = asyncio.Event()
    loop.add_reader(fd, readable.set)
    try:
        await asyncio.wait_for(readable.wait(), timeout)
        return os.read(fd, 4096).decode().strip()
    finally:
        loop.remove_reader(fd)
        os.close(fd)


async def gone(pid: int, timeout: float = TIMEOUT) -> bool:
    """True once process `pid` has terminated (a pidfd turns readable when it dies)."""
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    loop = asyncio.get_running_loop()
    dead = asyncio.Event()
    loop.add_reader(pidfd, dead.set)
    try:
        await asyncio.wait_for(dead.wait(), timeout)
        return True
    except TimeoutError:
        return False
    finally:
        loop.remove_reader(pidfd)
        os.close(pidfd)


async def test_exit_zero_is_finished(tmp_path):
    assert await run(shell("exit 0"), tmp_path) == Termination(
        pb.TASK_FINISHED, pb.REASON_COMMAND_EXITED, "Command exited with status 0", 0
    )


async def test_exit_three_is_failed_with_the_status(tmp_path):
    assert await run(shell("exit 3"), tmp_path) == Termination(
        pb.TASK_FAILED, pb.REASON_COMMAND_EXITED, "Command exited with status 3", 3
    )


async def test_stdout_and_stderr_are_appended_to_sandbox_files(tmp_path):
    (tmp_path / "stdout").write_text("earlier\n")

    await run(shell("echo out; echo err >&2"), tmp_path)

    assert (tmp_path / "stdout").read_text() == "earlier\nout\n"
    assert (tmp_path / "stderr").read_text() == "err\n"


async def test_command_runs_in_the_sandbox_with_stdin_from_dev_null(tmp_path):
    await run(shell("pwd; cat; echo end"), tmp_path)

    assert (tmp_path / "stdout").read_text() == f"{tmp_path}\nend\n"


async def test_command_leads_its_own_session_and_process_group(tmp_path):
    container = await ProcessContainerizer().launch(shell("cat /proc/$$/stat"), tmp_path, ENV)
    await asyncio.wait_for(container.wait(), TIMEOUT)

    fields = (tmp_path / "stdout").read_text().split()
    pid, pgrp, session = int(fields[0]), int(fields[4]), int(fields[5])
    assert pid == pgrp == session == container.pid


async def test_agent_and_task_environment_are_visible_to_the_command(tmp_path):
    task = shell('printf "%s %s %s" "$ORBITER_TASK_ID" "$CUSTOM" "$SHARED"', CUSTOM="hello")
    task.command.environment["SHARED"] = "from-task"
    env = {**ENV, "SHARED": "from-agent"}

    await run(task, tmp_path, env)

    assert (tmp_path / "stdout").read_text() == "t1 hello from-task"


async def test_task_inherits_agent_environment_but_not_its_orbiter_settings(tmp_path):
    containerizer = ProcessContainerizer(
        agent_env={"PATH": os.environ["PATH"], "LANG": "C.UTF-8", "ORBITER_MASTER": "m:5050"}
    )

    await run(shell('printf "%s|%s" "$LANG" "$ORBITER_MASTER"'), tmp_path, ENV, containerizer)

    assert (tmp_path / "stdout").read_text() == "C.UTF-8|"


async def test_argv_mode_passes_arguments_without_a_shell(tmp_path):
    task = argv("printf", "printf", "%s|%s", "a b", "$HOME")

    assert (await run(task, tmp_path)).state == pb.TASK_FINISHED
    assert (tmp_path / "stdout").read_text() == "a b|$HOME"


async def test_argv_mode_without_arguments_runs_the_bare_executable(tmp_path):
    assert (await run(argv("pwd"), tmp_path)).state == pb.TASK_FINISHED
    assert (tmp_path / "stdout").read_text() == f"{tmp_path}\n"


async def test_missing_executable_is_a_launch_error_naming_it(tmp_path):
    with pytest.raises(LaunchError, match="'no-such-tool-xyz' not found in PATH"):
        await ProcessContainerizer().launch(argv("no-such-tool-xyz"), tmp_path, ENV)


async def test_non_executable_file_is_a_launch_error_naming_it(tmp_path):
    script = tmp_path / "script.sh"
    script.write_text("#!/bin/sh\nexit 0\n")

    with pytest.raises(LaunchError, match=f"'{script}' is not executable"):
        await ProcessContainerizer().launch(argv(str(script)), tmp_path, ENV)


async def test_empty_command_is_a_launch_error(tmp_path):
    with pytest.raises(LaunchError, match="task has no command"):
        await ProcessContainerizer().launch(pb.TaskInfo(task_id="t1"), tmp_path, ENV)


async def test_docker_tasks_are_refused(tmp_path):
    task = shell("true")
    task.container.type = pb.ContainerInfo.DOCKER

    with pytest.raises(LaunchError, match="docker containerizer is not available"):
        await ProcessContainerizer().launch(task, tmp_path, ENV)


async def test_unknown_user_is_a_launch_error(tmp_path):
    with pytest.raises(LaunchError, match="user 'no-such-user-xyz' does not exist"):
        await ProcessContainerizer().launch(argv("true", user="no-such-user-xyz"), tmp_path, ENV)


def test_switching_user_needs_a_root_agent():
    with pytest.raises(LaunchError, match="only an agent running as root can switch users"):
        resolve_user("root", current_uid=12345)


def test_asking_for_the_agents_own_user_needs_no_switch():
    assert resolve_user(pwd.getpwuid(os.geteuid()).pw_name, os.geteuid()) is None


@needs.skip_outside_ci(needs.root_missing("switching users"))
async def test_root_agent_runs_the_task_as_the_requested_user(tmp_path):
    needs.check(needs.root_missing("switching users"))
    nobody = pwd.getpwnam("nobody")
    task = shell('id -u; touch made-here; printf "%s\\n" "$USER"')
    task.command.user = "nobody"

    assert (await run(task, tmp_path)).state == pb.TASK_FINISHED
    assert (tmp_path / "stdout").read_text() == f"{nobody.pw_uid}\nnobody\n"
    assert (tmp_path / "made-here").stat().st_uid == nobody.pw_uid


async def test_death_by_a_signal_we_did_not_send_is_failed_and_signaled(tmp_path):
    assert await run(shell("ulimit -c 0; kill -SEGV $$"), tmp_path) == Termination(
        pb.TASK_FAILED, pb.REASON_COMMAND_SIGNALED, "Command terminated by signal SIGSEGV", None
    )


async def test_kill_of_a_plain_sleep_takes_sigterm_and_is_quick(tmp_path):
    container = await ProcessContainerizer().launch(argv("sleep", "sleep", "100"), tmp_path, ENV)
    started = time.monotonic()

    await asyncio.wait_for(container.kill(grace_period=30), TIMEOUT)

    assert time.monotonic() - started < 5
    assert await container.wait() == Termination(
        pb.TASK_KILLED, pb.REASON_TASK_KILLED, "Task killed with SIGTERM", None
    )


async def test_kill_of_a_task_ignoring_sigterm_sigkills_the_whole_group_after_grace(tmp_path):
    line = 'trap "" TERM; sleep 100 & echo $! > ready; wait'
    os.mkfifo(tmp_path / "ready")  # before the launch: the task may write at once
    container = await ProcessContainerizer().launch(shell(line), tmp_path, ENV)
    child = int(await read_fifo(tmp_path / "ready"))
    started = time.monotonic()

    await asyncio.wait_for(container.kill(grace_period=0.5), TIMEOUT)

    assert time.monotonic() - started >= 0.5
    assert await container.wait() == Termination(
        pb.TASK_KILLED, pb.REASON_TASK_KILLED, "Task killed with SIGKILL after 0.5 s grace", None
    )
    assert await gone(child)


async def test_processes_left_in_the_group_die_with_the_leader(tmp_path):
    line = "sleep 100 & echo $! > ready; exit 0"
    os.mkfifo(tmp_path / "ready")  # before the launch: the task may write at once
    container = await ProcessContainerizer().launch(shell(line), tmp_path, ENV)
    child = int(await read_fifo(tmp_path / "ready"))

    assert (await asyncio.wait_for(container.wait(), TIMEOUT)).state == pb.TASK_FINISHED
    assert await gone(child)


async def test_wait_awaited_twice_returns_the_same_termination(tmp_path):
    container = await ProcessContainerizer().launch(shell("exit 7"), tmp_path, ENV)

    first, second = await asyncio.wait_for(
        asyncio.gather(container.wait(), container.wait()), TIMEOUT
    )

    assert first is second
    assert first.exit_code == 7
    assert await container.wait() is first


async def test_a_cancelled_waiter_does_not_lose_the_result(tmp_path):
    container = await ProcessContainerizer().launch(argv("sleep", "sleep", "100"), tmp_path, ENV)
    impatient = asyncio.ensure_future(container.wait())
    await asyncio.sleep(0)
    impatient.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await impatient

    await asyncio.wait_for(container.kill(grace_period=5), TIMEOUT)

    assert (await container.wait()).state == pb.TASK_KILLED


async def test_kill_is_idempotent_and_concurrent_kills_share_one_outcome(tmp_path):
    container = await ProcessContainerizer().launch(argv("sleep", "sleep", "100"), tmp_path, ENV)

    await asyncio.wait_for(
        asyncio.gather(container.kill(grace_period=5), container.kill(grace_period=5)), TIMEOUT
    )
    await container.kill(grace_period=5)

    assert (await container.wait()).message == "Task killed with SIGTERM"


async def test_a_shorter_second_kill_brings_sigkill_forward(tmp_path):
    line = 'trap "" TERM; echo up > ready; while :; do sleep 1; done'
    os.mkfifo(tmp_path / "ready")  # before the launch: the task may write at once
    container = await ProcessContainerizer().launch(shell(line), tmp_path, ENV)
    await read_fifo(tmp_path / "ready")

    patient = asyncio.ensure_future(container.kill(grace_period=60))
    await asyncio.wait_for(container.kill(grace_period=0.2), TIMEOUT)

    await asyncio.wait_for(patient, 1)
    assert (await container.wait()).message == "Task killed with SIGKILL after 0.2 s grace"


async def test_kill_after_the_task_exited_keeps_its_own_outcome(tmp_path):
    container = await ProcessContainerizer().launch(shell("exit 0"), tmp_path, ENV)
    await asyncio.wait_for(container.wait(), TIMEOUT)

    await container.kill(grace_period=1)

    assert (await container.wait()).state == pb.TASK_FINISHED


async def test_many_short_tasks_all_get_reaped(tmp_path):
    containerizer = ProcessContainerizer()
    sandboxes = [tmp_path / f"t{i}" for i in range(50)]
    for sandbox in sandboxes:
        sandbox.mkdir()

    containers = [
        await containerizer.launch(shell(f"exit {i % 3}", f"t{i}"), sandbox, ENV)
        for i, sandbox in enumerate(sandboxes)
    ]
    results = await asyncio.wait_for(asyncio.gather(*(c.wait() for c in containers)), TIMEOUT)

    assert [r.exit_code for r in results] == [i % 3 for i in range(50)]


async def test_tasks_are_still_reaped_and_killed_without_pidfd_support(tmp_path, monkeypatch):
    def no_pidfd(pid: int) -> int:
        raise OSError(38, "Function not implemented")

    monkeypatch.setattr(os, "pidfd_open", no_pidfd)
    containerizer = ProcessContainerizer()
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()

    assert (await run(shell("exit 4"), tmp_path / "a", ENV, containerizer)).exit_code == 4
    sleeper = await containerizer.launch(argv("sleep", "sleep", "100"), tmp_path / "b", ENV)
    await asyncio.wait_for(sleeper.kill(grace_period=5), TIMEOUT)
    assert (await sleeper.wait()).state == pb.TASK_KILLED
