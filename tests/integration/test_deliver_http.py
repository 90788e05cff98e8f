"""Webhooks and Slack-compatible webhooks get the message, with auth and TLS, from a real server.

The far end is a real aiohttp server on a free port in the test's event loop,
plain or HTTPS with a self-signed certificate made for the test by the
`openssl` command (the `cryptography` package is not installed).
"""

from __future__ import annotations

import base64
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from orbiter import __version__
from orbiter.alerts.deliver import DeliveryFailed, deliver, retry_receiver
from orbiter.alerts.receiver_configs import (
    BasicAuth,
    HTTPConfig,
    ReceiverConfig,
    SlackConfig,
    TLSConfig,
    WebhookConfig,
)
from tests.alert_samples import alert, message
from tests.certs import Cert, make_cert


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Cert]:
    d = tmp_path_factory.mktemp("certs")
    return {
        "server": make_cert(d, "server", "DNS:localhost", "IP:127.0.0.1"),
        "named": make_cert(d, "named", "DNS:alerts.example.test"),
        "client": make_cert(d, "client", "DNS:orbiter-client"),
    }


@dataclass
class Endpoint:
    """A webhook that records each request and answers from `answers` first, then 200 "ok"."""

    url: str = ""
    requests: list[tuple[dict[str, str], Any]] = field(default_factory=list)
    answers: list[tuple[int, str, str]] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        self.requests.append((dict(request.headers), await request.json()))
        status, content_type, body = (
            self.answers.pop(0) if self.answers else (200, "text/plain", "ok")
        )
        return web.Response(status=status, text=body, content_type=content_type)

    @property
    def bodies(self) -> list[Any]:
        return [body for _, body in self.requests]


Serve = Callable[..., Awaitable[Endpoint]]


@pytest.fixture
async def serve() -> AsyncIterator[Serve]:
    """Start an endpoint (HTTPS when given a server SSLContext) on a free port."""
    runners: list[web.AppRunner] = []

    async def start(ssl_context: ssl.SSLContext | None = None) -> Endpoint:
        ep = Endpoint()
        app = web.Application()
        app.router.add_post("/{tail:.*}", ep.handle)
        runner = web.AppRunner(app)
        await runner.setup()
        runners.append(runner)
        site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ssl_context)
        await site.start()
        host, port = runner.addresses[0][:2]
        ep.url = f"{'https' if ssl_context else 'http'}://{host}:{port}/hook"
        return ep

    yield start
    for runner in runners:
        await runner.cleanup()


def server_tls(cert: Cert, client_ca: Path | None = None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert.cert, cert.key)
    if client_ca is not None:
        ctx.load_verify_locations(client_ca)
        ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def webhook(url: str, **kw: Any) -> ReceiverConfig:
    return ReceiverConfig(name="ops", webhook_configs=(WebhookConfig(url=url, **kw),))


# ---------------------------------------------------------------------- webhook


async def test_webhook_posts_the_message_as_json_with_orbiters_user_agent(serve: Serve) -> None:
    ep = await serve()
    msg = message(alert("A", instance="1"), alert("A", instance="2"))
    await deliver(webhook(ep.url), msg)
    ((headers, body),) = ep.requests
    assert body == msg
    assert headers["Content-Type"] == "application/json"
    assert headers["User-Agent"] == f"Orbiter/{__version__}"
    assert "Authorization" not in headers


@pytest.mark.parametrize(
    ("http", "authorization"),
    [
        (
            HTTPConfig(basic_auth=BasicAuth("alice", "s3cret")),
            "Basic " + base64.b64encode(b"alice:s3cret").decode(),
        ),
        (HTTPConfig(bearer_token="t0ken"), "Bearer t0ken"),
    ],
)
async def test_webhook_credentials_arrive_in_the_authorization_header(
    serve: Serve, http: HTTPConfig, authorization: str
) -> None:
    ep = await serve()
    await deliver(webhook(ep.url, http_config=http), message(alert("A")))
    assert ep.requests[0][0]["Authorization"] == authorization


