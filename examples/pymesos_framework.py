"""A whole Mesos framework written with pymesos (unchanged): scheduler and executor.

    pip install pymesos
    python examples/pymesos_framework.py --master 127.0.0.1:5051

`--master` is the master's HTTP address (Mesos's v1 scheduler API). The scheduler is a
pymesos `MesosSchedulerDriver`; its tasks name the executor `pyworker`, whose command
is this file run with `--executor`: a pymesos `MesosExecutorDriver` program that the
agent starts and that speaks Mesos's v1 executor API back to it. What it does, in
order, printing a line for each step:

1. launches --tasks tasks that count to --count (TASK_RUNNING "progress k/N", then
   TASK_FINISHED) and one task, `hold`, that runs until it is killed;
2. sends the executor "ping" and prints its answer ("pong: ...");
3. once the counting tasks have finished, asks the master about `hold` (explicit
   reconciliation) and prints the answer;
4. fails over: stops its driver without tearing the framework down, and subscribes
   again with a second driver and the same framework id (as a restarted scheduler
   does); `hold` runs on; the new driver reconciles every task (implicit), pings the
   executor again, kills `hold` (TASK_KILLED) and tears the framework down.

Exit status 0 when every step happened as described, 1 otherwise.
"""

from __future__ import annotations

import argparse
import getpass
import logging
import os
import shlex
import sys
import threading
import time
from pathlib import Path
from typing import Any

EXECUTOR_ID = "pyworker"
TIMEOUT = 60.0


def out(line: str) -> None:
    print(line, flush=True)


def scalar(name: str, value: float) -> dict[str, Any]:
    return {"name": name, "type": "SCALAR", "scalar": {"value": value}}


def offered(offer: dict[str, Any], name: str) -> float:
    return sum(r["scalar"]["value"] for r in offer["resources"] if r["name"] == name)


# ---------------------------------------------------------------------- the scheduler


def run_scheduler(master: str, tasks: int, count: int, step: float) -> int:
    from pymesos import MesosSchedulerDriver, Scheduler, decode_data, encode_data

    command = shlex.join([sys.executable, str(Path(__file__).resolve()), "--executor"])
    executor = {
        "executor_id": {"value": EXECUTOR_ID},
        "name": "pyworker",
        "command": {"value": command},
        "resources": [scalar("cpus", 0.1), scalar("mem", 32)],
    }
    names = [f"count-{i}" for i in range(tasks)] + ["hold"]

    class Worker(Scheduler):
        """pymesos calls these from its I/O thread; the main thread waits on `changed`."""

        def __init__(self, launched: bool) -> None:
            self.launched = launched
            self.framework_id = ""
            self.agent_id: dict[str, str] = {}
            self.states: dict[str, str] = {}
            self.reconciled: dict[str, str] = {}
            self.pongs: list[str] = []
            self.changed = threading.Condition()

        def wait(self, what: str, check: Any) -> bool:
            with self.changed:
                if self.changed.wait_for(check, TIMEOUT):
                    return True
            out(f"timed out waiting for {what}")
            return False

        def registered(self, driver, framework_id, master_info):
            with self.changed:
                self.framework_id = framework_id["value"]
                self.changed.notify_all()
            out(f"subscribed as framework {self.framework_id}")

        def reregistered(self, driver, master_info):
            with self.changed:
                self.framework_id = driver.framework_id
                self.changed.notify_all()
            out(f"subscribed again as framework {self.framework_id}")

        def resourceOffers(self, driver, offers):
            need_cpus = 0.1 + 0.1 * len(names)
            need_mem = 32 + 16 * len(names)
            for offer in offers:
                if (
                    self.launched
                    or offered(offer, "cpus") < need_cpus
                    or (offered(offer, "mem") < need_mem)
                ):
                    driver.declineOffer(offer["id"], {"refuse_seconds": 3600})
                    continue
                self.launched = True
                launch = []
                for name in names:
                    launch.append(
                        {
                            "task_id": {"value": name},
                            "agent_id": offer["agent_id"],
                            "name": name,
                            "executor": executor,
                            "resources": [scalar("cpus", 0.1), scalar("mem", 16)],
                            "labels": {"labels": [
                                {"key": "count", "value": "-1" if name == "hold" else str(count)},
                                {"key": "step", "value": str(step)},
                            ]},
                        }
                    )  # fmt: skip
                driver.launchTasks(offer["id"], launch)
                out(f"launched {len(launch)} tasks in executor {EXECUTOR_ID}")

        def statusUpdate(self, driver, update):
            task_id, state = update["task_id"]["value"], update["state"]
            message = update.get("message", "")
            if update.get("reason") == "REASON_RECONCILIATION":
                out(f"reconciled {task_id}: {state}")
                with self.changed:
                    self.reconciled[task_id] = state
                    self.changed.notify_all()
                return
            out(f"{task_id} {state}" + (f": {message}" if message else ""))
            with self.changed:
                self.states[task_id] = state
                self.agent_id[task_id] = update["agent_id"]["value"]
                self.changed.notify_all()

        def frameworkMessage(self, driver, executor_id, agent_id, data):
            text = decode_data(data).decode()
            out(f"message from executor {executor_id['value']}: {text}")
            with self.changed:
                self.pongs.append(text)
                self.changed.notify_all()

        def error(self, driver, message):
            out(f"error from master: {message}")

    def ping(driver: Any, sched: Worker) -> bool:
        agent_id = {"value": sched.agent_id["hold"]}
        before = len(sched.pongs)
        driver.sendFrameworkMessage({"value": EXECUTOR_ID}, agent_id, encode_data(b"ping"))
        out(f"sent ping to executor {EXECUTOR_ID}")
        return sched.wait("the executor's pong", lambda: len(sched.pongs) > before)

    framework = {"user": getpass.getuser(), "name": "pymesos-framework", "failover_timeout": 300}
    first = Worker(launched=False)
    driver = MesosSchedulerDriver(first, dict(framework), master, use_addict=True)
    driver.start()
    counting = [n for n in names if n != "hold"]
    ok = (
        first.wait("tasks to run", lambda: first.states.get("hold") == "TASK_RUNNING")
        and ping(driver, first)
        and first.wait(
            "the counting tasks to finish",
            lambda: all(first.states.get(n) == "TASK_FINISHED" for n in counting),
        )
    )
    if ok:
        driver.reconcileTasks([{"task_id": {"value": "hold"}}])
        ok = first.wait("reconciliation", lambda: "hold" in first.reconciled)
    driver.stop(failover=True)  # no TEARDOWN: the framework and its tasks stay
    driver.join()
    if not ok:
        return 1
    out("stopped the first driver (failover)")

    second = Worker(launched=True)
    second.agent_id = dict(first.agent_id)
    driver = MesosSchedulerDriver(
        second, {**framework, "id": {"value": first.framework_id}}, master, use_addict=True
    )
    driver.start()
    ok = second.wait("the second subscription", lambda: second.framework_id != "")
    if ok:
        driver.reconcileTasks([])  # implicit: every task the master knows for us
        ok = second.wait("implicit reconciliation", lambda: "hold" in second.reconciled)
        ok = ok and second.reconciled["hold"] == "TASK_RUNNING" and ping(driver, second)
    if ok:
        driver.killTask({"value": "hold"})
        out("asked to kill hold")
        ok = second.wait("hold to end", lambda: "hold" in second.states)
        ok = ok and second.states["hold"] == "TASK_KILLED"
    driver.stop()  # not a failover: TEARDOWN
    driver.join()
    out("done" if ok else "failed")
    return 0 if ok else 1


