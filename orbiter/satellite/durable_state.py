"""Satellite's durable state: one JSON document, and how a successor resumes from it.

When the leading master dies, a master on another machine starts its own Satellite.
Everything that Satellite needs to carry on where the old one stopped lives in one
document, kept in a `BlobStore` (a file for a single master, ZooKeeper for several):

    {"format": 1, "kind": "orbiter-satellite-state",
     "saved_at": 1800000040.0, "writer": "host-b:4242",
     "policy": {...PolicyState.to_dict()...},
     "events": [{"time": ..., "rule": ..., "agent": ..., "action": ..., "outcome": ...,
                 "reason": ...}, ...],                      # the last EVENTS_KEPT
     "groups": [{"file": "alerts/default.rules.yml", "group": "agents",
                 "evaluated_at": 1800000040.0,
                 "rules": [{"rule": "AgentDown", "index": 0,  # nth rule of that name
                            "alerts": [{"labels": {...}, "annotations": {...},
                                        "state": "pending", "value": 1.0,
                                        "active_at": 1800000000.0, "fired_at": null,
                                        "keep_firing_since": null}]}]}],
     "external": [{"labels": {...}, "annotations": {...}, "starts_at": ...,
                   "received_at": ..., "source": "alertmanager"}]}

`external` holds the firing alerts other systems sent (Alertmanager webhooks), which
act on agents like Satellite's own; an older document without it reads as none.
Times are Unix seconds. Only pending and firing alerts are kept, of alerting rules
that have any. A group's `evaluated_at` is when its alerts were last confirmed.

Restoring an alert's `for` progress follows Prometheus's `RestoreForState`
(rules/group.go), with one difference made for failover. Let `down` be the time
from the group's `evaluated_at` to the first evaluation with data after the restart:

- `down` <= `for_grace_period` (10m by default): a failover or a quick restart. The
  saved `active_at` is kept as is, so the clock kept running across the gap: an
  alert pending for 40s of a 1m `for` fires 20s after the failover. (Prometheus
  counts only the time it was up, and never restores rules whose `for` is shorter
  than the grace period; after a gap of seconds that would make every failover
  restart every `for` and delay automation by up to a full `for`.)
- longer, up to `for_outage_tolerance` (1h): Prometheus's rules. A rule whose `for`
  is shorter than the grace period is not restored (it waits its full `for`); an
  alert that had already fired keeps its `active_at`; one that would fire within the
  grace period fires at the end of it; otherwise the time down does not count.
- longer than the outage tolerance: nothing is restored, as in Prometheus.

A restored alert is merged into the rule's state before the first evaluation that
has data, and then stepped as usual: a pending one that the expression no longer
returns is dropped, so it only keeps its `active_at` if it is still active; a firing
one that is no longer returned is resolved (and sent out resolved, or kept firing
for `keep_firing_for` from when it stopped), so receivers do not show it firing
forever; one that is still returned stays firing without a second notification.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from orbiter.satellite.policy import PolicyState
from orbiter.satellite.rules import (
    Alert,
    AlertingRule,
    AlertState,
    GroupState,
    RuleGroup,
)
from orbiter.satellite.series import Labels

FORMAT = 1
KIND = "orbiter-satellite-state"
EVENTS_KEPT = 1000
"""Events kept in the document; older ones are only in the archive."""


class StateDocumentInvalid(ValueError):
    """A state document this Satellite cannot read; the message says what is wrong."""


@dataclass(frozen=True)
class Event:
    """One decision as operators see it (`orbiter satellite events`): the policy's, or an
    operator's action beside it (`actor` "operator", with the principal that asked)."""

    time: float
    rule: str
    agent: str
    action: str
    outcome: str
    reason: str
    actor: str = "satellite"
    principal: str = ""


@dataclass(frozen=True)
class SavedAlert:
    """A pending or firing alert as the document keeps it."""

    labels: Labels
    annotations: tuple[tuple[str, str], ...]
    state: AlertState
    value: float
    active_at_ms: int
    fired_at_ms: int | None = None
    keep_firing_since_ms: int | None = None

    @staticmethod
    def of(alert: Alert) -> SavedAlert:
        return SavedAlert(
            alert.labels,
            alert.annotations,
            alert.state,
            alert.value,
            alert.active_at_ms,
            alert.fired_at_ms,
            alert.keep_firing_since_ms,
        )

    def progress(self) -> tuple[Any, ...]:
        """What counts as a change worth a write: not the value or annotations, which churn."""
        return (
            self.labels,
            self.state,
            self.active_at_ms,
            self.fired_at_ms,
            self.keep_firing_since_ms,
        )


RuleKey = tuple[str, int]
"""An alerting rule within its group: its name and which rule of that name (0 = first)."""


@dataclass(frozen=True)
class SavedGroup:
    file: str
    name: str
    evaluated_at_ms: int
    rules: Mapping[RuleKey, tuple[SavedAlert, ...]] = field(default_factory=dict)

    def progress(self) -> tuple[Any, ...]:
        return (
            self.file,
            self.name,
            tuple((k, tuple(a.progress() for a in v)) for k, v in sorted(self.rules.items())),
        )


