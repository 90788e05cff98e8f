"""Alerts arrive by email at a real SMTP server: plain, STARTTLS, implicit TLS, with AUTH.

The server is aiosmtpd's, started per test on a free port (its own thread and
event loop); certificates are self-signed ones made for the test by the
`openssl` command (the `cryptography` package is not installed). The
authenticator checks the credentials and records the mechanism used.
"""

from __future__ import annotations

import email
import email.policy
import socket
import ssl
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from orbiter.alerts.deliver import DeliveryFailed, deliver
from orbiter.alerts.receiver_configs import EmailConfig, ReceiverConfig, TLSConfig
from tests import needs
from tests.alert_samples import alert, message
from tests.certs import make_cert
from tests.conftest import free_port

USER, PASSWORD = "orbiter", "correct horse"


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for localhost and 127.0.0.1: (certificate, key)."""
    made = make_cert(tmp_path_factory.mktemp("smtp-cert"), "localhost", "DNS:localhost",
                     "IP:127.0.0.1")  # fmt: skip
    crt, key = made.cert, made.key
    return crt, key


@dataclass
class Mailbox:
    """What the SMTP server received, and how it answers DATA (250 unless `answer` is set)."""

    host: str = "127.0.0.1"
    port: int = 0
    messages: list[tuple[str, list[str], EmailMessage]] = field(default_factory=list)
    hellos: list[str] = field(default_factory=list)
    logins: list[tuple[str, str, str]] = field(default_factory=list)
    answer: str = ""

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.answer:
            return self.answer
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(msg, EmailMessage)
        self.hellos.append(session.host_name)
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), msg))
        return "250 OK"

    def authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any
    ) -> AuthResult:
        assert isinstance(data, LoginPassword)
        login, password = data.login.decode(), data.password.decode()
        self.logins.append((mechanism, login, password))
        # handled=False: aiosmtpd answers a failure with 535 itself
        return AuthResult(success=(login, password) == (USER, PASSWORD), handled=False)


SMTPServer = Callable[..., Mailbox]


@pytest.fixture
def smtp_server() -> Iterator[SMTPServer]:
    """Start an aiosmtpd server; keyword arguments go to aiosmtpd's SMTP (tls_context, ...)."""
    controllers: list[Controller] = []

    def start(port: int | None = None, host: str = "127.0.0.1", **smtp_kwargs: Any) -> Mailbox:
        box = Mailbox(host=host, port=port or free_port(host))
        if "auth_required" in smtp_kwargs:
            smtp_kwargs["authenticator"] = box.authenticate
        controller = Controller(box, hostname=box.host, port=box.port, **smtp_kwargs)
        controller.start()
        controllers.append(controller)
        return box

    yield start
    for c in controllers:
        c.stop()


def server_tls(cert: tuple[Path, Path]) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(*cert)
    return ctx


def receiver(box: Mailbox, **kw: Any) -> ReceiverConfig:
    cfg = EmailConfig(
        **{
            "to": "ops@example.com, Oncall <oncall@example.com>",
            "from_": "Orbiter <orbiter@example.com>",
            "smarthost": (box.host, box.port),
            "hello": "satellite.example.com",
            **kw,
        }
    )
    return ReceiverConfig(name="ops", email_configs=(cfg,))


def bodies(msg: EmailMessage) -> tuple[str, str]:
    text, html = msg.iter_parts()
    assert (text.get_content_type(), html.get_content_type()) == ("text/plain", "text/html")
    return text.get_content(), html.get_content()


# ---------------------------------------------------------------------- plain


async def test_plain_smtp_delivers_one_email_with_subject_addresses_and_both_bodies(
    smtp_server: SMTPServer,
) -> None:
    box = smtp_server()
    await deliver(
        receiver(box, require_tls=False),
        message(
            alert("DiskFull", job="node", instance="a:9100"),
            alert("DiskFull", job="node", instance="b:9100"),
        ),
    )
    ((sender, rcpts, msg),) = box.messages
    assert sender == "orbiter@example.com"
    assert rcpts == ["ops@example.com", "oncall@example.com"]
    assert box.hellos == ["satellite.example.com"]
    assert msg["Subject"] == "[FIRING:2] DiskFull (node)"
    assert msg["From"] == "Orbiter <orbiter@example.com>"
    assert msg["To"] == "ops@example.com, Oncall <oncall@example.com>"
    assert msg["Message-Id"] and msg["Date"]
    for body in bodies(msg):
        for value in (
            "alertname",
            "DiskFull",
            "job",
            "node",
            "a:9100",
            "b:9100",
            "DiskFull on a:9100",
        ):
            assert value in body
        assert "http://satellite:9090/graph?g0.expr=DiskFull" in body


async def test_resolved_alerts_are_left_out_unless_send_resolved(smtp_server: SMTPServer) -> None:
    box = smtp_server()
    mixed = message(
        alert("A", instance="firing-one"), alert("A", "resolved", instance="resolved-one")
    )
    await deliver(receiver(box, require_tls=False), mixed)
    await deliver(receiver(box, require_tls=False), message(alert("A", "resolved", instance="x")))
    ((_, _, msg),) = box.messages  # the all-resolved message sent nothing
    assert msg["Subject"] == "[FIRING:1] A (firing-one)"
    for body in bodies(msg):
        assert "firing-one" in body and "resolved-one" not in body
    await deliver(receiver(box, require_tls=False, send_resolved=True), mixed)
    msg = box.messages[1][2]
    assert msg["Subject"] == "[FIRING:1] A"
    for body in bodies(msg):
        assert "firing-one" in body and "resolved-one" in body


