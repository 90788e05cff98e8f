"""A Mesos framework written with pymesos (from PyPI, unchanged) running on Orbiter.

    python examples/pymesos_hello.py --master 127.0.0.1:5051 --tasks 3

`--master` is the master's HTTP address: Orbiter serves Mesos's v1 scheduler API at
/api/v1/scheduler there. The framework launches --tasks command tasks (`echo hello
from <task>`), each of which the agent's built-in command executor runs, and stops
once all have ended: exit 0 if every task finished, 1 otherwise.
"""

from __future__ import annotations

import argparse
import getpass
import logging
import sys
import threading

from pymesos import MesosSchedulerDriver, Scheduler

TASK_CPUS = 0.1
TASK_MEM = 32.0
TERMINAL = {
    "TASK_FINISHED",
    "TASK_FAILED",
    "TASK_KILLED",
    "TASK_ERROR",
    "TASK_LOST",
    "TASK_DROPPED",
    "TASK_GONE",
    "TASK_GONE_BY_OPERATOR",
}


def scalar(resources: list[dict], name: str) -> float:
    return sum(r["scalar"]["value"] for r in resources if r["name"] == name)


class Hello(Scheduler):
    def __init__(self, tasks: int) -> None:
        self.to_launch = [f"hello-{i}" for i in range(tasks)]
        self.ended: dict[str, str] = {}
        self.tasks = tasks
        self.done = threading.Event()

    def resourceOffers(self, driver, offers):
        for offer in offers:
            cpus, mem = scalar(offer["resources"], "cpus"), scalar(offer["resources"], "mem")
            launch = []
            while self.to_launch and cpus >= TASK_CPUS and mem >= TASK_MEM:
                task_id = self.to_launch.pop()
                cpus, mem = cpus - TASK_CPUS, mem - TASK_MEM
                launch.append(
                    {
                        "task_id": {"value": task_id},
                        "agent_id": offer["agent_id"],
                        "name": task_id,
                        "command": {"value": f"echo hello from {task_id}"},
                        "resources": [
                            {"name": "cpus", "type": "SCALAR", "scalar": {"value": TASK_CPUS}},
                            {"name": "mem", "type": "SCALAR", "scalar": {"value": TASK_MEM}},
                        ],
                    }
                )
            if launch:
                driver.launchTasks(offer["id"], launch)
            else:
                driver.declineOffer(offer["id"], {"refuse_seconds": 5})

    def statusUpdate(self, driver, update):
        task_id, state = update["task_id"]["value"], update["state"]
        print(task_id, state, flush=True)
        if state in TERMINAL:
            self.ended[task_id] = state
            if len(self.ended) == self.tasks:
                self.done.set()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--master", default="127.0.0.1:5051", help="the master's HTTP host:port")
    parser.add_argument("--tasks", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=60.0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    scheduler = Hello(args.tasks)
    framework = {"user": getpass.getuser(), "name": "pymesos-hello", "failover_timeout": 60}
    driver = MesosSchedulerDriver(scheduler, framework, args.master, use_addict=False)
    driver.start()
    finished = scheduler.done.wait(args.timeout)
    driver.stop()  # not a failover: tears the framework down
    driver.join()
    if not finished:
        print(f"timed out: {len(scheduler.ended)} of {args.tasks} tasks ended", file=sys.stderr)
        return 1
    return 0 if all(s == "TASK_FINISHED" for s in scheduler.ended.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
