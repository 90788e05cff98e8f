"""The aiohttp middleware that finds each request's principal.

The principal comes from an `Authorization: Bearer` header checked against
the credentials file, or from the verified client certificate's subject CN;
handlers read it with `principal_of(request)`. With authentication on, a
request without one gets 401 with a JSON body. /health and /metrics stay
open: load balancers and Prometheus scrape them without credentials (they
expose no sandbox data and change nothing).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from aiohttp import web

from orbiter.security import acl
from orbiter.security.principals import Unauthenticated, cn_of_peercert, resolve
from orbiter.security.settings import SecuritySettings

OPEN_PATHS = frozenset({"/health", "/metrics"})
PRINCIPAL_KEY = web.RequestKey("orbiter_principal", str)


def principal_of(request: web.Request) -> str:
    """The request's principal ('' with authentication off and nothing presented)."""
    return request.get(PRINCIPAL_KEY, "")


FORWARDED_PRINCIPAL = "X-Orbiter-Principal"
"""The principal a master authenticated, passed to its Satellite child on the child's
private Unix socket (only there: anyone could send this header over TCP)."""


@web.middleware
async def forwarded_principal(request: web.Request, handler: Any) -> web.StreamResponse:
    """For a master's Satellite child: the caller the master authenticated."""
    request[PRINCIPAL_KEY] = request.headers.get(FORWARDED_PRINCIPAL, "")
    return await handler(request)


def middleware(
    settings: Callable[[], SecuritySettings], own_auth: frozenset[str] = frozenset()
) -> Any:
    """`own_auth`: paths whose handlers authenticate callers themselves, with something
    other than a principal (the agent's Mesos executor API: executor tokens); they get
    no principal here, whatever the request presents."""

    @web.middleware
    async def authenticate(request: web.Request, handler: Any) -> web.StreamResponse:
        if request.path in own_auth:
            request[PRINCIPAL_KEY] = ""
            return await handler(request)
        s = settings()
        ssl_object = request.transport.get_extra_info("ssl_object") if request.transport else None
        cn = cn_of_peercert(ssl_object.getpeercert()) if ssl_object is not None else ""
        try:
            request[PRINCIPAL_KEY] = resolve(s, cn, request.headers.get("Authorization", ""))
        except Unauthenticated as e:
            if request.path in OPEN_PATHS:
                request[PRINCIPAL_KEY] = ""
                return await handler(request)
            return web.Response(
                text=json.dumps({"error": str(e)}),
                status=401,
                content_type="application/json",
                headers={"WWW-Authenticate": 'Bearer realm="orbiter"'},
            )
        return await handler(request)

    return authenticate


# Routes whose every call is one ACL action with no object (others authorize in the handler).
ROUTE_ACTIONS = {
    ("POST", "/api/v1/rules/reload"): acl.RELOAD_RULES,
    ("POST", "/api/v2/silences"): acl.MANAGE_SILENCES,
    ("DELETE", "/api/v2/silence/{id}"): acl.MANAGE_SILENCES,
}


def acl_middleware(settings: Callable[[], SecuritySettings]) -> Any:
    """Refuse, with 403 and the rule that would allow it, calls the ACLs do not allow."""

    @web.middleware
    async def authorize(request: web.Request, handler: Any) -> web.StreamResponse:
        route = request.match_info.route.resource
        action = ROUTE_ACTIONS.get((request.method, route.canonical if route else ""))
        if action is not None:
            try:
                acl.authorize(settings().acls, principal_of(request), action)
            except acl.Forbidden as e:
                return web.Response(
                    text=json.dumps({"error": e.message}), status=403,
                    content_type="application/json",
                )  # fmt: skip
        return await handler(request)

    return authorize
