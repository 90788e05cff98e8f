"""Reading Alertmanager's configuration: what is read, defaults, every refusal with file:line."""

from __future__ import annotations

import logging
import textwrap
from pathlib import Path

import pytest

from orbiter.alerts.amconfig import (
    load_alertmanager_config,
    parse_alertmanager_config,
    parse_prometheus_duration,
)
from orbiter.alerts.matchers import MatchType
from orbiter.alerts.receiver_configs import BasicAuth, HTTPConfig, TLSConfig
from orbiter.alerts.routing import RouteConfig
from orbiter.yamlreader import ConfigError

FULL = """\
global:
  resolve_timeout: 10m
  smtp_smarthost: 'mail.example.org:587'
  smtp_from: am@example.org
  smtp_hello: am.example.org
  smtp_auth_username: user
  smtp_auth_password: pass
  smtp_auth_identity: ident
  smtp_require_tls: false
  slack_api_url: https://hooks.slack.com/services/X
  http_config:
    basic_auth: {username: u, password: p}
route:
  receiver: mail
  group_by: [alertname, cluster]
  group_wait: 10s
  group_interval: 1m
  repeat_interval: 2h
  routes:
    - receiver: hooks
      matchers: ['severity=~"critical|page"', 'team!=dev']
      match: {cluster: eu1}
      match_re: {service: 'api|web'}
      continue: true
      group_by: ['...']
    - receiver: chat
      group_wait: 0s
templates: ['/etc/am/*.tmpl']
inhibit_rules:
  - source_matchers: [severity=critical]
    target_matchers: [severity=warning]
    equal: [alertname]
  - source_match: {severity: page}
    target_match_re: {severity: 'info|warning'}
receivers:
  - name: mail
    email_configs:
      - to: ops@example.org
        headers: {subject: 'Hi', x-team-id: ops}
      - to: db@example.org
        from: db-am@example.org
        smarthost: '[::1]:25'
        hello: db
        require_tls: true
        send_resolved: true
        tls_config: {insecure_skip_verify: true, server_name: mx}
  - name: hooks
    webhook_configs:
      - url: http://127.0.0.1:9099/hook
      - url: https://example.org/am
        send_resolved: false
        max_alerts: 5
        http_config: {bearer_token: tok}
  - name: chat
    slack_configs:
      - channel: '#ops'
        title: T
        text: X
      - api_url: https://chat.example.org/hooks/1
        send_resolved: true
"""


def test_full_config_reads_every_supported_key_with_global_defaults_applied(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, "orbiter.alerts"):
        cfg = parse_alertmanager_config(FULL, "am.yml")
    assert "am.yml:28: templates /etc/am/*.tmpl are ignored" in caplog.text
    assert cfg.templates == ("/etc/am/*.tmpl",)
    g = cfg.global_
    assert (g.resolve_timeout, g.smtp_smarthost) == (600, ("mail.example.org", 587))
    assert g.smtp_require_tls is False

    mail = cfg.receiver("mail").email_configs
    assert mail[0].from_ == "am@example.org" and mail[0].smarthost == ("mail.example.org", 587)
    assert (mail[0].hello, mail[0].auth_username) == ("am.example.org", "user")
    assert mail[0].auth_password == "pass"
    assert mail[0].auth_identity == "ident" and mail[0].require_tls is False
    assert mail[0].headers == (("Subject", "Hi"), ("X-Team-Id", "ops"))
    assert mail[0].send_resolved is False
    assert (mail[1].from_, mail[1].smarthost) == ("db-am@example.org", ("::1", 25))
    assert mail[1].hello == "db"
    assert mail[1].require_tls is True and mail[1].send_resolved is True
    assert mail[1].tls_config == TLSConfig(server_name="mx", insecure_skip_verify=True)

    hooks = cfg.receiver("hooks").webhook_configs
    global_http = HTTPConfig(basic_auth=BasicAuth("u", "p"))
    assert hooks[0].send_resolved is True and hooks[0].http_config == global_http
    assert (hooks[1].send_resolved, hooks[1].max_alerts) == (False, 5)
    assert hooks[1].http_config == HTTPConfig(bearer_token="tok")

    chat = cfg.receiver("chat").slack_configs
    assert chat[0].api_url == "https://hooks.slack.com/services/X" and chat[0].channel == "#ops"
    assert chat[0].send_resolved is False and chat[0].http_config == global_http
    assert chat[1].api_url == "https://chat.example.org/hooks/1" and chat[1].send_resolved

    root = cfg.route
    assert (root.receiver, root.group_wait, root.group_interval, root.repeat_interval) == (
        "mail", 10, 60, 7200)
    hooks_route, chat_route = root.routes
    assert hooks_route.group_by_all and hooks_route.continue_
    assert (hooks_route.group_wait, hooks_route.repeat_interval) == (10, 7200)
    assert hooks_route.key == (
        '{}/{cluster="eu1",service=~"^(?:api|web)$",severity=~"critical|page",team!="dev"}'
    )
    assert chat_route.group_by == frozenset({"alertname", "cluster"})
    assert chat_route.group_wait == 0 and chat_route.key == "{}/{}"

    first, second = cfg.inhibit_rules
    assert [str(m) for m in first.source] == ['severity="critical"']
    assert first.equal == ("alertname",)
    assert second.target[0].type is MatchType.REGEXP


