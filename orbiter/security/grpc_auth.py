"""The gRPC server interceptor that finds each call's principal.

Every handler is wrapped: before it runs, the principal is found from the
verified client certificate (gRPC's auth context, `x509_common_name`) or an
`authorization: Bearer` metadata entry, and put in a context variable that
handlers read with `current_principal()` (each RPC runs in its own task, so
the value is the call's own). With authentication on, a call without a
principal ends with UNAUTHENTICATED before the handler sees it.
"""

from __future__ import annotations

import contextvars
import inspect
from collections.abc import Callable
from typing import Any

import grpc

from orbiter.security.principals import Unauthenticated, resolve
from orbiter.security.settings import SecuritySettings

_principal: contextvars.ContextVar[str] = contextvars.ContextVar("orbiter_principal", default="")


def current_principal() -> str:
    """The principal of the gRPC call being handled ('' with authentication off)."""
    return _principal.get()


def _cert_cn(context: grpc.aio.ServicerContext) -> str:
    auth = context.auth_context() or {}
    names = auth.get("x509_common_name") or []
    return names[0].decode() if names else ""


def _authorization(context: grpc.aio.ServicerContext) -> str:
    for key, value in context.invocation_metadata() or ():
        if key == "authorization":
            return value if isinstance(value, str) else value.decode()
    return ""


class Authenticate(grpc.aio.ServerInterceptor):
    def __init__(self, settings: Callable[[], SecuritySettings]) -> None:
        self._settings = settings

    def _principal(self, context: grpc.aio.ServicerContext) -> str:
        return resolve(self._settings(), _cert_cn(context), _authorization(context))

    async def intercept_service(self, continuation, handler_call_details):
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler
        if handler.request_streaming and handler.response_streaming:
            inner, make = handler.stream_stream, grpc.stream_stream_rpc_method_handler
        elif handler.request_streaming:
            inner, make = handler.stream_unary, grpc.stream_unary_rpc_method_handler
        elif handler.response_streaming:
            inner, make = handler.unary_stream, grpc.unary_stream_rpc_method_handler
        else:
            inner, make = handler.unary_unary, grpc.unary_unary_rpc_method_handler
        find = self._principal

        if inspect.isasyncgenfunction(inner):

            async def wrapped_gen(request: Any, context: grpc.aio.ServicerContext):
                try:
                    _principal.set(find(context))
                except Unauthenticated as e:
                    await context.abort(grpc.StatusCode.UNAUTHENTICATED, str(e))
                async for item in inner(request, context):
                    yield item

            wrapped: Any = wrapped_gen
        else:

            async def wrapped_call(request: Any, context: grpc.aio.ServicerContext):
                try:
                    _principal.set(find(context))
                except Unauthenticated as e:
                    await context.abort(grpc.StatusCode.UNAUTHENTICATED, str(e))
                result = inner(request, context)
                return await result if inspect.isawaitable(result) else result

            wrapped = wrapped_call
        return make(
            wrapped,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )


def peer_host(context: grpc.aio.ServicerContext) -> str:
    """The caller's address without its port (ipv4:1.2.3.4:5 -> 1.2.3.4), for rate limits."""
    peer = context.peer() or ""
    kind, _, rest = peer.partition(":")
    if kind in ("ipv4", "ipv6"):
        host, _, _port = rest.rpartition(":")
        return host.strip("[]") or rest
    return peer
