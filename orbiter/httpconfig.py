"""How Orbiter talks HTTP to other systems: auth and TLS settings, read and applied once.

Prometheus writes these the same way everywhere (`basic_auth`, `authorization` or
`bearer_token`, `tls_config`), and so do Alertmanager's receivers; Alertmanager
clients, scrape jobs, remote write and receivers all read them with `parse_http`
and apply them with `auth_headers` and `ssl_context`.
"""

from __future__ import annotations

import base64
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from orbiter.yamlreader import YamlReader


@dataclass(frozen=True)
class BasicAuth:
    username: str
    password: str


@dataclass(frozen=True)
class TLSConfig:
    ca_file: str = ""
    cert_file: str = ""
    key_file: str = ""
    server_name: str = ""
    insecure_skip_verify: bool = False


@dataclass(frozen=True)
class HTTPConfig:
    """Alertmanager's `http_config`: how a receiver authenticates to an HTTP endpoint."""

    basic_auth: BasicAuth | None = None
    bearer_token: str = ""
    tls_config: TLSConfig = field(default_factory=TLSConfig)


def parse_tls(r: YamlReader, node: yaml.Node, where: str, base: Path) -> TLSConfig:
    m = r.mapping(
        node, where, {"ca_file", "cert_file", "key_file", "server_name", "insecure_skip_verify"}
    )
    values: dict[str, Any] = {}
    for key in ("ca_file", "cert_file", "key_file"):
        if key in m:
            path = base / r.string(m[key], f"{where}.{key}")
            if not path.is_file():
                raise r.fail(m[key], f"{where}.{key}: {path} does not exist")
            values[key] = str(path)
    if ("cert_file" in values) != ("key_file" in values):
        raise r.fail(node, f"{where}: cert_file and key_file go together")
    if "server_name" in m:
        values["server_name"] = r.string(m["server_name"], f"{where}.server_name")
    if "insecure_skip_verify" in m:
        values["insecure_skip_verify"] = r.boolean(
            m["insecure_skip_verify"], f"{where}.insecure_skip_verify"
        )
    return TLSConfig(**values)


def parse_http(
    r: YamlReader, m: Mapping[str, yaml.Node], where: str, base: Path
) -> HTTPConfig:
    """basic_auth, authorization (or bearer_token) and tls_config, as Prometheus writes them."""
    basic = None
    if "basic_auth" in m:
        b = r.mapping(m["basic_auth"], f"{where}.basic_auth", {"username", "password"})
        if "username" not in b:
            raise r.fail(m["basic_auth"], f"{where}.basic_auth needs a username")
        basic = BasicAuth(
            r.string(b["username"], f"{where}.basic_auth.username"),
            r.string(b["password"], f"{where}.basic_auth.password") if "password" in b else "",
        )
    token = ""
    if "authorization" in m:
        a = r.mapping(m["authorization"], f"{where}.authorization", {"type", "credentials"})
        kind = r.string(a["type"], f"{where}.authorization.type") if "type" in a else "Bearer"
        if kind != "Bearer":
            raise r.fail(a["type"], f"{where}.authorization.type: only Bearer is supported")
        if "credentials" not in a:
            raise r.fail(m["authorization"], f"{where}.authorization needs credentials")
        token = r.string(a["credentials"], f"{where}.authorization.credentials")
    if "bearer_token" in m:
        token = r.string(m["bearer_token"], f"{where}.bearer_token")
    if basic is not None and token:
        raise r.fail(m["basic_auth"], f"{where}: give basic_auth or a bearer token, not both")
    tls = parse_tls(r, m["tls_config"], f"{where}.tls_config", base) if "tls_config" in m else None
    return HTTPConfig(basic, token, tls or TLSConfig())


def ssl_context(tls: TLSConfig) -> ssl.SSLContext | None:
    """The client TLS context a tls_config asks for; None for the defaults."""
    if tls == TLSConfig():
        return None
    ctx = ssl.create_default_context(cafile=tls.ca_file or None)
    if tls.cert_file:
        ctx.load_cert_chain(tls.cert_file, tls.key_file)
    if tls.insecure_skip_verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


def auth_headers(http: HTTPConfig) -> dict[str, str]:
    """The Authorization header for an http_config (basic auth or bearer token), if any."""
    if http.basic_auth is not None:
        raw = f"{http.basic_auth.username}:{http.basic_auth.password}".encode()
        return {"Authorization": "Basic " + base64.b64encode(raw).decode()}
    if http.bearer_token:
        return {"Authorization": f"Bearer {http.bearer_token}"}
    return {}
