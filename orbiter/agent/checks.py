"""Health checks ("comets" in Satellite): operator commands run on an interval.

A check is a shell command. Its exit code says how the host is, in the Nagios
convention: 0 ok, 1 warning, 2 critical. Anything else is critical too: 3 is
Nagios's UNKNOWN ("the check could not tell"), and an agent whose checks cannot
run is not one to trust with work, so Orbiter does not give it a fourth state
that rules would have to remember; the exit code stays visible in /state. A
check that times out, is killed by a signal, is not found (127) or cannot be
started is critical as well.

Each run gets its own process group (its own session) so that on timeout the
whole group is killed, not just the shell. Whenever the shell exits, whatever
it left behind in its group is killed too, before the shell is reaped (so the
group id cannot have been reused): a check must not leave processes running.
Like the process containerizer, exits are watched through a pidfd on the event
loop, with a waiter thread as the fallback where there is no pidfd.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import re
import signal
import subprocess
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, fields
from enum import IntEnum
from pathlib import Path
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from orbiter.errors import Code, OrbiterError

log = logging.getLogger(__name__)

OUTPUT_LIMIT = 4096
"""Bytes of a check's output kept (the head: Nagios puts the summary first)."""
DRAIN_TIMEOUT = 1.0
"""How long to wait for the output pipe to close once the check's group is dead;
only a process that left the group (setsid) can keep it open longer."""
SHELL = "/bin/sh"
_NAME = re.compile(r"[A-Za-z0-9_.-]+")


# ---------------------------------------------------------------------- specs


