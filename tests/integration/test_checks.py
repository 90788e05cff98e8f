"""Agent health checks run as real /bin/sh processes: exit codes, timeouts that kill
the whole process group, captured output, metrics, /state and the schedule."""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import psutil
import pytest
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from orbiter.agent.checks import (
    BUILTIN_CHECKS,
    OUTPUT_LIMIT,
    CheckRunner,
    CheckSpec,
    CheckStatus,
    UnknownCheck,
    classify,
    next_run,
)

Wait = Callable[..., Awaitable[Any]]


def gone(pid: int) -> bool:
    """Not running any more (a zombie waiting for init to reap it counts as gone)."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def metrics(runner: CheckRunner) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    registry = CollectorRegistry()
    registry.register(runner.collector())
    text = generate_latest(registry).decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for f in text_string_to_metric_families(text)
        for s in f.samples
    }


# ---------------------------------------------------------------------- exit codes


@pytest.mark.parametrize(
    ("command", "status", "exit_code"),
    [
        ("echo fine", CheckStatus.OK, 0),
        ("echo degraded; exit 1", CheckStatus.WARNING, 1),
        ("echo broken; exit 2", CheckStatus.CRITICAL, 2),
        ("echo unknown; exit 3", CheckStatus.CRITICAL, 3),  # Nagios UNKNOWN
        ("exit 42", CheckStatus.CRITICAL, 42),
        ("no-such-command-here", CheckStatus.CRITICAL, 127),
        ("kill -9 $$", CheckStatus.CRITICAL, -9),  # the shell itself dies of SIGKILL
        ("sh -c 'kill -9 $$'", CheckStatus.CRITICAL, 128 + 9),  # a command it ran does
    ],
)
async def test_exit_code_maps_to_status(
    command: str, status: CheckStatus, exit_code: int, tmp_path: Path
) -> None:
    runner = CheckRunner([CheckSpec("c", command, timeout=10)], cwd=tmp_path)
    result = await runner.run_now("c")
    assert (result.status, result.exit_code, result.timed_out) == (status, exit_code, False)


@pytest.mark.parametrize(
    ("exit_code", "timed_out", "status"),
    [
        (0, False, CheckStatus.OK),
        (1, False, CheckStatus.WARNING),
        (2, False, CheckStatus.CRITICAL),
        (3, False, CheckStatus.CRITICAL),
        (-15, False, CheckStatus.CRITICAL),
        (None, False, CheckStatus.CRITICAL),
        (None, True, CheckStatus.CRITICAL),
        (0, True, CheckStatus.CRITICAL),
    ],
)
def test_classify(exit_code: int | None, timed_out: bool, status: CheckStatus) -> None:
    assert classify(exit_code, timed_out) is status


async def test_a_check_that_cannot_start_is_critical_and_says_why(tmp_path: Path) -> None:
    runner = CheckRunner([CheckSpec("c", "true")], cwd=tmp_path / "missing")
    result = await runner.run_now("c")
    assert result.status is CheckStatus.CRITICAL
    assert result.exit_code is None
    assert "cannot start check" in result.output and "missing" in result.output


# ---------------------------------------------------------------------- process groups


async def test_timeout_is_critical_and_kills_the_whole_process_group(
    tmp_path: Path, async_wait_until: Wait
) -> None:
    spec = CheckSpec("slow", "sleep 30 & echo $! > child.pid; echo started; wait", timeout=0.5)
    runner = CheckRunner([spec], cwd=tmp_path)
    t0 = time.monotonic()
    result = await runner.run_now("slow")

    assert time.monotonic() - t0 < 10, "the runner waited for the sleeping child"
    assert result.status is CheckStatus.CRITICAL
    assert result.timed_out and result.exit_code is None
    assert result.output.startswith("started\n")
    assert "timed out after 0.5s" in result.output
    child = int((tmp_path / "child.pid").read_text())
    await async_wait_until(lambda: gone(child), timeout=5, what=f"sleeping child {child} gone")


async def test_processes_a_check_leaves_behind_are_killed_when_it_exits(
    tmp_path: Path, async_wait_until: Wait
) -> None:
    spec = CheckSpec("bg", "sleep 30 & echo $! > child.pid; echo done", timeout=5)
    runner = CheckRunner([spec], cwd=tmp_path)
    result = await runner.run_now("bg")

    assert (result.status, result.output) == (CheckStatus.OK, "done\n")
    assert result.duration < 5, "the check waited for its background child's output pipe"
    child = int((tmp_path / "child.pid").read_text())
    await async_wait_until(lambda: gone(child), timeout=5, what=f"leftover child {child} gone")


async def test_stop_kills_a_running_check(tmp_path: Path, async_wait_until: Wait) -> None:
    spec = CheckSpec("long", "sleep 30 & echo $! > child.pid; wait", interval=60, timeout=50)
    runner = CheckRunner([spec], cwd=tmp_path)
    await runner.start()
    pid_file = tmp_path / "child.pid"
    await async_wait_until(lambda: pid_file.exists() and pid_file.read_text().strip(), timeout=5)
    await runner.stop()
    child = int(pid_file.read_text())
    await async_wait_until(lambda: gone(child), timeout=5, what=f"child {child} gone after stop")


# ---------------------------------------------------------------------- output


async def test_stdout_and_stderr_are_both_captured(tmp_path: Path) -> None:
    runner = CheckRunner([CheckSpec("c", "echo to-out; echo to-err >&2; exit 1")], cwd=tmp_path)
    result = await runner.run_now("c")
    assert result.output == "to-out\nto-err\n"


async def test_long_output_keeps_the_head_and_says_how_much_was_cut(tmp_path: Path) -> None:
    size = 200_000  # far more than a pipe buffer: the check must not block writing it
    command = f"head -c {size} /dev/zero | tr '\\0' x; echo; echo tail-marker; exit 1"
    runner = CheckRunner([CheckSpec("chatty", command, timeout=10)], cwd=tmp_path)
    result = await runner.run_now("chatty")

    assert result.status is CheckStatus.WARNING
    assert not result.timed_out
    head, _, note = result.output.partition("\n[")
    assert head == "x" * OUTPUT_LIMIT
    written = size + len("\ntail-marker\n")
    assert note == f"output truncated: {written - OUTPUT_LIMIT} more bytes]"
    assert "tail-marker" not in result.output


async def test_output_that_is_not_utf8_is_still_shown(tmp_path: Path) -> None:
    runner = CheckRunner([CheckSpec("c", r"printf 'bad \377 byte\n'")], cwd=tmp_path)
    result = await runner.run_now("c")
    assert result.output == "bad \ufffd byte\n"


# ---------------------------------------------------------------------- metrics and state


async def test_metrics_reflect_each_checks_last_status(tmp_path: Path) -> None:
    specs = [
        CheckSpec("good", "true"),
        CheckSpec("meh", "exit 1"),
        CheckSpec("bad", "exit 2"),
        CheckSpec("never", "true"),
    ]
    runner = CheckRunner(specs, cwd=tmp_path)
    before = time.time()
    for name in ("good", "meh", "bad", "bad"):
        await runner.run_now(name)
    after = time.time()
    m = metrics(runner)

    def one(name: str, **labels: str) -> float:
        return m[(name, tuple(sorted(labels.items())))]

    assert one("orbiter_check_status", check="good") == 0
    assert one("orbiter_check_status", check="meh") == 1
    assert one("orbiter_check_status", check="bad") == 2
    assert ("orbiter_check_status", (("check", "never"),)) not in m
    assert one("orbiter_check_runs_total", check="bad", status="critical") == 2
    assert one("orbiter_check_runs_total", check="bad", status="ok") == 0
    assert one("orbiter_check_runs_total", check="never", status="ok") == 0
    for check in ("good", "meh", "bad"):
        assert before <= one("orbiter_check_last_run_timestamp_seconds", check=check) <= after
        assert 0 < one("orbiter_check_duration_seconds", check=check) < after - before


async def test_every_check_metric_has_help_and_type(tmp_path: Path) -> None:
    runner = CheckRunner([CheckSpec("good", "true")], cwd=tmp_path)
    await runner.run_now("good")
    registry = CollectorRegistry()
    registry.register(runner.collector())
    families = list(text_string_to_metric_families(generate_latest(registry).decode()))

    assert {f.name for f in families} == {
        "orbiter_check_status",
        "orbiter_check_duration_seconds",
        "orbiter_check_last_run_timestamp_seconds",
        "orbiter_check_runs",
    }
    for f in families:
        assert f.documentation and f.type in ("gauge", "counter"), f.name


async def test_state_shows_the_last_output_of_each_check(tmp_path: Path) -> None:
    runner = CheckRunner(
        [CheckSpec("ran", "echo all good", interval=30, timeout=5), CheckSpec("idle", "true")],
        cwd=tmp_path,
    )
    result = await runner.run_now("ran")
    ran, idle = runner.state()

    assert ran == {
        "name": "ran",
        "command": "echo all good",
        "interval": 30,
        "timeout": 5,
        "status": "ok",
        "exit_code": 0,
        "timed_out": False,
        "output": "all good\n",
        "last_run": result.started,
        "duration": result.duration,
    }
    assert (idle["name"], idle["status"], idle["last_run"]) == ("idle", None, None)


async def test_run_now_of_an_unknown_check_names_the_configured_ones() -> None:
    runner = CheckRunner([CheckSpec("a", "true"), CheckSpec("b", "true")])
    with pytest.raises(UnknownCheck, match="no check named 'c'; configured: a, b"):
        await runner.run_now("c")


# ---------------------------------------------------------------------- schedule


async def test_first_run_is_right_after_start(tmp_path: Path, async_wait_until: Wait) -> None:
    log = tmp_path / "runs.log"
    runner = CheckRunner([CheckSpec("c", f"echo run >> {log}", interval=3600)], cwd=tmp_path)
    await runner.start()
    try:
        await async_wait_until(log.exists, timeout=5, what="the first run")
    finally:
        await runner.stop()
    assert log.read_text() == "run\n"


async def test_runs_repeat_on_the_interval(tmp_path: Path, async_wait_until: Wait) -> None:
    log = tmp_path / "runs.log"
    interval = 0.25
    runner = CheckRunner([CheckSpec("c", f"echo run >> {log}", interval, 0.2)], cwd=tmp_path)
    t0 = time.monotonic()
    await runner.start()
    try:
        await async_wait_until(
            lambda: log.exists() and log.read_text().count("run") >= 3,
            timeout=10,
            what="three runs",
        )
    finally:
        await runner.stop()
    # three starts are two intervals apart at least: runs are spaced, not back to back
    assert time.monotonic() - t0 >= 2 * interval
    assert runner.runs("c", CheckStatus.OK) >= 3


@given(
    previous=st.floats(0, 1e6),
    interval=st.floats(0.01, 1e4),
    lag=st.floats(-1e4, 1e6),
)
def test_next_run_keeps_the_phase_and_is_never_in_the_past(
    previous: float, interval: float, lag: float
) -> None:
    now = previous + lag
    due = next_run(previous, interval, now)
    assert due > now
    assert due - now <= interval * (1 + 1e-9) + 1e-6 or due == previous + interval
    steps = (due - previous) / interval
    assert steps >= 1 - 1e-9
    assert math.isclose(steps, round(steps), abs_tol=1e-6 * max(1.0, steps))


# ---------------------------------------------------------------------- specs


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        (CheckSpec("", "true"), "name"),
        (CheckSpec("has space", "true"), "name"),
        (CheckSpec("slash/name", "true"), "name"),
        (CheckSpec("c", ""), "command"),
        (CheckSpec("c", "   "), "command"),
        (CheckSpec("c", "true\0"), "command"),
        (CheckSpec("c", "true", interval=0), "interval"),
        (CheckSpec("c", "true", interval=-5), "interval"),
        (CheckSpec("c", "true", interval=math.inf), "interval"),
        (CheckSpec("c", "true", interval=10, timeout=0), "timeout"),
        (CheckSpec("c", "true", interval=10, timeout=11), "timeout"),
        (CheckSpec("c", "true", interval=10, timeout=math.nan), "timeout"),
    ],
)
def test_invalid_spec_is_refused_naming_the_field(spec: CheckSpec, field: str) -> None:
    with pytest.raises(ValueError, match=field):
        spec.validate()
    with pytest.raises(ValueError, match=field):
        CheckRunner([spec])


@given(st.from_regex(r"[A-Za-z0-9_.-]+", fullmatch=True))
def test_any_name_of_the_allowed_characters_is_valid(name: str) -> None:
    CheckSpec(name, "true").validate()


def test_duplicate_check_names_are_refused() -> None:
    with pytest.raises(ValueError, match="configured twice"):
        CheckRunner([CheckSpec("a", "true"), CheckSpec("a", "false")])


def test_spec_from_configuration_rejects_unknown_keys() -> None:
    assert CheckSpec.from_mapping(
        {"name": "a", "command": "true", "interval": 5, "timeout": 1}
    ) == (CheckSpec("a", "true", 5, 1))
    with pytest.raises(ValueError, match=r"unknown key.*intervall.*expected command"):
        CheckSpec.from_mapping({"name": "a", "command": "true", "intervall": 5})
    with pytest.raises(ValueError, match="missing command"):
        CheckSpec.from_mapping({"name": "a"})


# ---------------------------------------------------------------------- built-in checks


async def test_builtin_checks_are_valid_and_ok_on_a_healthy_host(tmp_path: Path) -> None:
    runner = CheckRunner(list(BUILTIN_CHECKS.values()), cwd=tmp_path)
    for name in BUILTIN_CHECKS:
        result = await runner.run_now(name)
        assert result.status is CheckStatus.OK, (name, result.output)
        assert result.output.strip(), name
    assert list(tmp_path.iterdir()) == [], "disk-writable left its probe file behind"


async def test_disk_writable_is_critical_where_nothing_can_be_written() -> None:
    # /proc refuses new files even to root, so this holds whoever runs the tests.
    runner = CheckRunner([BUILTIN_CHECKS["disk-writable"]], cwd=Path("/proc"))
    result = await runner.run_now("disk-writable")
    assert result.status is CheckStatus.CRITICAL
    assert "cannot write to /proc" in result.output
