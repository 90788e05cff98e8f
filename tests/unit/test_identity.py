"""orbiter certs, the credentials file, principals, bindings, rate limits and the
non-loopback bind check: the pure parts of identity and encryption."""

from __future__ import annotations

import base64
import hashlib
import re
import ssl
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from orbiter.cli import main
from orbiter.config import load_config
from orbiter.security import certs
from orbiter.security import settings as security_settings
from orbiter.security.bindings import NotYours, RegistrationLimiter, maintenance_by
from orbiter.security.credentials import Credentials, load_credentials
from orbiter.security.flags import check_bind
from orbiter.security.principals import Unauthenticated, resolve
from orbiter.security.ratelimit import RateLimited, TokenBuckets
from orbiter.security.settings import SecurityError, SecuritySettings
from orbiter.yamlreader import ConfigError

TOKEN = "alice-token-0123456789"


@pytest.fixture(autouse=True)
def _process_settings_restored() -> Iterator[None]:
    """`main()` sets this process's security settings: later tests must not inherit them."""
    yield
    security_settings.configure(SecuritySettings())

# ---------------------------------------------------------------------- certs


def test_certs_init_makes_a_ca_with_a_private_key(tmp_path: Path) -> None:
    made = certs.init_ca(tmp_path / "ca")

    assert stat.S_IMODE(made.key.stat().st_mode) == 0o600
    ca = x509.load_pem_x509_certificate(made.cert.read_bytes())
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca


def test_certs_init_refuses_to_replace_a_ca(tmp_path: Path) -> None:
    certs.init_ca(tmp_path)
    with pytest.raises(certs.CertError, match="already holds a CA"):
        certs.init_ca(tmp_path)


def test_an_issued_certificate_names_the_principal_and_works_both_ways(tmp_path: Path) -> None:
    certs.init_ca(tmp_path)

    made = certs.issue(tmp_path, "alice", ("10.1.2.3", "node1.example"))

    assert stat.S_IMODE(made.key.stat().st_mode) == 0o600
    cert = x509.load_pem_x509_certificate(made.cert.read_bytes())
    assert certs.common_name(made.cert.read_bytes()) == "alice"
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["localhost", "node1.example"]
    assert [str(ip) for ip in sans.get_values_for_type(x509.IPAddress)] == [
        "127.0.0.1",
        "10.1.2.3",
    ]
    usage = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert set(usage) == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}
    # Python's ssl module accepts the pair, and the CA verifies it.
    ctx = ssl.create_default_context(cafile=str(tmp_path / "ca.pem"))
    ctx.load_cert_chain(made.cert, made.key)
    cert.verify_directly_issued_by(
        x509.load_pem_x509_certificate((tmp_path / "ca.pem").read_bytes())
    )


def test_issue_without_a_ca_says_how_to_make_one(tmp_path: Path) -> None:
    with pytest.raises(certs.CertError, match="orbiter certs init --dir"):
        certs.issue(tmp_path, "alice")


def test_certs_commands(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["certs", "init", "--dir", str(tmp_path)]) == 0
    assert main(["certs", "issue", "master", "--dir", str(tmp_path), "--san", "10.0.0.5"]) == 0
    assert (tmp_path / "master.pem").is_file()
    assert main(["certs", "issue", "bad", "--dir", str(tmp_path), "--san", "a b"]) == 1
    assert "neither a host name nor an IP address" in capsys.readouterr().err


# ---------------------------------------------------------------------- credentials