@dataclass(frozen=True)
class CheckSpec:
    """One operator-configured check: what to run, how often, for how long at most."""

    name: str
    command: str
    interval: float = 30
    timeout: float = 10

    def validate(self) -> None:
        """Raise ValueError naming the field that is wrong and what it should be."""
        if not isinstance(self.name, str) or not _NAME.fullmatch(self.name):
            raise ValueError(
                f"check name {self.name!r} is invalid: use letters, digits, '_', '.' and '-'"
            )
        if not isinstance(self.command, str) or not self.command.strip():
            raise ValueError(f"check {self.name}: command must be a non-empty shell command")
        if "\0" in self.command:
            raise ValueError(f"check {self.name}: command must not contain a NUL character")
        if not _positive(self.interval):
            raise ValueError(
                f"check {self.name}: interval must be a number of seconds > 0, "
                f"got {self.interval!r}"
            )
        if not _positive(self.timeout) or self.timeout > self.interval:
            raise ValueError(
                f"check {self.name}: timeout must be > 0 and at most the interval "
                f"({self.interval:g}s), got {self.timeout!r}"
            )

    @classmethod
    def from_mapping(cls, item: Mapping[str, Any]) -> CheckSpec:
        """A validated spec from configuration (a YAML mapping); unknown keys are errors."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(item) - known)
        if unknown:
            raise ValueError(
                f"check {item.get('name', '?')}: unknown key(s) {', '.join(unknown)}; "
                f"expected {', '.join(sorted(known))}"
            )
        missing = sorted(k for k in ("name", "command") if k not in item)
        if missing:
            raise ValueError(f"check {item.get('name', '?')}: missing {', '.join(missing)}")
        spec = cls(**item)
        spec.validate()
        return spec


def _positive(x: object) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x) and x > 0


# Example checks, portable to busybox and coreutils sh. They run in the runner's
# cwd (the agent's work dir), need no network, and read only /proc.
BUILTIN_CHECKS: dict[str, CheckSpec] = {
    spec.name: spec
    for spec in (
        CheckSpec(
            name="disk-writable",
            command=(
                'f=".orbiter-check-writable.$$"; '
                'if echo ok > "$f" && rm -f "$f"; then echo "$(pwd) is writable"; '
                'else echo "cannot write to $(pwd)"; rm -f "$f"; exit 2; fi'
            ),
            interval=60,
            timeout=10,
        ),
        CheckSpec(
            name="zombie-count",
            command=(
                "n=$(grep -s '^State:[[:space:]]*Z' /proc/[0-9]*/status | wc -l); "
                'echo "$n zombie processes"; '
                'if [ "$n" -gt 1000 ]; then exit 2; fi; '
                'if [ "$n" -gt 100 ]; then exit 1; fi'
            ),
            interval=60,
            timeout=10,
        ),
        CheckSpec(
            # A clock reset to 1970 (dead RTC battery, no NTP) breaks TLS, leases and
            # every timestamp the agent reports.
            name="clock-sane",
            command=(
                "now=$(date +%s); "
                'if [ "$now" -lt 1704067200 ]; then '
                'echo "clock reads $(date -u), before 2024-01-01"; exit 2; fi; '
                'echo "clock reads $(date -u)"'
            ),
            interval=300,
            timeout=5,
        ),
    )
}


# ---------------------------------------------------------------------- results (pure)


class CheckStatus(IntEnum):
    """The value of orbiter_check_status."""

    OK = 0
    WARNING = 1
    CRITICAL = 2

    @property
    def label(self) -> str:
        return self.name.lower()


@dataclass(frozen=True)
class CheckResult:
    """One run of a check.

    `exit_code` is the shell's exit status (a command it ran that died of signal N
    gives 128+N), -N if the shell itself died of signal N, and None if the check
    timed out or never started.
    """

    name: str
    status: CheckStatus
    exit_code: int | None
    output: str
    started: float
    duration: float
    timed_out: bool = False


def classify(exit_code: int | None, timed_out: bool = False) -> CheckStatus:
    """Nagios exit codes; whatever is not 0, 1 or 2 (3 UNKNOWN, 127 not found,
    signals, no exit at all) is critical."""
    if timed_out or exit_code is None:
        return CheckStatus.CRITICAL
    if exit_code == 0:
        return CheckStatus.OK
    if exit_code == 1:
        return CheckStatus.WARNING
    return CheckStatus.CRITICAL


def render_output(head: bytes, total: int) -> str:
    """The kept head of the output as text, saying how much was cut."""
    text = head.decode("utf-8", errors="replace")
    if total > len(head):
        text += f"\n[output truncated: {total - len(head)} more bytes]"
    return text


def next_run(previous: float, interval: float, now: float) -> float:
    """When to run next: one interval after the previous start, skipping the slots a
    slow run or a stalled loop missed instead of running them back to back."""
    due = previous + interval
    if due > now:
        return due
    due = previous + (math.floor((now - previous) / interval) + 1) * interval
    while due <= now:  # float rounding
        due += interval
    return due


# ---------------------------------------------------------------------- running one check


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    except PermissionError:
        log.warning("not allowed to kill process group %d of a check", pgid)


class _Child:
    """A check's shell: a future that completes once it exited, its group was killed
    and it was reaped."""

    def __init__(self, popen: subprocess.Popen[bytes]) -> None:
        self.popen = popen
        self._loop = asyncio.get_running_loop()
        self.exited: asyncio.Future[int] = self._loop.create_future()
        self._pidfd: int | None = None
        try:
            self._pidfd = os.pidfd_open(popen.pid)
        except (AttributeError, OSError):
            threading.Thread(
                target=self._wait_in_thread, name=f"check-{popen.pid}", daemon=True
            ).start()
        else:
            self._loop.add_reader(self._pidfd, self._on_exit)

    def _wait_in_thread(self) -> None:
        # WNOWAIT: only peek, so the group is killed before the leader is reaped.
        with contextlib.suppress(ChildProcessError):
            os.waitid(os.P_PID, self.popen.pid, os.WEXITED | os.WNOWAIT)
        with contextlib.suppress(RuntimeError):  # loop closed meanwhile
            self._loop.call_soon_threadsafe(self._on_exit)

    def _on_exit(self) -> None:
        if self.exited.done():
            return
        if self._pidfd is not None:
            self._loop.remove_reader(self._pidfd)
            os.close(self._pidfd)
            self._pidfd = None
        # The unreaped leader keeps the group id ours, so this cannot hit a stranger.
        _kill_group(self.popen.pid)
        self.exited.set_result(self.popen.wait())

    def kill(self) -> None:
        if not self.exited.done():
            _kill_group(self.popen.pid)


async def _read_head(reader: asyncio.StreamReader, limit: int) -> tuple[bytes, int]:
    """Read to EOF keeping the first `limit` bytes; the rest is drained (so the
    check never blocks on a full pipe) and only counted."""
    head = bytearray()
    total = 0
    while chunk := await reader.read(65536):
        total += len(chunk)
        if len(head) < limit:
            head += chunk[: limit - len(head)]
    return bytes(head), total


async def run_check(spec: CheckSpec, cwd: Path | None = None) -> CheckResult:
    """Run `spec` once under /bin/sh -c and say how it went; never raises for the
    check's own failures (those are critical results)."""
    loop = asyncio.get_running_loop()
    started = time.time()
    t0 = loop.time()

    def result(exit_code: int | None, output: str, timed_out: bool = False) -> CheckResult:
        return CheckResult(
            name=spec.name,
            status=classify(exit_code, timed_out),
            exit_code=exit_code,
            output=output,
            started=started,
            duration=loop.time() - t0,
            timed_out=timed_out,
        )

    try:
        # Popen forks with vfork and execs in C: far under a millisecond of the loop.
        popen = subprocess.Popen(
            [SHELL, "-c", spec.command],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            start_new_session=True,
        )
    except OSError as e:
        where = f" in {cwd}" if cwd is not None else ""
        return result(None, f"cannot start check{where}: {e}")
    assert popen.stdout is not None
    child = _Child(popen)
    reader = asyncio.StreamReader()
    try:
        transport, _ = await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader), popen.stdout
        )
    except BaseException:
        child.kill()
        popen.stdout.close()
        raise
    output = asyncio.create_task(_read_head(reader, OUTPUT_LIMIT))
    timed_out = False
    try:
        try:
            await asyncio.wait_for(asyncio.shield(child.exited), spec.timeout)
        except TimeoutError:
            timed_out = True
            child.kill()
        exit_code = await child.exited
        try:
            head, total = await asyncio.wait_for(asyncio.shield(output), DRAIN_TIMEOUT)
        except TimeoutError:
            head, total = b"", 0
            log.warning(
                "check %s: output pipe still open after its process group was killed "
                "(a process of it left the group)",
                spec.name,
            )
    except asyncio.CancelledError:
        child.kill()
        with contextlib.suppress(TimeoutError, asyncio.CancelledError):
            await asyncio.wait_for(asyncio.shield(child.exited), DRAIN_TIMEOUT)
        raise
    finally:
        output.cancel()
        transport.close()
    text = render_output(head, total)
    if timed_out:
        note = f"[timed out after {spec.timeout:g}s; process group killed]"
        return result(None, f"{text}\n{note}" if text else note, timed_out=True)
    return result(exit_code, text)


