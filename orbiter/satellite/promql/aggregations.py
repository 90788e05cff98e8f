"""PromQL aggregation operators over one instant vector, grouped by label tuples.

A vector here is a list of (labels, value) pairs. Finding each sample's group
is the per-sample cost that dominates, so groups come from a `LabelMemo`
(memoised across calls per labels object) as small integers, and the
reductions run over numpy arrays in input order, reproducing Prometheus
2.42's sequential float arithmetic bit for bit.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from itertools import repeat
from operator import itemgetter

import numpy as np

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

_MISS = object()
_MAX_LISTS = 64  # label lists a LabelMemo remembers (about a round's worth of calls)
_labels_of = itemgetter(0)
_value_of = itemgetter(1)


class LabelMemo:
    """What a labels tuple derives to (its group number), kept across calls.

    The TSDB hands out the same labels tuple for a series every round and a
    tuple does not cache its hash, so entries are found first by id(): safe
    because every tuple whose id is a key is held alive as a `_by_labels` key,
    so no other live object can have that id. Vectors whose labels are
    rebuilt for each call (say, by a binary operator) are looked up by value.
    `derive(lset, number)` computes an entry on a miss; `number(key)` numbers
    groups, and `labels[n]` is group n's output labels (`out(key)`). All
    tables are cleared together, only between calls (so one call never sees
    two numbers for one group), once they hold more than `limit` label sets
    and twice the call's: enough for a round's vectors, not for all history.
    """

    def __init__(
        self,
        derive: Callable[[Labels, Callable[[Labels], int]], object],
        out: Callable[[Labels], Labels] = lambda key: key,
        limit: int = 1 << 18,
    ) -> None:
        self._derive = derive
        self._out = out
        self._limit = limit
        self._clear()

    def _clear(self) -> None:
        self._by_id: dict[int, object] = {}
        self._by_labels: dict[Labels, object] = {}
        self._numbers: dict[Labels, int] = {}
        self.labels: list[Labels] = []
        self._lists: dict[tuple[int, int, int], tuple[list[Labels], list]] = {}

    def __len__(self) -> int:
        """How many label sets it holds (about 180 bytes each with its tables)."""
        return len(self._by_labels)

    def lookup(self, lsets: list[Labels]) -> list:
        """Each labels tuple's entry, in order."""
        if len(self._by_labels) > max(self._limit, 2 * len(lsets)):
            self._clear()
        if not lsets:
            return []
        # A rule's vector comes with the same label sets in the same order every round:
        # comparing the lists (by identity, element by element) is cheaper than the lookups.
        shape = (len(lsets), id(lsets[0]), id(lsets[-1]))
        seen = self._lists.get(shape)
        if seen is not None and seen[0] == lsets:
            return seen[1].copy()
        entries = list(map(self._by_id.get, map(id, lsets), repeat(_MISS)))
        misses = entries.count(_MISS)
        if not misses:  # all held by the memo already, so keeping the list pins nothing more
            if len(self._lists) >= _MAX_LISTS:
                self._lists.clear()
            self._lists[shape] = (lsets.copy(), entries.copy())
        if misses * 2 > len(entries):  # labels rebuilt for this call: look them up by value
            entries = list(map(self._by_labels.get, lsets, repeat(_MISS)))
            misses = entries.count(_MISS)
        if misses:
            for i, entry in enumerate(entries):
                if entry is _MISS:
                    entries[i] = self._entry(lsets[i])
        return entries

    def _entry(self, lset: Labels) -> object:
        entry = self._by_labels.get(lset, _MISS)
        if entry is _MISS:
            entry = self._by_labels[lset] = self._derive(lset, self.number)
            self._by_id[id(lset)] = entry
        return entry

    def number(self, key: Labels) -> int:
        """The group number of `key`, a new one for a key not seen since the last clear."""
        n = self._numbers.get(key)
        if n is None:
            n = self._numbers[key] = len(self.labels)
            self.labels.append(self._out(key))
        return n


