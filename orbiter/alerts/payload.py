"""Notifications and the webhook payload they become, as pure functions.

A `Notification` is one alert as a receiver sees it: its labels (with
`alertname`), annotations, whether it fires or resolved, and when. The
webhook body is Alertmanager's webhook payload, version 4, field for field,
so any receiver written for Alertmanager (and anything that parses its JSON)
takes ours unchanged. The semantics follow Alertmanager's
`notify/webhook/webhook.go` (`Message`) and `template/template.go` (`Data`,
`Alert`):

- `status` of the whole message is "firing" if any alert in it fires,
  else "resolved".
- `commonLabels` / `commonAnnotations` are the pairs every alert shares.
- `groupKey` is `<route key>:<group labels>`, both in Prometheus's label set
  notation (`{a="1", b="2"}`); with no routing yet the route key is the root
  route's `{}` and the group labels are empty.
- `receiver` is the receiver name regexp-quoted (Alertmanager does that
  with `regexp.QuoteMeta`, so `team.ops` arrives as `team\\.ops`).
- times are RFC 3339 in UTC with the fraction trimmed (Go's
  `time.RFC3339Nano`); an unset `endsAt` is Go's zero time
  `0001-01-01T00:00:00Z`.
- `fingerprint` is Prometheus's label set fingerprint (see `fingerprint`).

Nothing here reads the clock or does I/O: the shell (`notify.py`) supplies
the times and posts the bytes.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from orbiter.errors import OrbiterError

PAYLOAD_VERSION = "4"
ZERO_TIME = "0001-01-01T00:00:00Z"
"""How Go's zero `time.Time` marshals: Alertmanager's "no end time"."""

ROOT_ROUTE_KEY = "{}"
"""Alertmanager's key for the root route; the route key until routing exists."""

Status = Literal["firing", "resolved"]
STATUSES: tuple[Status, ...] = ("firing", "resolved")

_FNV64_OFFSET = 14695981039346656037
_FNV64_PRIME = 1099511628211
_MASK64 = (1 << 64) - 1
_SEPARATOR = 0xFF  # never occurs in UTF-8, so "a","bc" and "ab","c" hash apart


class InvalidNotification(OrbiterError):
    """A notification or batch that no receiver could make sense of."""


def fingerprint(labels: Mapping[str, str]) -> str:
    """Prometheus's fingerprint of a label set, as Alertmanager prints it.

    FNV-1a (64 bit) over the label names in sorted order, each name and each
    value followed by the byte 0xff, printed as 16 lowercase hex digits. It
    depends only on the set of pairs (never on their order), so the same
    alert has the same fingerprint in Orbiter, in Alertmanager and in every
    receiver, across restarts.
    """
    h = _FNV64_OFFSET
    for name in sorted(labels):
        for part in (name, labels[name]):
            for byte in part.encode():
                h = ((h ^ byte) * _FNV64_PRIME) & _MASK64
            h = ((h ^ _SEPARATOR) * _FNV64_PRIME) & _MASK64
    return f"{h:016x}"


