"""Roles, weights and quota at the master's HTTP address, in the Mesos v1 shapes.

`GET /api/v1/roles` (every role with its weight, quota, frameworks and what it
holds), `GET|PUT /api/v1/weights` (UPDATE_WEIGHTS: `{"weight_infos": [{role,
weight}]}`), `GET|POST /api/v1/quota` (UPDATE_QUOTA: `{"quota_configs": [{role,
guarantees, limits}], "force": false}`) and `DELETE /api/v1/quota/{role}`. A
change is answered once it is in the registry, so an acknowledged weight or
quota survives a restart or failover; a refused one changes nothing.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from aiohttp import web

from orbiter import httperrors
from orbiter.errors import Code, OrbiterError
from orbiter.master.quota import InvalidQuota, Quota
from orbiter.security import http_auth

if TYPE_CHECKING:
    from orbiter.master.server import MasterServer

ROUTES = (
    ("GET", "/api/v1/roles"),
    ("GET", "/api/v1/weights"),
    ("PUT", "/api/v1/weights"),
    ("GET", "/api/v1/quota"),
    ("POST", "/api/v1/quota"),
    ("DELETE", "/api/v1/quota/{role}"),
)


def _error(e: OrbiterError) -> web.Response:
    return web.json_response({"error": e.message}, status=e.code.http_status)


def _closed(body: Any, fields: set[str], where: str) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise InvalidQuota(f"{where} must be a JSON object with {', '.join(sorted(fields))}")
    unknown = set(body) - fields
    if unknown:
        raise InvalidQuota(
            f"{where}: unknown field(s) {', '.join(sorted(unknown))}; it takes "
            + ", ".join(sorted(fields))
        )
    return body


def _list(body: dict[str, Any], key: str, where: str) -> list[Any]:
    items = body.get(key)
    if not isinstance(items, list) or not items:
        raise InvalidQuota(f"{where}: {key} must be a non-empty list")
    return items


def _role(item: dict[str, Any], where: str) -> str:
    role = item.get("role")
    if not isinstance(role, str):
        raise InvalidQuota(f"{where}: role is required (a string)")
    return role


def weights_from_body(body: Any) -> dict[str, object]:
    """`{"weight_infos": [{"role": "eng", "weight": 2}]}` as {role: weight} (checked later)."""
    body = _closed(body, {"weight_infos"}, "the body")
    out: dict[str, object] = {}
    for i, item in enumerate(_list(body, "weight_infos", "the body")):
        where = f"weight_infos[{i}]"
        item = _closed(item, {"role", "weight"}, where)
        role = _role(item, where)
        if role in out:
            raise InvalidQuota(f"{where}: role {role!r} is given twice")
        if "weight" not in item:
            raise InvalidQuota(f"{where}: weight is required")
        out[role] = item["weight"]
    return out


def quotas_from_body(body: Any) -> tuple[dict[str, Quota], bool]:
    """UPDATE_QUOTA's body as ({role: Quota}, force); names and amounts are checked later."""
    body = _closed(body, {"quota_configs", "force"}, "the body")
    force = body.get("force", False)
    if not isinstance(force, bool):
        raise InvalidQuota("force must be true or false")
    out: dict[str, Quota] = {}
    for i, item in enumerate(_list(body, "quota_configs", "the body")):
        where = f"quota_configs[{i}]"
        item = _closed(item, {"role", "guarantees", "limits"}, where)
        role = _role(item, where)
        if role in out:
            raise InvalidQuota(f"{where}: role {role!r} is given twice")
        parts = []
        for key in ("guarantees", "limits"):
            value = item.get(key, {})
            if not isinstance(value, dict):
                raise InvalidQuota(f"{where}.{key} must be an object like {{\"cpus\": 2}}")
            parts.append(value)
        out[role] = Quota(parts[0], parts[1])
    return out, force


def quota_view(role: str, quota: Quota) -> dict[str, Any]:
    return {"role": role, "guarantees": dict(quota.guarantees), "limits": dict(quota.limits)}


def add_routes(app: web.Application, server: MasterServer) -> None:
    async def apply(effects: list[Any]) -> web.Response | None:
        server.submit(effects)
        try:
            await server.durable()
        except OrbiterError as e:
            return _error(e)
        return None

    async def read(request: web.Request) -> Any:
        try:
            return await httperrors.read_json(request)
        except httperrors.BadJson as e:
            raise InvalidQuota(str(e)) from None

    def weights() -> web.Response:
        core = server.core
        infos = [{"role": r, "weight": w} for r, w in sorted(core.weights.items())]
        return web.json_response({"weight_infos": infos})

    def quotas() -> web.Response:
        configs = [quota_view(r, q) for r, q in sorted(server.core.quotas.items())]
        return web.json_response({"quota_configs": configs})

    async def get_roles(request: web.Request) -> web.Response:
        roles = [{"role": name, **view} for name, view in server.core.role_view().items()]
        return web.json_response({"roles": roles})

    async def get_weights(request: web.Request) -> web.Response:
        return weights()

    async def put_weights(request: web.Request) -> web.Response:
        try:
            changes = weights_from_body(await read(request))
            effects = server.core.update_weights(
                changes, time.time(), http_auth.principal_of(request)
            )
        except OrbiterError as e:
            return _error(e)
        return await apply(effects) or weights()

    async def get_quota(request: web.Request) -> web.Response:
        return quotas()

    async def post_quota(request: web.Request) -> web.Response:
        try:
            changes, force = quotas_from_body(await read(request))
            effects = server.core.update_quotas(
                changes, time.time(), http_auth.principal_of(request), force
            )
        except OrbiterError as e:
            return _error(e)
        return await apply(effects) or quotas()

    async def delete_quota(request: web.Request) -> web.Response:
        role = request.match_info["role"]
        try:
            if role not in server.core.quotas:
                raise OrbiterError(
                    f"role {role!r} has no quota; `orbiter quota` lists them", Code.NOT_FOUND
                )
            effects = server.core.update_quotas(
                {role: Quota()}, time.time(), http_auth.principal_of(request)
            )
        except OrbiterError as e:
            return _error(e)
        return await apply(effects) or quotas()

    app.router.add_get("/api/v1/roles", get_roles)
    app.router.add_get("/api/v1/weights", get_weights)
    app.router.add_put("/api/v1/weights", put_weights)
    app.router.add_get("/api/v1/quota", get_quota)
    app.router.add_post("/api/v1/quota", post_quota)
    # Roles hold '/': the rest of the path is the role.
    app.router.add_delete("/api/v1/quota/{role:.+}", delete_quota)
