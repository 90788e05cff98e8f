"""A local webhook that records every JSON body posted to it, for alerting tests."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from tests.conftest import free_port


async def recording_webhook() -> tuple[web.AppRunner, str, list[dict[str, Any]]]:
    """(runner to clean up, the hook's URL, the bodies received so far, in order)."""
    got: list[dict[str, Any]] = []

    async def hook(request: web.Request) -> web.Response:
        got.append(await request.json())
        return web.Response()

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, f"http://127.0.0.1:{port}/hook", got
