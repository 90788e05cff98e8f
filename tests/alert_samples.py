"""Sample alerts and the webhook message they make, for the receivers' tests."""

from __future__ import annotations

from typing import Any

from orbiter.alerts.payload import Notification, webhook_payload

T0 = 1_700_000_000.0


def alert(name: str, status: str = "firing", **labels: str) -> Notification:
    """`name` firing (or resolved a minute later) at T0, with a summary and a source link."""
    return Notification(
        labels={"alertname": name, **labels},
        annotations={"summary": f"{name} on {labels.get('instance', '?')}"},
        status=status,  # type: ignore[arg-type]
        starts_at=T0,
        ends_at=T0 + 60 if status == "resolved" else None,
        generator_url=f"http://satellite:9090/graph?g0.expr={name}",
    )


def message(*alerts: Notification) -> dict[str, Any]:
    """The group message receiver `ops` gets for `alerts`, grouped by alertname."""
    return webhook_payload("ops", alerts, group_labels={"alertname": alerts[0].alertname})
