"""A pymesos framework for test_mesos_api.py: launch, reconcile, fail over, kill.

Run as a process (pymesos interrupts the main thread when its I/O thread fails, which
must not be pytest's). It prints one JSON object a line for each step and, after
failing over its first driver, waits for a line on stdin before subscribing again
with the same framework id:

    registered -> running -> reconciled -> stopped (wait) -> reregistered ->
    reconciled_again -> killed -> done
"""

from __future__ import annotations

import getpass
import json
import logging
import sys
import threading
from typing import Any

from pymesos import MesosSchedulerDriver, Scheduler

TIMEOUT = 30.0


def say(event: str, **kw: Any) -> None:
    print(json.dumps({"event": event, **kw}), flush=True)


class Sleeper(Scheduler):
    def __init__(self) -> None:
        self.launched = False
        self.framework_id = ""
        self.registered_ = threading.Event()
        self.reregistered_ = threading.Event()
        self.updates: list[dict[str, Any]] = []
        self.changed = threading.Condition()

    def registered(self, driver, framework_id, master_info):
        self.framework_id = framework_id["value"]
        self.registered_.set()

    def reregistered(self, driver, master_info):
        self.reregistered_.set()

    def resourceOffers(self, driver, offers):
        for offer in offers:
            if self.launched:
                driver.declineOffer(offer["id"], {"refuse_seconds": 60})
                continue
            self.launched = True
            task = {
                "task_id": {"value": "sleeper"},
                "agent_id": offer["agent_id"],
                "name": "sleeper",
                "command": {"value": "sleep 300"},
                "kill_policy": {"grace_period": {"nanoseconds": 1_000_000_000}},
                "resources": [
                    {"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.1}},
                    {"name": "mem", "type": "SCALAR", "scalar": {"value": 32}},
                ],
            }
            driver.launchTasks(offer["id"], [task])

    def statusUpdate(self, driver, update):
        with self.changed:
            self.updates.append(dict(update))
            self.changed.notify_all()

    def wait_update(self, check) -> dict[str, Any]:
        with self.changed:
            found = self.changed.wait_for(
                lambda: next((u for u in self.updates if check(u)), None), TIMEOUT
            )
        if found is None:
            say("timeout", updates=self.updates)
            sys.exit(1)
        self.updates.remove(found)
        return found


def main() -> int:
    master = sys.argv[1]
    logging.basicConfig(level=logging.WARNING)
    framework = {"user": getpass.getuser(), "name": "mesos-failover", "failover_timeout": 120}
    sched = Sleeper()
    driver = MesosSchedulerDriver(sched, dict(framework), master)
    driver.start()
    if not sched.registered_.wait(TIMEOUT):
        say("timeout", waiting="registered")
        return 1
    say("registered", framework_id=sched.framework_id)
    running = sched.wait_update(lambda u: u["state"] == "TASK_RUNNING")
    say("running", agent_id=running["agent_id"]["value"])
    driver.reconcileTasks([{"task_id": {"value": "sleeper"}}])
    reconciled = sched.wait_update(lambda u: u.get("reason") == "REASON_RECONCILIATION")
    say("reconciled", state=reconciled["state"], uuid="uuid" in reconciled)
    driver.stop(failover=True)
    driver.join()
    say("stopped")
    sys.stdin.readline()

    sched2 = Sleeper()
    sched2.launched = True  # the task runs on: launch nothing more
    sched2.framework_id = sched.framework_id
    driver2 = MesosSchedulerDriver(
        sched2, {**framework, "id": {"value": sched.framework_id}}, master
    )
    driver2.start()
    if not sched2.reregistered_.wait(TIMEOUT):
        say("timeout", waiting="reregistered")
        return 1
    say("reregistered")
    driver2.reconcileTasks([])  # implicit: every task the master knows for us
    again = sched2.wait_update(lambda u: u["task_id"]["value"] == "sleeper")
    say("reconciled_again", state=again["state"])
    driver2.killTask({"value": "sleeper"})
    killed = sched2.wait_update(lambda u: u["state"] == "TASK_KILLED")
    say("killed", message=killed.get("message", ""))
    driver2.stop()  # not a failover: TEARDOWN
    driver2.join()
    say("done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
