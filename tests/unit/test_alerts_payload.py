"""The webhook payload is Alertmanager's version 4, field for field; fingerprints are Prometheus's.

Expected values come from Alertmanager's and prometheus/common's own sources:
the fingerprint test vectors are those of `model.labelSetToFingerprint`'s
tests, the field names those of `template.Data` / `template.Alert` and
`webhook.Message`.
"""

from __future__ import annotations

import json
from datetime import datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orbiter.alerts.notify import Outcome, backoff_delay, classify, retry_after, update_active
from orbiter.alerts.payload import (
    ZERO_TIME,
    InvalidNotification,
    Notification,
    fingerprint,
    format_labels,
    format_time,
    group_key,
    webhook_payload,
)

T0 = 1_700_000_000.0  # 2023-11-14T22:13:20Z


def firing(name: str = "AgentDown", **labels: str) -> Notification:
    return Notification(
        labels={"alertname": name, **labels},
        annotations={"summary": f"{name} on {labels.get('agent', '?')}"},
        status="firing",
        starts_at=T0,
        generator_url="http://satellite:5050/graph?g0.expr=up",
    )


def resolved(name: str = "AgentDown", **labels: str) -> Notification:
    return Notification(
        labels={"alertname": name, **labels},
        annotations={"summary": f"{name} on {labels.get('agent', '?')}"},
        status="resolved",
        starts_at=T0,
        ends_at=T0 + 90.25,
    )


# ---------------------------------------------------------------------- payload shape


def test_firing_payload_has_every_alertmanager_v4_field():
    payload = webhook_payload(
        "ops", [firing(agent="a1", severity="page")], external_url="http://orbiter:5050"
    )
    assert set(payload) == {
        "version",
        "groupKey",
        "truncatedAlerts",
        "status",
        "receiver",
        "groupLabels",
        "commonLabels",
        "commonAnnotations",
        "externalURL",
        "alerts",
    }
    assert payload["version"] == "4"
    assert payload["status"] == "firing"
    assert payload["receiver"] == "ops"
    assert payload["externalURL"] == "http://orbiter:5050"
    assert payload["truncatedAlerts"] == 0
    assert payload["groupKey"] == "{}:{}"
    [alert] = payload["alerts"]
    assert alert == {
        "status": "firing",
        "labels": {"alertname": "AgentDown", "agent": "a1", "severity": "page"},
        "annotations": {"summary": "AgentDown on a1"},
        "startsAt": "2023-11-14T22:13:20Z",
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://satellite:5050/graph?g0.expr=up",
        "fingerprint": fingerprint({"alertname": "AgentDown", "agent": "a1", "severity": "page"}),
    }
    json.dumps(payload)  # plain JSON all the way down


def test_resolved_payload_carries_end_time_and_status_resolved():
    payload = webhook_payload("ops", [resolved(agent="a1"), resolved(agent="a2")])
    assert payload["status"] == "resolved"
    assert [a["status"] for a in payload["alerts"]] == ["resolved", "resolved"]
    assert {a["endsAt"] for a in payload["alerts"]} == {"2023-11-14T22:14:50.25Z"}


def test_message_is_firing_while_any_alert_in_it_fires():
    payload = webhook_payload("ops", [resolved(agent="a1"), firing(agent="a2")])
    assert payload["status"] == "firing"
    assert [a["status"] for a in payload["alerts"]] == ["resolved", "firing"]


def test_common_labels_and_annotations_are_the_pairs_every_alert_shares():
    a = Notification(
        labels={"alertname": "DiskFull", "agent": "a1", "severity": "page"},
        annotations={"runbook": "r/disk", "summary": "a1 full"},
        status="firing",
        starts_at=T0,
    )
    b = Notification(
        labels={"alertname": "DiskFull", "agent": "a2", "severity": "page"},
        annotations={"runbook": "r/disk", "summary": "a2 full"},
        status="firing",
        starts_at=T0,
    )
    c = Notification(
        labels={"alertname": "DiskFull", "agent": "a3"},
        annotations={"runbook": "r/disk"},
        status="firing",
        starts_at=T0,
    )
    assert webhook_payload("ops", [a, b])["commonLabels"] == {
        "alertname": "DiskFull",
        "severity": "page",
    }
    assert webhook_payload("ops", [a, b])["commonAnnotations"] == {"runbook": "r/disk"}
    assert webhook_payload("ops", [a, b, c])["commonLabels"] == {"alertname": "DiskFull"}
    assert webhook_payload("ops", [a])["commonLabels"] == a.labels


