"""The master's HTTP side of the web UI, with real servers in this process: the UI's files,
ETags that make polls of unchanged documents cheap, and sandbox reads the master proxies
to the agent with the caller's own token (the browser cannot reach agents itself)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from smallcluster import master_and_agents

from orbiter.agent.agent import Agent, AgentSettings
from orbiter.framework import Scheduler, SchedulerDriver, task_info
from orbiter.master.server import MasterServer, MasterSettings
from orbiter.proto import messages_pb2 as pb
from orbiter.resources import Resources
from orbiter.security import acl
from orbiter.security.credentials import load_credentials
from orbiter.security.settings import SecuritySettings
from orbiter.webui import STATIC

TIMEOUT = 15.0
OPERATOR = "s3cret-operator-token"
AGENT = "s3cret-agent-token"
BOB = "s3cret-token-of-bob"


async def fetch(url: str, headers: dict[str, str] | None = None) -> tuple[int, Any, bytes]:
    """GET: the status, the headers (case-insensitive) and the body."""
    async with aiohttp.ClientSession() as s, s.get(url, headers=headers or {}) as resp:
        return resp.status, resp.headers.copy(), await resp.read()


async def test_the_master_serves_the_ui_files_with_etags(tmp_path: Path) -> None:
    async with master_and_agents(tmp_path, agents=1) as (master, _):
        base = f"http://{master.info.http_address}"
        status, headers, body = await fetch(f"{base}/")
        assert status == 200 and headers["Content-Type"].startswith("text/html")
        assert b'src="/ui/app.js"' in body
        for name in (p.name for p in STATIC.iterdir()):
            status, headers, body = await fetch(f"{base}/ui/{name}")
            assert status == 200, name
            assert body == (STATIC / name).read_bytes()
        status, headers, _ = await fetch(f"{base}/ui/app.js")
        assert headers["Content-Type"].startswith("text/javascript")
        status, _, body = await fetch(f"{base}/ui/app.js", {"If-None-Match": headers["ETag"]})
        assert (status, body) == (304, b"")
        status, _, body = await fetch(f"{base}/ui/secrets.txt")
        assert status == 404 and b"no file" in body


async def test_a_json_poll_gets_304_until_the_document_changes(tmp_path: Path) -> None:
    async with master_and_agents(tmp_path, agents=1) as (master, agents):
        url = f"http://{master.info.http_address}/api/v1/summary"
        status, headers, _ = await fetch(url)
        etag = headers["ETag"]
        status, _, body = await fetch(url, {"If-None-Match": etag})
        assert (status, body) == (304, b"")
        async with aiohttp.ClientSession() as s:
            path = f"http://{master.info.http_address}/api/v1/agents/{agents[0].agent_id}"
            async with s.post(f"{path}/deactivate", json={"reason": "test"}) as resp:
                assert resp.status == 200
        status, headers, _ = await fetch(url, {"If-None-Match": etag})
        assert status == 200 and headers["ETag"] != etag


# ---------------------------------------------------------------------- with tokens


@dataclass
class OneTask(Scheduler):
    """Launches one task on the first offer that fits; records its states."""

    command: str
    states: list[int] = field(default_factory=list)
    launched: bool = False

    async def offers(self, driver: SchedulerDriver, offers: list[pb.Offer]) -> None:
        for offer in offers:
            if self.launched:
                await driver.decline([offer.id])
                continue
            self.launched = True
            resources = Resources.parse("cpus:0.1;mem:32").to_proto()
            await driver.launch([offer.id], [task_info("t1", self.command, resources)])

    def status_update(self, driver: SchedulerDriver, status: pb.TaskStatus) -> None:
        self.states.append(status.state)


@contextlib.asynccontextmanager
async def secured_cluster(
    tmp_path: Path, acls: acl.Acls | None = None
) -> AsyncIterator[tuple[MasterServer, Agent]]:
    """Tokens on (no TLS, loopback): the master and one process agent share credentials
    (principals ops, agent and bob) and ACLs."""
    creds = tmp_path / "credentials.yml"
    creds.write_text(
        f"principals:\n  - {{name: ops, token: {OPERATOR}}}\n"
        f"  - {{name: agent, token: {AGENT}}}\n  - {{name: bob, token: {BOB}}}\n"
    )
    credentials = load_credentials(creds)
    acls = acls or acl.Acls()
    master = MasterServer(
        MasterSettings(
            port=0,
            http_port=0,
            work_dir=tmp_path / "m",
            security=SecuritySettings(credentials=credentials, acls=acls),
        )
    )
    await master.start()
    agent = Agent(
        AgentSettings(
            master=master.info.grpc_address,
            work_dir=tmp_path / "a",
            resources=Resources.parse("cpus:1;mem:256"),
            containerizer="process",
            isolation=False,
            security=SecuritySettings(credentials=credentials, token=AGENT, acls=acls),
        )
    )
    try:
        await agent.start()
        await asyncio.wait_for(agent.registered.wait(), TIMEOUT)
        yield master, agent
    finally:
        await agent.stop()
        await master.stop()


async def wait_for(check: Any, what: str) -> None:
    deadline = asyncio.get_running_loop().time() + TIMEOUT
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


@contextlib.asynccontextmanager
async def running_task(master: MasterServer) -> AsyncIterator[None]:
    """Task t1 of a framework registered by ops, saying hello on stdout, then sleeping."""
    driver = SchedulerDriver(
        OneTask("echo hello from t1; sleep 60"),
        pb.FrameworkInfo(name="ui-test"),
        master.info.grpc_address,
        security=SecuritySettings(token=OPERATOR),
    )
    run = asyncio.create_task(driver.run())
    try:
        read = f"http://{master.info.http_address}/api/v1/tasks/t1/files/read?path=stdout"

        async def said_hello() -> bool:
            status, _, body = await fetch(read, {"Authorization": f"Bearer {OPERATOR}"})
            return status == 200 and b"hello from t1" in body

        await wait_for(said_hello, "t1's stdout through the master")
        yield
    finally:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(driver.teardown(), 5)
        driver.stop()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await asyncio.wait_for(run, 10)


async def test_sandbox_reads_go_through_the_master_with_the_callers_token(
    tmp_path: Path,
) -> None:
    async with secured_cluster(tmp_path) as (master, _), running_task(master):
        base = f"http://{master.info.http_address}"
        bearer = {"Authorization": f"Bearer {OPERATOR}"}
        read = f"{base}/api/v1/tasks/t1/files/read?path=stdout"
        status, _, body = await fetch(f"{read}&offset=6", bearer)
        assert (status, body.startswith(b"from t1")) == (200, True)
        status, _, listing = await fetch(f"{base}/api/v1/tasks/t1/files", bearer)
        assert status == 200 and b'"stdout"' in listing

        # No token: the master refuses; a wrong one too. The UI's files stay open.
        assert (await fetch(read))[0] == 401
        assert (await fetch(read, {"Authorization": "Bearer nope"}))[0] == 401
        assert (await fetch(f"{base}/"))[0] == 200
        assert (await fetch(f"{base}/ui/app.js"))[0] == 200
        assert (await fetch(f"{base}/api/v1/summary"))[0] == 401
        assert (await fetch(f"{base}/api/v1/tasks/nope/files", bearer))[0] == 404
        status, _, body = await fetch(f"{base}/api/v1/tasks/t1/files?color=blue", bearer)
        assert status == 400 and b"unknown query parameter" in body


async def test_with_acls_only_who_may_read_a_frameworks_sandboxes_reads_them_in_the_ui(
    tmp_path: Path,
) -> None:
    everyone = (acl.Rule(("ops", "agent")),)
    acls = acl.Acls(
        enabled=True,
        rules={
            acl.REGISTER_FRAMEWORK: everyone,
            acl.RUN_TASK: everyone,
            acl.REGISTER_AGENT: everyone,
        },
    )
    async with secured_cluster(tmp_path, acls) as (master, _), running_task(master):
        read = f"http://{master.info.http_address}/api/v1/tasks/t1/files/read"
        # ops registered the framework: its sandboxes are ops's to read; bob's are not.
        assert (await fetch(read, {"Authorization": f"Bearer {OPERATOR}"}))[0] == 200
        status, _, body = await fetch(read, {"Authorization": f"Bearer {BOB}"})
        assert status == 403 and b"read_sandboxes" in body
