"""PromQL's range-vector functions over many series at once: one numpy row per series.

Prometheus computes each series' value with a sequential loop over its
samples. Here the series of a range vector are grouped by how many samples
their window holds, each group becomes two matrices (timestamps, values; one
row per series), and the loop runs over the columns instead: sample k of every
series at once. Each float operation then happens in the same order and on the
same operands as in Go, so results agree bit for bit (Kahan sums, incremental
means and Holt-Winters included), while the Python work per series is gone.
numpy's elementwise IEEE arithmetic is Go's; x/0 gives the same infinities and
NaNs as Go's division, which Python's own floats refuse.

`batches` does the grouping (and drops staleness markers); `range_function`
returns the computation for one group.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Callable, Iterator, Sequence

import numpy as np

from orbiter.satellite.promql.functions import format_go_fixed
from orbiter.satellite.promql.values import QueryError
from orbiter.satellite.series import STALE_NAN_BITS

__all__ = ["Batch", "RangeFn", "batches", "check_smoothing_factors", "evaluate", "range_function"]

Batch = tuple[np.ndarray, np.ndarray, np.ndarray]
"""(row indices into the input, timestamps m x n int64, values m x n float64)."""

RangeFn = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray | None]]
"""(timestamps, values) -> (one value per row, which rows have one or None for all)."""

_STALE = np.uint64(STALE_NAN_BITS)


def _matrix(columns: list[Sequence], dtype: type, n: int) -> np.ndarray:
    """Equal-length rows as one matrix; array('q'/'d') rows are joined as raw bytes."""
    if isinstance(columns[0], array):
        try:
            return np.frombuffer(b"".join(columns), dtype=dtype).reshape(len(columns), n)
        except TypeError:  # a storage mixing arrays and lists: the slow way below
            pass
    return np.array([list(c) for c in columns], dtype=dtype).reshape(len(columns), n)


def batches(times: Sequence[Sequence[int]], values: Sequence[Sequence[float]]) -> Iterator[Batch]:
    """Series i (times[i], values[i]) grouped by sample count as matrices, staleness dropped.

    A series whose window held only staleness markers is left out, as Prometheus
    leaves out a series with no samples in the range.
    """
    by_length: dict[int, list[int]] = {}
    for i, n in enumerate(map(len, values)):
        if n:
            group = by_length.get(n)
            if group is None:
                by_length[n] = [i]
            else:
                group.append(i)
    stale_rows: list[tuple[int, np.ndarray, np.ndarray]] = []
    for n, members in by_length.items():
        ts = _matrix([times[i] for i in members], np.int64, n)
        vs = _matrix([values[i] for i in members], np.float64, n)
        index = np.array(members, dtype=np.intp)
        nan = np.isnan(vs)
        if nan.any():
            stale = vs.view(np.uint64) == _STALE
            hit = stale.any(axis=1)
            if hit.any():
                for r in np.flatnonzero(hit):
                    keep = ~stale[r]
                    stale_rows.append((int(index[r]), ts[r][keep], vs[r][keep]))
                ts, vs, index = ts[~hit], vs[~hit], index[~hit]
        if len(index):
            yield index, ts, vs
    regrouped: dict[int, list[tuple[int, np.ndarray, np.ndarray]]] = {}
    for entry in stale_rows:
        if len(entry[1]):
            regrouped.setdefault(len(entry[1]), []).append(entry)
    for entries in regrouped.values():
        yield (
            np.array([e[0] for e in entries], dtype=np.intp),
            np.stack([e[1] for e in entries]),
            np.stack([e[2] for e in entries]),
        )


# --- the computations: (ts, vs) matrices -> one value per row --------------------


def _kahan(total: np.ndarray, c: np.ndarray, inc: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One Kahan-Babuska step for every row (Prometheus's kahanSumInc)."""
    t = total + inc
    c = c + np.where(np.abs(total) >= np.abs(inc), (total - t) + inc, (inc - t) + total)
    return t, c


def _extrapolated_rate(
    ts: np.ndarray,
    vs: np.ndarray,
    start: int,
    end: int,
    range_s: float,
    is_counter: bool,
    is_rate: bool,
) -> np.ndarray:
    """rate/increase/delta: extrapolated to the window's edges as Prometheus 2.42 does.

    Extrapolation stops half an average sample interval beyond the first and
    last samples unless they are close to the edge, and a counter is never
    extrapolated below zero.
    """
    n = vs.shape[1]
    first = vs[:, 0]
    result = vs[:, -1] - first
    if is_counter:
        last = np.zeros(len(vs))
        for j in range(n):
            column = vs[:, j]
            result = np.where(column < last, result + last, result)
            last = column
    to_start = (ts[:, 0] - start) / 1000
    to_end = (end - ts[:, -1]) / 1000
    sampled = (ts[:, -1] - ts[:, 0]) / 1000
    between = sampled / (n - 1)
    if is_counter:
        to_zero = sampled * (first / result)
        to_start = np.where((result > 0) & (first >= 0) & (to_zero < to_start), to_zero, to_start)
    threshold = between * 1.1
    extrapolate_to = sampled + np.where(to_start < threshold, to_start, between / 2)
    extrapolate_to = extrapolate_to + np.where(to_end < threshold, to_end, between / 2)
    factor = extrapolate_to / sampled  # Prometheus's order (factor first): the last bits agree
    if is_rate:
        factor = factor / range_s
    return result * factor


