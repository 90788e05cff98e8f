"""Orbiter's YAML configuration file, validated before anything starts.

A wrong key or value stops the process with the file, the line and what was
expected (e.g. `orbiter.yml:7: satellite.policy.max_unhealthy_fraction must
be a number from 0 to 1, got 3`). Rule file paths are relative to the file.

    satellite:
      enabled: true
      rule_files: [alerts/default.rules.yml]
      scrape_interval: 15s
      scrape_timeout: 10s
      evaluation_interval: 15s
      retention: 1h          # history kept; never less than the longest rule range + 5m
      webhooks: [http://127.0.0.1:9099/alerts]
      external_labels: {cluster: prod}
      external_url: http://orbiter.example:5051   # alerts link here; the master's URL if unset
      notifier_config: alertmanager.yml  # built-in routing, receivers, inhibit rules: its format
      alertmanagers:                                # Prometheus's alerting.alertmanagers
        - static_configs: [{targets: ["127.0.0.1:9093"]}]
      resend_delay: 1m
      scrape_configs:                               # more targets, Prometheus's syntax
        - job_name: zookeeper
          static_configs: [{targets: ["zk1:7000"], labels: {env: prod}}]
      archive:                                      # history beyond the TSDB's hour
        influxdb: {url: "http://influx:8086", version: 1, database: orbiter}
        elasticsearch: {hosts: ["http://es:9200"], index_prefix: orbiter-events}
      remote_write:                                 # Prometheus's remote_write (a subset)
        - url: http://victoria:8428/api/v1/write
      policy:
        max_unhealthy_fraction: 0.3
        max_actions_per_window: 5
        window: 10m
        min_active_agents: 1
        cooldown: 5m
        flap_limit: 3
        flap_window: 1h
        dry_run: false
    agent:
      watch_paths: [/tmp, /var/lib/docker]
      checks:
        - {builtin: disk-writable}          # shipped: disk-writable, zombie-count, clock-sane
        - {name: nfs, command: "stat -t /mnt/nfs", interval: 30s, timeout: 5s}
    master:                                 # how much one client may ask (see README)
      api_rate: 500                         # calls/s per principal@host; 0: no limit
      api_burst: 2000
      max_frameworks_per_principal: 100
      max_agents_per_principal: 10000
      max_silences: 10000
    security:                               # flags --tls-cert ... override these
      tls_cert: certs/master.pem
      tls_key: certs/master.key
      tls_ca: certs/ca.pem
      require_client_cert: false            # true: no TLS client without a certificate
      credentials: credentials.yml          # principals: [{name, token}]
      satellite_principal: satellite        # whose maintenance is signed by: satellite
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from orbiter.agent.checks import BUILTIN_CHECKS, CheckSpec
from orbiter.alerts.alertmanager import parse_alertmanagers
from orbiter.alerts.amconfig import load_notifier_config
from orbiter.master.limits import Limits
from orbiter.satellite.archive import parse_archive
from orbiter.satellite.policy import InvalidPolicyConfig, PolicyConfig
from orbiter.satellite.remote_write import parse_remote_write
from orbiter.satellite.rules import RuleFileInvalid, load_rule_files
from orbiter.satellite.scrape_config import parse_scrape_configs
from orbiter.satellite.service import SatelliteConfig
from orbiter.security.flags import SecurityConfig, parse_security
from orbiter.yamlreader import ConfigError, YamlReader

__all__ = ["ConfigError", "OrbiterConfig", "load_config"]

# Inside the package, so an installed Orbiter finds them; the repository's alerts/ links here.
DEFAULT_RULES = Path(__file__).resolve().parent / "rules" / "default.rules.yml"


@dataclass
class AgentConfig:
    watch_paths: list[str] = field(default_factory=lambda: ["/tmp"])
    checks: list[CheckSpec] = field(default_factory=list)


@dataclass
class OrbiterConfig:
    satellite: SatelliteConfig = field(default_factory=SatelliteConfig)
    satellite_enabled: bool = True
    agent: AgentConfig = field(default_factory=AgentConfig)
    security: SecurityConfig = field(default_factory=SecurityConfig)
    limits: Limits = field(default_factory=Limits)
    source: str = "(defaults)"


def default_config() -> OrbiterConfig:
    """Satellite with the shipped rules: a missing file is a broken install, and says so."""
    cfg = OrbiterConfig()
    cfg.satellite.rule_files = [str(DEFAULT_RULES)]
    return cfg


def load_config(path: str | Path) -> OrbiterConfig:
    """Read and validate a configuration file; unset values keep their defaults."""
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as e:
        raise ConfigError(f"{p}: cannot read the configuration file: {e.strerror}") from None
    try:
        root = yaml.compose(text)
    except yaml.YAMLError as e:
        raise ConfigError(f"{p}: not valid YAML: {e}") from None
    cfg = default_config()
    cfg.source = str(p)
    if root is None:
        return cfg
    r = YamlReader(str(p))
    top = r.mapping(root, "the file", {"satellite", "agent", "security", "master"})
    if "security" in top:
        cfg.security = parse_security(r, top["security"], p.parent)
    if "satellite" in top:
        _satellite(r, top["satellite"], cfg, p.parent)
    if "agent" in top:
        _agent(r, top["agent"], cfg)
    if "master" in top:
        cfg.limits = _limits(r, top["master"])
    return cfg


def _limits(r: YamlReader, node: yaml.Node) -> Limits:
    numbers = {"api_rate", "api_burst"}
    wholes = {"max_frameworks_per_principal", "max_agents_per_principal", "max_silences"}
    m = r.mapping(node, "master", numbers | wholes)
    values: dict[str, Any] = {}
    for name in sorted(m):
        read = r.number if name in numbers else r.whole
        values[name] = read(m[name], f"master.{name}")
    limits = Limits(**values)
    for name, problem in limits.problems():
        raise r.fail(m[name], f"master.{name} {problem}")
    return limits


def _satellite(r: YamlReader, node: yaml.Node, cfg: OrbiterConfig, base: Path) -> None:
    keys = {
        "enabled",
        "rule_files",
        "scrape_interval",
        "scrape_timeout",
        "evaluation_interval",
        "retention",
        "webhooks",
        "external_labels",
        "external_url",
        "policy",
        "alertmanagers",
        "resend_delay",
        "remote_write",
        "external_alert_ttl",
        "scrape_configs",
        "notifier_config",
        "archive",
    }
    m = r.mapping(node, "satellite", keys)
    s = cfg.satellite
    if "enabled" in m:
        cfg.satellite_enabled = r.boolean(m["enabled"], "satellite.enabled")
    if "rule_files" in m:
        files = r.strings(m["rule_files"], "satellite.rule_files")
        s.rule_files = [str(base / f) if not Path(f).is_absolute() else f for f in files]
        for f, n in zip(s.rule_files, m["rule_files"].value, strict=True):
            if not Path(f).exists():
                raise r.fail(n, f"satellite.rule_files: {f} does not exist")
        try:
            load_rule_files(s.rule_files)  # refuse a broken rule file before anything starts
        except RuleFileInvalid as e:
            raise r.fail(
                m["rule_files"], f"satellite.rule_files: a rule file is invalid:\n{e}"
            ) from None
    for name in ("scrape_interval", "scrape_timeout", "evaluation_interval"):
        if name in m:
            setattr(s, name, r.duration(m[name], f"satellite.{name}"))
    if "retention" in m:
        s.retention = r.duration(m["retention"], "satellite.retention", positive=False)
    if "scrape_timeout" not in m:
        s.scrape_timeout = min(s.scrape_timeout, s.scrape_interval)  # as Prometheus does
    if s.scrape_timeout > s.scrape_interval:
        where = m.get("scrape_timeout") or m.get("scrape_interval") or node
        raise r.fail(where, "satellite.scrape_timeout must not exceed scrape_interval")
    if "webhooks" in m:
        s.webhooks = r.strings(m["webhooks"], "satellite.webhooks")
        for url, n in zip(s.webhooks, m["webhooks"].value, strict=True):
            if not url.startswith(("http://", "https://")):
                raise r.fail(n, f"satellite.webhooks: {url!r} is not an http(s) URL")
    if "external_labels" in m:
        node_l = m["external_labels"]
        if not isinstance(node_l, yaml.MappingNode):
            raise r.fail(node_l, "satellite.external_labels must be a mapping of name: value")
        s.external_labels = {
            r.string(k, "satellite.external_labels key"): r.string(v, f"external_labels.{k.value}")
            for k, v in node_l.value
        }
    if "external_url" in m:
        s.external_url = r.string(m["external_url"], "satellite.external_url")
    if "policy" in m:
        s.policy = _policy(r, m["policy"])
    if "alertmanagers" in m:
        s.alertmanagers = parse_alertmanagers(r, m["alertmanagers"], base)
    if "resend_delay" in m:
        s.resend_delay = r.duration(m["resend_delay"], "satellite.resend_delay")
    if "archive" in m:
        s.archive = parse_archive(r, m["archive"], base)
    if "notifier_config" in m:
        path = base / r.string(m["notifier_config"], "satellite.notifier_config")
        try:
            load_notifier_config(path)  # refuse a bad routing file before anything starts
        except ConfigError as e:
            raise r.fail(m["notifier_config"], f"satellite.notifier_config: {e}") from None
        s.notifier_config = str(path)
    if "scrape_configs" in m:
        s.scrape_jobs = parse_scrape_configs(
            r, m["scrape_configs"], base, s.scrape_interval, s.scrape_timeout
        )
    if "external_alert_ttl" in m:
        s.external_alert_ttl = r.duration(m["external_alert_ttl"], "satellite.external_alert_ttl")
    if "remote_write" in m:
        s.remote_write = parse_remote_write(r, m["remote_write"], base)


def _policy(r: YamlReader, node: yaml.Node) -> PolicyConfig:
    keys = {
        "max_unhealthy_fraction",
        "max_actions_per_window",
        "window",
        "min_active_agents",
        "cooldown",
        "flap_limit",
        "flap_window",
        "dry_run",
    }
    m = r.mapping(node, "satellite.policy", keys)
    values: dict[str, Any] = {}
    w = "satellite.policy."
    if "max_unhealthy_fraction" in m:
        values["max_unhealthy_fraction"] = r.number(
            m["max_unhealthy_fraction"], w + "max_unhealthy_fraction"
        )
    for name in ("max_actions_per_window", "min_active_agents", "flap_limit"):
        if name in m:
            values[name] = r.whole(m[name], w + name)
    if "window" in m:
        values["window_seconds"] = r.duration(m["window"], w + "window")
    if "cooldown" in m:
        values["cooldown_seconds"] = r.duration(m["cooldown"], w + "cooldown", positive=False)
    if "flap_window" in m:
        values["flap_window_seconds"] = r.duration(m["flap_window"], w + "flap_window")
    if "dry_run" in m:
        values["dry_run"] = r.boolean(m["dry_run"], w + "dry_run")
    policy = PolicyConfig(**values)
    try:
        policy.validate()
    except InvalidPolicyConfig as e:
        raise r.fail(node, f"satellite.policy: {e}") from None
    return policy


def _agent(r: YamlReader, node: yaml.Node, cfg: OrbiterConfig) -> None:
    m = r.mapping(node, "agent", {"watch_paths", "checks"})
    if "watch_paths" in m:
        cfg.agent.watch_paths = r.strings(m["watch_paths"], "agent.watch_paths")
    if "checks" in m:
        seq = m["checks"]
        if not isinstance(seq, yaml.SequenceNode):
            raise r.fail(seq, "agent.checks must be a list of checks")
        checks = []
        for i, n in enumerate(seq.value):
            where = f"agent.checks[{i}]"
            c = r.mapping(n, where, {"name", "command", "interval", "timeout", "builtin"})
            if "builtin" in c:
                name = r.string(c["builtin"], where + ".builtin")
                if name not in BUILTIN_CHECKS or set(c) - {"builtin", "interval", "timeout"}:
                    raise r.fail(
                        n,
                        f"{where}: builtin takes one of {', '.join(sorted(BUILTIN_CHECKS))}, "
                        "optionally with interval and timeout",
                    )
                base = BUILTIN_CHECKS[name]
                c = {k: v for k, v in c.items() if k != "builtin"}
                spec = CheckSpec(
                    name=base.name,
                    command=base.command,
                    interval=r.duration(c["interval"], where + ".interval")
                    if "interval" in c
                    else base.interval,
                    timeout=r.duration(c["timeout"], where + ".timeout")
                    if "timeout" in c
                    else base.timeout,
                )
                if any(x.name == spec.name for x in checks):
                    raise r.fail(n, f"{where}: a check named {spec.name!r} is defined twice")
                checks.append(spec)
                continue
            for req in ("name", "command"):
                if req not in c:
                    raise r.fail(n, f"{where} needs {req}")
            spec = CheckSpec(
                name=r.string(c["name"], where + ".name"),
                command=r.string(c["command"], where + ".command"),
                interval=r.duration(c["interval"], where + ".interval")
                if "interval" in c
                else 30.0,
                timeout=r.duration(c["timeout"], where + ".timeout") if "timeout" in c else 10.0,
            )
            try:
                spec.validate()
            except ValueError as e:
                raise r.fail(n, f"{where}: {e}") from None
            if any(x.name == spec.name for x in checks):
                raise r.fail(n, f"{where}: a check named {spec.name!r} is defined twice")
            checks.append(spec)
        cfg.agent.checks = checks
