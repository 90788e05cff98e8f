"""Alertmanager's configuration file, the part the built-in notifier supports.

An operator who already has an `alertmanager.yml` points Orbiter at it and
gets the same routing. What is read (Alertmanager 0.25's keys and defaults):

- `global`: `resolve_timeout` (5m), `smtp_from`, `smtp_smarthost`,
  `smtp_hello` (localhost), `smtp_auth_username`, `smtp_auth_password`,
  `smtp_auth_identity`, `smtp_require_tls` (true), `slack_api_url`,
  `http_config`;
- `route`: the routing tree (see `routing.py`), with `match`, `match_re`
  and `matchers`;
- `receivers`: `webhook_configs`, `email_configs`, `slack_configs`, into the
  values of `receiver_configs.py` with the global defaults applied as
  Alertmanager applies them (email `from`, `smarthost`, `hello`, auth and
  `require_tls` from `smtp_*`; Slack `api_url` from `slack_api_url`; the
  global `http_config` for webhook and Slack configs that have none);
- `inhibit_rules`, legacy `source_match*`/`target_match*` included;
- `templates`: accepted and ignored, with a warning: the built-in senders
  have their own default texts, and refusing the file would make a working
  Alertmanager configuration unusable for a cosmetic reason.

Everything else Alertmanager knows (other integrations, time intervals,
`*_file` secrets) is refused with "not supported by the built-in notifier";
anything it does not know is refused as an unknown key. Validation is
`amtool check-config`'s: the root route needs a receiver and no matchers
or `continue`, every receiver a route names exists, names are unique,
durations are Prometheus durations (`1h30m`, no bare numbers), label names
valid, regular expressions compile. Every error is `file:line: message`.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from orbiter.alerts.inhibit import InhibitRule
from orbiter.alerts.matchers import (
    LABEL_NAME,
    Matcher,
    MatcherError,
    from_match_maps,
    parse_matchers,
)
from orbiter.alerts.receiver_configs import (
    BasicAuth,
    EmailConfig,
    HTTPConfig,
    ReceiverConfig,
    SlackConfig,
    TLSConfig,
    WebhookConfig,
)
from orbiter.alerts.routing import Route, RouteConfig, build_route_tree
from orbiter.yamlreader import ConfigError, YamlReader

log = logging.getLogger("orbiter.alerts")

__all__ = [
    "AlertmanagerConfig",
    "ConfigError",
    "GlobalConfig",
    "load_alertmanager_config",
    "parse_alertmanager_config",
    "parse_prometheus_duration",
]

_NULL = "tag:yaml.org,2002:null"
_DURATION = re.compile(
    r"(?:(\d+)y)?(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?(?:(\d+)ms)?\Z"
)
_DURATION_UNITS = (365 * 86400, 7 * 86400, 86400, 3600, 60, 1, 0.001)


def parse_prometheus_duration(text: str) -> float:
    """Seconds in a Prometheus duration (`model.ParseDuration`): `1h30m`, `90s`, `0`."""
    if text == "0":
        return 0.0
    m = _DURATION.match(text)
    if not text or m is None:
        raise ValueError(
            f"not a valid duration string: {text!r}; use units y w d h m s ms, e.g. 30s, 5m, 1h30m"
        )
    return sum(int(g) * unit for g, unit in zip(m.groups(), _DURATION_UNITS, strict=True) if g)


@dataclass(frozen=True)
class GlobalConfig:
    resolve_timeout: float = 300.0
    smtp_from: str = ""
    smtp_smarthost: tuple[str, int] | None = None
    smtp_hello: str = "localhost"
    smtp_auth_username: str = ""
    smtp_auth_password: str = ""
    smtp_auth_identity: str = ""
    smtp_require_tls: bool = True
    slack_api_url: str = ""
    http_config: HTTPConfig = field(default_factory=HTTPConfig)


@dataclass(frozen=True)
class AlertmanagerConfig:
    global_: GlobalConfig
    route: Route
    """The routing tree with options inherited and keys computed."""
    route_config: RouteConfig
    receivers: tuple[ReceiverConfig, ...]
    inhibit_rules: tuple[InhibitRule, ...] = ()
    templates: tuple[str, ...] = ()
    """Template files named in the file; ignored by the built-in notifier."""

    def receiver(self, name: str) -> ReceiverConfig:
        for r in self.receivers:
            if r.name == name:
                return r
        raise KeyError(name)


# ---------------------------------------------------------------------- reading

_TOP = {"global", "route", "receivers", "inhibit_rules", "templates"}
_TOP_NO = {"mute_time_intervals", "time_intervals"}
_GLOBAL = {
    "resolve_timeout", "smtp_from", "smtp_smarthost", "smtp_hello", "smtp_auth_username",
    "smtp_auth_password", "smtp_auth_identity", "smtp_require_tls", "slack_api_url",
    "http_config",
}
_GLOBAL_NO = {
    "smtp_auth_password_file", "smtp_auth_secret", "slack_api_url_file", "pagerduty_url",
    "opsgenie_api_url", "opsgenie_api_key", "opsgenie_api_key_file", "wechat_api_url",
    "wechat_api_secret", "wechat_api_corp_id", "victorops_api_url", "victorops_api_key",
    "victorops_api_key_file", "telegram_api_url", "webex_api_url",
}
_ROUTE = {
    "receiver", "group_by", "match", "match_re", "matchers", "continue", "routes",
    "group_wait", "group_interval", "repeat_interval",
}
_ROUTE_NO = {"mute_time_intervals", "active_time_intervals"}
_RECEIVER = {"name", "webhook_configs", "email_configs", "slack_configs"}
_RECEIVER_NO = {
    "discord_configs", "pagerduty_configs", "opsgenie_configs", "wechat_configs",
    "pushover_configs", "victorops_configs", "sns_configs", "telegram_configs", "webex_configs",
}
_WEBHOOK = {"send_resolved", "url", "max_alerts", "http_config"}
_WEBHOOK_NO = {"url_file"}
_EMAIL = {
    "send_resolved", "to", "from", "hello", "smarthost", "auth_username", "auth_password",
    "auth_identity", "headers", "html", "text", "require_tls", "tls_config",
}
_EMAIL_NO = {"auth_password_file", "auth_secret"}
_SLACK = {"send_resolved", "api_url", "channel", "username", "title", "text", "http_config"}
_SLACK_NO = {
    "api_url_file", "color", "title_link", "pretext", "footer", "fallback", "callback_id",
    "icon_emoji", "icon_url", "image_url", "thumb_url", "link_names", "short_fields",
    "mrkdwn_in", "fields", "actions",
}
_HTTP = {"basic_auth", "bearer_token", "tls_config"}
_HTTP_NO = {
    "authorization", "oauth2", "proxy_url", "no_proxy", "proxy_from_environment",
    "proxy_connect_header", "follow_redirects", "enable_http2", "bearer_token_file",
}
_BASIC_AUTH = {"username", "password"}
_BASIC_AUTH_NO = {"password_file"}
_TLS = {"ca_file", "cert_file", "key_file", "server_name", "insecure_skip_verify"}
_TLS_TEXT = _TLS - {"insecure_skip_verify"}
_TLS_NO = {"min_version", "max_version"}
_INHIBIT = {
    "source_match", "source_match_re", "source_matchers", "target_match", "target_match_re",
    "target_matchers", "equal",
}


class _Reader(YamlReader):
    def section(
        self, node: yaml.Node, where: str, keys: set[str], unsupported: set[str] = frozenset()
    ) -> dict[str, yaml.Node]:
        """A mapping of known keys; null values count as absent, as in Alertmanager."""
        if self.is_null(node):
            return {}
        if isinstance(node, yaml.MappingNode):
            for k, _ in node.value:
                if isinstance(k, yaml.ScalarNode) and k.value in unsupported:
                    raise self.fail(
                        k,
                        f"{where}.{k.value} is Alertmanager's but not supported by the "
                        f"built-in notifier; supported here: {', '.join(sorted(keys))}",
                    )
        return {k: v for k, v in self.mapping(node, where, keys).items() if not self.is_null(v)}

    @staticmethod
    def is_null(node: yaml.Node) -> bool:
        return isinstance(node, yaml.ScalarNode) and node.tag == _NULL

    def text(self, node: yaml.Node, where: str) -> str:
        """A scalar as text, the way Go's YAML decoder fills a string (numbers included)."""
        if not isinstance(node, yaml.ScalarNode):
            raise self.fail(node, f"{where} must be a single value")
        return "" if node.tag == _NULL else str(node.value)

    def items(self, node: yaml.Node, where: str) -> list[yaml.Node]:
        if self.is_null(node):
            return []
        if not isinstance(node, yaml.SequenceNode):
            raise self.fail(node, f"{where} must be a list")
        return list(node.value)

    def text_map(self, node: yaml.Node, where: str) -> list[tuple[yaml.Node, str, str]]:
        if self.is_null(node):
            return []
        if not isinstance(node, yaml.MappingNode):
            raise self.fail(node, f"{where} must be a mapping of label names to values")
        out: list[tuple[yaml.Node, str, str]] = []
        seen: set[str] = set()
        for k, v in node.value:
            name = self.text(k, where)
            if name in seen:
                raise self.fail(k, f"{where}.{name} is given twice")
            seen.add(name)
            out.append((k, name, self.text(v, f"{where}.{name}")))
        return out

    def label_name(self, node: yaml.Node, name: str, where: str) -> str:
        if not LABEL_NAME.match(name):
            raise self.fail(
                node, f"{where}: invalid label name {name!r} (letters, digits and _, "
                "not starting with a digit)",
            )
        return name

    def am_duration(self, node: yaml.Node, where: str) -> float:
        try:
            return parse_prometheus_duration(self.text(node, where))
        except ValueError as e:
            raise self.fail(node, f"{where}: {e}") from None

    def flag(self, node: yaml.Node, where: str) -> bool:
        return self.boolean(node, where)

    def url(self, node: yaml.Node, where: str) -> str:
        text = self.text(node, where)
        parts = urlsplit(text)
        if parts.scheme not in ("http", "https"):
            raise self.fail(node, f"{where}: URL {text!r} must start with http:// or https://")
        if not parts.netloc:
            raise self.fail(node, f"{where}: URL {text!r} has no host")
        return text

    def host_port(self, node: yaml.Node, where: str) -> tuple[str, int] | None:
        text = self.text(node, where)
        if not text:
            return None
        m = re.fullmatch(r"\[([^\]]*)\]:(\d*)|([^:\[\]]*):(\d*)", text)
        if m is None:
            raise self.fail(node, f"{where}: {text!r} is not host:port")
        host = m.group(1) if m.group(1) is not None else m.group(3)
        port = m.group(2) if m.group(1) is not None else m.group(4)
        if not port:
            raise self.fail(node, f"{where}: address {text!r}: port cannot be empty")
        return host, int(port)

    # ------------------------------------------------------------------ matchers

    def matcher_list(self, node: yaml.Node, where: str) -> list[Matcher]:
        out: list[Matcher] = []
        for i, item in enumerate(self.items(node, where)):
            try:
                out.extend(parse_matchers(self.text(item, f"{where}[{i}]")))
            except MatcherError as e:
                raise self.fail(item, f"{where}[{i}]: {e}") from None
        return out

    def match_map(self, node: yaml.Node, where: str, regex: bool) -> list[Matcher]:
        out: list[Matcher] = []
        for k, name, value in self.text_map(node, where):
            self.label_name(k, name, where)
            try:
                out.extend(from_match_maps(*(({}, {name: value}) if regex else ({name: value},))))
            except MatcherError as e:
                raise self.fail(k, f"{where}.{name}: {e}") from None
        return out

    # ------------------------------------------------------------------ sections

    def tls(self, node: yaml.Node, where: str) -> TLSConfig:
        m = self.section(node, where, _TLS, _TLS_NO)
        return TLSConfig(
            **{k: self.text(v, f"{where}.{k}") for k, v in m.items() if k in _TLS_TEXT},
            insecure_skip_verify=(
                self.flag(m["insecure_skip_verify"], f"{where}.insecure_skip_verify")
                if "insecure_skip_verify" in m
                else False
            ),
        )

    def http(self, node: yaml.Node, where: str) -> HTTPConfig:
        m = self.section(node, where, _HTTP, _HTTP_NO)
        auth = None
        if "basic_auth" in m:
            a = self.section(m["basic_auth"], f"{where}.basic_auth", _BASIC_AUTH, _BASIC_AUTH_NO)
            auth = BasicAuth(
                username=self.text(a["username"], f"{where}.basic_auth.username")
                if "username" in a
                else "",
                password=self.text(a["password"], f"{where}.basic_auth.password")
                if "password" in a
                else "",
            )
        bearer = self.text(m.get("bearer_token", _null_node()), f"{where}.bearer_token")
        if auth is not None and bearer:
            raise self.fail(
                m["bearer_token"], f"{where}: at most one of basic_auth and bearer_token"
            )
        tls = self.tls(m["tls_config"], f"{where}.tls_config") if "tls_config" in m else TLSConfig()
        return HTTPConfig(basic_auth=auth, bearer_token=bearer, tls_config=tls)

    def global_(self, node: yaml.Node | None) -> GlobalConfig:
        if node is None:
            return GlobalConfig()
        m = self.section(node, "global", _GLOBAL, _GLOBAL_NO)
        kw: dict[str, Any] = {}
        for k in ("smtp_from", "smtp_hello", "smtp_auth_username", "smtp_auth_password",
                  "smtp_auth_identity"):
            if k in m:
                kw[k] = self.text(m[k], f"global.{k}")
        if "resolve_timeout" in m:
            kw["resolve_timeout"] = self.am_duration(m["resolve_timeout"], "global.resolve_timeout")
        if "smtp_smarthost" in m:
            kw["smtp_smarthost"] = self.host_port(m["smtp_smarthost"], "global.smtp_smarthost")
        if "smtp_require_tls" in m:
            kw["smtp_require_tls"] = self.flag(m["smtp_require_tls"], "global.smtp_require_tls")
        if "slack_api_url" in m:
            kw["slack_api_url"] = self.url(m["slack_api_url"], "global.slack_api_url")
        if "http_config" in m:
            kw["http_config"] = self.http(m["http_config"], "global.http_config")
        return GlobalConfig(**kw)

    def route(self, node: yaml.Node, where: str) -> RouteConfig:
        if not isinstance(node, yaml.MappingNode):
            raise self.fail(node, f"{where} must be a mapping of {', '.join(sorted(_ROUTE))}")
        m = self.section(node, where, _ROUTE, _ROUTE_NO)
        matchers = [
            *(self.match_map(m["match"], f"{where}.match", False) if "match" in m else []),
            *(self.match_map(m["match_re"], f"{where}.match_re", True) if "match_re" in m else []),
            *(self.matcher_list(m["matchers"], f"{where}.matchers") if "matchers" in m else []),
        ]
        group_by: list[str] = []
        group_by_all = False
        if "group_by" in m:
            for i, item in enumerate(self.items(m["group_by"], f"{where}.group_by")):
                name = self.text(item, f"{where}.group_by[{i}]")
                if name == "...":
                    group_by_all = True
                    continue
                self.label_name(item, name, f"{where}.group_by")
                if name in group_by:
                    raise self.fail(item, f"{where}.group_by: duplicated label {name!r}")
                group_by.append(name)
            if group_by and group_by_all:
                raise self.fail(
                    m["group_by"],
                    f"{where}.group_by: cannot have the wildcard '...' and other labels together",
                )
        timers: dict[str, float] = {}
        for k in ("group_wait", "group_interval", "repeat_interval"):
            if k in m:
                timers[k] = self.am_duration(m[k], f"{where}.{k}")
                if k != "group_wait" and timers[k] == 0:
                    raise self.fail(m[k], f"{where}.{k} cannot be zero")
        children = tuple(
            self.route(c, f"{where}.routes[{i}]")
            for i, c in enumerate(self.items(m.get("routes", _null_node()), f"{where}.routes"))
        )
        return RouteConfig(
            receiver=self.text(m["receiver"], f"{where}.receiver") or None
            if "receiver" in m
            else None,
            group_by=tuple(group_by) or None,
            group_by_all=group_by_all,
            matchers=tuple(matchers),
            continue_=self.flag(m["continue"], f"{where}.continue") if "continue" in m else False,
            routes=children,
            line=node.start_mark.line + 1,
            **timers,
        )

    def webhook(self, node: yaml.Node, where: str, g: GlobalConfig) -> WebhookConfig:
        m = self.section(node, where, _WEBHOOK, _WEBHOOK_NO)
        if "url" not in m:
            raise self.fail(node, f"{where}: missing url in webhook config")
        return WebhookConfig(
            url=self.url(m["url"], f"{where}.url"),
            send_resolved=self.flag(m["send_resolved"], f"{where}.send_resolved")
            if "send_resolved" in m
            else True,
            max_alerts=self.whole(m["max_alerts"], f"{where}.max_alerts")
            if "max_alerts" in m
            else 0,
            http_config=self.http(m["http_config"], f"{where}.http_config")
            if "http_config" in m
            else g.http_config,
        )

    def email(self, node: yaml.Node, where: str, g: GlobalConfig) -> EmailConfig:
        m = self.section(node, where, _EMAIL, _EMAIL_NO)

        def text(k: str) -> str:
            return self.text(m[k], f"{where}.{k}") if k in m else ""

        if not text("to"):
            raise self.fail(node, f"{where}: missing to address in email config")
        smarthost = self.host_port(m.get("smarthost", _null_node()), f"{where}.smarthost")
        if smarthost is None:
            if g.smtp_smarthost is None:
                raise self.fail(
                    node, f"{where}: no smarthost, and no global smtp_smarthost set either"
                )
            smarthost = g.smtp_smarthost
        from_ = text("from") or g.smtp_from
        if not from_:
            raise self.fail(node, f"{where}: no from, and no global smtp_from set either")
        headers: list[tuple[str, str]] = []
        for k, name, value in self.text_map(m.get("headers", _null_node()), f"{where}.headers"):
            canonical = "-".join(p[:1].upper() + p[1:].lower() for p in name.split("-"))
            if any(h == canonical for h, _ in headers):
                raise self.fail(k, f"{where}.headers: duplicate header {canonical!r}")
            headers.append((canonical, value))
        return EmailConfig(
            to=text("to"),
            from_=from_,
            smarthost=smarthost,
            hello=text("hello") or g.smtp_hello,
            auth_username=text("auth_username") or g.smtp_auth_username,
            auth_password=text("auth_password") or g.smtp_auth_password,
            auth_identity=text("auth_identity") or g.smtp_auth_identity,
            require_tls=self.flag(m["require_tls"], f"{where}.require_tls")
            if "require_tls" in m
            else g.smtp_require_tls,
            tls_config=self.tls(m["tls_config"], f"{where}.tls_config")
            if "tls_config" in m
            else TLSConfig(),
            headers=tuple(headers),
            html=text("html"),
            text=text("text"),
            send_resolved=self.flag(m["send_resolved"], f"{where}.send_resolved")
            if "send_resolved" in m
            else False,
        )

    def slack(self, node: yaml.Node, where: str, g: GlobalConfig) -> SlackConfig:
        m = self.section(node, where, _SLACK, _SLACK_NO)
        api_url = self.url(m["api_url"], f"{where}.api_url") if "api_url" in m else g.slack_api_url
        if not api_url:
            raise self.fail(node, f"{where}: no api_url, and no global slack_api_url set either")

        def text(k: str) -> str:
            return self.text(m[k], f"{where}.{k}") if k in m else ""

        return SlackConfig(
            api_url=api_url,
            channel=text("channel"),
            username=text("username"),
            title=text("title"),
            text=text("text"),
            send_resolved=self.flag(m["send_resolved"], f"{where}.send_resolved")
            if "send_resolved" in m
            else False,
            http_config=self.http(m["http_config"], f"{where}.http_config")
            if "http_config" in m
            else g.http_config,
        )

    def receiver(self, node: yaml.Node, where: str, g: GlobalConfig) -> ReceiverConfig:
        m = self.section(node, where, _RECEIVER, _RECEIVER_NO)
        name = self.text(m["name"], f"{where}.name") if "name" in m else ""
        if not name:
            raise self.fail(node, f"{where}: missing name in receiver")

        def each(key: str, read: Any) -> tuple[Any, ...]:
            nodes = self.items(m[key], f"{where}.{key}") if key in m else []
            return tuple(read(n, f"{where}.{key}[{i}]", g) for i, n in enumerate(nodes))

        return ReceiverConfig(
            name=name,
            webhook_configs=each("webhook_configs", self.webhook),
            email_configs=each("email_configs", self.email),
            slack_configs=each("slack_configs", self.slack),
        )

    def inhibit_rule(self, node: yaml.Node, where: str) -> InhibitRule:
        if not isinstance(node, yaml.MappingNode):
            raise self.fail(node, f"{where} must be a mapping of {', '.join(sorted(_INHIBIT))}")
        m = self.section(node, where, _INHIBIT)

        def side(prefix: str) -> tuple[Matcher, ...]:
            out: list[Matcher] = []
            if f"{prefix}_match" in m:
                out += self.match_map(m[f"{prefix}_match"], f"{where}.{prefix}_match", False)
            if f"{prefix}_match_re" in m:
                out += self.match_map(m[f"{prefix}_match_re"], f"{where}.{prefix}_match_re", True)
            if f"{prefix}_matchers" in m:
                out += self.matcher_list(m[f"{prefix}_matchers"], f"{where}.{prefix}_matchers")
            return tuple(out)

        equal: list[str] = []
        for i, item in enumerate(self.items(m.get("equal", _null_node()), f"{where}.equal")):
            name = self.text(item, f"{where}.equal[{i}]")
            equal.append(self.label_name(item, name, f"{where}.equal"))
        return InhibitRule(source=side("source"), target=side("target"), equal=tuple(equal))


