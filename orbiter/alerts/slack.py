"""Slack-compatible webhooks: one message with one attachment per group, as Alertmanager sends.

The JSON is Slack's incoming-webhook format (Mattermost and Rocket.Chat take
it too): `channel`, `username` and one attachment with `title`,
`title_link`, `text`, `fallback`, `color` ("danger" while anything fires,
"good" once all resolved) and `mrkdwn_in`. Title, text, channel and username
are templates over the message's data; empty ones use the defaults in
`amtemplate.py` (`slack.default.title` etc.). Like Alertmanager, a 2xx answer
counts only if its body says so: a JSON `{"ok": true}` or the text `ok`;
anything else is an error that resending will not fix.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import aiohttp

from orbiter.alerts.amtemplate import TemplateSet, template_data
from orbiter.alerts.deliver import DeliveryFailed, post_json
from orbiter.alerts.receiver_configs import SlackConfig

MAX_TITLE_RUNES = 1024
"""Slack cuts longer attachment titles; Alertmanager truncates to this many characters."""

_DEFAULTS = {
    "title": '{{ template "slack.default.title" . }}',
    "title_link": '{{ template "slack.default.titlelink" . }}',
    "text": '{{ template "slack.default.text" . }}',
    "fallback": '{{ template "slack.default.fallback" . }}',
    "color": '{{ template "slack.default.color" . }}',
    "username": '{{ template "slack.default.username" . }}',
}


def _truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def slack_message(
    cfg: SlackConfig, message: Mapping[str, Any], templates: TemplateSet, what: str = "slack"
) -> dict[str, Any]:
    """The JSON document for one group message; TemplateExecError if a template fails."""
    data = template_data(message)

    def render(field: str, text: str) -> str:
        return templates.render(text or _DEFAULTS.get(field, ""), f"{what}.{field}", data)

    attachment = {
        "title": _truncate(render("title", cfg.title), MAX_TITLE_RUNES),
        "title_link": render("title_link", ""),
        "text": render("text", cfg.text),
        "fallback": render("fallback", ""),
        "color": render("color", ""),
        "mrkdwn_in": ["fallback", "pretext", "text"],
    }
    doc: dict[str, Any] = {
        "username": render("username", cfg.username),
        "attachments": [{k: v for k, v in attachment.items() if v}],
    }
    channel = render("channel", cfg.channel)
    if channel:
        doc["channel"] = channel
    return doc


async def send_slack(
    session: aiohttp.ClientSession,
    *,
    cfg: SlackConfig,
    message: Mapping[str, Any],
    templates: TemplateSet,
    what: str,
) -> None:
    doc = slack_message(cfg, message, templates, what)
    answer = await post_json(session, cfg.api_url, doc, cfg.http_config, what)
    body = answer.body.strip()
    if answer.content_type.startswith("application/json"):
        try:
            ok = bool(json.loads(body).get("ok"))
        except (ValueError, AttributeError):
            raise DeliveryFailed(
                f"{what}: {cfg.api_url} answered HTTP {answer.status} with JSON that does not "
                f"parse: {body[:200]!r}",
                retryable=True,
            ) from None
        if not ok:
            raise DeliveryFailed(
                f"{what}: {cfg.api_url} refused the message: {body[:200]}; check the channel "
                "and the webhook's permissions",
                retryable=False,
            )
    elif body != "ok":
        raise DeliveryFailed(
            f"{what}: {cfg.api_url} answered HTTP {answer.status} with {body[:200]!r} instead of "
            "'ok'; is api_url a Slack-compatible incoming webhook?",
            retryable=False,
        )