def grouping_function(labels: Sequence[str], without: bool) -> Callable[[Labels], Labels]:
    """The function from a series' labels to its group's labels."""
    names = frozenset(labels)
    if without:
        dropped = names | {METRIC_NAME}
        return lambda lset: tuple([p for p in lset if p[0] not in dropped])
    if not names:
        return lambda lset: ()
    return lambda lset: tuple([p for p in lset if p[0] in names])


class _OneGroup(LabelMemo):
    """`by ()`: every sample is in group 0, labelled (); nothing to look up."""

    def __init__(self) -> None:
        self.labels = [()]

    def lookup(self, lsets: list[Labels]) -> list:
        return [0] * len(lsets)


_GROUP_MEMOS: dict[tuple[frozenset[str], bool], LabelMemo] = {}
_MAX_GROUP_MEMOS = 256
_MAX_GROUPED_LABEL_SETS = 1 << 20  # ~180 MiB; 1,000 agents' rules hold ~230,000


def group_memo(grouping: Sequence[str], without: bool) -> LabelMemo:
    """The shared memo of group numbers for one `by`/`without` label list."""
    if not grouping and not without:
        return _ONE_GROUP
    # Rules reuse a few groupings; ad-hoc queries may bring many: bound them all.
    if sum(map(len, _GROUP_MEMOS.values())) > _MAX_GROUPED_LABEL_SETS:
        _GROUP_MEMOS.clear()
    spec = (frozenset(grouping), without)
    memo = _GROUP_MEMOS.get(spec)
    if memo is None:
        if len(_GROUP_MEMOS) >= _MAX_GROUP_MEMOS:
            _GROUP_MEMOS.clear()
        key_of = grouping_function(grouping, without)
        memo = _GROUP_MEMOS[spec] = LabelMemo(lambda lset, number: number(key_of(lset)))
    return memo


_ONE_GROUP = _OneGroup()


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
    reduce = _REDUCERS.get(op)
    if reduce is None and op != "quantile":
        raise QueryError(f"aggregation '{op}' is not supported")
    memo = group_memo(grouping, without)
    numbers = memo.lookup(list(map(_labels_of, vector)))
    order, groups = group_index(numbers, len(memo.labels))
    if not order:
        return []
    values = np.fromiter(map(_value_of, vector), np.float64, len(numbers))
    with np.errstate(all="ignore"):
        if reduce is None:
            results = _quantile_groups(float(param), groups, values, len(order))  # type: ignore[arg-type]
        else:
            results = reduce(groups, values, len(order))
    labels = memo.labels
    return list(zip(map(labels.__getitem__, order), results, strict=True))


# --- reductions: groups[i] is sample i's group (0 .. n-1, in order of first appearance)


def group_index(numbers: list[int], size: int) -> tuple[list[int], np.ndarray]:
    """The group numbers in order of first appearance, and each sample's position among them.

    `size` bounds the numbers (a memo's `len(labels)`).
    """
    order = list(dict.fromkeys(numbers))
    position = np.empty(size, np.intp)
    position[order] = np.arange(len(order))
    return order, position[numbers]


def group_members(groups: np.ndarray, values: np.ndarray, n: int) -> list[list[float]]:
    """Each group's values in input order."""
    ends = np.cumsum(np.bincount(groups, minlength=n))[:-1]
    return [part.tolist() for part in np.split(values[np.argsort(groups, kind="stable")], ends)]


def _quantile_groups(q: float, groups: np.ndarray, values: np.ndarray, n: int) -> list[float]:
    """functions.quantile of every group at once: one stable sort by (group, NaN first,
    value), then each group's interpolation with the same float operations."""
    if q != q or q < 0 or q > 1:
        return [quantile(q, [0.0])] * n  # NaN, -Inf or +Inf whatever the values
    nan = np.isnan(values)
    ordered = values[np.lexsort((np.where(nan, 0.0, values), ~nan, groups))]
    counts = np.bincount(groups, minlength=n)
    starts = np.cumsum(counts) - counts
    rank = q * (counts - 1)
    floor = np.floor(rank)
    lower = np.maximum(0.0, floor)
    upper = np.minimum(counts - 1.0, lower + 1)
    weight = rank - floor
    low = ordered[starts + lower.astype(np.intp)]
    high = ordered[starts + upper.astype(np.intp)]
    return (low * (1 - weight) + high * weight).tolist()


