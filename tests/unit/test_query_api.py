"""Prometheus's query API shapes on Satellite: values, times, and the errors it gives."""

from __future__ import annotations

import math

import pytest

from orbiter.satellite.promql.values import Sample, Scalar
from orbiter.satellite.query_api import (
    BadData,
    evaluate_range,
    format_value,
    instant_view,
    parse_time,
    range_view,
)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (1.0, "1"),
        (0.1, "0.1"),
        (-2.5, "-2.5"),
        (1e21, "1000000000000000000000"),
        (1e-7, "0.0000001"),
        (-0.0, "-0"),
        (math.nan, "NaN"),
        (math.inf, "+Inf"),
        (-math.inf, "-Inf"),
        (1 / 3, "0.3333333333333333"),
    ],
)
def test_values_are_written_as_go_formats_them(value: float, text: str) -> None:
    assert format_value(value) == text


def test_times_are_rfc3339_or_unix_seconds() -> None:
    assert parse_time("1700000000", "time") == 1_700_000_000_000
    assert parse_time("1700000000.123", "time") == 1_700_000_000_123
    assert parse_time("2023-11-14T22:13:20Z", "time") == 1_700_000_000_000
    assert parse_time("2023-11-14T23:13:20.5+01:00", "time") == 1_700_000_000_500
    with pytest.raises(BadData, match='invalid parameter "start": cannot parse "soon"'):
        parse_time("soon", "start")
    with pytest.raises(BadData, match="cannot parse"):
        parse_time("nan", "time")


def test_an_instant_vector_and_a_scalar_in_prometheus_shapes() -> None:
    vector = [Sample((("__name__", "up"), ("job", "a")), 1.0, 15_000)]
    assert instant_view("vector", vector, 15_000) == {
        "resultType": "vector",
        "result": [{"metric": {"__name__": "up", "job": "a"}, "value": [15, "1"]}],
    }
    assert instant_view("scalar", Scalar(0.25, 1500), 1500) == {
        "resultType": "scalar",
        "result": [1.5, "0.25"],
    }
    assert instant_view("vector", [], 0) == {"resultType": "vector", "result": []}


def test_a_range_query_gathers_each_series_over_the_steps_sorted_by_labels() -> None:
    def query(t: int) -> list[Sample]:
        out = [Sample((("job", "b"),), t / 1000, t)]
        if t >= 2000:  # a series that appears later
            out.append(Sample((("job", "a"),), -1.0, t))
        return out

    points = evaluate_range("vector", query, 1000, 3000, 1000)
    assert range_view(points) == {
        "resultType": "matrix",
        "result": [
            {"metric": {"job": "a"}, "values": [[2, "-1"], [3, "-1"]]},
            {"metric": {"job": "b"}, "values": [[1, "1"], [2, "2"], [3, "3"]]},
        ],
    }
    scalar = evaluate_range("scalar", lambda t: Scalar(2.0, t), 0, 1000, 500)
    assert scalar == {(): [(0, 2.0), (500, 2.0), (1000, 2.0)]}


@pytest.mark.parametrize(
    ("kind", "start", "end", "step", "message"),
    [
        ("matrix", 0, 10, 1, 'invalid expression type "range vector" for range query'),
        ("string", 0, 10, 1, 'invalid expression type "string"'),
        ("vector", 10, 0, 1, "end timestamp must not be before start time"),
        ("vector", 0, 11_000_000, 1000, "exceeded maximum resolution of 11,000 points"),
    ],
)
def test_a_range_query_prometheus_refuses_is_refused_with_its_words(
    kind: str, start: int, end: int, step: int, message: str
) -> None:
    with pytest.raises(BadData, match=message):
        evaluate_range(kind, lambda t: [], start, end, step)
