"""`orbiter execute`: run a command as N tasks and stream their states.

Like mesos-execute: a framework of its own that launches the tasks on the
first offers that fit, prints each state change, and exits with the task's
exit status (one instance) or 0 when every instance finished, 1 otherwise,
after a summary (counts by final state; a failed task's line says how to read
its stderr). Ctrl-C kills the tasks and tears the framework down; with nothing
launched it exits at once. When nothing is placed for a few seconds it asks
`diagnose` why and says so.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

from orbiter.framework.driver import CallError, Scheduler, SchedulerDriver, task_info
from orbiter.framework.progress import LineReporter, Summary, summarize
from orbiter.proto import messages_pb2
from orbiter.resources import Resources
from orbiter.taskstates import TERMINAL_STATES

pb = messages_pb2
log = logging.getLogger(__name__)


class Reporter(Protocol):
    """Where `orbiter execute` says what happens (orbiter.framework.progress)."""

    def subscribed(self, framework_id: str, master: str) -> None: ...
    def launched(self, task_id: str, hostname: str, agent_id: str) -> None: ...
    def state(self, status: pb.TaskStatus, states: dict[str, str], instances: int) -> None: ...
    def note(self, text: str, kind: str = "note") -> None: ...
    def summary(self, summary: Summary, master: str) -> None: ...


@dataclass
class ExecuteSpec:
    name: str
    command: str
    cpus: float = 0.1
    mem: float = 32.0
    disk: float = 0.0
    instances: int = 1
    shell: bool = True
    environment: dict[str, str] = field(default_factory=dict)
    kill_grace_period: float = 0.0
    role: str = "*"
    user: str = ""  # command.user: '' runs as the agent's task user (nobody unless set)
    docker_image: str = ""  # run each task in a Docker container of this image


Diagnose = Callable[[], Awaitable["str | None"]]
"""Why nothing can be placed now (from the operator API), or None."""
Follow = Callable[[str, str, str, Callable[[], bool]], Awaitable[None]]
"""Print a task's output: (task id, agent id, framework id, has it ended?), until it has."""


class CommandScheduler(Scheduler):
    """Launches `spec.instances` copies of a command and follows them to the end."""

    def __init__(
        self,
        spec: ExecuteSpec,
        out: Callable[[str], None] = print,
        reporter: Reporter | None = None,
    ) -> None:
        self.spec = spec
        self.report: Reporter = reporter or LineReporter(out)
        self.pending = [f"{spec.name}-{i}" for i in range(spec.instances)]
        self.launched: dict[str, str] = {}  # task id -> agent id
        self.last_launch = time.monotonic()
        self.states: dict[str, pb.TaskStatus] = {}
        self.done = asyncio.Event()
        self.failed = ""
        self.framework_id = ""
        self.started = time.monotonic()
        text = f"cpus:{spec.cpus};mem:{spec.mem}" + (f";disk:{spec.disk}" if spec.disk else "")
        self.per_task = Resources.parse(text)
        self.on_launch: Callable[[str, str], None] = lambda task_id, agent_id: None

    def subscribed(self, driver: SchedulerDriver, framework_id: str, master: pb.MasterInfo) -> None:
        self.framework_id = framework_id
        self.report.subscribed(framework_id, master.grpc_address)

    async def offers(self, driver: SchedulerDriver, offers: list[pb.Offer]) -> None:
        for offer in offers:
            if not self.pending:
                await driver.decline([offer.id], refuse_seconds=3600)
                continue
            available = Resources.from_proto(offer.resources)
            tasks = []
            while self.pending and available.contains(self.per_task):
                want = self.per_task
                available = available - want
                task_id = self.pending.pop(0)
                info = task_info(
                    task_id,
                    self.spec.command,
                    want.to_proto(),
                    shell=self.spec.shell,
                    environment=self.spec.environment,
                    kill_grace_period=self.spec.kill_grace_period,
                )
                info.command.user = self.spec.user
                if self.spec.docker_image:
                    info.container.type = pb.ContainerInfo.DOCKER
                    info.container.docker.image = self.spec.docker_image
                tasks.append(info)
            if not tasks:
                await driver.decline([offer.id])
                continue
            try:
                await driver.launch([offer.id], tasks)
            except CallError as e:
                self.failed = str(e)
                self.report.note(f"error: {e}", "error")
                self.done.set()
                return
            self.last_launch = time.monotonic()
            for t in tasks:
                self.launched[t.task_id] = offer.agent_id
                self.report.launched(t.task_id, offer.hostname, offer.agent_id)
                self.on_launch(t.task_id, offer.agent_id)
        if not self.pending:
            with contextlib.suppress(CallError):
                await driver.suppress()

    def ended(self, task_id: str) -> bool:
        status = self.states.get(task_id)
        return status is not None and status.state in TERMINAL_STATES

    def live(self) -> list[str]:
        """Launched tasks that have not ended."""
        return [t for t in self.launched if not self.ended(t)]

    def status_update(self, driver: SchedulerDriver, status: pb.TaskStatus) -> None:
        previous = self.states.get(status.task_id)
        self.states[status.task_id] = status
        if previous is None or previous.state != status.state:
            names = {t: pb.TaskState.Name(s.state) for t, s in self.states.items()}
            self.report.state(status, names, self.spec.instances)
        if not self.pending and self.launched and not self.live():
            self.done.set()

    def error(self, driver: SchedulerDriver, message: str) -> None:  # type: ignore[override]
        self.report.note(f"error from master: {message}", "error")

    def exit_code(self) -> int:
        if self.failed:
            return 1
        statuses = list(self.states.values())
        if self.spec.instances == 1 and statuses and statuses[0].HasField("exit_code"):
            return statuses[0].exit_code
        finished = [s for s in statuses if s.state == pb.TASK_FINISHED]
        return 0 if len(finished) == self.spec.instances else 1


