"""/api/v1/alerts and /api/v1/rules in Prometheus 2.42's shapes, as pure views.

Grafana's alert list, `promtool`-minded scripts and anything written against
Prometheus read these; so the data is Prometheus's field for field (checked
against a real Prometheus 2.42 in tests/integration/test_prometheus_deploy.py):

- alert `value` is Go's `strconv.FormatFloat(v, 'e', -1, 64)` ("2e+00");
- times are RFC 3339 in UTC; a rule never evaluated has Go's zero time and
  health "unknown";
- a rule's `query` is the expression as Prometheus prints it back
  (`promql/printer.py`), `duration` and `keepFiringFor` are seconds,
  `interval` the group's in seconds;
- an alerting rule's `state` is its most advanced alert's ("firing" over
  "pending" over "inactive").
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from orbiter.alerts.payload import format_time
from orbiter.satellite.promql.printer import format_expr
from orbiter.satellite.rules import Alert, AlertingRule, AlertState, RecordingRule, Rule, RuleGroup
from orbiter.satellite.templates import go_float

RULE_TYPES = {"alert": AlertingRule, "record": RecordingRule}


@dataclass(frozen=True)
class GroupRun:
    """What the last evaluation of a group left: when, how long, and each rule's error."""

    evaluated_at_ms: int
    seconds: float
    rule_seconds: tuple[float, ...]
    errors: Mapping[int, str]
    """Rule index -> Prometheus's error text for rules whose last evaluation failed."""


def format_value(v: float) -> str:
    """Go's 'e' format, shortest, as Prometheus writes an alert's value."""
    return go_float(v, "e")


def _ms_time(t_ms: int | None) -> str:
    return format_time(None if t_ms is None else t_ms / 1000)


def alert_view(alert: Alert) -> dict[str, Any]:
    out: dict[str, Any] = {
        "labels": dict(alert.labels),
        "annotations": dict(alert.annotations),
        "state": alert.state.value,
        "activeAt": _ms_time(alert.active_at_ms),
        "value": format_value(alert.value),
    }
    if alert.keep_firing_since_ms is not None:
        out["keepFiringSince"] = _ms_time(alert.keep_firing_since_ms)
    return out


def live(alerts: Iterable[Alert]) -> list[Alert]:
    """Pending and firing alerts (resolved ones are kept a while for notifications only)."""
    return [a for a in alerts if a.state is not AlertState.INACTIVE]


def _state(alerts: Sequence[Alert]) -> str:
    states = {a.state for a in alerts}
    for s in (AlertState.FIRING, AlertState.PENDING):
        if s in states:
            return s.value
    return AlertState.INACTIVE.value


def _query_text(rule: Rule) -> str:
    return format_expr(rule.query) if rule.query is not None else rule.expr


def rule_view(
    rule: Rule, alerts: Mapping[Any, Alert], run: GroupRun | None, index: int
) -> dict[str, Any]:
    if run is None:
        health, seconds, when, error = "unknown", 0.0, None, ""
    else:
        error = run.errors.get(index, "")
        health = "err" if error else "ok"
        seconds = run.rule_seconds[index] if index < len(run.rule_seconds) else 0.0
        when = run.evaluated_at_ms
    out: dict[str, Any] = {}
    if isinstance(rule, AlertingRule):
        current = live(alerts.values())
        out = {
            "state": _state(current),
            "name": rule.name,
            "query": _query_text(rule),
            "duration": rule.for_ms / 1000,
            "keepFiringFor": rule.keep_firing_for_ms / 1000,
            "labels": dict(rule.labels),
            "annotations": dict(rule.annotations),
            "alerts": [alert_view(a) for a in current],
        }
    else:
        out = {"name": rule.name, "query": _query_text(rule)}
        if rule.labels:
            out["labels"] = dict(rule.labels)
    out["health"] = health
    if error:
        out["lastError"] = error
    out["evaluationTime"] = seconds
    out["lastEvaluation"] = _ms_time(when)
    out["type"] = "alerting" if isinstance(rule, AlertingRule) else "recording"
    return out


def group_view(
    group: RuleGroup,
    alerts: Sequence[Mapping[Any, Alert]],
    run: GroupRun | None,
    default_interval: float,
    kind: type | None = None,
) -> dict[str, Any]:
    interval = group.interval_ms / 1000 if group.interval_ms else default_interval
    return {
        "name": group.name,
        "file": group.file,
        "rules": [
            rule_view(rule, alerts[i], run, i)
            for i, rule in enumerate(group.rules)
            if kind is None or isinstance(rule, kind)
        ],
        "interval": _number(interval),
        "limit": group.limit,
        "evaluationTime": run.seconds if run else 0.0,
        "lastEvaluation": _ms_time(run.evaluated_at_ms if run else None),
    }


def _number(v: float) -> float | int:
    return int(v) if float(v).is_integer() else v
