"""Orbiter's YAML configuration file: one schema validates it and writes its reference.

`SCHEMA` below lists every key with its type, default, example and meaning;
`load_config` walks the file along it and `reference()` prints it as
docs/configuration.md (`orbiter config reference`), so the documentation
cannot drift from what is accepted. Adding a key is one `Key(...)` entry
(plus the field it fills); a section is one `Section(...)`.

Every mistake in a file is reported at once, each with the file, the line
and what was expected (e.g. `orbiter.yml:7: satellite.policy.max_unhealthy_fraction
must be a number from 0 to 1, got 3`); a misspelt key gets a suggestion
(`unknown key satelite; did you mean satellite?`). Relative paths resolve
against the file's folder.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from orbiter.agent.checks import BUILTIN_CHECKS, CheckSpec
from orbiter.alerts.alertmanager import parse_alertmanagers
from orbiter.alerts.amconfig import load_notifier_config
from orbiter.durations import format_duration
from orbiter.hosts import advertise_host
from orbiter.master.limits import Limits
from orbiter.satellite.archive import parse_archive
from orbiter.satellite.policy import InvalidPolicyConfig
from orbiter.satellite.remote_write import parse_remote_write
from orbiter.satellite.rules import RuleFileInvalid, load_rule_files
from orbiter.satellite.scrape_config import parse_scrape_configs
from orbiter.satellite.service import SatelliteConfig
from orbiter.security.acl import Acls, parse_acls
from orbiter.security.flags import SecurityConfig
from orbiter.yamlreader import ConfigError, YamlReader, unknown_key

__all__ = ["SCHEMA", "ConfigError", "OrbiterConfig", "load_config", "reference"]

# Inside the package, so an installed Orbiter finds them; the repository's alerts/ links here.
DEFAULT_RULES = Path(__file__).resolve().parent / "rules" / "default.rules.yml"


@dataclass
class AgentConfig:
    watch_paths: list[str] = field(default_factory=lambda: ["/tmp"])
    checks: list[CheckSpec] = field(default_factory=list)
    advertise_host: str = ""


@dataclass
class MasterFileConfig:
    """The file's `master:` section; flags given on the command line win."""

    advertise_host: str = ""


@dataclass
class OrbiterConfig:
    satellite: SatelliteConfig = field(default_factory=SatelliteConfig)
    satellite_enabled: bool = True
    master: MasterFileConfig = field(default_factory=MasterFileConfig)
    agent: AgentConfig = field(default_factory=AgentConfig)
    security: SecurityConfig = field(default_factory=SecurityConfig)
    limits: Limits = field(default_factory=Limits)
    source: str = "(defaults)"


def default_config() -> OrbiterConfig:
    """Satellite with the shipped rules: a missing file is a broken install, and says so."""
    cfg = OrbiterConfig()
    cfg.satellite.rule_files = [str(DEFAULT_RULES)]
    return cfg


# ---------------------------------------------------------------------- schema


class _Ctx:
    """One file being read: its reader, its folder, the config filled in, every mistake."""

    def __init__(self, path: Path, cfg: OrbiterConfig) -> None:
        self.errors: list[str] = []
        # Sections' own readers (archive, remote_write...) add misspelt keys here, and go on.
        self.r = YamlReader(str(path), collect=self.errors)
        self.base = path.parent
        self.cfg = cfg
        self.given: set[str] = set()

    def report(self, e: ConfigError) -> None:
        self.errors.extend(x for x in e.errors if x not in self.errors)

    def line_of(self, text: str) -> int:
        m = re.match(rf"{re.escape(self.r.path)}:(\d+):", text)
        return int(m.group(1)) if m else 0


Read = Callable[[_Ctx, yaml.Node, str], Any]
Check = Callable[[_Ctx, dict[str, yaml.Node], yaml.Node], None]


@dataclass(frozen=True)
class Key:
    """One key of the file: what the reference says about it, how it is read, where it goes.

    `to` is the attribute path in OrbiterConfig the value is stored at; `default`, when
    empty, is shown from `default_config()` so the reference cannot drift from the code."""

    name: str
    type: str
    doc: str
    example: str
    read: Read
    to: str
    default: str = ""


@dataclass(frozen=True)
class Section:
    """A mapping of keys (and sections); `check` runs after its keys, for rules between them."""

    name: str
    doc: str
    entries: tuple[Key | Section, ...]
    check: Check | None = None


