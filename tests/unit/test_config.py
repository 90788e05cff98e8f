"""The configuration file: good files load; a mistake names the file, line and what is wanted."""

from __future__ import annotations

from pathlib import Path

import pytest

from orbiter.config import ConfigError, default_config, load_config
from orbiter.master.limits import Limits


def write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "my.rules.yml").write_text("groups: []\n")
    path = tmp_path / "orbiter.yml"
    path.write_text(text)
    return path


def test_a_full_file_loads_with_durations_and_relative_rule_files(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
satellite:
  rule_files: [my.rules.yml]
  scrape_interval: 30s
  scrape_timeout: 5s
  evaluation_interval: 1m
  retention: 20m
  webhooks: [http://127.0.0.1:9099/hook]
  external_labels: {cluster: prod}
  policy:
    max_unhealthy_fraction: 0.2
    max_actions_per_window: 3
    window: 15m
    min_active_agents: 2
    cooldown: 2m
    flap_limit: 4
    flap_window: 2h
    dry_run: true
agent:
  watch_paths: [/tmp, /var]
  checks:
    - {name: ok, command: "true", interval: 10s, timeout: 2s}
""",
    )
    cfg = load_config(path)
    s = cfg.satellite
    assert s.rule_files == [str(tmp_path / "my.rules.yml")]
    assert (s.scrape_interval, s.scrape_timeout, s.evaluation_interval) == (30.0, 5.0, 60.0)
    assert s.retention == 1200.0
    assert s.webhooks == ["http://127.0.0.1:9099/hook"]
    assert s.external_labels == {"cluster": "prod"}
    p = s.policy
    assert (p.max_unhealthy_fraction, p.max_actions_per_window, p.window_seconds) == (0.2, 3, 900)
    assert (p.min_active_agents, p.cooldown_seconds, p.flap_limit) == (2, 120, 4)
    assert (p.flap_window_seconds, p.dry_run) == (7200, True)
    assert cfg.agent.watch_paths == ["/tmp", "/var"]
    assert [(c.name, c.interval, c.timeout) for c in cfg.agent.checks] == [("ok", 10.0, 2.0)]


def test_the_master_section_sets_the_limits(tmp_path: Path) -> None:
    cfg = load_config(
        write(
            tmp_path,
            "master:\n  api_rate: 0\n  api_burst: 10\n  max_frameworks_per_principal: 3\n"
            "  max_agents_per_principal: 50\n  max_silences: 200\n",
        )
    )
    assert cfg.limits == Limits(
        api_rate=0.0,
        api_burst=10.0,
        max_frameworks_per_principal=3,
        max_agents_per_principal=50,
        max_silences=200,
    )
    assert load_config(write(tmp_path, "")).limits == Limits()


def test_the_master_limits_reach_the_masters_settings(tmp_path: Path) -> None:
    from orbiter import cli

    path = write(tmp_path, "master:\n  api_rate: 7\n  max_silences: 9\n")
    args = cli.parser().parse_args(["master", "--config", str(path)])
    settings = cli._master_settings(args, tmp_path, cli._config(args))
    assert settings.config.limits == Limits(api_rate=7.0, max_silences=9)


def test_an_empty_file_means_the_defaults(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, ""))
    assert cfg.satellite.rule_files == default_config().satellite.rule_files
    assert cfg.satellite_enabled


@pytest.mark.parametrize(
    ("text", "line", "expected"),
    [
        ("satelite: {}\n", 1, "unknown key satelite; did you mean satellite?"),
        ("zookeeper: {}\n", 1, "unknown key zookeeper; expected one of "),
        (
            "satellite:\n  polcy: {}\n",
            2,
            "unknown key satellite.polcy; did you mean satellite.policy?",
        ),
        ("satellite:\n  scrape_interval: soon\n", 2, "'soon' is not a duration"),
        ("satellite:\n  scrape_interval: 0s\n", 2, "must be longer than 0s"),
        ("satellite:\n  retention: a while\n", 2, "retention: 'a while' is not a duration"),
        ("satellite:\n  scrape_interval: 5s\n  scrape_timeout: 10s\n", 3, "must not exceed"),
        ("satellite:\n  rule_files: [missing.yml]\n", 2, "missing.yml does not exist"),
        ("satellite:\n  webhooks: [ftp://x]\n", 2, "is not an http(s) URL"),
        (
            "satellite:\n  policy:\n    max_unhealthy_fraction: 3\n",
            3,
            "max_unhealthy_fraction must be a number from 0 to 1",
        ),
        ("satellite:\n  policy:\n    dry_run: maybe\n", 3, "dry_run must be true or false"),
        ("satellite:\n  policy:\n    panic: 1\n", 3, "unknown key satellite.policy.panic"),
        (
            "satellite:\n  policy:\n    windw: 1m\n",
            3,
            "unknown key satellite.policy.windw; did you mean satellite.policy.window?",
        ),
        (
            "agent:\n  checks:\n    - {nam: x}\n",
            3,
            "agent.checks[0].nam; did you mean agent.checks[0].name?",
        ),
        (
            "security:\n  tls_cerx: a\n",
            2,
            "unknown key security.tls_cerx; did you mean security.tls_cert?",
        ),
        ("satellite:\n  enabled: 1\n", 2, "satellite.enabled must be true or false"),
        ("agent:\n  checks:\n    - {name: x}\n", 3, "agent.checks[0] needs command"),
        ("agent:\n  checks:\n    - {name: 'a b', command: 'true'}\n", 3, "agent.checks[0]"),
        (
            "agent:\n  checks:\n    - {name: a, command: 'true'}\n"
            "    - {name: a, command: 'true'}\n",
            4,
            "defined twice",
        ),
        ("agent:\n  watch_paths: /tmp\n", 2, "agent.watch_paths must be a list of strings"),
        ("satellite: [1, 2]\n", 1, "satellite must be a mapping"),
        ("master:\n  api_rate: -1\n", 2, "master.api_rate must be a number >= 0 (0: no limit)"),
        ("master:\n  api_rate: fast\n", 2, "master.api_rate must be a number, got 'fast'"),
        ("master:\n  api_burst: 0.5\n", 2, "master.api_burst must be a number >= 1"),
        (
            "master:\n  api_rate: 5\n  max_silences: 0\n",
            3,
            "master.max_silences must be a whole number >= 1, got 0",
        ),
        (
            "master:\n  max_frameworks_per_principal: 1.5\n",
            2,
            "master.max_frameworks_per_principal must be a whole number",
        ),
        (
            "master:\n  max_tasks: 5\n",
            2,
            "unknown key master.max_tasks; expected one of advertise_host, api_burst",
        ),
    ],
)
def test_a_mistake_names_the_file_line_and_what_was_expected(
    tmp_path: Path, text: str, line: int, expected: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as e:
        load_config(path)
    assert str(e.value).startswith(f"{path}:{line}: ")
    assert expected in str(e.value)


def test_a_missing_file_and_broken_yaml_are_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read the configuration file"):
        load_config(tmp_path / "nope.yml")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(write(tmp_path, "satellite: [\n"))


def test_a_file_that_is_not_utf8_text_is_named_not_a_traceback(tmp_path: Path) -> None:
    path = tmp_path / "orbiter.yml"
    path.write_bytes(b"\xff\xfemaster: {}\n")  # e.g. saved as UTF-16 by an editor
    with pytest.raises(ConfigError, match=r"orbiter.yml: not UTF-8 text: .* at byte 0"):
        load_config(path)


def test_builtin_checks_are_named_and_may_set_their_interval(tmp_path: Path) -> None:
    cfg = load_config(
        write(
            tmp_path,
            "agent:\n  checks:\n    - {builtin: disk-writable, interval: 5s}\n"
            "    - {builtin: clock-sane}\n",
        )
    )
    assert (cfg.agent.checks[0].name, cfg.agent.checks[0].interval) == ("disk-writable", 5.0)
    assert cfg.agent.checks[1].name == "clock-sane"
    with pytest.raises(ConfigError, match="builtin takes one of clock-sane, disk-writable"):
        load_config(write(tmp_path, "agent:\n  checks:\n    - {builtin: nope}\n"))


def test_every_mistake_in_a_file_is_reported_at_once_in_line_order(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "satelite: {}\n"
        "satellite:\n"
        "  scrape_interval: soon\n"
        "  policy:\n"
        "    dry_run: maybe\n"
        "    windw: 1m\n"
        "agent:\n"
        "  watch_paths: /tmp\n",
    )
    with pytest.raises(ConfigError) as e:
        load_config(path)
    assert e.value.errors == [
        f"{path}:1: unknown key satelite; did you mean satellite?",
        f"{path}:3: satellite.scrape_interval: 'soon' is not a duration: "
        "use e.g. 30s, 5m, 2h, 1h30m or seconds",
        f"{path}:5: satellite.policy.dry_run must be true or false, got 'maybe'",
        f"{path}:6: unknown key satellite.policy.windw; did you mean satellite.policy.window?",
        f"{path}:8: agent.watch_paths must be a list of strings",
    ]
    assert str(e.value) == "\n".join(e.value.errors)


def test_the_master_and_agent_sections_take_an_advertised_host(tmp_path: Path) -> None:
    cfg = load_config(
        write(
            tmp_path, "master:\n  advertise_host: m1.example\nagent:\n  advertise_host: 10.0.0.7\n"
        )
    )
    assert (cfg.master.advertise_host, cfg.agent.advertise_host) == ("m1.example", "10.0.0.7")


def test_security_paths_are_relative_to_the_file_and_must_exist(tmp_path: Path) -> None:
    (tmp_path / "ca.pem").write_text("x")
    cfg = load_config(write(tmp_path, "security:\n  tls_ca: ca.pem\n  satellite_principal: sat\n"))
    assert (cfg.security.tls_ca, cfg.security.satellite_principal) == (
        str(tmp_path / "ca.pem"),
        "sat",
    )
    with pytest.raises(ConfigError, match=r":2: security.tls_cert: .*cert.pem does not exist"):
        load_config(write(tmp_path, "security:\n  tls_cert: cert.pem\n  tls_key: ca.pem\n"))
    with pytest.raises(ConfigError, match=r":2: security.require_client_cert needs tls_ca"):
        load_config(write(tmp_path, "security:\n  require_client_cert: true\n"))


def test_misspelt_keys_deep_in_sections_are_all_reported_with_suggestions(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "satellite:\n"
        "  remote_write:\n"
        "    - url: http://rw:9090/api/v1/write\n"
        "      remote_timout: 5s\n"
        "  archive:\n"
        "    influxdb: {url: 'http://influx:8086', databse: orbiter}\n"
        "agent:\n"
        "  checks:\n"
        "    - {name: a, command: 'true', intervl: 5s}\n",
    )
    with pytest.raises(ConfigError) as e:
        load_config(path)
    assert [x.split(": ", 1)[1] for x in e.value.errors] == [
        "unknown key remote_write[0].remote_timout; did you mean remote_write[0].remote_timeout?",
        "unknown key satellite.archive.influxdb.databse; "
        "did you mean satellite.archive.influxdb.database?",
        "satellite.archive.influxdb version 1 needs database",  # what the typo left out
        "unknown key agent.checks[0].intervl; did you mean agent.checks[0].interval?",
    ]
