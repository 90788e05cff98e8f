"""Silences at the master's HTTP address, in Alertmanager's API v2 shape.

`GET /api/v2/silences`, `POST /api/v2/silences` (create, or update with `id`),
`GET|DELETE /api/v2/silence/{id}`: the same paths and JSON as Alertmanager
0.25, so `amtool --alertmanager.url=http://MASTER:5051 silence add|query|expire`
and Grafana's Alertmanager data source work against Orbiter as they do against
an Alertmanager. A silence is answered only once it is in the registry
(`server.durable()`), so an acknowledged silence survives a kill -9.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import TYPE_CHECKING, Any

from aiohttp import web

from orbiter import httperrors
from orbiter.alerts import silences
from orbiter.errors import OrbiterError

if TYPE_CHECKING:
    from orbiter.master.server import MasterServer

_POSTABLE = {"id", "matchers", "startsAt", "endsAt", "createdBy", "comment"}


def silence_from_body(body: Any, now: float) -> Any:
    """A checked master_pb2.Silence from a postableSilence; raises InvalidSilence."""
    if not isinstance(body, dict):
        raise silences.InvalidSilence("the body must be a JSON object (a postableSilence)")
    unknown = set(body) - _POSTABLE
    if unknown:
        raise silences.InvalidSilence(
            f"unknown field(s) {', '.join(sorted(unknown))}; a silence takes "
            + ", ".join(sorted(_POSTABLE))
        )
    for name in ("matchers", "endsAt", "createdBy", "comment"):
        if name not in body:
            raise silences.InvalidSilence(f"{name} is required")
    for name in ("createdBy", "comment"):
        if not isinstance(body[name], str):
            raise silences.InvalidSilence(f"{name} must be a string")
    silence_id = body.get("id") or str(uuid.uuid4())
    if not isinstance(silence_id, str):
        raise silences.InvalidSilence("id must be a string")
    starts = silences.parse_rfc3339(body["startsAt"], "startsAt") if body.get("startsAt") else now
    return silences.new_silence(
        silence_id,
        silences.parse_matchers_json(body["matchers"]),
        starts,
        silences.parse_rfc3339(body["endsAt"], "endsAt"),
        body["createdBy"],
        body["comment"],
        now,
    )


def add_routes(app: web.Application, server: MasterServer) -> None:
    def error(e: OrbiterError) -> web.Response:
        return web.Response(
            text=json.dumps({"error": e.message}),
            status=e.code.http_status,
            content_type="application/json",
        )

    async def apply(effects: list[Any]) -> web.Response | None:
        server.submit(effects)
        try:
            await server.durable()
        except OrbiterError as e:
            return error(e)
        return None

    async def list_silences(request: web.Request) -> web.Response:
        now = time.time()
        views = [silences.api_view(s, now) for s in server.core.silences.values()]
        views.sort(key=lambda v: (v["status"]["state"] != "active", v["endsAt"]))
        return web.Response(text=json.dumps(views), content_type="application/json")

    async def post_silence(request: web.Request) -> web.Response:
        now = time.time()
        try:
            body = await httperrors.read_json(request)
        except httperrors.BadJson as e:
            return error(OrbiterError(str(e)))
        try:
            silence = silence_from_body(body, now)
            effects = server.core.put_silence(silence, now)
        except OrbiterError as e:
            server.count_refusal(e, "http")
            return error(e)
        failed = await apply(effects)
        return failed or web.json_response({"silenceID": silence.id})

    async def get_silence(request: web.Request) -> web.Response:
        found = server.core.silences.get(request.match_info["id"])
        if found is None:
            return error(OrbiterError("no such silence", silences.Code.NOT_FOUND))
        return web.json_response(silences.api_view(found, time.time()))

    async def delete_silence(request: web.Request) -> web.Response:
        try:
            effects = server.core.expire_silence(request.match_info["id"], time.time())
        except OrbiterError as e:
            return error(e)
        return await apply(effects) or web.Response(status=200)

    app.router.add_get("/api/v2/silences", list_silences)
    app.router.add_post("/api/v2/silences", post_silence)
    app.router.add_get("/api/v2/silence/{id}", get_silence)
    app.router.add_delete("/api/v2/silence/{id}", delete_silence)