def test_credentials_take_tokens_or_their_sha256(tmp_path: Path) -> None:
    f = tmp_path / "creds.yml"
    hashed = hashlib.sha256(b"bob-token-0123456789").hexdigest()
    f.write_text(f"principals:\n  - {{name: alice, token: {TOKEN}}}\n"
                 f"  - {{name: bob, token_sha256: {hashed}}}\n")  # fmt: skip

    creds = load_credentials(f)

    assert creds.principal_for(TOKEN) == "alice"
    assert creds.principal_for("bob-token-0123456789") == "bob"
    assert creds.principal_for("wrong") == ""


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("principals:\n  - {name: a, token: short}\n", ":2: principals[0].token is shorter"),
        ("principals:\n  - {token: x}\n", ":2: principals[0] needs a name"),
        ("principals:\n  - {name: a, tokn: x}\n", ":2: unknown key principals[0].tokn"),
        ("principals:\n  - {name: a, token_sha256: zz}\n", "is not 64 hex digits"),
        (
            f"principals:\n  - {{name: a, token: {TOKEN}}}\n  - {{name: a, token: {TOKEN}x}}\n",
            ":3: principals[1].name 'a' is listed twice",
        ),
    ],
)
def test_a_bad_credentials_file_names_the_line(tmp_path: Path, text: str, error: str) -> None:
    f = tmp_path / "creds.yml"
    f.write_text(text)
    with pytest.raises(ConfigError, match=error.replace("[", r"\[").replace("]", r"\]")):
        load_credentials(f)


def test_the_config_file_takes_a_security_section(tmp_path: Path) -> None:
    certs.init_ca(tmp_path)
    certs.issue(tmp_path, "master")
    f = tmp_path / "orbiter.yml"
    f.write_text("security:\n  tls_cert: master.pem\n  tls_key: master.key\n"
                 "  tls_ca: ca.pem\n  require_client_cert: true\n")  # fmt: skip
    sec = load_config(f).security
    assert sec.tls_cert == str(tmp_path / "master.pem") and sec.require_client_cert
    f.write_text("security:\n  tls_cert: master.pem\n  tls_cerx: x\n")
    with pytest.raises(ConfigError, match=r"orbiter.yml:3: unknown key security.tls_cerx"):
        load_config(f)
    f.write_text("security:\n  tls_cert: missing.pem\n  tls_key: master.key\n")
    with pytest.raises(ConfigError, match=r"orbiter.yml:2: security.tls_cert: .* does not exist"):
        load_config(f)


# ---------------------------------------------------------------------- principals


AUTH = SecuritySettings(credentials=Credentials().with_token("alice", TOKEN))


@pytest.mark.parametrize(
    ("settings", "cn", "authorization", "principal"),
    [
        (SecuritySettings(), "", "", ""),  # loopback default: nobody needs to be anybody
        (AUTH, "", f"Bearer {TOKEN}", "alice"),
        (AUTH, "bob", "", "bob"),  # a verified certificate's CN
        (AUTH, "bob", f"bearer {TOKEN}", "alice"),  # a token names the principal first
        # HTTP Basic as Mesos frameworks send it (pymesos): the secret is the token.
        (AUTH, "", "Basic " + base64.b64encode(f"alice:{TOKEN}".encode()).decode(), "alice"),
    ],
)
def test_the_principal_comes_from_a_token_or_a_certificate(
    settings: SecuritySettings, cn: str, authorization: str, principal: str
) -> None:
    assert resolve(settings, cn, authorization) == principal


@pytest.mark.parametrize(
    "authorization",
    [
        "",
        "Bearer wrong-token",
        f"Basic {TOKEN}",
        "Basic " + base64.b64encode(f"bob:{TOKEN}".encode()).decode(),  # alice's token
        "Basic " + base64.b64encode(b"alice:wrong-token").decode(),
    ],
)
def test_without_a_valid_token_or_certificate_a_call_is_unauthenticated(
    authorization: str,
) -> None:
    with pytest.raises(Unauthenticated):
        resolve(AUTH, "", authorization)


# ---------------------------------------------------------------------- bindings


@pytest.mark.parametrize(
    ("principal", "body_by", "by"),
    [("alice", None, "operator"), ("satellite", None, "satellite"),
     ("satellite", "satellite", "satellite"), ("alice", "operator", "operator")],
)  # fmt: skip
def test_maintenance_is_signed_by_the_principal(
    principal: str, body_by: str | None, by: str
) -> None:
    assert maintenance_by(AUTH, principal, body_by) == by


def test_an_operator_cannot_sign_as_satellite() -> None:
    with pytest.raises(NotYours, match="not yours to give"):
        maintenance_by(AUTH, "alice", "satellite")


