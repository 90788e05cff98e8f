"""Alerts delivered per second: to the real Alertmanager 0.25, and through the built-in notifier.

1. Alertmanager: an `AlertmanagerClient` (Prometheus's batches of 64, one POST at a
   time) posts N distinct firing alerts to Debian's prometheus-alertmanager, started
   on a free port in a temp dir. Timed from the enqueue until the client counted the
   last one accepted; then Alertmanager's API is asked how many it holds (all N).
2. Built-in notifier: `BuiltinNotifier` with one route grouping by `agent` (group_wait
   and group_interval 0.05 s) delivers N alerts in N/10 groups to a local webhook
   (aiohttp) through the real `deliver`; timed from `send` until the webhook has
   received every alert.

Both run on this machine's 2 shared cores with their peer. Every figure is the median
of 3 runs. Run: python bench/alerts.py [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import aiohttp
import yaml
from aiohttp import web
from prometheus_client import CollectorRegistry

from orbiter.alerts.alertmanager import AlertmanagerClient, AlertmanagerSet
from orbiter.alerts.payload import Notification

RUNS = 3


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def alerts(n: int, run: int) -> list[Notification]:
    now = time.time()
    return [
        Notification(
            labels={"alertname": "BenchAlert", "agent": f"S{i // 10}", "i": f"{run}-{i}"},
            annotations={"summary": f"alert {i}"},
            status="firing",
            starts_at=now,
            ends_at=now + 3600,
        )
        for i in range(n)
    ]


def start_alertmanager(tmp: Path) -> tuple[subprocess.Popen[bytes], str]:
    binary = shutil.which("prometheus-alertmanager")
    if binary is None:
        sys.exit("prometheus-alertmanager not found: run `make deps`")
    port = free_port()
    cfg = tmp / "am.yml"
    cfg.write_text(yaml.safe_dump({"route": {"receiver": "null"}, "receivers": [{"name": "null"}]}))
    proc = subprocess.Popen(
        [binary, f"--config.file={cfg}", f"--storage.path={tmp / 'data'}",
         f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address="],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/-/ready", timeout=1):
                return proc, f"127.0.0.1:{port}"
        except OSError:
            time.sleep(0.1)
    proc.kill()
    sys.exit("alertmanager did not become ready")


async def to_alertmanager(address: str, n: int, run: int) -> float:
    registry = CollectorRegistry()
    client = AlertmanagerClient(
        [AlertmanagerSet(static_targets=(address,))], capacity=n, registry=registry
    )
    await client.start()
    try:
        started = time.perf_counter()
        client.enqueue(alerts(n, run))
        url = f"http://{address}/api/v2/alerts"
        while (registry.get_sample_value(
            "orbiter_alertmanager_notifications_sent_total", {"alertmanager": url}
        ) or 0) < n:  # fmt: skip
            await asyncio.sleep(0.005)
        elapsed = time.perf_counter() - started
    finally:
        await client.stop()
    return elapsed


async def through_builtin(n: int, run: int) -> float:
    from orbiter.alerts.amconfig import parse_alertmanager_config
    from orbiter.alerts.builtin import BuiltinNotifier
    from orbiter.alerts.deliver import deliver

    got = 0
    done = asyncio.Event()

    async def hook(request: web.Request) -> web.Response:
        nonlocal got
        got += len((await request.json())["alerts"])
        if got >= n:
            done.set()
        return web.Response()

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    config = parse_alertmanager_config(yaml.safe_dump({
        "route": {"receiver": "hook", "group_by": ["agent"], "group_wait": "50ms",
                  "group_interval": "50ms", "repeat_interval": "1h"},
        "receivers": [{"name": "hook", "webhook_configs": [
            {"url": f"http://127.0.0.1:{port}/hook", "send_resolved": False}]}],
    }), "bench.yml")  # fmt: skip
    session = aiohttp.ClientSession()

    async def send(receiver: Any, payload: dict[str, Any]) -> None:
        await deliver(receiver, payload, session=session)

    notifier = BuiltinNotifier(config, send, registry=CollectorRegistry(), tick_interval=0.01)
    await notifier.start()
    try:
        started = time.perf_counter()
        await notifier.send(alerts(n, run))
        await asyncio.wait_for(done.wait(), 120)
        elapsed = time.perf_counter() - started
    finally:
        await notifier.stop()
        await session.close()
        await runner.cleanup()
    return elapsed


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="fewer alerts (smoke test)")
    args = p.parse_args()
    n = 2_000 if args.quick else 20_000
    with tempfile.TemporaryDirectory() as tmp:
        proc, address = start_alertmanager(Path(tmp))
        try:
            times = [asyncio.run(to_alertmanager(address, n, run)) for run in range(RUNS)]
            with urllib.request.urlopen(f"http://{address}/api/v2/alerts", timeout=30) as resp:
                held = len(json.load(resp))
        finally:
            proc.terminate()
            proc.wait(10)
    median = statistics.median(times)
    print(f"to Alertmanager 0.25: {n:,} alerts in {median:.2f}s (median of {RUNS}: "
          f"{', '.join(f'{t:.2f}' for t in times)}) = {n / median:,.0f} alerts/s; "
          f"Alertmanager holds {held:,} (expected {RUNS * n:,})")  # fmt: skip
    times = [asyncio.run(through_builtin(n, run)) for run in range(RUNS)]
    median = statistics.median(times)
    print(f"built-in notifier to a webhook: {n:,} alerts in {n // 10:,} groups in {median:.2f}s "
          f"(median of {RUNS}: {', '.join(f'{t:.2f}' for t in times)}) = "
          f"{n / median:,.0f} alerts/s")  # fmt: skip


if __name__ == "__main__":
    main()
