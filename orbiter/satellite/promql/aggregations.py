"""PromQL aggregation operators over one instant vector, grouped by label tuples.

A vector here is a list of (labels, value) pairs. Groups are keyed by the
label tuple they produce, so grouping costs one tuple build per sample.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from orbiter.satellite.promql.functions import LABEL_NAME_RE, format_float, quantile
from orbiter.satellite.promql.values import QueryError
from orbiter.satellite.series import Labels

METRIC_NAME = "__name__"
MAX_INT64 = 9223372036854774784.0
MIN_INT64 = -9223372036854775808.0

VectorPairs = list[tuple[Labels, float]]

SUPPORTED_AGGREGATIONS = frozenset(
    {
        "sum",
        "avg",
        "min",
        "max",
        "count",
        "group",
        "stddev",
        "stdvar",
        "topk",
        "bottomk",
        "quantile",
        "count_values",
    }
)


def grouping_function(labels: Sequence[str], without: bool) -> Callable[[Labels], Labels]:
    """The function from a series' labels to its group's labels."""
    names = frozenset(labels)
    if without:
        dropped = names | {METRIC_NAME}
        return lambda lset: tuple([p for p in lset if p[0] not in dropped])
    if not names:
        return lambda lset: ()
    return lambda lset: tuple([p for p in lset if p[0] in names])


def aggregate(
    op: str,
    vector: VectorPairs,
    grouping: Sequence[str],
    without: bool,
    param: float | str | None,
) -> VectorPairs:
    """Apply aggregation `op` to `vector`, grouped by (or without) `grouping`."""
    if op in ("topk", "bottomk"):
        return _top_bottom(op == "topk", vector, grouping, without, param)  # type: ignore[arg-type]
    if op == "count_values":
        return _count_values(vector, grouping, without, str(param))
    key_of = grouping_function(grouping, without)
    groups: dict[Labels, list[float]] = {}
    for lset, v in vector:
        key = key_of(lset)
        bucket = groups.get(key)
        if bucket is None:
            groups[key] = [v]
        else:
            bucket.append(v)
    reduce = _REDUCERS.get(op)
    if reduce is not None:
        return [(key, reduce(vs)) for key, vs in groups.items()]
    if op == "quantile":
        q = float(param)  # type: ignore[arg-type]
        return [(key, quantile(q, vs)) for key, vs in groups.items()]
    raise QueryError(f"aggregation '{op}' is not supported")


def _sum(vs: list[float]) -> float:
    total = vs[0]
    for v in vs[1:]:
        total += v
    return total


def _avg(vs: list[float]) -> float:
    mean = vs[0]
    count = 1
    for v in vs[1:]:
        count += 1
        if math.isinf(mean):
            if math.isinf(v) and (mean > 0) == (v > 0):
                continue
            if not math.isinf(v) and v == v:
                continue
        mean += v / count - mean / count
    return mean


def _max(vs: list[float]) -> float:
    best = vs[0]
    for v in vs[1:]:
        if best < v or best != best:
            best = v
    return best


def _min(vs: list[float]) -> float:
    best = vs[0]
    for v in vs[1:]:
        if best > v or best != best:
            best = v
    return best


def _stdvar(vs: list[float]) -> float:
    mean = vs[0]
    value = 0.0
    count = 1
    for v in vs[1:]:
        count += 1
        delta = v - mean
        mean += delta / count
        value += delta * (v - mean)
    return value / count


def _stddev(vs: list[float]) -> float:
    var = _stdvar(vs)
    return math.sqrt(var) if var >= 0 or var != var else math.nan


_REDUCERS: dict[str, Callable[[list[float]], float]] = {
    "sum": _sum,
    "avg": _avg,
    "max": _max,
    "min": _min,
    "count": lambda vs: float(len(vs)),
    "group": lambda vs: 1.0,
    "stdvar": _stdvar,
    "stddev": _stddev,
}


def _count_values(
    vector: VectorPairs, grouping: Sequence[str], without: bool, value_label: str
) -> VectorPairs:
    if not LABEL_NAME_RE.match(value_label):
        raise QueryError(f'invalid label name "{value_label}"')
    names = list(grouping)
    if not without:
        names.append(value_label)
    key_of = grouping_function(names, without)
    counts: dict[Labels, int] = {}
    for lset, v in vector:
        text = format_float(v)
        with_value = tuple(sorted([p for p in lset if p[0] != value_label] + [(value_label, text)]))
        key = key_of(with_value)
        counts[key] = counts.get(key, 0) + 1
    return [(key, float(n)) for key, n in counts.items()]


def _top_bottom(
    top: bool, vector: VectorPairs, grouping: Sequence[str], without: bool, param: float
) -> VectorPairs:
    """topk/bottomk with Prometheus's heap, so ties and NaNs resolve the same way."""
    if not (param <= MAX_INT64 and param >= MIN_INT64):
        raise QueryError(f"Scalar value {format_float(param)} overflows int64")
    k = int(param)
    if k < 1:
        return []
    key_of = grouping_function(grouping, without)
    if top:

        def less(a: float, b: float) -> bool:
            return a != a or a < b

    else:

        def less(a: float, b: float) -> bool:
            return a != a or a > b

    heaps: dict[Labels, list[tuple[Labels, float]]] = {}
    for lset, v in vector:
        key = key_of(lset)
        heap = heaps.get(key)
        if heap is None:
            heaps[key] = [(lset, v)]
            continue
        root = heap[0][1]
        if len(heap) < k or (root < v if top else root > v) or root != root:
            if len(heap) == k:
                if k == 1:
                    heap[0] = (lset, v)
                    continue
                _heap_pop(heap, less)
            _heap_push(heap, (lset, v), less)
    out: VectorPairs = []
    for heap in heaps.values():
        # Reverse heap order: the best first, NaN last.
        if top:
            heap.sort(key=lambda s: (s[1] != s[1], -s[1] if s[1] == s[1] else 0.0))
        else:
            heap.sort(key=lambda s: (s[1] != s[1], s[1] if s[1] == s[1] else 0.0))
        out.extend(heap)
    return out


def _heap_push(
    heap: list[tuple[Labels, float]],
    item: tuple[Labels, float],
    less: Callable[[float, float], bool],
) -> None:
    heap.append(item)
    j = len(heap) - 1
    while j > 0:
        i = (j - 1) // 2
        if not less(heap[j][1], heap[i][1]):
            break
        heap[i], heap[j] = heap[j], heap[i]
        j = i


def _heap_pop(heap: list[tuple[Labels, float]], less: Callable[[float, float], bool]) -> None:
    n = len(heap) - 1
    heap[0], heap[n] = heap[n], heap[0]
    i = 0
    while True:
        j1 = 2 * i + 1
        if j1 >= n:
            break
        j = j1
        j2 = j1 + 1
        if j2 < n and less(heap[j2][1], heap[j1][1]):
            j = j2
        if not less(heap[j][1], heap[i][1]):
            break
        heap[i], heap[j] = heap[j], heap[i]
        i = j
    heap.pop()