def _instant(ts: np.ndarray, vs: np.ndarray, is_rate: bool) -> tuple[np.ndarray, np.ndarray]:
    """irate/idelta from the last two samples; no value where they share a timestamp."""
    last, previous = vs[:, -1], vs[:, -2]
    result = np.where(last < previous, last, last - previous) if is_rate else last - previous
    interval = ts[:, -1] - ts[:, -2]
    if is_rate:
        result = result / (interval / 1000)
    return result, interval != 0


def _linear_regression(
    ts: np.ndarray, vs: np.ndarray, intercept_ms: np.ndarray | int
) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares slope and intercept per row, with Prometheus's Kahan-summed moments."""
    zeros = np.zeros(len(vs))
    sum_x, c_x, sum_y, c_y, sum_xy, c_xy, sum_x2, c_x2 = (zeros,) * 8
    for j in range(vs.shape[1]):
        x = (ts[:, j] - intercept_ms) / 1e3
        v = vs[:, j]
        sum_x, c_x = _kahan(sum_x, c_x, x)
        sum_y, c_y = _kahan(sum_y, c_y, v)
        sum_xy, c_xy = _kahan(sum_xy, c_xy, x * v)
        sum_x2, c_x2 = _kahan(sum_x2, c_x2, x * x)
    n = float(vs.shape[1])
    sum_x = sum_x + c_x
    sum_y = sum_y + c_y
    sum_xy = sum_xy + c_xy
    sum_x2 = sum_x2 + c_x2
    cov_xy = sum_xy - sum_x * sum_y / n
    var_x = sum_x2 - sum_x * sum_x / n
    slope = cov_xy / var_x
    intercept = sum_y / n - slope * sum_x / n
    first = vs[:, 0]
    constant = (vs == first[:, None]).all(axis=1)
    if constant.any():
        inf = np.isinf(first)
        slope = np.where(constant, np.where(inf, np.nan, 0.0), slope)
        intercept = np.where(constant, np.where(inf, np.nan, first), intercept)
    return slope, intercept


def _avg(vs: np.ndarray) -> np.ndarray:
    """Incremental mean with Kahan compensation; an infinite mean stays put (Prometheus)."""
    mean = np.zeros(len(vs))
    c = np.zeros(len(vs))
    count = 0.0
    for j in range(vs.shape[1]):
        v = vs[:, j]
        count += 1
        skip = np.isinf(mean) & ((np.isinf(v) & ((mean > 0) == (v > 0))) | np.isfinite(v))
        inc = v / count - mean / count
        new_mean, new_c = _kahan(mean, c, inc)
        mean = np.where(skip, mean, new_mean)
        c = np.where(skip, c, new_c)
    return np.where(np.isinf(mean), mean, mean + c)


def _sum(vs: np.ndarray) -> np.ndarray:
    total = np.zeros(len(vs))
    c = np.zeros(len(vs))
    for j in range(vs.shape[1]):
        total, c = _kahan(total, c, vs[:, j])
    return np.where(np.isinf(total), total, total + c)


def _extreme(vs: np.ndarray, larger: bool) -> np.ndarray:
    """max/min_over_time: a NaN is replaced by any later value, never the reverse."""
    best = vs[:, 0]
    for j in range(1, vs.shape[1]):
        v = vs[:, j]
        better = v > best if larger else v < best
        best = np.where(better | np.isnan(best), v, best)
    return best


def _stdvar(vs: np.ndarray) -> np.ndarray:
    """Welford's variance with Kahan-compensated mean and sum of squares (Prometheus 2.42)."""
    zeros = np.zeros(len(vs))
    mean, c_mean, aux, c_aux = zeros, zeros, zeros, zeros
    count = 0.0
    for j in range(vs.shape[1]):
        v = vs[:, j]
        count += 1
        delta = v - (mean + c_mean)
        mean, c_mean = _kahan(mean, c_mean, delta / count)
        aux, c_aux = _kahan(aux, c_aux, delta * (v - (mean + c_mean)))
    return (aux + c_aux) / count


def _changes(vs: np.ndarray) -> np.ndarray:
    current, previous = vs[:, 1:], vs[:, :-1]
    changed = (current != previous) & ~(np.isnan(current) & np.isnan(previous))
    return changed.sum(axis=1).astype(np.float64)


def _resets(vs: np.ndarray) -> np.ndarray:
    return (vs[:, 1:] < vs[:, :-1]).sum(axis=1).astype(np.float64)