@dataclass(frozen=True, kw_only=True)
class Notification:
    """One alert, firing or resolved, on its way to receivers.

    Times are Unix seconds. `ends_at` is when a resolved alert stopped (it is
    required then); a firing alert may leave it unset.
    """

    labels: dict[str, str]
    annotations: dict[str, str] = field(default_factory=dict)
    status: Status
    starts_at: float
    ends_at: float | None = None
    generator_url: str = ""

    def __post_init__(self) -> None:
        # Copies, so a caller mutating its dict cannot change a queued alert.
        object.__setattr__(self, "labels", dict(self.labels))
        object.__setattr__(self, "annotations", dict(self.annotations))
        name = self.labels.get("alertname")
        if not name:
            raise InvalidNotification(
                f"notification without an 'alertname' label: {self.labels!r}; "
                "every alert needs one (it names the rule)"
            )
        if self.status not in STATUSES:
            raise InvalidNotification(
                f"alert {name}: status {self.status!r} is neither 'firing' nor 'resolved'"
            )
        if not math.isfinite(self.starts_at):
            raise InvalidNotification(f"alert {name}: starts_at {self.starts_at!r} is not a time")
        if self.status == "resolved" and self.ends_at is None:
            raise InvalidNotification(
                f"alert {name} is resolved but has no ends_at; give the time it resolved"
            )
        if self.ends_at is not None and not math.isfinite(self.ends_at):
            raise InvalidNotification(f"alert {name}: ends_at {self.ends_at!r} is not a time")

    @property
    def alertname(self) -> str:
        return self.labels["alertname"]

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.labels)

    def to_record(self) -> dict[str, Any]:
        """Plain JSON data for the spool; `from_record` reads it back."""
        return {
            "labels": self.labels,
            "annotations": self.annotations,
            "status": self.status,
            "starts_at": self.starts_at,
            "ends_at": self.ends_at,
            "generator_url": self.generator_url,
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> Notification:
        try:
            return cls(
                labels={str(k): str(v) for k, v in record["labels"].items()},
                annotations={str(k): str(v) for k, v in record.get("annotations", {}).items()},
                status=record["status"],
                starts_at=float(record["starts_at"]),
                ends_at=None if record.get("ends_at") is None else float(record["ends_at"]),
                generator_url=str(record.get("generator_url", "")),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise InvalidNotification(f"not a notification record ({e!r}): {record!r}") from e


def format_time(t: float | None) -> str:
    """Unix seconds as Go's RFC3339Nano in UTC (microsecond precision); None is the zero time."""
    if t is None:
        return ZERO_TIME
    micros = round(t * 1_000_000)
    seconds, fraction = divmod(micros, 1_000_000)
    text = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    if fraction:
        text += "." + f"{fraction:06d}".rstrip("0")
    return text + "Z"


_GO_ESCAPES = {
    "\a": "\\a",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\v": "\\v",
    '"': '\\"',
    "\\": "\\\\",
}


def go_quote(s: str) -> str:
    """Go's `strconv.Quote`, which Prometheus uses to print label values."""
    out = ['"']
    for ch in s:
        code = ord(ch)
        if ch in _GO_ESCAPES:
            out.append(_GO_ESCAPES[ch])
        elif ch.isprintable():
            out.append(ch)
        elif code < 0x80:
            out.append(f"\\x{code:02x}")
        elif code < 0x10000:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    out.append('"')
    return "".join(out)


def format_labels(labels: Mapping[str, str]) -> str:
    """A label set in Prometheus notation, `{a="1", b="2"}`, names sorted."""
    return "{" + ", ".join(f"{k}={go_quote(labels[k])}" for k in sorted(labels)) + "}"


def group_key(group_labels: Mapping[str, str], route_key: str = ROOT_ROUTE_KEY) -> str:
    """Alertmanager's group key: which route and which group a message is for."""
    return f"{route_key}:{format_labels(group_labels)}"


_REGEXP_META = frozenset("\\.+*?()|[]{}^$")


def _quote_meta(s: str) -> str:
    """Go's `regexp.QuoteMeta`: Alertmanager sends the receiver name through it."""
    return "".join("\\" + ch if ch in _REGEXP_META else ch for ch in s)


def _common(maps: Sequence[Mapping[str, str]]) -> dict[str, str]:
    common = dict(maps[0])
    for m in maps[1:]:
        common = {k: v for k, v in common.items() if m.get(k) == v}
    return common


def alert_json(n: Notification) -> dict[str, Any]:
    """One entry of the payload's `alerts` list."""
    return {
        "status": n.status,
        "labels": dict(n.labels),
        "annotations": dict(n.annotations),
        "startsAt": format_time(n.starts_at),
        "endsAt": format_time(n.ends_at),
        "generatorURL": n.generator_url,
        "fingerprint": n.fingerprint,
    }


def webhook_payload(
    receiver: str,
    notifications: Sequence[Notification],
    *,
    group_labels: Mapping[str, str] | None = None,
    route_key: str = ROOT_ROUTE_KEY,
    external_url: str = "",
    max_alerts: int = 0,
) -> dict[str, Any]:
    """The JSON document Alertmanager (webhook payload version 4) would POST for this batch.

    `max_alerts` > 0 keeps only the first that many alerts and counts the
    rest in `truncatedAlerts`; as in Alertmanager, status and common labels
    are computed over the alerts that are kept.
    """
    if not notifications:
        raise InvalidNotification(
            f"receiver {receiver}: a webhook message needs at least one alert"
        )
    if max_alerts < 0:
        raise InvalidNotification(f"max_alerts must be 0 (no limit) or more, not {max_alerts}")
    kept = list(notifications[:max_alerts] if max_alerts else notifications)
    groups = dict(group_labels or {})
    return {
        "receiver": _quote_meta(receiver),
        "status": "firing" if any(n.status == "firing" for n in kept) else "resolved",
        "alerts": [alert_json(n) for n in kept],
        "groupLabels": groups,
        "commonLabels": _common([n.labels for n in kept]),
        "commonAnnotations": _common([n.annotations for n in kept]),
        "externalURL": external_url,
        "version": PAYLOAD_VERSION,
        "groupKey": group_key(groups, route_key),
        "truncatedAlerts": len(notifications) - len(kept),
    }
