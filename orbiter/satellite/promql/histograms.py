"""histogram_quantile over classic buckets: series grouped by their labels without `le`.

Finding each bucket's group and bound means scanning its labels and parsing
its `le`; a `LabelMemo` keeps that per labels object across rounds, so a
round pays it only for series it has not seen.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from operator import itemgetter

from orbiter.satellite.promql.aggregations import METRIC_NAME, LabelMemo, VectorPairs
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
    groups: dict[int, list[tuple[float, float]]] = {}
    for entry, (_, v) in zip(entries, vector, strict=True):
        if entry is not None:
            n, bound = entry
            buckets = groups.get(n)
            if buckets is None:
                groups[n] = [(bound, v)]
            else:
                buckets.append((bound, v))
    labels = _BUCKETS.labels
    return [(labels[n], bucket_quantile(q, buckets)) for n, buckets in groups.items()]
