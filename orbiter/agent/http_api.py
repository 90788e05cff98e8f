"""The agent's HTTP server: /health, /metrics, /state, /files (sandboxes) and Mesos's
v1 executor API (/api/v1/executor)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from orbiter import httperrors
from orbiter.agent import checkpoint, mesos_executor
from orbiter.agent.openapi import DOCUMENT, MAX_OFFSET, MAX_READ
from orbiter.proto import messages_pb2
from orbiter.security import acl, http_auth

if TYPE_CHECKING:
    from orbiter.agent.agent import Agent


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(
        text=httperrors.json_text(data, indent=1), status=status, content_type="application/json"
    )


def _error(status: int, message: str) -> web.Response:
    return _json({"error": message}, status)


class AgentHttp:
    def __init__(self, agent: Agent) -> None:
        self.agent = agent
        # json_errors outermost: auth's refusals are JSON too.
        self.app = web.Application(
            middlewares=[
                httperrors.json_errors,
                # Executors prove who they are with their own tokens there, not principals.
                http_auth.middleware(
                    lambda: agent.security, own_auth=frozenset({mesos_executor.PATH})
                ),
            ]
        )
        r = self.app.router
        r.add_get("/health", self.health)
        r.add_get("/metrics", self.metrics)
        r.add_get("/state", self.state)
        r.add_get("/files/browse", self.browse)
        r.add_get("/files/read", self.read)
        r.add_get("/api/v1/openapi.json", self.openapi)
        r.add_post(mesos_executor.PATH, mesos_executor.MesosExecutorApi(agent).handle)
        self._runner: web.AppRunner | None = None

    async def start(self, host: str, port: int) -> int:
        """Listen on host:port (0 picks a free port); returns the port."""
        self._runner = httperrors.JsonErrorsRunner(self.app, access_log=None, shutdown_timeout=2.0)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            sock.close()
            await self._runner.cleanup()
            raise
        ssl_context = self.agent.security.server_ssl_context()
        site = web.SockSite(self._runner, sock, ssl_context=ssl_context)
        await site.start()
        return sock.getsockname()[1]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def health(self, request: web.Request) -> web.Response:
        return _json({"status": "ok", "registered": self.agent.registered.is_set()})

    async def openapi(self, request: web.Request) -> web.Response:
        return _json(DOCUMENT)

    async def metrics(self, request: web.Request) -> web.Response:
        return web.Response(
            body=generate_latest(self.agent.metrics.registry),
            headers={"Content-Type": CONTENT_TYPE_LATEST},
        )

    async def state(self, request: web.Request) -> web.Response:
        a = self.agent
        return _json(
            {
                "id": a.agent_id,
                "http_address": a.http_address,
                "master": a.settings.master,
                "registered": a.registered.is_set(),
                "containerizer": a.settings.containerizer,
                "containerizers": a.containerizers,
                "resources": {"text": a.resources.format(), "quantities": a.resources.quantities()},
                "used": a.used().quantities(),
                "attributes": a.settings.attributes,
                "work_dir": str(a.settings.work_dir),
                "start_time": a.started,
                "tasks": [
                    {
                        "id": t.info.task_id,
                        "name": t.info.name,
                        "framework_id": t.framework_id,
                        "state": messages_pb2.TaskState.Name(t.state),
                        "sandbox": str(t.sandbox) if t.sandbox else None,
                        "pid": t.container.pid if t.container is not None else None,
                    }
                    for t in a.tasks.values()
                ],
                "status_updates_pending": len(a.updates),
                "checks": a.checks.state(),
            }
        )

    async def _sandbox(self, request: web.Request) -> Path | web.Response:
        for name, value in request.query.items():
            if "\x00" in value or "\x00" in name:
                return _error(400, f"parameter {name!r} holds a NUL byte; no file name can")
        task_id = request.query.get("task_id", "")
        framework_id = request.query.get("framework_id", "")
        if not task_id:
            return _error(400, "task_id is required")
        if not framework_id:
            owners = [fw for fw, tid in self.agent.tasks if tid == task_id]
            if len(owners) == 1:
                framework_id = owners[0]
        if not framework_id:
            return _error(
                404,
                f"task {task_id!r} is not on this agent; give framework_id to "
                "read the sandbox of a finished task",
            )
        # The sandbox and its owner are on disk: looked up off the event loop.
        sandbox, info = await asyncio.to_thread(
            _find_sandbox, self.agent.settings.work_dir, framework_id, task_id
        )
        if sandbox is None:
            return _error(404, f"no sandbox for task {task_id!r} of framework {framework_id!r}")
        try:
            acl.authorize(
                self.agent.security.acls, http_auth.principal_of(request), acl.READ_SANDBOX,
                [info.principal if info is not None else ""],
                owner=info.principal if info is not None else "",
            )  # fmt: skip
        except acl.Forbidden as e:
            return _error(403, e.message)
        return sandbox

    async def browse(self, request: web.Request) -> web.Response:
        sandbox = await self._sandbox(request)
        if isinstance(sandbox, web.Response):
            return sandbox
        files = await asyncio.to_thread(_listing, sandbox)
        return _json({"sandbox": str(sandbox), "files": files})

    async def read(self, request: web.Request) -> web.Response:
        sandbox = await self._sandbox(request)
        if isinstance(sandbox, web.Response):
            return sandbox
        name = request.query.get("path", "stdout")
        try:
            offset = int(request.query.get("offset", "0"))
            length = int(request.query.get("length", str(MAX_READ)))
        except ValueError:
            return _error(400, "offset and length must be integers")
        if not 0 <= offset <= MAX_OFFSET or not 0 <= length <= MAX_READ:
            return _error(
                400, f"offset must be between 0 and {MAX_OFFSET}, length between 0 and {MAX_READ}"
            )
        data = await asyncio.to_thread(_read_range, sandbox, name, offset, length)
        if data is None:
            return _error(404, f"no file {name!r} in the sandbox")
        return web.Response(body=data, content_type="text/plain", charset="utf-8")


# Blocking: the handlers above run these in a thread (a sandbox's disk may be slow or busy
# with the tasks' own writes, and the agent's heartbeats share the loop).


def _find_sandbox(
    work_dir: Path, framework_id: str, task_id: str
) -> tuple[Path | None, messages_pb2.FrameworkInfo | None]:
    """The task's sandbox directory (None unless it is one under the work dir's
    sandboxes/) and the info of the framework that owns it."""
    root = work_dir / "sandboxes"
    try:
        sandbox = (root / framework_id / task_id).resolve()
        found = root.resolve() in sandbox.parents and sandbox.is_dir()
    except OSError:  # a name too long for the file system, say
        found = False
    if not found:
        return None, None
    return sandbox, checkpoint.read_framework(work_dir, framework_id)


def _listing(sandbox: Path) -> list[dict[str, Any]]:
    """The files /files/read would serve: a link out of the sandbox is not listed (its
    target's size is not the task's to learn)."""
    out = []
    for p in sorted(sandbox.iterdir()):
        with contextlib.suppress(OSError):  # gone since iterdir: not listed
            if p.resolve().parent == sandbox and p.is_file():
                out.append({"path": p.name, "size": p.stat().st_size})
    return out


def _read_range(sandbox: Path, name: str, offset: int, length: int) -> bytes | None:
    """Up to `length` bytes of the sandbox's file `name` from `offset`; None if the
    sandbox holds no such file (directly: not below, not through a link out)."""
    try:
        path = (sandbox / name).resolve()
        if not (path.parent == sandbox and path.is_file()):
            return None
        with path.open("rb") as f:
            # Past the end is nothing to read; seek itself refuses offsets past the file
            # system's largest file (EINVAL), so it is not asked.
            if offset >= os.fstat(f.fileno()).st_size:
                return b""
            f.seek(offset)
            return f.read(length)
    except OSError:  # removed or unreadable since: as if not there
        return None
