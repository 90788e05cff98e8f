"""Test support for the PromQL evaluator tests: an in-memory Storage and
Prometheus's `.test` series notation ("0+10x10", "1 _ stale 3"), so cases from
promql/testdata can be written the way Prometheus writes them."""

from __future__ import annotations

import math
import re
import struct
from collections.abc import Iterator, Sequence

from orbiter.satellite.series import STALE_NAN_BITS, Labels, Matcher, MatchOp, Series, labels_of

STALE_NAN = struct.unpack("<d", struct.pack("<Q", STALE_NAN_BITS))[0]

_SERIES_RE = re.compile(r"^\s*([a-zA-Z_:][a-zA-Z0-9_:]*)?\s*(\{.*\})?\s*$")
_LABEL_RE = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*,?')
_DURATION_RE = re.compile(r"(\d+)(ms|s|m|h|d)")
_UNITS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}


def duration_ms(text: str) -> int:
    total, pos = 0, 0
    for m in _DURATION_RE.finditer(text):
        assert m.start() == pos, text
        total += int(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    assert pos == len(text) and pos > 0, text
    return total


def parse_labels(text: str) -> Labels:
    """`name{a="b"}` -> canonical Labels."""
    m = _SERIES_RE.match(text)
    assert m, text
    pairs: dict[str, str] = {}
    if m.group(1):
        pairs["__name__"] = m.group(1)
    body = (m.group(2) or "{}")[1:-1]
    for lm in _LABEL_RE.finditer(body):
        pairs[lm.group(1)] = lm.group(2).encode().decode("unicode_escape")
    return labels_of(pairs)


def _number(text: str) -> float:
    return float(text.replace("Inf", "inf").replace("NaN", "nan"))


def expand_values(spec: str) -> list[float | None]:
    """Prometheus's load notation; None is a missing sample ("_")."""
    out: list[float | None] = []
    for token in spec.split():
        if token == "_":
            out.append(None)
        elif token == "stale":
            out.append(STALE_NAN)
        elif token.startswith("_x"):
            out.extend([None] * int(token[2:]))
        elif "x" in token:
            head, times = token.rsplit("x", 1)
            m = re.match(r"^([-+]?[^-+]+)([-+][^-+]+)?$", head)
            assert m, token
            start = _number(m.group(1))
            step = _number(m.group(2)) if m.group(2) else 0.0
            out.extend(start + step * i for i in range(int(times) + 1))
        else:
            out.append(_number(token))
    return out


class MemoryStorage:
    """A Storage holding whole series in lists; select cuts the window [start, end]."""

    def __init__(self) -> None:
        self.series: dict[Labels, tuple[list[int], list[float]]] = {}

    def add(self, labels: Labels, t_ms: int, value: float) -> None:
        ts, vs = self.series.setdefault(labels, ([], []))
        assert not ts or ts[-1] < t_ms
        ts.append(t_ms)
        vs.append(value)

    def load(self, interval: str, text: str, start_ms: int = 0) -> MemoryStorage:
        step = duration_ms(interval)
        for line in text.strip().splitlines():
            line = line.strip()
            if not line:
                continue
            # Split the series selector from its values at the last "}" or first space.
            cut = line.rindex("}") + 1 if "}" in line else line.index(" ")
            labels = parse_labels(line[:cut])
            for i, v in enumerate(expand_values(line[cut:])):
                if v is not None:
                    self.add(labels, start_ms + i * step, v)
        return self

    def select(self, matchers: Sequence[Matcher], start_ms: int, end_ms: int) -> Iterator[Series]:
        compiled = [
            (
                m.name,
                m.op,
                re.compile(f"^(?:{m.value})$", re.DOTALL) if "REGEX" in m.op.name else None,
                m.value,
            )
            for m in matchers
        ]
        for labels, (ts, vs) in self.series.items():
            d = dict(labels)
            if not all(_matches(d.get(n, ""), op, rx, val) for n, op, rx, val in compiled):
                continue
            idx = [i for i, t in enumerate(ts) if start_ms <= t <= end_ms]
            yield Series(labels, [ts[i] for i in idx], [vs[i] for i in idx])


def _matches(actual: str, op: MatchOp, rx: re.Pattern[str] | None, value: str) -> bool:
    if op is MatchOp.EQUAL:
        return actual == value
    if op is MatchOp.NOT_EQUAL:
        return actual != value
    assert rx is not None
    found = rx.match(actual) is not None
    return found if op is MatchOp.REGEX else not found


def same_value(a: float, b: float, rel: float = 1e-9) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    if math.isinf(a) or math.isinf(b):
        return a == b
    return math.isclose(a, b, rel_tol=rel, abs_tol=1e-12)
