"""Email over SMTP, with Alertmanager's `email_configs` semantics (`notify/email/email.go`).

The message is multipart/alternative: a plain-text part, then an HTML part
(the preferred alternative goes last, RFC 2046 5.1.4), both UTF-8 and
quoted-printable. Headers are Subject, To and From (defaults: the subject
template, `to`, `from`) plus any `headers` from the config, which are
templates and override the defaults; then Message-Id and Date unless given.

The SMTP conversation, as Alertmanager holds it:

- port 465 is TLS from the first byte (implicit TLS); any other port starts
  in plain text;
- with `require_tls` (the default) the server must offer STARTTLS, and the
  client upgrades before anything else; a server that does not offer it is
  an error. Without `require_tls` the session stays in plain text, even if
  the server offers STARTTLS (Alertmanager does the same);
- if the server offers AUTH and `auth_username` is set, the first of the
  server's mechanisms we know (PLAIN, LOGIN) is used; PLAIN only over TLS or
  to localhost (Go's `smtp.PlainAuth` rule), LOGIN anywhere. Without a
  username, or when the server offers no AUTH, no authentication.

SMTP 4xx answers and lost connections are retryable, 5xx (a refused
recipient, bad credentials) are not. smtplib runs in a thread: the
dependencies have no asyncio SMTP client, and a conversation is a handful
of short round trips.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.policy
import email.utils
import smtplib
import socket
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

from orbiter.alerts.amtemplate import TemplateSet, template_data
from orbiter.alerts.deliver import DeliveryFailed, ssl_context
from orbiter.alerts.receiver_configs import EmailConfig

SMTP_TIMEOUT = 10.0
"""Seconds for each SMTP step (connect, each command)."""

IMPLICIT_TLS_PORT = 465
DEFAULT_SUBJECT = '{{ template "email.default.subject" . }}'
DEFAULT_TEXT = '{{ template "email.default.text" . }}'
DEFAULT_HTML = '{{ template "email.default.html" . }}'
_LOCALHOST = frozenset({"localhost", "127.0.0.1", "::1"})


@dataclass(frozen=True)
class Envelope:
    """Who the SMTP conversation names (MAIL FROM, RCPT TO) and the message it sends."""

    sender: str
    recipients: tuple[str, ...]
    message: EmailMessage


def _addresses(text: str, field: str, what: str) -> list[str]:
    addrs = [a for _, a in email.utils.getaddresses([text]) if a]
    if not addrs or any("@" not in a for a in addrs):
        raise DeliveryFailed(
            f"{what}: {field} {text!r} is not a list of email addresses", retryable=False
        )
    return addrs


def build_email(
    cfg: EmailConfig,
    message: Mapping[str, Any],
    templates: TemplateSet,
    what: str = "email",
    *,
    hostname: str | None = None,
    now: float | None = None,
) -> Envelope:
    """The MIME message and its envelope; TemplateExecError if a template fails."""
    data = template_data(message)

    def render(text: str, field: str, html: bool = False) -> str:
        return templates.render(text, f"{what}.{field}", data, html=html)

    sender_text = render(cfg.from_, "from")
    to_text = render(cfg.to, "to")
    senders = _addresses(sender_text, "from", what)
    if len(senders) != 1:
        raise DeliveryFailed(
            f"{what}: from must be exactly one address, got {len(senders)}", retryable=False
        )
    recipients = _addresses(to_text, "to", what)

    headers: dict[str, tuple[str, str]] = {}  # lower-case name -> (name, value)
    for name, value in (("Subject", DEFAULT_SUBJECT), ("To", cfg.to), ("From", cfg.from_)):
        headers[name.lower()] = (name, value)
    for name, value in cfg.headers:
        headers[name.lower()] = (name, value)

    msg = EmailMessage(policy=email.policy.SMTP)
    for name, text in headers.values():
        # One line each: a newline from a template would start a header of its own.
        value = " ".join(render(text, f"headers.{name}").split())
        msg[name] = value
    if "message-id" not in headers:
        msg["Message-Id"] = email.utils.make_msgid(domain=hostname or socket.gethostname())
    if "date" not in headers:
        msg["Date"] = email.utils.formatdate(time.time() if now is None else now, localtime=False)
    msg.set_content(
        render(cfg.text or DEFAULT_TEXT, "text"), charset="utf-8", cte="quoted-printable"
    )
    msg.add_alternative(
        render(cfg.html or DEFAULT_HTML, "html", html=True),
        subtype="html",
        charset="utf-8",
        cte="quoted-printable",
    )
    return Envelope(senders[0], tuple(recipients), msg)


# ---------------------------------------------------------------------- SMTP


def _plain_auth(identity: str, username: str, password: str) -> Any:
    def respond(challenge: bytes | None = None) -> str:
        return f"{identity}\0{username}\0{password}"

    return respond


def _authenticate(client: smtplib.SMTP, cfg: EmailConfig, host: str, tls: bool, what: str) -> None:
    if not cfg.auth_username or not client.has_extn("auth"):
        return
    offered = client.esmtp_features.get("auth", "").upper().split()
    for mech in offered:
        if mech == "PLAIN":
            if not tls and host not in _LOCALHOST:
                raise DeliveryFailed(
                    f"{what}: refusing AUTH PLAIN to {host} over an unencrypted connection; "
                    "set require_tls: true (and make the server offer STARTTLS) or use port 465",
                    retryable=False,
                )
            client.auth(
                "PLAIN", _plain_auth(cfg.auth_identity, cfg.auth_username, cfg.auth_password)
            )
            return
        if mech == "LOGIN":
            client.user, client.password = cfg.auth_username, cfg.auth_password
            client.auth("LOGIN", client.auth_login)
            return
    raise DeliveryFailed(
        f"{what}: the server offers AUTH {' '.join(offered) or '(none)'}, none of which Orbiter "
        "speaks (PLAIN, LOGIN); enable one on the server or leave auth_username empty",
        retryable=False,
    )


def _converse(cfg: EmailConfig, envelope: Envelope, what: str) -> None:
    """One SMTP session, start to QUIT. Blocking: runs in a thread."""
    host, port = cfg.smarthost
    tls = cfg.tls_config
    implicit = port == IMPLICIT_TLS_PORT
    ctx = ssl_context(tls, what) if implicit or cfg.require_tls else None
    hello = cfg.hello or None
    client: smtplib.SMTP
    if implicit:
        assert ctx is not None
        client = smtplib.SMTP_SSL(local_hostname=hello, timeout=SMTP_TIMEOUT, context=ctx)
        # smtplib checks the certificate against `_host`; server_name overrides the smarthost
        client._host = tls.server_name or host  # type: ignore[attr-defined]
        client.connect(host, port)
    else:
        client = smtplib.SMTP(host, port, local_hostname=hello, timeout=SMTP_TIMEOUT)
    try:
        _session(client, cfg, envelope, what, implicit, ctx)
    finally:
        # Like Alertmanager, a failed QUIT after the message was taken is no failure.
        with contextlib.suppress(smtplib.SMTPException, OSError):
            client.quit()
        client.close()


def _session(
    client: smtplib.SMTP,
    cfg: EmailConfig,
    envelope: Envelope,
    what: str,
    implicit: bool,
    ctx: ssl.SSLContext | None,
) -> None:
    host, port = cfg.smarthost
    tls = cfg.tls_config
    client.ehlo()
    encrypted = implicit
    if cfg.require_tls and not implicit:
        if not client.has_extn("starttls"):
            raise DeliveryFailed(
                f"{what}: require_tls is true but {host}:{port} does not offer STARTTLS; "
                "enable STARTTLS on the server, use port 465, or set require_tls: false",
                retryable=False,
            )
        assert ctx is not None
        if tls.server_name:
            client._host = tls.server_name  # type: ignore[attr-defined]
        client.starttls(context=ctx)
        client.ehlo()
        encrypted = True
    _authenticate(client, cfg, host, encrypted, what)
    refused = client.send_message(
        envelope.message, from_addr=envelope.sender, to_addrs=list(envelope.recipients)
    )
    if refused:
        # Some recipients took it and some did not: sending again would repeat it for
        # the ones that did, so report and do not retry.
        detail = ", ".join(
            f"{a} ({c} {m.decode(errors='replace')})" for a, (c, m) in refused.items()
        )
        raise DeliveryFailed(
            f"{what}: the server refused some recipients: {detail}", retryable=False
        )


def _smtp_failure(e: Exception, cfg: EmailConfig, what: str) -> DeliveryFailed:
    host, port = cfg.smarthost
    where = f"{what}: SMTP {host}:{port}"
    if isinstance(e, smtplib.SMTPAuthenticationError):
        return DeliveryFailed(
            f"{where}: authentication as {cfg.auth_username!r} failed ({e.smtp_code} "
            f"{e.smtp_error.decode(errors='replace')}); check auth_username and auth_password",
            retryable=400 <= e.smtp_code < 500,
        )
    if isinstance(e, smtplib.SMTPRecipientsRefused):
        codes = [c for c, _ in e.recipients.values()]
        detail = ", ".join(
            f"{a} ({c} {m.decode(errors='replace')})" for a, (c, m) in e.recipients.items()
        )
        return DeliveryFailed(
            f"{where}: every recipient was refused: {detail}",
            retryable=all(400 <= c < 500 for c in codes),
        )
    if isinstance(e, smtplib.SMTPResponseException):
        temporary = 400 <= e.smtp_code < 500
        return DeliveryFailed(
            f"{where}: {e.smtp_code} {e.smtp_error.decode(errors='replace')}"
            f"{'; temporary, will try again' if temporary else ''}",
            retryable=temporary,
        )
    if isinstance(e, ssl.SSLCertVerificationError):
        return DeliveryFailed(
            f"{where}: the server's TLS certificate is not trusted ({e.verify_message}); set "
            "tls_config.ca_file to the CA that signed it (or server_name to the name in it)",
            retryable=False,
        )
    if isinstance(e, smtplib.SMTPNotSupportedError):
        return DeliveryFailed(f"{where}: {e}", retryable=False)
    if isinstance(e, OSError | smtplib.SMTPException):
        return DeliveryFailed(f"{where}: {e!r}; will work once the server answers", retryable=True)
    return DeliveryFailed(f"{where}: {e!r}", retryable=False)


def send_email_blocking(cfg: EmailConfig, envelope: Envelope, what: str = "email") -> None:
    """Send one built message; DeliveryFailed on any failure."""
    try:
        _converse(cfg, envelope, what)
    except DeliveryFailed:
        raise
    except Exception as e:
        raise _smtp_failure(e, cfg, what) from e


async def send_email(
    cfg: EmailConfig, message: Mapping[str, Any], templates: TemplateSet, what: str
) -> None:
    """Build and send one group message by email."""
    envelope = build_email(cfg, message, templates, what)
    # smtplib blocks; the dependencies hold no asyncio SMTP client.
    await asyncio.to_thread(send_email_blocking, cfg, envelope, what)
