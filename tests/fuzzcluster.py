"""A master (Satellite in its loop) and one agent running in a background thread, for
tests that call them synchronously: the API fuzzers, whose generated cases are plain
function calls (hypothesis and schemathesis drive sync code)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from orbiter.agent.agent import Agent, AgentSettings
from orbiter.master.server import MasterServer, MasterSettings
from orbiter.resources import Resources
from orbiter.satellite.service import SatelliteConfig

RULES = """groups:
  - name: fuzz
    rules:
      - record: fuzz_up
        expr: vector(1)
"""


@dataclass
class BackgroundCluster:
    master: MasterServer
    agent: Agent
    loop: asyncio.AbstractEventLoop

    @property
    def url(self) -> str:
        return f"http://{self.master.info.http_address}"

    @property
    def agent_url(self) -> str:
        return f"http://{self.agent.http_address}"


@contextmanager
def background_cluster(
    tmp_path: Path, containerizer: str = "null"
) -> Iterator[BackgroundCluster]:
    """Started with the agent registered; stopped (agent, then master) on the way out.
    The null containerizer runs nothing; "process" also serves the Executor API."""
    rules = tmp_path / "fuzz.rules.yml"
    rules.write_text(RULES)
    loop = asyncio.new_event_loop()
    stop = threading.Event()
    started = threading.Event()
    failure: list[BaseException] = []
    box: list[BackgroundCluster] = []

    async def run() -> None:
        settings = MasterSettings(
            port=0,
            http_port=0,
            work_dir=tmp_path / "m",
            satellite=SatelliteConfig(rule_files=[str(rules)], evaluation_interval=1.0),
            satellite_in_master=True,
        )
        master = MasterServer(settings)
        await master.start()
        agent = Agent(
            AgentSettings(
                master=master.info.grpc_address,
                work_dir=tmp_path / "a0",
                resources=Resources.parse("cpus:1;mem:256;ports:[31000-31009]"),
                containerizer=containerizer,
            )
        )
        try:
            await agent.start()
            await asyncio.wait_for(agent.registered.wait(), 10)
            box.append(BackgroundCluster(master, agent, loop))
            started.set()
            while not stop.is_set():
                await asyncio.sleep(0.05)
        finally:
            await agent.stop()
            await master.stop()

    def main() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(run())
        except BaseException as e:
            failure.append(e)
            started.set()
        finally:
            loop.close()

    thread = threading.Thread(target=main, name="fuzz-cluster", daemon=True)
    thread.start()
    started.wait(30)
    if failure:
        raise failure[0]
    if not box:
        raise TimeoutError("the background cluster did not start within 30 s")
    try:
        yield box[0]
    finally:
        stop.set()
        thread.join(15)