# ---------------------------------------------------------------------- the executor


def run_executor() -> int:
    from pymesos import Executor, MesosExecutorDriver, decode_data, encode_data

    class WorkerExecutor(Executor):
        """One thread per task; pymesos calls these from its I/O thread."""

        def __init__(self) -> None:
            self.stops: dict[str, threading.Event] = {}
            self.lock = threading.Lock()

        def registered(self, driver, executor_info, framework_info, agent_info):
            out(f"executor registered with agent {agent_info['id']['value']}")

        def launchTask(self, driver, task):
            task_id = task["task_id"]["value"]
            labels = {x["key"]: x["value"] for x in task["labels"]["labels"]}
            out(f"launching {task_id}")
            stop = threading.Event()
            with self.lock:
                self.stops[task_id] = stop
            args = (driver, task_id, int(labels["count"]), float(labels["step"]), stop)
            threading.Thread(target=self.work, args=args, daemon=True).start()

        def work(self, driver, task_id: str, n: int, step: float, stop: threading.Event) -> None:
            """Count to n (n < 0: until killed), a step every `step` seconds."""
            k = 0
            self.send(driver, task_id, "TASK_RUNNING", f"progress 0/{n}" if n >= 0 else "")
            while n < 0 or k < n:
                if stop.wait(step):
                    self.send(driver, task_id, "TASK_KILLED", "killed")
                    return
                k += 1
                if n >= 0:
                    self.send(driver, task_id, "TASK_RUNNING", f"progress {k}/{n}")
            with self.lock:
                self.stops.pop(task_id, None)
            self.send(driver, task_id, "TASK_FINISHED", f"counted to {n}")

        @staticmethod
        def send(driver, task_id: str, state: str, message: str) -> None:
            status = {"task_id": {"value": task_id}, "state": state, "message": message}
            driver.sendStatusUpdate(status)

        def killTask(self, driver, task_id):
            out(f"killing {task_id['value']}")
            with self.lock:
                stop = self.stops.pop(task_id["value"], None)
            if stop is not None:
                stop.set()

        def frameworkMessage(self, driver, message):
            out(f"message from the scheduler: {decode_data(message).decode()}")
            with self.lock:
                running = sorted(self.stops)
            answer = f"pong: running {', '.join(running) or 'nothing'}"
            driver.sendFrameworkMessage(encode_data(answer.encode()))

        def shutdown(self, driver):
            out("shutting down")
            with self.lock:
                for stop in self.stops.values():
                    stop.set()

    if not os.environ.get("MESOS_AGENT_ENDPOINT"):
        out("error: MESOS_AGENT_ENDPOINT is not set: an agent runs this (ExecutorInfo.command)")
        return 2
    MesosExecutorDriver(WorkerExecutor(), use_addict=True).run()
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--master", default=os.environ.get("MESOS_MASTER", "127.0.0.1:5051"))
    parser.add_argument("--tasks", type=int, default=2, help="tasks that count")
    parser.add_argument("--count", type=int, default=3, help="steps each task counts")
    parser.add_argument("--step", type=float, default=0.2, help="seconds per step")
    parser.add_argument("--executor", action="store_true", help="run as the executor")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if args.executor:
        return run_executor()
    started = time.monotonic()
    code = run_scheduler(args.master, args.tasks, args.count, args.step)
    out(f"ended in {time.monotonic() - started:.1f}s")
    return code


if __name__ == "__main__":
    sys.exit(main())
