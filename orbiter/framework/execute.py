"""`orbiter execute`: run a command as N tasks and stream their states.

Like mesos-execute: a framework of its own that launches the tasks on the
first offers that fit, prints each state change, and exits with the task's
exit status (one instance) or 0 when every instance finished, 1 otherwise.
Ctrl-C kills the tasks and tears the framework down.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from orbiter.framework.driver import CallError, Scheduler, SchedulerDriver, task_info
from orbiter.proto import messages_pb2
from orbiter.resources import Resources
from orbiter.taskstates import TERMINAL_STATES

pb = messages_pb2


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


class CommandScheduler(Scheduler):
    """Launches `spec.instances` copies of a command and follows them to the end."""

    def __init__(self, spec: ExecuteSpec, out: Callable[[str], None] = print) -> None:
        self.spec = spec
        self.out = out
        self.pending = [f"{spec.name}-{i}" for i in range(spec.instances)]
        self.states: dict[str, pb.TaskStatus] = {}
        self.done = asyncio.Event()
        self.failed = ""
        self.started = time.monotonic()
        text = f"cpus:{spec.cpus};mem:{spec.mem}" + (f";disk:{spec.disk}" if spec.disk else "")
        self.per_task = Resources.parse(text)

    def subscribed(self, driver: SchedulerDriver, framework_id: str, master: pb.MasterInfo) -> None:
        self.out(f"subscribed as framework {framework_id} to master {master.grpc_address}")

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
                self.out(f"error: {e}")
                self.done.set()
                return
            for t in tasks:
                self.out(f"{t.task_id}: launched on {offer.hostname} (agent {offer.agent_id})")
        if not self.pending:
            with contextlib.suppress(CallError):
                await driver.suppress()

    def status_update(self, driver: SchedulerDriver, status: pb.TaskStatus) -> None:
        previous = self.states.get(status.task_id)
        self.states[status.task_id] = status
        if previous is None or previous.state != status.state:
            detail = f" ({status.message})" if status.message else ""
            self.out(f"{status.task_id}: {pb.TaskState.Name(status.state)}{detail}")
        finished = [s for s in self.states.values() if s.state in TERMINAL_STATES]
        if not self.pending and len(finished) == self.spec.instances:
            self.done.set()

    def error(self, driver: SchedulerDriver, message: str) -> None:  # type: ignore[override]
        self.out(f"error from master: {message}")

    def exit_code(self) -> int:
        if self.failed:
            return 1
        statuses = list(self.states.values())
        if self.spec.instances == 1 and statuses and statuses[0].HasField("exit_code"):
            return statuses[0].exit_code
        return 0 if statuses and all(s.state == pb.TASK_FINISHED for s in statuses) else 1


async def execute(spec: ExecuteSpec, master: str, out: Callable[[str], None] = print) -> int:
    """Run the command framework to completion; returns the process exit status."""
    scheduler = CommandScheduler(spec, out)
    framework = pb.FrameworkInfo(name=f"orbiter-execute {spec.name}", failover_timeout=0)
    if spec.role != "*":
        framework.roles.append(spec.role)
    driver = SchedulerDriver(scheduler, framework, master)
    runner = asyncio.create_task(driver.run())
    loop = asyncio.get_running_loop()
    interrupted = asyncio.Event()
    with contextlib.suppress(NotImplementedError):
        loop.add_signal_handler(signal.SIGINT, interrupted.set)
        loop.add_signal_handler(signal.SIGTERM, interrupted.set)
    done = asyncio.create_task(scheduler.done.wait())
    stop = asyncio.create_task(interrupted.wait())
    await asyncio.wait({runner, done, stop}, return_when=asyncio.FIRST_COMPLETED)
    if runner.done():
        fatal = runner.result()
        out(f"error: {fatal or 'lost the master'}")
        for t in (done, stop):
            t.cancel()
        return 2
    if stop.done():
        out("interrupted: killing tasks")
        for task_id, status in scheduler.states.items():
            if status.state not in TERMINAL_STATES:
                with contextlib.suppress(CallError):
                    await driver.kill(task_id, status.agent_id)
        scheduler.pending.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(scheduler.done.wait(), 10)
    with contextlib.suppress(CallError):
        await driver.teardown()
    driver.stop()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await asyncio.wait_for(runner, 5)
    for t in (done, stop):
        t.cancel()
    code = 130 if stop.done() else scheduler.exit_code()
    finished = sum(1 for s in scheduler.states.values() if s.state == pb.TASK_FINISHED)
    out(
        f"{finished}/{spec.instances} finished in {time.monotonic() - scheduler.started:.1f}s; "
        f"exit status {code}"
    )
    sys.stdout.flush()
    return code
