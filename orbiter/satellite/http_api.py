"""Satellite's operator endpoints, mounted on the master's HTTP server (or on
the standalone satellite's own): alerts, decision events, targets, rules, and
Prometheus's query API (query_api)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from aiohttp import web

from orbiter.satellite import query_api
from orbiter.satellite.rules import RuleFileInvalid

if TYPE_CHECKING:
    from orbiter.satellite.service import Satellite


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(
        text=json.dumps(data, indent=1), status=status, content_type="application/json"
    )


def add_routes(app: web.Application, satellite: Satellite) -> None:
    async def events(request: web.Request) -> web.Response:
        try:
            limit = int(request.query.get("limit", "100"))
        except ValueError:
            return _json({"error": "limit must be a whole number"}, 400)
        if not 1 <= limit <= 1000:
            return _json({"error": "limit must be between 1 and 1000"}, 400)
        return _json({"events": satellite.event_views(limit)})

    async def targets(request: web.Request) -> web.Response:
        return _json({"targets": satellite.scraper.status()})

    async def reload(request: web.Request) -> web.Response:
        try:
            groups = satellite.load_rules()
        except RuleFileInvalid as e:
            return _json(
                {"error": "rule files refused; the old rules stay", "details": str(e)}, 400
            )
        except OSError as e:
            return _json({"error": f"cannot read rule files: {e}"}, 400)
        return _json({"groups": len(groups), "rules": sum(len(g.rules) for g in groups)})

    handlers = {
        "/api/v1/satellite/events": events,
        "/api/v1/satellite/targets": targets,
        "/api/v1/rules/reload": reload,
    }
    for method, path in _OWN_ROUTES:
        app.router.add_route(method, path, handlers[path])
    query_api.add_routes(app, satellite)


_OWN_ROUTES = (
    ("GET", "/api/v1/satellite/events"),
    ("GET", "/api/v1/satellite/targets"),
    ("POST", "/api/v1/rules/reload"),
)
ROUTES = _OWN_ROUTES + query_api.ROUTES
"""Every route, so a master running Satellite in its own process can forward them all."""
