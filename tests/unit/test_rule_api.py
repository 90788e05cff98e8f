"""/api/v1/rules and /api/v1/alerts views: the fields and formats of Prometheus 2.42's answers
(read off a real Prometheus for the same rules: an erroring rule, a firing and a pending alert,
a recording rule with labels, a group never evaluated)."""

from __future__ import annotations

from orbiter.satellite.rule_api import GroupRun, alert_view, format_value, group_view
from orbiter.satellite.rules import Alert, AlertState, parse_rule_file

RULES = """
groups:
- name: g1
  interval: 1s
  rules:
  - record: a:b
    expr: vector(1)
    labels: {x: y}
  - alert: AlwaysFires
    expr: vector(2) > 1
    labels: {severity: warning}
    annotations: {summary: "value {{ $value }}"}
  - alert: Err
    expr: label_replace(vector(1),"a","x","","") + on() (vector(1) or vector(2))
    keep_firing_for: 5m
"""

ERROR = "found duplicate series for the match group {} on the right hand-side"


def _group():  # type: ignore[no-untyped-def]
    (group,) = parse_rule_file(RULES, "rules.yml")
    return group


def test_a_group_never_evaluated_is_unknown_with_go_zero_times() -> None:
    view = group_view(_group(), [{}, {}, {}], None, 15.0)
    assert view["interval"] == 1 and view["limit"] == 0 and view["evaluationTime"] == 0.0
    assert view["lastEvaluation"] == "0001-01-01T00:00:00Z"
    assert {r["health"] for r in view["rules"]} == {"unknown"}


def test_rules_carry_health_errors_alerts_and_prometheus_field_order() -> None:
    firing = Alert(
        (("alertname", "AlwaysFires"), ("severity", "warning")),
        (("summary", "value 2"),),
        AlertState.FIRING,
        2.0,
        active_at_ms=1_700_000_000_123,
        fired_at_ms=1_700_000_001_000,
    )
    run = GroupRun(1_700_000_002_500, 0.0005, (0.0001, 0.0002, 0.0002), {2: ERROR})
    view = group_view(_group(), [{}, {firing.labels: firing}, {}], run, 15.0)
    record, fires, err = view["rules"]
    assert record == {
        "name": "a:b",
        "query": "vector(1)",
        "labels": {"x": "y"},
        "health": "ok",
        "evaluationTime": 0.0001,
        "lastEvaluation": "2023-11-14T22:13:22.5Z",
        "type": "recording",
    }
    assert list(fires) == [
        "state", "name", "query", "duration", "keepFiringFor", "labels", "annotations",
        "alerts", "health", "evaluationTime", "lastEvaluation", "type",
    ]  # fmt: skip
    assert fires["state"] == "firing" and fires["query"] == "vector(2) > 1"
    assert fires["annotations"] == {"summary": "value {{ $value }}"}
    assert fires["alerts"] == [
        {
            "labels": {"alertname": "AlwaysFires", "severity": "warning"},
            "annotations": {"summary": "value 2"},
            "state": "firing",
            "activeAt": "2023-11-14T22:13:20.123Z",
            "value": "2e+00",
        }
    ]
    assert err["health"] == "err" and err["lastError"] == ERROR and err["state"] == "inactive"
    assert err["keepFiringFor"] == 300 and err["alerts"] == []
    assert err["query"] == (
        'label_replace(vector(1), "a", "x", "", "") + on () (vector(1) or vector(2))'
    )
    assert list(err).index("lastError") == list(err).index("health") + 1


def test_pending_beats_inactive_and_resolved_alerts_are_not_listed() -> None:
    pending = Alert((("alertname", "P"), ("i", "1")), (), AlertState.PENDING, 3.0, 1000)
    resolved = Alert(
        (("alertname", "P"), ("i", "2")), (), AlertState.INACTIVE, 1.0, 1000, 2000, 3000
    )
    group = _group()
    alerts = {pending.labels: pending, resolved.labels: resolved}
    view = group_view(group, [{}, alerts, {}], None, 15.0)
    assert view["rules"][1]["state"] == "pending"
    assert [a["labels"]["i"] for a in view["rules"][1]["alerts"]] == ["1"]


def test_keep_firing_since_appears_only_while_kept_firing() -> None:
    kept = Alert(
        (("alertname", "K"),), (), AlertState.FIRING, 1.0, 1000, 2000, keep_firing_since_ms=5000
    )
    assert alert_view(kept)["keepFiringSince"] == "1970-01-01T00:00:05Z"
    assert "keepFiringSince" not in alert_view(Alert((("alertname", "K"),), (), kept.state, 1, 0))


def test_values_are_go_e_format() -> None:
    assert [format_value(v) for v in (2.0, 1234.5, 0.0, -3.25, float("nan"), float("inf"))] == [
        "2e+00", "1.2345e+03", "0e+00", "-3.25e+00", "NaN", "+Inf",
    ]  # fmt: skip
