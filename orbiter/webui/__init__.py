"""The operator web UI: static files (HTML, CSS, ES modules) the master serves as they are.

No build step: the files in `static/` are what the browser runs, shipped inside the
package (pyproject's package-data). The pages read the same JSON API as the CLI, with the
operator's bearer token when authentication is on, so the files themselves are served
without credentials: they hold no cluster data.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from aiohttp import web

STATIC = Path(__file__).parent / "static"
PREFIX = "/ui/"
_TYPES = {
    ".html": "text/html",
    ".css": "text/css",
    ".js": "text/javascript",
    ".svg": "image/svg+xml",
}


def is_asset(path: str) -> bool:
    """A path of the UI's files (open without credentials: the login page is one of them)."""
    return path == "/" or path.startswith(PREFIX)


def _files() -> dict[str, tuple[bytes, str, str]]:
    """Every shipped file by name: its bytes, content type and ETag (read once)."""
    out = {}
    for path in sorted(STATIC.iterdir()):
        if path.suffix in _TYPES and path.is_file():
            data = path.read_bytes()
            etag = '"' + hashlib.blake2b(data, digest_size=12).hexdigest() + '"'
            out[path.name] = (data, _TYPES[path.suffix], etag)
    return out


class WebUi:
    def __init__(self) -> None:
        self.files = _files()

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/", self.index)
        app.router.add_get(PREFIX + "{name}", self.asset)

    def _send(self, request: web.Request, name: str) -> web.Response:
        found = self.files.get(name)
        if found is None:
            return web.json_response({"error": f"the web UI has no file {name!r}"}, status=404)
        data, content_type, etag = found
        # no-cache: the browser asks again each time and gets a 304 while the file is the same,
        # so an upgraded master's UI is picked up without a stale mix of old and new modules.
        headers = {"ETag": etag, "Cache-Control": "no-cache"}
        if request.headers.get("If-None-Match") == etag:
            return web.Response(status=304, headers=headers)
        return web.Response(body=data, content_type=content_type, charset="utf-8", headers=headers)

    async def index(self, request: web.Request) -> web.Response:
        return self._send(request, "index.html")

    async def asset(self, request: web.Request) -> web.Response:
        return self._send(request, request.match_info["name"])
