"""The agent's Mesos v1 executor API (/api/v1/executor) spoken by hand, in-process.

A real master and agent (process containerizer, so a real executor process is
started) on loopback with a credentials file: authentication is on. The
framework is Orbiter's SDK; its executor's command is `sleep`, which never
subscribes, so the test speaks for it over HTTP with the token the agent gave
it, and tries what others must not be able to do. pymesos itself is run by
tests/e2e/test_pymesos_executor.py.
"""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from orbiter.agent import mesos_executor
from orbiter.agent.agent import Agent, AgentSettings
from orbiter.agent.executors import RunningExecutor
from orbiter.framework import Scheduler, SchedulerDriver, executor_info, task_info
from orbiter.master.server import MasterServer, MasterSettings
from orbiter.master.state import MasterConfig
from orbiter.proto import messages_pb2 as pb
from orbiter.resources import Resources
from orbiter.security.credentials import load_credentials
from orbiter.security.settings import SecuritySettings

TIMEOUT = 10.0
TOKENS = {"alice": "alice-token-0123456789", "agent": "agent-token-0123456789"}
RESOURCES = Resources.parse("cpus:0.1;mem:16")


@dataclass
class Recorder(Scheduler):
    statuses: asyncio.Queue[pb.TaskStatus] = field(default_factory=asyncio.Queue)
    messages: asyncio.Queue[bytes] = field(default_factory=asyncio.Queue)
    launched: bool = False

    async def offers(self, driver: SchedulerDriver, offers: list[pb.Offer]) -> None:
        for offer in offers:
            if self.launched:
                await driver.decline([offer.id], refuse_seconds=3600)
                continue
            self.launched = True
            executor = executor_info("hand", "exec sleep 60", RESOURCES.to_proto())
            await driver.launch(
                [offer.id], [task_info("t1", "", RESOURCES.to_proto(), executor=executor)]
            )

    def status_update(self, driver: SchedulerDriver, status: pb.TaskStatus) -> None:
        self.statuses.put_nowait(status)

    def framework_message(
        self, driver: SchedulerDriver, agent_id: str, executor_id: str, data: bytes
    ) -> None:
        self.messages.put_nowait(data)


@dataclass
class Setup:
    agent: Agent
    scheduler: Recorder
    executor: RunningExecutor

    @property
    def url(self) -> str:
        return f"http://{self.agent.http_address}/api/v1/executor"

    def call(self, kind: str, **body: Any) -> dict[str, Any]:
        return {
            "type": kind,
            "framework_id": {"value": self.executor.framework_id},
            "executor_id": {"value": self.executor.id},
            **body,
        }


@pytest.fixture
async def setup(tmp_path: Path) -> AsyncIterator[Setup]:
    credentials = tmp_path / "credentials.yml"
    credentials.write_text(
        "principals:\n" + "".join(f"  - {{name: {n}, token: {t}}}\n" for n, t in TOKENS.items())
    )
    server = SecuritySettings(credentials=load_credentials(credentials))
    master = MasterServer(
        MasterSettings(
            port=0, http_port=0, work_dir=tmp_path / "m", security=server,
            config=MasterConfig(agent_heartbeat_interval=1.0, allocation_interval=0.1),
        )
    )  # fmt: skip
    await master.start()
    agent = Agent(
        AgentSettings(
            master=master.info.grpc_address, work_dir=tmp_path / "a", containerizer="process",
            resources=Resources.parse("cpus:1;mem:256"),
            security=SecuritySettings(token=TOKENS["agent"], credentials=server.credentials),
        )
    )  # fmt: skip
    await agent.start()
    scheduler = Recorder()
    driver = SchedulerDriver(
        scheduler, pb.FrameworkInfo(name="hand"), master.info.grpc_address,
        security=SecuritySettings(token=TOKENS["alice"]),
    )  # fmt: skip
    runner = asyncio.create_task(driver.run())
    try:
        async with asyncio.timeout(TIMEOUT):
            while not agent.executors.running:
                await asyncio.sleep(0.05)
            [executor] = agent.executors.running.values()
            while executor.starting is None or not executor.starting.done():
                await asyncio.sleep(0.05)
        yield Setup(agent, scheduler, executor)
    finally:
        driver.stop()
        await asyncio.wait({runner}, timeout=TIMEOUT)
        await agent.stop()
        await master.stop()


async def post(
    session: aiohttp.ClientSession,
    url: str,
    body: Any,
    token: str = "",
    content_type: str = "application/json",
) -> tuple[int, str]:
    headers = {"Content-Type": content_type}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    async with session.post(url, data=json.dumps(body), headers=headers) as resp:
        return resp.status, await resp.text()


async def records(resp: aiohttp.ClientResponse) -> AsyncIterator[dict[str, Any]]:
    """The RecordIO stream of JSON events, one at a time."""
    while True:
        length = int((await resp.content.readuntil(b"\n")).strip())
        yield json.loads(await resp.content.readexactly(length))


async def next_event(events: AsyncIterator[dict[str, Any]], skip_heartbeats: bool = True) -> Any:
    async with asyncio.timeout(TIMEOUT):
        while (event := await anext(events))["type"] == "HEARTBEAT" and skip_heartbeats:
            pass
        return event