def test_without_authentication_the_body_still_says_who() -> None:
    assert maintenance_by(SecuritySettings(), "", "satellite") == "satellite"
    assert maintenance_by(SecuritySettings(), "", None) == "operator"


def test_token_buckets_allow_a_burst_then_a_rate() -> None:
    b = TokenBuckets(rate=2.0, burst=5.0)
    assert [b.take("k", 0.0) for _ in range(7)] == [True] * 5 + [False] * 2
    assert b.take("other", 0.0)
    assert b.take("k", 0.5) and not b.take("k", 0.5)


def test_registrations_are_limited_per_principal_and_host() -> None:
    limiter = RegistrationLimiter(rate=1.0, burst=3.0)
    for _ in range(3):
        limiter.admit("agent", "10.0.0.1", 0.0)
    with pytest.raises(
        RateLimited, match=r"too many agent registrations from agent at 10\.0\.0\.1"
    ):
        limiter.admit("agent", "10.0.0.1", 0.0)
    limiter.admit("agent", "10.0.0.2", 0.0)
    for _ in range(100):  # unauthenticated loopback: the single-node default, not limited
        limiter.admit("", "127.0.0.1", 0.0)


# ---------------------------------------------------------------------- binding


@pytest.mark.parametrize(
    ("settings", "missing"),
    [
        (SecuritySettings(), "without TLS (--tls-cert and --tls-key) and without authentication"),
        (SecuritySettings(tls_cert="c", tls_key="k"), "without authentication"),
        (AUTH, "without TLS"),
    ],
)
def test_a_non_loopback_bind_needs_tls_and_authentication(
    settings: SecuritySettings, missing: str
) -> None:
    with pytest.raises(SecurityError, match=re.escape(missing)):
        check_bind(settings, "the master", "0.0.0.0")
    check_bind(settings, "the master", "127.0.0.1")
    check_bind(settings, "the master", "localhost")


def test_insecure_allows_a_non_loopback_bind() -> None:
    check_bind(SecuritySettings(insecure=True), "the master", "0.0.0.0")


def test_orbiter_master_on_0_0_0_0_without_tls_exits_at_once_naming_what_is_missing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status = main(["master", "--host", "0.0.0.0", "--work-dir", str(tmp_path)])

    assert status == 2
    err = capsys.readouterr().err
    assert "without TLS (--tls-cert and --tls-key) and without authentication" in err
    assert "--insecure" in err
    assert not (tmp_path / "registry.pb").exists()


def test_orbiter_agent_on_0_0_0_0_with_tls_but_no_authentication_exits(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    certs.init_ca(tmp_path)
    made = certs.issue(tmp_path, "agent")
    status = main(["agent", "--host", "0.0.0.0", "--work-dir", str(tmp_path / "a"),
                   "--tls-cert", str(made.cert), "--tls-key", str(made.key)])  # fmt: skip
    assert status == 2
    err = capsys.readouterr().err
    assert "the agent would listen on 0.0.0.0" in err and "without authentication" in err
    assert "without TLS" not in err


def test_an_internal_token_does_not_turn_off_required_client_certificates(tmp_path: Path) -> None:
    """A CA and no credentials file: gRPC requires client certificates, and still does once
    the master made a token for its own Satellite process."""
    settings = SecuritySettings(tls_cert="c", tls_key="k", tls_ca="ca")
    assert settings.grpc_requires_client_cert

    with_child = settings.with_token("satellite", TOKEN)

    assert with_child.grpc_requires_client_cert
    assert resolve(with_child, "", f"Bearer {TOKEN}") == "satellite"


def test_credentials_and_token_files_that_are_not_utf8_are_named(tmp_path: Path) -> None:
    from orbiter.config import ConfigError
    from orbiter.security.settings import SecurityError, read_token

    bad = tmp_path / "creds.yml"
    bad.write_bytes(b"\xff\xfeprincipals: []\n")
    with pytest.raises(ConfigError, match=r"creds.yml: not UTF-8 text"):
        load_credentials(bad)
    with pytest.raises(SecurityError, match=r"--token-file: .* is not UTF-8 text"):
        read_token(str(bad))
