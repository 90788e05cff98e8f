"""Rate and size limits on the master's APIs, and its registry caps, against a real
master over TLS with authenticated clients (tokens from a credentials file).

A client over its rate gets HTTP 429 with Retry-After, or gRPC RESOURCE_EXHAUSTED, a
message naming the limit, and nothing changes; once its bucket refills it is served
again. A principal at its framework cap is refused a new one; others are not.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import grpc
import pytest

from orbiter.master.limits import Limits
from orbiter.master.server import MAX_RECEIVE_MESSAGE, MasterServer, MasterSettings
from orbiter.master.state import MasterConfig
from orbiter.proto import messages_pb2 as pb
from orbiter.proto import scheduler_pb2, scheduler_pb2_grpc
from orbiter.security import certs, channels
from orbiter.security.credentials import Credentials
from orbiter.security.settings import SecuritySettings

TIMEOUT = 10.0
TOKENS = {"alice": "alice-token-0123456789", "bob": "bob-token-0123456789abc"}
SILENCE = {
    "matchers": [{"name": "alertname", "value": "Flood", "isRegex": False}],
    "endsAt": "2100-01-01T00:00:00Z",
    "createdBy": "alice",
    "comment": "limits test",
}


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("pki")
    certs.init_ca(d)
    certs.issue(d, "master")
    return d


@dataclass
class Limited:
    master: MasterServer
    pki: Path

    def client(self, principal: str) -> SecuritySettings:
        return SecuritySettings(tls_ca=str(self.pki / "ca.pem"), token=TOKENS[principal])

    def channel(self, principal: str) -> grpc.aio.Channel:
        return channels.aio_channel(self.master.info.grpc_address, self.client(principal))

    async def http(
        self, principal: str, method: str, path: str, body: Any = None
    ) -> tuple[int, dict[str, str], Any]:
        headers = {"Authorization": f"Bearer {TOKENS[principal]}"} if principal else {}
        url = f"https://{self.master.info.http_address}{path}"
        ssl = self.client("alice").client_ssl_context()
        async with aiohttp.ClientSession() as session, session.request(
            method, url, json=body, headers=headers, ssl=ssl
        ) as resp:  # fmt: skip
            text = await resp.text()
            data = json.loads(text) if resp.content_type == "application/json" else text
            return resp.status, dict(resp.headers), data


@pytest.fixture
async def start(tmp_path: Path, pki: Path) -> AsyncIterator[Callable[[Limits], Awaitable[Limited]]]:
    masters: list[MasterServer] = []

    async def started(limits: Limits) -> Limited:
        credentials = Credentials()
        for name, token in TOKENS.items():
            credentials = credentials.with_token(name, token)
        security = SecuritySettings(
            tls_cert=str(pki / "master.pem"),
            tls_key=str(pki / "master.key"),
            tls_ca=str(pki / "ca.pem"),
            credentials=credentials,
        )
        settings = MasterSettings(
            port=0,
            http_port=0,
            work_dir=tmp_path / f"m{len(masters)}",
            config=MasterConfig(limits=limits),
            security=security,
        )
        master = MasterServer(settings)
        masters.append(master)
        await master.start()
        return Limited(master, pki)

    yield started
    for master in masters:
        await master.stop()


async def until(check: Callable[[], Awaitable[bool]], what: str) -> float:
    """Poll `check` until it holds (refused calls take no tokens); seconds it took."""
    started = time.monotonic()
    while not await check():
        if time.monotonic() - started > TIMEOUT:
            raise AssertionError(f"not within {TIMEOUT}s: {what}")
        await asyncio.sleep(0.05)
    return time.monotonic() - started


def rate_limited_count(metrics_text: str, api: str) -> float:
    for line in metrics_text.splitlines():
        if line.startswith(f'orbiter_master_rate_limited_calls_total{{api="{api}"}}'):
            return float(line.split()[-1])
    return 0.0


async def subscribe(channel: grpc.aio.Channel, name: str = "fw") -> tuple[Any, Any]:
    call = scheduler_pb2_grpc.SchedulerStub(channel).Subscribe(
        scheduler_pb2.SubscribeRequest(framework_info=pb.FrameworkInfo(name=name))
    )
    first = await asyncio.wait_for(call.read(), TIMEOUT)
    if first is grpc.aio.EOF:
        await call  # raises the status the master refused it with
    return first, call


async def test_an_http_client_over_its_rate_gets_429_and_is_served_again_once_refilled(
    start: Callable[[Limits], Awaitable[Limited]],
) -> None:
    c = await start(Limits(api_rate=2.0, api_burst=3.0))
    for _ in range(3):
        status, _, _ = await c.http("alice", "GET", "/api/v1/frameworks")
        assert status == 200

    status, headers, body = await c.http("alice", "POST", "/api/v2/silences", SILENCE)

    assert status == 429
    assert headers["Content-Type"].startswith("application/json")
    assert int(headers["Retry-After"]) >= 1
    assert body["error"].startswith("too many API calls from alice at 127.0.0.1: at most 3 at ")
    assert "then 2 per second (master.api_burst, master.api_rate); retry later" in body["error"]
    assert c.master.core.silences == {}  # refused: nothing changed
    # Another principal, and the open paths, are served meanwhile.
    assert (await c.http("bob", "GET", "/api/v1/frameworks"))[0] == 200
    assert (await c.http("", "GET", "/health"))[0] == 200
    _, _, metrics = await c.http("", "GET", "/metrics")
    assert rate_limited_count(metrics, "http") == 1.0

    async def served() -> bool:
        return (await c.http("alice", "POST", "/api/v2/silences", SILENCE))[0] == 200

    waited = await until(served, "alice served again")
    assert waited < 2.0  # at 2 tokens a second: well under a second after the refusal
    assert len(c.master.core.silences) == 1


async def test_a_scheduler_over_its_rate_gets_resource_exhausted_and_recovers(
    start: Callable[[Limits], Awaitable[Limited]],
) -> None:
    c = await start(Limits(api_rate=2.0, api_burst=2.0))
    async with c.channel("alice") as ch:
        subscribed, stream = await subscribe(ch)  # one call
        header = scheduler_pb2.CallHeader(
            framework_id=subscribed.subscribed.framework_id,
            stream_id=subscribed.subscribed.stream_id,
        )
        stub = scheduler_pb2_grpc.SchedulerStub(ch)
        await stub.Revive(scheduler_pb2.ReviveRequest(header=header))  # two
        fw = c.master.core.frameworks[header.framework_id]
        suppressed_before = set(fw.suppressed_roles)

        with pytest.raises(grpc.aio.AioRpcError) as e:
            await stub.Suppress(scheduler_pb2.SuppressRequest(header=header))

        assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert e.value.details() == (
            "too many API calls from alice at 127.0.0.1: at most 2 at once, then 2 per "
            "second (master.api_burst, master.api_rate); retry later"
        )
        assert set(fw.suppressed_roles) == suppressed_before  # nothing changed
        assert c.master.metrics.rate_limited.labels("grpc")._value.get() == 1.0

        async def served() -> bool:
            try:
                await stub.Suppress(scheduler_pb2.SuppressRequest(header=header))
            except grpc.aio.AioRpcError as refused:
                assert refused.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
                return False
            return True

        await until(served, "alice's Suppress served again")
        assert set(fw.suppressed_roles) != suppressed_before
        stream.cancel()


async def test_the_framework_past_a_principals_cap_is_refused_and_others_are_not(
    start: Callable[[Limits], Awaitable[Limited]],
) -> None:
    c = await start(Limits(max_frameworks_per_principal=2))
    async with c.channel("alice") as alice, c.channel("bob") as bob:
        streams = [(await subscribe(alice, f"a{i}"))[1] for i in range(2)]
        frameworks = set(c.master.core.frameworks)

        with pytest.raises(grpc.aio.AioRpcError) as e:
            await subscribe(alice, "a2")

        assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert e.value.details() == (
            "principal 'alice' has 2 frameworks registered, the most one principal may have "
            "(master.max_frameworks_per_principal = 2); tear down frameworks it no longer "
            "needs (Teardown), or subscribe again with an existing framework id"
        )
        assert set(c.master.core.frameworks) == frameworks
        assert c.master.metrics.cap_refusals.labels("max_frameworks_per_principal")._value.get()
        subscribed, bobs = await subscribe(bob, "b0")
        assert subscribed.type == scheduler_pb2.Event.SUBSCRIBED
        for call in (*streams, bobs):
            call.cancel()


async def test_a_silence_past_the_cap_is_refused_with_what_to_do(
    start: Callable[[Limits], Awaitable[Limited]],
) -> None:
    c = await start(Limits(max_silences=1))
    assert (await c.http("alice", "POST", "/api/v2/silences", SILENCE))[0] == 200

    status, headers, body = await c.http("bob", "POST", "/api/v2/silences", SILENCE)

    assert status == 429
    assert "Retry-After" not in headers  # a cap, not a rate: waiting does not help
    assert body["error"].startswith("1 silences are active or pending, the most this master")
    assert "expire silences no longer needed" in body["error"]
    assert len(c.master.core.silences) == 1


async def test_an_oversized_grpc_message_is_refused_with_resource_exhausted(
    start: Callable[[Limits], Awaitable[Limited]],
) -> None:
    c = await start(Limits())
    async with c.channel("alice") as ch:
        subscribed, stream = await subscribe(ch)
        header = scheduler_pb2.CallHeader(
            framework_id=subscribed.subscribed.framework_id,
            stream_id=subscribed.subscribed.stream_id,
        )
        request = scheduler_pb2.MessageRequest(
            header=header, agent_id="S1", executor_id="e", data=b"x" * (MAX_RECEIVE_MESSAGE + 1)
        )
        with pytest.raises(grpc.aio.AioRpcError) as e:
            await scheduler_pb2_grpc.SchedulerStub(ch).Message(request, timeout=TIMEOUT)
        assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "larger than max" in e.value.details()
        assert f"vs. {MAX_RECEIVE_MESSAGE})" in e.value.details()
        stream.cancel()