async def next_status(scheduler: Recorder) -> pb.TaskStatus:
    return await asyncio.wait_for(scheduler.statuses.get(), TIMEOUT)


async def test_an_executor_with_its_token_subscribes_updates_and_messages(setup: Setup) -> None:
    token = setup.executor.token
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            setup.url,
            json=setup.call("SUBSCRIBE", subscribe={"unacknowledged_tasks": []}),
            headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
        ) as stream,
    ):
        assert stream.status == 200, await stream.text()
        assert stream.headers["Content-Type"].startswith("application/json")
        events = records(stream)
        subscribed = await next_event(events)
        assert subscribed["type"] == "SUBSCRIBED"
        info = subscribed["subscribed"]
        assert info["executor_info"]["executor_id"] == {"value": "hand"}
        assert info["framework_info"]["id"] == {"value": setup.executor.framework_id}
        assert info["agent_info"]["id"] == {"value": setup.agent.agent_id}
        launch = await next_event(events)
        assert launch["type"] == "LAUNCH"
        assert launch["launch"]["task"]["task_id"] == {"value": "t1"}

        running = uuid.uuid4().bytes
        status = {
            "task_id": {"value": "t1"}, "state": "TASK_RUNNING", "message": "up",
            "uuid": base64.b64encode(running).decode(), "source": "SOURCE_EXECUTOR",
        }  # fmt: skip
        code, text = await post(
            session, setup.url, setup.call("UPDATE", update={"status": status}), token
        )
        assert code == 202, text
        seen = await next_status(setup.scheduler)
        assert (seen.task_id, seen.state, seen.message) == ("t1", pb.TASK_RUNNING, "up")
        acked = await next_event(events)
        assert acked == {
            "type": "ACKNOWLEDGED",
            "acknowledged": {"task_id": {"value": "t1"}, "uuid": status["uuid"]},
        }

        data = base64.b64encode(b"hello scheduler").decode()
        code, text = await post(
            session, setup.url, setup.call("MESSAGE", message={"data": data}), token
        )
        assert code == 202, text
        assert await asyncio.wait_for(setup.scheduler.messages.get(), TIMEOUT) == (
            b"hello scheduler"
        )

        finished = dict(status, state="TASK_FINISHED", message="done")
        finished["uuid"] = base64.b64encode(uuid.uuid4().bytes).decode()
        code, text = await post(
            session, setup.url, setup.call("UPDATE", update={"status": finished}), token
        )
        assert code == 202, text
        assert (await next_status(setup.scheduler)).state == pb.TASK_FINISHED


async def test_a_quiet_stream_carries_heartbeats(
    setup: Setup, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(mesos_executor, "HEARTBEAT_INTERVAL", 0.1)
    headers = {"Authorization": f"Bearer {setup.executor.token}"}
    async with (
        aiohttp.ClientSession() as session,
        session.post(setup.url, json=setup.call("SUBSCRIBE"), headers=headers) as stream,
    ):
        events = records(stream)
        kinds = [(await next_event(events, skip_heartbeats=False))["type"] for _ in range(4)]
    assert kinds == ["SUBSCRIBED", "LAUNCH", "HEARTBEAT", "HEARTBEAT"]


async def test_calls_without_the_executors_token_are_refused(setup: Setup) -> None:
    subscribe = setup.call("SUBSCRIBE", subscribe={})
    status = {
        "task_id": {"value": "t1"}, "state": "TASK_FAILED",
        "uuid": base64.b64encode(uuid.uuid4().bytes).decode(),
    }  # fmt: skip
    update = setup.call("UPDATE", update={"status": status})
    async with aiohttp.ClientSession() as session:
        # Authentication is on: no token at all.
        code, text = await post(session, setup.url, update)
        assert code == 401 and "MESOS_EXECUTOR_AUTHENTICATION_TOKEN" in text
        # A principal of the credentials file is not the executor.
        for call in (subscribe, update):
            code, text = await post(session, setup.url, call, TOKENS["alice"])
            assert code == 403, text
        # The executor's token speaks for that executor only.
        other = dict(update, executor_id={"value": "another"})
        code, text = await post(session, setup.url, other, setup.executor.token)
        assert code == 403, text
        # ... and opens no other route of the agent.
        headers = {"Authorization": f"Bearer {setup.executor.token}"}
        async with session.get(f"http://{setup.agent.http_address}/state", headers=headers) as r:
            assert r.status == 401
    assert setup.executor.stream is None  # nobody subscribed
    assert setup.scheduler.statuses.empty()  # no update reached the scheduler


@pytest.mark.parametrize(
    ("body", "content_type", "code", "says"),
    [
        ({}, "application/x-protobuf", 415, "application/json"),
        ({"type": "SUBSCRIBE"}, "application/json", 400, "framework_id"),
        (
            {"type": "LAUNCH", "framework_id": {"value": "f"}, "executor_id": {"value": "e"}},
            "application/json", 400, "SUBSCRIBE, UPDATE or MESSAGE",
        ),
    ],
)  # fmt: skip
async def test_calls_the_agent_cannot_read_get_a_4xx_that_says_why(
    setup: Setup, body: Any, content_type: str, code: int, says: str
) -> None:
    async with aiohttp.ClientSession() as session:
        status, text = await post(session, setup.url, body, setup.executor.token, content_type)
    assert status == code and says in json.loads(text)["error"], text
