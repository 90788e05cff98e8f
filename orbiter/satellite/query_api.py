"""Prometheus's HTTP query API over Satellite's TSDB, so Grafana's Prometheus data source
(and anything else that speaks it) can read the embedded Satellite at the master's address.

`/api/v1/query`, `/api/v1/query_range`, `/api/v1/series`, `/api/v1/labels` and
`/api/v1/label/<name>/values`, and `/api/v1/alerts`, `/api/v1/rules` (views in
`rule_api`), GET or POST (form-encoded, as Grafana sends), in
Prometheus 2.42's shapes: a `status`/`data` envelope; sample values as strings
formatted as Go's `strconv.FormatFloat(v, 'f', -1, 64)`; times in seconds; errors
as `{"status": "error", "errorType": "bad_data" | "execution", "error": ...}` with
HTTP 400 or 422. The views are pure; the handlers read the request and the TSDB.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_protocol import RequestPayloadError

from orbiter.durations import parse_duration
from orbiter.satellite import rule_api
from orbiter.satellite.promql import engine
from orbiter.satellite.promql.values import QueryError, Scalar
from orbiter.satellite.series import Labels, Matcher

if TYPE_CHECKING:
    from orbiter.satellite.service import Satellite

__all__ = ["ROUTES", "add_routes", "format_value", "parse_time"]

TOO_DEEP = "the expression is nested too deeply to evaluate; split it into recording rules"
MAX_POINTS = 11_000
"""Points per series a range query may return, as Prometheus."""

_MIN_MS = -62_135_596_800_000  # 0001-01-01, Prometheus's minimum time
_MAX_MS = 253_402_300_799_000  # 9999-12-31T23:59:59Z


class BadData(ValueError):
    """A parameter Prometheus would refuse with `bad_data` (HTTP 400)."""


def format_value(v: float) -> str:
    """A sample value as Prometheus's JSON writes it (Go's 'f' format, shortest)."""
    if v != v:
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    return np.format_float_positional(v, unique=True, trim="-")


def _seconds(t_ms: int) -> float | int:
    return t_ms // 1000 if t_ms % 1000 == 0 else t_ms / 1000


def parse_time(text: str, name: str) -> int:
    """Milliseconds of an RFC 3339 time or Unix seconds (fractions allowed)."""
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise BadData(
                f'invalid parameter "{name}": cannot parse "{text}" to a valid timestamp'
            ) from None
        if when.tzinfo is None:
            when = when.replace(tzinfo=dt.UTC)
        return round(when.timestamp() * 1000)
    if not math.isfinite(seconds):
        raise BadData(f'invalid parameter "{name}": cannot parse "{text}" to a valid timestamp')
    return max(_MIN_MS, min(_MAX_MS, round(seconds * 1000)))


def _step_ms(text: str) -> int:
    try:
        seconds = parse_duration(text)
    except ValueError:
        raise BadData(
            f'invalid parameter "step": cannot parse "{text}" to a valid duration'
        ) from None
    step = round(seconds * 1000)
    if step <= 0:
        raise BadData(
            "zero or negative query resolution step widths are not accepted. Try a positive integer"
        )
    return step


def _metric(labels: Labels) -> dict[str, str]:
    return dict(labels)


def instant_view(kind: str, value: Any, t_ms: int) -> dict[str, Any]:
    """`data` of /api/v1/query for an evaluation result of type `kind` (engine.value_type)."""
    t = _seconds(t_ms)
    if kind == "scalar":
        return {"resultType": "scalar", "result": [t, format_value(value.value)]}
    if kind == "string":
        return {"resultType": "string", "result": [t, value.value]}
    if kind == "matrix":
        return {
            "resultType": "matrix",
            "result": [
                {
                    "metric": _metric(s.labels),
                    "values": [
                        [_seconds(ts), format_value(v)]
                        for ts, v in zip(s.timestamps, s.values, strict=True)
                    ],
                }
                for s in value
            ],
        }
    return {
        "resultType": "vector",
        "result": [
            {"metric": _metric(s.labels), "value": [t, format_value(s.value)]} for s in value
        ],
    }


def range_view(points: Mapping[Labels, list[tuple[int, float]]]) -> dict[str, Any]:
    """`data` of /api/v1/query_range: one series per label set, sorted by labels."""
    return {
        "resultType": "matrix",
        "result": [
            {
                "metric": _metric(labels),
                "values": [[_seconds(t), format_value(v)] for t, v in points[labels]],
            }
            for labels in sorted(points)
        ],
    }


def evaluate_range(
    kind: str, query: Callable[[int], Any], start_ms: int, end_ms: int, step_ms: int
) -> dict[Labels, list[tuple[int, float]]]:
    """The query (of type `kind`) at every step from start to end, its samples gathered per
    label set."""
    if kind not in ("scalar", "vector"):
        raise BadData(
            f'invalid expression type "{"range vector" if kind == "matrix" else kind}" for range'
            " query, must be Scalar or instant Vector"
        )
    if end_ms < start_ms:
        raise BadData("end timestamp must not be before start time")
    if (end_ms - start_ms) // step_ms + 1 > MAX_POINTS:
        raise BadData(
            "exceeded maximum resolution of 11,000 points per timeseries. "
            "Try decreasing the query resolution (?step=XX)"
        )
    points: dict[Labels, list[tuple[int, float]]] = {}
    for t in range(start_ms, end_ms + 1, step_ms):
        value = query(t)
        if isinstance(value, Scalar):
            points.setdefault((), []).append((t, value.value))
            continue
        for sample in value:
            points.setdefault(sample.labels, []).append((t, sample.value))
    return points


# --- the imperative shell -------------------------------------------------------------


def _ok(data: Any) -> web.Response:
    return web.Response(
        text=json.dumps({"status": "success", "data": data}), content_type="application/json"
    )


def _error(kind: str, message: str) -> web.Response:
    return web.Response(
        text=json.dumps({"status": "error", "errorType": kind, "error": message}),
        status=400 if kind == "bad_data" else 422,
        content_type="application/json",
    )


async def _form(request: web.Request) -> Any:
    """The POST body as a form; BadData for one that is not (a multipart body without a
    boundary, an unknown charset...)."""
    try:
        return await request.post()
    except web.HTTPException:
        raise  # 413: over the size limit
    except (ValueError, LookupError, AssertionError, HttpProcessingError, RequestPayloadError) as e:
        raise BadData(f"the body is not a form ({type(e).__name__}: {e})") from None


async def _params(request: web.Request) -> Mapping[str, str]:
    """Query string and form body together, as Prometheus reads them."""
    merged: dict[str, str] = dict(request.query)
    if request.method == "POST":
        merged.update({k: v for k, v in (await _form(request)).items() if isinstance(v, str)})
    return merged


async def _all(request: web.Request, name: str) -> list[str]:
    values = request.query.getall(name, [])
    if request.method == "POST":
        values = [
            *values,
            *(v for v in (await _form(request)).getall(name, []) if isinstance(v, str)),
        ]
    return values


def _expression(params: Mapping[str, str]) -> str:
    expr = params.get("query")
    if not expr:
        raise BadData('invalid parameter "query": no query given')
    try:
        engine.check_supported(expr)
    except QueryError as e:
        raise BadData(f'invalid parameter "query": {e}') from None
    return expr


def _matchers(selectors: list[str]) -> list[list[Matcher]]:
    try:
        return [engine.selector_matchers(text) for text in selectors]
    except QueryError as e:
        raise BadData(f'invalid parameter "match[]": {e}') from None


def _answer(
    handler: Callable[[web.Request], Awaitable[Any]],
) -> Callable[[web.Request], Awaitable[web.Response]]:
    """A handler's data in the success envelope, its refusals in Prometheus's error one."""

    async def answer(request: web.Request) -> web.Response:
        try:
            return _ok(await handler(request))
        except BadData as e:
            return _error("bad_data", str(e))
        except QueryError as e:
            return _error("execution", str(e))
        except RecursionError:  # sum(sum(sum(... or 1+1+1+... a thousand deep
            return _error("bad_data", TOO_DEEP)

    return answer


def add_routes(app: web.Application, satellite: Satellite) -> None:
    tsdb = satellite.tsdb
    lookback = engine.DEFAULT_LOOKBACK_MS

    def run(expr: str, t_ms: int) -> Any:
        return engine.instant_query(expr, tsdb, t_ms, lookback)

    async def query(request: web.Request) -> dict[str, Any]:
        params = await _params(request)
        expr = _expression(params)
        t_ms = parse_time(params["time"], "time") if "time" in params else _now_ms()
        return instant_view(engine.value_type(expr), run(expr, t_ms), t_ms)

    async def query_range(request: web.Request) -> dict[str, Any]:
        params = await _params(request)
        expr = _expression(params)
        for name in ("start", "end", "step"):
            if name not in params:
                raise BadData(f'invalid parameter "{name}": missing')
        start = parse_time(params["start"], "start")
        end = parse_time(params["end"], "end")
        step = _step_ms(params["step"])
        kind = engine.value_type(expr)
        return range_view(evaluate_range(kind, lambda t: run(expr, t), start, end, step))

    async def series(request: web.Request) -> list[dict[str, str]]:
        params = await _params(request)
        selectors = await _all(request, "match[]")
        if not selectors:
            raise BadData("no match[] parameter provided")
        start = parse_time(params["start"], "start") if "start" in params else _MIN_MS
        end = parse_time(params["end"], "end") if "end" in params else _MAX_MS
        found: dict[Labels, None] = {}
        for matchers in _matchers(selectors):
            for s in tsdb.select(matchers, start, end):
                found[s.labels] = None
        return [_metric(labels) for labels in sorted(found)]

    async def labels(request: web.Request) -> list[str]:
        selectors = await _all(request, "match[]")
        if not selectors:
            return tsdb.label_names()
        names: set[str] = set()
        for matchers in _matchers(selectors):
            for s in tsdb.select(matchers, _MIN_MS, _MAX_MS):
                names.update(name for name, _ in s.labels)
        return sorted(names)

    async def label_values(request: web.Request) -> list[str]:
        return tsdb.label_values(request.match_info["name"])

    async def alerts(request: web.Request) -> dict[str, Any]:
        return {"alerts": satellite.active_alerts()}

    async def rules(request: web.Request) -> dict[str, Any]:
        kind_name = (await _params(request)).get("type", "")
        if kind_name and kind_name not in rule_api.RULE_TYPES:
            raise BadData(f'invalid parameter "type": not supported value "{kind_name}"')
        return {"groups": satellite.rule_views(rule_api.RULE_TYPES.get(kind_name))}

    handlers = {
        "/api/v1/alerts": alerts,
        "/api/v1/rules": rules,
        "/api/v1/query": query,
        "/api/v1/query_range": query_range,
        "/api/v1/series": series,
        "/api/v1/labels": labels,
        "/api/v1/label/{name}/values": label_values,
    }
    for method, path in ROUTES:
        app.router.add_route(method, path, _answer(handlers[path]))


def _now_ms() -> int:
    return round(time.time() * 1000)


_QUERY_ROUTES = tuple(
    (method, path)
    for path in (
        "/api/v1/query",
        "/api/v1/query_range",
        "/api/v1/series",
        "/api/v1/labels",
        "/api/v1/label/{name}/values",
    )
    for method in ("GET", "POST")
    if not (path == "/api/v1/label/{name}/values" and method == "POST")
)
ROUTES = (("GET", "/api/v1/alerts"), ("GET", "/api/v1/rules"), *_QUERY_ROUTES)
"""Every route, so a master running Satellite in its own process can forward them all."""
