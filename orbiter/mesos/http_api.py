"""Mesos's HTTP APIs on the master's HTTP server: one core, two wires.

- `/api/v1/scheduler`: Mesos's v1 scheduler API (application/json or
  application/x-protobuf). SUBSCRIBE opens a RecordIO event stream fed by the same
  per-framework outbox as gRPC's Subscribe (`MasterServer.open_framework_stream`); every
  other call carries `Mesos-Stream-Id` and becomes the same state machine call gRPC
  makes, with the same principal checks (`bindings.check_framework_call`). 202 Accepted.
- `/api/v1`: Mesos's operator API ({"type": ...}, JSON) for the calls Orbiter has;
  maintenance goes through the operator API's own `_maintain` (ACLs, signing, registry).
- `/master/state` (and `.json`): Mesos's v0 state; `/version`.

Auth, rate limits and leader-following are the HTTP server's middlewares, as for every
route; the principal is `http_auth.principal_of(request)`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

from orbiter import httperrors
from orbiter.errors import InvalidCall, OrbiterError, StaleStream
from orbiter.master.effects import Effect
from orbiter.mesos import convert, operator
from orbiter.proto import scheduler_pb2
from orbiter.security import bindings, http_auth

if TYPE_CHECKING:
    from orbiter.master.http_api import HttpServer
    from orbiter.master.server import MasterServer

log = logging.getLogger("orbiter.master")

JSON = "application/json"
PROTOBUF = "application/x-protobuf"
STREAM_ID = "Mesos-Stream-Id"
CLOSED_POLL_SECONDS = 1.0
"""How often an idle event stream checks whether its client went away (aiohttp does not
cancel the handler): a closed stream marks the framework disconnected within this."""

OPERATOR_CALLS = (
    "GET_HEALTH",
    "GET_VERSION",
    "GET_STATE",
    "GET_AGENTS",
    "GET_FRAMEWORKS",
    "GET_TASKS",
    "GET_MAINTENANCE_STATUS",
    "DRAIN_AGENT",
    "DEACTIVATE_AGENT",
    "REACTIVATE_AGENT",
    "MARK_AGENT_GONE",
    "SUBSCRIBE",
)

ROUTES = (
    ("POST", "/api/v1/scheduler"),
    ("POST", "/api/v1"),
    ("GET", "/master/state"),
    ("GET", "/master/state.json"),
    ("GET", "/version"),
)


def _error(status: int, message: str) -> web.Response:
    return httperrors.error_response(status, message)


def _refused(e: OrbiterError) -> web.Response:
    # Mesos answers a call on a stream that is not the framework's current one with 400.
    return _error(400 if isinstance(e, StaleStream) else e.code.http_status, e.message)


class MesosApi:
    def __init__(self, http: HttpServer) -> None:
        self.http = http

    @property
    def server(self) -> MasterServer:
        return self.http.server

    def add_routes(self, app: web.Application) -> None:
        r = app.router
        r.add_post("/api/v1/scheduler", self.scheduler)
        r.add_post("/api/v1", self.operator)
        r.add_get("/master/state", self.state)
        r.add_get("/master/state.json", self.state)
        r.add_get("/version", self.version)

    # ------------------------------------------------------------------ scheduler API

    async def scheduler(self, request: web.Request) -> web.StreamResponse:
        ctype = request.content_type
        if ctype not in (JSON, PROTOBUF):
            return _error(415, f"Content-Type {ctype!r} is not supported; use {JSON} or {PROTOBUF}")
        raw = await request.read()
        try:
            if ctype == PROTOBUF:
                body = convert.protobuf_call(raw)
            else:
                body = httperrors.parse_json(raw.decode("utf-8", "replace"))
            call = convert.call_from_mesos(body)
        except httperrors.BadJson as e:
            return _error(400, str(e))
        except OrbiterError as e:
            return _refused(e)
        if call.type == "SUBSCRIBE":
            return await self._subscribe(request, call, ctype)
        stream_id = request.headers.get(STREAM_ID, "")
        if not stream_id:
            return _error(
                400,
                f"the {STREAM_ID} header is required on every call but SUBSCRIBE: "
                "the one the SUBSCRIBE response carried",
            )
        header = scheduler_pb2.CallHeader(framework_id=call.framework_id, stream_id=stream_id)
        core = self.server.core
        try:
            method, args = self._dispatch(call, header)
            bindings.check_framework_call(
                core, header, http_auth.principal_of(request), method.__name__
            )
            if call.type == "ACCEPT":
                self._check_allocations(call)
                self._check_principals(call)
                self._check_volumes(call)
            effects = method(*args)
        except OrbiterError as e:
            self.server.count_refusal(e, "http")
            return _refused(e)
        self.server.submit(effects)
        return web.Response(status=202)

    def _dispatch(
        self, call: convert.Call, header: scheduler_pb2.CallHeader
    ) -> tuple[Callable[..., list[Effect]], tuple[Any, ...]]:
        """The state machine method and its arguments, as grpc_api.SchedulerService calls it."""
        core = self.server.core
        now = time.time()
        if call.type == "ACCEPT":
            return core.accept, (header, call.offer_ids, call.operations, call.filters, now)
        if call.type == "DECLINE":
            return core.decline, (header, call.offer_ids, call.filters, now)
        if call.type == "REVIVE":
            return core.revive, (header, call.roles)
        if call.type == "SUPPRESS":
            return core.suppress, (header, call.roles)
        if call.type == "KILL":
            return core.kill, (header, call.task_id, call.agent_id, call.grace_period, now)
        if call.type == "ACKNOWLEDGE":
            return core.acknowledge, (header, call.acknowledgements)
        if call.type == "RECONCILE":
            return core.reconcile, (header, call.reconcile, now)
        if call.type == "MESSAGE":
            return core.message, (header, call.agent_id, call.executor_id, call.data)
        if call.type == "TEARDOWN":
            return core.teardown, (header, now)

        def no_effect(header: scheduler_pb2.CallHeader) -> list[Effect]:
            core._caller(header)  # still only from the framework's current stream
            return []

        return no_effect, (header,)  # REQUEST, ACCEPT/DECLINE_INVERSE_OFFERS

    def _check_allocations(self, call: convert.Call) -> None:
        """A resource's allocation_info role must be the role its offers were made to
        (Mesos's rule for MULTI_ROLE frameworks); unknown offers are the core's to refuse."""
        offers = [self.server.core.offers.get(o) for o in call.offer_ids]
        roles = {(o.role or "*") for o in offers if o is not None}
        for role, where in call.allocations:
            if roles and role not in roles:
                raise InvalidCall(
                    f"{where}.role {role!r} is not the role the offers were made to "
                    f"({', '.join(sorted(roles))})"
                )

    def _check_principals(self, call: convert.Call) -> None:
        """A principal a RESERVE or CREATE names must be the framework's (Mesos's rule); the
        master records the framework's principal whatever the call says."""
        fw = self.server.core.frameworks.get(call.framework_id)
        own = (fw.principal or fw.info.principal) if fw is not None else ""
        for principal, where in call.principals:
            if own and principal != own:
                raise InvalidCall(f"{where} {principal!r} is not the framework's principal {own!r}")

    def _check_volumes(self, call: convert.Call) -> None:
        """A task's persistent volume must be the one on the agent, as Mesos compares the
        whole resource: the same container_path and size (Orbiter's own API names only the
        persistence id; the master then fills in the rest)."""
        core = self.server.core
        offer = next((core.offers.get(o) for o in call.offer_ids if o in core.offers), None)
        agent = core.agents.get(offer.agent_id) if offer is not None else None
        if agent is None:
            return
        for op in call.operations:
            for task in op.launch.task_infos:
                for v in task.volumes:
                    held = agent.volumes.get(v.persistence_id)
                    if held is None:
                        continue  # not there (yet): the master's to refuse or create first
                    if held.container_path != v.container_path or held.size != v.size:
                        raise InvalidCall(
                            f"task {task.task_id}: persistent volume {v.persistence_id!r} "
                            f"is {held.size:g} MB at {held.container_path!r} on agent "
                            f"{agent.id}, not {v.size:g} MB at {v.container_path!r}"
                        )

    async def _subscribe(
        self, request: web.Request, call: convert.Call, ctype: str
    ) -> web.StreamResponse:
        accept = request.headers.get("Accept", ctype)
        if PROTOBUF in accept:
            media = PROTOBUF
        elif JSON in accept or "*/*" in accept:
            media = JSON
        else:
            return _error(406, f"Accept {accept!r}: the event stream is {JSON} or {PROTOBUF}")
        server = self.server
        core = server.core
        assert call.info is not None
        info = call.info
        for role in call.suppressed_roles:
            if role not in (tuple(info.roles) or ("*",)):
                return _error(
                    400, f"subscribe.suppressed_roles: {role!r} is not one of the framework's roles"
                )
        try:
            fw_id, stream_id, effects = core.subscribe(
                info, time.time(), http_auth.principal_of(request)
            )
        except OrbiterError as e:
            server.count_refusal(e, "http")
            return _refused(e)
        header = scheduler_pb2.CallHeader(framework_id=fw_id, stream_id=stream_id)
        if call.suppressed_roles:
            effects += core.suppress(header, call.suppressed_roles)
        box = server.open_framework_stream(fw_id, stream_id)
        server.submit(effects)
        log.info("framework %s (%s) subscribed over Mesos's HTTP API", fw_id, info.name)
        response = web.StreamResponse(
            status=200, headers={STREAM_ID: stream_id, "Content-Type": media}
        )
        response.enable_chunked_encoding()

        def encode(event: dict[str, Any]) -> bytes:
            if media == PROTOBUF:
                return convert.recordio(convert.protobuf_event(event))
            return convert.recordio(httperrors.json_text(event).encode())

        interval = core.config.framework_heartbeat_interval
        try:
            await response.prepare(request)
            next_beat = time.monotonic() + interval
            while True:
                wait = max(0.0, min(CLOSED_POLL_SECONDS, next_beat - time.monotonic()))
                try:
                    async with asyncio.timeout(wait):  # not wait_for: see server.py
                        item = await box.queue.get()
                except TimeoutError:
                    transport = request.transport
                    if transport is None or transport.is_closing():
                        break
                    if time.monotonic() >= next_beat:
                        await response.write(encode({"type": "HEARTBEAT"}))
                        next_beat = time.monotonic() + interval
                    continue
                from orbiter.master.server import Close

                if isinstance(item, Close):
                    await response.write(
                        encode({"type": "ERROR", "error": {"message": item.message}})
                    )
                    break
                assert isinstance(item, scheduler_pb2.Event)
                for event in convert.events_to_mesos(item):
                    await response.write(encode(event))
            with contextlib.suppress(ConnectionError, RuntimeError):
                await response.write_eof()
        except (ConnectionError, RuntimeError):
            pass  # the client went away
        finally:
            server.close_framework_stream(fw_id, box)
            log.info("framework %s Mesos stream %s closed", fw_id, stream_id[:8])
        return response

    # ------------------------------------------------------------------ operator API

    async def operator(self, request: web.Request) -> web.StreamResponse:
        if request.content_type != JSON:
            return _error(
                415,
                f"Content-Type {request.content_type!r} is not supported by "
                f"Orbiter's Mesos operator API; use {JSON}",
            )
        try:
            body = await httperrors.read_json(request)
        except httperrors.BadJson as e:
            return _error(400, str(e))
        if not isinstance(body, dict):
            return _error(400, "the call must be a JSON object with a type")
        kind = body.get("type")
        if kind not in OPERATOR_CALLS:
            return _error(
                400,
                f"operator call type {kind!r} is not one Orbiter answers; use one "
                f"of {', '.join(OPERATOR_CALLS)}",
            )
        core = self.server.core
        key = kind.lower()
        try:
            if kind == "GET_HEALTH":
                return _reply(kind, {"healthy": True}, body)
            if kind == "GET_VERSION":
                return _reply(kind, {"version_info": operator.version_info()}, body)
            if kind == "GET_STATE":
                return _reply(kind, operator.get_state(core), body)
            if kind == "GET_AGENTS":
                return _reply(kind, operator.get_agents(core), body)
            if kind == "GET_FRAMEWORKS":
                return _reply(kind, operator.get_frameworks(core), body)
            if kind == "GET_TASKS":
                return _reply(kind, operator.get_tasks(core), body)
            if kind == "GET_MAINTENANCE_STATUS":
                return _reply(kind, operator.get_maintenance_status(core), body)
            if kind == "SUBSCRIBE":
                convert._obj(body, "", ("type",))
                return await self._operator_events(request)
            args = convert._obj(body, "", ("type", key))
            return await self._maintenance(request, kind, args.get(key))
        except OrbiterError as e:
            return _error(e.code.http_status, e.message)

    async def _maintenance(self, request: web.Request, kind: str, args: Any) -> web.Response:
        """DRAIN/DEACTIVATE/REACTIVATE_AGENT, MARK_AGENT_GONE: through the operator API's
        own maintenance path (ACLs, signed by the principal, written to the registry)."""
        key = kind.lower()
        allowed = (
            ("agent_id", "max_grace_period", "mark_gone")
            if kind == "DRAIN_AGENT"
            else ("agent_id",)
        )
        a = convert._obj(args if args is not None else {}, key, allowed)
        agent_id = convert._id(a.get("agent_id"), f"{key}.agent_id")
        if not agent_id:
            raise OrbiterError(f"{key}.agent_id is required")
        why = f"{kind} (Mesos operator API)"
        if kind == "DRAIN_AGENT":
            if a.get("mark_gone"):
                raise convert.Unsupported(
                    f"{key}.mark_gone: Orbiter does not mark a drained agent gone by itself; "
                    "call MARK_AGENT_GONE once it is drained"
                )
            grace = 30.0
            if "max_grace_period" in a:
                grace = convert._seconds(a["max_grace_period"], f"{key}.max_grace_period")
            response = await self.http._maintain(
                request, "drain", agent_id, {"grace": grace, "reason": why}
            )
        else:
            action = {
                "DEACTIVATE_AGENT": "deactivate",
                "REACTIVATE_AGENT": "reactivate",
                "MARK_AGENT_GONE": "remove",
            }[kind]
            response = await self.http._maintain(request, action, agent_id, {"reason": why})
        if response.status != 200:
            return response
        return web.Response(status=200)

    async def _operator_events(self, request: web.Request) -> web.StreamResponse:
        """Mesos's operator event stream: SUBSCRIBED with the state, then TASK_ADDED,
        TASK_UPDATED, AGENT_ADDED, AGENT_REMOVED, FRAMEWORK_ADDED/UPDATED/REMOVED as the
        state changes (compared each poll; the state machine stays as it is), and HEARTBEAT."""
        core = self.server.core
        interval = core.config.framework_heartbeat_interval
        response = web.StreamResponse(status=200, headers={"Content-Type": JSON})
        response.enable_chunked_encoding()

        async def send(event: dict[str, Any]) -> None:
            await response.write(convert.recordio(httperrors.json_text(event).encode()))

        seen = _Snapshot.of(core)
        try:
            await response.prepare(request)
            await send(
                {
                    "type": "SUBSCRIBED",
                    "subscribed": {
                        "get_state": operator.get_state(core),
                        "heartbeat_interval_seconds": interval,
                    },
                }
            )
            next_beat = time.monotonic() + interval
            while not self.server.stopped.is_set():
                await asyncio.sleep(0.25)
                transport = request.transport
                if transport is None or transport.is_closing() or self.server.core is None:
                    break
                now_seen = _Snapshot.of(self.server.core)
                for event in seen.changes(now_seen, self.server.core):
                    await send(event)
                seen = now_seen
                if time.monotonic() >= next_beat:
                    await send({"type": "HEARTBEAT"})
                    next_beat = time.monotonic() + interval
            with contextlib.suppress(ConnectionError, RuntimeError):
                await response.write_eof()
        except (ConnectionError, RuntimeError):
            pass
        return response

    # ------------------------------------------------------------------ v0

    async def state(self, request: web.Request) -> web.Response:
        return web.Response(
            text=httperrors.json_text(
                operator.state_v0(self.server.core, self.server.info.http_address)
            ),
            content_type=JSON,
        )

    async def version(self, request: web.Request) -> web.Response:
        return web.Response(text=httperrors.json_text(operator.version_info()), content_type=JSON)


