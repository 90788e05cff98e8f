"""The agent's Mesos v1 executor API: POST /api/v1/executor on its HTTP server.

Executors written for Mesos (pymesos's MesosExecutorDriver, say) subscribe
here and get a RecordIO stream of JSON events; their UPDATE and MESSAGE calls
are answered 202. It is a second wire onto the same executor core as Orbiter's
gRPC Executor API (executors.py: registration, launch, the reliable update
path, messages, shutdown, recovery); orbiter/mesos/executor_convert.py
translates.

Who may act as an executor: a call with `Authorization: Bearer <token>` must
carry the token the agent gave that executor (MESOS_EXECUTOR_AUTHENTICATION_TOKEN,
the same one as ORBITER_EXECUTOR_TOKEN); the auth middleware leaves this path to
us, so credentials-file principals cannot act as executors. A call without a
token (pymesos sends none) is taken only while the agent's authentication is
off, as Mesos takes executors' calls without --authenticate_http_executors.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import TYPE_CHECKING

import grpc
from aiohttp import web

from orbiter import httperrors
from orbiter.agent.executors import Refused, RunningExecutor
from orbiter.mesos import executor_convert as convert
from orbiter.security.principals import bearer

if TYPE_CHECKING:
    from orbiter.agent.agent import Agent

log = logging.getLogger("orbiter.agent.mesos_executor")

PATH = "/api/v1/executor"
HEARTBEAT_INTERVAL = 15.0
"""Seconds between HEARTBEAT events on a quiet stream; a write to a gone executor fails."""
HTTP_STATUS = {
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.FAILED_PRECONDITION: 409,
}


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        text=json.dumps({"error": message}), status=status, content_type="application/json",
        headers=headers,
    )  # fmt: skip


class MesosExecutorApi:
    def __init__(self, agent: Agent) -> None:
        self.agent = agent

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if request.content_type != convert.JSON:
            return _error(
                415,
                f"Content-Type {request.content_type!r}: this agent takes Mesos executor calls "
                f"as {convert.JSON} (not {convert.PROTOBUF})",
            )
        accept = request.headers.get("Accept", "*/*")
        if not any(a.split(";")[0].strip() in (convert.JSON, "*/*", "application/*")
                   for a in accept.split(",")):  # fmt: skip
            return _error(406, f"Accept {accept!r}: this agent answers in {convert.JSON} only")
        try:
            call = convert.parse_call(await httperrors.read_json(request))
        except (httperrors.BadJson, convert.InvalidCall) as e:
            return _error(400, str(e))
        token = bearer(request.headers.get("Authorization", ""))
        if not token and self.agent.security.auth_enabled:
            return _error(
                401,
                "authentication is on: send the executor's token as 'Authorization: Bearer "
                "$MESOS_EXECUTOR_AUTHENTICATION_TOKEN'",
                {"WWW-Authenticate": 'Bearer realm="orbiter"'},
            )
        executors = self.agent.executors
        try:
            executor = executors.find(call.framework_id, call.executor_id, token or None)
            if isinstance(call, convert.Subscribe):
                return await self._subscribe(request, executor, call)
            if isinstance(call, convert.Update):
                executors.update(executor, call.status)
                # A Mesos executor does not resend what was answered 202: make it durable.
                await self.agent.written()
            else:
                executors.framework_message(executor, call.data)
        except Refused as e:
            return _error(HTTP_STATUS.get(e.code, 400), e.message)
        return web.Response(status=202)

    async def _subscribe(
        self, request: web.Request, executor: RunningExecutor, call: convert.Subscribe
    ) -> web.StreamResponse:
        subscription = convert.subscribe_request(call, [t.info for t in executor.tasks.values()])
        stream = self.agent.executors.subscribed(executor, subscription)
        response = web.StreamResponse(status=200, headers={"Content-Type": convert.JSON})
        response.enable_chunked_encoding()
        await response.prepare(request)
        framework_id = executor.framework_id
        try:
            while True:
                try:
                    async with asyncio.timeout(HEARTBEAT_INTERVAL):
                        event = await stream.get()
                except TimeoutError:
                    record = convert.HEARTBEAT
                else:
                    if event is None:  # ended, or a newer subscription took over
                        break
                    record = convert.event_json(event, framework_id)
                await response.write(convert.recordio(json.dumps(record).encode()))
        except (ConnectionResetError, ConnectionError):
            log.info("executor %s closed its Mesos event stream", executor.id)
            return response
        with contextlib.suppress(ConnectionError):
            await response.write_eof()
        return response