def _duration(ctx: _Ctx, node: yaml.Node, where: str) -> float:
    return ctx.r.duration(node, where)


def _duration_or_zero(ctx: _Ctx, node: yaml.Node, where: str) -> float:
    return ctx.r.duration(node, where, positive=False)


def _boolean(ctx: _Ctx, node: yaml.Node, where: str) -> bool:
    return ctx.r.boolean(node, where)


def _number(ctx: _Ctx, node: yaml.Node, where: str) -> float:
    return ctx.r.number(node, where)


def _whole(ctx: _Ctx, node: yaml.Node, where: str) -> int:
    return ctx.r.whole(node, where)


def _string(ctx: _Ctx, node: yaml.Node, where: str) -> str:
    return ctx.r.string(node, where)


def _strings(ctx: _Ctx, node: yaml.Node, where: str) -> list[str]:
    return ctx.r.strings(node, where)


def _file(ctx: _Ctx, node: yaml.Node, where: str) -> str:
    """A file that must exist; relative to the configuration file's folder."""
    path = ctx.base / ctx.r.string(node, where)
    if not path.is_file():
        raise ctx.r.fail(node, f"{where}: {path} does not exist")
    return str(path)


def _host(ctx: _Ctx, node: yaml.Node, where: str) -> str:
    try:
        return advertise_host(ctx.r.string(node, where))
    except ValueError as e:
        raise ctx.r.fail(node, f"{where}: {e}") from None


def _rule_files(ctx: _Ctx, node: yaml.Node, where: str) -> list[str]:
    files = [str(ctx.base / f) for f in ctx.r.strings(node, where)]
    missing = [
        ctx.r.fail(n, f"{where}: {f} does not exist")
        for f, n in zip(files, node.value, strict=True)
        if not Path(f).exists()
    ]
    if missing:
        raise ConfigError("\n".join(map(str, missing)), [str(e) for e in missing])
    try:
        load_rule_files(files)  # refuse a broken rule file before anything starts
    except RuleFileInvalid as e:
        raise ctx.r.fail(node, f"{where}: a rule file is invalid:\n{e}") from None
    return files


def _webhooks(ctx: _Ctx, node: yaml.Node, where: str) -> list[str]:
    urls = ctx.r.strings(node, where)
    for url, n in zip(urls, node.value, strict=True):
        if not url.startswith(("http://", "https://")):
            raise ctx.r.fail(n, f"{where}: {url!r} is not an http(s) URL")
    return urls


def _labels(ctx: _Ctx, node: yaml.Node, where: str) -> dict[str, str]:
    if not isinstance(node, yaml.MappingNode):
        raise ctx.r.fail(node, f"{where} must be a mapping of name: value")
    return {
        ctx.r.string(k, f"{where} key"): ctx.r.string(v, f"{where}.{k.value}")
        for k, v in node.value
    }


def _notifier_config(ctx: _Ctx, node: yaml.Node, where: str) -> str:
    path = ctx.base / ctx.r.string(node, where)
    try:
        load_notifier_config(path)  # refuse a bad routing file before anything starts
    except ConfigError as e:
        raise ctx.r.fail(node, f"{where}: {e}") from None
    return str(path)


def _scrape_configs(ctx: _Ctx, node: yaml.Node, where: str) -> list[Any]:
    s = ctx.cfg.satellite
    timeout = s.scrape_timeout
    if "satellite.scrape_timeout" not in ctx.given:
        timeout = min(timeout, s.scrape_interval)
    return parse_scrape_configs(ctx.r, node, ctx.base, s.scrape_interval, timeout)


