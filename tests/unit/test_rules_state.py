"""The alert state machine and rule evaluation follow Prometheus's rules/ package."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orbiter.satellite.rules import (
    RESOLVED_RETENTION_MS,
    AlertingRule,
    AlertState,
    Found,
    GroupState,
    RecordingRule,
    RuleEvalError,
    RuleGroup,
    active_alerts,
    engine_query,
    evaluate_group,
    evaluate_rule,
    is_stale,
    parse_rule_file,
    step_alerts,
)
from orbiter.satellite.ruletest import InMemoryStorage

M = 60_000
L = (("alertname", "A"), ("instance", "i1"))


def run(condition: list[bool], for_ms: int, keep_ms: int = 0) -> list[AlertState | None]:
    """Feed one label set's condition minute by minute; the state after each step."""
    alerts: dict = {}
    out = []
    for i, on in enumerate(condition):
        alerts = step_alerts(alerts, [Found(L, (), 1.0)] if on else [], i * M, for_ms, keep_ms)
        out.append(alerts[L].state if L in alerts else None)
    return out


P, F, OFF = AlertState.PENDING, AlertState.FIRING, AlertState.INACTIVE


@pytest.mark.parametrize(
    ("condition", "for_ms", "keep_ms", "states"),
    [
        ([True, True, True], 0, 0, [F, F, F]),
        ([True, True, True, True], 2 * M, 0, [P, P, F, F]),
        ([True, False, True], 2 * M, 0, [P, None, P]),
        ([True, True, True, False], 2 * M, 0, [P, P, F, OFF]),
        ([True, False, False, False, False], 0, 3 * M, [F, F, F, F, OFF]),
        ([True, False, True, False, False, False, False], 0, 3 * M, [F, F, F, F, F, F, OFF]),
        ([True, True, False, True], 0, 0, [F, F, OFF, F]),
    ],
)
def test_state_transitions(condition, for_ms, keep_ms, states) -> None:  # type: ignore[no-untyped-def]
    assert run(condition, for_ms, keep_ms) == states


def test_resolved_alert_is_kept_for_retention_then_forgotten() -> None:
    alerts = step_alerts({}, [Found(L, (), 1.0)], 0, 0)
    alerts = step_alerts(alerts, [], M, 0)
    assert alerts[L].resolved and alerts[L].resolved_at_ms == M
    alerts = step_alerts(alerts, [], M + RESOLVED_RETENTION_MS, 0)
    assert L in alerts
    alerts = step_alerts(alerts, [], M + RESOLVED_RETENTION_MS + 1, 0)
    assert L not in alerts


def test_returning_alert_after_resolution_starts_pending_again_with_new_active_time() -> None:
    alerts = step_alerts({}, [Found(L, (), 1.0)], 0, 0)
    alerts = step_alerts(alerts, [], M, 0)
    alerts = step_alerts(alerts, [Found(L, (), 2.0)], 2 * M, 5 * M)
    assert (alerts[L].state, alerts[L].active_at_ms, alerts[L].value) == (P, 2 * M, 2.0)


def test_value_and_annotations_follow_the_latest_evaluation() -> None:
    alerts = step_alerts({}, [Found(L, (("s", "one"),), 1.0)], 0, 5 * M)
    alerts = step_alerts(alerts, [Found(L, (("s", "two"),), 2.0)], M, 5 * M)
    assert (alerts[L].annotations, alerts[L].value, alerts[L].active_at_ms) == (
        (("s", "two"),),
        2.0,
        0,
    )


@given(st.lists(st.booleans(), min_size=1, max_size=30), st.integers(0, 10))
def test_an_alert_fires_only_after_its_condition_held_for_the_whole_for_duration(
    condition: list[bool], for_minutes: int
) -> None:
    states = run(condition, for_minutes * M)
    for i, state in enumerate(states):
        if state is F:
            held = all(condition[i - for_minutes : i + 1]) if i >= for_minutes else False
            assert held


def rule_of(text: str):  # type: ignore[no-untyped-def]
    (g,) = parse_rule_file(text, "r.yml")
    return g


def query_returning(result: list) -> object:  # type: ignore[type-arg]
    return lambda expr, t: result