def _reply(kind: str, payload: dict[str, Any], body: dict[str, Any]) -> web.Response:
    convert._obj(body, "", ("type",))
    return web.Response(
        text=httperrors.json_text({"type": kind, kind.lower(): payload}), content_type=JSON
    )


class _Snapshot:
    """What the operator event stream compares: task states, agents, framework states."""

    def __init__(self, tasks: dict, agents: set, frameworks: dict) -> None:
        self.tasks = tasks
        self.agents = agents
        self.frameworks = frameworks

    @staticmethod
    def of(core: Any) -> _Snapshot:
        from orbiter.master.state import AgentStatus

        tasks = {}
        for fw in core.frameworks.values():
            for t in fw.tasks.values():
                tasks[(fw.id, t.id)] = t.state
        agents = {a.id for a in core.agents.values() if a.status is not AgentStatus.GONE}
        frameworks = {f.id: f.status for f in core.frameworks.values()}
        return _Snapshot(tasks, agents, frameworks)

    def changes(self, new: _Snapshot, core: Any) -> list[dict[str, Any]]:
        from orbiter.master.state import FrameworkStatus

        out: list[dict[str, Any]] = []
        for fw_id, status in new.frameworks.items():
            fw = core.frameworks[fw_id]
            if fw_id not in self.frameworks:
                out.append(
                    {
                        "type": "FRAMEWORK_ADDED",
                        "framework_added": {"framework": operator.framework_to_mesos(fw)},
                    }
                )
            elif status is FrameworkStatus.COMPLETED and self.frameworks[fw_id] != status:
                out.append(
                    {
                        "type": "FRAMEWORK_REMOVED",
                        "framework_removed": {
                            "framework_info": operator.framework_to_mesos(fw)["framework_info"]
                        },
                    }
                )
            elif self.frameworks[fw_id] != status:
                out.append(
                    {
                        "type": "FRAMEWORK_UPDATED",
                        "framework_updated": {"framework": operator.framework_to_mesos(fw)},
                    }
                )
        for agent_id in sorted(new.agents - self.agents):
            out.append(
                {
                    "type": "AGENT_ADDED",
                    "agent_added": {"agent": operator.agent_to_mesos(core.agents[agent_id])},
                }
            )
        for agent_id in sorted(self.agents - new.agents):
            out.append(
                {"type": "AGENT_REMOVED", "agent_removed": {"agent_id": {"value": agent_id}}}
            )
        for key, state in new.tasks.items():
            if self.tasks.get(key) == state:
                continue
            task = core.frameworks[key[0]].tasks[key[1]]
            if key not in self.tasks:
                out.append(
                    {"type": "TASK_ADDED", "task_added": {"task": operator.task_to_mesos(task)}}
                )
            else:
                status = task.status
                out.append(
                    {
                        "type": "TASK_UPDATED",
                        "task_updated": {
                            "framework_id": {"value": key[0]},
                            "state": operator.task_to_mesos(task)["state"],
                            "status": convert.status_to_mesos(status) if status is not None else {},
                        },
                    }
                )
        return out
