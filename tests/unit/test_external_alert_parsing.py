"""Alertmanager webhooks into Satellite, pure: what a message is, what it keeps and drops,
and that kept alerts survive in the state document (a kill -9 loses none)."""

from __future__ import annotations

import pytest

from orbiter.satellite.durable_state import SatelliteState, decode, encode
from orbiter.satellite.external_alerts import (
    InvalidWebhook,
    apply_webhook,
    parse_webhook,
    prune,
)


def message(status: str = "firing", **labels: str) -> dict:
    return {
        "version": "4",
        "status": status,
        "alerts": [
            {
                "status": status,
                "labels": {"alertname": "A", **labels},
                "annotations": {"summary": "s"},
                "startsAt": "2026-11-30T08:00:00.123456789Z",
                "endsAt": "2026-11-30T09:00:00Z" if status == "resolved" else
                "0001-01-01T00:00:00Z",
            }
        ],
    }


def test_firing_alerts_are_kept_until_resolved_or_forgotten() -> None:
    kept = apply_webhook({}, parse_webhook(message(agent="S1")), now=100.0)
    (alert,) = kept.values()
    assert dict(alert.labels) == {"alertname": "A", "agent": "S1"}
    assert alert.starts_at == pytest.approx(1_796_025_600.123457)
    assert apply_webhook(kept, parse_webhook(message("resolved", agent="S1")), 101.0) == {}
    assert prune(kept, 100.0 + 3600, ttl=3600) == kept
    assert prune(kept, 100.0 + 3601, ttl=3600) == {}


@pytest.mark.parametrize(
    ("body", "why"),
    [
        ([], "expected a JSON object with an alerts list"),
        ({"alerts": [], "version": "3"}, "version '3'; expected 4"),
        ({"alerts": [1]}, "alerts[0] must be an object"),
        ({"alerts": [{"status": "odd"}]}, "alerts[0].status must be firing or resolved"),
        ({"alerts": [{"status": "firing", "labels": {"a": 1}}]}, "string values"),
        ({"alerts": [{"status": "firing", "labels": {"a": "b"}}]}, "has no alertname"),
        ({"alerts": [{"status": "firing", "labels": {"alertname": "A"},
                      "startsAt": "yesterday"}]}, "not an RFC 3339 time"),
    ],
)  # fmt: skip
def test_what_is_not_a_webhook_message_says_why(body: object, why: str) -> None:
    with pytest.raises(InvalidWebhook) as e:
        parse_webhook(body)
    assert why in str(e.value)


def test_kept_alerts_are_in_the_state_document() -> None:
    kept = apply_webhook({}, parse_webhook(message(agent="S1", action="drain")), now=100.0)
    state = SatelliteState(external=tuple(kept.values()))
    assert decode(encode(state)).external == state.external
    older = encode(SatelliteState()).replace(b',"external":[]', b"")
    assert b"external" not in older and decode(older).external == ()
