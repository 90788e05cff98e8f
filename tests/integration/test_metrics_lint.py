"""Every /metrics endpoint passes the real `promtool check metrics` and has no `_created` series.

promtool is Debian's `prometheus` package (`make deps`); without it the test fails, never
skips. The master's endpoint includes its Satellite's metrics, the agent's its host metrics.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import urllib.request
from pathlib import Path

import pytest

from orbiter.agent.agent import Agent, AgentSettings
from orbiter.master.server import MasterServer, MasterSettings
from orbiter.resources import Resources


@pytest.fixture(scope="module")
def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.fail("promtool not found: run `make deps` (Debian package prometheus)")
    return path


async def test_every_endpoint_passes_promtool_check_metrics(tmp_path: Path, promtool: str) -> None:
    master = MasterServer(MasterSettings(port=0, http_port=0, work_dir=tmp_path / "m"))
    await master.start()
    agent = Agent(
        AgentSettings(
            master=master.info.grpc_address,
            work_dir=tmp_path / "a",
            resources=Resources.parse("cpus:1;mem:256"),
            containerizer="null",
        )
    )
    await agent.start()
    bodies: dict[str, str] = {}
    try:
        await asyncio.wait_for(agent.registered.wait(), 10)
        for name, address in (("master", master.info.http_address), ("agent", agent.http_address)):
            bodies[name] = await asyncio.to_thread(
                lambda a=address: urllib.request.urlopen(f"http://{a}/metrics").read().decode()
            )
    finally:
        await agent.stop()
        await master.stop()
    for name, body in bodies.items():
        assert "orbiter_" in body, f"{name}: no Orbiter metric at all"
        checked = subprocess.run(
            [promtool, "check", "metrics"], input=body, capture_output=True, text=True, check=False
        )
        assert (checked.returncode, checked.stdout + checked.stderr) == (0, ""), name
        created = [line for line in body.splitlines() if "_created" in line.split("{")[0]]
        assert created == [], f"{name} exports _created series: {created[:3]}"
