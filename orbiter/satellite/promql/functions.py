"""The numeric core of PromQL's functions, with Go's float semantics.

Python's math module raises where Go returns NaN or an infinity (log(0),
fmod(x, 0), pow overflow, ...); every helper here returns what Prometheus
(Go) returns instead, so results match `promtool test rules` bit for bit
where the algorithms are the same. The math functions and ^ / atan2 come
from gomath, which follows Go's own algorithms for the same reason.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from decimal import Decimal

from orbiter.satellite.promql import gomath

NAN = math.nan
INF = math.inf

LABEL_NAME_RE = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")


# --- Go float arithmetic ---------------------------------------------------


def go_div(x: float, y: float) -> float:
    if y == 0.0:
        if x == 0.0 or x != x:
            return NAN
        negative = (x < 0) != (math.copysign(1.0, y) < 0)
        return -INF if negative else INF
    return x / y


def go_mod(x: float, y: float) -> float:
    try:
        return math.fmod(x, y)
    except ValueError:
        return NAN


go_pow = gomath.pow
"""The ^ operator: Go's math.Pow, bit for bit."""

go_atan2 = gomath.atan2
"""The atan2 operator: Go's math.Atan2, bit for bit."""


def go_max(x: float, y: float) -> float:
    if x == INF or y == INF:
        return INF
    if x != x or y != y:
        return NAN
    if x == 0.0 and x == y:
        return y if math.copysign(1.0, x) < 0 else x
    return x if x > y else y


def go_min(x: float, y: float) -> float:
    if x == -INF or y == -INF:
        return -INF
    if x != x or y != y:
        return NAN
    if x == 0.0 and x == y:
        return x if math.copysign(1.0, x) < 0 else y
    return x if x < y else y


def go_floor(x: float) -> float:
    return float(math.floor(x)) if math.isfinite(x) else x


def go_ceil(x: float) -> float:
    return float(math.ceil(x)) if math.isfinite(x) else x


def _sqrt(x: float) -> float:
    return math.sqrt(x) if x >= 0 or x != x else NAN


def _sgn(x: float) -> float:
    if x < 0:
        return -1.0
    if x > 0:
        return 1.0
    return x


SIMPLE_FUNCTIONS: dict[str, Callable[[float], float]] = {
    "abs": abs,
    "ceil": go_ceil,
    "floor": go_floor,
    "exp": gomath.exp,
    "sqrt": _sqrt,
    "ln": gomath.log,
    "log2": gomath.log2,
    "log10": gomath.log10,
    "sgn": _sgn,
    "sin": gomath.sin,
    "cos": gomath.cos,
    "tan": gomath.tan,
    "asin": gomath.asin,
    "acos": gomath.acos,
    "atan": gomath.atan,
    "sinh": gomath.sinh,
    "cosh": gomath.cosh,
    "tanh": gomath.tanh,
    "asinh": gomath.asinh,
    "acosh": gomath.acosh,
    "atanh": gomath.atanh,
    # the same operations in the same order as Prometheus's funcDeg and funcRad
    "deg": lambda x: x * 180 / math.pi,
    "rad": lambda x: x * math.pi / 180,
}
"""Functions that map each sample value on its own (and drop the metric name)."""


def round_to(x: float, to_nearest: float) -> float:
    """Prometheus's round(): ties go up; the inverse avoids float noise."""
    inverse = go_div(1.0, to_nearest)
    return go_div(go_floor(x * inverse + 0.5), inverse)


def _go_special(v: float) -> str | None:
    """NaN, +Inf and -Inf as Go's formatting spells them; None for a finite number."""
    if v != v:
        return "NaN"
    if v == INF:
        return "+Inf"
    if v == -INF:
        return "-Inf"
    return None


def format_float(v: float) -> str:
    """Go's strconv.FormatFloat(v, 'f', -1, 64): shortest digits, never an exponent."""
    return _go_special(v) or format(Decimal(repr(v)).normalize(), "f")


def parse_go_float(text: str) -> float | None:
    """Go's strconv.ParseFloat for bucket bounds; None where Go reports an error."""
    if "_" in text:
        return None
    try:
        return float(text)
    except ValueError:
        pass
    try:
        return float.fromhex(text)
    except ValueError:
        return None


def format_go_fixed(v: float) -> str:
    """Go's fmt "%f": six decimals, and +Inf, -Inf, NaN spelt Go's way."""
    return _go_special(v) or f"{v:f}"


