"""Every /metrics endpoint passes the real `promtool check metrics` and has no `_created` series.

promtool is Debian's `prometheus` package (`make deps`); without it the test fails, never
skips. The master's endpoint includes its Satellite's metrics, the agent's its host metrics.
"""

from __future__ import annotations

import asyncio
import subprocess
import urllib.request
from pathlib import Path

from tests.smallcluster import master_and_agents


async def test_every_endpoint_passes_promtool_check_metrics(tmp_path: Path, promtool: str) -> None:
    bodies: dict[str, str] = {}
    async with master_and_agents(tmp_path) as (master, (agent,)):
        for name, address in (("master", master.info.http_address), ("agent", agent.http_address)):
            bodies[name] = await asyncio.to_thread(
                lambda a=address: urllib.request.urlopen(f"http://{a}/metrics").read().decode()
            )
    for name, body in bodies.items():
        assert "orbiter_" in body, f"{name}: no Orbiter metric at all"
        checked = subprocess.run(
            [promtool, "check", "metrics"], input=body, capture_output=True, text=True, check=False
        )
        assert (checked.returncode, checked.stdout + checked.stderr) == (0, ""), name
        created = [line for line in body.splitlines() if "_created" in line.split("{")[0]]
        assert created == [], f"{name} exports _created series: {created[:3]}"
