"""What holding tasks to their resources costs per launch: the process containerizer
(the real task keeper) with isolation on (cgroups here) versus off (--no-isolation).

Scenarios, each the median of 3 runs in a fresh keeper:
- burst:      N [quick: 100] `true` tasks launched at once; tasks per second from the
              first launch until every task ended and (isolation on) its cgroup is gone.
- sequential: 50 [20] tasks one after another (launch, wait, cgroup removed): the
              latency of one launch-to-end.
- cgroup ops: the median cost of making one task's cgroup with its limits, and of
              removing it (what isolation adds to each task, off the agent's loop).

Run: python bench/isolation.py [--quick] [--tasks N] [--json PATH]; root and cgroups
needed for the "on" side (else it says what it measured instead).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from orbiter.agent.containerizer.kept import KeeperClient, KeptContainerizer
from orbiter.agent.isolation.isolator import Isolator
from orbiter.proto import messages_pb2 as pb

RUNS = 3


def task(i: int) -> pb.TaskInfo:
    info = pb.TaskInfo(task_id=f"t{i}", command=pb.CommandInfo(shell=True, value="true"))
    for name, value in (("cpus", 0.1), ("mem", 32.0)):
        info.resources.add(name=name, type=pb.Resource.SCALAR, scalar=value)
    return info


async def one_run(isolated: bool, tasks: int, sequential: bool) -> float:
    """Seconds for `tasks` launches to end (cgroups removed)."""
    with tempfile.TemporaryDirectory(prefix="iso-bench-", dir="/tmp") as tmp:
        base = Path(tmp)
        client = KeeperClient(base)
        await client.start()
        isolator = Isolator(isolated, "nobody")
        isolator.agent_id = f"bench-{uuid.uuid4().hex[:8]}"
        containerizer = KeptContainerizer(client, isolator=isolator)
        sandboxes = []
        for i in range(tasks):
            sandbox = base / "s" / str(i)
            sandbox.mkdir(parents=True)
            sandboxes.append(sandbox)

        async def launch_and_end(i: int) -> None:
            env = {"ORBITER_FRAMEWORK_ID": "fw"}
            container = await containerizer.launch(task(i), sandboxes[i], env)
            await container.wait()
            if container.guard is not None:
                await container.guard.release()  # the agent does this after the end

        start = time.perf_counter()
        if sequential:
            for i in range(tasks):
                await launch_and_end(i)
        else:
            await asyncio.gather(*(launch_and_end(i) for i in range(tasks)))
        elapsed = time.perf_counter() - start
        await client.close(retire=True)
        isolator.remove_leftovers(set())
        isolator.tidy()
        return elapsed


def cgroup_ops(samples: int) -> tuple[float, float] | None:
    """Median seconds to create one task cgroup with limits, and to remove it."""
    isolator = Isolator(True, "nobody")
    if not isolator.uses_cgroups:
        return None
    isolator.agent_id = f"bench-{uuid.uuid4().hex[:8]}"
    create, remove = [], []
    for i in range(samples):
        t0 = time.perf_counter()
        prepared = isolator.prepare(f"fw/t{i}", task(i))
        t1 = time.perf_counter()
        assert prepared.cgroup is not None
        prepared.cgroup.remove()
        t2 = time.perf_counter()
        create.append(t1 - t0)
        remove.append(t2 - t1)
    isolator.remove_leftovers(set())
    isolator.tidy()
    return statistics.median(create), statistics.median(remove)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--tasks", type=int)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    burst = args.tasks or (100 if args.quick else 300)
    seq = 20 if args.quick else 50
    mechanism = Isolator(True, "nobody").mechanism.value
    results: dict[str, object] = {"mechanism_on": mechanism, "burst_tasks": burst, "seq_tasks": seq}
    rows = []
    for label, isolated in (("on", True), ("off", False)):
        bursts = [asyncio.run(one_run(isolated, burst, False)) for _ in range(RUNS)]
        seqs = [asyncio.run(one_run(isolated, seq, True)) for _ in range(RUNS)]
        rate = burst / statistics.median(bursts)
        latency = statistics.median(seqs) / seq
        results[f"burst_tasks_per_s_{label}"] = rate
        results[f"sequential_ms_per_task_{label}"] = latency * 1000
        rows.append((label, rate, latency * 1000))
    on, off = rows
    print(f"isolation on = {mechanism}; {os.cpu_count()} cores; medians of {RUNS} runs")
    print(f"{'isolation':<10} {'burst tasks/s':>14} {'sequential ms/task':>19}")
    for label, rate, ms in rows:
        print(f"{label:<10} {rate:>14.1f} {ms:>19.2f}")
    ratio = on[1] / off[1]
    results["burst_ratio_on_over_off"] = ratio
    print(f"burst rate on/off: {ratio:.2f}; sequential cost added: {on[2] - off[2]:+.2f} ms/task")
    ops = cgroup_ops(50)
    if ops is not None:
        results["cgroup_create_ms"], results["cgroup_remove_ms"] = ops[0] * 1000, ops[1] * 1000
        print(
            f"one task cgroup (memory, cpu, cpuacct, pids, freezer): create + limits "
            f"{ops[0] * 1000:.2f} ms, kill check + remove {ops[1] * 1000:.2f} ms (median of 50)"
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