def _null_node() -> yaml.Node:
    return yaml.ScalarNode(_NULL, "")


def _check_receivers(r: _Reader, route: RouteConfig, names: set[str], where: str) -> None:
    for i, child in enumerate(route.routes):
        _check_receivers(r, child, names, f"{where}.routes[{i}]")
    if route.receiver is not None and route.receiver not in names:
        known = ", ".join(sorted(names)) or "none"
        raise ConfigError(
            f"{r.path}:{route.line}: {where}: undefined receiver {route.receiver!r} used in "
            f"route; receivers defined: {known}"
        )


def parse_alertmanager_config(text: str, path: str = "<alertmanager config>") -> AlertmanagerConfig:
    """Read an Alertmanager configuration from `text`; `path` names it in errors."""
    r = _Reader(path)
    try:
        doc = yaml.compose(text)
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {e}") from None
    if doc is None or r.is_null(doc):
        raise ConfigError(f"{path}:1: no route provided in config")
    top = r.section(doc, "config", _TOP, _TOP_NO)
    g = r.global_(top.get("global"))
    receivers: list[ReceiverConfig] = []
    for i, node in enumerate(r.items(top.get("receivers", _null_node()), "receivers")):
        rc = r.receiver(node, f"receivers[{i}]", g)
        if any(x.name == rc.name for x in receivers):
            raise r.fail(node, f"receivers[{i}]: receiver name {rc.name!r} is not unique")
        receivers.append(rc)
    if "route" not in top:
        raise r.fail(doc, "no route provided in config; the root route is required")
    route_node = top["route"]
    route_config = r.route(route_node, "route")
    if route_config.continue_:
        raise r.fail(route_node, "route: cannot have continue in the root route")
    if not route_config.receiver:
        raise r.fail(route_node, "route: the root route must specify a default receiver")
    if route_config.matchers:
        raise r.fail(route_node, "route: the root route must not have any matchers")
    _check_receivers(r, route_config, {x.name for x in receivers}, "route")
    rules = tuple(
        r.inhibit_rule(n, f"inhibit_rules[{i}]")
        for i, n in enumerate(r.items(top.get("inhibit_rules", _null_node()), "inhibit_rules"))
    )
    templates: tuple[str, ...] = ()
    if "templates" in top:
        templates = tuple(r.strings(top["templates"], "templates"))
        if templates:
            log.warning(
                "%s:%d: templates %s are ignored: the built-in notifier uses its own default "
                "message texts",
                path,
                top["templates"].start_mark.line + 1,
                ", ".join(templates),
            )
    return AlertmanagerConfig(
        global_=g,
        route=build_route_tree(route_config),
        route_config=route_config,
        receivers=tuple(receivers),
        inhibit_rules=rules,
        templates=templates,
    )


def load_alertmanager_config(path: str | Path) -> AlertmanagerConfig:
    """Read the Alertmanager configuration file at `path` (see the module docstring)."""
    try:
        text = Path(path).read_text()
    except OSError as e:
        raise ConfigError(f"{path}: cannot read the Alertmanager configuration: {e}") from None
    return parse_alertmanager_config(text, str(path))


def load_notifier_config(path: str | Path) -> AlertmanagerConfig:
    """The built-in notifier's file: `load_alertmanager_config`, and every receiver's
    templates parsed now, so a broken one stops the start rather than the first alert."""
    from orbiter.alerts.amtemplate import check_templates

    config = load_alertmanager_config(path)
    for receiver in config.receivers:
        try:
            check_templates(receiver)
        except ValueError as e:
            raise ConfigError(f"{path}: {e}") from None
    return config
