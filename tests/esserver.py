"""A small Elasticsearch stand-in that the real elasticsearch-py client accepts.

Elasticsearch cannot be installed on this machine (no Debian package, no JVM
distribution we may fetch), so the event archive's tests run the REAL
elasticsearch-py 9 client (AsyncElasticsearch, helpers.async_streaming_bulk)
against this server instead. It speaks just enough of the wire protocol:

- every answer carries `X-Elastic-Product: Elasticsearch` (the client refuses a
  server without it) and the content type the client asked for
  (`application/vnd.elasticsearch+json; compatible-with=9`, or plain JSON);
- `GET /` (version 9.1.0), `PUT /_index_template/<name>`, `POST /_bulk` and
  `/<index>/_bulk` (NDJSON; `index` and `create`, honouring `_id`: a `create` of
  an existing id answers 409 and an `index` overwrites, so a re-sent document is
  never duplicated), `/_search` and `/<index>/_search` (`match_all`, `term`,
  `terms`, `range` on `@timestamp`, `bool` of those, a simple `query_string` of
  `field:value AND ...` as Grafana's annotations send; `sort` on `@timestamp`,
  `size`), `/<index>/_count`, `/_refresh`; index names may be lists or wildcards.

It is not Elasticsearch: no analysis, no scoring, everything in memory. `fault`
makes it misbehave for outage tests: "unavailable" (503 on everything), "hang"
(never answer), "garbage" (200 with a body that is not JSON), "reject" (every
bulk item answers 429), "template" (400 to the index template only).
Run standalone with `python tests/esserver.py --port N`.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import fnmatch
import json
import uuid
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

COMPAT = "application/vnd.elasticsearch+json; compatible-with=9"
VERSION = "9.1.0"


def _ms(value: Any) -> float:
    """A range bound as epoch milliseconds: a number (epoch_millis) or an RFC 3339 date."""
    if isinstance(value, int | float):
        return float(value)
    text = str(value)
    if text.isdigit():
        return float(text)
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000


def _get(doc: dict[str, Any], path: str) -> Any:
    for part in path.split("."):
        if not isinstance(doc, dict) or part not in doc:
            return None
        doc = doc[part]
    return doc


def matches(doc: dict[str, Any], query: dict[str, Any]) -> bool:
    """Whether `doc` satisfies the (small) query DSL subset this server understands."""
    if not query or "match_all" in query:
        return True
    if "term" in query:
        ((name, want),) = query["term"].items()
        want = want.get("value") if isinstance(want, dict) else want
        return _get(doc, name.removesuffix(".keyword")) == want
    if "terms" in query:
        ((name, wants),) = query["terms"].items()
        return _get(doc, name.removesuffix(".keyword")) in wants
    if "range" in query:
        ((name, bounds),) = query["range"].items()
        have = _get(doc, name)
        if have is None:
            return False
        t = _ms(have)
        checks = {"gte": t.__ge__, "gt": t.__gt__, "lte": t.__le__, "lt": t.__lt__}
        return all(checks[op](_ms(v)) for op, v in bounds.items() if op in checks)
    if "query_string" in query:
        # Lucene's query_string, the part Grafana's panels use (tests/grafana_panels.py).
        from tests.grafana_panels import lucene_filter

        return bool(lucene_filter(query["query_string"]["query"], [doc]))
    if "bool" in query:
        b = query["bool"]
        must = [*_list(b.get("must")), *_list(b.get("filter"))]
        if not all(matches(doc, q) for q in must):
            return False
        if any(matches(doc, q) for q in _list(b.get("must_not"))):
            return False
        should = _list(b.get("should"))
        return not should or any(matches(doc, q) for q in should)
    raise ValueError(f"query not supported by the test server: {json.dumps(query)}")


def _list(value: Any) -> list[dict[str, Any]]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


@dataclass
class EsServer:
    """The server's state: indices (name → id → source), templates, and what it was sent."""

    indices: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    templates: dict[str, dict[str, Any]] = field(default_factory=dict)
    content_types: list[str] = field(default_factory=list)
    bulk_requests: int = 0
    fault: str = ""  # "", "unavailable", "hang", "garbage", "reject", "template"
    port: int = 0
    _runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # ------------------------------------------------------------------ lifecycle

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._product], client_max_size=1 << 30)
        app.router.add_get("/", self._info)
        app.router.add_put("/_index_template/{name}", self._put_template)
        app.router.add_post("/_bulk", self._bulk)
        app.router.add_put("/_bulk", self._bulk)
        app.router.add_post("/{index}/_bulk", self._bulk)
        app.router.add_route("*", "/_search", self._search)
        app.router.add_route("*", "/{index}/_search", self._search)
        app.router.add_route("*", "/{index}/_count", self._count)
        app.router.add_route("*", "/_refresh", self._refresh)
        app.router.add_route("*", "/{index}/_refresh", self._refresh)
        return app

    async def start(self, port: int = 0) -> None:
        """Listen on `port` (0: any; again after `stop`: the same one as before)."""
        self._runner = web.AppRunner(self.app(), shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port or self.port)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop(self) -> None:
        """Stop listening (the data stays, as if the cluster came back with its disks)."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # ------------------------------------------------------------------ wire

    @web.middleware
    async def _product(self, request: web.Request, handler: Any) -> web.StreamResponse:
        self.content_types.append(request.headers.get("Content-Type", ""))
        if self.fault == "hang":
            await asyncio.sleep(3600)
        if self.fault == "unavailable":
            resp: web.StreamResponse = self._json(request, {"error": "unavailable"}, 503)
        elif self.fault == "garbage" and request.path != "/":
            resp = web.Response(
                text="<html>proxy error</html>", content_type="text/html", status=200
            )
        else:
            resp = await handler(request)
        resp.headers["X-Elastic-Product"] = "Elasticsearch"
        return resp

    @staticmethod
    def _json(request: web.Request, body: Any, status: int = 200) -> web.Response:
        compat = "compatible-with" in request.headers.get("Accept", "")
        return web.Response(
            body=json.dumps(body).encode(),
            status=status,
            headers={"Content-Type": COMPAT if compat else "application/json"},
        )

    async def _info(self, request: web.Request) -> web.Response:
        return self._json(
            request,
            {
                "name": "orbiter-test-es",
                "cluster_name": "orbiter-test",
                "cluster_uuid": "orbiter-test-cluster",
                "version": {
                    "number": VERSION,
                    "build_flavor": "default",
                    "build_type": "tar",
                    "lucene_version": "10.2.2",
                    "minimum_wire_compatibility_version": "8.19.0",
                    "minimum_index_compatibility_version": "8.0.0",
                },
                "tagline": "You Know, for Search",
            },
        )

    async def _put_template(self, request: web.Request) -> web.Response:
        if self.fault == "template":
            error = {"type": "illegal_argument_exception", "reason": "template refused"}
            return self._json(request, {"error": error, "status": 400}, 400)
        self.templates[request.match_info["name"]] = await request.json()
        return self._json(request, {"acknowledged": True})

    async def _bulk(self, request: web.Request) -> web.Response:
        self.bulk_requests += 1
        lines = [line for line in (await request.read()).splitlines() if line.strip()]
        default_index = request.match_info.get("index")
        items = []
        i = 0
        while i < len(lines):
            action = json.loads(lines[i])
            ((op, meta),) = action.items()
            source = json.loads(lines[i + 1]) if op in ("index", "create") else None
            i += 2 if source is not None else 1
            items.append({op: self._apply(op, meta, source, default_index)})
        errors = any(next(iter(item.values()))["status"] >= 300 for item in items)
        return self._json(request, {"took": 1, "errors": errors, "items": items})

    def _apply(
        self, op: str, meta: dict[str, Any], source: dict[str, Any] | None, default: str | None
    ) -> dict[str, Any]:
        index = meta.get("_index") or default or ""
        doc_id = meta.get("_id") or uuid.uuid4().hex
        result: dict[str, Any] = {"_index": index, "_id": doc_id}
        if self.fault == "reject":
            return {
                **result,
                "status": 429,
                "error": {
                    "type": "es_rejected_execution_exception",
                    "reason": "rejected by the test server",
                },
            }
        docs = self.indices.setdefault(index, {})
        if op == "delete":
            found = docs.pop(doc_id, None) is not None
            return {
                **result,
                "result": "deleted" if found else "not_found",
                "status": 200 if found else 404,
            }
        if op == "create" and doc_id in docs:
            return {
                **result,
                "status": 409,
                "error": {
                    "type": "version_conflict_engine_exception",
                    "reason": f"[{doc_id}]: version conflict, document already exists",
                },
            }
        if op not in ("index", "create"):
            return {
                **result,
                "status": 400,
                "error": {"type": "illegal_argument_exception", "reason": f"unknown action {op}"},
            }
        existed = doc_id in docs
        assert source is not None
        docs[doc_id] = source
        return {
            **result,
            "_version": 1,
            "result": "updated" if existed else "created",
            "status": 200 if existed else 201,
            "_shards": {"total": 1, "successful": 1, "failed": 0},
        }

    def _selected(self, pattern: str | None) -> list[str]:
        if not pattern or pattern in ("_all", "*"):
            return sorted(self.indices)
        out = []
        for part in pattern.split(","):
            out += [name for name in sorted(self.indices) if fnmatch.fnmatchcase(name, part)]
        return out

    def documents(self, pattern: str | None = None) -> list[dict[str, Any]]:
        """Every stored document of the matching indices (test assertions)."""
        return [doc for name in self._selected(pattern) for doc in self.indices[name].values()]

    async def _query(self, request: web.Request) -> tuple[list[tuple[str, str, Any]], Any]:
        body = await request.json() if request.can_read_body else {}
        query = body.get("query", {})
        hits = [
            (name, doc_id, doc)
            for name in self._selected(request.match_info.get("index"))
            for doc_id, doc in self.indices[name].items()
            if matches(doc, query)
        ]
        return hits, body

    async def _search(self, request: web.Request) -> web.Response:
        try:
            hits, body = await self._query(request)
        except ValueError as e:
            return self._json(
                request,
                {"error": {"type": "parsing_exception", "reason": str(e)}, "status": 400},
                400,
            )
        for sort in reversed(_list(body.get("sort"))):
            ((name, how),) = (sort if isinstance(sort, dict) else {sort: "asc"}).items()
            order = how.get("order", "asc") if isinstance(how, dict) else how
            hits.sort(key=lambda h, n=name: _ms(_get(h[2], n) or 0), reverse=order == "desc")
        size = int(body.get("size", request.query.get("size", 10)))
        return self._json(
            request,
            {
                "took": 1,
                "timed_out": False,
                "_shards": {"total": 1, "successful": 1, "skipped": 0, "failed": 0},
                "hits": {
                    "total": {"value": len(hits), "relation": "eq"},
                    "max_score": None,
                    "hits": [
                        {"_index": i, "_id": d, "_score": None, "_source": s}
                        for i, d, s in hits[:size]
                    ],
                },
            },
        )

    async def _count(self, request: web.Request) -> web.Response:
        hits, _ = await self._query(request)
        return self._json(request, {"count": len(hits), "_shards": {"total": 1, "successful": 1}})

    async def _refresh(self, request: web.Request) -> web.Response:
        return self._json(request, {"_shards": {"total": 1, "successful": 1, "failed": 0}})


async def _main(port: int) -> None:
    server = EsServer()
    await server.start(port)
    print(f"listening on {server.url}", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    asyncio.run(_main(parser.parse_args().port))
