"""Prometheus text exposition format (0.0.4): parse scraped text into samples.

Scraping an agent every few seconds yields nearly the same text each time:
the same series in the same order, only the values move. So, like
Prometheus's `scrapeCache`, a `ScrapeCache` remembers the series part of every
line (everything before the value) and maps it to its parsed label set; a
repeated line then costs a `str.rpartition`, a dict lookup and a `float()`;
a repeated `# HELP` / `# TYPE` line costs two lookups and is skipped. When a
whole scrape repeats the previous one line for line but for the values (the
usual case), even that per-line work is skipped: see `_Shape`. Only
lines never seen before go through the careful parser below, which follows
Prometheus's text format and agrees with prometheus-client's
`text_string_to_metric_families` on valid input (see
tests/unit/test_exposition.py for the differences on invalid input: this
parser is stricter, as Prometheus is).

Differences from prometheus-client's output worth knowing:
- labels are a `Labels` tuple including `__name__`; empty label values are
  dropped (Prometheus treats `a=""` as "no label a");
- counter samples keep the name they were exposed with (prometheus-client
  renames `foo` to `foo_total` inside a `# TYPE foo counter` family);
- timestamps stay integer milliseconds.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from enum import Enum
from itertools import compress, repeat
from typing import overload

from orbiter.satellite.series import Labels, shared_labels

__all__ = [
    "CachedSeries",
    "Exposition",
    "ExpositionError",
    "MetricMetadata",
    "MetricType",
    "ParsedSample",
    "ScrapeCache",
    "ScrapedRows",
    "parse",
    "parse_exposition",
]


class ExpositionError(ValueError):
    """Scraped text that is not valid Prometheus text format; says which line and why."""

    def __init__(self, line_number: int, line: str, problem: str) -> None:
        self.line_number = line_number
        self.line = line
        self.problem = problem
        shown = line if len(line) <= 200 else line[:200] + "..."
        super().__init__(f"line {line_number}: {problem}: {shown!r}")


class MetricType(Enum):
    COUNTER = "counter"
    GAUGE = "gauge"
    HISTOGRAM = "histogram"
    SUMMARY = "summary"
    UNTYPED = "untyped"


@dataclass(frozen=True, slots=True)
class MetricMetadata:
    """What `# TYPE` and `# HELP` said about one metric family."""

    name: str
    type: MetricType = MetricType.UNTYPED
    help: str = ""


@dataclass(frozen=True, slots=True)
class ParsedSample:
    """One exposition line: its label set (with `__name__`), value and optional timestamp."""

    labels: Labels
    value: float
    timestamp_ms: int | None


@dataclass(frozen=True, slots=True)
class Exposition:
    """A whole parsed exposition: samples in text order and metadata by family name."""

    samples: list[ParsedSample]
    metadata: dict[str, MetricMetadata]


class CachedSeries:
    """A series a ScrapeCache has seen: its label set and a handle storage may keep on it.

    `ref` belongs to the storage (the TSDB puts its series object there so a
    repeated line skips the label-set lookup, as Prometheus's cache keeps a
    series ref); this module never reads it.
    """

    __slots__ = ("keys", "labels", "ref")

    def __init__(self, labels: Labels, key: str) -> None:
        self.labels = labels
        self.keys = [key]
        self.ref: object | None = None

    def __repr__(self) -> str:
        return f"CachedSeries({self.labels!r})"


ScrapedRow = tuple[CachedSeries, float, int | None]
"""(series, value, timestamp in ms or None) for one sample line."""


class ScrapedRows(Sequence[ScrapedRow]):
    """One scrape's rows, kept as columns: a `ScrapedRow` tuple is made only when read.

    A tuple per sample line cost about 30% of a warm parse (making it, the
    cyclic GC tracking it, freeing it). Iterating zips the columns, and `zip` reuses
    its tuple when the loop unpacks it at once. `timestamps` is None when no
    line carried one, the usual case. Read-only: the columns may be shared
    with the cache that made them.
    """

    __slots__ = ("series", "timestamps", "values")

    def __init__(
        self,
        series: list[CachedSeries],
        values: list[float],
        timestamps: list[int | None] | None = None,
    ) -> None:
        self.series = series
        self.values = values
        self.timestamps = timestamps

    def __len__(self) -> int:
        return len(self.series)

    def __iter__(self) -> Iterator[ScrapedRow]:
        stamps = repeat(None) if self.timestamps is None else self.timestamps
        return zip(self.series, self.values, stamps, strict=False)

    @overload
    def __getitem__(self, index: int) -> ScrapedRow: ...

    @overload
    def __getitem__(self, index: slice) -> list[ScrapedRow]: ...

    def __getitem__(self, index: int | slice) -> ScrapedRow | list[ScrapedRow]:
        if isinstance(index, slice):
            return list(self)[index]
        stamp = None if self.timestamps is None else self.timestamps[index]
        return self.series[index], self.values[index], stamp

    def __eq__(self, other: object) -> bool:
        if isinstance(other, ScrapedRows | list | tuple):
            return list(self) == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"ScrapedRows({list(self)!r})"


class _Invalid(Exception):
    """A problem found by the careful parser; becomes an ExpositionError with the line."""


_METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_ESCAPE = re.compile(r'\\[\\n"]')
_HELP_ESCAPE = re.compile(r"\\[\\n]")
_UNESCAPED = {"\\\\": "\\", "\\n": "\n", '\\"': '"'}
_WS = " \t"
_MAX_REMEMBERED_COMMENTS = 100_000


def _unescape(raw: str, pattern: re.Pattern[str] = _ESCAPE) -> str:
    if "\\" not in raw:
        return raw
    return pattern.sub(lambda m: _UNESCAPED[m.group(0)], raw)


def _skip_ws(s: str, i: int) -> int:
    n = len(s)
    while i < n and s[i] in _WS:
        i += 1
    return i


def _read_quoted(s: str, i: int) -> tuple[str, int]:
    """The unescaped string starting at the quote s[i], and the index after its closing quote."""
    j = i + 1
    while True:
        k = s.find('"', j)
        if k < 0:
            raise _Invalid("missing closing quote in label value")
        backslashes = 0
        while s[k - 1 - backslashes] == "\\":
            backslashes += 1
        if backslashes % 2 == 0:
            return _unescape(s[i + 1 : k]), k + 1
        j = k + 1


def _parse_series(series: str) -> Labels:
    """The label set of a line's series part: `name`, `name{l="v",...}` or `{"name",...}`."""
    s = series.strip()
    n = len(s)
    name: str | None = None
    i = 0
    m = _METRIC_NAME.match(s)
    if m:
        name = m.group()
        i = _skip_ws(s, m.end())
    labels: dict[str, str] = {}
    if i < n:
        if s[i] != "{":
            what = "metric name" if name else "line"
            raise _Invalid(f"unexpected {s[i]!r} in {what}; expected a metric name or '{{'")
        i = _parse_label_block(s, i + 1, labels)
        if i < n:
            raise _Invalid(f"unexpected {s[i:]!r} after the label set")
    if "__name__" in labels:
        if name is not None:
            raise _Invalid("metric name given both before '{' and inside it")
        name = labels.pop("__name__")
    if not name:
        raise _Invalid("missing metric name")
    labels["__name__"] = name
    return shared_labels((k, v) for k, v in labels.items() if v != "")


