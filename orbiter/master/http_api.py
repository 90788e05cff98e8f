"""The master's operator HTTP API (JSON), /metrics and the web UI's files.

Shares the master's asyncio loop (aiohttp). Refusals are JSON bodies
{"error": ...} with a 4xx status, made in one place (`_error`). Every JSON answer
to a GET carries an ETag; a poll that sends it back in If-None-Match gets 304
and no body while nothing changed (how the web UI stays live cheaply).
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
import urllib.parse
from typing import TYPE_CHECKING, Any

import aiohttp
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from orbiter import httperrors
from orbiter.errors import OrbiterError
from orbiter.master import roles_api, silence_api, views
from orbiter.master.openapi import (
    DOCUMENT,
    MAX_DRAIN_GRACE,
    MAX_PIN_SECONDS,
    MIN_PIN_SECONDS,
)
from orbiter.mesos.http_api import MesosApi
from orbiter.proto import messages_pb2
from orbiter.resources import InvalidResources, Resources
from orbiter.satellite import http_api as satellite_http
from orbiter.satellite.process import SatelliteUnavailable
from orbiter.security import acl, bindings, http_auth
from orbiter.security.ratelimit import RateLimited
from orbiter.webui import WebUi, is_asset

if TYPE_CHECKING:
    from orbiter.master.effects import Effect
    from orbiter.master.server import MasterServer

log = logging.getLogger("orbiter.master")

VALID_STATES = frozenset(messages_pb2.TaskState.keys())
MAX_BODY = 1024 * 1024
"""The largest request body read (aiohttp's default, said here): maintenance and silences
take a few hundred bytes, an Alertmanager webhook batch some kilobytes. Over it: 413."""


def _json(data: Any, status: int = 200) -> web.Response:
    # Compact: with indent, json falls back to its pure-Python encoder, ~10x slower,
    # and the master's loop serialises 1,000 agents for every Satellite target sync.
    # Strict: a NaN or Infinity (a registry written before the checks) is null.
    return web.Response(
        text=httperrors.json_text(data), status=status, content_type="application/json"
    )


def _error(status: int, message: str) -> web.Response:
    return _json({"error": message}, status)


class HttpServer:
    def __init__(self, server: MasterServer) -> None:
        self.server = server
        # json_errors outermost: auth's refusals are JSON too. Rate limits after auth:
        # they are per principal.
        self._authenticate = http_auth.middleware(lambda: server.security)
        self.app = web.Application(
            middlewares=[
                httperrors.json_errors,
                self._auth,
                self._rate_limit,
                self._follow_leader,
                http_auth.acl_middleware(lambda: server.security),
                self._etag,
            ],
            client_max_size=MAX_BODY,
        )
        r = self.app.router
        WebUi().add_routes(self.app)
        r.add_get("/health", self.health)
        r.add_get("/metrics", self.metrics)
        r.add_get("/state", self.state)
        r.add_get("/api/v1/openapi.json", self.openapi)
        r.add_get("/api/v1/agents", self.agents)
        r.add_get("/api/v1/http_sd", self.http_sd)
        r.add_get("/api/v1/agents/{agent_id}", self.agent)
        r.add_get("/api/v1/frameworks", self.frameworks)
        r.add_get("/api/v1/frameworks/{framework_id}", self.framework)
        r.add_get("/api/v1/tasks", self.tasks)
        r.add_get("/api/v1/tasks/{task_id}", self.task)
        r.add_post("/api/v1/tasks/{task_id}/kill", self.kill)
        r.add_get("/api/v1/tasks/{task_id}/files", self.sandbox)
        r.add_get("/api/v1/tasks/{task_id}/files/read", self.sandbox)
        r.add_get("/api/v1/summary", self.summary)
        r.add_post("/api/v1/agents/{agent_id}/deactivate", self.deactivate)
        r.add_post("/api/v1/agents/{agent_id}/drain", self.drain)
        r.add_post("/api/v1/agents/{agent_id}/reactivate", self.reactivate)
        r.add_post("/api/v1/agents/{agent_id}/pin", self.pin)
        r.add_delete("/api/v1/agents/{agent_id}/pin", self.unpin)
        r.add_post("/api/v1/agents/{agent_id}/remove", self.remove)
        r.add_post("/api/v1/agents/{agent_id}/reserve", self.reserve)
        r.add_post("/api/v1/agents/{agent_id}/unreserve", self.unreserve)
        r.add_post("/api/v1/frameworks/{framework_id}/teardown", self.teardown)
        r.add_get("/api/v1/events", self.events)
        silence_api.add_routes(self.app, server)
        # Mesos's scheduler and operator APIs, on the same core (orbiter/mesos).
        MesosApi(self).add_routes(self.app)
        roles_api.add_routes(self.app, server)
        if server.satellite is not None:
            satellite_http.add_routes(self.app, server.satellite)
        elif server.satellite_process is not None:
            for method, path in satellite_http.ROUTES:
                r.add_route(method, path, self._to_satellite)
        self._runner: web.AppRunner | None = None
        self._client: aiohttp.ClientSession | None = None

    async def start(self, host: str, port: int) -> None:
        self._runner = httperrors.JsonErrorsRunner(self.app, access_log=None, shutdown_timeout=2.0)
        await self._runner.setup()
        site = web.TCPSite(
            self._runner,
            host,
            port,
            reuse_address=True,
            ssl_context=self.server.security.server_ssl_context(),
        )
        try:
            await site.start()
        except OSError as e:
            await self._runner.cleanup()
            raise OSError(
                f"cannot listen on {host}:{port} for HTTP ({e.strerror}); pick another with "
                "--http-port"
            ) from None

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self._client is not None:
            await self._client.close()

    @property
    def core(self):
        return self.server.core

    @web.middleware
    async def _auth(self, request: web.Request, handler: Any) -> web.StreamResponse:
        """Authentication, except for the web UI's files: the page that asks for a token
        must load without one (the files hold no cluster data; the API calls need it)."""
        if request.method == "GET" and is_asset(request.path):
            return await handler(request)
        return await self._authenticate(request, handler)

    @web.middleware
    async def _etag(self, request: web.Request, handler: Any) -> web.StreamResponse:
        """An ETag on every JSON answer to a GET; 304 when the client already has it."""
        response = await handler(request)
        if (
            request.method != "GET"
            or response.status != 200
            or not isinstance(response, web.Response)
            or response.content_type != "application/json"
            or not isinstance(response.body, bytes)
        ):
            return response
        etag = '"' + hashlib.blake2b(response.body, digest_size=12).hexdigest() + '"'
        if etag in request.headers.get("If-None-Match", ""):
            return web.Response(status=304, headers={"ETag": etag})
        response.headers["ETag"] = etag
        return response

    @web.middleware
    async def _rate_limit(self, request: web.Request, handler: Any) -> web.StreamResponse:
        """429 with Retry-After for a client over master.api_rate; /health and /metrics
        (load balancers, Prometheus) are never limited."""
        if request.path not in http_auth.OPEN_PATHS:
            principal = http_auth.principal_of(request)
            try:
                self.server.api_calls.admit(principal, request.remote or "", time.monotonic())
            except RateLimited as e:
                self.server.count_refusal(e, "http")
                response = _error(e.code.http_status, e.message)
                response.headers["Retry-After"] = e.retry_after_header
                return response
        return await handler(request)

    @web.middleware
    async def _follow_leader(self, request: web.Request, handler: Any) -> web.StreamResponse:
        """A standby answers /health and /metrics itself and sends the rest to the leader."""
        server = self.server
        if server.core is not None and not server.paused:
            return await handler(request)
        if request.path in ("/health", "/metrics"):
            return await handler(request)
        if server.core is not None:  # leading, but cut off from ZooKeeper
            return _error(503, server.not_acting_reason())
        leader = server.leader
        if leader is None or leader.id == server.info.id:
            return _error(503, server.not_acting_reason())
        raise web.HTTPTemporaryRedirect(server.security.url(leader.http_address, request.path_qs))

    async def health(self, request: web.Request) -> web.Response:
        server = self.server
        leader = server.leader
        body: dict[str, Any] = {
            "status": "ok",
            "role": server.role,
            "leader": server.core is not None,
            # False while a leader is cut off from ZooKeeper and holds everything back.
            "acting": server.core is not None and not server.paused,
            "master_id": server.info.id,
            # This master's own gRPC address: a client that dialled the HTTP port by
            # mistake (`--master HOST:5051`) is told which port to use.
            "grpc_address": server.info.grpc_address,
        }
        if leader is not None:
            body["leading_master"] = {
                "id": leader.id,
                "grpc_address": leader.grpc_address,
                "http_address": leader.http_address,
            }
        return _json(body)

    async def events(self, request: web.Request) -> web.Response:
        """The master's recent cluster events (agents registered, unreachable, removed...)."""
        return _json({"events": [views.event_view(e) for e in self.core.events]})

    async def remove(self, request: web.Request) -> web.Response:
        return await self._maintain(request, "remove")

    async def metrics(self, request: web.Request) -> web.Response:
        body = generate_latest(self.server.metrics.registry)
        child = self.server.satellite_process
        if child is not None and child.running:
            # Satellite's own metrics, as when it ran inside the master: its last copy
            # (at most a second or so old; orbiter_master_satellite_metrics_age_seconds).
            body += child.metrics_text
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def _to_satellite(self, request: web.Request) -> web.Response:
        """Forward a Satellite API call to the Satellite process this master runs."""
        child = self.server.satellite_process
        assert child is not None
        body = await request.read() if request.method == "POST" else None
        try:
            status, data, content_type = await child.request(
                request.method, request.path_qs, body, content_type=request.content_type,
                principal=http_auth.principal_of(request),
            )  # fmt: skip
        except SatelliteUnavailable as e:
            return _error(503, f"{e}; it is started again by itself, retry shortly")
        return web.Response(body=data, status=status, content_type=content_type)

    async def state(self, request: web.Request) -> web.Response:
        return _json(views.state_view(self.core))

    async def openapi(self, request: web.Request) -> web.Response:
        return _json(DOCUMENT)

    async def agents(self, request: web.Request) -> web.Response:
        return _json({"agents": [views.agent_view(a) for a in self.core.agents.values()]})

    async def http_sd(self, request: web.Request) -> web.Response:
        """What to scrape, for Prometheus's http_sd_configs and Satellite: cheap to poll."""
        http = self.server.info.http_address
        return web.Response(
            text=json.dumps(views.http_sd_view(http, self.core.agents.values())),
            content_type="application/json",
        )

    async def agent(self, request: web.Request) -> web.Response:
        agent_id = request.match_info["agent_id"]
        agent = self.core.agents.get(agent_id)
        if agent is None:
            return _error(404, f"no agent {agent_id!r}; list agents with `orbiter agents`")
        return _json(views.agent_view(agent))

    async def frameworks(self, request: web.Request) -> web.Response:
        return _json(
            {"frameworks": [views.framework_view(f) for f in self.core.frameworks.values()]}
        )

    async def framework(self, request: web.Request) -> web.Response:
        fw_id = request.match_info["framework_id"]
        fw = self.core.frameworks.get(fw_id)
        if fw is None:
            return _error(404, f"no framework {fw_id!r}; list them with `orbiter frameworks`")
        return _json(views.framework_view(fw))

    async def tasks(self, request: web.Request) -> web.Response:
        q = request.query
        unknown = set(q) - {"framework_id", "agent_id", "state"}
        if unknown:
            return _error(
                400,
                f"unknown query parameter(s) {', '.join(sorted(unknown))}; "
                "use framework_id, agent_id, state",
            )
        state = q.get("state", "")
        if state and state not in VALID_STATES:
            return _error(
                400,
                f"state {state!r} is not a task state; use one of "
                + ", ".join(sorted(VALID_STATES)),
            )
        return _json(
            {
                "tasks": views.tasks_view(
                    self.core, q.get("framework_id", ""), q.get("agent_id", ""), state
                )
            }
        )

    async def task(self, request: web.Request) -> web.Response:
        task_id = request.match_info["task_id"]
        tasks = views.tasks_view(self.core, task_id=task_id)
        if not tasks:
            return _error(404, f"no task {task_id!r}; list tasks with `orbiter tasks`")
        return _json({"tasks": tasks})

    async def kill(self, request: web.Request) -> web.Response:
        """Kill a live task for an operator; the answer is the task as it is now (the
        TASK_KILLED follows when the agent reports it)."""
        task_id = request.match_info["task_id"]
        principal = http_auth.principal_of(request)
        try:
            b = await self._body(request, {"framework_id": str, "grace": (int, float)})
            owners = [
                fw for fw in self.core.frameworks.values()
                if task_id in fw.tasks and b.get("framework_id", fw.id) == fw.id
            ]  # fmt: skip
            if len(owners) == 1:  # else operator_kill says what is wrong
                bindings.check_kill(self.core.config.acls, owners[0].id, owners[0].principal,
                                    principal)  # fmt: skip
            grace = b.get("grace")
            if grace is not None and not 0 <= grace <= MAX_DRAIN_GRACE:  # before float()
                raise OrbiterError(
                    f"grace must be between 0 and {MAX_DRAIN_GRACE:.0f} seconds, got {grace}"
                )
            task, effects = self.core.operator_kill(
                task_id, b.get("framework_id", ""), None if grace is None else float(grace),
                time.time(), principal,
            )  # fmt: skip
        except OrbiterError as e:
            return _error(e.code.http_status, e.message)
        self.server.submit(effects)
        hostnames = {a.id: a.info.hostname for a in self.core.agents.values()}
        return _json(views.task_view(task, hostnames))

    async def summary(self, request: web.Request) -> web.Response:
        return _json(views.summary_view(self.core))

    async def sandbox(self, request: web.Request) -> web.Response:
        """A task's sandbox listing or file, read from its agent for the caller.

        The web UI cannot reach agents itself (another origin, maybe another network), so
        the master asks the agent's /files API, presenting the caller's own credentials:
        the agent authorizes the read as it would the caller's `orbiter cat`.
        """
        task_id = request.match_info["task_id"]
        q = request.query
        allowed = {"framework_id", "path", "offset", "length"}
        if request.path.endswith("/files"):
            allowed = {"framework_id"}
        unknown = set(q) - allowed
        if unknown:
            return _error(
                400,
                f"unknown query parameter(s) {', '.join(sorted(unknown))}; "
                f"use {', '.join(sorted(allowed))}",
            )
        tasks = views.tasks_view(self.core, q.get("framework_id", ""), task_id=task_id)
        if not tasks:
            return _error(404, f"no task {task_id!r}; list tasks with `orbiter tasks`")
        # Task ids repeat across frameworks (each `orbiter execute` is one): newest by default.
        task = max(tasks, key=lambda t: t["updated"] or 0.0)
        # The agent decides too (it is asked with the caller's credentials); asking here
        # first refuses without a round trip, with the same rule.
        fw = self.core.frameworks.get(task["framework_id"])
        owner = fw.info.principal if fw is not None else ""
        try:
            acl.authorize(
                self.server.security.acls, http_auth.principal_of(request), acl.READ_SANDBOX,
                [owner], owner=owner,
            )  # fmt: skip
        except acl.Forbidden as e:
            return _error(403, e.message)
        agent = self.core.agents.get(task["agent_id"])
        if agent is None or not agent.info.http_address:
            return _error(404, f"task {task_id!r} has no agent to read its sandbox from")
        params = {"task_id": task_id, "framework_id": task["framework_id"]}
        params.update({k: v for k, v in q.items() if k != "framework_id"})
        endpoint = "/files/read" if request.path.endswith("/read") else "/files/browse"
        security = self.server.security
        url = security.url(agent.info.http_address, f"{endpoint}?{urllib.parse.urlencode(params)}")
        headers = {}
        if "Authorization" in request.headers:
            headers["Authorization"] = request.headers["Authorization"]
        if self._client is None:
            self._client = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(ssl=security.client_ssl_context() or True),
                timeout=aiohttp.ClientTimeout(total=10),
            )
        try:
            async with self._client.get(url, headers=headers) as resp:
                body = await resp.read()
                content_type = resp.content_type
                status = resp.status
        except (aiohttp.ClientError, TimeoutError) as e:
            return _error(502, f"cannot reach agent {agent.id} at {agent.info.http_address}: {e}")
        if status >= 500:
            return _error(502, f"agent {agent.id} answered {status}")
        response = web.Response(body=body, status=status, content_type=content_type)
        if content_type == "text/plain":
            response.charset = "utf-8"
        return response

    # ------------------------------------------------------------------ maintenance

    async def _body(
        self,
        request: web.Request,
        allowed: dict[str, type | tuple[type, ...]],
        given: dict | None = None,
    ) -> dict:
        """The JSON body (or `given`, from another API's call), checked against the fields
        this endpoint takes."""
        if given is not None:
            body = given
        elif not request.can_read_body:
            return {}
        else:
            try:
                body = await httperrors.read_json(request)
            except httperrors.BadJson as e:
                raise OrbiterError(str(e)) from None
        if not isinstance(body, dict):
            raise OrbiterError("the body must be a JSON object")
        unknown = set(body) - set(allowed)
        if unknown:
            raise OrbiterError(
                f"unknown field(s) {', '.join(sorted(unknown))}; this endpoint takes "
                + ", ".join(sorted(allowed))
            )
        for name, kind in allowed.items():
            if (name in body and not isinstance(body[name], kind)) or isinstance(
                body.get(name), bool
            ):
                raise OrbiterError(f"field {name!r} has the wrong type")
        return body

    def _hostname(self, agent_id: str) -> tuple[str, ...]:
        """The agent's hostname, for ACL rules that name agents by host."""
        agent = self.core.agents.get(agent_id)
        return (agent.info.hostname,) if agent is not None and agent.info.hostname else ()

    async def teardown(self, request: web.Request) -> web.Response:
        """Operator TEARDOWN: the framework's own principal, or one an ACL rule allows."""
        framework_id = request.match_info["framework_id"]
        core = self.core
        principal = http_auth.principal_of(request)
        try:
            b = await self._body(request, {"reason": str})
            fw = core.frameworks.get(framework_id)
            if fw is not None:
                bindings.check_teardown(core.config.acls, fw.id, fw.principal, principal)
            effects = core.operator_teardown(framework_id, principal, b.get("reason", ""),
                                             time.time())  # fmt: skip
        except OrbiterError as e:
            return _error(e.code.http_status, e.message)
        refused = await self._commit(effects)
        if refused is not None:
            return refused
        log.info("framework %s torn down by %s: %s", framework_id, principal or "an operator",
                 b.get("reason", "") or "no reason given")  # fmt: skip
        return _json(views.framework_view(core.frameworks[framework_id]))

    async def _commit(self, effects: list[Effect]) -> web.Response | None:
        """Carry out a change and wait until it is in the registry: None, or the error to
        answer (an operator's change is acknowledged only once it survives a failover)."""
        self.server.submit(effects)
        try:
            await self.server.durable()
        except OrbiterError as e:
            return _error(e.code.http_status, e.message)
        return None

    async def _maintain(
        self, request: web.Request, action: str, agent_id: str = "", body: dict | None = None
    ) -> web.Response:
        """One maintenance action, authorized for the request's principal. The agent and
        the body come from the route, or (Mesos's operator API) from the caller."""
        agent_id = agent_id or request.match_info["agent_id"]
        core = self.core
        now = time.time()
        principal = http_auth.principal_of(request)

        def by(body: dict) -> str:  # the principal's, never the body's once auth is on
            return bindings.maintenance_by(self.server.security, principal, body.get("by"))

        try:
            acl.authorize(
                self.server.security.acls, principal, acl.MAINTAIN_AGENT,
                [(agent_id, *self._hostname(agent_id))],
            )  # fmt: skip
            if action == "deactivate":
                b = await self._body(request, {"reason": str, "by": str}, body)
                effects = core.deactivate(agent_id, by(b), b.get("reason", ""), now, principal)
            elif action == "drain":
                b = await self._body(request, {"reason": str, "by": str, "grace": (int, float)},
                                    body)
                if not 0 <= b.get("grace", 0) <= MAX_DRAIN_GRACE:  # before float(): 10**400
                    raise OrbiterError(
                        f"grace must be between 0 and {MAX_DRAIN_GRACE:.0f} seconds, "
                        f"got {b['grace']}"
                    )
                effects = core.drain(
                    agent_id, float(b.get("grace", 30.0)), by(b), b.get("reason", ""), now,
                    principal,
                )  # fmt: skip
            elif action == "reactivate":
                b = await self._body(request, {"reason": str, "by": str}, body)
                effects = core.reactivate(
                    agent_id, by(b), b.get("reason", "reactivated"), now, principal
                )
            elif action == "pin":
                b = await self._body(
                    request, {"state": str, "for_seconds": (int, float), "reason": str}, body
                )
                if "for_seconds" not in b or "state" not in b:
                    raise OrbiterError("state and for_seconds are required")
                if not MIN_PIN_SECONDS <= b["for_seconds"] <= MAX_PIN_SECONDS:
                    raise OrbiterError(
                        f"for_seconds must be between {MIN_PIN_SECONDS:.0f} and "
                        f"{MAX_PIN_SECONDS:.0f} (ten years), got {b['for_seconds']}"
                    )
                effects = core.set_pin(
                    agent_id, b["state"], now + float(b["for_seconds"]), b.get("reason", ""), now,
                    principal,
                )  # fmt: skip
            elif action == "remove":
                b = await self._body(request, {"reason": str}, body)
                effects = core.remove_agent(
                    agent_id, "operator", b.get("reason", ""), now, principal
                )
            else:
                effects = core.clear_pin(agent_id, now, principal)
        except OrbiterError as e:
            return _error(e.code.http_status, e.message)
        # What the operator is told is what the log keeps: this call's own events.
        said = [e.message for e in core.outbox if e.action and e.agent_id == agent_id]
        refused = await self._commit(effects)
        if refused is not None:
            return refused
        return _json({**views.agent_view(core.agents[agent_id]), "outcome": "; ".join(said)})

    async def reserve(self, request: web.Request) -> web.Response:
        return await self._reserve(request, unreserve=False)

    async def unreserve(self, request: web.Request) -> web.Response:
        return await self._reserve(request, unreserve=True)

    async def _reserve(self, request: web.Request, unreserve: bool) -> web.Response:
        """Operator RESERVE/UNRESERVE of an agent's resources (Mesos's RESERVE_RESOURCES)."""
        agent_id = request.match_info["agent_id"]
        core = self.core
        principal = http_auth.principal_of(request)
        try:
            fields: dict[str, type | tuple[type, ...]] = {"resources": str, "role": str}
            if not unreserve:
                fields["labels"] = dict
            b = await self._body(request, fields)
            if not b.get("resources"):
                raise OrbiterError("resources is required, like \"cpus:1;mem:256\" with role")
            labels = b.get("labels", {})
            if not all(isinstance(k, str) and isinstance(v, str) for k, v in labels.items()):
                raise OrbiterError("labels must map strings to strings")
            try:
                resources = Resources.parse(b["resources"], b.get("role", ""))
            except InvalidResources as e:
                raise OrbiterError(str(e)) from None
            now = time.time()
            if unreserve:
                effects = core.operator_unreserve(agent_id, resources, now, principal)
            else:
                effects = core.operator_reserve(agent_id, resources, labels, now, principal)
        except OrbiterError as e:
            return _error(e.code.http_status, e.message)
        refused = await self._commit(effects)
        if refused is not None:
            return refused
        return _json(views.agent_view(core.agents[agent_id]))

    async def deactivate(self, request: web.Request) -> web.Response:
        return await self._maintain(request, "deactivate")

    async def drain(self, request: web.Request) -> web.Response:
        return await self._maintain(request, "drain")

    async def reactivate(self, request: web.Request) -> web.Response:
        return await self._maintain(request, "reactivate")

    async def pin(self, request: web.Request) -> web.Response:
        return await self._maintain(request, "pin")

    async def unpin(self, request: web.Request) -> web.Response:
        return await self._maintain(request, "unpin")