def go_int64(x: float) -> int:
    """Go's int64(x) on amd64: truncation; NaN and out-of-range values give the minimum int64."""
    if x != x or not -(2.0**63) <= x < 2.0**63:
        return -(1 << 63)
    return int(x)


# --- Go's calendar -------------------------------------------------------------
# The date functions call Go's time.Unix(int64(v), 0).UTC(); Go counts from an
# "absolute" year far in the past in wrapping uint64 seconds. Following its
# arithmetic, wrap-around included, gives Prometheus's answers for every input,
# also where a calendar library would refuse (NaN, infinities, years past 9999).

_U64 = (1 << 64) - 1
_SECONDS_PER_DAY = 86_400
_DAYS_PER_400_YEARS = 365 * 400 + 97
_DAYS_PER_100_YEARS = 365 * 100 + 24
_DAYS_PER_4_YEARS = 365 * 4 + 1
_ABSOLUTE_ZERO_YEAR = -292_277_022_399
# Go: (absoluteZeroYear - 1) * 365.2425 * secondsPerDay, exact in integers.
_ABSOLUTE_TO_INTERNAL = (_ABSOLUTE_ZERO_YEAR - 1) * 3_652_425 * _SECONDS_PER_DAY // 10_000
_UNIX_TO_INTERNAL = (1969 * 365 + 1969 // 4 - 1969 // 100 + 1969 // 400) * _SECONDS_PER_DAY
_UNIX_TO_ABSOLUTE = _UNIX_TO_INTERNAL - _ABSOLUTE_TO_INTERNAL
_DAYS_BEFORE = (0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334, 365)
"""Days of a non-leap year before each month; the last entry is the whole year."""


def _is_leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def _year_and_day(abs_s: int) -> tuple[int, int]:
    """Go's absDate without the month: the year and the 0-based day of the year."""
    d = abs_s // _SECONDS_PER_DAY
    n = d // _DAYS_PER_400_YEARS
    y = 400 * n
    d -= _DAYS_PER_400_YEARS * n
    n = d // _DAYS_PER_100_YEARS
    n -= n >> 2  # the last day of a 400-year cycle
    y += 100 * n
    d -= _DAYS_PER_100_YEARS * n
    n = d // _DAYS_PER_4_YEARS
    y += 4 * n
    d -= _DAYS_PER_4_YEARS * n
    n = d // 365
    n -= n >> 2  # the last day of a 4-year cycle
    y += n
    d -= 365 * n
    return y + _ABSOLUTE_ZERO_YEAR, d


def _month_and_day(year: int, yday: int) -> tuple[int, int]:
    day = yday
    if _is_leap(year):
        if day == 31 + 29 - 1:
            return 2, 29
        if day > 31 + 29 - 1:
            day -= 1
    month = day // 31  # at most one month too low
    end = _DAYS_BEFORE[month + 1]
    if day >= end:
        month += 1
        begin = end
    else:
        begin = _DAYS_BEFORE[month]
    return month + 1, day - begin + 1


def _days_in_month(year: int, month: int) -> int:
    """Go's 32 - time.Date(year, month, 32, 0, 0, 0, 0, time.UTC).Day()."""
    y = (year - _ABSOLUTE_ZERO_YEAR) & _U64
    d = _DAYS_PER_400_YEARS * (y // 400)
    y %= 400
    d += _DAYS_PER_100_YEARS * (y // 100)
    y %= 100
    d += _DAYS_PER_4_YEARS * (y // 4) + 365 * (y % 4)
    d += _DAYS_BEFORE[month - 1] + (1 if _is_leap(year) and month >= 3 else 0) + 31
    abs_s = (d * _SECONDS_PER_DAY) & _U64
    return 32 - _month_and_day(*_year_and_day(abs_s))[1]


def date_part(name: str, unix_seconds: int) -> float:
    """minute(), hour(), day_of_week(), ... of a Unix time, as Go's time package answers."""
    abs_s = (unix_seconds + _UNIX_TO_ABSOLUTE) & _U64
    if name == "minute":
        return float(abs_s % 3600 // 60)
    if name == "hour":
        return float(abs_s % _SECONDS_PER_DAY // 3600)
    if name == "day_of_week":  # day 0 of the absolute year was a Monday
        shifted = (abs_s + _SECONDS_PER_DAY) & _U64
        return float(shifted % (7 * _SECONDS_PER_DAY) // _SECONDS_PER_DAY)
    year, yday = _year_and_day(abs_s)
    if name == "year":
        return float(year)
    if name == "day_of_year":
        return float(yday + 1)
    month, day = _month_and_day(year, yday)
    if name == "month":
        return float(month)
    if name == "day_of_month":
        return float(day)
    if name == "days_in_month":
        return float(_days_in_month(year, month))
    raise ValueError(f"not a date function: {name}")


# --- quantiles -----------------------------------------------------------


def _nan_first(v: float) -> tuple[int, float]:
    return (0, 0.0) if v != v else (1, v)


def quantile(q: float, values: Sequence[float]) -> float:
    """The q-quantile of values by linear interpolation (quantile, quantile_over_time)."""
    if not values or q != q:
        return NAN
    if q < 0:
        return -INF
    if q > 1:
        return INF
    ordered = sorted(values, key=_nan_first) if any(map(math.isnan, values)) else sorted(values)
    n = len(ordered)
    rank = q * (n - 1)
    lower = max(0.0, math.floor(rank))
    upper = min(n - 1.0, lower + 1)
    weight = rank - math.floor(rank)
    return ordered[int(lower)] * (1 - weight) + ordered[int(upper)] * weight


def bucket_quantile(q: float, buckets: list[tuple[float, float]]) -> float:
    """histogram_quantile over classic (upper bound, cumulative count) buckets.

    Buckets with the same bound are merged and counts are forced to be
    monotonic (Prometheus 2.42's fix for scrapes that raced bucket updates).
    """
    if q != q:
        return NAN
    if q < 0:
        return -INF
    if q > 1:
        return INF
    ordered = sorted(buckets, key=lambda b: b[0])
    if ordered[-1][0] != INF:
        return NAN
    merged: list[list[float]] = []
    for bound, count in ordered:
        if merged and merged[-1][0] == bound:
            merged[-1][1] += count
        else:
            merged.append([bound, count])
    high = -INF
    for b in merged:
        if b[1] > high:
            high = b[1]
        elif b[1] < high:
            b[1] = high
    if len(merged) < 2:
        return NAN
    observations = merged[-1][1]
    if observations == 0:
        return NAN
    rank = q * observations
    # First bucket (excluding +Inf) whose count reaches the rank.
    b = len(merged) - 1
    lo, hi = 0, len(merged) - 1
    while lo < hi:
        mid = (lo + hi) // 2
        if merged[mid][1] >= rank:
            hi = mid
        else:
            lo = mid + 1
    b = lo
    if b == len(merged) - 1:
        return merged[-2][0]
    if b == 0 and merged[0][0] <= 0:
        return merged[0][0]
    bucket_start = 0.0
    bucket_end = merged[b][0]
    count = merged[b][1]
    if b > 0:
        bucket_start = merged[b - 1][0]
        count -= merged[b - 1][1]
        rank -= merged[b - 1][1]
    return bucket_start + (bucket_end - bucket_start) * go_div(rank, count)


# --- label_replace -----------------------------------------------------------


def _is_name_char(ch: str) -> bool:
    return ch.isalnum() or ch == "_"


def expand_template(template: str, match: re.Match[str]) -> str:
    """Go's Regexp.ExpandString: $1, ${1}, $name, ${name}, $$; `$1x` names group "1x"."""
    out: list[str] = []
    rest = template
    group_count = (match.re.groups or 0) + 1
    while True:
        before, dollar, after = rest.partition("$")
        if not dollar:
            break
        out.append(before)
        rest = after
        if rest.startswith("$"):
            out.append("$")
            rest = rest[1:]
            continue
        brace = rest.startswith("{")
        body = rest[1:] if brace else rest
        i = 0
        while i < len(body) and _is_name_char(body[i]):
            i += 1
        if i == 0 or (brace and (i >= len(body) or body[i] != "}")):
            out.append("$")
            continue
        name = body[:i]
        rest = body[i + 1 :] if brace else body[i:]
        num = -1
        if name.isascii() and name.isdigit() and not (name[0] == "0" and len(name) > 1):
            num = int(name) if len(name) <= 8 else -1
        if num >= 0:
            if num < group_count and match.group(num) is not None:
                out.append(match.group(num))
        elif name in match.re.groupindex and match.group(name) is not None:
            out.append(match.group(name))
    out.append(rest)
    return "".join(out)
