"""What `orbiter execute` prints: state lines, a progress bar, JSON lines, a summary.

The counting and the text are pure functions of the tasks' states (tested as tables);
the reporters only decide where the text goes: plain lines (a pipe, a log), one
progress line redrawn in place (a terminal, several instances), or JSON lines.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, TextIO

from orbiter.proto import messages_pb2
from orbiter.taskstates import TERMINAL_STATES

pb = messages_pb2
TERMINAL_NAMES = frozenset(pb.TaskState.Name(s) for s in TERMINAL_STATES)


def short(state: str) -> str:
    return state.removeprefix("TASK_")


def counts(states: Mapping[str, str], instances: int) -> dict[str, int]:
    """Tasks per state (API names), plus WAITING for those with none yet; largest first."""
    out: dict[str, int] = {}
    for state in states.values():
        out[state] = out.get(state, 0) + 1
    if instances > len(states):
        out["WAITING"] = instances - len(states)
    return dict(sorted(out.items(), key=lambda kv: (-kv[1], kv[0])))


def bar(done: int, total: int, width: int = 24) -> str:
    filled = width * done // total if total else width
    return "[" + "#" * filled + "-" * (width - filled) + "]"


def progress_line(states: Mapping[str, str], instances: int, width: int = 24) -> str:
    """`[######------------------] 3/12 ended: 2 finished, 1 failed; 5 running, 4 waiting`."""
    ended = {s: n for s, n in counts(states, instances).items() if s in TERMINAL_NAMES}
    live = {s: n for s, n in counts(states, instances).items() if s not in TERMINAL_NAMES}
    done = sum(ended.values())
    text = f"{bar(done, instances, width)} {done}/{instances} ended"
    if ended:
        text += ": " + ", ".join(f"{n} {short(s).lower()}" for s, n in ended.items())
    if live:
        text += "; " + ", ".join(f"{n} {short(s).lower()}" for s, n in live.items())
    return text


@dataclass(frozen=True)
class Failure:
    task_id: str
    state: str
    message: str = ""
    exit_code: int | None = None


@dataclass(frozen=True)
class Summary:
    name: str
    instances: int
    framework_id: str
    states: dict[str, int]
    exit_status: int
    seconds: float
    failed: list[Failure] = field(default_factory=list)
    interrupted: bool = False


def summarize(
    name: str,
    instances: int,
    framework_id: str,
    statuses: Mapping[str, pb.TaskStatus],
    exit_status: int,
    seconds: float,
    interrupted: bool = False,
) -> Summary:
    names = {t: pb.TaskState.Name(s.state) for t, s in statuses.items()}
    failed = [
        Failure(t, names[t], s.message, s.exit_code if s.HasField("exit_code") else None)
        for t, s in sorted(statuses.items())
        if names[t] in TERMINAL_NAMES and s.state != pb.TASK_FINISHED
    ]
    return Summary(
        name, instances, framework_id, counts(names, instances), exit_status, seconds, failed,
        interrupted,
    )  # fmt: skip


def summary_lines(summary: Summary, master: str, shown_failures: int = 5) -> list[str]:
    """The last lines `orbiter execute` prints; a failed task's points at its stderr."""
    states = ", ".join(f"{n} {short(s)}" for s, n in summary.states.items())
    finished = summary.states.get("TASK_FINISHED", 0)
    lines = [
        f"{summary.name}: {finished}/{summary.instances} finished in {summary.seconds:.1f}s "
        f"({states}); exit status {summary.exit_status}"
        + (" (interrupted)" if summary.interrupted else "")
    ]
    for f in summary.failed[:shown_failures]:
        code = f" with exit code {f.exit_code}" if f.exit_code is not None else ""
        why = f" ({f.message})" if f.message else ""
        lines.append(
            f"  {f.task_id} {short(f.state)}{code}{why}; its stderr: "
            + cat_command(f.task_id, summary.framework_id, master)
        )
    if len(summary.failed) > shown_failures:
        lines.append(f"  ... and {len(summary.failed) - shown_failures} more (orbiter tasks)")
    return lines


