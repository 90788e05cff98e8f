"""gRPC channels to the master with the process's TLS settings and token.

Over TLS a token travels as `authorization: Bearer` call credentials. Without
TLS (a loopback master with --credentials), gRPC would not send call
credentials, so an interceptor adds the same metadata to every call.
"""

from __future__ import annotations

from typing import Any

import grpc

from orbiter.security.settings import SecuritySettings


def _with_token(details: Any, token: str) -> Any:
    metadata = list(details.metadata or ())
    metadata.append(("authorization", f"Bearer {token}"))
    return details._replace(metadata=metadata) if hasattr(details, "_replace") else _Details(
        details, metadata
    )


class _Details(grpc.ClientCallDetails):
    def __init__(self, details: Any, metadata: list[tuple[str, str]]) -> None:
        self.method = details.method
        self.timeout = details.timeout
        self.metadata = metadata
        self.credentials = details.credentials
        self.wait_for_ready = getattr(details, "wait_for_ready", None)
        self.compression = getattr(details, "compression", None)


class _AioToken:
    """Adds the bearer token to a call's metadata (grpc.aio takes one kind per object)."""

    def __init__(self, token: str) -> None:
        self.token = token

    def _details(self, details: grpc.aio.ClientCallDetails) -> grpc.aio.ClientCallDetails:
        metadata = grpc.aio.Metadata(*(details.metadata or ()))
        metadata.add("authorization", f"Bearer {self.token}")
        return grpc.aio.ClientCallDetails(
            details.method, details.timeout, metadata, details.credentials,
            details.wait_for_ready,
        )  # fmt: skip


class _UU(_AioToken, grpc.aio.UnaryUnaryClientInterceptor):
    async def intercept_unary_unary(self, continuation, details, request):
        return await continuation(self._details(details), request)


class _US(_AioToken, grpc.aio.UnaryStreamClientInterceptor):
    async def intercept_unary_stream(self, continuation, details, request):
        return await continuation(self._details(details), request)


class _SU(_AioToken, grpc.aio.StreamUnaryClientInterceptor):
    async def intercept_stream_unary(self, continuation, details, request_iterator):
        return await continuation(self._details(details), request_iterator)


class _SS(_AioToken, grpc.aio.StreamStreamClientInterceptor):
    async def intercept_stream_stream(self, continuation, details, request_iterator):
        return await continuation(self._details(details), request_iterator)


class _SyncToken(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor):
    def __init__(self, token: str) -> None:
        self.token = token

    def intercept_unary_unary(self, continuation, details, request):
        return continuation(_with_token(details, self.token), request)

    def intercept_unary_stream(self, continuation, details, request):
        return continuation(_with_token(details, self.token), request)


def aio_channel(address: str, settings: SecuritySettings, options: Any = None) -> grpc.aio.Channel:
    creds = settings.grpc_channel_credentials()
    if creds is not None:
        return grpc.aio.secure_channel(address, creds, options=options)
    interceptors = [k(settings.token) for k in (_UU, _US, _SU, _SS)] if settings.token else None
    return grpc.aio.insecure_channel(address, options=options, interceptors=interceptors)


def channel(address: str, settings: SecuritySettings, options: Any = None) -> grpc.Channel:
    creds = settings.grpc_channel_credentials()
    if creds is not None:
        return grpc.secure_channel(address, creds, options=options)
    plain = grpc.insecure_channel(address, options=options)
    return grpc.intercept_channel(plain, _SyncToken(settings.token)) if settings.token else plain
