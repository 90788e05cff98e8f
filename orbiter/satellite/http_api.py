"""Satellite's operator endpoints, mounted on the master's HTTP server (or on
the standalone satellite's own): alerts, decision events, targets, rules,
Prometheus's query API (query_api), and /graph, where an alert's generatorURL
opens its expression (a table of the expression's current value, as
Prometheus's /graph?g0.expr=...&g0.tab=1 shows)."""

from __future__ import annotations

import html
import time
from typing import TYPE_CHECKING, Any

from aiohttp import web

from orbiter import httperrors
from orbiter.errors import OrbiterError
from orbiter.satellite import query_api
from orbiter.satellite.promql import engine
from orbiter.satellite.promql.values import QueryError
from orbiter.satellite.rules import RuleFileInvalid
from orbiter.security import http_auth
from orbiter.yamlreader import ConfigError

if TYPE_CHECKING:
    from orbiter.satellite.service import Satellite


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(
        text=httperrors.json_text(data, indent=1), status=status, content_type="application/json"
    )


def add_routes(app: web.Application, satellite: Satellite) -> None:
    async def events(request: web.Request) -> web.Response:
        try:
            limit = int(request.query.get("limit", "100"))
        except ValueError:
            return _json({"error": "limit must be a whole number"}, 400)
        if not 1 <= limit <= 1000:
            return _json({"error": "limit must be between 1 and 1000"}, 400)
        return _json({"events": await satellite.decision_log(limit)})

    async def policy(request: web.Request) -> web.Response:
        try:
            return _json(await satellite.policy_view(time.time()))
        except OrbiterError as e:
            return _json({"error": e.message}, e.code.http_status)
        except Exception as e:  # the master's agents could not be read (process mode)
            return _json({"error": f"cannot read the master's agents: {e}"}, 503)

    async def targets(request: web.Request) -> web.Response:
        return _json({"targets": satellite.scraper.status()})

    async def reload(request: web.Request) -> web.Response:
        principal = http_auth.principal_of(request)

        def refused(error: str, details: str) -> web.Response:
            satellite.record_operator("rules reload", "refused", f"{error}: {details}", principal)
            return _json({"error": error, "details": details}, 400)

        try:
            groups = satellite.load_rules()
        except RuleFileInvalid as e:
            return refused("rule files refused; the old rules stay", str(e))
        except OSError as e:
            return refused("cannot read rule files", str(e))
        try:
            notifier = satellite.reload_notifier()
        except ConfigError as e:
            return refused("notifier config refused; the old one stays", str(e))
        rules = sum(len(g.rules) for g in groups)
        satellite.record_operator(
            "rules reload", "done", f"{len(groups)} groups, {rules} rules", principal
        )
        return _json(
            {
                "groups": len(groups),
                "rules": sum(len(g.rules) for g in groups),
                "notifier_reloaded": notifier,
            }
        )

    async def graph(request: web.Request) -> web.Response:
        expr = request.query.get("g0.expr", "")
        rows, error = [], ""
        if expr:
            try:
                t_ms = round(time.time() * 1000)
                value = engine.instant_query(expr, satellite.tsdb, t_ms, engine.DEFAULT_LOOKBACK_MS)
                view = query_api.instant_view(engine.value_type(expr), value, t_ms)
                result = view["result"]
                if view["resultType"] in ("scalar", "string"):
                    rows = [("", result[1])]
                else:
                    rows = [(_selector(r["metric"]), r["value"][1]) for r in result]
            except QueryError as e:
                error = str(e)
            except RecursionError:
                error = query_api.TOO_DEEP
        return web.Response(text=_graph_page(expr, rows, error), content_type="text/html")

    async def alertmanager_webhook(request: web.Request) -> web.Response:
        try:
            body = await httperrors.read_json(request)
        except httperrors.BadJson as e:
            return _json({"error": str(e)}, 400)
        try:
            kept = await satellite.receive_webhook(body)
        except OrbiterError as e:
            return _json({"error": e.message}, e.code.http_status)
        return _json({"received": kept, "active": len(satellite.external_alerts)})

    handlers = {
        "/api/v1/satellite/alertmanager": alertmanager_webhook,
        "/graph": graph,
        "/api/v1/satellite/events": events,
        "/api/v1/satellite/targets": targets,
        "/api/v1/satellite/policy": policy,
        "/api/v1/rules/reload": reload,
    }
    for method, path in _OWN_ROUTES:
        app.router.add_route(method, path, handlers[path])
    query_api.add_routes(app, satellite)


def _selector(metric: dict[str, str]) -> str:
    name = metric.get("__name__", "")
    rest = ", ".join(f'{k}="{v}"' for k, v in sorted(metric.items()) if k != "__name__")
    return f"{name}{{{rest}}}" if rest or not name else name


def _graph_page(expr: str, rows: list[tuple[str, str]], error: str) -> str:
    """A plain page: the expression, a form to change it, and its value now per series."""
    e = html.escape
    body = (
        f"<p class=error>{e(error)}</p>"
        if error
        else "<table><tr><th>series</th><th>value</th></tr>"
        + "".join(f"<tr><td>{e(k)}</td><td>{e(v)}</td></tr>" for k, v in rows)
        + "</table>"
        + ("" if rows or not expr else "<p>no data</p>")
    )
    return (
        "<!doctype html><html><head><meta charset=utf-8><title>Orbiter: "
        f"{e(expr)}</title></head><body><form action=/graph><input name=g0.expr size=100 "
        f'value="{e(expr)}"><input type=hidden name=g0.tab value=1> <button>Run</button>'
        f"</form>{body}</body></html>"
    )


_OWN_ROUTES = (
    ("GET", "/graph"),
    ("POST", "/api/v1/satellite/alertmanager"),
    ("GET", "/api/v1/satellite/events"),
    ("GET", "/api/v1/satellite/targets"),
    ("GET", "/api/v1/satellite/policy"),
    ("POST", "/api/v1/rules/reload"),
)
ROUTES = _OWN_ROUTES + query_api.ROUTES
"""Every route, so a master running Satellite in its own process can forward them all."""