def _parse_label_block(s: str, i: int, labels: dict[str, str]) -> int:
    """Parse `l="v",...}` from s[i]; fill labels; return the index after '}'."""
    n = len(s)
    while True:
        i = _skip_ws(s, i)
        if i >= n:
            raise _Invalid("label set not closed with '}'")
        c = s[i]
        if c == "}":
            return i + 1
        if c == '"':
            quoted, i = _read_quoted(s, i)
            i = _skip_ws(s, i)
            if i < n and s[i] == "=":
                lname: str = quoted
                i = _skip_ws(s, i + 1)
                if i >= n or s[i] != '"':
                    raise _Invalid(f"label {lname!r}: value must be a double-quoted string")
                value, i = _read_quoted(s, i)
            else:
                lname, value = "__name__", quoted
        else:
            m = _LABEL_NAME.match(s, i)
            if not m:
                raise _Invalid(f"invalid label name at {s[i : i + 20]!r}")
            lname = m.group()
            i = _skip_ws(s, m.end())
            if i >= n or s[i] != "=":
                raise _Invalid(f"label {lname!r}: expected '=' after the label name")
            i = _skip_ws(s, i + 1)
            if i >= n or s[i] != '"':
                raise _Invalid(f"label {lname!r}: value must be a double-quoted string")
            value, i = _read_quoted(s, i)
        if lname.startswith("__") and lname != "__name__":
            raise _Invalid(f"label name {lname!r} is reserved (starts with '__')")
        if lname in labels:
            raise _Invalid(f"label {lname!r} given twice")
        labels[lname] = value
        i = _skip_ws(s, i)
        if i >= n:
            raise _Invalid("label set not closed with '}'")
        if s[i] == ",":
            i += 1
        elif s[i] != "}":
            raise _Invalid(f"expected ',' or '}}' after label {lname!r}, found {s[i]!r}")