def _checks(ctx: _Ctx, seq: yaml.Node, where: str) -> list[CheckSpec]:
    r = ctx.r
    if not isinstance(seq, yaml.SequenceNode):
        raise r.fail(seq, f"{where} must be a list of checks")
    checks: list[CheckSpec] = []
    for i, n in enumerate(seq.value):
        at = f"{where}[{i}]"
        c = r.mapping(n, at, {"name", "command", "interval", "timeout", "builtin"})
        if "builtin" in c:
            name = r.string(c["builtin"], at + ".builtin")
            if name not in BUILTIN_CHECKS or set(c) - {"builtin", "interval", "timeout"}:
                raise r.fail(
                    n,
                    f"{at}: builtin takes one of {', '.join(sorted(BUILTIN_CHECKS))}, "
                    "optionally with interval and timeout",
                )
            base = BUILTIN_CHECKS[name]
            name, command, interval, timeout = base.name, base.command, base.interval, base.timeout
        else:
            for req in ("name", "command"):
                if req not in c:
                    raise r.fail(n, f"{at} needs {req}")
            name = r.string(c["name"], at + ".name")
            command = r.string(c["command"], at + ".command")
            interval, timeout = 30.0, 10.0
        if "interval" in c:
            interval = r.duration(c["interval"], at + ".interval")
        if "timeout" in c:
            timeout = r.duration(c["timeout"], at + ".timeout")
        spec = CheckSpec(name=name, command=command, interval=interval, timeout=timeout)
        try:
            if "builtin" not in c:  # a builtin's own timeout may exceed a shorter interval
                spec.validate()
        except ValueError as e:
            raise r.fail(n, f"{at}: {e}") from None
        if any(x.name == spec.name for x in checks):
            raise r.fail(n, f"{at}: a check named {spec.name!r} is defined twice")
        checks.append(spec)
    return checks


def _satellite_check(ctx: _Ctx, m: dict[str, yaml.Node], node: yaml.Node) -> None:
    s = ctx.cfg.satellite
    if "scrape_timeout" not in m:
        s.scrape_timeout = min(s.scrape_timeout, s.scrape_interval)  # as Prometheus does
    if s.scrape_timeout > s.scrape_interval:
        where = m.get("scrape_timeout") or m.get("scrape_interval") or node
        raise ctx.r.fail(where, "satellite.scrape_timeout must not exceed scrape_interval")


def _policy_check(ctx: _Ctx, m: dict[str, yaml.Node], node: yaml.Node) -> None:
    try:
        ctx.cfg.satellite.policy.validate()
    except InvalidPolicyConfig as e:
        raise ctx.r.fail(node, f"satellite.policy: {e}") from None


def _security_check(ctx: _Ctx, m: dict[str, yaml.Node], node: yaml.Node) -> None:
    sec = ctx.cfg.security
    if bool(sec.tls_cert) != bool(sec.tls_key):
        raise ctx.r.fail(node, "security: tls_cert and tls_key go together")
    if "require_client_cert" in m and sec.require_client_cert and not sec.tls_ca:
        raise ctx.r.fail(m["require_client_cert"], "security.require_client_cert needs tls_ca")


def _limits_check(ctx: _Ctx, m: dict[str, yaml.Node], node: yaml.Node) -> None:
    for name, problem in ctx.cfg.limits.problems():
        raise ctx.r.fail(m.get(name, node), f"master.{name} {problem}")


def _acls(ctx: _Ctx, node: yaml.Node, where: str) -> Acls:
    return parse_acls(ctx.r, node)


def _adopt(read: Callable[[YamlReader, yaml.Node, Path], Any]) -> Read:
    """A reader of a section's own module (archive, remote_write...), which checks its keys."""
    return lambda ctx, node, where: read(ctx.r, node, ctx.base)


_ADVERTISE = (
    "The host name or address others reach this process at, when its own host name is not "
    "reachable (NAT, containers, several interfaces). The flag --advertise-host wins."
)

