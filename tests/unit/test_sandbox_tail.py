"""`--follow`: the loop reads until the task has ended and then to the end; several
tasks' output is told apart by a prefix on every line."""

from __future__ import annotations

import threading

from orbiter.sandbox_tail import LinePrefixer, follow


class Chunks:
    """A sandbox file that gives one chunk per read (b"": nothing new yet)."""

    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = chunks

    def read_new(self) -> bytes:
        return self.chunks.pop(0) if self.chunks else b""


def test_follow_prints_everything_including_what_came_after_the_task_ended() -> None:
    file = Chunks([b"one\n", b"", b"two\n", b"", b"three\n"])
    checks: list[bool] = []
    out: list[bytes] = []

    def ended() -> bool:
        checks.append(True)
        return len(checks) >= 2  # ends at the second empty read, before "three" was read

    follow(file, ended, out.append, sleep=lambda s: None)  # type: ignore[arg-type]

    assert b"".join(out) == b"one\ntwo\nthree\n"
    assert len(checks) == 2


def test_each_line_is_prefixed_and_a_partial_line_waits_for_its_end() -> None:
    out: list[bytes] = []
    prefix = LinePrefixer("job-1| ", out.append)

    prefix(b"a\nb")
    prefix(b"c\n")
    prefix(b"tail")
    prefix.flush()

    assert b"".join(out) == b"job-1| a\njob-1| bc\njob-1| tail\n"


def test_a_stopped_follow_returns_though_its_task_never_ends_and_still_writes() -> None:
    """`execute --follow` reads in threads: when execute gives up (the master is lost,
    or a kill after Ctrl-C is not confirmed), the thread must end too, or the process
    waits for it at exit for as long as the task runs."""

    class Endless:
        reads = 0

        def read_new(self) -> bytes:
            self.reads += 1
            return b"more\n" if self.reads % 2 else b""

    stopped = threading.Event()
    out: list[bytes] = []

    def write(data: bytes) -> None:
        out.append(data)
        if len(out) == 3:
            stopped.set()

    follow(Endless(), lambda: False, write, sleep=lambda s: None, stopped=stopped)  # type: ignore[arg-type]

    assert out == [b"more\n"] * 3