def test_defaults_when_almost_nothing_is_given() -> None:
    cfg = parse_alertmanager_config("route: {receiver: x}\nreceivers: [{name: x}]\n")
    assert (cfg.route.group_wait, cfg.route.group_interval, cfg.route.repeat_interval) == (
        30, 300, 14400)
    assert cfg.route.group_by == frozenset() and not cfg.route.group_by_all
    assert cfg.global_.resolve_timeout == 300 and cfg.global_.smtp_hello == "localhost"
    assert cfg.route_config == RouteConfig(receiver="x", line=1)


def test_load_from_file_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "am.yml"
    path.write_text("route:\n  receiver: nobody\n")
    with pytest.raises(ConfigError, match=rf"^{path}:2: route: undefined receiver 'nobody'"):
        load_alertmanager_config(path)
    with pytest.raises(ConfigError, match="cannot read"):
        load_alertmanager_config(tmp_path / "missing.yml")


@pytest.mark.parametrize(
    ("text", "duration"),
    [("0", 0), ("0s", 0), ("30s", 30), ("5m", 300), ("1h30m", 5400), ("2d", 172800),
     ("1w", 604800), ("1y", 31536000), ("250ms", 0.25), ("1m30s500ms", 90.5)],
)
def test_prometheus_durations(text: str, duration: float) -> None:
    assert parse_prometheus_duration(text) == duration


@pytest.mark.parametrize("text", ["", "30", "1.5h", "5 m", "m", "30m1h", "-1s", "1d1d"])
def test_not_prometheus_durations(text: str) -> None:
    with pytest.raises(ValueError, match="not a valid duration"):
        parse_prometheus_duration(text)


