"""TLS, principals and identity bindings against a real master and agents, in-process.

The PKI comes from `orbiter certs` (a CA and certificates for master, agent,
alice, bob); tokens from a credentials file. Each attack of issue 11 is tried
and must be refused with the error the attacker gets, changing nothing.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import grpc
import pytest

from orbiter.agent.agent import Agent, AgentSettings
from orbiter.master.server import MasterServer, MasterSettings
from orbiter.master.state import MasterConfig
from orbiter.proto import (
    agent_pb2,
    agent_pb2_grpc,
    master_pb2,
    master_pb2_grpc,
    scheduler_pb2,
    scheduler_pb2_grpc,
)
from orbiter.proto import messages_pb2 as pb
from orbiter.resources import Resources
from orbiter.security import certs, channels
from orbiter.security.credentials import load_credentials
from orbiter.security.settings import SecuritySettings

TIMEOUT = 10.0
TOKENS = {
    "alice": "alice-token-0123456789",
    "bob": "bob-token-0123456789abc",
    "agent": "agent-token-0123456789",
    "satellite": "satellite-token-0123456789",
}
FAST = MasterConfig(agent_heartbeat_interval=1.0, allocation_interval=0.1)


@dataclass(frozen=True)
class Pki:
    dir: Path
    credentials: Path

    def cert(self, name: str) -> tuple[str, str]:
        return str(self.dir / f"{name}.pem"), str(self.dir / f"{name}.key")

    @property
    def ca(self) -> str:
        return str(self.dir / "ca.pem")

    def client(self, name: str = "", token: str = "") -> SecuritySettings:
        """A client's settings: the CA, and a certificate `name` and/or a token."""
        cert, key = self.cert(name) if name else ("", "")
        return SecuritySettings(tls_ca=self.ca, tls_cert=cert, tls_key=key, token=token)

    def server(self, **kw: Any) -> SecuritySettings:
        cert, key = self.cert("master")
        return SecuritySettings(
            tls_cert=cert,
            tls_key=key,
            tls_ca=self.ca,
            credentials=load_credentials(self.credentials),
            **kw,
        )


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    d = tmp_path_factory.mktemp("pki")
    certs.init_ca(d)
    for name in ("master", "agent", "alice", "bob"):
        certs.issue(d, name)
    creds = d / "credentials.yml"
    creds.write_text(
        "principals:\n" + "".join(f"  - {{name: {n}, token: {t}}}\n" for n, t in TOKENS.items())
    )
    return Pki(d, creds)


@dataclass
class Secured:
    master: MasterServer
    pki: Pki
    agents: list[Agent]

    @property
    def address(self) -> str:
        return self.master.info.grpc_address

    @property
    def http(self) -> str:
        return f"https://{self.master.info.http_address}"

    def channel(self, name: str = "", token: str = "") -> grpc.aio.Channel:
        return channels.aio_channel(self.address, self.pki.client(name, token))

    async def http_call(
        self, method: str, path: str, token: str = "", body: Any = None, cert: str = ""
    ) -> tuple[int, Any]:
        client = self.pki.client(cert)
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        async with aiohttp.ClientSession() as session, session.request(
            method, self.http + path, json=body, headers=headers,
            ssl=client.client_ssl_context(),
        ) as resp:  # fmt: skip
            return resp.status, json.loads(await resp.text() or "null")


async def start_secured(tmp_path: Path, pki: Pki, agents: int = 1, **kw: Any) -> Secured:
    settings = MasterSettings(
        port=0,
        http_port=0,
        work_dir=tmp_path / "m",
        config=FAST,
        security=pki.server(**{k: v for k, v in kw.items() if k == "require_client_cert"}),
        **{k: v for k, v in kw.items() if k.startswith("registration_")},
    )
    master = MasterServer(settings)
    await master.start()
    started = []
    agent_cert, agent_key = pki.cert("agent")
    for i in range(agents):
        agent = Agent(
            AgentSettings(
                master=master.info.grpc_address,
                work_dir=tmp_path / f"a{i}",
                resources=Resources.parse("cpus:1;mem:256"),
                containerizer="null",
                security=SecuritySettings(
                    tls_cert=agent_cert,
                    tls_key=agent_key,
                    tls_ca=pki.ca,
                    token=TOKENS["agent"],
                    credentials=pki.server().credentials,
                ),
            )
        )
        await agent.start()
        started.append(agent)
    for agent in started:
        await asyncio.wait_for(agent.registered.wait(), TIMEOUT)
    return Secured(master, pki, started)


