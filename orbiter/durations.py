"""Durations as operators write them: `30s`, `5m`, `2h`, `1h30m`, `250ms`, or plain seconds."""

from __future__ import annotations

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
    s = round(seconds)
    if s < 120:
        return f"{s}s"
    if s < 7200:
        return f"{s // 60}m{s % 60:02d}s" if s % 60 else f"{s // 60}m"
    return f"{s // 3600}h{(s % 3600) // 60:02d}m"