async def test_require_tls_against_a_server_without_starttls_fails_without_sending(
    smtp_server: SMTPServer,
) -> None:
    box = smtp_server()
    with pytest.raises(DeliveryFailed, match="does not offer STARTTLS") as e:
        await deliver(receiver(box), message(alert("A")))  # require_tls defaults to true
    assert not e.value.retryable
    assert box.messages == []


@pytest.mark.parametrize(
    ("answer", "retryable"),
    [("451 4.3.0 try again later", True), ("554 5.7.1 message refused", False)],
)
async def test_smtp_4xx_is_retryable_and_5xx_is_not(
    smtp_server: SMTPServer, answer: str, retryable: bool
) -> None:
    box = smtp_server()
    box.answer = answer
    with pytest.raises(DeliveryFailed, match=answer.split()[0]) as e:
        await deliver(receiver(box, require_tls=False), message(alert("A")))
    assert e.value.retryable is retryable


async def test_an_smtp_server_that_is_not_there_is_retryable() -> None:
    box = Mailbox(port=free_port())
    with pytest.raises(DeliveryFailed) as e:
        await deliver(receiver(box, require_tls=False), message(alert("A")))
    assert e.value.retryable


# ---------------------------------------------------------------------- TLS and AUTH


@pytest.mark.parametrize("mechanism", ["LOGIN", "PLAIN"])
async def test_starttls_then_auth_with_the_configured_credentials(
    smtp_server: SMTPServer, cert: tuple[Path, Path], mechanism: str
) -> None:
    other = {"LOGIN": "PLAIN", "PLAIN": "LOGIN"}[mechanism]
    box = smtp_server(
        tls_context=server_tls(cert),
        require_starttls=True,
        auth_required=True,
        auth_require_tls=True,
        auth_exclude_mechanism=[other],
    )
    await deliver(
        receiver(
            box,
            tls_config=TLSConfig(ca_file=str(cert[0])),
            auth_username=USER,
            auth_password=PASSWORD,
        ),
        message(alert("A", instance="1")),
    )
    assert box.logins == [(mechanism, USER, PASSWORD)]
    ((_, _, msg),) = box.messages
    assert msg["Subject"] == "[FIRING:1] A (1)"


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
async def test_plain_auth_is_refused_over_an_unencrypted_connection_to_another_host(
    smtp_server: SMTPServer,
) -> None:
    # Go's smtp.PlainAuth rule, which Alertmanager inherits: PLAIN only over TLS or to localhost.
    # 127.0.0.2 is this machine but not a name that rule counts as localhost.
    box = smtp_server(
        host="127.0.0.2",
        auth_required=True,
        auth_require_tls=False,
        auth_exclude_mechanism=["LOGIN"],
    )
    creds = {"auth_username": USER, "auth_password": PASSWORD, "require_tls": False}
    with pytest.raises(DeliveryFailed, match=r"refusing AUTH PLAIN to 127\.0\.0\.2") as e:
        await deliver(receiver(box, **creds), message(alert("A")))
    assert not e.value.retryable
    assert box.logins == []
    to_localhost = smtp_server(
        auth_required=True, auth_require_tls=False, auth_exclude_mechanism=["LOGIN"]
    )
    await deliver(receiver(to_localhost, **creds), message(alert("A")))
    assert to_localhost.logins == [("PLAIN", USER, PASSWORD)]


async def test_a_wrong_password_fails_and_says_which_user(
    smtp_server: SMTPServer, cert: tuple[Path, Path]
) -> None:
    box = smtp_server(tls_context=server_tls(cert), auth_required=True)
    with pytest.raises(DeliveryFailed, match="authentication as 'orbiter' failed") as e:
        await deliver(
            receiver(
                box,
                tls_config=TLSConfig(ca_file=str(cert[0])),
                auth_username=USER,
                auth_password="wrong",
            ),
            message(alert("A")),
        )
    assert not e.value.retryable
    assert box.logins and box.messages == []


async def test_starttls_with_an_untrusted_certificate_fails_until_ca_file_is_set(
    smtp_server: SMTPServer, cert: tuple[Path, Path]
) -> None:
    box = smtp_server(tls_context=server_tls(cert))
    with pytest.raises(DeliveryFailed, match="ca_file") as e:
        await deliver(receiver(box), message(alert("A")))
    assert not e.value.retryable
    await deliver(
        receiver(box, tls_config=TLSConfig(insecure_skip_verify=True)), message(alert("A"))
    )
    assert len(box.messages) == 1


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
async def test_port_465_speaks_tls_from_the_first_byte(
    smtp_server: SMTPServer, cert: tuple[Path, Path]
) -> None:
    try:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 465))
    except OSError as e:
        # Port 465 needs root: CI has it (a failure there); elsewhere a skip says why.
        needs.require(f"listening on 127.0.0.1:465 needs root ({e})")
    # aiosmtpd counts only STARTTLS as TLS when deciding to offer AUTH, hence auth_require_tls
    box = smtp_server(
        port=465, ssl_context=server_tls(cert), auth_required=True, auth_require_tls=False
    )
    await deliver(
        receiver(
            box,
            tls_config=TLSConfig(ca_file=str(cert[0])),
            auth_username=USER,
            auth_password=PASSWORD,
        ),
        message(alert("A")),
    )
    assert len(box.messages) == 1
    assert box.logins[0][1:] == (USER, PASSWORD)
