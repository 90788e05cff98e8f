"""The functions Prometheus 2.42 has that the evaluator learnt last: holt_winters, the
native-histogram functions and day_of_year; and the promise that every 2.42 function runs.

Expected values are Prometheus 2.42's: ported from its promql/testdata/functions.test
or read from `promtool test rules` (2.42, Debian package) on the same input.
"""

from __future__ import annotations

import pytest

from orbiter.satellite.promql.engine import (
    SUPPORTED_FUNCTIONS,
    QueryError,
    check_supported,
    instant_query,
)
from tests.unit.test_promql_support import MemoryStorage, duration_ms, parse_labels, same_value

# One call per function in 2.42's promql/parser/functions.go, with arguments of its types.
PROMETHEUS_2_42_CALLS = {
    "abs": "abs(m)",
    "absent": "absent(m)",
    "absent_over_time": "absent_over_time(m[5m])",
    "acos": "acos(m)",
    "acosh": "acosh(m)",
    "asin": "asin(m)",
    "asinh": "asinh(m)",
    "atan": "atan(m)",
    "atanh": "atanh(m)",
    "avg_over_time": "avg_over_time(m[5m])",
    "ceil": "ceil(m)",
    "changes": "changes(m[5m])",
    "clamp": "clamp(m, 0, 1)",
    "clamp_max": "clamp_max(m, 1)",
    "clamp_min": "clamp_min(m, 0)",
    "cos": "cos(m)",
    "cosh": "cosh(m)",
    "count_over_time": "count_over_time(m[5m])",
    "day_of_month": "day_of_month(m)",
    "day_of_week": "day_of_week(m)",
    "day_of_year": "day_of_year(m)",
    "days_in_month": "days_in_month(m)",
    "deg": "deg(m)",
    "delta": "delta(m[5m])",
    "deriv": "deriv(m[5m])",
    "exp": "exp(m)",
    "floor": "floor(m)",
    "histogram_count": "histogram_count(m)",
    "histogram_fraction": "histogram_fraction(0, 1, m)",
    "histogram_quantile": "histogram_quantile(0.9, m)",
    "histogram_sum": "histogram_sum(m)",
    "holt_winters": "holt_winters(m[5m], 0.5, 0.5)",
    "hour": "hour(m)",
    "idelta": "idelta(m[5m])",
    "increase": "increase(m[5m])",
    "irate": "irate(m[5m])",
    "label_join": 'label_join(m, "dst", ",", "a")',
    "label_replace": 'label_replace(m, "dst", "$1", "a", "(.*)")',
    "last_over_time": "last_over_time(m[5m])",
    "ln": "ln(m)",
    "log10": "log10(m)",
    "log2": "log2(m)",
    "max_over_time": "max_over_time(m[5m])",
    "min_over_time": "min_over_time(m[5m])",
    "minute": "minute(m)",
    "month": "month(m)",
    "pi": "pi()",
    "predict_linear": "predict_linear(m[5m], 60)",
    "present_over_time": "present_over_time(m[5m])",
    "quantile_over_time": "quantile_over_time(0.5, m[5m])",
    "rad": "rad(m)",
    "rate": "rate(m[5m])",
    "resets": "resets(m[5m])",
    "round": "round(m)",
    "scalar": "scalar(m)",
    "sgn": "sgn(m)",
    "sin": "sin(m)",
    "sinh": "sinh(m)",
    "sort": "sort(m)",
    "sort_desc": "sort_desc(m)",
    "sqrt": "sqrt(m)",
    "stddev_over_time": "stddev_over_time(m[5m])",
    "stdvar_over_time": "stdvar_over_time(m[5m])",
    "sum_over_time": "sum_over_time(m[5m])",
    "tan": "tan(m)",
    "tanh": "tanh(m)",
    "time": "time()",
    "timestamp": "timestamp(m)",
    "vector": "vector(1)",
    "year": "year(m)",
}


def test_the_probe_names_exactly_the_70_functions_of_prometheus_2_42():
    assert len(PROMETHEUS_2_42_CALLS) == 70
    assert set(PROMETHEUS_2_42_CALLS) == SUPPORTED_FUNCTIONS


@pytest.mark.parametrize("expr", sorted(PROMETHEUS_2_42_CALLS.values()))
def test_every_prometheus_2_42_function_parses_and_evaluates(expr):
    storage = MemoryStorage().load("1m", 'm{a="1"} 1 2 3 4 5')
    check_supported(expr)
    instant_query(expr, storage, duration_ms("4m"))