@dataclass(frozen=True)
class ExternalAlert:
    """A firing alert another system sent (an Alertmanager webhook), kept until it resolves."""

    labels: Labels
    annotations: tuple[tuple[str, str], ...]
    starts_at: float
    received_at: float
    source: str = "alertmanager"

    def progress(self) -> tuple[Any, ...]:
        return (self.labels, self.starts_at, self.source)


@dataclass(frozen=True)
class SatelliteState:
    """Everything a successor needs: the policy's memory, recent events, `for` progress."""

    policy: PolicyState = field(default_factory=PolicyState)
    events: tuple[Event, ...] = ()
    groups: tuple[SavedGroup, ...] = ()
    saved_at: float = 0.0
    writer: str = ""
    external: tuple[ExternalAlert, ...] = ()

    def progress(self) -> tuple[Any, ...]:
        """Equal for two states that differ only in times, values and annotations."""
        return (
            self.policy,
            self.events,
            tuple(g.progress() for g in self.groups),
            tuple(e.progress() for e in self.external),
        )


# ---------------------------------------------------------------------------
# Encoding


def _s(ms: int | None) -> float | None:
    return None if ms is None else ms / 1000


def _ms(s: Any) -> int | None:
    return None if s is None else round(float(s) * 1000)


def encode(state: SatelliteState) -> bytes:
    doc = {
        "format": FORMAT,
        "kind": KIND,
        "saved_at": state.saved_at,
        "writer": state.writer,
        "policy": state.policy.to_dict(),
        "events": [
            {
                "time": e.time,
                "rule": e.rule,
                "agent": e.agent,
                "action": e.action,
                "outcome": e.outcome,
                "reason": e.reason,
                "actor": e.actor,
                "principal": e.principal,
            }
            for e in state.events[-EVENTS_KEPT:]
        ],
        "groups": [
            {
                "file": g.file,
                "group": g.name,
                "evaluated_at": _s(g.evaluated_at_ms),
                "rules": [
                    {
                        "rule": name,
                        "index": index,
                        "alerts": [
                            {
                                "labels": dict(a.labels),
                                "annotations": dict(a.annotations),
                                "state": a.state.value,
                                "value": a.value if math.isfinite(a.value) else str(a.value),
                                "active_at": _s(a.active_at_ms),
                                "fired_at": _s(a.fired_at_ms),
                                "keep_firing_since": _s(a.keep_firing_since_ms),
                            }
                            for a in alerts
                        ],
                    }
                    for (name, index), alerts in sorted(g.rules.items())
                ],
            }
            for g in state.groups
        ],
        "external": [
            {
                "labels": dict(e.labels),
                "annotations": dict(e.annotations),
                "starts_at": e.starts_at,
                "received_at": e.received_at,
                "source": e.source,
            }
            for e in state.external
        ],
    }
    return json.dumps(doc, separators=(",", ":"), allow_nan=False).encode()


def decode(data: bytes) -> SatelliteState:
    """Parse a document; raises StateDocumentInvalid naming what is wrong."""
    try:
        doc = json.loads(data)
    except ValueError as e:
        raise StateDocumentInvalid(f"not JSON: {e}") from None
    if not isinstance(doc, dict) or doc.get("kind") != KIND:
        raise StateDocumentInvalid(f"not a Satellite state document (kind is not {KIND!r})")
    if doc.get("format") != FORMAT:
        raise StateDocumentInvalid(
            f"format {doc.get('format')!r} (another Orbiter version wrote it); "
            f"this one reads format {FORMAT}"
        )
    try:
        events = tuple(
            Event(
                float(e["time"]),
                str(e["rule"]),
                str(e["agent"]),
                str(e["action"]),
                str(e["outcome"]),
                str(e["reason"]),
                str(e.get("actor", "satellite")),
                str(e.get("principal", "")),
            )
            for e in doc.get("events", ())
        )
        groups = tuple(
            SavedGroup(
                str(g["file"]),
                str(g["group"]),
                _ms(g["evaluated_at"]) or 0,
                {
                    (str(r["rule"]), int(r["index"])): tuple(_alert(a) for a in r["alerts"])
                    for r in g.get("rules", ())
                },
            )
            for g in doc.get("groups", ())
        )
        return SatelliteState(
            PolicyState.from_dict(doc.get("policy", {})),
            events[-EVENTS_KEPT:],
            groups,
            float(doc.get("saved_at", 0.0)),
            str(doc.get("writer", "")),
            tuple(
                ExternalAlert(
                    tuple(sorted((str(k), str(v)) for k, v in e["labels"].items())),
                    tuple(sorted((str(k), str(v)) for k, v in e.get("annotations", {}).items())),
                    float(e["starts_at"]),
                    float(e["received_at"]),
                    str(e.get("source", "alertmanager")),
                )
                for e in doc.get("external", ())
            ),
        )
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise StateDocumentInvalid(f"malformed document: {type(e).__name__}: {e}") from None