SCHEMA = Section(
    "",
    "Orbiter reads one YAML file (`--config FILE`, env `ORBITER_CONFIG`). Every key is "
    "optional. Relative paths in it resolve against the folder the file is in.",
    (
        Section(
            "master",
            "The master process (`orbiter master`, `orbiter up`).",
            (
                Key("advertise_host", "host", _ADVERTISE, "master1.example.org", _host,
                    "master.advertise_host", "the bound address, or the host name"),
                Key("api_rate", "number", "API calls per second per principal@host after "
                    "the burst (0: no limit); unauthenticated loopback callers are not "
                    "limited. Over it: HTTP 429 with Retry-After, gRPC RESOURCE_EXHAUSTED.",
                    "500", _number, "limits.api_rate"),
                Key("api_burst", "number", "API calls a client may make at once.", "2000",
                    _number, "limits.api_burst"),
                Key("max_frameworks_per_principal", "whole number",
                    "Frameworks registered (not torn down) per authenticated principal.",
                    "100", _whole, "limits.max_frameworks_per_principal"),
                Key("max_agents_per_principal", "whole number",
                    "Agents admitted (not removed) per authenticated principal; agents often "
                    "share one, so at least the cluster's size.", "10000", _whole,
                    "limits.max_agents_per_principal"),
                Key("max_silences", "whole number", "Silences active or pending, everyone's.",
                    "10000", _whole, "limits.max_silences"),
            ),
            _limits_check,
        ),
        Section(
            "satellite",
            "Monitoring beside the leading master: scrapes, rules, alerts and the actions "
            "that take agents out of service within the safety policy.",
            (
                Key("enabled", "boolean", "Run Satellite beside the master.", "true",
                    _boolean, "satellite_enabled"),
                Key("rule_files", "list of paths",
                    "Prometheus rule files. Relative paths resolve against the configuration "
                    "file's folder; each must exist and be valid, or the start is refused.",
                    "[alerts/default.rules.yml]", _rule_files, "satellite.rule_files",
                    "the shipped default rules"),
                Key("scrape_interval", "duration", "How often every target is scraped.",
                    "15s", _duration, "satellite.scrape_interval"),
                Key("scrape_timeout", "duration",
                    "Give up on a scrape after this long; at most scrape_interval.",
                    "10s", _duration, "satellite.scrape_timeout"),
                Key("evaluation_interval", "duration", "How often rules are evaluated.",
                    "15s", _duration, "satellite.evaluation_interval"),
                Key("retention", "duration",
                    "History the TSDB keeps for queries; never less than the longest rule "
                    "range plus 5m.", "1h", _duration_or_zero, "satellite.retention"),
                Key("webhooks", "list of URLs",
                    "Alerts are posted here in Alertmanager's webhook format.",
                    "[http://127.0.0.1:9099/alerts]", _webhooks, "satellite.webhooks"),
                Key("external_labels", "mapping of name: value",
                    "Labels added to every alert and archived sample.", "{cluster: prod}",
                    _labels, "satellite.external_labels"),
                Key("external_url", "URL", "Where users reach Orbiter; alerts link here.",
                    "http://orbiter.example:5051", _string, "satellite.external_url",
                    "the master's HTTP URL"),
                Key("notifier_config", "path",
                    "The built-in notifier's routes, receivers and inhibit rules, in "
                    "Alertmanager's format (relative to this file's folder).",
                    "alertmanager.yml", _notifier_config, "satellite.notifier_config"),
                Key("alertmanagers", "list", "Prometheus's `alerting.alertmanagers`.",
                    '[{static_configs: [{targets: ["127.0.0.1:9093"]}]}]',
                    _adopt(parse_alertmanagers), "satellite.alertmanagers"),
                Key("resend_delay", "duration",
                    "Firing alerts are sent to Alertmanagers again this often.", "1m",
                    _duration, "satellite.resend_delay"),
                Key("external_alert_ttl", "duration",
                    "An alert received from an Alertmanager webhook is dropped after this "
                    "long without news.", "10m", _duration, "satellite.external_alert_ttl"),
                Key("scrape_configs", "list", "More targets, in Prometheus's syntax.",
                    '[{job_name: zookeeper, static_configs: [{targets: ["zk1:7000"]}]}]',
                    _scrape_configs, "satellite.scrape_jobs"),
                Key("archive", "mapping",
                    "History beyond the TSDB: samples to InfluxDB, events to Elasticsearch.",
                    '{influxdb: {url: "http://influx:8086", version: 1, database: orbiter}}',
                    _adopt(parse_archive), "satellite.archive"),
                Key("remote_write", "list", "Prometheus's remote_write (a subset).",
                    "[{url: http://victoria:8428/api/v1/write}]",
                    _adopt(parse_remote_write), "satellite.remote_write"),
                Section(
                    "policy",
                    "The safety policy: how much Satellite may take out of service.",
                    (
                        Key("max_unhealthy_fraction", "number from 0 to 1",
                            "At most this share of agents out of service at once.", "0.3",
                            _number, "satellite.policy.max_unhealthy_fraction"),
                        Key("max_actions_per_window", "whole number",
                            "At most this many actions per window.", "5", _whole,
                            "satellite.policy.max_actions_per_window"),
                        Key("window", "duration", "The window max_actions_per_window counts.",
                            "10m", _duration, "satellite.policy.window_seconds"),
                        Key("min_active_agents", "whole number",
                            "Never leave fewer active agents than this.", "1", _whole,
                            "satellite.policy.min_active_agents"),
                        Key("cooldown", "duration",
                            "An alert must stay resolved this long before the agent is "
                            "reactivated.", "5m", _duration_or_zero,
                            "satellite.policy.cooldown_seconds"),
                        Key("flap_limit", "whole number",
                            "Actions on one agent per flap_window before Satellite stops "
                            "acting on it.", "3", _whole, "satellite.policy.flap_limit"),
                        Key("flap_window", "duration", "The window flap_limit counts.", "1h",
                            _duration, "satellite.policy.flap_window_seconds"),
                        Key("dry_run", "boolean", "Decide and log, but act on nothing.",
                            "false", _boolean, "satellite.policy.dry_run"),
                    ),
                    _policy_check,
                ),
            ),
            _satellite_check,
        ),
        Section(
            "agent",
            "Agents (`orbiter agent`, and those `orbiter up` starts).",
            (
                Key("watch_paths", "list of paths",
                    "Disks whose free space the agent reports as metrics.",
                    "[/tmp, /var/lib/docker]", _strings, "agent.watch_paths"),
                Key("checks", "list",
                    "Health checks whose exit code and output become metrics: "
                    "`{builtin: NAME}` (disk-writable, zombie-count, clock-sane) or "
                    "`{name, command, interval, timeout}`.",
                    '[{builtin: disk-writable}, {name: nfs, command: "stat -t /mnt/nfs"}]',
                    _checks, "agent.checks"),
                Key("advertise_host", "host", _ADVERTISE, "10.0.0.7", _host,
                    "agent.advertise_host", "the host name"),
            ),
        ),
        Section(
            "security",
            "TLS and identity; the flags --tls-cert, --tls-key, --tls-ca, --credentials and "
            "--require-client-cert override these. Paths are relative to this file's folder.",
            (
                Key("tls_cert", "path", "This process's certificate, PEM.", "certs/master.pem",
                    _file, "security.tls_cert"),
                Key("tls_key", "path", "Its private key, PEM; goes with tls_cert.",
                    "certs/master.key", _file, "security.tls_key"),
                Key("tls_ca", "path", "The CA peers' certificates are verified against.",
                    "certs/ca.pem", _file, "security.tls_ca"),
                Key("require_client_cert", "boolean",
                    "Refuse TLS clients without a certificate; needs tls_ca.", "false",
                    _boolean, "security.require_client_cert"),
                Key("credentials", "path", "Principals and tokens: `principals: [{name, token}]`.",
                    "credentials.yml", _file, "security.credentials"),
                Key("satellite_principal", "string",
                    "The principal whose maintenance is signed `by: satellite`.", "satellite",
                    _string, "security.satellite_principal"),
                Key("acls", "mapping",
                    "Who may do what, Mesos-like; once given, what no rule allows is refused. "
                    "Lists of `{principals, <objects>, allow}` rules under register_frameworks, "
                    "update_weights, update_quotas (roles), run_tasks (users), "
                    "teardown_frameworks, kill_tasks, "
                    "read_sandboxes (framework_principals), maintain_agents, register_agents "
                    "(agents), reserve_resources, create_volumes (roles), unreserve_resources "
                    "(reserver_principals), destroy_volumes (creator_principals), "
                    "reload_rules, manage_silences; and `permissive`. See the README's "
                    "\"Who may do what\".",
                    "{run_tasks: [{principals: [web], users: [www-data]}]}", _acls,
                    "security.acls", "off: every principal may do everything but run as root"),
            ),
            _security_check,
        ),
    ),
)  # fmt: skip


