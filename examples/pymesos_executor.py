"""An executor written for Mesos, with pymesos, run unchanged by Orbiter's agents.

    pip install pymesos
    python examples/pymesos_executor.py --master 127.0.0.1:5050 --tasks 3

The scheduler (Orbiter's SDK) launches every task in one offer, each naming
the executor `pycounter`, whose command is this file run with `--executor`:
a plain pymesos `MesosExecutorDriver` program that finds the agent through the
MESOS_* variables the agent sets and speaks Mesos's v1 executor HTTP API
(/api/v1/executor on the agent). Each task counts to --count, one step every
--step seconds, sending TASK_RUNNING "progress k/N" at each step and then
TASK_FINISHED. When the first task runs the scheduler sends the executor
"ping"; the executor answers "pong: <n> tasks running". `--kill K` has the
scheduler kill the first K tasks once they run; the executor ends them
TASK_KILLED. Exit status: 0 if every task ended as asked (finished, or killed),
1 otherwise, 2 on a fatal error.

pymesos keeps its executor running through an agent restart (the agent sets
MESOS_CHECKPOINT=1) and subscribes again; an update it sends while the agent
is away fails, so this executor sends each one again until the agent takes it.

pymesos sends no credentials. An agent with authentication on (--credentials,
or a CA) wants the executor's token, MESOS_EXECUTOR_AUTHENTICATION_TOKEN, as a
bearer token: `--send-token` runs the executor with `TokenExecutorDriver`, a
small subclass that adds it to pymesos's requests. The scheduler sends the
token in ORBITER_TOKEN (or none) to the master.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shlex
import sys
import threading
import time
from pathlib import Path
from typing import Any

EXECUTOR_ID = "pycounter"
SEND_DEADLINE = 120.0


def out(line: str) -> None:
    print(line, flush=True)


# ---------------------------------------------------------------------- the scheduler


async def run_scheduler(
    master: str, tasks: int, count: int, step: float, kill: int, send_token: bool
) -> int:
    from orbiter.framework import CallError, Scheduler, SchedulerDriver, executor_info, task_info
    from orbiter.proto import messages_pb2 as pb
    from orbiter.resources import Resources
    from orbiter.security.settings import SecuritySettings, read_token
    from orbiter.taskstates import TERMINAL_STATES

    executor_resources = Resources.parse("cpus:0.1;mem:32")
    task_resources = Resources.parse("cpus:0.1;mem:16")
    argv = [sys.executable, str(Path(__file__).resolve()), "--executor"]
    command = shlex.join([*argv, "--send-token"] if send_token else argv)
    executor = executor_info(EXECUTOR_ID, command, executor_resources.to_proto(), name="pycounter")
    to_kill = {f"count-{i}" for i in range(kill)}

    class CounterScheduler(Scheduler):
        def __init__(self) -> None:
            self.pending = [f"count-{i}" for i in range(tasks)]
            self.need = executor_resources
            for _ in range(tasks):
                self.need = self.need + task_resources
            self.ended: dict[str, int] = {}
            self.pinged = False
            self.killing: set[str] = set()
            self.pong = asyncio.Event()
            self.done = asyncio.Event()

        def subscribed(self, driver: SchedulerDriver, framework_id: str, master: Any) -> None:
            out(f"subscribed as framework {framework_id}")

        async def offers(self, driver: SchedulerDriver, offers: list[pb.Offer]) -> None:
            for offer in offers:
                have = Resources.from_proto(offer.resources)
                if not self.pending or not have.contains(self.need):
                    await driver.decline([offer.id], refuse_seconds=5 if self.pending else 3600)
                    continue
                launch = []
                for task_id in self.pending:
                    task = task_info(task_id, "", task_resources.to_proto(), executor=executor)
                    task.labels.update({"count": str(count), "step": str(step)})
                    launch.append(task)
                self.pending = []
                await driver.launch([offer.id], launch)
                out(f"launched {len(launch)} tasks in executor {EXECUTOR_ID} on {offer.agent_id}")

        async def status_update(self, driver: SchedulerDriver, status: pb.TaskStatus) -> None:
            detail = f": {status.message}" if status.message else ""
            out(f"{status.task_id} {pb.TaskState.Name(status.state)}{detail}")
            if status.state == pb.TASK_RUNNING and not self.pinged:
                self.pinged = True
                with contextlib.suppress(CallError):
                    await driver.message(status.agent_id, EXECUTOR_ID, b"ping")
                    out(f"sent ping to executor {EXECUTOR_ID}")
            if (
                status.state == pb.TASK_RUNNING
                and status.task_id in to_kill
                and status.task_id not in self.killing
            ):
                self.killing.add(status.task_id)
                await driver.kill(status.task_id)
                out(f"asked to kill {status.task_id}")
            if status.state in TERMINAL_STATES:
                self.ended[status.task_id] = status.state
                if len(self.ended) == tasks:
                    self.done.set()

        def framework_message(
            self, driver: SchedulerDriver, agent_id: str, executor_id: str, data: bytes
        ) -> None:
            out(f"message from executor {executor_id} on agent {agent_id}: {data.decode()}")
            if data.startswith(b"pong"):
                self.pong.set()

        def error(self, driver: SchedulerDriver, message: str) -> None:
            out(f"error from master: {message}")

    scheduler = CounterScheduler()
    driver = SchedulerDriver(
        scheduler,
        pb.FrameworkInfo(name="pycounter"),
        master,
        security=SecuritySettings(token=read_token()),
    )
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
    with contextlib.suppress(CallError):
        await driver.teardown()
    await runner
    expected = {t: pb.TASK_KILLED if t in to_kill else pb.TASK_FINISHED for t in scheduler.ended}
    as_asked = sum(1 for t, state in scheduler.ended.items() if state == expected[t])
    pong = "received" if scheduler.pong.is_set() else "missing"
    out(f"{as_asked}/{tasks} tasks ended as asked; pong {pong}")
    return 0 if as_asked == tasks else 1


# ---------------------------------------------------------------------- the executor


def run_executor(send_token: bool) -> int:
    from pymesos import Executor, MesosExecutorDriver, decode_data, encode_data

    class TokenExecutorDriver(MesosExecutorDriver):
        """pymesos's driver, sending the executor's token with every call (pymesos 0.3.15:
        the subscription is written by gen_request, the other calls by _send)."""

        token = os.environ.get("MESOS_EXECUTOR_AUTHENTICATION_TOKEN", "")

        def gen_request(self) -> bytes:
            head, blank, body = super().gen_request().partition(b"\r\n\r\n")
            return head + f"\r\nAuthorization: Bearer {self.token}".encode() + blank + body

        def _send(self, body: Any, path: str = "/api/v1/executor", method: str = "POST",
                  headers: dict[str, str] | None = None) -> Any:  # fmt: skip
            auth = {"Authorization": f"Bearer {self.token}"}
            return super()._send(body, path, method, {**(headers or {}), **auth})

    class CounterExecutor(Executor):
        """Counts in one thread per task; pymesos calls these from its I/O thread."""

        def __init__(self) -> None:
            self.stops: dict[str, threading.Event] = {}
            self.lock = threading.Lock()

        def registered(
            self, driver: Any, executor_info: Any, framework_info: Any, agent_info: Any
        ) -> None:
            out(
                f"executor {executor_info['executor_id']['value']} registered with agent "
                f"{agent_info['id']['value']}"
            )

        def reregistered(self, driver: Any, agent_info: Any) -> None:
            out(f"re-registered with agent {agent_info['id']['value']}, which restarted")

        def disconnected(self, driver: Any) -> None:
            out("lost the agent; the tasks go on, reconnecting")

        def launchTask(self, driver: Any, task: Any) -> None:  # pymesos's names
            task_id = task["task_id"]["value"]
            labels = {x["key"]: x["value"] for x in task["labels"]["labels"]}
            out(f"launching {task_id}")
            stop = threading.Event()
            with self.lock:
                self.stops[task_id] = stop
            args = (driver, task_id, int(labels["count"]), float(labels["step"]), stop)
            threading.Thread(target=self.count, args=args, daemon=True).start()

        def count(
            self, driver: Any, task_id: str, n: int, step: float, stop: threading.Event
        ) -> None:
            for k in range(n + 1):
                if k and stop.wait(step):
                    self.send(driver, task_id, "TASK_KILLED", "killed")
                    return
                self.send(driver, task_id, "TASK_RUNNING", f"progress {k}/{n}")
            with self.lock:
                self.stops.pop(task_id, None)
            self.send(driver, task_id, "TASK_FINISHED", f"counted to {n}")

        def send(self, driver: Any, task_id: str, state: str, message: str) -> None:
            """Until the agent takes it: while it restarts, pymesos's calls fail."""
            status = {"task_id": {"value": task_id}, "state": state, "message": message}
            deadline = time.monotonic() + SEND_DEADLINE
            while True:
                try:
                    driver.sendStatusUpdate(status)  # the same uuid every time
                    out(f"{task_id} {state} {message}")
                    return
                except Exception as e:  # pymesos raises RuntimeError, OSError, ...
                    if time.monotonic() > deadline:
                        out(f"{task_id}: giving up on {state} {message}: {e}")
                        return
                    time.sleep(0.2)

        def killTask(self, driver: Any, task_id: Any) -> None:
            out(f"killing {task_id['value']}")
            with self.lock:
                stop = self.stops.pop(task_id["value"], None)
            if stop is not None:
                stop.set()

        def frameworkMessage(self, driver: Any, message: Any) -> None:
            data = decode_data(message)
            out(f"message from the scheduler: {data.decode()}")
            if data == b"ping":
                with self.lock:
                    running = len(self.stops)
                driver.sendFrameworkMessage(encode_data(f"pong: {running} tasks running".encode()))

        def shutdown(self, driver: Any) -> None:
            out("shutting down")
            with self.lock:
                for stop in self.stops.values():
                    stop.set()

        def error(self, driver: Any, message: str) -> None:
            out(f"error: {message}")

    missing = [v for v in ("MESOS_AGENT_ENDPOINT", "MESOS_FRAMEWORK_ID") if not os.environ.get(v)]
    if missing:
        out(f"error: {', '.join(missing)} not set: an agent runs this (ExecutorInfo.command)")
        return 2
    driver_class = TokenExecutorDriver if send_token else MesosExecutorDriver
    driver = driver_class(CounterExecutor(), use_addict=True)
    driver.run()
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--master", default=os.environ.get("ORBITER_MASTER", "127.0.0.1:5050"))
    parser.add_argument("--tasks", type=int, default=3)
    parser.add_argument("--count", type=int, default=5, help="steps each task counts")
    parser.add_argument("--step", type=float, default=0.2, help="seconds per step")
    parser.add_argument("--kill", type=int, default=0, help="the scheduler kills this many")
    parser.add_argument("--executor", action="store_true", help="run as the executor")
    parser.add_argument(
        "--send-token", action="store_true", help="the executor sends its token (secure agents)"
    )
    args = parser.parse_args()
    if args.executor:
        return run_executor(args.send_token)
    try:
        return asyncio.run(
            run_scheduler(
                args.master, args.tasks, args.count, args.step, args.kill, args.send_token
            )
        )
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