# ---------------------------------------------------------------------- the runner


class UnknownCheck(OrbiterError):
    code = Code.NOT_FOUND


class CheckRunner:
    """Runs every check on its interval (first run right after start), keeps the last
    result of each, and exports them as metrics and as part of the agent's /state."""

    def __init__(self, specs: Sequence[CheckSpec], cwd: Path | None = None) -> None:
        seen: set[str] = set()
        for spec in specs:
            spec.validate()
            if spec.name in seen:
                raise ValueError(f"check {spec.name} is configured twice; names must be unique")
            seen.add(spec.name)
        self.specs: dict[str, CheckSpec] = {s.name: s for s in specs}
        self.cwd = cwd
        self._results: dict[str, CheckResult] = {}
        self._runs: dict[tuple[str, CheckStatus], int] = {
            (name, status): 0 for name in self.specs for status in CheckStatus
        }
        self._locks = {name: asyncio.Lock() for name in self.specs}
        self._tasks: list[asyncio.Task[None]] = []
        self._collector = _CheckCollector(self)

    async def start(self) -> None:
        if self._tasks:
            return
        self._tasks = [
            asyncio.create_task(self._schedule(spec), name=f"check {spec.name}")
            for spec in self.specs.values()
        ]

    async def stop(self) -> None:
        """Cancel the schedule; a check running right now has its group killed."""
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def run_now(self, name: str) -> CheckResult:
        """Run one check now (after any run of it in progress) and record the result."""
        spec = self.specs.get(name)
        if spec is None:
            raise UnknownCheck(
                f"no check named {name!r}; configured: {', '.join(self.specs) or 'none'}"
            )
        async with self._locks[name]:
            try:
                result = await run_check(spec, self.cwd)
            except (asyncio.CancelledError, KeyboardInterrupt, SystemExit):
                raise
            except Exception as e:  # a bug here must not stop the schedule
                log.exception("check %s could not be run", name)
                result = CheckResult(
                    name, CheckStatus.CRITICAL, None, f"internal error: {e!r}", time.time(), 0.0
                )
            self._record(result)
        return result

    def result(self, name: str) -> CheckResult | None:
        return self._results.get(name)

    def runs(self, name: str, status: CheckStatus) -> int:
        return self._runs[(name, status)]

    def state(self) -> list[dict[str, Any]]:
        """Each check and its last run, for the agent's /state JSON."""
        out = []
        for spec in self.specs.values():
            r = self._results.get(spec.name)
            out.append(
                {
                    "name": spec.name,
                    "command": spec.command,
                    "interval": spec.interval,
                    "timeout": spec.timeout,
                    "status": r.status.label if r else None,
                    "exit_code": r.exit_code if r else None,
                    "timed_out": r.timed_out if r else False,
                    "output": r.output if r else "",
                    "last_run": r.started if r else None,
                    "duration": r.duration if r else None,
                }
            )
        return out

    def collector(self) -> Collector:
        """The orbiter_check_* metrics; register it once in the agent's registry."""
        return self._collector

    async def _schedule(self, spec: CheckSpec) -> None:
        loop = asyncio.get_running_loop()
        due = loop.time()
        while True:
            await self.run_now(spec.name)
            due = next_run(due, spec.interval, loop.time())
            await asyncio.sleep(due - loop.time())

    def _record(self, result: CheckResult) -> None:
        previous = self._results.get(result.name)
        self._results[result.name] = result
        self._runs[(result.name, result.status)] += 1
        if previous is None or previous.status != result.status:
            first_line = result.output.strip().splitlines()[0] if result.output.strip() else ""
            log.log(
                logging.INFO if result.status is CheckStatus.OK else logging.WARNING,
                "check %s is %s (exit %s%s): %s",
                result.name,
                result.status.label,
                result.exit_code,
                ", timed out" if result.timed_out else "",
                first_line,
            )