R = "receivers:\n  - name: r\n"
ERRORS = [
    ("", 1, "no route provided"),
    ("receivers: []\n", 1, "no route provided"),
    ("route:\n  group_by: [a]\n" + R, 2, "root route must specify a default receiver"),
    ("route:\n  receiver: r\n  continue: true\n" + R, 2, "cannot have continue in the root route"),
    ("route:\n  receiver: r\n  matchers: [a=b]\n" + R, 2, "root route must not have any matchers"),
    ("route:\n  receiver: r\n  match: {a: b}\n" + R, 2, "root route must not have any matchers"),
    ("route:\n  receiver: r\n  routes:\n    - receiver: s\n" + R, 4,
     "route.routes[0]: undefined receiver 's' used in route; receivers defined: r"),
    ("route: {receiver: r}\nreceivers:\n  - name: r\n  - name: r\n", 4, "'r' is not unique"),
    ("route: {receiver: r}\nreceivers:\n  - webhook_configs: []\n", 3, "missing name in receiver"),
    ("route:\n  receiver: r\n  group_wait: 30\n" + R, 3, "route.group_wait: not a valid duration"),
    ("route:\n  receiver: r\n  group_interval: 0s\n" + R, 3, "group_interval cannot be zero"),
    ("route:\n  receiver: r\n  repeat_interval: 0m\n" + R, 3, "repeat_interval cannot be zero"),
    ("global:\n  resolve_timeout: 5 minutes\nroute: {receiver: r}\n" + R, 2,
     "global.resolve_timeout: not a valid duration"),
    ("route:\n  receiver: r\n  group_by: ['...', a]\n" + R, 3, "wildcard '...' and other labels"),
    ("route:\n  receiver: r\n  group_by: [a, a]\n" + R, 3, "duplicated label 'a'"),
    ("route:\n  receiver: r\n  group_by: [1a]\n" + R, 3, "invalid label name '1a'"),
    ("route:\n  receiver: r\n  routes:\n    - match: {a-b: c}\n" + R, 4,
     "invalid label name 'a-b'"),
    ("route:\n  receiver: r\n  routes:\n    - match_re: {a: '(x'}\n" + R, 4,
     "invalid regular expression '^(?:(x)$'"),
    ("route:\n  receiver: r\n  routes:\n    - match_re: {a: '(?=x)'}\n" + R, 4,
     "lookahead is not in Alertmanager's"),
    ("route:\n  receiver: r\n  routes:\n    - matchers: ['a=\"b']\n" + R, 4,
     "unescaped double quote"),
    ("route:\n  receiver: r\n  routes:\n    - matchers: ['a~b']\n" + R, 4, "bad matcher format"),
    ("route:\n  receiver: r\n  routes:\n    - matchers: ['a=~\"(\"']\n" + R, 4,
     "invalid regular expression"),
    ("route:\n  receiver: r\n  routes:\n    - matchers: a=b\n" + R, 4, "must be a list"),
    ("route:\n  receiver: r\n  group_wiat: 1s\n" + R, 3,
     "unknown key route.group_wiat; did you mean route.group_wait?"),
    ("route:\n  receiver: r\n  mute_time_intervals: [night]\n" + R, 3,
     "route.mute_time_intervals is Alertmanager's but not supported by the built-in notifier"),
    ("route:\n  receiver: r\n  routes:\n    - active_time_intervals: [day]\n" + R, 4,
     "active_time_intervals is Alertmanager's but not supported"),
    ("route: {receiver: r}\ntime_intervals: []\n" + R, 2, "time_intervals is Alertmanager's but"),
    ("route: {receiver: r}\nsilences: []\n" + R, 2, "unknown key config.silences"),
    ("route: {receiver: r}\nreceivers:\n  - name: r\n    pagerduty_configs: [{service_key: k}]\n",
     4, "receivers[0].pagerduty_configs is Alertmanager's but not supported by the built-in "
     "notifier; supported here: email_configs, name, slack_configs, webhook_configs"),
    ("global:\n  pagerduty_url: http://x\nroute: {receiver: r}\n" + R, 2, "not supported"),
    ("route: {receiver: r}\nreceivers:\n  - name: r\n"
     "    webhook_configs: [{send_resolved: true}]\n", 4, "missing url in webhook config"),
    ("route: {receiver: r}\nreceivers:\n  - name: r\n    webhook_configs: [{url: 'ftp://x'}]\n",
     4, "must start with http:// or https://"),
    ("route: {receiver: r}\nreceivers:\n  - name: r\n    webhook_configs: [{url: 'http://'}]\n",
     4, "has no host"),
    ("route: {receiver: r}\nreceivers:\n  - name: r\n    webhook_configs:\n      - url: http://x\n"
     "        max_alerts: -1\n", 6, "max_alerts must be a whole number"),
    ("route: {receiver: r}\nreceivers:\n  - name: r\n    webhook_configs:\n      - url: http://x\n"
     "        http_config: {oauth2: {}}\n", 6, "oauth2 is Alertmanager's but not supported"),
    ("route: {receiver: r}\nreceivers:\n  - name: r\n    webhook_configs:\n      - url: http://x\n"
     "        http_config: {bearer_token: t, basic_auth: {username: u}}\n", 6,
     "at most one of basic_auth and bearer_token"),
    ("route: {receiver: r}\nreceivers:\n  - name: r\n    email_configs: [{from: a@b}]\n", 4,
     "missing to address"),
    ("route: {receiver: r}\nreceivers:\n  - name: r\n    email_configs: [{to: a@b, from: c@d}]\n",
     4, "no smarthost, and no global smtp_smarthost"),
    ("global: {smtp_smarthost: 'h:25'}\nroute: {receiver: r}\nreceivers:\n  - name: r\n"
     "    email_configs: [{to: a@b}]\n", 5, "no from, and no global smtp_from"),
    ("global: {smtp_smarthost: 'h'}\nroute: {receiver: r}\n" + R, 1, "is not host:port"),
    ("global: {smtp_smarthost: 'h:'}\nroute: {receiver: r}\n" + R, 1, "port cannot be empty"),
    ("route: {receiver: r}\nreceivers:\n  - name: r\n    email_configs:\n      - to: a@b\n"
     "        from: c@d\n        smarthost: 'h:25'\n        headers: {subject: a, Subject: b}\n",
     8, "duplicate header 'Subject'"),
    ("route: {receiver: r}\nreceivers:\n  - name: r\n    email_configs:\n      - to: a@b\n"
     "        auth_secret: s\n", 6, "auth_secret is Alertmanager's but not supported"),
    ("route: {receiver: r}\nreceivers:\n  - name: r\n    slack_configs: [{channel: '#x'}]\n", 4,
     "no api_url, and no global slack_api_url"),
    ("route: {receiver: r}\nreceivers:\n  - name: r\n    slack_configs:\n"
     "      - {api_url: 'http://x', color: red}\n", 5, "color is Alertmanager's but not supported"),
    ("route: {receiver: r}\nreceivers:\n  - name: r\n    slack_configs:\n"
     "      - {api_url: 'http://x', send_resolved: 'yes please'}\n", 5, "must be true or false"),
    ("route: {receiver: r}\ninhibit_rules:\n  - source_matchers: [a=b]\n"
     "    equal: [a.b]\n" + R, 4, "invalid label name 'a.b'"),
    ("route: {receiver: r}\ninhibit_rules:\n  - source: [a=b]\n" + R, 3,
     "unknown key inhibit_rules[0].source; did you mean inhibit_rules[0].source_match?"),
    ("route: {receiver: r}\ninhibit_rules:\n  - target_match_re: {a: '['}\n" + R, 3,
     "invalid regular expression"),
    ("route: {receiver: r}\ntemplates: x.tmpl\n" + R, 2, "templates must be a list of strings"),
    ("route:\n  receiver: r\n  receiver: s\n" + R, 3, "route.receiver is given twice"),
    ("route: [receiver]\n" + R, 1, "route must be a mapping"),
    ("route: {receiver: r\n", 0, "not valid YAML"),
]