@pytest.fixture
async def secured(tmp_path: Path, pki: Pki) -> AsyncIterator[Secured]:
    """TLS everywhere; tokens from the credentials file (client certificates optional)."""
    c = await start_secured(tmp_path, pki)
    yield c
    for agent in c.agents:
        await agent.stop()
    await c.master.stop()


@pytest.fixture
async def mutual(tmp_path: Path, pki: Pki) -> AsyncIterator[Secured]:
    """Mutual TLS required on every wire: the principal is the certificate's subject."""
    c = await start_secured(tmp_path, pki, require_client_cert=True)
    yield c
    for agent in c.agents:
        await agent.stop()
    await c.master.stop()


async def subscribe(channel: grpc.aio.Channel, info: pb.FrameworkInfo) -> tuple[Any, Any]:
    """Subscribe; returns (the SUBSCRIBED event, the open call)."""
    call = scheduler_pb2_grpc.SchedulerStub(channel).Subscribe(
        scheduler_pb2.SubscribeRequest(framework_info=info)
    )
    first = await asyncio.wait_for(call.read(), TIMEOUT)
    if first is grpc.aio.EOF:
        await call
    return first, call


async def refused_subscribe(channel: grpc.aio.Channel, info: pb.FrameworkInfo) -> Any:
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await subscribe(channel, info)
    return e.value


def register_msg(http_address: str, agent_id: str = "") -> Any:
    msg = agent_pb2.AgentMessage()
    info = msg.register.info
    info.id = agent_id
    info.hostname = "impostor"
    info.http_address = http_address
    info.resources.extend(Resources.parse("cpus:1;mem:128").to_proto())
    return msg


async def raw_register(channel: grpc.aio.Channel, msg: Any) -> Any:
    """Send Register; the first reply, or the status the master ended the link with."""
    call = agent_pb2_grpc.AgentLinkStub(channel).Connect()
    await call.write(msg)
    try:
        reply = await asyncio.wait_for(call.read(), TIMEOUT)
        if reply is grpc.aio.EOF:
            await call
        return reply
    except grpc.aio.AioRpcError as e:
        return e
    finally:
        call.cancel()


def snapshot(c: Secured) -> bytes:
    return c.master.core.registry().SerializeToString(deterministic=True)


# ---------------------------------------------------------------------- TLS


async def test_a_tls_master_refuses_plaintext_clients(secured: Secured) -> None:
    async with grpc.aio.insecure_channel(secured.address) as plain:
        with pytest.raises(grpc.aio.AioRpcError) as e:
            await master_pb2_grpc.MasterStub(plain).GetInfo(master_pb2.GetInfoRequest(), timeout=3)
    assert e.value.code() == grpc.StatusCode.UNAVAILABLE
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.ClientError):
            await session.get(f"http://{secured.master.info.http_address}/health")


async def test_a_client_that_does_not_trust_the_cluster_ca_is_refused(
    secured: Secured, tmp_path: Path
) -> None:
    certs.init_ca(tmp_path / "other")
    stranger = SecuritySettings(tls_ca=str(tmp_path / "other" / "ca.pem"), token=TOKENS["alice"])
    async with channels.aio_channel(secured.address, stranger) as ch:
        with pytest.raises(grpc.aio.AioRpcError) as e:
            await master_pb2_grpc.MasterStub(ch).GetInfo(master_pb2.GetInfoRequest(), timeout=3)
    assert e.value.code() == grpc.StatusCode.UNAVAILABLE


# ---------------------------------------------------------------------- principals


async def test_a_token_names_the_principal(secured: Secured) -> None:
    async with secured.channel(token=TOKENS["alice"]) as ch:
        event, call = await subscribe(ch, pb.FrameworkInfo(name="fw"))
        fw_id = event.subscribed.framework_id
        assert secured.master.core.frameworks[fw_id].principal == "alice"
        status, body = await secured.http_call("GET", f"/api/v1/frameworks/{fw_id}", TOKENS["bob"])
        assert status == 200 and body["principal"] == "alice"
        call.cancel()


async def test_mutual_tls_names_the_principal_by_the_certificate(mutual: Secured) -> None:
    async with mutual.channel("alice") as ch:
        event, call = await subscribe(ch, pb.FrameworkInfo(name="fw"))
        fw_id = event.subscribed.framework_id
        assert mutual.master.core.frameworks[fw_id].principal == "alice"
        call.cancel()
    # The agent's registration is bound to its certificate's principal too.
    (agent,) = mutual.agents
    assert mutual.master.core.agents[agent.agent_id].principal == "agent"
    status, body = await mutual.http_call("GET", "/api/v1/agents", cert="bob")
    assert status == 200 and body["agents"][0]["principal"] == "agent"