class _CheckCollector(Collector):
    def __init__(self, runner: CheckRunner) -> None:
        self._runner = runner

    def describe(self) -> Iterator[Metric]:
        yield from self._families()

    def collect(self) -> Iterator[Metric]:
        status, duration, last_run, runs = self._families()
        results = dict(self._runner._results)
        counts = dict(self._runner._runs)
        for name in self._runner.specs:
            r = results.get(name)
            if r is not None:  # before the first run there is nothing to say
                status.add_metric([name], int(r.status))
                duration.add_metric([name], r.duration)
                last_run.add_metric([name], r.started)
            for s in CheckStatus:  # zeros included, so increase() sees the first run
                runs.add_metric([name, s.label], counts[(name, s)])
        yield from (status, duration, last_run, runs)

    @staticmethod
    def _families() -> tuple[Metric, Metric, Metric, Metric]:
        return (
            GaugeMetricFamily(
                "orbiter_check_status",
                "Last result of the check: 0 ok, 1 warning, 2 critical (also timeouts, "
                "crashes and unknown exit codes)",
                labels=["check"],
            ),
            GaugeMetricFamily(
                "orbiter_check_duration_seconds",
                "How long the check's last run took",
                labels=["check"],
            ),
            GaugeMetricFamily(
                "orbiter_check_last_run_timestamp_seconds",
                "When the check last started, in Unix time",
                labels=["check"],
            ),
            CounterMetricFamily(
                "orbiter_check_runs",
                "Runs of the check by resulting status",
                labels=["check", "status"],
            ),
        )
