"""Durations as operators write them: `30s`, `5m`, `2h`, `1h30m`, `250ms`, or plain seconds."""

from __future__ import annotations

import math
import re

_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(text: str) -> float:
    """Seconds in `text`; raises ValueError saying what a duration looks like."""
    t = text.strip()
    try:
        value = float(t)
    except ValueError:
        pass
    else:
        if value >= 0 and value != float("inf"):
            return value
        raise ValueError(f"duration {text!r} must be a finite number of seconds >= 0")
    pos = 0
    total = 0.0
    for m in _PART.finditer(t):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    if pos != len(t) or not t:
        raise ValueError(f"{text!r} is not a duration: use e.g. 30s, 5m, 2h, 1h30m or seconds")
    return total


def format_duration(seconds: float) -> str:
    """The one way Orbiter shows a length of time: `45s`, `1m30s`, `1h30m`, `2d3h`.

    Whole seconds, the two largest units that apply (a pin's `1h30m left` need not
    say seconds); it reads back with parse_duration."""
    if not math.isfinite(seconds):  # an old registry's endless pin, say
        return "forever"
    s = max(0, round(seconds))
    if s == 0:
        return "0s"
    parts = []
    for unit, name in ((86400, "d"), (3600, "h"), (60, "m"), (1, "s")):
        if s >= unit or parts:
            parts.append((s // unit, name))
            s %= unit
        if len(parts) == 2:
            break
    return "".join(f"{n}{name}" for n, name in parts if n)


def time_left(until: float, now: float) -> str:
    """`1h30m left`, or `expired`: how pins and silences show their remaining time."""
    if until <= now:
        return "expired"
    return "no end" if math.isinf(until) else f"{format_duration(until - now)} left"