def _sum_groups(groups: np.ndarray, values: np.ndarray, n: int) -> list[float]:
    """bincount adds each group's values in input order, as Prometheus does, but from 0.0."""
    sums = np.bincount(groups, weights=values, minlength=n)
    negative_zero = np.signbit(values) & (values == 0)
    if negative_zero.any():  # 0.0 + -0.0 is 0.0, yet a group of only -0.0 sums to -0.0
        only = np.bincount(groups, negative_zero, n) == np.bincount(groups, minlength=n)
        sums[only] = -0.0
    return sums.tolist()


def _count_groups(groups: np.ndarray, values: np.ndarray, n: int) -> list[float]:
    return np.bincount(groups, minlength=n).astype(np.float64).tolist()


def _group_groups(groups: np.ndarray, values: np.ndarray, n: int) -> list[float]:
    return [1.0] * n


# A column step costs about as much as this many samples reduced one by one in Python
# (avg: ~6 us a step, ~0.07 us a sample).
_COLUMN_COST = 90

ColumnReducer = Callable[[Iterator[np.ndarray], np.ndarray], np.ndarray]


def _sequential(
    one_group: Callable[[list[float]], float], columns: ColumnReducer
) -> Callable[[np.ndarray, np.ndarray, int], list[float]]:
    """A reduction that must follow each group's input order step by step.

    With many small groups it runs as `columns`: step k takes the k-th member
    of every group at once, which keeps each group's order exactly. A few
    large groups would mean many tiny steps, so those go through `one_group`.
    """

    def reduce(groups: np.ndarray, values: np.ndarray, n: int) -> list[float]:
        sizes = np.bincount(groups, minlength=n)
        if int(sizes.max()) * _COLUMN_COST > len(values):
            return [one_group(vs) for vs in group_members(groups, values, n)]
        by_size = np.argsort(-sizes, kind="stable")  # the groups with a k-th member: a prefix
        sorted_sizes = sizes[by_size]
        starts = (np.cumsum(sizes) - sizes)[by_size]
        members = np.argsort(groups, kind="stable")
        widths = np.searchsorted(-sorted_sizes, -np.arange(sorted_sizes[0]), side="left")
        steps = (values[members[starts[:w] + k]] for k, w in enumerate(widths.tolist()))
        results = np.empty(n)
        results[by_size] = columns(steps, sorted_sizes)
        return results.tolist()

    return reduce


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


def _avg_columns(steps: Iterator[np.ndarray], sizes: np.ndarray) -> np.ndarray:
    mean = next(steps)
    for count, v in enumerate(steps, 2):
        m = mean[: len(v)]
        keep = np.isinf(m) & np.where(np.isinf(v), (m > 0) == (v > 0), v == v)
        mean[: len(v)] = np.where(keep, m, m + (v / count - m / count))
    return mean


def _max(vs: list[float]) -> float:
    best = vs[0]
    for v in vs[1:]:
        if best < v or best != best:
            best = v
    return best


def _max_columns(steps: Iterator[np.ndarray], sizes: np.ndarray) -> np.ndarray:
    best = next(steps)
    for v in steps:
        b = best[: len(v)]
        best[: len(v)] = np.where((b < v) | (b != b), v, b)
    return best


def _min(vs: list[float]) -> float:
    best = vs[0]
    for v in vs[1:]:
        if best > v or best != best:
            best = v
    return best


def _min_columns(steps: Iterator[np.ndarray], sizes: np.ndarray) -> np.ndarray:
    best = next(steps)
    for v in steps:
        b = best[: len(v)]
        best[: len(v)] = np.where((b > v) | (b != b), v, b)
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


