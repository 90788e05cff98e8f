"""A framework with its own executor, which runs several tasks in one process.

    python examples/executor_framework.py --master 127.0.0.1:5050 --tasks 3

The scheduler launches all the tasks on one agent, each naming the same
executor, so the agent starts one executor process (this file again, run with
`--executor`) and gives it every task. Each task counts to --count, one step
every --step seconds, sending TASK_RUNNING "progress k/N" at each step, then
TASK_FINISHED. When the first task runs, the scheduler sends the executor
"ping" and the executor answers "pong: <n> tasks running". Once every task has
ended the scheduler tears the framework down (the agent shuts the executor
down) and exits 0 if every task finished, 1 otherwise, 2 on a fatal error.

`--crash-at K` makes the executor exit with status 3 as soon as a task's
"progress K/N" update is acknowledged, to see what the cluster makes of a
crashed executor: its tasks end TASK_FAILED.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shlex
import sys
from pathlib import Path

from orbiter.framework import (
    CallError,
    Executor,
    ExecutorDriver,
    NotUnderAgent,
    Scheduler,
    SchedulerDriver,
    executor_info,
    task_info,
    update,
)
from orbiter.proto import messages_pb2 as pb
from orbiter.resources import Resources
from orbiter.taskstates import TERMINAL_STATES

EXECUTOR_ID = "counter"
EXECUTOR_RESOURCES = Resources.parse("cpus:0.1;mem:32")
TASK_RESOURCES = Resources.parse("cpus:0.1;mem:16")
CRASH_STATUS = 3


def out(line: str) -> None:
    print(line, flush=True)


# ---------------------------------------------------------------------- the scheduler


class CounterScheduler(Scheduler):
    """Launches every task in one offer, all in the executor `counter`, and follows them."""

    def __init__(self, tasks: int, count: int, step: float, crash_at: int) -> None:
        command = [sys.executable, str(Path(__file__).resolve()), "--executor"]
        if crash_at:
            command += ["--crash-at", str(crash_at)]
        self.executor = executor_info(
            EXECUTOR_ID, shlex.join(command), EXECUTOR_RESOURCES.to_proto(), name="counter"
        )
        self.pending = [f"count-{i}" for i in range(tasks)]
        self.total = tasks
        self.labels = {"count": str(count), "step": str(step)}
        self.need = EXECUTOR_RESOURCES
        for _ in range(tasks):
            self.need = self.need + TASK_RESOURCES
        self.ended: dict[str, int] = {}
        self.pinged = False
        self.pong = asyncio.Event()
        self.done = asyncio.Event()
        self.executor_ended = asyncio.Event()

    def subscribed(self, driver: SchedulerDriver, framework_id: str, master: pb.MasterInfo) -> None:
        out(f"subscribed as framework {framework_id}")

    async def offers(self, driver: SchedulerDriver, offers: list[pb.Offer]) -> None:
        for offer in offers:
            if not self.pending or not Resources.from_proto(offer.resources).contains(self.need):
                await driver.decline([offer.id], refuse_seconds=5 if self.pending else 3600)
                continue
            tasks = []
            for task_id in self.pending:
                task = task_info(task_id, "", TASK_RESOURCES.to_proto(), executor=self.executor)
                task.labels.update(self.labels)
                tasks.append(task)
            self.pending = []
            await driver.launch([offer.id], tasks)
            out(f"launched {len(tasks)} tasks in executor {EXECUTOR_ID} on agent {offer.agent_id}")

    async def status_update(self, driver: SchedulerDriver, status: pb.TaskStatus) -> None:
        detail = f": {status.message}" if status.message else ""
        out(f"{status.task_id} {pb.TaskState.Name(status.state)}{detail}")
        if status.state == pb.TASK_RUNNING and not self.pinged:
            self.pinged = True
            with contextlib.suppress(CallError):
                await driver.message(status.agent_id, EXECUTOR_ID, b"ping")
                out(f"sent ping to executor {EXECUTOR_ID}")
        if status.state in TERMINAL_STATES:
            self.ended[status.task_id] = status.state
            if len(self.ended) == self.total:
                self.done.set()

    def framework_message(
        self, driver: SchedulerDriver, agent_id: str, executor_id: str, data: bytes
    ) -> None:
        out(f"message from executor {executor_id} on agent {agent_id}: {data.decode()}")
        if data.startswith(b"pong"):
            self.pong.set()

    def executor_lost(
        self,
        driver: SchedulerDriver,
        agent_id: str,
        executor_id: str,
        status: int | None,
        message: str,
    ) -> None:
        out(f"executor {executor_id} on agent {agent_id} ended: {message}")
        self.executor_ended.set()

    def error(self, driver: SchedulerDriver, message: str) -> None:
        out(f"error from master: {message}")


async def run_scheduler(master: str, tasks: int, count: int, step: float, crash_at: int) -> int:
    scheduler = CounterScheduler(tasks, count, step, crash_at)
    driver = SchedulerDriver(scheduler, pb.FrameworkInfo(name="counter"), master)
    runner = asyncio.create_task(driver.run())
    done = asyncio.create_task(scheduler.done.wait())
    await asyncio.wait({runner, done}, return_when=asyncio.FIRST_COMPLETED)
    if runner.done():
        out(f"error: {runner.result() or 'lost the master'}")
        return 2
    if scheduler.pinged:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(5):
                await scheduler.pong.wait()
    if all(state == pb.TASK_FAILED for state in scheduler.ended.values()):
        # The executor died: wait for the master's word of it (executor_lost).
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(5):
                await scheduler.executor_ended.wait()
    with contextlib.suppress(CallError):
        await driver.teardown()
    await runner
    finished = sum(1 for state in scheduler.ended.values() if state == pb.TASK_FINISHED)
    pong = "received" if scheduler.pong.is_set() else "missing"
    out(f"{finished}/{tasks} tasks finished; pong {pong}")
    return 0 if finished == tasks else 1


# ---------------------------------------------------------------------- the executor


class CounterExecutor(Executor):
    """Runs each task as an asyncio task that counts, reporting every step."""

    def __init__(self, crash_at: int) -> None:
        self.crash_at = crash_at
        self.counters: dict[str, asyncio.Task[None]] = {}
        self.crash_on: set[bytes] = set()

    def registered(
        self,
        driver: ExecutorDriver,
        executor_info: pb.ExecutorInfo,
        framework_info: pb.FrameworkInfo,
        agent_info: pb.AgentInfo,
    ) -> None:
        out(f"executor {executor_info.executor_id} registered with agent {agent_info.id}")

    def disconnected(self, driver: ExecutorDriver) -> None:
        out("lost the agent; the tasks go on, reconnecting")

    def reregistered(self, driver: ExecutorDriver, agent_info: pb.AgentInfo) -> None:
        out(f"re-registered with agent {agent_info.id}, which restarted")

    def launch_task(self, driver: ExecutorDriver, task: pb.TaskInfo) -> None:
        out(f"launching {task.task_id}")
        self.counters[task.task_id] = asyncio.create_task(self.run_task(driver, task))

    async def run_task(self, driver: ExecutorDriver, task: pb.TaskInfo) -> None:
        try:
            await self.count(driver, task)
        except CallError as e:  # the agent refused an update: the task ended without us
            out(f"{task.task_id}: {e}")
            self.counters.pop(task.task_id, None)

    async def count(self, driver: ExecutorDriver, task: pb.TaskInfo) -> None:
        n, step = int(task.labels["count"]), float(task.labels["step"])
        for k in range(n + 1):
            if k:
                await asyncio.sleep(step)
            sent = await driver.send_status_update(
                update(task.task_id, pb.TASK_RUNNING, f"progress {k}/{n}")
            )
            out(f"{task.task_id} progress {k}/{n}")
            if self.crash_at and k == self.crash_at:
                self.crash_on.add(sent.uuid)
        self.counters.pop(task.task_id, None)
        await driver.send_status_update(update(task.task_id, pb.TASK_FINISHED, f"counted to {n}"))

    async def kill_task(self, driver: ExecutorDriver, task_id: str, grace_period: float) -> None:
        out(f"killing {task_id}")
        counter = self.counters.pop(task_id, None)
        if counter is not None:
            counter.cancel()
            await driver.send_status_update(update(task_id, pb.TASK_KILLED, "killed"))

    def acknowledged(self, driver: ExecutorDriver, task_id: str, uuid: bytes) -> None:
        if uuid in self.crash_on:
            out(f"{task_id} reached progress {self.crash_at}: exiting with status {CRASH_STATUS}")
            os._exit(CRASH_STATUS)

    async def framework_message(self, driver: ExecutorDriver, data: bytes) -> None:
        out(f"message from the scheduler: {data.decode()}")
        if data == b"ping":
            answer = f"pong: {len(self.counters)} tasks running"
            await driver.send_framework_message(answer.encode())

    def shutdown(self, driver: ExecutorDriver) -> None:
        out("shutting down")
        for counter in self.counters.values():
            counter.cancel()

    def error(self, driver: ExecutorDriver, message: str) -> None:
        out(f"error: {message}")


async def run_executor(crash_at: int) -> int:
    try:
        driver = ExecutorDriver(CounterExecutor(crash_at))
    except NotUnderAgent as e:
        out(f"error: {e}")
        return 2
    return 1 if await driver.run() else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--master", default=os.environ.get("ORBITER_MASTER", "127.0.0.1:5050"))
    parser.add_argument("--tasks", type=int, default=3)
    parser.add_argument("--count", type=int, default=5, help="steps each task counts")
    parser.add_argument("--step", type=float, default=0.2, help="seconds per step")
    parser.add_argument("--crash-at", type=int, default=0, help="the executor exits with 3 here")
    parser.add_argument("--executor", action="store_true", help="run as the executor")
    args = parser.parse_args()
    if args.executor:
        return asyncio.run(run_executor(args.crash_at))
    try:
        return asyncio.run(
            run_scheduler(args.master, args.tasks, args.count, args.step, args.crash_at)
        )
    except KeyboardInterrupt:  # the master tears the framework down (failover_timeout 0)
        return 130


if __name__ == "__main__":
    sys.exit(main())