def _parse_value(token: str) -> float:
    if "_" in token:
        raise _Invalid(f"invalid sample value {token!r}")
    try:
        return float(token)
    except ValueError:
        raise _Invalid(f"invalid sample value {token!r}") from None


def _parse_timestamp(token: str) -> int:
    if "_" in token:
        raise _Invalid(f"invalid timestamp {token!r}; expected integer milliseconds")
    try:
        return int(token)
    except ValueError:
        raise _Invalid(f"invalid timestamp {token!r}; expected integer milliseconds") from None


def _split_sample_line(line: str) -> tuple[str, list[str]]:
    """A sample line's series part and its value tokens (the hot path's split, shared)."""
    j = line.rfind("}")
    if j < 0:
        parts = line.split()
        return parts[0], parts[1:]
    return line[: j + 1], line[j + 1 :].split()


def _diagnose(line: str) -> str:
    """Why a sample line is invalid, found by parsing it carefully."""
    try:
        series, tokens = _split_sample_line(line.strip())
        _parse_series(series)
        if not tokens:
            return "missing sample value"
        if len(tokens) > 2:
            return f"unexpected {' '.join(tokens[2:])!r} after the value and timestamp"
        _parse_value(tokens[0])
        if len(tokens) == 2:
            _parse_timestamp(tokens[1])
    except _Invalid as e:
        return str(e)
    return "invalid sample line"


def _split_comment(line: str) -> list[str]:
    """`# KEYWORD name rest` into at most 4 whitespace-separated parts, quotes kept together."""
    parts: list[str] = []
    i, n = 0, len(line)
    while i < n and len(parts) < 3:
        if line[i] in " \t":
            i += 1
            continue
        start = i
        in_quotes = False
        while i < n and (in_quotes or line[i] not in " \t"):
            if line[i] == "\\" and in_quotes:
                i += 1
            elif line[i] == '"':
                in_quotes = not in_quotes
            i += 1
        parts.append(line[start:i])
    i = _skip_ws(line, i)
    if i < n:
        parts.append(line[i:])
    return parts


def _metric_name_token(token: str) -> str:
    if token.startswith('"'):
        name, end = _read_quoted(token, 0)
        if end != len(token):
            raise _Invalid(f"unexpected text after quoted metric name {token!r}")
        return name
    if not _METRIC_NAME.fullmatch(token):
        raise _Invalid(f"invalid metric name {token!r}")
    return token


def _parse_comment(line: str, metadata: dict[str, MetricMetadata]) -> None:
    """Record `# TYPE` / `# HELP` into metadata; other comments are ignored."""
    parts = _split_comment(line)
    # Like prometheus-client, the first word only has to start with '#' ('## TYPE' counts).
    if len(parts) < 2 or parts[1] not in ("TYPE", "HELP"):
        return
    if len(parts) == 2:
        if parts[1] == "TYPE":
            raise _Invalid("TYPE line without a metric name")
        return
    name = _metric_name_token(parts[2])
    old = metadata.get(name) or MetricMetadata(name)
    if parts[1] == "HELP":
        text = _unescape(parts[3], _HELP_ESCAPE) if len(parts) == 4 else ""
        metadata[name] = MetricMetadata(name, old.type, text)
        return
    if len(parts) < 4:
        raise _Invalid("TYPE line without a type")
    try:
        kind = MetricType(parts[3])
    except ValueError:
        allowed = ", ".join(t.value for t in MetricType)
        raise _Invalid(f"unknown metric type {parts[3]!r}; expected one of {allowed}") from None
    metadata[name] = MetricMetadata(name, kind, old.help)


