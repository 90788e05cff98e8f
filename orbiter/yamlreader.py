"""Reading YAML configuration with the file and line of every mistake.

Every configuration Orbiter reads (its own file, an Alertmanager-format
routing file, archive and scrape settings) goes through `YamlReader`, so a
wrong key or value always stops the start with `file:line: what was wrong`
and what was expected, the same way everywhere. It reads PyYAML's node
tree (`yaml.compose`), which keeps each value's position.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable
from typing import Any

import yaml

from orbiter.durations import parse_duration


class ConfigError(ValueError):
    """A configuration file that cannot be used; the message says where and what.

    `errors` holds every mistake found, one `file:line: message` each; the message is
    all of them, one a line, so a user fixes the file in one go."""

    def __init__(self, message: str, errors: list[str] | None = None) -> None:
        super().__init__(message)
        self.errors = errors if errors is not None else [message]


def unknown_key(where: str, key: str, known: Iterable[str]) -> str:
    """`unknown key satelite; did you mean satellite?`, at any depth (`where` is the parent)."""
    names = sorted(known)
    full = f"{where}.{key}" if where else key
    close = difflib.get_close_matches(key, names, n=1, cutoff=0.6)
    if close:
        return f"unknown key {full}; did you mean {f'{where}.' if where else ''}{close[0]}?"
    return f"unknown key {full}; expected one of {', '.join(names)}"


class YamlReader:
    """Typed accessors over YAML nodes; each failure names the file, line and key."""

    def __init__(self, path: str, collect: list[str] | None = None) -> None:
        """With `collect`, unknown and repeated keys are added there and skipped, so one
        reading reports every misspelt key at once; without it, the first one raises."""
        self.path = path
        self.collect = collect

    def fail(self, node: yaml.Node, message: str) -> ConfigError:
        return ConfigError(f"{self.path}:{node.start_mark.line + 1}: {message}")

    def mapping(self, node: yaml.Node, where: str, keys: set[str]) -> dict[str, yaml.Node]:
        if not isinstance(node, yaml.MappingNode):
            raise self.fail(node, f"{where} must be a mapping of {', '.join(sorted(keys))}")
        out: dict[str, yaml.Node] = {}
        for k, v in node.value:
            if not isinstance(k, yaml.ScalarNode) or k.value not in keys:
                wrong = self.fail(k, unknown_key(where, str(getattr(k, "value", "?")), keys))
            elif k.value in out:
                wrong = self.fail(k, f"{where}.{k.value} is given twice")
            else:
                out[k.value] = v
                continue
            if self.collect is None:
                raise wrong
            self.collect.append(str(wrong))
        return out

    def scalar(self, node: yaml.Node, where: str) -> Any:
        if not isinstance(node, yaml.ScalarNode):
            raise self.fail(node, f"{where} must be a single value")
        return yaml.safe_load(yaml.serialize(node))

    def string(self, node: yaml.Node, where: str) -> str:
        v = self.scalar(node, where)
        if not isinstance(v, str) or not v:
            raise self.fail(node, f"{where} must be a non-empty string, got {v!r}")
        return v

    def boolean(self, node: yaml.Node, where: str) -> bool:
        v = self.scalar(node, where)
        if not isinstance(v, bool):
            raise self.fail(node, f"{where} must be true or false, got {v!r}")
        return v

    def number(self, node: yaml.Node, where: str) -> float:
        v = self.scalar(node, where)
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
            raise self.fail(node, f"{where} must be a number, got {v!r}")
        return float(v)

    def whole(self, node: yaml.Node, where: str) -> int:
        v = self.scalar(node, where)
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            raise self.fail(node, f"{where} must be a whole number >= 0, got {v!r}")
        return v

    def duration(self, node: yaml.Node, where: str, positive: bool = True) -> float:
        v = self.scalar(node, where)
        try:
            seconds = parse_duration(str(v))
        except ValueError as e:
            raise self.fail(node, f"{where}: {e}") from None
        if positive and seconds <= 0:
            raise self.fail(node, f"{where} must be longer than 0s")
        return seconds

    def strings(self, node: yaml.Node, where: str) -> list[str]:
        if not isinstance(node, yaml.SequenceNode):
            raise self.fail(node, f"{where} must be a list of strings")
        return [self.string(n, f"{where}[{i}]") for i, n in enumerate(node.value)]
