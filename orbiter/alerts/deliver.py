"""Delivering one group message to every integration of a receiver.

`deliver` takes a receiver's config and one Alertmanager-style message (the
dict `payload.webhook_payload` builds) and sends it to each of the
receiver's integrations: webhooks, email, Slack-compatible webhooks. Per
integration it first shapes the message the way Alertmanager's notify
pipeline does (`integration_message`): without `send_resolved` the resolved
alerts are left out (and nothing is sent if none is left), a webhook's
`max_alerts` keeps the first alerts and counts the rest in
`truncatedAlerts`, and status and common labels are recomputed over what
is sent.

Every integration is tried even when another fails; afterwards one
`DeliveryFailed` says what failed and whether trying again can help
(connection errors, timeouts, HTTP 5xx/408/429, SMTP 4xx) or not (a refused
request, bad credentials, a template that fails, an unreadable TLS file).
Retrying is the caller's decision (the dispatcher's); nothing here sleeps.
"""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

import aiohttp

from orbiter import __version__, httpconfig
from orbiter.alerts.amtemplate import TemplateExecError, TemplateSet, defaults
from orbiter.alerts.notify import Outcome, classify
from orbiter.alerts.receiver_configs import (
    EmailConfig,
    HTTPConfig,
    ReceiverConfig,
    TLSConfig,
    WebhookConfig,
)

USER_AGENT = f"Orbiter/{__version__}"
HTTP_TIMEOUT = 10.0
"""Seconds for one HTTP request, connect to last byte."""

_BODY_EXCERPT = 200


class DeliveryFailed(Exception):
    """A message did not reach some integration(s) of a receiver.

    `retryable` is True when sending the same message again later can
    succeed (the far end was down, busy or slow); False when it cannot until
    the configuration or the far end changes. `failures` holds one
    DeliveryFailed per integration that failed, when this one sums them up;
    each names its `integration` ("webhook_configs[0]", "email_configs[1]").
    """

    def __init__(
        self,
        message: str,
        *,
        retryable: bool,
        failures: Sequence[DeliveryFailed] = (),
        integration: str = "",
    ) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.failures = tuple(failures)
        self.integration = integration


# ---------------------------------------------------------------------- pure shaping


def _common(maps: Sequence[Mapping[str, str]]) -> dict[str, str]:
    common = dict(maps[0])
    for m in maps[1:]:
        common = {k: v for k, v in common.items() if m.get(k) == v}
    return common


def integration_message(
    payload: Mapping[str, Any], *, send_resolved: bool, max_alerts: int = 0
) -> dict[str, Any] | None:
    """The message as one integration gets it; None when it has nothing to send.

    Alertmanager drops resolved alerts for integrations without
    `send_resolved` and sends nothing when no alert is left; a webhook's
    `max_alerts` keeps the first ones. Status and common labels and
    annotations describe the alerts that are sent.
    """
    alerts = list(payload.get("alerts", []))
    if not send_resolved:
        alerts = [a for a in alerts if a.get("status") == "firing"]
    if not alerts:
        return None
    kept = alerts[:max_alerts] if max_alerts > 0 else alerts
    return {
        **payload,
        "status": "firing" if any(a.get("status") == "firing" for a in kept) else "resolved",
        "alerts": kept,
        "commonLabels": _common([a.get("labels", {}) for a in kept]),
        "commonAnnotations": _common([a.get("annotations", {}) for a in kept]),
        "truncatedAlerts": int(payload.get("truncatedAlerts", 0)) + len(alerts) - len(kept),
    }


# ---------------------------------------------------------------------- HTTP


def ssl_context(tls: TLSConfig, what: str) -> ssl.SSLContext:
    """An SSLContext for `tls` (CA, client certificate, skip verify); DeliveryFailed if unusable."""
    try:
        return httpconfig.ssl_context(tls) or ssl.create_default_context()
    except (OSError, ssl.SSLError) as e:
        raise DeliveryFailed(
            f"{what}: cannot use tls_config (ca_file={tls.ca_file!r}, cert_file="
            f"{tls.cert_file!r}, key_file={tls.key_file!r}): {e}; fix the files or the paths",
            retryable=False,
        ) from e


auth_headers = httpconfig.auth_headers


@dataclass(frozen=True)
class HTTPAnswer:
    status: int
    content_type: str
    body: str


def _excerpt(body: str) -> str:
    body = body.strip()
    return body if len(body) <= _BODY_EXCERPT else body[:_BODY_EXCERPT] + "..."


async def post_json(
    session: aiohttp.ClientSession,
    url: str,
    document: Any,
    http: HTTPConfig,
    what: str,
) -> HTTPAnswer:
    """POST `document` as JSON; DeliveryFailed unless the answer is 2xx.

    5xx, 408 and 429 and connection failures are retryable (`notify.classify`),
    any other status is not.
    """
    headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT, **auth_headers(http)}
    kwargs: dict[str, Any] = {}
    if url.startswith("https://"):
        kwargs["ssl"] = ssl_context(http.tls_config, what)
        if http.tls_config.server_name:
            kwargs["server_hostname"] = http.tls_config.server_name
    try:
        async with session.post(
            url, data=json.dumps(document).encode(), headers=headers, **kwargs
        ) as resp:
            text = await resp.text(errors="replace")
            answer = HTTPAnswer(resp.status, resp.headers.get("Content-Type", ""), text)
    except aiohttp.ClientConnectorCertificateError as e:
        raise DeliveryFailed(
            f"{what}: POST {url}: the server's TLS certificate is not trusted ({e}); "
            "set tls_config.ca_file to the CA that signed it (or server_name to the name in it)",
            retryable=False,
        ) from e
    except (aiohttp.ClientError, TimeoutError, OSError) as e:
        raise DeliveryFailed(
            f"{what}: POST {url} failed: {e!r}; will work once the endpoint is reachable",
            retryable=True,
        ) from e
    outcome = classify(answer.status)
    if outcome is not Outcome.DELIVERED:
        retryable = outcome is Outcome.RETRY
        advice = (
            "the endpoint is failing or busy; sending again later may succeed"
            if retryable
            else "the endpoint refuses the request; check the URL and credentials"
        )
        raise DeliveryFailed(
            f"{what}: POST {url} answered HTTP {answer.status}"
            f"{': ' + _excerpt(answer.body) if answer.body.strip() else ''}; {advice}",
            retryable=retryable,
        )
    return answer


