"""Satellite's PromQL evaluator: instant queries over promql-parser's AST.

`parse` turns text into promql-parser's AST and refuses what we do not
implement; evaluation first compiles that AST into small Python nodes (so the
Rust-backed AST is walked once, not per sample), then evaluates the root at
one instant. Subqueries evaluate their inner expression at each aligned step.

Semantics follow Prometheus 2.42: selectors read the closed window
[t - lookback, t] (instant) or [t - range, t] (range), staleness markers end
a series, functions and arithmetic drop the metric name, and the errors
Prometheus raises during evaluation are raised here as QueryError. Every function
of 2.42 is implemented.

Any `Storage` works. One that also offers `select_columns` (like `select`,
returning three parallel lists: labels, timestamps, values) and
`select_latest` (each series' newest sample in the window, as the same
three lists), as the TSDB does, is read through those: an instant selector then
costs one sample per series instead of a copied window and a `Series` object,
and a range function runs over whole matrices of series (range_functions).
"""

from __future__ import annotations

import datetime as _dt
import math
import re
import struct
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from itertools import compress
from operator import is_, itemgetter

import numpy as np
import promql_parser as pp

from orbiter.satellite.promql import functions as fn
from orbiter.satellite.promql import range_functions as rf
from orbiter.satellite.promql.aggregations import (
    METRIC_NAME,
    SUPPORTED_AGGREGATIONS,
    aggregate,
)
from orbiter.satellite.promql.histograms import histogram_quantile
from orbiter.satellite.promql.memo import by_identity
from orbiter.satellite.promql.values import (
    Matrix,
    QueryError,
    Sample,
    Scalar,
    String,
    UnsupportedQuery,
    Value,
    Vector,
)
from orbiter.satellite.series import STALE_NAN_BITS, Labels, Matcher, MatchOp, Series, Storage

__all__ = [
    "Matrix",
    "QueryError",
    "Sample",
    "Scalar",
    "String",
    "UnsupportedQuery",
    "Vector",
    "check_supported",
    "instant_query",
    "max_range_ms",
    "parse",
    "rule_query",
    "selector_matchers",
    "value_type",
]

Expr = pp.Expr
VectorPairs = list[tuple[Labels, float]]
MatrixTriples = list[tuple[Labels, Sequence[int], Sequence[float]]]

SCALAR, VECTOR, MATRIX, STRING = "scalar", "vector", "matrix", "string"

DEFAULT_LOOKBACK_MS = 300_000
DEFAULT_SUBQUERY_STEP_MS = 60_000

_STALE_BYTES = struct.pack("<Q", STALE_NAN_BITS)


def _is_stale(v: float) -> bool:
    return v != v and struct.pack("<d", v) == _STALE_BYTES


def _without_name(lset: Labels) -> Labels:
    if lset and lset[0][0] == METRIC_NAME:  # the usual place: "_" sorts before lowercase
        return lset[1:]
    for name, _ in lset:
        if name == METRIC_NAME:
            return tuple([p for p in lset if p[0] != METRIC_NAME])
    return lset


_drop_name = by_identity(_without_name, limit=1 << 17)
"""Per series, where a node drops names one series at a time (operators, functions); a range
function keeps whole lists itself (_NamesDropped). Bounded: ~25 MB at most."""


def _same_objects(a: Sequence[object], b: Sequence[object]) -> bool:
    """Whether two lists hold the very same objects in the same order (C speed)."""
    return a is b or (len(a) == len(b) and all(map(is_, a, b)))


class _NamesDropped:
    """A node's label sets without `__name__`, kept from its last call while its input holds
    the same label-set objects in the same order (the TSDB hands them out again each round,
    and often the very list, until a series comes or goes)."""

    __slots__ = ("last_in", "last_out")

    def __init__(self) -> None:
        self.last_in: list[Labels] = []
        self.last_out: list[Labels] = []

    def __call__(self, labels: list[Labels]) -> list[Labels]:
        if not _same_objects(labels, self.last_in):
            self.last_in, self.last_out = labels, [_without_name(lset) for lset in labels]
        return self.last_out


def _same(lset: Labels) -> Labels:
    return lset


def _format_labels(lset: Labels) -> str:
    return "{" + ", ".join(f'{k}="{v}"' for k, v in lset) + "}"


def _check_unique(vector: VectorPairs, needed: bool = True) -> VectorPairs:
    """Prometheus's "same labelset" check; `needed` is False where collisions are impossible."""
    if needed and len(vector) > 1 and len({lset for lset, _ in vector}) != len(vector):
        raise QueryError("vector cannot contain metrics with the same labelset")
    return vector


# --- evaluation context --------------------------------------------------------


Columns = tuple[list[Labels], list[Sequence[int]], list[Sequence[float]]]
"""Selected series as the evaluator holds them: labels, timestamps and values, in parallel
lists (series i is labels[i], times[i], values[i]); read-only."""


def _columns(triples: MatrixTriples) -> Columns:
    if not triples:
        return [], [], []
    labels, times, values = zip(*triples, strict=True)
    return list(labels), list(times), list(values)


class _Context:
    """Per-query state: the storage, the query time and the selectors' fetched series."""

    __slots__ = ("cache", "columns", "default_step", "latest", "lookback", "query_ts", "storage")

    def __init__(self, storage: Storage, query_ts: int, lookback: int, default_step: int) -> None:
        self.storage = storage
        self.query_ts = query_ts
        self.lookback = lookback
        self.default_step = default_step
        self.cache: dict[int, tuple[int, int, Columns]] = {}
        self.columns: Callable[..., Columns] | None = getattr(storage, "select_columns", None)
        self.latest: Callable[..., Columns] | None = getattr(
            storage, "select_latest", None
        )

    def select(self, matchers: list[Matcher], lo: int, hi: int) -> Columns:
        if self.columns is not None:
            return self.columns(matchers, lo, hi)
        return _columns(
            [(s.labels, s.timestamps, s.values) for s in self.storage.select(matchers, lo, hi)]
        )


@dataclass(frozen=True, slots=True)
class _At:
    """An @ modifier: a fixed time, or the query's start/end (both the query time here)."""

    ms: int | None

    def resolve(self, ctx: _Context) -> int:
        return ctx.query_ts if self.ms is None else self.ms


# --- nodes -------------------------------------------------------------------


class _Node:
    kind: str = VECTOR
    single_name: bool = False
    """All output series share one metric name (or none), so dropping it cannot collide."""

    def eval(self, ctx: _Context, ts: int):  # pragma: no cover - overridden
        raise NotImplementedError

    def children(self) -> list[_Node]:
        return []

    def reach(self, lookback: int) -> int:
        """How far before its evaluation time this node reads samples."""
        return max((c.reach(lookback) for c in self.children()), default=0)


