"""A pymesos framework (unchanged pymesos) keeping data in a persistent volume on Orbiter.

    pip install pymesos
    python examples/pymesos_volume.py --master 127.0.0.1:5051

The framework (role `db`) does what a Mesos database framework does, printing a line
for each step:

1. in one ACCEPT: RESERVE cpus, mem and disk for its role (a DYNAMIC reservation with
   its principal and a label), CREATE a persistent volume `vol-1` on the reserved disk,
   and LAUNCH `writer`, which writes a file into the volume;
2. once `writer` has finished, waits for an offer that shows the volume again (disk
   with disk.persistence.id `vol-1`) and LAUNCHes `reader` on it, which succeeds only
   if it finds what `writer` wrote;
3. DESTROYs the volume and UNRESERVEs what it reserved, and waits for an offer with
   nothing reserved for it left.

Exit status 0 when every step happened as described, 1 otherwise.
"""

from __future__ import annotations

import argparse
import copy
import getpass
import logging
import os
import sys
import threading
from typing import Any

ROLE = "db"
PRINCIPAL = "pymesos-volume"
LABEL = {"key": "owner", "value": "pymesos-volume"}
VOLUME_ID = "vol-1"
TIMEOUT = 60.0


def out(line: str) -> None:
    print(line, flush=True)


def reserved(name: str, value: float) -> dict[str, Any]:
    """A resource reserved for ROLE by this framework (Mesos 1.4+'s format)."""
    return {
        "name": name,
        "type": "SCALAR",
        "scalar": {"value": value},
        "reservations": [
            {"type": "DYNAMIC", "role": ROLE, "principal": PRINCIPAL, "labels": {"labels": [LABEL]}}
        ],
        "allocation_info": {"role": ROLE},
    }


def volume(size: float) -> dict[str, Any]:
    disk = reserved("disk", size)
    disk["disk"] = {
        "persistence": {"id": VOLUME_ID, "principal": PRINCIPAL},
        "volume": {"container_path": "data", "mode": "RW"},
    }
    return disk


def ours(resource: dict[str, Any]) -> bool:
    """Reserved by this framework: the label it reserved with."""
    stack = resource.get("reservations", [])
    return bool(stack) and LABEL in stack[-1].get("labels", {}).get("labels", [])


def offered_volume(offer: dict[str, Any]) -> dict[str, Any] | None:
    for r in offer["resources"]:
        if r.get("disk", {}).get("persistence", {}).get("id") == VOLUME_ID:
            return r
    return None


def plain(resources: list[dict[str, Any]], name: str) -> float:
    return sum(
        r["scalar"]["value"]
        for r in resources
        if r["name"] == name and not r.get("reservations") and "disk" not in r
    )


def task(name: str, agent_id: dict[str, str], command: str, disk: dict[str, Any]) -> dict:
    return {
        "task_id": {"value": name},
        "agent_id": agent_id,
        "name": name,
        "command": {"value": command},
        "resources": [reserved("cpus", 0.1), reserved("mem", 32), disk],
    }


class VolumeFramework:
    """The steps as a small state machine driven by offers and updates (pymesos's thread)."""

    def __init__(self, size: float) -> None:
        self.size = size
        self.step = "reserve"
        self.agent_id: dict[str, str] | None = None
        self.done = threading.Event()
        self.ok = False

    def offer(self, driver: Any, offer: dict[str, Any]) -> None:
        resources = offer["resources"]
        if self.agent_id is not None and offer["agent_id"] != self.agent_id:
            driver.declineOffer(offer["id"], {"refuse_seconds": 3600})
            return
        if self.step == "reserve" and (
            plain(resources, "cpus") >= 0.2
            and plain(resources, "mem") >= 64
            and plain(resources, "disk") >= self.size
        ):
            self.agent_id = offer["agent_id"]
            operations = [
                {"type": "RESERVE", "reserve": {"resources": [
                    reserved("cpus", 0.2), reserved("mem", 64), reserved("disk", self.size)]}},
                {"type": "CREATE", "create": {"volumes": [volume(self.size)]}},
                {"type": "LAUNCH", "launch": {"task_infos": [task(
                    "writer", offer["agent_id"], "echo written by writer > data/note",
                    volume(self.size))]}},
            ]  # fmt: skip
            driver.acceptOffers([offer["id"]], operations, {"refuse_seconds": 0})
            out(f"reserved, created {VOLUME_ID} and launched writer on {self.agent_id['value']}")
            self.step = "writing"
            return
        found = offered_volume(offer)
        if self.step == "read" and found is not None:
            size, path = found["scalar"]["value"], found["disk"]["volume"]["container_path"]
            role = found["reservations"][-1]["role"]
            out(f"offer shows {VOLUME_ID}: {size:g} MB of disk reserved for {role} at {path}")
            reader = task(
                "reader",
                offer["agent_id"],
                "cat data/note && grep -q writer data/note",
                copy.deepcopy(found),  # the volume as offered
            )
            driver.launchTasks([offer["id"]], [reader], {"refuse_seconds": 0})
            self.step = "reading"
            return
        if self.step == "clean" and found is not None:
            mine = [r for r in resources if ours(r) and "disk" not in r]
            if sum(r["scalar"]["value"] for r in mine if r["name"] == "cpus") >= 0.2:
                disk = {k: v for k, v in found.items() if k != "disk"}  # the volume's disk
                operations = [
                    {"type": "DESTROY", "destroy": {"volumes": [found]}},
                    {"type": "UNRESERVE", "unreserve": {"resources": [*mine, disk]}},
                ]
                driver.acceptOffers([offer["id"]], operations, {"refuse_seconds": 0})
                out(f"destroyed {VOLUME_ID} and unreserved what was reserved")
                self.step = "check"
                return
        if self.step == "check" and not any(ours(r) for r in resources):
            out("an offer shows nothing reserved by this framework")
            self.ok = True
            self.done.set()
        driver.declineOffer(offer["id"], {"refuse_seconds": 0.5})

    def update(self, driver: Any, update: dict[str, Any]) -> None:
        task_id, state = update["task_id"]["value"], update["state"]
        message = update.get("message", "")
        out(f"{task_id} {state}" + (f": {message}" if message else ""))
        if state in ("TASK_RUNNING", "TASK_STARTING", "TASK_STAGING"):
            return
        if state != "TASK_FINISHED":
            self.done.set()
        elif task_id == "writer":
            self.step = "read"
        elif task_id == "reader":
            self.step = "clean"


def main() -> int:
    from pymesos import MesosSchedulerDriver, Scheduler

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--master", default=os.environ.get("MESOS_MASTER", "127.0.0.1:5051"))
    parser.add_argument("--size", type=float, default=100, help="MB of disk for the volume")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    steps = VolumeFramework(args.size)

    class Adapter(Scheduler):
        def resourceOffers(self, driver, offers):
            for offer in offers:
                steps.offer(driver, offer)

        def statusUpdate(self, driver, update):
            steps.update(driver, update)

        def error(self, driver, message):
            out(f"error from master: {message}")
            steps.done.set()

    framework = {
        "user": getpass.getuser(),
        "name": "pymesos-volume",
        "roles": [ROLE],
        "principal": PRINCIPAL,
        "capabilities": [{"type": "MULTI_ROLE"}],
    }
    driver = MesosSchedulerDriver(Adapter(), framework, args.master)
    driver.start()
    if not steps.done.wait(TIMEOUT):
        out(f"timed out at step {steps.step}")
    driver.stop()
    driver.join()
    out("done" if steps.ok else "failed")
    return 0 if steps.ok else 1


if __name__ == "__main__":
    sys.exit(main())
