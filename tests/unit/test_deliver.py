"""What each integration is sent: filtering, truncation, Slack JSON and the email's MIME form."""

from __future__ import annotations

import base64
import email
import email.policy
import re
from email.message import EmailMessage
from typing import Any

import pytest

from orbiter.alerts.amtemplate import defaults
from orbiter.alerts.deliver import (
    DeliveryFailed,
    auth_headers,
    deliver,
    integration_message,
    ssl_context,
)
from orbiter.alerts.email import build_email
from orbiter.alerts.receiver_configs import (
    BasicAuth,
    EmailConfig,
    HTTPConfig,
    ReceiverConfig,
    SlackConfig,
    TLSConfig,
    WebhookConfig,
)
from orbiter.alerts.slack import slack_message
from tests.alert_samples import T0, alert, message

# ---------------------------------------------------------------------- shaping


def test_send_resolved_false_leaves_resolved_alerts_out_and_recomputes_the_summary() -> None:
    msg = message(
        alert("A", "resolved", job="x", instance="1"),
        alert("A", job="x", instance="2"),
        alert("A", job="x", instance="3"),
    )
    out = integration_message(msg, send_resolved=False)
    assert out is not None
    assert [a["labels"]["instance"] for a in out["alerts"]] == ["2", "3"]
    assert out["status"] == "firing"
    assert out["commonLabels"] == {"alertname": "A", "job": "x"}
    assert out["commonAnnotations"] == {}
    assert out["groupKey"] == msg["groupKey"] and out["receiver"] == "ops"


def test_a_message_with_only_resolved_alerts_is_not_sent_without_send_resolved() -> None:
    msg = message(alert("A", "resolved", instance="1"))
    assert integration_message(msg, send_resolved=False) is None
    kept = integration_message(msg, send_resolved=True)
    assert kept is not None and kept["status"] == "resolved"
    assert kept["commonAnnotations"] == {"summary": "A on 1"}


@pytest.mark.parametrize(
    ("max_alerts", "sent", "truncated"),
    [(0, 3, 0), (1, 1, 2), (2, 2, 1), (3, 3, 0), (10, 3, 0)],
)
def test_max_alerts_keeps_the_first_alerts_and_counts_the_rest(
    max_alerts: int, sent: int, truncated: int
) -> None:
    msg = message(*(alert("A", instance=str(i)) for i in range(3)))
    out = integration_message(msg, send_resolved=True, max_alerts=max_alerts)
    assert out is not None
    assert [a["labels"]["instance"] for a in out["alerts"]] == [str(i) for i in range(sent)]
    assert out["truncatedAlerts"] == truncated
    assert msg["truncatedAlerts"] == 0 and len(msg["alerts"]) == 3  # the input is untouched


def test_status_and_common_labels_describe_the_alerts_kept_after_truncation() -> None:
    msg = message(alert("A", "resolved", instance="1"), alert("A", instance="2"))
    out = integration_message(msg, send_resolved=True, max_alerts=1)
    assert out is not None
    assert out["status"] == "resolved"
    assert out["commonLabels"] == {"alertname": "A", "instance": "1"}


# ---------------------------------------------------------------------- HTTP bits


@pytest.mark.parametrize(
    ("http", "header"),
    [
        (HTTPConfig(), None),
        (HTTPConfig(bearer_token="tok"), "Bearer tok"),
        (
            HTTPConfig(basic_auth=BasicAuth("user", "p:ss")),
            "Basic " + base64.b64encode(b"user:p:ss").decode(),
        ),
    ],
)
def test_http_config_becomes_an_authorization_header(http: HTTPConfig, header: str | None) -> None:
    assert auth_headers(http).get("Authorization") == header


def test_an_unreadable_ca_file_is_a_config_error_not_worth_retrying() -> None:
    with pytest.raises(DeliveryFailed, match=re.escape("ca_file='/nonexistent/ca.pem'")) as e:
        ssl_context(TLSConfig(ca_file="/nonexistent/ca.pem"), "receiver r: webhook_configs[0]")
    assert not e.value.retryable


async def test_deliver_raises_only_delivery_failed_and_tries_every_integration() -> None:
    # Nothing listens on port 9 of 127.0.0.1 (discard); a refused connection is retryable.
    receiver = ReceiverConfig(
        name="r",
        webhook_configs=(
            WebhookConfig(url="http://127.0.0.1:9/a"),
            WebhookConfig(
                url="https://127.0.0.1:9/b",
                http_config=HTTPConfig(tls_config=TLSConfig(ca_file="/nonexistent")),
            ),
        ),
    )
    with pytest.raises(DeliveryFailed) as e:
        await deliver(receiver, message(alert("A")))
    assert e.value.retryable  # one of the two could succeed later
    assert [f.retryable for f in e.value.failures] == [True, False]
    assert "webhook_configs[0]" in str(e.value) and "webhook_configs[1]" in str(e.value)


async def test_deliver_turns_a_malformed_message_into_delivery_failed() -> None:
    receiver = ReceiverConfig(name="r", webhook_configs=(WebhookConfig(url="http://127.0.0.1:9/"),))
    with pytest.raises(DeliveryFailed) as e:
        await deliver(receiver, {"alerts": "not a list"})
    assert not e.value.retryable