@pytest.mark.parametrize(
    ("status", "retryable"),
    [(503, True), (500, True), (429, True), (408, True), (400, False), (401, False), (404, False)],
)
async def test_webhook_errors_are_retryable_only_when_the_far_end_may_recover(
    serve: Serve, status: int, retryable: bool
) -> None:
    ep = await serve()
    ep.answers.append((status, "text/plain", "go away"))
    with pytest.raises(DeliveryFailed, match=f"HTTP {status}: go away") as e:
        await deliver(webhook(ep.url), message(alert("A")))
    assert e.value.retryable is retryable


async def test_an_unreachable_webhook_is_retryable() -> None:
    with pytest.raises(DeliveryFailed, match="webhook_configs") as e:
        await deliver(webhook("http://127.0.0.1:9/hook"), message(alert("A")))
    assert e.value.retryable


async def test_webhook_without_send_resolved_gets_only_firing_alerts(serve: Serve) -> None:
    ep = await serve()
    recv = webhook(ep.url, send_resolved=False)
    await deliver(recv, message(alert("A", instance="1"), alert("A", "resolved", instance="2")))
    await deliver(recv, message(alert("A", "resolved", instance="1")))  # nothing left: not sent
    (body,) = ep.bodies
    assert [a["labels"]["instance"] for a in body["alerts"]] == ["1"]
    assert body["status"] == "firing"
    assert body["commonLabels"] == {"alertname": "A", "instance": "1"}


async def test_webhook_max_alerts_truncates_and_counts_the_rest(serve: Serve) -> None:
    ep = await serve()
    msg = message(*(alert("A", instance=str(i)) for i in range(5)))
    await deliver(webhook(ep.url, max_alerts=2), msg)
    (body,) = ep.bodies
    assert [a["labels"]["instance"] for a in body["alerts"]] == ["0", "1"]
    assert body["truncatedAlerts"] == 3


# ---------------------------------------------------------------------- TLS


def tls(**kw: Any) -> HTTPConfig:
    return HTTPConfig(tls_config=TLSConfig(**kw))


async def test_https_webhook_works_with_its_ca_file_and_fails_without(
    serve: Serve, certs: dict[str, Cert]
) -> None:
    ep = await serve(server_tls(certs["server"]))
    with pytest.raises(DeliveryFailed, match="ca_file") as e:
        await deliver(webhook(ep.url), message(alert("A")))
    assert not e.value.retryable
    assert ep.requests == []
    await deliver(
        webhook(ep.url, http_config=tls(ca_file=str(certs["server"].cert))), message(alert("A"))
    )
    assert len(ep.requests) == 1


async def test_https_insecure_skip_verify_accepts_an_unknown_certificate(
    serve: Serve, certs: dict[str, Cert]
) -> None:
    ep = await serve(server_tls(certs["server"]))
    await deliver(webhook(ep.url, http_config=tls(insecure_skip_verify=True)), message(alert("A")))
    assert len(ep.requests) == 1


async def test_https_server_name_checks_the_certificate_against_that_name(
    serve: Serve, certs: dict[str, Cert]
) -> None:
    ep = await serve(server_tls(certs["named"]))
    ca = str(certs["named"].cert)
    with pytest.raises(DeliveryFailed):  # the certificate is not for 127.0.0.1
        await deliver(webhook(ep.url, http_config=tls(ca_file=ca)), message(alert("A")))
    good = tls(ca_file=ca, server_name="alerts.example.test")
    await deliver(webhook(ep.url, http_config=good), message(alert("A")))
    assert len(ep.requests) == 1


async def test_https_client_certificate_is_presented_when_configured(
    serve: Serve, certs: dict[str, Cert]
) -> None:
    ep = await serve(server_tls(certs["server"], client_ca=certs["client"].cert))
    ca = str(certs["server"].cert)
    with pytest.raises(DeliveryFailed):
        await deliver(webhook(ep.url, http_config=tls(ca_file=ca)), message(alert("A")))
    mtls = tls(ca_file=ca, cert_file=str(certs["client"].cert), key_file=str(certs["client"].key))
    await deliver(webhook(ep.url, http_config=mtls), message(alert("A")))
    assert len(ep.requests) == 1


