"""A registry write that fails is retried, and nothing that depends on it is lost or sent early;
a registry written by another master fences this one off."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from orbiter.agent.agent import Agent, AgentSettings
from orbiter.errors import RegistryConflict
from orbiter.master.registry import FileRegistryStore
from orbiter.master.server import MasterServer, MasterSettings
from orbiter.proto import master_pb2
from orbiter.resources import Resources


class FlakyStore(FileRegistryStore):
    """A real file store whose next `failures` writes fail as a full disk would."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.failures = 0
        self.attempts = 0

    def store(self, registry: master_pb2.Registry) -> None:
        self.attempts += 1
        if self.failures:
            self.failures -= 1
            raise OSError(28, "No space left on device")
        super().store(registry)


def post(http: str, path: str, body: dict[str, object]) -> tuple[int, dict[str, object]]:
    req = urllib.request.Request(
        f"http://{http}{path}",
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.load(resp)
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


async def cluster(tmp_path: Path, store: FileRegistryStore) -> tuple[MasterServer, Agent]:
    master = MasterServer(MasterSettings(port=0, http_port=0, work_dir=tmp_path / "m"), store)
    await master.start()
    agent = Agent(
        AgentSettings(
            master=master.info.grpc_address,
            work_dir=tmp_path / "a",
            resources=Resources.parse("cpus:1;mem:128"),
            containerizer="null",
        )
    )
    await agent.start()
    await asyncio.wait_for(agent.registered.wait(), 10)
    return master, agent


async def test_a_failed_registry_write_is_retried_and_the_change_then_answers(
    tmp_path: Path,
) -> None:
    store = FlakyStore(tmp_path / "m" / "registry.pb")
    master, agent = await cluster(tmp_path, store)
    try:
        store.failures = 2
        before = store.attempts
        http = master.info.http_address
        status, body = await asyncio.to_thread(
            post, http, f"/api/v1/agents/{agent.agent_id}/deactivate", {"reason": "disk"}
        )
        assert status == 200 and body["maintenance"]["mode"] == "deactivated"
        assert store.attempts - before == 3  # two failures, then the write that counts
        on_disk = FileRegistryStore(store.path).load()
        assert on_disk.agents[0].maintenance.mode == master_pb2.DEACTIVATED
        assert not master._effects  # nothing left stuck behind the failed write
    finally:
        await agent.stop()
        await master.stop()


async def test_a_registry_written_by_another_master_fences_this_one(tmp_path: Path) -> None:
    store = FlakyStore(tmp_path / "m" / "registry.pb")
    master, agent = await cluster(tmp_path, store)
    try:
        usurper = master_pb2.Registry(version=10_000, master_id="another")
        tmp = store.path.with_suffix(".other")
        tmp.write_bytes(usurper.SerializeToString())
        tmp.replace(store.path)
        http = master.info.http_address
        status, body = await asyncio.to_thread(
            post, http, f"/api/v1/agents/{agent.agent_id}/deactivate", {"reason": "x"}
        )
        assert status == 503 and "written by another master" in str(body["error"])
        assert master.stopped.is_set()
        with pytest.raises(RegistryConflict):
            await master.durable()
    finally:
        await agent.stop()
        await master.stop()
