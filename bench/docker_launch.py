"""What a Docker task costs per launch, next to a plain process task.

Scenarios (full size; `--quick` in brackets), medians of 3 runs:

- launch:     N = 20 [5] `true` tasks one after the other through the
              containerizer, as the agent launches them: milliseconds from
              `launch()` called to returned (image check, create, start), and
              from called to the task's end (logs copied, exit read, container
              removed).
- concurrent: N = 20 [5] `sleep 1` tasks launched at once; seconds until all
              have ended, and the threads the agent process held at the peak
              (each running container holds a watcher and a stderr thread).

The same is measured for the process containerizer (ProcessContainerizer) and
the ratio printed. Uses the system dockerd if it answers, else starts one
(tests/dockerd.py) with the busybox test image.

Run: python bench/docker_launch.py [--quick] [--runs N]
(not bench/docker.py: the script's directory comes first on sys.path, and that
name would shadow the docker SDK.)
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

from tabulate import tabulate

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from dockerd import IMAGE, DockerEngine

from orbiter.agent.containerizer import ProcessContainerizer
from orbiter.agent.containerizer.docker import LABEL_AGENT, DockerContainerizer
from orbiter.proto import messages_pb2 as pb
from orbiter.resources import Resources


def task(task_id: str, command: str, docker: bool) -> pb.TaskInfo:
    info = pb.TaskInfo(task_id=task_id, name=task_id)
    info.command.shell = True
    info.command.value = command
    info.resources.extend(Resources.parse("cpus:0.1;mem:32").to_proto())
    if docker:
        info.container.type = pb.ContainerInfo.DOCKER
        info.container.docker.image = IMAGE
    return info


async def sequential(containerizer: object, docker: bool, n: int, root: Path, agent: str):
    launch_ms, end_ms = [], []
    for i in range(n):
        sandbox = root / f"seq-{i}"
        sandbox.mkdir()
        env = {"ORBITER_TASK_ID": f"s{i}", "ORBITER_FRAMEWORK_ID": "bench",
               "ORBITER_AGENT_ID": agent}  # fmt: skip
        t0 = time.perf_counter()
        container = await containerizer.launch(task(f"s{i}", "true", docker), sandbox, env)  # type: ignore[attr-defined]
        launch_ms.append((time.perf_counter() - t0) * 1000)
        await container.wait()
        end_ms.append((time.perf_counter() - t0) * 1000)
    return statistics.median(launch_ms), statistics.median(end_ms)


async def concurrent(containerizer: object, docker: bool, n: int, root: Path, agent: str):
    peak = threading.active_count()

    async def one(i: int) -> None:
        sandbox = root / f"con-{i}"
        sandbox.mkdir()
        env = {"ORBITER_TASK_ID": f"c{i}", "ORBITER_FRAMEWORK_ID": "bench",
               "ORBITER_AGENT_ID": agent}  # fmt: skip
        container = await containerizer.launch(task(f"c{i}", "sleep 1", docker), sandbox, env)  # type: ignore[attr-defined]
        await container.wait()

    async def sample() -> None:
        nonlocal peak
        while True:
            peak = max(peak, threading.active_count())
            await asyncio.sleep(0.05)

    sampler = asyncio.create_task(sample())
    t0 = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(n)))
    elapsed = time.perf_counter() - t0
    sampler.cancel()
    return elapsed, peak


async def run(engine: DockerEngine, n: int) -> dict[str, tuple[float, float, float, int]]:
    agent = f"bench-{uuid.uuid4().hex[:8]}"
    docker = await DockerContainerizer.connect(engine.base_url)
    results = {}
    try:
        for name, containerizer, is_docker in (
            ("process", ProcessContainerizer(), False),
            ("docker", docker, True),
        ):
            with tempfile.TemporaryDirectory() as tmp:
                root = Path(tmp)
                launch_ms, end_ms = await sequential(containerizer, is_docker, n, root, agent)
                elapsed, peak = await concurrent(containerizer, is_docker, n, root, agent)
            results[name] = (launch_ms, end_ms, elapsed, peak)
    finally:
        engine.remove_containers(f"{LABEL_AGENT}={agent}")
        docker.close()
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    n = 5 if args.quick else 20
    engine = DockerEngine()
    engine.start()
    try:
        engine.ensure_image()
        runs = [asyncio.run(run(engine, n)) for _ in range(args.runs)]
    finally:
        engine.stop()
    rows = []
    for name in ("process", "docker"):
        values = [r[name] for r in runs]
        rows.append(
            [
                name,
                f"{statistics.median(v[0] for v in values):.1f}",
                f"{statistics.median(v[1] for v in values):.1f}",
                f"{statistics.median(v[2] for v in values):.2f}",
                max(v[3] for v in values),
            ]
        )
    print(f"{n} tasks per scenario, median of {args.runs} runs")
    headers = ["containerizer", "launch ms", "launch to end ms", f"{n} x sleep 1: s"]
    print(tabulate(rows, headers=[*headers, "peak threads"]))
    ratio = float(rows[1][1]) / max(float(rows[0][1]), 1e-9)
    print(f"docker launch costs {ratio:.0f}x a process launch")
    return 0


if __name__ == "__main__":
    sys.exit(main())