class _Number(_Node):
    kind = SCALAR

    def __init__(self, value: float) -> None:
        self.value = value

    def eval(self, ctx: _Context, ts: int) -> float:
        return self.value


class _String(_Node):
    kind = STRING

    def __init__(self, value: str) -> None:
        self.value = value

    def eval(self, ctx: _Context, ts: int) -> str:
        return self.value


@dataclass(frozen=True, slots=True)
class _PathStep:
    """An enclosing subquery, as seen by a selector inside it (for the fetch window, and
    for where a sliding @ selector reads: see _offset_for_at)."""

    range_ms: int
    offset_ms: int
    at: _At | None
    step_ms: int


def _subquery_starts(ctx: _Context, path: tuple[_PathStep, ...]) -> list[int]:
    """The first step of each subquery in `path`, as Prometheus 2.42 evaluates them: each
    once over all the steps of the one enclosing it, from the first aligned step on."""
    starts: list[int] = []
    parent = ctx.query_ts
    for i, sq in enumerate(path):
        offset = sq.offset_ms
        if sq.at is not None:
            offset = _offset_for_at(ctx, path[:i], starts, sq.offset_ms, sq.at.resolve(ctx))
        step = sq.step_ms or ctx.default_step
        low = parent - offset - sq.range_ms
        parent = -(-low // step) * step
        starts.append(parent)
    return starts


def _offset_for_at(
    ctx: _Context, path: tuple[_PathStep, ...], starts: list[int], offset_ms: int, at_ms: int
) -> int:
    """The offset Prometheus 2.42 turns an @ into, for a node under the subqueries `path`.

    It rewrites @ as an offset from one evaluation time: the query time, then, for
    the inside of each subquery whose first step differs from its parent's start,
    that first step (offsets of subqueries in between are taken off). Right where
    the node is evaluated once, at that time, this reads at the @ time.
    """
    base, first = ctx.query_ts, 0
    for i in range(len(path) - 1, -1, -1):
        if starts[i] != (starts[i - 1] if i else ctx.query_ts):
            base, first = starts[i], i + 1
            break
    between, pinned = 0, None
    for sq in path[first:]:
        between += sq.offset_ms
        if sq.at is not None:
            between, pinned = sq.offset_ms, sq.at.resolve(ctx)
    if pinned is not None:
        between += base - pinned
    return offset_ms + (base - at_ms) - between


class _Selector(_Node):
    """A vector selector; with range_ms > 0 it is the inside of a range selector."""

    def __init__(
        self,
        matchers: list[Matcher],
        offset_ms: int,
        at: _At | None,
        range_ms: int,
        path: tuple[_PathStep, ...],
    ) -> None:
        self.matchers = matchers
        self.offset_ms = offset_ms
        self.at = at
        self.range_ms = range_ms
        self.path = path
        self.slides = False
        """Read per step at a fixed offset from @ (see _RangeSelector.window), not at @."""
        self.single_name = any(m.name == METRIC_NAME and m.op is MatchOp.EQUAL for m in matchers)

    def reach(self, lookback: int) -> int:
        return self.offset_ms + (self.range_ms or lookback)

    def ref_time(self, ctx: _Context, ts: int) -> int:
        if self.slides:
            assert self.at is not None
            starts = _subquery_starts(ctx, self.path)
            return ts - _offset_for_at(ctx, self.path, starts, self.offset_ms, self.at.resolve(ctx))
        base = self.at.resolve(ctx) if self.at is not None else ts
        return base - self.offset_ms

    def _window(self, ctx: _Context) -> tuple[int, int]:
        lo = hi = ctx.query_ts
        for step in self.path:
            if step.at is not None:
                lo = hi = step.at.resolve(ctx)
            lo -= step.offset_ms + step.range_ms
            hi -= step.offset_ms
        if self.at is not None:
            lo = hi = self.at.resolve(ctx)
        hi -= self.offset_ms
        lo -= self.offset_ms + (self.range_ms or ctx.lookback)
        return lo, hi

    def series(self, ctx: _Context, lo: int, hi: int) -> tuple[Columns, bool]:
        """The matching series covering [lo, hi], fetched once per query.

        Like Prometheus, this fetches only the window `_window` (the same as its
        getTimeRangesForSelector): a read reaching past it (as a sliding @ does)
        sees only the samples inside it. The flag says the series hold exactly the
        window [lo, hi], as they do outside subqueries, so callers can skip
        searching for its edges.
        """
        cached = ctx.cache.get(id(self))
        if cached is None:
            wlo, whi = self._window(ctx)
            cached = (wlo, whi, ctx.select(self.matchers, wlo, whi))
            ctx.cache[id(self)] = cached
        wlo, whi, data = cached
        return data, lo == wlo and hi == whi

    def eval_with_times(self, ctx: _Context, ts: int) -> list[tuple[Labels, float, int]]:
        ref = self.ref_time(ctx, ts)
        lo = ref - ctx.lookback
        out: list[tuple[Labels, float, int]] = []
        if not self.path and ctx.latest is not None:  # evaluated once: read one sample each
            for lset, t, v in zip(*ctx.latest(self.matchers, lo, ref), strict=True):
                if v != v and _is_stale(v):
                    continue
                out.append((lset, v, t))
            return out
        for lset, times, values in zip(*self.series(ctx, lo, ref)[0], strict=True):
            i = bisect_right(times, ref) - 1
            if i < 0:
                continue
            t = times[i]
            if t < lo:
                continue
            v = values[i]
            if v != v and _is_stale(v):
                continue
            out.append((lset, v, t))
        return out

    def eval(self, ctx: _Context, ts: int) -> VectorPairs:
        ref = self.ref_time(ctx, ts)
        lo = ref - ctx.lookback
        out: VectorPairs = []
        append = out.append
        if not self.path and ctx.latest is not None:  # evaluated once: read one sample each
            labels, _, values = ctx.latest(self.matchers, lo, ref)
            if not any(map(math.isnan, values)):
                return list(zip(labels, values, strict=True))
            for lset, v in zip(labels, values, strict=True):
                if v != v and _is_stale(v):
                    continue
                append((lset, v))
            return out
        data, exact = self.series(ctx, lo, ref)
        if exact:
            for lset, values in zip(data[0], data[2], strict=True):
                if values:
                    v = values[-1]
                    if v != v and _is_stale(v):
                        continue
                    append((lset, v))
            return out
        for lset, times, values in zip(*data, strict=True):
            i = bisect_right(times, ref) - 1
            if i < 0 or times[i] < lo:
                continue
            v = values[i]
            if v != v and _is_stale(v):
                continue
            append((lset, v))
        return out

    def absent_labels(self) -> Labels:
        """The labels absent() reports: those pinned by a single equality matcher."""
        labels: dict[str, str] = {}
        dropped: list[str] = []
        for m in self.matchers:
            if m.name == METRIC_NAME:
                continue
            if m.op is MatchOp.EQUAL and m.name not in labels:
                labels[m.name] = m.value
            else:
                dropped.append(m.name)
        for name in dropped:
            labels.pop(name, None)
        return tuple(sorted((k, v) for k, v in labels.items() if v != ""))


class _MatrixNode(_Node):
    kind = MATRIX

    def window(self, ctx: _Context, ts: int) -> tuple[int, int, int]:
        """(start_ms, end_ms, range_ms) of the window read at evaluation time ts."""
        raise NotImplementedError

    def eval(self, ctx: _Context, ts: int) -> MatrixTriples:
        raise NotImplementedError

    def rows(self, ctx: _Context, ts: int) -> Columns:
        """What eval returns as columns, except that staleness markers may still be in it."""
        return _columns(self.eval(ctx, ts))


class _RangeSelector(_MatrixNode):
    def __init__(self, selector: _Selector) -> None:
        self.selector = selector
        self.single_name = selector.single_name

    def children(self) -> list[_Node]:
        return [self.selector]

    def window(self, ctx: _Context, ts: int) -> tuple[int, int, int]:
        sel = self.selector
        end = sel.ref_time(ctx, ts)
        return end - sel.range_ms, end, sel.range_ms

    def rows(self, ctx: _Context, ts: int) -> Columns:
        lo, hi, _ = self.window(ctx, ts)
        data, exact = self.selector.series(ctx, lo, hi)
        if exact:
            return data
        out: Columns = ([], [], [])
        for lset, tl, vl in zip(*data, strict=True):
            i = bisect_left(tl, lo)
            j = bisect_right(tl, hi)
            if i < j:
                out[0].append(lset)
                out[1].append(tl[i:j])
                out[2].append(vl[i:j])
        return out

    def eval(self, ctx: _Context, ts: int) -> MatrixTriples:
        out: MatrixTriples = []
        isnan = math.isnan
        for item in zip(*self.rows(ctx, ts), strict=True):
            lset, tl, vl = item
            if not vl:
                continue
            if any(map(isnan, vl)):
                kept = [(t, v) for t, v in zip(tl, vl, strict=True) if not _is_stale(v)]
                if not kept:
                    continue
                item = (lset, [t for t, _ in kept], [v for _, v in kept])
            out.append(item)
        return out


class _Subquery(_MatrixNode):
    def __init__(
        self,
        inner: _Node,
        range_ms: int,
        step_ms: int,
        offset_ms: int,
        at: _At | None,
        path: tuple[_PathStep, ...],
    ) -> None:
        self.inner = inner
        self.range_ms = range_ms
        self.step_ms = step_ms
        self.offset_ms = offset_ms
        self.at = at
        self.path = path
        """The subqueries enclosing this one."""
        self.slides = False
        """Read per step at a fixed offset from @ (see window), not at @."""
        self.single_name = inner.single_name

    def children(self) -> list[_Node]:
        return [self.inner]

    def reach(self, lookback: int) -> int:
        return self.offset_ms + self.range_ms + self.inner.reach(lookback)

    def window(self, ctx: _Context, ts: int) -> tuple[int, int, int]:
        if self.slides:  # Prometheus: from the enclosing evaluator's start, not _offset_for_at
            assert self.at is not None
            parent = _subquery_starts(ctx, self.path)[-1]
            end = ts - (self.offset_ms + parent - self.at.resolve(ctx))
        else:
            base = self.at.resolve(ctx) if self.at is not None else ts
            end = base - self.offset_ms
        return end - self.range_ms, end, self.range_ms

    def eval(self, ctx: _Context, ts: int) -> MatrixTriples:
        start, end, _ = self.window(ctx, ts)
        if self.slides:  # Prometheus evaluated it once, from where _offset_for_at puts it
            assert self.at is not None
            starts = _subquery_starts(ctx, self.path)
            at = self.at.resolve(ctx)
            offset = _offset_for_at(ctx, self.path, starts, self.offset_ms, at)
            start = max(start, starts[-1] - offset - self.range_ms)
        step = self.step_ms or ctx.default_step
        t = (start // step) * step
        if t < start:
            t += step
        points: dict[Labels, tuple[list[int], list[float]]] = {}
        scalar = self.inner.kind == SCALAR
        while t <= end:
            result = [((), self.inner.eval(ctx, t))] if scalar else self.inner.eval(ctx, t)
            for lset, v in result:
                entry = points.get(lset)
                if entry is None:
                    entry = points[lset] = ([], [])
                entry[0].append(t)
                entry[1].append(v)
            t += step
        return [(lset, tl, vl) for lset, (tl, vl) in points.items()]


class _Neg(_Node):
    single_name = True

    def __init__(self, inner: _Node) -> None:
        self.inner = inner
        self.kind = inner.kind

    def children(self) -> list[_Node]:
        return [self.inner]

    def eval(self, ctx: _Context, ts: int):
        value = self.inner.eval(ctx, ts)
        if self.kind == SCALAR:
            return -value
        return _check_unique(
            [(_drop_name(lset), -v) for lset, v in value], not self.inner.single_name
        )


# --- binary operators ------------------------------------------------------------

_ARITHMETIC: dict[str, Callable[[float, float], float]] = {
    "+": lambda a, b: a + b,
    "-": lambda a, b: a - b,
    "*": lambda a, b: a * b,
    "/": fn.go_div,
    "%": fn.go_mod,
    "^": fn.go_pow,
    "atan2": fn.go_atan2,
}
_COMPARISON: dict[str, Callable[[float, float], bool]] = {
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    ">": lambda a, b: a > b,
    "<": lambda a, b: a < b,
    ">=": lambda a, b: a >= b,
    "<=": lambda a, b: a <= b,
}
_ARRAY_OPS: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "+": np.add,
    "-": np.subtract,
    "*": np.multiply,
    "/": np.divide,  # IEEE: x/0 gives Go's infinities and NaN (go_div)
    "%": np.fmod,  # exact, as Go's math.Mod (go_mod)
    "==": np.equal,
    "!=": np.not_equal,
    ">": np.greater,
    "<": np.less,
    ">=": np.greater_equal,
    "<=": np.less_equal,
}
"""The operators over whole arrays; ^ and atan2 (gomath) go value by value."""


def _values(vector: VectorPairs) -> np.ndarray:
    return np.fromiter(map(itemgetter(1), vector), np.float64, len(vector))


_SET_OPS = frozenset({"and", "or", "unless"})
_DROPS_NAME = frozenset({"+", "-", "*", "/", "%", "^"})


def _signature_function(on: bool, names: Sequence[str]) -> Callable[[Labels], Labels]:
    keep = frozenset(names)
    if on:
        return lambda lset: tuple([p for p in lset if p[0] in keep])
    dropped = keep | {METRIC_NAME}
    return lambda lset: tuple([p for p in lset if p[0] not in dropped])


@dataclass(frozen=True, slots=True)
class _MatchPlan:
    """A vector-vector operation's matching for one pair of label-set lists (see _match)."""

    lhs: list[Labels]
    rhs: list[Labels]
    li: np.ndarray
    """Per result, the index of its left-hand sample."""
    ri: np.ndarray
    labels: list[Labels]
    groups: np.ndarray
    repeats: bool
    """Whether some group has two results (an error unless a comparison filters one out)."""


def _repeats(groups: np.ndarray) -> bool:
    return len(np.unique(groups)) != len(groups)


class _Binary(_Node):
    def __init__(
        self,
        op: str,
        lhs: _Node,
        rhs: _Node,
        return_bool: bool,
        card: str,
        on: bool,
        matching: list[str],
        include: list[str],
    ) -> None:
        self.op = op
        self.lhs = lhs
        self.rhs = rhs
        self.return_bool = return_bool
        self.card = card
        self.on = on
        self.matching = matching
        self.include = include
        self.kind = SCALAR if lhs.kind == SCALAR and rhs.kind == SCALAR else VECTOR
        self.signature = _signature_function(on, matching)
        vector_side = rhs if lhs.kind == SCALAR else lhs
        if op in _ARITHMETIC or return_bool:
            self.single_name = True
        elif op in _COMPARISON:
            self.single_name = vector_side.single_name
        else:
            self.single_name = op != "or" and lhs.single_name
        self.drop_may_collide = not vector_side.single_name
        self._dropped = _NamesDropped()
        self._plan: _MatchPlan | None = None

    def children(self) -> list[_Node]:
        return [self.lhs, self.rhs]

    def _compute(self, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """(values, which to keep or None for all) of `a op b`, element by element.

        A comparison keeps its left-hand value where it holds (or gives 1/0 with bool).
        """
        op = self.op
        with np.errstate(all="ignore"):
            array_op = _ARRAY_OPS.get(op)
            if op in _COMPARISON:
                keep = array_op(a, b)  # type: ignore[misc]
                if self.return_bool:
                    return keep.astype(np.float64), None
                return a, keep
            if array_op is not None:
                return array_op(a, b), None
        each = _ARITHMETIC[op]
        return np.array(list(map(each, a.tolist(), b.tolist())), dtype=np.float64), None

    def eval(self, ctx: _Context, ts: int):
        lhs = self.lhs.eval(ctx, ts)
        rhs = self.rhs.eval(ctx, ts)
        if self.kind == SCALAR:
            arith = _ARITHMETIC.get(self.op)
            if arith is not None:
                return arith(lhs, rhs)
            return 1.0 if _COMPARISON[self.op](lhs, rhs) else 0.0
        if self.lhs.kind == SCALAR:
            return self._vector_scalar(rhs, lhs, swap=True)
        if self.rhs.kind == SCALAR:
            return self._vector_scalar(lhs, rhs, swap=False)
        if self.op == "and":
            return self._and(lhs, rhs)
        if self.op == "or":
            return self._or(lhs, rhs)
        if self.op == "unless":
            return self._unless(lhs, rhs)
        # One-to-one results differ in their match signature, many-to-one results
        # are checked per signature: Prometheus's labelset check cannot fail here.
        return self._vector_vector(lhs, rhs)

    def _vector_scalar(self, vector: VectorPairs, scalar: float, swap: bool) -> VectorPairs:
        if not vector:
            return []
        labels = [p[0] for p in vector]
        values = _values(vector)
        other = np.full(len(values), scalar)
        out, keep = self._compute(other, values) if swap else self._compute(values, other)
        if swap and keep is not None:
            out = values  # a filtering comparison keeps the vector's own values
        drop = self.op in _DROPS_NAME or self.return_bool
        if drop:
            labels = self._dropped(labels)
        pairs = zip(labels, out.tolist(), strict=True)
        result = list(pairs) if keep is None else list(compress(pairs, keep.tolist()))
        return _check_unique(result, drop and self.drop_may_collide)

    def _and(self, lhs: VectorPairs, rhs: VectorPairs) -> VectorPairs:
        if not lhs or not rhs:
            return []
        sig = self.signature
        right = {sig(lset) for lset, _ in rhs}
        return [s for s in lhs if sig(s[0]) in right]

    def _or(self, lhs: VectorPairs, rhs: VectorPairs) -> VectorPairs:
        # Equal label sets have equal signatures, so the union stays duplicate-free.
        if not lhs:
            return list(rhs)
        if not rhs:
            return list(lhs)
        sig = self.signature
        left = {sig(lset) for lset, _ in lhs}
        return list(lhs) + [s for s in rhs if sig(s[0]) not in left]

    def _unless(self, lhs: VectorPairs, rhs: VectorPairs) -> VectorPairs:
        if not lhs or not rhs:
            return list(lhs)
        sig = self.signature
        right = {sig(lset) for lset, _ in rhs}
        return [s for s in lhs if sig(s[0]) not in right]

    def _vector_vector(self, lhs: VectorPairs, rhs: VectorPairs) -> VectorPairs:
        """Matching works on labels only, so it is planned once for the label sets both sides
        bring and replayed while they bring the very same ones (each round, in a rule); the
        values go through as arrays."""
        if not lhs or not rhs:
            return []
        left, right = [p[0] for p in lhs], [p[0] for p in rhs]
        plan = self._plan
        if plan is None or not (_same_objects(plan.lhs, left) and _same_objects(plan.rhs, right)):
            plan = self._plan = self._match(left, right)
        if not plan.labels:
            return []
        values, keep = self._compute(_values(lhs)[plan.li], _values(rhs)[plan.ri])
        if plan.repeats if keep is None else _repeats(plan.groups[keep]):
            raise QueryError(
                "multiple matches for labels: many-to-one matching must be explicit "
                "(group_left/group_right)"
                if self.card == "one-to-one"
                else "multiple matches for labels: grouping labels must ensure unique matches"
            )
        pairs = zip(plan.labels, values.tolist(), strict=True)
        return list(pairs) if keep is None else list(compress(pairs, keep.tolist()))

    def _match(self, left: list[Labels], right: list[Labels]) -> _MatchPlan:
        """Which left and right samples meet, and the label set of each result.

        As Prometheus: the "one" side (right, or left with group_right) must have one
        sample per match signature; results on the "many" side's order. `groups` tells
        results that must not meet twice: per signature one-to-one, per signature and
        result labels otherwise.
        """
        one_to_many = self.card == "one-to-many"
        many, one = (right, left) if one_to_many else (left, right)
        sig = self.signature
        by_sig: dict[Labels, int] = {}
        for j, lset in enumerate(one):
            key = sig(lset)
            duplicate = by_sig.get(key)
            if duplicate is not None:
                side = "left" if one_to_many else "right"
                matched = _format_labels(
                    tuple(p for p in lset if (p[0] in self.matching) == self.on)
                )
                raise QueryError(
                    f"found duplicate series for the match group {matched} on the {side} "
                    f"hand-side of the operation: [{_format_labels(lset)}, "
                    f"{_format_labels(one[duplicate])}];many-to-many matching not allowed: "
                    "matching labels must be unique on one side"
                )
            by_sig[key] = j
        many_at: list[int] = []
        one_at: list[int] = []
        labels: list[Labels] = []
        group_of: dict[object, int] = {}
        groups: list[int] = []
        one_to_one = self.card == "one-to-one"
        for i, lset in enumerate(many):
            key = sig(lset)
            j = by_sig.get(key)
            if j is None:
                continue
            metric = self._result_metric(lset, one[j], key)
            if self.return_bool:
                metric = _drop_name(metric)
            many_at.append(i)
            one_at.append(j)
            labels.append(metric)
            group = key if one_to_one else (key, metric)
            groups.append(group_of.setdefault(group, len(group_of)))
        li, ri = (one_at, many_at) if one_to_many else (many_at, one_at)
        group_ids = np.array(groups, np.intp)
        return _MatchPlan(
            left,
            right,
            np.array(li, np.intp),
            np.array(ri, np.intp),
            labels,
            group_ids,
            _repeats(group_ids),
        )

    def _result_metric(self, lset: Labels, rlset: Labels, key: Labels) -> Labels:
        if self.card == "one-to-one" and METRIC_NAME not in self.matching:
            if self.op in _DROPS_NAME or self.on:
                return key  # the signature is exactly the surviving labels
            return tuple([p for p in lset if p[0] not in self.matching])
        if not self.include:
            return _drop_name(lset) if self.op in _DROPS_NAME else lset
        labels = dict(lset)
        if self.op in _DROPS_NAME:
            labels.pop(METRIC_NAME, None)
        if self.card == "one-to-one":
            if self.on:
                labels = {k: v for k, v in labels.items() if k in self.matching}
            else:
                for name in self.matching:
                    labels.pop(name, None)
        if self.include:
            right = dict(rlset)
            for name in self.include:
                value = right.get(name, "")
                if value:
                    labels[name] = value
                else:
                    labels.pop(name, None)
        return tuple(sorted(labels.items()))


# --- aggregations --------------------------------------------------------------


class _Aggregate(_Node):
    def __init__(
        self,
        op: str,
        inner: _Node,
        param: _Node | None,
        grouping: list[str],
        without: bool,
        frozen: tuple[_PathStep, ...] | None = None,
    ) -> None:
        self.op = op
        self.inner = inner
        self.param = param
        self.grouping = sorted(grouping)
        self.without = without
        self.frozen = frozen
        """The subqueries enclosing a step-invariant aggregation with a parameter: Prometheus
        evaluates it once, at the innermost one's first step, the parameter included."""
        if op in ("topk", "bottomk"):
            self.single_name = inner.single_name
        else:
            self.single_name = without or METRIC_NAME not in grouping

    def children(self) -> list[_Node]:
        return [self.inner] + ([self.param] if self.param is not None else [])

    def eval(self, ctx: _Context, ts: int) -> VectorPairs:
        param = None
        if self.param is not None:
            at = _subquery_starts(ctx, self.frozen)[-1] if self.frozen else ts
            param = self.param.eval(ctx, at)
        vector = self.inner.eval(ctx, ts)
        return aggregate(self.op, vector, self.grouping, self.without, param)


# --- function calls -------------------------------------------------------------

_RANGE_FUNCTIONS = frozenset(
    {
        "rate",
        "irate",
        "increase",
        "delta",
        "idelta",
        "deriv",
        "predict_linear",
        "changes",
        "resets",
        "avg_over_time",
        "min_over_time",
        "max_over_time",
        "sum_over_time",
        "count_over_time",
        "quantile_over_time",
        "stddev_over_time",
        "stdvar_over_time",
        "last_over_time",
        "present_over_time",
        "absent_over_time",
        "holt_winters",
    }
)
_DATE_FUNCTIONS = frozenset(
    {
        "minute",
        "hour",
        "day_of_week",
        "day_of_month",
        "day_of_year",
        "days_in_month",
        "month",
        "year",
    }
)
_NATIVE_HISTOGRAM_FUNCTIONS = frozenset({"histogram_count", "histogram_sum", "histogram_fraction"})
"""2.42 computes these from native histogram samples and skips float samples. Our
storage holds only float samples, so they return an empty vector, as 2.42 does for
float input."""
_VECTOR_FUNCTIONS = (
    frozenset(fn.SIMPLE_FUNCTIONS)
    | _DATE_FUNCTIONS
    | _NATIVE_HISTOGRAM_FUNCTIONS
    | frozenset(
        {
            "absent",
            "round",
            "clamp",
            "clamp_min",
            "clamp_max",
            "timestamp",
            "vector",
            "scalar",
            "time",
            "pi",
            "label_replace",
            "label_join",
            "histogram_quantile",
            "sort",
            "sort_desc",
        }
    )
)
SUPPORTED_FUNCTIONS = _RANGE_FUNCTIONS | _VECTOR_FUNCTIONS
"""Every function of Prometheus 2.42's PromQL."""
_SCALAR_FUNCTIONS = frozenset({"time", "scalar", "pi"})

# promql-parser follows Prometheus 3, where holt_winters became
# double_exponential_smoothing; 2.42 knows it only by its old name.
pp.register_extra_functions(
    [
        pp.Function(
            "holt_winters",
            [pp.ValueType.Matrix, pp.ValueType.Scalar, pp.ValueType.Scalar],
            pp.ValueType.Vector,
        )
    ]
)


def _unix_seconds(ts_ms: int) -> int:
    """Go's ts / 1000 on int64 milliseconds: truncated toward zero."""
    return ts_ms // 1000 if ts_ms >= 0 else -(-ts_ms // 1000)


class _RangeCall(_Node):
    """A function over a range vector: one output sample per input series."""

    def __init__(self, name: str, arg: _MatrixNode, scalar_args: list[_Node], absent: Labels):
        self.name = name
        self.arg = arg
        self.scalar_args = scalar_args
        self.absent = absent
        self.single_name = name != "last_over_time" or arg.single_name
        self._dropped = _NamesDropped()

    def children(self) -> list[_Node]:
        return [self.arg, *self.scalar_args]

    def eval(self, ctx: _Context, ts: int) -> VectorPairs:
        scalars = [a.eval(ctx, ts) for a in self.scalar_args]
        name = self.name
        if name == "absent_over_time":
            return [] if self.arg.eval(ctx, ts) else [(self.absent, 1.0)]
        labels, times, samples = self.arg.rows(ctx, ts)
        groups = list(rf.batches(times, samples))
        if not groups:
            return []  # Prometheus calls the function only for a series with samples
        start, end, range_ms = self.arg.window(ctx, ts)
        compute = rf.range_function(name, scalars, start, end, range_ms, ts)
        values, present = rf.evaluate(compute, groups, len(labels))
        keep_name = name == "last_over_time"
        if not keep_name:
            labels = self._dropped(labels)
        if all(present):
            out = list(zip(labels, values, strict=True))
        else:
            out = list(compress(zip(labels, values, strict=True), present))
        return _check_unique(out, not keep_name and not self.arg.single_name)


class _Call(_Node):
    """A function over instant vectors, scalars and strings."""

    def __init__(self, name: str, args: list[_Node]) -> None:
        self.name = name
        self.args = args
        self.kind = SCALAR if name in _SCALAR_FUNCTIONS else VECTOR
        self.regex: re.Pattern[str] | None = None
        if name in ("label_replace", "label_join"):
            self.single_name = False
        elif name in ("sort", "sort_desc"):
            self.single_name = args[0].single_name
        else:
            self.single_name = True
        self.drop_may_collide = bool(args) and not args[0].single_name
        if name == "label_replace":
            self._check_label_replace()
        if name == "label_join":
            self._check_label_join()

    def children(self) -> list[_Node]:
        return list(self.args)

    def _string_arg(self, i: int) -> str:
        arg = self.args[i]
        assert isinstance(arg, _String)
        return arg.value

    def _check_label_replace(self) -> None:
        pattern = self._string_arg(4)
        try:
            self.regex = re.compile("^(?:" + pattern + ")$", re.DOTALL)
        except re.error as e:
            raise QueryError(f"invalid regular expression in label_replace(): {pattern}") from e
        dst = self._string_arg(1)
        if not fn.LABEL_NAME_RE.match(dst):
            raise QueryError(f"invalid destination label name in label_replace(): {dst}")

    def _check_label_join(self) -> None:
        for i in range(3, len(self.args)):
            src = self._string_arg(i)
            if not fn.LABEL_NAME_RE.match(src):
                raise QueryError(f"invalid source label name in label_join(): {src}")
        dst = self._string_arg(1)
        if not fn.LABEL_NAME_RE.match(dst):
            raise QueryError(f"invalid destination label name in label_join(): {dst}")

    def eval(self, ctx: _Context, ts: int):
        name = self.name
        if name == "time":
            return ts / 1000
        if name == "pi":
            return math.pi
        if name == "timestamp" and isinstance(self.args[0], _Selector):
            triples = self.args[0].eval_with_times(ctx, ts)
            return _check_unique(
                [(_drop_name(lset), t / 1000) for lset, _, t in triples], self.drop_may_collide
            )
        args = [a.eval(ctx, ts) for a in self.args]
        if name == "scalar":
            vector = args[0]
            return vector[0][1] if len(vector) == 1 else math.nan
        if name == "vector":
            return [((), args[0])]
        if name in _DATE_FUNCTIONS:
            if not args:
                return [((), fn.date_part(name, _unix_seconds(ts)))]
            return _check_unique(
                [(_drop_name(lset), fn.date_part(name, fn.go_int64(v))) for lset, v in args[0]],
                self.drop_may_collide,
            )
        simple = fn.SIMPLE_FUNCTIONS.get(name)
        if simple is not None:
            return _check_unique(
                [(_drop_name(lset), simple(v)) for lset, v in args[0]], self.drop_may_collide
            )
        needed = name in ("label_replace", "label_join") or self.drop_may_collide
        return _check_unique(self._vector_function(ctx, ts, args), needed)

    def _vector_function(self, ctx: _Context, ts: int, args: list) -> VectorPairs:
        name = self.name
        if name == "absent":
            if args[0]:
                return []
            arg = self.args[0]
            labels = arg.absent_labels() if isinstance(arg, _Selector) else ()
            return [(labels, 1.0)]
        if name == "round":
            to_nearest = args[1] if len(args) > 1 else 1.0
            return [(_drop_name(lset), fn.round_to(v, to_nearest)) for lset, v in args[0]]
        if name == "clamp":
            low, high = args[1], args[2]
            if high < low:
                return []
            return [(_drop_name(lset), fn.go_max(low, fn.go_min(high, v))) for lset, v in args[0]]
        if name == "clamp_min":
            return [(_drop_name(lset), fn.go_max(args[1], v)) for lset, v in args[0]]
        if name == "clamp_max":
            return [(_drop_name(lset), fn.go_min(args[1], v)) for lset, v in args[0]]
        if name == "timestamp":
            return [(_drop_name(lset), ts / 1000) for lset, _ in args[0]]
        if name == "label_replace":
            return self._label_replace(args[0])
        if name == "label_join":
            return self._label_join(args)
        if name == "histogram_quantile":
            return _histogram_quantile(args[0], args[1])
        if name == "sort":
            return sorted(args[0], key=lambda s: (s[1] != s[1], s[1] if s[1] == s[1] else 0.0))
        if name == "sort_desc":
            return sorted(args[0], key=lambda s: (s[1] != s[1], -s[1] if s[1] == s[1] else 0.0))
        if name in _NATIVE_HISTOGRAM_FUNCTIONS:
            return []
        raise UnsupportedQuery(f"function '{name}' is not supported")

    def _label_replace(self, vector: VectorPairs) -> VectorPairs:
        dst, replacement, src = self._string_arg(1), self._string_arg(2), self._string_arg(3)
        regex = self.regex
        assert regex is not None
        out: VectorPairs = []
        for lset, v in vector:
            match = regex.match(dict(lset).get(src, ""))
            if match is None:
                out.append((lset, v))
                continue
            value = fn.expand_template(replacement, match)
            labels = dict(lset)
            labels.pop(dst, None)
            if value:
                labels[dst] = value
            out.append((tuple(sorted(labels.items())), v))
        return out

    def _label_join(self, args: list) -> VectorPairs:
        dst, separator = self._string_arg(1), self._string_arg(2)
        sources = [self._string_arg(i) for i in range(3, len(self.args))]
        out: VectorPairs = []
        for lset, v in args[0]:
            labels = dict(lset)
            value = separator.join(labels.get(s, "") for s in sources)
            if value:
                labels[dst] = value
            else:
                labels.pop(dst, None)
            out.append((tuple(sorted(labels.items())), v))
        return out


def _histogram_quantile(q: float, vector: VectorPairs) -> VectorPairs:
    return histogram_quantile(q, vector)


# --- compilation ---------------------------------------------------------------

_MATCH_OPS = {
    "Equal": MatchOp.EQUAL,
    "NotEqual": MatchOp.NOT_EQUAL,
    "Re": MatchOp.REGEX,
    "NotRe": MatchOp.NOT_REGEX,
}


def _ms(delta: _dt.timedelta | None) -> int:
    if delta is None:
        return 0
    return (delta.days * 86_400_000) + (delta.seconds * 1000) + (delta.microseconds // 1000)


def _at_of(node: object) -> _At | None:
    try:
        at = node.at  # type: ignore[attr-defined]
    except BaseException as e:  # pyo3 panics on negative @ timestamps
        if isinstance(e, Exception) or type(e).__name__ == "PanicException":
            raise UnsupportedQuery("@ modifier with a negative timestamp is not supported") from e
        raise
    if at is None:
        return None
    kind = str(at.type)
    if kind.endswith("Start") or kind.endswith("End"):
        return _At(None)
    try:
        moment = at.at
    except BaseException as e:
        if isinstance(e, Exception) or type(e).__name__ == "PanicException":
            raise UnsupportedQuery("@ modifier with a negative timestamp is not supported") from e
        raise
    epoch = _dt.datetime(1970, 1, 1, tzinfo=_dt.UTC)
    return _At(_ms(moment - epoch))


def _unwrap(expr: Expr) -> Expr:
    while isinstance(expr, pp.ParenExpr):
        expr = expr.expr
    return expr


def _matchers_of(vs: pp.VectorSelector) -> list[Matcher]:
    matchers_obj = vs.matchers
    if matchers_obj.or_matchers:
        raise UnsupportedQuery("'or' between label matchers is not supported")
    out: list[Matcher] = []
    if vs.name:
        out.append(Matcher(METRIC_NAME, MatchOp.EQUAL, vs.name))
    for m in matchers_obj.matchers:
        op = _MATCH_OPS[str(m.op).rsplit(".", 1)[-1]]
        if op in (MatchOp.REGEX, MatchOp.NOT_REGEX):
            try:
                re.compile(m.value)
            except re.error as e:
                raise UnsupportedQuery(
                    f"regular expression {m.value!r} uses syntax this evaluator cannot run"
                ) from e
        out.append(Matcher(m.name, op, m.value))
    return out


def _at_in(node: object, param: bool) -> _At | None:
    """The @ of a selector or subquery; in an aggregation's parameter Prometheus 2.42 never
    resolves `@ start()`/`@ end()` (only its PreprocessExpr does, and it skips parameters),
    so there they act as if there were no @."""
    at = _at_of(node)
    return None if param and at is not None and at.ms is None else at


def _selector(
    vs: pp.VectorSelector, range_ms: int, path: tuple[_PathStep, ...], param: bool
) -> _Selector:
    return _Selector(_matchers_of(vs), _ms(vs.offset), _at_in(vs, param), range_ms, path)


def _compile(expr: Expr, path: tuple[_PathStep, ...] = (), param: bool = False) -> _Node:
    """`param`: inside an aggregation's parameter, which Prometheus 2.42 never marks step
    invariant: each @ there is read per step at the offset it became (it slides)."""
    expr = _unwrap(expr)
    if isinstance(expr, pp.NumberLiteral):
        return _Number(float(expr.val))
    if isinstance(expr, pp.StringLiteral):
        return _String(expr.val)
    if isinstance(expr, pp.VectorSelector):
        sel = _selector(expr, 0, path, param)
        sel.slides = param and bool(path) and sel.at is not None
        return sel
    if isinstance(expr, pp.MatrixSelector):
        return _RangeSelector(_selector(expr.vector_selector, _ms(expr.range), path, param))
    if isinstance(expr, pp.SubqueryExpr):
        at = _at_in(expr, param)
        range_ms, offset_ms = _ms(expr.range), _ms(expr.offset)
        step_ms = _ms(expr.step)
        inner = _compile(expr.expr, (*path, _PathStep(range_ms, offset_ms, at, step_ms)), param)
        return _Subquery(inner, range_ms, step_ms, offset_ms, at, path)
    if isinstance(expr, pp.UnaryExpr):
        return _Neg(_compile(expr.expr, path, param))
    if isinstance(expr, pp.BinaryExpr):
        return _compile_binary(expr, path, param)
    if isinstance(expr, pp.AggregateExpr):
        return _compile_aggregate(expr, path, param)
    if isinstance(expr, pp.Call):
        return _compile_call(expr, path, param)
    raise UnsupportedQuery(f"expression {type(expr).__name__} is not supported")


def _compile_binary(expr: pp.BinaryExpr, path: tuple[_PathStep, ...], param: bool) -> _Node:
    op = str(expr.op)
    if op not in _ARITHMETIC and op not in _COMPARISON and op not in _SET_OPS:
        raise UnsupportedQuery(f"binary operator '{op}' is not supported")
    lhs = _compile(expr.lhs, path, param)
    rhs = _compile(expr.rhs, path, param)
    modifier = expr.modifier
    card = "many-to-many" if op in _SET_OPS else "one-to-one"
    return_bool = False
    on = False
    matching: list[str] = []
    include: list[str] = []
    if modifier is not None:
        fill = modifier.fill_values
        if fill is not None and (fill.lhs is not None or fill.rhs is not None):
            raise UnsupportedQuery("fill modifiers in binary operations are not supported")
        return_bool = bool(modifier.return_bool)
        card_text = repr(modifier.card)
        if card_text.endswith("ManyToOne"):
            card = "many-to-one"
        elif card_text.endswith("OneToMany"):
            card = "one-to-many"
        elif card_text.endswith("ManyToMany"):
            card = "many-to-many"
        else:
            card = "one-to-one"
        if modifier.matching is not None:
            on = str(modifier.matching.type).endswith("Include")
            matching = list(modifier.matching.labels)
        include = list(modifier.group_labels or [])
    return _Binary(op, lhs, rhs, return_bool, card, on, matching, include)


def _compile_aggregate(
    expr: pp.AggregateExpr, path: tuple[_PathStep, ...], in_param: bool
) -> _Node:
    op = str(expr.op)
    if op not in SUPPORTED_AGGREGATIONS:
        raise UnsupportedQuery(f"aggregation '{op}' is not supported")
    inner = _compile(expr.expr, path, in_param)
    param = _compile(expr.param, path, True) if expr.param is not None else None
    # Step invariant (its parameter does not count) and not itself in a parameter: inside a
    # subquery Prometheus evaluates it once, at the first step, parameter included.
    frozen = path if param is not None and path and not in_param and _step_invariant(expr) else None
    grouping: list[str] = []
    without = False
    if expr.modifier is not None:
        without = str(expr.modifier.type).endswith("Without")
        grouping = list(expr.modifier.labels)
    return _Aggregate(op, inner, param, grouping, without, frozen)


_AT_UNSAFE_FUNCTIONS = frozenset(
    {
        "days_in_month", "day_of_month", "day_of_week", "day_of_year", "hour", "minute",
        "month", "year", "predict_linear", "time", "timestamp",
    }
)  # fmt: skip
"""Functions Prometheus 2.42 never evaluates once for all steps, even if all arguments are."""


def _step_invariant(expr: Expr) -> bool:
    """Whether Prometheus 2.42 evaluates `expr` once, at its evaluator's first step, and
    repeats the result for the other steps (its PreprocessExpr rule)."""
    expr = _unwrap(expr)
    if isinstance(expr, pp.VectorSelector | pp.SubqueryExpr):
        return _at_of(expr) is not None
    if isinstance(expr, pp.MatrixSelector):
        return _at_of(expr.vector_selector) is not None
    if isinstance(expr, pp.AggregateExpr | pp.UnaryExpr):
        return _step_invariant(expr.expr)  # an aggregation's parameter does not count
    if isinstance(expr, pp.BinaryExpr):
        return _step_invariant(expr.lhs) and _step_invariant(expr.rhs)
    if isinstance(expr, pp.Call):
        return expr.func.name not in _AT_UNSAFE_FUNCTIONS and all(
            [_step_invariant(a) for a in expr.args]
        )
    return isinstance(expr, pp.NumberLiteral | pp.StringLiteral)


def _compile_call(expr: pp.Call, path: tuple[_PathStep, ...], param: bool) -> _Node:
    name = expr.func.name
    if name not in SUPPORTED_FUNCTIONS:
        raise UnsupportedQuery(f"function '{name}' is not supported")
    raw_args = [_unwrap(a) for a in expr.args]
    if name in _RANGE_FUNCTIONS:
        matrix_index = next(
            i for i, a in enumerate(raw_args) if isinstance(a, pp.MatrixSelector | pp.SubqueryExpr)
        )
        matrix = _compile(raw_args[matrix_index], path, param)
        assert isinstance(matrix, _MatrixNode)
        others = [_compile(a, path, param) for i, a in enumerate(raw_args) if i != matrix_index]
        # Inside a subquery, Prometheus 2.42 evaluates a range function that is not step
        # invariant (predict_linear, or one with an argument that is not) at every step, and
        # its selector with @ at the offset the @ became for the subquery's first step: the
        # window slides with the steps, over only the samples fetched for the @ time. The
        # same goes for a subquery with @ there, and for any range function in an
        # aggregation's parameter (never marked step invariant).
        pinned = matrix.selector if isinstance(matrix, _RangeSelector) else matrix
        assert isinstance(pinned, _Selector | _Subquery)
        if pinned.at is not None and path and (param or not _step_invariant(expr)):
            pinned.slides = True
        absent: Labels = ()
        if name == "absent_over_time" and isinstance(matrix, _RangeSelector):
            absent = matrix.selector.absent_labels()
        return _RangeCall(name, matrix, others, absent)
    args = [_compile(a, path, param) for a in raw_args]
    if name == "timestamp" and isinstance(args[0], _Selector):
        args[0].slides = False  # Prometheus re-reads it at its @ time at every step
    return _Call(name, args)


# --- public API ---------------------------------------------------------------


def _parse_text(expr: str) -> Expr:
    try:
        return pp.parse(expr)
    except BaseException as e:
        if not isinstance(e, Exception) and type(e).__name__ != "PanicException":
            raise
        raise QueryError(str(e)) from e


@lru_cache(maxsize=1024)
def _compiled_text(expr: str) -> _Node:
    return _compile(_parse_text(expr))


_compiled_ast = by_identity(_compile, limit=4096)
"""Rules hand in the same parsed AST every round: its nodes (and what they remember
from the last round, such as a range function's name-dropped labels) are kept."""


def _compiled(expr: str | Expr) -> _Node:
    if isinstance(expr, str):
        return _compiled_text(expr)
    return _compiled_ast(expr)


def parse(expr: str) -> Expr:
    """promql-parser's AST for `expr`, once every construct in it is known to be supported."""
    tree = _parse_text(expr)
    _compiled_text(expr)
    return tree


def value_type(expr: str | Expr) -> str:
    """What `expr` evaluates to, in Prometheus's words: scalar, vector, matrix or string."""
    return _compiled(expr).kind


def selector_matchers(text: str) -> list[Matcher]:
    """The matchers of a series selector such as `up{job="agent"}` (the API's `match[]`)."""
    tree = _unwrap(_parse_text(text))
    if not isinstance(tree, pp.VectorSelector):
        raise QueryError(f"{text!r} is not a series selector such as up{{job=\"agent\"}}")
    return _matchers_of(tree)


def check_supported(expr: str) -> None:
    """Raise UnsupportedQuery (naming the construct) or QueryError if `expr` cannot run here."""
    _compiled_text(expr)


def max_range_ms(expr: str | Expr, lookback_ms: int = DEFAULT_LOOKBACK_MS) -> int:
    """How far back from the evaluation time `expr` reads samples (ranges, offsets, subqueries).

    Instant selectors count the lookback delta. @ modifiers pin absolute times
    and are not bounded by this figure.
    """
    return max(0, _compiled(expr).reach(lookback_ms))


def instant_query(
    expr: str | Expr,
    storage: Storage,
    t_ms: int,
    lookback_ms: int = DEFAULT_LOOKBACK_MS,
    *,
    subquery_step_ms: int = DEFAULT_SUBQUERY_STEP_MS,
) -> Value:
    """Evaluate `expr` at `t_ms` against `storage`, as Prometheus's instant query does.

    `subquery_step_ms` is the step of subqueries written without one
    (Prometheus uses the global or rule group evaluation interval).
    """
    node = _compiled(expr)
    ctx = _Context(storage, t_ms, lookback_ms, subquery_step_ms)
    result = node.eval(ctx, t_ms)
    if node.kind == SCALAR:
        return Scalar(result, t_ms)
    if node.kind == STRING:
        return String(result, t_ms)
    if node.kind == MATRIX:
        return [Series(lset, tuple(tl), tuple(vl)) for lset, tl, vl in result]
    return [Sample(lset, v, t_ms) for lset, v in result]


def rule_query(
    expr: str | Expr,
    storage: Storage,
    t_ms: int,
    lookback_ms: int = DEFAULT_LOOKBACK_MS,
    *,
    subquery_step_ms: int = DEFAULT_SUBQUERY_STEP_MS,
) -> list[tuple[Labels, float]]:
    """`instant_query` as a rule reads it: (labels, value) pairs; a scalar is one unlabelled pair.

    Rules evaluate 100,000s of samples a round and need no `Sample` objects.
    Raises QueryError for a range vector or string, which no rule may return.
    """
    node = _compiled(expr)
    result = node.eval(_Context(storage, t_ms, lookback_ms, subquery_step_ms), t_ms)
    if node.kind == SCALAR:
        return [((), result)]
    if node.kind != VECTOR:
        raise QueryError("rule result is not a vector or scalar")
    return result