async def send_webhook(
    session: aiohttp.ClientSession, *, cfg: WebhookConfig, message: Mapping[str, Any], what: str
) -> None:
    """POST the message, as it is, to the webhook."""
    await post_json(session, cfg.url, message, cfg.http_config, what)


# ---------------------------------------------------------------------- fan-out


async def deliver(
    receiver: ReceiverConfig,
    payload: dict[str, Any],
    *,
    session: aiohttp.ClientSession | None = None,
    templates: TemplateSet | None = None,
) -> None:
    """Send one group message to every integration of `receiver`, at once.

    Returns when all have taken it; raises DeliveryFailed (and nothing else)
    if any did not, after trying all of them. `session` is reused when given
    (its own timeout then applies); `templates` are the named templates
    config strings may call (Orbiter's defaults when None).
    """
    # Imported here: slack builds on this module's DeliveryFailed and HTTP helpers.
    from orbiter.alerts.slack import send_slack

    try:
        tset = templates or defaults()
        jobs: list[tuple[str, Callable[[aiohttp.ClientSession], Awaitable[None]]]] = []
        name = receiver.name
        for i, w in enumerate(receiver.webhook_configs):
            msg = integration_message(
                payload, send_resolved=w.send_resolved, max_alerts=w.max_alerts
            )
            if msg is not None:
                key = _key("webhook_configs", i)
                what = f"receiver {name}: {key}"
                jobs.append((key, partial(send_webhook, cfg=w, message=msg, what=what)))
        for i, e in enumerate(receiver.email_configs):
            msg = integration_message(payload, send_resolved=e.send_resolved)
            if msg is not None:
                key = _key("email_configs", i)
                what = f"receiver {name}: {key}"
                jobs.append((key, partial(_email, cfg=e, message=msg, templates=tset, what=what)))
        for i, s in enumerate(receiver.slack_configs):
            msg = integration_message(payload, send_resolved=s.send_resolved)
            if msg is not None:
                key = _key("slack_configs", i)
                what = f"receiver {name}: {key}"
                jobs.append(
                    (key, partial(send_slack, cfg=s, message=msg, templates=tset, what=what))
                )
        if not jobs:
            return
        if session is None:
            async with aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=HTTP_TIMEOUT)
            ) as own:
                results = await asyncio.gather(
                    *(job(own) for _, job in jobs), return_exceptions=True
                )
        else:
            results = await asyncio.gather(
                *(job(session) for _, job in jobs), return_exceptions=True
            )
    except Exception as e:  # a message that is not a payload, say: never escapes as anything else
        raise DeliveryFailed(
            f"receiver {receiver.name}: could not send: {e!r}", retryable=False
        ) from e
    failures: list[DeliveryFailed] = []
    for (key, _), r in zip(jobs, results, strict=True):
        if isinstance(r, BaseException):
            failure = _as_failure(f"receiver {name}: {key}", r)
            failure.integration = key
            failures.append(failure)
    if failures:
        retryable = any(f.retryable for f in failures)
        prefix = f"receiver {receiver.name}: "
        raise DeliveryFailed(
            f"{prefix}{len(failures)} of {len(jobs)} integration(s) failed"
            f"{' (retryable)' if retryable else ''}: "
            + "; ".join(str(f).removeprefix(prefix) for f in failures),
            retryable=retryable,
            failures=failures,
        )


def _key(kind: str, index: int) -> str:
    return f"{kind}[{index}]"


def retry_receiver(receiver: ReceiverConfig, failed: DeliveryFailed) -> ReceiverConfig | None:
    """`receiver` cut down to the integrations whose failure a retry can fix; None if none.

    Lets a caller retry only those, so integrations that already took the
    message do not get it twice.
    """
    keep = {f.integration for f in failed.failures if f.retryable}
    cut = replace(
        receiver,
        webhook_configs=_kept(receiver.webhook_configs, "webhook_configs", keep),
        email_configs=_kept(receiver.email_configs, "email_configs", keep),
        slack_configs=_kept(receiver.slack_configs, "slack_configs", keep),
    )
    return cut if keep else None


def _kept(configs: tuple[Any, ...], kind: str, keep: set[str]) -> tuple[Any, ...]:
    return tuple(c for i, c in enumerate(configs) if _key(kind, i) in keep)


async def _email(
    _session: aiohttp.ClientSession,
    *,
    cfg: EmailConfig,
    message: Mapping[str, Any],
    templates: TemplateSet,
    what: str,
) -> None:
    """Email needs no HTTP session."""
    from orbiter.alerts.email import send_email  # email builds on DeliveryFailed

    await send_email(cfg, message, templates, what)


def _as_failure(what: str, e: BaseException) -> DeliveryFailed:
    if isinstance(e, DeliveryFailed):
        return e
    if isinstance(e, TemplateExecError):
        return DeliveryFailed(f"{what}: template failed: {e}; fix the template", retryable=False)
    if isinstance(e, asyncio.CancelledError):
        raise e
    retryable = isinstance(e, OSError | TimeoutError | aiohttp.ClientError)
    return DeliveryFailed(f"{what}: {e!r}", retryable=retryable)