def test_recording_rule_renames_and_relabels() -> None:
    rule = RecordingRule("job:x:sum", "x", (("env", "prod"), ("drop", "")))
    res = evaluate_rule(
        rule, {}, query_returning([((("__name__", "x"), ("drop", "y"), ("job", "a")), 3.0)]), 5 * M
    )
    assert res.samples == (
        ((("__name__", "job:x:sum"), ("env", "prod"), ("job", "a")), 5 * M, 3.0),
    )


def test_recording_rule_refuses_colliding_label_sets() -> None:
    rule = RecordingRule("r", "x")
    with pytest.raises(RuleEvalError, match="same labelset after applying rule labels"):
        evaluate_rule(
            rule, {}, query_returning([((("__name__", "a"),), 1.0), ((("__name__", "b"),), 2.0)]), 0
        )


def test_alerting_rule_writes_alerts_and_for_state_series() -> None:
    g = rule_of(
        "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: x\n    for: 1m\n"
        "    labels: {sev: '{{ $labels.job }}-x'}\n"
    )
    rule = g.rules[0]
    q = query_returning([((("__name__", "x"), ("job", "j")), 7.0)])
    first = evaluate_rule(rule, {}, q, 90_000)
    second = evaluate_rule(rule, first.alerts, q, 150_000)
    labels = (("alertname", "A"), ("job", "j"), ("sev", "j-x"))
    assert [a.state for a in active_alerts(second.alerts)] == [F]
    assert active_alerts(second.alerts)[0].labels == labels
    assert second.samples == (
        (
            (("__name__", "ALERTS"), *labels[:1], ("alertstate", "firing"), *labels[1:]),
            150_000,
            1.0,
        ),
        ((("__name__", "ALERTS_FOR_STATE"), *labels), 150_000, 90.0),
    )


def test_alert_limit_is_enforced() -> None:
    rule = AlertingRule("A", "x")
    q = query_returning([((("i", "1"),), 1.0), ((("i", "2"),), 1.0)])
    with pytest.raises(RuleEvalError, match="exceeded limit of 1 with 2 alerts"):
        evaluate_rule(rule, {}, q, 0, limit=1)


def test_group_writes_output_for_later_rules_and_marks_vanished_series_stale() -> None:
    g: RuleGroup = rule_of(
        "groups:\n- name: g\n  rules:\n  - record: doubled\n    expr: x * 2\n"
        "  - alert: Big\n    expr: doubled > 5\n"
    )
    storage = InMemoryStorage()
    storage.append((("__name__", "x"),), 0, 3.0)
    storage.append((("__name__", "x"),), M, 1.0)
    query = engine_query(storage)
    alerts_series = (("__name__", "ALERTS"), ("alertname", "Big"), ("alertstate", "firing"))

    first = evaluate_group(g, GroupState.initial(g), storage, 0, query)
    assert first.failures == ()
    assert storage.series[(("__name__", "doubled"),)] == ([0], [6.0])
    assert storage.series[alerts_series] == ([0], [1.0])

    second = evaluate_group(g, first.state, storage, M, query)
    ts, vs = storage.series[alerts_series]
    assert ts == [0, M] and is_stale(vs[1])
    assert active_alerts(second.state.alerts[1]) == []
    assert second.state.alerts[1][(("alertname", "Big"),)].resolved


def test_group_reports_a_failing_rule_and_keeps_evaluating_the_rest() -> None:
    g: RuleGroup = rule_of(
        "groups:\n- name: g\n  rules:\n  - record: bad\n    expr: a + on (j) b\n"
        "  - record: good\n    expr: vector(1)\n"
    )
    storage = InMemoryStorage()
    for i in ("1", "2"):
        storage.append((("__name__", "a"), ("i", i), ("j", "x")), 0, 1.0)
    storage.append((("__name__", "b"), ("j", "x")), 0, 1.0)
    res = evaluate_group(g, GroupState.initial(g), storage, 0, engine_query(storage))
    assert [f.rule.name for f in res.failures] == ["bad"]
    assert (("__name__", "good"),) in storage.series


def test_stale_marker_is_a_specific_nan() -> None:
    assert not is_stale(math.nan)