# ---------------------------------------------------------------------- Slack and fan-out


def slack(url: str, **kw: Any) -> ReceiverConfig:
    return ReceiverConfig(name="ops", slack_configs=(SlackConfig(api_url=url, **kw),))


async def test_slack_gets_an_attachment_titled_like_alertmanagers(serve: Serve) -> None:
    ep = await serve()
    await deliver(
        slack(ep.url, channel="#alerts", http_config=HTTPConfig(bearer_token="x")),
        message(
            alert("HighLatency", job="api", instance="a"),
            alert("HighLatency", job="api", instance="b"),
        ),
    )
    ((headers, body),) = ep.requests
    assert headers["Authorization"] == "Bearer x"
    assert body["channel"] == "#alerts"
    assert body["username"] == "Orbiter"
    (att,) = body["attachments"]
    assert att["title"] == "[FIRING:2] HighLatency (api)"
    assert att["color"] == "danger"
    assert "HighLatency on a" in att["text"] and "HighLatency on b" in att["text"]


async def test_slack_sends_resolved_only_when_asked_and_colours_them_good(serve: Serve) -> None:
    ep = await serve()
    resolved = message(alert("A", "resolved", instance="1"))
    await deliver(slack(ep.url), resolved)
    assert ep.requests == []
    await deliver(slack(ep.url, send_resolved=True), resolved)
    (att,) = ep.bodies[0]["attachments"]
    assert att["title"] == "[RESOLVED] A (1)"
    assert att["color"] == "good"


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("text/plain", "invalid_token"),
        ("application/json", '{"ok": false, "error": "channel_not_found"}'),
    ],
)
async def test_slack_refusals_in_a_2xx_answer_are_errors_not_worth_retrying(
    serve: Serve, content_type: str, body: str
) -> None:
    ep = await serve()
    ep.answers.append((200, content_type, body))
    with pytest.raises(DeliveryFailed, match="slack_configs\\[0\\]") as e:
        await deliver(slack(ep.url), message(alert("A")))
    assert not e.value.retryable


async def test_one_failing_integration_does_not_stop_the_others(serve: Serve) -> None:
    good, bad = await serve(), await serve()
    bad.answers.append((503, "text/plain", "down"))
    receiver = ReceiverConfig(
        name="ops",
        webhook_configs=(WebhookConfig(url=bad.url), WebhookConfig(url=good.url)),
        slack_configs=(SlackConfig(api_url=good.url),),
    )
    with pytest.raises(DeliveryFailed, match=r"1 of 3 integration\(s\) failed") as e:
        await deliver(receiver, message(alert("A")))
    assert e.value.retryable
    assert len(bad.requests) == 1 and len(good.requests) == 2


async def test_a_retry_can_go_to_only_the_integrations_that_may_recover(serve: Serve) -> None:
    good, busy, refusing = await serve(), await serve(), await serve()
    busy.answers.append((503, "text/plain", "busy"))
    refusing.answers.append((400, "text/plain", "bad request"))
    receiver = ReceiverConfig(
        name="ops",
        webhook_configs=(WebhookConfig(url=good.url), WebhookConfig(url=refusing.url)),
        slack_configs=(SlackConfig(api_url=busy.url),),
    )
    msg = message(alert("A"))
    with pytest.raises(DeliveryFailed) as e:
        await deliver(receiver, msg)
    assert [(f.integration, f.retryable) for f in e.value.failures] == [
        ("webhook_configs[1]", False),
        ("slack_configs[0]", True),
    ]
    again = retry_receiver(receiver, e.value)
    assert again is not None
    assert again.webhook_configs == () and again.slack_configs == receiver.slack_configs
    await deliver(again, msg)
    assert (len(good.requests), len(busy.requests), len(refusing.requests)) == (1, 2, 1)


async def test_a_given_session_is_used_and_left_open(serve: Serve) -> None:
    ep = await serve()
    async with aiohttp.ClientSession() as session:
        await deliver(webhook(ep.url), message(alert("A")), session=session)
        assert not session.closed
    assert len(ep.requests) == 1