def _holt_winters(vs: np.ndarray, sf: float, tf: float) -> np.ndarray:
    """Double exponential smoothing; the caller has checked both factors lie in (0, 1)."""
    smoothed = vs[:, 0]
    previous = np.zeros(len(vs))
    trend = vs[:, 1] - vs[:, 0]
    for i in range(1, vs.shape[1]):
        if i > 1:
            trend = tf * (smoothed - previous) + (1 - tf) * trend
        previous, smoothed = smoothed, sf * vs[:, i] + (1 - sf) * (smoothed + trend)
    return smoothed


def _quantile(q: float, vs: np.ndarray) -> np.ndarray:
    """The q-quantile of each row by linear interpolation, NaNs sorted first as Go sorts them."""
    m, n = vs.shape
    if q != q:
        return np.full(m, np.nan)
    if q < 0 or q > 1:
        return np.full(m, -math.inf if q < 0 else math.inf)
    ordered = np.sort(vs, axis=1, kind="stable")  # equal values (0.0, -0.0) keep their order
    nans = np.isnan(vs).sum(axis=1)
    if nans.any():  # numpy sorts NaNs last: rotate each row right by its NaN count
        ordered = ordered[np.arange(m)[:, None], (np.arange(n) - nans[:, None]) % n]
    rank = q * (n - 1)
    lower = max(0.0, math.floor(rank))
    upper = min(n - 1.0, lower + 1)
    weight = rank - math.floor(rank)
    return ordered[:, int(lower)] * (1 - weight) + ordered[:, int(upper)] * weight


def check_smoothing_factors(sf: float, tf: float) -> None:
    """holt_winters' factors must lie strictly between 0 and 1 (Prometheus's messages)."""
    if sf <= 0 or sf >= 1:
        raise QueryError(
            f"invalid smoothing factor. Expected: 0 < sf < 1, got: {format_go_fixed(sf)}"
        )
    if tf <= 0 or tf >= 1:
        raise QueryError(f"invalid trend factor. Expected: 0 < tf < 1, got: {format_go_fixed(tf)}")


def _all(values: np.ndarray) -> tuple[np.ndarray, None]:
    return values, None


def _two_or_more(
    compute: Callable[[np.ndarray, np.ndarray], np.ndarray],
) -> RangeFn:
    """Functions that need two samples: a group of one-sample rows has no value at all."""

    def run(ts: np.ndarray, vs: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        if vs.shape[1] < 2:
            return np.empty(len(vs)), np.zeros(len(vs), dtype=bool)
        return compute(ts, vs), None

    return run


def range_function(
    name: str, scalars: Sequence[float], start: int, end: int, range_ms: int, ts: int
) -> RangeFn:
    """The computation of range function `name` over a window [start, end] read at ts.

    Raises QueryError for arguments Prometheus refuses (holt_winters' factors);
    call it only once some series has samples, as Prometheus checks only then.
    """
    range_s = range_ms / 1000
    if name in ("rate", "increase", "delta"):
        counter, per_second = name != "delta", name == "rate"
        return _two_or_more(
            lambda t, v: _extrapolated_rate(t, v, start, end, range_s, counter, per_second)
        )
    if name in ("irate", "idelta"):
        is_rate = name == "irate"

        def instant(t: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
            if v.shape[1] < 2:
                return np.empty(len(v)), np.zeros(len(v), dtype=bool)
            return _instant(t, v, is_rate)

        return instant
    if name == "deriv":
        return _two_or_more(lambda t, v: _linear_regression(t, v, t[:, 0])[0])
    if name == "predict_linear":
        duration = scalars[0]

        def predict(t: np.ndarray, v: np.ndarray) -> np.ndarray:
            slope, intercept = _linear_regression(t, v, ts)
            return slope * duration + intercept

        return _two_or_more(predict)
    if name == "holt_winters":
        sf, tf = scalars
        check_smoothing_factors(sf, tf)
        return _two_or_more(lambda t, v: _holt_winters(v, sf, tf))
    if name == "quantile_over_time":
        q = scalars[0]
        return lambda t, v: _all(_quantile(q, v))
    simple: dict[str, Callable[[np.ndarray], np.ndarray]] = {
        "changes": _changes,
        "resets": _resets,
        "avg_over_time": _avg,
        "sum_over_time": _sum,
        "max_over_time": lambda v: _extreme(v, True),
        "min_over_time": lambda v: _extreme(v, False),
        "count_over_time": lambda v: np.full(len(v), float(v.shape[1])),
        "stdvar_over_time": _stdvar,
        "stddev_over_time": lambda v: np.sqrt(_stdvar(v)),
        "last_over_time": lambda v: v[:, -1],
        "present_over_time": lambda v: np.ones(len(v)),
    }
    over = simple[name]
    return lambda t, v: _all(over(v))


def evaluate(
    compute: RangeFn, groups: Iterator[Batch] | list[Batch], rows: int
) -> tuple[list[float], list[bool]]:
    """Run `compute` over every batch: (value per input row, whether the row has a value)."""
    values = np.zeros(rows)
    present = np.zeros(rows, dtype=bool)
    with np.errstate(all="ignore"):
        for index, ts, vs in groups:
            result, ok = compute(ts, vs)
            values[index] = result
            present[index] = True if ok is None else ok
    return values.tolist(), present.tolist()