async def test_mutual_tls_refuses_a_client_without_a_certificate(mutual: Secured) -> None:
    async with mutual.channel(token=TOKENS["alice"]) as ch:
        with pytest.raises(grpc.aio.AioRpcError) as e:
            await master_pb2_grpc.MasterStub(ch).GetInfo(master_pb2.GetInfoRequest(), timeout=3)
    assert e.value.code() == grpc.StatusCode.UNAVAILABLE  # the handshake itself fails


async def test_calls_without_credentials_are_unauthenticated(secured: Secured) -> None:
    async with secured.channel() as ch:
        error = await refused_subscribe(ch, pb.FrameworkInfo(name="fw"))
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "present a client certificate" in error.details()
    async with secured.channel(token="not-a-token-of-anyone") as ch:
        error = await refused_subscribe(ch, pb.FrameworkInfo(name="fw"))
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "not in this server's credentials file" in error.details()

    status, body = await secured.http_call("GET", "/api/v1/agents")
    assert status == 401 and "authentication required" in body["error"]
    status, body = await secured.http_call("GET", "/api/v1/agents", "wrong")
    assert status == 401
    status, body = await secured.http_call("GET", "/health")  # open, for load balancers
    assert status == 200


# ---------------------------------------------------------------------- frameworks


async def test_a_strangers_subscribe_or_teardown_with_anothers_framework_id_is_refused(
    secured: Secured,
) -> None:
    async with (
        secured.channel(token=TOKENS["alice"]) as alice,
        secured.channel(token=TOKENS["bob"]) as bob,
    ):
        event, call = await subscribe(alice, pb.FrameworkInfo(name="alices"))
        fw_id = event.subscribed.framework_id
        stream_id = event.subscribed.stream_id
        before = snapshot(secured)

        error = await refused_subscribe(bob, pb.FrameworkInfo(name="mine", id=fw_id))

        assert error.code() == grpc.StatusCode.PERMISSION_DENIED
        assert error.details() == (
            f"framework {fw_id} belongs to principal 'alice'; 'bob' may not subscribe as it"
        )
        with pytest.raises(grpc.aio.AioRpcError) as e:
            await scheduler_pb2_grpc.SchedulerStub(bob).Teardown(
                scheduler_pb2.TeardownRequest(
                    header=scheduler_pb2.CallHeader(framework_id=fw_id, stream_id=stream_id)
                )
            )
        assert e.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert "belongs to principal 'alice'; 'bob' may not tear it down" in e.value.details()
        assert snapshot(secured) == before
        assert secured.master.core.frameworks[fw_id].status.value == "connected"
        # A framework may not claim another principal in its FrameworkInfo either.
        error = await refused_subscribe(bob, pb.FrameworkInfo(name="x", principal="alice"))
        assert error.code() == grpc.StatusCode.PERMISSION_DENIED
        call.cancel()


# ---------------------------------------------------------------------- agents


async def test_an_agent_id_the_master_never_issued_is_refused(secured: Secured) -> None:
    before = snapshot(secured)
    async with secured.channel(token=TOKENS["bob"]) as ch:
        error = await raw_register(ch, register_msg("127.0.0.1:1", "ghost-S1"))
    assert isinstance(error, grpc.aio.AioRpcError)
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "agent id ghost-S1 was never issued" in error.details()
    assert snapshot(secured) == before
    assert "ghost-S1" not in secured.master.core.agents


async def test_another_principal_cannot_register_as_an_existing_agent(secured: Secured) -> None:
    (agent,) = secured.agents
    before = snapshot(secured)
    async with secured.channel(token=TOKENS["bob"]) as ch:
        error = await raw_register(ch, register_msg("127.0.0.1:2", agent.agent_id))
    assert isinstance(error, grpc.aio.AioRpcError)
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    assert error.details() == (
        f"agent {agent.agent_id} is registered by principal 'agent'; 'bob' may not register as it"
    )
    assert snapshot(secured) == before
    record = secured.master.core.agents[agent.agent_id]
    assert record.status.value == "connected" and record.info.http_address == agent.http_address


async def test_fake_registrations_are_refused_after_a_burst(tmp_path: Path, pki: Pki) -> None:
    c = await start_secured(tmp_path, pki, agents=0, registration_burst=20, registration_rate=1)
    try:
        async with c.channel(token=TOKENS["bob"]) as ch:
            replies = await asyncio.gather(
                *(
                    raw_register(ch, register_msg(f"10.9.{i // 250}.{i % 250}:1"))
                    for i in range(300)
                )
            )
        limited = [
            r for r in replies
            if isinstance(r, grpc.aio.AioRpcError)
            and r.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        ]  # fmt: skip
        assert len(limited) >= 300 - 21
        assert "too many agent registrations from bob at 127.0.0.1" in limited[0].details()
        assert len(c.master.core.agents) <= 21
    finally:
        await c.master.stop()


