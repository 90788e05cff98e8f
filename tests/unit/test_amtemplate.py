"""Notification templates see Alertmanager's data and give Alertmanager's kind of text."""

from __future__ import annotations

import re
from typing import Any

import pytest

from orbiter.alerts.amtemplate import (
    KV,
    TemplateError,
    TemplateExecError,
    check_templates,
    default_templates,
    defaults,
    template_data,
)
from orbiter.alerts.payload import Notification, webhook_payload
from orbiter.alerts.receiver_configs import EmailConfig, ReceiverConfig, SlackConfig

T0 = 1_700_000_000.0


def alert(
    name: str, status: str = "firing", annotations: dict[str, str] | None = None, **labels: str
) -> Notification:
    return Notification(
        labels={"alertname": name, **labels},
        annotations=annotations if annotations is not None else {"summary": f"{name} happened"},
        status=status,  # type: ignore[arg-type]
        starts_at=T0,
        ends_at=T0 + 60 if status == "resolved" else None,
        generator_url=f"http://satellite:9090/graph?g0.expr={name}",
    )


def message(*alerts: Notification, group: dict[str, str] | None = None) -> dict[str, Any]:
    return webhook_payload(
        "team.ops", alerts, group_labels=group or {}, external_url="http://orbiter:5050"
    )


def render(text: str, msg: dict[str, Any], *, html: bool = False) -> str:
    return defaults().render(text, "test", template_data(msg), html=html)


SUBJECT = '{{ template "email.default.subject" . }}'


@pytest.mark.parametrize(
    ("alerts", "group", "subject"),
    [
        # group labels' values, then the other common labels' values in brackets
        (
            [alert("HighLatency", job="api", env="prod", instance="a")],
            {"alertname": "HighLatency"},
            "[FIRING:1] HighLatency (prod a api)",
        ),
        (
            [
                alert("HighLatency", job="api", instance="a"),
                alert("HighLatency", job="api", instance="b"),
            ],
            {"alertname": "HighLatency"},
            "[FIRING:2] HighLatency (api)",
        ),
        # nothing common beyond the group: no brackets
        (
            [alert("A", instance="a"), alert("B", instance="b")],
            {},
            "[FIRING:2]",
        ),
        # the count is of firing alerts only
        (
            [alert("A", job="x"), alert("A", "resolved", job="x", i="2")],
            {"alertname": "A"},
            "[FIRING:1] A (x)",
        ),
        # no group labels: every common value, alertname first
        ([alert("DiskFull", job="node")], {}, "[FIRING:1] (DiskFull node)"),
        (
            [alert("A", "resolved", job="x")],
            {"alertname": "A", "job": "x"},
            "[RESOLVED] A x",
        ),
    ],
)
def test_default_subject_reads_like_alertmanagers(
    alerts: list[Notification], group: dict[str, str], subject: str
) -> None:
    assert render(SUBJECT, message(*alerts, group=group)) == subject


def test_kv_sorts_alertname_first_then_by_name() -> None:
    kv = KV({"zone": "z", "alertname": "A", "job": "j"})
    assert kv.Names() == ["alertname", "job", "zone"]
    assert kv.Values() == ["A", "j", "z"]
    assert kv.Remove(["job"]) == {"zone": "z", "alertname": "A"}
    assert kv.SortedPairs().go_string() == "alertname=A, job=j, zone=z"


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        (
            "{{ .Receiver }} {{ .Status }} {{ .ExternalURL }}",
            "team\\.ops firing http://orbiter:5050",
        ),
        ("{{ len .Alerts }}/{{ len .Alerts.Firing }}/{{ len .Alerts.Resolved }}", "2/1/1"),
        ("{{ .CommonLabels }}", "alertname=A, job=x"),
        ('{{ .CommonLabels.Names.Join "," }}', "alertname,job"),
        ('{{ join " " (.CommonLabels.Remove .GroupLabels.Names).Values }}', "x"),
        ('{{ with .CommonLabels.Remove (stringSlice "job") }}{{ .Values }}{{ end }}', "[A]"),
        (
            "{{ range .Alerts.Resolved }}{{ .Labels.i }} {{ .EndsAt }}{{ end }}",
            "2 2023-11-14 22:14:20 +0000 UTC",
        ),
        (
            "{{ range .Alerts }}{{ .Labels.missing }}{{ .Status | toUpper }},{{ end }}",
            "FIRING,RESOLVED,",
        ),
        (
            "{{ range .CommonLabels.SortedPairs }}{{ .Name }}={{ .Value }};{{ end }}",
            "alertname=A;job=x;",
        ),
        ("{{ (index .Alerts 0).Fingerprint | len }}", "16"),
        ('{{ define "mine" }}<{{ .Status }}>{{ end }}{{ template "mine" . }}', "<firing>"),
        ('{{ .GroupLabels.alertname | title }} {{ trimSpace "  x " }}', "A x"),
    ],
)
def test_templates_see_alertmanagers_data(template: str, expected: str) -> None:
    msg = message(
        alert("A", job="x"), alert("A", "resolved", job="x", i="2"), group={"alertname": "A"}
    )
    assert render(template, msg) == expected


