"""What `orbiter execute` prints: the progress line, the summary and its JSON, as tables."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest

from orbiter.framework.progress import (
    JsonReporter,
    ProgressReporter,
    bar,
    counts,
    progress_line,
    summarize,
    summary_json,
    summary_lines,
)
from orbiter.proto import messages_pb2

pb = messages_pb2


@pytest.mark.parametrize(
    ("done", "total", "width", "drawn"),
    [(0, 4, 8, "[--------]"), (1, 4, 8, "[##------]"), (4, 4, 8, "[########]"),
     (1, 3, 10, "[###-------]"), (0, 0, 4, "[####]")],
)  # fmt: skip
def test_the_bar_fills_with_the_share_of_ended_tasks(
    done: int, total: int, width: int, drawn: str
) -> None:
    assert bar(done, total, width) == drawn


@pytest.mark.parametrize(
    ("states", "instances", "line"),
    [
        ({}, 3, "[------] 0/3 ended; 3 waiting"),
        ({"a": "TASK_RUNNING"}, 2, "[------] 0/2 ended; 1 running, 1 waiting"),
        (
            {"a": "TASK_FINISHED", "b": "TASK_FAILED", "c": "TASK_RUNNING"},
            3,
            "[####--] 2/3 ended: 1 failed, 1 finished; 1 running",
        ),
        ({"a": "TASK_FINISHED", "b": "TASK_FINISHED"}, 2, "[######] 2/2 ended: 2 finished"),
    ],
)
def test_the_progress_line_counts_ended_and_live_tasks(
    states: dict[str, str], instances: int, line: str
) -> None:
    assert progress_line(states, instances, width=6) == line


def test_counts_put_the_largest_first_and_waiting_for_tasks_not_yet_seen() -> None:
    states = {"a": "TASK_FAILED", "b": "TASK_FINISHED", "c": "TASK_FINISHED"}
    assert list(counts(states, 5).items()) == [
        ("TASK_FINISHED", 2), ("WAITING", 2), ("TASK_FAILED", 1)
    ]  # fmt: skip


def status(task_id: str, state: int, exit_code: int | None = None, message: str = "") -> Any:
    s = pb.TaskStatus(task_id=task_id, state=state, message=message)
    if exit_code is not None:
        s.exit_code = exit_code
    return s


STATUSES = {
    "job-0": status("job-0", pb.TASK_FINISHED, 0),
    "job-1": status("job-1", pb.TASK_FAILED, 3, "Command exited with status 3"),
    "job-2": status("job-2", pb.TASK_FINISHED, 0),
}


def test_the_summary_counts_final_states_and_points_a_failure_at_its_stderr() -> None:
    summary = summarize("job", 3, "FW1", STATUSES, 1, 2.04)

    lines = summary_lines(summary, "127.0.0.1:6060")

    assert lines[0] == "job: 2/3 finished in 2.0s (2 FINISHED, 1 FAILED); exit status 1"
    assert lines[1] == (
        "  job-1 FAILED with exit code 3 (Command exited with status 3); its stderr: "
        "orbiter cat job-1 stderr --framework FW1 --master 127.0.0.1:6060"
    )
    assert len(lines) == 2


def test_the_summary_json_has_counts_failures_and_the_command_to_read_stderr() -> None:
    summary = summarize("job", 3, "FW1", STATUSES, 1, 2.0)

    data = summary_json(summary, "127.0.0.1:5050")

    assert data["event"] == "summary"
    assert data["states"] == {"TASK_FINISHED": 2, "TASK_FAILED": 1}
    assert (data["exit_status"], data["instances"], data["framework_id"]) == (1, 3, "FW1")
    (failed,) = data["failed"]
    assert failed["task_id"] == "job-1" and failed["exit_code"] == 3
    assert failed["stderr"] == "orbiter cat job-1 stderr --framework FW1"
    json.dumps(data)


def test_many_failures_are_cut_short_with_a_count_of_the_rest() -> None:
    many = {f"j-{i}": status(f"j-{i}", pb.TASK_FAILED, 1) for i in range(8)}
    lines = summary_lines(summarize("j", 8, "F", many, 1, 1.0), "127.0.0.1:5050")
    assert len(lines) == 1 + 5 + 1 and lines[-1] == "  ... and 3 more (orbiter tasks)"


def test_json_lines_are_one_object_per_state_change() -> None:
    out: list[str] = []
    reporter = JsonReporter(out.append, clock=lambda: 7.0)

    reporter.state(STATUSES["job-1"], {}, 3)
    reporter.note("1 task(s) not placed: every agent is deactivated", "unplaced")

    assert [json.loads(line) for line in out] == [
        {"event": "state", "time": 7.0, "task_id": "job-1", "state": "TASK_FAILED",
         "agent_id": "", "message": "Command exited with status 3",
         "reason": "REASON_UNSPECIFIED", "exit_code": 3},
        {"event": "unplaced", "time": 7.0,
         "message": "1 task(s) not placed: every agent is deactivated"},
    ]  # fmt: skip


def test_on_a_terminal_only_failures_get_lines_and_the_bar_is_redrawn() -> None:
    screen = io.StringIO()
    reporter = ProgressReporter(screen, width=4)

    reporter.state(status("a", pb.TASK_RUNNING), {"a": "TASK_RUNNING"}, 2)
    reporter.state(status("a", pb.TASK_FINISHED), {"a": "TASK_FINISHED"}, 2)
    reporter.state(status("b", pb.TASK_FAILED), {"a": "TASK_FINISHED", "b": "TASK_FAILED"}, 2)

    text = screen.getvalue()
    assert "a: TASK_RUNNING" not in text and "a: TASK_FINISHED" not in text
    assert "b: TASK_FAILED\n" in text
    assert text.endswith("\r\x1b[K[####] 2/2 ended: 1 failed, 1 finished")