# ---------------------------------------------------------------------- maintenance


async def test_an_operator_cannot_sign_maintenance_as_satellite(secured: Secured) -> None:
    (agent,) = secured.agents
    path = f"/api/v1/agents/{agent.agent_id}/deactivate"

    status, body = await secured.http_call(
        "POST", path, TOKENS["alice"], {"by": "satellite", "reason": "x"}
    )

    assert status == 403
    assert "by 'satellite' is not yours to give" in body["error"]
    assert secured.master.core.agents[agent.agent_id].maintenance.mode == master_pb2.ACTIVE

    status, body = await secured.http_call("POST", path, TOKENS["alice"], {"reason": "disk"})
    assert status == 200
    assert body["maintenance"]["by"] == "operator"
    assert body["maintenance"]["principal"] == "alice"
    event = secured.master.core.events[-1]
    assert event.message == "deactivated by operator (alice): disk"

    status, body = await secured.http_call(
        "POST", f"/api/v1/agents/{agent.agent_id}/reactivate", TOKENS["satellite"],
        {"by": "satellite", "reason": "healthy"},
    )  # fmt: skip
    assert status == 200 and body["maintenance"]["by"] == "satellite"


async def test_an_agents_sandbox_api_needs_a_principal(secured: Secured) -> None:
    (agent,) = secured.agents
    ctx = secured.pki.client().client_ssl_context()
    async with aiohttp.ClientSession() as session:
        async with session.get(f"https://{agent.http_address}/state", ssl=ctx) as resp:
            assert resp.status == 401
        async with session.get(f"https://{agent.http_address}/metrics", ssl=ctx) as resp:
            assert resp.status == 200  # open, for Prometheus and Satellite
        headers = {"Authorization": f"Bearer {TOKENS['alice']}"}
        async with session.get(
            f"https://{agent.http_address}/state", ssl=ctx, headers=headers
        ) as resp:
            assert resp.status == 200


async def test_on_loopback_tokens_work_without_tls(tmp_path: Path, pki: Pki) -> None:
    """A loopback master with --credentials and no TLS: gRPC tokens go as metadata."""
    settings = MasterSettings(
        port=0, http_port=0, work_dir=tmp_path / "m", config=FAST,
        security=SecuritySettings(credentials=load_credentials(pki.credentials)),
    )  # fmt: skip
    master = MasterServer(settings)
    await master.start()
    try:
        address = master.info.grpc_address
        alice = SecuritySettings(token=TOKENS["alice"])
        async with channels.aio_channel(address, alice) as ch:
            event, call = await subscribe(ch, pb.FrameworkInfo(name="fw"))
            fw = master.core.frameworks[event.subscribed.framework_id]
            assert fw.principal == "alice"
            call.cancel()

        def get_info() -> Any:  # the CLI's blocking channel; a thread, the master is on our loop
            with channels.channel(address, alice) as ch:
                return master_pb2_grpc.MasterStub(ch).GetInfo(
                    master_pb2.GetInfoRequest(), timeout=3
                )

        assert (await asyncio.to_thread(get_info)).grpc_address == address
        async with channels.aio_channel(address, SecuritySettings()) as ch:
            error = await refused_subscribe(ch, pb.FrameworkInfo(name="fw"))
        assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    finally:
        await master.stop()


async def test_satellite_over_https_signs_its_actions_as_satellite(secured: Secured) -> None:
    """Satellite's HttpCluster (as in its own process): https with the CA, its token."""
    from orbiter.satellite.cluster import HttpCluster
    from orbiter.satellite.policy import Action
    from orbiter.security import settings as security

    (agent,) = secured.agents
    security.configure(secured.pki.client(token=TOKENS["satellite"]))
    cluster = HttpCluster(secured.master.info.http_address)
    try:
        targets = await cluster.targets()
        assert {t.url.split(":")[0] for t in targets} == {"https"}
        await cluster.act(agent.agent_id, Action.DEACTIVATE, "unhealthy")
        (snap,) = await cluster.agents()
        assert snap.taken_out_by == "satellite"
        m = secured.master.core.agents[agent.agent_id].maintenance
        assert (m.by, m.principal) == ("satellite", "satellite")
    finally:
        await cluster.close()
        security.configure(SecuritySettings())