@pytest.mark.parametrize(("text", "line", "message"), ERRORS, ids=[e[2][:40] for e in ERRORS])
def test_every_config_error_names_file_line_and_what_is_wrong(
    text: str, line: int, message: str
) -> None:
    with pytest.raises(ConfigError) as err:
        parse_alertmanager_config(text, "am.yml")
    where = "am.yml:" if line == 0 else f"am.yml:{line}: "
    assert str(err.value).startswith(where), str(err.value)
    assert message in str(err.value)


def test_empty_group_by_inherits_like_alertmanager() -> None:
    cfg = parse_alertmanager_config(textwrap.dedent("""\
        route:
          receiver: r
          group_by: [a]
          routes:
            - {group_by: [], matchers: [x=y]}
            - {group_by: ['...'], matchers: [x=z], routes: [{matchers: [q=w]}]}
        receivers: [{name: r}]
        """))
    empty, wildcard = cfg.route.routes
    assert empty.group_by == frozenset({"a"}) and not empty.group_by_all
    assert wildcard.group_by_all and wildcard.routes[0].group_by_all


def test_null_values_count_as_absent() -> None:
    cfg = parse_alertmanager_config(
        "global:\nroute:\n  receiver: r\n  routes:\ninhibit_rules:\nreceivers:\n  - name: r\n"
        "    webhook_configs:\n"
    )
    assert cfg.route.routes == () and cfg.inhibit_rules == ()
    assert cfg.receiver("r").webhook_configs == ()
