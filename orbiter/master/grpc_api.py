"""gRPC services of the master: Scheduler, AgentLink and Master (discovery).

Thin: each call turns into one state machine event; refusals (OrbiterError)
become gRPC statuses here and nowhere else.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING

import grpc

from orbiter.errors import OrbiterError
from orbiter.grpcerrors import add_checked
from orbiter.proto import (
    agent_pb2,
    agent_pb2_grpc,
    master_pb2,
    master_pb2_grpc,
    messages_pb2,
    scheduler_pb2,
    scheduler_pb2_grpc,
)
from orbiter.security import acl, bindings
from orbiter.security.grpc_auth import current_principal, peer_host

if TYPE_CHECKING:
    from orbiter.master.server import MasterServer

log = logging.getLogger("orbiter.master")

OK = scheduler_pb2.CallResponse()
REGISTER_TIMEOUT = 10.0


async def _refuse(
    context: grpc.aio.ServicerContext,
    error: OrbiterError,
    server: MasterServer | None = None,
    api: str = "grpc",
) -> None:
    from orbiter.master.server import refusal

    if server is not None:
        server.count_refusal(error, api)
    code, message = refusal(error)
    await context.abort(code, message)


class SchedulerService(scheduler_pb2_grpc.SchedulerServicer):
    def __init__(self, server: MasterServer) -> None:
        self.server = server

    @property
    def core(self):
        return self.server.core

    async def Subscribe(self, request, context):
        from orbiter.master.server import Close

        principal = current_principal()
        try:
            self.server.api_calls.admit(principal, peer_host(context), time.monotonic())
            fw_id, stream_id, effects = self.core.subscribe(
                request.framework_info, time.time(), principal
            )
        except OrbiterError as e:
            await _refuse(context, e, self.server)
            return
        box = self.server.open_framework_stream(fw_id, stream_id)
        self.server.submit(effects)
        log.info("framework %s (%s) subscribed", fw_id, request.framework_info.name)
        heartbeat = scheduler_pb2.Event(type=scheduler_pb2.Event.HEARTBEAT)
        interval = self.core.config.framework_heartbeat_interval
        try:
            while True:
                try:
                    async with asyncio.timeout(interval):  # not wait_for: see server.py
                        item = await box.queue.get()
                except TimeoutError:
                    yield heartbeat
                    continue
                if isinstance(item, Close):
                    yield scheduler_pb2.Event(
                        type=scheduler_pb2.Event.ERROR,
                        error=scheduler_pb2.Event.Error(message=item.message),
                    )
                    return
                yield item
        finally:
            self.server.close_framework_stream(fw_id, box)
            log.info("framework %s stream %s closed", fw_id, stream_id[:8])

    async def _unary(self, context, method, *args) -> scheduler_pb2.CallResponse:
        principal = current_principal()
        try:
            self.server.api_calls.admit(principal, peer_host(context), time.monotonic())
            bindings.check_framework_call(self.core, args[0], principal, method.__name__)
            effects = method(*args)
        except OrbiterError as e:
            await _refuse(context, e, self.server)
        self.server.submit(effects)
        return OK

    async def Accept(self, request, context):
        return await self._unary(
            context,
            self.core.accept,
            request.header,
            list(request.offer_ids),
            list(request.operations),
            request.filters,
            time.time(),
        )

    async def Decline(self, request, context):
        return await self._unary(
            context,
            self.core.decline,
            request.header,
            list(request.offer_ids),
            request.filters,
            time.time(),
        )

    async def Revive(self, request, context):
        return await self._unary(context, self.core.revive, request.header, list(request.roles))

    async def Suppress(self, request, context):
        return await self._unary(context, self.core.suppress, request.header, list(request.roles))

    async def Kill(self, request, context):
        grace = request.grace_period if request.HasField("grace_period") else None
        return await self._unary(
            context,
            self.core.kill,
            request.header,
            request.task_id,
            request.agent_id,
            grace,
            time.time(),
        )

    async def Acknowledge(self, request, context):
        return await self._unary(
            context, self.core.acknowledge, request.header, list(request.acknowledgements)
        )

    async def Reconcile(self, request, context):
        return await self._unary(
            context, self.core.reconcile, request.header, list(request.tasks), time.time()
        )

    async def Teardown(self, request, context):
        return await self._unary(context, self.core.teardown, request.header, time.time())

    async def Message(self, request, context):
        return await self._unary(
            context,
            self.core.message,
            request.header,
            request.agent_id,
            request.executor_id,
            request.data,
        )


class AgentLinkService(agent_pb2_grpc.AgentLinkServicer):
    def __init__(self, server: MasterServer) -> None:
        self.server = server

    async def Connect(self, request_iterator, context):
        from orbiter.master.server import Close

        server = self.server
        core = server.core
        try:
            first = await asyncio.wait_for(context.read(), REGISTER_TIMEOUT)
        except TimeoutError:
            await context.abort(grpc.StatusCode.DEADLINE_EXCEEDED, "no Register message within 10s")
            return
        if first is grpc.aio.EOF or not first.HasField("register"):
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT, "the first message on a link must be Register"
            )
            return
        link_id = server.new_link_id()
        principal = current_principal()
        try:
            server.registrations.admit(principal, peer_host(context), time.monotonic())
            info = first.register.info
            acl.authorize(server.security.acls, principal, acl.REGISTER_AGENT,
                          [(info.hostname, *([info.id] if info.id else []))])  # fmt: skip
            agent_id, effects = core.agent_register(
                link_id, first.register, time.time(), principal
            )
        except OrbiterError as e:
            log.warning("refused agent at %s: %s", first.register.info.http_address, e)
            await _refuse(context, e, server, "agent_registration")
            return
        box = server.open_agent_link(agent_id, link_id)
        server.submit(effects)
        log.info(
            "agent %s (%s, %s) registered",
            agent_id,
            first.register.info.hostname,
            first.register.info.http_address,
        )

        async def read() -> None:
            while True:
                msg = await context.read()
                if msg is grpc.aio.EOF:
                    break
                now = time.time()
                kind = msg.WhichOneof("message")
                if kind == "status_updates":
                    server.call(
                        core.status_updates, agent_id, link_id, msg.status_updates.updates, now
                    )
                elif kind == "heartbeat":
                    if not core.agent_message_seen(agent_id, link_id, now):
                        break
                elif kind == "framework_message":
                    server.call(
                        core.framework_message, agent_id, link_id, msg.framework_message, now
                    )
                elif kind == "executor_exited":
                    server.call(core.executor_exited, agent_id, link_id, msg.executor_exited, now)
                else:
                    log.warning("agent %s sent unexpected %s; ignored", agent_id, kind)
            box.queue.put_nowait(Close("agent closed its link"))

        reader = asyncio.create_task(read(), name=f"agent-link-{agent_id}")
        try:
            while True:
                item = await box.queue.get()
                if isinstance(item, Close):
                    if item.shutdown:
                        msg = agent_pb2.MasterMessage()
                        msg.shutdown.message = item.message
                        await context.write(msg)
                    break
                await context.write(item)
        except (asyncio.CancelledError, grpc.aio.AioRpcError):
            pass
        finally:
            reader.cancel()
            server.close_agent_link(agent_id, box)
            log.info("agent %s link closed", agent_id)


class MasterService(master_pb2_grpc.MasterServicer):
    def __init__(self, server: MasterServer) -> None:
        self.server = server

    async def GetInfo(self, request, context):
        info = messages_pb2.MasterInfo()
        info.CopyFrom(self.server.info)
        return info


class LeaderOnly(grpc.aio.ServerInterceptor):
    """Only an acting leader answers: a standby (or a leader cut off from ZooKeeper)
    refuses every call with UNAVAILABLE and a message naming the leader."""

    def __init__(self, server: MasterServer) -> None:
        self.server = server

    async def intercept_service(self, continuation, handler_call_details):
        handler = await continuation(handler_call_details)
        server = self.server
        if handler is None or (server.core is not None and not server.paused):
            return handler
        message = server.not_acting_reason()

        async def refuse(request, context):
            await context.abort(grpc.StatusCode.UNAVAILABLE, message)

        if handler.request_streaming and handler.response_streaming:
            make = grpc.stream_stream_rpc_method_handler
        elif handler.request_streaming:
            make = grpc.stream_unary_rpc_method_handler
        elif handler.response_streaming:
            make = grpc.unary_stream_rpc_method_handler
        else:
            make = grpc.unary_unary_rpc_method_handler
        return make(
            refuse,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )


def add_services(grpc_server: grpc.aio.Server, server: MasterServer) -> None:
    """Every service, malformed requests refused with INVALID_ARGUMENT (grpcerrors)."""
    for add, servicer in (
        (scheduler_pb2_grpc.add_SchedulerServicer_to_server, SchedulerService(server)),
        (agent_pb2_grpc.add_AgentLinkServicer_to_server, AgentLinkService(server)),
        (master_pb2_grpc.add_MasterServicer_to_server, MasterService(server)),
    ):
        add_checked(add, servicer, grpc_server)


__all__ = ["LeaderOnly", "add_services", "master_pb2"]
