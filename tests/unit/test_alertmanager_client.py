"""The Alertmanager client's pure parts: what goes out when (Prometheus's needsSending),
the v2 alert body, and `satellite.alertmanagers` refused with file, line and what to give."""

from __future__ import annotations

from pathlib import Path

import pytest

from orbiter.alerts.alertmanager import (
    AlertmanagerClient,
    AlertmanagerSet,
    api_alert,
    due,
    read_sd_files,
    valid_until,
)
from orbiter.alerts.payload import Notification
from orbiter.config import ConfigError, load_config


def firing(name: str = "A", ends: float | None = None) -> Notification:
    return Notification(labels={"alertname": name}, status="firing", starts_at=100.0, ends_at=ends)


def resolved(name: str = "A", ends: float = 150.0) -> Notification:
    return Notification(
        labels={"alertname": name}, status="resolved", starts_at=100.0, ends_at=ends
    )


def test_a_new_alert_goes_at_once_then_every_resend_delay() -> None:
    a = firing()
    out, sent = due([a], {}, 100.0, 60.0)
    assert out == [a] and sent == {a.fingerprint: 100.0}
    out, sent = due([a], sent, 159.0, 60.0)
    assert out == [] and sent == {a.fingerprint: 100.0}
    out, sent = due([a], sent, 160.0, 60.0)
    assert out == [a] and sent == {a.fingerprint: 160.0}


def test_a_resolution_goes_at_once_and_forgotten_alerts_are_dropped() -> None:
    a = firing()
    _, sent = due([a], {}, 100.0, 60.0)
    r = resolved(ends=120.0)
    out, sent = due([r], sent, 120.0, 60.0)
    assert out == [r]
    out, sent = due([r], sent, 121.0, 60.0)
    assert out == []  # already sent resolved; again only after the resend delay
    out, sent = due([], sent, 200.0, 60.0)
    assert out == [] and sent == {}


def test_firing_alerts_end_four_intervals_ahead() -> None:
    assert valid_until(100.0, 60.0, 15.0) == 340.0
    assert valid_until(100.0, 1.0, 15.0) == 160.0


def test_the_v2_body_has_rfc3339_times_and_no_end_when_unknown() -> None:
    body = api_alert(firing(ends=None))
    assert body == {
        "labels": {"alertname": "A"},
        "annotations": {},
        "startsAt": "1970-01-01T00:01:40Z",
        "generatorURL": "",
    }
    assert api_alert(resolved())["endsAt"] == "1970-01-01T00:02:30Z"


def test_external_labels_are_added_but_never_override_and_the_queue_drops_the_oldest() -> None:
    client = AlertmanagerClient(
        [AlertmanagerSet(static_targets=("h:1",))], external_labels={"cluster": "c",
                                                                     "alertname": "X"},
        capacity=2,
    )  # fmt: skip
    client.enqueue([firing("A"), firing("B"), firing("C")])
    assert [n.labels for n in client.queue] == [
        {"cluster": "c", "alertname": "B"},
        {"cluster": "c", "alertname": "C"},
    ]
    assert client.metrics.dropped._value.get() == 1


def test_discovery_files_give_targets_and_bad_ones_are_skipped(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text('[{"targets": ["h1:9093", "h2:9093"]}]')
    (tmp_path / "b.yml").write_text("- targets: [h3:9093]\n  labels: {x: y}\n")
    (tmp_path / "c.json").write_text("{not json")
    assert read_sd_files([str(tmp_path / "*.json"), str(tmp_path / "b.yml")]) == [
        "h1:9093", "h2:9093", "h3:9093",
    ]  # fmt: skip


def _load(tmp_path: Path, text: str):  # type: ignore[no-untyped-def]
    path = tmp_path / "orbiter.yml"
    path.write_text(text)
    return load_config(path)


def test_a_good_config_is_read(tmp_path: Path) -> None:
    (tmp_path / "ca.pem").write_text("x")
    cfg = _load(
        tmp_path,
        """satellite:
  resend_delay: 30s
  alertmanagers:
    - static_configs: [{targets: ["am:9093"]}]
      file_sd_configs: [{files: [am/*.json], refresh_interval: 10s}]
      scheme: https
      path_prefix: /am
      timeout: 3s
      basic_auth: {username: u, password: p}
      tls_config: {ca_file: ca.pem}
""",
    ).satellite
    assert cfg.resend_delay == 30.0
    (am,) = cfg.alertmanagers
    assert am.static_targets == ("am:9093",) and am.sd_files == (str(tmp_path / "am/*.json"),)
    assert (am.scheme, am.timeout, am.refresh_interval) == ("https", 3.0, 10.0)
    assert am.url("am:9093") == "https://am:9093/am/api/v2/alerts"
    assert am.http.basic_auth is not None and am.http.basic_auth.username == "u"
    assert am.http.tls_config.ca_file == str(tmp_path / "ca.pem")


@pytest.mark.parametrize(
    ("body", "line", "message"),
    [
        ("  alertmanagers: {}\n", 2, "must be a list of alertmanager configs"),
        ("  alertmanagers:\n    - {}\n", 3, "names no Alertmanager"),
        ("  alertmanagers:\n    - static_configs: [{targets: [nohost]}]\n", 3,
         "'nohost' is not host:port"),
        ("  alertmanagers:\n    - {static_configs: [{targets: ['a:1']}], api_version: v1}\n",
         3, "only v2 is supported"),
        ("  alertmanagers:\n    - {static_configs: [{targets: ['a:1']}], scheme: ftp}\n",
         3, "scheme must be http or https"),
        ("  alertmanagers:\n    - {static_configs: [{targets: ['a:1']}], timeout: soon}\n",
         3, "timeout"),
        ("  alertmanagers:\n    - {static_configs: [{targets: ['a:1']}], relabel_configs: []}\n",
         3, "unknown key satellite.alertmanagers[0].relabel_configs"),
        ("  alertmanagers:\n    - {static_configs: [{targets: ['a:1']}],\n"
         "       tls_config: {ca_file: missing.pem}}\n", 4, "missing.pem does not exist"),
        ("  alertmanagers:\n    - static_configs: [{targets: ['a:1']}]\n"
         "      basic_auth: {username: u}\n      bearer_token: t\n", 4, "not both"),
        ("  alertmanagers:\n    - file_sd_configs: [{files: [am.txt]}]\n", 3,
         "must end in .json, .yml or .yaml"),
        ("  resend_delay: 0s\n", 2, "resend_delay must be longer than 0s"),
    ],
)  # fmt: skip
def test_bad_alertmanager_configs_say_where_and_what(
    tmp_path: Path, body: str, line: int, message: str
) -> None:
    with pytest.raises(ConfigError) as e:
        _load(tmp_path, "satellite:\n" + body)
    assert f"orbiter.yml:{line}:" in str(e.value) and message in str(e.value), str(e.value)
