"""The evaluator's public surface: what it refuses, the value types it returns,
how far back it reads, and properties that must hold for any input."""

from __future__ import annotations

import math

import promql_parser
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orbiter.satellite.promql.engine import (
    QueryError,
    Sample,
    Scalar,
    String,
    UnsupportedQuery,
    check_supported,
    instant_query,
    max_range_ms,
    parse,
    rule_query,
)
from orbiter.satellite.series import Series, labels_of
from tests.unit.test_promql_support import STALE_NAN, MemoryStorage


@pytest.mark.parametrize(
    ("expr", "construct"),
    [
        ('sort_by_label(foo, "a")', "function 'sort_by_label'"),
        ("mad_over_time(foo[5m])", "function 'mad_over_time'"),
        ("limitk(2, foo)", "aggregation 'limitk'"),
        ('foo{a="1" or b="2"}', "'or' between label matchers"),
        ("a + fill(0) b", "fill modifiers"),
        ("foo @ -1", "negative timestamp"),
    ],
)
def test_unsupported_constructs_are_refused_by_name(expr, construct):
    with pytest.raises(UnsupportedQuery, match=construct):
        check_supported(expr)
    with pytest.raises(UnsupportedQuery):
        instant_query(expr, MemoryStorage(), 0)


def test_unsupported_is_not_a_query_error():
    """Callers tell "we cannot run this" apart from "this is wrong"."""
    with pytest.raises(UnsupportedQuery) as caught:
        check_supported("limitk(2, foo)")
    assert not isinstance(caught.value, QueryError)


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("foo{", "unexpected end of input"),
        ("rate(foo)", "expected type matrix"),
        ("sum(foo) by (a) without (b)", "invalid"),
        ('label_replace(foo, "dst", "$1", "src", "(")', "invalid regular expression"),
    ],
)
def test_invalid_expressions_raise_query_error_with_the_parser_message(expr, message):
    with pytest.raises(QueryError, match=message):
        check_supported(expr)


def test_parse_returns_the_promql_parser_ast():
    tree = parse('sum by (job) (rate(http_requests_total{code=~"5.."}[5m]))')
    assert isinstance(tree, promql_parser.AggregateExpr)


def test_instant_query_accepts_a_parsed_ast():
    storage = MemoryStorage().load("1m", 'up{job="a"} 1')
    assert instant_query(parse("up"), storage, 0) == instant_query("up", storage, 0)


@pytest.mark.parametrize(
    ("expr", "reach_ms"),
    [
        ("up", 300_000),
        ("up offset 10m", 900_000),
        ("rate(x[5m])", 300_000),
        ("rate(x[5m] offset 1h)", 3_900_000),
        ("max_over_time(rate(x[5m])[1h:1m])", 3_900_000),
        ("max_over_time(rate(x[5m])[1h:1m] offset 1h)", 7_500_000),
        ("sum(rate(a[2m])) / sum(rate(b[10m]))", 600_000),
        ("vector(1)", 0),
        ("up offset -10m", 0),
    ],
)
def test_max_range_covers_ranges_offsets_and_subqueries(expr, reach_ms):
    assert max_range_ms(expr) == reach_ms


def test_max_range_counts_the_lookback_given():
    assert max_range_ms("up", lookback_ms=60_000) == 60_000


def test_range_selector_returns_a_matrix_without_staleness_markers():
    storage = MemoryStorage()
    labels = labels_of({"__name__": "m", "a": "b"})
    for t, v in [(0, 1.0), (10_000, STALE_NAN), (20_000, 2.0), (30_000, 3.0)]:
        storage.add(labels, t, v)
    result = instant_query("m[25s]", storage, 30_000)
    assert result == [Series(labels, (20_000, 30_000), (2.0, 3.0))]


def test_subquery_returns_evaluated_points():
    storage = MemoryStorage().load("10s", "m 1 2 3")
    result = instant_query("m[20s:10s]", storage, 20_000)
    assert result == [Series(labels_of({"__name__": "m"}), (0, 10_000, 20_000), (1.0, 2.0, 3.0))]


def test_string_literal_returns_a_string():
    assert instant_query('"hello"', MemoryStorage(), 1000) == String("hello", 1000)


def test_vector_samples_carry_the_evaluation_time():
    storage = MemoryStorage().load("1m", 'up{job="a"} 1')
    assert instant_query("up", storage, 90_000) == [
        Sample(labels_of({"__name__": "up", "job": "a"}), 1.0, 90_000)
    ]


def test_subquery_without_step_uses_the_given_default():
    storage = MemoryStorage().load("10s", "m 1+0x30")
    count = "count_over_time(m[1m:])"
    assert instant_query(count, storage, 300_000)[0].value == 2  # steps at 4m, 5m
    assert instant_query(count, storage, 300_000, subquery_step_ms=10_000)[0].value == 7


def test_shorter_lookback_hides_old_samples():
    storage = MemoryStorage().load("1m", "m 1")
    assert instant_query("m", storage, 120_000) != []
    assert instant_query("m", storage, 120_000, lookback_ms=60_000) == []


