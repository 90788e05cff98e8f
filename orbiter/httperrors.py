"""Every HTTP error as a JSON body {"error": message}, never aiohttp's plain text.

Three places make errors in an aiohttp server, and each gets its JSON here:

- a handler's own refusals: the handlers build them (`{"error": ...}`, 4xx);
- exceptions out of a handler (`web.HTTPException` such as 413 for an oversized
  body, or an unexpected exception: a bug, logged, 500): `json_errors`, a middleware;
- requests the HTTP parser refuses before any handler runs (a URL or header over
  the limit, a malformed request line): `JsonErrorsRunner`, whose protocol writes
  JSON where aiohttp writes text/plain. An oversized request line is 414.

`read_json` parses a request body for handlers, refusing bodies nested too deep for
the parser (`[[[[...`: a RecursionError otherwise) with a 400.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError, LineTooLong
from aiohttp.web_protocol import RequestHandler, RequestPayloadError
from aiohttp.web_server import Server

log = logging.getLogger("orbiter.http")

MAX_DEPTH = 64
"""How deeply a JSON body may nest arrays and objects; no endpoint takes more than a few."""


class BadJson(ValueError):
    """A body that is not JSON the endpoint could read; the message says why."""


def json_text(data: Any, indent: int | None = None) -> str:
    """`data` as strict JSON: a non-finite float (NaN, Infinity: not JSON, and clients
    such as `orbiter agents` refuse them) is written as null. The check costs nothing
    when there is none."""
    separators = (",", ":") if indent is None else None
    try:
        return json.dumps(data, indent=indent, separators=separators, allow_nan=False)
    except ValueError:
        return json.dumps(_finite(data), indent=indent, separators=separators, allow_nan=False)


def _finite(data: Any) -> Any:
    if isinstance(data, float):
        return data if math.isfinite(data) else None
    if isinstance(data, dict):
        return {k: _finite(v) for k, v in data.items()}
    if isinstance(data, list | tuple):
        return [_finite(v) for v in data]
    return data


def error_response(status: int, message: str) -> web.Response:
    return web.Response(
        text=json.dumps({"error": message}), status=status, content_type="application/json"
    )


def _depth_exceeded(text: str, limit: int) -> bool:
    """Whether brackets outside strings nest deeper than `limit` (a linear scan)."""
    depth = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            if depth > limit:
                return True
        elif ch in "]}":
            depth -= 1
    return False


def parse_json(text: str) -> Any:
    """The JSON value of `text`; BadJson if it is not JSON, nests too deep or holds
    NaN/Infinity (not JSON, and nothing Orbiter keeps may hold them)."""

    def no_constant(name: str) -> Any:
        raise BadJson(f"{name} is not a JSON number")

    if text.count("[") + text.count("{") > MAX_DEPTH and _depth_exceeded(text, MAX_DEPTH):
        raise BadJson(f"the body is too deeply nested (more than {MAX_DEPTH} levels)")
    try:
        return json.loads(text, parse_constant=no_constant)
    except BadJson as e:
        raise BadJson(f"the body is not JSON: {e}") from None
    except RecursionError:
        raise BadJson(f"the body is too deeply nested (more than {MAX_DEPTH} levels)") from None
    except ValueError as e:
        raise BadJson(f"the body is not JSON: {e}") from None


async def read_json(request: web.Request) -> Any:
    """The request's JSON body (see parse_json); 413 (JSON) when over the size limit."""
    raw = await request.read()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise BadJson(f"the body is not UTF-8: {e}") from None
    return parse_json(text)


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Exceptions out of handlers as JSON bodies; redirects pass as they are."""
    try:
        return await handler(request)
    except web.HTTPException as e:
        if e.status < 400:
            raise
        if e.content_type == "application/json":
            raise
        if e.status == 404:
            message = f"no such path {request.path!r}; the API is described at /api/v1/openapi.json"
        elif e.status == 405:
            allowed = ", ".join(sorted(getattr(e, "allowed_methods", ()) or ()))
            message = f"{request.method} is not allowed on {request.path}; use {allowed}"
        else:
            message = e.text if e.text and e.text != f"{e.status}: {e.reason}" else e.reason
        response = error_response(e.status, message)
        for name in ("Allow", "Retry-After"):
            if name in e.headers:
                response.headers[name] = e.headers[name]
        return response
    except BadJson as e:
        return error_response(400, str(e))
    except ConnectionError:
        raise  # the client went away: nobody to answer
    except (HttpProcessingError, RequestPayloadError) as e:  # Content-Encoding: gzip, not
        response = error_response(400, f"the request body cannot be read: {e}")
        response.force_close()  # the rest of the body is unread: the connection is done
        return response
    except Exception:
        log.exception("%s %s failed", request.method, request.path)
        return error_response(500, f"internal error answering {request.method} {request.path}")


class _JsonRequestHandler(RequestHandler):
    def log_exception(self, *args: Any, **kw: Any) -> None:
        """A request the parser refused is the client's mistake: one line, no traceback
        (aiohttp logs those as errors with a stack, e.g. when a gRPC client dials the
        HTTP port by mistake)."""
        exc = kw.get("exc_info")
        if not isinstance(exc, HttpProcessingError) or not 400 <= (exc.code or 0) < 500:
            super().log_exception(*args, **kw)
            return
        remote = args[1] if len(args) > 1 else "?"
        if "PRI" in str(exc.message):
            self.logger.warning(
                "refused an HTTP/2 connection from %s: a gRPC client dialled this HTTP port "
                "(gRPC clients belong on the gRPC port)",
                remote,
            )
        else:
            first = str(exc.message).strip().splitlines()[:1] or ["bad request"]
            self.logger.warning("refused a malformed request from %s: %s", remote, first[0])

    def handle_error(
        self,
        request: Any,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        response = super().handle_error(request, status, exc, message)
        if isinstance(exc, LineTooLong) and status == 400 and _is_request_line(exc):
            status, text = 414, "the request line (method and URL) is too long"
        elif isinstance(exc, LineTooLong) and status == 400:
            status, text = 431, "a request header is too long"
        elif status == 500:
            text = "internal error"
        else:
            text = message or getattr(exc, "message", None) or "bad request"
        json_response = error_response(status, str(text))
        json_response.force_close()
        del response
        return json_response


def _is_request_line(exc: LineTooLong) -> bool:
    line = exc.args[0] if exc.args else b""
    if isinstance(line, str):
        line = line.encode("latin-1", "replace")
    return line.split(b" ", 1)[0] in (b"GET", b"POST", b"DELETE", b"PUT", b"HEAD", b"PATCH") or (
        line.startswith(b"/")
    )


class _JsonServer(Server):
    def __call__(self) -> RequestHandler:
        return _JsonRequestHandler(self, loop=self._loop, **self._kwargs)


class JsonErrorsRunner(web.AppRunner):
    """An AppRunner whose protocol answers requests the parser refuses with JSON."""

    async def _make_server(self) -> Server:
        server = await super()._make_server()
        server.__class__ = _JsonServer
        return server
