"""The credentials file (`--credentials FILE`, as Mesos's): principals and their tokens.

    principals:
      - {name: alice, token: "s3cret"}
      - {name: ci, token_sha256: "9f86d0...")}   # sha256 hex of the token, not the token

Tokens are compared in constant time (hmac.compare_digest) on their sha256,
so a file may hold either the token or only its hash.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from orbiter.yamlreader import ConfigError, YamlReader

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,127}$")
HEX64 = re.compile(r"^[0-9a-f]{64}$")


def token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


@dataclass(frozen=True)
class Credentials:
    """Who may present which token: (principal, sha256 of the token) pairs."""

    entries: tuple[tuple[str, bytes], ...] = ()

    def principal_for(self, token: str) -> str:
        """The principal whose token this is, or '' (every entry is compared: constant time)."""
        digest = token_hash(token)
        found = ""
        for name, expected in self.entries:
            if hmac.compare_digest(digest, expected) and not found:
                found = name
        return found

    def with_token(self, name: str, token: str) -> Credentials:
        return Credentials((*self.entries, (name, token_hash(token))))

    def __bool__(self) -> bool:
        return bool(self.entries)


def load_credentials(path: str | Path) -> Credentials:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"{p}: cannot read the credentials file: {e.strerror}") from None
    except UnicodeDecodeError as e:
        raise ConfigError(f"{p}: not UTF-8 text: {e.reason} at byte {e.start}") from None
    try:
        root = yaml.compose(text)
    except yaml.YAMLError as e:
        raise ConfigError(f"{p}: not valid YAML: {e}") from None
    r = YamlReader(str(p))
    if root is None:
        raise ConfigError(f"{p}: empty; it needs principals: [{{name, token}}]")
    top = r.mapping(root, "the file", {"principals"})
    if "principals" not in top or not isinstance(top["principals"], yaml.SequenceNode):
        raise r.fail(root, "principals: a list of {name, token} (or {name, token_sha256})")
    entries: list[tuple[str, bytes]] = []
    names: set[str] = set()
    for i, node in enumerate(top["principals"].value):
        where = f"principals[{i}]"
        m = r.mapping(node, where, {"name", "token", "token_sha256"})
        if "name" not in m:
            raise r.fail(node, f"{where} needs a name")
        name = r.string(m["name"], f"{where}.name")
        if not NAME_RE.match(name):
            raise r.fail(m["name"], f"{where}.name {name!r}: letters, digits, . _ @ - only")
        if name in names:
            raise r.fail(m["name"], f"{where}.name {name!r} is listed twice")
        names.add(name)
        if ("token" in m) == ("token_sha256" in m):
            raise r.fail(node, f"{where} needs exactly one of token or token_sha256")
        if "token" in m:
            token = r.string(m["token"], f"{where}.token")
            if len(token) < 16:
                raise r.fail(m["token"], f"{where}.token is shorter than 16 characters")
            entries.append((name, token_hash(token)))
        else:
            hexed = r.string(m["token_sha256"], f"{where}.token_sha256").lower()
            if not HEX64.match(hexed):
                raise r.fail(m["token_sha256"], f"{where}.token_sha256 is not 64 hex digits")
            entries.append((name, bytes.fromhex(hexed)))
    return Credentials(tuple(entries))