def test_unrelated_alerts_share_no_labels():
    payload = webhook_payload("ops", [firing("AgentDown"), firing("DiskFull")])
    assert payload["commonLabels"] == {}
    assert payload["commonAnnotations"] == {}


def test_group_labels_go_into_the_payload_and_the_group_key():
    payload = webhook_payload(
        "ops", [firing(agent="a1")], group_labels={"alertname": "AgentDown", "agent": "a1"}
    )
    assert payload["groupLabels"] == {"alertname": "AgentDown", "agent": "a1"}
    assert payload["groupKey"] == '{}:{agent="a1", alertname="AgentDown"}'


def test_group_key_quotes_values_like_prometheus():
    assert group_key({"msg": 'say "hi"\n', "a": "\\"}, route_key='{}/{team="db"}') == (
        '{}/{team="db"}:{a="\\\\", msg="say \\"hi\\"\\n"}'
    )
    assert format_labels({}) == "{}"
    assert format_labels({"x": "\x01é"}) == '{x="\\x01é"}'


def test_receiver_name_is_regexp_quoted_as_alertmanager_does():
    assert webhook_payload("team.ops+db", [firing()])["receiver"] == "team\\.ops\\+db"


def test_max_alerts_truncates_and_counts_the_rest():
    batch = [
        firing(agent="a1", severity="page"),
        firing(agent="a2", severity="page"),
        resolved(agent="a3"),
    ]
    payload = webhook_payload("ops", batch, max_alerts=2)
    assert [a["labels"]["agent"] for a in payload["alerts"]] == ["a1", "a2"]
    assert payload["truncatedAlerts"] == 1
    # computed over the alerts kept, as Alertmanager does
    assert payload["commonLabels"] == {"alertname": "AgentDown", "severity": "page"}


def test_empty_batch_is_refused():
    with pytest.raises(InvalidNotification, match="at least one alert"):
        webhook_payload("ops", [])


# ---------------------------------------------------------------------- times


@pytest.mark.parametrize(
    ("t", "text"),
    [
        (None, ZERO_TIME),
        (0.0, "1970-01-01T00:00:00Z"),
        (T0, "2023-11-14T22:13:20Z"),
        (T0 + 0.5, "2023-11-14T22:13:20.5Z"),
        (T0 + 0.123, "2023-11-14T22:13:20.123Z"),
        (T0 + 0.000001, "2023-11-14T22:13:20.000001Z"),
        (T0 + 59.9999999, "2023-11-14T22:14:20Z"),  # rounds to the microsecond
    ],
)
def test_times_are_rfc3339_utc_with_the_fraction_trimmed(t, text):
    assert format_time(t) == text


@given(st.floats(min_value=0, max_value=4_000_000_000, allow_nan=False))
def test_formatted_times_parse_back_to_the_same_instant(t):
    text = format_time(t)
    assert text.endswith("Z")
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    assert abs(parsed - t) <= 1e-6 + 1e-9 * abs(t)


# ---------------------------------------------------------------------- fingerprint


def test_fingerprint_matches_prometheus_test_vectors():
    # prometheus/common model: labelSetToFingerprint({}) = 14695981039346656037 and
    # {name: "garland, briggs", fear: "love is not enough"} = 5799056148416392346
    assert fingerprint({}) == f"{14695981039346656037:016x}"
    assert fingerprint({"name": "garland, briggs", "fear": "love is not enough"}) == (
        f"{5799056148416392346:016x}"
    )


labelsets = st.dictionaries(
    st.text(st.characters(codec="utf-8"), min_size=1, max_size=8),
    st.text(st.characters(codec="utf-8"), max_size=8),
    max_size=6,
)


@settings(max_examples=40)
@given(labelsets, st.randoms())
def test_fingerprint_depends_on_the_label_set_not_its_order(labels, rnd):
    items = list(labels.items())
    rnd.shuffle(items)
    fp = fingerprint(labels)
    assert fingerprint(dict(items)) == fp
    assert len(fp) == 16 and fp == fp.lower() and int(fp, 16) >= 0