def _values(result) -> dict:
    return {s.labels: s.value for s in result}


def _expected(lines: list[str]) -> dict:
    out = {}
    for line in lines:
        labels_text, value_text = line.rsplit(" ", 1)
        out[parse_labels(labels_text.strip())] = float(value_text.replace("NaN", "nan"))
    return out


SMOOTHING = """
x{a="1"} 1 3 2 8 9 15 11 20 30 25 stale 40
x{a="2"} 5
"""

HOLT_WINTERS_CASES = [
    pytest.param(
        "10s",
        'http_requests{job="api-server", instance="0", group="production"} 0+10x1000 100+30x1000\n'
        'http_requests{job="api-server", instance="1", group="production"} 0+20x1000 200+30x1000\n'
        'http_requests{job="api-server", instance="0", group="canary"} 0+30x1000 300+80x1000\n'
        'http_requests{job="api-server", instance="1", group="canary"} 0+40x2000',
        "8000s",
        "holt_winters(http_requests[1m], 0.01, 0.1)",
        [
            '{job="api-server", instance="0", group="production"} 8000',
            '{job="api-server", instance="1", group="production"} 16000',
            '{job="api-server", instance="0", group="canary"} 24000',
            '{job="api-server", instance="1", group="canary"} 32000',
        ],
        id="positive trends (functions.test)",
    ),
    pytest.param(
        "10s",
        'http_requests{job="api-server", instance="0", group="production"} 8000-10x1000\n'
        'http_requests{job="api-server", instance="1", group="production"} 0-20x1000\n'
        'http_requests{job="api-server", instance="0", group="canary"} 0+30x1000 300-80x1000\n'
        'http_requests{job="api-server", instance="1", group="canary"} 0-40x1000 0+40x1000',
        "8000s",
        "holt_winters(http_requests[1m], 0.01, 0.1)",
        [
            '{job="api-server", instance="0", group="production"} 0',
            '{job="api-server", instance="1", group="production"} -16000',
            '{job="api-server", instance="0", group="canary"} 24000',
            '{job="api-server", instance="1", group="canary"} -32000',
        ],
        id="negative trends (functions.test)",
    ),
    pytest.param(
        "1m",
        SMOOTHING,
        "5m",
        "holt_winters(x[5m], 0.5, 0.5)",
        ['{a="1"} 12.9609375'],
        id="a series with one sample in the window gives nothing",
    ),
    pytest.param(
        "1m",
        SMOOTHING,
        "11m",
        "holt_winters(x[10m], 0.3, 0.8)",
        ['{a="1"} 35.57798356396761'],
        id="the stale marker is not a sample",
    ),
    pytest.param(
        "1m",
        SMOOTHING,
        "12m",
        "holt_winters(x[20m:30s], 0.1, 0.9)",
        ['{a="1"} 39.88851573290295', '{a="2"} 5'],
        id="over a subquery",
    ),
    pytest.param(
        "1m",
        'y{a="1"} NaN 1 Inf -Inf 3',
        "4m",
        "holt_winters(y[5m], 0.3, 0.8)",
        ['{a="1"} NaN'],
        id="NaN and infinities propagate",
    ),
    pytest.param(
        "1m",
        SMOOTHING,
        "3m",
        "holt_winters(x[5m], 0.5, NaN)",
        ['{a="1"} NaN'],
        id="a NaN factor passes the range check",
    ),
]


@pytest.mark.parametrize(("interval", "series", "at", "expr", "expected"), HOLT_WINTERS_CASES)
def test_holt_winters_matches_prometheus(interval, series, at, expr, expected):
    storage = MemoryStorage().load(interval, series)
    got = _values(instant_query(expr, storage, duration_ms(at)))
    want = _expected(expected)
    assert set(got) == set(want)
    for labels, value in want.items():
        assert same_value(got[labels], value), (labels, got[labels], value)


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        (
            "holt_winters(x[5m], 1, 0.5)",
            "invalid smoothing factor. Expected: 0 < sf < 1, got: 1.000000",
        ),
        (
            "holt_winters(x[5m], 0, 0.5)",
            "invalid smoothing factor. Expected: 0 < sf < 1, got: 0.000000",
        ),
        (
            "holt_winters(x[5m], 0.5, 1)",
            "invalid trend factor. Expected: 0 < tf < 1, got: 1.000000",
        ),
        ("holt_winters(x[5m], 0.5, -Inf)", "invalid trend factor. Expected: 0 < tf < 1, got: -Inf"),
        ("holt_winters(x[5m], 2, 2)", "invalid smoothing factor"),
        ("holt_winters(x[1m], 0.25, 1.5)", "got: 1.500000"),
    ],
)
def test_holt_winters_refuses_factors_outside_zero_to_one(expr, message):
    storage = MemoryStorage().load("1m", SMOOTHING)
    with pytest.raises(QueryError) as caught:
        instant_query(expr, storage, duration_ms("2m"))
    assert message in str(caught.value)