class _Shape:
    """A scrape's text with its values cut out: what lets the next, same-shaped scrape skip lookups.

    Built from a scrape whose every line took the cache's hot path (a known
    series part followed by one space and the value, or a known comment or
    blank line). A later text with the same lines but for the values yields
    the very rows the hot path would, from whole-list operations that run in C
    (`str.removeprefix` per line, `compress`, `map(float)`) instead of
    a Python loop with a lookup per line. Anything else (a changed, added or
    missing line, a timestamp, a value with a space or an underscore, a value
    `float` rejects) makes `rows` return None and the caller parses the text
    line by line as before, so behaviour and errors are the hot path's own.

    Hand-written rather than a library's: prometheus-client's parser builds
    objects per sample, knows nothing of the previous scrape and is some 40x
    slower on the same texts (bench/satellite.py prints the comparison). It
    costs about one copy of the text's series parts and comments per target.
    """

    __slots__ = ("entries", "others", "prefixes", "samples", "skeleton_length")

    def __init__(self, lines: list[str], known: Callable[[str], CachedSeries | None]) -> None:
        # Per line: the series part (the cache's own key string, not a copy), or the whole
        # line for comments and blank lines.
        self.prefixes: list[str] = []
        self.entries: list[CachedSeries] = []
        is_sample = []
        for line in lines:
            series, _, _ = line.rpartition(" ")
            entry = known(series)
            if entry is None:
                self.prefixes.append(line)
                is_sample.append(False)
            else:
                self.prefixes.append(entry.keys[entry.keys.index(series)])
                self.entries.append(entry)
                is_sample.append(True)
        self.samples = bytes(is_sample)  # selectors for compress, a byte a line
        self.others = bytes(not s for s in is_sample)
        self.skeleton_length = sum(map(len, self.prefixes)) + len(lines) - 1  # all but values

    def rows(self, text: str) -> ScrapedRows | None:
        """The rows of text if it has this shape, else None (then parse it line by line)."""
        lines = text.split("\n")
        if len(lines) != len(self.prefixes):
            return None
        # A line that does not start with its prefix comes back whole, so the values'
        # total length gives it away; comment and blank lines must come back empty.
        tails = list(map(str.removeprefix, lines, self.prefixes))
        if "".join(compress(tails, self.others)):
            return None
        values = list(compress(tails, self.samples))
        joined = "".join(values)
        # Each value comes with the one space before it: every tail must start with a space
        # and hold no other, or the line is not `series value` and goes the slow way.
        if (
            len(joined) != len(text) - self.skeleton_length
            or joined.count(" ") != len(values)
            or not all(map(str.startswith, values, repeat(" ")))
            or "_" in joined
        ):
            return None
        try:
            return ScrapedRows(self.entries, list(map(float, values)))
        except ValueError:
            return None