@settings(max_examples=40)
@given(labelsets, st.text(min_size=1, max_size=4))
def test_changing_a_value_changes_the_fingerprint(labels, extra):
    labels = {**labels, "k": "v"}
    assert fingerprint({**labels, "k": "v" + extra}) != fingerprint(labels)


def test_name_value_boundaries_matter():
    assert fingerprint({"a": "bc"}) != fingerprint({"ab": "c"})


def test_notification_fingerprint_ignores_status_and_times():
    assert firing(agent="a1").fingerprint == resolved(agent="a1").fingerprint
    assert firing(agent="a1").fingerprint != firing(agent="a2").fingerprint


# ---------------------------------------------------------------------- notifications


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"labels": {"agent": "a1"}, "status": "firing", "starts_at": T0}, "alertname"),
        ({"labels": {"alertname": "X"}, "status": "pending", "starts_at": T0}, "neither"),
        ({"labels": {"alertname": "X"}, "status": "resolved", "starts_at": T0}, "no ends_at"),
        (
            {"labels": {"alertname": "X"}, "status": "firing", "starts_at": float("nan")},
            "not a time",
        ),
    ],
)
def test_invalid_notifications_are_refused_with_a_reason(kwargs, message):
    with pytest.raises(InvalidNotification, match=message):
        Notification(**kwargs)


def test_notification_keeps_its_own_copy_of_labels():
    labels = {"alertname": "X"}
    n = Notification(labels=labels, status="firing", starts_at=T0)
    labels["alertname"] = "Y"
    assert n.alertname == "X"


notifications = st.builds(
    Notification,
    labels=labelsets.map(lambda d: {**d, "alertname": "A"}),
    annotations=labelsets,
    status=st.just("firing"),
    starts_at=st.floats(0, 4e9),
    ends_at=st.none() | st.floats(0, 4e9),
    generator_url=st.text(max_size=10),
)


@settings(max_examples=40)
@given(notifications)
def test_spool_records_read_back_equal(n):
    assert Notification.from_record(json.loads(json.dumps(n.to_record()))) == n


def test_a_record_that_is_not_a_notification_is_refused():
    with pytest.raises(InvalidNotification, match="not a notification record"):
        Notification.from_record({"labels": "x"})


# ---------------------------------------------------------------------- delivery decisions


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (200, Outcome.DELIVERED),
        (202, Outcome.DELIVERED),
        (204, Outcome.DELIVERED),
        (500, Outcome.RETRY),
        (502, Outcome.RETRY),
        (503, Outcome.RETRY),
        (429, Outcome.RETRY),
        (408, Outcome.RETRY),
        (400, Outcome.DROP),
        (401, Outcome.DROP),
        (404, Outcome.DROP),
        (413, Outcome.DROP),
        (301, Outcome.DROP),
    ],
)
def test_http_status_decides_deliver_retry_or_drop(status, outcome):
    assert classify(status) is outcome


def test_backoff_doubles_up_to_the_cap():
    delays = [backoff_delay(i, 0.5, 60.0, jitter=0.0) for i in range(10)]
    assert delays == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0, 60.0]


@given(st.integers(0, 10_000), st.floats(0.001, 10), st.floats(1, 100), st.floats(0, 0.999))
def test_backoff_with_jitter_stays_between_half_and_full_delay(attempt, lo, hi, jitter):
    full = backoff_delay(attempt, lo, hi, 0.0)
    assert full <= hi
    assert full / 2 <= backoff_delay(attempt, lo, hi, jitter) <= full


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("", None),
        ("3", 3.0),
        ("1000", 60.0),
        ("-1", 0.0),
        ("Wed, 21 Oct 2015 07:28:00 GMT", None),
    ],
)
def test_retry_after_seconds_are_honoured_up_to_the_cap(header, expected):
    assert retry_after(header, 60.0) == expected


def test_active_alerts_follow_firing_and_resolved():
    active = update_active({}, [firing(agent="a1"), firing(agent="a2")])
    assert sorted(n.labels["agent"] for n in active.values()) == ["a1", "a2"]
    active = update_active(active, [resolved(agent="a1"), resolved(agent="a9")])
    assert [n.labels["agent"] for n in active.values()] == ["a2"]