# ---------------------------------------------------------------------- reading


def load_config(path: str | Path) -> OrbiterConfig:
    """Read and validate a configuration file; unset values keep their defaults.

    Every mistake in the file is reported at once, one `file:line: message` a line."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"{p}: cannot read the configuration file: {e.strerror}") from None
    except UnicodeDecodeError as e:
        raise ConfigError(f"{p}: not UTF-8 text: {e.reason} at byte {e.start}") from None
    try:
        root = yaml.compose(text)
    except yaml.YAMLError as e:
        raise ConfigError(f"{p}: not valid YAML: {e}") from None
    cfg = default_config()
    cfg.source = str(p)
    if root is None:
        return cfg
    ctx = _Ctx(p, cfg)
    _read_section(ctx, SCHEMA, root, "")
    if ctx.errors:
        errors = sorted(dict.fromkeys(ctx.errors), key=ctx.line_of)  # stable, each once
        raise ConfigError("\n".join(errors), errors)
    return ctx.cfg


def _read_section(ctx: _Ctx, section: Section, node: yaml.Node, where: str) -> None:
    entries = {e.name: e for e in section.entries}
    if not isinstance(node, yaml.MappingNode):
        what = where or "the file"
        ctx.report(ctx.r.fail(node, f"{what} must be a mapping of {', '.join(entries)}"))
        return
    given: dict[str, yaml.Node] = {}
    for k, v in node.value:
        name = k.value if isinstance(k, yaml.ScalarNode) else "?"
        if name not in entries:
            ctx.report(ctx.r.fail(k, unknown_key(where, str(name), entries)))
        elif name in given:
            ctx.report(ctx.r.fail(k, f"{_join(where, name)} is given twice"))
        else:
            given[name] = v
            ctx.given.add(_join(where, name))
    for entry in section.entries:  # schema order: later keys may use earlier ones' values
        if entry.name not in given:
            continue
        at = _join(where, entry.name)
        if isinstance(entry, Section):
            _read_section(ctx, entry, given[entry.name], at)
            continue
        try:
            ctx.cfg = _store(ctx.cfg, entry.to.split("."), entry.read(ctx, given[entry.name], at))
        except ConfigError as e:
            ctx.report(e)
    if section.check is not None:
        try:
            section.check(ctx, given, node)
        except ConfigError as e:
            ctx.report(e)


def _join(where: str, name: str) -> str:
    return f"{where}.{name}" if where else name


def _store(obj: Any, names: list[str], value: Any) -> Any:
    """obj with the attribute at `names` set to value; frozen dataclasses are replaced."""
    if len(names) > 1:
        value = _store(getattr(obj, names[0]), names[1:], value)
    params = getattr(obj, "__dataclass_params__", None)
    if params is not None and params.frozen:
        return dataclasses.replace(obj, **{names[0]: value})
    setattr(obj, names[0], value)
    return obj


# ---------------------------------------------------------------------- reference


def reference() -> str:
    """docs/configuration.md, from SCHEMA: `orbiter config reference` writes it."""
    out = [
        "# Configuration reference",
        "",
        "<!-- Generated from orbiter/config.py's SCHEMA by `orbiter config reference "
        "--output docs/configuration.md`; do not edit by hand. -->",
        "",
        SCHEMA.doc,
        "",
        "A mistake stops the start and names each wrong line, all of them at once, e.g. "
        "`orbiter.yml:3: unknown key satelite; did you mean satellite?`.",
        "",
        "Durations are written `30s`, `5m`, `2h`, `1h30m`, `250ms` or plain seconds.",
    ]
    defaults = default_config()
    for entry in SCHEMA.entries:
        _reference_entry(out, entry, "", defaults)
    out += ["", "## A complete example", "", "```yaml", *_example(SCHEMA, 0), "```", ""]
    return "\n".join(out)


def _reference_entry(out: list[str], entry: Key | Section, where: str, defaults: Any) -> None:
    at = _join(where, entry.name)
    if isinstance(entry, Key):
        out += ["", f"## `{at}`", "", entry.doc, "", *_key_rows([entry], defaults)]
        return
    out += ["", f"## `{at}`", "", entry.doc]
    keys = [e for e in entry.entries if isinstance(e, Key)]
    if keys:
        out += ["", *_key_rows(keys, defaults)]
    for sub in entry.entries:
        if isinstance(sub, Section):
            _reference_entry(out, sub, at, defaults)


def _key_rows(keys: list[Key], defaults: Any) -> list[str]:
    rows = ["| key | type | default | example | meaning |", "|---|---|---|---|---|"]
    for k in keys:
        default = k.default or _show(_value_at(defaults, k.to), k.type)
        cells = [f"`{k.name}`", k.type, default, f"`{k.example}`", k.doc]
        rows.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return rows


def _value_at(obj: Any, path: str) -> Any:
    for name in path.split("."):
        obj = getattr(obj, name)
    return obj


def _show(value: Any, type_: str) -> str:
    if type_ == "duration":
        return f"`{format_duration(value)}`"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if value in ("", None) or value == [] or value == {}:
        return "none"
    if isinstance(value, list | dict):
        return f"`{yaml.safe_dump(value, default_flow_style=True).strip()}`"
    return f"`{value}`"


def _example(section: Section, depth: int) -> list[str]:
    pad = "  " * depth
    lines: list[str] = []
    for e in section.entries:
        if isinstance(e, Section):
            lines += [f"{pad}{e.name}:", *_example(e, depth + 1)]
        else:
            lines.append(f"{pad}{e.name}: {e.example}")
    return lines