def cat_command(task_id: str, framework_id: str, master: str) -> str:
    where = "" if master == "127.0.0.1:5050" else f" --master {master}"
    return f"orbiter cat {task_id} stderr --framework {framework_id}{where}"


def summary_json(summary: Summary, master: str) -> dict[str, Any]:
    out = {"event": "summary", **asdict(summary)}
    for f in out["failed"]:
        f["stderr"] = cat_command(f["task_id"], summary.framework_id, master)
    return out


# ---------------------------------------------------------------------- reporters


class LineReporter:
    """One line per event: for a pipe, a log file, or a single task."""

    def __init__(self, out: Callable[[str], None] = print) -> None:
        self.out = out

    def subscribed(self, framework_id: str, master: str) -> None:
        self.out(f"subscribed as framework {framework_id} to master {master}")

    def launched(self, task_id: str, hostname: str, agent_id: str) -> None:
        self.out(f"{task_id}: launched on {hostname} (agent {agent_id})")

    def state(self, status: pb.TaskStatus, states: Mapping[str, str], instances: int) -> None:
        detail = f" ({status.message})" if status.message else ""
        self.out(f"{status.task_id}: {pb.TaskState.Name(status.state)}{detail}")

    def note(self, text: str, kind: str = "note") -> None:
        self.out(text)

    def summary(self, summary: Summary, master: str) -> None:
        for line in summary_lines(summary, master):
            self.out(line)


class ProgressReporter(LineReporter):
    """A terminal and several tasks: one progress line redrawn in place; only what goes
    wrong (a failed task, an error, why nothing is placed) gets a line of its own."""

    def __init__(self, stream: TextIO | None = None, width: int = 24) -> None:
        self.stream = stream or sys.stdout
        super().__init__(self._line)
        self.width = width
        self.current = ""

    def _line(self, text: str) -> None:
        self.stream.write("\r\x1b[K" + text + "\n" + self.current)
        self.stream.flush()

    def _redraw(self, text: str) -> None:
        self.current = text
        self.stream.write("\r\x1b[K" + text)
        self.stream.flush()

    def launched(self, task_id: str, hostname: str, agent_id: str) -> None:
        pass

    def state(self, status: pb.TaskStatus, states: Mapping[str, str], instances: int) -> None:
        name = pb.TaskState.Name(status.state)
        if name in TERMINAL_NAMES and status.state != pb.TASK_FINISHED:
            super().state(status, states, instances)
        self._redraw(progress_line(states, instances, self.width))

    def summary(self, summary: Summary, master: str) -> None:
        self.current = ""
        self.stream.write("\n")
        super().summary(summary, master)


class JsonReporter:
    """JSON lines: one object per event, `event` naming its kind; the summary last."""

    def __init__(self, out: Callable[[str], None] = print, clock: Callable[[], float] = time.time):
        self.out = out
        self.clock = clock

    def _emit(self, event: str, **fields: Any) -> None:
        self.out(json.dumps({"event": event, "time": self.clock(), **fields}))

    def subscribed(self, framework_id: str, master: str) -> None:
        self._emit("subscribed", framework_id=framework_id, master=master)

    def launched(self, task_id: str, hostname: str, agent_id: str) -> None:
        self._emit("launched", task_id=task_id, hostname=hostname, agent_id=agent_id)

    def state(self, status: pb.TaskStatus, states: Mapping[str, str], instances: int) -> None:
        self._emit(
            "state",
            task_id=status.task_id,
            state=pb.TaskState.Name(status.state),
            agent_id=status.agent_id,
            message=status.message,
            reason=pb.TaskReason.Name(status.reason),
            exit_code=status.exit_code if status.HasField("exit_code") else None,
        )

    def note(self, text: str, kind: str = "note") -> None:
        self._emit(kind, message=text)

    def summary(self, summary: Summary, master: str) -> None:
        self.out(json.dumps({**summary_json(summary, master), "time": self.clock()}))
