"""Aggregation groups: when the built-in notifier sends what, as Alertmanager does.

`Dispatcher` holds no sockets and reads no clock (h11-style): alerts and
ticks go in with `now`, `Message`s come out, one per receiver integration
that must hear about a group. The semantics follow Alertmanager 0.25
(`dispatch/dispatch.go`, `notify/notify.go`):

- Every alert is routed (`routing.route_alert`); for each matching route it
  joins the aggregation group keyed by the route and the alert's group
  labels (a new group is made when needed).
- A new group flushes `group_wait` after it was made (at once if its alert
  started more than `group_wait` ago and the group never flushed), then
  every `group_interval`.
- A flush takes the group's alerts, drops those muted (`muted(labels)`, the
  silences, or an inhibition rule with a firing source alert anywhere), and
  sends the rest to each integration of the route's receiver if the
  notification log says it is needed: the first time when something fires;
  afterwards when a firing alert is new, when everything resolved (if
  anything fired before), when a resolved alert is new and the integration
  has `send_resolved`, or when `repeat_interval` has passed.
- Each message carries the whole group: every unmuted alert, firing and
  resolved (resolved ones left out for integrations without
  `send_resolved`, which get no message when nothing fires). Alerts not
  resolved at the flush carry no `ends_at`. They are sorted as Alertmanager
  sorts them: by `job`, then `instance`, then the label set.
- Resolved alerts leave the group after the flush that saw them; a group
  without alerts is removed, and a later alert makes a new one (waiting
  `group_wait` again).
- What each integration was last told about a group key (the notification
  log) outlives the group for `log_retention` (120h); a flush whose alerts
  are all muted leaves it untouched, as Alertmanager's pipeline stops
  before its dedup stage then.
- A firing alert without `ends_at` resolves `resolve_timeout` after it was
  last received, as in Alertmanager, unless `resolve_timeout` is None: then
  it fires until a resolved notification for it arrives. (Satellite sends
  transitions, not every round's active alerts, so it wants None.)

What this does not model: a failed delivery does not keep resolved alerts
for the next flush (Alertmanager keeps them when its retries ran out within
the group interval); the shell retries instead.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cmp_to_key

from orbiter.alerts.inhibit import InhibitRule, inhibited
from orbiter.alerts.payload import Notification, group_key
from orbiter.alerts.routing import Route, route_alert

Muted = Callable[[Mapping[str, str]], bool]

NFLOG_RETENTION = 120 * 3600.0
"""How long what an integration was told is remembered (Alertmanager's --data.retention)."""


def _never(_: Mapping[str, str]) -> bool:
    return False


@dataclass(frozen=True)
class Message:
    """One notification to send: a group's alerts for one integration of a receiver."""

    receiver: str
    integration: int
    """Index into the receiver's integrations: webhook configs, then email, then Slack."""
    group_key: str
    group_labels: dict[str, str]
    route_key: str
    alerts: tuple[Notification, ...]


@dataclass(frozen=True)
class _Stored:
    alert: Notification
    ends_at: float | None
    """When it resolves (or resolved); None: fires until told otherwise."""
    updated_at: float

    def resolved(self, now: float) -> bool:
        return self.ends_at is not None and self.ends_at <= now


@dataclass(frozen=True)
class _LogEntry:
    """What an integration was last told about a group (Alertmanager's nflog entry)."""

    firing: frozenset[str]
    resolved: frozenset[str]
    at: float


@dataclass
class _Group:
    route: Route
    labels: dict[str, str]
    key: str
    next_flush: float
    alerts: dict[str, _Stored] = field(default_factory=dict)
    flushed: bool = False


def _label_set_before(a: Mapping[str, str], b: Mapping[str, str]) -> bool:
    """Prometheus's `LabelSet.Before`: fewer labels first, then by sorted names and values."""
    if len(a) != len(b):
        return len(a) < len(b)
    for name in sorted(a.keys() | b.keys()):
        if name not in a:
            return True
        if name not in b:
            return False
        if a[name] != b[name]:
            return a[name] < b[name]
    return False


def _compare(x: Notification, y: Notification) -> int:
    for name in ("job", "instance"):
        xv, yv = x.labels.get(name), y.labels.get(name)
        if xv is None and yv is None:
            continue
        if xv is None or yv is None:
            return 1 if xv is None else -1  # alerts with the label come first
        if xv != yv:
            return -1 if xv < yv else 1
    if _label_set_before(x.labels, y.labels):
        return -1
    return 1 if _label_set_before(y.labels, x.labels) else 0


def sort_alerts(alerts: Iterable[Notification]) -> list[Notification]:
    """Alertmanager's order in a message: `job`, then `instance` (present first), then labels."""
    return sorted(alerts, key=cmp_to_key(_compare))


def needs_update(
    entry: _LogEntry | None,
    firing: frozenset[str],
    resolved: frozenset[str],
    send_resolved: bool,
    repeat_interval: float,
    now: float,
) -> bool:
    """Alertmanager's DedupStage: must this integration hear about the group now?"""
    if entry is None:
        return bool(firing)
    if not firing <= entry.firing:
        return True
    if not firing:
        return bool(entry.firing)
    if send_resolved and not resolved <= entry.resolved:
        return True
    return entry.at < now - repeat_interval


class Dispatcher:
    """The aggregation groups of one routing tree (see the module docstring).

    `send_resolved` maps each receiver name to its integrations' flags, in
    the order webhook, email, Slack; a receiver not in it has one
    integration that sends resolved alerts. A receiver with no integrations
    gets no messages.
    """

    def __init__(
        self,
        root: Route,
        *,
        inhibit_rules: Sequence[InhibitRule] = (),
        muted: Muted = _never,
        resolve_timeout: float | None = 300.0,
        send_resolved: Mapping[str, Sequence[bool]] | None = None,
        log_retention: float = NFLOG_RETENTION,
    ) -> None:
        self.root = root
        self.inhibit_rules = tuple(inhibit_rules)
        self.muted = muted
        self.resolve_timeout = resolve_timeout
        self.send_resolved = {k: tuple(v) for k, v in (send_resolved or {}).items()}
        self.log_retention = log_retention
        self._store: dict[str, _Stored] = {}
        self._log: dict[tuple[str, str, int], _LogEntry] = {}
        self._groups: dict[tuple[int, frozenset[tuple[str, str]]], _Group] = {}
        self._route_ids = {id(r): i for i, r in enumerate(root.walk())}

    # ------------------------------------------------------------------ input

    def receive(self, alerts: Iterable[Notification], now: float) -> None:
        """Take firing or resolved alerts (as from the rule evaluator) at `now`."""
        for n in alerts:
            stored = self._merge(n, now)
            self._store[n.fingerprint] = stored
            for route in route_alert(self.root, n.labels):
                self._insert(route, stored, now)

    def adopt(self, old: Dispatcher, now: float) -> None:
        """Take over `old`'s alerts and notification log (after a configuration reload).

        As in Alertmanager, the groups start afresh: alerts are routed again
        through this tree, and since they started long ago their new groups
        flush at the next tick; the log keeps receivers from hearing again
        what they were already told.
        """
        self._log = dict(old._log)
        for fp, stored in old._store.items():
            if stored.resolved(now):
                continue
            self._store[fp] = stored
            for route in route_alert(self.root, stored.alert.labels):
                self._insert(route, stored, now)

    def _merge(self, n: Notification, now: float) -> _Stored:
        if n.status == "resolved" or (n.ends_at is not None and n.ends_at > now):
            ends_at = n.ends_at
        else:
            ends_at = None if self.resolve_timeout is None else now + self.resolve_timeout
        old = self._store.get(n.fingerprint)
        if old is not None and not old.resolved(now) and old.alert.starts_at < n.starts_at:
            n = replace(n, starts_at=old.alert.starts_at)  # same incident: keep when it began
        if n.status == "firing":
            n = replace(n, ends_at=None)
        return _Stored(n, ends_at, now)

    def _insert(self, route: Route, stored: _Stored, now: float) -> None:
        labels = route.group_labels(stored.alert.labels)
        gid = (self._route_ids[id(route)], frozenset(labels.items()))
        group = self._groups.get(gid)
        if group is None:
            group = self._groups[gid] = _Group(
                route=route,
                labels=labels,
                key=group_key(labels, route.key),
                next_flush=now + route.group_wait,
            )
        group.alerts[stored.alert.fingerprint] = stored
        if not group.flushed and stored.alert.starts_at + route.group_wait < now:
            group.next_flush = min(group.next_flush, now)

    # ------------------------------------------------------------------ time

    def tick(self, now: float) -> list[Message]:
        """Flush every group that is due at `now`; the messages to send, in group order."""
        out: list[Message] = []
        for gid, group in list(self._groups.items()):
            if group.next_flush <= now:
                group.next_flush = now + group.route.group_interval
                group.flushed = True
                out.extend(self._flush(group, now))
            if not group.alerts:
                del self._groups[gid]
        self._store = {fp: s for fp, s in self._store.items() if not s.resolved(now)}
        self._log = {k: e for k, e in self._log.items() if e.at >= now - self.log_retention}
        return out

    def next_deadline(self) -> float | None:
        """When the next group is due, if any."""
        return min((g.next_flush for g in self._groups.values()), default=None)

    def is_muted(self, labels: Mapping[str, str], now: float) -> bool:
        """Silenced, or inhibited by a firing alert the dispatcher holds."""
        if self.muted(labels):
            return True
        if not self.inhibit_rules:
            return False
        firing = (s.alert.labels for s in self._store.values() if not s.resolved(now))
        return inhibited(self.inhibit_rules, labels, firing)

    def muted_count(self, now: float) -> int:
        """Firing alerts currently muted by a silence or an inhibition."""
        return sum(
            1
            for s in self._store.values()
            if not s.resolved(now) and self.is_muted(s.alert.labels, now)
        )

    def active(self, now: float) -> list[Notification]:
        """Alerts held and not resolved at `now`."""
        return [s.alert for s in self._store.values() if not s.resolved(now)]

    def groups(self) -> list[tuple[str, str, int]]:
        """(group key, receiver, alerts held) for every aggregation group, for status pages."""
        return [(g.key, g.route.receiver, len(g.alerts)) for g in self._groups.values()]

    def _flush(self, group: _Group, now: float) -> list[Message]:
        snapshot = list(group.alerts.values())
        if not snapshot:
            return []
        visible: list[Notification] = []
        for s in snapshot:
            if self.is_muted(s.alert.labels, now):
                continue
            if s.resolved(now):
                visible.append(replace(s.alert, status="resolved", ends_at=s.ends_at))
            else:
                visible.append(replace(s.alert, status="firing", ends_at=None))
        if not visible:  # Alertmanager's pipeline stops here: the log is not touched
            return self._drop_resolved(group, snapshot, now)
        visible = sort_alerts(visible)
        firing = frozenset(n.fingerprint for n in visible if n.status == "firing")
        resolved = frozenset(n.fingerprint for n in visible if n.status == "resolved")
        out: list[Message] = []
        flags = self.send_resolved.get(group.route.receiver, (True,))
        for i, sends_resolved in enumerate(flags):
            log_key = (group.key, group.route.receiver, i)
            if not needs_update(
                self._log.get(log_key), firing, resolved, sends_resolved,
                group.route.repeat_interval, now,
            ):
                continue
            self._log[log_key] = _LogEntry(firing, resolved, now)
            alerts = tuple(n for n in visible if sends_resolved or n.status == "firing")
            if alerts:
                out.append(
                    Message(
                        receiver=group.route.receiver,
                        integration=i,
                        group_key=group.key,
                        group_labels=dict(group.labels),
                        route_key=group.route.key,
                        alerts=alerts,
                    )
                )
        return out + self._drop_resolved(group, snapshot, now)

    @staticmethod
    def _drop_resolved(group: _Group, snapshot: list[_Stored], now: float) -> list[Message]:
        """Resolved alerts leave the group once a flush saw them (unless updated since)."""
        for s in snapshot:
            fp = s.alert.fingerprint
            if s.resolved(now) and group.alerts.get(fp) is s:
                del group.alerts[fp]
        return []