async def _explain_waits(scheduler: CommandScheduler, diagnose: Diagnose, after: float) -> None:
    """While tasks wait for a place and none was launched for `after` seconds, say why
    (each new reason once), so a task that cannot fit does not wait in silence."""
    said: str | None = None
    while True:
        await asyncio.sleep(min(after, 1.0))
        quiet = time.monotonic() - max(scheduler.last_launch, scheduler.started)
        if not scheduler.pending or quiet < after:
            continue
        try:
            reason = await diagnose()
        except Exception as e:  # a hint that cannot be had is no error
            reason = None
            log.debug("cannot tell why nothing is placed: %s", e)
        if reason and reason != said:
            n = len(scheduler.pending)
            scheduler.report.note(f"{n} task(s) not placed: {reason}", "unplaced")
        said = reason


async def execute(
    spec: ExecuteSpec,
    master: str,
    out: Callable[[str], None] = print,
    reporter: Reporter | None = None,
    diagnose: Diagnose | None = None,
    follow: Follow | None = None,
    placement_timeout: float = 5.0,
) -> int:
    """Run the command framework to completion; returns the process exit status."""
    scheduler = CommandScheduler(spec, out, reporter)
    report = scheduler.report
    framework = pb.FrameworkInfo(name=f"orbiter-execute {spec.name}", failover_timeout=0)
    if spec.role != "*":
        framework.roles.append(spec.role)
    driver = SchedulerDriver(scheduler, framework, master)
    helpers: list[asyncio.Task[None]] = []
    followers: list[asyncio.Task[None]] = []
    if follow is not None:

        def start_follow(task_id: str, agent_id: str) -> None:
            ended = functools.partial(scheduler.ended, task_id)
            run = follow(task_id, agent_id, scheduler.framework_id, ended)
            followers.append(asyncio.create_task(run))

        scheduler.on_launch = start_follow
    if diagnose is not None:
        helpers.append(asyncio.create_task(_explain_waits(scheduler, diagnose, placement_timeout)))
    runner = asyncio.create_task(driver.run())
    loop = asyncio.get_running_loop()
    interrupted = asyncio.Event()
    with contextlib.suppress(NotImplementedError):
        loop.add_signal_handler(signal.SIGINT, interrupted.set)
        loop.add_signal_handler(signal.SIGTERM, interrupted.set)
    done = asyncio.create_task(scheduler.done.wait())
    stop = asyncio.create_task(interrupted.wait())
    helpers += [done, stop]
    try:
        await asyncio.wait({runner, done, stop}, return_when=asyncio.FIRST_COMPLETED)
        if runner.done():
            fatal = runner.result()
            report.note(f"error: {fatal or 'lost the master'}", "error")
            return 2
        if stop.done():
            scheduler.pending.clear()
            live = scheduler.live()
            report.note(
                f"interrupted: killing {len(live)} task(s)" if live else "interrupted", "note"
            )
            for task_id in live:
                with contextlib.suppress(CallError):
                    await driver.kill(task_id, scheduler.launched[task_id])
            if live:  # nothing launched, nothing to wait for: exit at once
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(scheduler.done.wait(), 10)
        with contextlib.suppress(CallError, TimeoutError):
            await asyncio.wait_for(driver.teardown(), 5)
        driver.stop()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await asyncio.wait_for(runner, 5)
        if followers:  # the last of each task's output, read after it ended
            await asyncio.wait(followers, timeout=10)
        code = 130 if stop.done() else scheduler.exit_code()
        report.summary(
            summarize(
                spec.name,
                spec.instances,
                scheduler.framework_id,
                scheduler.states,
                code,
                time.monotonic() - scheduler.started,
                interrupted=stop.done(),
            ),
            master,
        )
        sys.stdout.flush()
        return code
    finally:
        for t in helpers + followers:
            t.cancel()
