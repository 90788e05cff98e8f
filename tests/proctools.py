"""Starting, polling and stopping the processes tests run: shared by tests/conftest.py
(per-test `processes` fixture) and module-scoped clusters (tests/e2e)."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import os
import signal
import subprocess
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import psutil

T = TypeVar("T")
STOP_TIMEOUT = 8.0
LOG_TAIL_LINES = 40


def _describe(what: str | None, check: Callable[..., object]) -> str:
    return what or getattr(check, "__name__", repr(check))


def poll_until(
    check: Callable[[], T],
    timeout: float = 10.0,
    what: str | None = None,
    interval: float = 0.05,
) -> T:
    """Poll `check` until it returns something truthy, and return that; fail after `timeout`.

    OSError from `check` (a server not listening yet, an HTTP error) counts as
    "not yet"; the last value or error is in the failure message.
    """
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        try:
            last = check()
        except OSError as e:
            last = e
        else:
            if last:
                return last  # type: ignore[return-value]
        if time.monotonic() >= deadline:
            raise AssertionError(
                f"timed out after {timeout:g}s waiting for {_describe(what, check)}; "
                f"last seen: {last!r}"
            )
        time.sleep(interval)


async def async_poll_until(
    check: Callable[[], T | Awaitable[T]],
    timeout: float = 10.0,
    what: str | None = None,
    interval: float = 0.02,
) -> T:
    """`poll_until` for async tests: `check` may be sync or async; the loop keeps running."""
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        try:
            value = check()
            if inspect.isawaitable(value):
                value = await value
            last = value
        except OSError as e:
            last = e
        else:
            if last:
                return last  # type: ignore[return-value]
        if time.monotonic() >= deadline:
            raise AssertionError(
                f"timed out after {timeout:g}s waiting for {_describe(what, check)}; "
                f"last seen: {last!r}"
            )
        await asyncio.sleep(interval)


def tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


class ProcessFailed(RuntimeError):
    """A process the test started exited before it was ready; the message has its log."""


class PortInUse(ProcessFailed):
    """Another process took the port between picking it and listening on it."""


@dataclass
class Processes:
    """Every process a test started, so teardown can stop them whatever happened."""

    logs: list[Path] = field(default_factory=list)
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    # Process groups left behind by agents killed with SIGKILL (each task leads its own).
    orphan_groups: set[int] = field(default_factory=set)
    # Work dirs of the processes started: their agents' task keepers (and what those
    # still run) outlive a killed agent by design, and are ended at teardown.
    work_dirs: list[Path] = field(default_factory=list)
    # Processes that ignored SIGTERM until the deadline (printed at teardown).
    hung: list[str] = field(default_factory=list)

    def start(self, args: list[str], log: Path) -> subprocess.Popen[bytes]:
        log.parent.mkdir(parents=True, exist_ok=True)
        # Nothing from the caller's ORBITER_* settings (master, config file) leaks in.
        env = {k: v for k, v in os.environ.items() if not k.startswith("ORBITER_")}
        env["PYTHONUNBUFFERED"] = "1"
        with log.open("ab") as out:
            proc = subprocess.Popen(
                args, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=env
            )
        self.procs.append(proc)
        self.logs.append(log)
        if "--work-dir" in args:
            self.work_dirs.append(Path(args[args.index("--work-dir") + 1]).resolve())
        return proc

    def stop_all(self) -> None:
        """SIGTERM everything still running, SIGKILL what has not exited by the deadline."""
        live = [p for p in reversed(self.procs) if p.poll() is None]
        for proc in live:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT
        for proc in live:
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.hung.append(" ".join(map(str, proc.args)))
                proc.kill()
                proc.wait()
        for pgid in self.orphan_groups:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pgid, signal.SIGKILL)
        self._end_keepers()
        for args in self.hung:
            print(f"did not exit within {STOP_TIMEOUT:g}s of SIGTERM, killed: {args}")

    def _end_keepers(self) -> None:
        """SIGKILL the task keepers under our work dirs and the task groups they hold."""
        if not self.work_dirs:
            return
        roots = tuple(str(d) for d in self.work_dirs)
        for proc in psutil.process_iter(["cmdline"]):
            cmdline = proc.info["cmdline"] or []
            if "orbiter.agent.keeper" not in cmdline or not cmdline[-1].startswith(roots):
                continue
            with contextlib.suppress(psutil.Error):
                for child in proc.children():
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        os.killpg(child.pid, signal.SIGKILL)
                proc.kill()

    def report(self) -> str:
        return "\n".join(f"----- {log} -----\n{tail(log)}" for log in dict.fromkeys(self.logs))
