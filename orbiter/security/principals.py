"""Finding the principal of a call: a verified client certificate, a bearer token, or
HTTP Basic credentials whose secret is the principal's token (Mesos frameworks)."""

from __future__ import annotations

import base64
import binascii

from orbiter.security.settings import SecuritySettings


class Unauthenticated(Exception):
    """No principal: the message says what the caller must present."""


def bearer(value: str) -> str:
    """The token of an `Authorization: Bearer <token>` value ('' if it is not one)."""
    scheme, _, token = value.strip().partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def basic(value: str) -> tuple[str, str] | None:
    """(principal, secret) of an `Authorization: Basic base64(principal:secret)` value, the
    way Mesos frameworks (pymesos's `principal` and `secret`) present themselves."""
    scheme, _, encoded = value.strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        return None
    name, colon, secret = decoded.partition(":")
    return (name, secret) if colon and name and secret else None


def resolve(settings: SecuritySettings, cert_cn: str, authorization: str) -> str:
    """The principal: a token names one from the credentials file; else the certificate's CN.

    Returns '' when authentication is off and nothing was presented; raises
    Unauthenticated when it is on and neither is valid.
    """
    token = bearer(authorization)
    credentials = basic(authorization) if not token else None
    if credentials is not None:
        # HTTP Basic (Mesos's framework authentication): the secret is the principal's token.
        name, secret = credentials
        if settings.principal_for(secret) == name:
            return name
        if settings.auth_enabled:
            raise Unauthenticated(
                f"the Basic credentials' secret is not the token of principal {name!r} in "
                "this server's credentials file (--credentials)"
            )
    if token:
        name = settings.principal_for(token)
        if name:
            return name
        if settings.auth_enabled:
            raise Unauthenticated(
                "the bearer token is not in this server's credentials file (--credentials); "
                "agents check tokens against their own, so give them the same file"
            )
    if cert_cn:
        return cert_cn
    if settings.auth_enabled:
        raise Unauthenticated(
            "authentication required: present a client certificate signed by the cluster's CA "
            "(--tls-cert/--tls-key) or a bearer token (--token-file or ORBITER_TOKEN)"
        )
    return ""


def cn_of_peercert(peercert: dict | None) -> str:
    """The subject CN of a certificate as Python's ssl module returns it (getpeercert())."""
    if not peercert:
        return ""
    for rdn in peercert.get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                return str(value)
    return ""