def test_holt_winters_checks_factors_even_for_a_single_sample():
    storage = MemoryStorage().load("1m", SMOOTHING)
    with pytest.raises(QueryError, match="invalid smoothing factor"):
        instant_query("holt_winters(x[1m], 7, 0.5)", storage, 0)


def test_holt_winters_checks_factors_only_when_a_series_has_samples():
    """Prometheus checks the factors inside the per-series call, so no series, no error."""
    storage = MemoryStorage().load("1m", SMOOTHING)
    assert instant_query("holt_winters(nosuch[5m], 7, 0.5)", storage, duration_ms("2m")) == []
    assert instant_query("holt_winters(x[5m], 7, 0.5)", storage, duration_ms("30m")) == []


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("holt_winters(x, 0.5, 0.5)", "expected type matrix"),
        ("holt_winters(x[5m], 0.5)", "expected 3 argument"),
        ('holt_winters(x[5m], "a", 0.5)', "expected type scalar"),
    ],
)
def test_holt_winters_argument_errors_are_parse_errors(expr, message):
    with pytest.raises(QueryError, match=message):
        check_supported(expr)


@pytest.mark.parametrize(
    "expr", ["histogram_count(x)", "histogram_sum(x)", "histogram_fraction(0, 1, x)"]
)
def test_native_histogram_functions_skip_float_samples(expr):
    """2.42 reads only native histogram samples here; our series hold floats only."""
    storage = MemoryStorage().load("1m", SMOOTHING)
    assert instant_query(expr, storage, duration_ms("5m")) == []


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("histogram_count(x[5m])", "expected type vector"),
        ("histogram_sum(1)", "expected type vector"),
        ("histogram_fraction(0, x)", "expected 3 argument"),
        ("histogram_fraction(x, 1, x)", "expected type scalar"),
    ],
)
def test_native_histogram_function_arguments_are_type_checked(expr, message):
    with pytest.raises(QueryError, match=message):
        check_supported(expr)


def test_native_histogram_functions_still_evaluate_their_arguments():
    storage = MemoryStorage().load("1m", 'a{job="x", i="1"} 1\na{job="x", i="2"} 1')
    with pytest.raises(QueryError, match="many-to-many"):
        instant_query("histogram_count(a * on (job) a)", storage, 0)


@pytest.mark.parametrize(
    ("expr", "at", "expected"),
    [
        ("day_of_year()", "0m", 1),
        ("day_of_year(vector(1136239445))", "0m", 2),
        ("day_of_year(vector(1483191420))", "0m", 366),  # 2016-12-31, a leap year
        ("day_of_year(vector(1672493820))", "0m", 365),  # 2022-12-31
        ("day_of_year(vector(951782400))", "0m", 60),  # 2000-02-29
        ("day_of_year(vector(-86400))", "0m", 365),  # 1969-12-31
        ("day_of_year(vector(253402300800))", "0m", 1),  # 10000-01-01
        ("day_of_year(vector(NaN))", "0m", 339),  # Go's int64(NaN) on amd64
        ("day_of_year(vector(Inf))", "0m", 339),
        ("day_of_year(vector(9.2e18))", "0m", 244),
        ("day_of_year(vector(-1e12))", "0m", 95),
        ("month(vector(NaN))", "0m", 12),
        ("year(vector(NaN))", "0m", 292277026596),
        ("days_in_month(vector(-62135596801))", "0m", 31),  # December of year 0
    ],
)
def test_date_functions_follow_go_time_for_every_input(expr, at, expected):
    (sample,) = instant_query(expr, MemoryStorage(), duration_ms(at) if at != "0m" else 0)
    assert sample.labels == ()
    assert sample.value == expected


def test_day_of_year_drops_the_metric_name():
    storage = MemoryStorage().load("1m", 'boot_time{host="a"} 86400')
    (sample,) = instant_query("day_of_year(boot_time)", storage, 0)
    assert (sample.labels, sample.value) == ((("host", "a"),), 2.0)


def test_day_of_year_takes_at_most_one_argument():
    with pytest.raises(QueryError, match="expected at most 1 argument"):
        check_supported("day_of_year(m, m)")
