"""Prometheus 2.42's range-function loops, one series at a time, as the oracle for
`range_functions`: these are line-for-line ports of Go's loops (promql/functions.go), and
until the vectorised version replaced them they were the evaluator's own code, checked
against promtool on the rules corpus. The differential test holds the numpy version to
them bit for bit on random input.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from operator import le

from orbiter.satellite.promql.functions import _sqrt, go_div

NAN = math.nan


# --- summation ---------------------------------------------------------------


def kahan_sum_inc(inc: float, total: float, c: float) -> tuple[float, float]:
    """One step of Kahan-Babuska summation (the loops below inline it: it is their hot path)."""
    t = total + inc
    if abs(total) >= abs(inc):
        c += (total - t) + inc
    else:
        c += (inc - t) + total
    return t, c


# --- range-vector functions: (timestamps, values) of one series -------------


def extrapolated_rate(
    ts: Sequence[int],
    vs: Sequence[float],
    range_start_ms: int,
    range_end_ms: int,
    range_s: float,
    is_counter: bool,
    is_rate: bool,
) -> float | None:
    """rate/increase/delta as Prometheus computes them: extrapolate to the window edges.

    Extrapolation stops half an average sample interval beyond the first and
    last samples unless they are close to the edge, and a counter is never
    extrapolated below zero.
    """
    n = len(vs)
    if n < 2:
        return None
    first_v = vs[0]
    result = vs[-1] - first_v
    if is_counter and not all(map(le, vs, vs[1:])):  # the scan only where a value drops
        last = 0.0
        for v in vs:
            if v < last:
                result += last
            last = v
    duration_to_start = (ts[0] - range_start_ms) / 1000
    duration_to_end = (range_end_ms - ts[-1]) / 1000
    sampled_interval = (ts[-1] - ts[0]) / 1000
    average_between = sampled_interval / (n - 1)
    if is_counter and result > 0 and first_v >= 0:
        duration_to_zero = sampled_interval * (first_v / result)
        if duration_to_zero < duration_to_start:
            duration_to_start = duration_to_zero
    threshold = average_between * 1.1
    extrapolate_to = sampled_interval
    extrapolate_to += duration_to_start if duration_to_start < threshold else average_between / 2
    extrapolate_to += duration_to_end if duration_to_end < threshold else average_between / 2
    # Same operation order as Prometheus 2.42 (factor first), so the last bits agree.
    factor = go_div(extrapolate_to, sampled_interval)
    if is_rate:
        factor = factor / range_s
    return result * factor


def instant_value(ts: Sequence[int], vs: Sequence[float], is_rate: bool) -> float | None:
    """irate/idelta: from the last two samples only."""
    if len(vs) < 2:
        return None
    last, previous = vs[-1], vs[-2]
    result = last if is_rate and last < previous else last - previous
    interval = ts[-1] - ts[-2]
    if interval == 0:
        return None
    if is_rate:
        result /= interval / 1000
    return result


def linear_regression(
    ts: Sequence[int], vs: Sequence[float], intercept_ms: int
) -> tuple[float, float]:
    n = 0.0
    sum_x = c_x = sum_y = c_y = sum_xy = c_xy = sum_x2 = c_x2 = 0.0
    init_y = vs[0]
    const_y = True
    for t, v in zip(ts, vs, strict=True):
        if const_y and v != init_y:
            const_y = False
        n += 1.0
        x = (t - intercept_ms) / 1e3
        # kahan_sum_inc, inlined for each of the four sums.
        s = sum_x + x
        c_x += ((sum_x - s) + x) if abs(sum_x) >= abs(x) else ((x - s) + sum_x)
        sum_x = s
        s = sum_y + v
        c_y += ((sum_y - s) + v) if abs(sum_y) >= abs(v) else ((v - s) + sum_y)
        sum_y = s
        xv = x * v
        s = sum_xy + xv
        c_xy += ((sum_xy - s) + xv) if abs(sum_xy) >= abs(xv) else ((xv - s) + sum_xy)
        sum_xy = s
        xx = x * x
        s = sum_x2 + xx
        c_x2 += ((sum_x2 - s) + xx) if abs(sum_x2) >= abs(xx) else ((xx - s) + sum_x2)
        sum_x2 = s
    if const_y:
        if math.isinf(init_y):
            return NAN, NAN
        return 0.0, init_y
    sum_x += c_x
    sum_y += c_y
    sum_xy += c_xy
    sum_x2 += c_x2
    cov_xy = sum_xy - sum_x * sum_y / n
    var_x = sum_x2 - sum_x * sum_x / n
    slope = go_div(cov_xy, var_x)
    intercept = sum_y / n - slope * sum_x / n
    return slope, intercept


def avg_over_time(vs: Sequence[float]) -> float:
    mean = count = c = 0.0
    isinf = math.isinf
    for v in vs:
        count += 1
        if isinf(mean):
            if isinf(v) and (mean > 0) == (v > 0):
                continue
            if not isinf(v) and v == v:
                continue
        inc = v / count - mean / count
        t = mean + inc
        c += ((mean - t) + inc) if abs(mean) >= abs(inc) else ((inc - t) + mean)
        mean = t
    if math.isinf(mean):
        return mean
    return mean + c


def sum_over_time(vs: Sequence[float]) -> float:
    total = c = 0.0
    for v in vs:
        t = total + v
        c += ((total - t) + v) if abs(total) >= abs(v) else ((v - t) + total)
        total = t
    if math.isinf(total):
        return total
    return total + c


def max_over_time(vs: Sequence[float]) -> float:
    if not any(map(math.isnan, vs)):
        return max(vs)
    best = vs[0]
    for v in vs:
        if v > best or best != best:
            best = v
    return best


def min_over_time(vs: Sequence[float]) -> float:
    if not any(map(math.isnan, vs)):
        return min(vs)
    best = vs[0]
    for v in vs:
        if v < best or best != best:
            best = v
    return best


def stdvar_over_time(vs: Sequence[float]) -> float:
    count = mean = c_mean = aux = c_aux = 0.0
    for v in vs:
        count += 1
        delta = v - (mean + c_mean)
        inc = delta / count
        t = mean + inc
        c_mean += ((mean - t) + inc) if abs(mean) >= abs(inc) else ((inc - t) + mean)
        mean = t
        inc = delta * (v - (mean + c_mean))
        t = aux + inc
        c_aux += ((aux - t) + inc) if abs(aux) >= abs(inc) else ((inc - t) + aux)
        aux = t
    return (aux + c_aux) / count


def stddev_over_time(vs: Sequence[float]) -> float:
    return _sqrt(stdvar_over_time(vs))


def changes(vs: Sequence[float]) -> float:
    count = 0
    prev = vs[0]
    for cur in vs[1:]:
        if cur != prev and not (cur != cur and prev != prev):
            count += 1
        prev = cur
    return float(count)


def resets(vs: Sequence[float]) -> float:
    count = 0
    prev = vs[0]
    for cur in vs[1:]:
        if cur < prev:
            count += 1
        prev = cur
    return float(count)


def holt_winters(vs: Sequence[float], sf: float, tf: float) -> float | None:
    """Double exponential smoothing with smoothing factor sf and trend factor tf.

    The caller checks both factors lie in (0, 1); two samples are the least
    that give a trend, fewer give no result.
    """
    n = len(vs)
    if n < 2:
        return None
    smoothed = vs[0]
    previous = 0.0
    trend = vs[1] - vs[0]
    for i in range(1, n):
        if i > 1:
            trend = tf * (smoothed - previous) + (1 - tf) * trend
        previous, smoothed = smoothed, sf * vs[i] + (1 - sf) * (smoothed + trend)
    return smoothed