def _stdvar_columns(steps: Iterator[np.ndarray], sizes: np.ndarray) -> np.ndarray:
    mean = next(steps)
    value = np.zeros(len(mean))
    for count, v in enumerate(steps, 2):
        delta = v - mean[: len(v)]
        mean[: len(v)] += delta / count
        value[: len(v)] += delta * (v - mean[: len(v)])
    return value / sizes


def _stddev(vs: list[float]) -> float:
    var = _stdvar(vs)
    return math.sqrt(var) if var >= 0 or var != var else math.nan


def _stddev_columns(steps: Iterator[np.ndarray], sizes: np.ndarray) -> np.ndarray:
    var = _stdvar_columns(steps, sizes)
    return np.where((var >= 0) | (var != var), np.sqrt(var), math.nan)


_REDUCERS: dict[str, Callable[[np.ndarray, np.ndarray, int], list[float]]] = {
    "sum": _sum_groups,
    "avg": _sequential(_avg, _avg_columns),
    "max": _sequential(_max, _max_columns),
    "min": _sequential(_min, _min_columns),
    "count": _count_groups,
    "group": _group_groups,
    "stdvar": _sequential(_stdvar, _stdvar_columns),
    "stddev": _sequential(_stddev, _stddev_columns),
}


def _count_values(
    vector: VectorPairs, grouping: Sequence[str], without: bool, value_label: str
) -> VectorPairs:
    """Groups of the labels with `value_label` set to each value's text.

    That is the group of the labels without `value_label` (memoised) plus the
    text, unless `without` drops the value label itself.
    """
    if not LABEL_NAME_RE.match(value_label):
        raise QueryError(f'invalid label name "{value_label}"')
    names = set(grouping)
    if without:
        memo = group_memo(list(names | {value_label}), True)
        with_text = value_label not in names and value_label != METRIC_NAME
    else:
        memo = group_memo(list(names - {value_label}), False)
        with_text = True
    numbers = np.array(memo.lookup(list(map(_labels_of, vector))), np.intp)
    texts = [""]
    text_of = np.zeros(len(numbers), np.intp)
    if with_text:  # each distinct value (bit pattern: -0 is not 0) formatted once
        values = np.fromiter(map(_value_of, vector), np.float64, len(numbers))
        bits, inverse = np.unique(values.view(np.uint64), return_inverse=True)
        ids: dict[str, int] = {}
        distinct = [
            ids.setdefault(format_float(v), len(ids)) for v in bits.view(np.float64).tolist()
        ]
        texts = list(ids)
        text_of = np.array(distinct, np.intp)[inverse.reshape(-1)]
    keys = numbers * len(texts) + text_of
    found, first, counts = np.unique(keys, return_index=True, return_counts=True)
    labels = memo.labels
    out: VectorPairs = []
    for i in np.argsort(first, kind="stable").tolist():  # in order of first appearance
        n, text = divmod(int(found[i]), len(texts))
        lset = labels[n]
        if with_text:
            lset = tuple(sorted((*lset, (value_label, texts[text]))))
        out.append((lset, float(counts[i])))
    return out


def _top_bottom(
    top: bool, vector: VectorPairs, grouping: Sequence[str], without: bool, param: float
) -> VectorPairs:
    """topk/bottomk with Prometheus's heap, so ties and NaNs resolve the same way."""
    if not (param <= MAX_INT64 and param >= MIN_INT64):
        raise QueryError(f"Scalar value {format_float(param)} overflows int64")
    k = int(param)
    if k < 1:
        return []
    numbers = group_memo(grouping, without).lookup(list(map(_labels_of, vector)))
    if top:

        def less(a: float, b: float) -> bool:
            return a != a or a < b

    else:

        def less(a: float, b: float) -> bool:
            return a != a or a > b

    heaps: dict[int, list[tuple[Labels, float]]] = {}
    for n, (lset, v) in zip(numbers, vector, strict=True):
        heap = heaps.get(n)
        if heap is None:
            heaps[n] = [(lset, v)]
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
