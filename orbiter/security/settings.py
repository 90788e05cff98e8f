"""What one process was told about TLS and identity, and the contexts made from it.

One `SecuritySettings` per process (flags over config keys over defaults),
set once at start with `configure` and read by every wire: servers (gRPC
credentials, aiohttp SSL context, who may call), clients (channel
credentials, HTTPS with the CA, the bearer token they send).

- TLS is on when a certificate and key are given (a server) or a CA is given
  (a client that verifies the server); URLs are then https.
- Authentication is on for a server given `--credentials` (tokens) or a CA
  (client certificates verified against it): every call must then carry a
  principal, or it is refused (gRPC UNAUTHENTICATED, HTTP 401).
- gRPC cannot ask for an optional client certificate: a gRPC server requests
  and requires one when `require_client_cert` is set, or when a CA is given
  and no credentials file (certificates are then the only way in). Otherwise
  gRPC principals come from tokens.
"""

from __future__ import annotations

import functools
import os
import ssl
from dataclasses import dataclass, field, replace
from pathlib import Path

from orbiter.security.acl import Acls
from orbiter.security.credentials import Credentials

SATELLITE_PRINCIPAL = "satellite"
TOKEN_ENV = "ORBITER_TOKEN"


class SecurityError(ValueError):
    """Settings that cannot work together; the message names the flag."""


@dataclass(frozen=True)
class SecuritySettings:
    tls_cert: str = ""
    tls_key: str = ""
    tls_ca: str = ""
    require_client_cert: bool = False
    # Server side: principals and tokens (--credentials); empty: no tokens accepted.
    credentials: Credentials = field(default_factory=Credentials)
    # Tokens a master made for processes it runs itself (its Satellite process, the
    # agents of `orbiter up`): accepted like the file's, but they change nothing else.
    internal: Credentials = field(default_factory=Credentials)
    # Client side: the bearer token this process sends ('' for none).
    token: str = ""
    # Allow a non-loopback bind without TLS and authentication.
    insecure: bool = False
    # The principal whose maintenance actions are Satellite's (by: satellite).
    satellite_principal: str = SATELLITE_PRINCIPAL
    # Who may do what (security.acls); disabled: every principal may, but root tasks.
    acls: Acls = field(default_factory=Acls)

    def check(self) -> None:
        if bool(self.tls_cert) != bool(self.tls_key):
            raise SecurityError("--tls-cert and --tls-key go together: give both or neither")
        for flag, path in (("--tls-cert", self.tls_cert), ("--tls-key", self.tls_key),
                           ("--tls-ca", self.tls_ca)):  # fmt: skip
            if path and not Path(path).is_file():
                raise SecurityError(f"{flag}: {path} does not exist")
        if self.require_client_cert and not self.tls_ca:
            raise SecurityError(
                "require_client_cert needs --tls-ca: the CA that client certificates are "
                "verified against"
            )

    @property
    def server_tls(self) -> bool:
        return bool(self.tls_cert and self.tls_key)

    @property
    def client_tls(self) -> bool:
        return bool(self.tls_ca or self.tls_cert)

    @property
    def scheme(self) -> str:
        return "https" if self.server_tls or self.client_tls else "http"

    @property
    def auth_enabled(self) -> bool:
        return bool(self.credentials) or (self.server_tls and bool(self.tls_ca))

    @property
    def grpc_requires_client_cert(self) -> bool:
        return bool(self.tls_ca) and (self.require_client_cert or not self.credentials)

    def url(self, address: str, path: str = "") -> str:
        return f"{self.scheme}://{address}{path}"

    def with_token(self, name: str, token: str, *actions: str) -> SecuritySettings:
        """Also accept `token` as principal `name` (the master's own Satellite process),
        trusted for `actions` when no ACL rule decides."""
        return replace(
            self,
            internal=self.internal.with_token(name, token),
            acls=self.acls.trusting(name, *actions),
        )

    # ------------------------------------------------------------------ contexts

    def server_ssl_context(self) -> ssl.SSLContext | None:
        if not self.server_tls:
            return None
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(self.tls_cert, self.tls_key)
        if self.tls_ca:
            ctx.load_verify_locations(self.tls_ca)
            ctx.verify_mode = ssl.CERT_REQUIRED if self.require_client_cert else ssl.CERT_OPTIONAL
        return ctx

    def client_ssl_context(self) -> ssl.SSLContext | None:
        if not self.client_tls:
            return None
        return _client_context(self.tls_ca, self.tls_cert, self.tls_key)

    def grpc_server_credentials(self):  # -> grpc.ServerCredentials | None
        import grpc

        if not self.server_tls:
            return None
        return grpc.ssl_server_credentials(
            [(_read(self.tls_key), _read(self.tls_cert))],
            root_certificates=_read(self.tls_ca) if self.tls_ca else None,
            require_client_auth=self.grpc_requires_client_cert,
        )

    def grpc_channel_credentials(self):  # -> grpc.ChannelCredentials | None
        import grpc

        if not self.client_tls:
            return None
        creds = grpc.ssl_channel_credentials(
            root_certificates=_read(self.tls_ca) if self.tls_ca else None,
            private_key=_read(self.tls_key) if self.tls_cert else None,
            certificate_chain=_read(self.tls_cert) if self.tls_cert else None,
        )
        if self.token:
            creds = grpc.composite_channel_credentials(
                creds, grpc.access_token_call_credentials(self.token)
            )
        return creds

    def principal_for(self, token: str) -> str:
        return self.credentials.principal_for(token) or self.internal.principal_for(token)

    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}


@functools.lru_cache(maxsize=16)
def _client_context(ca: str, cert: str, key: str) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=ca or None)
    if cert:
        ctx.load_cert_chain(cert, key)
    return ctx


@functools.lru_cache(maxsize=16)
def _read(path: str) -> bytes:
    return Path(path).read_bytes()


def read_token(token_file: str = "", env: dict[str, str] | None = None) -> str:
    """The client's bearer token: --token-file, else ORBITER_TOKEN, else none."""
    if token_file:
        try:
            text = Path(token_file).read_text(encoding="utf-8").strip()
        except OSError as e:
            raise SecurityError(f"--token-file: cannot read {token_file}: {e.strerror}") from None
        except UnicodeDecodeError:
            raise SecurityError(f"--token-file: {token_file} is not UTF-8 text") from None
        if not text:
            raise SecurityError(f"--token-file: {token_file} is empty")
        return text
    return (env if env is not None else os.environ).get(TOKEN_ENV, "").strip()


_current = SecuritySettings()


def configure(settings: SecuritySettings) -> None:
    """Set this process's settings (the CLI does, once, from flags and the config file)."""
    global _current
    settings.check()
    _current = settings


def current() -> SecuritySettings:
    return _current
