"""What each receiver of the built-in notifier is configured with.

These are the receiver parts of Alertmanager's configuration file that the
built-in notifier supports, as plain values. `amconfig.py` reads them from
the file (global defaults already applied); the receivers (`webhook`, email,
Slack-compatible) send with them. Field names follow Alertmanager's YAML keys
(`from` is `from_`, a Python keyword).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from orbiter.httpconfig import BasicAuth, HTTPConfig, TLSConfig

__all__ = [
    "BasicAuth",
    "EmailConfig",
    "HTTPConfig",
    "ReceiverConfig",
    "SlackConfig",
    "TLSConfig",
    "WebhookConfig",
]


@dataclass(frozen=True)
class WebhookConfig:
    url: str
    send_resolved: bool = True
    max_alerts: int = 0
    http_config: HTTPConfig = field(default_factory=HTTPConfig)


@dataclass(frozen=True)
class EmailConfig:
    to: str
    from_: str
    smarthost: tuple[str, int]
    hello: str = "localhost"
    auth_username: str = ""
    auth_password: str = ""
    auth_identity: str = ""
    require_tls: bool = True
    tls_config: TLSConfig = field(default_factory=TLSConfig)
    headers: tuple[tuple[str, str], ...] = ()
    """Extra or overriding headers (Subject, To, From...) as Go templates, in file order."""
    html: str = ""
    """Go template of the HTML body; empty means the default one."""
    text: str = ""
    send_resolved: bool = False


@dataclass(frozen=True)
class SlackConfig:
    """A Slack incoming webhook (or anything that takes its JSON, e.g. Mattermost)."""

    api_url: str
    channel: str = ""
    username: str = ""
    title: str = ""
    text: str = ""
    send_resolved: bool = False
    http_config: HTTPConfig = field(default_factory=HTTPConfig)


@dataclass(frozen=True)
class ReceiverConfig:
    name: str
    webhook_configs: tuple[WebhookConfig, ...] = ()
    email_configs: tuple[EmailConfig, ...] = ()
    slack_configs: tuple[SlackConfig, ...] = ()
