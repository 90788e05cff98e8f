"""The data every Satellite stage passes along: label sets, samples, series.

Label sets are sorted tuples of (name, value) pairs so they hash, compare and
cost little; `__name__` is an ordinary label, as in Prometheus.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Protocol

Labels = tuple[tuple[str, str], ...]
"""A label set: (name, value) pairs sorted by name, names unique."""


def labels_of(mapping: dict[str, str] | Iterable[tuple[str, str]]) -> Labels:
    """The canonical label set for a mapping; empty values are dropped as in Prometheus."""
    items = mapping.items() if isinstance(mapping, dict) else mapping
    return tuple(sorted((k, v) for k, v in items if v != ""))


_PAIRS: dict[tuple[str, str], tuple[str, str]] = {}
_MAX_PAIRS = 1 << 20


def shared_labels(pairs: Iterable[tuple[str, str]]) -> Labels:
    """A label set whose (name, value) pairs are shared with every equal pair seen before.

    1,000 agents expose the same metric names, label names and many values
    (`job`, `le`, paths): sharing one pair tuple (and its two strings) instead of
    one per series saves a few hundred bytes a series. Sharing is only identity,
    so the table is simply emptied when it grows past a million pairs.
    """
    table = _PAIRS
    if len(table) >= _MAX_PAIRS:
        table.clear()
    get = table.setdefault
    return tuple(sorted([get(p, p) for p in pairs]))


STALE_NAN_BITS = 0x7FF0000000000002
"""Prometheus's staleness marker: a NaN with this exact bit pattern."""


class MatchOp(Enum):
    EQUAL = "="
    NOT_EQUAL = "!="
    REGEX = "=~"
    NOT_REGEX = "!~"


@dataclass(frozen=True, slots=True)
class Matcher:
    """One label matcher of a selector; regexes are fully anchored as in Prometheus."""

    name: str
    op: MatchOp
    value: str


@dataclass(frozen=True, slots=True)
class Series:
    """One series' samples in a time window, oldest first; times in milliseconds."""

    labels: Labels
    timestamps: Sequence[int]
    values: Sequence[float]


class Storage(Protocol):
    """What the PromQL evaluator reads from: the TSDB, or a test's input series.

    `select` returns every series matching all matchers with its samples in
    [start_ms, end_ms] (both inclusive); staleness markers are included as
    samples with the STALE_NAN_BITS NaN so the evaluator can honour them.
    """

    def select(
        self, matchers: Sequence[Matcher], start_ms: int, end_ms: int
    ) -> Iterator[Series]: ...
