"""Agent attributes: free-form name/value text an agent advertises (`rack:r1;zone:a`).

Attributes are not allocated; the master passes them along with offers so
schedulers can place work (e.g. one replica per rack). Values are plain
strings here, unlike Mesos's typed attributes, because placement code
compares them as text anyway.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from orbiter.proto import messages_pb2

__all__ = ["InvalidAttributes", "format_attributes", "from_proto", "parse_attributes", "to_proto"]

_NAME = re.compile(r"[^\s:;]+")
_BAD_IN_VALUE = re.compile(r"[;\n\r]")


class InvalidAttributes(ValueError):
    """Attributes that cannot be parsed or validated; the message names the bad item."""


def _check(name: str, value: str) -> None:
    if not name:
        raise InvalidAttributes("empty name")
    if _NAME.fullmatch(name) is None:
        raise InvalidAttributes(f"name {name!r} must not contain whitespace, ':' or ';'")
    if _BAD_IN_VALUE.search(value) or value != value.strip():
        raise InvalidAttributes(
            f"value {value!r} must not contain ';' or line breaks, nor start or end with spaces"
        )


def parse_attributes(text: str) -> dict[str, str]:
    """Parse `rack:r1;zone:a`; whitespace around names and values is dropped.

    A value may contain ':' (only the first one separates); empty items
    between ';' are ignored, so a trailing ';' is fine.
    """
    out: dict[str, str] = {}
    where: dict[str, int] = {}
    for i, raw in enumerate(text.split(";"), start=1):
        token = raw.strip()
        if not token:
            continue
        name, colon, value = token.partition(":")
        name, value = name.strip(), value.strip()
        try:
            if not colon:
                raise InvalidAttributes("missing ':' between name and value")
            _check(name, value)
            if name in out:
                raise InvalidAttributes(f"'{name}' given twice (also item {where[name]})")
        except InvalidAttributes as e:
            raise InvalidAttributes(f"bad attribute '{token}' (item {i}): {e}") from None
        out[name] = value
        where[name] = i
    return out


def format_attributes(attributes: Mapping[str, str]) -> str:
    """The text `parse_attributes` reads back, sorted by name so it is deterministic."""
    for name, value in attributes.items():
        try:
            _check(name, value)
        except InvalidAttributes as e:
            raise InvalidAttributes(f"bad attribute {name!r}: {e}") from None
    return ";".join(f"{name}:{attributes[name]}" for name in sorted(attributes))


def to_proto(attributes: Mapping[str, str]) -> list[messages_pb2.Attribute]:
    """One Attribute message per name, sorted by name."""
    from orbiter.proto import messages_pb2

    return [messages_pb2.Attribute(name=n, value=attributes[n]) for n in sorted(attributes)]


def from_proto(attributes: Iterable[messages_pb2.Attribute]) -> dict[str, str]:
    """Validate attributes from the wire: names non-empty, unique, and formattable."""
    out: dict[str, str] = {}
    for i, msg in enumerate(attributes):
        try:
            _check(msg.name, msg.value)
            if msg.name in out:
                raise InvalidAttributes(f"'{msg.name}' given twice")
        except InvalidAttributes as e:
            raise InvalidAttributes(f"bad attribute attributes[{i}] ({msg.name!r}): {e}") from None
        out[msg.name] = msg.value
    return out
