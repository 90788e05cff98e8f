"""histogram_quantile over classic buckets: series grouped by their labels without `le`.

Finding each bucket's group and bound means scanning its labels and parsing
its `le`; a `LabelMemo` keeps that per labels object across rounds, so a
round pays it only for series it has not seen. The quantiles of all plain
groups (distinct bounds, finite counts rising with the bound: what a
scraped or summed histogram looks like) are then computed at once in numpy
with `bucket_quantile`'s float operations; any other group goes through
`bucket_quantile` itself, whose merging and monotonic fixing depend on order.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import lru_cache
from operator import itemgetter

import numpy as np

from orbiter.satellite.promql.aggregations import (
    METRIC_NAME,
    LabelMemo,
    VectorPairs,
    group_index,
)
from orbiter.satellite.promql.functions import bucket_quantile, parse_go_float
from orbiter.satellite.series import Labels

_bound = lru_cache(maxsize=4096)(parse_go_float)  # a histogram repeats the same few `le` values


def _bucket(lset: Labels, number: Callable[[Labels], int]) -> tuple[int, float] | None:
    """(group number, upper bound) of one bucket series; None if it is not one."""
    for le in lset:
        if le[0] == "le":
            break
    else:
        return None
    bound = _bound(le[1])
    if bound is None:
        return None
    return number(tuple([p for p in lset if p is not le])), bound


def _without_name(key: Labels) -> Labels:
    return tuple([p for p in key if p[0] != METRIC_NAME])


_BUCKETS = LabelMemo(_bucket, out=_without_name)


def histogram_quantile(q: float, vector: VectorPairs) -> VectorPairs:
    """The q-quantile of each group of buckets, groups in order of first appearance."""
    entries = _BUCKETS.lookup(list(map(itemgetter(0), vector)))
    counts = list(map(itemgetter(1), vector))
    if None in entries:  # not a bucket: no `le`, or one Go cannot parse
        kept = [i for i, entry in enumerate(entries) if entry is not None]
        entries = [entries[i] for i in kept]
        counts = [counts[i] for i in kept]
    order, groups = group_index(list(map(itemgetter(0), entries)), len(_BUCKETS.labels))
    if not order:
        return []
    bounds = np.fromiter(map(itemgetter(1), entries), np.float64, len(entries))
    with np.errstate(all="ignore"):
        results = _quantiles(q, groups, bounds, np.array(counts, np.float64), len(order))
    labels = _BUCKETS.labels
    return list(zip(map(labels.__getitem__, order), results, strict=True))


def _quantiles(
    q: float, groups: np.ndarray, bounds: np.ndarray, counts: np.ndarray, n: int
) -> list[float]:
    """bucket_quantile of each of the n groups, all plain groups at once."""
    if not 0 <= q <= 1:  # NaN, below 0 or above 1: the same for every group
        return [bucket_quantile(q, [])] * n
    by_bound = np.lexsort((bounds, groups))
    g, b, c = groups[by_bound], bounds[by_bound], counts[by_bound]
    sizes = np.bincount(groups, minlength=n)
    first = np.cumsum(sizes) - sizes
    last = first + sizes - 1
    # Where a bound is NaN or repeated, or a count is not finite or falls, bucket_quantile's
    # sort, merge and monotonic fix change the answer: such groups are redone by it below.
    odd = np.isnan(b) | ~np.isfinite(c)
    odd[1:] |= (g[1:] == g[:-1]) & ((b[1:] == b[:-1]) | (c[1:] < c[:-1]))
    rank = q * c[last]
    # Counts rise with the bound, so the first bucket reaching the rank follows all those below.
    k = np.minimum(np.bincount(g, c < rank[g], n).astype(np.intp), sizes - 1)
    at = first + k
    below = np.maximum(at - 1, 0)
    lower = np.where(k > 0, b[below], 0.0)
    left = np.where(k > 0, rank - c[below], rank)
    results = lower + (b[at] - lower) * _go_div(left, np.where(k > 0, c[at] - c[below], c[at]))
    # bucket_quantile's early returns, the first of them applied last
    results = np.where((k == 0) & (b[first] <= 0), b[first], results)
    results = np.where(k == sizes - 1, b[np.maximum(last - 1, 0)], results)
    results = np.where((b[last] != math.inf) | (sizes < 2) | (c[last] == 0), math.nan, results)
    out = results.tolist()
    irregular = np.flatnonzero(np.bincount(g, odd, n))
    if len(irregular):
        members = np.argsort(groups, kind="stable")  # each group's buckets in input order
        for i in irregular.tolist():
            mine = members[first[i] : last[i] + 1]
            buckets = list(zip(bounds[mine].tolist(), counts[mine].tolist(), strict=True))
            out[i] = bucket_quantile(q, buckets)
    return out


def _go_div(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """functions.go_div elementwise: x / y, with Go's answers for a zero divisor."""
    signed_inf = np.where((x < 0) != np.signbit(y), -math.inf, math.inf)
    return np.where(y == 0, np.where((x == 0) | np.isnan(x), math.nan, signed_inf), x / y)
