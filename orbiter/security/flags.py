"""The security flags every `orbiter` command takes, the `security:` config keys,
and the refusal to serve a non-loopback address without TLS and authentication."""

from __future__ import annotations

import argparse
import ipaddress
import os
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from orbiter.security.acl import MAINTAIN_AGENT, Acls, parse_acls
from orbiter.security.credentials import load_credentials
from orbiter.security.settings import (
    SATELLITE_PRINCIPAL,
    SecurityError,
    SecuritySettings,
    read_token,
)
from orbiter.yamlreader import ConfigError, YamlReader

CONFIG_KEYS = {
    "tls_cert",
    "tls_key",
    "tls_ca",
    "require_client_cert",
    "credentials",
    "satellite_principal",
    "acls",
}


@dataclass(frozen=True)
class SecurityConfig:
    """The config file's `security:` section (paths relative to the file)."""

    tls_cert: str = ""
    tls_key: str = ""
    tls_ca: str = ""
    require_client_cert: bool = False
    credentials: str = ""
    satellite_principal: str = SATELLITE_PRINCIPAL
    acls: Acls = field(default_factory=Acls)


def parse_security(r: YamlReader, node: yaml.Node, base: Path) -> SecurityConfig:
    m = r.mapping(node, "security", CONFIG_KEYS)
    values: dict[str, object] = {}
    for key in ("tls_cert", "tls_key", "tls_ca", "credentials"):
        if key in m:
            path = base / r.string(m[key], f"security.{key}")
            if not path.is_file():
                raise r.fail(m[key], f"security.{key}: {path} does not exist")
            values[key] = str(path)
    if ("tls_cert" in values) != ("tls_key" in values):
        raise r.fail(node, "security: tls_cert and tls_key go together")
    if "require_client_cert" in m:
        values["require_client_cert"] = r.boolean(
            m["require_client_cert"], "security.require_client_cert"
        )
        if values["require_client_cert"] and "tls_ca" not in values:
            raise r.fail(m["require_client_cert"], "security.require_client_cert needs tls_ca")
    if "satellite_principal" in m:
        values["satellite_principal"] = r.string(
            m["satellite_principal"], "security.satellite_principal"
        )
    if "acls" in m:
        values["acls"] = parse_acls(r, m["acls"])
    return SecurityConfig(**values)  # type: ignore[arg-type]


def add_client_flags(p: argparse.ArgumentParser) -> argparse._ArgumentGroup:
    g = p.add_argument_group("TLS and identity")
    env = os.environ.get
    g.add_argument("--tls-cert", default=env("ORBITER_TLS_CERT", ""),
                   help="this process's certificate, PEM (env ORBITER_TLS_CERT)")  # fmt: skip
    g.add_argument("--tls-key", default=env("ORBITER_TLS_KEY", ""),
                   help="its private key, PEM (env ORBITER_TLS_KEY)")  # fmt: skip
    g.add_argument("--tls-ca", default=env("ORBITER_TLS_CA", ""),
                   help="the CA that peers' certificates are verified against "
                        "(env ORBITER_TLS_CA); TLS is on once given")  # fmt: skip
    g.add_argument("--token-file", default=env("ORBITER_TOKEN_FILE", ""),
                   help="send the bearer token in this file (else env ORBITER_TOKEN)")  # fmt: skip
    return g


def add_server_flags(p: argparse.ArgumentParser) -> None:
    g = add_client_flags(p)
    g.add_argument("--credentials", default=os.environ.get("ORBITER_CREDENTIALS", ""),
                   help="YAML file of principals and tokens: principals: [{name, token}] "
                        "(env ORBITER_CREDENTIALS); authentication is on once given")  # fmt: skip
    g.add_argument("--require-client-cert", action="store_true", default=None,
                   help="refuse TLS clients without a certificate signed by --tls-ca")  # fmt: skip
    g.add_argument("--insecure", action="store_true",
                   help="allow a non-loopback address without TLS and authentication")  # fmt: skip


def settings_from(args: argparse.Namespace, config: SecurityConfig | None) -> SecuritySettings:
    """Flags over the config file's security section over the defaults."""
    c = config or SecurityConfig()
    credentials_path = getattr(args, "credentials", "") or c.credentials
    try:
        credentials = load_credentials(credentials_path) if credentials_path else None
    except ConfigError as e:
        raise SecurityError(f"--credentials: {e}") from None
    require = getattr(args, "require_client_cert", None)
    settings = SecuritySettings(
        tls_cert=getattr(args, "tls_cert", "") or c.tls_cert,
        tls_key=getattr(args, "tls_key", "") or c.tls_key,
        tls_ca=getattr(args, "tls_ca", "") or c.tls_ca,
        require_client_cert=c.require_client_cert if require is None else require,
        token=read_token(getattr(args, "token_file", "")),
        insecure=bool(getattr(args, "insecure", False)),
        satellite_principal=c.satellite_principal,
        # Satellite's principal may deactivate and drain when no rule says otherwise.
        acls=c.acls.trusting(c.satellite_principal, MAINTAIN_AGENT),
        **({"credentials": credentials} if credentials is not None else {}),
    )
    settings.check()
    return settings


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_bind(settings: SecuritySettings, what: str, *hosts: str) -> None:
    """Refuse to serve a non-loopback address without TLS and authentication (unless
    --insecure); the message says which of the two is missing."""
    exposed = [h for h in hosts if h and not is_loopback(h)]
    if not exposed or settings.insecure:
        return
    missing = []
    if not settings.server_tls:
        missing.append("TLS (--tls-cert and --tls-key)")
    if not settings.auth_enabled:
        missing.append("authentication (--credentials, or --tls-ca for client certificates)")
    if missing:
        raise SecurityError(
            f"{what} would listen on {exposed[0]}, which is not loopback, without "
            + " and without ".join(missing)
            + "; anyone who reaches the port could act on the cluster. Give them, bind "
            "127.0.0.1, or pass --insecure to run so anyway"
        )
