"""Alerts from outside: an Alertmanager's webhook, so sites that already run Prometheus
can have their alerts act on agents through Satellite's safety policy.

An operator adds Satellite as a webhook receiver in their own Alertmanager
(`url: http://MASTER:5051/api/v1/satellite/alertmanager`, `send_resolved: true`,
the default). Each message's firing alerts are kept (in Satellite's durable state,
before the webhook is answered) until a message says they resolved, or until
`ttl` passes with no word about them (an Alertmanager that went away must not
hold an agent out for ever; keep its repeat_interval below the ttl). While
kept, an alert with an `action` label (deactivate|drain) and an `agent` label
is an action request like one of Satellite's own rules: the same policy, limits
and audit trail decide on it.

Pure: the shell hands in the parsed payload and the clock.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from typing import Any

from orbiter.alerts.payload import Notification, fingerprint
from orbiter.errors import OrbiterError
from orbiter.satellite.durable_state import ExternalAlert
from orbiter.satellite.series import labels_of

DEFAULT_TTL = 24 * 3600.0


class InvalidWebhook(OrbiterError):
    """A webhook body that is not Alertmanager's (version 4); nothing was changed."""


def _time(text: Any, where: str) -> float | None:
    if not isinstance(text, str):
        raise InvalidWebhook(f"{where} must be an RFC 3339 time string")
    if text.startswith("0001-01-01"):
        return None  # Go's zero time: not set
    trimmed = re.sub(r"(\.\d{6})\d+", r"\1", text).replace("Z", "+00:00")
    try:
        return dt.datetime.fromisoformat(trimmed).timestamp()
    except ValueError:
        raise InvalidWebhook(f"{where}: {text!r} is not an RFC 3339 time") from None


def _strings(value: Any, where: str) -> dict[str, str]:
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise InvalidWebhook(f"{where} must be an object of string values")
    return dict(value)


def parse_webhook(body: Any) -> list[Notification]:
    """The alerts of an Alertmanager webhook message (payload version 4)."""
    if not isinstance(body, dict) or not isinstance(body.get("alerts"), list):
        raise InvalidWebhook(
            "not an Alertmanager webhook message: expected a JSON object with an alerts list "
            "(configure this URL as a webhook_configs receiver in Alertmanager)"
        )
    if str(body.get("version", "4")) != "4":
        raise InvalidWebhook(f"webhook payload version {body.get('version')!r}; expected 4")
    out = []
    for i, a in enumerate(body["alerts"]):
        where = f"alerts[{i}]"
        if not isinstance(a, dict):
            raise InvalidWebhook(f"{where} must be an object")
        status = a.get("status")
        if status not in ("firing", "resolved"):
            raise InvalidWebhook(f"{where}.status must be firing or resolved, got {status!r}")
        labels = _strings(a.get("labels"), f"{where}.labels")
        if not labels.get("alertname"):
            raise InvalidWebhook(f"{where}.labels has no alertname")
        starts = _time(a.get("startsAt", ""), f"{where}.startsAt")
        ends = _time(a.get("endsAt", "0001-01-01T00:00:00Z"), f"{where}.endsAt")
        if starts is None:
            raise InvalidWebhook(f"{where}.startsAt is not set")
        out.append(
            Notification(
                labels=labels,
                annotations=_strings(a.get("annotations", {}), f"{where}.annotations"),
                status=status,
                starts_at=starts,
                ends_at=ends if status == "resolved" else None,
                generator_url=str(a.get("generatorURL", "")),
            )
        )
    return out


def apply_webhook(
    current: Mapping[str, ExternalAlert], alerts: list[Notification], now: float
) -> dict[str, ExternalAlert]:
    """Kept external alerts by fingerprint after a message: firing in, resolved out."""
    out = dict(current)
    for n in alerts:
        fp = fingerprint(n.labels)
        if n.status == "resolved":
            out.pop(fp, None)
        else:
            out[fp] = ExternalAlert(
                labels_of(n.labels), tuple(sorted(n.annotations.items())), n.starts_at, now
            )
    return out


def prune(current: Mapping[str, ExternalAlert], now: float, ttl: float) -> dict[str, ExternalAlert]:
    """Drop alerts no message has mentioned for `ttl` seconds."""
    return {fp: a for fp, a in current.items() if now - a.received_at <= ttl}