class ScrapeCache:
    """Parses one target's scrapes; a line whose series part was seen before costs a lookup.

    Keep one per target. The cache forgets a series two scrapes after it was
    last seen, so a target that churns series does not grow it without bound.
    After each `parse_into`, `disappeared` holds the label sets that were in
    the previous scrape and are not in this one (for staleness markers).
    """

    def __init__(self) -> None:
        self._entries: dict[str, CachedSeries] = {}
        self._by_labels: dict[Labels, CachedSeries] = {}
        # Comment lines already parsed, split as the hot loop splits every line:
        # everything before the last space -> the rest. A blank line counts as one.
        self._comment_tails: dict[str, str] = {"": ""}
        self._previous: list[CachedSeries] = []
        self._gone_last_time: set[CachedSeries] = set()
        self._learned: list[str] = []
        self._shape: _Shape | None = None
        self.metadata: dict[str, MetricMetadata] = {}
        self.disappeared: list[Labels] = []

    def __len__(self) -> int:
        return len(self._by_labels)

    def parse_into(self, text: str) -> ScrapedRows:
        """Parse one scrape's text; raises ExpositionError (and then learns no series from it)."""
        shape = self._shape
        if shape is not None:
            rows = shape.rows(text)
            if rows is not None:
                self._finish(shape.entries)
                return rows
            self._shape = None
        get = self._entries.get
        known_comment = self._comment_tails.get
        entries: list[CachedSeries] = []
        values: list[float] = []
        stamps: dict[int, int] = {}  # row -> its timestamp, for the few lines that have one
        add_entry = entries.append
        add_value = values.append
        lines = text.split("\n")
        line = ""
        same_lines = True  # every line known: the next scrape may reuse this one's shape
        try:
            for line in lines:
                # Hot path: `<series part> <value>`, series part seen before. Anything
                # else (comments, blank lines, timestamps, tabs, new series) misses the
                # lookup, because only exact series parts are ever learned.
                series, _, value = line.rpartition(" ")
                entry = get(series)
                if entry is not None:
                    if "_" in value:
                        raise ValueError
                    add_value(float(value))
                    add_entry(entry)
                elif known_comment(series) != value:
                    same_lines = False
                    row = self._other_line(line)
                    if row is not None:
                        other, number, stamp = row
                        if stamp is not None:
                            stamps[len(values)] = stamp
                        add_value(number)
                        add_entry(other)
        except (ValueError, IndexError, _Invalid) as e:
            self._forget_learned()
            problem = str(e) if isinstance(e, _Invalid) else _diagnose(line)
            raise ExpositionError(_line_number(text, line), line, problem) from None
        self._learned.clear()
        if self._finish(entries) and same_lines:
            # Twice the same series in the same order: a target that keeps its order,
            # worth a shape (one that shuffles its lines would only pay to build it).
            self._shape = _Shape(lines, get)
        timestamps = [stamps.get(i) for i in range(len(values))] if stamps else None
        return ScrapedRows(entries, values, timestamps)

    def _other_line(self, line: str) -> ScrapedRow | None:
        """Every line the hot path cannot take: blank, comment, timestamped, or a new series."""
        stripped = line.strip()
        if not stripped:
            return None
        if stripped[0] == "#":
            _parse_comment(stripped, self.metadata)
            head, space, tail = line.rpartition(" ")
            if space and len(self._comment_tails) < _MAX_REMEMBERED_COMMENTS:
                self._comment_tails[head] = tail
            return None
        series, tokens = _split_sample_line(stripped)
        entry = self._entries.get(series) or self._learn(series)
        if len(tokens) == 1:
            return entry, _parse_value(tokens[0]), None
        if len(tokens) == 2:
            return entry, _parse_value(tokens[0]), _parse_timestamp(tokens[1])
        raise _Invalid(_diagnose(stripped))

    def _learn(self, series: str) -> CachedSeries:
        labels = _parse_series(series)
        entry = self._by_labels.get(labels)
        if entry is None:
            entry = CachedSeries(labels, series)
            self._by_labels[labels] = entry
        else:
            entry.keys.append(series)
        self._entries[series] = entry
        self._learned.append(series)
        return entry

    def _forget_learned(self) -> None:
        """Undo what a failed parse learned, so a target sending bad text cannot grow the cache."""
        for key in self._learned:
            entry = self._entries.pop(key)
            entry.keys.remove(key)
            if not entry.keys:
                del self._by_labels[entry.labels]
        self._learned.clear()

    def _finish(self, entries: list[CachedSeries]) -> bool:
        """Update `disappeared` and forget long-gone series; True if the series repeat in order."""
        previous = self._previous
        self._previous = entries
        same = entries == previous
        if same and not self._gone_last_time:  # the usual scrape: same series
            self.disappeared = []
            return True
        current = set(entries)
        gone = set(previous).difference(current)
        for entry in self._gone_last_time - current:
            for key in entry.keys:
                self._entries.pop(key, None)
            self._by_labels.pop(entry.labels, None)
        self._gone_last_time = gone
        self.disappeared = sorted(entry.labels for entry in gone)
        return same


def _line_number(text: str, line: str) -> int:
    """1-based number of the first line equal to `line` (parsing is deterministic per line)."""
    for number, candidate in enumerate(text.split("\n"), start=1):
        if candidate == line:
            return number
    return 0


def parse_exposition(text: str) -> Exposition:
    """Parse a whole exposition without keeping a cache: samples in order plus metadata."""
    cache = ScrapeCache()
    rows = cache.parse_into(text)
    return Exposition([ParsedSample(e.labels, v, t) for e, v, t in rows], cache.metadata)


def parse(text: str) -> list[ParsedSample]:
    """Parse a whole exposition into samples in text order; raises ExpositionError."""
    return parse_exposition(text).samples