def _alert(a: Mapping[str, Any]) -> SavedAlert:
    state = AlertState(a["state"])
    if state is AlertState.INACTIVE:
        raise ValueError("an inactive alert in the document")
    active_at = _ms(a["active_at"])
    if active_at is None:
        raise ValueError(f"alert {a['labels']} has no active_at")
    return SavedAlert(
        tuple(sorted((str(k), str(v)) for k, v in a["labels"].items())),
        tuple(sorted((str(k), str(v)) for k, v in a.get("annotations", {}).items())),
        state,
        float(a.get("value", math.nan)),
        active_at,
        _ms(a.get("fired_at")),
        _ms(a.get("keep_firing_since")),
    )


# ---------------------------------------------------------------------------
# From live state to the document, and back


def _rule_keys(group: RuleGroup) -> list[RuleKey | None]:
    """Each rule's key, None for recording rules (they have no alerts to keep)."""
    seen: dict[str, int] = {}
    out: list[RuleKey | None] = []
    for rule in group.rules:
        if isinstance(rule, AlertingRule):
            n = seen.get(rule.name, 0)
            seen[rule.name] = n + 1
            out.append((rule.name, n))
        else:
            out.append(None)
    return out


def saved_group(group: RuleGroup, state: GroupState, evaluated_at_ms: int) -> SavedGroup:
    """The pending and firing alerts of one group, as the document keeps them."""
    rules: dict[RuleKey, tuple[SavedAlert, ...]] = {}
    for key, alerts in zip(_rule_keys(group), state.alerts, strict=True):
        live = sorted(
            (SavedAlert.of(a) for a in alerts.values() if a.state is not AlertState.INACTIVE),
            key=lambda a: a.labels,
        )
        if key is not None and live:
            rules[key] = tuple(live)
    return SavedGroup(group.file, group.name, evaluated_at_ms, rules)


def match_group(group: RuleGroup, groups: Sequence[RuleGroup], saved: Sequence[SavedGroup]) -> int:
    """Index in `saved` of the group's saved state, -1 if none.

    By file and name; failing that by name alone when it is unique on both sides, so a
    successor whose rule files sit at another path still finds its groups.
    """
    for i, s in enumerate(saved):
        if (s.file, s.name) == (group.file, group.name):
            return i
    same = [i for i, s in enumerate(saved) if s.name == group.name]
    if len(same) == 1 and sum(g.name == group.name for g in groups) == 1:
        return same[0]
    return -1


def restored_active_at(
    saved: SavedAlert,
    for_ms: int,
    evaluated_at_ms: int,
    t_ms: int,
    grace_ms: int,
) -> int | None:
    """The `active_at` a saved alert resumes with at `t_ms`, None if it starts over."""
    down = t_ms - evaluated_at_ms
    if down <= grace_ms:
        return saved.active_at_ms
    if for_ms < grace_ms:
        return None
    remaining = for_ms - (evaluated_at_ms - saved.active_at_ms)
    if remaining <= 0:
        return saved.active_at_ms
    if remaining < grace_ms:
        return t_ms + grace_ms - for_ms
    return saved.active_at_ms + down


def restore_group(
    group: RuleGroup,
    state: GroupState,
    saved: SavedGroup,
    t_ms: int,
    *,
    grace_ms: int,
    tolerance_ms: int,
) -> GroupState:
    """`state` with the saved alerts merged in, ready for the group's next evaluation.

    An alert the successor has already seen keeps the later of the two states (a
    firing one stays firing) and takes the restored `active_at`; one it has already
    seen resolve is left alone: what it saw is newer than the document.
    """
    if t_ms - saved.evaluated_at_ms > tolerance_ms:
        return state
    alerts = list(state.alerts)
    for i, (rule, key) in enumerate(zip(group.rules, _rule_keys(group), strict=True)):
        if key is None or key not in saved.rules or not isinstance(rule, AlertingRule):
            continue
        merged = dict(alerts[i])
        for s in saved.rules[key]:
            active_at = restored_active_at(s, rule.for_ms, saved.evaluated_at_ms, t_ms, grace_ms)
            if active_at is None:
                continue
            cur = merged.get(s.labels)
            if cur is None:
                merged[s.labels] = Alert(
                    s.labels,
                    s.annotations,
                    s.state,
                    s.value,
                    active_at,
                    s.fired_at_ms,
                    None,
                    s.keep_firing_since_ms,
                )
            elif cur.state is not AlertState.INACTIVE:
                firing = AlertState.FIRING in (cur.state, s.state)
                merged[s.labels] = replace(
                    cur,
                    state=AlertState.FIRING if firing else AlertState.PENDING,
                    active_at_ms=active_at,
                    fired_at_ms=s.fired_at_ms if s.fired_at_ms is not None else cur.fired_at_ms,
                )
        alerts[i] = merged
    return replace(state, alerts=tuple(alerts))