# --- properties -----------------------------------------------------------------

finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False)


def _vector_storage(values: list[float]) -> MemoryStorage:
    storage = MemoryStorage()
    for i, v in enumerate(values):
        storage.add(labels_of({"__name__": "m", "i": str(i), "g": str(i % 3)}), 0, v)
    return storage


@settings(max_examples=60, deadline=None)
@given(st.lists(finite, min_size=1, max_size=12))
def test_count_and_sum_by_group_partition_the_vector(values):
    storage = _vector_storage(values)
    by_group = instant_query("sum by (g) (m)", storage, 0)
    assert math.isclose(sum(s.value for s in by_group), sum(values), rel_tol=1e-9, abs_tol=1e-6)
    assert instant_query("count(m)", storage, 0)[0].value == len(values)


@settings(max_examples=60, deadline=None)
@given(st.lists(finite, min_size=1, max_size=12), st.integers(min_value=1, max_value=15))
def test_topk_returns_the_k_largest(values, k):
    storage = _vector_storage(values)
    result = instant_query(f"topk({k}, m)", storage, 0)
    assert [s.value for s in result] == sorted(values, reverse=True)[:k]


@settings(max_examples=40, deadline=None)
@given(st.lists(finite, min_size=1, max_size=8))
def test_set_operators_with_itself(values):
    storage = _vector_storage(values)
    everything = sorted(s.labels for s in instant_query("m", storage, 0))
    assert sorted(s.labels for s in instant_query("m and m", storage, 0)) == everything
    assert sorted(s.labels for s in instant_query("m or m", storage, 0)) == everything
    assert instant_query("m unless m", storage, 0) == []


@settings(max_examples=60, deadline=None)
@given(
    start=st.floats(min_value=0, max_value=1e6),
    slope=st.floats(min_value=0.001, max_value=1000),
    points=st.integers(min_value=2, max_value=40),
)
def test_rate_of_a_steady_counter_is_its_slope(start, slope, points):
    """With samples at both window edges there is nothing to extrapolate."""
    storage = MemoryStorage()
    labels = labels_of({"__name__": "c"})
    for i in range(points):
        storage.add(labels, i * 15_000, start + slope * 15 * i)
    window = (points - 1) * 15
    result = instant_query(f"rate(c[{window}s])", storage, (points - 1) * 15_000)
    assert math.isclose(result[0].value, slope, rel_tol=1e-6)


@settings(max_examples=60, deadline=None)
@given(
    before=st.lists(st.floats(min_value=0, max_value=1e3), min_size=1, max_size=5),
    after=st.lists(st.floats(min_value=0, max_value=1e3), min_size=1, max_size=5),
)
def test_increase_is_never_negative_for_counters(before, after):
    """A drop is a counter reset, never a decrease."""
    storage = MemoryStorage()
    labels = labels_of({"__name__": "c"})
    for i, v in enumerate(sorted(before) + sorted(after)):
        storage.add(labels, i * 10_000, v)
    result = instant_query("increase(c[10m])", storage, 120_000)
    assert all(s.value >= 0 for s in result)


def test_scalar_results_are_scalars():
    assert isinstance(instant_query("scalar(vector(2))", MemoryStorage(), 0), Scalar)


def test_rule_query_gives_pairs_for_vectors_and_one_unlabelled_pair_for_scalars():
    storage = MemoryStorage().load("1m", 'up{job="a"} 1 2\nup{job="b"} 3 4')
    assert rule_query("up * 2", storage, 60_000) == [
        ((("job", "a"),), 4.0),
        ((("job", "b"),), 8.0),
    ]
    assert rule_query("scalar(sum(up))", storage, 60_000) == [((), 6.0)]
    with pytest.raises(QueryError, match="rule result is not a vector or scalar"):
        rule_query("up[5m]", storage, 60_000)


def test_a_binary_operation_replays_its_matching_only_for_the_same_label_sets():
    """The node keeps its last matching; new values, new series and a filter that lets a
    many-to-one conflict through must all give what a fresh evaluation gives."""
    storage = MemoryStorage().load(
        "1m",
        """
        a{k="1", x="p"} 1 5 5
        a{k="1", x="q"} 9 1 9
        b{k="1"} 2 2 2
        c{k="2"} _ 3 3
        """,
    )
    ast = parse('a > on (k) b')
    assert rule_query(ast, storage, 0) == [((("k", "1"),), 9.0)]  # on (k): only k is kept
    assert rule_query(ast, storage, 60_000) == [((("k", "1"),), 5.0)]
    with pytest.raises(QueryError, match="many-to-one matching must be explicit"):
        rule_query(ast, storage, 120_000)  # both a's now pass the filter: two matches for k=1
    ast = parse("a + on (k) group_left b")
    first = rule_query(ast, storage, 0)
    assert first == [((("k", "1"), ("x", "p")), 3.0), ((("k", "1"), ("x", "q")), 11.0)]
    assert rule_query(ast, storage, 60_000) == [
        ((("k", "1"), ("x", "p")), 7.0),
        ((("k", "1"), ("x", "q")), 3.0),
    ]
