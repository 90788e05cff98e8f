"""The two ways Satellite reaches the cluster: inside the leading master, or
over the master's operator HTTP API (`orbiter satellite --master ...`)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import aiohttp

from orbiter.alerts.silences import from_api
from orbiter.httpconfig import TLSConfig
from orbiter.proto import master_pb2
from orbiter.satellite.durable_state import Event
from orbiter.satellite.policy import Action, AgentSnapshot, Pin
from orbiter.satellite.scrape import Target
from orbiter.satellite.series import labels_of
from orbiter.security import settings as security

if TYPE_CHECKING:
    from orbiter.master.server import MasterServer

_MODES = {
    master_pb2.ACTIVE: "active",
    master_pb2.DEACTIVATED: "deactivated",
    master_pb2.DRAINING: "draining",
    master_pb2.DRAINED: "drained",
}
DRAIN_GRACE = 30.0


def _tls() -> TLSConfig | None:
    """With TLS on, targets are https and verified against the cluster's CA."""
    s = security.current()
    if not s.client_tls:
        return None
    return TLSConfig(ca_file=s.tls_ca, cert_file=s.tls_cert, key_file=s.tls_key)


def operator_event(view: dict[str, Any]) -> Event:
    """A master's event view of an operator's action, as a line of Satellite's decision log."""
    return Event(
        float(view["time"]),
        "",
        str(view["agent_id"]),
        str(view["action"]),
        "done",
        str(view["message"]),
        "operator",
        str(view.get("principal", "")),
    )


def agent_target(agent_id: str, http_address: str) -> Target:
    return Target(
        security.current().url(http_address, "/metrics"),
        labels_of({"job": "agent", "instance": http_address, "agent": agent_id}),
        tls=_tls(),
    )


def master_target(http_address: str) -> Target:
    return Target(
        security.current().url(http_address, "/metrics"),
        labels_of({"job": "master", "instance": http_address}),
        tls=_tls(),
    )


class MasterCluster:
    """Satellite inside the master: reads its state, acts through its state machine."""

    def __init__(self, server: MasterServer) -> None:
        self.server = server

    async def targets(self) -> list[Target]:
        core = self.server.core
        assert core is not None
        out = [master_target(self.server.info.http_address)]
        for agent in core.agents.values():
            if agent.status.value != "gone":
                out.append(agent_target(agent.id, agent.info.http_address))
        return out

    async def agents(self) -> list[AgentSnapshot]:
        core = self.server.core
        assert core is not None
        out = []
        for a in core.agents.values():
            if a.status.value == "gone":
                continue
            pin = Pin(a.pin.state, a.pin.until, a.pin.reason) if a.pin is not None else None
            out.append(
                AgentSnapshot(
                    id=a.id,
                    maintenance=_MODES[a.maintenance.mode],
                    taken_out_by=a.maintenance.by if a.maintenance.mode else "",
                    status=a.status.value,
                    pin=pin,
                )
            )
        return out

    async def silences(self) -> list[master_pb2.Silence]:
        core = self.server.core
        assert core is not None
        return list(core.silences.values())

    async def operator_actions(self) -> list[Event]:
        """The master's log of operators' actions (deactivate, pin, silence add...)."""
        from orbiter.master import views

        core = self.server.core
        assert core is not None
        return [operator_event(views.event_view(e)) for e in core.events if e.action]

    async def act(self, agent_id: str, action: Action, reason: str) -> None:
        core = self.server.core
        assert core is not None
        now = time.time()
        if action is Action.DEACTIVATE:
            effects = core.deactivate(agent_id, "satellite", reason, now)
        elif action is Action.DRAIN:
            effects = core.drain(agent_id, DRAIN_GRACE, "satellite", reason, now)
        else:
            effects = core.reactivate(agent_id, "satellite", reason, now)
        self.server.submit(effects)
        await self.server.durable()


class HttpCluster:
    """Satellite on its own: the master's operator API is its view and its hands.

    Targets come from the master's http_sd endpoint (small, cheap to poll every
    second); the agents' maintenance state, which the safety policy decides on,
    from /api/v1/agents once a round.
    """

    def __init__(self, http_address: str) -> None:
        self.base = security.current().url(http_address)
        self.http_address = http_address
        self._session: aiohttp.ClientSession | None = None

    def follow(self, http_address: str) -> None:
        """Talk to another master (a new leader) from now on."""
        self.http_address = http_address
        self.base = security.current().url(http_address)

    def _s(self) -> aiohttp.ClientSession:
        if self._session is None:
            s = security.current()  # the CA, and the Satellite principal's token
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=10),
                headers=s.auth_headers(),
                connector=aiohttp.TCPConnector(ssl=s.client_ssl_context() or True),
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def _agents(self) -> list[dict[str, Any]]:
        async with self._s().get(f"{self.base}/api/v1/agents") as resp:
            resp.raise_for_status()
            return (await resp.json())["agents"]

    async def targets(self) -> list[Target]:
        async with self._s().get(f"{self.base}/api/v1/http_sd") as resp:
            resp.raise_for_status()
            groups = await resp.json()
        out = []
        for group in groups:
            labels = group["labels"]
            for address in group["targets"]:
                if labels.get("job") == "master":
                    out.append(master_target(address))
                else:
                    out.append(agent_target(labels["agent"], address))
        return out

    async def agents(self) -> list[AgentSnapshot]:
        out = []
        for a in await self._agents():
            if a["status"] == "gone":
                continue
            m = a["maintenance"]
            pin = a.get("pin")
            out.append(
                AgentSnapshot(
                    id=a["id"],
                    maintenance=m["mode"],
                    taken_out_by=m["by"] if m["mode"] != "active" else "",
                    status=a["status"],
                    pin=Pin(pin["state"], pin["until"], pin["reason"]) if pin else None,
                )
            )
        return out

    async def silences(self) -> list[master_pb2.Silence]:
        async with self._s().get(f"{self.base}/api/v2/silences") as resp:
            resp.raise_for_status()
            return [from_api(view) for view in await resp.json()]

    async def operator_actions(self) -> list[Event]:
        async with self._s().get(f"{self.base}/api/v1/events") as resp:
            resp.raise_for_status()
            events = (await resp.json())["events"]
        return [operator_event(e) for e in events if e.get("action")]

    async def act(self, agent_id: str, action: Action, reason: str) -> None:
        body: dict[str, Any] = {"by": "satellite", "reason": reason}
        if action is Action.DRAIN:
            body["grace"] = DRAIN_GRACE
        url = f"{self.base}/api/v1/agents/{agent_id}/{action.value}"
        async with self._s().post(url, json=body) as resp:
            if resp.status >= 400:
                raise RuntimeError((await resp.json()).get("error", f"HTTP {resp.status}"))


__all__ = ["HttpCluster", "MasterCluster"]
