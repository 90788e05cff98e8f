"""A master and a few agents in this process, for tests that only need them up and
registered (scraping their /metrics, discovery); the null containerizer runs nothing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from orbiter.agent.agent import Agent, AgentSettings
from orbiter.config import load_config
from orbiter.master.server import MasterServer, MasterSettings
from orbiter.resources import Resources


@asynccontextmanager
async def master_and_agents(
    tmp_path: Path, agents: int = 1, config: Path | None = None
) -> AsyncIterator[tuple[MasterServer, list[Agent]]]:
    """Started, every agent registered; stopped on the way out. With a `config` file the
    master runs Satellite (in its own process, as by default) with that file's settings."""
    settings = MasterSettings(port=0, http_port=0, work_dir=tmp_path / "m")
    if config is not None:
        settings.satellite = load_config(config).satellite
        settings.config_path = str(config)
    master = MasterServer(settings)
    await master.start()
    started: list[Agent] = []
    try:
        for i in range(agents):
            agent = Agent(
                AgentSettings(
                    master=master.info.grpc_address,
                    work_dir=tmp_path / f"a{i}",
                    resources=Resources.parse("cpus:1;mem:256"),
                    containerizer="null",
                )
            )
            await agent.start()
            started.append(agent)
        for agent in started:
            await asyncio.wait_for(agent.registered.wait(), 10)
        yield master, started
    finally:
        for agent in started:
            await agent.stop()
        await master.stop()
