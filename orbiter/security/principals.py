"""Finding the principal of a call: a verified client certificate or a bearer token."""

from __future__ import annotations

from orbiter.security.settings import SecuritySettings


class Unauthenticated(Exception):
    """No principal: the message says what the caller must present."""


def bearer(value: str) -> str:
    """The token of an `Authorization: Bearer <token>` value ('' if it is not one)."""
    scheme, _, token = value.strip().partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def resolve(settings: SecuritySettings, cert_cn: str, authorization: str) -> str:
    """The principal: a token names one from the credentials file; else the certificate's CN.

    Returns '' when authentication is off and nothing was presented; raises
    Unauthenticated when it is on and neither is valid.
    """
    token = bearer(authorization)
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
