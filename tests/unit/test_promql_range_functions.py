"""The vectorised range functions against Prometheus's per-series loops, bit for bit.

`promql_reference` holds the loops (ports of Go's, checked against promtool);
here random windows, with NaNs, infinities, negative zeros, counter resets and
uneven timestamps, go through both, and every value must have the same 64 bits.
"""

from __future__ import annotations

import math
import struct
from array import array

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orbiter.satellite.promql import functions as fn
from orbiter.satellite.promql import range_functions as rf
from orbiter.satellite.promql.values import QueryError
from orbiter.satellite.series import STALE_NAN_BITS
from tests.unit import promql_reference as ref

STALE = struct.unpack("<d", struct.pack("<Q", STALE_NAN_BITS))[0]
WINDOW_START, WINDOW_END, AT = 1_000_000, 1_300_000, 1_300_000

values = st.one_of(
    st.sampled_from([0.0, -0.0, 1.0, -1.0, 2.5, math.nan, math.inf, -math.inf, 1e300, -1e-300]),
    st.floats(allow_nan=True, allow_infinity=True, width=64),
    st.integers(-1000, 1000).map(float),
)


@st.composite
def windows(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    """m series with n samples each inside the window, each with its own timestamps."""
    m = draw(st.integers(1, 5))
    n = draw(st.integers(1, 9))
    rows_t, rows_v = [], []
    for _ in range(m):
        gaps = draw(st.lists(st.integers(1, 40_000), min_size=n, max_size=n))
        first = WINDOW_START + draw(st.integers(0, 60_000))
        t = [first + sum(gaps[:i]) for i in range(n)]
        rows_t.append([min(x, WINDOW_END) if i == n - 1 else x for i, x in enumerate(t)])
        rows_v.append(draw(st.lists(values, min_size=n, max_size=n)))
    ts = np.array(rows_t, dtype=np.int64)
    ts.sort(axis=1)
    for row in ts:  # strictly increasing, as stored samples are
        for i in range(1, n):
            row[i] = max(row[i], row[i - 1] + 1)
    return ts, np.array(rows_v, dtype=np.float64)


def bits(x: float | None) -> object:
    """A value's 64 bits; any NaN is just "NaN" (payloads are not part of PromQL's results,
    and numpy's sort may rewrite them where Go's sort would move them)."""
    if x is None or x != x:
        return x if x is None else "NaN"
    return struct.pack("<d", x)


def reference(name: str, scalars: list[float], t: list[int], v: list[float]) -> float | None:
    range_s = (WINDOW_END - WINDOW_START) / 1000
    if name in ("rate", "increase", "delta"):
        counter, is_rate = name != "delta", name == "rate"
        return ref.extrapolated_rate(t, v, WINDOW_START, WINDOW_END, range_s, counter, is_rate)
    if name in ("irate", "idelta"):
        return ref.instant_value(t, v, name == "irate")
    if name == "deriv":
        return ref.linear_regression(t, v, t[0])[0] if len(v) >= 2 else None
    if name == "predict_linear":
        if len(v) < 2:
            return None
        slope, intercept = ref.linear_regression(t, v, AT)
        return slope * scalars[0] + intercept
    if name == "holt_winters":
        return ref.holt_winters(v, *scalars)
    if name == "quantile_over_time":
        return fn.quantile(scalars[0], v)
    simple = {
        "changes": ref.changes,
        "resets": ref.resets,
        "avg_over_time": ref.avg_over_time,
        "sum_over_time": ref.sum_over_time,
        "max_over_time": ref.max_over_time,
        "min_over_time": ref.min_over_time,
        "stdvar_over_time": ref.stdvar_over_time,
        "stddev_over_time": ref.stddev_over_time,
        "count_over_time": lambda vs: float(len(vs)),
        "last_over_time": lambda vs: vs[-1],
        "present_over_time": lambda vs: 1.0,
    }
    return simple[name](v)


CASES = [
    ("rate", []),
    ("increase", []),
    ("delta", []),
    ("irate", []),
    ("idelta", []),
    ("deriv", []),
    ("predict_linear", [3600.0]),
    ("holt_winters", [0.3, 0.7]),
    ("quantile_over_time", [0.9]),
    ("quantile_over_time", [0.0]),
    ("quantile_over_time", [1.5]),
    ("quantile_over_time", [math.nan]),
    ("changes", []),
    ("resets", []),
    ("avg_over_time", []),
    ("sum_over_time", []),
    ("max_over_time", []),
    ("min_over_time", []),
    ("stdvar_over_time", []),
    ("stddev_over_time", []),
    ("count_over_time", []),
    ("last_over_time", []),
    ("present_over_time", []),
]


@pytest.mark.parametrize(("name", "scalars"), CASES, ids=[f"{n}{s}" for n, s in CASES])
@settings(max_examples=150, deadline=None)
@given(window=windows())
def test_vectorised_equals_the_per_series_loop(name, scalars, window):
    ts, vs = window
    compute = rf.range_function(
        name, scalars, WINDOW_START, WINDOW_END, WINDOW_END - WINDOW_START, AT
    )
    got, present = rf.evaluate(compute, [(np.arange(len(vs)), ts, vs)], len(vs))
    for i in range(len(vs)):
        want = reference(name, scalars, ts[i].tolist(), vs[i].tolist())
        assert bits(got[i] if present[i] else None) == bits(want), (
            f"{name} row {i}: t={ts[i].tolist()} v={vs[i].tolist()}"
        )


def test_a_batch_broadcasting_one_timestamp_row_gives_the_same_values():
    """Series of one target share their timestamps; a broadcast row must read the same."""
    t = np.array([1_000_000, 1_015_000, 1_030_000, 1_045_500], dtype=np.int64)
    vs = np.array([[1.0, 5.0, 2.0, 9.0], [0.0, 0.5, 1.0, 1.5]])
    compute = rf.range_function("rate", [], 990_000, 1_050_000, 60_000, 1_050_000)
    shared, _ = rf.evaluate(compute, [(np.arange(2), np.broadcast_to(t, vs.shape), vs)], 2)
    full, _ = rf.evaluate(compute, [(np.arange(2), np.stack([t, t]), vs)], 2)
    assert shared == full
    assert full[1] == ref.extrapolated_rate(
        t.tolist(), vs[1].tolist(), 990_000, 1_050_000, 60.0, True, True
    )


def test_batches_group_by_length_and_drop_staleness_markers():
    rows = [
        ((("a", "1"),), array("q", [1, 2, 3]), array("d", [1.0, 2.0, 3.0])),
        ((("a", "2"),), array("q", [1, 2]), array("d", [5.0, 6.0])),
        ((("a", "3"),), array("q", [1, 2, 3]), array("d", [7.0, STALE, 8.0])),
        ((("a", "4"),), array("q", [1]), array("d", [STALE])),
        ((("a", "5"),), [1, 2, 3], [math.nan, 2.0, 4.0]),
        ((("a", "6"),), array("q", []), array("d", [])),
    ]
    got = {}
    for index, ts, vs in rf.batches([r[1] for r in rows], [r[2] for r in rows]):
        for i, t, v in zip(index.tolist(), ts.tolist(), vs.tolist(), strict=True):
            got[i] = (t, v)
    assert set(got) == {0, 1, 2, 4}  # only markers (3) or nothing (5): no series
    assert got[0] == ([1, 2, 3], [1.0, 2.0, 3.0])
    assert got[1] == ([1, 2], [5.0, 6.0])
    assert got[2] == ([1, 3], [7.0, 8.0])  # the marker is gone, the NaN of row 4 stays
    assert got[4][0] == [1, 2, 3] and math.isnan(got[4][1][0])


@pytest.mark.parametrize(("sf", "tf", "message"), [(0.0, 0.5, "smoothing"), (0.5, 1.0, "trend")])
def test_holt_winters_factors_are_checked(sf, tf, message):
    with pytest.raises(QueryError, match=f"invalid {message} factor"):
        rf.range_function("holt_winters", [sf, tf], 0, 1, 1, 1)
