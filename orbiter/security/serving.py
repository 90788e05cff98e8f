"""Servers with the process's security settings: gRPC ports, HTTPS sites, and the
credentials a master hands the Satellite process it starts."""

from __future__ import annotations

import secrets
from dataclasses import replace

import grpc

from orbiter.security import acl
from orbiter.security.settings import TOKEN_ENV, SecuritySettings


def add_port(server: grpc.aio.Server, address: str, settings: SecuritySettings) -> int:
    """Bind gRPC with TLS when the settings have a certificate, else plaintext."""
    creds = settings.grpc_server_credentials()
    if creds is None:
        return server.add_insecure_port(address)
    return server.add_secure_port(address, creds)


def satellite_child(
    settings: SecuritySettings,
) -> tuple[SecuritySettings, list[str], dict[str, str]]:
    """What a master needs to start its Satellite process under auth and TLS.

    The child authenticates to the master with a fresh random token known only to
    the two processes (passed in its environment, readable only by this user), as
    the Satellite principal; it reaches the agents' /metrics with the master's
    certificate and CA. Returns (the master's settings accepting that token, the
    child's extra flags, its extra environment).
    """
    args: list[str] = []
    for flag, value in (("--tls-ca", settings.tls_ca), ("--tls-cert", settings.tls_cert),
                        ("--tls-key", settings.tls_key)):  # fmt: skip
        if value:
            args += [flag, value]
    if not settings.auth_enabled:
        return settings, args, {}
    token = secrets.token_urlsafe(32)
    master = settings.with_token(settings.satellite_principal, token, acl.MAINTAIN_AGENT)
    return master, args, {TOKEN_ENV: token}


def in_process_agents(
    settings: SecuritySettings, principal: str = "agent"
) -> tuple[SecuritySettings, SecuritySettings]:
    """`orbiter up`: the agents it runs beside its master authenticate with a fresh token
    as `principal` (gRPC asks for client certificates only when it requires them).
    Returns (the master's settings accepting it, the agents' settings)."""
    if not settings.auth_enabled or settings.token:
        return settings, settings
    token = secrets.token_urlsafe(32)
    master = settings.with_token(principal, token, acl.REGISTER_AGENT)
    return master, replace(settings, token=token)
