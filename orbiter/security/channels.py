"""gRPC channels to the master with the process's TLS settings and token.

A token is sent as `authorization: Bearer` call credentials, which gRPC only
sends over TLS: tokens on gRPC need TLS (over plaintext they would travel in
the clear anyway).
"""

from __future__ import annotations

from typing import Any

import grpc

from orbiter.security.settings import SecuritySettings


def aio_channel(address: str, settings: SecuritySettings, options: Any = None) -> grpc.aio.Channel:
    creds = settings.grpc_channel_credentials()
    if creds is None:
        return grpc.aio.insecure_channel(address, options=options)
    return grpc.aio.secure_channel(address, creds, options=options)


def channel(address: str, settings: SecuritySettings, options: Any = None) -> grpc.Channel:
    creds = settings.grpc_channel_credentials()
    if creds is None:
        return grpc.insecure_channel(address, options=options)
    return grpc.secure_channel(address, creds, options=options)