def test_html_bodies_escape_values_unless_marked_safe() -> None:
    msg = message(alert("A", annotations={"summary": "<b>x</b> & y"}))
    assert render("{{ .CommonAnnotations.summary }}", msg, html=True) == (
        "&lt;b&gt;x&lt;/b&gt; &amp; y"
    )
    assert render("{{ .CommonAnnotations.summary | safeHtml }}", msg, html=True) == "<b>x</b> & y"
    assert render("{{ .CommonAnnotations.summary }}", msg) == "<b>x</b> & y"


def test_default_bodies_list_every_alert_with_labels_annotations_and_source() -> None:
    msg = message(
        alert("HighLatency", job="api", instance="a:1"),
        alert("DiskFull", "resolved", job="node", instance="b:2"),
    )
    text = render('{{ template "email.default.text" . }}', msg)
    html = render('{{ template "email.default.html" . }}', msg, html=True)
    for body in (text, html):
        for value in ("HighLatency", "a:1", "api", "DiskFull", "b:2", "node", "happened"):
            assert value in body
        assert "http://satellite:9090/graph?g0.expr=HighLatency" in body
    assert "1 firing" in text and "1 resolved" in text
    assert text.index("HighLatency") < text.index("1 resolved") < text.index("DiskFull")
    assert html.startswith("<!DOCTYPE html>")


def test_a_file_of_templates_can_override_a_default() -> None:
    tset = default_templates()
    tset.add('{{ define "email.default.subject" }}ALERT {{ .Status }}{{ end }}', "mine.tmpl")
    msg = message(alert("A"))
    assert tset.render(SUBJECT, "s", template_data(msg)) == "ALERT firing"
    assert render(SUBJECT, msg).startswith("[FIRING:1]")  # the shared defaults are untouched


@pytest.mark.parametrize(
    ("template", "error"),
    [
        ("{{ .Status", "unclosed action"),
        ("{{ nosuchfunc . }}", 'function "nosuchfunc" not defined'),
        ('{{ template "nosuch" . }}', 'no such template "nosuch"'),
        ("{{ if .Status }}", "unexpected EOF"),
        ("{{ $x }}", 'undefined variable "$x"'),
        ('{{ query "up" }}', 'function "query" not defined'),  # Prometheus's, not Alertmanager's
    ],
)
def test_templates_that_do_not_parse_are_refused_with_the_reason(template: str, error: str) -> None:
    with pytest.raises(TemplateError, match=re.escape(error)):
        defaults().parse(template, "t")


def test_templates_that_fail_while_running_raise_exec_errors() -> None:
    with pytest.raises(TemplateExecError, match="can't evaluate field Nope"):
        render("{{ .Nope }}", message(alert("A")))
    with pytest.raises(TemplateExecError, match="wrong number of args for Remove"):
        render("{{ .CommonLabels.Remove }}", message(alert("A")))


def test_check_templates_names_the_receiver_field_and_mistake() -> None:
    good = ReceiverConfig(
        name="ops",
        email_configs=(
            EmailConfig(
                to="a@x",
                from_="b@x",
                smarthost=("localhost", 25),
                headers=(("Subject", "{{ .Status }}"),),
            ),
        ),
        slack_configs=(
            SlackConfig(api_url="http://x", title='{{ template "slack.default.title" . }}'),
        ),
    )
    check_templates(good)
    bad = ReceiverConfig(
        name="ops",
        slack_configs=(
            SlackConfig(api_url="http://x"),
            SlackConfig(api_url="http://x", text="{{ range .Alerts }}"),
        ),
    )
    with pytest.raises(
        ValueError, match=r"receiver ops: slack_configs\[1\]\.text: .*unexpected EOF"
    ):
        check_templates(bad)
    bad_header = ReceiverConfig(
        name="mail",
        email_configs=(
            EmailConfig(
                to="a@x",
                from_="b@x",
                smarthost=("h", 25),
                headers=(("Subject", "{{ .X | nope }}"),),
            ),
        ),
    )
    with pytest.raises(ValueError, match=r"email_configs\[0\]\.headers\.Subject: .*nope"):
        check_templates(bad_header)


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        (
            '{{ (index .Alerts 0).StartsAt.Format "2006-01-02T15:04:05Z07:00" }}',
            "2023-11-14T22:13:20Z",
        ),
        (
            '{{ date "Mon Jan _2 3:04PM MST 2006" (index .Alerts 0).StartsAt }}',
            "Tue Nov 14 10:13PM UTC 2023",
        ),
        (
            '{{ (index .Alerts 0).StartsAt | tz "Europe/Berlin" | date "02.01.06 15:04 MST" }}',
            "14.11.23 23:13 CET",
        ),
        (
            "{{ (index .Alerts 0).EndsAt.IsZero }} {{ (index .Alerts 0).StartsAt.Unix }}",
            "true 1700000000",
        ),
    ],
)
def test_times_format_with_go_layouts(template: str, expected: str) -> None:
    assert render(template, message(alert("A"))) == expected


def test_an_unknown_time_zone_fails_with_its_name() -> None:
    with pytest.raises(TemplateExecError, match="Mars/Olympus"):
        render('{{ (index .Alerts 0).StartsAt | tz "Mars/Olympus" }}', message(alert("A")))