async def test_nothing_to_send_is_not_a_failure() -> None:
    receiver = ReceiverConfig(name="r", slack_configs=(SlackConfig(api_url="http://127.0.0.1:9/"),))
    await deliver(receiver, message(alert("A", "resolved")))  # send_resolved is false


# ---------------------------------------------------------------------- Slack


def test_slack_message_has_alertmanagers_shape_and_defaults() -> None:
    msg = message(
        alert("HighLatency", job="api", instance="a"), alert("HighLatency", job="api", instance="b")
    )
    doc = slack_message(SlackConfig(api_url="http://x", channel="#ops"), msg, defaults())
    assert doc["channel"] == "#ops"
    assert doc["username"] == "Orbiter"
    (att,) = doc["attachments"]
    assert att["title"] == "[FIRING:2] HighLatency (api)"
    assert att["color"] == "danger"
    assert att["fallback"] == "[FIRING:2] HighLatency (api)"
    assert "*HighLatency* firing: HighLatency on a" in att["text"]
    assert att["mrkdwn_in"] == ["fallback", "pretext", "text"]


def test_slack_title_text_and_username_are_templates() -> None:
    msg = message(alert("A", "resolved", instance="1"))
    cfg = SlackConfig(
        api_url="http://x",
        username="bot-{{ .Receiver }}",
        title="{{ .Status | toUpper }}: {{ .CommonLabels.alertname }}",
        text="{{ range .Alerts }}{{ .Labels.instance }}{{ end }}",
        channel="",
    )
    doc = slack_message(cfg, msg, defaults())
    assert "channel" not in doc
    assert doc["username"] == "bot-ops"
    assert doc["attachments"][0] | {} == {
        "title": "RESOLVED: A",
        "text": "1",
        "fallback": "[RESOLVED] A (1)",
        "color": "good",
        "mrkdwn_in": ["fallback", "pretext", "text"],
    }


# ---------------------------------------------------------------------- email


def email_config(**kw: Any) -> EmailConfig:
    return EmailConfig(
        **{
            "to": "ops@example.com, Oncall <oncall@example.com>",
            "from_": "orbiter@example.com",
            "smarthost": ("localhost", 25),
            **kw,
        }
    )


def parse(raw: EmailMessage) -> EmailMessage:
    msg = email.message_from_bytes(raw.as_bytes(), policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    return msg


def test_email_is_multipart_alternative_with_text_then_html_and_the_usual_headers() -> None:
    msg = message(
        alert("DiskFull", job="node", instance="a"), alert("DiskFull", job="node", instance="b")
    )
    env = build_email(email_config(), msg, defaults(), hostname="sat1", now=T0)
    assert env.sender == "orbiter@example.com"
    assert env.recipients == ("ops@example.com", "oncall@example.com")
    m = parse(env.message)
    assert m["Subject"] == "[FIRING:2] DiskFull (node)"
    assert m["To"] == "ops@example.com, Oncall <oncall@example.com>"
    assert m["From"] == "orbiter@example.com"
    assert m["Message-Id"].endswith("@sat1>")
    assert m["Date"] == "Tue, 14 Nov 2023 22:13:20 -0000"
    assert m.get_content_type() == "multipart/alternative"
    parts = list(m.iter_parts())
    assert [p.get_content_type() for p in parts] == ["text/plain", "text/html"]
    assert all(p["Content-Transfer-Encoding"] == "quoted-printable" for p in parts)
    for p in parts:
        body = p.get_content()
        assert "DiskFull on a" in body and "DiskFull on b" in body
        assert "http://satellite:9090/graph?g0.expr=DiskFull" in body


def test_email_headers_from_the_config_are_templates_and_override_the_defaults() -> None:
    cfg = email_config(
        headers=(
            ("subject", "Alert: {{ .CommonLabels.alertname }} ✓"),
            ("X-Team", "{{ .Receiver }}"),
        ),
        text="plain {{ len .Alerts }}",
        html="<p>{{ .CommonAnnotations.summary }}</p>",
    )
    m = parse(build_email(cfg, message(alert("A<B", instance="x")), defaults()).message)
    assert m["Subject"] == "Alert: A<B ✓"
    assert m["X-Team"] == "ops"
    text, html = (p.get_content() for p in m.iter_parts())
    assert text.strip() == "plain 1"
    assert html.strip() == "<p>A&lt;B on x</p>"


def test_an_email_without_a_valid_from_address_is_refused_before_connecting() -> None:
    with pytest.raises(DeliveryFailed, match="from") as e:
        build_email(email_config(from_="nobody"), message(alert("A")), defaults())
    assert not e.value.retryable


async def test_a_template_that_fails_at_send_time_is_not_retryable() -> None:
    receiver = ReceiverConfig(
        name="r", slack_configs=(SlackConfig(api_url="http://127.0.0.1:9/", title="{{ .Nope }}"),)
    )
    with pytest.raises(DeliveryFailed, match=r"slack_configs\[0\]: template failed: .*Nope") as e:
        await deliver(receiver, message(alert("A")))
    assert not e.value.retryable
